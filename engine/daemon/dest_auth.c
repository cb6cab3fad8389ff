/* dest_auth — SMTP AUTH toward a relay, as its destination queue sees it (see dest_int.h).
 *
 * Why: a failed AUTH (the relay refused the credentials, or AUTH could not even be tried: no
 * TLS with auth_plaintext = no, no PLAIN/LOGIN offered) is a configuration error, not a
 * verdict on the mail and not a sign the relay is down. So it never fails or bounces anything
 * and never marks a target down: every job queued for the destination is deferred (retried
 * after retry_delay like any 4xx), each recipient's line carrying the relay's reply (e.g.
 * status=deferred code=535 dsn=5.7.8, with a reason saying why it is not a failure), and one
 * line says event=config-error. For a short hold afterwards new mail is deferred the same way
 * without connecting, so a wrong password costs one login per hold rather than one per
 * message (relays lock accounts that fail too often). A 4xx to AUTH (454 4.7.0) is the relay's
 * temporary trouble: deferred and held alike, without the config-error line. No password is in
 * any of it: only the relay's reply and smtpc's static error strings are logged.
 */
#include "engine/daemon/dest_int.h"
#include "engine/daemon/event.h"

#include <stdio.h>
#include <string.h>

#define DEST_AUTH_HOLD_MAX_MS 10000u

static const char dest_auth_reason[] = "authentication failed (configuration error): retried later";

void dest_auth_config(const struct dest *d, struct smtpc_config *sc)
{
	if (d->kind != DEST_RELAY || !d->cfg->auth_user[0])
		return;
	sc->auth_user = d->cfg->auth_user;
	sc->auth_password = d->cfg->auth_password;
	sc->auth_plaintext = d->cfg->auth_plaintext;
}

/* Defer every queued job with the failure d holds; t: the target that gave it (NULL: none,
 * nothing was tried for these jobs). */
static void dest_auth_defer(struct dest *d, const struct dest_target *t)
{
	struct job *j;

	while ((j = job_pop(d))) {
		for (unsigned k = 0; k < j->n; k++) {
			struct event ev = {
			    .state = QUEUE_RCPT_PENDING,
			    .code = d->auth_code,
			    .enh = {d->auth_enh[0], d->auth_enh[1], d->auth_enh[2]},
			    .reply = d->auth_text,
			    .reply_len = strlen(d->auth_text),
			    .reason = dest_auth_reason,
			};
			dest_record_ev(d, j->u, j->idx[k], t, &ev);
		}
		job_end(d, j);
	}
}

/* Keep the failure of info in d: the relay's reply, or smtpc's error with 4.7.0. */
static void dest_auth_keep(struct dest *d, const struct smtpc_close_info *info)
{
	const struct smtpc_reply *r = &info->reply;
	int enh[3] = {r->enh_class, r->enh_subject, r->enh_detail};

	if (!r->code) {
		enh[0] = 4, enh[1] = 7, enh[2] = 0;
		snprintf(d->auth_text, sizeof(d->auth_text), "%s", info->err ? info->err : "AUTH");
	} else {
		snprintf(d->auth_text, sizeof(d->auth_text), "%.*s", (int)r->text_len, r->text);
	}
	d->auth_code = r->code;
	memcpy(d->auth_enh, enh, sizeof(enh));
}

/* The one line that names the configuration error (not for a 4xx: the relay's trouble). */
static void dest_auth_log(struct dest *d, const struct osess *o, uint64_t sess_id)
{
	char sid[24], q[300], what[48] = "";

	if (d->auth_code >= 400 && d->auth_code < 500)
		return;
	if (d->auth_code && d->auth_enh[0])
		snprintf(what, sizeof(what), "%d %d.%d.%d ", d->auth_code, d->auth_enh[0],
			 d->auth_enh[1], d->auth_enh[2]);
	else if (d->auth_code)
		snprintf(what, sizeof(what), "%d ", d->auth_code);
	snprintf(sid, sizeof(sid), "session-%llx", (unsigned long long)sess_id);
	dlog_line(d->env.log, sid,
		  "event=config-error relay=%s reason=\"authentication failed at relay %s: %s%s\"",
		  d->name, o->tg.ip, what,
		  dlog_quote(d->auth_text, strlen(d->auth_text), q, sizeof(q)));
}

void dest_auth_failed(struct dest *d, const struct osess *o, uint64_t sess_id,
		      const struct smtpc_close_info *info)
{
	uint64_t now = loop_now_ms(d->env.loop), back = d->cfg->retry_delay_ms;

	if (d->auth_hold_until <= now) { /* the first session of a round to fail: log once */
		dest_auth_keep(d, info);
		dest_auth_log(d, o, sess_id);
		d->auth_hold_until =
		    now + (back < DEST_AUTH_HOLD_MAX_MS ? back : DEST_AUTH_HOLD_MAX_MS);
	}
	dest_auth_defer(d, &o->tg); /* a connection was tried for them: an attempt each */
}

bool dest_auth_held(struct dest *d)
{
	if (d->auth_hold_until <= loop_now_ms(d->env.loop))
		return false;
	dest_auth_defer(d, NULL);
	return true;
}
