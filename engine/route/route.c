/* route — destination names, grouping of a message's recipients, owner shards (see route.h).
 *
 * Grouping uses a small open-addressing table (power of two >= 2n slots) keyed by the domain's
 * case-insensitive FNV-1a hash; a collision compares the domains themselves, so two domains
 * are one group only if they are equal ignoring ASCII case.
 */
#include "engine/route/route.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *route_domain(const char *rcpt, size_t *len)
{
	const char *at = strrchr(rcpt, '@');
	const char *d = at ? at + 1 : rcpt + strlen(rcpt);

	*len = strlen(d);
	return d;
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int route_dest_name(enum route_mode mode, const char *relay, const char *rcpt, char *out,
		    size_t outlen)
{
	size_t len;
	const char *d = mode == ROUTE_RELAY ? relay : route_domain(rcpt, &len);

	if (mode == ROUTE_RELAY)
		len = strlen(relay);
	if (outlen == 0)
		return -ENAMETOOLONG;
	out[0] = '\0';
	if (len >= outlen)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < len; i++)
		out[i] = mode == ROUTE_RELAY ? d[i] : (char)lower((unsigned char)d[i]);
	out[len] = '\0';
	return (int)len;
}

/* FNV-1a over the lower-cased bytes of s[0..len). */
static uint32_t route_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= lower((unsigned char)s[i]);
		h *= 16777619u;
	}
	return h;
}

/* Find or add rcpt i's domain in the table (slots hold group + 1, 0 = empty). Returns the
 * group, or -E2BIG when a new group would exceed 65535. */
static int route_slot(const char *const *rcpts, unsigned i, uint16_t *slots, size_t mask,
		      unsigned *first, unsigned *ngroups)
{
	size_t len, olen;
	const char *d = route_domain(rcpts[i], &len);

	for (size_t s = route_hash(d, len) & mask;; s = (s + 1) & mask) {
		if (slots[s] == 0) {
			if (*ngroups == 65535u)
				return -E2BIG;
			first[*ngroups] = i;
			slots[s] = (uint16_t)++ * ngroups;
			return slots[s] - 1;
		}
		const char *o = route_domain(rcpts[first[slots[s] - 1]], &olen);
		if (olen == len && strncasecmp(o, d, len) == 0)
			return slots[s] - 1;
	}
}

int route_group(enum route_mode mode, const char *const *rcpts, unsigned n, uint16_t *group,
		unsigned *first)
{
	size_t cap = 16;
	uint16_t *slots;
	unsigned ngroups = 0;
	int g = 0;

	if (n == 0)
		return 0;
	if (mode == ROUTE_RELAY) {
		memset(group, 0, n * sizeof(*group));
		first[0] = 0;
		return 1;
	}
	while (cap < 2 * (size_t)n)
		cap *= 2;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (unsigned i = 0; i < n && g >= 0; i++)
		if ((g = route_slot(rcpts, i, slots, cap - 1, first, &ngroups)) >= 0)
			group[i] = (uint16_t)g;
	free(slots);
	return g < 0 ? g : (int)ngroups;
}

uint32_t route_name_hash(const char *name)
{
	uint32_t h = route_hash(name, strlen(name));

	h ^= h >> 16; /* FNV's low bits are weak for short keys */
	h *= 0x45d9f3bu;
	h ^= h >> 16;
	return h;
}

unsigned route_owner(const char *name, unsigned nshards)
{
	return route_name_hash(name) % nshards;
}
