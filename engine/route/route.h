/* route — which destination a recipient goes to, and which shard owns that destination.
 *
 * Why: a message is split into one delivery unit per destination, and each destination is owned
 * by one shard (independent mode) so its connections, throttles and state live on one thread.
 * This is pure logic over strings, unit-tested without a loop: the daemon groups a message's
 * recipients at acceptance (route_group) and posts each group to route_owner's shard.
 *
 * Destination names: in relay mode every recipient goes to the relay (one group per message);
 * in independent mode a recipient goes to its domain, compared without regard to ASCII case and
 * named in lower case (IDNA is left for later). An address without a domain has the empty name.
 */
#ifndef RIPTIDE_ROUTE_H
#define RIPTIDE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/config/config.h"

#define ROUTE_NAME_MAX 256 /* destination names are at most 255 bytes (a DNS name) */

enum route_mode {
	ROUTE_RELAY = 0,
	ROUTE_INDEPENDENT = 1,
};

/* route_domain: the domain part of rcpt (after the last '@'); *len receives its length.
 * Returns a pointer into rcpt (the empty string at its end if there is no '@'). */
const char *route_domain(const char *rcpt, size_t *len);

/* route_dest_name: write the destination name of rcpt into out (outlen bytes, NUL-terminated):
 * `relay` in relay mode, the lower-cased domain in independent mode. Returns the name's length,
 * or -ENAMETOOLONG if it does not fit (out is then empty). */
int route_dest_name(enum route_mode mode, const char *relay, const char *rcpt, char *out,
		    size_t outlen);

/* route_group: give each of the n recipients a destination group: group[i] is the index of the
 * group of rcpts[i], groups numbered in order of first appearance; first[g] (n entries
 * provided) receives the index of group g's first recipient. Returns the number of groups
 * (1 in relay mode when n > 0; 0 when n == 0), or -ENOMEM. Never more than 65535 groups:
 * returns -E2BIG beyond that. O(n) expected. */
int route_group(enum route_mode mode, const char *const *rcpts, unsigned n, uint16_t *group,
		unsigned *first);

/* route_name_hash: a well-mixed 32-bit hash of a destination name, ignoring ASCII case (the
 * one hash of names: owner shards, and the daemon's tables of destinations). */
uint32_t route_name_hash(const char *name);

/* route_owner: the shard (0..nshards-1) that owns destination `name`; stable for a given
 * name and shard count, spread evenly. nshards must be > 0. */
unsigned route_owner(const char *name, unsigned nshards);

/* ---- static routes and shaping rules (issue #7) ----
 *
 * A route table indexes a configuration's [route X] and [shaping X] sections by name, for
 * lookups from any thread (it is immutable once built). Destination names then follow the
 * routes: a route with `hosts` or `relay` is one destination named after the route (all the
 * domains it covers share its connections); an independent route, or no route in independent
 * mode, leaves the recipient's domain as the destination (or its MX site, see route_split);
 * relay mode without a route sends to the relay. A message's egress pool prefixes the name:
 * "pool/name", so throttles and backoff state are kept per pool and destination. */

struct route_table;

enum route_kind {
	ROUTE_KIND_RELAY = 0, /* the default relay (relay mode) or a route's relay */
	ROUTE_KIND_MX = 1,    /* the domain's MX hosts */
	ROUTE_KIND_HOSTS = 2, /* a route's hosts, in order */
};

/* route_table_new: index c's routes and shaping rules (c and its sets must outlive the
 * table). Returns 0 and *out, or -ENOMEM. */
int route_table_new(const struct config *c, struct route_table **out);

/* route_table_free: NULL is a no-op. */
void route_table_free(struct route_table *t);

/* route_table_count: the enabled routes that apply (0 when static_routes is off). */
unsigned route_table_count(const struct route_table *t);

/* route_find: the route of `name` (a domain, or a route's own name), ignoring ASCII case: an
 * enabled [route name], else the enabled [route *.parent] nearest up the name, else NULL (the
 * default route). Always NULL with static_routes = no. t may be NULL. */
const struct config_route *route_find(const struct route_table *t, const char *name);

/* route_why: why `name` takes route r (NULL: the default), in words, into buf (len bytes),
 * e.g. "[route *.example.com] (wildcard)"; a disabled route of that name is named too.
 * Returns buf. */
const char *route_why(const struct route_table *t, const struct config_route *r, const char *name,
		      char *buf, size_t len);

/* route_kind_of: what a route (NULL: the default) delivers to, under default mode `mode`. */
enum route_kind route_kind_of(const struct config_route *r, enum route_mode mode);

/* route_shaping: the [shaping X] of destination `name` (with any "pool/" prefix removed by
 * the caller): exact name, else the nearest [shaping *.parent]; NULL: none. */
const struct config_shaping *route_shaping(const struct route_table *t, const char *name);

/* route_base: strip a "pool/" prefix: returns the name after it (name itself if none); the
 * pool's length goes to *pool_len (0 if none). */
const char *route_base(const char *name, size_t *pool_len);

/* How route_split names destinations. site(), when set, is asked for the MX site of a domain
 * that goes to its MX hosts under the default route and has no shaping rule of its own: it
 * writes a site name into buf and returns true, or returns false (no rollup: the domain). */
struct route_ctx {
	const struct route_table *t; /* NULL: no routes */
	enum route_mode mode;	     /* the default route */
	const char *relay;	     /* relay mode: the relay's destination name */
	const char *pool;	     /* "" or the egress pool of the message */
	bool (*site)(void *arg, const char *domain, char *buf, size_t len);
	void *site_arg;
};

/* route_dest_of: the destination name of domain `domain` under ctx into out (outlen bytes).
 * Returns its length or -ENAMETOOLONG (out empty). */
int route_dest_of(const struct route_ctx *ctx, const char *domain, char *out, size_t outlen);

/* route_split: group n recipients by destination as ctx routes them (recipients of one
 * destination in one group, groups in order of first appearance, group[i] and first[g] as in
 * route_group). *names receives ng names of ROUTE_NAME_MAX bytes each, consecutive (caller
 * frees). Returns ng, or -ENOMEM / -E2BIG / -ENAMETOOLONG (*names NULL). */
int route_split(const struct route_ctx *ctx, const char *const *rcpts, unsigned n, uint16_t *group,
		unsigned *first, char **names);

#endif
