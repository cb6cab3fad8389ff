/* sink_hooks — riptide-sink's SMTP behaviour: replies chosen by the recipient's local part,
 * accepted-message log lines (with the MAIL/RCPT parameters the message came with), body files
 * and counters.
 *
 * Why: one sink run must mix behaviours (temporary and permanent rejections, delays, flapping
 * addresses, DATA-time failures) so a single delivery run exercises every path of the sender;
 * the behaviour rides on the recipient address, like Postfix's smtp-sink fault flags but per
 * recipient. The per-command fault rules (sink_fault.c) are decided first: a rule that fires
 * decides its step's reply, the local-part behaviour applies where none fired (--auth-required
 * comes before both: MAIL without AUTH is 530). A step without rules costs one predictable branch
 * (the benchmark runs with none). Everything here runs on the worker's loop thread except the
 * "fail<N>-" table, which is shared by all threads behind a mutex.
 */
#include "tools/sink/sink.h"

#include "engine/smtp/smtp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SINK_FAIL_BUCKETS 4096

struct sink_fail {
	struct sink_fail *next;
	unsigned seen;
	char addr[];
};

static struct sink_fail *sink_fail_tab[SINK_FAIL_BUCKETS];
static pthread_mutex_t sink_fail_mu = PTHREAD_MUTEX_INITIALIZER;

uint64_t sink_fnv1a64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

unsigned sink_fail_seen(const char *addr)
{
	size_t n = strlen(addr);
	uint64_t h = sink_fnv1a64(addr, n) % SINK_FAIL_BUCKETS;
	struct sink_fail *f;
	unsigned seen;

	pthread_mutex_lock(&sink_fail_mu);
	for (f = sink_fail_tab[h]; f; f = f->next)
		if (strcmp(f->addr, addr) == 0)
			break;
	if (!f) {
		f = util_xcalloc(1, sizeof(*f) + n + 1);
		memcpy(f->addr, addr, n + 1);
		f->next = sink_fail_tab[h];
		sink_fail_tab[h] = f;
	}
	seen = f->seen++;
	pthread_mutex_unlock(&sink_fail_mu);
	return seen;
}

void sink_fail_free(void)
{
	for (size_t i = 0; i < SINK_FAIL_BUCKETS; i++) {
		while (sink_fail_tab[i]) {
			struct sink_fail *f = sink_fail_tab[i];
			sink_fail_tab[i] = f->next;
			free(f);
		}
	}
}

static struct sink_worker *sink_worker_of(void *user)
{
	return user;
}

/* "<prefix><digits>-": returns the number, or -1 if rcpt does not start like that. */
static long sink_prefix_num(const char *rcpt, const char *prefix)
{
	size_t pl = strlen(prefix);
	char *end;
	long v;

	if (strncasecmp(rcpt, prefix, pl) != 0 || !isdigit((unsigned char)rcpt[pl]))
		return -1;
	errno = 0;
	v = strtol(rcpt + pl, &end, 10);
	if (*end != '-' || errno)
		return -1;
	return v;
}

static void sink_delay_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct sink_sess *ss = op->owner;

	smtpd_reply(ss->s, 250, "2.1.5 Ok (delayed)");
}

/* Apply the fault rule f to the step being decided: close without a reply, or reply (a 421
 * closes after it is sent). */
static int sink_fault_apply(struct smtpd_session *s, struct sink_worker *w,
			    const struct sink_fault *f)
{
	if (!f->code) {
		smtpd_session_drop(s);
		return SMTPD_DEFAULT;
	}
	if (f->code >= 400)
		atomic_fetch_add_explicit(&w->c.rejected, 1, memory_order_relaxed);
	smtpd_reply(s, f->code, f->text);
	return SMTPD_DEFAULT;
}

/* The rule of step that fires now, or NULL; one load and branch when step has no rule. */
static inline const struct sink_fault *sink_fault_at(struct sink_worker *w, enum sink_step step)
{
	return unlikely(sink_g.o.nfault[step]) ? sink_fault_pick(w, step) : NULL;
}

/* One more session open (all workers): raise max_open to the new count if it is higher. The
 * count comes from one atomic add, so every value it takes is seen by exactly one session, which
 * raises the maximum to at least that value: the maximum is exact. */
static void sink_open_inc(void)
{
	uint_fast64_t n = atomic_fetch_add_explicit(&sink_g.open, 1, memory_order_relaxed) + 1;
	uint_fast64_t m = atomic_load_explicit(&sink_g.max_open, memory_order_relaxed);

	while (n > m && !atomic_compare_exchange_weak_explicit(
			    &sink_g.max_open, &m, n, memory_order_relaxed, memory_order_relaxed))
		;
}

