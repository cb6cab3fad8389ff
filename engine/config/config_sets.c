/* config_sets — the repeated sections: [route X], [shaping X], [backoff X], [pool X] and
 * [rewrite]: their headers, names, keys, built-in backoff rules, and freeing.
 *
 * Why apart from config.c: these sections have many instances, live on the heap (struct
 * config_sets) and have keys of their own; config.c stays the INI machinery and the fixed
 * sections. Each kind's keys are rows of the same struct key as the main table, with offsets
 * into the section's struct, so parsing and printing reuse config_set.c's setters. Routes
 * (every [delivery] key, inherited whatever the order in the file) are in config_route.c.
 *
 * Names: inih hands section names over verbatim, so "[route Example.COM]" is split here into
 * kind and name; route and shaping names are domains and are stored in lower case. A second
 * section of one kind and name is an error naming its line; [backoff gmail] (or outlook,
 * yahoo) changes the built-in rule, starting from its values.
 */
#include "engine/config/config_int.h"
#include "engine/config/config_val.h"
#include "engine/util/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- built-in backoff rules ---- */

#define BUILTIN(nm, cd, enh, txt, act, dur, fac)                                                   \
	{                                                                                          \
		.name = nm, .enabled = true, .code = cd, .enhanced = enh, .text = txt,             \
		.action = act, .duration_ms = dur, .factor = fac, .recover_steps = 4,              \
		.recover_interval_ms = MS_MIN, .builtin = true                                     \
	}

static const struct config_backoff builtin_backoffs[] = {
    BUILTIN("gmail", 421, "4.7.28", "", CONFIG_BACKOFF_SUSPEND, 10 * MS_MIN, 0.5),
    BUILTIN("outlook", 451, "4.7.650", "", CONFIG_BACKOFF_REDUCE, 30 * MS_MIN, 0.5),
    BUILTIN("yahoo", 421, "4.7.0", "\\[TSS04\\]", CONFIG_BACKOFF_SUSPEND, 30 * MS_MIN, 0.5),
};

static const struct config_sets builtin_sets = {
    .backoffs = (struct config_backoff *)builtin_backoffs,
    .nbackoffs = ARRAY_SIZE(builtin_backoffs),
};

/* config_sets_builtin: see config_int.h. The set lives in read-only memory: a write through
 * it faults instead of changing every config. */
struct config_sets *config_sets_builtin(void)
{
	return (struct config_sets *)&builtin_sets;
}

/* ---- the keys of each kind ---- */

/* clang-format off */
#define SH(f) offsetof(struct config_shaping, f)
#define BO(f) offsetof(struct config_backoff, f)
static const struct key shaping_keys[] = {
    {"shaping", "max_connections", KT_UINT, 0, SH(max_connections), 1, 1000000, NULL},
    {"shaping", "max_messages_per_connection", KT_UINT, 0, SH(max_messages_per_connection), 1,
     1000000, NULL},
    {"shaping", "max_recipients_per_transaction", KT_UINT, 0,
     SH(max_recipients_per_transaction), 1, 100000, NULL},
    {"shaping", "max_message_rate", KT_RATE, 0, SH(max_message_rate), 0, 0, NULL},
    {"shaping", "max_connection_rate", KT_RATE, 0, SH(max_connection_rate), 0, 0, NULL},
    {"shaping", "connect_timeout", KT_DURATION, 0, SH(connect_timeout_ms), 1, MS_D, NULL},
    {"shaping", "tls", KT_ENUM, 0, SH(tls), ENUM_TLS, 0, NULL},
};
/* the CONFIG_SHAPE_* bit of shaping_keys[i] is 1 << i */

