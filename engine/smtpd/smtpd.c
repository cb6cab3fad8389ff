/* smtpd — server configuration, listening sockets, per-loop workers, accepting and shutdown.
 *
 * Why this shape: the server is immutable once workers run, so every thread reads it without
 * locks (the session id counter and the global session count are the atomics). Each worker keeps
 * exactly one single-shot accept in flight per listening fd and re-arms it after every completion:
 * the kernel wakes one accept waiter per connection, in turn, so connections spread across the
 * loops without SO_REUSEPORT and UNIX sockets behave like TCP ones. Shutdown is per worker (it must
 * cancel its own ring's ops): stop accepting, let transactions finish within a grace period, then
 * close.
 */
#include "engine/smtpd/smtpd_types.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SMTPD_BACKLOG	      4096
#define SMTPD_ACCEPT_RETRY_MS 100
#define SMTPD_HARD_CLOSE_MS   1000

/* ---- server ---- */

static void smtpd_config_defaults(struct smtpd_config *c)
{
	if (!c->max_size)
		c->max_size = 100ull << 20;
	if (!c->max_rcpts)
		c->max_rcpts = 1000;
	if (!c->max_line)
		c->max_line = 2048;
	if (!c->max_errors)
		c->max_errors = 20;
	if (!c->cmd_timeout_ms)
		c->cmd_timeout_ms = 300000;
	if (!c->data_timeout_ms)
		c->data_timeout_ms = 180000;
	if (!c->send_timeout_ms)
		c->send_timeout_ms = 300000;
	if (!c->cmd_deadline_ms)
		c->cmd_deadline_ms = 300000;
	if (!c->data_deadline_ms)
		c->data_deadline_ms = 600000;
}

/* Append "250-<kw>\r\n" to the preformatted EHLO lines; *last gets its offset. 0 or -EINVAL
 * (CR/LF in kw, or no room). */
static int smtpd_ehlo_add(struct smtpd_server *srv, size_t *last, const char *kw)
{
	size_t n = srv->ehlo_extra_len, cap = sizeof(srv->ehlo_extra);
	int r;

	if (strpbrk(kw, "\r\n"))
		return -EINVAL;
	r = snprintf(srv->ehlo_extra + n, cap - n, "250-%s\r\n", kw);
	if (r < 0 || (size_t)r >= cap - n)
		return -EINVAL;
	*last = n;
	srv->ehlo_extra_len = n + (size_t)r;
	return 0;
}

/* The EHLO lines after the host name: the extensions not hidden, the extra keywords, and the
 * last line turned into "250 ". Empty when there is nothing to advertise. */
static int smtpd_ehlo_build(struct smtpd_server *srv)
{
	uint32_t hide = srv->cfg.hide_ext;
	const char *const *x = srv->cfg.ehlo_extra;
	char size_kw[40];
	size_t last = SIZE_MAX;
	int ret = 0;

	snprintf(size_kw, sizeof(size_kw), "SIZE %" PRIu64, srv->cfg.max_size);
	if (!(hide & SMTP_EXT_PIPELINING))
		ret = smtpd_ehlo_add(srv, &last, "PIPELINING");
	if (!ret && !(hide & SMTP_EXT_SIZE))
		ret = smtpd_ehlo_add(srv, &last, size_kw);
	if (!ret && !(hide & SMTP_EXT_8BITMIME))
		ret = smtpd_ehlo_add(srv, &last, "8BITMIME");
	if (!ret && !(hide & SMTP_EXT_SMTPUTF8))
		ret = smtpd_ehlo_add(srv, &last, "SMTPUTF8");
	if (!ret && !(hide & SMTP_EXT_DSN))
		ret = smtpd_ehlo_add(srv, &last, "DSN");
	for (; !ret && x && *x; x++)
		ret = smtpd_ehlo_add(srv, &last, *x);
	if (!ret && !(hide & SMTP_EXT_ENHANCEDSTATUSCODES))
		ret = smtpd_ehlo_add(srv, &last, "ENHANCEDSTATUSCODES");
	if (ret)
		return ret;
	if (last != SIZE_MAX)
		srv->ehlo_extra[last + 3] = ' ';
	srv->cfg.ehlo_extra = NULL; /* not kept: the caller's array may go away */
	return 0;
}

