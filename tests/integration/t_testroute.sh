#!/usr/bin/env bash
# riptidectl test-route (the classic servers' "Test outgoing route"), no daemon: against
# riptide-sink (plaintext relay, a refused RCPT, a 554 greeting), nothing listening, and
# Python's aiosmtpd (a third-party server: STARTTLS with a certificate from a throwaway CA,
# a wrong-name certificate, implicit TLS, AUTH PLAIN/LOGIN with a good and a bad password)
# reached through a real dnsmasq's MX records. Each run's exit code (0 works, 1 not, 2 usage
# or configuration), the step it names on its last line, the certificate details and the
# absence of the password (and its base64) from every output are asserted.
# Static routes (issue 9): an exact route with a hosts list (a dead host, then a riptide-sink),
# a wildcard relay route with its own tls/helo_name, a disabled route and the static_routes
# switch: the first line names the route taken and why, and the test follows that route.
. "$(dirname "$0")/lib.sh"
: "${RIPTIDECTL:?RIPTIDECTL must point at riptidectl}"
bash "$(dirname "$0")/mkcerts.sh" "$T/certs"
C=$T/certs
USER_=alice
PASS='s3cret-Pa55word'

# The aiosmtpd peer: ADDR PORT LOG [--cert PEM --key KEY] [--smtps] [--user U --password P]
# [--only-login] [--rcpt-reply "550 ..."]. It logs each AUTH and RCPT it sees to LOG.
cat >"$T/peer.py" <<'PY'
import argparse, signal, ssl
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

ap = argparse.ArgumentParser()
ap.add_argument("addr"); ap.add_argument("port", type=int); ap.add_argument("log")
ap.add_argument("--cert"); ap.add_argument("--key"); ap.add_argument("--smtps", action="store_true")
ap.add_argument("--user"); ap.add_argument("--password"); ap.add_argument("--only-login", action="store_true")
ap.add_argument("--rcpt-reply")
a = ap.parse_args()

def log(line):
    with open(a.log, "a") as f:
        f.write(line + "\n")

def authenticator(server, session, envelope, mechanism, data):
    ok = (isinstance(data, LoginPassword) and data.login.decode() == a.user
          and data.password.decode() == a.password)
    log("auth %s %s %s" % (mechanism, data.login.decode() if isinstance(data, LoginPassword)
                           else "?", "ok" if ok else "bad"))
    return AuthResult(success=ok, handled=False)

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        log("rcpt %s tls=%s auth=%s peer=%s" % (address, session.ssl is not None,
                                                bool(session.authenticated), session.peer[0]))
        if a.rcpt_reply:
            return a.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

ctx = None
if a.cert:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)

class Ctl(Controller):
    def factory(self):
        kw = dict(authenticator=authenticator, auth_require_tls=True) if a.user else {}
        if a.only_login:
            kw["auth_exclude_mechanism"] = ["PLAIN"]
        return SMTP(self.handler, hostname="peer.test",
                    tls_context=None if a.smtps else ctx, **kw)

ctl = Ctl(Handler(), hostname=a.addr, port=a.port, ssl_context=ctx if a.smtps else None)
ctl.start()
try:
    signal.pause()
finally:
    ctl.stop()
PY

# A raw server for what aiosmtpd will not do: ADDR PORT MODE; MODE silent (accepts, never
# greets) or inject (answers STARTTLS with "220" and a plaintext "250" behind it in one write).
cat >"$T/raw.py" <<'PY'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
def serve(c):
    f = c.makefile("rb")
    c.sendall(b"220 raw.test ESMTP\r\n")
    for line in f:
        verb = line.strip().upper()
        if verb.startswith(b"EHLO"):
            c.sendall(b"250-raw.test\r\n250 STARTTLS\r\n")
        elif verb == b"STARTTLS":
            c.sendall(b"220 2.0.0 go ahead\r\n250 2.0.0 injected\r\n")
        elif verb == b"QUIT":
            c.sendall(b"221 bye\r\n")
            break
        else:
            c.sendall(b"250 ok\r\n")

while True:
    c, _ = s.accept()
    if sys.argv[3] == "silent":
        time.sleep(30)
        continue
    try:
        serve(c)
    except OSError:
        pass  # the readiness probe closes at once
    c.close()
PY

