#!/usr/bin/env bash
# Traffic shaping per destination, end to end (independent mode, dnsmasq, riptide-sinks on
# 127.0.0.x; the three parts run at the same time in one daemon, measured at the sinks):
# 1. [shaping slow.test] max_message_rate = 60/m: of 100 messages injected at once, any 60 s
#    window at the sink holds 60 +- 3 of them, about 1 s apart (no burst), while fast.test
#    (no rule) gets its 100 within a few seconds;
# 2. [shaping conn.test] max_connections = 3, a sink that delays every reply (-w): the sink
#    never sees more than 3 sessions at once, and more than 1; ctl.test (same load, no rule)
#    gets more than 3 (the limit is the rule's, not the load's);
# 3. [shaping r.test] max_message_rate = 2/s, 200 messages; after ~5 s the file says 20/s and
#    riptide gets SIGHUP: the arrival rate is ~2/s before and ~20/s after.
. "$(dirname "$0")/lib.sh"
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3 127.0.0.4)
start_dnsmasq main - --local-ttl=300 \
	--mx-host=slow.test,mx.a.test,10 --mx-host=fast.test,mx.a.test,10 \
	--mx-host=r.test,mx.a.test,10 --host-record=mx.a.test,127.0.0.2 \
	--mx-host=conn.test,mx.c.test,10 --host-record=mx.c.test,127.0.0.3 \
	--mx-host=ctl.test,mx.d.test,10 --host-record=mx.d.test,127.0.0.4
dns_check slow.test '^  1\. mx\.a\.test  preference 10' 'A +127\.0\.0\.2 '
dns_check conn.test '^  1\. mx\.c\.test  preference 10' 'A +127\.0\.0\.3 '
start_sink_at 127.0.0.2 "$MX_PORT"
start_sink_at 127.0.0.3 "$MX_PORT" -w 200
start_sink_at 127.0.0.4 "$MX_PORT" -w 200
write_mx_config <<'EOF'
[shaping slow.test]
max_message_rate = 60/m
[shaping conn.test]
max_connections = 3
[shaping r.test]
max_message_rate = 2/s
EOF
start_riptide

# blast_to DOMAIN N: inject N messages to users of DOMAIN in the background (log $T/b-DOMAIN.log).
BLASTS=()
blast_to() {
	"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n "$2" -c 10 -d "$1" -L "$T/b-$1.log" \
		>"$T/b-$1.out" 2>&1 &
	BLASTS+=("$!")
	PIDS+=("$!")
}
blast_to slow.test 100
blast_to fast.test 100
blast_to r.test 200
blast_to conn.test 50
blast_to ctl.test 50
for b in "${BLASTS[@]}"; do wait "$b" || fail "riptide-blast $b failed"; done
for d in slow.test fast.test r.test conn.test ctl.test; do
	n=$(awk '$2 == 250' "$T/b-$d.log" | wc -l)
	[ "$n" -eq "$(wc -l <"$T/b-$d.log")" ] || fail "$d: only $n messages were queued"
done

# at_dom ADDR DOMAIN: messages at the sink at ADDR for DOMAIN.
at_dom() { rcpts_at_domain "$1" "$2"; }
# first_us ADDR DOMAIN: TIME_US of the first arrival for DOMAIN at ADDR (empty if none).
first_us() { awk -v d="@$2" 'index($3, d) { print $1; exit }' "$(sink_at_log "$1")" 2>/dev/null; }
got_first() { [ -n "$(first_us 127.0.0.2 "$1")" ]; }
# dom_ge ADDR DOMAIN N: true once the sink at ADDR has N messages for DOMAIN (for wait_until).
dom_ge() { [ "$(at_dom "$1" "$2")" -ge "$3" ]; }

# 3 (first, as it is timed): r.test at 2/s, then 20/s after the reload.
wait_until 20 got_first r.test || fail "r.test: nothing arrived"
sleep 5
sed -i 's#^max_message_rate = 2/s$#max_message_rate = 20/s#' "$CONF"
grep -q '^max_message_rate = 20/s$' "$CONF" || fail "config rewrite for the reload failed"
HUP_US=$(date +%s%6N)
kill -HUP "$RIPTIDE_PID"
wait_until 30 dom_ge 127.0.0.2 r.test 200 ||
	fail "r.test: $(at_dom 127.0.0.2 r.test) of 200 arrived within 30 s of the reload"
