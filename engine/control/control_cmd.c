/* control_cmd.c — the commands that go through the engine: summary, and the actions delete,
 * bounce, retry, suspend, resume and clear.
 *
 * Why: these are thin on purpose. The engine owns the counters (summary never scans the
 * queue) and every change of state (a control thread deleting from RocksDB behind a shard's
 * back would race with the message's home shard); this file only checks the arguments, calls
 * the engine's table and words the answer, for a person or as JSON.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/control/control_types.h"
#include "engine/util/util.h"

/* ---- summary ---- */

/* One destination collected from the engine: its row with the strings copied (they are only
 * valid during the callback), and its STATE text. */
struct sum_row {
	struct ctl_dest_stat s;
	char *name, *rule, *source;
	char state[320];
};

/* The rows, sorted before printing; width: the STATE column's. */
struct sum_rows {
	struct sum_row *v;
	size_t n, cap;
	uint64_t now_ms;
	int width;
};

static char *sum_dup(const char *s)
{
	size_t n = strlen(s ? s : "");
	char *d = util_xmalloc(n + 1);

	memcpy(d, s ? s : "", n + 1);
	return d;
}

/* s escaped for text output (ctl_out_str's text mode) into out (len bytes, truncated). */
static void sum_escape(const char *s, char *out, size_t len)
{
	struct ctl_out t;

	ctl_out_init(&t, -1, -1, NULL, false);
	ctl_out_str(&t, s);
	snprintf(out, len, "%.*s", (int)t.len, t.buf ? t.buf : "");
	ctl_out_free(&t);
}

/* The STATE text of row r at now_ms (wall), escaped already (it holds a rule name), so its
 * length is its width: suspended, backoff:..., or active. */
static void sum_state(struct sum_row *r, uint64_t now_ms)
{
	const struct ctl_backoff *b = &r->s.backoff;
	char left[32], rule[200];

	if (r->s.suspended || !b->action) {
		snprintf(r->state, sizeof(r->state), "%s", r->s.suspended ? "suspended" : "active");
		return;
	}
	ctl_fmt_dur(b->until_ms > now_ms ? b->until_ms - now_ms : 0, left, sizeof(left));
	sum_escape(r->rule, rule, sizeof(rule));
	if (strcmp(b->action, "reduce") == 0)
		snprintf(r->state, sizeof(r->state), "backoff:reduce %.2f(%s) %s left", b->factor,
			 rule, left);
	else
		snprintf(r->state, sizeof(r->state), "backoff:%s(%s) %s left", b->action, rule,
			 left);
}

static int sum_add(void *cookie, const struct ctl_dest_stat *s)
{
	struct sum_rows *rows = cookie;
	struct sum_row *r;
	int w;

	if (rows->n == rows->cap) {
		rows->cap = rows->cap ? rows->cap * 2 : 64;
		rows->v = util_xrealloc(rows->v, rows->cap * sizeof(*rows->v));
	}
	r = &rows->v[rows->n++];
	r->s = *s;
	r->s.name = r->name = sum_dup(s->name);
	r->s.backoff.rule = r->rule = sum_dup(s->backoff.rule);
	r->s.backoff.source = r->source = sum_dup(s->backoff.source);
	r->s.backoff.action = !s->backoff.action			 ? NULL
			      : strcmp(s->backoff.action, "reduce") == 0 ? "reduce"
									 : "suspend";
	sum_state(r, rows->now_ms);
	w = (int)strlen(r->state);
	rows->width = w > rows->width ? w : rows->width;
	return 0;
}

/* Messages descending, then name. */
static int sum_cmp(const void *a, const void *b)
{
	const struct ctl_dest_stat *x = &((const struct sum_row *)a)->s;
	const struct ctl_dest_stat *y = &((const struct sum_row *)b)->s;

	if (x->messages != y->messages)
		return x->messages < y->messages ? 1 : -1;
	return strcmp(x->name, y->name);
}

static void sum_totals(struct ctl_out *o, const struct ctl_totals *t, size_t ndest, int width)
{
	char sz[16];

	ctl_out_line(o);
	if (o->json) {
		ctl_out_printf(o,
			       "{\"type\":\"totals\",\"messages\":%llu,\"recipients\":%llu,"
			       "\"bytes\":%llu,\"destinations\":%zu,\"counting\":%s}",
			       (unsigned long long)t->messages, (unsigned long long)t->recipients,
			       (unsigned long long)t->bytes, ndest, t->counting ? "true" : "false");
	} else {
		ctl_fmt_size(t->bytes, sz, sizeof(sz));
		ctl_out_printf(o, "%llu messages, %llu recipients, %s bytes, %zu destinations%s",
			       (unsigned long long)t->messages, (unsigned long long)t->recipients,
			       sz, ndest, t->counting ? " (still counting after the start)" : "");
	}
	ctl_out_end(o);
	if (!o->json && ndest) {
		ctl_out_line(o);
		ctl_out_printf(o, "%8s %8s %8s  %-9s %-9s %-*s %s", "MSGS", "RCPTS", "SIZE",
			       "OLDEST", "NEXT", width, "STATE", "DESTINATION");
		ctl_out_end(o);
	}
}

