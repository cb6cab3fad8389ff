/* test_auth — unit tests for engine/daemon/auth.c: the AUTH users file and its verifier.
 *
 * Why: this file decides who may relay through riptide. The tests load real files (hashes made
 * by `mkpasswd -m sha-512` and `mkpasswd -m yescrypt`, pasted here, so the format is the one
 * operators produce), refuse malformed ones naming file and line, verify right and wrong
 * passwords through the real libcrypt, show that the cache spares crypt(3) only for a password
 * that was right (and not after it expires), and run the verifier thread with verdicts coming
 * back through a real loop's mailbox. auth.c is included to reach the cache and SipHash.
 */
#include "engine/daemon/auth.c"

#include <fcntl.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* mkpasswd -m sha-512 pw-alice / -m yescrypt pw-bob / -m sha-512 pw-carol */
#define H_ALICE                                                                                    \
	"$6$jJ14Vv/tt1tPo5l2$AK7XO3/H3epyisQkovyReQ5p5r/"                                          \
	"sGyVTetzscOumR7gExnGjHVeopLcNxzHjRhmf5mtqp2"                                              \
	"geHFL4lVNp8tvw.1"
#define H_BOB "$y$j9T$YjB/QA676urioGnztR1r9.$GPoYMW0mLL0UEtupCXsNMAN1tyI/OmW3AcIrVK/dTc2"
#define H_CAROL                                                                                    \
	"$6$5dWtAgfyh2vEkujs$"                                                                     \
	"HO77bKaDl8snHFtYpimDl7shwgUKMfiUwB1Ef1pT2jmybflbWjp503OIzQkzexoT23nH7J"                   \
	"SCfy/1heRLj17F1."

#define USERS                                                                                      \
	"# riptide AUTH users\n"                                                                   \
	"\n"                                                                                       \
	"alice@x.test:" H_ALICE "\n"                                                               \
	"bob:" H_BOB ":y.test *.w.test\n"                                                          \
	"carol@z.test:" H_CAROL ":\r\n"

struct tfile {
	char path[64];
};

