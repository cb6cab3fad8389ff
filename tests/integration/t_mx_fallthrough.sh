#!/usr/bin/env bash
# Independent mode, walking the MX list within one attempt. Each domain's preference-10 host
# misbehaves and its preference-20 host (the healthy sink on 127.0.0.2) must get the mail in the
# same attempt (attempts=1): no listener (connection refused), a tarpit (-w 3000 against a 2 s
# greeting_timeout), a 421 greeting, a connection dropped at MAIL, and a host that 4xx-rejects
# one of two recipients (that one is offered to the next host). With first_mx_only = yes the
# 4xx-rejected recipient is deferred instead and delivered by the first host on the retry, and a
# refused first host still moves on (it did not connect). fallback_relay takes the mail at once
# when every MX host is unreachable or answers 4xx, or (implicit_mx = no) the domain has no MX;
# the log says via=fallback-relay, and healthy domains still go direct.
. "$(dirname "$0")/lib.sh"
DEAD1=127.0.0.9 DEAD2=127.0.0.10 # nothing listens there: connection refused
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.7 $DEAD1 $DEAD2)
zone=(--local-ttl=60)
# mx DOMAIN IP10 IP20: DOMAIN has mx1.DOMAIN (10) at IP10 and mx2.DOMAIN (20) at IP20.
mx() {
	zone+=("--mx-host=$1,mx1.$1,10" "--host-record=mx1.$1,$2")
	[ -z "${3:-}" ] || zone+=("--mx-host=$1,mx2.$1,20" "--host-record=mx2.$1,$3")
}
mx refuse.test $DEAD1 127.0.0.2
mx tarpit.test 127.0.0.3 127.0.0.2
mx g421.test 127.0.0.4 127.0.0.2
mx drop.test 127.0.0.5 127.0.0.2
mx partial.test 127.0.0.6 127.0.0.2
mx partial2.test 127.0.0.7 127.0.0.2
mx refuse2.test $DEAD1 127.0.0.2
mx dead.test $DEAD1 $DEAD2
mx all4.test 127.0.0.4
mx ok.test 127.0.0.2
zone+=(--host-record=noimpl.test,127.0.0.2)
start_dnsmasq main - "${zone[@]}"
dns_check refuse.test "^  1\. mx1\.refuse\.test  preference 10" "A +$DEAD1 " "^  2\. mx2\.refuse\.test  preference 20" 'A +127\.0\.0\.2 '
dns_check partial2.test 'A +127\.0\.0\.7 ' 'A +127\.0\.0\.2 '
dns_check dead.test "A +$DEAD1 " "A +$DEAD2 "
dns_check noimpl.test 'implicit MX' 'A +127\.0\.0\.2 '
start_sink_at 127.0.0.2 "$MX_PORT"                       # healthy
start_sink_at 127.0.0.3 "$MX_PORT" -w 3000               # tarpit
start_sink_at 127.0.0.4 "$MX_PORT" -g 421                # 421 greeting
start_sink_at 127.0.0.5 "$MX_PORT" --drop-after mail     # drops the connection
start_sink_at 127.0.0.6 "$MX_PORT" --reply rcpt/2=450    # 450 to every 2nd RCPT
start_sink_at 127.0.0.7 "$MX_PORT" --reply rcpt/2=450
for a in 127.0.0.3 127.0.0.4 127.0.0.5; do
	[ "$(sink_at_conns $a)" -eq 0 ] || fail "fixture: $a had a connection before the test"
done

# 1. Fall-through within one attempt (first_mx_only = no, the default).
write_mx_config </dev/null
start_riptide
for d in refuse tarpit g421 drop; do send_to "u@$d.test"; done
send_to a@partial.test,b@partial.test partial
for d in refuse tarpit g421 drop; do
	wait_until 20 rcpt_arrived "u@$d.test" 127.0.0.2 || fail "$d: u@$d.test not at the second MX"
	wait_until 10 dlog_line delivered "u@$d.test" " dest=$d\.test " " mx=mx2\.$d\.test " \
		" relay=127\.0\.0\.2:$MX_PORT " ' attempts=1 ' ||
		fail "$d: no delivered line via mx2 in the first attempt"
done
[ "$(sink_at 127.0.0.3 messages)" -eq 0 ] && [ "$(sink_at_conns 127.0.0.3)" -ge 1 ] ||
	fail "tarpit: not tried first, or it took the message"
[ "$(sink_at_conns 127.0.0.4)" -ge 1 ] && [ "$(sink_at_conns 127.0.0.5)" -ge 1 ] ||
	fail "421 / dropping hosts were not tried first"
[ "$(sink_at 127.0.0.5 messages)" -eq 0 ] || fail "the dropping host took a message"
pass "refused, tarpitting (greeting timeout), 421-greeting and dropping first MX: mail at MX 2, attempt 1"

