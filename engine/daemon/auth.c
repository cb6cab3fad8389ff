/* auth — users file, verifier thread and cache of successful verifications (see auth.h).
 *
 * Why this shape: the file is read once, checked line by line (a malformed file stops the
 * daemon at start-up with file:line, exit 2) and kept sorted for a binary search. The verifier
 * is a mutex + condvar list like fetch.c's, one thread: crypt(3) is CPU-bound and the cache
 * takes the repeated logins of bulk injectors off it. The cache is direct-mapped (a slot per
 * user and password tag; a collision evicts), touched only by the verifier thread, and holds
 * successes only: a wrong password always pays crypt(3). An unknown login pays it too (against
 * the first user's hash), so timing does not tell which logins exist.
 */
#include "engine/daemon/auth.h"
#include "engine/util/util.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#define AUTH_SLOTS    1024u
#define AUTH_LINE_MAX 4096u

struct auth_user {
	char *login;
	char *hash;
	char *domains; /* "" when none */
	unsigned line;
};

struct auth_slot {
	uint32_t user1; /* user index + 1; 0: empty */
	uint64_t tag[2];
	uint64_t until_ms;
};

struct auth {
	struct auth_user *users; /* sorted by login */
	unsigned n, cap;
	bool others_read;
	uint64_t key[4]; /* SipHash keys of the password tags (random per process) */
	struct auth_slot slots[AUTH_SLOTS];
	struct crypt_data *cd; /* crypt_rn's scratch (the verifier thread's) */
	atomic_uint_fast64_t crypts, hits;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct auth_req *head, **tail;
	bool stop;
};

/* ---- SipHash-2-4 (Aumasson, Bernstein 2012): a keyed PRF for the cache's password tags ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
	v[0] += v[1], v[1] = ROTL(v[1], 13), v[1] ^= v[0], v[0] = ROTL(v[0], 32);
	v[2] += v[3], v[3] = ROTL(v[3], 16), v[3] ^= v[2];
	v[0] += v[3], v[3] = ROTL(v[3], 21), v[3] ^= v[0];
	v[2] += v[1], v[1] = ROTL(v[1], 17), v[1] ^= v[2], v[2] = ROTL(v[2], 32);
}

/* n bytes (n < 8) at p as a little-endian integer. */
static uint64_t sip_le(const uint8_t *p, size_t n)
{
	uint64_t m = 0;

	for (size_t i = 0; i < n; i++)
		m |= (uint64_t)p[i] << (8 * i);
	return m;
}

static void sip_absorb(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
}

