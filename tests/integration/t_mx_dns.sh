#!/usr/bin/env bash
# Independent mode and DNS, witnessed by dnsmasq's --log-queries log:
# 1. a lookup that times out (dnsmasq forwards late.test to a UDP socket that never answers)
#    defers with 4.4.3, never bounces, and the mail goes out once dnsmasq (restarted on the same
#    port with the record) answers;
# 2. the shared cache: 30 messages to one domain within its TTL (8 s) cost one MX query (and one
#    A query of its host); after the TTL the next message asks again;
# 3. explicit dns_servers that never answer: without dns_fallback_auto the mail is deferred
#    (4.4.3); with it the servers of resolv_conf (a temporary file naming a second dnsmasq)
#    answer and the mail is delivered.
. "$(dirname "$0")/lib.sh"
TTL=8
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3)
start_udp_hole
zone=("--local-ttl=$TTL" --mx-host=cache.test,mx.cache.test,10 --host-record=mx.cache.test,127.0.0.2)
start_dnsmasq main - "${zone[@]}" --server="/late.test/127.0.0.1#$HOLE_PORT"
MAIN_PORT=${DNSMASQ_PORT[main]}
dns_check u.late.test '^u\.late\.test: tempfail \(temporary'
dns_check cache.test "^  1\. mx\.cache\.test  preference 10, ttl ${TTL}s" 'A +127\.0\.0\.2 '
start_sink_at 127.0.0.2 "$MX_PORT"
start_sink_at 127.0.0.3 "$MX_PORT"
write_mx_config </dev/null
start_riptide

# 1. DNS timeout: deferred 4.4.3 (twice: it is retried), then delivered once DNS answers.
send_to u@late.test
two_deferrals() { [ "$(grep -c 'status=deferred to=<u@late.test>.* dsn=4\.4\.3 ' "$DLOG")" -ge 2 ]; }
wait_until 20 two_deferrals || fail "late.test: not deferred 4.4.3 twice"
dlog_line failed u@late.test && fail "late.test: a DNS timeout bounced the mail"
mx_retried() { [ "$(dns_queries main MX late.test)" -ge 2 ]; }
wait_until 10 mx_retried || fail "late.test: the MX lookup was not retried"
stop_dnsmasq main
start_dnsmasq main "$MAIN_PORT" "${zone[@]}" \
	--mx-host=late.test,mx.late.test,10 --host-record=mx.late.test,127.0.0.3
dns_check late.test 'A +127\.0\.0\.3 '
wait_until 20 rcpt_arrived u@late.test 127.0.0.3 || fail "late.test: not delivered after DNS came back"
# the deferrals tried no connection: they are not attempts (the delivery is the first)
grep -q 'status=deferred to=<u@late.test>.* attempts=0 ' "$DLOG" || fail "late.test: a DNS deferral counted as an attempt"
wait_until 10 dlog_line delivered u@late.test ' dest=late\.test ' ' mx=mx\.late\.test ' ' attempts=1 ' ||
	fail "late.test: no delivered line (attempts=1) after the deferrals"
pass "DNS timeout: deferred 4.4.3 (retried, never bounced), delivered once the server answers"

# 2. The cache: one MX query for many messages within the TTL, a new one after it.
q0=$(dns_queries main MX cache.test) # dns_check's queries: the daemon's are counted from here
a0=$(dns_queries main A mx.cache.test)
t0=$SECONDS
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 30 -c 3 -d cache.test -L "$T/cache.blast" >"$T/cache.out" ||
	fail "blast cache.test: $(tail -n 1 "$T/cache.out")"
thirty() { [ "$(rcpts_at_domain 127.0.0.2 cache.test)" -ge 30 ]; }
wait_until 20 thirty || fail "cache.test: $(rcpts_at_domain 127.0.0.2 cache.test) of 30 delivered"
[ $((SECONDS - t0)) -lt "$TTL" ] || fail "cache.test: the batch took $((SECONDS - t0)) s, longer than the TTL; cannot judge"
q1=$(dns_queries main MX cache.test)
a1=$(dns_queries main A mx.cache.test)
[ $((q1 - q0)) -eq 1 ] || fail "cache: $((q1 - q0)) MX queries for 30 messages within the TTL (want 1)"
[ $((a1 - a0)) -eq 1 ] || fail "cache: $((a1 - a0)) A queries for mx.cache.test within the TTL (want 1)"
sleep $((TTL + 1))
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 1 -c 1 -d cache.test -L "$T/cache2.blast" >"$T/cache2.out" ||
	fail "blast cache.test after the TTL"
thirtyone() { [ "$(rcpts_at_domain 127.0.0.2 cache.test)" -ge 31 ]; }
wait_until 20 thirtyone || fail "cache.test: the message after the TTL was not delivered"
q2=$(dns_queries main MX cache.test)
[ $((q2 - q1)) -ge 1 ] || fail "cache: no new MX query after the TTL expired"
pass "cache: 30 messages within the TTL -> 1 MX query ($((q1 - q0))); after the TTL -> asked again ($((q2 - q1)))"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty after parts 1-2"

# 3. Explicit servers falling back to auto (resolv_conf names a second dnsmasq).
start_dnsmasq fb - --local-ttl=60 --mx-host=fb.test,mx.fb.test,10 --host-record=mx.fb.test,127.0.0.3
dns_check fb.test 'A +127\.0\.0\.3 '
printf '# riptide test: the "auto" servers\nnameserver 127.0.0.1:%s\n' "$DNS_PORT" >"$T/resolv.conf"
fbq=$(dns_queries fb MX fb.test)
write_mx_config <<EOF
[delivery]
dns_servers = 127.0.0.1:$HOLE_PORT
dns_fallback_auto = no
resolv_conf = $T/resolv.conf
EOF
start_riptide
send_to f@fb.test
wait_until 20 dlog_line deferred f@fb.test ' dsn=4\.4\.3 ' || fail "fallback off: f@fb.test not deferred 4.4.3"
[ "$(dns_queries fb MX fb.test)" -eq "$fbq" ] || fail "fallback off: resolv.conf's server was asked"
[ "$(rcpt_at 127.0.0.3 f@fb.test)" -eq 0 ] || fail "fallback off: delivered anyway"
stop_riptide
[ "$(queue_count)" -eq 1 ] || fail "fallback off: the deferred message is not queued"
write_mx_config <<EOF
[delivery]
dns_servers = 127.0.0.1:$HOLE_PORT
dns_fallback_auto = yes
resolv_conf = $T/resolv.conf
EOF
start_riptide
wait_until 20 rcpt_arrived f@fb.test 127.0.0.3 || fail "fallback on: f@fb.test not delivered"
[ "$(dns_queries fb MX fb.test)" -gt "$fbq" ] || fail "fallback on: resolv.conf's server was not asked"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty at the end"
pass "dns_fallback_auto: off -> deferred 4.4.3; on -> resolv_conf's server answers, delivered"
