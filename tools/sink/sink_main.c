/* riptide-sink — multi-threaded io_uring SMTP receiver for tests and benchmarks.
 *
 * Why: integration tests and the end-to-end benchmark need a receiver that is fast (never the
 * bottleneck), observable (per-message log lines with a body hash, body files, a stats file)
 * and scriptable per recipient (see sink_hooks.c). N worker threads each run a loop with an
 * smtpd worker on the shared listening sockets; the main thread only waits for signals (with
 * sigtimedwait, so no async-signal handler is needed) and rewrites the stats file every 100 ms.
 */
#include "tools/sink/sink.h"

#include "engine/smtp/smtp.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SINK_TICK_MS	100
#define SINK_GRACE_MS	1000
#define SINK_RING	4096
#define SINK_STATS_LINE 512

struct sink sink_g = {.out_fd = -1};

static const char sink_usage_text[] =
    "usage: riptide-sink [OPTION]...\n"
    "  -l ADDR  listen on 127.0.0.1:2526 (default), [::1]:2526 or unix:/path (repeatable)\n"
    "  -t N     worker threads (default: online CPUs)\n"
    "  -o FILE  append one line per accepted message (see \"Log line\" below)\n"
    "  --log-peer  end each -o line with peer=ADDR helo=NAME (see \"Log line\")\n"
    "  -d DIR   save each accepted body to DIR/<n>.eml\n"
    "  -c FILE  stats file, rewritten every 100 ms\n"
    "  -g CODE  reply CODE (400..599) at the greeting and close (= --reply connect=CODE)\n"
    "  -x N     drop the connection after N body bytes of every DATA\n"
    "  -w MS    delay every reply by MS milliseconds\n"
    "  -s SIZE  max message size (default 100M)\n"
    "  -q       quiet\n"
    "  -h, --help  this text\n"
    "Extensions not to advertise (each on its own; a hidden SIZE, 8BITMIME or SMTPUTF8 makes\n"
    "its MAIL parameter a 555 5.5.4, a hidden DSN its RET, ENVID, NOTIFY and ORCPT\n"
    "parameters; a hidden ENHANCEDSTATUSCODES strips the codes from every reply):\n"
    "  --no-pipelining  --no-size  --no-8bitmime  --no-smtputf8  --no-dsn\n"
    "  --no-enhancedstatuscodes\n"
    "  --no-starttls    accepted for scripts; no effect (STARTTLS is offered exactly when\n"
    "                   --tls-cert or --tls-fail is given)\n"
    "TLS and AUTH:\n"
    "  --tls-cert FILE --tls-key FILE  offer STARTTLS with this PEM certificate chain and key\n"
    "  --tls-listen ADDR  also listen on ADDR with TLS on connect (smtps; repeatable; needs\n"
    "                   --tls-cert/--tls-key or --tls-fail)\n"
    "  --tls-fail       offer STARTTLS, answer it with 220, then fail every handshake: the sink\n"
    "                   acts as a TLS client, so both sides get a ClientHello and abort with an\n"
    "                   unexpected_message alert (a client reading the sink's ClientHello\n"
    "                   with the 220 may call it plaintext after the 220); also on\n"
    "                   --tls-listen; plaintext sessions still work\n"
    "  --auth USER:PASSWORD  accept AUTH PLAIN/LOGIN with these credentials (repeatable);\n"
    "                   AUTH is offered only after STARTTLS, on --tls-listen or on a\n"
    "                   unix: listener\n"
    "  --auth-plaintext  offer AUTH on plaintext TCP sessions too\n"
    "  --auth-required  MAIL without AUTH gets \"530 5.7.0 Authentication required\"\n"
    "Per-command faults (STEP: connect, ehlo (= helo: both commands), mail, rcpt, data (the\n"
    "DATA command, before 354), dot (after the final dot); each option repeatable):\n"
    "  --reply STEP=CODE[:TEXT]   answer STEP with CODE and TEXT (default text: \"X.3.0 Error:\n"
    "                             command failed\"); e.g. rcpt=452, dot=554:5.7.1 rejected.\n"
    "                             A 2xx accepts (dot: the message is taken); any 421 closes.\n"
    "                             data takes 354 or 4xx/5xx, other steps 2xx/4xx/5xx\n"
    "  --drop-after STEP[,STEP]   close the connection without replying to STEP\n"
    "  --421-after STEP[,STEP]    answer STEP with 421 (4.3.0; 4.3.2 at connect) and close\n"
    "  STEP may end in /N (only every Nth occurrence, counted over all connections) and/or %P\n"
    "  (with probability P percent, 1..99): --reply rcpt/3=452 --drop-after mail%10.\n"
    "  Rules of one step are tried in the order given; the first that fires decides the reply.\n"
    "  --max-rcpts N  accept N recipients per transaction, then \"452 4.5.3\" (default 1000)\n"
    "Recipient local parts (used where no fault rule fired): 450- 550- 421- delay<MS>-\n"
    "  fail<N>- (450 the first N times) data450- data550- (that verdict after the dot)\n"
    "Log line (-o), fields separated by one space:\n"
    "  TIME_US SENDER|<> RCPT[,RCPT...] BODY_BYTES FNV1A64_HEX MESSAGE-ID|- [PARAM...]\n"
    "  PARAMs: the parameters the message arrived with, in their canonical wire form: MAIL's\n"
    "  BODY=8BITMIME, SMTPUTF8, RET=FULL|HDRS, ENVID=<xtext>, then per recipient I (0-based\n"
    "  position in the RCPT list) I:NOTIFY=<NEVER|list> and I:ORCPT=<addr-type>;<xtext>\n"
    "  (SIZE= and BODY=7BIT are not recorded). E.g. ... <id@x> RET=HDRS ENVID=q+2B1\n"
    "  0:NOTIFY=SUCCESS,FAILURE 0:ORCPT=rfc822;a@b.example 1:NOTIFY=NEVER\n"
    "  then tls=VERSION (e.g. tls=TLSv1.3) when the message came over TLS and auth=USER when\n"
    "  the client logged in.\n"
    "  With --log-peer, two more fields end every line: peer=ADDR (the client's IP address\n"
    "  without port, e.g. peer=127.0.0.1 or peer=::1; peer=unix on a unix: listener) and\n"
    "  helo=NAME (the session's HELO/EHLO argument as sent: its first word, at most 255\n"
    "  bytes). Messages per client address: grep -o ' peer=[^ ]*' FILE | sort | uniq -c\n"
    "Stats (-c and the line printed at exit), as KEY=N: messages recipients bytes connections\n"
    "  rejected tls_sessions (sessions that had TLS up; counted with --tls-cert only)\n"
    "  max_concurrent (the most sessions open at the same time since start, all threads\n"
    "  together, exact) open_now (sessions open now; a session is open from its accept until\n"
    "  its connection is closed)\n";

