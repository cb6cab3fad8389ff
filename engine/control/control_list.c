/* control_list.c — `list` and `show`: read the queue directly and describe messages.
 *
 * Why here and not in the engine: listing a million messages must not touch the shards or
 * hold the queue in RAM. list walks queue_scan_meta one envelope at a time (decoded, matched,
 * formatted, freed) and stops the scan after CTL_CHUNK bytes of output or CTL_CHUNK_MSGS
 * messages, so the socket is written outside the scan (a slow client never pins a RocksDB
 * iterator or the queue lock), the output buffer stays bounded, and a stop of the server is
 * seen between chunks even when a filter matches nothing; it then resumes from the next id. The
 * on-disk envelope is what the queue knows: the next attempt of a group is its sched due time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/control/control_types.h"
#include "engine/util/util.h"

/* ---- filters ---- */

struct list_filter {
	const char *dest, *sender, *rcpt;
	uint64_t older_ms; /* 0: any age */
	uint64_t limit;	   /* 0: no limit */
};

/* addr matches pat: "<>" = the null sender; with '@' the whole address; else its domain. */
static bool addr_match(const char *addr, const char *pat)
{
	const char *at;

	if (strcmp(pat, "<>") == 0)
		return !*addr;
	if (strchr(pat, '@'))
		return strcasecmp(addr, pat) == 0;
	at = strrchr(addr, '@');
	return at && strcasecmp(at + 1, pat) == 0;
}

/* Pending recipients of e, and whether one of them is in a group named dest (NULL: any). */
static uint32_t env_pending(const struct queue_env *e, const char *dest, bool *dest_hit)
{
	uint32_t n = 0;

	*dest_hit = !dest;
	for (uint32_t i = 0; i < e->nrcpt; i++) {
		const struct queue_rcpt *rc = &e->rcpts[i];

		if (rc->state != QUEUE_RCPT_PENDING)
			continue;
		n++;
		if (dest && rc->dest < e->ndest && strcasecmp(e->dests[rc->dest].name, dest) == 0)
			*dest_hit = true;
	}
	return n;
}

static bool env_match(const struct queue_env *e, const struct list_filter *f, uint64_t now,
		      uint32_t *pending)
{
	bool hit, rcpt_hit = !f->rcpt;

	*pending = env_pending(e, f->dest, &hit);
	if (!hit)
		return false;
	if (f->older_ms && (e->created_ms > now || now - e->created_ms < f->older_ms))
		return false;
	if (f->sender && !addr_match(e->sender, f->sender))
		return false;
	for (uint32_t i = 0; !rcpt_hit && i < e->nrcpt; i++)
		rcpt_hit = addr_match(e->rcpts[i].addr, f->rcpt);
	return rcpt_hit;
}

/* The earliest due time of e's groups (0: none). */
static uint64_t env_next(const struct queue_env *e)
{
	uint64_t next = 0;

	for (uint32_t i = 0; i < e->ndest; i++)
		if (e->dests[i].due && (!next || e->dests[i].due < next))
			next = e->dests[i].due;
	return next;
}

/* ---- list ---- */

struct list_ctx {
	const struct list_filter *f;
	struct ctl_out *o;
	uint64_t matched;
	uint32_t scanned;     /* messages read in this chunk */
	struct queue_id last; /* the last id seen by the scan */
	bool more;	      /* the scan stopped at a chunk boundary: resume after last */
	bool done;	      /* the limit was reached */
};

static void list_json(struct ctl_out *o, const char *hex, const struct queue_env *e,
		      uint32_t pending)
{
	ctl_out_printf(o,
		       "{\"id\":\"%s\",\"created_ms\":%llu,\"age_s\":%llu,\"size\":%llu,"
		       "\"sender\":",
		       hex, (unsigned long long)e->created_ms,
		       (unsigned long long)(o->now_ms > e->created_ms
						? (o->now_ms - e->created_ms) / 1000
						: 0),
		       (unsigned long long)e->body_len);
	ctl_out_str(o, e->sender);
	ctl_out_printf(o, ",\"pending\":%u,\"recipients\":%u,\"next_ms\":%llu,\"destinations\":[",
		       pending, e->nrcpt, (unsigned long long)env_next(e));
	for (uint32_t i = 0, n = 0; i < e->ndest; i++) {
		if (!e->dests[i].due)
			continue;
		ctl_out_raw(o, ",", n++ ? 1 : 0);
		ctl_out_str(o, e->dests[i].name);
	}
	ctl_out_raw(o, "]}", 2);
}

