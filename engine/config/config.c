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

static const struct key keys[] = {
    UINT("main", "shards", shards, 0, 256, "0"),
    {"main", "spool", KT_STR, 0, OFF(spool), 0, 0, "/var/spool/riptide"},
    {"main", "hostname", KT_STR, KF_TOKEN, OFF(hostname), 0, 0, NULL},
    {"main", "log", KT_STR, 0, OFF(log), 0, 0, "stderr"},
    DUR("main", "shutdown_timeout", shutdown_timeout_ms, 0, MS_D, "10s"),

    {"inject", "listen", KT_ADDR, KF_EMPTY_OK | KF_TCP, OFF(listen), 0, 0, "127.0.0.1:2525"},
    {"inject", "socket", KT_ADDR, KF_EMPTY_OK | KF_UNIX, OFF(socket), 0, 0, ""},
    SIZE("inject", "max_message_size", max_message_size, KIB, 4 * GIB, "10M"),
    UINT("inject", "max_recipients", max_recipients, 1, 1000000, "1000"),
    UINT("inject", "max_line_length", max_line_length, 512, 65536, "2048"),
    /* max_sessions: open injection sessions of the whole daemon, all shards together */
    UINT("inject", "max_sessions", max_sessions, 1, 1000000, "1000"),
    DUR("inject", "timeout", inject_timeout_ms, 1, MS_D, "5m"),
    /* total time to receive one command line / one message body (354 to the final dot),
     * however slowly it trickles in: a 1-byte/s client cannot hold a session */
    DUR("inject", "command_deadline", inject_cmd_deadline_ms, 1, MS_D, "1m"),
    DUR("inject", "data_deadline", inject_data_deadline_ms, 1, MS_D, "10m"),
    /* more Received: fields than this: 554 5.4.6 at the end of DATA (a mail loop) */
    UINT("inject", "max_hops", max_hops, 1, 1000, "50"),
    /* TLS (STARTTLS when tls_cert/tls_key are set; tls_listen: a TLS-on-connect listener) */
    {"inject", "tls_cert", KT_STR, KF_EMPTY_OK, OFF(tls_cert), 0, 0, ""},
    {"inject", "tls_key", KT_STR, KF_EMPTY_OK, OFF(tls_key), 0, 0, ""},
    {"inject", "tls_listen", KT_ADDR, KF_EMPTY_OK | KF_TCP, OFF(tls_listen), 0, 0, ""},
    /* access: trusted networks (and the UNIX socket) inject without AUTH; others must log in
     * (AUTH PLAIN/LOGIN over TLS against auth_users_file) unless every recipient is in
     * relay_domains */
    {"inject", "auth_users_file", KT_STR, KF_EMPTY_OK, OFF(auth_users_file), 0, 0, ""},
    {"inject", "trusted_networks", KT_STR, KF_EMPTY_OK | KF_NETS, OFF(trusted_networks), 0, 0,
     "127.0.0.0/8 ::1/128"},
    {"inject", "relay_domains", KT_STR, KF_EMPTY_OK | KF_DOMAINS, OFF(relay_domains), 0, 0, ""},
    {"inject", "sender_policy", KT_ENUM, 0, OFF(sender_policy), ENUM_SENDER, 0, "any"},
    UINT("inject", "max_rset", max_rset, 0, 1000000, "20"),
    {"inject", "vrfy", KT_BOOL, 0, OFF(vrfy), 0, 0, "no"},

    {"delivery", "outgoing", KT_BOOL, 0, OFF(outgoing), 0, 0, "yes"},
    {"delivery", "mode", KT_ENUM, 0, OFF(mode), ENUM_MODE, 0, "relay"},
    {"delivery", "relay", KT_ADDR, KF_EMPTY_OK | KF_TCP | KF_PORT | KF_NAME, OFF(relay), 0, 0,
     "127.0.0.1:25"},
    {"delivery", "helo_name", KT_STR, KF_EMPTY_OK | KF_TOKEN, OFF(helo_name), 0, 0, ""},
    /* outbound TLS and AUTH (relay, MX) */
    {"delivery", "tls", KT_ENUM, 0, OFF(tls), ENUM_TLS, 0, "opportunistic"},
    {"delivery", "tls_verify", KT_ENUM, 0, OFF(tls_verify), ENUM_VERIFY, 0, "auto"},
    {"delivery", "tls_ca_file", KT_STR, KF_EMPTY_OK, OFF(tls_ca_file), 0, 0, ""},
    {"delivery", "auth_user", KT_STR, KF_EMPTY_OK, OFF(auth_user), 0, 0, ""},
    {"delivery", "auth_password", KT_STR, KF_EMPTY_OK | KF_SECRET, OFF(auth_password), 0, 0, ""},
    {"delivery", "auth_plaintext", KT_BOOL, 0, OFF(auth_plaintext), 0, 0, "no"},
    UINT("delivery", "max_connections", max_connections, 1, 1000000, "1000"),
    UINT("delivery", "max_messages_per_connection", max_messages_per_connection, 1, 1000000,
	 "1000"),
    UINT("delivery", "max_recipients_per_transaction", max_recipients_per_transaction, 1, 100000,
	 "100"),
    DUR("delivery", "idle_timeout", idle_timeout_ms, 0, MS_H, "2s"),
    /* the schedule: delay after the n-th deferred round = retry_delay * retry_backoff^(n-1),
     * at most retry_max_delay, +-5 % jitter; a recipient fails after max_attempts connection
     * attempts (0 = no limit) or once it is older than lifetime */
    DUR("delivery", "retry_delay", retry_delay_ms, 10, 30 * MS_D, "5m"),
    {"delivery", "retry_backoff", KT_FACTOR, 0, OFF(retry_backoff), 1, 10, "1"},
    DUR("delivery", "retry_max_delay", retry_max_delay_ms, 10, 30 * MS_D, "4h"),
    UINT("delivery", "max_attempts", max_attempts, 0, 65535, "0"),
    DUR("delivery", "lifetime", lifetime_ms, 10, 365 * MS_D, "5d"),
    DUR("delivery", "warn_after", warn_after_ms, 0, 365 * MS_D, "0s"),
    {"delivery", "dsn_original", KT_ENUM, 0, OFF(dsn_original), ENUM_ORIGINAL, 0, "full"},
    {"delivery", "dsn_templates", KT_STR, KF_EMPTY_OK, OFF(dsn_templates), 0, 0, ""},
    {"delivery", "postmaster", KT_STR, KF_EMPTY_OK | KF_TOKEN, OFF(postmaster), 0, 0, ""},
    DUR("delivery", "connect_timeout", connect_timeout_ms, 1, MS_D, "30s"),
    DUR("delivery", "greeting_timeout", greeting_timeout_ms, 1, MS_D, "5m"),
    DUR("delivery", "helo_timeout", helo_timeout_ms, 1, MS_D, "5m"),
    DUR("delivery", "mail_timeout", mail_timeout_ms, 1, MS_D, "5m"),
    DUR("delivery", "rcpt_timeout", rcpt_timeout_ms, 1, MS_D, "5m"),
    DUR("delivery", "data_timeout", data_timeout_ms, 1, MS_D, "2m"),
    DUR("delivery", "data_block_timeout", data_block_timeout_ms, 1, MS_D, "3m"),
    DUR("delivery", "data_done_timeout", data_done_timeout_ms, 1, MS_D, "10m"),
    {"delivery", "dns_servers", KT_STR, KF_TOKEN | KF_DNS, OFF(dns_servers), 0, 0, "auto"},
    {"delivery", "dns_fallback_auto", KT_BOOL, 0, OFF(dns_fallback_auto), 0, 0, "no"},
    DUR("delivery", "dns_timeout", dns_timeout_ms, 100, 60 * MS_S, "5s"),
    UINT("delivery", "dns_tries", dns_tries, 1, 10, "2"),
    DUR("delivery", "dns_min_ttl", dns_min_ttl_ms, 0, MS_D, "0s"),
    DUR("delivery", "dns_max_ttl", dns_max_ttl_ms, MS_S, 7 * MS_D, "1d"),
    DUR("delivery", "dns_negative_ttl", dns_negative_ttl_ms, MS_S, MS_D, "1h"),
    UINT("delivery", "dns_cache_entries", dns_cache_entries, 16, 10000000, "65536"),
    {"delivery", "resolv_conf", KT_STR, 0, OFF(resolv_conf), 0, 0, "/etc/resolv.conf"},
    {"delivery", "implicit_mx", KT_BOOL, 0, OFF(implicit_mx), 0, 0, "yes"},
    UINT("delivery", "max_mx_hosts", max_mx_hosts, 1, 100, "5"),
    UINT("delivery", "port", mx_port, 1, 65535, "25"),
    {"delivery", "first_mx_only", KT_BOOL, 0, OFF(first_mx_only), 0, 0, "no"},
    {"delivery", "fallback_relay", KT_ADDR, KF_EMPTY_OK | KF_TCP | KF_PORT | KF_NAME,
     OFF(fallback_relay), 0, 0, ""},
    UINT("delivery", "max_connections_per_destination", max_connections_per_destination, 1, 1000000,
	 "20"),
    {"delivery", "source_address", KT_SOURCE, KF_EMPTY_OK | KF_TOKEN, OFF(source_address), 0, 0,
     ""},

    SIZE("queue", "memory_budget", memory_budget, MIB, TIB, "1G"),
    DUR("queue", "scan_interval", scan_interval_ms, 10, MS_H, "1s"),
    UINT("queue", "max_ready_per_destination", max_ready_per_destination, 1, 10000000, "2000"),
    /* queue full: injection answers 452 4.3.1 (0 = no limit) */
    UINT("queue", "max_queue_messages", max_queue_messages, 0, 4000000000u, "0"),
    SIZE("queue", "max_queue_bytes", max_queue_bytes, 0, 1024 * TIB, "0"),
    /* riptidectl's UNIX socket (mode 0600); "" = control.sock in the spool directory */
    {"queue", "control_socket", KT_ADDR, KF_EMPTY_OK | KF_UNIX, OFF(control_socket), 0, 0, ""},
    SIZE("queue", "write_buffer_size", write_buffer_size, 64 * KIB, 4 * GIB, "64M"),
    {"queue", "blob_bodies", KT_BOOL, 0, OFF(blob_bodies), 0, 0, "no"},
};
/* clang-format on */

