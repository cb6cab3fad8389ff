#!/usr/bin/env bash
# Outbound TLS against a third-party TLS stack (aiosmtpd on Python's ssl, i.e. OpenSSL):
# opportunistic STARTTLS, verification by CA and host name (a wrong name defers under
# tls = required), required against a relay without STARTTLS (deferred, never bounced), smtps
# (TLS on connect), the opportunistic fallback to plaintext when the handshake fails (logged
# once, then delivered), and the delivery line's tls=/cipher=/verified= fields.
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
C=$T/pki
"$D/mkcerts.sh" "$C" || fail "mkcerts"

# start_aio FLAGS...: aio_tls.py on a fresh port; sets RELAY_PORT, AIO_LOG, AIO_PID.
start_aio() {
	RELAY_PORT=$(free_port)
	AIO_LOG=$T/aio-$RELAY_PORT.jsonl
	/usr/bin/python3 "$D/aio_tls.py" "$RELAY_PORT" "$AIO_LOG" "$@" 2>"$T/aio-$RELAY_PORT.err" &
	AIO_PID=$!
	PIDS+=("$AIO_PID")
	wait_port "$RELAY_PORT"
}

# run_case NAME RCPT [INI lines on stdin]: fresh spool, riptide relaying to RELAY_PORT, one
# message to RCPT; waits until the delivery log has its delivered or deferred line.
run_case() {
	rm -rf "$T/spool" "$T/delivery.log"
	write_config
	start_riptide
	swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test --to "$2" \
		--header "Subject: $1" >"$T/swaks-$1.out" 2>&1 || fail "$1: injection"
	CASE_RCPT=$2
	wait_until 20 decided || fail "$1: no outcome for $2"
	stop_riptide
}
decided() { grep -qE "status=(delivered|deferred) to=<$CASE_RCPT>" "$DLOG"; }
aio_tls_of() { # aio_tls_of RCPT: the "tls" field of the transaction that carried RCPT
	/usr/bin/python3 -c "
import json,sys
for l in open('$AIO_LOG'):
    t=json.loads(l)
    if '$1' in t['rcpts']: print(t['tls']); sys.exit(0)
sys.exit(1)"
}

# A: opportunistic (the default), test CA unknown to the system store: encrypted, not verified
start_aio --starttls "$C/server.pem" "$C/server.key"
run_case opp a@example.test </dev/null
grep -q 'status=delivered to=<a@example.test>.* tls=TLSv1\.[23] cipher=[A-Z0-9_-]* verified=no ' "$DLOG" ||
	fail "A: $(grep 'to=<a@' "$DLOG")"
aio_tls_of a@example.test | grep -q TLSv1 || fail "A: aiosmtpd saw no TLS: $(aio_tls_of a@example.test)"
pass "opportunistic STARTTLS to aiosmtpd: $(grep -o 'tls=[^ ]* cipher=[^ ]*' "$DLOG")"

# B: required + CA verification: the certificate names 127.0.0.1 (IP SAN)
printf '[delivery]\ntls = required\ntls_ca_file = %s\n' "$C/ca.pem" | run_case req-ca b@example.test
grep -q 'status=delivered to=<b@example.test>.* verified=yes ' "$DLOG" || fail "B: $(grep 'to=<b@' "$DLOG")"
pass "tls = required, tls_verify = auto (ca) against ca.pem: verified=yes"
kill "$AIO_PID"

