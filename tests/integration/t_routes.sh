#!/usr/bin/env bash
# Static routes (issue 9), end to end: riptide-sinks on 127.0.0.x, dnsmasq giving every test
# domain the MX host 127.0.0.2 (the default route, independent mode). Which sink receives a
# message tells which route it took:
#  1. selection: [route a.test] beats [route *.a.test] for a.test; x.a.test and y.z.a.test take
#     the wildcard (one destination, named after the route); *.w.test does not cover w.test; a
#     route with enabled = no is not used (its mail takes the MX);
#  2. hosts lists: tried in order (both up: only the first gets mail; the first down: the
#     second); all down with fallback_to_default = yes: the domain's MX; with = no: deferred;
#  3. per-route lifetime: [route slow.test] (lifetime = 3s) with a dead host fails 5.4.7 in a few
#     seconds (with a failure notice) while keep.test (default lifetime 5d) keeps being deferred;
#  4. SIGHUP with static_routes = no: new mail takes the MX, and mail deferred on a route is
#     delivered by the default route;
#  5. relay mode (relay = sink A): [route r.test] mode = relay to sink B with AUTH gets r.test's
#     mail at B (auth= in B's log), other domains go to A, a hosts route with fallback falls
#     back to the relay, and riptide's stderr says the routes apply in relay mode.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_route.sh"

DOMS="a.test x.a.test y.z.a.test w.test dis.test order.test hfail.test fb.test nofb.test \
slow.test keep.test plain.test sender.test own.test rr.test mxd.test"
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3)
mxargs=('--host-record=mx.test,127.0.0.2')
for d in $DOMS; do mxargs+=("--mx-host=$d,mx.test,10"); done
start_dnsmasq main - --local-ttl=60 "${mxargs[@]}"
dns_check y.z.a.test '^  1\. mx\.test  preference 10' 'A +127\.0\.0\.2'
MAIN_DNS=$DNS_PORT
# A second zone, only for [route own.test]'s own dns_servers: own.test's MX is 127.0.0.3 there.
start_dnsmasq own - --local-ttl=60 --mx-host=own.test,mx3.test,10 --host-record=mx3.test,127.0.0.3
dns_check own.test '^  1\. mx3\.test  preference 10' 'A +127\.0\.0\.3'
OWN_DNS=$DNS_PORT
DNS_PORT=$MAIN_DNS
nsink mx 127.0.0.2 "$MX_PORT"
nsink mx3 127.0.0.3 "$MX_PORT"
read -r PE PW P1 P2 D1 D2 D3 D4 D5 PA PB <<<"$(free_ports 11)"
nsink exact 127.0.0.1 "$PE"
nsink wild 127.0.0.1 "$PW"
nsink h1 127.0.0.1 "$P1"
nsink h2 127.0.0.1 "$P2"
# D1..D5: ports nothing listens on (connection refused at once); PA, PB: relays of part 5.
SINKS=(mx mx3 exact wild h1 h2)

write_mx_config <<EOF
[delivery]
helo_name = riptide.test
[route a.test]
hosts = 127.0.0.1:$PE
[route *.a.test]
hosts = 127.0.0.1:$PW
[route *.w.test]
hosts = 127.0.0.1:$PW
[route dis.test]
enabled = no
hosts = 127.0.0.1:$PE
[route order.test]
hosts = 127.0.0.1:$P1 127.0.0.1:$P2
[route hfail.test]
hosts = 127.0.0.1:$D1 127.0.0.1:$P2
[route fb.test]
hosts = 127.0.0.1:$D2, 127.0.0.1:$D3
fallback_to_default = yes
[route nofb.test]
hosts = 127.0.0.1:$D2 127.0.0.1:$D3
fallback_to_default = no
[route slow.test]
hosts = 127.0.0.1:$D4
lifetime = 3s
retry_delay = 1s
[route keep.test]
hosts = 127.0.0.1:$D5
[route own.test]
mode = independent
dns_servers = 127.0.0.1:$OWN_DNS
[route rr.test]
mode = relay
relay = 127.0.0.1:$P2
EOF
"$RIPTIDE" -c "$CONF" --print-config >"$T/print1.out" 2>&1 || fail "config refused: $(cat "$T/print1.out")"
start_riptide
wait_until 5 grep -q 'riptide: 11 static routes in use' "$T/riptide.err" ||
	fail "start-up line does not count 11 routes in use: $(grep routes "$T/riptide.err")"