static const struct key backoff_keys[] = {
    {"backoff", "enabled", KT_BOOL, 0, BO(enabled), 0, 0, NULL},
    {"backoff", "code", KT_UINT, 0, BO(code), 0, 599, NULL},
    {"backoff", "enhanced", KT_STR, KF_EMPTY_OK | KF_TOKEN, BO(enhanced), 0, 0, NULL},
    {"backoff", "text", KT_STR, KF_EMPTY_OK, BO(text), 0, 0, NULL},
    {"backoff", "action", KT_ENUM, 0, BO(action), ENUM_ACTION, 0, NULL},
    {"backoff", "duration", KT_DURATION, 0, BO(duration_ms), MS_S, 30 * MS_D, NULL},
    {"backoff", "factor", KT_FACTOR, 0, BO(factor), 0, 1, NULL},
    {"backoff", "recover_steps", KT_UINT, 0, BO(recover_steps), 1, 100, NULL},
    {"backoff", "recover_interval", KT_DURATION, 0, BO(recover_interval_ms), MS_S, MS_D, NULL},
};
/* clang-format on */

_Static_assert(ARRAY_SIZE(shaping_keys) == 7, "one CONFIG_SHAPE_* bit per shaping key");

/* config_sets_keys: the rows of kind (for config_sets_print), *n set to their count. */
const struct key *config_sets_keys(enum sets_kind kind, size_t *n)
{
	*n = kind == SK_SHAPING	  ? ARRAY_SIZE(shaping_keys)
	     : kind == SK_BACKOFF ? ARRAY_SIZE(backoff_keys)
				  : 0;
	return kind == SK_SHAPING ? shaping_keys : kind == SK_BACKOFF ? backoff_keys : NULL;
}

/* ---- heap ---- */

/* config_grow: see config_int.h. */
void config_grow(void *arr, unsigned n, size_t sz)
{
	void **p = arr;

	if ((n & (n - 1)) == 0) /* 0, 1, 2, 4, ...: full */
		*p = util_xrealloc(*p, (n ? 2 * (size_t)n : 1) * sz);
}

/* config_sets_free: see config_int.h. */
void config_sets_free(struct config_sets *s)
{
	if (!s || s == &builtin_sets)
		return;
	for (unsigned i = 0; i < s->npools; i++)
		free(s->pools[i].sources);
	free(s->routes);
	free(s->shapings);
	free(s->backoffs);
	free(s->pools);
	free(s->rewrites);
	free(s);
}

/* config_free: see config.h. */
void config_free(struct config *c)
{
	if (!c)
		return;
	config_sets_free(c->sets);
	c->sets = NULL;
}

/* config_pool_find: see config.h. */
const struct config_pool *config_pool_find(const struct config *c, const char *name)
{
	for (unsigned i = 0; c->sets && name && i < c->sets->npools; i++)
		if (strcmp(c->sets->pools[i].name, name) == 0)
			return &c->sets->pools[i];
	return NULL;
}

static bool backoff_same(const struct config_backoff *a, const struct config_backoff *b)
{
	return strcmp(a->name, b->name) == 0 && a->enabled == b->enabled && a->code == b->code &&
	       strcmp(a->enhanced, b->enhanced) == 0 && strcmp(a->text, b->text) == 0 &&
	       a->action == b->action && a->duration_ms == b->duration_ms &&
	       a->factor == b->factor && a->recover_steps == b->recover_steps &&
	       a->recover_interval_ms == b->recover_interval_ms && a->builtin == b->builtin;
}

/* config_sets_plain: see config_int.h. */
bool config_sets_plain(const struct config_sets *s)
{
	if (s->nroutes || s->nshapings || s->npools || s->nrewrites ||
	    s->nbackoffs != ARRAY_SIZE(builtin_backoffs))
		return false;
	for (unsigned i = 0; i < s->nbackoffs; i++)
		if (!backoff_same(&s->backoffs[i], &builtin_backoffs[i]))
			return false;
	return true;
}

/* The heap set of b, made on the first repeated section (a copy of the built-in rules). */
static struct config_sets *sets_of(struct config_sets_build *b)
{
	if (!b->s) {
		b->s = util_xcalloc(1, sizeof(*b->s));
		b->s->backoffs = util_xcalloc(4, sizeof(*b->s->backoffs));
		memcpy(b->s->backoffs, builtin_backoffs, sizeof(builtin_backoffs));
		b->s->nbackoffs = ARRAY_SIZE(builtin_backoffs);
	}
	return b->s;
}

