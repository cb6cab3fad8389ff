/* fuzz_dns — libFuzzer harness for dns/dns_parse.c: the walk over a raw DNS answer that builds
 * a record set with its TTL (MX, A or AAAA; RFC 2308 negative answers from the SOA).
 *
 * Why: the answer comes from the network (any server, or whoever spoofs one), and the parser
 * is our own bounds-checked walk (c-ares' parsers drop TTLs). Invariants, not only crashes:
 * the result is 0, -EBADMSG or -ENOMEM; a record set has the asked type; its status is one of
 * the four and only an OK set holds records; it never holds more records than the answer count
 * nor more than the bytes could carry (every record takes at least 11 bytes); MX hosts are
 * NUL-terminated names; addresses have the asked family; and parsing is deterministic (the
 * same bytes give the same set twice). The first input byte picks the query type.
 */
#include "dns/dns_int.h"
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

static const uint16_t types[3] = {DNS_T_MX, DNS_T_A, DNS_T_AAAA};

static void check_set(const struct dns_ent *e, uint16_t type, const uint8_t *buf, size_t len)
{
	uint32_t an = len >= 12 ? (uint32_t)(buf[6] << 8 | buf[7]) : 0;

	FUZZ_CHECK(e->type == type, "type %u asked %u", e->type, type);
	FUZZ_CHECK(e->rstat <= DNS_R_TEMP, "status %u", e->rstat);
	FUZZ_CHECK(e->rstat == DNS_R_OK || e->n == 0, "status %u with %u records", e->rstat, e->n);
	FUZZ_CHECK(e->rstat != DNS_R_OK || e->n > 0, "OK without records");
	FUZZ_CHECK(e->n <= an && (size_t)e->n * 11 <= len, "%u records from %zu bytes", e->n, len);
	for (uint32_t i = 0; i < e->n; i++) {
		if (type == DNS_T_MX)
			FUZZ_CHECK(memchr(e->r.mx[i].host, '\0', sizeof(e->r.mx[i].host)) != NULL,
				   "MX host %u not terminated", i);
		else
			FUZZ_CHECK(e->r.ip[i].family == (type == DNS_T_A ? AF_INET : AF_INET6),
				   "address %u family %d for type %u", i, e->r.ip[i].family, type);
	}
}

static bool same_set(const struct dns_ent *a, const struct dns_ent *b)
{
	if (a->rstat != b->rstat || a->n != b->n || a->ttl != b->ttl)
		return false;
	for (uint32_t i = 0; i < a->n; i++) {
		if (a->type == DNS_T_MX ? (a->r.mx[i].pref != b->r.mx[i].pref ||
					   strcmp(a->r.mx[i].host, b->r.mx[i].host) != 0)
					: memcmp(&a->r.ip[i], &b->r.ip[i], sizeof(a->r.ip[i])) != 0)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_ent *e = NULL, *e2 = NULL;
	uint16_t type;
	int r, r2;

	if (size < 1 || size > 65536)
		return 0;
	type = types[data[0] % 3];
	data++;
	size--;
	r = dns_parse(data, (int)size, type, "fuzz.test", &e);
	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM, "result %d", r);
	r2 = dns_parse(data, (int)size, type, "fuzz.test", &e2);
	FUZZ_CHECK(r2 == r, "not deterministic: %d then %d", r, r2);
	if (r == 0) {
		check_set(e, type, data, size);
		FUZZ_CHECK(same_set(e, e2), "two parses of the same bytes differ");
		dns_ent_unref(e);
		dns_ent_unref(e2);
	}
	return 0;
}
