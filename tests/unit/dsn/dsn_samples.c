/* dsn_samples — writes sample notices built by engine/dsn into a directory, for
 * check_external.py to parse with software riptide did not write (Python's email package,
 * sisimai).
 *
 * Why a separate program: the external parsers are the judges of whether the notices are
 * standard; the samples cover each kind, each way of attaching the original, several
 * recipients with ORCPT and ENVID, an 8-bit original and a hostile reply text.
 *
 * Usage: dsn_samples DIR [TEMPLATE_DIR] — writes DIR/<name>.eml for every sample (and
 * DIR/custom_tpl.eml built with the templates of TEMPLATE_DIR); exit 0 when all were built.
 */
#include "engine/dsn/dsn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1736850121000ull /* Tue, 14 Jan 2025 10:22:01 +0000 */

static const char orig_ascii[] = "Return-Path: <alice@example.org>\r\n"
				 "From: Alice <alice@example.org>\r\n"
				 "To: Bob <bob@example.net>, Carol <carol@example.com>\r\n"
				 "Subject: Quarterly report\r\n"
				 "Date: Tue, 14 Jan 2025 10:20:00 +0000\r\n"
				 "Message-ID: <q4-report-1@example.org>\r\n"
				 "MIME-Version: 1.0\r\n"
				 "Content-Type: text/plain; charset=us-ascii\r\n"
				 "\r\n"
				 "Hello Bob, hello Carol,\r\n"
				 "\r\n"
				 "the report is attached in spirit.\r\n"
				 "--\r\n"
				 "Alice\r\n";

static const char orig_8bit[] = "From: Zoë <zoe@example.org>\r\n"
				"To: bob@example.net\r\n"
				"Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\r\n"
				"Message-ID: <8bit-1@example.org>\r\n"
				"MIME-Version: 1.0\r\n"
				"Content-Type: text/plain; charset=utf-8\r\n"
				"Content-Transfer-Encoding: 8bit\r\n"
				"\r\n"
				"Grüße aus Köln — ça va?\r\n";

static const struct dsn_rcpt rc_two[] = {
    {.addr = "bob@example.net",
     .orcpt = "rfc822;Bob@Example.NET",
     .code = 550,
     .enh = {5, 1, 1},
     .remote_mta = "mx1.example.net",
     .diag = "5.1.1 <bob@example.net>: Recipient address rejected: User unknown in "
	     "virtual mailbox table",
     .diag_remote = true,
     .last_attempt_ms = T0 + 60000},
    {.addr = "carol@example.com",
     .code = 552,
     .enh = {5, 2, 2},
     .remote_mta = "mx.example.com",
     .diag = "552 5.2.2 Mailbox full",
     .diag_remote = true,
     .last_attempt_ms = T0 + 61000},
};

static const struct dsn_rcpt rc_511[] = {
    {.addr = "nosuchuser@example.net",
     .code = 550,
     .enh = {5, 1, 1},
     .remote_mta = "mx1.example.net",
     .diag = "550 5.1.1 <nosuchuser@example.net>: Recipient address rejected: User unknown",
     .diag_remote = true,
     .last_attempt_ms = T0 + 5000},
};

static const struct dsn_rcpt rc_hostile[] = {
    {.addr = "dave@example.net",
     .code = 550,
     .remote_mta = "mx.example.net\r\nX-Evil: 1",
     .diag = "550 no\r\nX-Injected: yes\r\n\r\n--=_rt_0_f0\r\nContent-Type: text/html\r\n\r\n<b>",
     .diag_remote = true,
     .last_attempt_ms = T0 + 1000},
};

static const struct dsn_rcpt rc_delay[] = {
    {.addr = "erin@example.net",
     .code = 451,
     .enh = {4, 7, 1},
     .remote_mta = "mx.example.net",
     .diag = "451 4.7.1 Greylisted, please try again later",
     .diag_remote = true,
     .last_attempt_ms = T0 + 3600000},
    {.addr = "frank@example.net", .diag = "connection timed out", .last_attempt_ms = T0 + 3600000},
};

