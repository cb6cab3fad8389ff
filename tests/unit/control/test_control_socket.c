/* test_control_socket — the control socket itself: its file (mode 0600 whatever the umask, a
 * stale socket replaced, a live one or a non-socket refused, a path too long or a missing
 * directory named), the protocol's refusals on raw requests, exit codes when there is no
 * daemon, the socket path from the configuration, an idle client, and ctl_stop.
 *
 * Why: the socket is an administrator's door into the daemon: it must never be open to other
 * users, not even for an instant, must not take over a path that another riptide serves, and
 * must not let a silent client block the control thread or its stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include "tests/unit/control/ctl_fx.h"

#define RUN(f, ...) cfx_run((f), (const char *const[]){__VA_ARGS__, NULL})

static void assert_has(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' not in:\n%s", needle, hay);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A UNIX stream socket connected to path (asserted). */
static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Send req (len bytes) on a fresh connection and read the whole answer into buf. */
static void raw_exchange(const char *path, const char *req, size_t len, char *buf, size_t cap)
{
	int fd = raw_connect(path);
	size_t n = 0;
	ssize_t r;

	assert_int_equal(write(fd, req, len), (ssize_t)len);
	while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fd);
}

/* A socket file at path that nobody listens on (bound, then closed). */
static void make_stale(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

/* Under umask 0 (a plain bind would make the file 0777) and under umask 0277 (it would be
 * 0400, unusable by the owner) the socket file is a socket of mode exactly 0600; ctl_stop
 * removes it. */
static void test_socket_mode(void **state)
{
	struct cfx *f = *state;
	static const mode_t masks[] = {0, 0277, 0022};
	struct ctl_server *s = NULL;
	char path[128], err[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/m.sock", f->dir);
	for (size_t i = 0; i < 3; i++) {
		mode_t old = umask(masks[i]);
		int rc = ctl_start(path, &f->table, &s, err, sizeof(err));

		umask(old);
		assert_int_equal(rc, 0);
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0600);
		assert_int_equal(
		    cfx_run_sock(f, path, (const char *const[]){"queue", "summary", NULL}), 0);
		ctl_stop(s);
		assert_int_equal(lstat(path, &st), -1);
	}
	assert_int_equal(lstat(f->sock, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* A stale socket file is replaced; a live socket (another server) is refused with
 * -EADDRINUSE and left working; a regular file is refused with -EEXIST and left alone; a
 * path too long and a missing directory are named. */
static void test_socket_path_cases(void **state)
{
	struct cfx *f = *state;
	struct ctl_server *s = (struct ctl_server *)1;
	char path[300], err[256];
	struct stat st;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/stale.sock", f->dir);
	make_stale(path);
	assert_int_equal(cfx_run_sock(f, path, (const char *const[]){"queue", "summary", NULL}), 2);
	assert_has(f->err, "Connection refused");
	assert_int_equal(ctl_start(path, &f->table, &s, err, sizeof(err)), 0);
	assert_int_equal(cfx_run_sock(f, path, (const char *const[]){"queue", "summary", NULL}), 0);
	ctl_stop(s);

	assert_int_equal(ctl_start(f->sock, &f->table, &s, err, sizeof(err)), -EADDRINUSE);
	assert_null(s);
	assert_has(err, "another process serves it");
	assert_int_equal(RUN(f, "queue", "summary"), 0);

	snprintf(path, sizeof(path), "%s/file.sock", f->dir);
	fp = fopen(path, "w");
	fputs("keep me", fp);
	fclose(fp);
	assert_int_equal(ctl_start(path, &f->table, &s, err, sizeof(err)), -EEXIST);
	assert_has(err, "not a socket");
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode) && st.st_size == 7);

	snprintf(path, sizeof(path), "%s/%0200d.sock", f->dir, 0);
	assert_int_equal(ctl_start(path, &f->table, &s, err, sizeof(err)), -ENAMETOOLONG);
	assert_has(err, "too long");
	snprintf(path, sizeof(path), "%s/nodir/x.sock", f->dir);
	assert_int_equal(ctl_start(path, &f->table, &s, err, sizeof(err)), -ENOENT);
	assert_has(err, "nodir does not exist");
}

/* No daemon: exit 2 with a clear message; the protocol refuses an unknown version, command
 * or argument and an over-long request line with a status line (no data). */
static void test_refusals(void **state)
{
	struct cfx *f = *state;
	char path[128], buf[1024], big[5000];

	snprintf(path, sizeof(path), "%s/nothing.sock", f->dir);
	assert_int_equal(cfx_run_sock(f, path, (const char *const[]){"queue", "list", NULL}), 2);
	assert_has(f->err, "cannot connect to ");
	assert_has(f->err, "is riptide running?");

	raw_exchange(f->sock, "RIPTIDE-CTL/2 summary\n", 22, buf, sizeof(buf));
	assert_string_equal(buf, "ERR EPROTO this server speaks RIPTIDE-CTL/1 only\n");
	raw_exchange(f->sock, "RIPTIDE-CTL/1 frobnicate\n", 25, buf, sizeof(buf));
	assert_string_equal(buf, "ERR EINVAL unknown command\n");
	raw_exchange(f->sock, "RIPTIDE-CTL/1 list bogus=1\n", 27, buf, sizeof(buf));
	assert_string_equal(buf, "ERR EINVAL list takes no argument bogus\n");
	raw_exchange(f->sock, "RIPTIDE-CTL/1 show id=%00\n", 26, buf, sizeof(buf));
	assert_has(buf, "ERR EINVAL bad %-escape");
	raw_exchange(f->sock, "RIPTIDE-CTL/1 list limit=0\n", 27, buf, sizeof(buf));
	assert_string_equal(buf, "ERR EINVAL limit= takes a positive number\n");
	memset(big, 'a', sizeof(big));
	raw_exchange(f->sock, big, sizeof(big), buf, sizeof(buf));
	assert_string_equal(buf, "ERR EINVAL request longer than 4096 bytes\n");
	raw_exchange(f->sock, "RIPTIDE-CTL/1 summary json=1\r\n", 31, buf, sizeof(buf));
	assert_string_equal(buf, "D {\"type\":\"totals\",\"messages\":0,\"recipients\":0,"
				 "\"bytes\":0,\"destinations\":0,\"counting\":false}\nOK\n");
}

/* An engine table without functions: the commands that need them answer ENOSYS (exit 1);
 * list and show still work from the queue. */
static void test_enosys(void **state)
{
	struct cfx *f = *state;
	struct ctl_engine bare = {.q = f->q};
	struct ctl_server *s = NULL;
	char path[128], err[256];

	snprintf(path, sizeof(path), "%s/bare.sock", f->dir);
	assert_int_equal(ctl_start(path, &bare, &s, err, sizeof(err)), 0);
	assert_int_equal(cfx_run_sock(f, path, (const char *const[]){"queue", "summary", NULL}), 1);
	assert_has(f->err, "summary not available");
	assert_int_equal(
	    cfx_run_sock(f, path, (const char *const[]){"queue", "retry", "--all", NULL}), 1);
	assert_int_equal(cfx_run_sock(f, path, (const char *const[]){"queue", "list", NULL}), 0);
	assert_has(f->out, "0 messages");
	ctl_stop(s);
}

/* The socket path comes from the configuration: [queue] control_socket, or control.sock in
 * the spool directory when it is empty; ctl_socket_path is the rule for both. */
static void test_config_path(void **state)
{
	struct cfx *f = *state;
	struct ctl_server *s = NULL;
	char conf[128], path[128], err[256], out[128];
	FILE *fp;

	snprintf(conf, sizeof(conf), "%s/r.conf", f->dir);
	fp = fopen(conf, "w");
	fprintf(fp, "[queue]\ncontrol_socket = %s\n", f->sock);
	fclose(fp);
	assert_int_equal(
	    cfx_run_sock(f, NULL, (const char *const[]){"-c", conf, "queue", "summary", NULL}), 0);
	assert_has(f->out, "0 messages");

	fp = fopen(conf, "w");
	fprintf(fp, "[main]\nspool = %s\n", f->dir);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/control.sock", f->dir);
	assert_int_equal(ctl_start(path, &f->table, &s, err, sizeof(err)), 0);
	assert_int_equal(
	    cfx_run_sock(f, NULL, (const char *const[]){"-c", conf, "queue", "summary", NULL}), 0);
	ctl_stop(s);

	assert_int_equal(ctl_socket_path("", "/var/spool/riptide", out, sizeof(out)), 0);
	assert_string_equal(out, "/var/spool/riptide/control.sock");
	assert_int_equal(ctl_socket_path("", "/spool/", out, sizeof(out)), 0);
	assert_string_equal(out, "/spool/control.sock");
	assert_int_equal(ctl_socket_path("unix:/run/r.sock", "/x", out, sizeof(out)), 0);
	assert_string_equal(out, "/run/r.sock");
	memset(path, 'p', 120);
	path[0] = '/';
	path[120] = '\0';
	assert_int_equal(ctl_socket_path("", path, out, sizeof(out)), -ENAMETOOLONG);
}

/* A client that connects and says nothing is dropped after the read timeout (5 s) and the
 * next client is served; ctl_stop does not wait for a silent client. */
static void test_idle_client_and_stop(void **state)
{
	struct cfx *f = *state;
	int idle = raw_connect(f->sock);
	uint64_t t0;
	char c;

	assert_int_equal(RUN(f, "queue", "summary"), 0);
	assert_int_equal(read(idle, &c, 1), 0); /* closed by the server, no answer */
	close(idle);
	idle = raw_connect(f->sock);
	usleep(100 * 1000);
	t0 = mono_ms();
	ctl_stop(f->srv);
	f->srv = NULL;
	assert_true(mono_ms() - t0 < 2000);
	close(idle);
	assert_int_equal(RUN(f, "queue", "summary"), 2);
}

/* A client that asks for a long listing and stops reading blocks the server in a write;
 * ctl_stop still returns at once (it does not wait for the 30 s write timeout). */
static void test_stop_during_list(void **state)
{
	struct cfx *f = *state;
	int fd;
	uint64_t t0;

	cfx_bulk(f, 20000); /* ~1.8 MB of output: more than the socket buffers */
	fd = raw_connect(f->sock);
	assert_int_equal(write(fd, "RIPTIDE-CTL/1 list\n", 19), 19);
	usleep(300 * 1000);
	t0 = mono_ms();
	ctl_stop(f->srv);
	f->srv = NULL;
	assert_true(mono_ms() - t0 < 2000);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_socket_mode, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_socket_path_cases, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_enosys, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_config_path, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_idle_client_and_stop, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_stop_during_list, cfx_setup, cfx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