/* The "backoff" member of a destination's JSON object. */
static void sum_json_backoff(struct ctl_out *o, const struct ctl_backoff *b)
{
	if (!b->action) {
		ctl_out_printf(o, ",\"backoff\":null");
		return;
	}
	ctl_out_printf(o, ",\"backoff\":{\"action\":\"%s\",\"rule\":", b->action);
	ctl_out_str(o, b->rule);
	ctl_out_printf(o, ",\"until_ms\":%llu,\"factor\":%.4g,\"source\":",
		       (unsigned long long)b->until_ms, b->factor);
	ctl_out_str(o, b->source);
	ctl_out_raw(o, "}", 1);
}

static void sum_row(struct ctl_out *o, const struct sum_row *r, int width)
{
	const struct ctl_dest_stat *d = &r->s;
	char age[32], next[32], sz[16];

	ctl_out_line(o);
	if (o->json) {
		ctl_out_printf(o, "{\"type\":\"destination\",\"name\":");
		ctl_out_str(o, d->name);
		ctl_out_printf(o,
			       ",\"messages\":%llu,\"recipients\":%llu,\"bytes\":%llu,"
			       "\"oldest_ms\":%llu,\"next_ms\":%llu,\"suspended\":%s",
			       (unsigned long long)d->messages, (unsigned long long)d->recipients,
			       (unsigned long long)d->bytes, (unsigned long long)d->oldest_ms,
			       (unsigned long long)d->next_ms, d->suspended ? "true" : "false");
		sum_json_backoff(o, &d->backoff);
		ctl_out_raw(o, "}", 1);
	} else {
		if (d->oldest_ms)
			ctl_fmt_dur(o->now_ms > d->oldest_ms ? o->now_ms - d->oldest_ms : 0, age,
				    sizeof(age));
		ctl_fmt_next(d->next_ms, o->now_ms, next, sizeof(next));
		ctl_fmt_size(d->bytes, sz, sizeof(sz));
		ctl_out_printf(o, "%8llu %8llu %8s  %-9s %-9s ", (unsigned long long)d->messages,
			       (unsigned long long)d->recipients, sz, d->oldest_ms ? age : "-",
			       next);
		ctl_out_printf(o, "%-*s ", width, r->state); /* escaped by sum_state */
		ctl_out_str(o, d->name);
	}
	ctl_out_end(o);
}

static void sum_free(struct sum_rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		free(rows->v[i].name);
		free(rows->v[i].rule);
		free(rows->v[i].source);
	}
	free(rows->v);
}

/* ctl_cmd_summary: see control_types.h. */
int ctl_cmd_summary(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o)
{
	static const char *const none[] = {NULL};
	struct sum_rows rows = {.now_ms = o->now_ms, .width = 9};
	struct ctl_totals t = {0};
	int rc = ctl_req_only(r, none, o);

	if (rc < 0)
		return rc;
	if (!e->summary) {
		ctl_out_msg(o, "summary not available");
		return -ENOSYS;
	}
	rc = e->summary(e->arg, &t, sum_add, &rows);
	if (rc < 0) {
		ctl_out_msg(o, "summary failed");
	} else {
		if (rows.n)
			qsort(rows.v, rows.n, sizeof(*rows.v), sum_cmp);
		sum_totals(o, &t, rows.n, rows.width);
		for (size_t i = 0; i < rows.n && !o->err; i++)
			sum_row(o, &rows.v[i], rows.width);
	}
	sum_free(&rows);
	return rc < 0 ? rc : 0;
}

/* ---- actions ---- */

/* Word an action's success: JSON data line {"action":a, key:value} (value a string, or with
 * count >= 0 a number), and the text of the OK line. */
static void act_done(struct ctl_out *o, const char *a, const char *key, const char *val,
		     int64_t count)
{
	if (o->json) {
		ctl_out_line(o);
		ctl_out_printf(o, "{\"action\":\"%s\",\"%s\":", a, key);
		if (val)
			ctl_out_str(o, val);
		else
			ctl_out_printf(o, "%lld", (long long)count);
		ctl_out_raw(o, "}", 1);
		ctl_out_end(o);
	}
	if (val)
		ctl_out_msg(o, "%s %s", a, val);
	else
		ctl_out_msg(o, "%s %lld", a, (long long)count);
}

/* Parse the id= argument into *id. Returns 0 or -EINVAL (message in o). */
static int act_id(const struct ctl_req *r, struct ctl_out *o, struct queue_id *id)
{
	static const char *const names[] = {"id", NULL};
	const char *v = ctl_req_arg(r, "id");

	if (ctl_req_only(r, names, o) < 0)
		return -EINVAL;
	if (!v || queue_id_parse(v, id) < 0) {
		ctl_out_msg(o, "%s needs id=<32 hex digits>", r->cmd);
		return -EINVAL;
	}
	return 0;
}

/* delete / bounce / retry of one message. */
static int act_message(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o,
		       enum ctl_act a, const char *done)
{
	struct queue_id id;
	char hex[QUEUE_ID_STRLEN + 1];
	int rc = act_id(r, o, &id);

