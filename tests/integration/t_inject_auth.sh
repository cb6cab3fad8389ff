#!/usr/bin/env bash
# Injection AUTH and access control (issue #8), with swaks as the client: AUTH PLAIN and LOGIN
# over the UNIX socket against a users file made by mkpasswd (SHA-512 and yescrypt), a wrong
# password answered 535 after the tarpit, sender_policy = own_domain (553 5.7.1), AUTH refused
# without TLS (538, not advertised), an untrusted client (bound to 127.0.0.2, only 127.0.0.1
# trusted) refused with 530 5.7.0 at RCPT except for relay_domains, max_rset, VRFY and EXPN;
# the queued log lines name the login; no password reaches the log, stderr or --print-config;
# a malformed users file stops the start (exit 2, file:line), a readable one gets a warning.
# (AUTH over STARTTLS comes with the TLS listener.)
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
command -v mkpasswd >/dev/null || fail "mkpasswd is missing (Debian package whois: tools/deps)"
start_sink
PW_A='alice-Pw-7c1e'
PW_B='bob-Pw-52aa'
PW_BAD='wrong-Pw-0d9f'
USERS=$T/users
{
	echo "# injection users"
	printf 'alice@x.test:%s\n' "$(mkpasswd -m sha-512 "$PW_A")"
	printf 'bob:%s:bob.test\n' "$(mkpasswd -m yescrypt "$PW_B")"
} >"$USERS"
chmod 600 "$USERS"
write_config <<EOF2
[inject]
auth_users_file = $USERS
trusted_networks = 127.0.0.1/32
relay_domains = relay.test
sender_policy = own_domain
max_rset = 3
EOF2
start_riptide
SOCK=$T/inject.sock

# swaks_unix TAG ARGS...: swaks over the UNIX socket, its transcript in $T/swaks-TAG.out.
swaks_unix() {
	local tag=$1
	shift
	swaks --socket "$SOCK" --header "Subject: $tag" "$@" >"$T/swaks-$tag.out" 2>&1
}
has() { grep -qF -- "$2" "$T/swaks-$1.out"; }

swaks_unix plain --auth PLAIN --auth-user alice@x.test --auth-password "$PW_A" \
	--from alice@x.test --to r1@dest.test || fail "AUTH PLAIN: $(tail -n 5 "$T/swaks-plain.out")"
has plain "<-  250-AUTH PLAIN LOGIN" || fail "AUTH not advertised on the UNIX socket"
has plain "235 2.7.0 Authentication successful" || fail "AUTH PLAIN: no 235"
pass "AUTH PLAIN (SHA-512 hash) on the UNIX socket"

swaks_unix login --auth LOGIN --auth-user bob --auth-password "$PW_B" \
	--from b@bob.test --to r2@dest.test || fail "AUTH LOGIN: $(tail -n 5 "$T/swaks-login.out")"
has login "<-  334 VXNlcm5hbWU6" && has login "235 2.7.0" || fail "AUTH LOGIN exchange"
pass "AUTH LOGIN (yescrypt hash), sender from a listed domain"

t0=$(date +%s%N)
swaks_unix wrong --auth PLAIN --auth-user alice@x.test --auth-password "$PW_BAD" \
	--from alice@x.test --to r9@dest.test && fail "a wrong password was accepted"
t1=$(date +%s%N)
has wrong "535 5.7.8 Authentication credentials invalid" || fail "wrong password: no 535"
[ $(((t1 - t0) / 1000000)) -ge 800 ] || fail "535 came without the tarpit ($(((t1 - t0) / 1000000)) ms)"
swaks_unix nouser --auth LOGIN --auth-user mallory --auth-password "$PW_A" \
	--from m@x.test --to r9@dest.test && fail "an unknown login was accepted"
has nouser "535 5.7.8" || fail "unknown login: no 535"
pass "wrong password and unknown login: 535 5.7.8 after the tarpit"

swaks_unix notowned --auth PLAIN --auth-user alice@x.test --auth-password "$PW_A" \
	--from eve@other.test --to r9@dest.test && fail "sender_policy let eve@other.test through"
has notowned "553 5.7.1 Sender address rejected: not owned by user alice@x.test" ||
	fail "sender_policy: $(grep '<\*\*' "$T/swaks-notowned.out")"
pass "sender_policy = own_domain: 553 5.7.1"

# TCP without TLS is not secure: AUTH is neither advertised nor accepted (even when trusted).
swaks --server "127.0.0.1:$INJ_PORT" --quit-after EHLO >"$T/swaks-ehlo.out" 2>&1 ||
	fail "EHLO over TCP"
