/* fuzz_dsn_tpl — libFuzzer harness for engine/dsn: arbitrary bytes as a template file, then
 * notices of every kind built with it.
 *
 * Why: templates are operator input checked once at start-up, and the notice they feed goes to
 * strangers' mail servers, so a template (or a remote reply) must never crash the builder nor
 * produce a broken message. Each input is:
 *   - compiled as the template of all three kinds (dsn_templates_parse, the private
 *     parse-from-buffer entry); a refusal must be -EINVAL with "fuzz.txt:LINE: what" in err,
 *     LINE between 1 and the input's line count + 1, and leave the built-in templates usable;
 *   - then (accepted or not) a notice of each kind is built, with the input's bytes (up to a
 *     NUL) also used as the remote reply text, remote host, ENVID and ORCPT, and the original
 *     attached full, as headers and not at all in turn. Every notice must: end in CRLF, have
 *     only CRLF line breaks and lines <= 998 octets, a header block whose lines are the
 *     builder's own fields or continuations, and exactly one delimiter line per part plus one
 *     close delimiter for its boundary.
 * tests/unit/dsn includes this file and runs fuzz_dsn_check on every notice it builds.
 */
#include "engine/dsn/dsn_int.h"
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fields dsn_build writes at the top of a notice. */
static const char *const fuzz_dsn_fields[] = {
    "From:",	       "To:",		"Subject:",
    "Date:",	       "Message-ID:",	"MIME-Version:",
    "Auto-Submitted:", "Content-Type:", "Content-Transfer-Encoding:",
};

/* A header line dsn_build may write: one of its fields, or a continuation. */
static bool fuzz_dsn_known(const char *line, size_t n)
{
	for (size_t i = 0; i < sizeof(fuzz_dsn_fields) / sizeof(fuzz_dsn_fields[0]); i++) {
		size_t k = strlen(fuzz_dsn_fields[i]);

		if (n >= k && memcmp(line, fuzz_dsn_fields[i], k) == 0)
			return true;
	}
	return n > 0 && (line[0] == ' ' || line[0] == '\t');
}

/* The boundary parameter of the top Content-Type (as dsn_build writes it: a Subject could hold
 * "boundary=" too), into b (room 128). */
static void fuzz_dsn_boundary(const char *p, size_t n, char *b)
{
	static const char k[] = "\r\nContent-Type: multipart/report; "
				"report-type=delivery-status;\r\n\tboundary=\"";
	const char *at = memmem(p, n, k, sizeof(k) - 1), *end;

	FUZZ_CHECK(at != NULL, "no boundary parameter");
	at += sizeof(k) - 1;
	end = memchr(at, '"', (size_t)(p + n - at));
	FUZZ_CHECK(end && end - at < 100, "boundary not closed");
	memcpy(b, at, (size_t)(end - at));
	b[end - at] = '\0';
}

/* fuzz_dsn_check: the invariants of one notice p[0..n) with nparts parts (see the top). */
static void fuzz_dsn_check(const char *p, size_t n, unsigned nparts)
{
	const char *line = p, *end = p + n;
	bool header = true;
	unsigned delims = 0, closes = 0;
	char bnd[128], d[140], c[140];

	FUZZ_CHECK(n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n', "notice does not end in CRLF");
	fuzz_dsn_boundary(p, n, bnd);
	snprintf(d, sizeof(d), "--%s", bnd);
	snprintf(c, sizeof(c), "--%s--", bnd);
	while (line < end) {
		const char *cr = memchr(line, '\r', (size_t)(end - line));
		const char *lf = memchr(line, '\n', (size_t)(end - line));
		size_t len;

		FUZZ_CHECK(cr && lf == cr + 1, "bare CR or LF at offset %zu", (size_t)(line - p));
		len = (size_t)(cr - line);
		FUZZ_CHECK(len <= DSN_LINE_MAX, "line of %zu octets at offset %zu", len,
			   (size_t)(line - p));
		if (header && len == 0)
			header = false;
		else if (header)
			FUZZ_CHECK(fuzz_dsn_known(line, len), "foreign header line: %.*s",
				   (int)(len > 80 ? 80 : len), line);
		delims += len == strlen(d) && memcmp(line, d, len) == 0;
		closes += len == strlen(c) && memcmp(line, c, len) == 0;
		line = lf + 1;
	}
	FUZZ_CHECK(!header, "no end of header");
	FUZZ_CHECK(delims == nparts && closes == 1, "%u delimiters (want %u), %u close", delims,
		   nparts, closes);
}

static const char fuzz_dsn_orig[] = "From: a@example.org\r\n"
				    "To: b@example.net\r\n"
				    "Subject: hello\r\n"
				    "\r\n"
				    "body line\r\n";

/* Build a notice of kind k with the fuzzed text s as reply, host, ENVID and ORCPT. */
static void fuzz_dsn_build(const struct dsn_templates *t, enum dsn_kind k, const char *s)
{
	struct dsn_rcpt r[2] = {
	    {.addr = "b@example.net",
	     .orcpt = s,
	     .code = 550,
	     .remote_mta = s,
	     .diag = s,
	     .diag_remote = true,
	     .last_attempt_ms = 1736850122000ull},
	    {.addr = s, .enh = {k == DSN_RELAYED ? 2 : 4, 4, 7}, .diag = s},
	};
	struct dsn_input in = {
	    .kind = k,
	    .reporting_mta = "mta.example",
	    .sender = "a@example.org",
	    .queue_id = "0123456789abcdef0123456789abcdef",
	    .envid = s,
	    .arrival_ms = 1736850121000ull,
	    .now_ms = 1736950121000ull,
	    .expires_ms = 1737250121000ull,
	    .rcpts = r,
	    .nrcpt = 2,
	    .original = (enum dsn_original)((unsigned)k % 3),
	    .body = fuzz_dsn_orig,
	    .body_len = sizeof(fuzz_dsn_orig) - 1,
	};
	char *out = NULL;
	size_t len = 0;
	bool eight = true;
	int ret = dsn_build(t, &in, &out, &len, &eight);

	FUZZ_CHECK(ret == 0, "dsn_build returned %d", ret);
	FUZZ_CHECK(out[len] == '\0' && !eight, "no NUL after the notice, or 8-bit flag set");
	fuzz_dsn_check(out, len, in.original == DSN_ORIG_NONE ? 2 : 3);
	free(out);
}

/* The libFuzzer entry: data as a template file, then notices (see the top). Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn_templates *t = NULL;
	char err[256], *s = malloc(size + 1);
	unsigned lines = 1;
	int ret = 0;

	FUZZ_CHECK(s && dsn_templates_load(NULL, &t, err, sizeof(err)) == 0, "set-up");
	memcpy(s, data, size);
	s[size] = '\0';
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	for (int k = DSN_FAILURE; k <= DSN_RELAYED && !ret; k++) {
		err[0] = '\0';
		ret = dsn_templates_parse(t, (enum dsn_kind)k, "fuzz.txt", (const char *)data, size,
					  err, sizeof(err));
		if (ret) {
			unsigned at = 0;

			FUZZ_CHECK(ret == -EINVAL, "refused with %d, not -EINVAL", ret);
			FUZZ_CHECK(sscanf(err, "fuzz.txt:%u: ", &at) == 1 && at >= 1 &&
				       at <= lines + 1,
				   "err without file:line: '%s'", err);
		}
	}
	for (int k = DSN_FAILURE; k <= DSN_RELAYED; k++)
		fuzz_dsn_build(t, (enum dsn_kind)k, s);
	dsn_templates_free(t);
	free(s);
	return 0;
}
