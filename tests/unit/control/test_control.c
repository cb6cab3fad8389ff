/* test_control — `riptidectl queue ...` against a control server (ctl_start) on a real RocksDB
 * queue: every command's output for a person and as JSON (parsed by Python's json), the
 * filters of list, hostile envelope strings, the actions' effect in the queue, exit codes, and
 * the protocol's refusals.
 *
 * Why: this is the operator's view of the queue while riptide runs; what is listed must be
 * what the queue holds, what an action reports must be what happened to the queue, and no
 * string from an envelope may break the output (a forged status line, a broken JSON line).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "tests/unit/control/ctl_fx.h"

#define RUN(f, ...) cfx_run((f), (const char *const[]){__VA_ARGS__, NULL})

#define HOUR 3600000ull
#define MIN  60000ull

static void assert_has(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' not in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		fail_msg("'%s' unexpectedly in:\n%s", needle, hay);
}

/* The line of s that holds needle, as an index (fails if none). */
static size_t line_of(const char *s, const char *needle)
{
	const char *p = strstr(s, needle);
	size_t n = 0;

	if (!p)
		fail_msg("'%s' not in:\n%s", needle, s);
	for (; s < p; s++)
		n += *s == '\n';
	return n;
}

/* ---- summary ---- */

/* Totals and one row per destination with pending recipients, messages descending; a
 * suspended destination says so; JSON has the same numbers. */
static void test_summary(void **state)
{
	struct cfx *f = *state;
	uint64_t due = cfx_now() + 10 * MIN;

	cfx_simple(f, 1, "alice@src.test", 2 * HOUR, 1000,
		   (const char *const[]){"x@a.test", "y@a.test", NULL}, due);
	cfx_simple(f, 2, "bob@src.test", HOUR, 2000,
		   (const char *const[]){"z@a.test", "w@b.test", NULL}, due);
	cfx_simple(f, 3, "", 10 * MIN, 500, (const char *const[]){"v@a.test", NULL}, due);
	assert_int_equal(RUN(f, "queue", "suspend", "b.test"), 0);
	assert_has(f->out, "suspended b.test");

	assert_int_equal(RUN(f, "queue", "summary"), 0);
	assert_has(f->out, "3 messages, 5 recipients, 3.4K bytes, 2 destinations");
	assert_true(line_of(f->out, "a.test") < line_of(f->out, "b.test"));
	assert_has(f->out, "       3        4     3.4K  2h0m      in 9m");
	assert_has(f->out, "       1        1     2.0K  1h0m      in 9m");
	assert_has(f->out, "suspended b.test");
	assert_has(f->out, "active    a.test");

	assert_int_equal(RUN(f, "queue", "--json", "summary"), 0);
	assert_int_equal(cfx_lines(f->out), 3);
	assert_int_equal(
	    cfx_python(f,
		       "import json,sys\n"
		       "L=[json.loads(l) for l in open(sys.argv[1])]\n"
		       "assert L[0]=={'type':'totals','messages':3,'recipients':5,'bytes':3500,"
		       "'destinations':2,'counting':False}, L[0]\n"
		       "a,b=L[1],L[2]\n"
		       "assert (a['type'],a['name'],a['messages'],a['recipients'],a['bytes'],"
		       "a['suspended'])==('destination','a.test',3,4,3500,False), a\n"
		       "assert (b['name'],b['messages'],b['recipients'],b['suspended'])=="
		       "('b.test',1,1,True), b\n"
		       "assert a['oldest_ms']<b['oldest_ms'] and a['next_ms']==b['next_ms']>0\n"),
	    0);
}

/* A running backoff: the STATE column (widened to fit) says backoff:suspend(RULE) with the
 * time left, or backoff:reduce FACTOR(RULE); the operator's suspension wins; a destination
 * with a backoff and nothing queued has a row; JSON carries the backoff object or null; a
 * hostile rule name is escaped in both. */
