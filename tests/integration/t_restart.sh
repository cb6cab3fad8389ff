#!/usr/bin/env bash
# outgoing = no: mail is accepted and stays queued; it survives a restart; once outgoing is on
# again, everything queued is delivered after the restart.
. "$(dirname "$0")/lib.sh"
start_sink
write_config <<'EOF2'
[delivery]
outgoing = no
EOF2
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 300 -c 8 -L "$T/blast.log" >"$T/blast.out" || fail "blast"
grep -q 'ok=300 ' "$T/blast.out" || fail "blast: $(tail -n1 "$T/blast.out")"
sleep 1
[ "$(sink_messages)" -eq 0 ] || fail "outgoing=no but the sink got mail"
stop_riptide
[ "$(queue_count)" -eq 300 ] || fail "queue holds $(queue_count), expected 300"
pass "outgoing disabled: 300 accepted, none sent, all queued across the stop"
start_riptide # still outgoing = no: restart keeps them
stop_riptide
[ "$(queue_count)" -eq 300 ] || fail "queue holds $(queue_count) after a second restart"
sed -i 's/^outgoing = no/outgoing = yes/' "$CONF"
start_riptide
wait_until 60 sink_ge 300 || fail "sink got $(sink_messages) of 300 after restart"
python3 - "$T/blast.log" "$SINK_LOG" <<'PY' || fail "ids differ"
import sys
sent = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] == "250"}
got = [l.split()[5] for l in open(sys.argv[2])]
assert sent == set(got) and len(got) == 300, (len(sent), len(got))
PY
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty after delivery"
pass "restart with outgoing on delivers the whole queue exactly once"
