#!/usr/bin/env bash
# Adaptive backoff, end to end (independent mode, dnsmasq, riptide-sinks on 127.0.0.x):
# 1. g.test's MX answers RCPT with "421 4.7.28" (Gmail's rate block); the built-in gmail rule,
#    its duration set to 5s by [backoff gmail]: riptide logs event=backoff action=suspend for
#    g.test, opens no connection to g.test for the 5 s (the 421 sink's and then a normal sink's
#    connection counts), defers g.test's mail meanwhile without trying (451 4.7.0 "suspended by
#    a backoff rule", also a message injected during the suspension), logs event=backoff-end,
#    then delivers everything;
# 2. [backoff b] code = 450, text = go away, action = bounce: a "450 4.7.1 go away" at RCPT
#    fails the recipient at once (no deferral, one attempt), while a 450 with another text
#    (bb.test) is only deferred;
# 3. the built-in yahoo rule (421 4.7.0 with text [TSS04]): yh.test's "421 4.7.0 [TSS04] ..."
#    suspends yh.test (rule=yahoo), yn.test's "421 4.7.0 Try again later" (no [TSS04]) does
#    not: its mail is only deferred.
. "$(dirname "$0")/lib.sh"
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6)
start_dnsmasq main - --local-ttl=300 \
	--mx-host=g.test,mx.g.test,10 --host-record=mx.g.test,127.0.0.2 \
	--mx-host=b.test,mx.b.test,10 --host-record=mx.b.test,127.0.0.3 \
	--mx-host=bb.test,mx.bb.test,10 --host-record=mx.bb.test,127.0.0.4 \
	--mx-host=yh.test,mx.yh.test,10 --host-record=mx.yh.test,127.0.0.5 \
	--mx-host=yn.test,mx.yn.test,10 --host-record=mx.yn.test,127.0.0.6
dns_check g.test '^  1\. mx\.g\.test  preference 10' 'A +127\.0\.0\.2 '
dns_check b.test '^  1\. mx\.b\.test  preference 10' 'A +127\.0\.0\.3 '
start_sink_at 127.0.0.2 "$MX_PORT" \
	--reply 'rcpt=421:4.7.28 Our system has detected an unusual rate of unsolicited mail'
start_sink_at 127.0.0.3 "$MX_PORT" --reply 'rcpt=450:4.7.1 go away'
start_sink_at 127.0.0.4 "$MX_PORT" --reply 'rcpt=450:4.7.1 come back later'
start_sink_at 127.0.0.5 "$MX_PORT" \
	--reply 'rcpt=421:4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume'
start_sink_at 127.0.0.6 "$MX_PORT" --reply 'rcpt=421:4.7.0 Try again later'
write_mx_config <<'EOF'
[backoff gmail]
duration = 5s
[backoff b]
code = 450
text = go away
action = bounce
EOF
start_riptide

# dlog_ms REGEX: the time (epoch ms) of the first delivery log line matching REGEX.
dlog_ms() {
	python3 - "$DLOG" "$1" <<'PY'
import sys, re, datetime
for l in open(sys.argv[1]):
    if re.search(sys.argv[2], l):
        t = datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        print(int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))
        break
PY
}

# why_dead: if riptide has exited, what its stderr says (the sanitizer's error, top frames).
why_dead() {
	kill -0 "$RIPTIDE_PID" 2>/dev/null ||
		echo " (riptide exited: $(grep -m4 -E 'ERROR|^ +#[0-2] ' "$T/riptide.err" | tr -s ' \n' ' '))"
}

# 1. 421 4.7.28 -> suspend g.test for 5 s.
send_to a@g.test ga
SUSP='event=backoff action=suspend dest=g\.test .*rule=gmail duration=5s'
wait_until 20 dlog_has "$SUSP" || fail "no event=backoff action=suspend for g.test after 421 4.7.28"
wait_until 5 dlog_line deferred a@g.test 'code=421 dsn=4\.7\.28 ' ||
	fail "a@g.test: no deferred line with the 421 4.7.28"
