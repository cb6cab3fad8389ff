/* riptidectl_queue.c — `riptidectl queue ...`: the queue of a running riptide, through its
 * control socket (engine/control); and `riptidectl reload`, through the same socket.
 *
 * Why a thin client: the daemon formats every answer (text or JSON) and streams it, so this
 * file only checks the command line, finds the socket, turns options into a request and maps
 * the outcome to an exit code: 0 done, 1 the daemon said no (unknown id, ...), 2 usage,
 * configuration, or no daemon to talk to. It holds no part of the answer in memory.
 */
#include "engine/config/config.h"
#include "engine/control/control.h"
#include "engine/util/util.h"
#include "tools/riptidectl/riptidectl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	RQ_DEST = 1u << 0,
	RQ_SENDER = 1u << 1,
	RQ_RCPT = 1u << 2,
	RQ_OLDER = 1u << 3,
	RQ_LIMIT = 1u << 4,
	RQ_ALL = 1u << 5,
	RQ_YES = 1u << 6,
};

/* A subcommand: the options it takes and its positional argument (none, an id, a
 * destination, or an optional id). */
enum rq_pos { RQ_NONE, RQ_ID, RQ_DESTNAME, RQ_OPT_ID };

static const struct rq_cmd {
	const char *name;
	unsigned opts;
	enum rq_pos pos;
} rq_cmds[] = {
    {"summary", 0, RQ_NONE},
    {"list", RQ_DEST | RQ_SENDER | RQ_RCPT | RQ_OLDER | RQ_LIMIT, RQ_NONE},
    {"show", 0, RQ_ID},
    {"delete", 0, RQ_ID},
    {"bounce", 0, RQ_ID},
    {"retry", RQ_DEST | RQ_ALL, RQ_OPT_ID},
    {"suspend", 0, RQ_DESTNAME},
    {"resume", 0, RQ_DESTNAME},
    {"clear", RQ_YES, RQ_NONE},
};

/* The parsed command line of one queue command. */
struct rq {
	const struct rq_cmd *cmd;
	bool json;
	unsigned given; /* RQ_* options seen */
	const char *dest, *sender, *rcpt, *pos;
	char older[24], limit[24];
	struct ctl_arg args[12]; /* every name at most once */
	size_t nargs;
};

static const struct option rq_longopts[] = {
    {"json", no_argument, NULL, 'j'},
    {"destination", required_argument, NULL, 'd'},
    {"sender", required_argument, NULL, 'S'},
    {"recipient", required_argument, NULL, 'r'},
    {"older-than", required_argument, NULL, 'o'},
    {"limit", required_argument, NULL, 'l'},
    {"all", no_argument, NULL, 'a'},
    {"yes", no_argument, NULL, 'y'},
    {NULL, 0, NULL, 0},
};

/* riptidectl_queue_usage: see riptidectl.h. */
void riptidectl_queue_usage(FILE *f)
{
	fprintf(f, "  queue [--json] summary           totals and one row per destination\n"
		   "  queue [--json] list [--destination D] [--sender S] [--recipient R]\n"
		   "                 [--older-than AGE] [--limit N]   one line per message\n"
		   "  queue [--json] show ID           envelope, recipients, destinations\n"
		   "  queue delete ID                  delete, no notice\n"
		   "  queue bounce ID                  fail now, with a notice to the sender\n"
		   "  queue retry ID | --destination D | --all   make due now\n"
		   "  queue suspend D | resume D       hold / release delivery to D\n"
		   "  queue clear --yes                delete everything, no notices\n"
		   "  S and R: an address, or a domain; '<>' is the null sender. AGE: 90s, 10m,\n"
		   "  2h, 1d. Exit 0 done, 1 the daemon said no, 2 usage/config/no daemon.\n");
}

/* Store one option of the queue command line. Returns 0 or -EINVAL (message printed). */
/* A count > 0 in decimal. Returns 0 or -EINVAL. */
static int rq_count(const char *arg, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(arg, &end, 10);
	return errno || end == arg || *end || *v == 0 ? -EINVAL : 0;
}