/* Every session that got on_connect: one session fewer open, and TLS counted (--tls-cert). */
static void sink_on_close(struct smtpd_session *s, void *user)
{
	atomic_fetch_sub_explicit(&sink_g.open, 1, memory_order_relaxed);
	if (sink_g.o.tls_cert)
		sink_sec_close(s, sink_worker_of(user));
}

static int sink_on_connect(struct smtpd_session *s, void *user)
{
	struct sink_worker *w = sink_worker_of(user);
	struct sink_sess *ss = smtpd_session_data(s);
	const struct sink_fault *f;

	ss->s = s;
	ss->tls[0] = '\0';
	ss->peer[0] = '\0';
	ss->delay_op = (struct loop_op){.cb = sink_delay_cb, .owner = ss};
	atomic_fetch_add_explicit(&w->c.connections, 1, memory_order_relaxed);
	sink_open_inc();
	if ((f = sink_fault_at(w, SINK_STEP_CONNECT)))
		return sink_fault_apply(s, w, f);
	return SMTPD_DEFAULT;
}

/* Installed only when there are EHLO/HELO rules. */
static int sink_on_helo(struct smtpd_session *s, const char *name, void *user)
{
	struct sink_worker *w = sink_worker_of(user);
	const struct sink_fault *f = sink_fault_pick(w, SINK_STEP_HELO);

	return f ? sink_fault_apply(s, w, f) : SMTPD_DEFAULT;
}

static int sink_reject(struct smtpd_session *s, struct sink_worker *w, int code, const char *t)
{
	atomic_fetch_add_explicit(&w->c.rejected, 1, memory_order_relaxed);
	smtpd_reply(s, code, t);
	return SMTPD_DEFAULT;
}

static int sink_on_mail(struct smtpd_session *s, const char *sender, const char *params, void *user)
{
	struct sink_worker *w = sink_worker_of(user);
	struct sink_sess *ss = smtpd_session_data(s);
	const struct sink_fault *f;

	ss->data_code = 0;
	if (unlikely(sink_g.o.auth_required) && !smtpd_session_auth_user(s))
		return sink_reject(s, w, 530, "5.7.0 Authentication required");
	if ((f = sink_fault_at(w, SINK_STEP_MAIL)))
		return sink_fault_apply(s, w, f);
	return SMTPD_DEFAULT;
}

/* Installed only when there are DATA rules. */
static int sink_on_data_begin(struct smtpd_session *s, void *user)
{
	struct sink_worker *w = sink_worker_of(user);
	const struct sink_fault *f = sink_fault_pick(w, SINK_STEP_DATA);

	return f ? sink_fault_apply(s, w, f) : SMTPD_DEFAULT;
}

static int sink_on_rcpt(struct smtpd_session *s, const char *rcpt, void *user)
{
	struct sink_worker *w = sink_worker_of(user);
	struct sink_sess *ss = smtpd_session_data(s);
	const struct sink_fault *f;
	long n;

	if ((f = sink_fault_at(w, SINK_STEP_RCPT)))
		return sink_fault_apply(s, w, f);
	if (strncasecmp(rcpt, "450-", 4) == 0)
		return sink_reject(s, w, 450, "4.2.0 Mailbox temporarily unavailable");
	if (strncasecmp(rcpt, "550-", 4) == 0)
		return sink_reject(s, w, 550, "5.1.1 Mailbox unavailable");
	if (strncasecmp(rcpt, "421-", 4) == 0)
		return sink_reject(s, w, 421, "4.3.0 Service closing transmission channel");
	if (strncasecmp(rcpt, "data450-", 8) == 0 && ss->data_code < 450)
		ss->data_code = 450;
	if (strncasecmp(rcpt, "data550-", 8) == 0)
		ss->data_code = 550;
	if ((n = sink_prefix_num(rcpt, "fail")) >= 0 && sink_fail_seen(rcpt) < (unsigned long)n)
		return sink_reject(s, w, 450, "4.2.0 Mailbox temporarily unavailable (flapping)");
	if ((n = sink_prefix_num(rcpt, "delay")) >= 0) {
		loop_timer(smtpd_session_loop(s), &ss->delay_op, (uint64_t)n);
		return SMTPD_ASYNC;
	}
	return SMTPD_DEFAULT;
}

/* The Message-ID header value (first token), or "-" with length 1. */
static const char *sink_message_id(const char *b, size_t n, size_t *len)
{
	const char *p = b, *e = b + n, *eol, *v;

	while (p < e && *p != '\r') { /* header section ends at the first empty line */
		eol = memchr(p, '\n', (size_t)(e - p));
		if (!eol)
			eol = e;
		if (eol - p > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
			v = p + 11;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			for (*len = 0; v + *len < eol && !isspace((unsigned char)v[*len]);)
				(*len)++;
			if (*len)
				return v;
		}
		p = eol + 1;
	}
	*len = 1;
	return "-";
}