static void test_summary_backoff(void **state)
{
	struct cfx *f = *state;
	uint64_t now = cfx_now();

	cfx_simple(f, 1, "s@src.test", HOUR, 100, (const char *const[]){"x@a.test", NULL},
		   now + HOUR);
	cfx_simple(f, 2, "s@src.test", HOUR, 100,
		   (const char *const[]){"x@b.test", "y@b.test", NULL}, now + HOUR);
	cfx_simple(f, 3, "s@src.test", HOUR, 100, (const char *const[]){"x@c.test", NULL},
		   now + HOUR);
	assert_int_equal(RUN(f, "queue", "suspend", "c.test"), 0);
	strcpy(f->eng.bo_dest[0], "a.test");
	f->eng.bo[0] =
	    (struct ctl_backoff){"suspend", "gmail", "", cfx_now() + 4 * MIN + 12900, 1.0};
	strcpy(f->eng.bo_dest[1], "idle.test");
	f->eng.bo[1] = (struct ctl_backoff){"reduce", "out\"look\n", "127.0.0.2",
					    cfx_now() + 3 * MIN + 900, 0.5};
	assert_int_equal(RUN(f, "queue", "summary"), 0);
	assert_has(f->out, "4 destinations");
	assert_has(f->out, " backoff:suspend(gmail) 4m12s left           a.test\n");
	assert_has(f->out, " backoff:reduce 0.50(out\"look\\x0a) 3m0s left idle.test\n");
	assert_has(f->out, " active                                      b.test\n");
	assert_has(f->out, " suspended                                   c.test\n");
	assert_has(f->out, "       0        0        0  -         -         backoff:reduce");
	assert_has(f->out, " STATE                                       DESTINATION\n");
	assert_int_equal(RUN(f, "queue", "--json", "summary"), 0);
	assert_int_equal(
	    cfx_python(f,
		       "import json,sys\n"
		       "L={r.get('name'):r for r in map(json.loads,open(sys.argv[1]))}\n"
		       "a,i=L['a.test']['backoff'],L['idle.test']['backoff']\n"
		       "assert (a['action'],a['rule'],a['source'],a['factor'])=="
		       "('suspend','gmail','',1), a\n"
		       "assert a['until_ms']-L['a.test']['oldest_ms']>3600000, a\n"
		       "assert (i['action'],i['rule'],i['source'],i['factor'])=="
		       "('reduce','out\"look\\n','127.0.0.2',0.5), i\n"
		       "assert L['idle.test']['messages']==0, L\n"
		       "assert L['b.test']['backoff'] is None and L['c.test']['backoff'] is None\n"
		       "assert L['c.test']['suspended'] is True\n"),
	    0);
}

/* ---- reload ---- */

/* reload: the engine's report printed, exit 0; a refusal: exit 1 with the reason (file:line)
 * on stderr; a report longer than 1 KiB arrives whole; JSON; no daemon: exit 2. */
static void test_reload(void **state)
{
	struct cfx *f = *state;
	char want[1200];

	snprintf(f->eng.reload_msg, sizeof(f->eng.reload_msg),
		 "reloaded /etc/riptide.conf: outgoing on, 2 routes");
	assert_int_equal(RUN(f, "reload"), 0);
	assert_string_equal(f->out, "reloaded /etc/riptide.conf: outgoing on, 2 routes\n");
	assert_int_equal(f->eng.calls, 1);
	assert_int_equal(RUN(f, "--json", "reload"), 0);
	assert_int_equal(cfx_python(f, "import json,sys\nL=[json.loads(l) for l in "
				       "open(sys.argv[1])]\nassert L==[{'action':'reloaded',"
				       "'message':'reloaded /etc/riptide.conf: outgoing on, 2 "
				       "routes'}], L\n"),
			 0);
	f->eng.reload_ret = -EINVAL;
	snprintf(f->eng.reload_msg, sizeof(f->eng.reload_msg),
		 "reload failed, running configuration kept: /etc/riptide.conf:7: unknown key");
	assert_int_equal(RUN(f, "reload"), 1);
	assert_string_equal(f->out, "");
	assert_has(f->err, "riptidectl: reload failed, running configuration kept: "
			   "/etc/riptide.conf:7: unknown key\n");
	f->eng.reload_ret = 0;
	memset(want, 'x', 1100);
	memcpy(want, "reloaded ", 9);
	want[1100] = '\0';
	snprintf(f->eng.reload_msg, sizeof(f->eng.reload_msg), "%s", want);
	assert_int_equal(RUN(f, "reload"), 0);
	assert_int_equal(strlen(f->out), 1101);
	assert_int_equal(RUN(f, "reload", "now"), 2);
	assert_int_equal(f->eng.calls, 4);
	assert_int_equal(
	    cfx_run_sock(f, "/nonexistent/ctl.sock", (const char *const[]){"reload", NULL}), 2);
	assert_has(f->err, "is riptide running?");
}

