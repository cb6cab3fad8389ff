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

enum key_type {
	KT_UINT,     /* unsigned, decimal */
	KT_BOOL,     /* bool: yes/no/true/false/on/off/1/0 */
	KT_STR,	     /* char[CONFIG_STR] */
	KT_DURATION, /* uint64_t milliseconds, util_parse_duration_ms */
	KT_SIZE,     /* uint64_t bytes, util_parse_size */
	KT_ENUM,     /* unsigned enum, names in enum_tables[key.min] */
	KT_FACTOR,   /* double, decimal, within [min, max] */
	KT_ADDR,     /* char[CONFIG_STR], validated with util_addr_parse */
	KT_SOURCE,   /* char[CONFIG_STR] + source_v4/v6, validated with config_val_source */
};

#define KF_EMPTY_OK 0x1	 /* "" is a valid value (strings and addresses) */
#define KF_TCP	    0x2	 /* address must be IPv4/IPv6 host:port */
#define KF_UNIX	    0x4	 /* address must be an absolute UNIX socket path */
#define KF_PORT	    0x8	 /* address port must not be 0 */
#define KF_TOKEN    0x10 /* no blanks or control characters (goes on SMTP lines) */
#define KF_DNS	    0x20 /* "auto" or a ';'-separated list of DNS servers */
#define KF_NAME	    0x40 /* address may also be a host name[:port] (default port 25) */

enum { ENUM_MODE, ENUM_ORIGINAL };

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	unsigned flags;
	size_t off;
	uint64_t min, max; /* KT_UINT / KT_DURATION / KT_SIZE */
	const char *def;   /* NULL: computed by config_defaults (hostname) */
};

#define MS_S   1000ull
#define MS_MIN (60 * MS_S)
#define MS_H   (60 * MS_MIN)
#define MS_D   (24 * MS_H)
#define KIB    1024ull
#define MIB    (1024 * KIB)
#define GIB    (1024 * MIB)
#define TIB    (1024 * GIB)
#define OFF(f) offsetof(struct config, f)
/* One row per key reads better than what the formatter makes of the table. */
/* clang-format off */
#define DUR(sec, key, f, lo, hi, d) {sec, key, KT_DURATION, 0, OFF(f), lo, hi, d}
#define SIZE(sec, key, f, lo, hi, d) {sec, key, KT_SIZE, 0, OFF(f), lo, hi, d}
#define UINT(sec, key, f, lo, hi, d) {sec, key, KT_UINT, 0, OFF(f), lo, hi, d}

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

	{"delivery", "outgoing", KT_BOOL, 0, OFF(outgoing), 0, 0, "yes"},
	{"delivery", "mode", KT_ENUM, 0, OFF(mode), ENUM_MODE, 0, "relay"},
	{"delivery", "relay", KT_ADDR, KF_EMPTY_OK | KF_TCP | KF_PORT | KF_NAME, OFF(relay), 0, 0,
	 "127.0.0.1:25"},
	{"delivery", "helo_name", KT_STR, KF_EMPTY_OK | KF_TOKEN, OFF(helo_name), 0, 0, ""},
	UINT("delivery", "max_connections", max_connections, 1, 1000000, "1000"),
	UINT("delivery", "max_messages_per_connection", max_messages_per_connection, 1, 1000000,
	     "1000"),
	UINT("delivery", "max_recipients_per_transaction", max_recipients_per_transaction, 1,
	     100000, "100"),
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
	UINT("delivery", "max_connections_per_destination", max_connections_per_destination, 1,
	     1000000, "20"),
	{"delivery", "source_address", KT_SOURCE, KF_EMPTY_OK | KF_TOKEN, OFF(source_address), 0,
	 0, ""},

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
static const char *const mode_names[] = {
    [CONFIG_MODE_RELAY] = "relay", [CONFIG_MODE_INDEPENDENT] = "independent", NULL};
static const char *const original_names[] = {
    [CONFIG_DSN_FULL] = "full", [CONFIG_DSN_HEADERS] = "headers", [CONFIG_DSN_NONE] = "none", NULL};
/* KT_ENUM name tables (NULL-terminated), by key.min */
static const char *const *const enum_tables[] = {
    [ENUM_MODE] = mode_names, [ENUM_ORIGINAL] = original_names};

static const char *const bool_true[] = {"yes", "true", "on", "1"};
static const char *const bool_false[] = {"no", "false", "off", "0"};

/* ---- value setters: each returns 0, or -EINVAL with the reason in why ---- */

static int in_list(const char *v, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v, list[i]) == 0)
			return 1;
	return 0;
}

static int check_range(const struct key *k, uint64_t v, char *why, size_t wl)
{
	if (v >= k->min && v <= k->max)
		return 0;
	snprintf(why, wl, "%" PRIu64 " is out of range %" PRIu64 "..%" PRIu64, v, k->min, k->max);
	return -EINVAL;
}

/* util_parse_* do not check overflow: the leading number of v must not overflow once scaled
 * by the bare-number unit, or by the largest suffix (1d, 1G) when there is a suffix. */
