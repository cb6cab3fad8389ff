/* config — one table of keys drives defaults, INI parsing (inih), validation and printing.
 *
 * Why one table: every key is a row {section, key, type, offset into struct config, min, max,
 * default as text}. Defaults are applied by parsing the default text through the same setter
 * as the file, so a default can never be out of its own range, and config_print walks the same
 * rows, so the printed file always names every key and loads back to the same values.
 *
 * Why our own ini_reader: Debian's libinih 55 is built without INI_HANDLER_LINENO, so the
 * handler never sees a line number. We call ini_parse_stream() with a reader over our FILE that
 * (1) counts lines itself — inih calls the reader once per line and the handler for that line
 * before asking for the next, so the count is exact while the handler runs; (2) rejects lines
 * longer than inih's buffer instead of letting inih split them (a split shifts inih's count and
 * parses the tail as a line of its own); (3) strips leading blanks, so inih never treats an
 * indented "key = value" as a continuation of the previous value; (4) refuses a line that starts
 * (after blanks) with \v, \f or \r and has text: inih's isspace() takes it as a continuation
 * and would load "spool = /a" + "\vlog = /b" as spool = "log = /b"; (5) returns EOF once an
 * error is recorded, which stops the parse at the first error.
 *
 * Why some values are refused rather than printed specially: inih has no quoting. It strips
 * blanks around a value (so a loaded value never has any) and cuts it at a ';' that follows a
 * blank (so it never holds one), but "key=;x" loads ";x", which config_print would write as
 * "key = ;x" and inih would read back as an empty value. A string starting with ';' is refused
 * at load (file:line): it is almost always "key=;comment" meant as a comment, and any form that
 * would load it back ("key =;x") breaks as soon as someone adds the usual blank. '#' starts a
 * comment only at the start of a line, so "key = #x" is an ordinary value. With these rules,
 * everything the loader accepts prints as "key = value" and loads back to itself.
 *
 * Checkers that parse lists (dns_servers, source_address) live in config_val.c; host names
 * (relay, fallback_relay) are checked for syntax by engine/util, never resolved here.
 *
 * The table itself is in config_keys.c; the repeated sections ([route X], [shaping X],
 * [backoff X], [pool X], [rewrite]) in config_sets.c and config_route.c. Their headers are
 * read here from the raw line (ini_read_line), not from inih's section name: inih cuts section
 * names at 49 bytes and never reports a section without keys.
 */
#include "engine/config/config.h"
#include "engine/config/config_int.h"
#include "engine/config/config_val.h"
#include "engine/util/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>

#include <ini.h>

/* ---- defaults ---- */

/* config_defaults: every row's default text through the same setter as the file (a bad
 * default is a BUG), then hostname from gethostname(), and sets pointing at the shared
 * built-in backoff rules (nothing allocated). c is fully overwritten. */
void config_defaults(struct config *c)
{
	char why[128];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (config_keys[i].def)
			BUG_ON(config_key_set(&config_keys[i], c, config_keys[i].def,
					      CONFIG_STR - 1, why, sizeof(why)) < 0);
	}
	if (gethostname(c->hostname, sizeof(c->hostname)) < 0)
		c->hostname[0] = '\0';
	c->hostname[sizeof(c->hostname) - 1] = '\0';
	memcpy(c->helo_name, c->hostname, sizeof(c->helo_name)); /* helo_name = hostname */
	c->sets = config_sets_builtin();
}

/* ---- INI parsing ---- */

struct parse_ctx {
	struct config *c;
	FILE *f;
	const char *file;
	unsigned line;	       /* line last handed to inih (1-based) */
	unsigned section_line; /* line of the last "[section]" header */
	size_t line_max;       /* longest line inih can take (its buffer minus the NUL) */
	char *buf;	       /* getline buffer */
	size_t cap;
	unsigned err_line; /* 0 = no error recorded */
	char *err;
	size_t errlen;
	unsigned key_line[CONFIG_NKEYS]; /* line each key was last set on, 0 = default */
	struct config_sets_build b;	 /* the repeated sections read so far */
};

