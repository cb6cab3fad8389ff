/* tls_fx — see tls_fx.h.
 *
 * Why an in-memory pump: tls/ never touches a socket, so a client and a server struct tls can
 * talk by copying each one's output into the other's input; the tests choose how the bytes
 * are cut (all at once, small chunks, one byte at a time) to exercise the partial-record paths
 * the network produces.
 */
#include "tests/unit/tls/tls_fx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char fx_dir[64];

/* fx_setup: see tls_fx.h. */
int fx_setup(const char *mkcerts)
{
	char cmd[512];

	snprintf(fx_dir, sizeof(fx_dir), "/tmp/rt_tls_XXXXXX");
	if (!mkdtemp(fx_dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "'%s' '%s'", mkcerts, fx_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* fx_teardown: see tls_fx.h. */
void fx_teardown(void)
{
	char cmd[128];

	if (!fx_dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", fx_dir);
	fx_dir[0] = 0;
}

/* fx_path: see tls_fx.h. */
const char *fx_path(const char *name)
{
	static char bufs[8][128];
	static unsigned next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", fx_dir, name);
	return b;
}

/* fx_server: see tls_fx.h. */
struct tls_ctx *fx_server(const char *cert, const char *key)
{
	struct tls_server_opts o = {.cert_file = fx_path(cert), .key_file = fx_path(key)};
	struct tls_ctx *c = NULL;
	char err[256];

	if (tls_ctx_server_new(&o, &c, err, sizeof(err)) < 0)
		fprintf(stderr, "fx_server: %s\n", err);
	return c;
}

/* fx_client: see tls_fx.h. */
struct tls_ctx *fx_client(enum tls_verify v, const char *ca, unsigned cache)
{
	struct tls_client_opts o = {
	    .verify = v, .ca_file = ca ? fx_path(ca) : NULL, .session_cache = cache};
	struct tls_ctx *c = NULL;
	char err[256];

	if (tls_ctx_client_new(&o, &c, err, sizeof(err)) < 0)
		fprintf(stderr, "fx_client: %s\n", err);
	return c;
}

/* fx_pump: see tls_fx.h. */
size_t fx_pump(struct tls *from, struct tls *to, size_t chunk)
{
	size_t n;
	const void *p = tls_out(from, &n);

	if (!p)
		return 0;
	if (chunk && n > chunk)
		n = chunk;
	if (tls_feed(to, p, n) < 0)
		return 0;
	tls_out_consume(from, n);
	return n;
}

/* fx_handshake: see tls_fx.h. */
int fx_handshake(struct tls *c, struct tls *s, size_t chunk, int *rc_c, int *rc_s)
{
	int a = -EAGAIN, b = -EAGAIN;

	for (long i = 0; i < (1L << 24); i++) {
		if (a == -EAGAIN)
			a = tls_handshake(c);
		if (b == -EAGAIN)
			b = tls_handshake(s);
		size_t moved = fx_pump(c, s, chunk) + fx_pump(s, c, chunk);
		if ((a != -EAGAIN && b != -EAGAIN) || !moved)
			break; /* both ended, or nobody can move */
	}
	if (rc_c)
		*rc_c = a;
	if (rc_s)
		*rc_s = b;
	return a < 0 ? a : b;
}

/* fx_pair: see tls_fx.h. */
int fx_pair(struct tls_ctx *cc, struct tls_ctx *sc, const char *host, const char *key,
	    struct tls **c, struct tls **s)
{
	*c = *s = NULL;
	if (tls_new(cc, host, key, c) < 0 || tls_new(sc, NULL, NULL, s) < 0)
		return -ENOMEM;
	return fx_handshake(*c, *s, 0, NULL, NULL);
}

/* drain: read everything readable on to into got (n bytes wanted), rcap bytes a read. */
static int drain(struct tls *to, unsigned char *got, size_t *have, size_t n, size_t rcap)
{
	for (;;) {
		size_t room = n - *have < rcap ? n - *have : rcap;
		if (room == 0)
			return 0;
		long r = tls_read(to, got + *have, room);
		if (r == -EAGAIN)
			return 0;
		if (r <= 0)
			return -1;
		*have += (size_t)r;
	}
}

/* fx_xfer: see tls_fx.h. */
int fx_xfer(struct tls *from, struct tls *to, const void *p, size_t n, size_t rcap, size_t chunk)
{
	unsigned char *got = malloc(n ? n : 1);
	size_t sent = 0, have = 0;
	int rc = -1;

	while (got && have < n) {
		if (sent < n) {
			long w = tls_write(from, (const char *)p + sent, n - sent);
			if (w <= 0)
				break;
			sent += (size_t)w;
		}
		size_t moved = fx_pump(from, to, chunk);
		fx_pump(to, from, 0);
		if (drain(to, got, &have, n, rcap) < 0)
			break;
		if (!moved && sent == n && have < n && !tls_in_pending(to))
			break;
	}
	if (got && have == n && memcmp(got, p, n) == 0)
		rc = 0;
	free(got);
	return rc;
}

/* fx_now: see tls_fx.h. */
double fx_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