static int scaled_fits(const char *v, uint64_t bare_unit, uint64_t largest_unit)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	return errno == 0 && n <= UINT64_MAX / (*end ? largest_unit : bare_unit);
}

static int set_uint(const struct key *k, void *field, const char *v, char *why, size_t wl)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || *end != '\0' || errno || n > UINT32_MAX) {
		snprintf(why, wl, "'%s' is not a number", v);
		return -EINVAL;
	}
	if (check_range(k, n, why, wl))
		return -EINVAL;
	*(unsigned *)field = (unsigned)n;
	return 0;
}

static int set_scaled(const struct key *k, void *field, const char *v, char *why, size_t wl)
{
	bool dur = k->type == KT_DURATION;
	uint64_t n;
	int ret;

	if (!scaled_fits(v, dur ? MS_S : 1, dur ? MS_D : GIB))
		ret = -EINVAL;
	else
		ret = dur ? util_parse_duration_ms(v, &n) : util_parse_size(v, &n);
	if (ret < 0) {
		snprintf(why, wl,
			 dur ? "'%s' is not a duration (e.g. 250ms, 30s, 5m, 1h, 2d)"
			     : "'%s' is not a size (e.g. 1024, 64k, 10M, 2G)",
			 v);
		return -EINVAL;
	}
	if (check_range(k, n, why, wl))
		return -EINVAL;
	*(uint64_t *)field = n;
	return 0;
}

static int set_bool(void *field, const char *v, char *why, size_t wl)
{
	if (in_list(v, bool_true, ARRAY_SIZE(bool_true))) {
		*(bool *)field = true;
		return 0;
	}
	if (in_list(v, bool_false, ARRAY_SIZE(bool_false))) {
		*(bool *)field = false;
		return 0;
	}
	snprintf(why, wl, "'%s' is not a boolean (yes/no, true/false, on/off, 1/0)", v);
	return -EINVAL;
}

static int set_enum(const struct key *k, void *field, const char *v, char *why, size_t wl)
{
	const char *const *names = enum_tables[k->min];
	size_t used = 0;

	for (unsigned i = 0; names[i]; i++) {
		if (strcmp(v, names[i]) == 0) {
			*(unsigned *)field = i;
			return 0;
		}
	}
	used = (size_t)snprintf(why, wl, "'%s' is not one of:", v);
	for (unsigned i = 0; names[i] && used < wl; i++)
		used += (size_t)snprintf(why + used, wl - used, " %s", names[i]);
	return -EINVAL;
}

static int set_factor(const struct key *k, double *field, const char *v, char *why, size_t wl)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !(d >= (double)k->min && d <= (double)k->max)) {
		snprintf(why, wl, "'%s' is not a number from %" PRIu64 " to %" PRIu64, v, k->min,
			 k->max);
		return -EINVAL;
	}
	*field = d;
	return 0;
}

/* A host name with optional :port (KF_NAME): numeric hosts must pass util_addr_parse. */
static bool host_name_port_ok(const char *v)
{
	char host[UTIL_HOST_MAX];
	uint16_t port;

	return util_hostport_parse(v, host, sizeof(host), &port, 25) == 0 &&
	       !util_host_is_numeric(host);
}

