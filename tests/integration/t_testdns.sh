#!/usr/bin/env bash
# riptidectl test-dns (the classic servers' "Test DNS") against a real dnsmasq on loopback: each
# configured server is asked and timed, a dead one is named; for a domain the MX hosts come in
# preference order with their A/AAAA and TTLs (exit 0), and null MX, NXDOMAIN, a domain
# without MX (implicit MX on and off) and a lookup that times out get their reason (exit 1).
. "$(dirname "$0")/lib.sh"
: "${RIPTIDECTL:?RIPTIDECTL must point at riptidectl}"
DPORT=$(free_port)
HOLE=$(free_port) # nothing listens here: a forwarded zone that never answers
dnsmasq --no-resolv --no-hosts --keep-in-foreground --listen-address=127.0.0.1 \
	--bind-interfaces --port="$DPORT" --pid-file= --user=root --local-ttl=60 --local=/test/ \
	--log-queries --log-facility="$T/dnsmasq.log" \
	--mx-host=mx.test,mx2.mx.test,20 --mx-host=mx.test,mx1.mx.test,10 \
	--host-record=mx1.mx.test,127.0.0.2 --host-record=mx2.mx.test,127.0.0.3,::1 \
	--host-record=aonly.test,127.0.0.4 --mx-host=null.test,.,0 --address=/nx.test/ \
	--server="/timeout.test/127.0.0.1#$HOLE" 2>"$T/dnsmasq.err" &
PIDS+=($!)
wait_port "$DPORT"
conf() { printf '[delivery]\ndns_servers = %s\ndns_timeout = 500ms\ndns_tries = 1\n%s\n' "$1" "${2:-}" >"$T/ctl.conf"; }
ctl() { "$RIPTIDECTL" -c "$T/ctl.conf" test-dns "$@" >"$T/out" 2>&1; }

conf "127.0.0.1:$DPORT"
ctl mx.test || fail "mx.test not deliverable: $(cat "$T/out")"
cat "$T/out"
grep -q "127.0.0.1:$DPORT .*answered in" "$T/out" || fail "server not reported as answering"
awk '/^  1\. mx1\.mx\.test  preference 10/{a=NR} /^  2\. mx2\.mx\.test  preference 20/{b=NR} END{exit !(a && b && a < b)}' \
	"$T/out" || fail "MX hosts not in preference order"
grep -q 'A    127.0.0.3' "$T/out" && grep -q 'AAAA ::1' "$T/out" || fail "A/AAAA of mx2 missing"
pass "preference order with A and AAAA, server timing"

ctl aonly.test || fail "implicit MX not used"
grep -q 'implicit MX' "$T/out" && grep -q '127.0.0.4' "$T/out" || fail "implicit MX not shown"
conf "127.0.0.1:$DPORT" "implicit_mx = no"
ctl aonly.test && fail "no MX with implicit_mx = no must not be deliverable"
grep -q 'permanent' "$T/out" || fail "no-MX reason missing: $(cat "$T/out")"
conf "127.0.0.1:$DPORT"
ctl null.test && fail "null MX deliverable"
grep -qi 'null' "$T/out" || fail "null MX not named: $(cat "$T/out")"
ctl nx.test && fail "NXDOMAIN deliverable"
grep -qi 'nxdomain' "$T/out" || fail "NXDOMAIN not named: $(cat "$T/out")"
ctl timeout.test && fail "a timed-out lookup reported deliverable"
grep -q 'temporary' "$T/out" || fail "timeout not temporary: $(cat "$T/out")"
pass "implicit MX on/off, null MX, NXDOMAIN, timeout: exit 1 with the reason"

conf "127.0.0.1:$HOLE;127.0.0.1:$DPORT"
ctl mx.test || fail "mx.test not deliverable through the second server: $(cat "$T/out")"
grep -q "127.0.0.1:$HOLE .*no answer" "$T/out" || fail "dead server not named: $(cat "$T/out")"
grep -q "127.0.0.1:$DPORT .*answered" "$T/out" || fail "live server not named"
conf "127.0.0.1:$HOLE"
ctl && fail "the server check passed with only a dead server"
pass "each configured server asked on its own; a dead one is named"
printf '[delivery]\ndns_servers = 127.0.0.1:x\n' >"$T/bad.conf"
set +e
"$RIPTIDECTL" -c "$T/bad.conf" test-dns mx.test 2>"$T/bad.err"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q 'bad.conf:2:' "$T/bad.err" || fail "bad dns_servers not refused with file:line"
pass "a bad dns_servers value is refused (exit 2, file:line)"