static void sink_usage(FILE *f)
{
	fputs(sink_usage_text, f);
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
		if (sink_num(arg, 599, &v))
			return -EINVAL;
		return sink_fault_greet(o, (int)v);
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

enum {
	SINK_OPT_REPLY = 0x100,
	SINK_OPT_DROP_AFTER,
	SINK_OPT_421_AFTER,
	SINK_OPT_MAX_RCPTS,
	SINK_OPT_LOG_PEER,
	SINK_OPT_TLS_CERT,
	SINK_OPT_TLS_KEY,
	SINK_OPT_TLS_LISTEN,
	SINK_OPT_TLS_FAIL,
	SINK_OPT_AUTH,
	SINK_OPT_AUTH_REQUIRED,
	SINK_OPT_AUTH_PLAINTEXT,
	SINK_OPT_HIDE = 0x1000, /* + the SMTP_EXT_* bit (all below 0x1000) */
};

static const struct option sink_longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"no-pipelining", no_argument, NULL, SINK_OPT_HIDE + SMTP_EXT_PIPELINING},
    {"no-size", no_argument, NULL, SINK_OPT_HIDE + SMTP_EXT_SIZE},
    {"no-8bitmime", no_argument, NULL, SINK_OPT_HIDE + SMTP_EXT_8BITMIME},
    {"no-enhancedstatuscodes", no_argument, NULL, SINK_OPT_HIDE + SMTP_EXT_ENHANCEDSTATUSCODES},
    {"no-smtputf8", no_argument, NULL, SINK_OPT_HIDE + SMTP_EXT_SMTPUTF8},
    {"no-dsn", no_argument, NULL, SINK_OPT_HIDE + SMTP_EXT_DSN},
    {"no-starttls", no_argument, NULL, SINK_OPT_HIDE + SMTP_EXT_STARTTLS}, /* smtpd ignores it */
    {"reply", required_argument, NULL, SINK_OPT_REPLY},
    {"drop-after", required_argument, NULL, SINK_OPT_DROP_AFTER},
    {"421-after", required_argument, NULL, SINK_OPT_421_AFTER},
    {"max-rcpts", required_argument, NULL, SINK_OPT_MAX_RCPTS},
    {"log-peer", no_argument, NULL, SINK_OPT_LOG_PEER},
    {"tls-cert", required_argument, NULL, SINK_OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, SINK_OPT_TLS_KEY},
    {"tls-listen", required_argument, NULL, SINK_OPT_TLS_LISTEN},
    {"tls-fail", no_argument, NULL, SINK_OPT_TLS_FAIL},
    {"auth", required_argument, NULL, SINK_OPT_AUTH},
    {"auth-required", no_argument, NULL, SINK_OPT_AUTH_REQUIRED},
    {"auth-plaintext", no_argument, NULL, SINK_OPT_AUTH_PLAINTEXT},
    {0},
};