/* SipHash-2-4 of in[0..n) under the key (k0, k1). */
static uint64_t siphash24(uint64_t k0, uint64_t k1, const void *in, size_t n)
{
	const uint8_t *p = in;
	uint64_t v[4] = {k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
			 k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull};
	size_t i;

	for (i = 0; i + 8 <= n; i += 8)
		sip_absorb(v, sip_le(p + i, 4) | sip_le(p + i + 4, 4) << 32);
	sip_absorb(v, sip_le(p + i, n - i) | (uint64_t)(n & 0xff) << 56);
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- cache ---- */

/* The 128-bit tag of (user index, password). */
static void auth_tag(const struct auth *a, uint32_t user, const char *password, uint64_t tag[2])
{
	uint8_t buf[4 + AUTH_PASS_MAX];
	size_t n = strnlen(password, AUTH_PASS_MAX - 1);

	util_be32_put(buf, user);
	memcpy(buf + 4, password, n);
	tag[0] = siphash24(a->key[0], a->key[1], buf, 4 + n);
	tag[1] = siphash24(a->key[2], a->key[3], buf, 4 + n);
	explicit_bzero(buf, sizeof(buf));
}

static struct auth_slot *auth_slot(struct auth *a, uint32_t user, const uint64_t tag[2])
{
	return &a->slots[(tag[0] ^ user) % AUTH_SLOTS];
}

static bool auth_cache_hit(struct auth *a, uint32_t user, const uint64_t tag[2])
{
	const struct auth_slot *sl = auth_slot(a, user, tag);

	return sl->user1 == user + 1 && sl->tag[0] == tag[0] && sl->tag[1] == tag[1] &&
	       sl->until_ms > util_mono_ms();
}

static void auth_cache_put(struct auth *a, uint32_t user, const uint64_t tag[2])
{
	struct auth_slot *sl = auth_slot(a, user, tag);

	sl->user1 = user + 1;
	sl->tag[0] = tag[0];
	sl->tag[1] = tag[1];
	sl->until_ms = util_mono_ms() + AUTH_CACHE_MS;
}

/* ---- verification ---- */

static int auth_cmp(const void *x, const void *y)
{
	return strcmp(((const struct auth_user *)x)->login, ((const struct auth_user *)y)->login);
}

/* The index of login, or -1. */
static int auth_find(const struct auth *a, const char *login)
{
	struct auth_user key = {.login = (char *)login};
	const struct auth_user *u =
	    a->n ? bsearch(&key, a->users, a->n, sizeof(key), auth_cmp) : NULL;

	return u ? (int)(u - a->users) : -1;
}

/* crypt(password, hash) == hash, compared in constant time. */
static bool auth_crypt(struct auth *a, const char *hash, const char *password)
{
	const char *out = crypt_rn(password, hash, a->cd, (int)sizeof(*a->cd));
	size_t n = strlen(hash);
	unsigned char diff = 0;

	atomic_fetch_add_explicit(&a->crypts, 1, memory_order_relaxed);
	if (!out || strlen(out) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(out[i] ^ hash[i]);
	return diff == 0;
}

/* auth_check: see auth.h. */
bool auth_check(struct auth *a, const char *login, const char *password, const char **domains)
{
	int u = auth_find(a, login);
	uint64_t tag[2];
	bool ok;

	if (u < 0) { /* pay crypt anyway: no timing oracle for which logins exist */
		if (a->n)
			(void)auth_crypt(a, a->users[0].hash, password);
		return false;
	}
	auth_tag(a, (uint32_t)u, password, tag);
	if (auth_cache_hit(a, (uint32_t)u, tag)) {
		atomic_fetch_add_explicit(&a->hits, 1, memory_order_relaxed);
		ok = true;
	} else if ((ok = auth_crypt(a, a->users[u].hash, password))) {
		auth_cache_put(a, (uint32_t)u, tag);
	}
	if (ok)
		*domains = a->users[u].domains;
	return ok;
}

/* auth_stats: see auth.h. */
void auth_stats(const struct auth *a, uint64_t *crypts, uint64_t *hits)
{
	*crypts = atomic_load_explicit(&a->crypts, memory_order_relaxed);
	*hits = atomic_load_explicit(&a->hits, memory_order_relaxed);
}

/* auth_readable_by_others: see auth.h. */
bool auth_readable_by_others(const struct auth *a)
{
	return a->others_read;
}

/* auth_users: see auth.h. */
unsigned auth_users(const struct auth *a)
{
	return a->n;
}

/* ---- the users file ---- */

/* A crypt(3) hash we verify: "$6$" (SHA-512) or "$y$" (yescrypt), a setting libcrypt accepts
 * and a hash part of the length that method writes (86 / 43 characters). */
static bool auth_hash_ok(const char *h)
{
	const char *last = strrchr(h, '$');
	size_t want = strncmp(h, "$6$", 3) == 0 ? 86 : strncmp(h, "$y$", 3) == 0 ? 43 : 0;
	int cs = crypt_checksalt(h);

	if (!want || (cs != CRYPT_SALT_OK && cs != CRYPT_SALT_TOO_CHEAP))
		return false;
	return strlen(last + 1) == want &&
	       strspn(last + 1, "./0123456789ABCDEFGHIJKLMNOPQRSTU"
				"VWXYZabcdefghijklmnopqrstuvwxyz") == want;
}

/* A login: 1..AUTH_LOGIN_MAX-1 bytes, no blank or control byte (':' cannot be in it). */
static const char *auth_login_bad(const char *l)
{
	size_t n = strlen(l);

	if (!n)
		return "empty login";
	if (n >= AUTH_LOGIN_MAX)
		return "login longer than 255 bytes";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)l[i] <= ' ' || l[i] == 0x7f)
			return "blank or control character in the login";
	return NULL;
}

