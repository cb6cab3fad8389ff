/* config_route — [route X] sections, and the rules checked once the whole file is read.
 *
 * Why keys are kept and replayed: a route takes every [delivery] key, and its cfg must be the
 * final [delivery] values overridden by the route's own keys, whether [delivery] comes before
 * or after the route in the file (or is given twice). So each key is checked at its line (the
 * error names it) against a scratch cfg, and kept as text; config_sets_finish then copies the
 * final [delivery] into the route and sets the kept keys again, in file order. The setters are
 * pure functions of the text, so what passed once passes again.
 *
 * Rules across keys of a route are [delivery]'s (mode = relay needs relay, auth_user and
 * auth_password together), named by the route's lines (its header's when the keys involved
 * came from [delivery]), plus: `hosts` with an explicit `mode = relay` is ambiguous.
 */
#include "engine/config/config_int.h"
#include "engine/util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
#define RO(f) offsetof(struct config_route, f)
static const struct key route_keys[] = {
    {"route", "enabled", KT_BOOL, 0, RO(enabled), 0, 0, NULL},
    {"route", "hosts", KT_STR, KF_EMPTY_OK | KF_HOSTS, RO(hosts), 0, 0, NULL},
    {"route", "fallback_to_default", KT_BOOL, 0, RO(fallback_to_default), 0, 0, NULL},
};
/* clang-format on */

/* config_route_keys: the route's own rows (enabled, hosts, fallback_to_default); *n their
 * count. */
const struct key *config_route_keys(size_t *n)
{
	*n = ARRAY_SIZE(route_keys);
	return route_keys;
}

/* config_route_key: see config_int.h. */
int config_route_key(struct config_sets_build *b, const char *name, const char *value,
		     unsigned line, char *why, size_t wl)
{
	struct config_route *r = &b->s->routes[b->cur];
	struct route_build *rb = &b->rb[b->cur];
	const struct key *k = NULL;
	void *base = r;
	char reason[320];

	for (size_t i = 0; i < ARRAY_SIZE(route_keys) && !k; i++)
		if (strcmp(route_keys[i].name, name) == 0)
			k = &route_keys[i];
	if (!k) {
		k = config_key_find("delivery", name);
		base = &r->cfg;
	}
	if (!k)
		return config_sets_unknown(b, name, why, wl);
	if (config_key_set(k, base, value, config_str_max(b->line_max, name), reason,
			   sizeof(reason)) < 0)
		return config_sets_invalid(b, name, reason, why, wl);
	config_grow(&rb->keys, rb->n, sizeof(*rb->keys));
	rb->keys[rb->n++] = (struct route_key){k, line, util_xstrndup(value, strlen(value))};
	return 0;
}

/* config_sets_build_free: see config_int.h. */
void config_sets_build_free(struct config_sets_build *b)
{
	for (unsigned i = 0; b->s && b->rb && i < b->s->nroutes; i++) {
		for (unsigned j = 0; j < b->rb[i].n; j++)
			free(b->rb[i].keys[j].value);
		free(b->rb[i].keys);
	}
	free(b->rb);
	b->rb = NULL;
}

/* The line key name was last set on in the route (0: not set there). */
static unsigned rk_set(const struct route_build *rb, const char *name)
{
	unsigned line = 0;

	for (unsigned i = 0; i < rb->n; i++)
		if (strcmp(rb->keys[i].k->name, name) == 0)
			line = rb->keys[i].line;
	return line;
}

/* The later line of route keys a and b, or the route's header line when neither is set. */
static unsigned rk_line(const struct config_route *r, const struct route_build *rb, const char *a,
			const char *b)
{
	unsigned la = rk_set(rb, a), lb = rk_set(rb, b), line = la > lb ? la : lb;

	return line ? line : r->line;
}

static bool pool_named(const struct config_sets *s, const char *name)
{
	for (unsigned i = 0; i < s->npools; i++)
		if (strcmp(s->pools[i].name, name) == 0)
			return true;
	return false;
}

