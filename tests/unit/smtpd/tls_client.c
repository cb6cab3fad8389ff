/* tls_client — see tls_client.h.
 *
 * Why blocking I/O with tls/ over memory: the thread plays one client step after another, so
 * the simplest correct driver is read() -> tls_feed and tls_out -> write(); TLS 1.3 tickets
 * the server sends after the handshake are processed by tls_read like any record.
 */
#include "tests/unit/smtpd/tls_client.h"
#include "engine/util/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>

#define TCLI_BUF (1u << 20)

static void tcli_write_raw(struct tcli *c, const char *p, size_t n)
{
	ssize_t w;

	while (n && (w = write(c->fd, p, n)) > 0) {
		p += w;
		n -= (size_t)w;
	}
}

static void tcli_flush(struct tcli *c)
{
	size_t n;
	const void *o = tls_out(c->t, &n);

	if (o && n) {
		tcli_write_raw(c, o, n);
		tls_out_consume(c->t, n);
	}
}

static void tcli_write(struct tcli *c, const char *p, size_t n)
{
	long w;

	if (!c->t)
		return tcli_write_raw(c, p, n);
	for (; n; p += w, n -= (size_t)w) {
		w = tls_write(c->t, p, n);
		if (w <= 0)
			return;
		tcli_flush(c);
	}
}

/* Read more plaintext into buf: > 0 bytes, 0 at EOF (or close_notify), < 0 on error. */
static ssize_t tcli_read_more(struct tcli *c)
{
	char raw[16384];
	ssize_t r;
	long n;

	if (c->blen == TCLI_BUF)
		return 0;
	if (!c->t) {
		r = read(c->fd, c->buf + c->blen, TCLI_BUF - c->blen);
		c->blen += r > 0 ? (size_t)r : 0;
		return r;
	}
	while ((n = tls_read(c->t, c->buf + c->blen, TCLI_BUF - c->blen)) == -EAGAIN) {
		tcli_flush(c);
		if ((r = read(c->fd, raw, sizeof(raw))) <= 0)
			return r;
		tls_feed(c->t, raw, (size_t)r);
	}
	tcli_flush(c);
	if (n > 0)
		c->blen += (size_t)n;
	return n == -EPIPE ? 0 : n;
}

static char *tcli_take(struct tcli *c, size_t n)
{
	char *out = util_xstrndup(c->buf, n);

	memmove(c->buf, c->buf + n, c->blen - n);
	c->blen -= n;
	return out;
}

/* End of the first n complete replies in the buffer, or 0. */
static size_t replies_end(const char *b, size_t len, unsigned n)
{
	size_t i = 0, next;
	const char *lf;

	while (n && i < len && (lf = memchr(b + i, '\n', len - i))) {
		next = (size_t)(lf - b) + 1;
		if (next - i >= 4 && b[i + 3] == ' ')
			n--;
		i = next;
	}
	return n ? 0 : i;
}

static char *tcli_replies(struct tcli *c, unsigned n)
{
	size_t end;

	while (!(end = replies_end(c->buf, c->blen, n)) && tcli_read_more(c) > 0)
		;
	return tcli_take(c, end ? end : c->blen);
}

static char *tcli_quiet(struct tcli *c, unsigned ms)
{
	struct pollfd pf = {.fd = c->fd, .events = POLLIN};

	while (!c->blen && poll(&pf, 1, (int)ms) > 0)
		if (tcli_read_more(c) <= 0)
			break;
	return tcli_take(c, c->blen);
}

static char *tcli_eof(struct tcli *c)
{
	while (tcli_read_more(c) > 0)
		;
	return tcli_take(c, c->blen);
}

