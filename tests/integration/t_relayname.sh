#!/usr/bin/env bash
# A relay and a fallback relay given by host name, resolved through dns/ (A/AAAA of the name
# itself, never its MX), against a real dnsmasq: relay.test has an A record (a sink) and an MX
# pointing elsewhere (another sink) — mail must reach the A record's sink. A relay name that does
# not resolve defers (4.4.3), it never bounces. In independent mode a fallback relay given by
# name takes what no MX host could take (via=fallback-relay).
. "$(dirname "$0")/lib.sh"
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3)
start_dnsmasq main - --local-ttl=60 \
	--host-record=relay.test,127.0.0.2 --mx-host=relay.test,wrong.test,5 \
	--host-record=wrong.test,127.0.0.3 \
	--mx-host=down.test,mx.down.test,10 --host-record=mx.down.test,127.0.0.4 \
	--address=/gone.test/
start_sink_at 127.0.0.2 "$MX_PORT"
start_sink_at 127.0.0.3 "$MX_PORT"

# 1. Relay mode, relay = relay.test:PORT.
INJ_PORT=$(free_port)
SPOOL=$T/spool DLOG=$T/delivery.log CONF=$T/riptide.conf
printf '[main]\nspool = %s\nlog = %s\nshards = 2\nshutdown_timeout = 5s\n[inject]\nlisten = 127.0.0.1:%s\n[delivery]\nrelay = relay.test:%s\ndns_servers = 127.0.0.1:%s\ndns_timeout = 500ms\ndns_tries = 1\nretry_delay = 1s\n[queue]\nscan_interval = 200ms\n' \
	"$SPOOL" "$DLOG" "$INJ_PORT" "$MX_PORT" "$DNS_PORT" >"$CONF"
start_riptide
for i in 1 2 3; do send_to "r$i@any.test"; done
wait_until 20 rcpt_arrived r3@any.test 127.0.0.2 || fail "relay by name: mail not at relay.test's A record"
[ "$(rcpt_at 127.0.0.3 r1@any.test)" -eq 0 ] || fail "relay by name followed the MX record"
wait_until 10 dlog_line delivered r1@any.test ' dest=relay\.test:' ' relay=127\.0\.0\.2:' ||
	fail "relay by name: log line lacks dest/relay"
pass "relay = relay.test:PORT: resolved to its A record (not its MX), delivered"
stop_riptide

# 2. A relay name that does not exist: deferred 4.4.3, still queued.
sed -i "s/^relay = .*/relay = gone.test:$MX_PORT/" "$CONF"
start_riptide
send_to "g@any.test"
wait_until 20 dlog_line deferred g@any.test ' dsn=4\.4\.3 ' || fail "unresolvable relay: no 4.4.3 deferral"
dlog_line failed g@any.test && fail "unresolvable relay bounced the mail"
stop_riptide
[ "$(queue_count)" -eq 1 ] || fail "unresolvable relay: message not kept"
pass "relay name without an address: deferred 4.4.3, kept in the queue"
rm -rf "$SPOOL"

# 3. Independent mode with fallback_relay = relay.test:PORT: down.test's MX has no listener.
write_mx_config <<EOC
[delivery]
fallback_relay = relay.test:$MX_PORT
EOC
start_riptide
send_to "f@down.test"
wait_until 20 rcpt_arrived f@down.test 127.0.0.2 || fail "fallback by name: not at relay.test"
wait_until 10 dlog_line delivered f@down.test ' via=fallback-relay' ' dest=down\.test ' ||
	fail "fallback by name: log line lacks via=fallback-relay"
stop_riptide
pass "fallback_relay by name: took the mail no MX host could take"
