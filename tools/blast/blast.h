/* blast — shared types of riptide-blast, the SMTP load generator built on smtpc.
 *
 * Why: the program is split into option parsing and reporting (blast_main.c), the per-thread
 * loops driving smtpc sessions (blast_worker.c) and message generation (blast_msg.c); they
 * share the run configuration and the cross-thread counters declared here.
 */
#ifndef RIPTIDE_BLAST_H
#define RIPTIDE_BLAST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/util/util.h"

#define BLAST_MAX_CODE 600
#define BLAST_ADDR_MAX 320

struct tls_ctx;

/* --tls, --tls-required, --smtps (smtpc's SMTPC_TLS_TRY, _REQUIRE, _IMPLICIT). */
enum blast_tls {
	BLAST_TLS_NONE = 0,
	BLAST_TLS_TRY,	   /* STARTTLS when offered; after a failed handshake, plaintext */
	BLAST_TLS_REQUIRE, /* STARTTLS or the connection fails */
	BLAST_TLS_SMTPS,   /* TLS on connect */
};

/* The run, fixed after option parsing (read-only while workers run), plus shared counters. */
struct blast_cfg {
	struct util_addr addr;
	char target[128];
	uint64_t n;    /* messages */
	unsigned conc; /* sessions in total */
	uint64_t size; /* generated message size */
	unsigned rcpt_per_msg;
	char **domains;
	unsigned ndomains;
	char **rcpts; /* explicit --rcpt list (overrides -r/-d) */
	unsigned nrcpts;
	const char *sender;
	bool no_pipelining;
	unsigned max_per_conn;
	unsigned threads;
	const char *log_path;
	int log_fd;
	bool quiet, verbose;
	char *body; /* --body file, CRLF-normalised; NULL: generate */
	size_t body_len;
	char runid[17];
	enum blast_tls tls;
	struct tls_ctx *tls_ctx; /* client context (no verification) when tls is set */
	char *auth_user;	 /* --auth USER:PASSWORD (both in one allocation), or NULL */
	const char *auth_password;
	bool auth_plaintext; /* --auth-plaintext: AUTH on unencrypted TCP too */

	/* shared counters */
	atomic_uint_fast64_t next_seq; /* next message to claim */
	atomic_uint_fast64_t started;  /* MAIL sent */
	atomic_uint_fast64_t done;     /* got a final outcome (reply or connection error) */
	atomic_uint_fast64_t ok;       /* 2xx final */
	uint32_t *lat_us;	       /* per message seq: latency + 1 in us, 0 = no reply */
};

/* Per-thread results, merged by main after the threads are joined. */
struct blast_stats {
	uint64_t codes[BLAST_MAX_CODE]; /* [0] = connection errors */
	uint64_t sessions;		/* connections that reached READY */
	uint64_t tls_sessions;		/* ... of them with TLS up */
	uint64_t tls_failed;		/* connections closed because TLS could not be had */
	char tls_desc[96];		/* "TLSv1.3 TLS_AES_128_GCM_SHA256" of one TLS session */
	uint64_t auth_failed;		/* connections closed because AUTH did not succeed */
};

/* blast_msg.c */

/* blast_msg_build: write message `seq` (headers + filler) for recipients rcpts[0..nr) into
 * *buf (grown as needed, *cap its size). Returns the message length. */
size_t blast_msg_build(const struct blast_cfg *cfg, uint64_t seq, const char *const *rcpts,
		       char **buf, size_t *cap);

/* blast_msg_id: write "<blast.RUNID.SEQ@riptide-blast>" into out. Returns its length. */
size_t blast_msg_id(const struct blast_cfg *cfg, uint64_t seq, char *out, size_t cap);

/* blast_rcpt: write recipient j of message seq ("user<k>@<domain>", round robin) into out. */
void blast_rcpt(const struct blast_cfg *cfg, uint64_t seq, unsigned j, char *out, size_t cap);

/* blast_load_body: read path into a CRLF-normalised buffer (cfg->body/body_len). 0 or -errno. */
int blast_load_body(struct blast_cfg *cfg, const char *path);

/* blast_worker.c */

/* blast_run: run cfg->threads workers until every message is done or cannot be attempted;
 * merge their statistics into *st. Returns 0 or -errno (loop creation failed). */
int blast_run(struct blast_cfg *cfg, struct blast_stats *st);

#endif
