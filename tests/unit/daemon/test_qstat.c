/* test_qstat — unit tests for engine/daemon/qstat.c: the queue counters (totals and per
 * destination) and their rebuild from a queue snapshot after a restart.
 *
 * Why: injection answers 452 4.3.1 from these totals and `riptidectl queue summary` prints
 * these rows; neither ever scans the spool, so a counter that drifts is wrong for as long as
 * the daemon runs. So the tests check exact numbers after every kind of change: a message
 * counted once (through its primary entry) however many destinations it has, removals that
 * move "oldest" and "next" to the right message, destinations that vanish when empty, names
 * that differ only in case, thousands of destinations, and changes that arrive before the
 * entry they change was counted (the rebuild race). The rebuild itself runs over a real queue
 * (memory backend and RocksDB) written by msg.c's own fill functions while the test, as the
 * commit thread would, writes, moves and deletes messages: at the end the counters must equal
 * what the queue's envelopes (meta, not the sched values) say is queued.
 */
#include "engine/daemon/qstat.h"
#include "tests/unit/daemon/daemon_test.h"

#include <errno.h>
#include <ftw.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define MIN 60000ull
#define T0  (28333334ull * MIN) /* a minute boundary (1700000040000) */

/* ---- reading the rows ---- */

struct row {
	char name[ROUTE_NAME_MAX];
	uint64_t messages, recipients, bytes, oldest, next;
};

struct rows {
	struct row *r;
	unsigned n, cap, stop_after; /* stop_after: fn returns 1 on that call (0 = never) */
};

static int collect(void *arg, const struct qstat_dest *d)
{
	struct rows *rs = arg;
	struct row *r;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 16;
		rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
		if (!rs->r)
			abort();
	}
	r = &rs->r[rs->n++];
	snprintf(r->name, sizeof(r->name), "%s", d->name);
	r->messages = d->messages;
	r->recipients = d->recipients;
	r->bytes = d->bytes;
	r->oldest = d->oldest_ms;
	r->next = d->next_ms;
	return rs->stop_after && rs->n == rs->stop_after;
}

/* Every row of s into rs (freed by the caller with free(rs->r)). */
static void read_rows(struct qstat *s, struct rows *rs)
{
	memset(rs, 0, sizeof(*rs));
	qstat_each(s, collect, rs);
}

/* The row named name (exact spelling), or NULL. */
static const struct row *find_row(const struct rows *rs, const char *name)
{
	for (unsigned i = 0; i < rs->n; i++)
		if (strcmp(rs->r[i].name, name) == 0)
			return &rs->r[i];
	return NULL;
}

static void assert_row(const struct rows *rs, const char *name, uint64_t messages,
		       uint64_t recipients, uint64_t bytes, uint64_t oldest, uint64_t next)
{
	const struct row *r = find_row(rs, name);

	if (!r)
		fail_msg("no row %s", name);
	assert_int_equal(r->messages, messages);
	assert_int_equal(r->recipients, recipients);
	assert_int_equal(r->bytes, bytes);
	assert_int_equal(r->oldest, oldest);
	assert_int_equal(r->next, next);
}

/* s has nrows rows, one of them name with these values. */
static void assert_rows(struct qstat *s, unsigned nrows, const char *name, uint64_t messages,
			uint64_t recipients, uint64_t bytes, uint64_t oldest, uint64_t next)
{
	struct rows rs;

	read_rows(s, &rs);
	assert_int_equal(rs.n, nrows);
	assert_row(&rs, name, messages, recipients, bytes, oldest, next);
	free(rs.r);
}

static void assert_totals(const struct qstat *s, uint64_t messages, uint64_t recipients,
			  uint64_t bytes)
{
	uint64_t m = 99, r = 99, b = 99;

	qstat_totals(s, &m, &r, &b);
	assert_int_equal(m, messages);
	assert_int_equal(r, recipients);
	assert_int_equal(b, bytes);
}

static unsigned count_rows(struct qstat *s)
{
	struct rows rs;
	unsigned n;

	read_rows(s, &rs);
	n = rs.n;
	free(rs.r);
	return n;
}