# peer NAME ADDR PORT ARGS...: start an aiosmtpd peer (log $T/peer-NAME.log); PEER_PID.
peer() {
	local name=$1 addr=$2 port=$3
	shift 3
	/usr/bin/python3 "$T/peer.py" "$addr" "$port" "$T/peer-$name.log" "$@" \
		2>>"$T/peer-$name.err" &
	PEER_PID=$!
	PIDS+=("$PEER_PID")
	wait_tcp "$addr" "$port" "$PEER_PID"
}

# conf LINES...: $T/route.conf with [main] hostname and the [delivery] lines given.
conf() {
	{
		printf '[main]\nhostname = riptide.test\n[delivery]\nconnect_timeout = 2s\n'
		printf 'greeting_timeout = 3s\nhelo_timeout = 3s\n'
		printf '%s\n' "$@"
	} >"$T/route.conf"
}

# route ARGS...: run test-route on $T/route.conf; RC its exit code, output in $T/out. It exits
# by itself, so a sanitizer build checks it for leaks too (a report makes RC 23: no test wants).
route() {
	set +e
	ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=1:exitcode=23 "$RIPTIDECTL" -c "$T/route.conf" test-route "$@" \
		>"$T/out" 2>&1
	RC=$?
	set -e
	cat "$T/out" >>"$T/all.out"
}

expect_rc() { [ "$RC" -eq "$1" ] || fail "exit $RC, not $1: $(cat "$T/out")"; }
has() { grep -Eq -- "$1" "$T/out" || fail "output lacks /$1/: $(cat "$T/out")"; }
last_has() { tail -n 1 "$T/out" | grep -Eq -- "$1" || fail "last line lacks /$1/: $(tail -n 1 "$T/out")"; }

# ---- relay mode against riptide-sink ----
start_sink
conf "relay = 127.0.0.1:$SINK_PORT" "tls = opportunistic"
route relay
expect_rc 0
for s in 'connect +connected to 127\.0\.0\.1:' 'greeting +220 ' 'EHLO riptide\.test +250-' \
	'STARTTLS +not offered by the server: plaintext' 'MAIL FROM:<> +250 ' \
	'RCPT TO:<postmaster@riptide\.test> +250 ' 'RSET +250 ' 'QUIT +221 '; do has "^ +([0-9.]+ ms +)?$s"; done
has '^ +250 ENHANCEDSTATUSCODES' # multi-line reply lines indented under the first
last_has '^result: OK: <postmaster@riptide\.test> accepted by 127\.0\.0\.1 \[127\.0\.0\.1:[0-9]+\], plaintext'
route --rcpt someone@example.test example.test
expect_rc 0
has 'RCPT TO:<someone@example\.test> +250 '
pass "relay, plaintext: every step timed with its reply, exit 0; --rcpt"
stop_pid "$SINK_PID"

start_sink --reply 'rcpt=550:5.7.1 relaying denied'
conf "relay = 127.0.0.1:$SINK_PORT" "tls = none"
route dest.test
expect_rc 1
has 'RCPT TO:<postmaster@dest\.test> +550 5\.7\.1 relaying denied' && has 'RSET +250' && has 'QUIT +221'
last_has '^result: FAILED at RCPT TO:<postmaster@dest\.test>: 550 5\.7\.1 relaying denied'
pass "a relay refusing RCPT: exit 1, RSET and QUIT still sent, the step named last"
stop_pid "$SINK_PID"

start_sink -g 554
conf "relay = 127.0.0.1:$SINK_PORT"
route relay
expect_rc 1
last_has '^result: FAILED at greeting: 554 '
stop_pid "$SINK_PID"
DEAD=$(free_port)
conf "relay = 127.0.0.1:$DEAD"
route relay
expect_rc 1
last_has '^result: FAILED at connect: Connection refused'
pass "a 554 greeting and nothing listening: exit 1 naming greeting / connect"

# ---- independent mode: dnsmasq MX records, aiosmtpd peers on 127.0.0.2 / .4 ----
MX_PORT=$(free_port_all 127.0.0.2 127.0.0.3 127.0.0.4)
start_dnsmasq route - --local-ttl=60 \
	--mx-host=good.test,mx.test,10 --host-record=mx.test,127.0.0.2 \
	--mx-host=walk.test,dead.test,10 --mx-host=walk.test,mx.test,20 --host-record=dead.test,127.0.0.3 \
	--mx-host=wrong.test,wrongmx.test,10 --host-record=wrongmx.test,127.0.0.4 \
	--mx-host=null.test,.,0 --address=/nx.test/
