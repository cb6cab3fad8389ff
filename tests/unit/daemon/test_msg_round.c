/* test_msg_round — unit tests for the destination-group bookkeeping of engine/daemon/msg.c:
 * msg_plan at the end of a round, msg_fill_put / msg_fill_final applied to a real (in-memory)
 * queue, msg_next_due and msg_group_rcpts.
 *
 * Why: each destination group of a message has its own sched entry and retries on its own
 * schedule. If a round's end moves the wrong entry, leaves an old one behind or drops one of a
 * group that was not in the round, the runner loads a group twice (duplicates), never again
 * (lost mail) or reads a stale schedule. So every test looks at what the queue holds afterwards:
 * the exact set of sched entries (due, group, value) of the message and of a neighbour message
 * that must stay untouched, and the stored envelope decoded again.
 */
#include "tests/unit/daemon/daemon_test.h"

#include <errno.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define NOW   1800000000000ull
#define RETRY 600000ull
#define HOUR  3600000ull
#define D0    (NOW - 3000)
#define D1    (NOW - 2000)
#define D2    (NOW - 1000)
#define D3    (NOW + HOUR)

/* Message 1: 8 recipients in 4 groups (rcpt i in group i % 4), due D0..D3. */
static const uint64_t dues4[4] = {D0, D1, D2, D3};
/* Message 2, the neighbour: 2 recipients in 2 groups. */
static const uint64_t dues2[2] = {D0, D2};

struct fix {
	struct queue *q;
	struct msg *m;	   /* message 1 */
	struct queue_id n; /* message 2's id */
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f || !(f->q = dt_queue_open()))
		return -1;
	f->m = dt_msg_new(1, 8, 4, dues4, 10);
	if (!f->m || dt_write_fill(f->q, f->m, msg_fill_put) < 0 || dt_put(f->q, 2, 2, 2, dues2, 5))
		return -1;
	queue_id_make(&f->n, DT_CREATED, 1, 2);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	msg_free(f->m);
	queue_close(f->q);
	free(f);
	return 0;
}

/* Record an outcome the way home_unit_back does: 250 delivered, 550 failed, 451 pending. */
static void result(struct msg *m, unsigned i, int code)
{
	enum queue_rcpt_state st = code == 250	 ? QUEUE_RCPT_DELIVERED
				   : code >= 500 ? QUEUE_RCPT_FAILED
						 : QUEUE_RCPT_PENDING;
	char text[32];

	snprintf(text, sizeof(text), "%d reply %u", code, i);
	msg_set_result(m, i, st, code, text, strlen(text));
}

/* The sched entry of group g of id exists at due with value (attempts, "d<g>.example"). */
static void assert_entry(const struct dt_dump *d, const struct queue_id *id, unsigned g,
			 uint64_t due, uint32_t attempts)
{
	char name[32];
	int at;

	snprintf(name, sizeof(name), "d%u.example", g);
	dt_dump_find(d, id, g, &at);
	assert_true(at >= 0);
	assert_int_equal(d->e[at].due, due);
	assert_true(dt_sval_is(d->e[at].sval, d->e[at].sval_len, attempts, name));
}

/* The neighbour (message 2) still has exactly its two entries, as put. */
static void assert_neighbour_untouched(const struct fix *f, const struct dt_dump *d)
{
	int at;

	assert_int_equal(dt_dump_find(d, &f->n, 0, &at), 2);
	assert_entry(d, &f->n, 0, D0, 0);
	assert_entry(d, &f->n, 1, D2, 0);
	assert_int_equal(queue_get(f->q, &f->n, NULL, NULL, NULL, NULL), 0);
}

/* The stored envelope of id, decoded (the caller frees it). */
static struct queue_env *stored_env(struct queue *q, const struct queue_id *id)
{
	struct queue_env *e = NULL;
	void *meta = NULL;
	size_t len = 0;

	assert_int_equal(queue_get(q, id, &meta, &len, NULL, NULL), 0);
	assert_int_equal(queue_env_decode(meta, len, &e), 0);
	free(meta);
	return e;
}

/* Load id as the runner does (msg_from_disk of meta + body). */
static struct msg *reload(struct queue *q, const struct queue_id *id)
{
	void *meta = NULL, *body = NULL;
	size_t mlen = 0, blen = 0;
	struct msg *r;
	int err = 0;

	assert_int_equal(queue_get(q, id, &meta, &mlen, &body, &blen), 0);
	r = msg_from_disk(id, meta, mlen, body, blen, &err);
	free(meta);
	assert_non_null(r);
	return r;
}