/* ---- section names ---- */

/* A domain or "*.domain" (wild: allowed), lower-cased in place. */
static bool domain_name_ok(char *name, bool wild)
{
	const char *d = wild && strncmp(name, "*.", 2) == 0 ? name + 2 : name;

	for (char *q = name; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return util_host_name_ok(d) && !util_host_is_numeric(d);
}

/* A shaping destination: a domain, "*.domain", "mx:" and printable characters, or a relay's
 * destination name "host:port" (as the delivery log's dest= shows it). */
static bool shaping_name_ok(char *name)
{
	char host[UTIL_HOST_MAX];
	uint16_t port;

	if (strncasecmp(name, "mx:", 3) != 0 && strchr(name, ':') &&
	    util_hostport_parse(name, host, sizeof(host), &port, 0) == 0) {
		for (char *q = name; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		return true;
	}
	if (strncasecmp(name, "mx:", 3) != 0)
		return domain_name_ok(name, true);
	for (char *q = name; *q; q++) {
		if (*q <= ' ' || *q >= 0x7f)
			return false;
		*q = (char)tolower((unsigned char)*q);
	}
	return name[3] != '\0';
}

/* A backoff or pool name: [A-Za-z0-9_.-]+. */
static bool token_name_ok(const char *name)
{
	return name[0] && name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					    "0123456789_.-")] == '\0';
}

static const char *const kind_names[] = {[SK_ROUTE] = "route",
					 [SK_SHAPING] = "shaping",
					 [SK_BACKOFF] = "backoff",
					 [SK_POOL] = "pool",
					 [SK_REWRITE] = "rewrite"};

/* Split text into a kind (return, SK_NONE if not one of ours) and its name (name, cap). */
static enum sets_kind split_header(const char *text, char *name, size_t cap, bool *bad)
{
	size_t klen = strcspn(text, " \t"), nlen;
	const char *n;

	*bad = false;
	for (int k = SK_ROUTE; k <= SK_REWRITE; k++) {
		if (strlen(kind_names[k]) != klen || strncmp(text, kind_names[k], klen) != 0)
			continue;
		n = text + klen + strspn(text + klen, " \t");
		nlen = strlen(n);
		while (nlen && (n[nlen - 1] == ' ' || n[nlen - 1] == '\t'))
			nlen--;
		*bad = nlen >= cap || memchr(n, ' ', nlen) || memchr(n, '\t', nlen);
		if (!*bad)
			memcpy(name, n, nlen), name[nlen] = '\0';
		return (enum sets_kind)k;
	}
	return SK_NONE;
}

/* Whether name fits kind, else the reason in why. name may be lower-cased. */
static bool name_ok(enum sets_kind kind, char *name, char *why, size_t wl)
{
	static const char *const forms[] = {
	    [SK_ROUTE] = "a domain: [route example.com] or [route *.example.com]",
	    [SK_SHAPING] = "a domain, *.domain, a site or a relay: [shaping example.com], "
			   "[shaping mx:NAME], [shaping 127.0.0.1:25]",
	    [SK_BACKOFF] = "letters, digits, '_', '.', '-': [backoff NAME]",
	    [SK_POOL] = "letters, digits, '_', '.', '-', at most 63: [pool NAME]",
	    [SK_REWRITE] = "no name: [rewrite]"};
	bool ok = kind == SK_REWRITE   ? name[0] == '\0'
		  : kind == SK_ROUTE   ? domain_name_ok(name, true)
		  : kind == SK_SHAPING ? shaping_name_ok(name)
				       : token_name_ok(name);

	if (kind == SK_POOL && strlen(name) > 63)
		ok = false;
	if (!ok && kind == SK_REWRITE)
		snprintf(why, wl, "[rewrite %s]: [rewrite] takes no name", name);
	else if (!ok && name[0])
		snprintf(why, wl, "[%s %s]: '%s' is not %s", kind_names[kind], name, name,
			 forms[kind]);
	else if (!ok)
		snprintf(why, wl, "[%s] needs a name: %s", kind_names[kind], forms[kind]);
	return ok;
}

