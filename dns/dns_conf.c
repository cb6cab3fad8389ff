/* dns_conf — server lists: "auto" (nameserver lines of a resolv.conf) or an explicit list
 * "127.0.0.1:5353;[::1]:5353", turned into the CSV form c-ares' ares_set_servers_ports_csv()
 * takes.
 *
 * Why our own resolv.conf reading: the fallback channel must use the resolv.conf servers even
 * when the main channel uses explicit ones, and tests point resolv_conf at a file naming a
 * server on an ephemeral port; we accept "nameserver ADDR" and, beyond glibc, "ADDR:PORT" and
 * "[ADDR6]:PORT" there.
 */
#include "dns/dns_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Validate one server token and append it to CSV (bare IPv6 gets brackets). */
static int add_server(const char *tok, size_t len, char *csv, size_t cap)
{
	char buf[80], host[80];
	unsigned char tmp[16];
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, tok, len);
	buf[len] = 0;
	const char *port = NULL;
	if (buf[0] == '[') {
		char *rb = strchr(buf, ']');
		if (!rb || (rb[1] && rb[1] != ':') || (size_t)(rb - buf - 1) >= sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(rb - buf - 1), buf + 1);
		port = rb[1] ? rb + 2 : NULL;
	} else if (strchr(buf, ':') == strrchr(buf, ':') && strchr(buf, ':')) {
		snprintf(host, sizeof(host), "%.*s", (int)(strchr(buf, ':') - buf), buf);
		port = strchr(buf, ':') + 1;
	} else {
		snprintf(host, sizeof(host), "%s", buf);
	}
	int v6 = strchr(host, ':') != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, tmp) != 1)
		return -EINVAL;
	if (port && (!*port || strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535))
		return -EINVAL;
	size_t used = strlen(csv);
	int br = v6 && port; /* c-ares 1.18 takes "[v6]:port" or bare "v6", not "[v6]" */
	int n = snprintf(csv + used, cap - used, "%s%s%s%s%s%s", used ? "," : "", br ? "[" : "",
			 host, br ? "]" : "", port ? ":" : "", port ? port : "");
	return n < 0 || (size_t)n >= cap - used ? -EINVAL : 0;
}

/* dns_conf_list: convert LIST (separated by ';', ',' or blanks) into CSV of size CAP.
 * Returns 0, or -EINVAL on a malformed or empty list. */
int dns_conf_list(const char *list, char *csv, size_t cap)
{
	csv[0] = 0;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, "; ,\t");
		if (len && add_server(p, len, csv, cap) < 0)
			return -EINVAL;
		p += len;
		p += strspn(p, "; ,\t");
	}
	return csv[0] ? 0 : -EINVAL;
}

/* dns_conf_auto: the nameservers of PATH (NULL: /etc/resolv.conf) as CSV; a file without any
 * gives "127.0.0.1" like the C library does; entries we cannot use are skipped. Returns 0,
 * -errno when the file cannot be read, -EINVAL when it names only unusable servers. */
int dns_conf_auto(const char *path, char *csv, size_t cap)
{
	FILE *f = fopen(path ? path : "/etc/resolv.conf", "re");
	if (!f)
		return -errno;
	char line[512];
	int skipped = 0;
	csv[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t");
		if (strncmp(p, "nameserver", 10) || (p[10] != ' ' && p[10] != '\t'))
			continue;
		p += 10 + strspn(p + 10, " \t");
		if (add_server(p, strcspn(p, " \t\r\n#;"), csv, cap) < 0)
			skipped++; /* e.g. a scoped fe80::1%eth0: c-ares cannot use it */
	}
	fclose(f);
	if (!csv[0] && !skipped)
		snprintf(csv, cap, "127.0.0.1");
	return csv[0] ? 0 : -EINVAL;
}