static void ctx_error(struct parse_ctx *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ctx_error(struct parse_ctx *p, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (p->err_line)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->err_line = line;
	if (p->err && p->errlen)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->file, line, msg);
}

/* A "[...]" line s: remember its line, and open a repeated section when it is one. A line
 * inih does not take as a header (no ']' before an inline comment) opens nothing. */
static int section_header(struct parse_ctx *p, const char *s)
{
	const char *end = strchr(s, ']'), *cmt;
	char text[256], why[320];
	int ret;

	p->section_line = p->line;
	p->b.kind = SK_NONE;
	p->b.line_max = p->line_max;
	for (cmt = s + 1; end && cmt < end; cmt++)
		if (*cmt == ';' && (cmt[-1] == ' ' || cmt[-1] == '\t'))
			return 0;
	if (!end || (size_t)(end - s - 1) >= sizeof(text))
		return 0;
	memcpy(text, s + 1, (size_t)(end - s - 1));
	text[end - s - 1] = '\0';
	ret = config_sets_section(&p->b, text, p->line, why, sizeof(why));
	if (ret < 0)
		ctx_error(p, p->line, "%s", why);
	return ret < 0 ? -EINVAL : 0;
}

static char *ini_read_line(char *str, int num, void *stream)
{
	struct parse_ctx *p = stream;
	ssize_t n;
	char *s;

	if (p->err_line || num < 2 || (n = getline(&p->buf, &p->cap, p->f)) < 0)
		return NULL;
	p->line++;
	p->line_max = (size_t)num - 1;
	while (n > 0 && (p->buf[n - 1] == '\n' || p->buf[n - 1] == '\r'))
		p->buf[--n] = '\0';
	for (s = p->buf; *s == ' ' || *s == '\t'; s++)
		;
	if ((*s == '\v' || *s == '\f' || *s == '\r') && s[strspn(s, " \t\v\f\r")] != '\0') {
		ctx_error(
		    p, p->line,
		    "line starts with \\v, \\f or \\r, which would continue the previous value");
		return NULL;
	}
	if (strlen(s) > p->line_max) {
		ctx_error(p, p->line, "line too long (max %zu bytes)", p->line_max);
		return NULL;
	}
	if (p->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3; /* inih skips a UTF-8 BOM on the first line */
	if (*s == '[' && section_header(p, s) < 0)
		return NULL;
	memcpy(str, s, strlen(s) + 1);
	return str;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_sections); i++)
		if (strcmp(config_sections[i], section) == 0)
			return true;
	return false;
}

static void unknown_key(struct parse_ctx *p, const char *section, const char *name)
{
	const struct key *other = config_key_find_any(name);

	if (other)
		ctx_error(p, p->line, "unknown key '%s' in [%s]: it belongs in [%s]", name, section,
			  other->section);
	else
		ctx_error(p, p->line, "unknown key '%s' in [%s]: no such setting", name, section);
}

static int ini_on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *p = user;
	const struct key *k;
	char why[320];

	if (p->err_line)
		return 0;
	if (section[0] == '\0') {
		ctx_error(p, p->line, "key '%s' is outside any [section]", name);
		return 0;
	}
	if (p->b.kind != SK_NONE) {
		if (config_sets_key(&p->b, name, value, p->line, why, sizeof(why)) < 0)
			ctx_error(p, p->line, "%s", why);
		return !p->err_line;
	}
	if (!section_known(section)) {
		ctx_error(p, p->section_line,
			  "unknown section [%s]: expected [main], [inject], [delivery], [queue], "
			  "[route DOMAIN], [shaping DESTINATION], [backoff NAME], [pool NAME] or "
			  "[rewrite]",
			  section);
		return 0;
	}
	k = config_key_find(section, name);
	if (!k) {
		unknown_key(p, section, name);
		return 0;
	}
	if (config_key_set(k, p->c, value, config_str_max(p->line_max, k->name), why, sizeof(why)) <
	    0) {
		ctx_error(p, p->line, "invalid value for '%s' in [%s]: %s", name, section, why);
		return 0;
	}
	p->key_line[k - config_keys] = p->line;
	return 1;
}

