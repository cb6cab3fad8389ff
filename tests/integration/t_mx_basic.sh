#!/usr/bin/env bash
# Independent mode (MX delivery), the plain cases, against a real dnsmasq and riptide-sinks on
# 127.0.0.2-5 and ::1 sharing the daemon's MX `port`: the lowest preference gets the mail and the
# next one nothing; equal preferences share (never the worse one); a domain without MX gets its
# mail at its own address (implicit MX) and, with implicit_mx = no, fails without a connection;
# a null MX fails 5.1.10 and nothing connects to the domain's A record; NXDOMAIN fails 5.1.2; an
# MX whose only address is AAAA ::1 gets its mail. Every log line names dest, MX host and IP.
. "$(dirname "$0")/lib.sh"
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 ::1)
start_dnsmasq main - --local-ttl=60 \
	--mx-host=pref.test,mxb.pref.test,20 --mx-host=pref.test,mxa.pref.test,10 \
	--host-record=mxa.pref.test,127.0.0.2 --host-record=mxb.pref.test,127.0.0.3 \
	--mx-host=eq.test,mx1.eq.test,10 --mx-host=eq.test,mx2.eq.test,10 \
	--mx-host=eq.test,mx3.eq.test,30 --host-record=mx1.eq.test,127.0.0.2 \
	--host-record=mx2.eq.test,127.0.0.3 --host-record=mx3.eq.test,127.0.0.4 \
	--host-record=aonly.test,127.0.0.4 --host-record=aonly2.test,127.0.0.4 \
	--mx-host=null.test,.,0 --host-record=null.test,127.0.0.5 \
	--address=/nx.test/ \
	--mx-host=six.test,v6.six.test,10 --host-record=v6.six.test,::1
dns_check pref.test '^  1\. mxa\.pref\.test  preference 10' '^  2\. mxb\.pref\.test  preference 20'
dns_check eq.test '^  3\. mx3\.eq\.test  preference 30' 'A +127\.0\.0\.4'
dns_check aonly.test 'implicit MX' 'A +127\.0\.0\.4'
dns_check null.test '^null\.test: null-mx'
dns_check nx.test '^nx\.test: nxdomain'
dns_check six.test 'v6\.six\.test  preference 10' 'AAAA ::1'
for a in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 ::1; do start_sink_at "$a" "$MX_PORT"; done
write_mx_config </dev/null
start_riptide

# 1. Preference order: everything to mxa (10), nothing (not even a connection) to mxb (20).
for i in 1 2 3 4 5; do send_to "p$i@pref.test"; done
all_pref() { [ "$(rcpts_at_domain 127.0.0.2 pref.test)" -ge 5 ]; }
wait_until 20 all_pref || fail "pref.test: $(rcpts_at_domain 127.0.0.2 pref.test) of 5 at mxa"
for i in 1 2 3 4 5; do
	[ "$(rcpt_at 127.0.0.2 "p$i@pref.test")" -eq 1 ] || fail "p$i@pref.test not exactly once at mxa"
	wait_until 10 dlog_line delivered "p$i@pref.test" ' dest=pref\.test ' ' mx=mxa\.pref\.test ' \
		" relay=127\.0\.0\.2:$MX_PORT " ' code=250 ' ' attempts=1 ' ||
		fail "no delivered line naming dest, mx and relay for p$i@pref.test"
done
[ "$(sink_at_conns 127.0.0.3)" -eq 0 ] || fail "mxb (preference 20) was connected to"
pass "preference order: 5 of 5 to the preference-10 host, none to preference 20; log names dest/mx/relay"

# 2. Equal preferences: mx1 and mx2 (10) take all of it, mx3 (30) nothing.
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 20 -c 2 -d eq.test -L "$T/eq.blast" >"$T/eq.out" ||
	fail "blast eq.test: $(tail -n 1 "$T/eq.out")"
eq_done() { [ $(($(rcpts_at_domain 127.0.0.2 eq.test) + $(rcpts_at_domain 127.0.0.3 eq.test))) -ge 20 ]; }
wait_until 20 eq_done || fail "eq.test: only $(rcpts_at_domain 127.0.0.2 eq.test)+$(rcpts_at_domain 127.0.0.3 eq.test) of 20"
[ "$(rcpts_at_domain 127.0.0.4 eq.test)" -eq 0 ] || fail "eq.test mail went to the preference-30 host"
pass "equal preferences: 20 of 20 to the two preference-10 hosts ($(rcpts_at_domain 127.0.0.2 eq.test)/$(rcpts_at_domain 127.0.0.3 eq.test)), none to 30"

# 3. Implicit MX (default on): a domain with only an A record gets its mail there.
send_to i@aonly.test
wait_until 15 rcpt_arrived i@aonly.test 127.0.0.4 || fail "implicit MX: i@aonly.test not at 127.0.0.4"
wait_until 10 dlog_line delivered i@aonly.test ' dest=aonly\.test ' " relay=127\.0\.0\.4:$MX_PORT " ||
	fail "implicit MX: no delivered line with relay=127.0.0.4"
pass "implicit MX: delivered to the domain's own A record"

# 4. Null MX: fails 5.1.10 at once; nothing connects to null.test's A record (127.0.0.5).
send_to n@null.test
wait_until 15 dlog_line failed n@null.test ' dsn=5\.1\.10 ' ' attempts=0 ' ||
	fail "null MX: no failed line with dsn=5.1.10"
sleep 0.3 # the sink's stats file is rewritten every 100 ms
[ "$(sink_at_conns 127.0.0.5)" -eq 0 ] || fail "null MX: something connected to null.test's A record"
pass "null MX: failed 5.1.10 without any connection"

# 5. NXDOMAIN: permanent, 5.1.2.
send_to x@nx.test
wait_until 15 dlog_line failed x@nx.test ' dest=nx\.test ' ' dsn=5\.1\.2 ' ||
	fail "NXDOMAIN: no failed line with dsn=5.1.2"
pass "NXDOMAIN: failed 5.1.2"

# 6. IPv6: an MX with only AAAA ::1.
send_to v@six.test
wait_until 15 rcpt_arrived v@six.test ::1 || fail "IPv6: v@six.test not at [::1]:$MX_PORT"
wait_until 10 dlog_line delivered v@six.test ' mx=v6\.six\.test ' "relay=\[?::1\]?:$MX_PORT " ||
	fail "IPv6: delivered line does not name ::1"
pass "IPv6: delivered to the AAAA-only MX on ::1"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"

# 7. implicit_mx = no: the A-only domain fails permanently, nothing connects to its A record.
before=$(sink_at_conns 127.0.0.4)
write_mx_config <<'EOF'
[delivery]
implicit_mx = no
EOF
start_riptide
send_to j@aonly2.test
wait_until 15 dlog_line failed j@aonly2.test ' dest=aonly2\.test ' ' dsn=5\.' ||
	fail "implicit_mx = no: j@aonly2.test did not fail permanently"
sleep 0.3
[ "$(sink_at_conns 127.0.0.4)" -eq "$before" ] || fail "implicit_mx = no: the A record was connected to"
[ "$(rcpt_at 127.0.0.4 j@aonly2.test)" -eq 0 ] || fail "implicit_mx = no: mail delivered to the A record"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty after implicit_mx = no"
pass "implicit_mx = no: a domain without MX fails 5.x.x, no connection"