static const char *const sections[] = {"main", "inject", "delivery", "queue"};

/* ---- defaults ---- */

/* config_defaults: every row's default text through the same setter as the file (a bad
 * default is a BUG), then hostname from gethostname(). c is fully overwritten. */
void config_defaults(struct config *c)
{
	char why[128];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (keys[i].def)
			BUG_ON(config_key_set(&keys[i], c, keys[i].def, CONFIG_STR - 1, why,
					      sizeof(why)) < 0);
	}
	if (gethostname(c->hostname, sizeof(c->hostname)) < 0)
		c->hostname[0] = '\0';
	c->hostname[sizeof(c->hostname) - 1] = '\0';
	memcpy(c->helo_name, c->hostname, sizeof(c->helo_name)); /* helo_name = hostname */
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
	unsigned key_line[ARRAY_SIZE(keys)]; /* line each key was last set on, 0 = default */
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
	if (*s == '[')
		p->section_line = p->line;
	memcpy(str, s, strlen(s) + 1);
	return str;
}

static const struct key *key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static const struct key *key_find_any_section(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
		if (strcmp(sections[i], section) == 0)
			return true;
	return false;
}

static void unknown_key(struct parse_ctx *p, const char *section, const char *name)
{
	const struct key *other = key_find_any_section(name);

	if (other)
		ctx_error(p, p->line, "unknown key '%s' in [%s]: it belongs in [%s]", name, section,
			  other->section);
	else
		ctx_error(p, p->line, "unknown key '%s' in [%s]: no such setting", name, section);
}

