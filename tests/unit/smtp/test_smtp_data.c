/* test_smtp_data — DATA phase: golden files for the receiver, dot-stuffing, round trips, and a
 * randomised comparison against a byte-at-a-time reference model.
 *
 * Why: the receiver decides where a message ends; getting it wrong is SMTP smuggling. Golden
 * pairs golden/NAME.in -> NAME.ref (body) [+ NAME.rest: the bytes after the terminator, which
 * must not be consumed] pin the exact behaviour; every .in is fed whole, byte by byte and in
 * random chunks with the tightest output capacity the contract allows (2 * len), then the .ref
 * is dot-stuffed, terminated and fed back to check the round trip.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/smtp/smtp.h"

static const char *golden_dir = "golden";

struct buf {
	char *p;
	size_t n;
};

/* Read path into a fresh buffer; returns false when the file does not exist. */
static bool load(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return false;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	b->n = (size_t)n;
	b->p = malloc(b->n ? b->n : 1);
	assert_non_null(b->p);
	assert_int_equal(fread(b->p, 1, b->n, f), b->n);
	fclose(f);
	return true;
}

/* Feed in[] to a fresh reader in chunks chosen by chunk(i) (0 = everything at once), with the
 * tightest allowed out_cap for each call. Returns the consumed count; body and done out. */
static size_t rx_chunked(const char *in, size_t n, unsigned seed, int mode, struct buf *body,
			 bool *done)
{
	struct smtp_data_rx rx;
	size_t off = 0;

	smtp_data_rx_init(&rx);
	body->p = malloc(2 * n + 1);
	body->n = 0;
	*done = false;
	srand(seed);
	while (!*done && off < n) {
		size_t c = mode == 0 ? n - off : mode == 1 ? 1 : 1 + (size_t)rand() % 23;
		size_t olen, used;

		if (c > n - off)
			c = n - off;
		used = smtp_data_rx_feed(&rx, in + off, c, body->p + body->n, 2 * c, &olen, done);
		assert_true(olen <= 2 * c);
		if (!*done && used != c)
			fail_msg("consumed %zu of %zu at offset %zu without done", used, c, off);
		off += used;
		body->n += olen;
	}
	return off;
}

static void check_body(const char *name, const char *what, const struct buf *got,
		       const struct buf *want)
{
	if (got->n != want->n || memcmp(got->p, want->p, got->n) != 0)
		fail_msg("%s (%s): body of %zu bytes differs from .ref (%zu bytes)", name, what,
			 got->n, want->n);
}

/* Dot-stuff ref in small chunks (stateful), add the terminator, feed it back. */
static void check_round_trip(const char *name, const struct buf *ref)
{
	struct smtp_stuff st = {.bol = true};
	const char *end = smtp_data_end(ref->p, ref->n);
	char *wire = malloc(2 * ref->n + 6);
	size_t w = 0, used;
	struct buf back;
	bool done;

	for (size_t off = 0; off < ref->n; off += 7) {
		size_t c = ref->n - off < 7 ? ref->n - off : 7;
		w += smtp_dot_stuff(&st, ref->p + off, c, wire + w);
	}
	assert_int_equal(smtp_dot_stuff_needed(ref->p, ref->n), w != ref->n);
	memcpy(wire + w, end, strlen(end));
	w += strlen(end);
	used = rx_chunked(wire, w, 7, 2, &back, &done);
	assert_true(done);
	assert_int_equal(used, w);
	check_body(name, "round trip", &back, ref);
	free(back.p);
	free(wire);
}

static void check_golden(const char *name)
{
	char path[1024];
	struct buf in, ref, rest = {NULL, 0}, body;
	static const char *modes[] = {"whole", "byte by byte", "random chunks"};

	snprintf(path, sizeof(path), "%s/%s.in", golden_dir, name);
	assert_true(load(path, &in));
	snprintf(path, sizeof(path), "%s/%s.ref", golden_dir, name);
	if (!load(path, &ref))
		fail_msg("%s: no .ref", name);
	snprintf(path, sizeof(path), "%s/%s.rest", golden_dir, name);
	load(path, &rest);
	for (int mode = 0; mode < 3; mode++) {
		for (unsigned seed = 1; seed <= (mode == 2 ? 20u : 1u); seed++) {
			bool done;
			size_t used = rx_chunked(in.p, in.n, seed, mode, &body, &done);

			if (!done || used != in.n - rest.n)
				fail_msg("%s (%s): done %d consumed %zu, want %zu", name,
					 modes[mode], done, used, in.n - rest.n);
			if (rest.n)
				assert_memory_equal(in.p + used, rest.p, rest.n);
			check_body(name, modes[mode], &body, &ref);
			free(body.p);
		}
	}
	check_round_trip(name, &ref);
	free(in.p);
	free(ref.p);
	free(rest.p);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden(void **state)
{
	DIR *d = opendir(golden_dir);
	struct dirent *de;
	char *names[256];
	size_t n = 0, smuggle = 0;

	(void)state;
	if (!d)
		fail_msg("cannot open golden dir %s", golden_dir);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l > 3 && strcmp(de->d_name + l - 3, ".in") == 0 && n < 256)
			names[n++] = strndup(de->d_name, l - 3);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		check_golden(names[i]);
		smuggle += strncmp(names[i], "smuggle_", 8) == 0;
		free(names[i]);
	}
	assert_true(n >= 15);
	assert_true(smuggle >= 5);
}