# The 421 sink gives way to a normal one on the same address (the block is lifted); neither may
# see a connection before the suspension ends. The 421 sink saw exactly the one connection
# (its stats file is rewritten every 100 ms: read it after 1 s).
sleep 1
c421=$(sink_at_conns 127.0.0.2)
[ "$c421" -eq 1 ] || fail "g.test: the 421 sink saw $c421 connections (want 1: none after the 421)"
stop_sink_at 127.0.0.2
start_sink_at 127.0.0.2 "$MX_PORT"
send_to b@g.test gb
HELD='code=451 .*dsn=4\.7\.0 .*suspended by a backoff rule'
wait_until 4 dlog_line deferred b@g.test "$HELD" ||
	fail "b@g.test (injected during the suspension): not deferred with 451 4.7.0 'suspended by a backoff rule'"
wait_until 4 dlog_line deferred a@g.test "$HELD" ||
	fail "a@g.test: its retry during the suspension was not deferred with 451 4.7.0 (suspended)"
# first_conn_ms: epoch ms of the first connection to the new sink (polled every 50 ms).
first_conn_ms=
for _ in $(seq 300); do
	if [ "$(sink_at_conns 127.0.0.2)" -gt 0 ]; then
		first_conn_ms=$(date +%s%3N)
		break
	fi
	sleep 0.05
done
[ -n "$first_conn_ms" ] || fail "g.test: no connection within 15 s of the suspension"
wait_until 10 dlog_has 'event=backoff-end action=suspend dest=g\.test .*rule=gmail' ||
	fail "no event=backoff-end for g.test"
susp_ms=$(dlog_ms "$SUSP")
end_ms=$(dlog_ms 'event=backoff-end action=suspend dest=g\.test ')
echo "suspend -> first connection $((first_conn_ms - susp_ms)) ms, suspend -> backoff-end $((end_ms - susp_ms)) ms"
[ $((first_conn_ms - susp_ms)) -ge 4800 ] ||
	fail "g.test: a connection $((first_conn_ms - susp_ms)) ms after the suspension began (5 s)"
[ $((end_ms - susp_ms)) -ge 4800 ] && [ $((end_ms - susp_ms)) -le 8000 ] ||
	fail "backoff-end $((end_ms - susp_ms)) ms after the suspension (want ~5 s)"
pass "421 4.7.28: g.test suspended (event=backoff), no connection for 5 s, held mail deferred with 451 4.7.0, event=backoff-end"
for r in a@g.test b@g.test; do
	wait_until 10 rcpt_arrived $r 127.0.0.2 || fail "$r: not delivered after the suspension"
	wait_until 5 dlog_line delivered $r ' dest=g\.test ' || fail "$r: no delivered line"
done
pass "g.test's mail delivered once the suspension ended"

# 2. [backoff b]: 450 "go away" -> the recipient fails at once; another 450 text only defers.
send_to x@b.test bx
send_to y@bb.test by
wait_until 10 dlog_line failed x@b.test 'code=450' || fail "x@b.test: 450 go away did not fail it$(why_dead)"
dlog_line deferred x@b.test && fail "x@b.test: deferred before failing (want failed at once)"
wait_until 10 dlog_line deferred y@bb.test 'code=450' || fail "y@bb.test: 450 come back later not deferred"
dlog_line failed y@bb.test && fail "y@bb.test: failed, but only 'go away' bounces"
sleep 1.5
dlog_line failed y@bb.test && fail "y@bb.test: failed on a retry, but only 'go away' bounces"
[ "$(sink_at_conns 127.0.0.3)" -eq 1 ] || fail "b.test: $(sink_at_conns 127.0.0.3) connections (want 1: failed at once)"
pass "[backoff b] code 450 text 'go away' action bounce: failed at once; other 450 texts deferred"

# 3. Built-in yahoo rule: its text regex decides.
send_to p@yh.test yh
send_to q@yn.test yn
wait_until 10 dlog_has 'event=backoff action=suspend dest=yh\.test .*rule=yahoo ' ||
	fail "421 4.7.0 [TSS04]: no event=backoff action=suspend rule=yahoo for yh.test$(why_dead)"
wait_until 10 dlog_line deferred q@yn.test 'code=421 dsn=4\.7\.0 ' || fail "q@yn.test: 421 4.7.0 not deferred"
sleep 1.5
dlog_has 'event=backoff .*dest=yn\.test ' && fail "421 4.7.0 without [TSS04] set off a backoff for yn.test"
dlog_line deferred q@yn.test 'suspended by a backoff rule' && fail "q@yn.test: held as suspended"
pass "built-in yahoo rule: 421 4.7.0 [TSS04] suspends yh.test, 421 4.7.0 without [TSS04] only defers"
stop_riptide