/* str_max for key k: fits CONFIG_STR and, once printed as "key = value", inih's line. */
static size_t str_max_for(const struct parse_ctx *p, const struct key *k)
{
	size_t room = p->line_max > strlen(k->name) + 3 ? p->line_max - strlen(k->name) - 3 : 0;

	return room < CONFIG_STR - 1 ? room : CONFIG_STR - 1;
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
	if (!section_known(section)) {
		ctx_error(p, p->section_line,
			  "unknown section [%s]: expected [main], [inject], [delivery] or [queue]",
			  section);
		return 0;
	}
	k = key_find(section, name);
	if (!k) {
		unknown_key(p, section, name);
		return 0;
	}
	if (config_key_set(k, p->c, value, str_max_for(p, k), why, sizeof(why)) < 0) {
		ctx_error(p, p->line, "invalid value for '%s' in [%s]: %s", name, section, why);
		return 0;
	}
	p->key_line[k - keys] = p->line;
	return 1;
}

/* ---- whole-config validation ---- */

/* Line of the later of the keys at struct offsets a and b (0: both are defaults). */
static unsigned latest_line(const unsigned *key_line, size_t a, size_t b)
{
	unsigned line = 0;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if ((keys[i].off == a || keys[i].off == b) && key_line[i] > line)
			line = key_line[i];
	return line;
}

/* A hostname from gethostname() must pass the rules a hostname from the file passes. */
static bool hostname_ok(const struct config *c)
{
	const struct key *k = key_find("main", "hostname");
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

/* Defaults, then the stream f (NULL: none) named name, then the rules across keys, all in a
 * scratch copy: c is only written when everything is valid. f stays the caller's. */
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
		*c = tmp;
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

/* config_print: every row in table order, grouped by section; loads back to the same values. */
void config_print(const struct config *c, FILE *f)
{
	const char *section = NULL;
	char val[CONFIG_STR + 32];

	fprintf(f, "# riptide effective configuration\n");
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (!section || strcmp(section, keys[i].section) != 0) {
			section = keys[i].section;
			fprintf(f, "\n[%s]\n", section);
		}
		config_key_format(&keys[i], c, val, sizeof(val));
		if ((keys[i].flags & KF_SECRET) && val[0])
			fprintf(f, "# %s = (set, not shown)\n", keys[i].name);
		else if (val[0])
			fprintf(f, "%s = %s\n", keys[i].name, val);
		else
			fprintf(f, "%s =\n", keys[i].name); /* no trailing blank */
	}
}
