/* util — tiny shared helpers for every riptide module (invariants, clocks, address parsing).
 *
 * Why: each module needs the same three things (a BUG_ON that names the function, monotonic and
 * wall-clock milliseconds, "host:port" / "unix:/path" parsing) and must not include engine/
 * headers to get them. This header has no dependencies beyond libc.
 */
#ifndef RIPTIDE_UTIL_H
#define RIPTIDE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/socket.h>

#define ARRAY_SIZE(a)			(sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define likely(x)			__builtin_expect(!!(x), 1)
#define unlikely(x)			__builtin_expect(!!(x), 0)

/* BUG_ON(cond): an invariant that must hold; on violation print the function and abort. */
#define BUG_ON(cond)                                                                               \
	do {                                                                                       \
		if (unlikely(cond)) {                                                              \
			fprintf(stderr, "BUG at %s (%s:%d): %s\n", __func__, __FILE__, __LINE__,   \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* util_mono_ms: CLOCK_MONOTONIC in milliseconds, for timers. */
static inline uint64_t util_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* util_mono_us: CLOCK_MONOTONIC in microseconds, for latency measurement. */
static inline uint64_t util_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* util_wall_ms: CLOCK_REALTIME in milliseconds since the epoch, for anything persisted. */
static inline uint64_t util_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* util_xmalloc / util_xcalloc / util_xrealloc / util_xstrndup: allocate or abort (out of memory
 * is not a condition a mail server can recover from mid-transaction). */
void *util_xmalloc(size_t n);
void *util_xcalloc(size_t nmemb, size_t n);
void *util_xrealloc(void *p, size_t n);
char *util_xstrndup(const char *s, size_t n);

/* A parsed endpoint: either TCP (IPv4/IPv6 literal + port) or a UNIX socket path. */
struct util_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	int family; /* AF_INET, AF_INET6 or AF_UNIX */
};

/* util_addr_parse: parse "127.0.0.1:2525", "[::1]:25" or "unix:/path" (a string that starts
 * with '/' is a UNIX path too). Numeric hosts only: no DNS here. Returns 0 or -EINVAL. */
int util_addr_parse(const char *s, struct util_addr *out);

/* Room for any host util_hostport_parse writes: a DNS name (253) or an IPv6 literal, + NUL. */
#define UTIL_HOST_MAX 254

/* util_host_name_ok: s is a syntactically valid DNS host name: labels of 1..63 letters, digits
 * and '-' (not first or last in a label) separated by single dots, 253 bytes at most, no
 * trailing dot, and a last label that is not all digits (RFC 3696 2), so no IPv4-looking
 * string such as "10.0.0.256" passes as a name. Syntax only: no DNS. */
bool util_host_name_ok(const char *s);

/* util_host_is_numeric: s is an IPv4 literal or an IPv6 literal (without brackets). */
bool util_host_is_numeric(const char *s);

/* util_hostport_parse: split a destination "host[:port]": "[IPv6]:port", "[IPv6]",
 * "IPv4:port", "IPv4", "name:port" or "name" (name: util_host_name_ok). A bare IPv6 literal
 * without brackets is refused (its colons are ambiguous). Without a port, default_port is
 * used. The port (given or default) must be 1..65535, digits only. On success writes the host
 * (IPv6 without brackets; NUL-terminated, hostlen bytes at most: UTIL_HOST_MAX always fits)
 * and *port, and returns 0; else returns -EINVAL and writes nothing. */
int util_hostport_parse(const char *s, char *host, size_t hostlen, uint16_t *port,
			uint16_t default_port);

/* util_relay_parse: a relay given as host[:port] (default port 25): a numeric address
 * ("192.0.2.1:25", "[::1]:2525", or a literal without a port) goes to *a and returns 0; a host
 * name goes to host (hostlen bytes, UTIL_HOST_MAX always fits) and *port and returns 1 (it is
 * resolved later). Returns -EINVAL for anything else. */
int util_relay_parse(const char *spec, struct util_addr *a, char *host, size_t hostlen,
		     uint16_t *port);

/* util_addr_format: write a printable form of a into buf (always NUL-terminated). */
void util_addr_format(const struct util_addr *a, char *buf, size_t len);

/* util_parse_duration_ms: "250ms", "30s", "5m", "1h", "2d" or a bare number of seconds.
 * Returns 0 and sets *out, or -EINVAL. */
int util_parse_duration_ms(const char *s, uint64_t *out);

/* util_parse_size: "1024", "64k", "10M", "2G" (binary multiples). Returns 0 or -EINVAL. */
int util_parse_size(const char *s, uint64_t *out);

/* util_be32_put / util_be64_put / util_be32_get / util_be64_get: big-endian integers in byte
 * buffers (stored formats). */
static inline void util_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void util_be64_put(uint8_t *p, uint64_t v)
{
	util_be32_put(p, (uint32_t)(v >> 32));
	util_be32_put(p + 4, (uint32_t)v);
}

static inline uint32_t util_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t util_be64_get(const uint8_t *p)
{
	return (uint64_t)util_be32_get(p) << 32 | util_be32_get(p + 4);
}

/* util_hexval: the value of hex digit c (either case), or -1. */
static inline int util_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ---- lists in configuration values (util_list.c) ---- */

/* One network of a list: family AF_INET/AF_INET6, address bytes, prefix length. */
struct util_net {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
};

/* util_list_next: the next blank/','/';'-separated item of *p into item (cap bytes), *p
 * advanced. Returns its length, 0 at the end, -ENAMETOOLONG if it did not fit. */
int util_list_next(const char **p, char *item, size_t cap);

/* util_nets_parse: parse a list of "address[/prefix]" (IPv4 or IPv6) into nets (max entries;
 * nets NULL = only check). Returns the count, or -EINVAL naming the bad item in why. */
int util_nets_parse(const char *v, struct util_net *nets, unsigned max, char *why, size_t wl);

/* util_nets_match: whether sa (IPv4, IPv6, IPv4-mapped IPv6) is in one of nets[0..n). */
bool util_nets_match(const struct util_net *nets, unsigned n, const struct sockaddr *sa);

/* util_domains_check: every item of v is a domain, "*.domain" or ".domain" (its subdomains).
 * Returns the count or -EINVAL naming the bad item in why. */
int util_domains_check(const char *v, char *why, size_t wl);

/* util_domains_match: whether domain (len bytes) equals an item of v or is a subdomain of a
 * "*." / "." item; case-insensitive. */
bool util_domains_match(const char *v, const char *domain, size_t len);

#endif
