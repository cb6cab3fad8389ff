/* config_val — checkers for [delivery] dns_servers and source_address, and [route X] hosts
 * (see config_val.h).
 *
 * Why strict: these values are lists read by other threads much later (the DNS thread, every
 * outbound connect); a typo must be refused at load with file:line, not discovered as a failed
 * bind or a silent fallback at 3 a.m. Literals only: a source address is bound, never resolved.
 */
#include "engine/config/config_val.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One DNS server: IPv4[:port], [IPv6][:port] or a bare IPv6 address (s[0..n)). */
static bool dns_server_ok(const char *s, size_t n)
{
	const char *end = s + n, *host = s, *hend = end, *port = NULL, *c;
	char buf[INET6_ADDRSTRLEN], bin[16];

	if (n == 0)
		return false;
	if (s[0] == '[') {
		c = memchr(s, ']', n);
		if (!c || (c + 1 < end && c[1] != ':'))
			return false;
		host = s + 1;
		hend = c;
		port = c + 1 < end ? c + 2 : NULL;
	} else if ((c = memchr(s, ':', n)) && !memchr(c + 1, ':', (size_t)(end - c - 1))) {
		hend = c; /* exactly one colon: IPv4:port */
		port = c + 1;
	}
	if ((size_t)(hend - host) >= sizeof(buf))
		return false;
	memcpy(buf, host, (size_t)(hend - host));
	buf[hend - host] = '\0';
	if (inet_pton(strchr(buf, ':') ? AF_INET6 : AF_INET, buf, bin) != 1)
		return false;
	if (!port)
		return true;
	for (c = port; c < end; c++)
		if (*c < '0' || *c > '9')
			return false;
	return end - port >= 1 && end - port <= 5 && atoi(port) >= 1 && atoi(port) <= 65535;
}

/* config_val_dns_servers: see config_val.h. */
int config_val_dns_servers(const char *v, char *why, size_t wl)
{
	const char *p = v, *e;

	if (strcmp(v, "auto") == 0)
		return 0;
	for (;; p = e + 1) { /* an empty item (";;", a trailing ';') is an error too */
		e = strchr(p, ';');
		if (!e)
			e = p + strlen(p);
		if (!dns_server_ok(p, (size_t)(e - p))) {
			snprintf(why, wl,
				 "'%s': '%.*s' is not a DNS server (IPv4[:port], [IPv6][:port]; "
				 "servers separated by ';', or auto)",
				 v, (int)(e - p), p);
			return -EINVAL;
		}
		if (!*e)
			return 0;
	}
}

/* One source literal s[0..n) into *v4 or *v6 (port 0). -EINVAL: not a literal, or its family
 * is already set (*dup then tells which). */
static int source_one(const char *s, size_t n, struct util_addr *v4, struct util_addr *v6,
		      const char **dup)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&v4->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&v6->ss;
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a6;
	struct in_addr a4;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		*dup = v4->family ? "IPv4" : NULL;
		*s4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr = a4};
		v4->len = sizeof(*s4);
		v4->family = AF_INET;
	} else if (inet_pton(AF_INET6, buf, &a6) == 1) {
		*dup = v6->family ? "IPv6" : NULL;
		*s6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_addr = a6};
		v6->len = sizeof(*s6);
		v6->family = AF_INET6;
	} else {
		return -EINVAL;
	}
	return *dup ? -EINVAL : 0;
}

/* The reason item p[0..n) of source_address v is refused (dup: the family given twice). */
static void source_why(const char *v, const char *p, size_t n, const char *dup, char *why,
		       size_t wl)
{
	static const char rule[] = "is not an IPv4 or IPv6 address (one of each at most, "
				   "separated by ';': 192.0.2.1;2001:db8::1)";

	if (dup)
		snprintf(why, wl, "'%s' has two %s addresses (at most one IPv4 and one IPv6)", v,
			 dup);
	else if (n == strlen(v)) /* the whole value: no need to name the item */
		snprintf(why, wl, "'%s' %s", v, rule);
	else
		snprintf(why, wl, "'%s': '%.*s' %s", v, (int)n, p, rule);
}

/* config_val_source: see config_val.h. */
int config_val_source(const char *v, struct util_addr *v4, struct util_addr *v6, char *why,
		      size_t wl)
{
	struct util_addr a4 = {0}, a6 = {0};
	const char *p = v, *e, *dup = NULL;

	for (; *v; p = e + 1) { /* an empty item (";;", a trailing ';') is an error too */
		e = p + strcspn(p, ";");
		if (source_one(p, (size_t)(e - p), &a4, &a6, &dup) < 0) {
			source_why(v, p, (size_t)(e - p), dup, why, wl);
			return -EINVAL;
		}
		if (!*e)
			break;
	}
	*v4 = a4;
	*v6 = a6;
	return 0;
}

/* config_val_networks: see config_val.h. */
int config_val_networks(const char *v, char *why, size_t wl)
{
	return util_nets_parse(v, NULL, 0, why, wl) < 0 ? -EINVAL : 0;
}

/* config_val_domains: see config_val.h. */
int config_val_domains(const char *v, char *why, size_t wl)
{
	return util_domains_check(v, why, wl) < 0 ? -EINVAL : 0;
}

/* config_val_hosts: see config_val.h. */
int config_val_hosts(const char *v, char *why, size_t wl)
{
	char item[UTIL_HOST_MAX + 16], host[UTIL_HOST_MAX];
	const char *p = v;
	unsigned n = 0;
	uint16_t port;
	size_t len;

	for (;;) {
		p += strspn(p, " \t,");
		if (!*p)
			break;
		len = strcspn(p, " \t,");
		if (len >= sizeof(item))
			len = sizeof(item) - 1; /* too long for a host: fails below */
		memcpy(item, p, len);
		item[len] = '\0';
		p += strcspn(p, " \t,");
		if (util_hostport_parse(item, host, sizeof(host), &port, 25) < 0) {
			snprintf(why, wl,
				 "'%s' is not a host (IPv4[:port], [IPv6][:port] or a host "
				 "name[:port]; hosts separated by blanks or ',')",
				 item);
			return -EINVAL;
		}
		n++;
	}
	if (n == 0) {
		snprintf(why, wl, "'%s' names no host", v);
		return -EINVAL;
	}
	return 0;
}