/* ---- list ---- */

/* Five messages for the filters (creation order = id order): returns their ids in ids[]. */
static void list_fill(struct cfx *f, struct queue_id ids[5])
{
	uint64_t due = cfx_now() + HOUR;
	struct queue_rcpt r[2] = {{.addr = "x@d.test", .state = QUEUE_RCPT_DELIVERED, .dest = 0},
				  {.addr = "y@a.test", .dest = 1}};
	struct queue_dest d[2] = {{.name = "d.test"}, {.name = "a.test", .due = due}};
	struct queue_env e = {.sender = "frank@src.test",
			      .created_ms = cfx_now() - MIN,
			      .body_len = 100,
			      .nrcpt = 2,
			      .rcpts = r,
			      .ndest = 2,
			      .dests = d};

	ids[0] = cfx_simple(f, 1, "alice@Src.Test", 3 * HOUR, 1000,
			    (const char *const[]){"x@a.test", "y@b.test", NULL}, due);
	ids[1] = cfx_simple(f, 2, "bob@src.test", 2 * HOUR, 2000,
			    (const char *const[]){"Carol@A.Test", NULL}, due);
	ids[2] =
	    cfx_simple(f, 3, "", 30 * MIN, 300, (const char *const[]){"dave@c.test", NULL}, due);
	ids[3] = cfx_simple(f, 4, "eve@other.test", 5 * MIN, 400,
			    (const char *const[]){"x@a.test", NULL}, due);
	ids[4] = cfx_put(f, &e, 5);
}

/* The line of out listing id holds each of tokens; the last token ends the line. */
static void row_has(const char *out, const struct queue_id *id, const char *const *tokens)
{
	const char *p = strstr(out, cfx_id_hex(id)), *end;
	char line[512];

	assert_non_null(p);
	end = strchr(p, '\n');
	assert_non_null(end);
	assert_true((size_t)(end - p) < sizeof(line));
	memcpy(line, p, (size_t)(end - p));
	line[end - p] = '\0';
	for (size_t i = 0; tokens[i]; i++) {
		assert_has(line, tokens[i]);
		if (!tokens[i + 1])
			assert_string_equal(line + strlen(line) - strlen(tokens[i]), tokens[i]);
	}
}

/* list with args lists exactly the messages of ids whose bit is set in want, in order. */
static void assert_list(struct cfx *f, const struct queue_id ids[5], unsigned want,
			const char *const *args)
{
	const char *argv[16] = {"queue", "list"};
	char trailer[32];
	size_t n = 2, nwant = 0, prev = 0;

	while (*args)
		argv[n++] = *args++;
	argv[n] = NULL;
	assert_int_equal(cfx_run(f, argv), 0);
	for (size_t i = 0; i < 5; i++) {
		if (!(want & (1u << i))) {
			assert_lacks(f->out, cfx_id_hex(&ids[i]));
			continue;
		}
		assert_true(line_of(f->out, cfx_id_hex(&ids[i])) > prev);
		prev = line_of(f->out, cfx_id_hex(&ids[i]));
		nwant++;
	}
	snprintf(trailer, sizeof(trailer), "\n%zu messages\n", nwant);
	assert_has(f->out, trailer);
	assert_int_equal(cfx_lines(f->out), nwant + 2);
}

#define LIST(f, ids, want, ...) assert_list((f), (ids), (want), (const char *const[]){__VA_ARGS__})

/* list for a person: a header, one row per message in creation order (id, age, size,
 * pending/total recipients, next attempt, sender; "<>" for the null sender) and a trailer. */
