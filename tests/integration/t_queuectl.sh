#!/usr/bin/env bash
# riptidectl against a running riptide (issue 7): the control socket is mode 0600; queue
# summary / list (filters) / show report the deferred messages (text and --json, parsed with
# Python); retry ID, retry --destination, retry --all make mail due now (it reaches the sink
# once); delete removes without a notice; bounce fails now with one notice (5.0.0; with
# dsn_original = none, no original attached); suspend holds a destination, resume releases it;
# clear needs --yes and empties the queue without notices. Unknown ids are refused (exit 1).
# Adaptive backoff (issue 9): a route's sink answering RCPT with Gmail's 421 4.7.28 makes the
# [backoff gmail] rule suspend that destination; summary shows backoff:suspend(gmail) (text)
# and the backoff object (JSON) for it, active for the unaffected relay, the operator's
# "suspended" over it, and keeps its row once nothing is queued for it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib5.sh"
start_sink
P2=$(free_port)
start_sink_at 127.0.0.1 "$P2" --reply 'rcpt=421:4.7.28 Try later'
write_config <<EOF2
[delivery]
retry_delay = 1h
dsn_original = none
[route slow.test]
relay = 127.0.0.1:$P2
[backoff gmail]
duration = 30s
EOF2
start_riptide
DEST=127.0.0.1:$SINK_PORT
SOCK=$SPOOL/control.sock
wait_until 10 test -S "$SOCK" || fail "no control socket at $SOCK"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "control socket mode $(stat -c %a "$SOCK"), want 600"

# deferred_n N: N recipients deferred so far (each message below is deferred once: fail1-...).
deferred_n() { [ "$(log_count deferred)" -ge "$1" ]; }
send_as s@sender.test fail1-a@example.test a
send_as s@sender.test fail1-b@example.test b
send_as s@sender.test fail1-c@example.test c
send_as other@other.test fail1-d@example.test d
A=$(qid_of a) B=$(qid_of b) C=$(qid_of c) DD=$(qid_of d)
wait_until 15 deferred_n 4 || fail "the four messages were not deferred"