/* ---- reference model and randomised comparison ---- */

/* Byte-at-a-time statement of the receive rules, on a complete buffer. */
static size_t model_rx(const char *in, size_t n, char *out, size_t *olen, bool *done)
{
	bool bol = true;
	size_t o = 0;

	*done = false;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (bol && c == '.') {
			if (i + 2 < n && in[i + 1] == '\r' && in[i + 2] == '\n') {
				*done = true;
				*olen = o;
				return i + 3;
			}
			bol = false;
			continue;
		}
		if (c == '\r' || c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			bol = c == '\r' && i + 1 < n && in[i + 1] == '\n';
			i += bol;
			continue;
		}
		out[o++] = c;
		bol = false;
	}
	*olen = o;
	return n;
}

static void test_random_vs_model(void **state)
{
	static const char alpha[] = {'a', '.', '.', '\r', '\r', '\n', '\n', (char)0xe9, '\0'};
	char in[300], *want = malloc(2 * sizeof(in));

	(void)state;
	srand(12345);
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = (size_t)rand() % 40, wlen, wused;
		bool wdone;

		for (size_t i = 0; i < n; i++)
			in[i] = alpha[rand() % (int)sizeof(alpha)];
		memcpy(in + n, "\r\n.\r\nTAIL", 10);
		n += 10;
		wused = model_rx(in, n, want, &wlen, &wdone);
		assert_true(wdone);
		for (int mode = 0; mode < 3; mode++) {
			struct buf body;
			bool done;
			size_t used = rx_chunked(in, n, (unsigned)iter, mode, &body, &done);

			if (!done || used != wused || body.n != wlen ||
			    memcmp(body.p, want, wlen) != 0)
				fail_msg("iteration %d mode %d differs from the model", iter, mode);
			free(body.p);
		}
	}
	free(want);
}

/* Random CRLF-normalised bodies survive stuff + terminator + receive. */
static void test_random_round_trip(void **state)
{
	static const char alpha[] = {'a', '.', '.', ' ', (char)0xff};
	char body[400];

	(void)state;
	srand(777);
	for (int iter = 0; iter < 5000; iter++) {
		size_t n = 0, lines = (size_t)rand() % 8;
		struct buf ref;

		for (size_t l = 0; l < lines; l++) {
			size_t k = (size_t)rand() % 6;
			for (size_t i = 0; i < k; i++)
				body[n++] = alpha[rand() % (int)sizeof(alpha)];
			body[n++] = '\r';
			body[n++] = '\n';
		}
		ref.p = body;
		ref.n = n;
		check_round_trip("random", &ref);
	}
}

/* ---- receiver edge cases ---- */

static void test_rx_incremental(void **state)
{
	struct smtp_data_rx rx = {0};
	char out[16];
	size_t olen, total = 0;
	bool done;
	char body[32];

	(void)state;
	assert_int_equal(smtp_data_rx_feed(&rx, "abc\r\n.", 6, out, sizeof(out), &olen, &done), 6);
	assert_false(done);
	memcpy(body, out, olen);
	total = olen;
	assert_int_equal(smtp_data_rx_feed(&rx, "\r", 1, out, 2, &olen, &done), 1);
	assert_false(done);
	assert_int_equal(olen, 0);
	assert_int_equal(smtp_data_rx_feed(&rx, "", 0, out, 0, &olen, &done), 0);
	assert_false(done);
	assert_int_equal(smtp_data_rx_feed(&rx, "\nQUIT\r\n", 7, out, 14, &olen, &done), 1);
	assert_true(done);
	assert_int_equal(olen, 0);
	assert_int_equal(total, 5);
	assert_memory_equal(body, "abc\r\n", 5);
	/* after done nothing more is consumed */
	assert_int_equal(smtp_data_rx_feed(&rx, "QUIT\r\n", 6, out, 12, &olen, &done), 0);
	assert_true(done);
	assert_int_equal(olen, 0);
	smtp_data_rx_init(&rx);
	assert_int_equal(smtp_data_rx_feed(&rx, ".\r\n", 3, out, 6, &olen, &done), 3);
	assert_true(done);
	assert_int_equal(olen, 0);
}

