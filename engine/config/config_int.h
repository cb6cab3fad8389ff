/* config_int — what the key table, its setters and the repeated sections share inside
 * engine/config/.
 *
 * Why: config_keys.c (the table), config.c (INI parsing, validation, printing), config_set.c
 * (parsing and formatting one value of each type) and config_sets*.c / config_route.c (the
 * repeated sections [route X], [shaping X], [backoff X], [pool X], [rewrite]) all walk struct
 * key rows. Nothing outside engine/config/ includes this header.
 *
 * Link rule: tests/unit/config/test_config.c #includes config.c, so no other file of this
 * module may reference a symbol defined in config.c (the archive's config.o would be pulled
 * in twice); config.c calls into the other files, never the other way round.
 */
#ifndef RIPTIDE_CONFIG_INT_H
#define RIPTIDE_CONFIG_INT_H

#include "engine/config/config.h"

#include <stddef.h>
#include <stdint.h>

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
	KT_RATE,     /* struct config_rate, config_rate_parse */
};

#define KF_EMPTY_OK 0x1	  /* "" is a valid value (strings and addresses) */
#define KF_TCP	    0x2	  /* address must be IPv4/IPv6 host:port */
#define KF_UNIX	    0x4	  /* address must be an absolute UNIX socket path */
#define KF_PORT	    0x8	  /* address port must not be 0 */
#define KF_TOKEN    0x10  /* no blanks or control characters (goes on SMTP lines) */
#define KF_DNS	    0x20  /* "auto" or a ';'-separated list of DNS servers */
#define KF_NAME	    0x40  /* address may also be a host name[:port] (default port 25) */
#define KF_SECRET   0x80  /* never printed (config_print writes a comment instead) */
#define KF_NETS	    0x100 /* list of networks (CIDR), see config_val_networks */
#define KF_DOMAINS  0x200 /* list of domains, see config_val_domains */
#define KF_HOSTS    0x400 /* list of host[:port], see config_val_hosts */

enum { ENUM_MODE, ENUM_ORIGINAL, ENUM_TLS, ENUM_VERIFY, ENUM_SENDER, ENUM_ACTION };

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

#define RATE(sec, key, f, d) {sec, key, KT_RATE, 0, OFF(f), 0, 0, d}
/* clang-format on */

/* The key table of [main], [inject], [delivery] and [queue] (config_keys.c); its size is
 * checked against CONFIG_NKEYS when config_keys.c compiles (which declares it only after its
 * definition: a declaration with a size before it would pad a short table with zero rows). */
#define CONFIG_NKEYS 84
#ifndef CONFIG_KEYS_DEFINITION
extern const struct key config_keys[CONFIG_NKEYS];
#endif
extern const char *const config_sections[4];

/* config_key_find: the row of key name in section, or NULL. */
const struct key *config_key_find(const char *section, const char *name);

/* config_key_find_any: the first row named name in any section, or NULL. */
const struct key *config_key_find_any(const char *name);

/* config_str_max: the longest string value of key name that, printed as "name = value", still
 * fits a line of line_max bytes, and fits CONFIG_STR. */
size_t config_str_max(size_t line_max, const char *name);

/* config_key_set: parse v for key k into the struct at base (struct config for the table's
 * rows, the section's struct for the repeated sections' rows; KT_SOURCE only in struct config;
 * strings longer than str_max refused). Returns 0 or -EINVAL with the reason in why. */
int config_key_set(const struct key *k, void *base, const char *v, size_t str_max, char *why,
		   size_t wl);

/* config_key_format: k's value in the struct at base as config_print writes it. */
void config_key_format(const struct key *k, const void *base, char *buf, size_t len);

/* ---- repeated sections (config_sets.c, config_route.c, config_sets_print.c) ---- */

enum sets_kind { SK_NONE, SK_ROUTE, SK_SHAPING, SK_BACKOFF, SK_POOL, SK_REWRITE };

