/* test_sched — unit tests for the retry schedule, expiry and bookkeeping of engine/daemon/msg.c:
 * msg_retry_delay, msg_plan's next due, msg_expire, msg_warn, msg_record, the sched value
 * (msg_sval_make / msg_sval_parse) and msg_count_written.
 *
 * Why: these functions decide when mail is tried again, when a recipient gives up (and gets a
 * failure notice), when a sender hears that mail is late, and what the queue counters say.
 * Each mistake is silent in production: a backoff that never grows hammers a receiver, a due
 * past the lifetime fails mail late, a second delay warning annoys a sender, an attempt counter
 * that wraps never expires mail, a sched value that does not parse back mis-counts the queue
 * after a restart. So each test pins exact numbers (delays, dues, states, enhanced codes, fresh
 * marks, counters) and the jitter is checked statistically over many draws.
 */
#include "engine/daemon/msg.h"
#include "engine/daemon/qstat.h"
#include "tests/unit/daemon/daemon_test.h"

#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define SEC  1000ull
#define MINU (60 * SEC)
#define HOUR (60 * MINU)
#define DUE  (DT_CREATED + 10 * SEC)

/* ---- msg_retry_delay ---- */

/* retry_delay * backoff^(rounds-1), capped at retry_max_delay; rounds 0 counts as the first;
 * a huge round count is the cap (and quick); backoff 1 is a fixed delay. */
static void test_retry_delay_backoff(void **state)
{
	struct msg_sched s = {.retry_ms = MINU, .backoff = 2, .max_ms = HOUR};

	(void)state;
	assert_int_equal(msg_retry_delay(&s, 0, NULL), MINU);
	assert_int_equal(msg_retry_delay(&s, 1, NULL), MINU);
	assert_int_equal(msg_retry_delay(&s, 2, NULL), 2 * MINU);
	assert_int_equal(msg_retry_delay(&s, 3, NULL), 4 * MINU);
	assert_int_equal(msg_retry_delay(&s, 6, NULL), 32 * MINU);
	assert_int_equal(msg_retry_delay(&s, 7, NULL), HOUR);
	assert_int_equal(msg_retry_delay(&s, 1000, NULL), HOUR);
	assert_int_equal(msg_retry_delay(&s, UINT32_MAX, NULL), HOUR);
	s.backoff = 1.5;
	assert_int_equal(msg_retry_delay(&s, 3, NULL), 135 * SEC);
	s.backoff = 1;
	assert_int_equal(msg_retry_delay(&s, 1, NULL), MINU);
	assert_int_equal(msg_retry_delay(&s, 50, NULL), MINU);
}

/* A retry_max_delay below retry_delay does not shorten the delay: it stays retry_delay (the
 * ceiling is then retry_delay itself). Zero delays (the shutdown schedule) give 1 ms, never 0. */
static void test_retry_delay_cap_below_retry(void **state)
{
	struct msg_sched s = {.retry_ms = 10 * MINU, .backoff = 2, .max_ms = MINU};

	(void)state;
	assert_int_equal(msg_retry_delay(&s, 1, NULL), 10 * MINU);
	assert_int_equal(msg_retry_delay(&s, 2, NULL), 10 * MINU);
	assert_int_equal(msg_retry_delay(&s, 9, NULL), 10 * MINU);
	s.max_ms = 10 * MINU;
	assert_int_equal(msg_retry_delay(&s, 4, NULL), 10 * MINU);
	s = (struct msg_sched){.backoff = 1};
	assert_int_equal(msg_retry_delay(&s, 1, NULL), 1);
}

#define DRAWS 20000

/* With an rng every delay is within [0.95, 1.05] of the plain one (also at the cap), the draws
 * spread over that range (not constant, mean near the middle), the state moves; without one the
 * delay is exact. */
