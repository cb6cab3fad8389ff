/* ctl_fx.c — the control tests' fixture (see ctl_fx.h): a RocksDB queue, an engine table on
 * it, a control server, and a runner for riptidectl.
 *
 * Why: every control test needs the same real pieces; the engine table here does to the
 * queue what the daemon's does (delete removes meta, body and sched entries; retry moves a
 * group's sched entry to now and rewrites its due time in the envelope), so the tests can
 * check outcomes in the queue itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "tests/unit/control/ctl_fx.h"

/* cfx_now: see ctl_fx.h. */
uint64_t cfx_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* cfx_id_hex: see ctl_fx.h. */
const char *cfx_id_hex(const struct queue_id *id)
{
	static char ring[8][QUEUE_ID_STRLEN + 1];
	static unsigned i;
	char *s = ring[i++ % 8];

	queue_id_format(id, s);
	return s;
}

/* ---- queue helpers ---- */

static void q_write(struct queue *q, struct queue_batch *b)
{
	char err[256];
	int rc = queue_write(q, b, true, err, sizeof(err));

	if (rc)
		fail_msg("queue_write: %d %s", rc, err);
	queue_batch_free(b);
}

/* Add e's meta (encoded) to b. */
static void q_meta(struct queue_batch *b, const struct queue_id *id, const struct queue_env *e,
		   bool put, uint64_t body_len)
{
	size_t len = queue_env_encoded_len(e);
	uint8_t *buf = malloc(len);
	static char body[1 << 16];

	assert_non_null(buf);
	assert_int_equal(queue_env_encode(e, buf, len), (ssize_t)len);
	if (put)
		queue_batch_put(b, id, buf, len, body, body_len < sizeof(body) ? body_len : 1);
	else
		queue_batch_meta(b, id, buf, len);
	free(buf);
}

/* cfx_put: see ctl_fx.h. */
struct queue_id cfx_put(struct cfx *f, const struct queue_env *e, uint64_t seq)
{
	struct queue_batch *b = queue_batch_new();
	struct queue_id id;

	queue_id_make(&id, e->created_ms, 0, seq);
	q_meta(b, &id, e, true, e->body_len);
	for (uint32_t i = 0; i < e->ndest; i++)
		if (e->dests[i].due)
			queue_batch_sched_put(b, e->dests[i].due, &id, i, e->dests[i].name,
					      strlen(e->dests[i].name));
	q_write(f->q, b);
	return id;
}

/* cfx_simple: see ctl_fx.h. */
struct queue_id cfx_simple(struct cfx *f, uint64_t seq, const char *sender, uint64_t age_ms,
			   uint64_t body_len, const char *const *rcpts, uint64_t due_ms)
{
	struct queue_rcpt r[8] = {0};
	struct queue_dest d[8] = {0};
	struct queue_env e = {.sender = (char *)sender,
			      .created_ms = cfx_now() - age_ms,
			      .body_len = body_len,
			      .rcpts = r,
			      .dests = d};

	for (; rcpts[e.nrcpt]; e.nrcpt++) {
		const char *dom = strchr(rcpts[e.nrcpt], '@') + 1;
		uint32_t k = 0;

		while (k < e.ndest && strcmp(d[k].name, dom) != 0)
			k++;
		if (k == e.ndest)
			d[e.ndest++] = (struct queue_dest){.name = (char *)dom, .due = due_ms};
		r[e.nrcpt] =
		    (struct queue_rcpt){.addr = (char *)rcpts[e.nrcpt], .dest = (uint16_t)k};
	}
	return cfx_put(f, &e, seq);
}

