/* tls_fx — what the tls/ unit tests share: a throwaway PKI made by
 * tests/integration/mkcerts.sh in a temp dir, contexts on it, and a byte pump that carries
 * ciphertext between a client and a server struct tls in memory.
 */
#ifndef RIPTIDE_TEST_TLS_FX_H
#define RIPTIDE_TEST_TLS_FX_H

#include "tls/tls_int.h"

#include <stddef.h>

/* fx_setup: run MKCERTS (the script's path) into a new temp dir. Returns 0 or -1. */
int fx_setup(const char *mkcerts);

/* fx_teardown: remove the temp dir. */
void fx_teardown(void);

/* fx_path: DIR/name (a static buffer, one of 8 used in turn). */
const char *fx_path(const char *name);

/* fx_server: a server context on DIR/cert and DIR/key (must succeed). */
struct tls_ctx *fx_server(const char *cert, const char *key);

/* fx_client: a client context; ca is a file name in DIR, or NULL for the system store. */
struct tls_ctx *fx_client(enum tls_verify v, const char *ca, unsigned cache);

/* fx_pump: move everything tls_out(from) holds into to, at most chunk bytes per tls_feed
 * (0 = all at once). Returns the number of bytes moved. */
size_t fx_pump(struct tls *from, struct tls *to, size_t chunk);

/* fx_handshake: run both handshakes to the end, pumping chunk bytes at a time. Returns 0 when
 * both completed, else the first negative result (*rc_c / *rc_s: each side's last result,
 * either may be NULL). */
int fx_handshake(struct tls *c, struct tls *s, size_t chunk, int *rc_c, int *rc_s);

/* fx_pair: new client (host, cache_key) and server connections on cc / sc and handshake them;
 * returns fx_handshake's result. */
int fx_pair(struct tls_ctx *cc, struct tls_ctx *sc, const char *host, const char *key,
	    struct tls **c, struct tls **s);

/* fx_xfer: write n bytes of p on from (every partial write continued), carry them across and
 * read them on to with a read buffer of rcap bytes, feeding chunk bytes at a time; compares
 * with p. Returns 0 when all arrived intact, -1 otherwise. */
int fx_xfer(struct tls *from, struct tls *to, const void *p, size_t n, size_t rcap, size_t chunk);

/* fx_now: CLOCK_MONOTONIC in seconds. */
double fx_now(void);

#endif