static void list_text(struct ctl_out *o, const char *hex, const struct queue_env *e,
		      uint32_t pending)
{
	char age[32], sz[16], next[32], rc[24];

	ctl_fmt_dur(o->now_ms > e->created_ms ? o->now_ms - e->created_ms : 0, age, sizeof(age));
	ctl_fmt_size(e->body_len, sz, sizeof(sz));
	ctl_fmt_next(env_next(e), o->now_ms, next, sizeof(next));
	snprintf(rc, sizeof(rc), "%u/%u", pending, e->nrcpt);
	ctl_out_printf(o, "%s %-8s %7s %7s  %-9s ", hex, age, sz, rc, next);
	if (*e->sender)
		ctl_out_str(o, e->sender);
	else
		ctl_out_raw(o, "<>", 2);
}

/* An envelope that does not decode: listed (without filters) with the reason. */
static void list_bad(struct ctl_out *o, const char *hex, int err)
{
	ctl_out_line(o);
	if (o->json)
		ctl_out_printf(o, "{\"id\":\"%s\",\"error\":\"%s\"}", hex, ctl_errname(-err));
	else
		ctl_out_printf(o, "%s (envelope unreadable: %s)", hex, ctl_errname(-err));
	ctl_out_end(o);
}

static int list_cb(void *arg, const struct queue_id *id, const void *meta, size_t len)
{
	struct list_ctx *c = arg;
	const struct list_filter *f = c->f;
	char hex[QUEUE_ID_STRLEN + 1];
	struct queue_env *e = NULL;
	uint32_t pending;
	int rc = queue_env_decode(meta, len, &e);

	c->last = *id;
	queue_id_format(id, hex);
	if (rc < 0 && !f->dest && !f->sender && !f->rcpt && !f->older_ms) {
		list_bad(c->o, hex, rc);
		c->matched++;
	} else if (rc == 0 && env_match(e, f, c->o->now_ms, &pending)) {
		ctl_out_line(c->o);
		(c->o->json ? list_json : list_text)(c->o, hex, e, pending);
		ctl_out_end(c->o);
		c->matched++;
	}
	queue_env_free(e);
	c->done = f->limit && c->matched >= f->limit;
	c->more = !c->done && (c->o->len >= CTL_CHUNK || ++c->scanned >= CTL_CHUNK_MSGS);
	return c->done || c->more || c->o->err ? 1 : 0;
}

/* The id after id (as a 128-bit big-endian number). Returns false at the last possible id. */
static bool id_next(struct queue_id *id)
{
	for (int i = QUEUE_ID_LEN - 1; i >= 0; i--)
		if (++id->b[i] != 0)
			return true;
	return false;
}

/* Parse list's arguments into f. Returns 0 or -EINVAL (message in o). */
static int list_args(const struct ctl_req *r, struct ctl_out *o, struct list_filter *f)
{
	static const char *const names[] = {"dest", "sender", "rcpt", "older", "limit", NULL};
	const char *older = ctl_req_arg(r, "older"), *limit = ctl_req_arg(r, "limit");
	char *end;

	if (ctl_req_only(r, names, o) < 0)
		return -EINVAL;
	*f = (struct list_filter){.dest = ctl_req_arg(r, "dest"),
				  .sender = ctl_req_arg(r, "sender"),
				  .rcpt = ctl_req_arg(r, "rcpt")};
	errno = 0;
	if (older)
		f->older_ms = strtoull(older, &end, 10);
	if (older && (errno || end == older || *end)) {
		ctl_out_msg(o, "older= takes milliseconds");
		return -EINVAL;
	}
	if (limit)
		f->limit = strtoull(limit, &end, 10);
	if (limit && (errno || end == limit || *end || f->limit == 0)) {
		ctl_out_msg(o, "limit= takes a positive number");
		return -EINVAL;
	}
	return 0;
}

static void list_header(struct ctl_out *o)
{
	if (o->json)
		return;
	ctl_out_line(o);
	ctl_out_printf(o, "%-32s %-8s %7s %7s  %-9s %s", "ID", "AGE", "SIZE", "RCPTS", "NEXT",
		       "SENDER");
	ctl_out_end(o);
}

/* ctl_cmd_list: see control_types.h. Scans chunk by chunk (see the top of the file). */
int ctl_cmd_list(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o)
{
	struct list_filter f;
	struct list_ctx c = {.f = &f, .o = o};
	struct queue_id from = {{0}};
	bool first = true;
	int rc = list_args(r, o, &f);

	if (rc < 0)
		return rc;
	if (!e->q) {
		ctl_out_msg(o, "no queue");
		return -ENOSYS;
	}
	list_header(o);
	do {
		c.more = false;
		c.scanned = 0;
		o->hold = true;
		rc = queue_scan_meta(e->q, first ? NULL : &from, list_cb, &c);
		o->hold = false;
		first = false;
		from = c.last;
		if (rc < 0 || ctl_out_flush(o) < 0)
			break;
	} while (c.more && id_next(&from));
	if (rc < 0)
		ctl_out_msg(o, "queue scan failed");
	else
		ctl_out_msg(o, "%llu messages", (unsigned long long)c.matched);
	return rc < 0 ? rc : o->err;
}