/* ---- opening a section ---- */

/* The line of the section of kind named name already read (0: none); *idx its index. */
static unsigned section_seen(const struct config_sets *s, enum sets_kind kind, const char *name,
			     unsigned *idx)
{
	unsigned n = kind == SK_ROUTE	  ? s->nroutes
		     : kind == SK_SHAPING ? s->nshapings
		     : kind == SK_BACKOFF ? s->nbackoffs
		     : kind == SK_POOL	  ? s->npools
					  : 0;

	for (*idx = 0; *idx < n; (*idx)++) {
		const char *nm = kind == SK_ROUTE     ? s->routes[*idx].name
				 : kind == SK_SHAPING ? s->shapings[*idx].name
				 : kind == SK_BACKOFF ? s->backoffs[*idx].name
						      : s->pools[*idx].name;
		unsigned line = kind == SK_ROUTE     ? s->routes[*idx].line
				: kind == SK_SHAPING ? s->shapings[*idx].line
				: kind == SK_BACKOFF ? s->backoffs[*idx].line
						     : s->pools[*idx].line;

		if (strcmp(nm, name) == 0)
			return line ? line : UINT32_MAX; /* an untouched built-in rule */
	}
	return 0;
}

static void backoff_add(struct config_sets *s, const char *name, unsigned line)
{
	struct config_backoff *r;

	config_grow(&s->backoffs, s->nbackoffs, sizeof(*s->backoffs));
	r = &s->backoffs[s->nbackoffs++];
	*r = (struct config_backoff){.enabled = true,
				     .action = CONFIG_BACKOFF_SUSPEND,
				     .duration_ms = 10 * MS_MIN,
				     .factor = 0.5,
				     .recover_steps = 4,
				     .recover_interval_ms = MS_MIN,
				     .line = line};
	snprintf(r->name, sizeof(r->name), "%s", name);
}

/* A new entry of kind named name at line, at the end of its array. */
static void section_add(struct config_sets_build *b, enum sets_kind kind, const char *name,
			unsigned line)
{
	struct config_sets *s = b->s;

	if (kind == SK_ROUTE) {
		config_grow(&s->routes, s->nroutes, sizeof(*s->routes));
		config_grow(&b->rb, s->nroutes, sizeof(*b->rb));
		b->rb[s->nroutes] = (struct route_build){0};
		s->routes[s->nroutes] = (struct config_route){.enabled = true, .line = line};
		snprintf(s->routes[s->nroutes++].name, CONFIG_STR, "%s", name);
	} else if (kind == SK_SHAPING) {
		config_grow(&s->shapings, s->nshapings, sizeof(*s->shapings));
		s->shapings[s->nshapings] = (struct config_shaping){.line = line};
		snprintf(s->shapings[s->nshapings++].name, CONFIG_STR, "%s", name);
	} else if (kind == SK_BACKOFF) {
		backoff_add(s, name, line);
	} else if (kind == SK_POOL) {
		config_grow(&s->pools, s->npools, sizeof(*s->pools));
		s->pools[s->npools] = (struct config_pool){.line = line};
		snprintf(s->pools[s->npools++].name, 64, "%s", name);
	}
}