mx_conf() {
	conf "mode = independent" "port = $MX_PORT" "dns_servers = 127.0.0.1:$DNS_PORT" \
		"dns_timeout = 500ms" "dns_tries = 1" "tls_ca_file = $C/ca.pem" "$@"
}
peer good 127.0.0.2 "$MX_PORT" --cert "$C/server.pem" --key "$C/server.key" \
	--user "$USER_" --password "$PASS"
GOOD_PID=$PEER_PID
peer wrong 127.0.0.4 "$MX_PORT" --cert "$C/wrongname.pem" --key "$C/wrongname.key"

mx_conf "tls = required" "tls_verify = ca"
route good.test
expect_rc 0
has '^MX lookup of good\.test .*: ok in' && has '1\. mx\.test  preference 10' && has 'A +127\.0\.0\.2'
has 'STARTTLS +220 ' && has 'TLS handshake +TLSv1\.[23], '
has 'subject: +CN=mx\.test, O=riptide tests' && has 'issuer: +CN=riptide test CA, O=riptide tests'
has 'validity: +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC to [0-9]{4}-'
has 'verification: verified \(name mx\.test, tls_verify = ca\)'
awk '/TLS handshake/{t=NR} /EHLO riptide\.test/{if (t && NR > t) e=1} END{exit !e}' "$T/out" ||
	fail "no EHLO after the handshake"
last_has 'accepted by mx\.test \[127\.0\.0\.2:[0-9]+\], TLS, certificate verified$'
grep -q '^rcpt postmaster@good.test tls=True' "$T/peer-good.log" || fail "the peer saw no RCPT over TLS"
pass "MX lookup printed; STARTTLS verified against the CA: subject, issuer, validity; exit 0"

route walk.test
expect_rc 0
has 'target 1 of 2: dead\.test \[127\.0\.0\.3:' && has 'connect +FAILED: Connection refused'
has 'the daemon tries the next target' && has 'target 2 of 2: mx\.test'
pass "MX walk: a refused first host, the next one tried"

conf "relay = mx.test:$MX_PORT" "dns_servers = 127.0.0.1:$DNS_PORT" "dns_timeout = 500ms" \
	"dns_tries = 1" "tls = required" "tls_ca_file = $C/ca.pem" "source_address = 127.0.0.5"
mxq=$(dns_queries route MX mx.test)
route relay
expect_rc 0
has '^relay = mx\.test:[0-9]+: a host name' && has '^A/AAAA lookup of mx\.test: ok'
has 'verification: verified \(name mx\.test' && has 'connected to 127\.0\.0\.2:[0-9]+ from 127\.0\.0\.5$'
[ "$(dns_queries route MX mx.test)" = "$mxq" ] || fail "the relay's name was looked up as MX"
grep -q '^rcpt postmaster@riptide.test .*peer=127.0.0.5$' "$T/peer-good.log" ||
	fail "source_address not used: $(cat "$T/peer-good.log")"
pass "a relay by name: A/AAAA only (no MX query), its certificate checked against that name; source_address"

RAWP=$(free_port_all 127.0.0.6)
raw() {
	/usr/bin/python3 "$T/raw.py" 127.0.0.6 "$RAWP" "$1" 2>>"$T/raw.err" &
	RAW_PID=$!
	PIDS+=("$RAW_PID")
	wait_tcp 127.0.0.6 "$RAWP" "$RAW_PID"
}
raw inject
conf "relay = 127.0.0.6:$RAWP" "tls = required"
route relay
expect_rc 1
has 'STARTTLS +220 2\.0\.0 go ahead' && ! grep -q 'TLS handshake' "$T/out" || fail "handshake after injection"
last_has '^result: FAILED at STARTTLS: STARTTLS response injection: plaintext after the 220'
stop_pid "$RAW_PID"
raw silent
conf "relay = 127.0.0.6:$RAWP" "greeting_timeout = 1s"
route relay
expect_rc 1
has 'greeting +error: timeout waiting for the server'
last_has '^result: FAILED at greeting: timeout waiting for the server'
stop_pid "$RAW_PID"
pass "plaintext behind STARTTLS's 220 refused (RFC 3207); a silent server: greeting_timeout named"