static void sink_log_reserve(struct sink_worker *w, size_t n)
{
	if (w->log_cap - w->log_len >= n)
		return;
	while (w->log_cap - w->log_len < n)
		w->log_cap = w->log_cap ? w->log_cap * 2 : 2 * SINK_LOG_FLUSH;
	w->log = util_xrealloc(w->log, w->log_cap);
}

static void sink_log_put(struct sink_worker *w, const char *p, size_t n)
{
	sink_log_reserve(w, n);
	memcpy(w->log + w->log_len, p, n);
	w->log_len += n;
}

/* The parameters a message arrived with, each as " KEY=VALUE" (recipient ones as " I:KEY=VALUE",
 * I the recipient's 0-based position): MAIL's BODY=8BITMIME, SMTPUTF8, RET=, ENVID=<xtext>,
 * each RCPT's NOTIFY= and ORCPT=<addr-type>;<xtext>; values in their canonical wire form. */
static void sink_log_params(struct sink_worker *w, const struct smtpd_envelope *env)
{
	char buf[32 + 3 * SMTP_ORCPT_BUF], nt[SMTP_NOTIFY_TEXT];
	int n;

	if (env->body_8bit)
		sink_log_put(w, " BODY=8BITMIME", 14);
	if (env->smtputf8)
		sink_log_put(w, " SMTPUTF8", 9);
	if (env->ret)
		sink_log_put(w, env->ret == SMTP_RET_FULL ? " RET=FULL" : " RET=HDRS", 9);
	if (env->envid[0] &&
	    smtp_xtext_encode(env->envid, strlen(env->envid), buf, sizeof(buf)) > 0) {
		sink_log_put(w, " ENVID=", 7);
		sink_log_put(w, buf, strlen(buf));
	}
	for (unsigned i = 0; i < env->nrcpts; i++) {
		if (smtp_dsn_notify_format(env->notify[i], nt, sizeof(nt))) {
			n = snprintf(buf, sizeof(buf), " %u:NOTIFY=%s", i, nt);
			sink_log_put(w, buf, (size_t)n);
		}
		n = snprintf(buf, sizeof(buf), " %u:ORCPT=", i);
		if (env->orcpts[i][0] &&
		    smtp_dsn_orcpt_format(env->orcpts[i], buf + n, sizeof(buf) - (size_t)n) > 0)
			sink_log_put(w, buf, strlen(buf));
	}
}

/* What the session says about the message: " tls=VERSION" when it came over TLS, " auth=USER"
 * when the client authenticated (USER: one of the --auth logins, so no blank in it). The version
 * is asked for once per session (TLS never goes away once up). */
static void sink_log_session(struct sink_worker *w, struct smtpd_session *s)
{
	struct sink_sess *ss = smtpd_session_data(s);
	struct tls_info i;
	const char *u;

	if (!sink_g.tls && !sink_g.o.nauth)
		return; /* the benchmark's case: nothing to look up */
	if (!ss->tls[0] && smtpd_session_tls(s, &i))
		snprintf(ss->tls, sizeof(ss->tls), "%s", i.version[0] ? i.version : "unknown");
	if (ss->tls[0]) {
		sink_log_put(w, " tls=", 5);
		sink_log_put(w, ss->tls, strlen(ss->tls));
	}
	if ((u = smtpd_session_auth_user(s))) {
		sink_log_put(w, " auth=", 6);
		sink_log_put(w, u, strlen(u));
	}
}

/* The client's address as the log line shows it, into buf: the IP address without port
 * ("127.0.0.1", "::1"), "unix" for a UNIX socket client, "-" if unknown. */
