#!/usr/bin/env bash
# A relay that rejects every connection (554 greeting) or refuses it: riptide makes a handful of
# attempts, logs one error, defers every queued message (they stay queued), and does not storm
# the relay. Addresses the client could not send on are refused at injection with 553.
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
start_sink -g 554
write_config <<'EOF2'
[delivery]
retry_delay = 1h
EOF2
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 200 -c 10 >"$T/blast.out" || fail "blast"
grep -q 'ok=200 ' "$T/blast.out" || fail "blast: $(tail -n1 "$T/blast.out")"
deferred_all() { [ "$(log_count deferred)" -ge 200 ]; }
wait_until 20 deferred_all || fail "only $(log_count deferred) of 200 deferred"
sleep 1
conns=$(sed -n 's/.*connections=\([0-9]*\).*/\1/p' "$SINK_STATS")
[ "$conns" -le 40 ] || fail "$conns connections to a relay that rejects them all (storm)"
grep -q 'event=relay-unreachable relay=.*554' "$DLOG" || fail "no error line naming the 554"
grep -q 'status=deferred .*dsn=4.4.1 .*cannot talk to' "$DLOG" || fail "deferrals do not say why"
pass "rejecting relay: $conns connections for 200 messages, all deferred"
python3 "$D/smtp_dialog.py" "$INJ_PORT" <<'EOF2' || fail "unrelayable address not refused"
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<"odd>sender"@example.test>
EXPECT 553 5.1.7
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<"odd>name"@example.test>
EXPECT 553 5.1.3
SEND QUIT
EXPECT 221
EOF2
pass "addresses with <> in a quoted local part are refused with 553"
stop_riptide
[ "$(queue_count)" -eq 200 ] || fail "queue holds $(queue_count), expected 200"
pass "deferred mail stays queued"