/* One key given in a [route X] section, kept to replay it over the final [delivery]. */
struct route_key {
	const struct key *k; /* a [delivery] row, or a row of the route's own keys */
	unsigned line;
	char *value; /* heap */
};

struct route_build {
	struct route_key *keys; /* heap, in file order */
	unsigned n;
};

/* What the parser builds while it reads the file; config.c owns one per load. */
struct config_sets_build {
	struct config_sets *s;	/* heap (config_sets_free), NULL until a repeated section */
	struct route_build *rb; /* heap, one per s->routes */
	enum sets_kind kind;	/* the section being read (SK_NONE: a plain one) */
	unsigned cur;		/* its index in its array */
	size_t line_max;	/* longest line inih takes */
};

/* config_sets_builtin: the shared, read-only set of built-in backoff rules that
 * config_defaults points c->sets at (never freed, never written). */
struct config_sets *config_sets_builtin(void);

/* config_sets_section: a "[...]" header's text (between the brackets) at line. Returns 1 when
 * it is not a repeated section (b->kind = SK_NONE), 0 when it opened one (b->kind, b->cur),
 * -EINVAL with the reason in why (bad or duplicate name). */
int config_sets_section(struct config_sets_build *b, const char *text, unsigned line, char *why,
			size_t wl);

/* config_sets_key: key name = value at line in the current repeated section. 0 or -EINVAL
 * with the whole message ("unknown key ...", "invalid value for ...") in why. */
int config_sets_key(struct config_sets_build *b, const char *name, const char *value, unsigned line,
		    char *why, size_t wl);

/* config_route_key: the same for a [route X] section (config_route.c). */
int config_route_key(struct config_sets_build *b, const char *name, const char *value,
		     unsigned line, char *why, size_t wl);

/* config_sets_finish: after the whole file and [delivery]'s own checks: every route's cfg
 * from the final c plus its keys, pool sources' default EHLO names, and the rules across
 * sections. key_line[i]: line config_keys[i] was set on (0: default). Returns 0, or -EINVAL
 * with the reason in why and the line in *line. */
int config_sets_finish(struct config_sets_build *b, const struct config *c,
		       const unsigned *key_line, unsigned *line, char *why, size_t wl);

/* config_sets_build_free: the route key lists of b (not b->s). */
void config_sets_build_free(struct config_sets_build *b);

/* config_sets_plain: s holds nothing but the built-in backoff rules, unchanged (their lines
 * aside): config_sets_finish then drops it for the shared built-in set, so a file that only
 * restates them (config_print's output) loads to the same struct config as no file. */
bool config_sets_plain(const struct config_sets *s);

/* config_sets_free: free a heap set s (NULL and the built-in set are left alone). */
void config_sets_free(struct config_sets *s);

/* config_sets_print: the repeated sections of c, after [queue] (config_print). */
void config_sets_print(const struct config *c, FILE *f);

/* config_sets_keys: the rows of [shaping X] (SK_SHAPING; the CONFIG_SHAPE_* bit of row i is
 * 1 << i) or [backoff X] (SK_BACKOFF), offsets into their structs; *n their count. */
const struct key *config_sets_keys(enum sets_kind kind, size_t *n);

/* config_route_keys: the rows of a route's own keys (enabled, hosts, fallback_to_default),
 * offsets into struct config_route; *n their count. */
const struct key *config_route_keys(size_t *n);

/* config_sets_unknown / config_sets_invalid: the message "unknown key 'name' in [kind X]: ..."
 * or "invalid value for 'name' in [kind X]: reason" for the current section into why; both
 * return -EINVAL. */
int config_sets_unknown(const struct config_sets_build *b, const char *name, char *why, size_t wl);
int config_sets_invalid(const struct config_sets_build *b, const char *name, const char *reason,
			char *why, size_t wl);

/* config_grow: make room for element n of *arr (elements of size sz; capacity doubles at
 * powers of two, so nothing but n is kept). */
void config_grow(void *arr, unsigned n, size_t sz);

#endif
