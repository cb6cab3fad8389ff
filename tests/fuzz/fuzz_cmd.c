/* fuzz_cmd — libFuzzer harness for the SMTP command parser: smtp_cmd_parse and smtp_param_next
 * (engine/smtp/smtp.h). The input is one command line, CRLF already stripped, any bytes.
 *
 * Why invariants and not only crashes: what this parser accepts is what riptide queues and
 * later writes on another server's wire. So for any line:
 *  - the result is 0, -EINVAL or -EBADMSG and every pointer it returns lies inside the line;
 *  - HELO/EHLO accepted: a non-empty argument without blanks;
 *  - MAIL/RCPT accepted: the address holds no control byte (0..31, 127); a RCPT address is
 *    non-empty and has an '@' unless it is <postmaster>; "MAIL FROM:<addr>" / "RCPT TO:<addr>"
 *    (plus " params" when there are any) parses again to the same verb, address and parameters;
 *  - smtp_param_next, over the parameters and over the raw line, terminates, moves forward on
 *    every parameter, returns parameters inside its input (a key of letters, digits and '-' not
 *    first; a value of 33..126 or 8-bit bytes other than '='), and leaves its cursor alone on
 *    -EINVAL.
 */
#include "tests/fuzz/fuzz.h"
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool inside(const char *p, size_t n, const char *base, size_t len)
{
	return n == 0 || (p >= base && p + n <= base + len);
}

static bool key_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

static bool value_byte(unsigned char c)
{
	return (c >= 33 && c <= 126 && c != '=') || c >= 128;
}

/* One parameter returned by smtp_param_next, inside base[0..blen). */
static void check_param(const struct smtp_param *prm, const char *base, size_t blen)
{
	FUZZ_CHECK(prm->key_len > 0 && inside(prm->key, prm->key_len, base, blen),
		   "key outside the input");
	FUZZ_CHECK(inside(prm->value, prm->value_len, base, blen), "value outside the input");
	FUZZ_CHECK(prm->key[0] != '-', "key starts with '-'");
	for (size_t i = 0; i < prm->key_len; i++)
		FUZZ_CHECK(key_byte((unsigned char)prm->key[i]), "key byte %02x",
			   (unsigned char)prm->key[i]);
	for (size_t i = 0; i < prm->value_len; i++)
		FUZZ_CHECK(value_byte((unsigned char)prm->value[i]), "value byte %02x",
			   (unsigned char)prm->value[i]);
}

/* Walk every parameter of p[0..len) (base[0..blen) is the buffer they must lie in). */
static void check_params(const char *p, size_t len, const char *base, size_t blen)
{
	struct smtp_param prm;
	size_t before;
	int r;

	for (;;) {
		before = len;
		r = smtp_param_next(&p, &len, &prm);
		if (r != 1)
			break;
		check_param(&prm, base, blen);
		FUZZ_CHECK(len < before && inside(p, len, base, blen),
			   "the cursor did not move forward inside the input");
		FUZZ_CHECK(p >= (prm.value_len ? prm.value + prm.value_len : prm.key + prm.key_len),
			   "the cursor is not past the parameter");
	}
	FUZZ_CHECK(r == 0 || r == -EINVAL, "smtp_param_next returned %d", r);
	if (r == 0)
		FUZZ_CHECK(len == 0, "0 (no parameter left) with %zu bytes left", len);
	if (r == -EINVAL) {
		FUZZ_CHECK(len == before, "-EINVAL moved the cursor");
		FUZZ_CHECK(smtp_param_next(&p, &len, &prm) == -EINVAL && len == before,
			   "-EINVAL is not repeatable");
	}
}

/* "MAIL FROM:<addr>[ params]" or "RCPT TO:<addr>[ params]" must parse back to the same. */
static void check_reserialised(const struct smtp_cmd *c)
{
	bool rcpt = c->verb == SMTP_VERB_RCPT;
	const char *pre = rcpt ? "RCPT TO:<" : "MAIL FROM:<";
	size_t pl = strlen(pre), n = pl + c->addr_len + 1 + (c->params_len ? 1 + c->params_len : 0);
	char *line = malloc(n);
	struct smtp_cmd again;
	int r;

	FUZZ_CHECK(line != NULL, "out of memory");
	memcpy(line, pre, pl);
	memcpy(line + pl, c->addr, c->addr_len);
	line[pl + c->addr_len] = '>';
	if (c->params_len) {
		line[pl + c->addr_len + 1] = ' ';
		memcpy(line + pl + c->addr_len + 2, c->params, c->params_len);
	}
	r = smtp_cmd_parse(line, n, &again);
	if (r != 0 || again.verb != c->verb || again.addr_len != c->addr_len ||
	    memcmp(again.addr, c->addr, c->addr_len) != 0 || again.params_len != c->params_len ||
	    memcmp(again.params, c->params, c->params_len) != 0)
		fuzz_hex("re-serialised line", line, n);
	FUZZ_CHECK(r == 0, "re-serialised command is refused (%d)", r);
	FUZZ_CHECK(again.verb == c->verb, "re-serialised command has another verb");
	FUZZ_CHECK(again.addr_len == c->addr_len && !memcmp(again.addr, c->addr, c->addr_len),
		   "re-serialised address differs");
	FUZZ_CHECK(again.params_len == c->params_len &&
		       !memcmp(again.params, c->params, c->params_len),
		   "re-serialised parameters differ");
	free(line);
}

/* Checks on an accepted MAIL/RCPT. */
static void check_path(const struct smtp_cmd *c, const char *line, size_t len)
{
	FUZZ_CHECK(inside(c->addr, c->addr_len, line, len), "address outside the line");
	FUZZ_CHECK(inside(c->params, c->params_len, line, len), "parameters outside the line");
	for (size_t i = 0; i < c->addr_len; i++) {
		unsigned char b = (unsigned char)c->addr[i];
		if (b < 32 || b == 127)
			fuzz_hex("address", c->addr, c->addr_len);
		FUZZ_CHECK(b >= 32 && b != 127, "control byte %02x at %zu in an accepted address",
			   b, i);
	}
	if (c->verb == SMTP_VERB_RCPT) {
		bool pm = c->addr_len == 10 && strncasecmp(c->addr, "postmaster", 10) == 0;
		FUZZ_CHECK(pm || memchr(c->addr, '@', c->addr_len) != NULL,
			   "RCPT address without '@'");
	}
	check_reserialised(c);
	check_params(c->params, c->params_len, line, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_cmd c;
	int r = smtp_cmd_parse(line, size, &c);

	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EBADMSG, "smtp_cmd_parse returned %d", r);
	FUZZ_CHECK(inside(c.arg, c.arg_len, line, size), "argument outside the line");
	if (r == 0 && (c.verb == SMTP_VERB_HELO || c.verb == SMTP_VERB_EHLO)) {
		FUZZ_CHECK(c.arg_len > 0, "HELO/EHLO accepted without an argument");
		FUZZ_CHECK(!memchr(c.arg, ' ', c.arg_len) && !memchr(c.arg, '\t', c.arg_len),
			   "HELO/EHLO argument with a blank");
	}
	if (r == 0 && (c.verb == SMTP_VERB_MAIL || c.verb == SMTP_VERB_RCPT))
		check_path(&c, line, size);
	check_params(line, size, line, size);
	return 0;
}