/* cfx_bulk: see ctl_fx.h. */
void cfx_bulk(struct cfx *f, uint32_t n)
{
	static char body[16];
	struct queue_rcpt r[2] = {{.addr = "someone@a.example"},
				  {.addr = "other@b.example", .dest = 1}};
	struct queue_dest d[2] = {{.name = "a.example"}, {.name = "b.example"}};
	struct queue_env e = {.sender = "sender@source.example",
			      .body_len = 2048,
			      .nrcpt = 2,
			      .rcpts = r,
			      .ndest = 2,
			      .dests = d};
	uint64_t t0 = cfx_now() - 86400000ull;
	struct queue_batch *b = queue_batch_new();
	char err[256];
	uint8_t meta[512];

	for (uint32_t i = 0; i < n; i++) {
		struct queue_id id;
		ssize_t len;

		e.created_ms = t0 + i;
		d[0].due = d[1].due = t0 + 3600000ull + i;
		len = queue_env_encode(&e, meta, sizeof(meta));
		assert_true(len > 0);
		queue_id_make(&id, e.created_ms, 0, i);
		queue_batch_put(b, &id, meta, (size_t)len, body, sizeof(body));
		queue_batch_sched_put(b, d[0].due, &id, 0, "a", 1);
		queue_batch_sched_put(b, d[1].due, &id, 1, "b", 1);
		if (i % 2000 == 1999 || i == n - 1) {
			assert_int_equal(queue_write(f->q, b, i == n - 1, err, sizeof(err)), 0);
			queue_batch_clear(b);
		}
	}
	queue_batch_free(b);
}

static struct queue_env *env_load(struct queue *q, const struct queue_id *id)
{
	struct queue_env *e = NULL;
	void *meta = NULL;
	size_t len = 0;

	if (queue_get(q, id, &meta, &len, NULL, NULL) < 0)
		return NULL;
	assert_int_equal(queue_env_decode(meta, len, &e), 0);
	free(meta);
	return e;
}

/* cfx_get: see ctl_fx.h. */
struct queue_env *cfx_get(struct cfx *f, const struct queue_id *id)
{
	return env_load(f->q, id);
}

/* cfx_count: see ctl_fx.h. */
uint64_t cfx_count(struct cfx *f)
{
	uint64_t n = 0;

	assert_int_equal(queue_count(f->q, &n), 0);
	return n;
}

/* ---- the engine table, on the queue ---- */

/* Remove message id (meta, body, every sched entry). */
static void env_delete(struct queue *q, const struct queue_id *id, const struct queue_env *e)
{
	struct queue_batch *b = queue_batch_new();

	queue_batch_delete(b, id);
	for (uint32_t i = 0; i < e->ndest; i++)
		if (e->dests[i].due)
			queue_batch_sched_del(b, e->dests[i].due, id, i);
	q_write(q, b);
}

/* Make the groups of e named dest (NULL: all) with a due time due now. Returns how many. */
static int env_retry(struct queue *q, const struct queue_id *id, struct queue_env *e,
		     const char *dest)
{
	struct queue_batch *b = queue_batch_new();
	uint64_t now = cfx_now();
	int n = 0;

	for (uint32_t i = 0; i < e->ndest; i++) {
		struct queue_dest *d = &e->dests[i];

		if (!d->due || (dest && strcasecmp(d->name, dest) != 0))
			continue;
		queue_batch_sched_del(b, d->due, id, i);
		queue_batch_sched_put(b, now, id, i, d->name, strlen(d->name));
		d->due = now;
		n++;
	}
	q_meta(b, id, e, false, 0);
	q_write(q, b);
	return n;
}

static int eng_message(void *arg, enum ctl_act a, const struct queue_id *id)
{
	struct cfx_engine *g = arg;
	struct queue_env *e = env_load(g->q, id);

	g->calls++;
	if (!e)
		return -ENOENT;
	if (a == CTL_ACT_RETRY) {
		env_retry(g->q, id, e, NULL);
	} else {
		if (a == CTL_ACT_BOUNCE && g->nbounced < CFX_MAX_BOUNCED)
			g->bounced[g->nbounced++] = *id; /* the daemon would queue the notice */
		env_delete(g->q, id, e);
	}
	queue_env_free(e);
	return 0;
}

struct eng_walk {
	struct cfx_engine *g;
	const char *dest;
	bool clear;
	int64_t n;
};