# only_at RCPT SINK: RCPT arrived at SINK exactly once and at no other sink.
only_at() {
	local got
	got=$(where "$1" "${SINKS[@]}")
	[ "$got" = "$2" ] || fail "$1: expected at sink '$2', found at '${got:-nowhere}'"
	[ "$(ns_rcpt "$2" "$1")" -eq 1 ] || fail "$1: $(ns_rcpt "$2" "$1") copies at $2"
}

# 3 (sent first: it takes the longest): slow.test, lifetime 3s, its only host down; then 1 and 2.
send_all routes1 s@sender.test u@slow.test u@keep.test u@a.test u@x.a.test u@y.z.a.test u@w.test \
	u@dis.test u@order.test u@hfail.test u@fb.test u@nofb.test u@plain.test u@own.test u@rr.test

arrives exact u@a.test "u@a.test not at the exact route's host"
arrives wild u@x.a.test "u@x.a.test not at the wildcard route's host"
arrives wild u@y.z.a.test "u@y.z.a.test not at the wildcard route's host"
for r in u@w.test u@dis.test u@plain.test; do
	arrives mx "$r" "$r not at the MX host (default route)"
done
sleep 0.5
only_at u@a.test exact
only_at u@x.a.test wild
only_at u@y.z.a.test wild
wait_until 5 dlog_line delivered u@a.test ' dest=a\.test ' "relay=127\.0\.0\.1:$PE " ||
	fail "no delivered line for u@a.test with dest=a.test relay=127.0.0.1:$PE"
wait_until 5 dlog_line delivered u@y.z.a.test ' dest=\*\.a\.test ' "relay=127\.0\.0\.1:$PW " ||
	fail "no delivered line for u@y.z.a.test with dest=*.a.test"
pass "route selection: a.test -> exact route, x.a.test and y.z.a.test -> [route *.a.test] (dest=*.a.test)"
only_at u@w.test mx
pass "[route *.w.test] does not cover w.test itself (MX)"
only_at u@dis.test mx
only_at u@plain.test mx
pass "a route with enabled = no is not used: dis.test went to its MX like an unrouted domain"

arrives h1 u@order.test "u@order.test not at the first host of its list"
arrives h2 u@hfail.test "u@hfail.test not at the second host (first down)"
sleep 0.3
only_at u@order.test h1
[ "$(ns_conns h2)" -ge 1 ] || fail "h2 shows no connection"
only_at u@hfail.test h2
wait_until 5 dlog_line delivered u@hfail.test ' dest=hfail\.test ' "relay=127\.0\.0\.1:$P2 " ||
	fail "no delivered line for u@hfail.test naming 127.0.0.1:$P2"
pass "hosts list: first host takes it when up; first down -> second host"

arrives mx u@fb.test "fb.test (hosts down, fallback_to_default = yes) not at its MX"
only_at u@fb.test mx
wait_until 10 dlog_line deferred u@nofb.test || fail "nofb.test (hosts down, no fallback) not deferred"
[ "$(where u@nofb.test "${SINKS[@]}")" = "" ] || fail "nofb.test delivered somewhere"
arrives mx3 u@own.test "own.test not at the MX its route's own dns_servers give"
arrives h2 u@rr.test "rr.test (mode = relay route in independent mode) not at its relay"
sleep 0.3
only_at u@own.test mx3
only_at u@rr.test h2
pass "independent route with its own dns_servers -> that zone's MX; relay route in independent mode -> its relay"
pass "hosts all down: fallback_to_default = yes -> the domain's MX; = no -> deferred"

wait_until 20 dlog_line failed u@slow.test ' dsn=5\.4\.7 ' ||
	fail "slow.test (lifetime = 3s) did not fail 5.4.7: $(grep slow.test "$DLOG" | tail -n 2)"
took=$(grep 'status=failed to=<u@slow.test>' "$DLOG" | sed -n 's/.* delay=\([0-9]*\)\..*/\1/p' | head -n 1)
[ -n "$took" ] && [ "$took" -ge 3 ] && [ "$took" -le 8 ] ||
	fail "slow.test failed after delay=${took:-?}s (want 3..8 s)"
dlog_has 'status=failed to=<u@keep\.test>' && fail "keep.test (default lifetime) failed too"
nk=$(grep -c 'status=deferred to=<u@keep.test>' "$DLOG" || true)
[ "$nk" -ge 2 ] || fail "keep.test deferred $nk times (want >= 2 by now)"
bounced() { awk '$2 == "<>"' "$(ns_log mx)" | grep -q 's@sender\.test'; }
wait_until 10 bounced || fail "no failure notice for slow.test reached s@sender.test"
sleep 2
dlog_has 'status=failed to=<u@keep\.test>' && fail "keep.test failed after slow.test"
pass "per-route lifetime: slow.test failed 5.4.7 after ${took}s (notice sent); keep.test still deferred ($nk+ times)"