has ehlo "250-AUTH" && fail "AUTH advertised over TCP without TLS"
python3 "$D/smtp_dialog.py" "$INJ_PORT" <<EOF2 >"$T/dialog-538.out" || fail "538 dialog"
GREET
SEND EHLO client.test
EXPECT 250
SEND AUTH PLAIN $(printf '\0alice@x.test\0%s' "$PW_A" | base64 -w0)
EXPECT 538 5.7.11
SEND QUIT
EXPECT 221
EOF2
pass "AUTH over plain TCP: not advertised, 538 5.7.11"

# An untrusted client (127.0.0.2; only 127.0.0.1 is trusted) reaches relay_domains only.
swaks --server "127.0.0.1:$INJ_PORT" --local-interface 127.0.0.2 --from a@x.test \
	--to r9@dest.test >"$T/swaks-untrusted.out" 2>&1 && fail "untrusted client relayed"
has untrusted "<** 530 5.7.0 Authentication required" || fail "untrusted: no 530 at RCPT"
grep -q -- "-> RCPT TO:<r9@dest.test>" "$T/swaks-untrusted.out" || fail "530 before RCPT"
swaks --server "127.0.0.1:$INJ_PORT" --local-interface 127.0.0.2 --from a@x.test \
	--to r3@relay.test >"$T/swaks-relaydom.out" 2>&1 ||
	fail "relay_domains: $(tail -n 5 "$T/swaks-relaydom.out")"
swaks --server "127.0.0.1:$INJ_PORT" --from a@x.test --to r4@dest.test \
	>"$T/swaks-trusted.out" 2>&1 || fail "trusted 127.0.0.1 refused"
pass "untrusted client: 530 5.7.0 at RCPT, relay_domains accepted, trusted client accepted"

python3 "$D/smtp_dialog.py" "unix:$SOCK" <<'EOF2' >"$T/dialog-rset.out" || fail "max_rset/VRFY dialog"
GREET
SEND EHLO client.test
EXPECT 250
SEND VRFY postmaster
EXPECT 252 2.5.2
SEND EXPN staff
EXPECT 502 5.5.1
SEND RSET
EXPECT 250
SEND RSET
EXPECT 250
SEND RSET
EXPECT 250
SEND RSET
EXPECT 421 4.7.0
EOF2
grep -q "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery" \
	"$T/dialog-rset.out" || fail "VRFY text"
grep -q "502 5.5.1 EXPN not supported" "$T/dialog-rset.out" || fail "EXPN text"
grep -q "421 4.7.0 Too many RSET commands" "$T/dialog-rset.out" || fail "max_rset text"
pass "VRFY 252 2.5.2, EXPN 502 5.5.1, max_rset 421 4.7.0"

# Delivered; the queued lines name the login of authenticated sessions only.
wait_until 20 sink_ge 4 || fail "sink got $(sink_messages) of 4 messages"
grep -q "status=queued from=<alice@x.test> .* auth=alice@x.test$" "$DLOG" || fail "no auth=alice"
grep -q "status=queued from=<b@bob.test> .* auth=bob$" "$DLOG" || fail "no auth=bob"
[ "$(grep -c 'status=queued' "$DLOG")" -eq 4 ] || fail "not 4 queued lines"
[ "$(grep -c 'status=queued.* auth=' "$DLOG")" -eq 2 ] || fail "auth= on unauthenticated lines"
pass "queued lines carry auth=<login>"

"$RIPTIDE" -c "$CONF" --print-config >"$T/print-config.out" 2>&1 || fail "--print-config"
grep -q "^auth_users_file = $USERS$" "$T/print-config.out" || fail "print-config: users file"
stop_riptide
for pw in "$PW_A" "$PW_B" "$PW_BAD" "$(printf '\0alice@x.test\0%s' "$PW_A" | base64 -w0)"; do
	for f in "$DLOG" "$T/riptide.err" "$T/print-config.out"; do
		grep -qF -- "$pw" "$f" && fail "a password (or its AUTH payload) is in $f"
	done
done
grep -q "readable by others" "$T/riptide.err" && fail "warning for a 0600 users file"
pass "no password in the delivery log, stderr or --print-config"

# A malformed users file stops the start with file:line; a readable one gets a warning.
printf '# users\nalice@x.test:%s\ncarol:not-a-hash\n' "$(mkpasswd -m sha-512 "$PW_A")" >"$T/bad"
chmod 600 "$T/bad"
sed "s#^auth_users_file = .*#auth_users_file = $T/bad#" "$CONF" >"$T/bad.conf"
rc=0
"$RIPTIDE" -c "$T/bad.conf" 2>"$T/bad.err" || rc=$?
[ $rc -eq 2 ] || fail "malformed users file: exit $rc, not 2"
grep -qF "auth_users_file: $T/bad:3: not a SHA-512" "$T/bad.err" || fail "no file:line: $(cat "$T/bad.err")"
chmod 644 "$USERS"
start_riptide
grep -q "auth_users_file $USERS is readable by others" "$T/riptide.err" || fail "no warning"
stop_riptide
pass "malformed users file: exit 2 with file:line; readable file: warning"
