#!/usr/bin/env bash
# Egress pools and header rewrite (issue 9), end to end, relay mode to one riptide-sink on
# 127.0.0.1 that logs each message's peer address and EHLO name (--log-peer) and saves bodies:
#  - [pool p1] (127.0.0.2 helo2.test, 127.0.0.3 helo3.test): messages with X-Riptide-Pool: p1
#    leave from both addresses (one message per connection), each with its EHLO name;
#    [pool p2] (127.0.0.4, no name: helo_name) gets the p2 messages (field name in any case);
#    messages without the field leave from default_pool (127.0.0.5), or, without a default
#    pool, from the kernel's choice (127.0.0.1) with helo_name;
#  - the X-Riptide-Pool field is not in any delivered message; an unknown pool is refused with
#    550 5.6.0 at the end of DATA and nothing is queued;
#  - [rewrite] john@internal.test = john@example.com rewrites From (display name kept), Sender
#    and Reply-To, not Cc, not the body, not the envelope sender, nor other addresses.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_route.sh"

PR=$(free_port)
nsink relay 127.0.0.1 "$PR"
# shellcheck disable=SC2034 # read by arrives (lib_route.sh)
SINKS=(relay)
pools_conf() { # pools_conf DEFAULT_POOL_LINE
	RELAY_PORT=$PR write_config <<EOF
[delivery]
helo_name = default.test
max_messages_per_connection = 1
$1
[pool p1]
sources = 127.0.0.2 helo2.test, 127.0.0.3 helo3.test
[pool p2]
sources = 127.0.0.4
[pool pd]
sources = 127.0.0.5 helo5.test
[rewrite]
john@internal.test = john@example.com
EOF
	"$RIPTIDE" -c "$CONF" --print-config >"$T/print.out" 2>&1 || fail "config refused: $(cat "$T/print.out")"
}
pools_conf 'default_pool = pd'
start_riptide

# pairs PREFIX: the distinct "peer=ADDR helo=NAME" pairs of the sink's lines whose recipient
# starts with PREFIX, one per line, with counts ("N peer=... helo=...").
pairs() {
	awk -v p="$1" 'index($3, p) == 1 { print $(NF - 1), $NF }' "$(ns_log relay)" | sort | uniq -c |
		sed 's/^ *//'
}

specs=()
for i in $(seq 20); do specs+=("p1-$i@dst.test|X-Riptide-Pool: p1"); done
for i in $(seq 5); do specs+=("p2-$i@dst.test|X-Riptide-Pool: p2" "p2l-$i@dst.test|Subject: l$i|X-Mailer: x|x-riptide-pool:  p2 |Comments: after"); done
for i in $(seq 5); do specs+=("nopool-$i@dst.test"); done
send_all pools1 s@sender.test "${specs[@]}"
smtp_send pools-bad s@sender.test "bad@dst.test|X-Riptide-Pool: nosuch"
grep -Eq '^bad@dst\.test 550 5\.6\.0 ' "$T/send-pools-bad.out" ||
	fail "unknown pool: want 550 5.6.0, got: $(cat "$T/send-pools-bad.out")"

got_all() { [ "$(ns_msgs relay)" -ge 35 ]; }
wait_until 30 got_all || fail "only $(ns_msgs relay) of 35 messages at the sink"
sleep 0.5

p1=$(pairs p1-)
[ "$(echo "$p1" | grep -cv -E '^[0-9]+ peer=127\.0\.0\.(2 helo=helo2|3 helo=helo3)\.test$')" -eq 0 ] ||
	fail "p1 messages from elsewhere or with a wrong EHLO name: $(echo $p1)"
n2=$(echo "$p1" | sed -n 's/^\([0-9]*\) peer=127\.0\.0\.2 .*/\1/p')
n3=$(echo "$p1" | sed -n 's/^\([0-9]*\) peer=127\.0\.0\.3 .*/\1/p')
[ "${n2:-0}" -ge 1 ] && [ "${n3:-0}" -ge 1 ] && [ $((n2 + n3)) -eq 20 ] ||
	fail "p1: want 20 messages from both 127.0.0.2 and 127.0.0.3, got: $(echo $p1)"