static void test_retry_delay_jitter(void **state)
{
	struct msg_sched s = {.retry_ms = MINU, .backoff = 2, .max_ms = HOUR};
	uint64_t rng = 0x9e3779b97f4a7c15ull, start = rng, lo = UINT64_MAX, hi = 0;
	const uint64_t base = 2 * MINU;
	double sum = 0;

	(void)state;
	for (unsigned i = 0; i < DRAWS; i++) {
		uint64_t d = msg_retry_delay(&s, 2, &rng);
		assert_true(d >= base * 95 / 100 && d <= base * 105 / 100);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += (double)d;
	}
	assert_int_not_equal(rng, start);
	assert_true(hi - lo > base * 9 / 100); /* nearly the whole 10 % band is used */
	assert_true(sum / DRAWS > base * 0.995 && sum / DRAWS < base * 1.005);
	for (unsigned i = 0; i < 1000; i++) {
		uint64_t d = msg_retry_delay(&s, 40, &rng);
		assert_true(d >= HOUR * 95 / 100 && d <= HOUR * 105 / 100);
	}
	assert_int_equal(msg_retry_delay(&s, 2, NULL), base);
}

/* ---- msg_plan's next due ---- */

/* A message of one group (recipient 0, plus a delivered recipient 1 when two), created at
 * DT_CREATED. */
static struct msg *one_group(unsigned nrcpt)
{
	const uint64_t dues[1] = {DUE};
	struct msg *m = dt_msg_new(1, nrcpt, 1, dues, 10);

	assert_non_null(m);
	return m;
}

/* One deferred round of group 0 at now: the new due. */
static uint64_t defer_round(struct msg *m, uint64_t now, const struct msg_sched *s)
{
	m->groups[0].out = true;
	msg_set_result(m, 0, QUEUE_RCPT_PENDING, 451, "451 later", 9);
	assert_int_equal(msg_plan(m, now, s), MSG_PLAN_UPDATE);
	return m->env->dests[0].due;
}

/* Each deferred round counts (dests[g].attempts) and the delay follows the backoff; a due that
 * would fall after created + lifetime is that end instead (a last attempt then). */
static void test_plan_backoff_and_lifetime_end(void **state)
{
	struct msg_sched s = {
	    .retry_ms = 20 * MINU, .backoff = 2, .max_ms = 10 * HOUR, .lifetime_ms = 2 * HOUR};
	const uint64_t c = DT_CREATED, end = c + 2 * HOUR;
	struct msg *m = one_group(1);

	(void)state;
	assert_int_equal(defer_round(m, c + MINU, &s), c + 21 * MINU);
	assert_int_equal(m->env->dests[0].attempts, 1);
	assert_int_equal(defer_round(m, c + 21 * MINU, &s), c + 61 * MINU);
	assert_int_equal(m->env->dests[0].attempts, 2);
	assert_int_equal(defer_round(m, c + 61 * MINU, &s), end); /* +80 min would pass it */
	assert_int_equal(m->env->dests[0].attempts, 3);
	assert_int_equal(defer_round(m, end - 1, &s), end);
	s.lifetime_ms = 0;					     /* no lifetime: no end */
	assert_int_equal(defer_round(m, end, &s), end + 320 * MINU); /* 20 min * 2^4 */
	msg_free(m);
}

/* With jitter, any now before the end: the next due is after now and never after the end. */
static void test_plan_due_never_after_lifetime(void **state)
{
	uint64_t rng = 12345;
	struct msg_sched s = {.retry_ms = 5 * MINU,
			      .backoff = 1.7,
			      .max_ms = 4 * HOUR,
			      .lifetime_ms = 5 * 24 * HOUR,
			      .rng = &rng};
	const uint64_t end = DT_CREATED + s.lifetime_ms;
	struct msg *m = one_group(1);
	uint64_t x = 99;

	(void)state;
	for (unsigned i = 0; i < 5000; i++) {
		uint64_t now, due;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		now = DT_CREATED + x % s.lifetime_ms;
		m->env->dests[0].attempts = (uint32_t)(x >> 40) % 40;
		due = defer_round(m, now, &s);
		assert_true(due > now && due <= end);
	}
	msg_free(m);
}