/* ---- show ---- */

static const char *const rcpt_states[] = {"pending", "delivered", "failed"};
static const char *const env_flags[] = {"8BITMIME", "BOUNCE", "SMTPUTF8", "WARNED"};
static const char *const notify_bits[] = {"SUCCESS", "FAILURE", "DELAY", "NEVER"};
static const char *const rets[] = {"", "FULL", "HDRS"};

static const char *rcpt_state(uint8_t st)
{
	return st < ARRAY_SIZE(rcpt_states) ? rcpt_states[st] : "unknown";
}

/* The names of the bits set in v: JSON ["A","B"], text "A B" ("-" if none). */
static void out_bits(struct ctl_out *o, unsigned v, const char *const *names, size_t n)
{
	bool any = false;

	ctl_out_raw(o, "[", o->json ? 1 : 0);
	for (size_t i = 0; i < n; i++) {
		if (!(v & (1u << i)))
			continue;
		ctl_out_raw(o, o->json ? "," : " ", any ? 1 : 0);
		ctl_out_printf(o, o->json ? "\"%s\"" : "%s", names[i]);
		any = true;
	}
	ctl_out_raw(o, o->json ? "]" : "-", o->json || !any ? 1 : 0);
}

/* One text line "key   value" with the value from an envelope (escaped). */
static void show_kv(struct ctl_out *o, const char *key, const char *val)
{
	ctl_out_line(o);
	ctl_out_printf(o, "%-16s", key);
	ctl_out_str(o, val);
	ctl_out_end(o);
}

