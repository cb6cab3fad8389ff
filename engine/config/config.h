/* config — riptide's configuration: embedded defaults, an INI file (inih), validation and the
 * effective-configuration printer.
 *
 * Why: one table of keys drives defaults, parsing, validation and --print-config, so the three
 * cannot drift apart. An unknown section/key or a bad value is an error that names the file, the
 * line and the key (the daemon then exits 2). What the loader accepts, config_print prints back
 * in a form that loads to the same values: values that inih cannot carry (a string starting
 * with ';', a line starting with \v, \f or \r) are refused at load with file:line.
 */
#ifndef RIPTIDE_CONFIG_H
#define RIPTIDE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/util/util.h"

#define CONFIG_STR 256

enum config_mode {
	CONFIG_MODE_RELAY = 0,	     /* everything to [delivery] relay */
	CONFIG_MODE_INDEPENDENT = 1, /* MX lookup (issue #3) */
};

enum config_dsn_original {
	CONFIG_DSN_FULL = 0,	/* message/rfc822 */
	CONFIG_DSN_HEADERS = 1, /* text/rfc822-headers */
	CONFIG_DSN_NONE = 2,
};

/* [delivery] tls: what the SMTP client does about TLS (issue #6). */
enum config_tls {
	CONFIG_TLS_NONE = 0,	      /* never STARTTLS */
	CONFIG_TLS_OPPORTUNISTIC = 1, /* STARTTLS when offered; a failed handshake: plaintext */
	CONFIG_TLS_REQUIRED = 2,      /* STARTTLS or a temporary failure */
	CONFIG_TLS_SMTPS = 3,	      /* TLS on connect (port 465) */
};

/* [delivery] tls_verify: auto = none with opportunistic, ca with required and smtps. */
enum config_tls_verify {
	CONFIG_VERIFY_AUTO = 0,
	CONFIG_VERIFY_NONE = 1,
	CONFIG_VERIFY_CA = 2,
};

/* [inject] sender_policy for authenticated clients. */
enum config_sender_policy {
	CONFIG_SENDER_ANY = 0,
	CONFIG_SENDER_OWN_ADDRESS = 1, /* MAIL FROM must be the login name */
	CONFIG_SENDER_OWN_DOMAIN = 2,  /* MAIL FROM's domain must be one of the user's domains */
};

/* A rate (issue #7): n events per per_ms milliseconds, written "500/h", "60/m", "10/s" or
 * "100" (per second); "0" = no limit. */
struct config_rate {
	uint32_t n;	 /* 0: no limit */
	uint64_t per_ms; /* 1000, 60000 or 3600000 */
};

struct config_sets;

struct config {
	/* [main] */
	unsigned shards;	      /* shards = 0 -> online CPUs */
	char spool[CONFIG_STR];	      /* spool = /var/spool/riptide (RocksDB dir) */
	char hostname[CONFIG_STR];    /* hostname = gethostname() */
	char log[CONFIG_STR];	      /* log = stderr | path of the delivery log */
	uint64_t shutdown_timeout_ms; /* shutdown_timeout = 10s */

	/* [inject] */
	char listen[CONFIG_STR];    /* listen = 127.0.0.1:2525 ("" = no TCP) */
	char socket[CONFIG_STR];    /* socket = "" (UNIX socket path, "" = none) */
	uint64_t max_message_size;  /* max_message_size = 10M */
	unsigned max_recipients;    /* max_recipients = 1000 */
	unsigned max_line_length;   /* max_line_length = 2048 (command lines) */
	unsigned max_sessions;	    /* max_sessions = 1000 (whole daemon, all shards together) */
	uint64_t inject_timeout_ms; /* timeout = 5m (idle timeout per command/read) */
	uint64_t inject_cmd_deadline_ms;   /* command_deadline = 1m (total per command line) */
	uint64_t inject_data_deadline_ms;  /* data_deadline = 10m (total, 354 to the final dot) */
	unsigned max_hops;		   /* max_hops = 50 (Received: fields, then 554 5.4.6) */
	char tls_cert[CONFIG_STR];	   /* tls_cert = "" (PEM chain; set -> STARTTLS offered) */
	char tls_key[CONFIG_STR];	   /* tls_key = "" (PEM private key of tls_cert) */
	char tls_listen[CONFIG_STR];	   /* tls_listen = "" (implicit-TLS host:port, e.g. :465) */
	char auth_users_file[CONFIG_STR];  /* auth_users_file = "" (user:crypt-hash lines) */
	char trusted_networks[CONFIG_STR]; /* = "127.0.0.0/8 ::1/128" (inject without AUTH) */
	char relay_domains[CONFIG_STR];	   /* relay_domains = "" (anyone may send to these) */
	enum config_sender_policy sender_policy; /* sender_policy = any */
	unsigned max_rset; /* max_rset = 20 (RSETs without a message; 0=off) */
	bool vrfy;	   /* vrfy = no (252 2.5.2 without an answer) */

