/* unit — delivery units (see unit.h). */
#include "engine/daemon/unit.h"
#include "engine/util/util.h"

#include <string.h>

struct unit *unit_new(struct msg *m, uint16_t g, const char *dest, const unsigned *idx, unsigned n)
{
	struct unit *u = util_xcalloc(1, sizeof(*u) + n * sizeof(u->r[0]));

	u->m = m;
	u->group = g;
	snprintf(u->dest, sizeof(u->dest), "%s", dest);
	u->n = n;
	u->body_state = m->body ? UNIT_BODY_HOME : UNIT_BODY_NONE;
	for (unsigned k = 0; k < n; k++) {
		u->r[k].idx = idx[k];
		u->r[k].attempts = m->env->rcpts[idx[k]].attempts;
	}
	return u;
}

const char *unit_body(const struct unit *u, size_t *len)
{
	if (u->body_state == UNIT_BODY_HOME) {
		*len = u->m->body_len;
		return u->m->body;
	}
	*len = u->body_len;
	return u->body_state == UNIT_BODY_READY ? u->body : NULL;
}

void unit_set(struct unit *u, unsigned k, enum queue_rcpt_state st, int code, const char *text,
	      size_t len)
{
	struct unit_rcpt *r = &u->r[k];

	BUG_ON(k >= u->n);
	free(r->reply);
	r->reply = util_xstrndup(text ? text : "", text ? len : 0);
	r->state = (uint8_t)st;
	r->code = (uint16_t)code;
	r->decided = true;
}

void unit_set_event(struct unit *u, unsigned k, const struct event *e)
{
	struct unit_rcpt *r = &u->r[k];

	unit_set(u, k, e->state, e->code, e->reply, e->reply_len);
	for (int i = 0; i < 3; i++)
		r->enh[i] = (uint8_t)e->enh[i];
	free(r->mta);
	r->mta = e->mx ? util_xstrndup(e->mx, strlen(e->mx)) : NULL;
}

void unit_set_enh(struct unit *u, unsigned k, const int enh[3])
{
	BUG_ON(k >= u->n);
	for (int i = 0; i < 3; i++)
		u->r[k].enh[i] = (uint8_t)enh[i];
}

void unit_free(struct unit *u)
{
	if (!u)
		return;
	for (unsigned k = 0; k < u->n; k++)
		free(u->r[k].reply), free(u->r[k].mta);
	free(u->body);
	free(u);
}
