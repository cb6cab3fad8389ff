/* config_val — value checkers of engine/config that need more than a range or a flag: the DNS
 * server list and the outbound source addresses.
 *
 * Why a file of its own: config.c holds the key table and the INI machinery and must stay under
 * the file size limit; these checkers are pure functions of a string, easy to read and to test
 * apart. Nothing outside engine/config/ includes this header.
 */
#ifndef RIPTIDE_CONFIG_VAL_H
#define RIPTIDE_CONFIG_VAL_H

#include <stddef.h>

#include "engine/util/util.h"

/* config_val_dns_servers: v is "auto" or DNS servers separated by ';' (no blanks): IPv4[:port],
 * [IPv6][:port] or a bare IPv6 literal, port 1..65535. Returns 0, or -EINVAL with the reason
 * (naming the bad item) in why (wl bytes). */
int config_val_dns_servers(const char *v, char *why, size_t wl);

/* config_val_source: v is "" (none), one IPv4 literal, one IPv6 literal, or one of each
 * separated by ';' in either order ("127.0.0.1;::1"). On success fills *v4 and *v6 (port 0;
 * family AF_UNSPEC, all zero, for the family not given) and returns 0; else returns -EINVAL
 * with the reason in why (wl bytes) and leaves *v4 and *v6 alone. */
int config_val_source(const char *v, struct util_addr *v4, struct util_addr *v6, char *why,
		      size_t wl);

/* config_val_networks / config_val_domains: v is a list (items separated by blanks, ',' or ';')
 * of networks ("127.0.0.0/8", "::1/128", "192.0.2.7") or of domains ("example.com",
 * "*.example.com"), as engine/util's util_nets_parse / util_domains_check read them. Returns 0
 * or -EINVAL with the bad item in why. */
int config_val_networks(const char *v, char *why, size_t wl);
int config_val_domains(const char *v, char *why, size_t wl);

/* config_val_hosts: v is a list (items separated by blanks or ',') of host[:port]: IPv4[:port],
 * [IPv6][:port] or a host name[:port] (util_hostport_parse, default port 25); at least one.
 * Returns 0 or -EINVAL with the bad item in why. */
int config_val_hosts(const char *v, char *why, size_t wl);

#endif