static struct qstat_entry ent(const char *dest, uint32_t pending, uint64_t bytes, uint64_t created,
			      uint64_t due, bool primary)
{
	return (struct qstat_entry){.dest = dest,
				    .pending = pending,
				    .bytes = bytes,
				    .created_ms = created,
				    .due_ms = due,
				    .primary = primary};
}

/* ---- counting ---- */

/* Message 1 has entries for d1 (primary) and d2, message 2 one for d2: the totals count two
 * messages and the bytes of the primary entries only, recipients of every entry; each
 * destination counts every entry it has. Then message 1's d1 group finishes and its d2 entry
 * becomes primary (as msg_count_written does it): totals unchanged but the recipients, d1 gone.
 * Removing the rest leaves zeros and no row. NULL out-pointers are allowed. */
static void test_totals_primary_only(void **state)
{
	struct qstat *s = qstat_new();
	struct qstat_entry m1a = ent("d1.example", 2, 100, T0 + 1000, T0 + 5 * MIN, true),
			   m1b = ent("d2.example", 3, 100, T0 + 1000, T0 + 6 * MIN, false),
			   m2 = ent("d2.example", 1, 50, T0 + MIN, T0 + 7 * MIN, true), m1b2 = m1b;
	struct rows rs;
	uint64_t m = 0;

	(void)state;
	assert_totals(s, 0, 0, 0);
	assert_int_equal(count_rows(s), 0);
	qstat_entry(s, &m1a, +1);
	qstat_entry(s, &m1b, +1);
	qstat_entry(s, &m2, +1);
	assert_totals(s, 2, 6, 150);
	qstat_totals(s, &m, NULL, NULL);
	assert_int_equal(m, 2);
	read_rows(s, &rs);
	assert_int_equal(rs.n, 2);
	assert_row(&rs, "d1.example", 1, 2, 100, T0 + 1000, T0 + 5 * MIN);
	assert_row(&rs, "d2.example", 2, 4, 150, T0 + 1000, T0 + 6 * MIN);
	free(rs.r);

	qstat_entry(s, &m1a, -1);
	qstat_entry(s, &m1b, -1);
	m1b2.primary = true;
	qstat_entry(s, &m1b2, +1);
	assert_totals(s, 2, 4, 150);
	assert_rows(s, 1, "d2.example", 2, 4, 150, T0 + 1000, T0 + 6 * MIN);

	qstat_entry(s, &m2, -1);
	qstat_entry(s, &m1b2, -1);
	assert_totals(s, 0, 0, 0);
	assert_int_equal(count_rows(s), 0);
	qstat_free(s);
}

/* Oldest and next are exact and move on removal: A, B, C created in three different minutes,
 * due in another order; removing the oldest moves oldest to the next one, removing the
 * earliest due moves next. A message in the same minute as B but earlier becomes the oldest;
 * once it left, oldest is within B's minute (the documented precision) until a later add of an
 * earlier time in that minute makes it exact again. */
static void test_oldest_next_move_on_removal(void **state)
{
	struct qstat *s = qstat_new();
	const char *d = "d.example";
	struct qstat_entry a = ent(d, 1, 10, T0 + 5000, T0 + 30 * MIN + 1000, true),
			   b = ent(d, 2, 20, T0 + 10 * MIN + 7000, T0 + 25 * MIN + 3000, true),
			   c = ent(d, 3, 30, T0 + 20 * MIN, T0 + 40 * MIN, true),
			   e = ent(d, 1, 5, T0 + 10 * MIN + 2000, T0 + 50 * MIN, true),
			   f = ent(d, 1, 5, T0 + 10 * MIN + 1000, T0 + 50 * MIN, true);
	struct rows rs;

	(void)state;
	qstat_entry(s, &c, +1);
	qstat_entry(s, &a, +1);
	qstat_entry(s, &b, +1);
	assert_rows(s, 1, d, 3, 6, 60, a.created_ms, b.due_ms);
	qstat_entry(s, &a, -1);
	assert_rows(s, 1, d, 2, 5, 50, b.created_ms, b.due_ms);
	qstat_entry(s, &b, -1);
	assert_rows(s, 1, d, 1, 3, 30, c.created_ms, c.due_ms);

	qstat_entry(s, &b, +1);
	qstat_entry(s, &e, +1);
	assert_rows(s, 1, d, 3, 6, 55, e.created_ms, b.due_ms);
	qstat_entry(s, &e, -1);
	read_rows(s, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].oldest / MIN, b.created_ms / MIN);
	assert_true(rs.r[0].oldest <= b.created_ms);
	assert_int_equal(rs.r[0].next, b.due_ms);
	free(rs.r);
	qstat_entry(s, &f, +1);
	assert_rows(s, 1, d, 3, 6, 55, f.created_ms, b.due_ms);
	qstat_free(s); /* with entries left: ASan checks the free */
}

