/* test_dlog — unit tests for engine/daemon/dlog.c: a shard never blocks on the delivery log.
 *
 * Why: the log is written from the shard threads, which must never wait for a disk. The test
 * makes the "disk" a pipe of one page that nobody reads yet, so the first io_uring write stays in
 * flight: 36 MB of lines must then be taken at once (the current half grows to its bound, the
 * rest is dropped and counted), and once a reader drains the pipe every line that was not
 * dropped arrives, whole, followed by one event=log-lines-dropped line whose count makes the
 * total add up. dlog.c is included to see the buffer's bound and drop counter.
 */
#include "engine/daemon/dlog.c"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define LINES 300000u

struct reader {
	int fd;
	uint64_t lines, reported, bad;
};

/* Read the pipe to EOF: count lines, check each is one of ours, pick up the dropped count. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	static char buf[1 << 16];
	char line[DLOG_LINE];
	size_t ll = 0;
	ssize_t n;

	while ((n = read(r->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			ll = 0;
			r->lines++;
			const char *c = strstr(line, "event=log-lines-dropped count=");
			if (c)
				r->reported += strtoull(c + 30, NULL, 10);
			else if (!strstr(line, " status=delivered to=<r") || !strstr(line, "end"))
				r->bad++;
		}
	}
	return NULL;
}

struct drain {
	struct dlog_buf *b;
};

/* Idle hook: keep flushing; stop once everything (including the dropped report) is out. */
static void drain_idle(struct loop *l, void *data)
{
	struct drain *dr = data;

	dlog_flush(dr->b);
	if (!dlog_busy(dr->b) && dr->b->len == 0 && dr->b->dropped == 0)
		loop_stop(l);
}

static void test_never_blocks_then_drains(void **state)
{
	struct dlog d = {0};
	struct loop *l = NULL;
	struct dlog_buf *b;
	struct reader r = {0};
	struct drain dr;
	pthread_t th;
	uint64_t t0, dropped;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	(void)fcntl(p[1], F_SETPIPE_SZ, 4096);
	d.fd = p[1];
	assert_int_equal(loop_new(&l, 64), 0);
	b = dlog_buf_new(&d, l);
	t0 = util_mono_ms();
	for (unsigned i = 0; i < LINES; i++)
		dlog_line(b, "0123456789abcdef0123456789abcdef",
			  "status=delivered to=<r%u@example.test> relay=127.0.0.1:25 code=250 end",
			  i);
	assert_true(util_mono_ms() - t0 < 5000); /* no write(2) waited for the reader */
	assert_true(dlog_busy(b));
	assert_int_equal(b->cap, DLOG_MAX);
	dropped = b->dropped;
	assert_true(dropped > 0 && dropped < LINES);
	r.fd = p[0];
	assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
	dr.b = b;
	loop_set_idle(l, drain_idle, &dr);
	assert_int_equal(loop_run(l), 0);
	dlog_buf_free(b);
	close(p[1]);
	assert_int_equal(pthread_join(th, NULL), 0);
	close(p[0]);
	loop_free(l);
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.reported, dropped);
	assert_int_equal(r.lines - 1, LINES - dropped); /* + the one report line */
}

/* A log line is cut at DLOG_LINE and always ends in exactly one newline. */
static void test_long_line_cut(void **state)
{
	struct dlog d = {0};
	struct dlog_buf *b;
	char big[3 * DLOG_LINE];
	char out[2 * DLOG_LINE];
	int p[2];
	ssize_t n;

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	d.fd = p[1];
	b = dlog_buf_new(&d, NULL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	dlog_line(b, "id", "%s", big);
	dlog_flush(b);
	n = read(p[0], out, sizeof(out));
	assert_int_equal(n, DLOG_LINE - 1);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', (size_t)n - 1));
	dlog_buf_free(b);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_never_blocks_then_drains),
	    cmocka_unit_test(test_long_line_cut),
	};

	return cmocka_run_group_tests_name("dlog", tests, NULL, NULL);
}