	/* [delivery] */
	bool outgoing;		    /* outgoing = yes */
	enum config_mode mode;	    /* mode = relay | independent */
	char relay[CONFIG_STR];	    /* relay = 127.0.0.1:25 (IPv4:port, [IPv6]:port, name[:port]) */
	char helo_name[CONFIG_STR]; /* helo_name = hostname ("" in the file -> hostname) */
	enum config_tls tls;	    /* tls = opportunistic */
	enum config_tls_verify tls_verify;	 /* tls_verify = auto */
	char tls_ca_file[CONFIG_STR];		 /* tls_ca_file = "" (the system's CA store) */
	char auth_user[CONFIG_STR];		 /* auth_user = "" (no AUTH to the relay) */
	char auth_password[CONFIG_STR];		 /* auth_password = "" (secret: never printed) */
	bool auth_plaintext;			 /* auth_plaintext = no (AUTH only over TLS) */
	unsigned max_connections;		 /* max_connections = 1000 (global outbound cap) */
	unsigned max_messages_per_connection;	 /* max_messages_per_connection = 1000 */
	unsigned max_recipients_per_transaction; /* max_recipients_per_transaction = 100 */
	uint64_t idle_timeout_ms;		 /* idle_timeout = 2s (idle outbound connection) */
	uint64_t retry_delay_ms;		 /* retry_delay = 5m (after the first deferral) */
	double retry_backoff;			 /* retry_backoff = 1 (factor per deferred round) */
	uint64_t retry_max_delay_ms;		 /* retry_max_delay = 4h (ceiling of the delay) */
	unsigned max_attempts;	/* max_attempts = 0 (connection attempts; 0 = none) */
	uint64_t lifetime_ms;	/* lifetime = 5d (then the recipient fails) */
	uint64_t warn_after_ms; /* warn_after = 0s (delay warning; 0 = off) */
	enum config_dsn_original dsn_original; /* dsn_original = full | headers | none */
	char dsn_templates[CONFIG_STR];	       /* dsn_templates = "" (built-in texts) */
	char postmaster[CONFIG_STR];	       /* postmaster = "" (copy of failure notices) */
	uint64_t connect_timeout_ms;	       /* connect_timeout = 30s */
	uint64_t greeting_timeout_ms;	       /* greeting_timeout = 5m  (RFC 5321 4.5.3.2) */
	uint64_t helo_timeout_ms;	       /* helo_timeout = 5m */
	uint64_t mail_timeout_ms;	       /* mail_timeout = 5m */
	uint64_t rcpt_timeout_ms;	       /* rcpt_timeout = 5m */
	uint64_t data_timeout_ms;	       /* data_timeout = 2m (DATA command reply) */
	uint64_t data_block_timeout_ms;	       /* data_block_timeout = 3m (each send) */
	uint64_t data_done_timeout_ms;	       /* data_done_timeout = 10m (after final dot) */
	/* DNS (riptidectl test-dns now; the daemon with independent mode, #4) */
	char dns_servers[CONFIG_STR]; /* dns_servers = auto | "127.0.0.1:5353;[::1]:53" */
	bool dns_fallback_auto;	      /* dns_fallback_auto = no (retry on resolv.conf servers) */
	uint64_t dns_timeout_ms;      /* dns_timeout = 5s (per try) */
	unsigned dns_tries;	      /* dns_tries = 2 */
	uint64_t dns_min_ttl_ms;      /* dns_min_ttl = 0s (floor of cached TTLs) */
	uint64_t dns_max_ttl_ms;      /* dns_max_ttl = 1d (ceiling of positive TTLs) */
	uint64_t dns_negative_ttl_ms; /* dns_negative_ttl = 1h (ceiling of NXDOMAIN/NODATA TTLs) */
	unsigned dns_cache_entries;   /* dns_cache_entries = 65536 (cache bound, LRU eviction) */
	char resolv_conf[CONFIG_STR]; /* resolv_conf = /etc/resolv.conf (for auto) */
	bool implicit_mx;	      /* implicit_mx = yes (no MX: the domain's A/AAAA) */
	unsigned max_mx_hosts;	      /* max_mx_hosts = 5 */
	/* MX delivery (independent mode) */
	unsigned mx_port;		 /* port = 25 (TCP port of MX hosts) */
	bool first_mx_only;		 /* first_mx_only = no */
	char fallback_relay[CONFIG_STR]; /* fallback_relay = "" (none); host:port like relay */
	unsigned max_connections_per_destination; /* max_connections_per_destination = 20 */
	struct config_rate max_message_rate;	  /* max_message_rate = 0 (per destination) */
	struct config_rate max_connection_rate;	  /* max_connection_rate = 0 (per destination) */
	bool static_routes;	       /* static_routes = yes (global switch of [route]) */
	char default_pool[CONFIG_STR]; /* default_pool = "" ([pool] name; "" = none) */
	bool mx_rollup; /* mx_rollup = yes (domains whose MX host sets match share one site) */
	/* source_address = "" (kernel's choice) | IPv4 | IPv6 | "IPv4;IPv6": the text as given,
	 * and its literals parsed (port 0; family AF_UNSPEC = none for that family) */
	char source_address[CONFIG_STR];
	struct util_addr source_v4, source_v6;