/* A destination disappears once its last entry went, and comes back with fresh values. */
static void test_dest_gone_when_empty(void **state)
{
	struct qstat *s = qstat_new();
	struct qstat_entry x = ent("x.example", 4, 400, T0, T0 + MIN, true),
			   y = ent("y.example", 1, 1, T0, T0 + MIN, true),
			   x2 = ent("x.example", 1, 7, T0 + 9 * MIN, T0 + 9 * MIN, true);
	struct rows rs;

	(void)state;
	qstat_entry(s, &x, +1);
	qstat_entry(s, &y, +1);
	qstat_entry(s, &x, -1);
	read_rows(s, &rs);
	assert_int_equal(rs.n, 1);
	assert_null(find_row(&rs, "x.example"));
	free(rs.r);
	qstat_entry(s, &x2, +1);
	assert_rows(s, 2, "x.example", 1, 1, 7, x2.created_ms, x2.due_ms);
	qstat_entry(s, &x2, -1);
	qstat_entry(s, &y, -1);
	assert_int_equal(count_rows(s), 0);
	assert_totals(s, 0, 0, 0);
	qstat_free(s);
}

/* Names that differ only in ASCII case are one destination (named as first seen); a removal
 * spelled otherwise removes from it. */
static void test_case_insensitive(void **state)
{
	struct qstat *s = qstat_new();
	struct qstat_entry a = ent("MX.Example.ORG", 1, 10, T0, T0 + MIN, true),
			   b = ent("mx.example.org", 2, 20, T0 + MIN, T0 + 2 * MIN, true);

	(void)state;
	qstat_entry(s, &a, +1);
	qstat_entry(s, &b, +1);
	assert_rows(s, 1, "MX.Example.ORG", 2, 3, 30, T0, T0 + MIN);
	a.dest = "mx.EXAMPLE.org";
	qstat_entry(s, &a, -1);
	b.dest = "MX.EXAMPLE.ORG";
	qstat_entry(s, &b, -1);
	assert_int_equal(count_rows(s), 0);
	assert_totals(s, 0, 0, 0);
	qstat_free(s);
}

#define NDEST 5000

static unsigned dest_no(const char *name)
{
	return (unsigned)strtoul(name + 1, NULL, 10); /* "d<k>.example" or "D<k>.EXAMPLE" */
}

/* Destination k of the many: (k % 7) + 1 recipients, k bytes, created and due in minute k. */
static struct qstat_entry many_ent(unsigned k, char *name, size_t cap, bool upper)
{
	snprintf(name, cap, upper ? "D%u.EXAMPLE" : "d%u.example", k);
	return ent(name, k % 7 + 1, k, T0 + k * MIN + 11, T0 + k * MIN + 22, true);
}

