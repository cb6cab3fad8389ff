/* test_dsn — unit tests for engine/dsn: notices of each kind and each way of attaching the
 * original, several recipients, ORCPT/ENVID, hostile reply text, boundary collisions, the
 * status derivation, templates from a directory (every placeholder) and every kind of refused
 * template, and a 1 MB original.
 *
 * Why this shape: the notice is read by programs (the external parsers in check_external.py
 * judge that) and by people; here the exact fields and texts are asserted, and every notice
 * also goes through the fuzz harness's structural check (included below: CRLF lines <= 998,
 * only the builder's header fields, one delimiter per part), so unit suite and fuzzer prove the
 * same properties.
 */
#include "engine/dsn/dsn.h"
#include "tests/fuzz/fuzz_dsn_tpl.c"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define S(lit) lit, sizeof(lit) - 1
#define T0     1736850121000ull /* Tue, 14 Jan 2025 10:22:01 +0000 */

static const char orig[] = "From: Alice <alice@example.org>\r\n"
			   "To: bob@example.net\r\n"
			   "Subject: hello\r\n"
			   "Message-ID: <m1@example.org>\r\n"
			   "\r\n"
			   "BODY-MARKER line one\r\n"
			   "line two\r\n";

static struct dsn_templates *deft;

static struct dsn_rcpt rcpt_511(void)
{
	return (struct dsn_rcpt){.addr = "bob@example.net",
				 .code = 550,
				 .enh = {5, 1, 1},
				 .remote_mta = "mx1.example.net",
				 .diag = "550 5.1.1 <bob@example.net>: User unknown",
				 .diag_remote = true,
				 .last_attempt_ms = T0 + 1000};
}

static struct dsn_input input(enum dsn_kind k, const struct dsn_rcpt *r, unsigned n)
{
	return (struct dsn_input){.kind = k,
				  .reporting_mta = "mta.example.com",
				  .sender = "alice@example.org",
				  .queue_id = "0123456789abcdef0123456789abcdef",
				  .arrival_ms = T0,
				  .now_ms = T0 + 3 * 3600000ull + 5 * 60000ull,
				  .rcpts = r,
				  .nrcpt = n,
				  .original = DSN_ORIG_FULL,
				  .body = orig,
				  .body_len = sizeof(orig) - 1};
}

/* Build with t, assert success and the structural invariants; returns the notice. */
static char *build_t(const struct dsn_templates *t, const struct dsn_input *in, size_t *len,
		     bool *eight)
{
	char *out = NULL;
	size_t n = 0;
	bool e = false;
	bool orig_part = in->original != DSN_ORIG_NONE && in->body_len > 0;

	assert_int_equal(dsn_build(t, in, &out, &n, &e), 0);
	assert_non_null(out);
	assert_int_equal(strlen(out), n);
	fuzz_dsn_check(out, n, orig_part ? 3 : 2);
	if (len)
		*len = n;
	if (eight)
		*eight = e;
	return out;
}