/* ---- whole-config validation ---- */

/* Line of the later of the keys at struct offsets a and b (0: both are defaults). */
static unsigned latest_line(const unsigned *key_line, size_t a, size_t b)
{
	unsigned line = 0;

	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if ((config_keys[i].off == a || config_keys[i].off == b) && key_line[i] > line)
			line = key_line[i];
	return line;
}

/* A hostname from gethostname() must pass the rules a hostname from the file passes. */
static bool hostname_ok(const struct config *c)
{
	const struct key *k = config_key_find("main", "hostname");
	struct config scratch;
	char why[320];

	return config_key_set(k, &scratch, c->hostname, CONFIG_STR - 1, why, sizeof(why)) == 0;
}

/* The TLS and AUTH rules across keys: a certificate needs its key and the other way round,
 * an implicit-TLS listener needs both, an AUTH user needs a password. NULL when they hold,
 * else the reason, with *line set to the later key's line. */
static const char *config_check_tls(const struct config *c, const unsigned *key_line,
				    unsigned *line)
{
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		*line = latest_line(key_line, OFF(tls_cert), OFF(tls_key));
		return "[inject] tls_cert and tls_key must be set together";
	}
	if (c->tls_listen[0] && !c->tls_cert[0]) {
		*line = latest_line(key_line, OFF(tls_listen), OFF(tls_cert));
		return "[inject] tls_listen needs tls_cert and tls_key";
	}
	if (c->auth_user[0] && !c->auth_password[0]) {
		*line = latest_line(key_line, OFF(auth_user), OFF(auth_password));
		return "[delivery] auth_user is set but auth_password is empty";
	}
	if (c->auth_password[0] && !c->auth_user[0]) {
		*line = latest_line(key_line, OFF(auth_user), OFF(auth_password));
		return "[delivery] auth_password is set but auth_user is empty";
	}
	return NULL;
}

/* Rules across keys. A broken one names the line of the later key involved; the ranges of
 * the rows already bound shards and max_connections. */
static int config_check(const struct config *c, const char *file, const unsigned *key_line,
			char *err, size_t errlen)
{
	const char *why = NULL;
	unsigned line = 0;

	if (c->mode == CONFIG_MODE_RELAY && c->relay[0] == '\0') {
		why = "[delivery] mode = relay but relay is empty (set relay = host:port)";
		line = latest_line(key_line, OFF(mode), OFF(relay));
	} else if (c->listen[0] == '\0' && c->socket[0] == '\0') {
		why = "no injection listener: [inject] listen and socket are both empty";
		line = latest_line(key_line, OFF(listen), OFF(socket));
	} else if (c->hostname[0] == '\0') {
		why = "[main] hostname is empty (gethostname() failed; set it)";
	} else if (!hostname_ok(c)) {
		why =
		    "[main] hostname from gethostname() has blanks or control characters (set it)";
	} else {
		why = config_check_tls(c, key_line, &line);
	}
	if (!why)
		return 0;
	if (err && errlen && line)
		snprintf(err, errlen, "%s:%u: %s", file, line, why);
	else if (err && errlen)
		snprintf(err, errlen, "%s: %s", file, why);
	return -EINVAL;
}

static int parse_file(struct parse_ctx *p)
{
	int ret = ini_parse_stream(ini_read_line, p, ini_on_key, p);

	if (ferror(p->f)) {
		ret = errno ? -errno : -EIO;
		if (p->err && p->errlen)
			snprintf(p->err, p->errlen, "%s: read error: %s", p->file, strerror(-ret));
		return ret;
	}
	if (ret > 0 && (!p->err_line || (unsigned)ret < p->err_line)) {
		p->err_line = 0;
		ctx_error(p, (unsigned)ret, "syntax error: expected '[section]' or 'key = value'");
	}
	if (ret < 0) {
		if (p->err && p->errlen)
			snprintf(p->err, p->errlen, "%s: out of memory", p->file);
		return -ENOMEM;
	}
	return p->err_line ? -EINVAL : 0;
}

/* The line helo_name was set on (0: not in the file). */
static unsigned helo_line(const unsigned *key_line)
{
	return latest_line(key_line, OFF(helo_name), OFF(helo_name));
}

