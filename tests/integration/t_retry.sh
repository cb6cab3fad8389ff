#!/usr/bin/env bash
# Per-recipient outcomes: 2xx delivered and removed, 4xx retried after retry_delay and then
# delivered, 5xx recorded as failed and removed; a message whose transaction keeps getting 4xx
# stays queued. The delivery log has one line per outcome.
. "$(dirname "$0")/lib.sh"
start_sink
write_config </dev/null
start_riptide
swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test \
	--to ok@example.test,fail1-later@example.test,550-gone@example.test >"$T/s1.out" 2>&1 \
	|| fail "swaks 1"
swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test --to 550-only@example.test \
	>"$T/s2.out" 2>&1 || fail "swaks 2"
swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test --to data450-stuck@example.test \
	>"$T/s3.out" 2>&1 || fail "swaks 3"
# ok@ arrives at once, fail1-later@ on the retry one second later.
wait_until 30 grep -q 'fail1-later@example.test' "$SINK_LOG" || fail "retried recipient never arrived"
grep -q ' ok@example.test ' "$SINK_LOG" || fail "ok@ not delivered"
grep -q 'status=deferred to=<fail1-later@example.test>.*code=450 dsn=4.2.0' "$DLOG" \
	|| fail "no deferred line for the 450"
grep -q 'status=delivered to=<fail1-later@example.test>.*attempts=2' "$DLOG" \
	|| fail "no delivered line with attempts=2"
grep -q 'status=failed to=<550-gone@example.test>.*code=550 dsn=5.1.1' "$DLOG" || fail "550 not failed"
grep -q 'status=failed to=<550-only@example.test>' "$DLOG" || fail "550-only not failed"
grep -q '550-' "$SINK_LOG" && fail "a 550 recipient reached the sink"
stuck_retried() { [ "$(grep -c 'status=deferred to=<data450-stuck@example.test>' "$DLOG")" -ge 2 ]; }
wait_until 10 stuck_retried \
	|| fail "data450 transaction was not retried"
pass "2xx delivered, 4xx retried then delivered, 5xx failed, whole-transaction 4xx retried"
stop_riptide
[ "$(queue_count)" -eq 1 ] || fail "queue should hold only the stuck message, has $(queue_count)"
pass "only the still-deferred message stays queued"
