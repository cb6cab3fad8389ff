/* riptide-sink — multi-threaded io_uring SMTP receiver for tests and benchmarks.
 *
 * Why: integration tests and the end-to-end benchmark need a receiver that is fast (never the
 * bottleneck), observable (per-message log lines with a body hash, body files, a stats file)
 * and scriptable per recipient (see sink_hooks.c). N worker threads each run a loop with an
 * smtpd worker on the shared listening sockets; the main thread only waits for signals (with
 * sigtimedwait, so no async-signal handler is needed) and rewrites the stats file every 100 ms.
 */
#include "tools/sink/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SINK_TICK_MS  100
#define SINK_GRACE_MS 1000
#define SINK_RING     4096

struct sink sink_g = {.out_fd = -1};

static void sink_usage(void)
{
	fprintf(stderr,
		"usage: riptide-sink [-l ADDR]... [-t N] [-o FILE] [-d DIR] [-c FILE] [-g CODE]\n"
		"                    [-x N] [-w MS] [-s SIZE] [-q]\n"
		"  -l ADDR  listen on 127.0.0.1:2526 (default), [::1]:2526 or unix:/path\n"
		"  -t N     worker threads (default: online CPUs)\n"
		"  -o FILE  append one line per accepted message\n"
		"  -d DIR   save each accepted body to DIR/<n>.eml\n"
		"  -c FILE  stats file, rewritten every 100 ms\n"
		"  -g CODE  reply CODE at the greeting and close\n"
		"  -x N     drop the connection after N body bytes of every DATA\n"
		"  -w MS    delay every reply by MS milliseconds\n"
		"  -s SIZE  max message size (default 100M)\n"
		"  -q       quiet\n"
		"recipient local parts: 450- 550- 421- delay<MS>- fail<N>- data450- data550-\n");
}

static int sink_num(const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return (*s && !*end && !errno && *out <= max) ? 0 : -EINVAL;
}

static int sink_opt(struct sink_opts *o, int c, const char *arg)
{
	uint64_t v;

	switch (c) {
	case 'l':
		if (o->nlisten == SINK_MAX_LISTEN)
			return -EINVAL;
		o->listen[o->nlisten++] = arg;
		return 0;
	case 't':
		if (sink_num(arg, 256, &v) || v == 0)
			return -EINVAL;
		o->threads = (unsigned)v;
		return 0;
	case 'o':
		o->out_path = arg;
		return 0;
	case 'd':
		o->dir = arg;
		return 0;
	case 'c':
		o->stats = arg;
		return 0;
	case 'g':
		if (sink_num(arg, 599, &v) || v < 200)
			return -EINVAL;
		o->greet_code = (int)v;
		return 0;
	case 'x':
		o->drop = true;
		return sink_num(arg, UINT64_MAX, &o->drop_after);
	case 'w':
		return sink_num(arg, 3600000, &o->delay_ms);
	case 's':
		return util_parse_size(arg, &o->max_size);
	case 'q':
		o->quiet = true;
		return 0;
	}
	return -EINVAL;
}

static int sink_parse(struct sink_opts *o, int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "l:t:o:d:c:g:x:w:s:qh")) != -1) {
		if (sink_opt(o, c, optarg) < 0) {
			if (c != 'h' && c != '?')
				fprintf(stderr, "riptide-sink: bad value for -%c: %s\n", c, optarg);
			sink_usage();
			return -EINVAL;
		}
	}
	if (optind != argc) {
		sink_usage();
		return -EINVAL;
	}
	if (!o->nlisten)
		o->listen[o->nlisten++] = "127.0.0.1:2526";
	if (!o->threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o->threads = n > 0 ? (unsigned)n : 1;
	}
	if (!o->max_size)
		o->max_size = 100ull << 20;
	return 0;
}

/* ---- stats ---- */

static void sink_totals(struct sink_worker *ws, unsigned n, uint64_t t[5])
{
	memset(t, 0, 5 * sizeof(*t));
	for (unsigned i = 0; i < n; i++) {
		t[0] += atomic_load_explicit(&ws[i].c.messages, memory_order_relaxed);
		t[1] += atomic_load_explicit(&ws[i].c.recipients, memory_order_relaxed);
		t[2] += atomic_load_explicit(&ws[i].c.bytes, memory_order_relaxed);
		t[3] += atomic_load_explicit(&ws[i].c.connections, memory_order_relaxed);
		t[4] += atomic_load_explicit(&ws[i].c.rejected, memory_order_relaxed);
	}
}

static int sink_stats_line(struct sink_worker *ws, unsigned n, char *buf, size_t len)
{
	uint64_t t[5];

	sink_totals(ws, n, t);
	return snprintf(buf, len,
			"messages=%" PRIu64 " recipients=%" PRIu64 " bytes=%" PRIu64
			" connections=%" PRIu64 " rejected=%" PRIu64 "\n",
			t[0], t[1], t[2], t[3], t[4]);
}

static void sink_stats_write(struct sink_worker *ws, unsigned n)
{
	char line[256], tmp[4200];
	int len = sink_stats_line(ws, n, line, sizeof(line));
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", sink_g.o.stats, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)len) != len || close(fd) < 0 || rename(tmp, sink_g.o.stats))
		(void)unlink(tmp);
}

/* ---- workers ---- */

static void sink_flush_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct sink_worker *w = op->owner;

	sink_log_flush(w);
	if (!w->stopping)
		loop_timer(w->l, &w->flush_op, SINK_TICK_MS);
}

