#!/usr/bin/env bash
# MX rollup, end to end (independent mode, mx_rollup = yes, dnsmasq, riptide-sinks on
# 127.0.0.x): r1.test and r2.test have the same MX hosts (mx1.site.test, mx2.site.test), r3.test
# another (mx.other.test). Once their MX answers are in riptide's DNS cache (a first message to
# each), a message to u@r1.test and v@r2.test reaches the site's MX as ONE transaction holding
# both recipients, logged with dest=mx:mx1.site.test,mx2.site.test; a recipient at r3.test in
# the same message goes on its own, to its own MX, under another destination.
. "$(dirname "$0")/lib.sh"
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3)
start_dnsmasq main - --local-ttl=300 \
	--mx-host=r1.test,mx1.site.test,10 --mx-host=r1.test,mx2.site.test,20 \
	--mx-host=r2.test,mx1.site.test,10 --mx-host=r2.test,mx2.site.test,20 \
	--host-record=mx1.site.test,127.0.0.2 --host-record=mx2.site.test,127.0.0.2 \
	--mx-host=r3.test,mx.other.test,10 --host-record=mx.other.test,127.0.0.3
dns_check r1.test '^  1\. mx1\.site\.test  preference 10' '^  2\. mx2\.site\.test  preference 20'
dns_check r2.test '^  1\. mx1\.site\.test  preference 10' '^  2\. mx2\.site\.test  preference 20'
dns_check r3.test '^  1\. mx\.other\.test  preference 10' 'A +127\.0\.0\.3 '
start_sink_at 127.0.0.2 "$MX_PORT"
start_sink_at 127.0.0.3 "$MX_PORT"
write_mx_config <<'EOF'
[delivery]
mx_rollup = yes
dns_min_ttl = 60s
EOF
# dns_min_ttl: dnsmasq's NODATA answers (AAAA of the MX hosts) carry no SOA, so they would have
# TTL 0 and never be cached, and a site is only known from a whole MX answer in the cache.
start_riptide

# Warm the DNS cache: one message per domain, each delivered.
send_to w1@r1.test w1
send_to w2@r2.test w2
send_to w3@r3.test w3
for r in w1@r1.test:127.0.0.2 w2@r2.test:127.0.0.2 w3@r3.test:127.0.0.3; do
	wait_until 20 rcpt_arrived "${r%:*}" "${r#*:}" || fail "${r%:*}: warm-up message not delivered"
done
SITE='mx:mx1\.site\.test,mx2\.site\.test'

# The message: two domains of one site and one of another.
send_to u@r1.test,v@r2.test,z@r3.test multi
wait_until 20 rcpt_arrived v@r2.test 127.0.0.2 || fail "v@r2.test not delivered"
wait_until 20 rcpt_arrived u@r1.test 127.0.0.2 || fail "u@r1.test not delivered"
wait_until 20 rcpt_arrived z@r3.test 127.0.0.3 || fail "z@r3.test not delivered"
grep -Eq ' (u@r1\.test,v@r2\.test|v@r2\.test,u@r1\.test) ' "$(sink_at_log 127.0.0.2)" ||
	fail "u@r1.test and v@r2.test did not travel in one transaction: $(grep -E '[uv]@r[12]\.test' "$(sink_at_log 127.0.0.2)")"
[ "$(rcpt_at 127.0.0.2 u@r1.test)" -eq 1 ] && [ "$(rcpt_at 127.0.0.2 v@r2.test)" -eq 1 ] ||
	fail "u@r1.test / v@r2.test delivered more than once"
for r in u@r1.test v@r2.test; do
	wait_until 5 dlog_line delivered $r " dest=$SITE " ||
		fail "$r: no delivered line with dest=mx:mx1.site.test,mx2.site.test: $(grep -F "<$r>" "$DLOG")"
done
pass "u@r1.test + v@r2.test (same MX hosts): one transaction at the site, dest=mx:mx1.site.test,mx2.site.test"
grep -E ' z@r3\.test ' "$(sink_at_log 127.0.0.3)" >/dev/null ||
	fail "z@r3.test did not travel alone: $(grep -F z@r3.test "$(sink_at_log 127.0.0.3)")"
[ "$(rcpt_at 127.0.0.2 z@r3.test)" -eq 0 ] || fail "z@r3.test reached the r1/r2 site's MX"
wait_until 5 dlog_line delivered z@r3.test ' dest=' || fail "z@r3.test: no delivered line"
dlog_line delivered z@r3.test " dest=$SITE " && fail "z@r3.test was logged under the r1/r2 site"
grep -F 'status=delivered to=<z@r3.test>' "$DLOG" | grep -o ' dest=[^ ]*'
pass "r3.test (other MX) kept apart: its own transaction at its own MX, another destination"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty"
