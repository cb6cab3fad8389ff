/* dns — the resolver thread: a locked request queue woken by an eventfd, one c-ares channel
 * (plus one on the resolv.conf servers for fallback_auto) driven by poll(), lookups of record
 * sets merged per (type, name), MX jobs that gather MX then A and AAAA of every host, and host
 * jobs (a relay given by name) that gather A and AAAA of the name alone.
 *
 * Why: callers (shard loops) must never wait on DNS. They read the shared cache themselves
 * (dns_resolve_mx's fast path) and only hand misses to this thread, which answers through the
 * caller's callback. Only this thread touches c-ares and the in-flight table, so neither
 * needs a lock; the cache is the one structure shared by all threads.
 */
#include "dns/dns_int.h"

#include <ares.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define DNS_INFLIGHT_BUCKETS 1024
#define DNS_STRIPES	     16

/* Counters bumped by callers' threads, one cache line per stripe so shards do not bounce a
 * shared line on every cache hit. */
struct dns_stripe {
	_Alignas(64) atomic_uint_fast64_t hits;
	atomic_uint_fast64_t mx_cached, host_cached;
};

struct dns_req {
	struct dns_req *next;
	dns_mx_cb cb;
	void *arg;
	int host; /* dns_resolve_host: A and AAAA of the name itself */
	char domain[256];
};

struct dns_job;

struct dns_waiter {
	struct dns_waiter *next;
	struct dns_job *job;
	int slot; /* -1: the MX set; else index into job->addrs */
};

/* One record-set query in flight; waiters get the answer. */
struct dns_lk {
	struct dns_lk *next;
	struct dns *d;
	uint16_t type;
	int on_fallback;
	struct dns_waiter *waiters;
	char name[256];
};

struct dns_job {
	struct dns *d;
	dns_mx_cb cb;
	void *arg;
	int pending, phase, host;
	struct dns_ent *mx;
	struct dns_ent *addrs[2 * DNS_HOSTS_MAX];
	char domain[256];
};

struct dns {
	struct dns_opts o;
	struct dns_cache *cache;
	ares_channel ch[2];
	int nch, efd;
	pthread_t th;
	pthread_mutex_t mu; /* guards qhead/qtail/stopping */
	struct dns_req *qhead, *qtail;
	int stopping;
	int closing; /* resolver thread only: channels being torn down, ask nothing new */
	struct dns_lk *inflight[DNS_INFLIGHT_BUCKETS];		   /* resolver thread only */
	atomic_uint_fast64_t sent, fallback, hits, misses, merged; /* resolver thread's */
	struct dns_stripe stripe[DNS_STRIPES];			   /* callers' cache hits */
};

static atomic_uint next_stripe;
static _Thread_local unsigned my_stripe = UINT_MAX;

static void need(struct dns *d, struct dns_job *j, uint16_t type, const char *name, int slot);