int smtpd_server_new(struct smtpd_server **out, const struct smtpd_config *cfg,
		     const struct smtpd_hooks *hooks, void *user)
{
	struct smtpd_server *srv = util_xcalloc(1, sizeof(*srv));
	int ret = -EINVAL;

	srv->cfg = cfg ? *cfg : (struct smtpd_config){0};
	smtpd_config_defaults(&srv->cfg);
	if (srv->cfg.max_line > 4096 || srv->cfg.max_line < 64)
		goto fail;
	if (hooks)
		srv->hooks = *hooks;
	srv->user = user;
	if (srv->cfg.hostname)
		snprintf(srv->hostname, sizeof(srv->hostname), "%s", srv->cfg.hostname);
	else if (gethostname(srv->hostname, sizeof(srv->hostname) - 1) < 0)
		snprintf(srv->hostname, sizeof(srv->hostname), "localhost");
	snprintf(srv->greeting, sizeof(srv->greeting), "%s",
		 srv->cfg.greeting ? srv->cfg.greeting : "riptide");
	if (strpbrk(srv->hostname, "\r\n ") || strpbrk(srv->greeting, "\r\n"))
		goto fail;
	srv->cfg.hostname = srv->hostname;
	srv->cfg.greeting = srv->greeting;
	snprintf(srv->timeout_text, sizeof(srv->timeout_text), "4.4.2 %s Error: timeout exceeded",
		 srv->hostname);
	ret = smtpd_ehlo_build(srv);
	if (ret < 0)
		goto fail;
	*out = srv;
	return 0;
fail:
	free(srv);
	return ret;
}

static int smtpd_socket_prepare(int fd, const struct util_addr *a)
{
	int one = 1;
	struct stat st;
	const char *path = ((const struct sockaddr_un *)&a->ss)->sun_path;

	if (a->family == AF_UNIX) {
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			(void)unlink(path); /* stale socket from a previous run */
		return 0;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	if (a->family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

int smtpd_server_listen(struct smtpd_server *srv, const struct util_addr *addr)
{
	struct smtpd_listener *ls;
	int fd, ret;

	if (srv->nls == SMTPD_MAX_LISTEN)
		return -ENOSPC;
	BUG_ON(atomic_load(&srv->workers) != 0);
	fd = socket(addr->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = smtpd_socket_prepare(fd, addr);
	if (ret < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 ||
	    listen(fd, SMTPD_BACKLOG) < 0) {
		ret = -errno;
		goto fail;
	}
	ls = &srv->ls[srv->nls++];
	ls->fd = fd;
	ls->family = addr->family;
	ls->tls = false;
	ls->path[0] = '\0';
	if (addr->family == AF_UNIX)
		snprintf(ls->path, sizeof(ls->path), "%s",
			 ((const struct sockaddr_un *)&addr->ss)->sun_path);
	return 0;
fail:
	close(fd);
	return ret;
}

/* smtpd_server_listen_tls: see smtpd.h. */
int smtpd_server_listen_tls(struct smtpd_server *srv, const struct util_addr *addr)
{
	int ret;

	if (!srv->cfg.tls_ctx)
		return -EINVAL;
	ret = smtpd_server_listen(srv, addr);
	if (ret == 0)
		srv->ls[srv->nls - 1].tls = true;
	return ret;
}

int smtpd_server_listen_str(struct smtpd_server *srv, const char *addr)
{
	struct util_addr a;

	memset(&a, 0, sizeof(a));
	if (util_addr_parse(addr, &a) < 0)
		return -EINVAL;
	return smtpd_server_listen(srv, &a);
}

void smtpd_server_free(struct smtpd_server *srv)
{
	if (!srv)
		return;
	BUG_ON(atomic_load(&srv->workers) != 0);
	for (unsigned i = 0; i < srv->nls; i++) {
		close(srv->ls[i].fd);
		if (srv->ls[i].path[0])
			(void)unlink(srv->ls[i].path);
	}
	free(srv);
}

/* ---- worker: accepting ---- */

static void smtpd_check_done(struct smtpd_worker *w)
{
	if (!w->shutting_down || w->done_called || w->nsessions || w->accepts_inflight ||
	    w->iterating)
		return;
	if (w->grace_armed) {
		loop_cancel(w->l, &w->grace_op); /* done once its completion arrives */
		return;
	}
	w->done_called = true;
	if (w->done)
		w->done(w, w->done_arg); /* may free w: nothing after this */
}

static void smtpd_accept_cb(struct loop_op *op, int res, uint32_t flags);
static void smtpd_accept_retry_cb(struct loop_op *op, int res, uint32_t flags);

static void smtpd_accept_arm(struct smtpd_accept *a)
{
	struct smtpd_worker *w = a->w;
	struct io_uring_sqe *sqe = loop_get_sqe(w->l);

	a->peer_len = sizeof(a->peer);
	a->op.cb = smtpd_accept_cb;
	io_uring_prep_accept(sqe, w->srv->ls[a->idx].fd, (struct sockaddr *)&a->peer, &a->peer_len,
			     SOCK_CLOEXEC);
	loop_sqe_op(sqe, &a->op);
	a->armed = true;
	w->accepts_inflight++;
}

static void smtpd_accept_retry_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct smtpd_accept *a = op->owner;
	struct smtpd_worker *w = a->w;

	a->armed = false;
	w->accepts_inflight--;
	if (w->shutting_down)
		return smtpd_check_done(w);
	smtpd_accept_arm(a);
}

static void smtpd_accept_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct smtpd_accept *a = op->owner;
	struct smtpd_worker *w = a->w;

	a->armed = false;
	w->accepts_inflight--;
	if (res >= 0 && w->shutting_down)
		close(res);
	else if (res >= 0)
		smtpd_session_start(w, res, &a->peer, a->peer_len, w->srv->ls[a->idx].tls);
	if (w->shutting_down)
		return smtpd_check_done(w);
	if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
		/* out of descriptors or memory: back off instead of spinning */
		a->op.cb = smtpd_accept_retry_cb;
		a->armed = true;
		w->accepts_inflight++;
		loop_timer(w->l, &a->op, SMTPD_ACCEPT_RETRY_MS);
		return;
	}
	smtpd_accept_arm(a);
}

int smtpd_worker_new(struct smtpd_worker **out, struct smtpd_server *srv, struct loop *l,
		     void *user)
{
	struct smtpd_worker *w = util_xcalloc(1, sizeof(*w));

	w->srv = srv;
	w->l = l;
	w->user = user ? user : srv->user;
	atomic_fetch_add(&srv->workers, 1);
	for (unsigned i = 0; i < srv->nls; i++) {
		w->acc[i].w = w;
		w->acc[i].idx = i;
		w->acc[i].op.owner = &w->acc[i];
		smtpd_accept_arm(&w->acc[i]);
	}
	*out = w;
	return 0;
}

/* smtpd_worker_session_gone: s has been torn down and had its on_close: unlink and recycle. */
void smtpd_worker_session_gone(struct smtpd_worker *w, struct smtpd_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		w->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	w->nsessions--;
	if (s->counted)
		atomic_fetch_sub(&w->srv->sessions, 1);
	if (s->body && s->body_cap > SMTPD_BODY_KEEP) {
		free(s->body);
		s->body = NULL;
		s->body_cap = 0;
	}
	if (w->nfree < SMTPD_FREELIST_MAX) {
		s->next = w->freelist;
		w->freelist = s;
		w->nfree++;
	} else {
		smtpd_session_bufs_free(s);
		free(s);
	}
	smtpd_check_done(w);
}

/* ---- worker: shutdown ---- */

static void smtpd_for_each_session(struct smtpd_worker *w, void (*fn)(struct smtpd_session *s))
{
	struct smtpd_session *s = w->head, *next;

	w->iterating = true; /* no done() (which may free w) while walking */
	while (s) {
		next = s->next; /* fn may free s (recycled onto the free list) */
		fn(s);
		s = next;
	}
	w->iterating = false;
}

static void smtpd_soft_close(struct smtpd_session *s)
{
	smtpd_session_force_close(s, false);
}

static void smtpd_hard_close(struct smtpd_session *s)
{
	smtpd_session_force_close(s, true);
}

static void smtpd_grace_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct smtpd_worker *w = op->owner;

	w->grace_armed = false;
	if (res == -ETIME && w->nsessions) {
		smtpd_for_each_session(w, w->grace_over ? smtpd_hard_close : smtpd_soft_close);
		if (!w->grace_over && w->nsessions) {
			w->grace_over = true;
			w->grace_armed = true;
			loop_timer(w->l, &w->grace_op, SMTPD_HARD_CLOSE_MS);
		}
	}
	smtpd_check_done(w);
}

