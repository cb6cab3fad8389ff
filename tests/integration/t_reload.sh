#!/usr/bin/env bash
# SIGHUP: outgoing can be switched on without a restart (queued mail then flows), the delivery
# log is reopened (logrotate), and a broken file is refused with the running configuration kept.
. "$(dirname "$0")/lib.sh"
start_sink
write_config <<'EOF2'
[delivery]
outgoing = no
EOF2
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 50 -c 5 -L "$T/b1.log" >"$T/b1.out" || fail "blast 1"
sleep 1
[ "$(sink_messages)" -eq 0 ] || fail "outgoing = no but mail went out"
mv "$DLOG" "$DLOG.1"
sed -i 's/^outgoing = no/outgoing = yes/' "$CONF"
kill -HUP "$RIPTIDE_PID"
wait_until 30 all_arrived "$T/b1.log" || fail "queued mail did not flow after the reload"
pass "SIGHUP: outgoing switched on, 50 queued messages delivered without a restart"
has_delivered() { grep -q 'status=delivered' "$DLOG" 2>/dev/null; }
wait_until 10 has_delivered || fail "no delivered lines in the reopened log"
grep -q 'status=queued' "$DLOG.1" || fail "the rotated log lost its earlier lines"
pass "SIGHUP: log reopened after rotation"
cp "$CONF" "$T/good.conf"
printf '[delivery]\nmax_connections = lots\n' >>"$CONF"
kill -HUP "$RIPTIDE_PID"
refused() { grep -q "reload failed.*max_connections" "$T/riptide.err"; }
wait_until 10 refused || fail "a broken file was not refused on reload"
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 20 -c 2 -L "$T/b2.log" >"$T/b2.out" || fail "blast 2"
wait_until 30 all_arrived "$T/b2.log" || fail "not running on the kept configuration"
pass "SIGHUP with a broken file: refused (file:line:key), running configuration kept"
cp "$T/good.conf" "$CONF"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty"
