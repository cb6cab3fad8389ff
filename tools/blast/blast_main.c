/* riptide-blast — SMTP load generator: options, progress bar, summary and result line.
 *
 * Why: integration tests and benchmark scripts drive it through a fixed set of flags and parse
 * one machine-readable `result ...` line on stdout; everything for humans (progress bar when
 * stderr is a terminal, the summary) goes to stderr so stdout stays exactly that one line.
 * Exit status: 0 every message got a reply, 1 some did not (connection error, not attempted),
 * 2 bad arguments.
 */
#include "tools/blast/blast.h"
#include "tls/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char blast_usage_tls[] =
    "  --tls         STARTTLS when offered (no certificate check); a connection whose\n"
    "                handshake failed is made again in plaintext\n"
    "  --tls-required  STARTTLS or the connection fails\n"
    "  --smtps       TLS on connect (implicit TLS, e.g. port 465)\n"
    "  --auth USER:PASSWORD  log in (AUTH PLAIN, or LOGIN when PLAIN is not offered) on\n"
    "                encrypted or UNIX socket connections before the first MAIL\n"
    "  --auth-plaintext  with --auth: log in on unencrypted TCP connections too\n"
    "The result line on stdout: result sent= ok= failed= elapsed_ms= msg_per_s= p50_ms=\n"
    "  p99_ms= codes=CODE:N,... sessions= (connections that got ready: greeting, EHLO and\n"
    "  TLS done) tls_sessions= (of them encrypted) tls_failed= (connections TLS could\n"
    "  not be had on) auth_failed= (connections AUTH did not succeed on)\n";

static void blast_usage(FILE *f)
{
	fprintf(f, "usage: riptide-blast [-t HOST:PORT | -u /path/to.sock] [options]\n"
		   "  -t HOST:PORT  target (default 127.0.0.1:2525)\n"
		   "  -u PATH       target UNIX socket\n"
		   "  -n N          messages (default 1000)\n"
		   "  -c S          concurrent sessions (default 20)\n"
		   "  -s SIZE       message size in bytes, k/M suffixes (default 2048)\n"
		   "  -r R          recipients per message (default 1)\n"
		   "  -d DOMAINS    comma-separated recipient domains (default example.test)\n"
		   "  --rcpt ADDR   explicit recipient (repeatable; overrides -r/-d)\n"
		   "  -f ADDR       sender (default blast@riptide-blast.test)\n"
		   "  -P            no pipelining (lock-step) even if offered\n"
		   "  -m M          max messages per connection (default 100, 0 = unlimited)\n"
		   "  -T N          threads (default 1)\n"
		   "  -L FILE       per-message log: <message-id> <code> <queue id|-> <start_us> "
		   "<reply_us>\n"
		   "  -q            quiet (no progress bar)\n"
		   "  --body FILE   send this file (CRLF-normalised) as every message body\n"
		   "  -v            trace SMTP sessions on stderr\n");
	fputs(blast_usage_tls, f);
}

static int blast_bad(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "riptide-blast: invalid %s '%s': %s\n", opt, val, why);
	return -EINVAL;
}

