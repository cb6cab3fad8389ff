#!/usr/bin/env bash
# SMTP AUTH to the relay (issue #8), against Python's aiosmtpd (a server riptide did not write)
# requiring AUTH (PLAIN and LOGIN, without TLS: auth_require_tls=False) before MAIL:
#  - auth_plaintext = yes, tls = none: delivered after AUTH PLAIN; a relay offering only LOGIN
#    gets LOGIN; riptide warns at start-up when its config file (holding the password) is
#    readable by others, and not when it is 0600;
#  - auth_plaintext = no without TLS: nothing of AUTH reaches the relay, the mail is deferred
#    and one config-error line says why;
#  - a wrong password: 535 -> every message deferred (code=535 dsn=5.7.8), one config-error
#    line per hold, a handful of logins for 30 messages (no storm), nothing failed or bounced
#    (the queue holds exactly the messages, no notice); with the password fixed (restart) and
#    `riptidectl queue retry --all` everything is delivered;
#  - neither password (nor its base64) is in the delivery log, riptide's stderr or the output
#    of --print-config.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib5.sh"
USER_NAME=relayuser
GOOD_PW='Rel4y-G00d-pw'
BAD_PW='Wr0ng-S3cret-pw'

# The relay: aiosmtpd requiring AUTH; one JSON line per accepted message in $T/relay-N.log and
# one line "MECH LOGIN ok|bad" per AUTH attempt in $T/relay-N.auth (never the password).
cat >"$T/relay.py" <<'PY'
import json, signal, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

port, user, pw, log, authlog = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
exclude = sys.argv[6].split(",") if len(sys.argv) > 6 else []


def authenticator(server, session, envelope, mechanism, data):
    ok = (isinstance(data, LoginPassword) and data.login == user.encode()
          and data.password == pw.encode())
    login = data.login.decode("latin-1") if isinstance(data, LoginPassword) else "?"
    with open(authlog, "a") as f:
        f.write(f"{mechanism} {login} {'ok' if ok else 'bad'}\n")
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends 535


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(log, "a") as f:
            f.write(json.dumps({"rcpts": envelope.rcpt_tos, "auth": session.authenticated}) + "\n")
        return "250 2.0.0 OK"


class Ctl(Controller):
    def factory(self):
        return SMTP(self.handler, authenticator=authenticator, auth_required=True,
                    auth_require_tls=False, auth_exclude_mechanism=exclude)


ctl = Ctl(Handler(), hostname="127.0.0.1", port=port)
ctl.start()
try:
    signal.pause()
finally:
    ctl.stop()
PY

# start_relay N [EXCLUDED MECHS]: relay N on a fresh port (RELAY_PORT, RELAY_PID[N]).
declare -A RELAY_PID=()
start_relay() {
	RELAY_PORT=$(free_port)
	/usr/bin/python3 "$T/relay.py" "$RELAY_PORT" "$USER_NAME" "$GOOD_PW" "$T/relay-$1.log" \
		"$T/relay-$1.auth" ${2:+"$2"} 2>"$T/relay-$1.err" &
	RELAY_PID[$1]=$!
	PIDS+=("${RELAY_PID[$1]}")
	wait_tcp 127.0.0.1 "$RELAY_PORT" "${RELAY_PID[$1]}"
	touch "$T/relay-$1.log" "$T/relay-$1.auth"
}

# conf PASSWORD PLAINTEXT RETRY: the config toward $RELAY_PORT with these AUTH settings.
conf() {
	write_config <<EOF2
[delivery]
tls = none
auth_user = $USER_NAME
auth_password = $1
auth_plaintext = $2
retry_delay = $3
EOF2
}

# relay_got REGEX N: recipients relay N accepted whose address matches the whole ERE REGEX.
relay_got() { grep -oE '"[^"]+"' "$T/relay-$2.log" | grep -cE "^\"$1\"\$" || true; }
relay_has() { [ "$(relay_got "$1" "$2")" -ge 1 ]; }
warnings() { grep -c 'holds auth_password and is readable by others' "$T/riptide.err" || true; }

# ---- PLAIN, and the warning about a world-readable config ----
start_relay 1
RELAY1_PORT=$RELAY_PORT
conf "$GOOD_PW" yes 1s
chmod 644 "$CONF"
"$RIPTIDE" -c "$CONF" --print-config >"$T/print-config.out" || fail "--print-config"
grep -q '^# auth_password = (set, not shown)$' "$T/print-config.out" ||
	fail "--print-config does not mark the password as hidden"
start_riptide
send_as s@example.test plain@example.test plain
wait_until 20 relay_has 'plain@example\.test' 1 || fail "not delivered through the AUTH relay"
grep -qx "PLAIN $USER_NAME ok" "$T/relay-1.auth" || fail "relay auth log: $(cat "$T/relay-1.auth")"
[ "$(wc -l <"$T/relay-1.auth")" -eq 1 ] || fail "more than one login: $(cat "$T/relay-1.auth")"
grep -q '"auth": true' "$T/relay-1.log" || fail "relay did not see an authenticated session"
wait_until 10 grep -q 'status=delivered to=<plain@example.test>' "$DLOG" || fail "no delivered line"
[ "$(warnings)" -eq 1 ] || fail "no start-up warning for a config readable by others"
stop_riptide
pass "AUTH PLAIN over plaintext (auth_plaintext = yes): delivered; mode 644 config warned about"

