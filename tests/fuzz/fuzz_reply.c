/* fuzz_reply — libFuzzer harness for the SMTP reply parser: smtp_reply_parse, and
 * smtp_ehlo_parse on every complete reply (engine/smtp/smtp.h). The input is what a hostile or
 * broken server sends: any bytes, several pipelined replies, cut anywhere.
 *
 * Why these invariants: the client decides delivery outcomes from code and enhanced code, and
 * calls the parser again on the same buffer after every read, so:
 *  - a parsed reply consumed at most the input, ends with LF, has a code 200..599, at least
 *    one line, its text inside the reply, and an enhanced class that is 0 or the code's class;
 *  - consuming replies one after another always makes progress and ends in 0 or -EBADMSG;
 *  - a prefix never yields more than the whole: if a prefix parses a reply, the whole input
 *    parses the same reply; if the whole needs more bytes, so does every prefix; a reply of r
 *    bytes is "need more" on every shorter prefix; a prefix is garbage only if the whole is;
 *  - smtp_ehlo_parse reads only the reply (it gets an exact-size copy, so ASan sees an
 *    overread) and sets only known extension bits, with size_limit 0 unless SIZE is set.
 */
#include "tests/fuzz/fuzz.h"
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <string.h>

#define EXT_KNOWN                                                                                  \
	(SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_ENHANCEDSTATUSCODES |  \
	 SMTP_EXT_STARTTLS | SMTP_EXT_AUTH | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN | SMTP_EXT_CHUNKING)

/* One parsed reply of r bytes at buf[0..len). */
static void check_reply(const char *buf, size_t len, ssize_t r, const struct smtp_reply *rep)
{
	FUZZ_CHECK((size_t)r <= len, "consumed %zd of %zu bytes", r, len);
	FUZZ_CHECK(buf[r - 1] == '\n', "a reply that does not end with LF");
	FUZZ_CHECK(rep->code >= 200 && rep->code <= 599, "code %d", rep->code);
	FUZZ_CHECK(rep->first == buf && rep->total_len == (size_t)r, "first/total_len wrong");
	FUZZ_CHECK(rep->lines >= 1 && rep->lines <= (size_t)r / 4, "%u lines in %zd bytes",
		   rep->lines, r);
	FUZZ_CHECK(rep->text >= buf && rep->text + rep->text_len <= buf + r,
		   "text outside the reply");
	FUZZ_CHECK(rep->enh_class == 0 || rep->enh_class == rep->code / 100,
		   "enhanced class %d for code %d", rep->enh_class, rep->code);
	FUZZ_CHECK(rep->enh_subject >= 0 && rep->enh_subject <= 999 && rep->enh_detail >= 0 &&
		       rep->enh_detail <= 999,
		   "enhanced code %d.%d.%d", rep->enh_class, rep->enh_subject, rep->enh_detail);
}

/* smtp_ehlo_parse over an exact-size copy of the reply. */
static void check_ehlo(const char *buf, ssize_t r, const struct smtp_reply *rep)
{
	struct smtp_reply copy = *rep;
	struct smtp_ehlo e;
	char *own = malloc((size_t)r);

	FUZZ_CHECK(own != NULL, "out of memory");
	memcpy(own, buf, (size_t)r);
	copy.first = own;
	copy.text = own + (rep->text - buf);
	FUZZ_CHECK(smtp_ehlo_parse(&copy, &e) == 0, "smtp_ehlo_parse failed");
	FUZZ_CHECK((e.ext & ~(uint32_t)EXT_KNOWN) == 0, "unknown extension bits %x", e.ext);
	FUZZ_CHECK(e.size_limit == 0 || (e.ext & SMTP_EXT_SIZE), "size_limit without SIZE");
	free(own);
}

/* The prefix of n bytes against the whole input's result full (and reply fr). */
static void check_prefix(const char *buf, size_t n, ssize_t full, const struct smtp_reply *fr)
{
	struct smtp_reply pr;
	ssize_t p = smtp_reply_parse(buf, n, &pr);

	FUZZ_CHECK(p >= 0 || p == -EBADMSG, "prefix: returned %zd", p);
	if (p > 0)
		FUZZ_CHECK(full == p && pr.code == fr->code && pr.lines == fr->lines &&
			       pr.text == fr->text && pr.text_len == fr->text_len,
			   "prefix of %zu parses %zd bytes, the whole %zd", n, p, full);
	if (full == 0)
		FUZZ_CHECK(p == 0, "the whole needs more, its prefix of %zu gives %zd", n, p);
	if (full > 0 && n < (size_t)full)
		FUZZ_CHECK(p == 0, "reply of %zd bytes, prefix of %zu gives %zd", full, n, p);
	if (full > 0 && n >= (size_t)full)
		FUZZ_CHECK(p == full, "reply of %zd bytes, prefix of %zu gives %zd", full, n, p);
	if (p == -EBADMSG)
		FUZZ_CHECK(full == -EBADMSG, "prefix of %zu is garbage, the whole gives %zd", n,
			   full);
}

/* Prefixes: all of them for short inputs, else a spread plus the edges of the first reply. */
static void check_prefixes(const char *buf, size_t len, ssize_t full, const struct smtp_reply *fr)
{
	size_t step = len <= 300 ? 1 : len / 64;

	for (size_t n = 0; n < len; n += step)
		check_prefix(buf, n, full, fr);
	if (full > 0) {
		check_prefix(buf, (size_t)full - 1, full, fr);
		check_prefix(buf, (size_t)full, full, fr);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct smtp_reply rep, first = {0};
	size_t off = 0, count = 0;
	ssize_t r, full = smtp_reply_parse(buf, size, &first);

	FUZZ_CHECK(full >= 0 || full == -EBADMSG, "returned %zd", full);
	check_prefixes(buf, size, full, &first);
	while ((r = smtp_reply_parse(buf + off, size - off, &rep)) > 0) {
		check_reply(buf + off, size - off, r, &rep);
		check_ehlo(buf + off, r, &rep);
		off += (size_t)r;
		FUZZ_CHECK(++count <= size, "no progress");
	}
	FUZZ_CHECK(r == 0 || r == -EBADMSG, "returned %zd", r);
	return 0;
}