static void test_list_text(void **state)
{
	struct cfx *f = *state;
	struct queue_id ids[5];

	list_fill(f, ids);
	LIST(f, ids, 0x1f, NULL);
	assert_has(f->out,
		   "ID                               AGE         SIZE   RCPTS  NEXT      SENDER");
	row_has(
	    f->out, &ids[0],
	    (const char *const[]){" 3h0m ", " 1000 ", " 2/2 ", " in 59m", " alice@Src.Test", NULL});
	row_has(f->out, &ids[1],
		(const char *const[]){" 2h0m ", " 2.0K ", " 1/1 ", " bob@src.test", NULL});
	row_has(f->out, &ids[2], (const char *const[]){" 30m0s ", " 300 ", " 1/1 ", " <>", NULL});
	row_has(f->out, &ids[4], (const char *const[]){" 1m0s ", " 1/2 ", " frank@src.test", NULL});
}

/* Every filter, case-insensitive on domains and addresses, alone and combined; a destination
 * matches only while it has pending recipients; --limit stops in creation order. */
static void test_list_filters(void **state)
{
	struct cfx *f = *state;
	struct queue_id ids[5];

	list_fill(f, ids);
	LIST(f, ids, 0x1b, "--destination", "A.TEST", NULL);
	LIST(f, ids, 0x00, "--destination", "d.test", NULL);
	LIST(f, ids, 0x13, "--sender", "src.test", NULL);
	LIST(f, ids, 0x02, "--sender", "BOB@src.test", NULL);
	LIST(f, ids, 0x04, "--sender", "<>", NULL);
	LIST(f, ids, 0x02, "--recipient", "carol@a.test", NULL);
	LIST(f, ids, 0x1b, "--recipient", "a.TEST", NULL);
	LIST(f, ids, 0x10, "--recipient", "x@D.test", NULL);
	LIST(f, ids, 0x03, "--older-than", "1h", NULL);
	LIST(f, ids, 0x07, "--older-than", "1200s", NULL);
	LIST(f, ids, 0x01, "--older-than", "1h", "--destination", "b.test", NULL);
	LIST(f, ids, 0x03, "--limit", "2", NULL);
	LIST(f, ids, 0x03, "--sender", "src.test", "--limit", "2", "--destination", "a.test", NULL);
	LIST(f, ids, 0x00, "--sender", "nobody@nowhere.test", NULL);
	assert_int_equal(RUN(f, "queue", "list", "--older-than", "5x"), 2);
	assert_int_equal(RUN(f, "queue", "list", "--limit", "0"), 2);
}

/* list --json: one object per line with the same data, checked by Python's json. */
static void test_list_json(void **state)
{
	struct cfx *f = *state;
	struct queue_id ids[5];

	list_fill(f, ids);
	assert_int_equal(RUN(f, "queue", "list", "--json", "--destination", "a.test"), 0);
	assert_int_equal(
	    cfx_python(f, "import json,sys\n"
			  "L=[json.loads(l) for l in open(sys.argv[1])]\n"
			  "assert [m['sender'] for m in L]==['alice@Src.Test','bob@src.test',"
			  "'eve@other.test','frank@src.test'], L\n"
			  "m=L[0]\n"
			  "assert (m['size'],m['pending'],m['recipients'],m['destinations'])=="
			  "(1000,2,2,['a.test','b.test']), m\n"
			  "assert 10790<=m['age_s']<=10810 and m['next_ms']>m['created_ms']\n"
			  "assert L[3]['pending']==1 and L[3]['destinations']==['a.test']\n"
			  "assert all(len(m['id'])==32 for m in L)\n"),
	    0);
}

/* A hostile envelope: the strings an envelope may hold (not only what smtpd accepted: a
 * corrupt or hostile record) with quotes, backslashes, CR, LF, ESC, DEL, a C1 control, valid
 * and invalid UTF-8, and a would-be status line. */
static const char hostile_sender[] =
    "q\"b\\s\nD x\rOK fake\x1b[31m\x7f\xc2\x85\xc3\xa9\xff@evil.test";
static struct queue_rcpt hostile_rcpt = {.addr = "r\"\n@a.test",
					 .last_reply = "line1\r\nERR EIO forged\x01",
					 .last_code = 451,
					 .last_mta = "mx\t1"};
static struct queue_dest hostile_dest = {.name = "a.test\n"};
static struct queue_env hostile_env = {.sender = (char *)hostile_sender,
				       .envid = "e\"nv",
				       .nrcpt = 1,
				       .rcpts = &hostile_rcpt,
				       .ndest = 1,
				       .dests = &hostile_dest};