# ---- LOGIN only ----
start_relay 2 PLAIN
conf "$GOOD_PW" yes 1s
chmod 600 "$CONF"
start_riptide
send_as s@example.test login@example.test login
wait_until 20 relay_has 'login@example\.test' 2 || fail "not delivered through the LOGIN-only relay"
grep -qx "LOGIN $USER_NAME ok" "$T/relay-2.auth" || fail "relay 2 auth log: $(cat "$T/relay-2.auth")"
[ "$(warnings)" -eq 1 ] || fail "a 0600 config was warned about"
stop_riptide
stop_pid "${RELAY_PID[2]}"
pass "AUTH LOGIN when the relay offers only LOGIN; no warning for mode 600"

# ---- no TLS and auth_plaintext = no: nothing of AUTH is sent ----
RELAY_PORT=$RELAY1_PORT
conf "$GOOD_PW" no 1h
chmod 600 "$CONF"
start_riptide
send_as s@example.test plain-refused@example.test refused
wait_until 20 grep -q 'status=deferred to=<plain-refused@example.test>' "$DLOG" ||
	fail "not deferred when AUTH would go unencrypted"
grep -q 'event=config-error relay=.*reason="authentication failed at relay .*not encrypted (auth_plaintext = no)' \
	"$DLOG" || fail "no config-error line for the unencrypted AUTH"
grep 'status=deferred to=<plain-refused@example.test>' "$DLOG" | grep -q 'dsn=4.7.0 ' ||
	fail "deferral does not carry 4.7.0"
[ "$(wc -l <"$T/relay-1.auth")" -eq 1 ] || fail "AUTH attempted without TLS: $(cat "$T/relay-1.auth")"
stop_riptide
pass "auth_plaintext = no without TLS: nothing sent, deferred, config-error logged"

# ---- a wrong password: 535, everything deferred, nothing bounced, no login storm ----
conf "$BAD_PW" yes 1h
chmod 600 "$CONF"
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 30 -c 5 -d wrongpw.test >"$T/blast.out" || fail "blast"
grep -q 'ok=30 ' "$T/blast.out" || fail "blast: $(tail -n1 "$T/blast.out")"
deferred_30() { [ "$(dlog_n 'status=deferred to=<[^>]*@wrongpw.test>')" -ge 30 ]; }
wait_until 30 deferred_30 || fail "only $(dlog_n 'status=deferred to=<[^>]*@wrongpw.test>') of 30 deferred"
[ "$(dlog_n 'status=deferred to=<[^>]*@wrongpw.test>.* code=535 dsn=5.7.8 ')" -eq 30 ] ||
	fail "deferrals do not all carry the 535 5.7.8: $(grep wrongpw.test "$DLOG" | head -n 3)"
grep -q 'event=config-error relay=.*reason="authentication failed at relay 127.0.0.1:[0-9]*: 535 5.7.8 ' \
	"$DLOG" || fail "no config-error line naming the 535"
errs=$(dlog_n 'event=config-error')
[ "$errs" -ge 2 ] && [ "$errs" -le 6 ] || fail "$errs config-error lines (want the earlier one + a few)"
[ "$(dlog_n 'status=failed')" -eq 0 ] || fail "something failed: $(grep status=failed "$DLOG" | head -n 2)"
bad=$(grep -c "bad$" "$T/relay-1.auth" || true)
[ "$bad" -ge 1 ] && [ "$bad" -le 8 ] || fail "$bad failed logins for 30 messages (want 1..8)"
[ "$(relay_got '[^@]+@wrongpw\.test' 1)" -eq 0 ] || fail "mail reached the relay with a wrong password"
stop_riptide
[ "$(queue_count)" -eq 31 ] || fail "queue holds $(queue_count), expected 31 (30 + 1, no notice)"
pass "wrong password: 30 deferred with 535 5.7.8, $errs config-error lines, $bad logins, no bounce"

# ---- the password fixed: everything queued is delivered ----
conf "$GOOD_PW" yes 1h
chmod 600 "$CONF"
start_riptide
wait_until 10 test -S "$SPOOL/control.sock" || fail "no control socket"
ctl retry --all >/dev/null || fail "retry --all"
all_there() { [ "$(relay_got '[^@]+@wrongpw\.test' 1)" -ge 30 ] && relay_has 'plain-refused@example\.test' 1; }
wait_until 30 all_there || fail "only $(relay_got '[^@]+@wrongpw\.test' 1) of 30 delivered after the fix"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue holds $(queue_count) after the fix"
pass "with the right password the deferred mail is delivered"

# ---- no password anywhere riptide writes ----
b64() { printf '%s' "$1" | base64 -w0; }
for s in "$GOOD_PW" "$BAD_PW" "$(b64 "$GOOD_PW")" "$(b64 "$BAD_PW")" \
	"$(printf '\0%s\0%s' "$USER_NAME" "$GOOD_PW" | base64 -w0)" \
	"$(printf '\0%s\0%s' "$USER_NAME" "$BAD_PW" | base64 -w0)"; do
	for f in "$DLOG" "$T/riptide.err" "$T/print-config.out"; do
		grep -qF -- "$s" "$f" && fail "secret '$s' found in $f"
	done
done
pass "no password (plain or base64) in the delivery log, stderr or --print-config"