/* Check the domains field d (may be NULL); NULL when fine, else why (in buf). */
static const char *auth_domains_bad(const char *d, char *buf, size_t bl)
{
	char why[300];

	if (!d)
		return NULL;
	if (strlen(d) >= AUTH_DOMAINS_MAX)
		return "domains longer than 511 bytes";
	if (util_domains_check(d, why, sizeof(why)) < 0) {
		snprintf(buf, bl, "domains: %s", why);
		return buf;
	}
	return NULL;
}

/* Split "login:hash[:domains]" (modified in place) and check each field; NULL or why. */
static const char *auth_split(char *line, char **f, char *buf, size_t bl)
{
	const char *why;

	f[0] = line;
	f[1] = strchr(line, ':');
	if (!f[1])
		return "expected login:hash[:domains]";
	*f[1]++ = '\0';
	f[2] = strchr(f[1], ':');
	if (f[2])
		*f[2]++ = '\0';
	if (f[2] && strchr(f[2], ':'))
		return "too many ':' (expected login:hash[:domains])";
	if ((why = auth_login_bad(f[0])))
		return why;
	if (!auth_hash_ok(f[1]))
		return "not a SHA-512 ($6$) or yescrypt ($y$) crypt hash (mkpasswd -m sha-512 or "
		       "-m yescrypt makes one)";
	return auth_domains_bad(f[2], buf, bl);
}

/* One line (NUL-terminated, its newline removed): a user added, or why it is wrong. */
static const char *auth_line(struct auth *a, char *line, unsigned lineno, char *buf, size_t bl)
{
	char *f[3];
	const char *why;
	struct auth_user *u;

	if (!line[0] || line[0] == '#')
		return NULL;
	if ((why = auth_split(line, f, buf, bl)))
		return why;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->users = util_xrealloc(a->users, a->cap * sizeof(*a->users));
	}
	u = &a->users[a->n++];
	u->login = util_xstrndup(f[0], strlen(f[0]));
	u->hash = util_xstrndup(f[1], strlen(f[1]));
	u->domains = util_xstrndup(f[2] ? f[2] : "", f[2] ? strlen(f[2]) : 0);
	u->line = lineno;
	return NULL;
}

/* Read every line of fp; 0 or -EINVAL with "path:line: why" in err. */
static int auth_read(struct auth *a, FILE *fp, const char *path, char *err, size_t errlen)
{
	char *line = NULL, buf[400];
	size_t cap = 0;
	ssize_t n;
	unsigned lineno = 0;
	const char *why = NULL;

	while (!why && (n = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (strlen(line) != (size_t)n)
			why = "NUL byte in the line";
		else if ((size_t)n > AUTH_LINE_MAX)
			why = "line longer than 4096 bytes";
		else
			why = auth_line(a, line, lineno, buf, sizeof(buf));
	}
	if (line)
		explicit_bzero(line, cap);
	free(line);
	if (why)
		snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
	return why ? -EINVAL : 0;
}

/* Sort the users; a login given twice is an error naming its second line. */
static int auth_sort(struct auth *a, const char *path, char *err, size_t errlen)
{
	if (a->n)
		qsort(a->users, a->n, sizeof(*a->users), auth_cmp);
	for (unsigned i = 1; i < a->n; i++) {
		if (strcmp(a->users[i - 1].login, a->users[i].login) == 0) {
			unsigned l0 = a->users[i - 1].line, l1 = a->users[i].line;
			snprintf(err, errlen, "%s:%u: login '%s' already given on line %u", path,
				 l0 > l1 ? l0 : l1, a->users[i].login, l0 < l1 ? l0 : l1);
			return -EINVAL;
		}
	}
	return 0;
}

static struct auth *auth_alloc(void)
{
	struct auth *a = util_xcalloc(1, sizeof(*a));

	a->cd = util_xcalloc(1, sizeof(*a->cd));
	a->tail = &a->head;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	if (getrandom(a->key, sizeof(a->key), 0) != (ssize_t)sizeof(a->key))
		for (int i = 0; i < 4; i++)
			a->key[i] = util_mono_us() * 0x9e3779b97f4a7c15ull + (uint64_t)i;
	return a;
}

/* auth_load: see auth.h. */
int auth_load(const char *path, struct auth **out, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "re");
	struct auth *a;
	struct stat st;
	int ret;

	if (!fp) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	a = auth_alloc();
	a->others_read = fstat(fileno(fp), &st) == 0 && (st.st_mode & S_IROTH);
	ret = auth_read(a, fp, path, err, errlen);
	fclose(fp);
	if (!ret)
		ret = auth_sort(a, path, err, errlen);
	if (ret < 0) {
		auth_free(a);
		return ret;
	}
	*out = a;
	return 0;
}