/* What Python's json must decode from the hostile message (an invalid byte as the code point
 * of its value); recipients are checked when the object is show's. */
static const char hostile_py[] =
    "import json,sys\n"
    "L=[json.loads(l) for l in open(sys.argv[1],encoding='utf-8')]\n"
    "assert len(L)==1, L\n"
    "m=L[0]\n"
    "exp='q\"b\\\\s\\nD x\\rOK fake\\x1b[31m\\x7f\\x85\\xe9\\xff@evil.test'\n"
    "assert m['sender']==exp, repr(m['sender'])\n"
    "if 'flags' in m:\n"
    "  r=m['recipients'][0]\n"
    "  assert r['address']=='r\"\\n@a.test' and r['last_mta']=='mx\\t1', r\n"
    "  assert r['last_reply']=='line1\\r\\nERR EIO forged\\x01', r\n"
    "  assert r['destination']=='a.test\\n' and m['envid']=='e\"nv', m\n";

static struct queue_id hostile_put(struct cfx *f)
{
	hostile_env.created_ms = cfx_now() - MIN;
	hostile_dest.due = cfx_now() + MIN;
	return cfx_put(f, &hostile_env, 1);
}

/* list: text output escapes controls, backslash and invalid UTF-8 and forges no status line
 * (exactly header, row, trailer; no raw CR or ESC); JSON is valid UTF-8 and decodes to the
 * exact string. */
static void test_list_hostile_strings(void **state)
{
	struct cfx *f = *state;

	hostile_put(f);
	assert_int_equal(RUN(f, "queue", "list"), 0);
	assert_int_equal(cfx_lines(f->out), 3);
	assert_has(f->out, "q\"b\\\\s\\x0aD x\\x0dOK fake\\x1b[31m\\x7f\\xc2\\x85\xc3\xa9\\xff"
			   "@evil.test\n");
	assert_has(f->out, "\n1 messages\n");
	assert_null(strchr(f->out, '\r'));
	assert_null(strchr(f->out, '\x1b'));
	assert_int_equal(RUN(f, "queue", "list", "--json"), 0);
	assert_int_equal(cfx_python(f, hostile_py), 0);
}

/* show: the same for the recipient's address, last reply, MTA, group name and ENVID. */
static void test_show_hostile_strings(void **state)
{
	struct cfx *f = *state;
	struct queue_id id = hostile_put(f);

	assert_int_equal(RUN(f, "queue", "show", "--json", cfx_id_hex(&id)), 0);
	assert_int_equal(cfx_lines(f->out), 1);
	assert_int_equal(cfx_python(f, hostile_py), 0);
	assert_int_equal(RUN(f, "queue", "show", cfx_id_hex(&id)), 0);
	assert_has(f->out, "recipient       r\"\\x0a@a.test\n");
	assert_has(f->out, "  last reply    451 line1\\x0d\\x0aERR EIO forged\\x01\n");
	assert_has(f->out, "  last mta      mx\\x091\n");
	assert_has(f->out, "destination     a.test\\x0a\n");
	assert_null(strchr(f->out, '\r'));
}

/* ---- show ---- */

/* A message with every envelope field set and one recipient in each state (times are filled
 * in by show_put). */
static struct queue_rcpt show_rcpts[3] = {
    {.addr = "bob@a.test",
     .attempts = 2,
     .last_code = 451,
     .enh = {4, 7, 1},
     .last_reply = "greylisted, try later",
     .last_mta = "mx1.a.test",
     .notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY,
     .orcpt = "rfc822;bob@a.test"},
    {.addr = "carol@b.test",
     .state = QUEUE_RCPT_DELIVERED,
     .dest = 1,
     .attempts = 1,
     .last_code = 250,
     .enh = {2, 0, 0},
     .last_reply = "ok queued",
     .last_mta = "mx.b.test"},
    {.addr = "dan@b.test",
     .state = QUEUE_RCPT_FAILED,
     .dest = 1,
     .attempts = 1,
     .last_code = 550,
     .enh = {5, 1, 1},
     .last_reply = "no such user"},
};
static struct queue_dest show_dests[2] = {{.name = "a.test", .attempts = 2},
					  {.name = "b.test", .attempts = 1}};