# C: a certificate for another name: required + ca defers, nothing delivered
start_aio --starttls "$C/wrongname.pem" "$C/wrongname.key"
printf '[delivery]\ntls = required\ntls_ca_file = %s\n' "$C/ca.pem" | run_case req-name c@example.test
grep -q 'status=deferred to=<c@example.test>' "$DLOG" || fail "C: not deferred: $(cat "$DLOG")"
grep -q 'TLS handshake failed' "$DLOG" || fail "C: reason not logged: $(cat "$DLOG")"
[ ! -s "$AIO_LOG" ] || fail "C: delivered despite the wrong name"
pass "wrong host name under tls = required: deferred ($(grep -o 'TLS handshake failed[^"]*' "$DLOG" | head -1))"
# ... and the same certificate is fine with tls_verify = none
printf '[delivery]\ntls = required\ntls_verify = none\n' | run_case req-none c2@example.test
grep -q 'status=delivered to=<c2@example.test>.* verified=no ' "$DLOG" || fail "C2: $(cat "$DLOG")"
pass "the same with tls_verify = none: delivered, verified=no"
kill "$AIO_PID"

# D: required against a relay that does not offer STARTTLS: deferred, never bounced
start_aio
printf '[delivery]\ntls = required\n' | run_case req-plain d@example.test
grep -q 'status=deferred to=<d@example.test>' "$DLOG" || fail "D: $(cat "$DLOG")"
grep -q 'STARTTLS not offered' "$DLOG" || fail "D: reason: $(cat "$DLOG")"
! grep -q 'status=failed' "$DLOG" || fail "D: bounced"
[ ! -s "$AIO_LOG" ] || fail "D: sent in plaintext"
# ... while opportunistic delivers in plaintext and says so
run_case opp-plain d2@example.test </dev/null
grep -q 'status=delivered to=<d2@example.test>.* tls=no ' "$DLOG" || fail "D2: $(cat "$DLOG")"
pass "tls = required without STARTTLS: deferred; opportunistic: delivered with tls=no"
kill "$AIO_PID"

# E: smtps (TLS on connect)
start_aio --smtps "$C/server.pem" "$C/server.key"
printf '[delivery]\ntls = smtps\ntls_ca_file = %s\n' "$C/ca.pem" | run_case smtps e@example.test
grep -q 'status=delivered to=<e@example.test>.* verified=yes ' "$DLOG" || fail "E: $(cat "$DLOG")"
pass "smtps to an implicit-TLS aiosmtpd: delivered, verified"
kill "$AIO_PID"

# F: opportunistic, the handshake fails: one tls-fallback line, then plaintext to the same host
start_aio --starttls "$C/server.pem" "$C/server.key" --bad-handshake
run_case fallback f@example.test </dev/null
grep -q 'event=tls-fallback' "$DLOG" || fail "F: no tls-fallback line: $(cat "$DLOG")"
grep -q 'status=delivered to=<f@example.test>.* tls=no ' "$DLOG" || fail "F: $(cat "$DLOG")"
[ "$(aio_tls_of f@example.test)" = None ] || fail "F: aiosmtpd says $(aio_tls_of f@example.test)"
pass "opportunistic with a failing handshake: $(grep -o 'event=tls-fallback.*' "$DLOG" | cut -c1-120)"
kill "$AIO_PID"

# G: AUTH to a relay that requires it, only over TLS (auth_plaintext = no, aiosmtpd's
# auth_require_tls): STARTTLS first, then AUTH PLAIN, then the mail; the password stays out of
# the log
start_aio --starttls "$C/server.pem" "$C/server.key" --auth bulk@example.test:Tls-Secret-9 --auth-required
printf '[delivery]\nauth_user = bulk@example.test\nauth_password = Tls-Secret-9\n' |
	run_case auth-tls g@example.test
grep -q 'status=delivered to=<g@example.test>.* tls=TLSv1' "$DLOG" || fail "G: $(cat "$DLOG")"
/usr/bin/python3 -c "
import json,sys
t=[json.loads(l) for l in open('$AIO_LOG')]
sys.exit(0 if t and t[-1]['auth']=='bulk@example.test' and t[-1]['tls'] else 1)" || fail "G: $(cat "$AIO_LOG")"
! grep -q 'Tls-Secret-9' "$DLOG" "$T/riptide.err" || fail "G: the password is in a log"
pass "AUTH over STARTTLS to a relay that requires both: delivered as bulk@example.test"
