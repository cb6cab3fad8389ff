/* fuzz_config — libFuzzer harness for the configuration round trip: config_load_buf,
 * config_print (engine/config/config.h). The input is an INI file, any bytes.
 *
 * Why: --print-config is how operators make a configuration file, and SIGHUP compares printed
 * configurations to name what changed; a value that prints in a form inih reads differently
 * silently changes the configuration. Invariants:
 *  - a file is accepted (0) or rejected (-EINVAL), and a rejected file leaves the caller's
 *    config untouched and has an error message "fuzz.conf:LINE: ..." (only a hostname taken
 *    from gethostname() may be refused without a line, and that does not depend on the input);
 *  - an accepted file c: print(c) loads, and print(load(print(c))) == print(c);
 *  - indentation never changes the meaning: the file with every line's leading blanks and
 *    \v, \f, \r removed is accepted too and prints the same (this is what catches inih's
 *    continuation lines, which round-trip fine once misread).
 * The repeated sections ([route X], [shaping X], [backoff X], [pool X], [rewrite]) are part of
 * the printed text, so the same invariants cover them; every loaded config is config_free'd.
 */
#include "tests/fuzz/fuzz.h"
#include "engine/config/config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define NAME "fuzz.conf"

static char *print(const struct config *c, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	FUZZ_CHECK(f != NULL, "open_memstream failed");
	config_print(c, f);
	FUZZ_CHECK(fclose(f) == 0, "config_print's stream failed");
	return buf;
}

/* err must start with NAME ":" digits ":" (or be the gethostname() exception). */
static void check_error_names_line(const char *err)
{
	const char *p = err + strlen(NAME) + 1;

	if (strstr(err, "from gethostname()") || strstr(err, "(gethostname() failed"))
		return;
	FUZZ_CHECK(strncmp(err, NAME ":", strlen(NAME) + 1) == 0 && *p >= '1' && *p <= '9',
		   "error without file:line: '%s'", err);
	while (*p >= '0' && *p <= '9')
		p++;
	FUZZ_CHECK(*p == ':', "error without file:line: '%s'", err);
}

static void check_round_trip(const struct config *c)
{
	struct config c2;
	char err[512], *p1, *p2;
	size_t n1, n2;
	int r;

	p1 = print(c, &n1);
	r = config_load_buf(&c2, "printed", p1, n1, err, sizeof(err));
	if (r != 0)
		fprintf(stderr, "printed configuration:\n%s", p1);
	FUZZ_CHECK(r == 0, "the printed configuration does not load: %s", err);
	p2 = print(&c2, &n2);
	if (n1 != n2 || memcmp(p1, p2, n1) != 0)
		fprintf(stderr, "print:\n%s\nprint(load(print)):\n%s", p1, p2);
	FUZZ_CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0, "print(load(print(c))) != print(c)");
	free(p1);
	free(p2);
	config_free(&c2);
}

/* The text with each line's leading " \t\v\f\r" removed must load to the same print p. */
static void check_unindented(const uint8_t *data, size_t size, const char *p, size_t pn)
{
	char *t = malloc(size + 1), err[512], *p2;
	size_t n = 0, n2;
	bool bol = true;
	struct config c;
	int r;

	FUZZ_CHECK(t != NULL, "out of memory");
	for (size_t i = 0; i < size; i++) {
		if (bol && data[i] && strchr(" \t\v\f\r", data[i]))
			continue;
		t[n++] = (char)data[i];
		bol = data[i] == '\n';
	}
	r = config_load_buf(&c, NAME, t, n, err, sizeof(err));
	FUZZ_CHECK(r == 0, "the unindented file is refused: %s", err);
	p2 = print(&c, &n2);
	if (n2 != pn || memcmp(p, p2, pn) != 0)
		fprintf(stderr, "print:\n%s\nunindented:\n%s", p, p2);
	FUZZ_CHECK(n2 == pn && memcmp(p, p2, pn) == 0, "indentation changed the configuration");
	free(p2);
	free(t);
	config_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config c, marker;
	char err[512], *p;
	size_t pn;
	int r;

	memset(&marker, 0xa5, sizeof(marker));
	c = marker;
	r = config_load_buf(&c, NAME, (const char *)data, size, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL, "config_load_buf returned %d (%s)", r, err);
	if (r < 0) {
		FUZZ_CHECK(memcmp(&c, &marker, sizeof(c)) == 0,
			   "a rejected file changed the config");
		check_error_names_line(err);
		return 0;
	}
	check_round_trip(&c);
	p = print(&c, &pn);
	check_unindented(data, size, p, pn);
	free(p);
	config_free(&c); /* the repeated sections' heap */
	return 0;
}