static int check_addr(const struct key *k, const char *v, char *why, size_t wl)
{
	struct util_addr a;
	int bad = util_addr_parse(v, &a) < 0;

	if (!bad && (k->flags & KF_UNIX))
		bad = v[0] != '/';
	if (!bad && (k->flags & KF_TCP))
		bad = a.family == AF_UNIX;
	if (!bad && (k->flags & KF_PORT))
		bad = ((struct sockaddr_in *)&a.ss)->sin_port == 0; /* same offset in sin6 */
	if (bad && (k->flags & KF_NAME))
		bad = !host_name_port_ok(v);
	if (!bad)
		return 0;
	if (k->flags & KF_UNIX)
		snprintf(why, wl, "'%s' is not an absolute UNIX socket path (max %zu bytes)", v,
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	else if (k->flags & KF_NAME)
		snprintf(why, wl,
			 "'%s' is not a host:port address (IPv4:port, [IPv6]:port, or a host name "
			 "with optional :port, default 25; port 1..65535)",
			 v);
	else
		snprintf(why, wl, "'%s' is not a host:port address (IPv4 or [IPv6], port%s)", v,
			 (k->flags & KF_PORT) ? " 1..65535" : " 0..65535");
	return -EINVAL;
}

static int set_str(const struct key *k, void *field, const char *v, size_t max, char *why,
		   size_t wl)
{
	size_t n = strlen(v);

	if (n > max) {
		snprintf(why, wl, "value is too long (%zu bytes, max %zu)", n, max);
		return -EINVAL;
	}
	if (n == 0 && !(k->flags & KF_EMPTY_OK)) {
		snprintf(why, wl, "value must not be empty");
		return -EINVAL;
	}
	if (v[0] == ';') { /* see the top of this file */
		snprintf(why, wl, "'%s' starts with ';', which reads back as a comment", v);
		return -EINVAL;
	}
	for (size_t i = 0; (k->flags & KF_TOKEN) && i < n; i++) {
		if (isspace((unsigned char)v[i]) || iscntrl((unsigned char)v[i])) {
			snprintf(why, wl, "'%s' must not contain blanks or control characters", v);
			return -EINVAL;
		}
	}
	if (k->type == KT_ADDR && n > 0 && check_addr(k, v, why, wl) < 0)
		return -EINVAL;
	if ((k->flags & KF_DNS) && config_val_dns_servers(v, why, wl) < 0)
		return -EINVAL;
	memcpy(field, v, n + 1);
	return 0;
}

/* source_address: the string as given, and its literals parsed for the daemon's bind(). */
static int set_source(const struct key *k, struct config *c, const char *v, size_t max, char *why,
		      size_t wl)
{
	struct util_addr v4, v6;

	if (set_str(k, (char *)c + k->off, v, max, why, wl) < 0 ||
	    config_val_source(v, &v4, &v6, why, wl) < 0)
		return -EINVAL;
	c->source_v4 = v4;
	c->source_v6 = v6;
	return 0;
}

/* key_set: parse v for key k into c. str_max bounds string lengths. 0 or -EINVAL + why. */
static int key_set(const struct key *k, struct config *c, const char *v, size_t str_max, char *why,
		   size_t wl)
{
	void *field = (char *)c + k->off;

	switch (k->type) {
	case KT_UINT:
		return set_uint(k, field, v, why, wl);
	case KT_BOOL:
		return set_bool(field, v, why, wl);
	case KT_DURATION:
	case KT_SIZE:
		return set_scaled(k, field, v, why, wl);
	case KT_ENUM:
		return set_enum(k, field, v, why, wl);
	case KT_FACTOR:
		return set_factor(k, field, v, why, wl);
	case KT_STR:
	case KT_ADDR:
		return set_str(k, field, v, str_max, why, wl);
	case KT_SOURCE:
		return set_source(k, c, v, str_max, why, wl);
	}
	BUG_ON(1);
	return -EINVAL;
}

/* ---- formatting (config_print) ---- */

static void fmt_scaled(uint64_t v, bool dur, char *buf, size_t len)
{
	static const uint64_t dmul[] = {MS_D, MS_H, MS_MIN, MS_S};
	static const char *const dsuf[] = {"d", "h", "m", "s"};
	static const uint64_t smul[] = {GIB, MIB, KIB};
	static const char *const ssuf[] = {"G", "M", "k"};
	const uint64_t *mul = dur ? dmul : smul;
	const char *const *suf = dur ? dsuf : ssuf;
	size_t n = dur ? ARRAY_SIZE(dmul) : ARRAY_SIZE(smul);

	for (size_t i = 0; i < n && v != 0; i++) {
		if (v % mul[i] == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", v / mul[i], suf[i]);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64 "%s", v, dur ? "ms" : "");
}

static void key_format(const struct key *k, const struct config *c, char *buf, size_t len)
{
	const void *field = (const char *)c + k->off;

	switch (k->type) {
	case KT_UINT:
		snprintf(buf, len, "%u", *(const unsigned *)field);
		break;
	case KT_BOOL:
		snprintf(buf, len, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case KT_DURATION:
	case KT_SIZE:
		fmt_scaled(*(const uint64_t *)field, k->type == KT_DURATION, buf, len);
		break;
	case KT_ENUM:
		snprintf(buf, len, "%s", enum_tables[k->min][*(const unsigned *)field]);
		break;
	case KT_FACTOR:
		snprintf(buf, len, "%g", *(const double *)field);
		break;
	case KT_STR:
	case KT_ADDR:
	case KT_SOURCE:
		snprintf(buf, len, "%s", (const char *)field);
		break;
	}
}

/* ---- defaults ---- */

/* config_defaults: every row's default text through the same setter as the file (a bad
 * default is a BUG), then hostname from gethostname(). c is fully overwritten. */
void config_defaults(struct config *c)
{
	char why[128];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (keys[i].def)
			BUG_ON(key_set(&keys[i], c, keys[i].def, CONFIG_STR - 1, why, sizeof(why)) <
			       0);
	}
	if (gethostname(c->hostname, sizeof(c->hostname)) < 0)
		c->hostname[0] = '\0';
	c->hostname[sizeof(c->hostname) - 1] = '\0';
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
	if (key_set(k, p->c, value, str_max_for(p, k), why, sizeof(why)) < 0) {
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

	return key_set(k, &scratch, c->hostname, CONFIG_STR - 1, why, sizeof(why)) == 0;
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
	if (ret == 0)
		*c = tmp;
	return ret;
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
		key_format(&keys[i], c, val, sizeof(val));
		if (val[0])
			fprintf(f, "%s = %s\n", keys[i].name, val);
		else
			fprintf(f, "%s =\n", keys[i].name); /* no trailing blank */
	}
}