/* msg_fill_put wrote meta, body and one entry per group at its due, valued attempts + name. */
static void test_fill_put_one_entry_per_group(void **state)
{
	struct fix *f = *state;
	struct dt_dump d;
	void *body = NULL;
	size_t blen = 0;
	int at;

	assert_int_equal(dt_dump_sched(f->q, &d), 0);
	assert_int_equal(d.n, 6);
	assert_int_equal(dt_dump_find(&d, &f->m->id, 0, &at), 4);
	for (unsigned g = 0; g < 4; g++)
		assert_entry(&d, &f->m->id, g, dues4[g], 0);
	assert_neighbour_untouched(f, &d);
	assert_int_equal(queue_get(f->q, &f->m->id, NULL, NULL, &body, &blen), 0);
	assert_int_equal(blen, 10);
	assert_memory_equal(body, "xxxxxxxxxx", 10);
	free(body);
}

/* A group without a due (all its recipients final) gets no sched entry at acceptance. */
static void test_fill_put_skips_group_without_due(void **state)
{
	struct fix *f = *state;
	const uint64_t dues[3] = {D1, 0, D3};
	struct msg *m = dt_msg_new(3, 3, 3, dues, 1);
	struct dt_dump d;
	int at;

	assert_non_null(m);
	assert_int_equal(dt_write_fill(f->q, m, msg_fill_put), 0);
	assert_int_equal(dt_dump_sched(f->q, &d), 0);
	assert_int_equal(dt_dump_find(&d, &m->id, 1, &at), 2);
	assert_int_equal(at, -1);
	assert_entry(&d, &m->id, 0, D1, 0);
	assert_entry(&d, &m->id, 2, D3, 0);
	msg_free(m);
}

/* What test_plan_update_moves_decided_groups stored in meta: the groups' new dues and
 * attempts, and each recipient's outcome. */
