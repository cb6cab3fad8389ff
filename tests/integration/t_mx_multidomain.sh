#!/usr/bin/env bash
# Independent mode, messages with recipients in several domains (a.test, b.test, c.test, each
# with its own MX host on 127.0.0.2, .3, .4; 4 shards):
# 1. one message to two recipients at a.test, one at b.test, one at c.test becomes one transaction
#    per domain (both a.test recipients in one); while c.test's MX is down the message stays
#    queued (riptide --queue-count is 1 with a.test and b.test done) and after a restart only
#    c.test is retried: every recipient arrives exactly once, then the queue is empty;
#    recipients of one domain beyond max_recipients_per_transaction (2) go in further transactions;
# 2. kill -9 while 3-domain messages are being delivered loses nothing: after a restart every
#    recipient of every message that got 250 arrives, each at its own domain's MX, the queue
#    ends empty (duplicates allowed only for what was in flight at the kill).
. "$(dirname "$0")/lib.sh"
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3 127.0.0.4)
start_dnsmasq main - --local-ttl=60 \
	--mx-host=a.test,mx.a.test,10 --host-record=mx.a.test,127.0.0.2 \
	--mx-host=b.test,mx.b.test,10 --host-record=mx.b.test,127.0.0.3 \
	--mx-host=c.test,mx.c.test,10 --host-record=mx.c.test,127.0.0.4
for d in a:2 b:3 c:4; do dns_check "${d%:*}.test" "^  1\. mx\.${d%:*}\.test  preference 10" "A +127\.0\.0\.${d#*:} "; done
start_sink_at 127.0.0.2 "$MX_PORT"
start_sink_at 127.0.0.3 "$MX_PORT"
cfg() {
	write_mx_config <<'EOF'
[main]
shards = 4
[delivery]
max_recipients_per_transaction = 2
EOF
}
cfg
start_riptide

# 1. One message, three domains; c.test's MX is not up yet.
send_to u1@a.test,u2@a.test,v@b.test,w@c.test multi
send_to x1@a.test,x2@a.test,x3@a.test,x4@a.test,x5@a.test five
wait_until 20 rcpt_arrived v@b.test 127.0.0.3 || fail "v@b.test not delivered"
wait_until 20 rcpt_arrived u2@a.test 127.0.0.2 || fail "u2@a.test not delivered"
wait_until 20 dlog_line deferred w@c.test ' dest=c\.test ' || fail "w@c.test not deferred while its MX is down"
grep -Eq ' (u1@a\.test,u2@a\.test|u2@a\.test,u1@a\.test) ' "$(sink_at_log 127.0.0.2)" ||
	fail "the two a.test recipients did not travel in one transaction"
for r in u1@a.test u2@a.test v@b.test; do
	wait_until 10 dlog_line delivered $r " dest=${r#*@} " || fail "$r: no delivered line with dest=${r#*@}"
done
five() { [ "$(grep -c ' x[1-5]@a\.test' "$(sink_at_log 127.0.0.2)")" -ge 3 ]; }
wait_until 20 five || fail "x1..x5@a.test: not delivered"
python3 - "$(sink_at_log 127.0.0.2)" <<'PY' || fail "x1..x5@a.test: not split into 2+2+1 transactions"
import sys
tx = [[r for r in l.split()[2].split(",") if r.startswith("x")] for l in open(sys.argv[1])]
tx = [t for t in tx if t]
rc = sorted(r for t in tx for r in t)
assert rc == [f"x{i}@a.test" for i in range(1, 6)], rc
assert sorted(len(t) for t in tx) == [1, 2, 2], tx
PY
stop_riptide
[ "$(queue_count)" -eq 1 ] || fail "with c.test pending the queue holds $(queue_count) messages (want 1)"
pass "3 domains -> one transaction each (a.test's 2 recipients together), 5 recipients -> 2+2+1; message kept while c.test is pending"
start_sink_at 127.0.0.4 "$MX_PORT"
start_riptide
wait_until 20 rcpt_arrived w@c.test 127.0.0.4 || fail "w@c.test not delivered after its MX came up"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "the queue is not empty once every destination is done"
for r in u1@a.test:127.0.0.2 u2@a.test:127.0.0.2 v@b.test:127.0.0.3 w@c.test:127.0.0.4; do
	n=0
	for a in 127.0.0.2 127.0.0.3 127.0.0.4; do n=$((n + $(rcpt_at $a "${r%:*}"))); done
	[ "$n" -eq 1 ] && [ "$(rcpt_at "${r#*:}" "${r%:*}")" -eq 1 ] ||
		fail "${r%:*}: delivered $n times (want exactly once, at ${r#*:})"
done
pass "after the restart only c.test was retried: every recipient exactly once, queue empty at the end"

# 2. kill -9 mid-delivery of 3-domain messages (blast -r 3 -d a,b,c: one recipient per domain).
# rcpts_total: recipients the three MX sinks accepted so far (from their stats files).
rcpts_total() { echo $(($(sink_at 127.0.0.2 recipients) + $(sink_at 127.0.0.3 recipients) + $(sink_at 127.0.0.4 recipients))); }
base=$(rcpts_total)
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 4000 -c 20 -r 3 -d a.test,b.test,c.test \
	-L "$T/blast.log" >"$T/blast.out" 2>&1 &
blast=$!
PIDS+=("$blast")
some() { [ $(($(rcpts_total) - base)) -ge 600 ]; }
wait_until 40 some || fail "no delivery under load"
kill -9 "$RIPTIDE_PID"
wait "$RIPTIDE_PID" 2>/dev/null || true
wait "$blast" || true
acc=$(awk '$2 == 250' "$T/blast.log" | wc -l)
[ "$acc" -gt 0 ] || fail "nothing was accepted before the kill"
echo "accepted before kill -9: $acc"
start_riptide
# all_mx_arrived: every accepted message has its 3 recipients, each at its domain's MX host.
all_mx_arrived() {
	python3 - "$T/blast.log" "$(sink_at_log 127.0.0.2)" "$(sink_at_log 127.0.0.3)" \
		"$(sink_at_log 127.0.0.4)" >"$T/check.out" <<'PY'
import sys, collections
sent = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] == "250"}
got, wrong, copies = collections.defaultdict(set), 0, collections.Counter()
for path, dom in zip(sys.argv[2:], ("a.test", "b.test", "c.test")):
    for l in open(path):
        p = l.split()
        if len(p) < 6 or p[5] not in sent:
            continue
        for r in p[2].split(","):
            wrong += not r.endswith("@" + dom)
            got[p[5]].add(r)
            copies[(p[5], r)] += 1
short = sum(1 for m in sent if len(got[m]) != 3)
dups = sum(1 for v in copies.values() if v > 1)
print(f"accepted={len(sent)} incomplete={short} wrong_mx={wrong} duplicate_rcpts={dups}")
sys.exit(0 if short == 0 and wrong == 0 else 1)
PY
}
enough() { [ $(($(rcpts_total) - base)) -ge $((3 * acc)) ]; }
wait_until 50 enough || fail "after kill -9 and restart: $(($(rcpts_total) - base)) recipients of $((3 * acc)) arrived"
wait_until 5 all_mx_arrived || fail "after kill -9 and restart: $(cat "$T/check.out")"
cat "$T/check.out"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty after the kill -9 run"
pass "kill -9 mid-delivery of 3-domain messages: every recipient arrived at its MX after the restart"