	if (rc < 0)
		return rc;
	queue_id_format(&id, hex);
	if (!e->message) {
		ctl_out_msg(o, "%s not available", r->cmd);
		return -ENOSYS;
	}
	rc = e->message(e->arg, a, &id);
	if (rc == -ENOENT)
		ctl_out_msg(o, "no message %s", hex);
	else if (rc < 0)
		ctl_out_msg(o, "%s %s failed", r->cmd, hex);
	else
		act_done(o, done, "id", hex, -1);
	return rc < 0 ? rc : 0;
}

/* ctl_cmd_delete: see control_types.h. */
int ctl_cmd_delete(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o)
{
	return act_message(e, r, o, CTL_ACT_DELETE, "deleted");
}

/* ctl_cmd_bounce: see control_types.h. */
int ctl_cmd_bounce(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o)
{
	return act_message(e, r, o, CTL_ACT_BOUNCE, "bounced");
}

/* ctl_cmd_retry: see control_types.h. Exactly one of id=, dest=, all=1. */
int ctl_cmd_retry(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o)
{
	static const char *const names[] = {"id", "dest", "all", NULL};
	const char *dest = ctl_req_arg(r, "dest"), *all = ctl_req_arg(r, "all");
	int given = !!ctl_req_arg(r, "id") + !!dest + !!all;
	int64_t n;

	if (ctl_req_only(r, names, o) < 0)
		return -EINVAL;
	if (given != 1 || (all && strcmp(all, "1") != 0) || (dest && !*dest)) {
		ctl_out_msg(o, "retry needs one of id=ID, dest=DESTINATION, all=1");
		return -EINVAL;
	}
	if (!dest && !all)
		return act_message(e, r, o, CTL_ACT_RETRY, "retried");
	if (!e->retry) {
		ctl_out_msg(o, "retry not available");
		return -ENOSYS;
	}
	n = e->retry(e->arg, dest);
	if (n < 0) {
		ctl_out_msg(o, "retry failed");
		return (int)n;
	}
	act_done(o, "retried", "count", NULL, n);
	return 0;
}

/* suspend / resume dest=D. */
static int act_suspend(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o,
		       bool on)
{
	static const char *const names[] = {"dest", NULL};
	const char *dest = ctl_req_arg(r, "dest");
	int rc;

	if (ctl_req_only(r, names, o) < 0)
		return -EINVAL;
	if (!dest || !*dest) {
		ctl_out_msg(o, "%s needs dest=DESTINATION", r->cmd);
		return -EINVAL;
	}
	if (!e->suspend) {
		ctl_out_msg(o, "%s not available", r->cmd);
		return -ENOSYS;
	}
	rc = e->suspend(e->arg, dest, on);
	if (rc < 0) {
		ctl_out_msg(o, "%s %.200s failed", r->cmd, dest);
		return rc;
	}
	act_done(o, on ? "suspended" : "resumed", "destination", dest, -1);
	return 0;
}

/* ctl_cmd_suspend: see control_types.h. */
int ctl_cmd_suspend(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o)
{
	return act_suspend(e, r, o, true);
}

/* ctl_cmd_resume: see control_types.h. */
int ctl_cmd_resume(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o)
{
	return act_suspend(e, r, o, false);
}

/* ctl_cmd_clear: see control_types.h. Refused without yes=1, whatever the client checked. */
int ctl_cmd_clear(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o)
{
	static const char *const names[] = {"yes", NULL};
	const char *yes = ctl_req_arg(r, "yes");
	int64_t n;

	if (ctl_req_only(r, names, o) < 0)
		return -EINVAL;
	if (!yes || strcmp(yes, "1") != 0) {
		ctl_out_msg(o, "clear deletes every queued message: it needs yes=1");
		return -EINVAL;
	}
	if (!e->clear) {
		ctl_out_msg(o, "clear not available");
		return -ENOSYS;
	}
	n = e->clear(e->arg);
	if (n < 0) {
		ctl_out_msg(o, "clear failed");
		return (int)n;
	}
	act_done(o, "cleared", "count", NULL, n);
	return 0;
}

/* ---- reload ---- */

/* ctl_cmd_reload: see control_types.h. The engine's report becomes the status text. */
int ctl_cmd_reload(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o)
{
	static const char *const none[] = {NULL};
	char msg[CTL_MSG_MAX];
	int rc = ctl_req_only(r, none, o);

	if (rc < 0)
		return rc;
	if (!e->reload) {
		ctl_out_msg(o, "reload not available");
		return -ENOSYS;
	}
	msg[0] = '\0';
	rc = e->reload(e->arg, msg, sizeof(msg));
	ctl_out_msg(o, "%s", msg[0] ? msg : rc < 0 ? "reload failed" : "reloaded");
	if (rc == 0 && o->json) {
		ctl_out_line(o);
		ctl_out_printf(o, "{\"action\":\"reloaded\",\"message\":");
		ctl_out_str(o, o->msg);
		ctl_out_raw(o, "}", 1);
		ctl_out_end(o);
	}
	return rc < 0 ? rc : 0;
}
