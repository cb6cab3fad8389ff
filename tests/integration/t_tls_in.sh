#!/usr/bin/env bash
# Injection over TLS, with peers riptide did not write: swaks (Net::SSLeay) over STARTTLS and
# over the implicit-TLS listener (tls_listen), Postfix's posttls-finger and openssl s_client
# against the listener; the Received: header says ESMTPS; plaintext pipelined behind STARTTLS
# is discarded (RFC 3207 4.2, the command-injection class of bugs) and the client must EHLO
# again after the handshake; a broken certificate setting stops the daemon at start (exit 2).
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
C=$T/pki
"$D/mkcerts.sh" "$C" || fail "mkcerts"
start_sink
TLS_PORT=$(free_port)
PW='Inj3ct-over-TLS'
printf 'bulk@example.test:%s\n' "$(mkpasswd -m yescrypt "$PW")" >"$T/users"
chmod 600 "$T/users"
write_config <<EOF2
[inject]
tls_cert = $C/server.pem
tls_key = $C/server.key
tls_listen = 127.0.0.1:$TLS_PORT
auth_users_file = $T/users
trusted_networks = 127.0.0.1/32
EOF2
start_riptide
wait_port "$TLS_PORT"

swaks --server "127.0.0.1:$INJ_PORT" --tls --from s@example.test --to a@example.test \
	>"$T/swaks-a.out" 2>&1 || fail "swaks --tls: $(tail -5 "$T/swaks-a.out")"
grep -q '<-  220 2.0.0 Ready to start TLS' "$T/swaks-a.out" || fail "no STARTTLS exchange"
grep -q 'TLS started with cipher TLSv1' "$T/swaks-a.out" || fail "swaks: $(grep TLS "$T/swaks-a.out")"
swaks --server "127.0.0.1:$TLS_PORT" --tlsc --from s@example.test --to b@example.test \
	>"$T/swaks-b.out" 2>&1 || fail "swaks --tlsc: $(tail -5 "$T/swaks-b.out")"
wait_until 15 sink_ge 2 || fail "the two messages did not arrive"
grep -l 'a@example.test' "$SINK_DIR"/* | xargs grep -q 'with ESMTPS id' ||
	fail "Received: lacks ESMTPS: $(grep -h -m1 -A2 '^Received' "$SINK_DIR"/*)"
pass "swaks over STARTTLS and over tls_listen (TLS on connect) injected; Received: says ESMTPS"

# an untrusted client (127.0.0.2; only 127.0.0.1 is trusted): AUTH is offered only after
# STARTTLS; with TLS + AUTH it injects, without AUTH it gets 530 at RCPT
swaks --server "127.0.0.1:$INJ_PORT" --local-interface 127.0.0.2 --tls --auth PLAIN \
	--auth-user bulk@example.test --auth-password "$PW" --from bulk@example.test \
	--to c@example.test >"$T/swaks-c.out" 2>&1 || fail "STARTTLS + AUTH: $(tail -8 "$T/swaks-c.out")"
grep -q '<~  235 ' "$T/swaks-c.out" || fail "no 235 over TLS: $(grep -E '<~|~>' "$T/swaks-c.out")"
set +e
swaks --server "127.0.0.1:$INJ_PORT" --local-interface 127.0.0.2 --from bulk@example.test \
	--to d@example.test >"$T/swaks-d.out" 2>&1
set -e
grep -q '<\*\* 530 5.7.0' "$T/swaks-d.out" || fail "untrusted without AUTH: $(grep -E '<|>' "$T/swaks-d.out")"
! grep -q 'AUTH' <(grep -B1 -A12 'EHLO' "$T/swaks-d.out" | grep '<-') || fail "AUTH offered in plaintext"
grep -q "status=queued .*auth=bulk@example.test" "$DLOG" || fail "queued line: $(grep queued "$DLOG")"
! grep -q "$PW" "$DLOG" "$T/riptide.err" || fail "the password is in a log"
wait_until 15 sink_ge 3 || fail "c@ did not arrive"
grep -l 'c@example.test' "$SINK_DIR"/* | xargs grep -q 'with ESMTPSA id' || fail "Received: lacks ESMTPSA"
pass "untrusted 127.0.0.2: STARTTLS + AUTH PLAIN injects (ESMTPSA, auth= logged); without AUTH 530 5.7.0"

mkdir -p "$T/postfix" && : >"$T/postfix/main.cf" # posttls-finger reads a main.cf
MAIL_CONFIG=$T/postfix posttls-finger -c -l encrypt "[127.0.0.1]:$INJ_PORT" >"$T/ptf.out" 2>&1 ||
	fail "posttls-finger: $(cat "$T/ptf.out")"
grep -q 'TLS connection established' "$T/ptf.out" || fail "posttls-finger: $(cat "$T/ptf.out")"
pass "posttls-finger: $(grep -m1 'TLS connection established' "$T/ptf.out" | sed 's/.*: //')"

echo QUIT | openssl s_client -starttls smtp -connect "127.0.0.1:$INJ_PORT" -CAfile "$C/ca.pem" \
	-verify_hostname mx.test >"$T/s_client.out" 2>&1 || true
grep -q 'subject=.*CN *= *mx.test' "$T/s_client.out" || fail "s_client: $(head -20 "$T/s_client.out")"
grep -q 'Verify return code: 0 (ok)' "$T/s_client.out" || fail "s_client verify: $(grep Verify "$T/s_client.out")"
pass "openssl s_client -starttls smtp: CN=mx.test, verified against ca.pem"

# STARTTLS command injection: "STARTTLS\r\nRSET\r\n" in one write; the RSET must never be
# answered, before or after the handshake; MAIL before the new EHLO gets 503
/usr/bin/python3 - "$INJ_PORT" "$C/ca.pem" >"$T/inject.out" 2>&1 <<'PY' || fail "injection: $(cat "$T/inject.out")"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), 5)
f = s.makefile("rb")
def reply(f):
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l.strip())
        if l[3:4] != "-":
            return lines
reply(f)
s.sendall(b"EHLO x.test\r\n"); r = reply(f)
assert any("STARTTLS" in l for l in r), r
s.sendall(b"STARTTLS\r\nRSET\r\n"); r = reply(f)
assert r[-1].startswith("220"), r
ctx = ssl.create_default_context(cafile=ca)
t = ctx.wrap_socket(s, server_hostname="mx.test")
g = t.makefile("rb")
t.sendall(b"MAIL FROM:<a@x.test>\r\n"); r = reply(g)
assert r[-1].startswith("503"), ("MAIL before EHLO after TLS", r)
t.sendall(b"EHLO x.test\r\n"); r = reply(g)
assert r[0].startswith("250") and not any("STARTTLS" in l for l in r), r
t.sendall(b"NOOP\r\n"); r = reply(g)
assert r == ["250 2.0.0 Ok"], ("an answer to the injected RSET?", r)
t.sendall(b"QUIT\r\n"); reply(g)
print("ok")
PY
pass "plaintext pipelined behind STARTTLS discarded; EHLO needed again; STARTTLS not offered twice"
stop_riptide

# a key that does not match the certificate: exit 2 at start, naming the files
cat >>"$CONF" <<EOF2
[inject]
tls_key = $C/other.key
EOF2
set +e
"$RIPTIDE" -c "$CONF" 2>"$T/badkey.err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "mismatched key: exit $rc: $(cat "$T/badkey.err")"
grep -q 'tls_cert/tls_key' "$T/badkey.err" || fail "message: $(cat "$T/badkey.err")"
pass "mismatched tls_key refused at start: $(head -1 "$T/badkey.err")"
