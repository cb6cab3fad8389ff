/* riptidectl_route.h — what the two files of test-route share (not a public header).
 *
 * Why two files: riptidectl_route.c decides where mail would go (the relay, or the MX hosts
 * in try order, with the daemon's DNS verdicts) and walks those targets; riptidectl_route_smtp.c
 * holds the SMTP dialogue with one target. They meet here: a target, the command's settings
 * and the outcome of one attempt.
 */
#ifndef RIPTIDE_RIPTIDECTL_ROUTE_H
#define RIPTIDE_RIPTIDECTL_ROUTE_H

#include "engine/config/config.h"
#include "engine/util/util.h"
#include "tls/tls.h"

#include <stdbool.h>

/* One address to connect to, in the daemon's try order. */
struct riptidectl_target {
	char host[UTIL_HOST_MAX]; /* MX host or relay name/literal: SNI, certificate name */
	char ip[64];		  /* printable address:port */
	struct util_addr addr;
};

/* The command's settings and the outcome of the last attempt. */
struct riptidectl_route_run {
	const struct config *cfg;	  /* the route's [delivery] values (or the default's) */
	const struct config_route *route; /* the [route] DOMAIN takes; NULL: the default */
	struct tls_ctx *tls;		  /* client context; NULL when tls = none */
	char rcpt[600];			  /* the RCPT TO address */
	/* outcome of riptidectl_route_attempt */
	char step[640];	  /* the step that failed, as printed ("RCPT TO:<...>", "connect") */
	char why[700];	  /* why: the reply's last line or the error */
	bool before_mail; /* failed before MAIL FROM (and not at AUTH): try the next target */
	bool tls_failed;  /* TLS was tried and could not be had (no handshake, or a failed one) */
	bool tls_on;	  /* the successful attempt was encrypted ... */
	bool verified;	  /* ... with a verified certificate */
	bool authed;	  /* AUTH succeeded */
};

/* riptidectl_route_attempt: one connection to t: greeting, EHLO, TLS (none when use_tls is
 * false, else as [delivery] tls says), AUTH when auth_user is set, MAIL FROM:<>, RCPT
 * TO:<r->rcpt>, RSET, QUIT; every step printed to stdout with its time and the reply.
 * Returns 0 when the recipient was accepted, else -1 with r->step, r->why, r->before_mail
 * and r->tls_failed saying what went wrong. Credentials are never printed and are wiped from
 * the buffers that carried them. */
int riptidectl_route_attempt(struct riptidectl_route_run *r, const struct riptidectl_target *t,
			     bool use_tls);

#endif