static int rq_opt(struct rq *q, int ch, const char *arg)
{
	uint64_t v;

	q->json |= ch == 'j';
	switch (ch) {
	case 'j':
		return 0;
	case 'd':
		q->dest = arg, q->given |= RQ_DEST;
		return 0;
	case 'S':
		q->sender = arg, q->given |= RQ_SENDER;
		return 0;
	case 'r':
		q->rcpt = arg, q->given |= RQ_RCPT;
		return 0;
	case 'a':
		q->given |= RQ_ALL;
		return 0;
	case 'y':
		q->given |= RQ_YES;
		return 0;
	case 'o':
		if (util_parse_duration_ms(arg, &v) < 0 || v == 0)
			break;
		snprintf(q->older, sizeof(q->older), "%llu", (unsigned long long)v);
		q->given |= RQ_OLDER;
		return 0;
	case 'l':
		if (rq_count(arg, &v) < 0)
			break;
		snprintf(q->limit, sizeof(q->limit), "%llu", (unsigned long long)v);
		q->given |= RQ_LIMIT;
		return 0;
	}
	fprintf(stderr, "riptidectl: bad value '%s' (durations: 90s, 10m, 2h, 1d; limit: N > 0)\n",
		arg);
	return -EINVAL;
}

/* Parse argv (argv[0] = the subcommand; options may come anywhere) into q. Returns 0 or
 * -EINVAL (message printed). */
static int rq_parse(struct rq *q, int argc, char **argv)
{
	int min = q->cmd->pos == RQ_ID || q->cmd->pos == RQ_DESTNAME;
	int max = q->cmd->pos != RQ_NONE, ch;

	optind = 0; /* glibc: start over (main's getopt ran before) */
	while ((ch = getopt_long(argc, argv, "", rq_longopts, NULL)) != -1)
		if (ch == '?' || rq_opt(q, ch, optarg) < 0)
			return -EINVAL;
	if (q->given & ~q->cmd->opts) {
		fprintf(stderr, "riptidectl: queue %s: option not valid here\n", q->cmd->name);
		return -EINVAL;
	}
	if (argc - optind < min || argc - optind > max) {
		fprintf(stderr, "riptidectl: queue %s: wrong number of arguments\n", q->cmd->name);
		return -EINVAL;
	}
	q->pos = optind < argc ? argv[optind] : NULL;
	return 0;
}

/* Check the positional argument and the combinations. Returns 0 or -EINVAL (printed). */
static int rq_check(const struct rq *q)
{
	struct queue_id id;
	bool want_id = q->cmd->pos == RQ_ID || (q->cmd->pos == RQ_OPT_ID && q->pos);

	if (want_id && queue_id_parse(q->pos, &id) < 0) {
		fprintf(stderr, "riptidectl: '%s' is not a message id (32 hex digits)\n", q->pos);
		return -EINVAL;
	}
	if (q->cmd->pos == RQ_OPT_ID &&
	    !!q->pos + !!(q->given & RQ_DEST) + !!(q->given & RQ_ALL) != 1) {
		fprintf(stderr,
			"riptidectl: queue retry takes one of ID, --destination D, --all\n");
		return -EINVAL;
	}
	if (q->cmd->pos == RQ_DESTNAME && !*q->pos) {
		fprintf(stderr, "riptidectl: queue %s: empty destination\n", q->cmd->name);
		return -EINVAL;
	}
	if ((q->cmd->opts & RQ_YES) && !(q->given & RQ_YES)) {
		fprintf(stderr, "riptidectl: queue clear deletes every queued message without "
				"notice; say --yes to do it\n");
		return -EINVAL;
	}
	return 0;
}

static void rq_arg(struct rq *q, const char *name, const char *value)
{
	q->args[q->nargs++] = (struct ctl_arg){name, value};
}

/* The request's arguments from q. */
static void rq_args(struct rq *q)
{
	bool dest_pos = q->cmd->pos == RQ_DESTNAME;

	if (q->json)
		rq_arg(q, "json", "1");
	if (q->pos)
		rq_arg(q, dest_pos ? "dest" : "id", q->pos);
	if (q->given & RQ_DEST)
		rq_arg(q, "dest", q->dest);
	if (q->given & RQ_SENDER)
		rq_arg(q, "sender", q->sender);
	if (q->given & RQ_RCPT)
		rq_arg(q, "rcpt", q->rcpt);
	if (q->given & RQ_OLDER)
		rq_arg(q, "older", q->older);
	if (q->given & RQ_LIMIT)
		rq_arg(q, "limit", q->limit);
	if (q->given & RQ_ALL)
		rq_arg(q, "all", "1");
	if (q->given & RQ_YES)
		rq_arg(q, "yes", "1");
}

/* The two keys that place the control socket ([main] spool, [queue] control_socket) and
 * their section headers, from the file at path, as INI text (caller frees), or NULL. For
 * `reload`, whose file may be broken: the daemon, not riptidectl, says what is wrong. */
