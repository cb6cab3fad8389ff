#!/usr/bin/env bash
# Relay-side behaviour: a relay dropping the connection mid-DATA gets the mail deferred (never
# counted as delivered) and delivered on a later attempt; max_messages_per_connection bounds each
# connection; max_connections caps concurrent outbound connections.
. "$(dirname "$0")/lib.sh"

# 1. mid-DATA drops: every attempt fails until the sink is replaced by a healthy one.
start_sink -x 500
write_config <<'EOF2'
[delivery]
max_connections = 3
max_messages_per_connection = 10
EOF2
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 5 -c 1 -L "$T/blast5.log" >"$T/b1.out" || fail "blast 1"
five_deferred() { [ "$(log_count deferred)" -ge 5 ]; }
wait_until 20 five_deferred || fail "mid-DATA drops were not deferred ($(log_count deferred))"
[ "$(log_count delivered)" -eq 0 ] || fail "a dropped transaction was logged as delivered"
grep -q 'status=deferred .*code=0 dsn=4.4.1' "$DLOG" || fail "deferral does not carry 4.4.1"
kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true
port=$SINK_PORT
rm -f "$SINK_LOG" "$SINK_STATS"
"$SINK" -q -t 2 -l "127.0.0.1:$port" -o "$SINK_LOG" -c "$SINK_STATS" -w 30 2>>"$T/sink.err" &
SINK_PID=$!; PIDS+=("$SINK_PID"); wait_port "$port"
wait_until 30 all_arrived "$T/blast5.log" || fail "dropped messages not delivered on retry"
pass "mid-DATA drop: deferred, then delivered on retry"

# 2. connection cap and messages per connection, against a slow relay (30 ms per reply).
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 200 -c 20 -L "$T/blast200.log" >"$T/b2.out" || fail "blast 2"
max=0
for _ in $(seq 100); do
	n=$(ss -Htn state established "( dport = :$port )" | wc -l)
	[ "$n" -gt "$max" ] && max=$n
	all_arrived "$T/blast200.log" && break
	sleep 0.1
done
wait_until 60 all_arrived "$T/blast200.log" || fail "200 messages not delivered"
[ "$max" -ge 1 ] && [ "$max" -le 3 ] || fail "outbound connections peaked at $max (cap 3)"
conns=$(sed -n 's/.*connections=\([0-9]*\).*/\1/p' "$SINK_STATS")
[ "$conns" -ge 20 ] || fail "$conns connections for 205 messages at 10 per connection"
pass "max_connections=3 held (peak $max), max 10 messages per connection ($conns connections)"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty"