static struct queue_env show_env = {.sender = "alice@src.test",
				    .body_len = 4321,
				    .flags = QUEUE_ENV_8BITMIME | QUEUE_ENV_SMTPUTF8,
				    .envid = "ENV123",
				    .ret = QUEUE_RET_FULL,
				    .nrcpt = 3,
				    .rcpts = show_rcpts,
				    .ndest = 2,
				    .dests = show_dests};

/* Queue the show message: created an hour before now, bob's last attempt a minute before,
 * carol's two; group a.test due at due, b.test final. */
static struct queue_id show_put(struct cfx *f, uint64_t now, uint64_t due)
{
	show_env.created_ms = now - HOUR;
	show_rcpts[0].last_ms = now - MIN;
	show_rcpts[1].last_ms = now - 2 * MIN;
	show_dests[0].due = due;
	return cfx_put(f, &show_env, 7);
}

/* show for a person: every envelope field, each recipient with its state, last reply with
 * the enhanced code, MTA, time, NOTIFY, ORCPT, and each group's next attempt; an unknown id
 * is "no message" with exit 1, a malformed one exit 2. */
static void test_show_text(void **state)
{
	struct cfx *f = *state;
	uint64_t now = cfx_now();
	struct queue_id id = show_put(f, now, now + 10 * MIN), other;

	assert_int_equal(RUN(f, "queue", "show", cfx_id_hex(&id)), 0);
	assert_has(f->out, "id              ");
	assert_has(f->out, cfx_id_hex(&id));
	assert_has(f->out,
		   "(1h0m ago)\nsize            4321 bytes\nsender          alice@src.test\n"
		   "flags           8BITMIME SMTPUTF8\nenvid           ENV123\n"
		   "ret             FULL\nrecipient       bob@a.test\n"
		   "  state         pending\n  destination   a.test\n  attempts      2\n"
		   "  last reply    451 4.7.1 greylisted, try later\n"
		   "  last mta      mx1.a.test\n  last attempt  ");
	assert_has(f->out, " ago)\n  notify        FAILURE DELAY\n"
			   "  orcpt         rfc822;bob@a.test\nrecipient       carol@b.test\n"
			   "  state         delivered\n  destination   b.test\n");
	assert_has(f->out, "  state         failed\n");
	assert_has(f->out, "  last reply    550 5.1.1 no such user\n");
	assert_has(f->out, "destination     a.test\n  attempts      2\n  next attempt  ");
	assert_has(f->out, "(in 9m");
	assert_has(f->out, "destination     b.test\n  attempts      1\n"
			   "  next attempt  none (all final)\n");
	queue_id_make(&other, now, 0, 99);
	assert_int_equal(RUN(f, "queue", "show", cfx_id_hex(&other)), 1);
	assert_has(f->err, "no message ");
	assert_int_equal(RUN(f, "queue", "show", "not-an-id"), 2);
}

/* show --json: one object with the same fields, checked by Python's json. */
static void test_show_json(void **state)
{
	struct cfx *f = *state;
	uint64_t now = cfx_now(), due = now + 10 * MIN;
	struct queue_id id = show_put(f, now, due);
	char py[1024];

	assert_int_equal(RUN(f, "queue", "show", "--json", cfx_id_hex(&id)), 0);
	assert_int_equal(cfx_lines(f->out), 1);
	snprintf(
	    py, sizeof(py),
	    "import json,sys\n"
	    "d=json.loads(open(sys.argv[1]).read())\n"
	    "assert (d['id'],d['sender'],d['size'],d['flags'],d['envid'],d['ret'])==("
	    "'%s','alice@src.test',4321,['8BITMIME','SMTPUTF8'],'ENV123','FULL'), d\n"
	    "r=d['recipients']\n"
	    "assert [x['state'] for x in r]==['pending','delivered','failed'], r\n"
	    "assert (r[0]['last_code'],r[0]['last_enh'],r[0]['notify'],r[0]['orcpt'],"
	    "r[0]['last_mta'],r[0]['attempts'],r[0]['destination'],r[0]['last_ms'])==(451,"
	    "'4.7.1',['FAILURE','DELAY'],'rfc822;bob@a.test','mx1.a.test',2,'a.test',%llu),r[0]\n"
	    "assert r[2]['last_enh']=='5.1.1' and r[2]['notify']==[] and r[2]['orcpt']==''\n"
	    "assert [(x['name'],x['attempts'],x['next_ms']) for x in d['destinations']]=="
	    "[('a.test',2,%llu),('b.test',1,0)]\n",
	    cfx_id_hex(&id), (unsigned long long)(now - MIN), (unsigned long long)due);
	assert_int_equal(cfx_python(f, py), 0);
}

