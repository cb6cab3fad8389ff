/* test_config — unit tests for engine/config: defaults, every value type, every error kind
 * with its exact "file:line: ..." message, range limits of every numeric key, the
 * config_print -> config_load round trip (also for odd values inih can and cannot carry), the
 * lines inih would join to the previous value, and config_load_buf.
 *
 * Why #include the .c: the range and round-trip tests walk the same key table the module uses
 * (h2o's t/00unit style), so a key added to the table is tested without editing this file. The
 * field-by-field check in test_every_key_parsed is written by hand on purpose: it catches a
 * table row that points at the wrong struct field.
 */
#include "engine/config/config.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>

static char tmpdir[64];
static char cfg_path[128];

static int setup(void **state)
{
	strcpy(tmpdir, "/tmp/rt-config-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(cfg_path, sizeof(cfg_path), "%s/riptide.conf", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	unlink(cfg_path);
	rmdir(tmpdir);
	return 0;
}

static void write_file(const char *text)
{
	FILE *f = fopen(cfg_path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Load text; returns config_load's result, message in err. */
static int load_text(const char *text, struct config *c, char *err, size_t errlen)
{
	write_file(text);
	return config_load(c, cfg_path, err, errlen);
}

static char *print_to_string(const struct config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	config_print(c, f);
	fclose(f);
	return buf;
}

/* [delivery] and [queue] defaults. */
static void check_default_delivery_queue(const struct config *c)
{
	assert_true(c->outgoing);
	assert_int_equal(c->mode, CONFIG_MODE_RELAY);
	assert_string_equal(c->relay, "127.0.0.1:25");
	assert_string_equal(c->helo_name, c->hostname);
	assert_int_equal(c->max_connections, 1000);
	assert_int_equal(c->max_messages_per_connection, 1000);
	assert_int_equal(c->max_recipients_per_transaction, 100);
	assert_int_equal(c->idle_timeout_ms, 2000);
	assert_int_equal(c->retry_delay_ms, 300000);
	assert_int_equal(c->connect_timeout_ms, 30000);
	assert_int_equal(c->greeting_timeout_ms, 300000);
	assert_int_equal(c->helo_timeout_ms, 300000);
	assert_int_equal(c->mail_timeout_ms, 300000);
	assert_int_equal(c->rcpt_timeout_ms, 300000);
	assert_int_equal(c->data_timeout_ms, 120000);
	assert_int_equal(c->data_block_timeout_ms, 180000);
	assert_int_equal(c->data_done_timeout_ms, 600000);
	assert_int_equal(c->mx_port, 25);
	assert_false(c->first_mx_only);
	assert_string_equal(c->fallback_relay, "");
	assert_int_equal(c->max_connections_per_destination, 20);
	assert_string_equal(c->source_address, "");
	assert_int_equal(c->source_v4.family, AF_UNSPEC);
	assert_int_equal(c->source_v6.family, AF_UNSPEC);
	assert_int_equal(c->memory_budget, 1ull << 30);
	assert_int_equal(c->scan_interval_ms, 1000);
	assert_int_equal(c->write_buffer_size, 64ull << 20);
	assert_false(c->blob_bodies);
}

static void test_defaults(void **state)
{
	struct config c;
	char err[512], host[CONFIG_STR] = "";

	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), 0);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_int_equal(c.shards, 0);
	assert_string_equal(c.spool, "/var/spool/riptide");
	assert_string_equal(c.hostname, host);
	assert_string_equal(c.log, "stderr");
	assert_int_equal(c.shutdown_timeout_ms, 10000);
	assert_string_equal(c.listen, "127.0.0.1:2525");
	assert_string_equal(c.socket, "");
	assert_int_equal(c.max_message_size, 10 * 1024 * 1024);
	assert_int_equal(c.max_recipients, 1000);
	assert_int_equal(c.max_line_length, 2048);
	assert_int_equal(c.max_sessions, 1000);
	assert_int_equal(c.inject_timeout_ms, 300000);
	assert_int_equal(c.inject_cmd_deadline_ms, 60000);
	assert_int_equal(c.inject_data_deadline_ms, 600000);
	check_default_delivery_queue(&c);
}

/* Every key set to a non-default value, in every syntax inih and we accept: indentation,
 * "key: value", inline ';' comments, '#' comment lines, CRLF, a duplicate (last wins). */
static const char every_key[] = "# comment\n"
				"[main]\n"
				"shards = 8\n"
				"  spool = /srv/spool ; inline comment\n"
				"hostname = mx1.example.org\r\n"
				"log = /var/log/riptide.log\n"
				"shutdown_timeout = 250ms\n"
				"[inject]\n"
				"listen = [::1]:2600\n"
				"socket = /run/riptide/inject.sock\n"
				"max_message_size = 64k\n"
				"max_recipients = 5\n"
				"max_line_length = 1000\n"
				"max_sessions: 7\n"
				"timeout = 1h\n"
				"command_deadline = 45s\n"
				"data_deadline = 20m\n"
				"[delivery]\n"
				"outgoing = off\n"
				"mode = independent\n"
				"relay = 10.0.0.1:587\n"
				"helo_name = out.example.org\n"
				"max_connections = 1\n"
				"max_messages_per_connection = 9\n"
				"max_recipients_per_transaction = 50\n"
				"idle_timeout = 0\n"
				"retry_delay = 2d\n"
				"connect_timeout = 3s\n"
				"greeting_timeout = 4s\n"
				"helo_timeout = 5s\n"
				"mail_timeout = 6s\n"
				"rcpt_timeout = 7s\n"
				"data_timeout = 8s\n"
				"data_block_timeout = 9s\n"
				"data_done_timeout = 10s\n"
				"data_done_timeout = 11s\n"
				"port = 2525\n"
				"first_mx_only = yes\n"
				"fallback_relay = relay.example.net:2526\n"
				"max_connections_per_destination = 3\n"
				"source_address = 127.0.0.1;::1\n"
				"max_message_rate = 60/m\n"
				"max_connection_rate = 2/hour\n"
				"static_routes = no\n"
				"default_pool = bulk\n"
				"[route example.com]\n"
				"hosts = mx.example.net:2525\n"
				"lifetime = 20d\n"
				"[pool bulk]\n"
				"sources = 127.0.0.2 out2.example.org\n"
				"[queue]\n"
				"memory_budget = 2G\n"
				"scan_interval = 1500ms\n"
				"write_buffer_size = 1M\n"
				"blob_bodies = TRUE\n";

/* [delivery]'s new keys of issue #7 and the sections (check_every_key). */
static void check_every_key_sets(const struct config *c)
{
	assert_int_equal(c->max_message_rate.n, 60);
	assert_int_equal(c->max_message_rate.per_ms, 60000);
	assert_int_equal(c->max_connection_rate.n, 2);
	assert_int_equal(c->max_connection_rate.per_ms, 3600000);
	assert_false(c->static_routes);
	assert_string_equal(c->default_pool, "bulk");
	assert_int_equal(c->sets->nroutes, 1);
	assert_int_equal(c->sets->routes[0].cfg.lifetime_ms, 20 * 86400000ull);
	assert_int_equal(c->sets->routes[0].cfg.mx_port, 2525); /* [delivery]'s */
	assert_int_equal(c->sets->npools, 1);
}

/* [main] (check_every_key). */
static void check_every_key_main(const struct config *c)
{
	assert_int_equal(c->shards, 8);
	assert_string_equal(c->spool, "/srv/spool");
	assert_string_equal(c->hostname, "mx1.example.org");
	assert_string_equal(c->log, "/var/log/riptide.log");
	assert_int_equal(c->shutdown_timeout_ms, 250);
}

static void check_every_key(const struct config *c)
{
	check_every_key_main(c);
	check_every_key_sets(c);
	assert_string_equal(c->listen, "[::1]:2600");
	assert_string_equal(c->socket, "/run/riptide/inject.sock");
	assert_int_equal(c->max_message_size, 65536);
	assert_int_equal(c->max_recipients, 5);
	assert_int_equal(c->max_line_length, 1000);
	assert_int_equal(c->max_sessions, 7);
	assert_int_equal(c->inject_timeout_ms, 3600000);
	assert_int_equal(c->inject_cmd_deadline_ms, 45000);
	assert_int_equal(c->inject_data_deadline_ms, 1200000);
	assert_false(c->outgoing);
	assert_int_equal(c->mode, CONFIG_MODE_INDEPENDENT);
	assert_string_equal(c->relay, "10.0.0.1:587");
	assert_string_equal(c->helo_name, "out.example.org");
	assert_int_equal(c->max_connections, 1);
	assert_int_equal(c->max_messages_per_connection, 9);
	assert_int_equal(c->max_recipients_per_transaction, 50);
	assert_int_equal(c->idle_timeout_ms, 0);
	assert_int_equal(c->retry_delay_ms, 2 * 86400000ull);
	assert_int_equal(c->connect_timeout_ms, 3000);
	assert_int_equal(c->greeting_timeout_ms, 4000);
	assert_int_equal(c->helo_timeout_ms, 5000);
	assert_int_equal(c->mail_timeout_ms, 6000);
	assert_int_equal(c->rcpt_timeout_ms, 7000);
	assert_int_equal(c->data_timeout_ms, 8000);
	assert_int_equal(c->data_block_timeout_ms, 9000);
	assert_int_equal(c->data_done_timeout_ms, 11000);
	assert_int_equal(c->mx_port, 2525);
	assert_true(c->first_mx_only);
	assert_string_equal(c->fallback_relay, "relay.example.net:2526");
	assert_int_equal(c->max_connections_per_destination, 3);
	assert_string_equal(c->source_address, "127.0.0.1;::1");
	assert_int_equal(c->source_v4.family, AF_INET);
	assert_int_equal(c->source_v6.family, AF_INET6);
	assert_int_equal(c->memory_budget, 2ull << 30);
	assert_int_equal(c->scan_interval_ms, 1500);
	assert_int_equal(c->write_buffer_size, 1ull << 20);
	assert_true(c->blob_bodies);
}

static void test_every_key_parsed(void **state)
{
	struct config c;
	char err[512] = "";

	assert_int_equal(load_text(every_key, &c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	check_every_key(&c);
	config_free(&c);
}

static void test_bool_spellings(void **state)
{
	static const char *const yes[] = {"yes", "true", "on", "1", "Yes", "ON"};
	static const char *const no[] = {"no", "false", "off", "0", "NO", "False"};
	struct config c;
	char text[128], err[512];

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		snprintf(text, sizeof(text), "[queue]\nblob_bodies = %s\n", yes[i]);
		assert_int_equal(load_text(text, &c, err, sizeof(err)), 0);
		assert_true(c.blob_bodies);
		snprintf(text, sizeof(text), "[delivery]\noutgoing = %s\n", no[i]);
		assert_int_equal(load_text(text, &c, err, sizeof(err)), 0);
		assert_false(c.outgoing);
	}
}

/* An error case: file text, and the message expected after "<path>:". */
struct err_case {
	const char *text;
	const char *msg;
};

static const struct err_case err_cases[] = {
    {"[main]\nshards = 1\n\n[bogus]\nx = 1\n",
     "4: unknown section [bogus]: expected [main], [inject], [delivery], [queue], "
     "[route DOMAIN], [shaping DESTINATION], [backoff NAME], [pool NAME] or [rewrite]"},
    {"[inject]\nfoo = 1\n", "2: unknown key 'foo' in [inject]: no such setting"},
    {"[inject]\n\nrelay = 10.0.0.1:25\n",
     "3: unknown key 'relay' in [inject]: it belongs in [delivery]"},
    {"shards = 1\n", "1: key 'shards' is outside any [section]"},
    {"[main]\nthis line is garbage\n", "2: syntax error: expected '[section]' or 'key = value'"},
    {"[main]\nshards = abc\n", "2: invalid value for 'shards' in [main]: 'abc' is not a number"},
    {"[main]\nshards = -1\n", "2: invalid value for 'shards' in [main]: '-1' is not a number"},
    {"[main]\nshards = 12x\n", "2: invalid value for 'shards' in [main]: '12x' is not a number"},
    {"[main]\nshards = \n", "2: invalid value for 'shards' in [main]: '' is not a number"},
    {"[main]\nshards = 99999999999999999999\n",
     "2: invalid value for 'shards' in [main]: '99999999999999999999' is not a number"},
    {"[main]\nshards = 257\n",
     "2: invalid value for 'shards' in [main]: 257 is out of range 0..256"},
    {"[delivery]\noutgoing = maybe\n",
     "2: invalid value for 'outgoing' in [delivery]: 'maybe' is not a boolean "
     "(yes/no, true/false, on/off, 1/0)"},
    {"[inject]\ntimeout = 5x\n",
     "2: invalid value for 'timeout' in [inject]: '5x' is not a duration "
     "(e.g. 250ms, 30s, 5m, 1h, 2d)"},
    {"[inject]\ntimeout = 0\n",
     "2: invalid value for 'timeout' in [inject]: 0 is out of range 1..86400000"},
    {"[inject]\ntimeout = 9999999999999999d\n",
     "2: invalid value for 'timeout' in [inject]: '9999999999999999d' is not a duration "
     "(e.g. 250ms, 30s, 5m, 1h, 2d)"},
    {"[inject]\nmax_message_size = 10Q\n",
     "2: invalid value for 'max_message_size' in [inject]: '10Q' is not a size "
     "(e.g. 1024, 64k, 10M, 2G)"},
    {"[inject]\nlisten = localhost:25\n",
     "2: invalid value for 'listen' in [inject]: 'localhost:25' is not a host:port address "
     "(IPv4 or [IPv6], port 0..65535)"},
    {"[inject]\nlisten = 127.0.0.1:65536\n",
     "2: invalid value for 'listen' in [inject]: '127.0.0.1:65536' is not a host:port address "
     "(IPv4 or [IPv6], port 0..65535)"},
    {"[inject]\nlisten = /run/x.sock\n",
     "2: invalid value for 'listen' in [inject]: '/run/x.sock' is not a host:port address "
     "(IPv4 or [IPv6], port 0..65535)"},
    {"[delivery]\nrelay = 10.0.0.1:0\n",
     "2: invalid value for 'relay' in [delivery]: '10.0.0.1:0' is not a host:port address "
     "(IPv4:port, [IPv6]:port, or a host name with optional :port, default 25; port 1..65535)"},
    {"[delivery]\n\nfallback_relay = bad_name:25\n",
     "3: invalid value for 'fallback_relay' in [delivery]: 'bad_name:25' is not a host:port "
     "address (IPv4:port, [IPv6]:port, or a host name with optional :port, default 25; port "
     "1..65535)"},
    {"[delivery]\nport = 0\n",
     "2: invalid value for 'port' in [delivery]: 0 is out of range 1..65535"},
    {"[delivery]\nfirst_mx_only = first\n",
     "2: invalid value for 'first_mx_only' in [delivery]: 'first' is not a boolean "
     "(yes/no, true/false, on/off, 1/0)"},
    {"[delivery]\nmax_connections_per_destination = 0\n",
     "2: invalid value for 'max_connections_per_destination' in [delivery]: 0 is out of range "
     "1..1000000"},
    {"[delivery]\nsource_address = 127.0.0.1;localhost\n",
     "2: invalid value for 'source_address' in [delivery]: '127.0.0.1;localhost': 'localhost' "
     "is not an IPv4 or IPv6 address (one of each at most, separated by ';': "
     "192.0.2.1;2001:db8::1)"},
    {"[delivery]\nsource_address = ::1;::2\n",
     "2: invalid value for 'source_address' in [delivery]: '::1;::2' has two IPv6 addresses "
     "(at most one IPv4 and one IPv6)"},
    {"[inject]\nsocket = run/x.sock\n",
     "2: invalid value for 'socket' in [inject]: 'run/x.sock' is not an absolute UNIX socket "
     "path (max 107 bytes)"},
    {"[delivery]\nmode = smart\n",
     "2: invalid value for 'mode' in [delivery]: 'smart' is not one of: relay independent"},
    {"[main]\nspool =\n", "2: invalid value for 'spool' in [main]: value must not be empty"},
    {"[main]\nhostname = a\tb\n",
     "2: invalid value for 'hostname' in [main]: 'a\tb' must not contain blanks or control "
     "characters"},
    {"[main]\nshards = 1\nshards = 2\n[main]\nshards = 300\n",
     "5: invalid value for 'shards' in [main]: 300 is out of range 0..256"},
    {"[main]\nbad line\nalso = bad\n", /* the first error wins */
     "2: syntax error: expected '[section]' or 'key = value'"},
};

static void test_error_messages(void **state)
{
	struct config c, before;
	char err[512], want[640];

	for (size_t i = 0; i < ARRAY_SIZE(err_cases); i++) {
		config_defaults(&c);
		c.shards = 77; /* marker: a failed load must not touch c */
		memcpy(&before, &c, sizeof(c));
		assert_int_equal(load_text(err_cases[i].text, &c, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want), "%s:%s", cfg_path, err_cases[i].msg);
		assert_string_equal(err, want);
		assert_memory_equal(&c, &before, sizeof(c));
	}
}

static void test_long_lines(void **state)
{
	char text[1024], err[512], want[640];
	struct config c;

	/* inih's compiled line buffer is 200 bytes: a longer line is an error, never split. */
	snprintf(text, sizeof(text), "[main]\n\nlog = /%0300d\n", 0);
	assert_int_equal(load_text(text, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: line too long (max 199 bytes)", cfg_path);
	assert_string_equal(err, want);

	/* "log=" + 194 bytes fits inih's line but not "log = " + value: refused, so
	 * config_print's output always loads back. */
	snprintf(text, sizeof(text), "[main]\nlog=/%0193d\n", 0);
	assert_int_equal(load_text(text, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:2: invalid value for 'log' in [main]: value is too long (194 bytes, max 193)",
		 cfg_path);
	assert_string_equal(err, want);
	snprintf(text, sizeof(text), "[main]\nlog = /%0192d\n", 0);
	assert_int_equal(load_text(text, &c, err, sizeof(err)), 0);
	assert_int_equal(strlen(c.log), 193);
}

static void test_cross_key_errors(void **state)
{
	struct config c;
	char err[512], want[640];

	/* the line of the later of the two keys involved */
	assert_int_equal(load_text("[delivery]\nrelay =\n", &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:2: [delivery] mode = relay but relay is empty (set relay = host:port)",
		 cfg_path);
	assert_string_equal(err, want);
	assert_int_equal(load_text("[delivery]\nrelay =\n\nmode = relay\n", &c, err, sizeof(err)),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:4: [delivery] mode = relay but relay is empty (set relay = host:port)",
		 cfg_path);
	assert_string_equal(err, want);

	assert_int_equal(
	    load_text("[delivery]\nrelay =\nmode = independent\n", &c, err, sizeof(err)), 0);

	assert_int_equal(load_text("[inject]\nlisten =\nsocket =\n", &c, err, sizeof(err)),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:3: no injection listener: [inject] listen and socket are both empty",
		 cfg_path);
	assert_string_equal(err, want);
	assert_int_equal(load_text("[inject]\nsocket =\nlisten =\n", &c, err, sizeof(err)),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:3: no injection listener: [inject] listen and socket are both empty",
		 cfg_path);
	assert_string_equal(err, want);

	assert_int_equal(
	    load_text("[inject]\nlisten =\nsocket = /tmp/x.sock\n", &c, err, sizeof(err)), 0);
	assert_int_equal(load_text("[delivery]\nmax_connections = 0\n", &c, err, sizeof(err)),
			 -EINVAL);
}

static void test_file_errors(void **state)
{
	struct config c;
	char err[512], want[640];

	unlink(cfg_path);
	assert_int_equal(config_load(&c, cfg_path, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: %s", cfg_path, strerror(ENOENT));
	assert_string_equal(err, want);

	assert_true(config_load(&c, tmpdir, err, sizeof(err)) < 0); /* a directory */
	assert_non_null(strstr(err, tmpdir));

	if (geteuid() != 0) { /* root reads anything */
		write_file("[main]\n");
		assert_int_equal(chmod(cfg_path, 0), 0);
		assert_int_equal(config_load(&c, cfg_path, err, sizeof(err)), -EACCES);
		snprintf(want, sizeof(want), "%s: cannot open: %s", cfg_path, strerror(EACCES));
		assert_string_equal(err, want);
	}
	/* err may be NULL */
	assert_int_equal(config_load(&c, "/nonexistent/riptide.conf", NULL, 0), -ENOENT);
}

/* Every table row compares equal between a and b. */
static void assert_config_equal(const struct config *a, const struct config *b)
{
	char va[CONFIG_STR + 32], vb[CONFIG_STR + 32];

	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const char *fa = (const char *)a + config_keys[i].off,
			   *fb = (const char *)b + config_keys[i].off;

		switch (config_keys[i].type) {
		case KT_UINT:
			assert_int_equal(*(const unsigned *)fa, *(const unsigned *)fb);
			break;
		case KT_BOOL:
			assert_int_equal(*(const bool *)fa, *(const bool *)fb);
			break;
		case KT_DURATION:
		case KT_SIZE:
			assert_int_equal(*(const uint64_t *)fa, *(const uint64_t *)fb);
			break;
		case KT_ENUM:
			assert_int_equal(*(const unsigned *)fa, *(const unsigned *)fb);
			break;
		case KT_FACTOR:
			assert_true(*(const double *)fa == *(const double *)fb);
			break;
		case KT_STR:
		case KT_ADDR:
			assert_string_equal(fa, fb);
			break;
		case KT_SOURCE:
			assert_string_equal(fa, fb);
			assert_memory_equal(&a->source_v4, &b->source_v4, sizeof(a->source_v4));
			assert_memory_equal(&a->source_v6, &b->source_v6, sizeof(a->source_v6));
			break;
		case KT_RATE:
			assert_memory_equal(fa, fb, sizeof(struct config_rate));
			break;
		}
		config_key_format(&config_keys[i], a, va, sizeof(va));
		config_key_format(&config_keys[i], b, vb, sizeof(vb));
		assert_string_equal(va, vb);
	}
}

static void round_trip(const struct config *in)
{
	struct config out;
	char err[512] = "";
	char *text = print_to_string(in), *again;

	write_file(text);
	assert_int_equal(config_load(&out, cfg_path, err, sizeof(err)), 0);
	assert_config_equal(in, &out);
	again = print_to_string(&out);
	assert_string_equal(text, again);
	free(text);
	free(again);
	config_free(&out);
}

static void test_round_trip(void **state)
{
	struct config c;
	char err[512];

	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), 0);
	round_trip(&c);
	assert_int_equal(load_text(every_key, &c, err, sizeof(err)), 0);
	round_trip(&c);
	/* values that need the smallest unit, and the biggest ones */
	c.shutdown_timeout_ms = 1001;
	c.max_message_size = 1025;
	c.memory_budget = 1ull << 40;
	c.retry_delay_ms = 30 * 86400000ull;
	round_trip(&c);
	config_free(&c);
}

static void test_print_names_every_key(void **state)
{
	struct config c;
	char *text, needle[96];

	config_defaults(&c);
	text = print_to_string(&c);
	for (size_t i = 0; i < ARRAY_SIZE(config_sections); i++) {
		snprintf(needle, sizeof(needle), "\n[%s]\n", config_sections[i]);
		assert_non_null(strstr(text, needle));
	}
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		snprintf(needle, sizeof(needle), "\n%s =", config_keys[i].name);
		assert_non_null(strstr(text, needle));
	}
	free(text);
}

/* Load "[section]\nkey = <v><unit>" and return config_load's result. */
static int load_number(const struct key *k, uint64_t v)
{
	char text[256], err[512];
	struct config c;
	const char *unit = k->type == KT_DURATION ? "ms" : "";
	int ret;

	snprintf(text, sizeof(text), "[%s]\n%s = %" PRIu64 "%s\n", k->section, k->name, v, unit);
	ret = load_text(text, &c, err, sizeof(err));
	if (ret == 0) {
		uint64_t got = k->type == KT_UINT ? *(unsigned *)((char *)&c + k->off)
						  : *(uint64_t *)((char *)&c + k->off);
		assert_int_equal(got, v);
	}
	return ret;
}

static void test_range_limits(void **state)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct key *k = &config_keys[i];

		if (k->type != KT_UINT && k->type != KT_DURATION && k->type != KT_SIZE)
			continue;
		assert_true(k->min <= k->max);
		assert_int_equal(load_number(k, k->min), 0);
		assert_int_equal(load_number(k, k->max), 0);
		assert_int_equal(load_number(k, k->max + 1), -EINVAL);
		if (k->min > 0)
			assert_int_equal(load_number(k, k->min - 1), -EINVAL);
	}
}

/* A hostname from gethostname() is held to the rules of one from the file; no line to name. */
static void test_bad_system_hostname(void **state)
{
	static const unsigned no_lines[CONFIG_NKEYS];
	struct config c;
	char err[512];

	config_defaults(&c);
	assert_int_equal(config_check(&c, "f.conf", no_lines, err, sizeof(err)), 0);
	strcpy(c.hostname, "my host");
	assert_int_equal(config_check(&c, "f.conf", no_lines, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "f.conf: [main] hostname from gethostname() has blanks or control "
				 "characters (set it)");
	strcpy(c.hostname, ";x");
	assert_int_equal(config_check(&c, "f.conf", no_lines, err, sizeof(err)), -EINVAL);
	c.hostname[0] = '\0';
	assert_int_equal(config_check(&c, "f.conf", no_lines, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "f.conf: [main] hostname is empty (gethostname() failed; set it)");
}

/* "key=;x" loads ";x", which would print as "key = ;x" and read back empty: refused. */
static void test_leading_semicolon_refused(void **state)
{
	static const char *const texts[] = {"[main]\nspool=;x\n", "[main]\nspool=;\n",
					    "[main]\nlog=;a b\n", "[delivery]\nhelo_name=;x\n",
					    "[main]\nhostname=;x\n"};
	struct config c;
	char err[512];

	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		assert_int_equal(load_text(texts[i], &c, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, ":2: invalid value for '"));
		assert_non_null(strstr(err, "' starts with ';', which reads back as a comment"));
	}
	assert_int_equal(load_text("[main]\nspool=;x\n", &c, err, sizeof(err)), -EINVAL);
	assert_non_null(
	    strstr(err, ":2: invalid value for 'spool' in [main]: ';x' starts with ';'"));
	/* after a blank, ';' is inih's comment: an empty value, which helo_name allows */
	assert_int_equal(load_text("[delivery]\nhelo_name = ;x\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.helo_name, c.hostname);
	assert_int_equal(load_text("[main]\nspool = ;x\n", &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: invalid value for 'spool' in [main]: value must not be"));
}

/* Values inih carries as they are: each loads, prints and loads back to itself. */
static void test_round_trip_odd_values(void **state)
{
	static const char *const any[] = {"#x",	  "a;b",    "a=b:c", "\"quoted\"",	  "[x]",
					  "a\rb", "a\t\tb", "x ; ",  "\xc3\xa9t\xc3\xa9", "a\\;b",
					  "#",	  ":"};
	static const char *const token[] = {"#x", "a;b", "a=b:c", "\"q\"", "[x]", "\xc3\xa9"};
	const char *want[] = {"#x",   "a;b",	"a=b:c", "\"quoted\"",	      "[x]",
			      "a\rb", "a\t\tb", "x",	 "\xc3\xa9t\xc3\xa9", "a\\;b",
			      "#",    ":"};
	struct config c;
	char text[256], err[512];

	for (size_t i = 0; i < ARRAY_SIZE(any); i++) {
		snprintf(text, sizeof(text), "[main]\nspool = %s\nlog=%s\n", any[i], any[i]);
		assert_int_equal(load_text(text, &c, err, sizeof(err)), 0);
		assert_string_equal(c.spool, want[i]);
		assert_string_equal(c.log, want[i]);
		round_trip(&c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(token); i++) {
		snprintf(text, sizeof(text), "[main]\nhostname = %s\n", token[i]);
		assert_int_equal(load_text(text, &c, err, sizeof(err)), 0);
		assert_string_equal(c.hostname, token[i]);
		round_trip(&c);
	}
}

/* A line starting with \v, \f or \r would be joined by inih to the previous key's value. */
static void test_control_line_start_refused(void **state)
{
	static const char *const starts[] = {"\v", "\f", "\r", " \t\v", "\f\t", "\r\r"};
	struct config c;
	char text[128], err[512], want[640];

	for (size_t i = 0; i < ARRAY_SIZE(starts); i++) {
		snprintf(text, sizeof(text), "[main]\nspool = /a\n%slog = /b\n", starts[i]);
		assert_int_equal(load_text(text, &c, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want),
			 "%s:3: line starts with \\v, \\f or \\r, which would continue the "
			 "previous value",
			 cfg_path);
		assert_string_equal(err, want);
	}
	/* a line of nothing but such characters is blank (a form feed between sections) */
	assert_int_equal(load_text("[main]\nspool = /a\n\f\n \v \n\r\r\n[main]\nlog = /b\n", &c,
				   err, sizeof(err)),
			 0);
	assert_string_equal(c.spool, "/a");
	assert_string_equal(c.log, "/b");
}

static void test_load_buf(void **state)
{
	static const char nul_text[] = "[main]\nshards = 3\0x\nlog = /l\n";
	struct config a, b;
	char err[512] = "x", *copy, *pa, *pb;
	size_t n = strlen(every_key);

	/* an exact-size copy: config_load_buf must not need a NUL after the text */
	copy = malloc(n);
	assert_non_null(copy);
	memcpy(copy, every_key, n);
	assert_int_equal(config_load_buf(&a, "mem", copy, n, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	check_every_key(&a);
	assert_int_equal(load_text(every_key, &b, err, sizeof(err)), 0);
	pa = print_to_string(&a);
	pb = print_to_string(&b);
	assert_string_equal(pa, pb);
	free(pa);
	free(pb);
	free(copy);
	config_free(&a);
	config_free(&b);

	assert_int_equal(config_load_buf(&a, "mem", "", 0, err, sizeof(err)), 0);
	assert_int_equal(config_load(&b, NULL, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(config_load_buf(&a, "mem", "[main]\nshards = x\n", 18, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err,
			    "mem:2: invalid value for 'shards' in [main]: 'x' is not a number");
	/* a NUL ends the line for inih (the rest of that line is dropped) */
	assert_int_equal(
	    config_load_buf(&a, "mem", nul_text, sizeof(nul_text) - 1, err, sizeof(err)), 0);
	assert_int_equal(a.shards, 3);
	assert_string_equal(a.log, "/l");
}

/* dns_servers: "auto" or ';'-separated IPv4[:port] / [IPv6][:port] / bare IPv6; anything
 * else (an empty item, a port 0 or > 65535, a name, junk after ']') is refused with file:line. */
static void test_dns_servers(void **state)
{
	static const char *const good[] = {"auto",
					   "127.0.0.1",
					   "127.0.0.1:5353",
					   "::1",
					   "[::1]",
					   "[::1]:53",
					   "127.0.0.1:53;[::1]:5353;10.0.0.1"};
	static const char *const bad[] = {
	    "",	      "x",    "1.2.3.4;",	"1.2.3.4;;::1", "1.2.3.4:0",	 "1.2.3.4:65536",
	    "[::1]x", "[::1", "ns.example.com", "1.2.3.4:5a",	"1.2.3.4:123456"};
	char text[256], err[512];
	struct config c;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		snprintf(text, sizeof(text), "[delivery]\ndns_servers = %s\n", good[i]);
		assert_int_equal(load_text(text, &c, err, sizeof(err)), 0);
		assert_string_equal(c.dns_servers, good[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text), "[delivery]\ndns_servers = %s\n", bad[i]);
		assert_int_equal(load_text(text, &c, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, ":2: invalid value for 'dns_servers' in [delivery]"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_key_parsed),
	    cmocka_unit_test(test_bool_spellings),
	    cmocka_unit_test(test_error_messages),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_cross_key_errors),
	    cmocka_unit_test(test_file_errors),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_print_names_every_key),
	    cmocka_unit_test(test_range_limits),
	    cmocka_unit_test(test_bad_system_hostname),
	    cmocka_unit_test(test_leading_semicolon_refused),
	    cmocka_unit_test(test_round_trip_odd_values),
	    cmocka_unit_test(test_control_line_start_refused),
	    cmocka_unit_test(test_load_buf),
	    cmocka_unit_test(test_dns_servers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