/* The repeated sections' rules, after [delivery]'s own: 0 or -EINVAL with file:line in err. */
static int finish_sets(struct parse_ctx *p, struct config *tmp, char *err, size_t errlen)
{
	char why[512];
	unsigned line = 0;

	if (config_sets_finish(&p->b, tmp, p->key_line, &line, why, sizeof(why)) == 0) {
		if (p->b.s)
			tmp->sets = p->b.s;
		return 0;
	}
	if (err && errlen)
		snprintf(err, errlen, "%s:%u: %s", p->file, line, why);
	return -EINVAL;
}

/* Defaults, then the stream f (NULL: none) named name, then the rules across keys, all in a
 * scratch copy: c is only written when everything is valid (the repeated sections' heap then
 * moves to c; on failure it is freed). f stays the caller's. */
static int load_stream(struct config *c, const char *name, FILE *f, char *err, size_t errlen)
{
	struct config tmp;
	struct parse_ctx p = {.c = &tmp, .f = f, .file = name, .err = err, .errlen = errlen};
	int ret = 0;

	if (err && errlen)
		err[0] = '\0';
	config_defaults(&tmp);
	if (f)
		ret = parse_file(&p);
	free(p.buf);
	if (ret == 0)
		ret = config_check(&tmp, name, p.key_line, err, errlen);
	if (ret == 0 && (tmp.helo_name[0] == '\0' || !helo_line(p.key_line)))
		/* the file's hostname */
		memcpy(tmp.helo_name, tmp.hostname, sizeof(tmp.helo_name));
	if (ret == 0)
		ret = finish_sets(&p, &tmp, err, errlen);
	config_sets_build_free(&p.b);
	if (ret == 0)
		*c = tmp;
	else
		config_sets_free(p.b.s);
	return ret;
}

/* config_tls_verify_effective: see config.h. */
enum config_tls_verify config_tls_verify_effective(const struct config *c)
{
	if (c->tls_verify != CONFIG_VERIFY_AUTO)
		return c->tls_verify;
	return c->tls == CONFIG_TLS_REQUIRED || c->tls == CONFIG_TLS_SMTPS ? CONFIG_VERIFY_CA
									   : CONFIG_VERIFY_NONE;
}

/* config_load: see config.h. Returns 0, -EINVAL (message in err), -ENOENT/-EACCES/-errno
 * when the file is unreadable. */
int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = NULL;
	int ret;

	if (path && !(f = fopen(path, "r"))) {
		ret = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	ret = load_stream(c, path ? path : "(defaults)", f, err, errlen);
	if (f)
		fclose(f);
	return ret;
}

/* config_load_buf: see config.h. buf is only read (fmemopen in "r" mode never writes). */
int config_load_buf(struct config *c, const char *name, const char *buf, size_t len, char *err,
		    size_t errlen)
{
	static char empty[1];
	FILE *f = fmemopen(len ? (void *)buf : empty, len, "r");
	int ret;

	if (!f) {
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", name, strerror(errno));
		return -ENOMEM;
	}
	ret = load_stream(c, name, f, err, errlen);
	fclose(f);
	return ret;
}

/* config_print: every row in table order, grouped by section, then the repeated sections;
 * loads back to the same values. */
void config_print(const struct config *c, FILE *f)
{
	const char *section = NULL;
	char val[CONFIG_STR + 32];

	fprintf(f, "# riptide effective configuration\n");
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (!section || strcmp(section, config_keys[i].section) != 0) {
			section = config_keys[i].section;
			fprintf(f, "\n[%s]\n", section);
		}
		config_key_format(&config_keys[i], c, val, sizeof(val));
		if ((config_keys[i].flags & KF_SECRET) && val[0])
			fprintf(f, "# %s = (set, not shown)\n", config_keys[i].name);
		else if (val[0])
			fprintf(f, "%s = %s\n", config_keys[i].name, val);
		else
			fprintf(f, "%s =\n", config_keys[i].name); /* no trailing blank */
	}
	config_sets_print(c, f);
}
