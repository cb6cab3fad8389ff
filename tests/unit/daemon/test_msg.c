/* test_msg — unit tests for engine/daemon/msg.c: building a message from its parts and from
 * disk, recording per-recipient results, re-encoding and counting what is still pending.
 *
 * Why: msg->meta is what the commit thread writes and what the runner decodes after a restart.
 * If a result set in RAM does not survive msg_reencode -> queue_env_decode exactly (state, code,
 * attempts, reply text), a restart re-sends delivered mail or forgets a failure; so each test
 * compares whole envelopes field by field, and ASan checks the ownership rules (body taken,
 * replies replaced, corrupt input freed).
 */
#include "engine/daemon/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static struct queue_rcpt test_rcpts[3] = {
    {.addr = "alice@example.org", .last_reply = ""},
    {.addr = "bob@example.net", .last_reply = ""},
    {.addr = "carol@example.com", .last_reply = ""},
};

static const struct queue_env test_env = {
    .sender = "bounce@example.com",
    .created_ms = 1712345678901ull,
    .body_len = 11,
    .flags = QUEUE_ENV_8BITMIME,
    .attempts = 2,
    .nrcpt = 3,
    .rcpts = test_rcpts,
};

static void assert_env_equal(const struct queue_env *a, const struct queue_env *b)
{
	assert_string_equal(a->sender, b->sender);
	assert_int_equal(a->created_ms, b->created_ms);
	assert_int_equal(a->body_len, b->body_len);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->nrcpt, b->nrcpt);
	for (uint32_t i = 0; i < a->nrcpt; i++) {
		assert_string_equal(a->rcpts[i].addr, b->rcpts[i].addr);
		assert_int_equal(a->rcpts[i].state, b->rcpts[i].state);
		assert_int_equal(a->rcpts[i].attempts, b->rcpts[i].attempts);
		assert_int_equal(a->rcpts[i].last_code, b->rcpts[i].last_code);
		assert_string_equal(a->rcpts[i].last_reply, b->rcpts[i].last_reply);
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
	m = msg_new(&id, &test_env, body, strlen(body), 1712345679000ull);
	assert_non_null(m);
	return m;
}

/* msg_new: id, id string, due, body taken as is, envelope encoded and decoded identically. */
static void test_new_encodes_and_decodes(void **state)
{
	struct msg *m = new_test_msg();
	char idstr[QUEUE_ID_STRLEN + 1];

	queue_id_format(&m->id, idstr);
	assert_string_equal(m->idstr, idstr);
	assert_int_equal(m->due, 1712345679000ull);
	assert_int_equal(m->body_len, 10);
	assert_memory_equal(m->body, "Hello\r\n.\r\n", 10);
	assert_env_equal(m->env, &test_env);
	assert_meta_matches(m);
	assert_int_equal(m->meta_len, queue_env_encoded_len(&test_env));
	for (unsigned i = 0; i < 3; i++)
		assert_null(m->replies[i]);
	assert_int_equal(msg_pending(m), 3);
	msg_free(m);
}

/* Results for all three kinds of outcome, then reencode: the decoded meta equals m->env, and
 * a message rebuilt from it (msg_from_disk) carries the same results. */
static void test_results_reencode_round_trip(void **state)
{
	static const char r0[] = "250 2.0.0 Ok: queued as 4Xyz";
	static const char r1[] = "550 5.1.1 <bob@example.net>: no such user";
	static const char r2[] = "451 4.7.1 greylisted, try later";
	struct msg *m = new_test_msg(), *d;
	char *body = strdup("b");
	int err = 0;

	msg_set_result(m, 0, QUEUE_RCPT_DELIVERED, 250, r0, strlen(r0));
	msg_set_result(m, 1, QUEUE_RCPT_FAILED, 550, r1, strlen(r1));
	msg_set_result(m, 2, QUEUE_RCPT_PENDING, 421, "421 first", 9);
	msg_set_result(m, 2, QUEUE_RCPT_PENDING, 451, r2, strlen(r2)); /* replaces the reply */
	m->env->attempts++;
	assert_int_equal(msg_pending(m), 1);
	assert_int_equal(m->env->rcpts[0].attempts, 1);
	assert_int_equal(m->env->rcpts[2].attempts, 2);
	assert_string_equal(m->env->rcpts[1].last_reply, r1);
	assert_string_equal(m->env->rcpts[2].last_reply, r2);
	assert_int_equal(msg_reencode(m), 0);
	assert_meta_matches(m);

	d = msg_from_disk(&m->id, 77, m->meta, m->meta_len, body, 1, &err);
	assert_non_null(d);
	assert_env_equal(d->env, m->env);
	assert_int_equal(d->env->attempts, 3);
	assert_int_equal(d->env->rcpts[2].last_code, 451);
	assert_int_equal(d->due, 77);
	assert_int_equal(d->accepted_us, test_env.created_ms * 1000);
	assert_int_equal(msg_pending(d), 1);
	msg_free(d);
	msg_free(m);
}

/* A NULL reply is recorded as "", and the result survives the round trip. */
static void test_null_reply_is_empty(void **state)
{
	struct msg *m = new_test_msg();

	msg_set_result(m, 1, QUEUE_RCPT_DELIVERED, 250, NULL, 0);
	assert_string_equal(m->env->rcpts[1].last_reply, "");
	assert_int_equal(msg_reencode(m), 0);
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
	assert_null(msg_from_disk(&id, 0, junk, sizeof(junk), body, 4, &err));
	assert_true(err == -EBADMSG || err == -EPROTO);
}

/* No recipients: nothing pending, and msg_free copes. */
static void test_no_recipients(void **state)
{
	struct queue_env env = {.sender = "", .nrcpt = 0};
	struct queue_id id;
	struct msg *m;

	queue_id_make(&id, 5, 0, 5);
	m = msg_new(&id, &env, NULL, 0, 0);
	assert_non_null(m);
	assert_int_equal(msg_pending(m), 0);
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
	    cmocka_unit_test(test_no_recipients),
	};

	return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
