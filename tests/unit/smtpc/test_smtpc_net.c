/* test_smtpc_net — unit tests for engine/smtpc over TCP on loopback: a whole transaction to a
 * server on [::1], and the source address of outbound connections (bind before connect): the
 * server sees the configured IPv4 or IPv6 source, and a source that cannot be bound ends the
 * session like a failed connect, without any connection.
 *
 * Why a TCP server of its own here: the scripted peer (tests/unit/peer) plays whole dialogues
 * but does not record who connected; the source tests need the address accept() returns. The
 * server thread only records (peer address, what it read); assertions run on the test thread
 * after the loop stopped. All traffic stays on loopback.
 */
#include "tests/unit/smtpc/smtpc_fx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* A literal with port 0 into a (util_addr_parse needs a port). */
static void parse_lit(const char *lit, struct util_addr *a)
{
	char buf[80];

	snprintf(buf, sizeof(buf), strchr(lit, ':') ? "[%s]:0" : "%s:0", lit);
	assert_int_equal(util_addr_parse(buf, a), 0);
}

/* A TCP listener on the literal host, port chosen by the kernel; *a gets its address. */
static int tcp_listen(const char *host, struct util_addr *a)
{
	struct util_addr la;
	int fd;

	parse_lit(host, &la);
	fd = socket(la.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&la.ss, la.len), 0);
	assert_int_equal(listen(fd, 4), 0);
	*a = la;
	a->len = sizeof(a->ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a->ss, &a->len), 0);
	return fd;
}

/* The IP of a socket address, as text. */
static void ip_of(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *ip = ss->ss_family == AF_INET6
			     ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
			     : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	assert_non_null(inet_ntop(ss->ss_family, ip, buf, (socklen_t)len));
}

/* ---- a minimal server: greeting, EHLO, QUIT; records the client's address ---- */

struct srv {
	int lfd;
	pthread_t th;
	struct sockaddr_storage peer;
	socklen_t plen;
	bool accepted;
	char got[512];
	size_t glen;
};

/* Read into got until it ends with want (or EOF / error / full). */
static void srv_read_until(struct srv *v, int fd, const char *want)
{
	ssize_t r;

	while (v->glen < sizeof(v->got) - 1 &&
	       (v->glen < strlen(want) || strcmp(v->got + v->glen - strlen(want), want) != 0)) {
		r = read(fd, v->got + v->glen, sizeof(v->got) - 1 - v->glen);
		if (r <= 0)
			return;
		v->glen += (size_t)r;
		v->got[v->glen] = '\0';
	}
}

static void *srv_main(void *arg)
{
	static const char greet[] = GREET, ehlo[] = "250 mx.test\r\n", bye[] = "221 2.0.0 Bye\r\n";
	struct srv *v = arg;
	struct pollfd pf = {.fd = v->lfd, .events = POLLIN};
	int fd;

	v->plen = sizeof(v->peer);
	if (poll(&pf, 1, PEER_WAIT_MS) != 1 ||
	    (fd = accept4(v->lfd, (struct sockaddr *)&v->peer, &v->plen, SOCK_CLOEXEC)) < 0)
		return NULL;
	v->accepted = true;
	if (write(fd, greet, sizeof(greet) - 1) > 0) {
		srv_read_until(v, fd, "\r\n");
		if (write(fd, ehlo, sizeof(ehlo) - 1) > 0) {
			srv_read_until(v, fd, "QUIT\r\n");
			if (write(fd, bye, sizeof(bye) - 1) > 0)
				srv_read_until(v, fd, "\n<EOF>"); /* never matches: reads to EOF */
		}
	}
	close(fd);
	return NULL;
}

/* Run one session (no transaction: EHLO, then QUIT when idle) against v; join v's thread. */
static void run_srv(struct fx *f, struct srv *v)
{
	f->give_txn = false;
	assert_int_equal(loop_new(&f->l, 64), 0);
	assert_int_equal(pthread_create(&v->th, NULL, srv_main, v), 0);
	assert_int_equal(smtpc_new(f->l, &f->cfg, &f->c), 0);
	assert_int_equal(loop_run(f->l), 0);
	assert_int_equal(pthread_join(v->th, NULL), 0);
	loop_free(f->l);
	assert_int_equal(f->closes, 1);
}

/* The session talked to v and quit cleanly; the server saw the client at ip. */
static void assert_seen_from(const struct fx *f, const struct srv *v, const char *ip)
{
	char got[INET6_ADDRSTRLEN];

	fx_assert_idle_close(f);
	assert_true(v->accepted);
	assert_string_equal(v->got, EHLO_CMD "QUIT\r\n");
	ip_of(&v->peer, got, sizeof(got));
	assert_string_equal(got, ip);
}

/* ---- tests ---- */

