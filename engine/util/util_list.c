/* util_list — lists in configuration values: networks (CIDR) and domains.
 *
 * Why here: the config loader validates these lists and the injection server matches client
 * addresses and recipient domains against them at run time; one parser serves both, so what
 * the loader accepts is exactly what the server understands. Items are separated by blanks,
 * ',' or ';'. A network is an IPv4 or IPv6 literal with an optional /prefix (no prefix: the
 * one host). A domain is a host name; "*.example.com" or ".example.com" means its subdomains
 * (not the domain itself). Matching is case-insensitive.
 */
#include "engine/util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char util_list_seps[] = " \t,;";

/* util_list_next: copy the next item of *p into item (cap bytes) and advance *p. Returns the
 * item's length, 0 at the end, or -ENAMETOOLONG (item cut, *p still advanced past it). */
int util_list_next(const char **p, char *item, size_t cap)
{
	const char *s = *p + strspn(*p, util_list_seps);
	size_t n = strcspn(s, util_list_seps);

	*p = s + n;
	if (n >= cap) {
		snprintf(item, cap, "%.*s", (int)(cap - 1), s);
		return -ENAMETOOLONG;
	}
	memcpy(item, s, n);
	item[n] = '\0';
	return (int)n;
}

/* Parse one "addr[/len]" item into *net. Returns 0 or -EINVAL. */
static int util_net_item(const char *item, struct util_net *net)
{
	char buf[64], *slash, *end;
	long len;

	if (strlen(item) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, item);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1)
		net->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, net->addr) == 1)
		net->family = AF_INET6;
	else
		return -EINVAL;
	len = net->family == AF_INET ? 32 : 128;
	if (slash) {
		long max = len;

		len = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || len < 0 || len > max)
			return -EINVAL;
	}
	net->prefix = (uint8_t)len;
	return 0;
}

/* util_nets_parse: parse list v into nets (at most max entries; nets may be NULL to only
 * check). Returns the number of networks, or -EINVAL with the bad item named in why. */
int util_nets_parse(const char *v, struct util_net *nets, unsigned max, char *why, size_t wl)
{
	char item[UTIL_HOST_MAX];
	struct util_net one;
	unsigned n = 0;
	int len;

	while ((len = util_list_next(&v, item, sizeof(item))) != 0) {
		if (len < 0 || util_net_item(item, &one) < 0) {
			snprintf(why, wl, "'%s' is not a network (IPv4 or IPv6 address[/prefix])",
				 item);
			return -EINVAL;
		}
		if (nets && n >= max) {
			snprintf(why, wl, "more than %u networks", max);
			return -EINVAL;
		}
		if (nets)
			nets[n] = one;
		n++;
	}
	return (int)n;
}

/* Whether the first bits of a and b agree. */
static bool util_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));

	if (memcmp(a, b, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ b[full]) & mask) == 0;
}

/* util_nets_match: whether the IP address sa (AF_INET or AF_INET6; an IPv4-mapped IPv6
 * address counts as IPv4) is inside one of nets[0..n). */
bool util_nets_match(const struct util_net *nets, unsigned n, const struct sockaddr *sa)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	const uint8_t *a;
	int fam = sa->sa_family;

	if (fam == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (fam == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		a = s6->sin6_addr.s6_addr + 12;
		fam = AF_INET;
	} else if (fam == AF_INET6) {
		a = s6->sin6_addr.s6_addr;
	} else {
		return false;
	}
	for (unsigned i = 0; i < n; i++)
		if (nets[i].family == fam && util_prefix_eq(nets[i].addr, a, nets[i].prefix))
			return true;
	return false;
}

/* util_domains_check: every item of v is a host name, "*.name" or ".name". Returns the number
 * of items or -EINVAL with the bad one in why. */
int util_domains_check(const char *v, char *why, size_t wl)
{
	char item[UTIL_HOST_MAX];
	int len, n = 0;
	const char *name;

	while ((len = util_list_next(&v, item, sizeof(item))) != 0) {
		name = item[0] == '*' && item[1] == '.' ? item + 2
		       : item[0] == '.'			? item + 1
							: item;
		if (len < 0 || !util_host_name_ok(name) || util_host_is_numeric(name)) {
			snprintf(why, wl, "'%s' is not a domain (example.com or *.example.com)",
				 item);
			return -EINVAL;
		}
		n++;
	}
	return n;
}

/* util_domains_match: whether domain (len bytes, not NUL-terminated) is in list v (checked by
 * util_domains_check): equal to an item, or a subdomain of a "*." / "." item. */
bool util_domains_match(const char *v, const char *domain, size_t len)
{
	char item[UTIL_HOST_MAX];
	const char *name;
	size_t nl;

	while (util_list_next(&v, item, sizeof(item)) > 0) {
		bool sub = item[0] == '.' || (item[0] == '*' && item[1] == '.');

		name = item + (item[0] == '*' ? 2 : item[0] == '.' ? 1 : 0);
		nl = strlen(name);
		if (!sub && nl == len && strncasecmp(name, domain, len) == 0)
			return true;
		if (sub && len > nl + 1 && domain[len - nl - 1] == '.' &&
		    strncasecmp(name, domain + len - nl, nl) == 0)
			return true;
	}
	return false;
}
