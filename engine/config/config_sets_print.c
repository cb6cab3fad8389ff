/* config_sets_print — the repeated sections in config_print's output.
 *
 * Why apart: config.c prints the fixed sections from the key table; this file prints what
 * config_sets.c and config_route.c read, in a form they read back to the same values: a route
 * prints enabled, hosts, fallback_to_default and every [delivery] key whose value differs from
 * [delivery] (so it keeps inheriting the rest), a shaping rule the keys it was given, every
 * backoff rule (built-in ones too) with all its keys, a pool one `sources` line per source
 * (without the EHLO name when it is [delivery] helo_name, so no line outgrows inih's buffer),
 * and [rewrite] one line per address.
 */
#include "engine/config/config_int.h"

#include <stdio.h>
#include <string.h>

/* "name = value" (or "name =", or the secret's comment). */
static void print_kv(FILE *f, const char *name, const char *val, bool secret)
{
	if (secret && val[0])
		fprintf(f, "# %s = (set, not shown)\n", name);
	else if (val[0])
		fprintf(f, "%s = %s\n", name, val);
	else
		fprintf(f, "%s =\n", name); /* no trailing blank */
}

/* Rows[0..n) of the struct at base; only those whose bit is in given (all when given = ~0). */
static void print_rows(FILE *f, const struct key *rows, size_t n, const void *base, uint32_t given)
{
	char val[CONFIG_STR + 32];

	for (size_t i = 0; i < n; i++) {
		if (!(given & (1u << i)))
			continue;
		config_key_format(&rows[i], base, val, sizeof(val));
		print_kv(f, rows[i].name, val, false);
	}
}

static void print_route(FILE *f, const struct config *c, const struct config_route *r)
{
	char va[CONFIG_STR + 32], vb[CONFIG_STR + 32];
	size_t n;
	const struct key *own = config_route_keys(&n);

	fprintf(f, "\n[route %s]\n", r->name);
	print_rows(f, own, n, r, ~0u);
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct key *k = &config_keys[i];

		if (strcmp(k->section, "delivery") != 0)
			continue;
		config_key_format(k, c, va, sizeof(va));
		config_key_format(k, &r->cfg, vb, sizeof(vb));
		if (strcmp(va, vb) != 0)
			print_kv(f, k->name, vb, k->flags & KF_SECRET);
	}
}

static void print_pool(FILE *f, const struct config *c, const struct config_pool *p)
{
	fprintf(f, "\n[pool %s]\n", p->name);
	for (unsigned i = 0; i < p->nsources; i++) {
		const struct config_source *src = &p->sources[i];

		if (strcmp(src->helo, c->helo_name) == 0)
			fprintf(f, "sources = %s\n", src->text);
		else
			fprintf(f, "sources = %s %s\n", src->text, src->helo);
	}
}

/* config_sets_print: see config_int.h. */
void config_sets_print(const struct config *c, FILE *f)
{
	const struct config_sets *s = c->sets;
	const struct key *rows;
	size_t n;

	if (!s)
		return;
	for (unsigned i = 0; i < s->nroutes; i++)
		print_route(f, c, &s->routes[i]);
	rows = config_sets_keys(SK_SHAPING, &n);
	for (unsigned i = 0; i < s->nshapings; i++) {
		fprintf(f, "\n[shaping %s]\n", s->shapings[i].name);
		print_rows(f, rows, n, &s->shapings[i], s->shapings[i].given);
	}
	rows = config_sets_keys(SK_BACKOFF, &n);
	for (unsigned i = 0; i < s->nbackoffs; i++) {
		fprintf(f, "\n[backoff %s]\n", s->backoffs[i].name);
		print_rows(f, rows, n, &s->backoffs[i], ~0u);
	}
	for (unsigned i = 0; i < s->npools; i++)
		print_pool(f, c, &s->pools[i]);
	if (s->nrewrites)
		fprintf(f, "\n[rewrite]\n");
	for (unsigned i = 0; i < s->nrewrites; i++)
		fprintf(f, "%s = %s\n", s->rewrites[i].from, s->rewrites[i].to);
}
