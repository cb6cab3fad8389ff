/* util — allocation-or-abort, endpoint parsing and unit parsing shared by all modules.
 * Why: one place for the few helpers that every binary needs, so no module re-invents them.
 * Host names (util_host_name_ok, util_hostport_parse) are checked for syntax here, strictly and
 * without DNS, so the configuration can refuse a typo with file:line before anything resolves. */
#include "engine/util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

void *util_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *util_xcalloc(size_t nmemb, size_t n)
{
	void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *util_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		abort();
	return q;
}

char *util_xstrndup(const char *s, size_t n)
{
	char *p = util_xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int parse_unix(const char *path, struct util_addr *out)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(sun->sun_path))
		return -EINVAL;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	out->family = AF_UNIX;
	return 0;
}

static int parse_inet6(const char *s, struct util_addr *out)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
	const char *close = strchr(s, ']');
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s + 1, (size_t)(close - s - 1));
	host[close - s - 1] = '\0';
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1 || parse_port(close + 2, &port))
		return -EINVAL;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	out->len = sizeof(*s6);
	out->family = AF_INET6;
	return 0;
}

int util_addr_parse(const char *s, struct util_addr *out)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
	const char *colon;
	char host[INET_ADDRSTRLEN];
	uint16_t port;

	memset(out, 0, sizeof(*out));
	if (!s)
		return -EINVAL;
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s + 5, out);
	if (s[0] == '/')
		return parse_unix(s, out);
	if (s[0] == '[')
		return parse_inet6(s, out);
	colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1 || parse_port(colon + 1, &port))
		return -EINVAL;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	out->len = sizeof(*s4);
	out->family = AF_INET;
	return 0;
}

/* ---- host names and "host[:port]" destinations ---- */

static bool ldh_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-';
}

/* One label p[0..n): 1..63 LDH bytes, no '-' first or last; *digits: all of it digits. */
static bool ldh_label_ok(const char *p, size_t n, bool *digits)
{
	*digits = true;
	if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!ldh_char((unsigned char)p[i]))
			return false;
		if (p[i] < '0' || p[i] > '9')
			*digits = false;
	}
	return true;
}

/* util_host_name_ok: see util.h (syntax of a DNS host name, no lookup). */
bool util_host_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0, i = 0, e;
	bool digits = false;

	if (n == 0 || n > 253)
		return false;
	while (i <= n) { /* an empty label (leading, doubled or trailing dot) fails */
		e = i + strcspn(s + i, ".");
		if (!ldh_label_ok(s + i, e - i, &digits))
			return false;
		i = e + 1;
	}
	return !digits; /* the last label: "1.2.3.4" or "10.0.0.256" is not a name */
}

/* util_host_is_numeric: see util.h. */
bool util_host_is_numeric(const char *s)
{
	unsigned char bin[sizeof(struct in6_addr)];

	return s && (inet_pton(AF_INET, s, bin) == 1 || inet_pton(AF_INET6, s, bin) == 1);
}

/* A port written as 1..5 digits and nothing else, 0..65535. */
static int port_digits(const char *p, uint16_t *port)
{
	size_t n = strspn(p, "0123456789");
	unsigned long v;

	if (n == 0 || n > 5 || p[n] != '\0' || (v = strtoul(p, NULL, 10)) > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* Split s into the host s[*hs..*he) and the port text (*ps, NULL if none). */
static int hostport_split(const char *s, const char **hs, const char **he, const char **ps)
{
	const char *c;

	if (s[0] == '[') {
		*hs = s + 1;
		*he = strchr(*hs, ']');
		if (!*he || ((*he)[1] != '\0' && (*he)[1] != ':'))
			return -EINVAL;
		*ps = (*he)[1] ? *he + 2 : NULL;
		return 0;
	}
	*hs = s;
	c = strchr(s, ':');
	if (c && strchr(c + 1, ':'))
		return -EINVAL; /* a bare IPv6 literal, or junk */
	*he = c ? c : s + strlen(s);
	*ps = c ? c + 1 : NULL;
	return 0;
}

/* util_hostport_parse: see util.h. Writes host and *port only on success. */
int util_hostport_parse(const char *s, char *host, size_t hostlen, uint16_t *port,
			uint16_t default_port)
{
	unsigned char bin[sizeof(struct in6_addr)];
	const char *hs, *he, *ps;
	char buf[UTIL_HOST_MAX];
	uint16_t p = default_port;
	size_t n;
	bool ok;

	if (!s || hostport_split(s, &hs, &he, &ps) < 0)
		return -EINVAL;
	n = (size_t)(he - hs);
	if (n >= sizeof(buf) || n >= hostlen || (ps && port_digits(ps, &p) < 0) || p == 0)
		return -EINVAL;
	memcpy(buf, hs, n);
	buf[n] = '\0';
	if (s[0] == '[')
		ok = inet_pton(AF_INET6, buf, bin) == 1;
	else
		ok = inet_pton(AF_INET, buf, bin) == 1 || util_host_name_ok(buf);
	if (!ok)
		return -EINVAL;
	memcpy(host, buf, n + 1);
	*port = p;
	return 0;
}

void util_addr_format(const struct util_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (a->family == AF_UNIX) {
		snprintf(buf, len, "unix:%s", ((const struct sockaddr_un *)&a->ss)->sun_path);
	} else if (a->family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

static int parse_scaled(const char *s, uint64_t *out, const char *const *units,
			const uint64_t *mult, size_t nunits, uint64_t bare)
{
	char *end;
	unsigned long long v;
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == '\0') {
		*out = v * bare;
		return 0;
	}
	for (size_t i = 0; i < nunits; i++) {
		if (strcmp(end, units[i]) == 0) {
			*out = v * mult[i];
			return 0;
		}
	}
	return -EINVAL;
}

int util_parse_duration_ms(const char *s, uint64_t *out)
{
	static const char *const units[] = {"ms", "s", "m", "h", "d"};
	static const uint64_t mult[] = {1, 1000, 60000, 3600000, 86400000};
	return parse_scaled(s, out, units, mult, ARRAY_SIZE(units), 1000);
}

int util_parse_size(const char *s, uint64_t *out)
{
	static const char *const units[] = {"k", "K", "m", "M", "g", "G"};
	static const uint64_t mult[] = {1ull << 10, 1ull << 10, 1ull << 20,
					1ull << 20, 1ull << 30, 1ull << 30};
	return parse_scaled(s, out, units, mult, ARRAY_SIZE(units), 1);
}

/* util_relay_parse: see util.h. */
int util_relay_parse(const char *spec, struct util_addr *a, char *host, size_t hostlen,
		     uint16_t *port)
{
	char h[UTIL_HOST_MAX], lit[UTIL_HOST_MAX + 16];
	uint16_t p = 0;

	if (util_addr_parse(spec, a) == 0)
		return 0;
	if (util_hostport_parse(spec, h, sizeof(h), &p, 25) < 0)
		return -EINVAL;
	if (util_host_is_numeric(h)) { /* a literal without a port: port 25 */
		snprintf(lit, sizeof(lit), strchr(h, ':') ? "[%s]:%u" : "%s:%u", h, (unsigned)p);
		return util_addr_parse(lit, a) == 0 ? 0 : -EINVAL;
	}
	snprintf(host, hostlen, "%s", h);
	*port = p;
	return 1;
}
