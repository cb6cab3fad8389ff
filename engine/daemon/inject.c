/* inject — what becomes of a message at the end of DATA, before it is stored: its egress pool
 * (the X-Riptide-Pool: header, removed, or the default pool), the header rewrite rules, and
 * its recipients grouped by destination as the routes say.
 *
 * Why before the store: the queue keeps the message as it will be sent (a DKIM signature made
 * later signs the rewritten headers), and the destination names it stores carry the pool
 * ("pool/name"), so a retry after a restart leaves from the same pool without a field of its
 * own in the envelope.
 */
#include "engine/daemon/inject.h"
#include "engine/daemon/rt.h"
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INJECT_POOL_HEADER "X-Riptide-Pool"

/* The message's pool into pool (len bytes): its header's (removed from the body), else the
 * default pool. Returns 0, or -ENOENT with the reply text in why (no such pool). */
static int inject_pool(const struct snap *s, char *body, size_t *len, char *pool, size_t plen,
		       char *why, size_t wl)
{
	int ret = smtp_hdr_take(body, len, INJECT_POOL_HEADER, pool, plen);

	if (ret == -ENAMETOOLONG || (ret == 1 && !snap_pool(s, pool, strlen(pool)))) {
		snprintf(why, wl, "5.6.0 " INJECT_POOL_HEADER ": no such egress pool: %.64s",
			 ret == 1 ? pool : "(too long)");
		return -ENOENT;
	}
	if (ret != 1)
		snprintf(pool, plen, "%.63s", s->cfg.default_pool);
	return 0;
}

/* Apply the [rewrite] rules to the From/Sender/Reply-To fields of *body (replaced by the
 * rewritten copy when anything changed). */
static void inject_rewrite(const struct snap *s, char **body, size_t *len)
{
	char *out = NULL;
	size_t outlen = 0;

	if (!s->nrw || smtp_hdr_rewrite(*body, *len, s->rw, s->nrw, &out, &outlen) <= 0 || !out)
		return;
	free(*body);
	*body = out;
	*len = outlen;
}

/* Group env's recipients by destination: env->dests (names in *names, freed by the caller)
 * and each recipient's group. Returns 0 or -E2BIG / -ENOMEM / -ENAMETOOLONG. */
static int inject_group(const struct snap *s, const char *pool, struct queue_env *env, char **names)
{
	unsigned n = env->nrcpt;
	const char **addrs = util_xmalloc((n ? n : 1) * sizeof(*addrs));
	uint16_t *grp = util_xmalloc((n ? n : 1) * sizeof(*grp));
	unsigned *first = util_xmalloc((n ? n : 1) * sizeof(*first));
	struct route_ctx ctx;
	int ng;

	for (unsigned i = 0; i < n; i++)
		addrs[i] = env->rcpts[i].addr;
	snap_route_ctx(s, pool, &ctx);
	ng = route_split(&ctx, addrs, n, grp, first, names);
	for (int g = 0; g < ng; g++)
		env->dests[g] = (struct queue_dest){.name = *names + (size_t)g * ROUTE_NAME_MAX,
						    .due = env->created_ms};
	for (unsigned i = 0; ng > 0 && i < n; i++)
		env->rcpts[i].dest = grp[i];
	env->ndest = ng > 0 ? (uint32_t)ng : 0;
	free(addrs);
	free(grp);
	free(first);
	return ng < 0 ? ng : 0;
}

/* The envelope's recipients (the strings stay e's). */
static struct queue_rcpt *inject_rcpts(const struct smtpd_envelope *e)
{
	struct queue_rcpt *rc = util_xcalloc(e->nrcpts ? e->nrcpts : 1, sizeof(*rc));

	for (unsigned i = 0; i < e->nrcpts; i++) {
		rc[i].addr = (char *)e->rcpts[i];
		rc[i].last_reply = (char *)"";
		/* SMTP_NOTIFY_* and QUEUE_NOTIFY_* are the same bits */
		rc[i].notify = e->notify ? e->notify[i] : 0;
		rc[i].orcpt = (char *)(e->orcpts && e->orcpts[i] ? e->orcpts[i] : "");
	}
	return rc;
}

struct msg *inject_msg(const struct snap *s, const struct queue_id *id,
		       const struct smtpd_envelope *e, char **body, size_t *len, int *code,
		       char *why, size_t wl)
{
	unsigned n = e->nrcpts ? e->nrcpts : 1;
	struct queue_dest *dests = util_xcalloc(n, sizeof(*dests));
	struct queue_env env = {
	    .sender = (char *)e->sender,
	    .created_ms = queue_id_ms(id),
	    .flags =
		(e->body_8bit ? QUEUE_ENV_8BITMIME : 0) | (e->smtputf8 ? QUEUE_ENV_SMTPUTF8 : 0),
	    .envid = (char *)(e->envid ? e->envid : ""),
	    .ret = e->ret,
	    .nrcpt = e->nrcpts,
	    .rcpts = inject_rcpts(e),
	    .dests = dests,
	};
	char pool[64], *names = NULL;
	struct msg *m = NULL;

	*code = 550;
	if (inject_pool(s, *body, len, pool, sizeof(pool), why, wl) == 0) {
		inject_rewrite(s, body, len);
		env.body_len = *len;
		*code = 552;
		snprintf(why, wl, "5.3.4 Envelope too large");
		if (inject_group(s, pool, &env, &names) == 0)
			m = msg_new(id, &env, *body, *len);
	}
	free(names);
	free(dests);
	free(env.rcpts);
	return m;
}