/* Every row of the many is there once, with its own values. */
static void assert_many(struct qstat *s, unsigned from, unsigned to)
{
	struct rows rs;
	unsigned char *seen = calloc(NDEST, 1);

	assert_non_null(seen);
	read_rows(s, &rs);
	assert_int_equal(rs.n, to - from);
	for (unsigned i = 0; i < rs.n; i++) {
		unsigned k = dest_no(rs.r[i].name);
		assert_true(k >= from && k < to && !seen[k]);
		seen[k] = 1;
		assert_int_equal(rs.r[i].messages, 1);
		assert_int_equal(rs.r[i].recipients, k % 7 + 1);
		assert_int_equal(rs.r[i].bytes, k);
		assert_int_equal(rs.r[i].oldest, T0 + k * MIN + 11);
		assert_int_equal(rs.r[i].next, T0 + k * MIN + 22);
	}
	free(rs.r);
	free(seen);
}

/* 5000 destinations (the table grows several times): every row exact, the totals the sums;
 * qstat_each stops when fn says so; removing them (spelled in upper case) from the middle and
 * then the rest leaves nothing. */
static void test_many_destinations(void **state)
{
	struct qstat *s = qstat_new();
	char name[64];
	uint64_t rcpts = 0, bytes = 0;
	struct rows rs;

	(void)state;
	for (unsigned k = 0; k < NDEST; k++) {
		struct qstat_entry e = many_ent(k, name, sizeof(name), false);
		qstat_entry(s, &e, +1);
		rcpts += e.pending;
		bytes += e.bytes;
	}
	assert_totals(s, NDEST, rcpts, bytes);
	assert_many(s, 0, NDEST);
	memset(&rs, 0, sizeof(rs));
	rs.stop_after = 10;
	qstat_each(s, collect, &rs);
	assert_int_equal(rs.n, 10);
	free(rs.r);
	for (unsigned k = 0; k < NDEST / 2; k++) {
		struct qstat_entry e = many_ent(k, name, sizeof(name), true);
		qstat_entry(s, &e, -1);
		rcpts -= e.pending;
		bytes -= e.bytes;
	}
	assert_totals(s, NDEST - NDEST / 2, rcpts, bytes);
	assert_many(s, NDEST / 2, NDEST);
	for (unsigned k = NDEST / 2; k < NDEST; k++) {
		struct qstat_entry e = many_ent(k, name, sizeof(name), k % 2);
		qstat_entry(s, &e, -1);
	}
	assert_totals(s, 0, 0, 0);
	assert_int_equal(count_rows(s), 0);
	qstat_free(s);
}

/* Changes before the entries they change were counted (the rebuild race): snapshot entries S1
 * (d1) and S2 (d2); after the snapshot S1 is removed and N1 (d1) added, both before the rebuild
 * counts S1 and S2. Meanwhile the totals read 0, never a huge unsigned number, and d1 has no
 * row; at the end: exactly N1 and S2. A removal and re-add of an entry of a destination seen
 * nowhere else leaves no row. */
static void test_negative_transients(void **state)
{
	struct qstat *s = qstat_new();
	struct qstat_entry s1 = ent("d1.example", 2, 10, T0 + 3 * MIN, T0 + 8 * MIN, true),
			   s2 = ent("d2.example", 1, 20, T0 + 4 * MIN, T0 + 9 * MIN, true),
			   n1 = ent("d1.example", 5, 30, T0 + 6 * MIN + 5, T0 + 7 * MIN + 5, true),
			   z = ent("z.example", 3, 3, T0, T0, false);
	struct rows rs;

	(void)state;
	qstat_entry(s, &s1, -1);
	assert_totals(s, 0, 0, 0);
	assert_int_equal(count_rows(s), 0);
	qstat_entry(s, &n1, +1);
	assert_totals(s, 0, 3, 20); /* true values -1+1, -2+5, -10+30 */
	assert_int_equal(count_rows(s), 0);
	qstat_entry(s, &z, -1);
	qstat_entry(s, &s1, +1); /* the rebuild */
	qstat_entry(s, &s2, +1);
	qstat_entry(s, &z, +1);
	assert_totals(s, 2, 6, 50);
	read_rows(s, &rs);
	assert_int_equal(rs.n, 2);
	assert_row(&rs, "d1.example", 1, 5, 30, n1.created_ms, n1.due_ms);
	assert_row(&rs, "d2.example", 1, 1, 20, s2.created_ms, s2.due_ms);
	free(rs.r);
	qstat_entry(s, &n1, -1);
	qstat_entry(s, &s2, -1);
	assert_totals(s, 0, 0, 0);
	assert_int_equal(count_rows(s), 0);
	qstat_free(s);
}