/* ---- msg_expire ---- */

struct expired {
	unsigned n, idx[8];
	char reason[8][160];
};

static void on_expired(void *arg, struct msg *m, unsigned i, const char *reason)
{
	struct expired *e = arg;

	(void)m;
	assert_true(e->n < 8);
	e->idx[e->n] = i;
	snprintf(e->reason[e->n], sizeof(e->reason[0]), "%s", reason);
	e->n++;
}

/* Four recipients in two groups (0: r0 r2, 1: r1 r3); group 0 decided this round: r0 deferred
 * with a reply, r2 delivered; group 1 undecided. */
static struct msg *two_groups_round(void)
{
	const uint64_t dues[2] = {DUE, DUE};
	struct msg *m = dt_msg_new(2, 4, 2, dues, 10);

	assert_non_null(m);
	m->groups[0].out = m->groups[1].out = true;
	msg_set_result(m, 0, QUEUE_RCPT_PENDING, 451, "451 4.4.1 try later", 19);
	msg_set_result(m, 2, QUEUE_RCPT_DELIVERED, 250, "250 ok", 6);
	return m;
}

/* Lifetime reached: the pending recipient of the decided group fails with 5.4.7, its stored
 * reply becomes the reason + its last reply (code 0: riptide's decision), a failure notice due, the
 * reason given to the callback; the delivered one and the undecided group are untouched. A
 * millisecond earlier: nothing. */