/* config_sets_section: see config_int.h. */
int config_sets_section(struct config_sets_build *b, const char *text, unsigned line, char *why,
			size_t wl)
{
	char name[CONFIG_STR];
	unsigned seen, idx;
	bool bad;

	b->kind = split_header(text, name, sizeof(name), &bad);
	if (b->kind == SK_NONE)
		return 1;
	if (bad) {
		snprintf(why, wl, "[%s]: the %s name must be one word of at most %d bytes", text,
			 kind_names[b->kind], CONFIG_STR - 1);
		return -EINVAL;
	}
	if (!name_ok(b->kind, name, why, wl))
		return -EINVAL;
	if (b->kind == SK_REWRITE) {
		sets_of(b);
		return 0;
	}
	seen = section_seen(sets_of(b), b->kind, name, &idx);
	if (seen && seen != UINT32_MAX) {
		snprintf(why, wl, "duplicate section [%s %s] (first at line %u)",
			 kind_names[b->kind], name, seen);
		return -EINVAL;
	}
	if (seen) { /* [backoff gmail]: the built-in rule, from its values */
		b->s->backoffs[idx].line = line;
		b->cur = idx;
		return 0;
	}
	section_add(b, b->kind, name, line);
	b->cur = idx;
	return 0;
}

/* ---- keys ---- */

/* "[kind name]" of the current section, for messages. */
static const char *label(const struct config_sets_build *b, char *buf, size_t len)
{
	const struct config_sets *s = b->s;
	const char *name = b->kind == SK_ROUTE	   ? s->routes[b->cur].name
			   : b->kind == SK_SHAPING ? s->shapings[b->cur].name
			   : b->kind == SK_BACKOFF ? s->backoffs[b->cur].name
			   : b->kind == SK_POOL	   ? s->pools[b->cur].name
						   : NULL;

	snprintf(buf, len, "[%s%s%s]", kind_names[b->kind], name ? " " : "", name ? name : "");
	return buf;
}

/* config_sets_unknown: "unknown key 'x' in [kind name]: ..." into why; returns -EINVAL. */
int config_sets_unknown(const struct config_sets_build *b, const char *name, char *why, size_t wl)
{
	const struct key *other = config_key_find_any(name);
	char l[CONFIG_STR + 16];

	if (other)
		snprintf(why, wl, "unknown key '%s' in %s: it belongs in [%s]", name,
			 label(b, l, sizeof(l)), other->section);
	else
		snprintf(why, wl, "unknown key '%s' in %s: no such setting", name,
			 label(b, l, sizeof(l)));
	return -EINVAL;
}

/* config_sets_invalid: "invalid value for 'x' in [kind name]: <reason>" into why. */
int config_sets_invalid(const struct config_sets_build *b, const char *name, const char *reason,
			char *why, size_t wl)
{
	char l[CONFIG_STR + 16];

	snprintf(why, wl, "invalid value for '%s' in %s: %s", name, label(b, l, sizeof(l)), reason);
	return -EINVAL;
}

/* "d.d{1,3}.d{1,3}" with class 2, 4 or 5 (RFC 3463). */
static bool enhanced_ok(const char *v)
{
	size_t a, b;

	if (!(v[0] == '2' || v[0] == '4' || v[0] == '5') || v[1] != '.')
		return false;
	a = strspn(v + 2, "0123456789");
	if (a < 1 || a > 3 || v[2 + a] != '.')
		return false;
	b = strspn(v + 3 + a, "0123456789");
	return b >= 1 && b <= 3 && v[3 + a + b] == '\0';
}

/* The backoff rules one value cannot break by type: code, enhanced, text, factor. */
static int backoff_check(const struct key *k, const struct config_backoff *r, char *reason,
			 size_t rl)
{
	regex_t re;
	int rc;

	if (k->off == BO(code) && r->code != 0 && r->code < 200)
		snprintf(reason, rl, "%u is not 0 (any) or a reply code 200..599", r->code);
	else if (k->off == BO(enhanced) && r->enhanced[0] && !enhanced_ok(r->enhanced))
		snprintf(reason, rl, "'%s' is not an enhanced status code (e.g. 4.7.28)",
			 r->enhanced);
	else if (k->off == BO(factor) && !(r->factor > 0 && r->factor < 1))
		snprintf(reason, rl, "%g is not greater than 0 and less than 1", r->factor);
	else if (k->off == BO(text) && r->text[0] &&
		 (rc = regcomp(&re, r->text, REG_EXTENDED | REG_ICASE | REG_NOSUB)) != 0) {
		char msg[128];

		regerror(rc, &re, msg, sizeof(msg));
		snprintf(reason, rl, "not a POSIX extended regular expression: %.100s", msg);
	} else {
		if (k->off == BO(text) && r->text[0])
			regfree(&re);
		return 0;
	}
	return -EINVAL;
}