/* r->cfg = c, then the route's [delivery] keys again, in file order. */
static void route_inherit(struct config_route *r, const struct route_build *rb,
			  const struct config *c)
{
	char why[320];

	r->cfg = *c;
	r->cfg.sets = NULL;
	for (unsigned i = 0; i < rb->n; i++)
		if (rb->keys[i].k->section[0] == 'd') /* "delivery" */
			BUG_ON(config_key_set(rb->keys[i].k, &r->cfg, rb->keys[i].value,
					      CONFIG_STR - 1, why, sizeof(why)) < 0);
	if (r->cfg.helo_name[0] == '\0') /* as in [delivery]: the hostname */
		memcpy(r->cfg.helo_name, r->cfg.hostname, sizeof(r->cfg.helo_name));
}

/* The rules across one route's keys: NULL, or the reason with *line set. */
static const char *route_rule(const struct config_sets *s, const struct config_route *r,
			      const struct route_build *rb, unsigned *line)
{
	const struct config *c = &r->cfg;

	if (r->hosts[0] && c->mode == CONFIG_MODE_RELAY && rk_set(rb, "mode")) {
		*line = rk_line(r, rb, "hosts", "mode");
		return "sets both hosts and mode = relay (hosts, or mode = relay with relay)";
	}
	if (!r->hosts[0] && c->mode == CONFIG_MODE_RELAY && !c->relay[0]) {
		*line = rk_line(r, rb, "mode", "relay");
		return "mode = relay but relay is empty (set relay = host:port, or hosts)";
	}
	if (!c->auth_user[0] != !c->auth_password[0]) {
		*line = rk_line(r, rb, "auth_user", "auth_password");
		return c->auth_user[0] ? "auth_user is set but auth_password is empty"
				       : "auth_password is set but auth_user is empty";
	}
	if (rk_set(rb, "default_pool") && c->default_pool[0] && !pool_named(s, c->default_pool)) {
		*line = rk_set(rb, "default_pool");
		return "default_pool names no [pool] section";
	}
	return NULL;
}

/* A rule touched by the file must match something; NULL or the reason. */
static const char *backoff_rule(const struct config_backoff *r)
{
	if (r->line && !r->code && !r->enhanced[0] && !r->text[0])
		return "matches every reply: set code, enhanced or text";
	return NULL;
}

/* Every pool has a source; sources without an EHLO name take c's helo_name. */
static int pools_finish(const struct config_sets *s, const struct config *c, unsigned *line,
			char *why, size_t wl)
{
	for (unsigned i = 0; i < s->npools; i++) {
		if (s->pools[i].nsources == 0) {
			*line = s->pools[i].line;
			snprintf(why, wl, "[pool %s] has no sources", s->pools[i].name);
			return -EINVAL;
		}
		for (unsigned j = 0; j < s->pools[i].nsources; j++)
			if (!s->pools[i].sources[j].helo[0])
				memcpy(s->pools[i].sources[j].helo, c->helo_name, CONFIG_STR);
	}
	return 0;
}

/* config_sets_finish: see config_int.h. */
int config_sets_finish(struct config_sets_build *b, const struct config *c,
		       const unsigned *key_line, unsigned *line, char *why, size_t wl)
{
	const struct config_sets *s = b->s ? b->s : config_sets_builtin();
	const struct key *dp = config_key_find("delivery", "default_pool");
	const char *what;

	if (c->default_pool[0] && !pool_named(s, c->default_pool)) {
		*line = key_line[dp - config_keys];
		snprintf(why, wl, "[delivery] default_pool '%s' names no [pool] section",
			 c->default_pool);
		return -EINVAL;
	}
	for (unsigned i = 0; i < s->nroutes; i++) {
		route_inherit(&s->routes[i], &b->rb[i], c);
		if ((what = route_rule(s, &s->routes[i], &b->rb[i], line))) {
			snprintf(why, wl, "[route %s] %s", s->routes[i].name, what);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < s->nbackoffs; i++) {
		if ((what = backoff_rule(&s->backoffs[i]))) {
			*line = s->backoffs[i].line;
			snprintf(why, wl, "[backoff %s] %s", s->backoffs[i].name, what);
			return -EINVAL;
		}
	}
	if (pools_finish(s, c, line, why, wl) < 0)
		return -EINVAL;
	if (b->s && config_sets_plain(b->s)) {
		config_sets_build_free(b);
		config_sets_free(b->s);
		b->s = NULL;
	}
	return 0;
}