static int walk_cb(void *arg, const struct queue_id *id, const void *meta, size_t len)
{
	struct eng_walk *w = arg;
	struct queue_env *e = NULL;

	assert_int_equal(queue_env_decode(meta, len, &e), 0);
	if (w->clear) {
		env_delete(w->g->q, id, e);
		w->n++;
	} else {
		w->n += env_retry(w->g->q, id, e, w->dest) > 0;
	}
	queue_env_free(e);
	return 0;
}

static int64_t eng_retry(void *arg, const char *dest)
{
	struct eng_walk w = {.g = arg, .dest = dest};

	w.g->calls++;
	return queue_scan_meta(w.g->q, NULL, walk_cb, &w) < 0 ? -EIO : w.n;
}

static int64_t eng_clear(void *arg)
{
	struct eng_walk w = {.g = arg, .clear = true};

	w.g->calls++;
	return queue_scan_meta(w.g->q, NULL, walk_cb, &w) < 0 ? -EIO : w.n;
}

static int eng_suspend(void *arg, const char *dest, bool on)
{
	struct cfx_engine *g = arg;
	size_t i = 0;

	g->calls++;
	while (i < g->nsusp && strcasecmp(g->suspended[i], dest) != 0)
		i++;
	if (on && i == g->nsusp) {
		if (g->nsusp == CFX_MAX_SUSP || strlen(dest) >= sizeof(g->suspended[0]))
			return -ENOSPC;
		strcpy(g->suspended[g->nsusp++], dest);
	} else if (!on && i < g->nsusp) {
		memmove(g->suspended[i], g->suspended[i + 1], (g->nsusp - i - 1) * 64);
		g->nsusp--;
	}
	return 0;
}

/* ---- summary: counted by a scan here (the daemon keeps counters instead) ---- */

struct sum {
	struct cfx_engine *g;
	struct ctl_totals *t;
	struct ctl_dest_stat d[32];
	char names[32][64];
	size_t n;
};

static struct ctl_dest_stat *sum_dest(struct sum *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return &s->d[i];
	assert_true(s->n < 32);
	snprintf(s->names[s->n], 64, "%s", name);
	s->d[s->n] = (struct ctl_dest_stat){.name = s->names[s->n]};
	for (size_t i = 0; i < s->g->nsusp; i++)
		s->d[s->n].suspended |= strcasecmp(s->g->suspended[i], name) == 0;
	return &s->d[s->n++];
}

/* Count e's pending recipients into its groups' rows. */
static void sum_env(struct sum *s, const struct queue_env *e)
{
	for (uint32_t k = 0; k < e->ndest; k++) {
		uint64_t n = 0;
		struct ctl_dest_stat *d;

		for (uint32_t i = 0; i < e->nrcpt; i++)
			n += e->rcpts[i].dest == k && e->rcpts[i].state == QUEUE_RCPT_PENDING;
		if (!n)
			continue;
		d = sum_dest(s, e->dests[k].name);
		d->messages++;
		d->recipients += n;
		d->bytes += e->body_len;
		if (!d->oldest_ms || e->created_ms < d->oldest_ms)
			d->oldest_ms = e->created_ms;
		if (!d->next_ms || (e->dests[k].due && e->dests[k].due < d->next_ms))
			d->next_ms = e->dests[k].due;
		s->t->recipients += n;
	}
}

static int sum_cb(void *arg, const struct queue_id *id, const void *meta, size_t len)
{
	struct sum *s = arg;
	struct queue_env *e = NULL;

	assert_int_equal(queue_env_decode(meta, len, &e), 0);
	s->t->messages++;
	s->t->bytes += e->body_len;
	sum_env(s, e);
	queue_env_free(e);
	return 0;
}

static int eng_summary(void *arg, struct ctl_totals *t, ctl_dest_fn fn, void *cookie)
{
	static struct sum s;

	s = (struct sum){.g = arg, .t = t};
	s.g->calls++;
	if (queue_scan_meta(s.g->q, NULL, sum_cb, &s) < 0)
		return -EIO;
	for (size_t k = 0; k < 2; k++) {
		if (!s.g->bo_dest[k][0])
			continue;
		sum_dest(&s, s.g->bo_dest[k])->backoff = s.g->bo[k]; /* (a row if none yet) */
	}
	for (size_t i = 0; i < s.n; i++)
		if (fn(cookie, &s.d[i]))
			break;
	return 0;
}

