/* test_dns_parse — the raw-answer parser of dns/ (dns_parse) on hand-built messages.
 *
 * Why: dns_parse reads bytes from the network; it must take the records of the asked type with
 * the smallest TTL, follow compression pointers, find the SOA of a negative answer (RFC 2308:
 * min(SOA TTL, MINIMUM)), and reject every truncated or looping message without reading out of
 * bounds (run under ASan: every prefix of a valid message is parsed).
 */
#include "dns/dns_int.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

struct msg {
	unsigned char b[512];
	int n;
};

static void put(struct msg *m, const void *p, int len)
{
	memcpy(m->b + m->n, p, (size_t)len);
	m->n += len;
}

static void put16(struct msg *m, unsigned v)
{
	unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
	put(m, x, 2);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

/* "\3mx1\4test\0" style name from "mx1.test". */
static void put_name(struct msg *m, const char *name)
{
	while (*name) {
		size_t l = strcspn(name, ".");
		m->b[m->n++] = (unsigned char)l;
		put(m, name, (int)l);
		name += l + (name[l] == '.');
	}
	m->b[m->n++] = 0;
}

static void header(struct msg *m, int rcode, int an, int ns)
{
	m->n = 0;
	put16(m, 0x1234);
	put16(m, 0x8180 | (unsigned)rcode);
	put16(m, 1);
	put16(m, (unsigned)an);
	put16(m, (unsigned)ns);
	put16(m, 0);
	put_name(m, "a.test"); /* at offset 12 */
	put16(m, DNS_T_MX);
	put16(m, 1);
}

static void rr_head(struct msg *m, unsigned type, uint32_t ttl, unsigned rdlen)
{
	put16(m, 0xc00c); /* owner: pointer to the question name */
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
	put16(m, rdlen);
}

/* Two MX records (the second's target compressed against the first) and one A record. */
static void mx_message(struct msg *m)
{
	header(m, 0, 3, 0);
	rr_head(m, DNS_T_MX, 300, 2 + 12);
	put16(m, 20);
	int first = m->n;
	put_name(m, "mx1.a.test"); /* \3mx1\1a\4test\0: 12 bytes */
	rr_head(m, DNS_T_MX, 120, 2 + 6);
	put16(m, 10);
	m->b[m->n++] = 3;
	put(m, "mx2", 3);
	put16(m, 0xc000 | (unsigned)(first + 4)); /* -> "a.test" inside mx1.a.test */
	rr_head(m, DNS_T_A, 5, 4);
	put(m, "\x7f\0\0\x01", 4);
}

static void test_mx_records_and_min_ttl(void **state)
{
	struct msg m;
	struct dns_ent *e = NULL;
	mx_message(&m);
	assert_int_equal(dns_parse(m.b, m.n, DNS_T_MX, "a.test", &e), 0);
	assert_int_equal(e->rstat, DNS_R_OK);
	assert_int_equal(e->n, 2);
	assert_int_equal(e->r.mx[0].pref, 20);
	assert_string_equal(e->r.mx[0].host, "mx1.a.test");
	assert_int_equal(e->r.mx[1].pref, 10);
	assert_string_equal(e->r.mx[1].host, "mx2.a.test");
	assert_int_equal(e->ttl, 120); /* the A record's 5 s is not an MX TTL */
	dns_ent_unref(e);
}

static void test_every_prefix_rejected_or_sane(void **state)
{
	struct msg m;
	mx_message(&m);
	for (int len = 0; len < m.n; len++) {
		struct dns_ent *e = NULL;
		int rc = dns_parse(m.b, len, DNS_T_MX, "a.test", &e);
		assert_int_equal(rc, -EBADMSG);
		assert_null(e);
	}
}

static void test_negative_soa_ttl(void **state)
{
	struct msg m;
	struct dns_ent *e = NULL;
	for (int rcode = 0; rcode <= 3; rcode += 3) {
		header(&m, rcode, 0, 1);
		rr_head(&m, DNS_T_SOA, 900, 2 + 2 + 20);
		put16(&m, 0xc00c); /* MNAME */
		put16(&m, 0xc00c); /* RNAME */
		for (int i = 0; i < 4; i++)
			put32(&m, 1000);
		put32(&m, rcode ? 60 : 7200); /* MINIMUM */
		assert_int_equal(dns_parse(m.b, m.n, DNS_T_MX, "a.test", &e), 0);
		assert_int_equal(e->rstat, rcode ? DNS_R_NXDOMAIN : DNS_R_NODATA);
		assert_int_equal(e->ttl, rcode ? 60 : 900);
		dns_ent_unref(e);
	}
}

static void test_servfail_and_loops(void **state)
{
	struct msg m;
	struct dns_ent *e = NULL;
	header(&m, 2, 0, 0);
	assert_int_equal(dns_parse(m.b, m.n, DNS_T_MX, "a.test", &e), 0);
	assert_int_equal(e->rstat, DNS_R_TEMP);
	dns_ent_unref(e);
	e = NULL;
	header(&m, 0, 1, 0);
	rr_head(&m, DNS_T_MX, 300, 4);
	put16(&m, 10);
	put16(&m, 0xc000 | (unsigned)m.n); /* target points at itself */
	assert_int_equal(dns_parse(m.b, m.n, DNS_T_MX, "a.test", &e), -EBADMSG);
	header(&m, 0, 1, 0);
	rr_head(&m, DNS_T_MX, 300, 1); /* MX rdata too short for a preference and a name */
	put(&m, "\1", 1);
	assert_int_equal(dns_parse(m.b, m.n, DNS_T_MX, "a.test", &e), -EBADMSG);
	assert_null(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mx_records_and_min_ttl),
	    cmocka_unit_test(test_every_prefix_rejected_or_sane),
	    cmocka_unit_test(test_negative_soa_ttl),
	    cmocka_unit_test(test_servfail_and_loops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