/* A text line "key   <formatted>" of the server's own text. */
static void show_kf(struct ctl_out *o, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void show_kf(struct ctl_out *o, const char *key, const char *fmt, ...)
{
	char buf[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ctl_out_line(o);
	ctl_out_printf(o, "%-16s%s", key, buf);
	ctl_out_end(o);
}

static void show_rcpt_text(struct ctl_out *o, const struct queue_env *e, const struct queue_rcpt *r)
{
	char t[64];

	show_kv(o, "recipient", *r->addr ? r->addr : "<>");
	show_kf(o, "  state", "%s", rcpt_state(r->state));
	show_kv(o, "  destination", r->dest < e->ndest ? e->dests[r->dest].name : "?");
	show_kf(o, "  attempts", "%u", r->attempts);
	if (r->last_code || *r->last_reply) {
		ctl_out_line(o);
		ctl_out_printf(o, "%-16s%03u ", "  last reply", r->last_code);
		if (r->enh[0])
			ctl_out_printf(o, "%u.%u.%u ", r->enh[0], r->enh[1], r->enh[2]);
		ctl_out_str(o, r->last_reply);
		ctl_out_end(o);
	}
	if (*r->last_mta)
		show_kv(o, "  last mta", r->last_mta);
	ctl_fmt_time(r->last_ms, o->now_ms, t, sizeof(t));
	if (r->last_ms)
		show_kf(o, "  last attempt", "%s", t);
	if (r->notify) {
		ctl_out_line(o);
		ctl_out_printf(o, "%-16s", "  notify");
		out_bits(o, r->notify, notify_bits, ARRAY_SIZE(notify_bits));
		ctl_out_end(o);
	}
	if (*r->orcpt)
		show_kv(o, "  orcpt", r->orcpt);
}

static void show_text(struct ctl_out *o, const char *hex, const struct queue_env *e)
{
	char t[64];

	show_kf(o, "id", "%s", hex);
	ctl_fmt_time(e->created_ms, o->now_ms, t, sizeof(t));
	show_kf(o, "created", "%s", t);
	show_kf(o, "size", "%llu bytes", (unsigned long long)e->body_len);
	show_kv(o, "sender", *e->sender ? e->sender : "<>");
	ctl_out_line(o);
	ctl_out_printf(o, "%-16s", "flags");
	out_bits(o, e->flags, env_flags, ARRAY_SIZE(env_flags));
	ctl_out_end(o);
	if (*e->envid)
		show_kv(o, "envid", e->envid);
	if (e->ret && e->ret < ARRAY_SIZE(rets))
		show_kf(o, "ret", "%s", rets[e->ret]);
	for (uint32_t i = 0; i < e->nrcpt; i++)
		show_rcpt_text(o, e, &e->rcpts[i]);
	for (uint32_t i = 0; i < e->ndest; i++) {
		show_kv(o, "destination", e->dests[i].name);
		show_kf(o, "  attempts", "%u", e->dests[i].attempts);
		ctl_fmt_time(e->dests[i].due, o->now_ms, t, sizeof(t));
		show_kf(o, "  next attempt", "%s", e->dests[i].due ? t : "none (all final)");
	}
}

/* ,"key":"value" with the value from an envelope. */
static void json_kv(struct ctl_out *o, const char *key, const char *val)
{
	ctl_out_printf(o, ",\"%s\":", key);
	ctl_out_str(o, val);
}

static void show_rcpt_json(struct ctl_out *o, const struct queue_env *e, const struct queue_rcpt *r)
{
	ctl_out_raw(o, "{\"address\":", 11);
	ctl_out_str(o, r->addr);
	ctl_out_printf(o, ",\"state\":\"%s\",\"destination\":", rcpt_state(r->state));
	ctl_out_str(o, r->dest < e->ndest ? e->dests[r->dest].name : "");
	ctl_out_printf(o, ",\"attempts\":%u,\"last_code\":%u,\"last_enh\":", r->attempts,
		       r->last_code);
	if (r->enh[0])
		ctl_out_printf(o, "\"%u.%u.%u\"", r->enh[0], r->enh[1], r->enh[2]);
	else
		ctl_out_raw(o, "\"\"", 2);
	json_kv(o, "last_reply", r->last_reply);
	json_kv(o, "last_mta", r->last_mta);
	ctl_out_printf(o, ",\"last_ms\":%llu,\"notify\":", (unsigned long long)r->last_ms);
	out_bits(o, r->notify, notify_bits, ARRAY_SIZE(notify_bits));
	json_kv(o, "orcpt", r->orcpt);
	ctl_out_raw(o, "}", 1);
}

static void show_json(struct ctl_out *o, const char *hex, const struct queue_env *e)
{
	ctl_out_printf(o, "{\"id\":\"%s\"", hex);
	json_kv(o, "sender", e->sender);
	ctl_out_printf(o, ",\"created_ms\":%llu,\"size\":%llu,\"flags\":",
		       (unsigned long long)e->created_ms, (unsigned long long)e->body_len);
	out_bits(o, e->flags, env_flags, ARRAY_SIZE(env_flags));
	json_kv(o, "envid", e->envid);
	ctl_out_printf(o, ",\"ret\":\"%s\",\"recipients\":[",
		       e->ret < ARRAY_SIZE(rets) ? rets[e->ret] : "");
	for (uint32_t i = 0; i < e->nrcpt; i++) {
		ctl_out_raw(o, ",", i ? 1 : 0);
		show_rcpt_json(o, e, &e->rcpts[i]);
	}
	ctl_out_raw(o, "],\"destinations\":[", 18);
	for (uint32_t i = 0; i < e->ndest; i++) {
		ctl_out_raw(o, ",", i ? 1 : 0);
		ctl_out_raw(o, "{\"name\":", 8);
		ctl_out_str(o, e->dests[i].name);
		ctl_out_printf(o, ",\"attempts\":%u,\"next_ms\":%llu}", e->dests[i].attempts,
			       (unsigned long long)e->dests[i].due);
	}
	ctl_out_raw(o, "]}", 2);
}

/* ctl_cmd_show: see control_types.h. */
int ctl_cmd_show(const struct ctl_engine *eng, const struct ctl_req *r, struct ctl_out *o)
{
	static const char *const names[] = {"id", NULL};
	const char *v = ctl_req_arg(r, "id");
	char hex[QUEUE_ID_STRLEN + 1];
	struct queue_env *e = NULL;
	struct queue_id id;
	void *meta = NULL;
	size_t len = 0;
	int rc;

	if (ctl_req_only(r, names, o) < 0 || !v || queue_id_parse(v, &id) < 0) {
		ctl_out_msg(o, "show needs id=<32 hex digits>");
		return -EINVAL;
	}
	if (!eng->q) {
		ctl_out_msg(o, "no queue");
		return -ENOSYS;
	}
	queue_id_format(&id, hex);
	rc = queue_get(eng->q, &id, &meta, &len, NULL, NULL);
	if (rc == 0)
		rc = queue_env_decode(meta, len, &e);
	free(meta);
	if (rc < 0) {
		ctl_out_msg(o, rc == -ENOENT ? "no message %s" : "cannot read message %s", hex);
		return rc;
	}
	if (o->json) {
		ctl_out_line(o);
		show_json(o, hex, e);
		ctl_out_end(o);
	} else {
		show_text(o, hex, e);
	}
	queue_env_free(e);
	return 0;
}
