/* test_msg — unit tests for engine/daemon/msg.c: building a message from its parts and from
 * disk, recording per-recipient results, re-encoding (msg_plan) and counting what is pending.
 *
 * Why: msg->meta is what the commit thread writes and what the runner decodes after a restart.
 * If a result set in RAM does not survive msg_plan's re-encoding -> queue_env_decode exactly
 * (state, group, code, attempts, reply text, and each group's due and attempts), a restart
 * re-sends delivered mail or forgets a failure; so each test compares whole envelopes field by
 * field, and ASan checks the ownership rules (body taken, replies replaced, corrupt input
 * freed). The round bookkeeping itself (which sched entries move) is in test_msg_round.
 */
#include "engine/daemon/msg.h"
#include "tests/unit/daemon/daemon_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define T_DUE0	1712345679000ull
#define T_DUE1	1712345680000ull
#define T_NOW	1712345700000ull
#define T_RETRY 60000ull

static struct queue_rcpt test_rcpts[3] = {
    {.addr = "alice@example.org", .dest = 0, .last_reply = ""},
    {.addr = "bob@example.net", .dest = 1, .last_reply = ""},
    {.addr = "carol@example.org", .dest = 0, .last_reply = ""},
};

static struct queue_dest test_dests[2] = {
    {.name = "example.org", .due = T_DUE0, .attempts = 2},
    {.name = "example.net", .due = T_DUE1, .attempts = 0},
};

static const struct queue_env test_env = {
    .sender = "bounce@example.com",
    .created_ms = 1712345678901ull,
    .body_len = 11,
    .flags = QUEUE_ENV_8BITMIME,
    .nrcpt = 3,
    .rcpts = test_rcpts,
    .ndest = 2,
    .dests = test_dests,
};

static void assert_env_equal(const struct queue_env *a, const struct queue_env *b)
{
	assert_string_equal(a->sender, b->sender);
	assert_int_equal(a->created_ms, b->created_ms);
	assert_int_equal(a->body_len, b->body_len);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->nrcpt, b->nrcpt);
	for (uint32_t i = 0; i < a->nrcpt; i++) {
		assert_string_equal(a->rcpts[i].addr, b->rcpts[i].addr);
		assert_int_equal(a->rcpts[i].state, b->rcpts[i].state);
		assert_int_equal(a->rcpts[i].dest, b->rcpts[i].dest);
		assert_int_equal(a->rcpts[i].attempts, b->rcpts[i].attempts);
		assert_int_equal(a->rcpts[i].last_code, b->rcpts[i].last_code);
		assert_string_equal(a->rcpts[i].last_reply, b->rcpts[i].last_reply);
	}
	assert_int_equal(a->ndest, b->ndest);
	for (uint32_t g = 0; g < a->ndest; g++) {
		assert_string_equal(a->dests[g].name, b->dests[g].name);
		assert_int_equal(a->dests[g].due, b->dests[g].due);
		assert_int_equal(a->dests[g].attempts, b->dests[g].attempts);
	}
}

/* Decode m->meta and compare it with m->env. */
static void assert_meta_matches(const struct msg *m)
{
	struct queue_env *dec = NULL;

	assert_int_equal(queue_env_decode(m->meta, m->meta_len, &dec), 0);
	assert_env_equal(dec, m->env);
	queue_env_free(dec);
}

static struct msg *new_test_msg(void)
{
	struct queue_id id;
	char *body = strdup("Hello\r\n.\r\n");
	struct msg *m;

	assert_non_null(body);
	queue_id_make(&id, 1712345678901ull, 3, 42);
	m = msg_new(&id, &test_env, body, strlen(body));
	assert_non_null(m);
	return m;
}

/* msg_new: id, id string, body taken as is, envelope (with its groups) encoded and decoded
 * identically; each group's disk due is its envelope due; no round is open. */
static void test_new_encodes_and_decodes(void **state)
{
	struct msg *m = new_test_msg();
	char idstr[QUEUE_ID_STRLEN + 1];

	queue_id_format(&m->id, idstr);
	assert_string_equal(m->idstr, idstr);
	assert_int_equal(m->body_len, 10);
	assert_memory_equal(m->body, "Hello\r\n.\r\n", 10);
	assert_env_equal(m->env, &test_env);
	assert_meta_matches(m);
	assert_int_equal(m->meta_len, queue_env_encoded_len(&test_env));
	for (unsigned i = 0; i < 3; i++)
		assert_null(m->replies[i]);
	for (unsigned g = 0; g < 2; g++) {
		assert_int_equal(m->groups[g].disk_due, test_dests[g].due);
		assert_false(m->groups[g].out);
		assert_false(m->groups[g].decided);
	}
	assert_int_equal(msg_pending(m), 3);
	assert_int_equal(m->units_out, 0);
	msg_free(m);
}

/* Results for all three kinds of outcome, then msg_plan re-encodes: the decoded meta equals
 * m->env, and a message rebuilt from it (msg_from_disk) carries the same results, the groups'
 * new due times (as its disk dues) and attempts. */
