/* dnsmasq_fx — see dnsmasq_fx.h.
 *
 * Why a real dnsmasq: the module's promises (TTL, negative answers, merged queries, fallback)
 * are about what goes on the wire, and dnsmasq's --log-queries log is an independent witness
 * of how many queries reached the server.
 */
#include "tests/unit/dns/dnsmasq_fx.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>

static int bind_lo(int type, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* See dnsmasq_fx.h. */
int dnsmasq_free_port(void)
{
	for (int i = 0; i < 50; i++) {
		int u = bind_lo(SOCK_DGRAM, 0);
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		if (u < 0 || getsockname(u, (struct sockaddr *)&sa, &sl) < 0)
			return -1;
		int port = ntohs(sa.sin_port), t = bind_lo(SOCK_STREAM, port);
		close(u);
		if (t >= 0) {
			close(t);
			return port;
		}
	}
	return -1;
}

static int tcp_ready(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void run_child(struct dnsmasq *m, const char *const *args)
{
	char port[32], logf[160];
	const char *av[64] = {"dnsmasq",
			      "--no-resolv",
			      "--no-hosts",
			      "--keep-in-foreground",
			      "--listen-address=127.0.0.1",
			      "--bind-interfaces",
			      "--log-queries",
			      "--pid-file=",
			      "--user=root",
			      port,
			      logf};
	int n = 11;
	snprintf(port, sizeof(port), "--port=%d", m->port);
	snprintf(logf, sizeof(logf), "--log-facility=%s", m->log);
	for (int i = 0; args && args[i] && n < 63; i++)
		av[n++] = args[i];
	av[n] = NULL;
	execvp("dnsmasq", (char *const *)av);
	_exit(127);
}

static volatile sig_atomic_t wd_term;

static void wd_on_term(int sig)
{
	(void)sig;
	wd_term = 1;
}

/* The process the test knows as "dnsmasq" (m->pid): it runs the real one as its child and
 * stops it when the test stops it (SIGTERM), or when the test process is gone (the pipe's write
 * end, held only by the test, closes: also after an abort that skipped the teardown); it exits
 * when dnsmasq exits by itself. dnsmasq itself cannot be tied to us: PR_SET_PDEATHSIG does not
 * survive its credential changes. */
static void run_watchdog(struct dnsmasq *m, const char *const *args, int rfd)
{
	struct pollfd pf = {.fd = rfd, .events = POLLIN};
	pid_t pid;

	signal(SIGTERM, wd_on_term);
	pid = fork();
	if (pid == 0) {
		close(rfd);
		signal(SIGTERM, SIG_DFL);
		run_child(m, args);
	}
	while (pid > 0 && !wd_term) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			_exit(1);
		if (poll(&pf, 1, 100) > 0)
			break;
	}
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	_exit(0);
}

/* See dnsmasq_fx.h. */
int dnsmasq_start(struct dnsmasq *m, const char *const *args)
{
	int p[2];

	memset(m, 0, sizeof(*m));
	snprintf(m->dir, sizeof(m->dir), "/tmp/rt-dnsmasq-XXXXXX");
	if (!mkdtemp(m->dir) || (m->port = dnsmasq_free_port()) < 0)
		return -1;
	snprintf(m->log, sizeof(m->log), "%s/query.log", m->dir);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if ((m->pid = fork()) < 0)
		return -1;
	if (m->pid == 0) {
		close(p[1]);
		run_watchdog(m, args, p[0]);
	}
	close(p[0]);
	m->wfd = p[1];
	for (int i = 0; i < 500; i++) {
		if (tcp_ready(m->port))
			return 0;
		if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
			m->pid = 0;
			return -1;
		}
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	return -1;
}

/* See dnsmasq_fx.h. */
void dnsmasq_stop(struct dnsmasq *m)
{
	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		waitpid(m->pid, NULL, 0);
		m->pid = 0;
	}
	if (m->wfd > 0) {
		close(m->wfd);
		m->wfd = 0;
	}
	if (m->dir[0]) {
		char extra[160];
		snprintf(extra, sizeof(extra), "%s/resolv.conf", m->dir);
		unlink(extra);
		unlink(m->log);
		rmdir(m->dir);
		m->dir[0] = 0;
	}
}

/* See dnsmasq_fx.h. */
int dnsmasq_queries(const struct dnsmasq *m, const char *type, const char *name)
{
	char q[300], a[300], line[1024];
	int n = 0;
	snprintf(q, sizeof(q), "query[%s] %s from ", type, name);
	snprintf(a, sizeof(a), "auth[%s] %s from ", type, name); /* authoritative mode */
	FILE *f = fopen(m->log, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, q) || strstr(line, a);
	fclose(f);
	return n;
}