/* The TLS and AUTH long options. */
static int sink_secopt(struct sink_opts *o, int c, const char *arg)
{
	switch (c) {
	case SINK_OPT_TLS_CERT:
		o->tls_cert = arg;
		return 0;
	case SINK_OPT_TLS_KEY:
		o->tls_key = arg;
		return 0;
	case SINK_OPT_TLS_LISTEN:
		if (o->ntls_listen == SINK_MAX_LISTEN)
			return -EINVAL;
		o->tls_listen[o->ntls_listen++] = arg;
		return 0;
	case SINK_OPT_TLS_FAIL:
		o->tls_fail = true;
		return 0;
	case SINK_OPT_AUTH:
		return sink_auth_add(o, arg);
	case SINK_OPT_AUTH_REQUIRED:
		o->auth_required = true;
		return 0;
	case SINK_OPT_AUTH_PLAINTEXT:
		o->auth_plaintext = true;
		return 0;
	}
	return -EINVAL;
}

/* The long options (fault rules, hidden extensions, limits, TLS and AUTH). */
static int sink_longopt(struct sink_opts *o, int c, const char *arg)
{
	uint64_t v;

	if (c >= SINK_OPT_TLS_CERT && c <= SINK_OPT_AUTH_PLAINTEXT)
		return sink_secopt(o, c, arg);
	if (c > SINK_OPT_HIDE) {
		o->hide_ext |= (uint32_t)(c - SINK_OPT_HIDE);
		return 0;
	}
	switch (c) {
	case SINK_OPT_REPLY:
		return sink_fault_reply(o, arg);
	case SINK_OPT_DROP_AFTER:
		return sink_fault_after(o, arg, 0);
	case SINK_OPT_421_AFTER:
		return sink_fault_after(o, arg, 421);
	case SINK_OPT_MAX_RCPTS:
		if (sink_num(arg, 1000000, &v) || v == 0)
			return -EINVAL;
		o->max_rcpts = (unsigned)v;
		return 0;
	case SINK_OPT_LOG_PEER:
		o->log_peer = true;
		return 0;
	}
	return -EINVAL;
}

/* Report a bad option value (the long name when it has one) and print the usage. */
static void sink_bad_opt(int c, int li, const char *arg)
{
	if (c == '?')
		; /* getopt said it already */
	else if (li >= 0)
		fprintf(stderr, "riptide-sink: bad value for --%s: %s\n", sink_longopts[li].name,
			arg ? arg : "");
	else
		fprintf(stderr, "riptide-sink: bad value for -%c: %s\n", c, arg ? arg : "");
	sink_usage(stderr);
}

static void sink_defaults(struct sink_opts *o)
{
	if (!o->nlisten)
		o->listen[o->nlisten++] = "127.0.0.1:2526";
	if (!o->threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o->threads = n > 0 ? (unsigned)n : 1;
	}
	if (!o->max_size)
		o->max_size = 100ull << 20;
}