static void sink_peer_format(struct smtpd_session *s, char *buf, size_t len)
{
	const struct sockaddr *sa = smtpd_session_peer(s, NULL);
	const void *a = NULL;

	if (sa && sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa && sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (a && inet_ntop(sa->sa_family, a, buf, (socklen_t)len))
		return;
	snprintf(buf, len, "%s", sa && sa->sa_family == AF_UNIX ? "unix" : "-");
}

/* The last two fields: " peer=ADDR helo=NAME" (NAME: the HELO/EHLO argument as the client sent
 * it, a word without blanks or control bytes, so the line stays split by spaces). The address
 * is formatted once per session. */
static void sink_log_peer(struct sink_worker *w, struct smtpd_session *s)
{
	struct sink_sess *ss = smtpd_session_data(s);
	const char *helo = smtpd_session_helo(s);

	if (!ss->peer[0])
		sink_peer_format(s, ss->peer, sizeof(ss->peer));
	sink_log_put(w, " peer=", 6);
	sink_log_put(w, ss->peer, strlen(ss->peer));
	sink_log_put(w, " helo=", 6);
	sink_log_put(w, helo, strlen(helo));
}

static void sink_log_message(struct sink_worker *w, struct smtpd_session *s,
			     const struct smtpd_envelope *env, uint64_t hash)
{
	struct timespec ts;
	char num[96];
	const char *mid;
	size_t mlen;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(num, sizeof(num), "%" PRIu64 " ",
		     (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	sink_log_put(w, num, (size_t)n);
	if (env->sender[0])
		sink_log_put(w, env->sender, strlen(env->sender));
	else
		sink_log_put(w, "<>", 2);
	for (unsigned i = 0; i < env->nrcpts; i++) {
		sink_log_put(w, i ? "," : " ", 1);
		sink_log_put(w, env->rcpts[i], strlen(env->rcpts[i]));
	}
	n = snprintf(num, sizeof(num), " %zu %016" PRIx64 " ", env->body_len, hash);
	sink_log_put(w, num, (size_t)n);
	mid = sink_message_id(env->body, env->body_len, &mlen);
	sink_log_put(w, mid, mlen);
	sink_log_params(w, env);
	sink_log_session(w, s);
	if (sink_g.o.log_peer)
		sink_log_peer(w, s);
	sink_log_put(w, "\n", 1);
	if (w->log_len >= SINK_LOG_FLUSH)
		sink_log_flush(w);
}

void sink_log_flush(struct sink_worker *w)
{
	size_t off = 0;
	ssize_t n;

	while (sink_g.out_fd >= 0 && off < w->log_len) {
		n = write(sink_g.out_fd, w->log + off, w->log_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "riptide-sink: write %s: %s\n", sink_g.o.out_path,
				strerror(errno));
			break;
		}
		off += (size_t)n;
	}
	w->log_len = 0;
}

static int sink_save_eml(const struct smtpd_envelope *env)
{
	uint64_t n = atomic_fetch_add(&sink_g.eml_seq, 1) + 1;
	char path[4096];
	size_t off = 0;
	ssize_t k;
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%" PRIu64 ".eml", sink_g.o.dir, n);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (off < env->body_len) {
		k = write(fd, env->body + off, env->body_len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			ret = k < 0 ? -errno : -EIO;
			goto out;
		}
		off += (size_t)k;
	}
out:
	close(fd);
	return ret;
}

static int sink_on_data(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct sink_worker *w = sink_worker_of(user);
	struct sink_sess *ss = smtpd_session_data(s);
	const struct sink_fault *f = sink_fault_at(w, SINK_STEP_DOT);
	char text[64];
	uint64_t n;

	if (f && (!f->code || f->code >= 400))
		return sink_fault_apply(s, w, f);
	if (!f && ss->data_code == 450)
		return sink_reject(s, w, 450, "4.3.0 Temporary failure (data450)");
	if (!f && ss->data_code == 550)
		return sink_reject(s, w, 550, "5.6.0 Message rejected (data550)");
	if (sink_g.o.dir && sink_save_eml(env) < 0)
		return sink_reject(s, w, 451, "4.3.0 Error: cannot save message");
	if (sink_g.out_fd >= 0)
		sink_log_message(w, s, env, sink_fnv1a64(env->body, env->body_len));
	n = atomic_fetch_add_explicit(&w->c.messages, 1, memory_order_relaxed) + 1;
	atomic_fetch_add_explicit(&w->c.recipients, env->nrcpts, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->c.bytes, env->body_len, memory_order_relaxed);
	snprintf(text, sizeof(text), "2.0.0 Ok: queued as W%uM%" PRIu64, w->idx, n);
	smtpd_reply(s, f ? f->code : 250, f ? f->text : text); /* a 2xx rule: accepted, its text */
	return SMTPD_DEFAULT;
}

static int sink_on_data_progress(struct smtpd_session *s, size_t body_bytes, void *user)
{
	return sink_g.o.drop && body_bytes >= sink_g.o.drop_after;
}

/* sink_hooks_get: see sink.h. */
struct smtpd_hooks sink_hooks_get(const struct sink_opts *o)
{
	return (struct smtpd_hooks){
	    .on_connect = sink_on_connect,
	    .on_helo = o->nfault[SINK_STEP_HELO] ? sink_on_helo : NULL,
	    .on_mail = sink_on_mail,
	    .on_rcpt = sink_on_rcpt,
	    .on_data_begin = o->nfault[SINK_STEP_DATA] ? sink_on_data_begin : NULL,
	    .on_data = sink_on_data,
	    .on_data_progress = o->drop ? sink_on_data_progress : NULL,
	    .on_close = sink_on_close,
	    .on_auth = o->nauth ? sink_on_auth : NULL,
	};
}