static int blast_num(const char *opt, const char *val, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(val, &end, 10);
	if (errno || end == val || *end || val[0] == '-')
		return blast_bad(opt, val, "not a number");
	if (v < min || v > max) {
		fprintf(stderr, "riptide-blast: invalid %s '%s': must be %llu..%llu\n", opt, val,
			(unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int blast_domains(struct blast_cfg *cfg, const char *list)
{
	char *copy = util_xstrndup(list, strlen(list)), *save = NULL, *tok;

	cfg->ndomains = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strlen(tok) > 200 || strpbrk(tok, " <>\r\n@"))
			return blast_bad("-d", list, "bad domain");
		cfg->domains = util_xrealloc(cfg->domains, (cfg->ndomains + 1) * sizeof(char *));
		cfg->domains[cfg->ndomains++] = tok;
	}
	if (!cfg->ndomains)
		return blast_bad("-d", list, "no domain");
	return 0; /* copy stays alive: domains point into it */
}

static int blast_addr_opt(const char *opt, const char *val)
{
	if (strlen(val) > 250 || strpbrk(val, " <>\r\n"))
		return blast_bad(opt, val, "bad address");
	return 0;
}

static int blast_target(struct blast_cfg *cfg, const char *t, const char *u)
{
	char buf[sizeof(cfg->target) + 8];

	if (t && u) {
		fprintf(stderr, "riptide-blast: -t and -u are exclusive\n");
		return -EINVAL;
	}
	if (u)
		snprintf(buf, sizeof(buf), "unix:%s", u);
	else
		snprintf(buf, sizeof(buf), "%s", t ? t : "127.0.0.1:2525");
	if (util_addr_parse(buf, &cfg->addr) < 0)
		return blast_bad(u ? "-u" : "-t", u ? u : t, "expected HOST:PORT or a socket path");
	util_addr_format(&cfg->addr, cfg->target, sizeof(cfg->target));
	return 0;
}

enum {
	OPT_RCPT = 256,
	OPT_BODY,
	OPT_TLS, /* OPT_TLS..OPT_AUTH_PLAINTEXT: blast_secopt */
	OPT_TLS_REQUIRED,
	OPT_SMTPS,
	OPT_AUTH,
	OPT_AUTH_PLAINTEXT,
};

/* --auth USER:PASSWORD: split at the first ':' (the password may hold more). */
static int blast_auth_opt(struct blast_cfg *cfg, const char *a)
{
	const char *colon = strchr(a, ':');

	if (!colon || colon == a || strpbrk(a, "\r\n"))
		return blast_bad("--auth", "...", "expected USER:PASSWORD");
	free(cfg->auth_user);
	cfg->auth_user = util_xstrndup(a, strlen(a));
	cfg->auth_user[colon - a] = '\0';
	cfg->auth_password = cfg->auth_user + (colon - a) + 1;
	return 0;
}

/* --tls, --tls-required, --smtps (one of them), --auth, --auth-plaintext. */
static int blast_secopt(struct blast_cfg *cfg, int c, const char *a)
{
	if (c == OPT_AUTH)
		return blast_auth_opt(cfg, a);
	if (c == OPT_AUTH_PLAINTEXT) {
		cfg->auth_plaintext = true;
		return 0;
	}
	if (cfg->tls != BLAST_TLS_NONE) {
		fprintf(stderr, "riptide-blast: --tls, --tls-required and --smtps are exclusive\n");
		return -EINVAL;
	}
	cfg->tls = c == OPT_TLS	    ? BLAST_TLS_TRY
		   : c == OPT_SMTPS ? BLAST_TLS_SMTPS
				    : BLAST_TLS_REQUIRE;
	return 0;
}

/* The numeric options (-n -c -r -m -T -s). Returns 0, -EINVAL (said on stderr) or -ENOENT when
 * c is not one of them. */
static int blast_opt_num(struct blast_cfg *cfg, int c, const char *a)
{
	uint64_t v = 0;
	int ret;

	switch (c) {
	case 'n':
		return blast_num("-n", a, 0, 1000000000ull, &cfg->n);
	case 'c':
		ret = blast_num("-c", a, 1, 100000, &v);
		cfg->conc = (unsigned)v;
		return ret;
	case 'r':
		ret = blast_num("-r", a, 1, 1000, &v);
		cfg->rcpt_per_msg = (unsigned)v;
		return ret;
	case 'm':
		ret = blast_num("-m", a, 0, 1u << 30, &v);
		cfg->max_per_conn = (unsigned)v;
		return ret;
	case 'T':
		ret = blast_num("-T", a, 1, 256, &v);
		cfg->threads = (unsigned)v;
		return ret;
	case 's':
		if (util_parse_size(a, &cfg->size) < 0 || cfg->size > (1ull << 30))
			return blast_bad("-s", a, "expected a size up to 1G (k/M suffixes)");
		return 0;
	}
	return -ENOENT;
}

static int blast_opt(struct blast_cfg *cfg, int c, const char *a, const char **body_path)
{
	int ret = blast_opt_num(cfg, c, a);

	if (ret != -ENOENT)
		return ret;
	switch (c) {
	case 'd':
		return blast_domains(cfg, a);
	case 'f':
		cfg->sender = a;
		return blast_addr_opt("-f", a);
	case OPT_RCPT:
		cfg->rcpts = util_xrealloc(cfg->rcpts, (cfg->nrcpts + 1) * sizeof(char *));
		cfg->rcpts[cfg->nrcpts++] = (char *)a;
		return blast_addr_opt("--rcpt", a);
	case 'P':
		cfg->no_pipelining = true;
		return 0;
	case 'L':
		cfg->log_path = a;
		return 0;
	case 'q':
		cfg->quiet = true;
		return 0;
	case 'v':
		cfg->verbose = true;
		return 0;
	case OPT_BODY:
		*body_path = a;
		return 0;
	}
	return -EINVAL;
}

static int blast_parse(struct blast_cfg *cfg, int argc, char **argv, const char **body_path)
{
	static const struct option longopts[] = {
	    {"rcpt", required_argument, NULL, OPT_RCPT},
	    {"body", required_argument, NULL, OPT_BODY},
	    {"tls", no_argument, NULL, OPT_TLS},
	    {"tls-required", no_argument, NULL, OPT_TLS_REQUIRED},
	    {"smtps", no_argument, NULL, OPT_SMTPS},
	    {"auth", required_argument, NULL, OPT_AUTH},
	    {"auth-plaintext", no_argument, NULL, OPT_AUTH_PLAINTEXT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *t = NULL, *u = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "t:u:n:c:s:r:d:f:Pm:T:L:qvh", longopts, NULL)) != -1) {
		if (c == 'h') {
			blast_usage(stdout);
			exit(0);
		}
		if (c == 't' || c == 'u') {
			*(c == 't' ? &t : &u) = optarg;
			continue;
		}
		if (c >= OPT_TLS && c <= OPT_AUTH_PLAINTEXT) {
			if (blast_secopt(cfg, c, optarg) < 0)
				return -EINVAL;
			continue;
		}
		if (c == '?' || blast_opt(cfg, c, optarg, body_path) < 0)
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(stderr, "riptide-blast: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return blast_target(cfg, t, u);
}

static void blast_defaults(struct blast_cfg *cfg)
{
	uint64_t r = 0;

	cfg->n = 1000;
	cfg->conc = 20;
	cfg->size = 2048;
	cfg->rcpt_per_msg = 1;
	cfg->domains = NULL;
	cfg->ndomains = 0;
	cfg->sender = "blast@riptide-blast.test";
	cfg->max_per_conn = 100;
	cfg->threads = 1;
	cfg->log_fd = -1;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = util_mono_us() ^ ((uint64_t)getpid() << 32);
	snprintf(cfg->runid, sizeof(cfg->runid), "%016llx", (unsigned long long)r);
}

/* The client context of --tls/--tls-required/--smtps: no certificate verification (a load
 * generator talks to test servers), no session resumption (every connection pays a full
 * handshake: the worst case for the server). */
static int blast_tls_ctx(struct blast_cfg *cfg)
{
	struct tls_client_opts o = {.verify = TLS_VERIFY_NONE};
	char err[256];
	int ret = tls_ctx_client_new(&o, &cfg->tls_ctx, err, sizeof(err));

	if (ret < 0)
		fprintf(stderr, "riptide-blast: TLS: %s\n", err);
	return ret;
}

static int blast_setup(struct blast_cfg *cfg, const char *body_path)
{
	int ret;

	if (!cfg->ndomains)
		blast_domains(cfg, "example.test");
	if (cfg->nrcpts)
		cfg->rcpt_per_msg = 1; /* unused: the explicit list is sent as is */
	if (body_path && (ret = blast_load_body(cfg, body_path)) < 0)
		return blast_bad("--body", body_path, strerror(-ret));
	if (cfg->log_path) {
		cfg->log_fd =
		    open(cfg->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		if (cfg->log_fd < 0)
			return blast_bad("-L", cfg->log_path, strerror(errno));
	}
	if (cfg->tls && (ret = blast_tls_ctx(cfg)) < 0)
		return ret;
	if (cfg->n && cfg->conc > cfg->n)
		cfg->conc = (unsigned)cfg->n;
	if (cfg->threads > cfg->conc)
		cfg->threads = cfg->conc;
	cfg->lat_us = util_xcalloc(cfg->n ? cfg->n : 1, sizeof(*cfg->lat_us));
	return 0;
}

static void blast_progress(struct blast_cfg *cfg, uint64_t t0, bool final)
{
	uint64_t done = atomic_load(&cfg->done), ok = atomic_load(&cfg->ok);
	double el = (double)(util_mono_us() - t0) / 1e6, pct = cfg->n ? 100.0 * done / cfg->n : 100;
	char bar[31];
	unsigned fill = (unsigned)(pct * 30 / 100);

	for (unsigned i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r[%s] %llu/%llu %5.1f%% %8.1f msg/s ok=%llu fail=%llu%s", bar,
		(unsigned long long)done, (unsigned long long)cfg->n, pct, el > 0 ? done / el : 0.0,
		(unsigned long long)ok, (unsigned long long)(done - ok), final ? "\n" : "");
}

struct blast_run_arg {
	struct blast_cfg *cfg;
	struct blast_stats *st;
	int ret;
	uint64_t end_us;
	atomic_bool finished;
};

static void *blast_run_thread(void *p)
{
	struct blast_run_arg *a = p;

	a->ret = blast_run(a->cfg, a->st);
	a->end_us = util_mono_us();
	atomic_store(&a->finished, true);
	return NULL;
}

static int blast_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* p50/p99 (nearest rank) of the latencies of messages that got a reply, in ms. */
static void blast_percentiles(const struct blast_cfg *cfg, double *p50, double *p99)
{
	uint32_t *v = util_xmalloc((cfg->n ? cfg->n : 1) * sizeof(*v));
	size_t k = 0;

	for (uint64_t i = 0; i < cfg->n; i++)
		if (cfg->lat_us[i])
			v[k++] = cfg->lat_us[i] - 1;
	*p50 = *p99 = 0;
	if (k) {
		qsort(v, k, sizeof(*v), blast_cmp_u32);
		*p50 = v[(k * 50 + 99) / 100 - 1] / 1000.0;
		*p99 = v[(k * 99 + 99) / 100 - 1] / 1000.0;
	}
	free(v);
}

static void blast_codes(const struct blast_stats *st, char *out, size_t cap)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned c = 0; c < BLAST_MAX_CODE && off < cap; c++)
		if (st->codes[c])
			off += (size_t)snprintf(out + off, cap - off, "%s%u:%llu", off ? "," : "",
						c, (unsigned long long)st->codes[c]);
}

static int blast_report(struct blast_cfg *cfg, const struct blast_stats *st, uint64_t el_us)
{
	uint64_t sent = atomic_load(&cfg->started), ok = atomic_load(&cfg->ok);
	uint64_t unatt = cfg->n - sent, elapsed_ms = el_us / 1000;
	double rate = el_us ? (double)sent * 1e6 / (double)el_us : 0, p50, p99;
	char codes[BLAST_MAX_CODE * 16];

	blast_percentiles(cfg, &p50, &p99);
	blast_codes(st, codes, sizeof(codes));
	fprintf(stderr,
		"riptide-blast: %llu messages to %s in %.3f s: %.1f msg/s (%u sessions, %u "
		"threads, pipelining %s)\n"
		"  ok %llu, failed %llu (connection errors %llu, not attempted %llu)\n"
		"  latency MAIL->final reply: p50 %.2f ms, p99 %.2f ms\n"
		"  replies: %s\n",
		(unsigned long long)cfg->n, cfg->target, el_us / 1e6, rate, cfg->conc, cfg->threads,
		cfg->no_pipelining ? "off" : "if offered", (unsigned long long)ok,
		(unsigned long long)(cfg->n - ok), (unsigned long long)st->codes[0],
		(unsigned long long)unatt, p50, p99, codes[0] ? codes : "none");
	if (cfg->tls)
		fprintf(stderr, "  TLS: %llu of %llu sessions%s%s%s, %llu failed\n",
			(unsigned long long)st->tls_sessions, (unsigned long long)st->sessions,
			st->tls_desc[0] ? " (" : "", st->tls_desc, st->tls_desc[0] ? ")" : "",
			(unsigned long long)st->tls_failed);
	if (cfg->auth_user)
		fprintf(stderr, "  AUTH as %s: %llu connections failed to log in\n", cfg->auth_user,
			(unsigned long long)st->auth_failed);
	printf("result sent=%llu ok=%llu failed=%llu elapsed_ms=%llu msg_per_s=%.1f p50_ms=%.2f "
	       "p99_ms=%.2f codes=%s sessions=%llu tls_sessions=%llu tls_failed=%llu "
	       "auth_failed=%llu\n",
	       (unsigned long long)sent, (unsigned long long)ok, (unsigned long long)(cfg->n - ok),
	       (unsigned long long)elapsed_ms, rate, p50, p99, codes,
	       (unsigned long long)st->sessions, (unsigned long long)st->tls_sessions,
	       (unsigned long long)st->tls_failed, (unsigned long long)st->auth_failed);
	fflush(stdout);
	return unatt || st->codes[0] ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct blast_cfg cfg;
	static struct blast_stats st;
	struct blast_run_arg a = {.cfg = &cfg, .st = &st};
	const char *body_path = NULL;
	unsigned tick = 0;
	bool bar;
	pthread_t th;
	uint64_t t0;
	int rc;

	blast_defaults(&cfg);
	if (blast_parse(&cfg, argc, argv, &body_path) < 0 || blast_setup(&cfg, body_path) < 0) {
		fprintf(stderr, "riptide-blast: try --help\n");
		return 2;
	}
	bar = !cfg.quiet && isatty(STDERR_FILENO);
	t0 = util_mono_us();
	if (cfg.n == 0) {
		a.end_us = t0;
		atomic_store(&a.finished, true);
	} else if (pthread_create(&th, NULL, blast_run_thread, &a) != 0) {
		return 1;
	}
	while (!atomic_load(&a.finished)) {
		usleep(10 * 1000);
		if (bar && ++tick % 20 == 0)
			blast_progress(&cfg, t0, false);
	}
	if (cfg.n)
		pthread_join(th, NULL);
	if (bar)
		blast_progress(&cfg, t0, true);
	tls_ctx_free(cfg.tls_ctx);
	if (a.ret < 0)
		fprintf(stderr, "riptide-blast: %s\n", strerror(-a.ret));
	rc = a.ret < 0 ? 1 : blast_report(&cfg, &st, a.end_us - t0);
	free(cfg.auth_user); /* after the report, which names the login */
	return rc;
}