/* name = value in a [shaping X] or [backoff X] section. */
static int table_key(struct config_sets_build *b, const char *name, const char *value, char *why,
		     size_t wl)
{
	size_t n, max = config_str_max(b->line_max, name);
	const struct key *rows = config_sets_keys(b->kind, &n), *k = NULL;
	void *base = b->kind == SK_SHAPING ? (void *)&b->s->shapings[b->cur]
					   : (void *)&b->s->backoffs[b->cur];
	char reason[320];

	for (size_t i = 0; i < n && !k; i++)
		if (strcmp(rows[i].name, name) == 0)
			k = &rows[i];
	if (!k)
		return config_sets_unknown(b, name, why, wl);
	if (k->off == BO(enhanced) && b->kind == SK_BACKOFF && max > 31)
		max = 31;
	if (config_key_set(k, base, value, max, reason, sizeof(reason)) < 0 ||
	    (b->kind == SK_BACKOFF && backoff_check(k, base, reason, sizeof(reason)) < 0))
		return config_sets_invalid(b, name, reason, why, wl);
	if (b->kind == SK_SHAPING)
		b->s->shapings[b->cur].given |= 1u << (k - rows);
	return 0;
}

/* ---- [pool X] sources ---- */

#define POOL_MAX_SOURCES 1024

/* The address literal a into *out (port 0). */
static bool source_addr(const char *a, struct util_addr *out)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		out->len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		out->len = sizeof(*s6);
	} else {
		return false;
	}
	out->family = s4->sin_family;
	return true;
}

/* The next blank-separated word of *p (NUL-terminated in place; "" at the end). */
static char *word(char **p)
{
	char *w = *p + strspn(*p, " \t"), *end = w + strcspn(w, " \t");

	*p = *end ? end + 1 : end;
	*end = '\0';
	return w;
}

/* Split item "ADDRESS [HELO]" (blanks around allowed) into src; NULL or the reason. */
static const char *source_parse(char *item, struct config_source *src, size_t line_max)
{
	char *addr = word(&item), *helo = word(&item);

	if (!*addr)
		return "an empty item (sources are separated by ',')";
	if (*word(&item))
		return "one address and at most one EHLO name per item";
	if (strlen(addr) >= sizeof(src->text) || !source_addr(addr, &src->addr))
		return "not an IPv4 or IPv6 address (no port)";
	for (const char *q = helo; *q; q++)
		if ((unsigned char)*q < 0x21 || *q == 0x7f)
			return "the EHLO name has control characters";
	if (helo[0] == ';')
		return "the EHLO name starts with ';'";
	/* printed back as "sources = ADDRESS HELO" on one line */
	if (strlen(helo) >= sizeof(src->helo) || 11 + strlen(addr) + strlen(helo) > line_max)
		return "the EHLO name is too long";
	memcpy(src->text, addr, strlen(addr) + 1);
	memcpy(src->helo, helo, strlen(helo) + 1);
	return NULL;
}