static int eng_reload(void *arg, char *msg, size_t len)
{
	struct cfx_engine *g = arg;

	g->calls++;
	snprintf(msg, len, "%s", g->reload_msg);
	return g->reload_ret;
}

/* cfx_table: see ctl_fx.h. */
struct ctl_engine cfx_table(struct cfx_engine *e)
{
	return (struct ctl_engine){.arg = e,
				   .q = e->q,
				   .summary = eng_summary,
				   .message = eng_message,
				   .retry = eng_retry,
				   .suspend = eng_suspend,
				   .clear = eng_clear,
				   .reload = eng_reload};
}

/* ---- setup ---- */

/* cfx_setup: see ctl_fx.h. Returns 0 or -1. */
int cfx_setup(void **state)
{
	static struct cfx fx;
	struct cfx *f = &fx;
	struct queue_opts o = {.backend = QUEUE_BACKEND_ROCKSDB, .write_buffer_size = 8 << 20};
	char err[256];

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/riptide-ctltest-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->sock, sizeof(f->sock), "%.63s/ctl.sock", f->dir);
	snprintf(f->outpath, sizeof(f->outpath), "%.63s/out", f->dir);
	snprintf(f->errpath, sizeof(f->errpath), "%.63s/err", f->dir);
	o.path = f->dir;
	if (queue_open(&o, &f->q, err, sizeof(err)) < 0) {
		fprintf(stderr, "queue_open: %s\n", err);
		return -1;
	}
	f->eng.q = f->q;
	f->table = cfx_table(&f->eng);
	if (ctl_start(f->sock, &f->table, &f->srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "ctl_start: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* cfx_teardown: see ctl_fx.h. Returns 0. */
int cfx_teardown(void **state)
{
	struct cfx *f = *state;

	ctl_stop(f->srv);
	queue_close(f->q);
	free(f->out);
	free(f->err);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	memset(f, 0, sizeof(*f));
	return 0;
}

/* ---- running programs ---- */

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Run argv with stdout to f->outpath (when out) and stderr to f->errpath. */
static int run(struct cfx *f, char *const *argv, bool out)
{
	struct rusage ru;
	int st = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(out ? f->outpath : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(f->errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(wait4(pid, &st, 0, &ru), pid);
	f->maxrss_kb = ru.ru_maxrss;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* cfx_run_sock: see ctl_fx.h. sock NULL: no -s. */
int cfx_run_sock(struct cfx *f, const char *sock, const char *const *args)
{
	const char *argv[40];
	size_t n = 0;
	int rc;

	argv[n++] = getenv("RIPTIDECTL");
	assert_non_null(argv[0]);
	if (sock) {
		argv[n++] = "-s";
		argv[n++] = sock;
	}
	while (*args && n < 39)
		argv[n++] = *args++;
	argv[n] = NULL;
	rc = run(f, (char *const *)argv, true);
	free(f->out);
	free(f->err);
	f->out = slurp(f->outpath);
	f->err = slurp(f->errpath);
	return rc;
}

/* cfx_run: see ctl_fx.h. */
int cfx_run(struct cfx *f, const char *const *args)
{
	return cfx_run_sock(f, f->sock, args);
}

/* cfx_python: see ctl_fx.h. */
int cfx_python(struct cfx *f, const char *script)
{
	const char *argv[] = {"/usr/bin/python3", "-c", script, f->outpath, NULL};
	char *saved = f->err;
	int rc;

	f->err = NULL;
	rc = run(f, (char *const *)argv, false);
	f->err = slurp(f->errpath);
	if (rc != 0)
		fprintf(stderr, "python: %s\n", f->err);
	free(saved);
	return rc;
}

/* cfx_lines: see ctl_fx.h. */
size_t cfx_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}