static void count(atomic_uint_fast64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned lk_bucket(uint16_t type, const char *name)
{
	unsigned h = type;
	for (const char *p = name; *p; p++)
		h = h * 31u + (unsigned char)*p;
	return h % DNS_INFLIGHT_BUCKETS;
}

/* Finish J: build its result from the record sets it holds and hand it to the caller. */
static void job_finish(struct dns_job *j)
{
	struct dns_mx_result *r = NULL;
	if (j->host)
		r = dns_host_build(j->domain, j->addrs[0], j->addrs[1]);
	else if (j->mx)
		r = dns_mx_build(j->domain, j->mx, j->addrs, j->d->o.max_mx_hosts,
				 j->d->o.implicit_mx);
	if (!r)
		r = dns_mx_fail(j->domain, DNS_TEMPFAIL, "out of memory");
	j->cb(j->arg, r);
	dns_ent_unref(j->mx);
	for (size_t i = 0; i < 2 * DNS_HOSTS_MAX; i++)
		dns_ent_unref(j->addrs[i]);
	free(j);
}

/* The MX set arrived: ask for A and AAAA of every host it needs, or finish. */
static void job_hosts(struct dns_job *j)
{
	const char *names[DNS_HOSTS_MAX];
	size_t n;
	j->phase = 1;
	if (dns_mx_hosts(j->mx, j->d->o.max_mx_hosts, j->d->o.implicit_mx, j->domain, names, &n) !=
	    DNS_OK) {
		job_finish(j);
		return;
	}
	j->pending = 1 + 2 * (int)n; /* +1: no finish while asking */
	for (size_t i = 0; i < n; i++) {
		need(j->d, j, DNS_T_A, names[i], (int)(2 * i));
		need(j->d, j, DNS_T_AAAA, names[i], (int)(2 * i + 1));
	}
	if (--j->pending == 0)
		job_finish(j);
}

/* Record set E (one reference, now J's) fills SLOT of J. */
static void job_got(struct dns_job *j, int slot, struct dns_ent *e)
{
	if (slot < 0)
		j->mx = e;
	else
		j->addrs[slot] = e;
	if (--j->pending > 0)
		return;
	if (j->phase == 0)
		job_hosts(j);
	else
		job_finish(j);
}

static uint32_t clamp_ttl(const struct dns_opts *o, const struct dns_ent *e)
{
	uint32_t max = o->max_ttl;
	if (e->rstat != DNS_R_OK && o->neg_max_ttl < max)
		max = o->neg_max_ttl;
	uint32_t t = e->ttl < o->min_ttl ? o->min_ttl : e->ttl;
	return t > max ? max : t;
}

/* Unlink LK from the in-flight table and give E to every waiter (E's reference is consumed).
 * Cacheable answers go into the cache first. */
static void lk_done(struct dns_lk *lk, struct dns_ent *e)
{
	struct dns *d = lk->d;
	struct dns_lk **pp = &d->inflight[lk_bucket(lk->type, lk->name)];
	while (*pp != lk)
		pp = &(*pp)->next;
	*pp = lk->next;
	if (e->rstat != DNS_R_TEMP) {
		e->ttl = clamp_ttl(&d->o, e);
		e->expires_ms = dns_now_ms() + (uint64_t)e->ttl * 1000u;
		if (e->ttl > 0)
			dns_cache_put(d->cache, e);
	}
	for (struct dns_waiter *w = lk->waiters, *nx; w; w = nx) {
		nx = w->next;
		atomic_fetch_add_explicit(&e->ref, 1, memory_order_relaxed);
		job_got(w->job, w->slot, e);
		free(w);
	}
	dns_ent_unref(e);
	free(lk);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/* A never-cached "no usable answer" record set; aborts on ENOMEM (a waiter must be answered). */
static struct dns_ent *temp_ent(uint16_t type, const char *name, const char *why)
{
	struct dns_ent *e = dns_ent_new(type, name, 0);
	if (!e)
		abort();
	e->rstat = DNS_R_TEMP;
	snprintf(e->reason, sizeof(e->reason), "%s lookup of %s: %s",
		 type == DNS_T_MX  ? "MX"
		 : type == DNS_T_A ? "A"
				   : "AAAA",
		 name, why);
	return e;
}

/* Hand LK's query to channel CH. */
static void lk_send(struct dns_lk *lk, int ch)
{
	count(&lk->d->sent);
	if (ch == 1)
		count(&lk->d->fallback);
	lk->on_fallback = ch;
	ares_query(lk->d->ch[ch], lk->name, 1 /* C_IN */, lk->type, on_answer, lk);
}

/* c-ares answered LK (or gave up): parse, maybe retry on the fallback channel, deliver. */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_lk *lk = arg;
	struct dns_ent *e = NULL;
	int answered = status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND;
	if (answered && abuf && dns_parse(abuf, alen, lk->type, lk->name, &e) == 0 &&
	    e->rstat != DNS_R_TEMP) {
		lk_done(lk, e);
		return;
	}
	dns_ent_unref(e);
	int stop = status == ARES_ECANCELLED || status == ARES_EDESTRUCTION;
	if (!stop && lk->d->nch == 2 && !lk->on_fallback) {
		lk_send(lk, 1);
		return;
	}
	lk_done(lk, temp_ent(lk->type, lk->name, answered ? "bad answer" : ares_strerror(status)));
}

/* J needs (TYPE, NAME) in SLOT: from the cache, by joining a query in flight, or by asking. */
static void need(struct dns *d, struct dns_job *j, uint16_t type, const char *name, int slot)
{
	struct dns_ent *e = dns_cache_get(d->cache, type, name);
	if (e) {
		count(&d->hits);
		job_got(j, slot, e);
		return;
	}
	if (d->closing) {
		job_got(j, slot, temp_ent(type, name, "resolver shutting down"));
		return;
	}
	count(&d->misses);
	struct dns_waiter *w = calloc(1, sizeof(*w));
	struct dns_lk **b = &d->inflight[lk_bucket(type, name)], *lk = *b;
	while (lk && (lk->type != type || strcmp(lk->name, name)))
		lk = lk->next;
	if (!w || (!lk && !(lk = calloc(1, sizeof(*lk)))))
		abort(); /* tiny allocations; a resolver that cannot answer is worse */
	*w = (struct dns_waiter){.next = lk->waiters, .job = j, .slot = slot};
	if (lk->d) {
		count(&d->merged);
		lk->waiters = w;
		return;
	}
	*lk = (struct dns_lk){.next = *b, .d = d, .type = type, .waiters = w};
	snprintf(lk->name, sizeof(lk->name), "%s", name);
	*b = lk;
	lk_send(lk, 0);
}

/* Start the job of request Q (Q stays the caller's): an MX job asks for the MX set first; a
 * host job asks for A and AAAA of the name, or answers a numeric address at once. */
static void job_start(struct dns *d, const struct dns_req *q)
{
	struct dns_mx_result *lit = NULL;
	struct dns_job *j = NULL;
	if ((q->host && dns_host_literal(q->domain, &lit) != 0) || !(j = calloc(1, sizeof(*j)))) {
		q->cb(q->arg, lit ? lit : dns_mx_fail(q->domain, DNS_TEMPFAIL, "out of memory"));
		return;
	}
	*j = (struct dns_job){
	    .d = d, .cb = q->cb, .arg = q->arg, .pending = 1, .phase = q->host, .host = q->host};
	memcpy(j->domain, q->domain, sizeof(j->domain));
	if (!q->host) {
		need(d, j, DNS_T_MX, j->domain, -1);
		return;
	}
	j->pending = 3; /* +1: no finish while asking */
	need(d, j, DNS_T_A, j->domain, 0);
	need(d, j, DNS_T_AAAA, j->domain, 1);
	if (--j->pending == 0)
		job_finish(j);
}

/* Take every queued request and start its job. Returns the stopping flag. */
static int drain_queue(struct dns *d)
{
	uint64_t v;
	if (read(d->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		abort();
	pthread_mutex_lock(&d->mu);
	struct dns_req *q = d->qhead;
	int stop = d->stopping;
	d->qhead = d->qtail = NULL;
	pthread_mutex_unlock(&d->mu);
	for (struct dns_req *nx; q; q = nx) {
		nx = q->next;
		job_start(d, q);
		free(q);
	}
	return stop;
}

/* poll() timeout in ms: the nearest c-ares timeout, or -1 when no query waits. */
static int next_timeout(struct dns *d)
{
	int ms = -1;
	for (int i = 0; i < d->nch; i++) {
		struct timeval tv, *t = ares_timeout(d->ch[i], NULL, &tv);
		if (!t)
			continue;
		int m = (int)(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
		if (ms < 0 || m < ms)
			ms = m;
	}
	return ms;
}

/* One poll round over the eventfd and every c-ares socket. */
static void poll_round(struct dns *d)
{
	struct pollfd pf[1 + 2 * ARES_GETSOCK_MAXNUM];
	int owner[1 + 2 * ARES_GETSOCK_MAXNUM], n = 1;
	pf[0] = (struct pollfd){.fd = d->efd, .events = POLLIN};
	for (int c = 0; c < d->nch; c++) {
		ares_socket_t s[ARES_GETSOCK_MAXNUM];
		int bits = ares_getsock(d->ch[c], s, ARES_GETSOCK_MAXNUM);
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			/* c-ares's ARES_GETSOCK_* macros shift a signed 1 into bit 31 (UB):
			 * test the same bits unsigned */
			unsigned ub = (unsigned)bits;
			short ev =
			    (short)((((ub >> i) & 1u) ? POLLIN : 0) |
				    (((ub >> (i + ARES_GETSOCK_MAXNUM)) & 1u) ? POLLOUT : 0));
			if (!ev)
				continue;
			owner[n] = c;
			pf[n++] = (struct pollfd){.fd = s[i], .events = ev};
		}
	}
	if (poll(pf, (nfds_t)n, next_timeout(d)) < 0 && errno != EINTR)
		abort();
	for (int i = 1; i < n; i++) {
		short re = pf[i].revents;
		if (re)
			ares_process_fd(d->ch[owner[i]],
					re & (POLLIN | POLLERR | POLLHUP) ? pf[i].fd
									  : ARES_SOCKET_BAD,
					re & POLLOUT ? pf[i].fd : ARES_SOCKET_BAD);
	}
	for (int c = 0; c < d->nch; c++) /* timeouts */
		ares_process_fd(d->ch[c], ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static void *resolver_main(void *arg)
{
	struct dns *d = arg;
	while (!drain_queue(d))
		poll_round(d);
	d->closing = 1;
	for (int c = 0; c < d->nch; c++)
		ares_cancel(d->ch[c]); /* every waiter gets DNS_TEMPFAIL */
	drain_queue(d);		       /* requests queued meanwhile: answered the same way */
	return NULL;
}

/* A channel on the servers of CSV with our timeout and tries. */
static int chan_new(const struct dns_opts *o, const char *csv, ares_channel *out)
{
	struct ares_options ao = {.timeout = (int)o->timeout_ms,
				  .tries = (int)o->tries,
				  .flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES};
	int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
	if (ares_init_options(out, &ao, mask) != ARES_SUCCESS)
		return -ENOMEM;
	if (ares_set_servers_ports_csv(*out, csv) != ARES_SUCCESS) {
		ares_destroy(*out);
		return -EINVAL;
	}
	return 0;
}

static void opts_defaults(struct dns_opts *o)
{
	o->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
	o->tries = o->tries ? o->tries : 2;
	o->max_ttl = o->max_ttl ? o->max_ttl : 86400;
	o->neg_max_ttl = o->neg_max_ttl ? o->neg_max_ttl : 3600;
	o->max_entries = o->max_entries ? o->max_entries : 65536;
	o->max_mx_hosts = o->max_mx_hosts ? o->max_mx_hosts : 5;
	if (o->max_mx_hosts > DNS_HOSTS_MAX)
		o->max_mx_hosts = DNS_HOSTS_MAX;
	o->servers = NULL; /* not kept: only used while opening */
	o->resolv_conf = NULL;
}

/* Create the main channel and, with fallback_auto and explicit servers, the fallback one. */
static int channels_new(struct dns *d, const struct dns_opts *o)
{
	char list[1024], autos[1024];
	int is_auto = !o->servers || !strcmp(o->servers, "auto");
	int rc = is_auto ? 0 : dns_conf_list(o->servers, list, sizeof(list));
	if (rc == 0 && (is_auto || o->fallback_auto))
		rc = dns_conf_auto(o->resolv_conf, autos, sizeof(autos));
	if (rc < 0)
		return rc;
	if ((rc = chan_new(&d->o, is_auto ? autos : list, &d->ch[0])) < 0)
		return rc;
	d->nch = 1;
	if (!is_auto && o->fallback_auto) {
		if ((rc = chan_new(&d->o, autos, &d->ch[1])) < 0)
			return rc;
		d->nch = 2;
	}
	return 0;
}

static void dns_free(struct dns *d)
{
	for (int c = 0; c < d->nch; c++)
		ares_destroy(d->ch[c]);
	if (d->efd >= 0)
		close(d->efd);
	dns_cache_free(d->cache);
	pthread_mutex_destroy(&d->mu);
	free(d);
	ares_library_cleanup();
}

/* dns_open: see dns.h. */
int dns_open(const struct dns_opts *opts, struct dns **out)
{
	struct dns *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->o = *opts;
	opts_defaults(&d->o);
	d->efd = -1;
	pthread_mutex_init(&d->mu, NULL);
	int rc = ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS ? 0 : -ENOMEM;
	if (rc == 0)
		rc = dns_cache_new(d->o.max_entries, &d->cache);
	if (rc == 0)
		rc = channels_new(d, opts);
	if (rc == 0 && (d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		rc = -errno;
	if (rc == 0)
		rc = -pthread_create(&d->th, NULL, resolver_main, d);
	if (rc < 0) {
		dns_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

/* dns_close: see dns.h. */
/* dns_shutdown: see dns.h. Only the first call stops and joins the thread. */
void dns_shutdown(struct dns *d)
{
	uint64_t one = 1;
	int was;

	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	was = d->stopping;
	d->stopping = 1;
	pthread_mutex_unlock(&d->mu);
	if (was)
		return;
	if (write(d->efd, &one, sizeof(one)) < 0)
		abort();
	pthread_join(d->th, NULL);
}

void dns_close(struct dns *d)
{
	if (!d)
		return;
	dns_shutdown(d);
	dns_free(d);
}

/* The calling thread's counter stripe. */
static struct dns_stripe *stripe_mine(struct dns *d)
{
	if (my_stripe == UINT_MAX)
		my_stripe = atomic_fetch_add(&next_stripe, 1) % DNS_STRIPES;
	return &d->stripe[my_stripe];
}

/* Answer DOMAIN (normalised) from the cache alone; NULL when some record set is missing. */
static struct dns_mx_result *from_cache(struct dns *d, const char *domain)
{
	struct dns_ent *addrs[2 * DNS_HOSTS_MAX] = {0};
	const char *names[DNS_HOSTS_MAX];
	struct dns_mx_result *r = NULL;
	size_t n = 0, got = 0;
	struct dns_ent *mx = dns_cache_get(d->cache, DNS_T_MX, domain);
	if (!mx)
		return NULL;
	if (dns_mx_hosts(mx, d->o.max_mx_hosts, d->o.implicit_mx, domain, names, &n) == DNS_OK)
		for (size_t i = 0; i < n; i++) {
			got += !!(addrs[2 * i] = dns_cache_get(d->cache, DNS_T_A, names[i]));
			got += !!(addrs[2 * i + 1] = dns_cache_get(d->cache, DNS_T_AAAA, names[i]));
		}
	if (got == 2 * n) {
		r = dns_mx_build(domain, mx, addrs, d->o.max_mx_hosts, d->o.implicit_mx);
		struct dns_stripe *st = stripe_mine(d);
		atomic_fetch_add_explicit(&st->hits, 1 + got, memory_order_relaxed);
		count(&st->mx_cached);
	}
	for (size_t i = 0; i < 2 * n; i++)
		dns_ent_unref(addrs[i]);
	dns_ent_unref(mx);
	return r;
}

/* Answer host NAME (normalised) from the cache alone: NULL unless both A and AAAA are there. */
static struct dns_mx_result *host_from_cache(struct dns *d, const char *name)
{
	struct dns_mx_result *r = NULL;
	struct dns_ent *a4 = dns_cache_get(d->cache, DNS_T_A, name);
	struct dns_ent *a6 = a4 ? dns_cache_get(d->cache, DNS_T_AAAA, name) : NULL;
	if (a6 && (r = dns_host_build(name, a4, a6))) {
		struct dns_stripe *st = stripe_mine(d);
		atomic_fetch_add_explicit(&st->hits, 2, memory_order_relaxed);
		count(&st->host_cached);
	}
	dns_ent_unref(a4);
	dns_ent_unref(a6);
	return r;
}

/* Queue a request for NAME (normalised) to the resolver thread and wake it. Returns 0,
 * -ENOMEM or -ESHUTDOWN. */
static int enqueue(struct dns *d, const char *name, int host, dns_mx_cb cb, void *arg)
{
	struct dns_req *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	*q = (struct dns_req){.cb = cb, .arg = arg, .host = host};
	memcpy(q->domain, name, strlen(name) + 1);
	uint64_t one = 1;
	pthread_mutex_lock(&d->mu);
	int stopping = d->stopping;
	if (!stopping) {
		if (d->qtail)
			d->qtail->next = q;
		else
			d->qhead = q;
		d->qtail = q;
	}
	pthread_mutex_unlock(&d->mu);
	if (stopping) {
		free(q);
		return -ESHUTDOWN;
	}
	/* The eventfd is non-blocking (never blocks a shard); a failed write (EAGAIN: counter
	 * saturated) leaves a wake-up pending anyway. The request is queued and its callback will
	 * run, so this is a success whatever the write says. */
	(void)!write(d->efd, &one, sizeof(one));
	return 0;
}

/* dns_resolve_mx: see dns.h. */
int dns_resolve_mx(struct dns *d, const char *domain, dns_mx_cb cb, void *arg,
		   struct dns_mx_result **cached)
{
	char name[256];
	if (!cb || dns_name_norm(domain, name) < 0)
		return -EINVAL;
	if (cached && (*cached = from_cache(d, name)))
		return 0;
	return enqueue(d, name, 0, cb, arg);
}

/* dns_resolve_host: see dns.h. */
int dns_resolve_host(struct dns *d, const char *name, dns_mx_cb cb, void *arg,
		     struct dns_mx_result **cached)
{
	char norm[256];
	if (!cb || dns_name_norm(name, norm) < 0)
		return -EINVAL;
	if (cached) {
		*cached = NULL;
		int lit = dns_host_literal(norm, cached);
		if (lit != 0)
			return lit < 0 ? lit : 0;
		if ((*cached = host_from_cache(d, norm)))
			return 0;
	}
	return enqueue(d, norm, 1, cb, arg);
}

/* dns_counters_get: see dns.h. */
void dns_counters_get(struct dns *d, struct dns_counters *c)
{
	*c = (struct dns_counters){
	    .queries_sent = atomic_load_explicit(&d->sent, memory_order_relaxed),
	    .fallback_queries = atomic_load_explicit(&d->fallback, memory_order_relaxed),
	    .cache_hits = atomic_load_explicit(&d->hits, memory_order_relaxed),
	    .cache_misses = atomic_load_explicit(&d->misses, memory_order_relaxed),
	    .merged = atomic_load_explicit(&d->merged, memory_order_relaxed),
	};
	for (int i = 0; i < DNS_STRIPES; i++) {
		c->cache_hits += atomic_load_explicit(&d->stripe[i].hits, memory_order_relaxed);
		c->mx_from_cache +=
		    atomic_load_explicit(&d->stripe[i].mx_cached, memory_order_relaxed);
		c->host_from_cache +=
		    atomic_load_explicit(&d->stripe[i].host_cached, memory_order_relaxed);
	}
	dns_cache_stats(d->cache, &c->entries, &c->evictions);
}