# 4. static_routes = no by SIGHUP: everything takes the default route (MX).
printf '[delivery]\nstatic_routes = no\n' >>"$CONF"
kill -HUP "$RIPTIDE_PID"
reloaded() { grep -q 'SIGHUP: reloaded .*(0 in use)' "$T/riptide.err"; }
wait_until 10 reloaded || fail "no reload line with 0 routes in use: $(grep SIGHUP "$T/riptide.err")"
send_all routes2 s@sender.test v@a.test v@x.a.test v@order.test
for r in v@a.test v@x.a.test v@order.test; do
	arrives mx "$r" "$r not at the MX after static_routes = no"
done
sleep 0.3
for r in v@a.test v@x.a.test v@order.test; do only_at "$r" mx; done
pass "SIGHUP with static_routes = no: a.test, x.a.test, order.test now go to their MX"
arrives mx u@nofb.test "deferred nofb.test mail not delivered by the MX after the reload"
arrives mx u@keep.test "deferred keep.test mail not delivered by the MX after the reload"
pass "mail deferred on a route (nofb.test, keep.test) delivered by the default route after the reload"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue holds $(queue_count) after the independent-mode part"

# 5. Relay mode: the routes still apply.
rm -rf "$SPOOL" "$DLOG"
nsink relayA 127.0.0.1 "$PA"
nsink relayB 127.0.0.1 "$PB" --auth ruser:rpass-9 --auth-plaintext --auth-required
SINKS=(mx mx3 exact wild h1 h2 relayA relayB)
RELAY_PORT=$PA write_config <<EOF
[delivery]
helo_name = riptide.test
[route r.test]
mode = relay
relay = 127.0.0.1:$PB
auth_user = ruser
auth_password = rpass-9
auth_plaintext = yes
tls = none
[route order.test]
hosts = 127.0.0.1:$P1 127.0.0.1:$P2
[route fbr.test]
hosts = 127.0.0.1:$D2 127.0.0.1:$D3
fallback_to_default = yes
[route mxd.test]
mode = independent
dns_servers = 127.0.0.1:$DNS_PORT
dns_timeout = 500ms
dns_tries = 1
port = $MX_PORT
EOF
chmod 600 "$CONF"
"$RIPTIDE" -c "$CONF" --print-config >"$T/print2.out" 2>&1 || fail "relay config refused: $(cat "$T/print2.out")"
start_riptide
wait_until 5 grep -q 'riptide: 4 static routes in use: in relay mode they still apply' "$T/riptide.err" ||
	fail "stderr does not say the 4 routes apply in relay mode: $(grep -i route "$T/riptide.err")"
send_all routes3 s@sender.test w@r.test w@other.test w@order.test w@fbr.test w@mxd.test
arrives relayB w@r.test "w@r.test not at the route's relay B"
arrives relayA w@other.test "w@other.test not at the default relay A"
arrives h1 w@order.test "w@order.test not at its route's first host"
arrives relayA w@fbr.test "w@fbr.test (hosts down, fallback) not at the relay"
sleep 0.3
only_at w@r.test relayB
only_at w@other.test relayA
only_at w@order.test h1
only_at w@fbr.test relayA
ns_line relayB w@r.test | grep -q ' auth=ruser\b' || fail "relay B's line lacks auth=ruser: $(ns_line relayB w@r.test)"
ns_line relayA w@other.test | grep -q ' auth=' && fail "relay A saw AUTH: $(ns_line relayA w@other.test)"
pass "relay mode: r.test -> its route's relay with AUTH (auth=ruser), other.test -> the relay, order.test -> its hosts, fbr.test falls back to the relay"
grep -qF 'rpass-9' "$DLOG" "$T/riptide.err" && fail "the route's password is in the log or stderr"
pass "stderr names the static routes in relay mode; no password logged"

# Last (the checks above do not depend on it): a mode = independent route in relay mode, with
# its own dns_servers and MX port, gets w@mxd.test to the MX host 127.0.0.2:$MX_PORT.
wait_until 15 ns_has mx w@mxd.test ||
	fail "w@mxd.test (mode = independent route with port = $MX_PORT, in relay mode) not at its MX: $(grep 'to=<w@mxd.test>' "$DLOG" | tail -n 1)"
sleep 0.3
only_at w@mxd.test mx
pass "relay mode: mxd.test (route mode = independent, own dns_servers and port) -> its MX"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue holds $(queue_count) after the relay-mode part"