static void test_results_reencode_round_trip(void **state)
{
	static const char r0[] = "250 2.0.0 Ok: queued as 4Xyz";
	static const char r1[] = "550 5.1.1 <bob@example.net>: no such user";
	static const char r2[] = "451 4.7.1 greylisted, try later";
	struct msg *m = new_test_msg(), *d;
	char *body = strdup("b");
	int err = 0;

	m->groups[0].out = m->groups[1].out = true;
	msg_set_result(m, 0, QUEUE_RCPT_DELIVERED, 250, r0, strlen(r0));
	msg_set_result(m, 1, QUEUE_RCPT_FAILED, 550, r1, strlen(r1));
	msg_set_result(m, 2, QUEUE_RCPT_PENDING, 421, "421 first", 9);
	msg_set_result(m, 2, QUEUE_RCPT_PENDING, 451, r2, strlen(r2)); /* replaces the reply */
	assert_true(m->groups[0].decided && m->groups[1].decided);
	assert_int_equal(msg_pending(m), 1);
	assert_int_equal(m->env->rcpts[0].attempts, 1);
	assert_int_equal(m->env->rcpts[2].attempts, 2);
	assert_string_equal(m->env->rcpts[1].last_reply, r1);
	assert_string_equal(m->env->rcpts[2].last_reply, r2);
	assert_int_equal(msg_plan(m, T_NOW, dt_sched(T_RETRY)), MSG_PLAN_UPDATE);
	assert_int_equal(m->env->dests[0].due, T_NOW + T_RETRY);
	assert_int_equal(m->env->dests[0].attempts, 3);
	assert_int_equal(m->env->dests[1].due, 0);
	assert_meta_matches(m);

	d = msg_from_disk(&m->id, m->meta, m->meta_len, body, 1, &err);
	assert_non_null(d);
	assert_env_equal(d->env, m->env);
	assert_int_equal(d->env->rcpts[2].last_code, 451);
	assert_int_equal(d->env->rcpts[1].state, QUEUE_RCPT_FAILED);
	assert_int_equal(d->groups[0].disk_due, T_NOW + T_RETRY);
	assert_int_equal(d->groups[1].disk_due, 0);
	assert_int_equal(d->accepted_us, test_env.created_ms * 1000);
	assert_int_equal(msg_pending(d), 1);
	assert_int_equal(d->body_len, 1);
	msg_free(d);
	msg_free(m);
}

/* A NULL reply is recorded as "", and the result survives the round trip. */
static void test_null_reply_is_empty(void **state)
{
	struct msg *m = new_test_msg();

	m->groups[1].out = true;
	msg_set_result(m, 1, QUEUE_RCPT_DELIVERED, 250, NULL, 0);
	assert_string_equal(m->env->rcpts[1].last_reply, "");
	assert_int_equal(msg_plan(m, T_NOW, dt_sched(T_RETRY)), MSG_PLAN_UPDATE);
	assert_meta_matches(m);
	assert_int_equal(msg_pending(m), 2);
	msg_free(m);
}

/* Corrupt stored meta: NULL, the decode error, and the body freed (ASan: no leak). */
static void test_from_disk_corrupt(void **state)
{
	static const uint8_t junk[] = {0xff, 0x00, 0x13, 0x37};
	struct queue_id id;
	char *body = strdup("body");
	int err = 0;

	queue_id_make(&id, 1, 0, 1);
	assert_null(msg_from_disk(&id, junk, sizeof(junk), body, 4, &err));
	assert_true(err == -EBADMSG || err == -EPROTO);
}

/* An envelope whose recipient names a group that does not exist does not encode: msg_new
 * returns NULL and the caller still owns the body (freed here; ASan: no double free). */
static void test_new_refuses_bad_group(void **state)
{
	struct queue_rcpt rc = {.addr = "a@b.example", .dest = 2, .last_reply = ""};
	struct queue_env env = test_env;
	struct queue_id id;
	char *body = strdup("body");

	env.nrcpt = 1;
	env.rcpts = &rc;
	queue_id_make(&id, 7, 0, 7);
	assert_null(msg_new(&id, &env, body, 4));
	free(body);
}

/* No recipients and no groups: nothing pending, no due, and msg_free copes. */
static void test_no_recipients(void **state)
{
	struct queue_env env = {.sender = "", .nrcpt = 0};
	struct queue_id id;
	struct msg *m;

	queue_id_make(&id, 5, 0, 5);
	m = msg_new(&id, &env, NULL, 0);
	assert_non_null(m);
	assert_int_equal(msg_pending(m), 0);
	assert_int_equal(msg_next_due(m), 0);
	assert_string_equal(m->env->sender, "");
	msg_free(m);
	msg_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_encodes_and_decodes),
	    cmocka_unit_test(test_results_reencode_round_trip),
	    cmocka_unit_test(test_null_reply_is_empty),
	    cmocka_unit_test(test_from_disk_corrupt),
	    cmocka_unit_test(test_new_refuses_bad_group),
	    cmocka_unit_test(test_no_recipients),
	};

	return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