static const struct dsn_rcpt rc_relayed[] = {
    {.addr = "gina@example.net",
     .orcpt = "rfc822;gina@example.net",
     .code = 250,
     .remote_mta = "legacy.example.net",
     .diag = "250 2.0.0 Ok: queued as 4F2A1",
     .diag_remote = true,
     .last_attempt_ms = T0 + 2000},
};

struct sample {
	const char *name;
	enum dsn_kind kind;
	enum dsn_original orig;
	const struct dsn_rcpt *r;
	unsigned n;
	const char *body;
};

#define N(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

static const struct sample samples[] = {
    {"failure_full", DSN_FAILURE, DSN_ORIG_FULL, rc_two, N(rc_two), orig_ascii},
    {"failure_headers", DSN_FAILURE, DSN_ORIG_HEADERS, rc_two, N(rc_two), orig_ascii},
    {"failure_none", DSN_FAILURE, DSN_ORIG_NONE, rc_two, N(rc_two), orig_ascii},
    {"failure_511", DSN_FAILURE, DSN_ORIG_FULL, rc_511, N(rc_511), orig_ascii},
    {"failure_8bit", DSN_FAILURE, DSN_ORIG_FULL, rc_511, N(rc_511), orig_8bit},
    {"failure_hostile", DSN_FAILURE, DSN_ORIG_HEADERS, rc_hostile, N(rc_hostile), orig_ascii},
    {"delay_headers", DSN_DELAY, DSN_ORIG_HEADERS, rc_delay, N(rc_delay), orig_ascii},
    {"relayed_none", DSN_RELAYED, DSN_ORIG_NONE, rc_relayed, N(rc_relayed), orig_ascii},
    /* last: written only with a template directory */
    {"custom_tpl", DSN_FAILURE, DSN_ORIG_FULL, rc_two, N(rc_two), orig_ascii},
};

/* Build sample s with templates t and write it to dir/<name>.eml; 0 or 1. */
static int write_sample(const struct dsn_templates *t, const char *dir, const struct sample *s)
{
	struct dsn_input in = {
	    .kind = s->kind,
	    .reporting_mta = "mta1.riptide.example",
	    .sender = "alice@example.org",
	    .queue_id = "0123456789abcdef0123456789abcdef",
	    .envid = s->r == rc_two ? "env-2025-0001" : NULL,
	    .arrival_ms = T0,
	    .now_ms = T0 + 2 * 86400000ull + 3 * 3600000ull,
	    .expires_ms = s->kind == DSN_DELAY ? T0 + 5 * 86400000ull : 0,
	    .rcpts = s->r,
	    .nrcpt = s->n,
	    .original = s->orig,
	    .body = s->body,
	    .body_len = strlen(s->body),
	};
	char path[4096], *out;
	size_t len;
	bool eight;
	FILE *f;
	int ret = dsn_build(t, &in, &out, &len, &eight);

	if (ret) {
		fprintf(stderr, "%s: dsn_build: %s\n", s->name, strerror(-ret));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s.eml", dir, s->name);
	f = fopen(path, "wb");
	if (!f || fwrite(out, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		free(out);
		return 1;
	}
	free(out);
	return 0;
}

/* Load the templates of tpl (NULL: built-in) and write the samples from first to end. */
static int write_set(const char *dir, const char *tpl, size_t first, size_t end)
{
	struct dsn_templates *t;
	char err[512];
	int bad = 0;

	if (dsn_templates_load(tpl, &t, err, sizeof(err)) != 0) {
		fprintf(stderr, "templates: %s\n", err);
		return 1;
	}
	for (size_t i = first; i < end; i++)
		bad |= write_sample(t, dir, &samples[i]);
	dsn_templates_free(t);
	return bad;
}

/* Write every sample into argv[1] (the last one, "custom_tpl", with the templates of argv[2]
 * when given); 0 when all were built and written. */
int main(int argc, char **argv)
{
	size_t n = sizeof(samples) / sizeof(samples[0]);

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: dsn_samples DIR [TEMPLATE_DIR]\n");
		return 2;
	}
	if (write_set(argv[1], NULL, 0, n - 1) != 0)
		return 1;
	return argc == 3 ? write_set(argv[1], argv[2], n - 1, n) : 0;
}