static void sink_worker_done(struct smtpd_worker *sw, void *arg)
{
	struct sink_worker *w = arg;

	smtpd_worker_free(sw);
	w->sw = NULL;
	sink_log_flush(w);
	loop_stop(w->l);
}

static void sink_stop_msg(struct loop *l, struct loop_msg *m)
{
	struct sink_worker *w = container_of(m, struct sink_worker, stop_msg);

	w->stopping = true;
	smtpd_worker_shutdown(w->sw, SINK_GRACE_MS, sink_worker_done, w);
}

static int sink_worker_setup(struct sink_worker *w, struct smtpd_server *srv)
{
	int ret = loop_new(&w->l, SINK_RING);

	if (ret < 0)
		return ret;
	loop_set_data(w->l, w);
	ret = smtpd_worker_new(&w->sw, srv, w->l, w);
	if (ret < 0)
		return ret;
	w->flush_op = (struct loop_op){.cb = sink_flush_cb, .owner = w};
	if (sink_g.out_fd >= 0)
		loop_timer(w->l, &w->flush_op, SINK_TICK_MS);
	return 0;
}

static void *sink_thread(void *arg)
{
	struct sink_worker *w = arg;

	w->err = sink_worker_setup(w, w->srv);
	sem_post(w->ready);
	if (w->err == 0)
		w->err = loop_run(w->l);
	sink_log_flush(w);
	return NULL;
}

static int sink_start(struct sink_worker *ws, unsigned n, struct smtpd_server *srv, sem_t *ready)
{
	for (unsigned i = 0; i < n; i++) {
		ws[i].idx = i;
		ws[i].ready = ready;
		ws[i].srv = srv;
		if (pthread_create(&ws[i].tid, NULL, sink_thread, &ws[i]) != 0)
			return -EAGAIN;
		sem_wait(ready);
		if (ws[i].err < 0)
			return ws[i].err;
	}
	return 0;
}

static void sink_stop(struct sink_worker *ws, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		ws[i].stop_msg.fn = sink_stop_msg;
		loop_post(ws[i].l, &ws[i].stop_msg);
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(ws[i].tid, NULL);
		loop_free(ws[i].l);
		free(ws[i].log);
	}
}

static int sink_server(struct smtpd_server **srv)
{
	struct smtpd_hooks hooks = sink_hooks;
	struct smtpd_config cfg = {
	    .greeting = "riptide-sink",
	    .max_size = sink_g.o.max_size,
	    .reply_delay_ms = sink_g.o.delay_ms,
	    .session_data_size = sizeof(struct sink_sess),
	};
	int ret;

	if (!sink_g.o.drop)
		hooks.on_data_progress = NULL;
	ret = smtpd_server_new(srv, &cfg, &hooks, NULL);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < sink_g.o.nlisten; i++) {
		ret = smtpd_server_listen_str(*srv, sink_g.o.listen[i]);
		if (ret < 0) {
			fprintf(stderr, "riptide-sink: listen %s: %s\n", sink_g.o.listen[i],
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int sink_open_outputs(void)
{
	struct sink_opts *o = &sink_g.o;

	if (o->out_path) {
		sink_g.out_fd = open(o->out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (sink_g.out_fd < 0) {
			fprintf(stderr, "riptide-sink: %s: %s\n", o->out_path, strerror(errno));
			return -errno;
		}
	}
	if (o->dir && access(o->dir, W_OK) < 0) {
		fprintf(stderr, "riptide-sink: %s: %s\n", o->dir, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Wait for SIGTERM/SIGINT, rewriting the stats file every tick. */
static void sink_wait(struct sink_worker *ws, unsigned n, const sigset_t *set)
{
	struct timespec tick = {.tv_sec = 0, .tv_nsec = SINK_TICK_MS * 1000000L};
	int sig;

	for (;;) {
		if (sink_g.o.stats)
			sink_stats_write(ws, n);
		sig = sigtimedwait(set, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			return;
	}
}

/* main: parse the CLI, listen, start the workers, wait for SIGTERM/SIGINT, shut down gracefully,
 * print the stats line. Exit 0 on a signal, 1 on a setup error, 2 on a usage error. */
int main(int argc, char **argv)
{
	struct smtpd_server *srv = NULL;
	struct sink_worker *ws = NULL;
	unsigned n;
	sigset_t set;
	char line[256];
	sem_t ready;
	int ret = 1;

	if (sink_parse(&sink_g.o, argc, argv) < 0)
		return 2;
	n = sink_g.o.threads;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the workers */
	sigdelset(&set, SIGPIPE);
	if (sink_open_outputs() < 0 || sink_server(&srv) < 0)
		goto out;
	ws = util_xcalloc(n, sizeof(*ws));
	sem_init(&ready, 0, 0);
	if (sink_start(ws, n, srv, &ready) < 0) {
		fprintf(stderr, "riptide-sink: cannot start workers\n");
		_exit(1);
	}
	if (!sink_g.o.quiet)
		fprintf(stderr, "riptide-sink: listening on %s%s (%u threads)\n",
			sink_g.o.listen[0], sink_g.o.nlisten > 1 ? " and more" : "", n);
	sink_wait(ws, n, &set);
	sink_stop(ws, n);
	if (sink_g.o.stats)
		sink_stats_write(ws, n);
	sink_stats_line(ws, n, line, sizeof(line));
	fputs(line, stdout);
	ret = 0;
out:
	smtpd_server_free(srv);
	free(ws);
	sink_fail_free();
	if (sink_g.out_fd >= 0)
		close(sink_g.out_fd);
	return ret;
}