/* ---- actions ---- */

/* The sched entries of message id (any due). */
static int count_sched_cb(void *arg, uint64_t due, const struct queue_id *id, unsigned dest,
			  const void *sval, size_t len)
{
	struct {
		struct queue_id id;
		size_t n;
		uint64_t max_due;
	} *c = arg;

	if (memcmp(id->b, c->id.b, QUEUE_ID_LEN) == 0) {
		c->n++;
		c->max_due = due > c->max_due ? due : c->max_due;
	}
	return 0;
}

static size_t sched_of(struct cfx *f, const struct queue_id *id, uint64_t *max_due)
{
	struct {
		struct queue_id id;
		size_t n;
		uint64_t max_due;
	} c = {.id = *id};

	assert_int_equal(queue_scan(f->q, 0, UINT64_MAX, count_sched_cb, &c), 0);
	if (max_due)
		*max_due = c.max_due;
	return c.n;
}

/* delete removes the message and its sched entries (no notice: nothing bounced); a second
 * delete is exit 1; bounce goes through the engine (the notice is its job) and removes it. */
static void test_delete_bounce(void **state)
{
	struct cfx *f = *state;
	struct queue_id a =
	    cfx_simple(f, 1, "s@src.test", MIN, 10,
		       (const char *const[]){"x@a.test", "y@b.test", NULL}, cfx_now() + HOUR);
	struct queue_id b = cfx_simple(f, 2, "s@src.test", MIN, 10,
				       (const char *const[]){"x@a.test", NULL}, cfx_now() + HOUR);
	char py[256];

	assert_int_equal(sched_of(f, &a, NULL), 2);
	assert_int_equal(RUN(f, "queue", "delete", cfx_id_hex(&a)), 0);
	assert_has(f->out, "deleted ");
	assert_has(f->out, cfx_id_hex(&a));
	assert_null(cfx_get(f, &a));
	assert_int_equal(sched_of(f, &a, NULL), 0);
	assert_int_equal(f->eng.nbounced, 0);
	assert_int_equal(RUN(f, "queue", "delete", cfx_id_hex(&a)), 1);
	assert_has(f->err, "no message ");

	assert_int_equal(RUN(f, "queue", "bounce", "--json", cfx_id_hex(&b)), 0);
	snprintf(py, sizeof(py),
		 "import json,sys\nL=[json.loads(l) for l in open(sys.argv[1])]\n"
		 "assert L==[{'action':'bounced','id':'%s'}], L\n",
		 cfx_id_hex(&b));
	assert_int_equal(cfx_python(f, py), 0);
	assert_int_equal(f->eng.nbounced, 1);
	assert_memory_equal(f->eng.bounced[0].b, b.b, QUEUE_ID_LEN);
	assert_null(cfx_get(f, &b));
	assert_int_equal(cfx_count(f), 0);
}

/* retry ID makes each of its groups due now; --destination only that destination's groups
 * (case-insensitive), --all every group; the count is in the answer. */
