/* dns_parse — turn a raw DNS answer into a record set (dns_ent) with its TTL.
 *
 * Why our own walk over the message: c-ares' ares_parse_mx_reply() drops TTLs, and negative
 * caching (RFC 2308) needs the SOA of the authority section, which no c-ares parser returns.
 * The walk is bounds-checked at every step; ares_expand_name() decodes compressed names.
 */
#include "dns/dns_int.h"

#include <ares.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct rr {
	uint16_t type;
	uint32_t ttl;
	int rdoff, rdlen;
};

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Skip a (possibly compressed) name at *off; -1 when malformed. */
static int skip_name(const unsigned char *buf, int len, int *off)
{
	int p = *off;
	for (int guard = 0; guard < 128; guard++) {
		if (p >= len)
			return -1;
		unsigned l = buf[p];
		if ((l & 0xc0) == 0xc0) {
			*off = p + 2;
			return p + 2 <= len ? 0 : -1;
		}
		if (l & 0xc0)
			return -1;
		p += 1 + (int)l;
		if (l == 0) {
			*off = p;
			return 0;
		}
	}
	return -1;
}

/* Read the resource record at *off; -1 when malformed. */
static int read_rr(const unsigned char *buf, int len, int *off, struct rr *rr)
{
	if (skip_name(buf, len, off) < 0 || *off + 10 > len)
		return -1;
	const unsigned char *p = buf + *off;
	rr->type = get16(p);
	rr->ttl = get32(p + 4) & 0x7fffffffu;
	rr->rdlen = get16(p + 8);
	rr->rdoff = *off + 10;
	if (rr->rdoff + rr->rdlen > len)
		return -1;
	*off = rr->rdoff + rr->rdlen;
	return 0;
}

/* Decode an expanded name at OFF into OUT (lower case, root = ""); -1 when malformed. */
static int get_name(const unsigned char *buf, int len, int off, char out[256])
{
	char *s = NULL;
	long enclen = 0;
	if (ares_expand_name(buf + off, buf, len, &s, &enclen) != ARES_SUCCESS)
		return -1;
	int rc = strlen(s) > 253 ? -1 : 0;
	if (rc == 0) {
		size_t i = 0;
		for (; s[i]; i++)
			out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
		out[i] = 0;
	}
	ares_free_string(s);
	return rc;
}

/* Store answer record RR into slot e->r[e->n] when it is of e's type; -1 when malformed. */
static int take_answer(const unsigned char *buf, int len, const struct rr *rr, struct dns_ent *e,
		       uint32_t *ttl)
{
	if (rr->type != e->type)
		return 0;
	if (e->type == DNS_T_MX) {
		if (rr->rdlen < 3)
			return -1;
		struct dns_mxrec *m = &e->r.mx[e->n];
		m->pref = get16(buf + rr->rdoff);
		if (get_name(buf, len, rr->rdoff + 2, m->host) < 0)
			return -1;
	} else {
		int want = e->type == DNS_T_A ? 4 : 16;
		if (rr->rdlen != want)
			return -1;
		struct dns_ip *ip = &e->r.ip[e->n];
		ip->family = want == 4 ? AF_INET : AF_INET6;
		memcpy(ip->addr, buf + rr->rdoff, (size_t)want);
	}
	if (e->n == 0 || rr->ttl < *ttl)
		*ttl = rr->ttl;
	e->n++;
	return 0;
}

/* Negative TTL per RFC 2308 section 5: min(SOA TTL, SOA MINIMUM) from the authority section. */
static int neg_ttl(const unsigned char *buf, int len, int off, int nscount, uint32_t *ttl)
{
	*ttl = 0;
	for (int i = 0; i < nscount; i++) {
		struct rr rr;
		if (read_rr(buf, len, &off, &rr) < 0)
			return -1;
		if (rr.type == DNS_T_SOA && rr.rdlen >= 22) {
			uint32_t min = get32(buf + rr.rdoff + rr.rdlen - 4);
			*ttl = rr.ttl < min ? rr.ttl : min;
			return 0;
		}
	}
	return 0;
}

/* dns_parse: build the record set of (TYPE, NAME) from the answer BUF/LEN. rstat is OK,
 * NXDOMAIN, NODATA, or TEMP for any other rcode; ttl is the raw (unclamped) TTL. Returns 0 and
 * *out (caller holds one reference), -EBADMSG when malformed, -ENOMEM. */
int dns_parse(const unsigned char *buf, int len, uint16_t type, const char *name,
	      struct dns_ent **out)
{
	if (len < 12)
		return -EBADMSG;
	int rcode = buf[3] & 0x0f, off = 12;
	int qd = get16(buf + 4), an = get16(buf + 6), ns = get16(buf + 8);
	if (an > (len - 12) / 11) /* a record takes >= 11 bytes: do not allocate for a lie */
		return -EBADMSG;
	struct dns_ent *e = dns_ent_new(type, name, (uint32_t)an);
	if (!e)
		return -ENOMEM;
	uint32_t n_alloc = e->n, ttl = 0;
	e->n = 0;
	for (int i = 0; i < qd; i++)
		if (skip_name(buf, len, &off) < 0 || (off += 4) > len)
			goto bad;
	for (uint32_t i = 0; i < n_alloc; i++) {
		struct rr rr;
		if (read_rr(buf, len, &off, &rr) < 0 || take_answer(buf, len, &rr, e, &ttl) < 0)
			goto bad;
	}
	if (rcode == 0 && e->n > 0)
		e->rstat = DNS_R_OK;
	else if (rcode == 0 || rcode == 3) {
		e->rstat = rcode == 3 ? DNS_R_NXDOMAIN : DNS_R_NODATA;
		e->n = 0;
		if (neg_ttl(buf, len, off, ns, &ttl) < 0)
			goto bad;
	} else {
		e->rstat = DNS_R_TEMP; /* records beside an error rcode are not an answer */
		e->n = 0;
		snprintf(e->reason, sizeof(e->reason), "rcode %d", rcode);
	}
	e->ttl = ttl;
	*out = e;
	return 0;
bad:
	dns_ent_unref(e);
	return -EBADMSG;
}