mx_conf "tls = required" "tls_verify = ca"

route wrong.test
expect_rc 1
has 'TLS handshake +FAILED: certificate verify failed: host name mismatch'
last_has '^result: FAILED at TLS handshake: certificate verify failed: host name mismatch \(want wrongmx\.test\)'
mx_conf "tls = opportunistic" "tls_verify = none"
route wrong.test
expect_rc 0
has 'verification: NOT verified: host name mismatch \(want wrongmx\.test\) \(accepted: tls_verify = none\)'
has 'subject: +CN=wrong\.test'
mx_conf "tls = opportunistic" "tls_verify = ca"
route wrong.test
expect_rc 0
has 'the daemon reconnects to this host without TLS' && has 'offered, not used \(plaintext retry'
last_has 'plaintext after a failed TLS handshake$'
pass "wrong name: exit 1 under required+ca; reported unverified with verify=none; opportunistic retries in plaintext"

mx_conf "tls = required" "auth_user = $USER_" "auth_password = $PASS"
route good.test
expect_rc 0
has 'AUTH PLAIN \*\*\*\* +235 ' && last_has 'authenticated as alice$'
grep -q '^auth PLAIN alice ok' "$T/peer-good.log" || fail "the peer saw no good AUTH PLAIN"
grep -q '^rcpt postmaster@good.test tls=True auth=True' "$T/peer-good.log" || fail "RCPT not authenticated"
mx_conf "tls = required" "auth_user = $USER_" "auth_password = wrong-$PASS"
route good.test
expect_rc 1
has 'AUTH PLAIN \*\*\*\* +535 '
last_has '^result: FAILED at AUTH PLAIN \*\*\*\*: 535 5\.7\.8 .*check auth_user/auth_password'
grep -q '^auth PLAIN alice bad' "$T/peer-good.log" || fail "the peer saw no bad AUTH PLAIN"
mx_conf "tls = none" "auth_user = $USER_" "auth_password = $PASS"
route good.test
expect_rc 1
last_has '^result: FAILED at AUTH: credentials not sent without TLS \(auth_plaintext = no\)'
[ "$(grep -c '^auth' "$T/peer-good.log")" -eq 2 ] || fail "credentials were sent without TLS"
stop_pid "$GOOD_PID"
peer login 127.0.0.2 "$MX_PORT" --cert "$C/server.pem" --key "$C/server.key" \
	--user "$USER_" --password "$PASS" --only-login
mx_conf "tls = required" "auth_user = $USER_" "auth_password = $PASS"
route good.test
expect_rc 0
has 'AUTH LOGIN +334 ' && has 'password \*\*\*\* +235 '
grep -q '^auth LOGIN alice ok' "$T/peer-login.log" || fail "the peer saw no good AUTH LOGIN"
stop_pid "$PEER_PID"
pass "AUTH PLAIN 235 and 535 (named), LOGIN; no credentials without TLS"

peer smtps 127.0.0.2 "$MX_PORT" --cert "$C/server.pem" --key "$C/server.key" --smtps
mx_conf "tls = smtps"
route good.test
expect_rc 0
awk '/TLS handshake/{t=NR} /greeting/{if (t && NR > t) g=1} END{exit !g}' "$T/out" ||
	fail "smtps: the handshake did not come before the greeting"
has 'verification: verified' && last_has 'TLS, certificate verified$'
stop_pid "$PEER_PID"
pass "smtps: TLS on connect, then the greeting"

mx_conf
route null.test
expect_rc 1
last_has '^result: FAILED at MX lookup: null\.test: null MX .*556 5\.1\.10'
route nx.test
expect_rc 1
last_has '^result: FAILED at MX lookup: nx\.test: the domain does not exist.*550 5\.1\.2'
pass "null MX and NXDOMAIN: the daemon's verdicts, exit 1"