static void test_retry(void **state)
{
	struct cfx *f = *state;
	uint64_t later = cfx_now() + HOUR, due;
	struct queue_id m1 = cfx_simple(f, 1, "s@src.test", MIN, 10,
					(const char *const[]){"x@a.test", "y@b.test", NULL}, later);
	struct queue_id m2 =
	    cfx_simple(f, 2, "s@src.test", MIN, 10, (const char *const[]){"z@b.test", NULL}, later);
	struct queue_id m3 =
	    cfx_simple(f, 3, "s@src.test", MIN, 10, (const char *const[]){"q@c.test", NULL}, later);
	struct queue_id none;
	struct queue_env *e;

	assert_int_equal(RUN(f, "queue", "retry", cfx_id_hex(&m1)), 0);
	assert_has(f->out, "retried ");
	e = cfx_get(f, &m1);
	assert_true(e->dests[0].due <= cfx_now() && e->dests[1].due <= cfx_now());
	queue_env_free(e);
	assert_int_equal(sched_of(f, &m1, &due), 2);
	assert_true(due <= cfx_now());

	assert_int_equal(RUN(f, "queue", "retry", "--destination", "B.test"), 0);
	assert_has(f->out, "retried 2\n");
	assert_int_equal(sched_of(f, &m2, &due), 1);
	assert_true(due <= cfx_now());
	assert_int_equal(sched_of(f, &m3, &due), 1);
	assert_int_equal(due, later);

	assert_int_equal(RUN(f, "queue", "retry", "--all", "--json"), 0);
	assert_int_equal(cfx_python(f, "import json,sys\nL=[json.loads(l) for l in "
				       "open(sys.argv[1])]\n"
				       "assert L==[{'action':'retried','count':3}], L\n"),
			 0);
	assert_int_equal(sched_of(f, &m3, &due), 1);
	assert_true(due <= cfx_now());

	queue_id_make(&none, cfx_now(), 0, 999);
	assert_int_equal(RUN(f, "queue", "retry", cfx_id_hex(&none)), 1);
	assert_int_equal(RUN(f, "queue", "retry", "--all", "--destination", "a.test"), 2);
	assert_int_equal(RUN(f, "queue", "retry", cfx_id_hex(&m1), "--all"), 2);
}

/* suspend and resume reach the engine and show in summary. */
static void test_suspend_resume(void **state)
{
	struct cfx *f = *state;
	const char *py = "import json,sys\nL=[json.loads(l) for l in open(sys.argv[1])]\n"
			 "assert [(d['name'],d['suspended']) for d in L[1:]]==[('b.test',%s)], L\n";
	char buf[256];

	cfx_simple(f, 1, "s@src.test", MIN, 10, (const char *const[]){"y@b.test", NULL},
		   cfx_now() + HOUR);
	assert_int_equal(RUN(f, "queue", "suspend", "b.test"), 0);
	assert_int_equal(f->eng.nsusp, 1);
	assert_int_equal(RUN(f, "queue", "summary", "--json"), 0);
	snprintf(buf, sizeof(buf), py, "True");
	assert_int_equal(cfx_python(f, buf), 0);
	assert_int_equal(RUN(f, "queue", "resume", "--json", "b.test"), 0);
	assert_int_equal(cfx_python(f, "import json,sys\nL=[json.loads(l) for l in "
				       "open(sys.argv[1])]\n"
				       "assert L==[{'action':'resumed','destination':'b.test'}]\n"),
			 0);
	assert_int_equal(f->eng.nsusp, 0);
	assert_int_equal(RUN(f, "queue", "summary", "--json"), 0);
	snprintf(buf, sizeof(buf), py, "False");
	assert_int_equal(cfx_python(f, buf), 0);
	assert_int_equal(RUN(f, "queue", "suspend"), 2);
}

/* clear is refused without --yes by riptidectl (the engine is not even called) and by the
 * server (a raw request without yes=1); with --yes every message goes. */
static void test_clear(void **state)
{
	struct cfx *f = *state;
	char msg[256];

	for (uint64_t i = 1; i <= 3; i++)
		cfx_simple(f, i, "s@src.test", MIN, 10, (const char *const[]){"y@b.test", NULL},
			   cfx_now() + HOUR);
	assert_int_equal(RUN(f, "queue", "clear"), 2);
	assert_has(f->err, "--yes");
	assert_int_equal(f->eng.calls, 0);
	assert_int_equal(ctl_call(f->sock, "clear", NULL, 0, 5000, stdout, msg, sizeof(msg)),
			 EINVAL);
	assert_non_null(strstr(msg, "yes=1"));
	assert_int_equal(f->eng.calls, 0);
	assert_int_equal(cfx_count(f), 3);
	assert_int_equal(RUN(f, "queue", "clear", "--yes"), 0);
	assert_has(f->out, "cleared 3\n");
	assert_int_equal(cfx_count(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_summary, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_summary_backoff, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_reload, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_list_text, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_list_filters, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_list_json, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_list_hostile_strings, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_show_hostile_strings, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_show_text, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_show_json, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_delete_bounce, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_retry, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_suspend_resume, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_clear, cfx_setup, cfx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