static void test_expire_lifetime(void **state)
{
	struct msg_sched s = {.retry_ms = MINU, .backoff = 1, .max_ms = MINU, .lifetime_ms = HOUR};
	const uint64_t end = DT_CREATED + HOUR;
	struct msg *m = two_groups_round();
	const struct queue_rcpt *r = m->env->rcpts;
	struct expired e = {0};

	(void)state;
	assert_int_equal(msg_expire(m, end - 1, &s, on_expired, &e), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(msg_expire(m, end, &s, on_expired, &e), 1);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.idx[0], 0);
	assert_non_null(strstr(e.reason[0], "lifetime"));
	assert_int_equal(r[0].state, QUEUE_RCPT_FAILED);
	assert_memory_equal(r[0].enh, ((uint8_t[]){5, 4, 7}), 3);
	assert_int_equal(r[0].last_code, 0);
	assert_non_null(strstr(r[0].last_reply, "lifetime"));
	assert_non_null(strstr(r[0].last_reply, "; last reply: 451 451 4.4.1 try later"));
	assert_int_equal(r[0].last_ms, end);
	assert_int_equal(m->fresh[0], MSG_FRESH_FAILED);
	assert_int_equal(r[2].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(m->fresh[2], 0);
	for (unsigned i = 1; i < 4; i += 2) {
		assert_int_equal(r[i].state, QUEUE_RCPT_PENDING);
		assert_int_equal(m->fresh[i], 0);
	}
	assert_int_equal(msg_plan(m, end, &s), MSG_PLAN_UPDATE); /* group 0 done, 1 kept */
	assert_int_equal(m->env->dests[0].due, 0);
	assert_int_equal(m->env->dests[1].due, DUE);
	msg_free(m);
}

/* max_attempts reached (attempts count only tried connections): the recipient with 3 fails,
 * the one with 2 in the same group stays, one deferred without a connection never counts. */
static void test_expire_max_attempts(void **state)
{
	struct msg_sched s = {.retry_ms = MINU, .backoff = 1, .max_ms = MINU, .max_attempts = 3};
	const uint64_t dues[1] = {DUE};
	struct msg *m = dt_msg_new(3, 3, 1, dues, 10);
	struct msg_outcome tried = {.state = QUEUE_RCPT_PENDING, .code = 451, .tried = true},
			   local = {.state = QUEUE_RCPT_PENDING, .code = 451};
	struct expired e = {0};

	(void)state;
	assert_non_null(m);
	for (unsigned k = 0; k < 3; k++) {
		msg_record(m, 0, &tried);
		msg_record(m, 2, &local);
		if (k < 2)
			msg_record(m, 1, &tried);
	}
	for (unsigned k = 0; k < 10; k++)
		msg_record(m, 2, &local);
	assert_int_equal(m->env->rcpts[2].attempts, 0);
	assert_int_equal(msg_expire(m, DT_CREATED + 365 * 24 * HOUR, &s, on_expired, &e), 1);
	assert_int_equal(e.idx[0], 0);
	assert_non_null(strstr(e.reason[0], "max_attempts"));
	assert_non_null(strstr(e.reason[0], "3"));
	assert_int_equal(m->env->rcpts[0].state, QUEUE_RCPT_FAILED);
	assert_memory_equal(m->env->rcpts[0].enh, ((uint8_t[]){5, 4, 7}), 3);
	assert_int_equal(m->env->rcpts[1].state, QUEUE_RCPT_PENDING);
	assert_int_equal(m->env->rcpts[2].state, QUEUE_RCPT_PENDING);
	s.max_attempts = 0; /* no limits at all: nothing ever expires */
	msg_record(m, 1, &tried);
	assert_int_equal(msg_expire(m, UINT64_MAX / 2, &s, on_expired, &e), 0);
	assert_int_equal(e.n, 1);
	msg_free(m);
}

/* ---- msg_warn ---- */

/* Six recipients in two groups (0: r0 r2 r4, 1: r1 r3 r5) with NOTIFY r0 none, r1 DELAY|FAILURE,
 * r2 FAILURE, r3 none, r4 NEVER, r5 none; r5 delivered; the pending ones deferred in groups
 * whose out flag is given. */
static struct msg *warn_msg(bool g0, bool g1)
{
	static const uint8_t nf[6] = {0,
				      QUEUE_NOTIFY_DELAY | QUEUE_NOTIFY_FAILURE,
				      QUEUE_NOTIFY_FAILURE,
				      0,
				      QUEUE_NOTIFY_NEVER,
				      0};
	const uint64_t dues[2] = {DUE, DUE};
	struct queue_id id;
	struct dt_env e;
	struct msg *m;

	dt_env_init(&e, 6, 2, dues);
	for (unsigned i = 0; i < 6; i++)
		e.rcpts[i].notify = nf[i];
	queue_id_make(&id, DT_CREATED, 1, 7);
	m = msg_new(&id, &e.env, NULL, 0);
	assert_non_null(m);
	for (unsigned i = 0; i < 6; i++) {
		if (!(i % 2 ? g1 : g0))
			continue;
		m->groups[i % 2].out = true;
		msg_set_result(m, i, i == 5 ? QUEUE_RCPT_DELIVERED : QUEUE_RCPT_PENDING,
			       i == 5 ? 250 : 451, "r", 1);
	}
	return m;
}

/* Not before warn_after, never with warn_after 0; then once: the pending recipients of the
 * decided groups that accept delay notices (NOTIFY none or with DELAY) get MSG_FRESH_DELAYED,
 * QUEUE_ENV_WARNED is set and written by msg_plan; a second call gives 0. */
static void test_warn_once(void **state)
{
	static const uint8_t want[6] = {
	    MSG_FRESH_DELAYED, MSG_FRESH_DELAYED, 0, MSG_FRESH_DELAYED, 0, 0};
	struct msg *m = warn_msg(true, true);
	struct queue_env *dec = NULL;

	(void)state;
	assert_int_equal(msg_warn(m, DT_CREATED + 10 * HOUR, 0), 0);
	assert_int_equal(msg_warn(m, DT_CREATED + HOUR - 1, HOUR), 0);
	assert_false(m->env->flags & QUEUE_ENV_WARNED);
	assert_false(m->dirty);
	assert_int_equal(msg_warn(m, DT_CREATED + HOUR, HOUR), 3);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(m->fresh[i], want[i]);
	assert_true(m->env->flags & QUEUE_ENV_WARNED);
	assert_true(m->dirty);
	assert_int_equal(msg_warn(m, DT_CREATED + 2 * HOUR, HOUR), 0);
	assert_int_equal(msg_plan(m, DT_CREATED + HOUR, dt_sched(MINU)), MSG_PLAN_UPDATE);
	assert_int_equal(queue_env_decode(m->meta, m->meta_len, &dec), 0);
	assert_true(dec->flags & QUEUE_ENV_WARNED);
	queue_env_free(dec);
	msg_free(m);
}

/* Only decided groups are warned; a message whose recipients all refuse delay notices is not
 * marked warned (nothing was sent). */
static void test_warn_decided_groups_only(void **state)
{
	struct msg *m = warn_msg(true, false);

	(void)state;
	assert_int_equal(msg_warn(m, DT_CREATED + HOUR, HOUR), 1);
	assert_int_equal(m->fresh[0], MSG_FRESH_DELAYED);
	assert_int_equal(m->fresh[1], 0);
	assert_int_equal(m->fresh[3], 0);
	msg_free(m);

	m = warn_msg(true, false);
	m->env->rcpts[0].notify = QUEUE_NOTIFY_NEVER;
	assert_int_equal(msg_warn(m, DT_CREATED + HOUR, HOUR), 0);
	assert_false(m->env->flags & QUEUE_ENV_WARNED);
	assert_false(m->dirty);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(m->fresh[i], 0);
	msg_free(m);
}

/* ---- msg_record ---- */

/* Attempts count tried outcomes only and saturate at 65535; the outcome's fields are kept
 * (reply and MTA copied, NULL MTA as ""), its group is decided. */
static void test_record_attempts_and_fields(void **state)
{
	const uint64_t dues[2] = {DUE, DUE};
	struct msg *m = dt_msg_new(3, 2, 2, dues, 1);
	char reply[] = "452 4.2.2 mailbox full";
	struct msg_outcome o = {.state = QUEUE_RCPT_PENDING,
				.code = 452,
				.enh = {4, 2, 2},
				.reply = reply,
				.reply_len = 9,
				.mta = "mx1.d1.example",
				.at_ms = DT_CREATED + 5};
	const struct queue_rcpt *r = &m->env->rcpts[1];

	(void)state;
	msg_record(m, 1, &o);
	assert_int_equal(r->attempts, 0);
	assert_true(m->groups[1].decided);
	assert_false(m->groups[0].decided);
	assert_int_equal(r->last_code, 452);
	assert_memory_equal(r->enh, ((uint8_t[]){4, 2, 2}), 3);
	assert_string_equal(r->last_reply, "452 4.2.2"); /* reply_len bytes, copied */
	reply[0] = 'X';
	assert_string_equal(r->last_reply, "452 4.2.2");
	assert_string_equal(r->last_mta, "mx1.d1.example");
	assert_int_equal(r->last_ms, DT_CREATED + 5);
	assert_int_equal(m->fresh[1], 0);
	o.tried = true;
	o.mta = NULL;
	msg_record(m, 1, &o);
	assert_int_equal(r->attempts, 1);
	assert_string_equal(r->last_mta, "");
	m->env->rcpts[1].attempts = 65534;
	msg_record(m, 1, &o);
	assert_int_equal(r->attempts, 65535);
	msg_record(m, 1, &o);
	assert_int_equal(r->attempts, 65535);
	msg_free(m);
}

/* The fresh mark: a failure always (NOTIFY is applied by the notice), a delivery only with
 * NOTIFY=SUCCESS to a hop without DSN (relayed); a deferral none. */
static void test_record_fresh_marks(void **state)
{
	static const struct {
		uint8_t notify, state;
		bool peer_dsn;
		uint8_t fresh;
	} c[] = {
	    {QUEUE_NOTIFY_SUCCESS, QUEUE_RCPT_DELIVERED, false, MSG_FRESH_RELAYED},
	    {QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE, QUEUE_RCPT_DELIVERED, false,
	     MSG_FRESH_RELAYED},
	    {QUEUE_NOTIFY_SUCCESS, QUEUE_RCPT_DELIVERED, true, 0},
	    {0, QUEUE_RCPT_DELIVERED, false, 0},
	    {QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY, QUEUE_RCPT_DELIVERED, false, 0},
	    {QUEUE_NOTIFY_NEVER, QUEUE_RCPT_DELIVERED, false, 0},
	    {0, QUEUE_RCPT_FAILED, false, MSG_FRESH_FAILED},
	    {QUEUE_NOTIFY_SUCCESS, QUEUE_RCPT_FAILED, false, MSG_FRESH_FAILED},
	    {QUEUE_NOTIFY_SUCCESS, QUEUE_RCPT_PENDING, false, 0},
	};
	const uint64_t dues[1] = {DUE};

	(void)state;
	for (unsigned k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		struct msg *m = dt_msg_new(4, 1, 1, dues, 1);
		struct msg_outcome o = {
		    .state = c[k].state, .code = 250, .peer_dsn = c[k].peer_dsn, .tried = true};
		assert_non_null(m);
		m->env->rcpts[0].notify = c[k].notify;
		msg_record(m, 0, &o);
		if (m->fresh[0] != c[k].fresh)
			fail_msg("case %u: fresh %u, want %u", k, m->fresh[0], c[k].fresh);
		msg_free(m);
	}
}

/* ---- sched values ---- */

/* Every field survives make -> parse, both primary values. */
static void test_sval_round_trip(void **state)
{
	struct msg_sval v = {.name = "mx.example.org",
			     .attempts = 0xdeadbeef,
			     .created_ms = 0x0102030405060708ull,
			     .bytes = (1ull << 40) + 5,
			     .pending = 70000,
			     .primary = true},
			p;
	uint8_t buf[MSG_SVAL_MAX];
	char name[300];
	size_t len = msg_sval_make(&v, buf, sizeof(buf));

	(void)state;
	assert_int_equal(len, 26 + strlen(v.name));
	msg_sval_parse(buf, len, &p, name, sizeof(name));
	assert_false(p.old);
	assert_string_equal(p.name, "mx.example.org");
	assert_ptr_equal(p.name, name);
	assert_int_equal(p.attempts, 0xdeadbeef);
	assert_int_equal(p.created_ms, 0x0102030405060708ull);
	assert_int_equal(p.bytes, (1ull << 40) + 5);
	assert_int_equal(p.pending, 70000);
	assert_true(p.primary);
	v.primary = false;
	msg_sval_parse(buf, msg_sval_make(&v, buf, sizeof(buf)), &p, name, sizeof(name));
	assert_false(p.primary);
}

/* A name longer than the buffer is cut to what fits (the fields stay), and parse cuts to its
 * own buffer too (always NUL-terminated). */
static void test_sval_long_name(void **state)
{
	struct msg_sval v = {.pending = 70000}, p;
	uint8_t buf[MSG_SVAL_MAX];
	char name[300], longname[300];
	size_t len;

	(void)state;
	memset(longname, 'n', 299);
	longname[299] = '\0';
	v.name = longname;
	len = msg_sval_make(&v, buf, sizeof(buf));
	assert_int_equal(len, MSG_SVAL_MAX);
	msg_sval_parse(buf, len, &p, name, sizeof(name));
	assert_int_equal(strlen(p.name), 256);
	assert_int_equal(p.pending, 70000);
	msg_sval_parse(buf, len, &p, name, 8);
	assert_string_equal(p.name, "nnnnnnn");
	len = msg_sval_make(&v, buf, 30); /* a small buffer: 4 bytes of the name */
	assert_int_equal(len, 30);
	msg_sval_parse(buf, len, &p, name, sizeof(name));
	assert_string_equal(p.name, "nnnn");
}

/* The format before #5 (4-byte attempts + name) parses as old, with its attempts and name and
 * zeros elsewhere; garbage (shorter than 4 bytes) gives zeros and an empty name. */
static void test_sval_old_format(void **state)
{
	uint8_t old[64];
	size_t len = dt_sval(7, "d1.example", old);
	struct msg_sval p;
	char name[64];

	(void)state;
	msg_sval_parse(old, len, &p, name, sizeof(name));
	assert_true(p.old);
	assert_int_equal(p.attempts, 7);
	assert_string_equal(p.name, "d1.example");
	assert_int_equal(p.created_ms, 0);
	assert_int_equal(p.bytes, 0);
	assert_int_equal(p.pending, 0);
	assert_false(p.primary);
	msg_sval_parse(old, 4, &p, name, sizeof(name));
	assert_true(p.old);
	assert_string_equal(p.name, "");
	for (size_t n = 0; n < 4; n++) {
		memset(name, 'z', sizeof(name));
		msg_sval_parse("\xa2\x01\x02", n, &p, name, sizeof(name));
		assert_false(p.old);
		assert_int_equal(p.attempts, 0);
		assert_string_equal(p.name, "");
	}
}

/* ---- msg_count_written ---- */

struct rowc {
	unsigned n;
	struct qstat_dest last;
	char name[ROUTE_NAME_MAX];
};

static int rowc_cb(void *arg, const struct qstat_dest *d)
{
	struct rowc *c = arg;

	c->n++;
	c->last = *d;
	snprintf(c->name, sizeof(c->name), "%s", d->name);
	return 0;
}

/* Totals of s equal (m, r, b) and there are nrows rows; with name, the last one is named so
 * and counts m messages, r recipients, b bytes, next due. */
static void assert_counts(struct qstat *s, uint64_t m, uint64_t r, uint64_t b, unsigned nrows,
			  const char *name, uint64_t next)
{
	uint64_t tm, tr, tb;
	struct rowc c = {0};

	qstat_totals(s, &tm, &tr, &tb);
	assert_int_equal(tm, m);
	assert_int_equal(tr, r);
	assert_int_equal(tb, b);
	qstat_each(s, rowc_cb, &c);
	assert_int_equal(c.n, nrows);
	if (!name)
		return;
	assert_string_equal(c.name, name);
	assert_int_equal(c.last.messages, m);
	assert_int_equal(c.last.recipients, r);
	assert_int_equal(c.last.bytes, b);
	assert_int_equal(c.last.oldest_ms, DT_CREATED);
	assert_int_equal(c.last.next_ms, next);
}

/* The counters a rebuild from the queue's sched entries gives now: the same as s. */
static void assert_rebuild_agrees(struct queue *q, struct qstat *s)
{
	struct qstat *r = qstat_new();
	uint64_t a[3], b[3];

	assert_int_equal(qstat_rebuild(r, q, queue_snap_new(q)), 0);
	for (unsigned i = 0; i < 20000 && qstat_counting(r); i++)
		usleep(1000);
	assert_false(qstat_counting(r));
	qstat_totals(s, &a[0], &a[1], &a[2]);
	qstat_totals(r, &b[0], &b[1], &b[2]);
	assert_memory_equal(a, b, sizeof(a));
	qstat_free(r);
}

/* One round: groups in `out` out; recipients listed delivered, the rest of those groups
 * deferred; then plan, write, count (the commit thread's order). */
static void count_round(struct queue *q, struct qstat *s, struct msg *m, unsigned out,
			unsigned delivered, uint64_t now)
{
	for (uint32_t i = 0; i < m->env->nrcpt; i++) {
		unsigned g = m->env->rcpts[i].dest;
		if (!(out & (1u << g)) || m->env->rcpts[i].state != QUEUE_RCPT_PENDING)
			continue;
		m->groups[g].out = true;
		msg_set_result(m, i,
			       (delivered >> i) & 1 ? QUEUE_RCPT_DELIVERED : QUEUE_RCPT_PENDING,
			       (delivered >> i) & 1 ? 250 : 451, "r", 1);
	}
	assert_int_not_equal(msg_plan(m, now, dt_sched(MINU)), MSG_PLAN_NONE);
	assert_int_equal(dt_write_fill(q, m, msg_fill_final), 0);
	msg_count_written(m, s);
}

/* Put (2 groups of 2), then group 0 finishes first: group 1's entry takes over as the primary
 * one (rewritten so on disk), the totals still count one message and its bytes; then group 1
 * partly, then wholly: zero. After each write a rebuild from the queue agrees. */
static void test_count_written_primary_handover(void **state)
{
	const uint64_t dues[2] = {DUE, DUE + 1};
	struct queue *q = dt_queue_open();
	struct qstat *s = qstat_new();
	struct msg *m = dt_msg_new(1, 4, 2, dues, 100); /* group 0: r0 r2; group 1: r1 r3 */
	const uint64_t now = DT_CREATED + HOUR;
	struct dt_dump d;
	struct msg_sval v;
	char name[64];
	int at;

	(void)state;
	assert_non_null(q);
	assert_int_equal(dt_write_fill(q, m, msg_fill_put), 0);
	msg_written_put_cb(&m->req, s);
	assert_counts(s, 1, 4, 100, 2, NULL, 0);
	assert_rebuild_agrees(q, s);
	count_round(q, s, m, 1u << 0, 1u << 0 | 1u << 2, now);
	assert_counts(s, 1, 2, 100, 1, "d1.example", DUE + 1);
	assert_int_equal(dt_dump_sched(q, &d), 0);
	assert_int_equal(dt_dump_find(&d, &m->id, 1, &at), 1);
	msg_sval_parse(d.e[at].sval, d.e[at].sval_len, &v, name, sizeof(name));
	assert_true(v.primary);
	assert_rebuild_agrees(q, s);
	count_round(q, s, m, 1u << 1, 1u << 1, now);
	assert_counts(s, 1, 1, 100, 1, "d1.example", now + MINU);
	assert_rebuild_agrees(q, s);
	count_round(q, s, m, 1u << 1, 1u << 3, now + MINU);
	assert_true(m->delete);
	assert_counts(s, 0, 0, 0, 0, NULL, 0);
	assert_rebuild_agrees(q, s);
	msg_free(m);
	qstat_free(s);
	queue_close(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retry_delay_backoff),
	    cmocka_unit_test(test_retry_delay_cap_below_retry),
	    cmocka_unit_test(test_retry_delay_jitter),
	    cmocka_unit_test(test_plan_backoff_and_lifetime_end),
	    cmocka_unit_test(test_plan_due_never_after_lifetime),
	    cmocka_unit_test(test_expire_lifetime),
	    cmocka_unit_test(test_expire_max_attempts),
	    cmocka_unit_test(test_warn_once),
	    cmocka_unit_test(test_warn_decided_groups_only),
	    cmocka_unit_test(test_record_attempts_and_fields),
	    cmocka_unit_test(test_record_fresh_marks),
	    cmocka_unit_test(test_sval_round_trip),
	    cmocka_unit_test(test_sval_long_name),
	    cmocka_unit_test(test_sval_old_format),
	    cmocka_unit_test(test_count_written_primary_handover),
	};

	return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
