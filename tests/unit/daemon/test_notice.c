/* test_notice — unit tests for engine/daemon/notice.c: the failure notices, delay warnings and
 * relayed reports riptide queues itself, written into a real (in-memory) queue.
 *
 * Why: a notice is the only way a sender learns that mail was lost; it must be in the same
 * batch as the original's final write, addressed from <> to the original sender (and a copy to
 * postmaster), routed and scheduled like any mail, counted in the queue counters, and it must
 * be a standard multipart/report naming exactly the recipients that asked for it. So each test
 * does what the commit thread does (msg_plan, msg_fill_final + notice_fill in one batch,
 * queue_write, msg_count_written), then reads the queue back: the notice's envelope, its sched
 * entries and their values, and its body parsed as MIME (parts, content types, per-recipient
 * fields, the attached original). The choices of dsn_original and RET=, NOTIFY= filtering, a
 * body read back from the queue and a refill after a failed write are covered too; ASan checks
 * that a refill frees the first notices.
 */
#include "engine/daemon/notice.h"
#include "engine/daemon/qstat.h"
#include "engine/util/util.h"
#include "tests/unit/daemon/daemon_test.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define HOST	  "mta.test.example"
#define SENDER	  "alice@example.org"
#define BODY_LINE "UNIQUE-BODY-LINE-4711"
#define ORIGINAL                                                                                   \
	"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Quarterly report\r\n"  \
	"\r\n" BODY_LINE "\r\n"

struct fx {
	struct config cfg;
	struct queue *q;
	struct notice *n;
	struct qstat *qs;
	struct dlog *log;
	char logpath[64];
};

/* A new notice maker over f's queue. Returns 0 or -1. */
static int fx_notice(struct fx *f)
{
	struct notice_env env = {
	    .cfg = &f->cfg, .q = f->q, .relay_name = "relay.example", .log = f->log};
	char err[256];

	if (notice_new(&env, &f->n, err, sizeof(err)) < 0) {
		fprintf(stderr, "notice_new: %s\n", err);
		return -1;
	}
	return 0;
}