/* Write content (n bytes; 0: strlen) to a fresh temp file with mode. */
static void tfile_write(struct tfile *t, const char *content, size_t n, mode_t mode)
{
	int fd;

	snprintf(t->path, sizeof(t->path), "/tmp/rt-auth-XXXXXX");
	fd = mkstemp(t->path);
	assert_true(fd >= 0);
	n = n ? n : strlen(content);
	assert_int_equal(write(fd, content, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static struct auth *load_ok(const char *content, mode_t mode)
{
	struct tfile t;
	struct auth *a = NULL;
	char err[512] = "";

	tfile_write(&t, content, 0, mode);
	assert_int_equal(auth_load(t.path, &a, err, sizeof(err)), 0);
	unlink(t.path);
	return a;
}

static void test_verify(void **state)
{
	struct auth *a = load_ok(USERS, 0600);
	const char *d = NULL;
	uint64_t crypts, hits;

	(void)state;
	assert_int_equal(auth_users(a), 3);
	assert_false(auth_readable_by_others(a));
	assert_true(auth_check(a, "alice@x.test", "pw-alice", &d)); /* SHA-512 */
	assert_string_equal(d, "");
	assert_true(auth_check(a, "bob", "pw-bob", &d)); /* yescrypt */
	assert_string_equal(d, "y.test *.w.test");
	assert_true(auth_check(a, "carol@z.test", "pw-carol", &d)); /* CRLF line, empty domains */
	assert_string_equal(d, "");
	assert_false(auth_check(a, "alice@x.test", "pw-bob", &d));
	assert_false(auth_check(a, "bob", "pw-bo", &d));
	assert_false(auth_check(a, "Alice@x.test", "pw-alice", &d)); /* logins are exact */
	assert_false(auth_check(a, "bob", "", &d));
	auth_stats(a, &crypts, &hits);
	assert_int_equal(crypts, 7); /* an unknown login pays crypt(3) too */
	assert_int_equal(hits, 0);
	auth_free(a);
}

static void test_cache(void **state)
{
	struct auth *a = load_ok(USERS, 0600);
	const char *d = NULL;
	uint64_t crypts, hits;
	int u = auth_find(a, "bob");
	uint64_t tag[2];

	(void)state;
	assert_true(auth_check(a, "bob", "pw-bob", &d));
	assert_true(auth_check(a, "bob", "pw-bob", &d));
	assert_string_equal(d, "y.test *.w.test");
	assert_true(auth_check(a, "bob", "pw-bob", &d));
	auth_stats(a, &crypts, &hits);
	assert_int_equal(crypts, 1);
	assert_int_equal(hits, 2);
	/* a wrong password is never served from the cache, nor is another user's right one */
	assert_false(auth_check(a, "bob", "pw-bob2", &d));
	assert_false(auth_check(a, "alice@x.test", "pw-bob", &d));
	auth_stats(a, &crypts, &hits);
	assert_int_equal(crypts, 3);
	assert_int_equal(hits, 2);
	/* an expired entry pays crypt(3) again */
	auth_tag(a, (uint32_t)u, "pw-bob", tag);
	assert_true(auth_cache_hit(a, (uint32_t)u, tag));
	auth_slot(a, (uint32_t)u, tag)->until_ms = util_mono_ms() - 1;
	assert_true(auth_check(a, "bob", "pw-bob", &d));
	auth_stats(a, &crypts, &hits);
	assert_int_equal(crypts, 4);
	assert_int_equal(hits, 2);
	auth_free(a);
}

struct bad_case {
	const char *content;
	const char *err; /* after "<path>:" */
};

static void test_malformed(void **state)
{
	static const struct bad_case cases[] = {
	    {"alice\n", "1: expected login:hash[:domains]"},
	    {"# c\n\nalice:$1$O2RNob40$ip1KnYOGBnL4k.RrAqZfo0\n",
	     "3: not a SHA-512 ($6$) or yescrypt ($y$) crypt hash (mkpasswd -m sha-512 or -m "
	     "yescrypt makes one)"},
	    {"a:$5$VhmT6WUwuwY3NmR0$EkrEYwO61oCQe3IMgRBPaezAF9K5XJTYNUcDPaQEZoB\n",
	     "1: not a SHA-512 ($6$) or yescrypt ($y$) crypt hash (mkpasswd -m sha-512 or -m "
	     "yescrypt makes one)"},
	    {"a:$6$jJ14Vv/tt1tPo5l2$AK7XO3\n",
	     "1: not a SHA-512 ($6$) or yescrypt ($y$) crypt hash (mkpasswd -m sha-512 or -m "
	     "yescrypt makes one)"},
	    {"a:pw-alice\n",
	     "1: not a SHA-512 ($6$) or yescrypt ($y$) crypt hash (mkpasswd -m sha-512 or -m "
	     "yescrypt makes one)"},
	    {":" H_ALICE "\n", "1: empty login"},
	    {"al ice:" H_ALICE "\n", "1: blank or control character in the login"},
	    {" alice:" H_ALICE "\n", "1: blank or control character in the login"},
	    {"alice:" H_ALICE ":a.test:b.test\n",
	     "1: too many ':' (expected login:hash[:domains])"},
	    {"alice:" H_ALICE ":bad_domain!\n",
	     "1: domains: 'bad_domain!' is not a domain (example.com or *.example.com)"},
	    {"alice:" H_ALICE "\nbob:" H_BOB "\nalice:" H_CAROL "\n",
	     "3: login 'alice' already given on line 1"},
	};
	char err[512], want[600];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tfile t;
		struct auth *a = NULL;

		tfile_write(&t, cases[i].content, 0, 0600);
		assert_int_equal(auth_load(t.path, &a, err, sizeof(err)), -EINVAL);
		assert_null(a);
		snprintf(want, sizeof(want), "%s:%s", t.path, cases[i].err);
		assert_string_equal(err, want);
		unlink(t.path);
	}
}

static void test_odd_files(void **state)
{
	static const char nul[] = "alice:" H_ALICE "\nbob\0:" H_BOB "\n";
	char err[512], want[600], long_login[400];
	struct auth *a = NULL;
	struct tfile t;

	(void)state;
	assert_int_equal(auth_load("/nonexistent/users", &a, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/users: No such file or directory");
	tfile_write(&t, nul, sizeof(nul) - 1, 0600);
	assert_int_equal(auth_load(t.path, &a, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: NUL byte in the line", t.path);
	assert_string_equal(err, want);
	unlink(t.path);
	memset(long_login, 'x', 256);
	snprintf(long_login + 256, sizeof(long_login) - 256, ":%s\n", H_ALICE);
	tfile_write(&t, long_login, 0, 0600);
	assert_int_equal(auth_load(t.path, &a, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: login longer than 255 bytes", t.path);
	assert_string_equal(err, want);
	unlink(t.path);
	a = load_ok("", 0644); /* empty: fine (nobody can log in), and readable by others */
	assert_int_equal(auth_users(a), 0);
	assert_true(auth_readable_by_others(a));
	assert_false(auth_check(a, "alice", "x", &(const char *){NULL}));
	auth_free(a);
}

/* The reference vector of the SipHash paper (appendix A): key 00..0f, message 00..0e. */
static void test_siphash(void **state)
{
	uint8_t msg[15];

	(void)state;
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	assert_true(siphash24(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, msg, 15) ==
		    0xa129ca6149be45e5ull);
}

/* ---- the thread ---- */

struct waiter {
	struct loop *l;
	unsigned done, want;
};

static struct waiter waiter;

static void req_done(struct loop *l, struct loop_msg *m)
{
	if (++waiter.done == waiter.want)
		loop_stop(l);
}

static void post(struct auth *a, struct auth_req *r, const char *login, const char *pw)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->login, sizeof(r->login), "%s", login);
	snprintf(r->password, sizeof(r->password), "%s", pw);
	r->result = 99;
	r->loop = waiter.l;
	r->done.fn = req_done;
	auth_post(a, r);
}

static void test_thread(void **state)
{
	struct auth *a = load_ok(USERS, 0600);
	struct auth_req r[4];
	static const char zero[AUTH_PASS_MAX];

	(void)state;
	assert_int_equal(loop_new(&waiter.l, 64), 0);
	assert_int_equal(auth_start(a), 0);
	waiter.done = 0;
	waiter.want = 3;
	post(a, &r[0], "bob", "pw-bob");
	post(a, &r[1], "alice@x.test", "nope");
	post(a, &r[2], "mallory", "pw-bob");
	assert_int_equal(loop_run(waiter.l), 0);
	assert_int_equal(r[0].result, 1);
	assert_string_equal(r[0].domains, "y.test *.w.test");
	assert_int_equal(r[1].result, 0);
	assert_int_equal(r[2].result, 0);
	for (int i = 0; i < 3; i++)
		assert_memory_equal(r[i].password, zero, sizeof(zero)); /* wiped */
	auth_stop(a);
	waiter.want = 4;
	post(a, &r[3], "bob", "pw-bob"); /* stopped: answered at once */
	assert_int_equal(loop_run(waiter.l), 0);
	assert_int_equal(r[3].result, -EAGAIN);
	assert_memory_equal(r[3].password, zero, sizeof(zero));
	auth_free(a);
	loop_free(waiter.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify),    cmocka_unit_test(test_cache),
	    cmocka_unit_test(test_malformed), cmocka_unit_test(test_odd_files),
	    cmocka_unit_test(test_siphash),   cmocka_unit_test(test_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