	/* [queue] */
	uint64_t memory_budget;		    /* memory_budget = 1G (bytes of bodies in RAM) */
	uint64_t scan_interval_ms;	    /* scan_interval = 1s (sched scan for due mail) */
	unsigned max_ready_per_destination; /* = 2000 units loaded/queued per destination */
	unsigned max_queue_messages;	    /* max_queue_messages = 0 (no limit) */
	uint64_t max_queue_bytes;	    /* max_queue_bytes = 0 (no limit) */
	char control_socket[CONFIG_STR];    /* control_socket = "" (spool/control.sock) */
	uint64_t write_buffer_size;	    /* write_buffer_size = 64M */
	bool blob_bodies;		    /* blob_bodies = no */

	/* Repeated sections ([route X], [shaping X], [backoff X], [pool X], [rewrite]); owned by
	 * the config that config_load filled (config_free), NULL in a route's own copy. Never NULL
	 * after config_defaults/config_load: without repeated sections in the file it points at a
	 * shared, read-only set holding the built-in backoff rules (config_free leaves that one
	 * alone). A struct config copied by value shares sets: only the config_load'ed original
	 * may be passed to config_free, and the copy must not outlive it. */
	struct config_sets *sets;
};

/* [route NAME]: where mail for a domain goes. kind: hosts if `hosts` is set, else cfg.mode. */
struct config_route {
	char name[CONFIG_STR];	  /* "example.com" or "*.example.com" (subdomains), lower case */
	bool enabled;		  /* enabled = yes */
	char hosts[CONFIG_STR];	  /* hosts = "" | "mx1.example.net mx2.example.net:2525 [::1]" */
	bool fallback_to_default; /* fallback_to_default = no (hosts all failed: default route) */
	struct config cfg;	  /* [delivery] values, then this section's keys (cfg.sets NULL) */
	unsigned line;		  /* line of the [route ...] header */
};

/* [shaping NAME]: throttles of one destination; a key the section does not set (bit clear
 * in `given`) inherits the destination's route values. */
enum {
	CONFIG_SHAPE_CONNS = 0x1,	 /* max_connections (per destination) */
	CONFIG_SHAPE_MSGS = 0x2,	 /* max_messages_per_connection */
	CONFIG_SHAPE_RCPTS = 0x4,	 /* max_recipients_per_transaction */
	CONFIG_SHAPE_MSG_RATE = 0x8,	 /* max_message_rate */
	CONFIG_SHAPE_CONN_RATE = 0x10,	 /* max_connection_rate */
	CONFIG_SHAPE_CONNECT_TMO = 0x20, /* connect_timeout */
	CONFIG_SHAPE_TLS = 0x40,	 /* tls */
};
struct config_shaping {
	char name[CONFIG_STR]; /* domain, "*.domain", a route's name, or a site ("mx:host...") */
	unsigned max_connections;
	unsigned max_messages_per_connection;
	unsigned max_recipients_per_transaction;
	struct config_rate max_message_rate;
	struct config_rate max_connection_rate;
	uint64_t connect_timeout_ms;
	enum config_tls tls;
	uint32_t given; /* CONFIG_SHAPE_* */
	unsigned line;
};

enum config_backoff_action {
	CONFIG_BACKOFF_SUSPEND = 0, /* defer the destination's jobs without trying, for duration */
	CONFIG_BACKOFF_REDUCE = 1,  /* connections and rates times factor for duration, then back
				     * to full in recover_steps steps, one per recover_interval */
	CONFIG_BACKOFF_BOUNCE = 2,  /* the recipient fails permanently with that reply */
};

/* [backoff NAME]: a rule matched against remote replies. Built-in rules (gmail, outlook,
 * yahoo) are present from config_defaults; a section of the same name replaces its keys. */
