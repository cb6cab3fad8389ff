/* config_int — what the key table and its setters share inside engine/config/.
 *
 * Why: config.c (the table, INI parsing, validation, printing) and config_set.c (parsing and
 * formatting one value of each type) both walk struct key rows. Nothing outside engine/config/
 * includes this header.
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

enum { ENUM_MODE, ENUM_ORIGINAL, ENUM_TLS, ENUM_VERIFY, ENUM_SENDER };

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

/* config_key_set: parse v for key k into c (strings longer than str_max refused). Returns 0
 * or -EINVAL with the reason in why (wl bytes). */
int config_key_set(const struct key *k, struct config *c, const char *v, size_t str_max,
		   char *why, size_t wl);

/* config_key_format: k's value in c as config_print writes it (buf of len bytes). */
void config_key_format(const struct key *k, const struct config *c, char *buf, size_t len);

#endif