static char *rq_socket_keys(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r"), *out;
	char line[4096], sect[64] = "", *buf = NULL, k[32];

	if (!f)
		return NULL;
	out = open_memstream(&buf, len);
	while (out && fgets(line, sizeof(line), f)) {
		if (sscanf(line, " [%63[^]]]", sect) == 1 || sscanf(line, " %31[a-z_] =", k) != 1)
			continue;
		if ((strcmp(sect, "main") == 0 && strcmp(k, "spool") == 0) ||
		    (strcmp(sect, "queue") == 0 && strcmp(k, "control_socket") == 0))
			fprintf(out, "[%s]\n%s%s", sect, line, strchr(line, '\n') ? "" : "\n");
	}
	fclose(f);
	if (out)
		fclose(out);
	return buf;
}

/* Load the configuration at o->config into c; lenient: a file that does not load gives the
 * socket's keys alone (see rq_socket_keys). Returns 0 or -1 (message printed). */
static int rq_load(const struct riptidectl_opts *o, struct config *c, bool lenient)
{
	char err[512], err2[512], *keys;
	size_t len = 0;
	int ret;

	if (config_load(c, o->config, err, sizeof(err)) == 0)
		return 0;
	if (!lenient || !o->config || !(keys = rq_socket_keys(o->config, &len))) {
		fprintf(stderr, "riptidectl: %s\n", err);
		return -1;
	}
	ret = config_load_buf(c, o->config, keys, len, err2, sizeof(err2));
	free(keys);
	if (ret < 0)
		fprintf(stderr, "riptidectl: %s\n", err);
	return ret < 0 ? -1 : 0;
}

/* The socket path: -s, else from the configuration (lenient: see rq_load). Returns 0 or -1
 * (message printed). */
static int rq_socket(const struct riptidectl_opts *o, char *path, size_t len, bool lenient)
{
	static struct config cfg;

	if (o->socket) {
		snprintf(path, len, "%s", o->socket);
		return 0;
	}
	if (rq_load(o, &cfg, lenient) < 0)
		return -1;
	if (ctl_socket_path(cfg.control_socket, cfg.spool, path, len) < 0) {
		fprintf(stderr, "riptidectl: control socket path too long (spool %s)\n", cfg.spool);
		config_free(&cfg);
		return -1;
	}
	config_free(&cfg);
	return 0;
}

/* riptidectl_queue: see riptidectl.h. */
int riptidectl_queue(const struct riptidectl_opts *o, int argc, char **argv)
{
	struct rq q = {.json = o->json};
	char path[4096], msg[1024];
	int rc;

	for (; argc > 0 && strcmp(argv[0], "--json") == 0; argc--, argv++)
		q.json = true; /* queue --json COMMAND */
	for (size_t i = 0; argc > 0 && i < sizeof(rq_cmds) / sizeof(rq_cmds[0]); i++)
		if (strcmp(argv[0], rq_cmds[i].name) == 0)
			q.cmd = &rq_cmds[i];
	if (!q.cmd) {
		fprintf(stderr, "riptidectl: queue: %s\n", argc ? "unknown command" : "no command");
		riptidectl_queue_usage(stderr);
		return 2;
	}
	if (rq_parse(&q, argc, argv) < 0 || rq_check(&q) < 0 ||
	    rq_socket(o, path, sizeof(path), false))
		return 2;
	rq_args(&q);
	rc = ctl_call(path, q.cmd->name, q.args, q.nargs, o->timeout_ms, stdout, msg, sizeof(msg));
	if (rc == 0 && msg[0] && !q.json)
		printf("%s\n", msg);
	if (rc != 0)
		fprintf(stderr, "riptidectl: %s\n", msg);
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "riptidectl: cannot write the output: %s\n", strerror(errno));
		rc = -EIO;
	}
	return rc == 0 ? 0 : rc > 0 && rc != EPROTO ? 1 : 2;
}

/* riptidectl_reload: see riptidectl.h. */
int riptidectl_reload(const struct riptidectl_opts *o, int argc, char **argv)
{
	struct ctl_arg json = {"json", "1"};
	char path[4096], msg[1400];
	int rc;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "riptidectl: reload takes no argument\n");
		return 2;
	}
	if (rq_socket(o, path, sizeof(path), true))
		return 2;
	rc = ctl_call(path, "reload", &json, o->json, o->timeout_ms, stdout, msg, sizeof(msg));
	if (rc == 0 && !o->json)
		printf("%s\n", msg);
	if (rc != 0)
		fprintf(stderr, "riptidectl: %s\n", msg);
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "riptidectl: cannot write the output: %s\n", strerror(errno));
		return 2;
	}
	return rc == 0 ? 0 : rc > 0 && rc != EPROTO ? 1 : 2;
}
