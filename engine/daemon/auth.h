/* auth — the injection side's credentials: the users file (auth_users_file) loaded at start-up,
 * and a thread that verifies AUTH passwords against it.
 *
 * Why a thread: crypt(3) with SHA-512 ($6$) or yescrypt ($y$) costs milliseconds of CPU on
 * purpose, and a shard's loop must never stall on it. Shards post a request (login and password
 * copied into it) and get the verdict back through their loop's mailbox, like the body reader
 * (fetch.h). A bulk injector opens many sessions with the same login, so successful
 * verifications are cached for a few minutes, keyed by the user and a keyed 128-bit hash of the
 * password (SipHash with a per-process random key): neither the password nor a fast unsalted
 * hash of it is kept. Passwords are wiped from requests as soon as they are checked.
 *
 * File format, one user per line ('#' comments and blank lines skipped):
 *     login:crypt-hash[:domains]
 * login: 1..255 bytes, no blank, control byte or ':'. crypt-hash: "$6$..." or "$y$..." as
 * `mkpasswd -m sha-512` / `mkpasswd -m yescrypt` print them. domains (optional): a list of
 * domains (util_domains_check: "example.com", "*.example.com"; blanks or ',' between) the user
 * may also send from under sender_policy = own_domain, besides the login's own domain.
 */
#ifndef RIPTIDE_AUTH_H
#define RIPTIDE_AUTH_H

#include "engine/loop/loop.h"

#include <stdbool.h>
#include <stdint.h>

#define AUTH_LOGIN_MAX	 256 /* bytes of a login, NUL included (smtpd's SMTPD_AUTH_LOGIN_MAX) */
#define AUTH_PASS_MAX	 256 /* bytes of a password, NUL included */
#define AUTH_DOMAINS_MAX 512 /* bytes of a user's domains, NUL included (smtpd's limit) */
#define AUTH_CACHE_MS	 (5u * 60u * 1000u) /* how long a successful verification is reused */

struct auth;

/* One verification; the poster owns it until done.fn runs on `loop`. The auth thread wipes
 * password once it has been checked and sets result: 1 the password is right (domains then
 * points at the user's extra sender domains, "" for none, valid while the struct auth lives),
 * 0 wrong login or password, -EAGAIN the verifier is stopped (answer 454). */
struct auth_req {
	struct auth_req *next;
	char login[AUTH_LOGIN_MAX];
	char password[AUTH_PASS_MAX];
	int result;
	const char *domains;
	struct loop *loop;
	struct loop_msg done;
};

/* auth_load: read and check the users file at path. Returns 0 and *out; -EINVAL with
 * "path:line: what is wrong" in err (errlen bytes) for a malformed file; -errno when it cannot
 * be read (err says so too). */
int auth_load(const char *path, struct auth **out, char *err, size_t errlen);

/* auth_readable_by_others: the file's mode (at load) lets other users read it. */
bool auth_readable_by_others(const struct auth *a);

/* auth_users: the number of users loaded. */
unsigned auth_users(const struct auth *a);

/* auth_check: verify login/password now, on the calling thread (the auth thread's work; tests
 * call it directly, never while the thread runs). Uses and feeds the cache. Returns true and
 * *domains (see auth_req) when the password is right, false otherwise. */
bool auth_check(struct auth *a, const char *login, const char *password, const char **domains);

/* auth_stats: crypt(3) calls made and cache hits so far (approximate from other threads). */
void auth_stats(const struct auth *a, uint64_t *crypts, uint64_t *hits);

/* auth_start: start the verifier thread. Returns 0 or -errno. */
int auth_start(struct auth *a);

/* auth_post: (any thread) queue r; its verdict is posted to r->loop. After auth_stop, the
 * verdict (-EAGAIN) is posted at once. */
void auth_post(struct auth *a, struct auth_req *r);

/* auth_stop: verify what is queued (posting the verdicts), then stop the thread. Later posts
 * are answered -EAGAIN. Idempotent; a thread never started is fine. */
void auth_stop(struct auth *a);

/* auth_free: stop (auth_stop) and free, wiping the hashes and the cache. NULL is fine. */
void auth_free(struct auth *a);

#endif