/* A whole pipelined transaction to a server on [::1] (the scripted peer, over TCP). */
static void test_ipv6_loopback_transaction(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {TO_DOT(), SEND_OK(), BYE, {0}};

	close(f->peer.lfd); /* the fixture's UNIX listener: replaced by TCP [::1] */
	f->peer.lfd = tcp_listen("::1", &f->cfg.addr);
	assert_int_equal(f->cfg.addr.family, AF_INET6);
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_null(f->info.err);
	assert_int_equal(f->info.txns, 1);
}

/* Without a source address the kernel picks 127.0.0.1 toward 127.0.0.1 (the control case). */
static void test_no_source(void **state)
{
	struct fx *f = *state;
	struct srv v = {0};

	v.lfd = tcp_listen("127.0.0.1", &f->cfg.addr);
	run_srv(f, &v);
	close(v.lfd);
	assert_seen_from(f, &v, "127.0.0.1");
}

/* Source 127.0.0.1 toward 127.0.0.1, and 127.0.0.3 (also on lo: all of 127/8 is) toward
 * 127.0.0.1: the server sees the configured source, not the kernel's choice. */
static void test_source_ipv4(void **state)
{
	static const char *const sources[] = {"127.0.0.1", "127.0.0.3"};
	struct fx *f = *state;

	for (size_t i = 0; i < ARRAY_SIZE(sources); i++) {
		struct srv v = {0};

		f->closes = f->nexts = 0;
		parse_lit(sources[i], &f->cfg.source);
		f->cfg.source.len = 0; /* smtpc takes the length from the family */
		((struct sockaddr_in *)&f->cfg.source.ss)->sin_port = htons(9); /* ignored */
		v.lfd = tcp_listen("127.0.0.1", &f->cfg.addr);
		run_srv(f, &v);
		close(v.lfd);
		assert_seen_from(f, &v, sources[i]);
		assert_int_not_equal(ntohs(((struct sockaddr_in *)&v.peer)->sin_port), 9);
	}
}

/* Source ::1 toward [::1]. */
static void test_source_ipv6(void **state)
{
	struct fx *f = *state;
	struct srv v = {0};

	parse_lit("::1", &f->cfg.source);
	v.lfd = tcp_listen("::1", &f->cfg.addr);
	run_srv(f, &v);
	close(v.lfd);
	assert_seen_from(f, &v, "::1");
}

/* A source that cannot be bound: closed() in CONNECT with the reason, nothing was connected
 * (the listener has no pending connection), no next() and no transaction. */
static void bind_fails(struct fx *f, const char *src, const char *dst, const char *err)
{
	struct pollfd pf = {.events = POLLIN};

	parse_lit(src, &f->cfg.source);
	pf.fd = tcp_listen(dst, &f->cfg.addr);
	assert_int_equal(loop_new(&f->l, 64), 0);
	assert_int_equal(smtpc_new(f->l, &f->cfg, &f->c), 0);
	assert_int_equal(f->closes, 0); /* never from inside smtpc_new */
	assert_int_equal(loop_run(f->l), 0);
	loop_free(f->l);
	assert_int_equal(poll(&pf, 1, 50), 0);
	close(pf.fd);
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->nexts, 0);
	assert_int_equal(f->txn_dones, 0);
	assert_false(f->info.was_ready);
	assert_int_equal(f->info.state, SMTPC_S_CONNECT);
	assert_string_equal(f->info_reply.text, "");
	assert_non_null(f->info.err);
	assert_string_equal(f->info.err, err);
}

/* Not a local address (TEST-NET-1 and a documentation IPv6). */
static void test_source_not_local(void **state)
{
	struct fx *f = *state;
	char want[160];

	snprintf(want, sizeof(want), "cannot bind source address 192.0.2.1: %s",
		 strerror(EADDRNOTAVAIL));
	bind_fails(f, "192.0.2.1", "127.0.0.1", want);
	f->closes = 0;
	snprintf(want, sizeof(want), "cannot bind source address 2001:db8::1: %s",
		 strerror(EADDRNOTAVAIL));
	bind_fails(f, "2001:db8::1", "::1", want);
}

/* A source of the other family than the destination is a bind failure too. */
static void test_source_wrong_family(void **state)
{
	struct fx *f = *state;
	char want[160];

	snprintf(want, sizeof(want), "cannot bind source address ::1: %s", strerror(EAFNOSUPPORT));
	bind_fails(f, "::1", "127.0.0.1", want);
}

/* A source that is neither AF_UNSPEC, AF_INET nor AF_INET6 is a bad config. */
static void test_source_bad_family(void **state)
{
	struct fx *f = *state;

	assert_int_equal(util_addr_parse("unix:/tmp/x.sock", &f->cfg.source), 0);
	assert_int_equal(loop_new(&f->l, 64), 0);
	assert_int_equal(smtpc_new(f->l, &f->cfg, &f->c), -EINVAL);
	loop_free(f->l);
	assert_int_equal(f->closes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ipv6_loopback_transaction, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_no_source, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_source_ipv4, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_source_ipv6, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_source_not_local, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_source_wrong_family, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_source_bad_family, fx_setup, fx_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