# ---- static routes: exact (hosts), wildcard (relay), disabled, the global switch ----
HP=$(free_port_all 127.0.0.7)
DEADP=$(free_port_all 127.0.0.8)
start_sink_at 127.0.0.7 "$HP"
routes_conf() {
	mx_conf "tls = opportunistic" "helo_name = default.helo" "$@"
	cat >>"$T/route.conf" <<EOF2
[route exact.test]
hosts = 127.0.0.8:$DEADP 127.0.0.7:$HP
fallback_to_default = no
[route *.wild.test]
mode = relay
relay = 127.0.0.7:$HP
tls = none
helo_name = wild.helo
[route nx.test]
enabled = no
hosts = 127.0.0.7:$HP
EOF2
}
line_of() { grep -n -F -x "$1" "$T/route.conf" | cut -d: -f1; }
routes_conf
route exact.test
expect_rc 0
head -n 1 "$T/out" | grep -Eq "^route: \[route exact\.test\] \(exact match, line $(line_of '[route exact.test]')\): hosts 127\.0\.0\.8:$DEADP 127\.0\.0\.7:$HP, fallback_to_default no\$" ||
	fail "exact route line: $(head -n 1 "$T/out")"
has "target 1 of 2: 127\.0\.0\.8 \[127\.0\.0\.8:$DEADP\]" && has 'connect +FAILED: Connection refused'
has "target 2 of 2: 127\.0\.0\.7 \[127\.0\.0\.7:$HP\]"
last_has "^result: OK: <postmaster@exact\.test> accepted by 127\.0\.0\.7 \[127\.0\.0\.7:$HP\]"
[ "$(rcpt_at 127.0.0.7 postmaster@exact.test)" -eq 0 ] || fail "test-route delivered a message" # RSET: no mail
has 'EHLO default\.helo +250' && has 'STARTTLS +not offered by the server: plaintext'
pass "exact [route] with hosts: named with its line; the dead first host skipped, the live sink takes RCPT"

route a.b.wild.test
expect_rc 0
head -n 1 "$T/out" | grep -Eq "^route: \[route \*\.wild\.test\] \(wildcard match, line $(line_of '[route *.wild.test]')\): relay 127\.0\.0\.7:$HP\$" ||
	fail "wildcard route line: $(head -n 1 "$T/out")"
has '^  tls = none, ' && has 'EHLO wild\.helo +250' && ! grep -q STARTTLS "$T/out"
last_has "accepted by 127\.0\.0\.7 \[127\.0\.0\.7:$HP\], plaintext\$"
pass "wildcard relay [route]: its relay, its tls (none over the default's opportunistic) and helo_name"

route nx.test
expect_rc 1
head -n 1 "$T/out" | grep -Eq '^route: default route: \[route nx\.test\] is disabled \(enabled = no\): MX lookup' ||
	fail "disabled route line: $(head -n 1 "$T/out")"
last_has '^result: FAILED at MX lookup: nx\.test: the domain does not exist'
route null.test
head -n 1 "$T/out" | grep -Eq '^route: default route: no \[route\] matches null\.test: MX lookup' ||
	fail "no route line: $(head -n 1 "$T/out")"
routes_conf "static_routes = no"
route exact.test
expect_rc 1
head -n 1 "$T/out" | grep -Eq '^route: default route: static_routes = no turns \[route exact\.test\] off: MX lookup' ||
	fail "static_routes = no line: $(head -n 1 "$T/out")"
! grep -q 'target .*127\.0\.0\.7' "$T/out" || fail "static_routes = no: the route's hosts were tried"
stop_sink_at 127.0.0.7
pass "a disabled route and static_routes = no: the default route (MX), and the reason named"

# ---- usage and configuration errors; the password never shown ----
route
expect_rc 2
printf '[delivery]\ntls = sometimes\n' >"$T/route.conf"
route relay
expect_rc 2
has 'route\.conf:2:'
mx_conf "tls = required" "tls_ca_file = $T/none.pem"
route good.test
expect_rc 2
pass "usage and configuration errors: exit 2"

B64=$(printf '\0%s\0%s' "$USER_" "$PASS" | base64 -w0)
B64P=$(printf '%s' "$PASS" | base64 -w0)
! grep -qF -e "$PASS" -e "$B64" -e "$B64P" "$T/all.out" || fail "a password or AUTH payload was printed"
grep -q 'password set, not shown' "$T/all.out" || fail "the header does not say a password is set"
pass "the password and the AUTH payloads never appear in any output"
