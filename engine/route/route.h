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

#endif
