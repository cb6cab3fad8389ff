/* config_keys — the table of [main], [inject], [delivery] and [queue] keys.
 *
 * Why a file of its own: config.c (INI machinery), config_route.c (a route takes every
 * [delivery] key) and config_sets_print.c (a route prints the keys that differ from
 * [delivery]) all walk it, and none of them may reach into config.c (see config_int.h). One
 * row per key: {section, key, type, flags, offset into struct config, min, max, default text}.
 */
#define CONFIG_KEYS_DEFINITION
#include "engine/config/config_int.h"

#include <string.h>

const struct key config_keys[] = {
    UINT("main", "shards", shards, 0, 256, "0"),
    {"main", "spool", KT_STR, 0, OFF(spool), 0, 0, "/var/spool/riptide"},
    {"main", "hostname", KT_STR, KF_TOKEN, OFF(hostname), 0, 0, NULL},
    {"main", "log", KT_STR, 0, OFF(log), 0, 0, "stderr"},
    DUR("main", "shutdown_timeout", shutdown_timeout_ms, 0, MS_D, "10s"),

    {"inject", "listen", KT_ADDR, KF_EMPTY_OK | KF_TCP, OFF(listen), 0, 0, "127.0.0.1:2525"},
    {"inject", "socket", KT_ADDR, KF_EMPTY_OK | KF_UNIX, OFF(socket), 0, 0, ""},
    SIZE("inject", "max_message_size", max_message_size, KIB, 4 * GIB, "10M"),
    UINT("inject", "max_recipients", max_recipients, 1, 1000000, "1000"),
    UINT("inject", "max_line_length", max_line_length, 512, 65536, "2048"),
    /* max_sessions: open injection sessions of the whole daemon, all shards together */
    UINT("inject", "max_sessions", max_sessions, 1, 1000000, "1000"),
    DUR("inject", "timeout", inject_timeout_ms, 1, MS_D, "5m"),
    /* total time to receive one command line / one message body (354 to the final dot),
     * however slowly it trickles in: a 1-byte/s client cannot hold a session */
    DUR("inject", "command_deadline", inject_cmd_deadline_ms, 1, MS_D, "1m"),
    DUR("inject", "data_deadline", inject_data_deadline_ms, 1, MS_D, "10m"),
    /* more Received: fields than this: 554 5.4.6 at the end of DATA (a mail loop) */
    UINT("inject", "max_hops", max_hops, 1, 1000, "50"),
    /* TLS (STARTTLS when tls_cert/tls_key are set; tls_listen: a TLS-on-connect listener) */
    {"inject", "tls_cert", KT_STR, KF_EMPTY_OK, OFF(tls_cert), 0, 0, ""},
    {"inject", "tls_key", KT_STR, KF_EMPTY_OK, OFF(tls_key), 0, 0, ""},
    {"inject", "tls_listen", KT_ADDR, KF_EMPTY_OK | KF_TCP, OFF(tls_listen), 0, 0, ""},
    /* access: trusted networks (and the UNIX socket) inject without AUTH; others must log in
     * (AUTH PLAIN/LOGIN over TLS against auth_users_file) unless every recipient is in
     * relay_domains */
    {"inject", "auth_users_file", KT_STR, KF_EMPTY_OK, OFF(auth_users_file), 0, 0, ""},
    {"inject", "trusted_networks", KT_STR, KF_EMPTY_OK | KF_NETS, OFF(trusted_networks), 0, 0,
     "127.0.0.0/8 ::1/128"},
    {"inject", "relay_domains", KT_STR, KF_EMPTY_OK | KF_DOMAINS, OFF(relay_domains), 0, 0, ""},
    {"inject", "sender_policy", KT_ENUM, 0, OFF(sender_policy), ENUM_SENDER, 0, "any"},
    UINT("inject", "max_rset", max_rset, 0, 1000000, "20"),
    {"inject", "vrfy", KT_BOOL, 0, OFF(vrfy), 0, 0, "no"},

    {"delivery", "outgoing", KT_BOOL, 0, OFF(outgoing), 0, 0, "yes"},
    {"delivery", "mode", KT_ENUM, 0, OFF(mode), ENUM_MODE, 0, "relay"},
    {"delivery", "relay", KT_ADDR, KF_EMPTY_OK | KF_TCP | KF_PORT | KF_NAME, OFF(relay), 0, 0,
     "127.0.0.1:25"},
    {"delivery", "helo_name", KT_STR, KF_EMPTY_OK | KF_TOKEN, OFF(helo_name), 0, 0, ""},
    /* outbound TLS and AUTH (relay, MX) */
    {"delivery", "tls", KT_ENUM, 0, OFF(tls), ENUM_TLS, 0, "opportunistic"},
    {"delivery", "tls_verify", KT_ENUM, 0, OFF(tls_verify), ENUM_VERIFY, 0, "auto"},
    {"delivery", "tls_ca_file", KT_STR, KF_EMPTY_OK, OFF(tls_ca_file), 0, 0, ""},
    {"delivery", "auth_user", KT_STR, KF_EMPTY_OK, OFF(auth_user), 0, 0, ""},
    {"delivery", "auth_password", KT_STR, KF_EMPTY_OK | KF_SECRET, OFF(auth_password), 0, 0, ""},
    {"delivery", "auth_plaintext", KT_BOOL, 0, OFF(auth_plaintext), 0, 0, "no"},
    UINT("delivery", "max_connections", max_connections, 1, 1000000, "1000"),
    UINT("delivery", "max_messages_per_connection", max_messages_per_connection, 1, 1000000,
	 "1000"),
    UINT("delivery", "max_recipients_per_transaction", max_recipients_per_transaction, 1, 100000,
	 "100"),
    DUR("delivery", "idle_timeout", idle_timeout_ms, 0, MS_H, "2s"),
    /* the schedule: delay after the n-th deferred round = retry_delay * retry_backoff^(n-1),
     * at most retry_max_delay, +-5 % jitter; a recipient fails after max_attempts connection
     * attempts (0 = no limit) or once it is older than lifetime */
    DUR("delivery", "retry_delay", retry_delay_ms, 10, 30 * MS_D, "5m"),
    {"delivery", "retry_backoff", KT_FACTOR, 0, OFF(retry_backoff), 1, 10, "1"},
    DUR("delivery", "retry_max_delay", retry_max_delay_ms, 10, 30 * MS_D, "4h"),
    UINT("delivery", "max_attempts", max_attempts, 0, 65535, "0"),
    DUR("delivery", "lifetime", lifetime_ms, 10, 365 * MS_D, "5d"),
    DUR("delivery", "warn_after", warn_after_ms, 0, 365 * MS_D, "0s"),
    {"delivery", "dsn_original", KT_ENUM, 0, OFF(dsn_original), ENUM_ORIGINAL, 0, "full"},
    {"delivery", "dsn_templates", KT_STR, KF_EMPTY_OK, OFF(dsn_templates), 0, 0, ""},
    {"delivery", "postmaster", KT_STR, KF_EMPTY_OK | KF_TOKEN, OFF(postmaster), 0, 0, ""},
    DUR("delivery", "connect_timeout", connect_timeout_ms, 1, MS_D, "30s"),
    DUR("delivery", "greeting_timeout", greeting_timeout_ms, 1, MS_D, "5m"),
    DUR("delivery", "helo_timeout", helo_timeout_ms, 1, MS_D, "5m"),
    DUR("delivery", "mail_timeout", mail_timeout_ms, 1, MS_D, "5m"),
    DUR("delivery", "rcpt_timeout", rcpt_timeout_ms, 1, MS_D, "5m"),
    DUR("delivery", "data_timeout", data_timeout_ms, 1, MS_D, "2m"),
    DUR("delivery", "data_block_timeout", data_block_timeout_ms, 1, MS_D, "3m"),
    DUR("delivery", "data_done_timeout", data_done_timeout_ms, 1, MS_D, "10m"),
    {"delivery", "dns_servers", KT_STR, KF_TOKEN | KF_DNS, OFF(dns_servers), 0, 0, "auto"},
    {"delivery", "dns_fallback_auto", KT_BOOL, 0, OFF(dns_fallback_auto), 0, 0, "no"},
    DUR("delivery", "dns_timeout", dns_timeout_ms, 100, 60 * MS_S, "5s"),
    UINT("delivery", "dns_tries", dns_tries, 1, 10, "2"),
    DUR("delivery", "dns_min_ttl", dns_min_ttl_ms, 0, MS_D, "0s"),
    DUR("delivery", "dns_max_ttl", dns_max_ttl_ms, MS_S, 7 * MS_D, "1d"),
    DUR("delivery", "dns_negative_ttl", dns_negative_ttl_ms, MS_S, MS_D, "1h"),
    UINT("delivery", "dns_cache_entries", dns_cache_entries, 16, 10000000, "65536"),
    {"delivery", "resolv_conf", KT_STR, 0, OFF(resolv_conf), 0, 0, "/etc/resolv.conf"},
    {"delivery", "implicit_mx", KT_BOOL, 0, OFF(implicit_mx), 0, 0, "yes"},
    UINT("delivery", "max_mx_hosts", max_mx_hosts, 1, 100, "5"),
    UINT("delivery", "port", mx_port, 1, 65535, "25"),
    {"delivery", "first_mx_only", KT_BOOL, 0, OFF(first_mx_only), 0, 0, "no"},
    {"delivery", "fallback_relay", KT_ADDR, KF_EMPTY_OK | KF_TCP | KF_PORT | KF_NAME,
     OFF(fallback_relay), 0, 0, ""},
    UINT("delivery", "max_connections_per_destination", max_connections_per_destination, 1, 1000000,
	 "20"),
    {"delivery", "source_address", KT_SOURCE, KF_EMPTY_OK | KF_TOKEN, OFF(source_address), 0, 0,
     ""},
    /* issue #9: per-destination rates (0 = no limit), [route] switch, egress pool */
    RATE("delivery", "max_message_rate", max_message_rate, "0"),
    RATE("delivery", "max_connection_rate", max_connection_rate, "0"),
    {"delivery", "static_routes", KT_BOOL, 0, OFF(static_routes), 0, 0, "yes"},
    {"delivery", "default_pool", KT_STR, KF_EMPTY_OK | KF_TOKEN, OFF(default_pool), 0, 0, ""},
    /* domains whose MX host sets are the same share one destination (a site: "mx:h1,h2") */
    {"delivery", "mx_rollup", KT_BOOL, 0, OFF(mx_rollup), 0, 0, "yes"},

    SIZE("queue", "memory_budget", memory_budget, MIB, TIB, "1G"),
    DUR("queue", "scan_interval", scan_interval_ms, 10, MS_H, "1s"),
    UINT("queue", "max_ready_per_destination", max_ready_per_destination, 1, 10000000, "2000"),
    /* queue full: injection answers 452 4.3.1 (0 = no limit) */
    UINT("queue", "max_queue_messages", max_queue_messages, 0, 4000000000u, "0"),
    SIZE("queue", "max_queue_bytes", max_queue_bytes, 0, 1024 * TIB, "0"),
    /* riptidectl's UNIX socket (mode 0600); "" = control.sock in the spool directory */
    {"queue", "control_socket", KT_ADDR, KF_EMPTY_OK | KF_UNIX, OFF(control_socket), 0, 0, ""},
    SIZE("queue", "write_buffer_size", write_buffer_size, 64 * KIB, 4 * GIB, "64M"),
    {"queue", "blob_bodies", KT_BOOL, 0, OFF(blob_bodies), 0, 0, "no"},
};
/* clang-format on */

_Static_assert(ARRAY_SIZE(config_keys) == CONFIG_NKEYS, "CONFIG_NKEYS");
extern const struct key config_keys[CONFIG_NKEYS];

const char *const config_sections[4] = {"main", "inject", "delivery", "queue"};

/* config_key_find: see config_int.h. */
const struct key *config_key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* config_key_find_any: see config_int.h. */
const struct key *config_key_find_any(const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* config_str_max: see config_int.h ("name = " takes strlen(name) + 3 bytes). */
size_t config_str_max(size_t line_max, const char *name)
{
	size_t room = line_max > strlen(name) + 3 ? line_max - strlen(name) - 3 : 0;

	return room < CONFIG_STR - 1 ? room : CONFIG_STR - 1;
}