python3 - "$(sink_at_log 127.0.0.2)" "$HUP_US" >"$T/r.out" <<'PY' ||
import sys
hup = int(sys.argv[2]) / 1e6
ts = sorted(int(l.split()[0]) / 1e6 for l in open(sys.argv[1]) if "@r.test" in l.split()[2])
t0 = ts[0]
before = sum(1 for t in ts if t < hup) / (hup - t0)
after = sum(1 for t in ts if hup + 1 <= t < hup + 6) / 5.0
print(f"r.test: {before:.2f}/s in the {hup - t0:.1f} s before SIGHUP, {after:.2f}/s from 1 to 6 s after")
ok = 1.5 <= before <= 2.6 and 16 <= after <= 22
sys.exit(0 if ok else 1)
PY
	fail "reload did not change the rate from 2/s to 20/s: $(cat "$T/r.out")"
cat "$T/r.out"
pass "SIGHUP: [shaping r.test] max_message_rate 2/s -> 20/s applied mid-run"

# 2. conn.test: at most 3 sessions at once at its sink; ctl.test (no rule) more.
wait_until 60 dom_ge 127.0.0.3 conn.test 50 ||
	fail "conn.test: $(at_dom 127.0.0.3 conn.test) of 50 arrived"
wait_until 60 dom_ge 127.0.0.4 ctl.test 50 ||
	fail "ctl.test: $(at_dom 127.0.0.4 ctl.test) of 50 arrived"
mc=$(sink_at 127.0.0.3 max_concurrent)
mc_ctl=$(sink_at 127.0.0.4 max_concurrent)
echo "max_concurrent: conn.test (max_connections = 3) $mc, ctl.test (no rule) $mc_ctl"
[ "$mc" -le 3 ] || fail "conn.test: $mc concurrent sessions at the sink (max_connections = 3)"
[ "$mc" -gt 1 ] || fail "conn.test: only $mc session at a time (want 2..3)"
[ "$mc_ctl" -gt 3 ] || fail "ctl.test without a rule had only $mc_ctl concurrent sessions (control)"
pass "[shaping conn.test] max_connections = 3: the sink saw $mc sessions at most (ctl.test: $mc_ctl)"

# 1. slow.test at 60/m against fast.test unthrottled, over a 60 s window.
[ "$(at_dom 127.0.0.2 fast.test)" -eq 100 ] || fail "fast.test: $(at_dom 127.0.0.2 fast.test) of 100 arrived"
s0=$(first_us 127.0.0.2 slow.test)
[ -n "$s0" ] || fail "slow.test: nothing arrived"
while [ "$(date +%s%6N)" -lt $((s0 + 65000000)) ]; do sleep 1; done
python3 - "$(sink_at_log 127.0.0.2)" >"$T/slow.out" <<'PY' ||
import sys, statistics
slow, fast = [], []
for l in open(sys.argv[1]):
    p = l.split()
    d = p[2].split("@")[1]
    (slow if d == "slow.test" else fast if d == "fast.test" else []).append(int(p[0]) / 1e6)
slow.sort(); fast.sort()
t0 = slow[0]
wins = [sum(1 for t in slow if s <= t < s + 60) for s in slow if s + 60 <= slow[-1]]
gaps = [b - a for a, b in zip(slow, slow[1:])]
print(f"slow.test: {len(slow)} in {slow[-1] - t0:.1f} s; 60 s windows: {len(wins)}, "
      f"min {min(wins, default=0)} max {max(wins, default=0)}; gaps: min {min(gaps):.3f} s "
      f"median {statistics.median(gaps):.3f} s")
print(f"fast.test: {len(fast)} in {fast[-1] - fast[0]:.2f} s, last {fast[-1] - t0:+.2f} s "
      f"after slow.test's first")
ok = wins and all(57 <= w <= 63 for w in wins) and min(gaps) >= 0.5
ok = ok and 0.9 <= statistics.median(gaps) <= 1.1
ok = ok and len(fast) == 100 and fast[-1] - fast[0] <= 5 and fast[-1] - t0 <= 10
sys.exit(0 if ok else 1)
PY
	fail "60/m not held or fast.test throttled: $(cat "$T/slow.out")"
cat "$T/slow.out"
pass "[shaping slow.test] max_message_rate = 60/m: 60 +- 3 per 60 s window, ~1 s apart; fast.test unthrottled"
stop_riptide