wait_until 20 dlog_line delivered b@partial.test ' attempts=1 ' || fail "partial: b@ not delivered in attempt 1"
wait_until 20 dlog_line delivered a@partial.test ' attempts=1 ' || fail "partial: a@ not delivered in attempt 1"
n6=$(rcpts_at_domain 127.0.0.6 partial.test) n2=$(rcpts_at_domain 127.0.0.2 partial.test)
[ "$n6" -eq 1 ] && [ "$n2" -eq 1 ] || fail "partial: first MX took $n6, second $n2 (want 1 and 1)"
for r in a@partial.test b@partial.test; do
	[ $(($(rcpt_at 127.0.0.6 $r) + $(rcpt_at 127.0.0.2 $r))) -eq 1 ] || fail "partial: $r not exactly once"
done
dlog_line delivered a@partial.test ' mx=mx2\.partial\.test ' ||
	dlog_line delivered b@partial.test ' mx=mx2\.partial\.test ' ||
	fail "partial: the 450-rejected recipient is not logged as delivered via mx2"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty after phase 1"
pass "a recipient 450-rejected by MX 1 went to MX 2 in the same attempt; each recipient once"

# 2. first_mx_only = yes: the first host that connects ends the attempt.
write_mx_config <<'EOF'
[delivery]
first_mx_only = yes
EOF
start_riptide
send_to c@partial2.test,d@partial2.test partial2
send_to u@refuse2.test
wait_until 20 rcpt_arrived u@refuse2.test 127.0.0.2 || fail "first_mx_only: refused MX 1 did not move on to MX 2"
two_at_7() { [ "$(rcpts_at_domain 127.0.0.7 partial2.test)" -ge 2 ]; }
wait_until 20 two_at_7 || fail "first_mx_only: MX 1 has $(rcpts_at_domain 127.0.0.7 partial2.test) of 2 recipients"
deferred=
for r in c@partial2.test d@partial2.test; do
	[ "$(rcpt_at 127.0.0.7 $r)" -eq 1 ] || fail "first_mx_only: $r not exactly once at MX 1"
	if dlog_line deferred $r ' mx=mx1\.partial2\.test ' ' code=450 '; then deferred=$r; fi
done
[ -n "$deferred" ] || fail "first_mx_only: the 450-rejected recipient was not deferred at MX 1"
wait_until 10 dlog_line delivered "$deferred" ' mx=mx1\.partial2\.test ' ' attempts=2 ' ||
	fail "first_mx_only: $deferred not delivered by MX 1 on the retry"
[ "$(rcpts_at_domain 127.0.0.2 partial2.test)" -eq 0 ] || fail "first_mx_only: a recipient went to MX 2"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty after phase 2"
pass "first_mx_only: 450 at MX 1 deferred (not offered to MX 2), delivered there on the retry; refused MX 1 still skipped"

# 3. fallback_relay (implicit_mx = no): all MX unreachable, all 4xx, or no MX -> the relay at once.
start_sink
write_mx_config <<EOF
[delivery]
fallback_relay = 127.0.0.1:$SINK_PORT
implicit_mx = no
EOF
start_riptide
for d in dead all4 noimpl ok; do send_to "f@$d.test"; done
send_to "450-g@ok.test" # its only MX answers 450 to that recipient
for d in dead all4 noimpl; do
	wait_until 20 grep -q " f@$d.test " "$SINK_LOG" || fail "fallback: f@$d.test not at the fallback relay"
	wait_until 10 dlog_line delivered "f@$d.test" ' via=fallback-relay' " relay=127\.0\.0\.1:$SINK_PORT " \
		' attempts=1 ' || fail "fallback: $d's delivered line lacks via=fallback-relay / relay / attempts=1"
done
wait_until 20 rcpt_arrived f@ok.test 127.0.0.2 || fail "fallback: the healthy domain did not go direct"
wait_until 10 dlog_line delivered f@ok.test " relay=127\.0\.0\.2:$MX_PORT " || fail "fallback: f@ok.test not logged as direct"
dlog_line delivered f@ok.test ' via=fallback-relay' && fail "fallback: a healthy domain went via the relay"
grep -q ' f@ok.test ' "$SINK_LOG" && fail "fallback: f@ok.test reached the fallback relay"
[ "$(rcpt_at 127.0.0.2 f@noimpl.test)" -eq 0 ] || fail "implicit_mx = no, yet delivered to noimpl.test's A record"
# a recipient the last MX host answers with 450 goes to the fallback relay in the same attempt
# (riptide-sink answers 450 to a 450- local part there too: deferred, via the fallback relay)
wait_until 20 dlog_line deferred 450-g@ok.test ' via=fallback-relay' ' code=450 ' ' attempts=1 ' ||
	fail "fallback: a recipient 450-rejected by the last MX was not offered to the fallback relay"
stop_riptide
[ "$(queue_count)" -eq 1 ] || fail "phase 3: expected only the 450-g@ok.test message queued"
pass "fallback relay: unreachable MX, all-4xx MX, no MX (implicit off), a recipient 4xx'd by the last MX -> relay in attempt 1, logged via=fallback-relay"
