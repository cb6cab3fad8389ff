/* util — allocation-or-abort, endpoint parsing and unit parsing shared by all modules.
 * Why: one place for the few helpers that every binary needs, so no module re-invents them. */
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