/* The client handshake: "ok", or "failed: <why>". */
static char *tcli_handshake(struct tcli *c)
{
	char raw[16384], out[320];
	ssize_t r;
	int rc;

	if (tls_new(c->ctx, c->host, NULL, &c->t) < 0)
		return util_xstrndup("failed: tls_new", 15);
	while ((rc = tls_handshake(c->t)) == -EAGAIN) {
		tcli_flush(c);
		if ((r = read(c->fd, raw, sizeof(raw))) <= 0)
			return util_xstrndup("failed: eof", 11);
		tls_feed(c->t, raw, (size_t)r);
	}
	tcli_flush(c);
	if (rc == 0) {
		tls_get_info(c->t, &c->info);
		return util_xstrndup("ok", 2);
	}
	snprintf(out, sizeof(out), "failed: %s", tls_error(c->t));
	return util_xstrndup(out, strlen(out));
}

static char *tcli_step(struct tcli *c, const struct tcli_step *st)
{
	switch (st->kind) {
	case TC_SEND:
		tcli_write(c, st->data, strlen(st->data));
		return NULL;
	case TC_GARBAGE:
		tcli_write_raw(c, st->data, strlen(st->data));
		return NULL;
	case TC_REPLIES:
		return tcli_replies(c, st->n);
	case TC_STARTTLS:
		return tcli_handshake(c);
	case TC_QUIET:
		return tcli_quiet(c, st->n);
	case TC_EOF:
		return tcli_eof(c);
	case TC_END:
		break;
	}
	return NULL;
}

static void tcli_end_fn(struct loop *l, struct loop_msg *m)
{
	struct tcli *c = container_of(m, struct tcli, end_msg);

	c->on_end(c->user);
}

static void *tcli_main(void *arg)
{
	struct tcli *c = arg;

	c->fd = socket(c->to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd >= 0 && connect(c->fd, (struct sockaddr *)&c->to, c->tolen) == 0) {
		if (c->implicit)
			free(tcli_handshake(c));
		for (unsigned i = 0; c->steps[i].kind != TC_END; i++)
			c->got[i] = tcli_step(c, &c->steps[i]);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	tls_free(c->t);
	c->t = NULL;
	/* wolfSSL (built with FP_ECC) keeps a per-thread cache of ECC points that only this call
	 * frees; without it every client thread leaks ~2 MB (LeakSanitizer). tls/ has no
	 * per-thread cleanup of its own yet. */
	wc_ecc_fp_free();
	c->end_msg.fn = tcli_end_fn;
	loop_post(c->l, &c->end_msg);
	return NULL;
}

/* tcli_start: see tls_client.h. */
int tcli_start(struct tcli *c, struct loop *l, const struct tcli_step *steps,
	       void (*on_end)(void *user), void *user)
{
	unsigned n = 0;

	while (steps[n].kind != TC_END)
		n++;
	if (n > TCLI_MAX_STEPS)
		return -E2BIG;
	alarm(20);
	c->buf = util_xmalloc(TCLI_BUF);
	c->blen = 0;
	c->l = l;
	c->steps = steps;
	c->on_end = on_end;
	c->user = user;
	return -pthread_create(&c->th, NULL, tcli_main, c);
}

/* tcli_join: see tls_client.h. */
int tcli_join(struct tcli *c)
{
	return -pthread_join(c->th, NULL);
}

/* tcli_check: see tls_client.h. */
void tcli_check(const struct tcli *c)
{
	for (unsigned i = 0; c->steps[i].kind != TC_END; i++) {
		enum tcli_kind k = c->steps[i].kind;

		if (k == TC_SEND || k == TC_GARBAGE || !c->steps[i].data)
			continue;
		assert_non_null(c->got[i]);
		assert_string_equal(c->got[i], c->steps[i].data);
	}
}

/* tcli_fini: see tls_client.h. */
void tcli_fini(struct tcli *c)
{
	for (unsigned i = 0; i < TCLI_MAX_STEPS; i++) {
		free(c->got[i]);
		c->got[i] = NULL;
	}
	free(c->buf);
	c->buf = NULL;
	alarm(0);
}