/* ---- the rebuild over a real queue ---- */

#define RB_N	2000 /* messages in the snapshot */
#define RB_NEW	300  /* messages written after it */
#define RB_OLD	50   /* old-format messages of test_rebuild_old_format */
#define CRE0	(T0 - 100000 * MIN)
#define DUE0	(T0 + 1000 * MIN)
#define RB_BODY 100
#define NOW	(T0 + 200000 * MIN)

/* Message k: 1 + k % 3 groups (d0.., d1.., d2..example), 1 + k % 3 + k % 4 recipients, created
 * in minute k (and its id made then), group g due in minute k, body 100 + k % 50 bytes. */
static struct msg *rb_msg(uint64_t k)
{
	unsigned ndest = 1 + k % 3, nrcpt = ndest + k % 4;
	uint64_t dues[DT_MAX_DESTS];
	size_t blen = RB_BODY + k % 50;
	char *body = malloc(blen);
	struct queue_id id;
	struct dt_env e;
	struct msg *m;

	for (unsigned g = 0; g < ndest; g++)
		dues[g] = DUE0 + k * MIN + g * 1000 + k % 13;
	dt_env_init(&e, nrcpt, ndest, dues);
	e.env.created_ms = CRE0 + k * MIN + k % 997;
	e.env.body_len = blen;
	memset(body, 'b', blen);
	queue_id_make(&id, e.env.created_ms, 1, k);
	m = msg_new(&id, &e.env, body, blen);
	assert_non_null(m);
	return m;
}

/* Write m as msg_fill_put does, but with sched values in the format before #5. */
static void put_old_format(struct queue *q, struct msg *m)
{
	struct queue_batch *b = queue_batch_new();
	uint8_t sval[300];
	char err[256];

	queue_batch_put(b, &m->id, m->meta, m->meta_len, m->body, m->body_len);
	for (uint32_t g = 0; g < m->env->ndest; g++)
		if (m->env->dests[g].due)
			queue_batch_sched_put(
			    b, m->env->dests[g].due, &m->id, g, sval,
			    dt_sval(m->env->dests[g].attempts, m->env->dests[g].name, sval));
	assert_int_equal(queue_write(q, b, false, err, sizeof(err)), 0);
	queue_batch_free(b);
}

/* Load message k as the runner does. */
static struct msg *rb_load(struct queue *q, uint64_t k)
{
	void *meta = NULL, *body = NULL;
	size_t mlen = 0, blen = 0;
	struct queue_id id;
	struct msg *m;
	int err = 0;

	queue_id_make(&id, CRE0 + k * MIN + k % 997, 1, k);
	assert_int_equal(queue_get(q, &id, &meta, &mlen, &body, &blen), 0);
	m = msg_from_disk(&id, meta, mlen, body, blen, &err);
	free(meta);
	assert_non_null(m);
	return m;
}

/* The commit thread's work for one round of message k: every group out; recipients of groups
 * < first_deferred delivered, the others deferred (451); plan, write, count. */
static void rb_round(struct queue *q, struct qstat *s, uint64_t k, unsigned first_deferred)
{
	struct msg *m = rb_load(q, k);

	for (uint32_t g = 0; g < m->env->ndest; g++)
		m->groups[g].out = true;
	for (uint32_t i = 0; i < m->env->nrcpt; i++) {
		bool later = m->env->rcpts[i].dest >= first_deferred;
		msg_set_result(m, i, later ? QUEUE_RCPT_PENDING : QUEUE_RCPT_DELIVERED,
			       later ? 451 : 250, "x", 1);
	}
	assert_int_not_equal(msg_plan(m, NOW, dt_sched(MIN)), MSG_PLAN_NONE);
	assert_int_equal(dt_write_fill(q, m, msg_fill_final), 0);
	msg_count_written(m, s);
	msg_free(m);
}