struct config_backoff {
	char name[CONFIG_STR];
	bool enabled;			   /* enabled = yes */
	unsigned code;			   /* code = 0 (any) | 200..599 */
	char enhanced[32];		   /* enhanced = "" (any) | "4.7.28" */
	char text[CONFIG_STR];		   /* text = "" (any) | POSIX ERE, case-insensitive */
	enum config_backoff_action action; /* action = suspend | reduce | bounce */
	uint64_t duration_ms;		   /* duration = 10m */
	double factor;			   /* factor = 0.5 (reduce: fraction kept) */
	unsigned recover_steps;		   /* recover_steps = 4 */
	uint64_t recover_interval_ms;	   /* recover_interval = 1m */
	bool builtin;			   /* one of the built-in rules (maybe overridden) */
	unsigned line;			   /* 0 for an untouched built-in rule */
};

/* One egress source of a pool: an address to bind and the EHLO name it uses. */
struct config_source {
	char text[64];	       /* the address as written (no port) */
	struct util_addr addr; /* port 0 */
	char helo[CONFIG_STR]; /* its EHLO name ([delivery] helo_name when not given) */
};

/* [pool NAME]: sources = "127.0.0.2 mta1.example.com, 127.0.0.3 mta2.example.com, ::1"
 * (a `sources` line may be repeated: each adds its sources, in file order). */
struct config_pool {
	char name[64]; /* letters, digits, '-', '_', '.' */
	unsigned nsources;
	struct config_source *sources;
	unsigned line;
};

/* [rewrite]: one line per address, `address = alias`, applied to From/Sender/Reply-To. */
struct config_rewrite {
	char from[CONFIG_STR]; /* lower case */
	char to[CONFIG_STR];
	unsigned line;
};

struct config_sets {
	struct config_route *routes;
	unsigned nroutes;
	struct config_shaping *shapings;
	unsigned nshapings;
	struct config_backoff *backoffs;
	unsigned nbackoffs;
	struct config_pool *pools;
	unsigned npools;
	struct config_rewrite *rewrites;
	unsigned nrewrites;
};

/* config_free: free what config_load allocated in c (c->sets, its arrays and pools' sources;
 * the shared built-in set is not freed); c stays valid with sets NULL. NULL c is a no-op. */
void config_free(struct config *c);

/* config_defaults: fill c with the embedded defaults (hostname from gethostname()); c->sets
 * points at the shared built-in set (gmail, outlook, yahoo backoff rules): nothing to free. */
void config_defaults(struct config *c);

/* config_rate_parse: "N/s", "N/m", "N/h" (also /sec, /second, /min, /minute, /hour, any case)
 * or a plain "N" (per second); N a decimal uint32; "0" (any unit) = no limit, stored as
 * {0, 1000}. Fills *out and returns 0, or returns -EINVAL and leaves *out alone. */
int config_rate_parse(const char *s, struct config_rate *out);

/* config_rate_format: r as config_print writes it: "0" (no limit), "N/s", "N/m" or "N/h"
 * (buf of len bytes, always NUL-terminated). */
void config_rate_format(const struct config_rate *r, char *buf, size_t len);

/* config_pool_find: the [pool name] section of c (case-sensitive name), or NULL when there is
 * none (or c->sets is NULL). The pointer lives as long as c->sets. */
const struct config_pool *config_pool_find(const struct config *c, const char *name);

/* config_load: defaults, then the INI file at path (NULL = defaults only), then validation.
 * c is written only on success. Returns 0, or -EINVAL with a message like
 * "riptide.conf:12: unknown key 'foo' in [inject]" in err (errlen bytes; every -EINVAL names
 * the line, except a bad hostname that came from gethostname()); -ENOENT/-EACCES if the file
 * cannot be read. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/* config_tls_verify_effective: c->tls_verify with auto resolved (none for opportunistic and
 * none, ca for required and smtps). */
enum config_tls_verify config_tls_verify_effective(const struct config *c);

/* config_load_buf: config_load over the len bytes at buf (INI text, need not be
 * NUL-terminated; the caller keeps it); name stands for the file name in messages. Same
 * returns as config_load (-ENOMEM if the buffer cannot be opened as a stream). */
int config_load_buf(struct config *c, const char *name, const char *buf, size_t len, char *err,
		    size_t errlen);

/* config_print: write the effective configuration as a valid INI file: every key of [main],
 * [inject], [delivery] and [queue], then every [route X] (enabled, hosts, fallback_to_default
 * and the keys whose values differ from [delivery]), [shaping X] (the keys given), every
 * [backoff X] rule (built-in ones too, all keys), [pool X] (one `sources` line per source)
 * and [rewrite]. For every c that config_load accepted, loading the output gives the same
 * values (print is then the same), except secrets (auth_password): a secret that is set is
 * printed as the comment "# auth_password = (set, not shown)", so it never reaches a terminal
 * or a log. */
void config_print(const struct config *c, FILE *f);

#endif