/* ---- the verifier thread ---- */

/* Every queued request, waiting for one; NULL once stopped with nothing queued. */
static struct auth_req *auth_take(struct auth *a)
{
	struct auth_req *list;

	pthread_mutex_lock(&a->lock);
	while (!a->head && !a->stop)
		pthread_cond_wait(&a->cond, &a->lock);
	list = a->head;
	a->head = NULL;
	a->tail = &a->head;
	pthread_mutex_unlock(&a->lock);
	return list;
}

static void *auth_main(void *arg)
{
	struct auth *a = arg;
	struct auth_req *r, *next;

	while ((r = auth_take(a))) {
		for (; r; r = next) {
			next = r->next; /* r belongs to its poster again once posted back */
			r->domains = "";
			r->result = auth_check(a, r->login, r->password, &r->domains) ? 1 : 0;
			explicit_bzero(r->password, sizeof(r->password));
			loop_post(r->loop, &r->done);
		}
	}
	return NULL;
}

/* auth_start: see auth.h. */
int auth_start(struct auth *a)
{
	int ret = pthread_create(&a->thread, NULL, auth_main, a);

	if (ret)
		return -ret;
	pthread_setname_np(a->thread, "rt-auth");
	a->started = true;
	return 0;
}

/* auth_post: see auth.h. */
void auth_post(struct auth *a, struct auth_req *r)
{
	bool wake, stopped;

	r->next = NULL;
	pthread_mutex_lock(&a->lock);
	stopped = a->stop;
	wake = !stopped && a->head == NULL;
	if (!stopped) {
		*a->tail = r;
		a->tail = &r->next;
	}
	pthread_mutex_unlock(&a->lock);
	if (wake)
		pthread_cond_signal(&a->cond);
	if (stopped) {
		r->result = -EAGAIN;
		r->domains = "";
		explicit_bzero(r->password, sizeof(r->password));
		loop_post(r->loop, &r->done);
	}
}

/* auth_stop: see auth.h. */
void auth_stop(struct auth *a)
{
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_mutex_unlock(&a->lock);
	pthread_cond_signal(&a->cond);
	if (a->started)
		pthread_join(a->thread, NULL);
	a->started = false;
}

/* auth_free: see auth.h. */
void auth_free(struct auth *a)
{
	if (!a)
		return;
	auth_stop(a);
	for (unsigned i = 0; i < a->n; i++) {
		explicit_bzero(a->users[i].hash, strlen(a->users[i].hash));
		free(a->users[i].login);
		free(a->users[i].hash);
		free(a->users[i].domains);
	}
	free(a->users);
	free(a->cd);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	explicit_bzero(a, sizeof(*a));
	free(a);
}