/* What the queue's envelopes say: per destination and in total. */
struct truth {
	struct row d[3];
	uint64_t messages, recipients, bytes;
};

static int truth_cb(void *arg, const struct queue_id *id, const void *meta, size_t len)
{
	struct truth *t = arg;
	struct queue_env *e = NULL;
	bool any = false;

	(void)id;
	assert_int_equal(queue_env_decode(meta, len, &e), 0);
	for (uint32_t g = 0; g < e->ndest; g++) {
		struct row *r = &t->d[g];
		uint64_t pend = 0;
		if (!e->dests[g].due)
			continue;
		for (uint32_t i = 0; i < e->nrcpt; i++)
			pend += e->rcpts[i].dest == g && e->rcpts[i].state == QUEUE_RCPT_PENDING;
		snprintf(r->name, sizeof(r->name), "%s", e->dests[g].name);
		r->messages++;
		r->recipients += pend;
		r->bytes += e->body_len;
		if (!r->oldest || e->created_ms < r->oldest)
			r->oldest = e->created_ms;
		if (!r->next || e->dests[g].due < r->next)
			r->next = e->dests[g].due;
		t->recipients += pend;
		any = true;
	}
	if (any) {
		t->messages++;
		t->bytes += e->body_len;
	}
	queue_env_free(e);
	return 0;
}

/* The counters equal what the queue holds (rows exact: every minute holds one message). */
static void assert_matches_queue(struct qstat *s, struct queue *q)
{
	struct truth t;
	struct rows rs;
	unsigned n = 0;

	memset(&t, 0, sizeof(t));
	assert_int_equal(queue_scan_meta(q, NULL, truth_cb, &t), 0);
	assert_totals(s, t.messages, t.recipients, t.bytes);
	read_rows(s, &rs);
	for (unsigned g = 0; g < 3; g++) {
		if (!t.d[g].messages)
			continue;
		n++;
		assert_row(&rs, t.d[g].name, t.d[g].messages, t.d[g].recipients, t.d[g].bytes,
			   t.d[g].oldest, t.d[g].next);
	}
	assert_int_equal(rs.n, n);
	free(rs.r);
}

/* Wait (at most 20 s) until the rebuild is done. */
static void wait_counted(struct qstat *s)
{
	for (unsigned i = 0; i < 20000 && qstat_counting(s); i++)
		usleep(1000);
	assert_false(qstat_counting(s));
}