/* One source item (n bytes at p) into pool; 0 or -EINVAL with the reason. */
static int source_add(struct config_pool *pool, const char *p, size_t n, size_t line_max,
		      char *reason, size_t rl)
{
	char item[512];
	struct config_source src = {0};
	const char *bad = n < sizeof(item) ? NULL : "an item is too long";

	if (!bad) {
		memcpy(item, p, n);
		item[n] = '\0';
		bad = source_parse(item, &src, line_max);
	}
	for (unsigned i = 0; !bad && i < pool->nsources; i++)
		if (memcmp(&pool->sources[i].addr, &src.addr, sizeof(src.addr)) == 0)
			bad = "this address is already in the pool";
	if (!bad && pool->nsources >= POOL_MAX_SOURCES)
		bad = "too many sources (at most 1024 per pool)";
	if (bad) {
		snprintf(reason, rl, "'%.*s': %s", (int)n, p, bad);
		return -EINVAL;
	}
	config_grow(&pool->sources, pool->nsources, sizeof(*pool->sources));
	pool->sources[pool->nsources++] = src;
	return 0;
}

/* sources = "ADDRESS [HELO], ..." in the current [pool X]: adds to its sources. */
static int pool_sources(struct config_sets_build *b, const char *v, char *why, size_t wl)
{
	struct config_pool *pool = &b->s->pools[b->cur];
	char reason[640];
	const char *p = v;

	if (v[0] == '\0')
		return config_sets_invalid(b, "sources", "no source given", why, wl);
	for (;;) {
		size_t n = strcspn(p, ",");

		if (source_add(pool, p, n, b->line_max, reason, sizeof(reason)) < 0)
			return config_sets_invalid(b, "sources", reason, why, wl);
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

/* ---- [rewrite] ---- */

/* local@domain: no blanks, control characters, '<' or '>'; fits CONFIG_STR. */
static bool address_ok(const char *a)
{
	const char *at = strrchr(a, '@');

	if (!at || at == a || !at[1] || strlen(a) >= CONFIG_STR || a[0] == ';')
		return false;
	for (; *a; a++)
		if ((unsigned char)*a <= ' ' || *a == 0x7f || *a == '<' || *a == '>')
			return false;
	return true;
}

/* from = to in [rewrite]. */
static int rewrite_add(struct config_sets_build *b, const char *from, const char *to, unsigned line,
		       char *why, size_t wl)
{
	struct config_sets *s = b->s;
	struct config_rewrite r = {.line = line};
	char reason[CONFIG_STR + 64];

	if (!address_ok(from))
		snprintf(reason, sizeof(reason), "'%s' is not an address (local@domain)", from);
	else if (!address_ok(to))
		snprintf(reason, sizeof(reason), "'%s' is not an address (local@domain)", to);
	else if (strlen(from) + 3 + strlen(to) > b->line_max)
		snprintf(reason, sizeof(reason), "'%s = %s' is too long for one line", from, to);
	else
		reason[0] = '\0';
	if (reason[0])
		return config_sets_invalid(b, from, reason, why, wl);
	for (size_t i = 0; from[i]; i++)
		r.from[i] = (char)tolower((unsigned char)from[i]);
	snprintf(r.to, sizeof(r.to), "%s", to);
	for (unsigned i = 0; i < s->nrewrites; i++) {
		if (strcmp(s->rewrites[i].from, r.from) == 0) {
			snprintf(why, wl, "duplicate address '%s' in [rewrite] (first at line %u)",
				 r.from, s->rewrites[i].line);
			return -EINVAL;
		}
	}
	config_grow(&s->rewrites, s->nrewrites, sizeof(*s->rewrites));
	s->rewrites[s->nrewrites++] = r;
	return 0;
}

/* config_sets_key: see config_int.h. */
int config_sets_key(struct config_sets_build *b, const char *name, const char *value, unsigned line,
		    char *why, size_t wl)
{
	switch (b->kind) {
	case SK_ROUTE:
		return config_route_key(b, name, value, line, why, wl);
	case SK_SHAPING:
	case SK_BACKOFF:
		return table_key(b, name, value, why, wl);
	case SK_POOL:
		if (strcmp(name, "sources") != 0)
			return config_sets_unknown(b, name, why, wl);
		return pool_sources(b, value, why, wl);
	case SK_REWRITE:
		return rewrite_add(b, name, value, line, why, wl);
	case SK_NONE:
		break;
	}
	BUG_ON(1);
	return -EINVAL;
}