# ---- summary, list, show ----
ctl summary >"$T/sum.txt" || fail "summary"
grep -q '^4 messages, 4 recipients, ' "$T/sum.txt" || fail "summary totals: $(cat "$T/sum.txt")"
grep -Eq "^ +4 +4 .* active +$DEST\$" "$T/sum.txt" || fail "summary row: $(cat "$T/sum.txt")"
ctl --json summary >"$T/sum.json" || fail "summary --json"
python3 - "$T/sum.json" "$DEST" <<'PY' || fail "summary --json: $(cat "$T/sum.json")"
import json, sys, time
rows = [json.loads(l) for l in open(sys.argv[1])]
t = [r for r in rows if r["type"] == "totals"][0]
assert (t["messages"], t["recipients"]) == (4, 4) and t["bytes"] > 0, t
d = [r for r in rows if r["type"] == "destination"]
assert len(d) == 1 and d[0]["name"] == sys.argv[2], d
d = d[0]
now = time.time() * 1000
assert (d["messages"], d["recipients"], d["suspended"]) == (4, 4, False), d
assert now - 60000 < d["oldest_ms"] <= now, d             # queued just now
assert d["next_ms"] > now + 50 * 60000, d                 # retry_delay = 1 h
PY
list_ids() { ctl --json list "$@" | python3 -c '
import json, sys
print(" ".join(sorted(json.loads(l)["id"] for l in sys.stdin)))'; }
want_ids() { # want_ids "LIST ARGS" ID...: list with those arguments names exactly these ids
	local args=$1 got want
	shift
	# shellcheck disable=SC2086
	got=$(list_ids $args) || fail "list $args"
	want=$(printf '%s\n' "$@" | sort | xargs)
	[ "$got" = "$want" ] || fail "list $args: got [$got], want [$want]"
}
want_ids "" "$A" "$B" "$C" "$DD"
want_ids "--destination $DEST" "$A" "$B" "$C" "$DD"
want_ids "--sender other@other.test" "$DD"
want_ids "--sender sender.test" "$A" "$B" "$C"
want_ids "--recipient fail1-b@example.test" "$B"
want_ids "--older-than 1h"
[ "$(ctl --json list --limit 2 | wc -l)" -eq 2 ] || fail "list --limit 2"
ctl list >"$T/list.txt" || fail "list"
grep -q '^4 messages$' "$T/list.txt" || fail "list text: $(cat "$T/list.txt")"
for id in "$A" "$B" "$C" "$DD"; do grep -q "^$id " "$T/list.txt" || fail "list text lacks $id"; done
ctl --json show "$A" >"$T/show.json" || fail "show $A"
python3 - "$T/show.json" "$A" "$DEST" <<'PY' || fail "show --json: $(cat "$T/show.json")"
import json, sys, time
m = json.load(open(sys.argv[1]))
assert m["id"] == sys.argv[2] and m["sender"] == "s@sender.test", m
(r,) = m["recipients"]
assert r["address"] == "fail1-a@example.test" and r["state"] == "pending", r
assert r["attempts"] == 1 and r["last_code"] == 450 and r["destination"] == sys.argv[3], r
assert "unavailable" in r["last_reply"] and r["last_ms"] > 0, r
(d,) = m["destinations"]
assert d["name"] == sys.argv[3] and d["next_ms"] > time.time() * 1000 + 50 * 60000, d
PY
ctl show "$A" >"$T/show.txt" || fail "show text"
grep -Eq '^ +state +pending$' "$T/show.txt" || fail "show text: $(cat "$T/show.txt")"
rc=0
ctl show 0000000000000000000000000000beef >/dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "show of an unknown id: exit $rc, want 1"
pass "summary, list (filters), show: text and --json; unknown id refused"

# ---- retry ID, delete, bounce ----
ctl retry "$A" >/dev/null || fail "retry $A"
wait_until 10 sink_has_rcpt fail1-a@example.test || fail "retry $A: not delivered"
ctl delete "$B" >/dev/null || fail "delete $B"
wait_until 5 dlog_has "^\S+ $B event=operator-delete" || fail "no operator-delete line for $B"
ctl bounce "$C" >/dev/null || fail "bounce $C"
wait_until 5 dlog_line failed fail1-c@example.test 'dsn=5\.0\.0 ' 'reason="bounced by the operator"' ||
	fail "bounce: no failed line with 5.0.0 and the reason"
wait_until 10 notice_ge 1 --orig "$C" || fail "bounce $C: no notice"
sleep 1
want_ids "" "$DD"
[ "$(sink_rcpt fail1-a@example.test)" -eq 1 ] || fail "fail1-a@ not delivered exactly once"
[ "$(sink_rcpt fail1-b@example.test)" -eq 0 ] || fail "a deleted message was delivered"
[ "$(sink_rcpt fail1-c@example.test)" -eq 0 ] || fail "a bounced message was delivered"
[ "$(notice_n --orig "$B")" -eq 0 ] || fail "delete sent a notice"
[ "$(notice_n --orig "$C")" -eq 1 ] || fail "bounce: $(notice_n --orig "$C") notices, want 1"
N=$(notices --orig "$C")
dsn_ok "$N" --to s@sender.test --action failed --rcpt fail1-c@example.test=5.0.0 --original none
python3 "$DSN_CHECK" check "$N" --text 'operator' >/dev/null 2>&1 ||
	fail "the notice of 'queue bounce' does not say the operator bounced it ($(grep -m1 '^Diagnostic-Code' "$N" | tr -d '\r'))"
rc=0
ctl delete "$B" >/dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "second delete of $B: exit $rc, want 1"
pass "retry ID delivers now; delete: gone, no notice; bounce: 5.0.0, one notice (no original)"

# ---- suspend / resume ----
ctl suspend "$DEST" >/dev/null || fail "suspend"
send_as s@sender.test ok-e@example.test e
E=$(qid_of e)
sleep 2
[ "$(sink_rcpt ok-e@example.test)" -eq 0 ] || fail "suspended destination got mail"
ctl --json summary | python3 -c '
import json, sys
d = [json.loads(l) for l in sys.stdin if "\"destination\"" in l]
assert len(d) == 1 and d[0]["suspended"] is True, d' || fail "summary does not show suspended"
ctl summary | grep -Eq " suspended +$DEST\$" || fail "summary text does not show suspended"
want_ids "" "$DD" "$E"
ctl resume "$DEST" >/dev/null || fail "resume"
wait_until 10 sink_has_rcpt ok-e@example.test || fail "resume: held mail not delivered"
pass "suspend holds new mail for the destination, resume releases it"

# ---- retry --destination, retry --all ----
send_as s@sender.test fail1-f@example.test f
send_as s@sender.test fail1-g@example.test g
wait_until 10 deferred_n 6 || fail "f, g not deferred"
ctl retry --destination "$DEST" >"$T/retry.txt" || fail "retry --destination"
grep -qx 'retried 3' "$T/retry.txt" || fail "retry --destination said: $(cat "$T/retry.txt")"
for r in fail1-d fail1-f fail1-g; do
	wait_until 10 sink_has_rcpt "$r@example.test" || fail "retry --destination: $r@ not delivered"
done
send_as s@sender.test fail1-h@example.test h
wait_until 10 deferred_n 7 || fail "h not deferred"
ctl --json retry --all >"$T/retry.json" || fail "retry --all"
python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); assert j == {"action": "retried", "count": 1}, j' \
	"$T/retry.json" || fail "retry --all --json: $(cat "$T/retry.json")"