struct rb_fix {
	struct queue *q;
	char dir[64];
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static int rb_setup(void **state, enum queue_backend be)
{
	struct rb_fix *f = calloc(1, sizeof(*f));
	struct queue_opts o = {.backend = be};
	char err[256];

	if (!f)
		return -1;
	if (be == QUEUE_BACKEND_ROCKSDB) {
		snprintf(f->dir, sizeof(f->dir), "/tmp/riptide-qstat-XXXXXX");
		if (!mkdtemp(f->dir))
			return -1;
		o.path = f->dir;
	}
	if (queue_open(&o, &f->q, err, sizeof(err)) < 0) {
		fprintf(stderr, "queue_open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int setup_mem(void **state)
{
	return rb_setup(state, QUEUE_BACKEND_MEMORY);
}
static int setup_rocks(void **state)
{
	return rb_setup(state, QUEUE_BACKEND_ROCKSDB);
}

static int rb_teardown(void **state)
{
	struct rb_fix *f = *state;

	queue_close(f->q);
	if (f->dir[0])
		nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Fill the queue with messages from..to-1 (those below old with sched values in the format
 * before #5). */
static void rb_fill(struct queue *q, uint64_t from, uint64_t to, uint64_t old)
{
	for (uint64_t k = from; k < to; k++) {
		struct msg *m = rb_msg(k);
		if (k < old)
			put_old_format(q, m);
		else
			assert_int_equal(dt_write_fill(q, m, msg_fill_put), 0);
		msg_free(m);
	}
}

/* The changes after the snapshot as the commit thread makes them, last-due messages first (the
 * rebuild scans in due order: their changes tend to come before it counted them): k % 5 == 0
 * delivered (deleted), 1: group 0 delivered (primary handover), 2: all deferred (entries move);
 * then RB_NEW new messages. Returns whether the rebuild still counted at the first change. */
static bool rb_changes(struct queue *q, struct qstat *s)
{
	bool overlap = false;

	for (uint64_t k = RB_N; k-- > 0;) {
		if (k % 5 < 3)
			rb_round(q, s, k, k % 5 == 0 ? 3 : k % 5 == 1 ? 1 : 0);
		if (k == RB_N - 1)
			overlap = qstat_counting(s);
	}
	for (uint64_t k = RB_N; k < RB_N + RB_NEW; k++) {
		struct msg *m = rb_msg(k);
		assert_int_equal(dt_write_fill(q, m, msg_fill_put), 0);
		msg_written_put_cb(&m->req, s);
		msg_free(m);
	}
	return overlap;
}

/* qstat_rebuild over a snapshot of a real queue while the queue changes: counting from the
 * call on (or already done, with the snapshot's counts), false at the end, and then the counters
 * equal what the queue holds; further changes keep them so. */
static void test_rebuild_with_changes(void **state)
{
	struct rb_fix *f = *state;
	struct qstat *s = qstat_new();
	struct queue_snap *snap;
	bool overlap;

	rb_fill(f->q, 0, RB_N, 0);
	snap = queue_snap_new(f->q);
	assert_non_null(snap);
	assert_int_equal(qstat_rebuild(s, f->q, snap), 0);
	/* counting from the call on, until the thread is done: a fast thread (memory backend, a
	 * loaded machine) may be done already, and then it counted exactly the snapshot */
	if (!qstat_counting(s))
		assert_matches_queue(s, f->q);
	overlap = rb_changes(f->q, s);
	wait_counted(s);
	print_message("rebuild still counting at the first change: %s\n", overlap ? "yes" : "no");
	assert_matches_queue(s, f->q);
	for (uint64_t k = 1; k < RB_N; k += 5) /* the handed-over ones finish */
		if (k % 3)
			rb_round(f->q, s, k, 3);
	assert_matches_queue(s, f->q);
	qstat_join(s);
	qstat_free(s);
}

/* Rebuild of an empty queue: done, all zeros, no rows. */
static void test_rebuild_empty(void **state)
{
	struct rb_fix *f = *state;
	struct qstat *s = qstat_new();

	assert_int_equal(qstat_rebuild(s, f->q, queue_snap_new(f->q)), 0);
	wait_counted(s);
	assert_totals(s, 0, 0, 0);
	assert_int_equal(count_rows(s), 0);
	qstat_free(s);
}

/* qstat_join right after the start stops the rebuild early: it returns, counting is false, the
 * counts are at most the queue's, and the snapshot is freed (ASan); a second join and a join
 * without a rebuild are no-ops. qstat_free of a rebuild still running stops it too. */
static void test_join_early_stop(void **state)
{
	struct rb_fix *f = *state;
	struct qstat *s = qstat_new(), *t = qstat_new(), *u = qstat_new();
	uint64_t m = 0;

	qstat_join(u);
	qstat_free(u);
	rb_fill(f->q, 0, RB_N, 0);
	assert_int_equal(qstat_rebuild(s, f->q, queue_snap_new(f->q)), 0);
	qstat_join(s);
	assert_false(qstat_counting(s));
	qstat_totals(s, &m, NULL, NULL);
	assert_true(m <= RB_N);
	print_message("messages counted before the stop: %llu\n", (unsigned long long)m);
	qstat_join(s);
	qstat_free(s);
	assert_int_equal(qstat_rebuild(t, f->q, queue_snap_new(f->q)), 0);
	qstat_free(t);
}

/* Was a bug (qstat.c qs_rebuild_entry): a sched value from before #5 has no pending count nor
 * body length: the rebuild counts it with 0 recipients and 0 bytes, and once the message
 * changes msg_count_written subtracts the envelope's real values: the totals drift below the
 * truth for good. Expected: counters equal the queue after the rebuild (RB_OLD of 200 messages
 * old) and after the old ones left and new ones came. Seen: the old ones' recipients and bytes
 * missing. */
static void test_rebuild_old_format(void **state)
{
	struct rb_fix *f = *state;
	struct qstat *s;

	s = qstat_new();
	rb_fill(f->q, 0, 200, RB_OLD);
	assert_int_equal(qstat_rebuild(s, f->q, queue_snap_new(f->q)), 0);
	wait_counted(s);
	assert_matches_queue(s, f->q);
	for (uint64_t k = 0; k < RB_OLD; k++)
		rb_round(f->q, s, k, 3);
	for (uint64_t k = 200; k < 220; k++) {
		struct msg *m = rb_msg(k);
		assert_int_equal(dt_write_fill(f->q, m, msg_fill_put), 0);
		msg_written_put_cb(&m->req, s);
		msg_free(m);
	}
	assert_matches_queue(s, f->q);
	qstat_free(s);
}

/* Was a bug (qstat.c qs_rebuild_entry), the same family: an old-format entry counts the
 * message only if it is group 0's (`group == 0`), while msg.c counts a message through its
 * lowest group with an entry. A message written before #5 whose group 0 had finished: after
 * the rebuild the counters must equal the queue (seen: messages 0, want 1), and after its last
 * group is delivered and a new message came, too. */
static void test_rebuild_old_format_group0_done(void **state)
{
	struct rb_fix *f = *state;
	struct qstat *s;
	const uint64_t dues[2] = {0, DUE0};
	struct queue_id id;
	struct dt_env e;
	struct msg *m;
	char *body;

	s = qstat_new();
	body = malloc(64);
	dt_env_init(&e, 2, 2, dues);
	e.rcpts[0].state = QUEUE_RCPT_DELIVERED;
	e.env.created_ms = CRE0;
	e.env.body_len = 64;
	memset(body, 'o', 64);
	queue_id_make(&id, CRE0, 1, 0);
	m = msg_new(&id, &e.env, body, 64);
	assert_non_null(m);
	put_old_format(f->q, m);
	msg_free(m);
	assert_int_equal(qstat_rebuild(s, f->q, queue_snap_new(f->q)), 0);
	wait_counted(s);
	assert_matches_queue(s, f->q);
	rb_round(f->q, s, 0, 3);
	assert_int_equal(queue_get(f->q, &id, NULL, NULL, NULL, NULL), -ENOENT);
	assert_matches_queue(s, f->q);
	m = rb_msg(1); /* a drift below zero would hide this one */
	assert_int_equal(dt_write_fill(f->q, m, msg_fill_put), 0);
	msg_written_put_cb(&m->req, s);
	msg_free(m);
	assert_matches_queue(s, f->q);
	qstat_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_totals_primary_only),
	    cmocka_unit_test(test_oldest_next_move_on_removal),
	    cmocka_unit_test(test_dest_gone_when_empty),
	    cmocka_unit_test(test_case_insensitive),
	    cmocka_unit_test(test_many_destinations),
	    cmocka_unit_test(test_negative_transients),
	    cmocka_unit_test_setup_teardown(test_rebuild_with_changes, setup_mem, rb_teardown),
	    cmocka_unit_test_setup_teardown(test_rebuild_with_changes, setup_rocks, rb_teardown),
	    cmocka_unit_test_setup_teardown(test_rebuild_empty, setup_mem, rb_teardown),
	    cmocka_unit_test_setup_teardown(test_rebuild_empty, setup_rocks, rb_teardown),
	    cmocka_unit_test_setup_teardown(test_rebuild_old_format, setup_mem, rb_teardown),
	    cmocka_unit_test_setup_teardown(test_rebuild_old_format_group0_done, setup_mem,
					    rb_teardown),
	    cmocka_unit_test_setup_teardown(test_join_early_stop, setup_mem, rb_teardown),
	    cmocka_unit_test_setup_teardown(test_join_early_stop, setup_rocks, rb_teardown),
	};

	return cmocka_run_group_tests_name("qstat", tests, NULL, NULL);
}
