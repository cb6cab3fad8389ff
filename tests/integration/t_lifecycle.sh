#!/usr/bin/env bash
# The retry schedule end to end (issue 7): a recipient deferred twice is retried and delivered
# once; the gaps between the rounds of a recipient that is always deferred follow retry_delay *
# retry_backoff^(n-1) capped at retry_max_delay, within the +-5 % jitter (1 s, 2 s, 4 s, 4 s);
# after max_attempts rounds it fails (5.4.7) with exactly one failure notice, and it got exactly
# one delay warning once it had waited longer than warn_after; in a message with a delivered, a
# deferred and a failed recipient only the deferred one is retried, nobody arrives twice, and the
# failed one is reported in one notice. Every notice is read by Python's email package, the
# user-unknown one also by sisimai. The queue is empty at the end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib5.sh"
start_sink
write_config <<'EOF2'
[delivery]
retry_delay = 1s
retry_backoff = 2
retry_max_delay = 4s
max_attempts = 5
warn_after = 2s
EOF2
start_riptide
send_as s@sender.test 450-slow@example.test slow
send_as s@sender.test fail2-x@example.test twice
send_as s@sender.test ok@example.test,fail1-p@example.test,550-p@example.test partial
SLOW=$(qid_of slow)
TWICE=$(qid_of twice)
PART=$(qid_of partial)

# Retry then success: 450, 450, then 250 on the third round; one copy at the sink.
wait_until 20 sink_has_rcpt fail2-x@example.test || fail "fail2-x@ never arrived"
dlog_line delivered fail2-x@example.test 'attempts=3 ' || fail "fail2-x@ not delivered on attempt 3"
[ "$(dlog_n "status=deferred to=<fail2-x@example.test>")" -eq 2 ] || fail "fail2-x@: not 2 deferrals"
pass "retry then success: deferred twice, delivered on the third attempt"

# Partial delivery: ok@ went out at once, fail1-p@ alone on the retry, 550-p@ never.
wait_until 20 sink_has_rcpt fail1-p@example.test || fail "fail1-p@ never arrived"
[ "$(sink_rcpt ok@example.test)" -eq 1 ] || fail "ok@ arrived $(sink_rcpt ok@example.test) times"
[ "$(sink_rcpt fail1-p@example.test)" -eq 1 ] || fail "fail1-p@ arrived more than once"
grep -q " s@sender.test fail1-p@example.test " "$SINK_LOG" ||
	fail "the retry carried more than the deferred recipient: $(grep fail1-p "$SINK_LOG")"
[ "$(sink_rcpt 550-p@example.test)" -eq 0 ] || fail "550-p@ reached the sink"
dlog_line failed 550-p@example.test 'code=550 dsn=5\.1\.1 attempts=1 ' || fail "550-p@ not failed"
wait_until 10 notice_ge 1 --orig "$PART" || fail "no notice for the 550 of the partial message"
[ "$(notice_n --orig "$PART")" -eq 1 ] || fail "partial message: $(notice_n --orig "$PART") notices"
N=$(notices --orig "$PART")
dsn_ok "$N" --to s@sender.test --action failed --rcpt 550-p@example.test=5.1.1 \
	--diag '^smtp; *550 ' --original full --orig-subject partial \
	--text '550-p@example\.test' --subject 'Undelivered'
sisimai_ok "$N" 550-p@example.test userunknown 5.1.1
pass "partial: only the deferred recipient retried, none twice, one notice for the 550 (email, sisimai)"

# Backoff: five rounds for 450-slow@ (max_attempts = 5), then expiry.
wait_until 30 dlog_line failed 450-slow@example.test 'dsn=5\.4\.7 ' ||
	fail "450-slow@ did not expire after max_attempts"
dlog_line failed 450-slow@example.test 'attempts=5 ' \
	'reason="expired: unable to deliver message after multiple retries \(5 attempts, max_attempts\)"' ||
	fail "expiry line lacks attempts=5 or the max_attempts reason: $(grep 'status=failed to=<450-slow' "$DLOG")"
python3 - "$DLOG" <<'PY' || fail "retry gaps do not follow the backoff"
import datetime, sys
ts = []
for l in open(sys.argv[1]):
    if "status=deferred to=<450-slow@example.test>" in l:
        t = l.split()[0].rstrip("Z")
        ts.append(datetime.datetime.fromisoformat(t).timestamp())
gaps = [round(b - a, 3) for a, b in zip(ts, ts[1:])]
want = [1, 2, 4, 4]  # retry_delay 1s, backoff 2, capped at retry_max_delay 4s
print("deferred rounds:", len(ts), "gaps:", gaps, "want:", want)
assert len(ts) == 5, f"{len(ts)} deferred rounds, want 5"
for g, w in zip(gaps, want):
    # jitter [0.95, 1.05]; on top, the round itself and a loaded machine may add a little
    assert 0.95 * w - 0.05 <= g <= 1.05 * w + 0.75, f"gap {g} s, want {w} s +-5 %"
PY
pass "backoff: gaps 1 s, 2 s, 4 s, 4 s (capped) within the jitter"

wait_until 10 notice_ge 2 --orig "$SLOW" || fail "no notices about 450-slow@"
sleep 1.5 # anything extra would be queued within the same commit; give it time to arrive
[ "$(notice_n --orig "$SLOW" --action failed)" -eq 1 ] ||
	fail "450-slow@: $(notice_n --orig "$SLOW" --action failed) failure notices, want 1"
[ "$(notice_n --orig "$SLOW" --action delayed)" -eq 1 ] ||
	fail "450-slow@: $(notice_n --orig "$SLOW" --action delayed) delay warnings, want 1"
[ "$(notice_n --orig "$SLOW")" -eq 2 ] || fail "450-slow@: other notices too"
[ "$(dlog_n "^\S+ $SLOW event=notice-queued ")" -eq 2 ] || fail "450-slow@: not 2 notice-queued lines"
F=$(notices --orig "$SLOW" --action failed)
W=$(notices --orig "$SLOW" --action delayed)
dsn_ok "$F" --to s@sender.test --rcpt 450-slow@example.test=5.4.7 --original full \
	--orig-subject slow --diag '450'
dsn_ok "$W" --to s@sender.test --rcpt 450-slow@example.test --original headers \
	--orig-subject slow --diag '450' --subject 'Delay'
grep -q '^Will-Retry-Until: ' "$W" || fail "delay warning without Will-Retry-Until"
sisimai_ok "$W" 450-slow@example.test expired 4.2.0 # sisimai's reason for a delay warning
sisimai_ok "$F" 450-slow@example.test expired 5.4.7
[ "$(notice_n --orig "$TWICE")" -eq 0 ] ||
	echo "note: fail2-x@ got a delay warning (its second round ended after warn_after: slow machine)"
python3 "$DSN_CHECK" check "$F" --text 'expire|lifetime|max_attempts' >/dev/null 2>&1 ||
	fail "the failure notice of an expired recipient does not say it expired ($(grep -m1 '^<450-slow' "$F"))"
pass "max_attempts: failed with 5.4.7 after 5 rounds, exactly one failure notice, one delay warning"

all_notices_ok
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"
pass "queue empty"