/* ".\r" at a line start held back, then a byte that is not LF, with out_cap exactly 2. */
static void test_rx_tight_cap(void **state)
{
	struct smtp_data_rx rx;
	char out[64];
	size_t olen, n = 0;
	bool done;
	const char *steps[] = {".", "\r", "x", "\n", "\n", "\r", "y", "\r", "\n", ".", "\r", "\n"};

	(void)state;
	smtp_data_rx_init(&rx);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_int_equal(smtp_data_rx_feed(&rx, steps[i], 1, out + n, 2, &olen, &done), 1);
		n += olen;
	}
	assert_true(done);
	assert_int_equal(n, 12);
	assert_memory_equal(out, "\r\nx\r\n\r\n\r\ny\r\n", 12);
}

/* A too small out_cap never overflows: the reader stops and resumes. */
static void test_rx_small_cap(void **state)
{
	const char *in = "hello world\r\nsecond line\r\n.\r\n";
	size_t n = strlen(in), off = 0, total = 0, olen;
	struct smtp_data_rx rx;
	char out[64];
	bool done = false;

	(void)state;
	smtp_data_rx_init(&rx);
	while (!done) {
		char *o = malloc(3);
		off += smtp_data_rx_feed(&rx, in + off, n - off, o, 3, &olen, &done);
		assert_true(olen <= 3);
		memcpy(out + total, o, olen);
		total += olen;
		free(o);
	}
	assert_int_equal(off, n);
	assert_int_equal(total, n - 3);
	assert_memory_equal(out, in, n - 3);
}

/* ---- sending side ---- */

static void test_stuff(void **state)
{
	struct smtp_stuff st = {.bol = true};
	char out[64];
	size_t n;

	(void)state;
	n = smtp_dot_stuff(&st, ".a\r\n.\r\nb.c\r\n..\r\n", 16, out);
	assert_int_equal(n, 19);
	assert_memory_equal(out, "..a\r\n..\r\nb.c\r\n...\r\n", 19);
	assert_true(st.bol);
	/* state carries across calls: a chunk ending in LF, the next starting with '.' */
	st.bol = true;
	n = smtp_dot_stuff(&st, "x\r\n", 3, out);
	n += smtp_dot_stuff(&st, ".y", 2, out + n);
	assert_false(st.bol);
	n += smtp_dot_stuff(&st, ".z", 2, out + n);
	assert_int_equal(n, 8);
	assert_memory_equal(out, "x\r\n..y.z", 8);
	assert_int_equal(smtp_dot_stuff(&st, "", 0, out), 0);
	assert_false(st.bol);
	/* 8-bit passes through */
	st.bol = true;
	n = smtp_dot_stuff(&st, "\xff\x80\r\n.\xe9", 6, out);
	assert_int_equal(n, 7);
	assert_memory_equal(out, "\xff\x80\r\n..\xe9", 7);
}

static void test_stuff_needed(void **state)
{
	(void)state;
	assert_false(smtp_dot_stuff_needed("", 0));
	assert_false(smtp_dot_stuff_needed("a.b\r\nc.\r\n", 9));
	assert_true(smtp_dot_stuff_needed(".", 1));
	assert_true(smtp_dot_stuff_needed("a\r\n.b", 5));
	assert_false(smtp_dot_stuff_needed("a\r\n", 3));
	assert_false(smtp_dot_stuff_needed("a\r\nb.\r\n.", 7)); /* '.' beyond len */
}

static void test_data_end(void **state)
{
	(void)state;
	assert_string_equal(smtp_data_end("", 0), ".\r\n");
	assert_string_equal(smtp_data_end("a\r\n", 3), ".\r\n");
	assert_string_equal(smtp_data_end("\r\n", 2), ".\r\n");
	assert_string_equal(smtp_data_end("a", 1), "\r\n.\r\n");
	assert_string_equal(smtp_data_end("\n", 1), "\r\n.\r\n");
	assert_string_equal(smtp_data_end("a\r", 2), "\r\n.\r\n");
	assert_string_equal(smtp_data_end("a\n", 2), "\r\n.\r\n");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_random_vs_model),
	    cmocka_unit_test(test_random_round_trip),
	    cmocka_unit_test(test_rx_incremental),
	    cmocka_unit_test(test_rx_tight_cap),
	    cmocka_unit_test(test_rx_small_cap),
	    cmocka_unit_test(test_stuff),
	    cmocka_unit_test(test_stuff_needed),
	    cmocka_unit_test(test_data_end),
	};
	if (argc > 1)
		golden_dir = argv[1];
	return cmocka_run_group_tests_name("smtp_data", tests, NULL, NULL);
}