static void assert_stored_after_update(const struct fix *f)
{
	struct queue_env *e = stored_env(f->q, &f->m->id);

	assert_int_equal(e->ndest, 4);
	assert_int_equal(e->dests[0].due, NOW + RETRY);
	assert_int_equal(e->dests[0].attempts, 1);
	assert_int_equal(e->dests[1].due, D1);
	assert_int_equal(e->dests[2].due, 0);
	assert_int_equal(e->dests[3].due, D3);
	assert_int_equal(e->rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(e->rcpts[4].state, QUEUE_RCPT_PENDING);
	assert_int_equal(e->rcpts[4].last_code, 451);
	assert_string_equal(e->rcpts[4].last_reply, "451 reply 4");
	assert_int_equal(e->rcpts[4].attempts, 1);
	assert_int_equal(e->rcpts[6].state, QUEUE_RCPT_FAILED);
	assert_int_equal(e->rcpts[1].state, QUEUE_RCPT_PENDING);
	assert_int_equal(e->rcpts[1].attempts, 0);
	queue_env_free(e);
}

/* Groups 0..2 out, 3 not: 0 decided with a recipient still pending (retry: due now + retry,
 * attempts + 1), 1 out but undecided (keeps due and attempts), 2 all final (loses its entry),
 * 3 untouched. The queue then holds exactly entries 0 (moved), 1 and 3 (as they were), the
 * neighbour is untouched, and meta decodes to the new states. */
static void test_plan_update_moves_decided_groups(void **state)
{
	struct fix *f = *state;
	struct msg *m = f->m;
	struct dt_dump d;
	int at;

	for (unsigned g = 0; g < 3; g++)
		m->groups[g].out = true;
	result(m, 0, 250);
	result(m, 4, 451);
	result(m, 2, 250);
	result(m, 6, 550);
	assert_int_equal(msg_plan(m, NOW, dt_sched(RETRY)), MSG_PLAN_UPDATE);
	assert_false(m->delete);
	assert_int_equal(m->env->dests[0].due, NOW + RETRY);
	assert_int_equal(m->env->dests[0].attempts, 1);
	assert_int_equal(m->env->dests[1].due, D1);
	assert_int_equal(m->env->dests[1].attempts, 0);
	assert_int_equal(m->env->dests[2].due, 0);
	assert_int_equal(m->env->dests[2].attempts, 0);
	assert_int_equal(m->env->dests[3].due, D3);
	for (unsigned g = 0; g < 4; g++)
		assert_false(m->groups[g].out || m->groups[g].decided);
	assert_int_equal(msg_next_due(m), D1);

	assert_int_equal(dt_write_fill(f->q, m, msg_fill_final), 0);
	assert_int_equal(dt_dump_sched(f->q, &d), 0);
	assert_int_equal(d.n, 5);
	assert_int_equal(dt_dump_find(&d, &m->id, 2, &at), 3);
	assert_int_equal(at, -1);
	assert_entry(&d, &m->id, 0, NOW + RETRY, 1);
	assert_entry(&d, &m->id, 1, D1, 0);
	assert_entry(&d, &m->id, 3, D3, 0);
	assert_neighbour_untouched(f, &d);
	assert_stored_after_update(f);
}

/* A second round on the message as the runner loads it (msg_from_disk of what the first round
 * wrote): its disk dues are the new ones, so the entries it moves are the current ones. */
static void test_plan_second_round_from_disk(void **state)
{
	struct fix *f = *state;
	struct msg *m = f->m, *r;
	struct dt_dump d;
	int at;

	m->groups[0].out = m->groups[2].out = true;
	result(m, 4, 451);
	result(m, 0, 250);
	result(m, 2, 250);
	result(m, 6, 250);
	assert_int_equal(msg_plan(m, NOW, dt_sched(RETRY)), MSG_PLAN_UPDATE);
	assert_int_equal(dt_write_fill(f->q, m, msg_fill_final), 0);

	r = reload(f->q, &m->id);
	assert_int_equal(r->groups[0].disk_due, NOW + RETRY);
	assert_int_equal(r->groups[2].disk_due, 0);
	r->groups[0].out = r->groups[1].out = true; /* group 0 due again, 1 due too */
	result(r, 4, 250);
	result(r, 1, 451);
	assert_int_equal(msg_plan(r, NOW + RETRY, dt_sched(RETRY)), MSG_PLAN_UPDATE);
	assert_int_equal(dt_write_fill(f->q, r, msg_fill_final), 0);
	assert_int_equal(dt_dump_sched(f->q, &d), 0);
	assert_int_equal(dt_dump_find(&d, &m->id, 0, &at), 2);
	assert_int_equal(at, -1);
	assert_entry(&d, &m->id, 1, NOW + 2 * RETRY, 1);
	assert_entry(&d, &m->id, 3, D3, 0);
	assert_neighbour_untouched(f, &d);
	msg_free(r);
}

/* Round 1: group 3 ends all final (its entry goes, the others stay). Round 2, on the message
 * reloaded from disk: groups 0..2 end all final: MSG_PLAN_DELETE, and msg_fill_final removes
 * meta, body and every remaining sched entry of the message, and nothing of the neighbour. */
static void test_plan_all_final_deletes(void **state)
{
	struct fix *f = *state;
	struct msg *m = f->m, *r;
	struct dt_dump d;
	uint64_t count = 0;
	int at;

	m->groups[3].out = true;
	result(m, 3, 250);
	result(m, 7, 550);
	assert_int_equal(msg_plan(m, NOW, dt_sched(RETRY)), MSG_PLAN_UPDATE);
	assert_int_equal(dt_write_fill(f->q, m, msg_fill_final), 0);
	assert_int_equal(dt_dump_sched(f->q, &d), 0);
	assert_int_equal(dt_dump_find(&d, &m->id, 3, &at), 3);
	assert_int_equal(at, -1);

	r = reload(f->q, &m->id);
	assert_int_equal(r->groups[3].disk_due, 0);
	for (unsigned g = 0; g < 3; g++)
		r->groups[g].out = true;
	for (unsigned i = 0; i < 8; i++)
		if (i % 4 != 3)
			result(r, i, i % 2 ? 550 : 250);
	assert_int_equal(msg_pending(r), 0);
	assert_int_equal(msg_plan(r, NOW, dt_sched(RETRY)), MSG_PLAN_DELETE);
	assert_true(r->delete);
	for (unsigned g = 0; g < 4; g++)
		assert_false(r->groups[g].out || r->groups[g].decided);
	assert_int_equal(dt_write_fill(f->q, r, msg_fill_final), 0);
	assert_int_equal(dt_dump_sched(f->q, &d), 0);
	assert_int_equal(dt_dump_find(&d, &m->id, 0, &at), 0);
	assert_int_equal(d.n, 2);
	assert_neighbour_untouched(f, &d);
	assert_int_equal(queue_get(f->q, &m->id, NULL, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(queue_count(f->q, &count), 0);
	assert_int_equal(count, 1);
	msg_free(r);
}

/* Groups out but no outcome at all (group 3 finished in an earlier round): MSG_PLAN_NONE,
 * dues, attempts and meta unchanged, the round's flags cleared. */
static void test_plan_nothing_decided(void **state)
{
	struct fix *f = *state;
	struct msg *m = f->m;
	uint8_t *before;
	size_t len;

	m->groups[3].out = true;
	result(m, 3, 250);
	result(m, 7, 250);
	assert_int_equal(msg_plan(m, NOW, dt_sched(RETRY)), MSG_PLAN_UPDATE);
	len = m->meta_len;
	before = malloc(len);
	assert_non_null(before);
	memcpy(before, m->meta, len);
	m->groups[0].out = m->groups[1].out = true;
	assert_int_equal(msg_plan(m, NOW, dt_sched(RETRY)), MSG_PLAN_NONE);
	assert_false(m->delete);
	for (unsigned g = 0; g < 4; g++) {
		assert_int_equal(m->env->dests[g].due, g == 3 ? 0 : dues4[g]);
		assert_int_equal(m->env->dests[g].attempts, 0);
		assert_false(m->groups[g].out);
	}
	assert_int_equal(m->meta_len, len);
	assert_memory_equal(m->meta, before, len);
	assert_int_equal(msg_next_due(m), D0);
	free(before);
}

/* A group out with nothing left pending (a unit with no recipients came back) loses its entry
 * even though nothing was decided in it. */
static void test_plan_out_group_without_pending(void **state)
{
	struct fix *f = *state;
	const uint64_t dues[2] = {D0, D1};
	struct msg *m = dt_msg_new(4, 3, 2, dues, 1); /* group 0: r0 r2; group 1: r1 */
	struct dt_dump d;
	int at;

	assert_non_null(m);
	assert_int_equal(dt_write_fill(f->q, m, msg_fill_put), 0);
	m->env->rcpts[1].state = QUEUE_RCPT_DELIVERED; /* finished before this round */
	m->groups[1].out = true;
	assert_int_equal(msg_plan(m, NOW, dt_sched(RETRY)), MSG_PLAN_UPDATE);
	assert_int_equal(m->env->dests[1].due, 0);
	assert_int_equal(m->env->dests[0].due, D0);
	assert_int_equal(dt_write_fill(f->q, m, msg_fill_final), 0);
	assert_int_equal(dt_dump_sched(f->q, &d), 0);
	assert_int_equal(dt_dump_find(&d, &m->id, 1, &at), 1);
	assert_int_equal(at, -1);
	assert_entry(&d, &m->id, 0, D0, 0);
	msg_free(m);
}

/* msg_next_due: the earliest non-zero due; 0 when no group has one. */
static void test_next_due(void **state)
{
	const uint64_t dues[4] = {0, 500, 300, 0};
	const uint64_t none[2] = {0, 0};
	struct msg *m = dt_msg_new(5, 4, 4, dues, 0), *z = dt_msg_new(6, 2, 2, none, 0);

	(void)state;
	assert_non_null(m);
	assert_non_null(z);
	assert_int_equal(msg_next_due(m), 300);
	m->env->dests[1].due = 299;
	assert_int_equal(msg_next_due(m), 299);
	assert_int_equal(msg_next_due(z), 0);
	msg_free(m);
	msg_free(z);
}

/* msg_group_rcpts: the pending recipients of exactly that group, in recipient order. */
static void test_group_rcpts(void **state)
{
	struct fix *f = *state;
	struct msg *m = f->m;
	unsigned idx[8];

	assert_int_equal(msg_group_rcpts(m, 1, idx), 2);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 5);
	m->groups[1].out = true;
	result(m, 1, 250);
	assert_int_equal(msg_group_rcpts(m, 1, idx), 1);
	assert_int_equal(idx[0], 5);
	result(m, 5, 451); /* still pending */
	assert_int_equal(msg_group_rcpts(m, 1, idx), 1);
	assert_int_equal(idx[0], 5);
	result(m, 5, 550);
	assert_int_equal(msg_group_rcpts(m, 1, idx), 0);
	assert_int_equal(msg_group_rcpts(m, 3, idx), 2);
	assert_int_equal(idx[0], 3);
	assert_int_equal(idx[1], 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fill_put_one_entry_per_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fill_put_skips_group_without_due, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plan_update_moves_decided_groups, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plan_second_round_from_disk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plan_all_final_deletes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plan_nothing_decided, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plan_out_group_without_pending, setup, teardown),
	    cmocka_unit_test(test_next_due),
	    cmocka_unit_test_setup_teardown(test_group_rcpts, setup, teardown),
	};

	return cmocka_run_group_tests_name("msg_round", tests, NULL, NULL);
}