[ "$(ns_conns relay)" -ge 35 ] || fail "$(ns_conns relay) connections for 35 messages (max 1 per connection)"
pass "pool p1: 20 messages over $(ns_conns relay) connections (all pools), from 127.0.0.2 ($n2, helo2.test) and 127.0.0.3 ($n3, helo3.test)"

p2=$(pairs p2)
[ "$p2" = "10 peer=127.0.0.4 helo=default.test" ] || fail "pool p2: want 10 from 127.0.0.4 helo=default.test, got: $(echo $p2)"
pass "pool p2: 10 messages (field name in either case) from 127.0.0.4 with helo_name"
pd=$(pairs nopool-)
[ "$pd" = "5 peer=127.0.0.5 helo=helo5.test" ] || fail "no field: want 5 from default_pool 127.0.0.5, got: $(echo $pd)"
pass "no X-Riptide-Pool: default_pool pd (127.0.0.5, helo5.test)"

nf=$(find "$T/s-relay.d" -name '*.eml' | wc -l)
[ "$nf" -eq 35 ] || fail "$nf bodies saved, want 35"
grep -ril '^x-riptide-pool' "$T/s-relay.d" >/dev/null && fail "X-Riptide-Pool field delivered: $(grep -ril '^x-riptide-pool' "$T/s-relay.d" | head -n 1)"
grep -l 'body line' "$T/s-relay.d"/*.eml | wc -l | grep -qx 35 || fail "not every saved body has its body line"
# The field in the middle of the header (p2l-*): the fields around it are kept, in order.
nmid=$(grep -l '^Comments: after' "$T/s-relay.d"/*.eml | xargs -r awk '/^X-Mailer: x\r?$/ { m = 1 }
	m && /^Comments: after/ { n++; m = 0 } END { print n + 0 }')
[ "$nmid" -eq 5 ] || fail "fields around a removed X-Riptide-Pool lost or reordered ($nmid of 5 intact)"
pass "the X-Riptide-Pool field is in none of the 35 delivered messages"

[ "$(ns_rcpt relay bad@dst.test)" -eq 0 ] || fail "the unknown-pool message was delivered"
nq=$(grep -c 'status=queued' "$DLOG" || true)
[ "$nq" -eq 35 ] || fail "$nq queued lines, want 35 (the unknown-pool message must not be queued)"
pass "unknown pool: 550 5.6.0 at the end of DATA, nothing queued"

# Header rewrite.
swaks --server "127.0.0.1:$INJ_PORT" --from john@internal.test --to rw@dst.test \
	--header 'From: "John" <John@Internal.test>' --header 'Reply-To: john@internal.test' \
	--header 'Sender: JOHN@internal.test' --header 'Cc: john@internal.test' \
	--header 'Subject: rewrite-1' \
	--body $'Hello,\r\nplease write to john@internal.test from now on.\r\n' >"$T/swaks-rw.out" 2>&1 ||
	fail "swaks rewrite: $(tail -n 3 "$T/swaks-rw.out")"
swaks --server "127.0.0.1:$INJ_PORT" --from mary@internal.test --to rw2@dst.test \
	--header 'From: Mary <mary@internal.test>' --header 'Subject: rewrite-2' >"$T/swaks-rw2.out" 2>&1 ||
	fail "swaks rewrite 2: $(tail -n 3 "$T/swaks-rw2.out")"
wait_until 15 ns_has relay rw@dst.test || fail "rewrite message not delivered"
wait_until 15 ns_has relay rw2@dst.test || fail "second rewrite message not delivered"
sleep 0.3
f=$(grep -l '^Subject: rewrite-1' "$T/s-relay.d"/*.eml | head -n 1)
[ -n "$f" ] || fail "rewrite message body not saved"
hdr() { awk -v h="$1" 'BEGIN { IGNORECASE = 1 } /^\r?$/ { exit } tolower($0) ~ "^" tolower(h) ":" { print }' "$f" | tr -d '\r'; }
from=$(hdr From) rto=$(hdr Reply-To) snd=$(hdr Sender) cc=$(hdr Cc)
[[ $from == *'"John"'* && $from == *'<john@example.com>'* ]] ||
	fail "From not rewritten with its display name kept: '$from'"
[[ ${from,,} != *internal.test* ]] || fail "From still names internal.test: '$from'"
[[ ${rto,,} == *john@example.com* && ${rto,,} != *internal.test* ]] || fail "Reply-To not rewritten: '$rto'"
[[ ${snd,,} == *john@example.com* && ${snd,,} != *internal.test* ]] || fail "Sender not rewritten: '$snd'"
[ "$cc" = 'Cc: john@internal.test' ] || fail "Cc changed: '$cc'"
grep -q '^please write to john@internal.test from now on\.' "$f" || fail "body line changed: $(tail -n 3 "$f")"
ns_line relay rw@dst.test | awk '{ exit !($2 == "john@internal.test") }' ||
	fail "envelope sender changed: $(ns_line relay rw@dst.test)"
f2=$(grep -l '^Subject: rewrite-2' "$T/s-relay.d"/*.eml | head -n 1)
grep -q '^From: Mary <mary@internal.test>' "$f2" || fail "an address without a rule was changed: $(grep '^From:' "$f2")"
pass "rewrite: From (display name kept), Sender, Reply-To rewritten; Cc, body, envelope sender and other addresses untouched"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue holds $(queue_count)"

# Without default_pool: mail without the field leaves from the kernel's choice with helo_name.
rm -rf "$SPOOL" "$DLOG"
pools_conf ''
start_riptide
send_all pools2 s@sender.test "none-1@dst.test" "none-2@dst.test" "p1x-1@dst.test|X-Riptide-Pool: p1"
wait_until 15 ns_has relay none-2@dst.test || fail "no-pool messages not delivered"
wait_until 15 ns_has relay p1x-1@dst.test || fail "p1 message not delivered (second run)"
nd=$(pairs none-)
[ "$nd" = "2 peer=127.0.0.1 helo=default.test" ] || fail "no default pool: want 2 from 127.0.0.1 helo=default.test, got: $(echo $nd)"
pairs p1x- | grep -Eq '^1 peer=127\.0\.0\.[23] helo=helo[23]\.test$' || fail "p1 (second run): $(pairs p1x-)"
pass "no default_pool: mail without the field from 127.0.0.1 with helo_name; p1 still from its sources"

# SIGHUP: a new default pool and a new alias apply to mail injected after the reload.
sed -i 's/^john@internal.test = john@example.com$/john@internal.test = jo@example.org/' "$CONF"
printf '[delivery]\ndefault_pool = p2\n' >>"$CONF"
kill -HUP "$RIPTIDE_PID"
wait_until 10 grep -q 'SIGHUP: reloaded .* 3 pools, 1 rewrite rules' "$T/riptide.err" ||
	fail "no reload line: $(grep SIGHUP "$T/riptide.err")"
send_all pools3 john@internal.test 'hup-1@dst.test|From: "John" <john@internal.test>|Subject: hup-1'
arrives relay hup-1@dst.test "message after the reload not delivered"
[ "$(pairs hup-)" = "1 peer=127.0.0.4 helo=default.test" ] || fail "after the reload: want default pool p2 (127.0.0.4), got: $(pairs hup-)"
f3=$(grep -l '^Subject: hup-1' "$T/s-relay.d"/*.eml | head -n 1)
grep -q '^From: "John" <jo@example.org>' "$f3" || fail "after the reload: $(grep '^From:' "$f3")"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue holds $(queue_count) after the second run"
pass "SIGHUP: the new default_pool (p2) and the new alias apply to mail injected after the reload"