/* Parse argv into o. 0, 1 after -h (usage printed), or -EINVAL (reported). */
static int sink_parse(struct sink_opts *o, int argc, char **argv)
{
	int c, li = -1;

	while ((c = getopt_long(argc, argv, "l:t:o:d:c:g:x:w:s:qh", sink_longopts, &li)) != -1) {
		if (c == 'h') {
			sink_usage(stdout);
			return 1;
		}
		if ((c < 0x100 ? sink_opt(o, c, optarg) : sink_longopt(o, c, optarg)) < 0) {
			sink_bad_opt(c, c < 0x100 ? -1 : li, optarg);
			return -EINVAL;
		}
		li = -1;
	}
	if (optind != argc) {
		sink_usage(stderr);
		return -EINVAL;
	}
	if (sink_sec_check(o) < 0)
		return -EINVAL;
	sink_defaults(o);
	return 0;
}

/* ---- stats ---- */

#define SINK_NSTATS 8

/* The stats, in the order of the line: the workers' counters summed, then max_concurrent and
 * open_now (process-wide). */
static void sink_totals(struct sink_worker *ws, unsigned n, uint64_t t[SINK_NSTATS])
{
	memset(t, 0, SINK_NSTATS * sizeof(*t));
	for (unsigned i = 0; i < n; i++) {
		t[0] += atomic_load_explicit(&ws[i].c.messages, memory_order_relaxed);
		t[1] += atomic_load_explicit(&ws[i].c.recipients, memory_order_relaxed);
		t[2] += atomic_load_explicit(&ws[i].c.bytes, memory_order_relaxed);
		t[3] += atomic_load_explicit(&ws[i].c.connections, memory_order_relaxed);
		t[4] += atomic_load_explicit(&ws[i].c.rejected, memory_order_relaxed);
		t[5] += atomic_load_explicit(&ws[i].c.tls_sessions, memory_order_relaxed);
	}
	t[6] = atomic_load_explicit(&sink_g.max_open, memory_order_relaxed);
	t[7] = atomic_load_explicit(&sink_g.open, memory_order_relaxed);
}

static int sink_stats_line(struct sink_worker *ws, unsigned n, char *buf, size_t len)
{
	uint64_t t[SINK_NSTATS];

	sink_totals(ws, n, t);
	return snprintf(buf, len,
			"messages=%" PRIu64 " recipients=%" PRIu64 " bytes=%" PRIu64
			" connections=%" PRIu64 " rejected=%" PRIu64 " tls_sessions=%" PRIu64
			" max_concurrent=%" PRIu64 " open_now=%" PRIu64 "\n",
			t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
}

static void sink_stats_write(struct sink_worker *ws, unsigned n)
{
	char line[SINK_STATS_LINE], tmp[4200];
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
	w->rng = ((uint64_t)w->idx + 1) * 0x9e3779b97f4a7c15ull ^ util_mono_us();
	w->rng |= 1; /* xorshift needs a nonzero state */
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
	struct smtpd_hooks hooks = sink_hooks_get(&sink_g.o);
	struct smtpd_config cfg = {
	    .greeting = "riptide-sink",
	    .max_size = sink_g.o.max_size,
	    .max_rcpts = sink_g.o.max_rcpts,
	    .reply_delay_ms = sink_g.o.delay_ms,
	    .session_data_size = sizeof(struct sink_sess),
	    .hide_ext = sink_g.o.hide_ext,
	};
	int ret = sink_sec_config(&cfg);

	if (ret < 0)
		return ret;
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
	return sink_sec_listen(*srv);
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

/* Block SIGTERM, SIGINT and SIGPIPE (the workers inherit the mask); *set gets the two that
 * sink_wait waits for. */
static void sink_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	sigdelset(set, SIGPIPE);
}

/* main: parse the CLI, listen, start the workers, wait for SIGTERM/SIGINT, shut down gracefully,
 * print the stats line. Exit 0 on a signal, 1 on a setup error, 2 on a usage error. */
int main(int argc, char **argv)
{
	struct smtpd_server *srv = NULL;
	struct sink_worker *ws = NULL;
	unsigned n;
	sigset_t set;
	char line[SINK_STATS_LINE];
	sem_t ready;
	int ret = sink_parse(&sink_g.o, argc, argv);

	if (ret)
		return ret < 0 ? 2 : 0; /* 0: -h */
	ret = 1;
	n = sink_g.o.threads;
	sink_signals(&set);
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
	sink_sec_free();
	free(ws);
	sink_fail_free();
	if (sink_g.out_fd >= 0)
		close(sink_g.out_fd);
	return ret;
}
