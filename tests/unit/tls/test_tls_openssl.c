/* test_tls_openssl — tls/ against a TLS implementation riptide did not write: the openssl CLI
 * (OpenSSL 3) as the server for our client (TLS 1.3 and 1.2, verification, resumption) and as
 * the client for our server (its own verification of our certificate and host name).
 *
 * Why: the in-memory tests pair wolfSSL with wolfSSL; the receivers riptide delivers to and
 * the clients that inject into it mostly run OpenSSL. Sockets on 127.0.0.1 (ephemeral ports)
 * carry the bytes; the test moves them between the socket and tls/ as the engine will. Every
 * openssl process started is stopped and reaped. Certificates come from mkcerts.sh (argv[1]).
 */
#include "tests/unit/tls/tls_fx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static const char *mkcerts;

/* A child process with its stdout (and stderr) on a pipe. */
struct child {
	pid_t pid;
	int out; /* read end */
	int in;	 /* write end of its stdin, -1 when /dev/null */
};

/* spawn: run argv with stdout+stderr to a pipe, stdin from a pipe when want_in. */
static int spawn(struct child *ch, char *const argv[], bool want_in)
{
	int po[2], pi[2] = {-1, -1};

	if (pipe(po) < 0 || (want_in && pipe(pi) < 0))
		return -1;
	ch->pid = fork();
	if (ch->pid < 0)
		return -1;
	if (ch->pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* a failed assertion does not leave it behind */
		dup2(want_in ? pi[0] : null, 0);
		dup2(po[1], 1);
		dup2(po[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(po[1]);
	if (want_in)
		close(pi[0]);
	ch->out = po[0];
	ch->in = want_in ? pi[1] : -1;
	return 0;
}

/* stop: SIGTERM (if still running), reap, close the pipes. */
static void stop(struct child *ch)
{
	kill(ch->pid, SIGTERM);
	waitpid(ch->pid, NULL, 0);
	close(ch->out);
	if (ch->in >= 0)
		close(ch->in);
}

/* slurp: read the child's output until EOF or 10 s into buf. */
static size_t slurp(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	struct pollfd p = {fd, POLLIN, 0};

	while (n + 1 < cap && poll(&p, 1, 10000) > 0) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	return n;
}

/* s_server: start openssl s_server (echo, reversed) on an ephemeral port with extra args;
 * returns the port or -1. */
static int s_server(struct child *ch, const char *const *extra)
{
	char *argv[32] = {"openssl",
			  "s_server",
			  "-accept",
			  "127.0.0.1:0",
			  "-rev",
			  "-cert",
			  (char *)fx_path("server.pem"),
			  "-key",
			  (char *)fx_path("server.key")};
	char line[256];
	int k = 9, port = -1;
	FILE *f;

	for (; extra && *extra && k < 31; extra++)
		argv[k++] = (char *)*extra;
	if (spawn(ch, argv, false) < 0)
		return -1;
	f = fdopen(dup(ch->out), "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "ACCEPT 127.0.0.1:%d", &port) == 1)
			break;
	if (f)
		fclose(f);
	return port;
}

/* io: send what t produced, then wait (5 s) for bytes from fd and feed them. Returns 0, or -1
 * on EOF, error or timeout. */
static int io(int fd, struct tls *t)
{
	size_t n;
	const void *p;
	char buf[4096];
	struct pollfd pf = {fd, POLLIN, 0};

	while ((p = tls_out(t, &n)) != NULL) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		tls_out_consume(t, (size_t)w);
	}
	if (poll(&pf, 1, 5000) <= 0)
		return -1;
	ssize_t r = recv(fd, buf, sizeof(buf), 0);
	return r > 0 && tls_feed(t, buf, (size_t)r) == 0 ? 0 : -1;
}

/* sock_handshake: run t's handshake over fd. Returns 0 or the failure. */
static int sock_handshake(int fd, struct tls *t)
{
	for (;;) {
		int rc = tls_handshake(t);
		if (rc == 0 || rc != -EAGAIN) {
			size_t n;
			const void *p = tls_out(t, &n);
			if (p && send(fd, p, n, MSG_NOSIGNAL) > 0) /* a last flight or an alert */
				tls_out_consume(t, n);
			return rc;
		}
		if (io(fd, t) < 0)
			return -EIO;
	}
}

/* sock_line: read one line of plaintext into buf. Returns its length or -1. */
static long sock_line(int fd, struct tls *t, char *buf, size_t cap)
{
	size_t have = 0;

	while (have + 1 < cap) {
		long r = tls_read(t, buf + have, 1);
		if (r == 1 && buf[have++] == '\n')
			break;
		if (r == -EAGAIN && io(fd, t) == 0)
			continue;
		if (r < 0)
			return -1;
	}
	buf[have] = 0;
	return (long)have;
}

static int tcp_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* one_conn: a connection to port: handshake, a line echoed reversed, close. Fills i. */
static int one_conn(struct tls_ctx *cc, int port, const char *key, struct tls_info *i)
{
	int fd = tcp_connect(port), rc = -1;
	struct tls *t;
	char line[128];

	if (fd < 0 || tls_new(cc, "mx.test", key, &t) < 0)
		return -1;
	if (sock_handshake(fd, t) == 0 && tls_write(t, "hello riptide\n", 14) == 14 &&
	    sock_line(fd, t, line, sizeof(line)) > 0 && strcmp(line, "editpir olleh\n") == 0)
		rc = 0;
	tls_get_info(t, i);
	tls_shutdown(t);
	io(fd, t); /* send close_notify; openssl answers or closes */
	tls_free(t);
	close(fd);
	return rc;
}

/* Our client, CA mode, against openssl s_server: TLS 1.3, then TLS 1.2; the second
 * connection with the same cache_key resumes (OpenSSL's session tickets). */
static void test_client_vs_openssl_server(void **state)
{
	const char *v13[] = {"-naccept", "2", NULL}, *v12[] = {"-naccept", "2", "-tls1_2", NULL};
	const char *const *args[] = {v13, v12};
	const char *want[] = {"TLSv1.3", "TLSv1.2"};
	struct tls_ctx *cc = fx_client(TLS_VERIFY_CA, "ca.pem", 8);
	struct tls_info i;

	for (int k = 0; k < 2; k++) {
		struct child ch;
		int port = s_server(&ch, args[k]);
		assert_true(port > 0);
		assert_int_equal(one_conn(cc, port, want[k], &i), 0);
		assert_string_equal(i.version, want[k]);
		assert_true(i.verified);
		assert_false(i.resumed);
		assert_string_equal(i.subject, "CN=mx.test, O=riptide tests");
		assert_int_equal(one_conn(cc, port, want[k], &i), 0);
		assert_true(i.resumed);
		assert_true(i.verified);
		stop(&ch);
	}
	tls_ctx_free(cc);
}

/* listen_lo: a listening socket on 127.0.0.1, ephemeral port ("127.0.0.1:PORT" in hp). */
static int listen_lo(char *hp, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0)
		return -1;
	snprintf(hp, cap, "127.0.0.1:%d", ntohs(a.sin_port));
	return fd;
}

/* s_client: start openssl s_client toward hp, verifying our chain and the name mx.test, with
 * its session in or out of the file sess (sess_opt), and one line on its stdin. */
static int s_client(struct child *ch, const char *hp, const char *sess_opt, const char *sess)
{
	char *argv[] = {"openssl",
			"s_client",
			"-connect",
			(char *)hp,
			"-servername",
			"mx.test",
			"-CAfile",
			(char *)fx_path("ca.pem"),
			"-verify_return_error",
			"-verify_hostname",
			"mx.test",
			"-ign_eof",
			(char *)sess_opt,
			(char *)sess,
			NULL};

	if (spawn(ch, argv, true) < 0 || write(ch->in, "EHLO openssl.test\n", 18) != 18)
		return -1;
	close(ch->in);
	ch->in = -1;
	return 0;
}

/* serve_one: s_client (see above) against our server on lfd: it sends a line, gets our reply
 * and close_notify. Its output goes to out; our side's info to i. */
static void serve_one(struct tls_ctx *sc, int lfd, const char *hp, const char *sess_opt,
		      const char *sess, struct tls_info *i, char *out, size_t cap)
{
	char line[128];
	struct child ch;
	struct tls *t;
	int fd;

	assert_int_equal(s_client(&ch, hp, sess_opt, sess), 0);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	assert_int_equal(tls_new(sc, NULL, NULL, &t), 0);
	assert_int_equal(sock_handshake(fd, t), 0);
	assert_string_equal(tls_sni(t), "mx.test");
	assert_true(sock_line(fd, t, line, sizeof(line)) > 0);
	assert_string_equal(line, "EHLO openssl.test\n");
	assert_int_equal(tls_write(t, "250 riptide here\n", 17), 17);
	assert_int_equal(tls_shutdown(t), 0);
	io(fd, t);
	close(fd);
	tls_get_info(t, i);
	tls_free(t);
	slurp(ch.out, out, cap);
	stop(&ch);
}

/* openssl s_client against our server: it verifies our certificate and name; a second run
 * with the session the first saved resumes (on both sides' account). */
static void test_openssl_client_vs_server(void **state)
{
	struct tls_ctx *sc = fx_server("server.pem", "server.key");
	char hp[32], out[16384];
	const char *sess = fx_path("s_client.sess");
	struct tls_info i;
	int lfd = listen_lo(hp, sizeof(hp));

	assert_true(lfd >= 0);
	serve_one(sc, lfd, hp, "-sess_out", sess, &i, out, sizeof(out));
	if (!strstr(out, "Verify return code: 0 (ok)") || !strstr(out, "250 riptide here") ||
	    !strstr(out, "New, TLSv1.3"))
		fail_msg("openssl s_client said:\n%s", out);
	assert_string_equal(i.version, "TLSv1.3");
	assert_false(i.resumed);
	serve_one(sc, lfd, hp, "-sess_in", sess, &i, out, sizeof(out));
	if (!strstr(out, "Reused, TLSv1.3") || !strstr(out, "250 riptide here"))
		fail_msg("openssl s_client (resuming) said:\n%s", out);
	assert_true(i.resumed);
	close(lfd);
	tls_ctx_free(sc);
}

static int group_setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	return fx_setup(mkcerts);
}

static int group_teardown(void **state)
{
	fx_teardown();
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_vs_openssl_server),
	    cmocka_unit_test(test_openssl_client_vs_server),
	};
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH/mkcerts.sh\n", argv[0]);
		return 2;
	}
	mkcerts = argv[1];
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
