/* dns_int — types and prototypes shared by the files of dns/ (never included outside dns/).
 *
 * Why: the cache, the wire parser, the MX result builder and the resolver thread live in
 * separate files (each under the 800-line bound) but share one record-set type, dns_ent.
 */
#ifndef RIPTIDE_DNS_INT_H
#define RIPTIDE_DNS_INT_H

#include "dns/dns.h"

#include <stdatomic.h>
#include <stdint.h>

#define DNS_T_A	   1
#define DNS_T_SOA  6
#define DNS_T_MX   15
#define DNS_T_AAAA 28

#define DNS_HOSTS_MAX 32 /* MX hosts whose addresses one lookup gathers */

enum dns_rstat {
	DNS_R_OK,	/* records present */
	DNS_R_NXDOMAIN, /* name does not exist */
	DNS_R_NODATA,	/* name exists, no record of this type */
	DNS_R_TEMP,	/* no usable answer (never cached) */
};

struct dns_mxrec {
	uint16_t pref;
	char host[256];
};

struct dns_ip {
	int family;
	uint8_t addr[16];
};

/* One record set (name, type), immutable once built; shared by refcount. */
struct dns_ent {
	atomic_int ref;
	uint16_t type;
	uint8_t rstat;
	uint32_t ttl;	     /* clamped TTL in seconds */
	uint64_t expires_ms; /* CLOCK_MONOTONIC ms */
	uint32_t n;
	union {
		struct dns_mxrec *mx;
		struct dns_ip *ip;
	} r;
	char reason[96]; /* for DNS_R_TEMP: why */
	char name[256];	 /* lower case, no trailing dot */
	/* cache links, protected by the shard lock */
	uint64_t hash;
	struct dns_ent *hnext, *lprev, *lnext;
};

struct dns_cache;

uint64_t dns_now_ms(void);
int dns_name_norm(const char *in, char out[256]);

struct dns_ent *dns_ent_new(uint16_t type, const char *name, uint32_t n);
void dns_ent_unref(struct dns_ent *e);

int dns_cache_new(size_t max_entries, struct dns_cache **out);
void dns_cache_free(struct dns_cache *c);
struct dns_ent *dns_cache_get(struct dns_cache *c, uint16_t type, const char *name);
void dns_cache_put(struct dns_cache *c, struct dns_ent *e);
void dns_cache_stats(struct dns_cache *c, uint64_t *entries, uint64_t *evictions);

int dns_parse(const unsigned char *buf, int len, uint16_t type, const char *name,
	      struct dns_ent **out);

struct dns_mx_result *dns_mx_build(const char *domain, const struct dns_ent *mx,
				   struct dns_ent *const *addrs, unsigned max_hosts,
				   int implicit_mx);
int dns_mx_hosts(const struct dns_ent *mx, unsigned max_hosts, int implicit_mx, const char *domain,
		 const char **names, size_t *n);
int dns_conf_list(const char *list, char *csv, size_t cap);
int dns_conf_auto(const char *path, char *csv, size_t cap);

struct dns_mx_result *dns_host_build(const char *name, const struct dns_ent *a4,
				     const struct dns_ent *a6);
int dns_host_literal(const char *name, struct dns_mx_result **out);

struct dns_mx_result *dns_mx_fail(const char *domain, enum dns_status st, const char *why);

#endif