wait_until 10 sink_has_rcpt fail1-h@example.test || fail "retry --all: h not delivered"
want_ids ""
pass "retry --destination and retry --all deliver the deferred mail now"

# ---- clear ----
send_as s@sender.test fail1-i@example.test i
send_as s@sender.test fail1-j@example.test j
wait_until 10 deferred_n 9 || fail "i, j not deferred"
rc=0
ctl clear >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "clear without --yes was accepted"
[ "$(list_ids | wc -w)" -eq 2 ] || fail "clear without --yes removed mail"
ctl clear --yes >"$T/clear.txt" || fail "clear --yes"
grep -Eq '\b2\b' "$T/clear.txt" || fail "clear --yes said: $(cat "$T/clear.txt")"
want_ids ""
ctl --json summary | python3 -c '
import json, sys
t = json.loads(sys.stdin.readline())
assert t["type"] == "totals" and (t["messages"], t["recipients"], t["bytes"]) == (0, 0, 0), t' ||
	fail "summary after clear not empty"
sleep 1
for r in a b c d e f g h i j; do
	n=$(sink_rcpt "$([ $r = e ] && echo ok || echo fail1)-$r@example.test")
	want=1
	case $r in b | c | i | j) want=0 ;; esac
	[ "$n" -eq "$want" ] || fail "recipient $r arrived $n times, want $want"
done
[ "$(notice_n)" -eq 1 ] || fail "$(notice_n) notices, want only the bounce's"
pass "clear: refused without --yes, then the queue is empty, no notices; every outcome once at the sink"

# ---- adaptive backoff in the summary ----
send_as s@sender.test x@slow.test k
send_as s@sender.test fail1-l@example.test l
wait_until 15 dlog_has 'event=backoff action=suspend dest=slow\.test .*rule=gmail' ||
	fail "no backoff suspend of slow.test logged"
wait_until 10 dlog_line deferred fail1-l@example.test || fail "fail1-l@ not deferred"
ctl summary >"$T/sum2.txt" || fail "summary (backoff)"
grep -Eq "^ +1 +1 .* backoff:suspend\(gmail\) [0-9]+s left +slow\.test\$" "$T/sum2.txt" ||
	fail "summary does not show the backoff of slow.test: $(cat "$T/sum2.txt")"
grep -Eq "^ +1 +1 .* active +$DEST\$" "$T/sum2.txt" ||
	fail "summary: the relay is not active: $(cat "$T/sum2.txt")"
ctl --json summary >"$T/sum2.json" || fail "summary --json (backoff)"
python3 - "$T/sum2.json" "$DEST" <<'PY' || fail "summary --json (backoff): $(cat "$T/sum2.json")"
import json, sys, time
rows = {r["name"]: r for r in map(json.loads, open(sys.argv[1])) if r["type"] == "destination"}
now = time.time() * 1000
b = rows["slow.test"]["backoff"]
assert rows["slow.test"]["messages"] == 1 and rows["slow.test"]["suspended"] is False, rows
assert (b["action"], b["rule"], b["source"]) == ("suspend", "gmail", ""), b
assert now < b["until_ms"] <= now + 31000 and 0 < b["factor"] <= 1, b
assert rows[sys.argv[2]]["backoff"] is None, rows
PY
[ "$(rcpt_at 127.0.0.1 x@slow.test)" -eq 0 ] || fail "x@slow.test was accepted by the 421 sink"
ctl suspend slow.test >/dev/null || fail "suspend slow.test"
ctl summary | grep -Eq " suspended +slow\.test\$" || fail "the operator's suspend does not show over the backoff"
ctl resume slow.test >/dev/null || fail "resume slow.test"
ctl clear --yes >/dev/null || fail "clear --yes (backoff)"
ctl --json summary >"$T/sum3.json" || fail "summary --json after clear"
python3 - "$T/sum3.json" <<'PY' || fail "no row for the backoff without mail: $(cat "$T/sum3.json")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows[0]["type"] == "totals" and rows[0]["messages"] == 0, rows
(d,) = [r for r in rows if r["type"] == "destination"]
assert d["name"] == "slow.test" and d["messages"] == 0 and d["backoff"]["action"] == "suspend", d
PY
ctl summary | grep -Eq "^ +0 +0 .* backoff:suspend\(gmail\) [0-9]+s left +slow\.test\$" ||
	fail "summary text: no row for the backoff without mail"
pass "backoff: summary shows backoff:suspend(gmail) and the JSON backoff object; the relay stays active; the operator's suspend wins; a row remains with nothing queued"

all_notices_ok
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"
pass "queue empty"