/* An empty queue (and a notice maker over it) for the next case of a table test. */
static void fx_requeue(struct fx *f)
{
	notice_free(f->n);
	queue_close(f->q);
	f->q = dt_queue_open();
	assert_non_null(f->q);
	assert_int_equal(fx_notice(f), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int fd;

	if (!f)
		return -1;
	config_defaults(&f->cfg);
	f->cfg.mode = CONFIG_MODE_INDEPENDENT;
	snprintf(f->cfg.hostname, sizeof(f->cfg.hostname), "%s", HOST);
	snprintf(f->logpath, sizeof(f->logpath), "/tmp/riptide-notice-XXXXXX");
	if ((fd = mkstemp(f->logpath)) < 0)
		return -1;
	close(fd);
	if (!(f->q = dt_queue_open()) || dlog_open(f->logpath, &f->log) < 0 || fx_notice(f) < 0)
		return -1;
	f->qs = qstat_new();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	notice_free(f->n);
	dlog_close(f->log);
	qstat_free(f->qs);
	queue_close(f->q);
	unlink(f->logpath);
	free(f);
	return 0;
}

/* ---- the original ---- */

/* An original from sender with nrcpt recipients r<i>@example.net in one group, NOTIFY per
 * recipient from notify (NULL: none), RET ret; written as at acceptance and counted. */
static struct msg *original(struct fx *f, const char *sender, unsigned nrcpt, const uint8_t *notify,
			    uint8_t ret)
{
	static uint64_t seq;
	const uint64_t dues[1] = {DT_CREATED + 1000};
	char *body = strdup(ORIGINAL);
	struct queue_id id;
	struct dt_env e;
	struct msg *m;

	assert_non_null(body);
	dt_env_init(&e, nrcpt, 1, dues);
	for (unsigned i = 0; i < nrcpt; i++) {
		snprintf(e.addr[i], sizeof(e.addr[i]), "r%u@example.net", i);
		e.rcpts[i].notify = notify ? notify[i] : 0;
	}
	e.name[0][0] = '\0';
	strcat(e.name[0], "example.net");
	e.env.sender = (char *)sender;
	e.env.ret = ret;
	e.env.body_len = strlen(body);
	queue_id_make(&id, DT_CREATED, 3, ++seq);
	m = msg_new(&id, &e.env, body, strlen(body));
	assert_non_null(m);
	assert_int_equal(dt_write_fill(f->q, m, msg_fill_put), 0);
	msg_written_put_cb(&m->req, f->qs);
	return m;
}

/* Outcome for recipient i: 'F' failed 550 5.1.1 at mx.example.net, 'D' delivered (to a hop
 * without DSN), 'P' deferred 451 4.4.1. Its group is out this round. */
static void outcome(struct msg *m, unsigned i, char kind)
{
	struct msg_outcome o = {.tried = true, .mta = "mx.example.net", .at_ms = util_wall_ms()};

	o.state = kind == 'F'	? QUEUE_RCPT_FAILED
		  : kind == 'D' ? QUEUE_RCPT_DELIVERED
				: QUEUE_RCPT_PENDING;
	o.code = kind == 'F' ? 550 : kind == 'D' ? 250 : 451;
	o.reply = kind == 'F' ? "550 5.1.1 no such user" : kind == 'D' ? "250 ok" : "451 later";
	o.reply_len = strlen(o.reply);
	memcpy(o.enh, kind == 'F' ? (uint8_t[]){5, 1, 1} : (uint8_t[]){0, 0, 0}, 3);
	m->groups[m->env->rcpts[i].dest].out = true;
	msg_record(m, i, &o);
}

/* The commit thread's part of a round's end: plan, then one batch with the original's write
 * and the notices, written, then counted. Returns the number of notices added. */
static unsigned commit_round(struct fx *f, struct msg *m)
{
	struct queue_batch *b = queue_batch_new();
	char err[256];
	unsigned added = 0;

	assert_int_not_equal(msg_plan(m, util_wall_ms(), dt_sched(60000)), MSG_PLAN_NONE);
	msg_fill_final(&m->req, b);
	if (notice_due(m))
		added = notice_fill(f->n, m, b);
	assert_int_equal(queue_write(f->q, b, false, err, sizeof(err)), 0);
	queue_batch_free(b);
	msg_count_written(m, f->qs);
	return added;
}

/* ---- reading notices back ---- */

/* The ids of the queued messages other than skip, in sched order (each once). */
static unsigned notice_ids(struct queue *q, const struct queue_id *skip, struct queue_id *out,
			   unsigned max)
{
	struct dt_dump d;
	unsigned n = 0;

	assert_int_equal(dt_dump_sched(q, &d), 0);
	assert_false(d.overflow);
	for (unsigned i = 0; i < d.n; i++) {
		bool seen = memcmp(&d.e[i].id, skip, sizeof(*skip)) == 0;
		for (unsigned k = 0; k < n && !seen; k++)
			seen = memcmp(&d.e[i].id, &out[k], sizeof(out[k])) == 0;
		if (!seen && n < max)
			out[n++] = d.e[i].id;
	}
	return n;
}

struct part {
	const char *hdr, *body;
	size_t hlen, blen;
};

/* A notice as read from the queue: envelope, bytes, unfolded top header, MIME parts. */
struct notice_read {
	struct queue_env *env;
	char *bytes;
	size_t len;
	char *top; /* unfolded header block, NUL-terminated */
	struct part p[4];
	unsigned nparts;
};

static bool has(const char *p, size_t len, const char *needle)
{
	return memmem(p, len, needle, strlen(needle)) != NULL;
}

/* Split body [p, end) into MIME parts at the boundary b. */
static void split_parts(struct notice_read *r, const char *p, const char *end, const char *b)
{
	char delim[256];
	size_t dl = (size_t)snprintf(delim, sizeof(delim), "--%s", b);
	const char *at = memmem(p, (size_t)(end - p), delim, dl);

	while (at && r->nparts < 4) {
		const char *s = at + dl, *next, *sep;
		if (end - s >= 2 && s[0] == '-' && s[1] == '-')
			return; /* the closing delimiter */
		assert_true(end - s >= 2 && s[0] == '\r' && s[1] == '\n');
		s += 2;
		next = memmem(s, (size_t)(end - s), delim, dl);
		assert_non_null(next);
		sep = memmem(s, (size_t)(next - s), "\r\n\r\n", 4);
		assert_non_null(sep);
		r->p[r->nparts++] = (struct part){.hdr = s,
						  .hlen = (size_t)(sep + 2 - s),
						  .body = sep + 4,
						  .blen = (size_t)(next - sep - 4)};
		at = next;
	}
}

/* Read notice id from the queue and parse it (the caller frees with read_free). */
static void read_notice(struct queue *q, const struct queue_id *id, struct notice_read *r)
{
	void *meta = NULL, *body = NULL;
	size_t mlen = 0, k = 0;
	const char *sep, *b;
	char boundary[200];

	memset(r, 0, sizeof(*r));
	assert_int_equal(queue_get(q, id, &meta, &mlen, &body, &r->len), 0);
	assert_int_equal(queue_env_decode(meta, mlen, &r->env), 0);
	free(meta);
	r->bytes = body;
	sep = memmem(r->bytes, r->len, "\r\n\r\n", 4);
	assert_non_null(sep);
	r->top = calloc(1, (size_t)(sep - r->bytes) + 3);
	for (const char *s = r->bytes; s < sep + 2; s++) /* unfold: drop CRLF before WSP */
		if (!(s[0] == '\r' && s[1] == '\n' && (s[2] == ' ' || s[2] == '\t')))
			r->top[k++] = *s;
		else
			s++;
	b = strstr(r->top, "boundary=\"");
	assert_non_null(b);
	b += 10;
	assert_int_equal(sscanf(b, "%199[^\"]", boundary), 1);
	split_parts(r, sep + 4, r->bytes + r->len, boundary);
}

static void read_free(struct notice_read *r)
{
	queue_env_free(r->env);
	free(r->bytes);
	free(r->top);
}

/* The header block of a report: from <> by us to the sender, an auto reply, a multipart/report
 * of delivery-status; text part, then delivery-status naming the Reporting-MTA. */
static void assert_report_shape(const struct notice_read *r, const char *to)
{
	char want[128];

	assert_non_null(strstr(r->top, "From: Mail Delivery System <MAILER-DAEMON@" HOST ">"));
	snprintf(want, sizeof(want), "\r\nTo: <%s>\r\n", to);
	assert_non_null(strstr(r->top, want));
	assert_non_null(strstr(r->top, "\r\nAuto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(r->top, "\r\nMIME-Version: 1.0\r\n"));
	assert_non_null(
	    strstr(r->top, "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_true(r->nparts >= 2);
	assert_true(has(r->p[0].hdr, r->p[0].hlen, "Content-Type: text/plain"));
	assert_true(has(r->p[1].hdr, r->p[1].hlen, "Content-Type: message/delivery-status"));
	assert_true(has(r->p[1].body, r->p[1].blen, "Reporting-MTA: dns; " HOST "\r\n"));
}

/* The notice's envelope: from <>, a bounce, to the sender (and postmaster when pm), one group
 * per destination, all due within [t0, t1]; the sched entries match the groups. */
static void assert_notice_env(struct queue *q, const struct queue_id *id,
			      const struct notice_read *r, const char *pm, uint64_t t0, uint64_t t1)
{
	const struct queue_env *e = r->env;
	struct dt_dump d;
	int at;

	assert_string_equal(e->sender, "");
	assert_true(e->flags & QUEUE_ENV_BOUNCE);
	assert_int_equal(e->nrcpt, pm ? 2 : 1);
	assert_string_equal(e->rcpts[0].addr, SENDER);
	if (pm)
		assert_string_equal(e->rcpts[1].addr, pm);
	assert_int_equal(e->body_len, r->len);
	assert_true(e->created_ms >= t0 && e->created_ms <= t1);
	assert_int_equal(dt_dump_sched(q, &d), 0);
	assert_int_equal(dt_dump_find(&d, id, 0, &at), e->ndest);
	for (uint32_t g = 0; g < e->ndest; g++) {
		struct msg_sval v;
		char name[ROUTE_NAME_MAX];
		uint32_t pend = 0;
		for (uint32_t i = 0; i < e->nrcpt; i++)
			pend += e->rcpts[i].dest == g;
		dt_dump_find(&d, id, g, &at);
		assert_true(at >= 0);
		assert_true(e->dests[g].due >= t0 && e->dests[g].due <= t1);
		assert_int_equal(d.e[at].due, e->dests[g].due);
		msg_sval_parse(d.e[at].sval, d.e[at].sval_len, &v, name, sizeof(name));
		assert_string_equal(v.name, e->dests[g].name);
		assert_int_equal(v.pending, pend);
		assert_int_equal(v.bytes, r->len);
		assert_int_equal(v.primary, g == 0);
		assert_int_equal(v.attempts, 0);
	}
}

/* The log file holds s. */
static bool log_has(struct fx *f, const char *s)
{
	char buf[8192];
	int fd = open(f->logpath, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, s) != NULL;
}

/* ---- tests ---- */

/* notice_due: none for a new message or a deferral; due after a failure. */
static void test_due(void **state)
{
	struct fx *f = *state;
	struct msg *m = original(f, SENDER, 3, NULL, 0);

	assert_false(notice_due(m));
	outcome(m, 0, 'P');
	outcome(m, 1, 'D');
	assert_false(notice_due(m));
	outcome(m, 2, 'F');
	assert_true(notice_due(m));
	msg_free(m);
}

/* A failure (r0 failed, r1 delivered): the original is deleted and one notice is queued in the
 * same batch, to the sender from <>, due now in the sender's domain, counted by the queue
 * counters; its body is a multipart/report whose delivery-status names the failed recipient
 * only (Action, Status, Remote-MTA, Diagnostic-Code) and carries the original in full; the
 * notice is logged. */
static void test_failure_notice(void **state)
{
	struct fx *f = *state;
	struct msg *m = original(f, SENDER, 2, NULL, 0);
	struct queue_id ids[4];
	struct notice_read r;
	uint64_t t0 = util_wall_ms(), t1, msgs, rcpts, bytes;
	const struct part *ds;

	outcome(m, 0, 'F');
	outcome(m, 1, 'D');
	assert_int_equal(commit_round(f, m), 1);
	t1 = util_wall_ms();
	assert_int_equal(queue_get(f->q, &m->id, NULL, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(notice_ids(f->q, &m->id, ids, 4), 1);
	read_notice(f->q, &ids[0], &r);
	assert_notice_env(f->q, &ids[0], &r, NULL, t0, t1);
	assert_int_equal(r.env->ndest, 1);
	assert_string_equal(r.env->dests[0].name, "example.org");
	assert_int_equal(r.len, m->notice_len[0]);
	assert_memory_equal(r.bytes, m->notices[0], r.len);
	assert_int_equal(notice_bytes(m), r.len);
	assert_report_shape(&r, SENDER);
	assert_int_equal(r.nparts, 3);
	ds = &r.p[1];
	assert_true(has(ds->body, ds->blen, "Final-Recipient: rfc822; r0@example.net\r\n"));
	assert_false(has(ds->body, ds->blen, "r1@example.net"));
	assert_true(has(ds->body, ds->blen, "Action: failed\r\n"));
	assert_true(has(ds->body, ds->blen, "Status: 5.1.1\r\n"));
	assert_true(has(ds->body, ds->blen, "Remote-MTA: dns; mx.example.net\r\n"));
	assert_true(has(ds->body, ds->blen, "Diagnostic-Code: smtp; 550 5.1.1 no such user"));
	assert_true(has(r.p[2].hdr, r.p[2].hlen, "Content-Type: message/rfc822"));
	assert_true(has(r.p[2].body, r.p[2].blen, "Subject: Quarterly report\r\n"));
	assert_true(has(r.p[2].body, r.p[2].blen, BODY_LINE));
	qstat_totals(f->qs, &msgs, &rcpts, &bytes);
	assert_int_equal(msgs, 1);
	assert_int_equal(rcpts, 1);
	assert_int_equal(bytes, r.len);
	assert_true(log_has(f, "event=notice-queued"));
	read_free(&r);
	msg_free(m);
}

/* With postmaster set, the failure notice goes to postmaster too: in its own group when its
 * domain differs (two entries due now, the sender's primary), in the sender's group when it is
 * the same, and in the relay's one group in relay mode. */
static void test_postmaster_copy(void **state)
{
	static const struct {
		const char *pm, *names[2];
		enum config_mode mode;
	} c[] = {
	    {"postmaster@ops.example", {"example.org", "ops.example"}, CONFIG_MODE_INDEPENDENT},
	    {"postmaster@Example.ORG", {"example.org", NULL}, CONFIG_MODE_INDEPENDENT},
	    {"postmaster@ops.example", {"relay.example", NULL}, CONFIG_MODE_RELAY},
	};
	struct fx *f = *state;

	for (unsigned k = 0; k < 3; k++) {
		struct msg *m = original(f, SENDER, 1, NULL, 0);
		uint64_t t0 = util_wall_ms();
		struct queue_id id;
		struct notice_read r;
		snprintf(f->cfg.postmaster, sizeof(f->cfg.postmaster), "%s", c[k].pm);
		f->cfg.mode = c[k].mode;
		outcome(m, 0, 'F');
		assert_int_equal(commit_round(f, m), 1);
		assert_int_equal(notice_ids(f->q, &m->id, &id, 1), 1);
		read_notice(f->q, &id, &r);
		assert_notice_env(f->q, &id, &r, c[k].pm, t0, util_wall_ms());
		assert_int_equal(r.env->ndest, c[k].names[1] ? 2 : 1);
		for (unsigned g = 0; g < r.env->ndest; g++)
			assert_string_equal(r.env->dests[g].name, c[k].names[g]);
		assert_report_shape(&r, SENDER);
		read_free(&r);
		msg_free(m);
		fx_requeue(f);
	}
}

/* NOTIFY filters failure notices: NEVER and SUCCESS-only recipients are not reported (no
 * notice when they are the only failures, while the others are deferred); a NOTIFY=FAILURE and
 * a default one are. */
static void test_notify_filters_failures(void **state)
{
	static const uint8_t nf[4] = {QUEUE_NOTIFY_NEVER, QUEUE_NOTIFY_SUCCESS,
				      QUEUE_NOTIFY_FAILURE, 0};
	struct fx *f = *state;
	struct msg *m = original(f, SENDER, 4, nf, 0);
	struct queue_id id;
	struct notice_read r;

	outcome(m, 0, 'F');
	outcome(m, 1, 'F');
	outcome(m, 2, 'P');
	outcome(m, 3, 'P');
	assert_int_equal(commit_round(f, m), 0);
	assert_int_equal(notice_ids(f->q, &m->id, &id, 1), 0);
	msg_free(m);

	fx_requeue(f);
	m = original(f, SENDER, 4, nf, 0);
	for (unsigned i = 0; i < 4; i++)
		outcome(m, i, 'F');
	assert_int_equal(commit_round(f, m), 1);
	assert_int_equal(notice_ids(f->q, &m->id, &id, 1), 1);
	read_notice(f->q, &id, &r);
	assert_false(has(r.p[1].body, r.p[1].blen, "r0@example.net"));
	assert_false(has(r.p[1].body, r.p[1].blen, "r1@example.net"));
	assert_true(has(r.p[1].body, r.p[1].blen, "Final-Recipient: rfc822; r2@example.net"));
	assert_true(has(r.p[1].body, r.p[1].blen, "Final-Recipient: rfc822; r3@example.net"));
	read_free(&r);
	msg_free(m);
}

/* A delay warning (msg_warn after warn_after): one notice, Action delayed with
 * Will-Retry-Until, the original's headers only, no copy to postmaster; the original stays
 * queued. A relayed report (NOTIFY=SUCCESS to a hop without DSN): Action relayed. */
static void test_delay_and_relayed(void **state)
{
	static const uint8_t nf[2] = {0, QUEUE_NOTIFY_SUCCESS};
	struct fx *f = *state;
	struct msg *m = original(f, SENDER, 2, nf, 0);
	struct queue_id ids[2];
	struct notice_read r;

	snprintf(f->cfg.postmaster, sizeof(f->cfg.postmaster), "pm@ops.example");
	outcome(m, 0, 'P');
	assert_int_equal(msg_warn(m, util_wall_ms(), 1000), 1);
	assert_int_equal(commit_round(f, m), 1);
	assert_int_equal(queue_get(f->q, &m->id, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(notice_ids(f->q, &m->id, ids, 2), 1);
	assert_non_null(m->notices[MSG_FRESH_DELAYED - 1]);
	read_notice(f->q, &ids[0], &r);
	assert_notice_env(f->q, &ids[0], &r, NULL, 0, UINT64_MAX);
	assert_report_shape(&r, SENDER);
	assert_int_equal(r.nparts, 3);
	assert_true(has(r.p[1].body, r.p[1].blen, "Final-Recipient: rfc822; r0@example.net"));
	assert_true(has(r.p[1].body, r.p[1].blen, "Action: delayed\r\n"));
	assert_true(has(r.p[1].body, r.p[1].blen, "Will-Retry-Until: "));
	assert_true(has(r.p[2].hdr, r.p[2].hlen, "Content-Type: text/rfc822-headers"));
	assert_false(has(r.p[2].body, r.p[2].blen, BODY_LINE));
	read_free(&r);
	msg_free(m);

	fx_requeue(f);
	m = original(f, SENDER, 2, nf, 0);
	outcome(m, 0, 'P');
	outcome(m, 1, 'D');
	assert_int_equal(commit_round(f, m), 1);
	assert_int_equal(notice_ids(f->q, &m->id, ids, 2), 1);
	read_notice(f->q, &ids[0], &r);
	assert_int_equal(r.env->nrcpt, 1);
	assert_true(has(r.p[1].body, r.p[1].blen, "Final-Recipient: rfc822; r1@example.net"));
	assert_true(has(r.p[1].body, r.p[1].blen, "Action: relayed\r\n"));
	read_free(&r);
	msg_free(m);
}

/* One round with a failure, a relayed delivery and a delay warning: three notices in the
 * batch, notice_bytes their sum; a delivery to a hop with DSN reports nothing. */
static void test_three_kinds(void **state)
{
	static const uint8_t nf[4] = {0, QUEUE_NOTIFY_SUCCESS, 0, QUEUE_NOTIFY_SUCCESS};
	struct fx *f = *state;
	struct msg *m = original(f, SENDER, 4, nf, 0);
	struct msg_outcome dsn = {
	    .state = QUEUE_RCPT_DELIVERED, .code = 250, .tried = true, .peer_dsn = true};
	struct queue_id ids[4];

	outcome(m, 0, 'F');
	outcome(m, 1, 'D');
	outcome(m, 2, 'P');
	msg_record(m, 3, &dsn);
	assert_int_equal(m->fresh[3], 0);
	assert_int_equal(msg_warn(m, util_wall_ms(), 1000), 1);
	assert_int_equal(commit_round(f, m), 3);
	assert_int_equal(notice_ids(f->q, &m->id, ids, 4), 3);
	for (unsigned k = 0; k < MSG_NOTICES; k++)
		assert_non_null(m->notices[k]);
	assert_int_equal(notice_bytes(m), m->notice_len[0] + m->notice_len[1] + m->notice_len[2]);
	msg_free(m);
}

/* What is attached: dsn_original full -> message/rfc822 with the body, headers ->
 * text/rfc822-headers without it, none -> no third part; RET=HDRS narrows full to headers. */
static void test_original_choices(void **state)
{
	static const struct {
		enum config_dsn_original o;
		uint8_t ret;
		const char *ctype;
		bool body;
	} c[] = {
	    {CONFIG_DSN_FULL, QUEUE_RET_NONE, "message/rfc822", true},
	    {CONFIG_DSN_FULL, QUEUE_RET_FULL, "message/rfc822", true},
	    {CONFIG_DSN_HEADERS, QUEUE_RET_NONE, "text/rfc822-headers", false},
	    {CONFIG_DSN_HEADERS, QUEUE_RET_FULL, "text/rfc822-headers", false},
	    {CONFIG_DSN_FULL, QUEUE_RET_HDRS, "text/rfc822-headers", false},
	    {CONFIG_DSN_NONE, QUEUE_RET_FULL, NULL, false},
	};
	struct fx *f = *state;

	for (unsigned k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		struct msg *m = original(f, SENDER, 1, NULL, c[k].ret);
		struct queue_id id;
		struct notice_read r;
		f->cfg.dsn_original = c[k].o;
		outcome(m, 0, 'F');
		assert_int_equal(commit_round(f, m), 1);
		assert_int_equal(notice_ids(f->q, &m->id, &id, 1), 1);
		read_notice(f->q, &id, &r);
		assert_report_shape(&r, SENDER);
		assert_int_equal(r.nparts, c[k].ctype ? 3 : 2);
		if (c[k].ctype) {
			assert_true(has(r.p[2].hdr, r.p[2].hlen, c[k].ctype));
			assert_true(has(r.p[2].body, r.p[2].blen, "Subject: Quarterly report"));
			assert_int_equal(has(r.p[2].body, r.p[2].blen, BODY_LINE), c[k].body);
		}
		read_free(&r);
		msg_free(m);
		fx_requeue(f);
	}
}

/* The original not in RAM (m->body NULL, as after a restart): its body is read from the
 * queue and attached in full; not in the queue either (deleted by that round's write): the
 * notice goes without it. */
static void test_body_from_queue(void **state)
{
	struct fx *f = *state;
	struct msg *m = original(f, SENDER, 1, NULL, 0);
	struct queue_batch *b = queue_batch_new();
	struct queue_id id;
	struct notice_read r;

	free(m->body);
	m->body = NULL;
	outcome(m, 0, 'F');
	assert_int_equal(commit_round(f, m), 1);
	assert_int_equal(notice_ids(f->q, &m->id, &id, 1), 1);
	read_notice(f->q, &id, &r);
	assert_int_equal(r.nparts, 3);
	assert_true(has(r.p[2].body, r.p[2].blen, BODY_LINE));
	read_free(&r);

	/* the round deleted the original: a refill finds its body nowhere */
	assert_int_equal(notice_fill(f->n, m, b), 1);
	assert_false(has(m->notices[0], m->notice_len[0], BODY_LINE));
	assert_false(has(m->notices[0], m->notice_len[0], "message/rfc822"));
	queue_batch_free(b);
	msg_free(m);
}

/* A refill (the first batch's write failed): the first notices are freed (ASan), the sched
 * entries to count are the second fill's only, and writing the second batch queues exactly one
 * notice. */
static void test_refill(void **state)
{
	struct fx *f = *state;
	struct msg *m = original(f, SENDER, 1, NULL, 0);
	struct queue_batch *b1 = queue_batch_new(), *b2 = queue_batch_new();
	struct queue_id ids[4];
	char err[256];
	uint64_t msgs;

	snprintf(f->cfg.postmaster, sizeof(f->cfg.postmaster), "pm@ops.example");
	outcome(m, 0, 'F');
	assert_int_equal(msg_plan(m, util_wall_ms(), dt_sched(60000)), MSG_PLAN_DELETE);
	msg_fill_final(&m->req, b1);
	assert_int_equal(notice_fill(f->n, m, b1), 1);
	assert_int_equal(m->notice_nents, 2);
	msg_fill_final(&m->req, b2);
	assert_int_equal(notice_fill(f->n, m, b2), 1);
	assert_int_equal(m->notice_nents, 2);
	assert_int_equal(queue_write(f->q, b2, false, err, sizeof(err)), 0);
	msg_count_written(m, f->qs);
	assert_int_equal(notice_ids(f->q, &m->id, ids, 4), 1);
	qstat_totals(f->qs, &msgs, NULL, NULL);
	assert_int_equal(msgs, 1);
	queue_batch_free(b1);
	queue_batch_free(b2);
	msg_free(m);
}

/* notice_due's contract (notice.h): no notice "for the null sender nor for a notice": false
 * for a failed recipient of a message from <> or of a notice (QUEUE_ENV_BOUNCE, even with a
 * sender), and notice_fill adds nothing then. (It was true once: only the marks were read.) */
static void test_no_notice_about_notices(void **state)
{
	struct fx *f = *state;
	struct msg *m;
	struct queue_batch *b;

	m = original(f, "", 1, NULL, 0);
	outcome(m, 0, 'F');
	assert_false(notice_due(m));
	msg_free(m);
	m = original(f, SENDER, 1, NULL, 0);
	m->env->flags |= QUEUE_ENV_BOUNCE;
	outcome(m, 0, 'F');
	assert_false(notice_due(m));
	b = queue_batch_new();
	assert_int_equal(notice_fill(f->n, m, b), 0);
	queue_batch_free(b);
	msg_free(m);
}

/* Was a bug (notice.c notice_count, read by msg.c msg_count_written): each struct msg_nent's
 * e.dest points at its own name[], inside m->notice_ents, which notice_count grows with realloc
 * for every further entry; once the array moves, the earlier entries' dest point into freed
 * memory and msg_count_written hands them to qstat_entry (ASan: heap-use-after-free in
 * route_name_hash via qs_slot). It happens whenever one fill adds two or more sched entries: a
 * postmaster copy in another domain, or two notices in one round. Expected: every entry's dest
 * is its own name after notice_fill. Seen: the first entry's dest still points into the old
 * array (always under ASan, whose realloc always moves). Fix idea: set e.dest when counting
 * (msg_count_written) or store names outside the growing array. */
static void test_notice_ents_after_growth(void **state)
{
	struct fx *f = *state;
	struct msg *m;
	struct queue_batch *b;

	m = original(f, SENDER, 2, (const uint8_t[]){0, QUEUE_NOTIFY_SUCCESS}, 0);
	b = queue_batch_new();
	snprintf(f->cfg.postmaster, sizeof(f->cfg.postmaster), "pm@ops.example");
	outcome(m, 0, 'F');
	outcome(m, 1, 'D');
	assert_int_equal(notice_fill(f->n, m, b), 2);
	assert_int_equal(m->notice_nents, 3);
	for (unsigned k = 0; k < m->notice_nents; k++)
		assert_ptr_equal(m->notice_ents[k].e.dest, m->notice_ents[k].name);
	queue_batch_free(b);
	msg_free(m);
}

/* A message from <> never gets a notice even when notice_fill is called (dsn_build refuses
 * the null sender): nothing is added to the batch. */
static void test_null_sender_fill_adds_nothing(void **state)
{
	struct fx *f = *state;
	struct msg *m = original(f, "", 1, NULL, 0);
	struct queue_batch *b = queue_batch_new();

	outcome(m, 0, 'F');
	assert_int_equal(notice_fill(f->n, m, b), 0);
	assert_int_equal(queue_batch_count(b), 0);
	assert_int_equal(m->notice_nents, 0);
	queue_batch_free(b);
	msg_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_due, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_notice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_postmaster_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_filters_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delay_and_relayed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_three_kinds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_original_choices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_from_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refill, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_notice_about_notices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notice_ents_after_growth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_null_sender_fill_adds_nothing, setup, teardown),
	};

	return cmocka_run_group_tests_name("notice", tests, NULL, NULL);
}