void smtpd_worker_shutdown(struct smtpd_worker *w, uint64_t grace_ms,
			   void (*done)(struct smtpd_worker *w, void *arg), void *arg)
{
	if (w->shutting_down)
		return;
	w->shutting_down = true;
	w->done = done;
	w->done_arg = arg;
	for (unsigned i = 0; i < w->srv->nls; i++)
		if (w->acc[i].armed)
			loop_cancel(w->l, &w->acc[i].op);
	smtpd_for_each_session(w, smtpd_session_kick_idle);
	w->grace_op = (struct loop_op){.cb = smtpd_grace_cb, .owner = w};
	if (w->nsessions) {
		w->grace_armed = true;
		loop_timer(w->l, &w->grace_op, grace_ms);
	}
	smtpd_check_done(w);
}

/* smtpd_server_sessions: see smtpd.h (a relaxed snapshot: other workers may change it). */
unsigned smtpd_server_sessions(const struct smtpd_server *srv)
{
	return atomic_load(&srv->sessions);
}

unsigned smtpd_worker_sessions(const struct smtpd_worker *w)
{
	return w->nsessions;
}

void smtpd_worker_free(struct smtpd_worker *w)
{
	struct smtpd_session *s;

	if (!w)
		return;
	BUG_ON(w->nsessions || w->accepts_inflight || w->grace_armed);
	while ((s = w->freelist)) {
		w->freelist = s->next;
		smtpd_session_bufs_free(s);
		free(s);
	}
	atomic_fetch_sub(&w->srv->workers, 1);
	free(w);
}
