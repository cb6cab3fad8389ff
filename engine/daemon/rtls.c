/* rtls — the daemon's TLS contexts: one client context for outbound delivery, one server
 * context for the injection listeners (STARTTLS and the implicit-TLS listener).
 *
 * Why a file of its own: both are made once at start-up from the configuration (the files are
 * read and checked before anything listens, so a bad certificate is an exit 2 with the file's
 * name, not a failure at the first client), shared by every shard (tls/ contexts are
 * thread-safe after creation), and freed after the shards have stopped.
 */
#include "engine/daemon/rt.h"

#include <errno.h>
#include <stdio.h>

#define RTLS_SESSION_CACHE 4096 /* outbound TLS sessions kept for resumption, per host:port */

/* The client context, or none when tls = none. Returns 0 or -errno (message on stderr). */
static int rtls_client(struct rt *rt)
{
	const struct config *c = &rt->cfg;
	struct tls_client_opts o = {
	    .verify = config_tls_verify_effective(c) == CONFIG_VERIFY_CA ? TLS_VERIFY_CA
									 : TLS_VERIFY_NONE,
	    .ca_file = c->tls_ca_file,
	    .session_cache = RTLS_SESSION_CACHE,
	};
	char err[512];
	int ret;

	if (c->tls == CONFIG_TLS_NONE)
		return 0;
	ret = tls_ctx_client_new(&o, &rt->tls_client, err, sizeof(err));
	if (ret < 0)
		fprintf(stderr, "riptide: [delivery] tls: %s\n", err);
	return ret;
}

/* The server context, or none when tls_cert is not set. Returns 0 or -errno. */
static int rtls_server(struct rt *rt)
{
	const struct config *c = &rt->cfg;
	struct tls_server_opts o = {.cert_file = c->tls_cert, .key_file = c->tls_key};
	char err[512];
	int ret;

	if (!c->tls_cert[0])
		return 0;
	ret = tls_ctx_server_new(&o, &rt->tls_server, err, sizeof(err));
	if (ret < 0)
		fprintf(stderr, "riptide: [inject] tls_cert/tls_key: %s\n", err);
	return ret;
}

/* rt_tls_open: make rt->tls_client and rt->tls_server as the configuration asks (either may
 * stay NULL). Returns 0, or -errno after printing why (the daemon exits 2). */
int rt_tls_open(struct rt *rt)
{
	int ret = rtls_client(rt);

	return ret < 0 ? ret : rtls_server(rt);
}

/* rt_tls_close: free both contexts (after every shard has stopped). */
void rt_tls_close(struct rt *rt)
{
	tls_ctx_free(rt->tls_client);
	tls_ctx_free(rt->tls_server);
	rt->tls_client = rt->tls_server = NULL;
}