static char *build(const struct dsn_input *in)
{
	return build_t(deft, in, NULL, NULL);
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* ---- kinds ---- */

static void test_failure(void **state)
{
	struct dsn_rcpt r = rcpt_511();
	struct dsn_input in = input(DSN_FAILURE, &r, 1);
	char *out = build(&in);

	assert_non_null(
	    strstr(out, "From: Mail Delivery System <MAILER-DAEMON@mta.example.com>\r\n"));
	assert_non_null(strstr(out, "\r\nTo: <alice@example.org>\r\n"));
	assert_non_null(strstr(out, "\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
	assert_non_null(strstr(out, "\r\nDate: Tue, 14 Jan 2025 13:27:01 +0000\r\n"));
	assert_non_null(strstr(out, "\r\nMessage-ID: <"));
	assert_non_null(strstr(out, "\r\nMIME-Version: 1.0\r\n"));
	assert_non_null(strstr(out, "\r\nAuto-Submitted: auto-replied\r\n"));
	assert_non_null(
	    strstr(out, "\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n"
			"\tboundary=\"=_rt_0123456789abcdef0123456789abcdef_f"));
	assert_non_null(strstr(out, "Content-Type: text/plain; charset=utf-8\r\n"
				    "Content-Transfer-Encoding: 7bit\r\n"));
	assert_non_null(strstr(out, "<bob@example.net>: host mx1.example.net said: 550 5.1.1 "
				    "<bob@example.net>: User unknown\r\n"));
	assert_non_null(strstr(out, "Content-Type: message/delivery-status\r\n\r\n"
				    "Reporting-MTA: dns; mta.example.com\r\n"));
	assert_non_null(strstr(out, "Arrival-Date: Tue, 14 Jan 2025 10:22:01 +0000\r\n"));
	assert_non_null(
	    strstr(out, "\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\n"
			"Action: failed\r\nStatus: 5.1.1\r\n"
			"Remote-MTA: dns; mx1.example.net\r\n"
			"Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: User unknown\r\n"
			"Last-Attempt-Date: Tue, 14 Jan 2025 10:22:02 +0000\r\n"));
	assert_null(strstr(out, "Will-Retry-Until"));
	assert_null(strstr(out, "Original-Envelope-Id"));
	assert_null(strstr(out, "Original-Recipient"));
	free(out);
}

static void test_delay(void **state)
{
	struct dsn_rcpt r = {.addr = "erin@example.net",
			     .code = 451,
			     .remote_mta = "mx.example.net",
			     .diag = "4.7.1 Greylisted",
			     .diag_remote = true};
	struct dsn_input in = input(DSN_DELAY, &r, 1);
	char *out;

	in.expires_ms = T0 + 5 * 86400000ull;
	out = build(&in);
	assert_non_null(strstr(out, "\r\nSubject: Delayed Mail (still being retried)\r\n"));
	assert_non_null(strstr(out, "been waiting for 3 hours 5 minutes."));
	assert_non_null(strstr(out, "Action: delayed\r\nStatus: 4.0.0\r\n"));
	assert_non_null(strstr(out, "Diagnostic-Code: smtp; 451 4.7.1 Greylisted\r\n"));
	assert_non_null(strstr(out, "Will-Retry-Until: Sun, 19 Jan 2025 10:22:01 +0000\r\n"));
	assert_null(strstr(out, "Last-Attempt-Date")); /* never tried */
	free(out);
}

static void test_relayed(void **state)
{
	struct dsn_rcpt r = {.addr = "gina@example.net",
			     .code = 250,
			     .remote_mta = "old.example.net",
			     .diag = "250 2.0.0 Ok: queued as 4F2A1",
			     .diag_remote = true};
	struct dsn_input in = input(DSN_RELAYED, &r, 1);
	char *out = build(&in);

	assert_non_null(
	    strstr(out, "\r\nSubject: Relayed Mail (delivery status notification)\r\n"));
	assert_non_null(strstr(out, "<gina@example.net>: relayed to old.example.net, which said: "
				    "250 2.0.0 Ok: queued as 4F2A1\r\n"));
	assert_non_null(strstr(out, "Action: relayed\r\nStatus: 2.0.0\r\n"));
	free(out);
}

/* ---- the original ---- */

static void test_original_modes(void **state)
{
	struct dsn_rcpt r = rcpt_511();
	struct dsn_input in = input(DSN_FAILURE, &r, 1);
	char *out;

	out = build(&in);
	assert_non_null(strstr(out, "Content-Type: message/rfc822\r\n\r\n"
				    "From: Alice <alice@example.org>\r\n"));
	assert_non_null(strstr(out, "\r\nBODY-MARKER line one\r\nline two\r\n\r\n--=_rt_"));
	assert_null(strstr(out, "Content-Transfer-Encoding: 8bit"));
	free(out);

	in.original = DSN_ORIG_HEADERS;
	out = build(&in);
	assert_non_null(strstr(out, "Content-Type: text/rfc822-headers\r\n\r\n"
				    "From: Alice <alice@example.org>\r\n"));
	assert_non_null(strstr(out, "Message-ID: <m1@example.org>\r\n\r\n--=_rt_"));
	assert_null(strstr(out, "BODY-MARKER"));
	assert_null(strstr(out, "message/rfc822"));
	free(out);

	in.original = DSN_ORIG_NONE;
	out = build(&in);
	assert_null(strstr(out, "BODY-MARKER"));
	assert_null(strstr(out, "m1@example.org"));
	assert_null(strstr(out, "rfc822-headers"));
	free(out);
}

static void test_original_8bit(void **state)
{
	static const char o8[] = "Subject: x\r\n\r\nGr\xc3\xbc\xc3\x9f"
				 "e\r\n";
	static const char h8[] = "Subject: Gr\xc3\xbc\xc3\x9f"
				 "e\r\n\r\nbody\r\n";
	struct dsn_rcpt r = rcpt_511();
	struct dsn_input in = input(DSN_FAILURE, &r, 1);
	bool eight;
	char *out;

	in.body = o8;
	in.body_len = sizeof(o8) - 1;
	out = build_t(deft, &in, NULL, &eight);
	assert_true(eight);
	assert_non_null(strstr(out, "delivery-status;\r\n\tboundary=\""));
	assert_non_null(strstr(out, "\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"));
	assert_non_null(strstr(out, "Content-Type: message/rfc822\r\n"
				    "Content-Transfer-Encoding: 8bit\r\n\r\nSubject: x\r\n"));
	free(out);

	/* the header block alone, 8-bit: quoted-printable, the notice stays 7-bit */
	in.body = h8;
	in.body_len = sizeof(h8) - 1;
	in.original = DSN_ORIG_HEADERS;
	out = build_t(deft, &in, NULL, &eight);
	assert_false(eight);
	assert_non_null(strstr(out, "Content-Type: text/rfc822-headers\r\n"
				    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
				    "Subject: Gr=C3=BC=C3=9Fe\r\n"));
	free(out);
}

static void test_original_repaired(void **state)
{
	char *body = malloc(3000), *out;
	struct dsn_rcpt r = rcpt_511();
	struct dsn_input in = input(DSN_FAILURE, &r, 1);

	/* bare LF lines become CRLF, a missing last line break is added */
	in.body = "Subject: lf\n\nline\nlast";
	in.body_len = strlen(in.body);
	out = build(&in);
	assert_non_null(strstr(out, "message/rfc822\r\n\r\nSubject: lf\r\n\r\nline\r\nlast\r\n"));
	free(out);

	/* a line over 998 octets cannot travel as message/rfc822: the header block goes */
	memset(body, 'a', 3000);
	memcpy(body, "Subject: long\r\n\r\n", 17);
	in.body = body;
	in.body_len = 3000;
	out = build(&in);
	assert_null(strstr(out, "message/rfc822"));
	assert_non_null(strstr(out, "text/rfc822-headers\r\n\r\nSubject: long\r\n\r\n--"));
	free(out);
	free(body);
}

static void test_original_1mb(void **state)
{
	size_t n = 1 << 20, len;
	char *body = malloc(n), *out, *at;
	struct dsn_rcpt r = rcpt_511();
	struct dsn_input in = input(DSN_FAILURE, &r, 1);
	bool eight;

	memcpy(body, "Subject: big\r\n\r\n", 16);
	for (size_t i = 16; i < n; i += 64) { /* 64-byte lines, the last one 48 */
		size_t k = n - i < 64 ? n - i : 64;

		memset(body + i, 'a' + (char)(i / 64 % 26), k - 2);
		memcpy(body + i + k - 2, "\r\n", 2);
	}
	in.body = body;
	in.body_len = n;
	out = build_t(deft, &in, &len, &eight);
	assert_false(eight);
	assert_true(len > n && len < n + 8192);
	at = strstr(out, "message/rfc822\r\n\r\n");
	assert_non_null(at);
	at += strlen("message/rfc822\r\n\r\n");
	assert_memory_equal(at, body, n);
	free(out);
	free(body);
}

/* ---- recipients, ORCPT, ENVID ---- */

static void test_two_recipients_orcpt_envid(void **state)
{
	struct dsn_rcpt r[2] = {rcpt_511(),
				{.addr = "carol@example.com",
				 .orcpt = "rfc822; Carol@Example.COM",
				 .code = 552,
				 .enh = {5, 2, 2},
				 .remote_mta = "mx.example.com",
				 .diag = "552 5.2.2 Mailbox full",
				 .diag_remote = true}};
	struct dsn_input in = input(DSN_FAILURE, r, 2);
	char *out;

	in.envid = "env-42";
	out = build(&in);
	assert_int_equal(count(out, "Final-Recipient: "), 2);
	assert_int_equal(count(out, "Action: failed\r\n"), 2);
	assert_non_null(strstr(out, "Original-Envelope-Id: env-42\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nOriginal-Recipient: rfc822; Carol@Example.COM\r\n"
				    "Final-Recipient: rfc822; carol@example.com\r\n"
				    "Action: failed\r\nStatus: 5.2.2\r\n"));
	assert_non_null(strstr(out, "<bob@example.net>: host mx1.example.net said: 550 5.1.1"));
	assert_non_null(strstr(out, "\r\n<carol@example.com>: host mx.example.com said: 552 5.2.2 "
				    "Mailbox full\r\n"));
	assert_int_equal(count(out, "Original-Recipient"), 1);
	free(out);
}

static void test_utf8_addresses(void **state)
{
	struct dsn_rcpt r = {.addr = "j\xc3\xb6rg+x@b\xc3\xbc"
				     "cher.example",
			     .orcpt = "no-type-here",
			     .diag = "local"};
	struct dsn_input in = input(DSN_FAILURE, &r, 1);
	char *out;

	out = build(&in);
	assert_non_null(
	    strstr(out, "Final-Recipient: utf-8; j\\x{F6}rg\\x{2B}x@b\\x{FC}cher.example\r\n"));
	assert_non_null(strstr(out, "Original-Recipient: rfc822; no-type-here\r\n"));
	assert_non_null(strstr(out, "Diagnostic-Code: X-riptide; local\r\n"));
	free(out);
}

/* ---- hostile input ---- */

static void test_hostile_diag(void **state)
{
	struct dsn_rcpt r = {.addr = "dave@example.net\r\nBcc: x@evil.example",
			     .code = 550,
			     .remote_mta = "mx.example.net\r\nX-Evil: 1",
			     .diag =
				 "no\r\nX-Injected: yes\r\n\r\n--=_rt_0_f0\r\n.\r\n\x01\x7f end",
			     .diag_remote = true};
	struct dsn_input in = input(DSN_FAILURE, &r, 1);
	char *out;

	in.envid = "e1\r\nX-Env: 1";
	in.sender = "alice@example.org\r\nCc: victim@example.com";
	out = build(&in);
	assert_null(strstr(out, "\nX-Injected"));
	assert_null(strstr(out, "\nX-Evil"));
	assert_null(strstr(out, "\nX-Env"));
	assert_null(strstr(out, "\nCc:"));
	assert_null(strstr(out, "\nBcc:"));
	assert_null(strstr(out, "\n--=_rt_0_f0"));
	assert_non_null(strstr(out, "Diagnostic-Code: smtp; 550 no X-Injected: yes --=_rt_0_f0 . "
				    "end\r\n"));
	assert_non_null(strstr(out, "Remote-MTA: dns; mx.example.net\r\n"));
	assert_non_null(strstr(out, "Original-Envelope-Id: e1X-Env:1\r\n"));
	free(out);
}

static void test_long_diag_folded(void **state)
{
	char *diag = malloc(6001), *out, *at;
	struct dsn_rcpt r = rcpt_511();
	struct dsn_input in = input(DSN_FAILURE, &r, 1);

	for (size_t i = 0; i < 6000; i++)
		diag[i] = i % 300 == 299 ? ' ' : 'x';
	diag[6000] = '\0';
	r.diag = diag;
	out = build(&in); /* fuzz_dsn_check: every line <= 998 */
	/* folded at the spaces: a 299-byte word per line */
	at = strstr(out, "Diagnostic-Code: smtp; 550\r\n xxx");
	assert_non_null(at);
	assert_non_null(strstr(at, "...\r\n"));
	/* a word longer than a line: hard-broken */
	memset(diag, 'y', 6000);
	out = (free(out), build(&in));
	assert_non_null(strstr(out, "\r\n yyyy"));
	free(out);
	free(diag);
}

static void test_boundary_collision(void **state)
{
	struct dsn_rcpt r = rcpt_511();
	struct dsn_input in = input(DSN_FAILURE, &r, 1);
	char *out, *body, first[128], next[128], got[128];
	unsigned long long seq;
	const char *b;

	out = build(&in);
	fuzz_dsn_boundary(out, strlen(out), first);
	free(out);
	b = strrchr(first, '_');
	assert_int_equal(sscanf(b + 1, "f%llx", &seq), 1);
	/* the next notice's first candidate is in the original, at a line start */
	snprintf(next, sizeof(next), "%.*s_f%llx", (int)(b - first), first, seq + 1);
	assert_true(asprintf(&body, "Subject: x\r\n\r\n--%s\r\n%s\r\n", next, next) > 0);
	in.body = body;
	in.body_len = strlen(body);
	out = build(&in); /* fuzz_dsn_check: exactly one delimiter per part */
	fuzz_dsn_boundary(out, strlen(out), got);
	assert_string_not_equal(got, next);
	assert_null(strstr(body, got));
	assert_non_null(strstr(out, "\r\n--" /* the body is still attached */));
	assert_non_null(strstr(out, next));
	free(out);
	free(body);
}

/* ---- status ---- */

static const char *status_of(enum dsn_kind k, int code, int e0, int e1, int e2, char *buf)
{
	struct dsn_rcpt r = {.addr = "x@example.net", .code = code, .enh = {e0, e1, e2}};
	struct dsn_input in = input(k, &r, 1);
	char *out = build(&in), *at = strstr(out, "\r\nStatus: ");

	assert_non_null(at);
	sscanf(at + 10, "%15s", buf);
	free(out);
	return buf;
}

static void test_status_derived(void **state)
{
	char b[16];

	assert_string_equal(status_of(DSN_FAILURE, 0, 0, 0, 0, b), "5.0.0");
	assert_string_equal(status_of(DSN_FAILURE, 550, 0, 0, 0, b), "5.0.0");
	assert_string_equal(status_of(DSN_FAILURE, 451, 0, 0, 0, b), "4.0.0");
	assert_string_equal(status_of(DSN_FAILURE, 451, 4, 4, 7, b), "4.4.7");
	assert_string_equal(status_of(DSN_FAILURE, 550, 5, 7, 26, b), "5.7.26");
	assert_string_equal(status_of(DSN_FAILURE, 550, 2, 0, 0, b), "5.0.0"); /* does not fit */
	assert_string_equal(status_of(DSN_FAILURE, 550, 5, -1, 0, b), "5.0.0");
	assert_string_equal(status_of(DSN_DELAY, 0, 0, 0, 0, b), "4.0.0");
	assert_string_equal(status_of(DSN_DELAY, 421, 4, 4, 2, b), "4.4.2");
	assert_string_equal(status_of(DSN_DELAY, 550, 5, 1, 1, b), "4.0.0");
	assert_string_equal(status_of(DSN_RELAYED, 250, 0, 0, 0, b), "2.0.0");
	assert_string_equal(status_of(DSN_RELAYED, 250, 2, 6, 0, b), "2.6.0");
}

static void test_refused_input(void **state)
{
	struct dsn_rcpt r = rcpt_511();
	struct dsn_input in = input(DSN_FAILURE, &r, 1);
	char *out = (char *)"x";
	size_t len = 1;
	bool e = true;

	in.sender = "";
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	assert_null(out);
	assert_int_equal(len, 0);
	in.sender = "<>";
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	in.sender = " \r\n";
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	in.kind = DSN_DELAY;
	in.sender = "<>";
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	in = input(DSN_FAILURE, &r, 0);
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	in = input(DSN_FAILURE, NULL, 1);
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	in = input(DSN_FAILURE, &r, 1);
	assert_int_equal(dsn_build(NULL, &in, &out, &len, &e), -EINVAL);
	in.reporting_mta = NULL;
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	in = input(DSN_FAILURE, &r, 1);
	in.body = NULL;
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	in = input((enum dsn_kind)7, &r, 1);
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	r.addr = NULL;
	in = input(DSN_FAILURE, &r, 1);
	assert_int_equal(dsn_build(deft, &in, &out, &len, &e), -EINVAL);
	assert_null(out);
	/* "<alice@example.org>" is the same sender as "alice@example.org" */
	r = rcpt_511();
	in.sender = "<alice@example.org>";
	out = build(&in);
	assert_non_null(strstr(out, "\r\nTo: <alice@example.org>\r\n"));
	free(out);
}

/* ---- templates ---- */

/* The decoded text of the quoted-printable part 1 of a notice (static buffer), checking that
 * each encoded line is at most 76 characters. */
static const char *qp_part(const char *notice)
{
	static char o[8192];
	const char *p = strstr(notice, "quoted-printable\r\n\r\n"), *end, *eol;
	size_t k = 0;

	assert_non_null(p);
	p += strlen("quoted-printable\r\n\r\n");
	end = strstr(p, "\r\n--=_rt_");
	assert_non_null(end);
	for (; p < end; p = eol + 2) {
		eol = strstr(p, "\r\n");
		assert_true(eol - p <= 76);
		for (const char *q = p; q < eol; q++) {
			unsigned v;

			if (*q != '=') {
				o[k++] = *q;
			} else if (q + 1 == eol) {
				break; /* soft break */
			} else {
				assert_int_equal(sscanf(q + 1, "%2X", &v), 1);
				o[k++] = (char)v;
				q += 2;
			}
		}
		if (!(eol > p && eol[-1] == '=')) {
			o[k++] = '\r';
			o[k++] = '\n';
		}
	}
	o[k] = '\0';
	return o;
}

struct tdir {
	char path[64];
};

static void tdir_make(struct tdir *d)
{
	strcpy(d->path, "/tmp/test_dsn.XXXXXX");
	assert_non_null(mkdtemp(d->path));
}

static void tdir_write(struct tdir *d, const char *name, const char *s, size_t n)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", d->path, name);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(s, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void tdir_remove(struct tdir *d)
{
	const char *names[] = {"failure.txt", "delay.txt", "relayed.txt"};
	char p[128];

	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", d->path, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(d->path), 0);
}

static const char tpl_all[] = "Subject: Bounce {queue_id} for {sender} \xe2\x9c\x89 {envid}\n"
			      "\n"
			      "host={hostname} queued={queued_time} delay={delay} envid={envid}\n"
			      "sender={sender} qid={queue_id} literal={{not} and }}\n"
			      "RCPTS:\n"
			      "{recipients}\n"
			      "REASONS:\n"
			      "{reasons}\n"
			      "Gr\xc3\xbc\xc3\x9f"
			      "e\n";

/* tpl_all rendered for test_templates_dir's three recipients (two with the same reason) */
static const char tpl_all_want[] =
    "host=mta.example.com queued=Tue, 14 Jan 2025 10:22:01 +0000 delay=3 hours 5 "
    "minutes envid=E1\r\n"
    "sender=alice@example.org qid=0123456789abcdef0123456789abcdef literal={not} and }}\r\n"
    "RCPTS:\r\n"
    "<bob@example.net>: host mx1.example.net said: 550 5.1.1 <bob@example.net>: User "
    "unknown\r\n"
    "<bob2@example.net>: host mx1.example.net said: 550 5.1.1 <bob@example.net>: User "
    "unknown\r\n"
    "<z@example.com>: mailbox disabled\r\n"
    "REASONS:\r\n"
    "host mx1.example.net said: 550 5.1.1 <bob@example.net>: User unknown\r\n"
    "mailbox disabled\r\n"
    "Gr\xc3\xbc\xc3\x9f"
    "e\r\n";

static void test_templates_dir(void **state)
{
	struct dsn_rcpt r[3] = {
	    rcpt_511(), rcpt_511(), {.addr = "z@example.com", .diag = "mailbox disabled"}};
	struct dsn_input in = input(DSN_FAILURE, r, 3);
	struct dsn_templates *t;
	struct tdir d;
	char err[256], *out;

	r[1].addr = "bob2@example.net";
	in.envid = "E1";
	tdir_make(&d);
	tdir_write(&d, "failure.txt", tpl_all, sizeof(tpl_all) - 1);
	tdir_write(&d, "delay.txt", S("Subject: only the subject\r\n"));
	assert_int_equal(dsn_templates_load(d.path, &t, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	out = build_t(t, &in, NULL, NULL);
	/* the subject: UTF-8, so RFC 2047 words; the text: UTF-8, so quoted-printable */
	assert_non_null(strstr(out, "\r\nSubject: =?utf-8?B?"));
	assert_string_equal(qp_part(out), tpl_all_want);
	free(out);
	/* delay.txt set only the subject: the built-in text stays; relayed.txt is missing */
	in.kind = DSN_DELAY;
	out = build_t(t, &in, NULL, NULL);
	assert_non_null(strstr(out, "\r\nSubject: only the subject\r\n"));
	assert_non_null(strstr(out, "Delivery will be retried"));
	free(out);
	in.kind = DSN_RELAYED;
	out = build_t(t, &in, NULL, NULL);
	assert_non_null(
	    strstr(out, "\r\nSubject: Relayed Mail (delivery status notification)\r\n"));
	free(out);
	dsn_templates_free(t);
	tdir_remove(&d);
}

static void test_templates_subject_decodes(void **state)
{
	struct dsn_rcpt r = rcpt_511();
	struct dsn_input in = input(DSN_FAILURE, &r, 1);
	struct dsn_templates *t;
	struct tdir d;
	char err[256], *out, *at;

	tdir_make(&d);
	tdir_write(&d, "failure.txt", S("\xef\xbb\xbfSubject: \xc3\xa9\n\nx\n")); /* BOM */
	assert_int_equal(dsn_templates_load(d.path, &t, err, sizeof(err)), 0);
	out = build_t(t, &in, NULL, NULL);
	at = strstr(out, "\r\nSubject: ");
	assert_non_null(at);
	assert_memory_equal(at, "\r\nSubject: =?utf-8?B?w6k=?=\r\n", 29);
	assert_non_null(strstr(out, "7bit\r\n\r\nx\r\n\r\n--"));
	free(out);
	dsn_templates_free(t);
	tdir_remove(&d);
}

/* A broken template in file name must be refused with "<dir>/<name>:<line>: " + what. */
static void expect_refused(const char *name, const char *s, size_t n, unsigned line,
			   const char *what)
{
	struct dsn_templates *t = (struct dsn_templates *)1;
	struct tdir d;
	char err[512], want[256];

	tdir_make(&d);
	tdir_write(&d, name, s, n);
	assert_int_equal(dsn_templates_load(d.path, &t, err, sizeof(err)), -EINVAL);
	assert_null(t);
	snprintf(want, sizeof(want), "%s/%s:%u: ", d.path, name, line);
	if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, what))
		fail_msg("err '%s', want '%s...%s'", err, want, what);
	tdir_remove(&d);
	LLVMFuzzerTestOneInput((const uint8_t *)s, n);
}

static void test_templates_refused(void **state)
{
	char *big = malloc(DSN_TPL_MAX + 2), *lng = malloc(1200);

	expect_refused("failure.txt", S("ok\n{nope}\n"), 2, "unknown placeholder {nope}");
	expect_refused("delay.txt", S("a\nb\nc { d\n"), 3, "unclosed '{'");
	expect_refused("relayed.txt", S("x {sender\n"), 1, "unclosed '{'");
	expect_refused("failure.txt", S("ok\nbad \xff byte\n"), 2, "invalid UTF-8");
	expect_refused("failure.txt", S("ok\nover\xc0\xaflong\n"), 2, "invalid UTF-8");
	expect_refused("failure.txt", S("a\nb\nnul \0 here\n"), 3, "NUL byte");
	expect_refused("failure.txt", S("a\rb\n"), 1, "CR not followed by LF");
	expect_refused("failure.txt", S("bell \a\n"), 1, "control character");
	expect_refused("failure.txt", S("From: me\n\ntext\n"), 1, "only Subject:");
	expect_refused("failure.txt", S("Subject: a\nSubject: b\n\nx\n"), 2, "twice");
	expect_refused("failure.txt", S("Subject: {recipients}\n\nx\n"), 1, "{recipients}");
	expect_refused("delay.txt", S("Subject: x {reasons}\n\nx\n"), 1, "{reasons}");
	memset(lng, 'a', 1200);
	memcpy(lng, "one\ntwo\n", 8);
	lng[8 + 999] = '\n';
	expect_refused("failure.txt", lng, 8 + 1000, 3, "longer than 998");
	lng[8 + 998] = '\n'; /* exactly 998: fine */
	{
		struct dsn_templates *t;
		char err[128];
		struct tdir d;

		tdir_make(&d);
		tdir_write(&d, "failure.txt", lng, 8 + 999);
		assert_int_equal(dsn_templates_load(d.path, &t, err, sizeof(err)), 0);
		dsn_templates_free(t);
		tdir_remove(&d);
	}
	memset(big, 'b', DSN_TPL_MAX + 2);
	for (size_t i = 99; i < DSN_TPL_MAX + 2; i += 100)
		big[i] = '\n';
	expect_refused("relayed.txt", big, DSN_TPL_MAX + 2, 656, "larger than 65536");
	free(big);
	free(lng);
}

static void test_templates_io_errors(void **state)
{
	struct dsn_templates *t = NULL;
	struct tdir d;
	char err[256], p[128];

	assert_int_equal(dsn_templates_load("/nonexistent/dsn-templates", &t, err, sizeof(err)),
			 -ENOENT);
	assert_null(t);
	assert_non_null(strstr(err, "/nonexistent/dsn-templates: "));
	tdir_make(&d);
	snprintf(p, sizeof(p), "%s/failure.txt", d.path);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(dsn_templates_load(d.path, &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "failure.txt: not a regular file"));
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(dsn_templates_load("", &t, err, sizeof(err)), 0);
	dsn_templates_free(t);
	tdir_remove(&d);
}

static int setup(void **state)
{
	char err[256];

	return dsn_templates_load(NULL, &deft, err, sizeof(err));
}

static int teardown(void **state)
{
	dsn_templates_free(deft);
	return 0;
}

/* Run every test above (one group; the built-in templates are loaded once). */
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failure),
	    cmocka_unit_test(test_delay),
	    cmocka_unit_test(test_relayed),
	    cmocka_unit_test(test_original_modes),
	    cmocka_unit_test(test_original_8bit),
	    cmocka_unit_test(test_original_repaired),
	    cmocka_unit_test(test_original_1mb),
	    cmocka_unit_test(test_two_recipients_orcpt_envid),
	    cmocka_unit_test(test_utf8_addresses),
	    cmocka_unit_test(test_hostile_diag),
	    cmocka_unit_test(test_long_diag_folded),
	    cmocka_unit_test(test_boundary_collision),
	    cmocka_unit_test(test_status_derived),
	    cmocka_unit_test(test_refused_input),
	    cmocka_unit_test(test_templates_dir),
	    cmocka_unit_test(test_templates_subject_decodes),
	    cmocka_unit_test(test_templates_refused),
	    cmocka_unit_test(test_templates_io_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
