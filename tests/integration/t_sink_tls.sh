#!/usr/bin/env bash
# riptide-sink and riptide-blast with TLS and AUTH, against peers riptide did not write (swaks,
# openssl s_client): STARTTLS (--tls-cert/--tls-key) and an implicit-TLS listener (--tls-listen)
# deliver and log tls=<the version negotiated> (TLS 1.3, or 1.2 when the client asks for it),
# s_client sees and verifies the certificate; AUTH PLAIN/LOGIN (--auth) gives 235 for the right
# password and 535 for a wrong one, is offered only after STARTTLS (or on a UNIX socket, or with
# --auth-plaintext) and logs auth=USER; --auth-required answers MAIL without AUTH with 530 5.7.0;
# --tls-fail answers STARTTLS with 220 and fails every handshake, yet plaintext still delivers;
# riptide-blast --tls/--tls-required/--smtps deliver N messages over TLS (the sink's log and
# both sides' counters agree), --auth logs in (and a wrong password fails every connection),
# --tls falls back to plaintext when the handshake fails, and plaintext blast still works.
# Certificates come from mkcerts.sh at test time.
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
C=$T/certs
bash "$D/mkcerts.sh" "$C" || fail "mkcerts.sh"

# up NAME [FLAGS...]: riptide-sink with a plaintext listener on P and an implicit-TLS one on
# PT when FLAGS ask for it (pass "--tls-listen" "127.0.0.1:\$PT" after setting PT); files
# $T/NAME.{log,out,err}; SN SPID.
up() {
	SN=$1
	shift
	"$SINK" -t 2 -l "127.0.0.1:$P" -o "$T/$SN.log" "$@" >"$T/$SN.out" 2>"$T/$SN.err" &
	SPID=$!
	PIDS+=("$SPID")
	wait_port "$P"
}

# sw TAG [SWAKS ARGS...]: one message with Message-Id <TAG@t> to the sink (port P unless the
# args say otherwise); the transcript in $T/sw-TAG.out, swaks' exit status in SW_RC.
sw() {
	local tag=$1
	shift
	SW_RC=0
	timeout 20 swaks --server "127.0.0.1:$P" --from s@sender.test --to r@rcpt.test \
		--header "Message-Id: <$tag@t>" "$@" >"$T/sw-$tag.out" 2>&1 || SW_RC=$?
}

# line TAG: the sink's log line of the message with Message-Id <TAG@t> ("" if none). The sink
# writes its log every 100 ms: look for a line that must be there with wait_until, and for one
# that must not be there only after the sink stopped (down).
line() {
	grep " <$1@t>" "$T/$SN.log" 2>/dev/null || true
}

# has TAG REGEX / hasnt TAG REGEX: the transcript of sw TAG matches REGEX (or not).
has() { grep -Eq -- "$2" "$T/sw-$1.out" || { cat "$T/sw-$1.out" >&2; fail "$1: no '$2'"; }; }
hasnt() { ! grep -Eq -- "$2" "$T/sw-$1.out" || { cat "$T/sw-$1.out" >&2; fail "$1: '$2'"; }; }

# logged TAG FIELDS...: the message arrived, and its log line ends in exactly FIELDS (each an
# ERE, e.g. "$TLS13") after the Message-ID ("" for none).
TLS13='tls=TLSv1\.3'
logged() {
	local tag=$1 want
	shift
	want=" <$tag@t>${*:+ $*}\$"
	wait_until 5 grep -q " <$tag@t>" "$T/$SN.log" || fail "$tag: not in the sink's log"
	line "$tag" | grep -Eq -- "$want" ||
		fail "$tag: log line '$(line "$tag")', want it to end in '$want'"
}

# absent TAG...: after down, none of these messages is in the sink's log.
absent() {
	for tag in "$@"; do
		[ -z "$(line "$tag")" ] || fail "$tag: delivered: $(line "$tag")"
	done
}

# ---- 0. options: -h documents the new flags; nonsense is a usage error (exit 2) ----
"$SINK" -h >"$T/help.txt" || fail "riptide-sink -h"
for o in --tls-cert --tls-key --tls-listen --tls-fail --auth --auth-required --auth-plaintext; do
	grep -q -- "$o\b" "$T/help.txt" || fail "riptide-sink -h does not document $o"
done
P=$(free_port)
for bad in "--tls-cert $C/server.pem" "--tls-key $C/server.key" "--tls-listen 127.0.0.1:$P" \
	"--tls-fail --tls-cert $C/server.pem --tls-key $C/server.key" "--auth alice" \
	"--auth :pw" "--auth a\ b:pw" "--auth-plaintext"; do
	rc=0
	eval "\"\$SINK\" -q -l 127.0.0.1:$P $bad" >/dev/null 2>"$T/bad.err" || rc=$?
	[ $rc -eq 2 ] || fail "riptide-sink $bad: exit $rc, want 2"
done
rc=0
"$SINK" -q -l "127.0.0.1:$P" --tls-cert "$C/server.pem" --tls-key "$C/other.key" \
	2>"$T/badkey.err" || rc=$?
[ $rc -eq 1 ] && grep -q 'TLS:' "$T/badkey.err" || fail "a key not matching the certificate: exit $rc"
"$BLAST" -h >"$T/bhelp.txt" || fail "riptide-blast -h"
for o in --tls --tls-required --smtps --auth --auth-plaintext; do
	grep -q -- "$o\b" "$T/bhelp.txt" || fail "riptide-blast -h does not document $o"
done
rc=0
"$BLAST" -q -n 1 --tls --smtps >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "riptide-blast --tls --smtps: exit $rc, want 2"
pass "options"

# ---- 1. STARTTLS + implicit TLS + AUTH on one sink ----
P=$(free_port)
PT=$(free_port)
up tls --tls-cert "$C/server-chain.pem" --tls-key "$C/server.key" --tls-listen "127.0.0.1:$PT" \
	--auth alice:s3cret --auth 'bob:pa:ss w0rd'
wait_port "$PT"

sw plain
[ $SW_RC -eq 0 ] || fail "plaintext swaks: exit $SW_RC"
has plain '250-STARTTLS'
hasnt plain 'AUTH'
logged plain ""

sw starttls --tls
[ $SW_RC -eq 0 ] || fail "swaks --tls: exit $SW_RC"
has starttls '220 2.0.0 Ready to start TLS'
has starttls '=== TLS started with cipher TLSv1\.[23]'
has starttls 'peer DN="/O=riptide tests/CN=mx.test"'
has starttls 'AUTH PLAIN LOGIN' # offered once TLS is up
logged starttls "$TLS13"
sw tls12 --tls --tls-protocol tlsv1_2
[ $SW_RC -eq 0 ] || fail "swaks --tls --tls-protocol tlsv1_2: exit $SW_RC"
has tls12 '=== TLS started with cipher TLSv1\.2'
logged tls12 'tls=TLSv1\.2'

sw smtps --server "127.0.0.1:$PT" --tlsc
[ $SW_RC -eq 0 ] || fail "swaks --tlsc: exit $SW_RC"
has smtps '=== TLS started with cipher'
logged smtps "$TLS13"

timeout 20 openssl s_client -connect "127.0.0.1:$P" -starttls smtp -CAfile "$C/ca.pem" \
	-verify_hostname mx.test </dev/null >"$T/s_client.out" 2>&1 || true
grep -q 'subject=.*CN *= *mx.test' "$T/s_client.out" &&
	grep -q 'issuer=.*CN *= *riptide test CA' "$T/s_client.out" &&
	grep -q 'Verify return code: 0 (ok)' "$T/s_client.out" ||
	{ cat "$T/s_client.out" >&2; fail "openssl s_client -starttls smtp: certificate not seen"; }
pass "STARTTLS and --tls-listen: swaks delivers, s_client sees and verifies the certificate"

sw noauth --auth PLAIN --auth-user alice --auth-password s3cret # no TLS: no AUTH offered
[ $SW_RC -ne 0 ] || fail "AUTH without TLS succeeded"
ABSENT="noauth"
python3 "$D/smtp_dialog.py" "$P" >"$T/538.dlg" 2>&1 <<'EOF' || { cat "$T/538.dlg" >&2; fail "538"; }
GREET
SEND EHLO x
EXPECT 250
SEND AUTH PLAIN AGFsaWNlAHMzY3JldA==
EXPECT 538 5.7.11
SEND QUIT
EXPECT 221
EOF
sw plainok --tls --auth PLAIN --auth-user alice --auth-password s3cret
[ $SW_RC -eq 0 ] || fail "AUTH PLAIN alice: exit $SW_RC"
has plainok '235 2.7.0 Authentication successful'
logged plainok "$TLS13 auth=alice"
sw loginok --server "127.0.0.1:$PT" --tlsc --auth LOGIN --auth-user bob --auth-password 'pa:ss w0rd'
[ $SW_RC -eq 0 ] || fail "AUTH LOGIN bob: exit $SW_RC"
has loginok '235 2.7.0'
logged loginok "$TLS13 auth=bob"
for m in PLAIN LOGIN; do
	sw "bad$m" --tls --auth $m --auth-user alice --auth-password s3creT
	[ $SW_RC -ne 0 ] || fail "AUTH $m with a wrong password: exit 0"
	has "bad$m" '535 5.7.8 Authentication credentials invalid'
	ABSENT+=" bad$m"
done
sw baduser --tls --auth PLAIN --auth-user carol --auth-password s3cret
has baduser '535 5.7.8'
ABSENT+=" baduser"
pass "AUTH PLAIN/LOGIN: 235 and auth=USER for the right password, 535 for a wrong one, 538 before TLS"

# ---- 2. riptide-blast over TLS to the same sink ----
N=120
blast() {
	local tag=$1
	shift
	"$BLAST" -q -t "127.0.0.1:$P" -n $N -c 4 -m 20 -L "$T/$tag.blast" "$@" >"$T/$tag.bout" \
		2>"$T/$tag.berr" || { cat "$T/$tag.berr" >&2; fail "riptide-blast $tag $*"; }
	BR=$(cat "$T/$tag.bout")
	[[ $BR == *" ok=$N "* ]] || fail "riptide-blast $*: $BR"
	wait_until 10 all_in "$T/$tag.blast" || fail "riptide-blast $*: not all in the sink's log"
}
# all_in BLASTLOG: every message of BLASTLOG that got a 250 is in the sink's log.
all_in() {
	python3 - "$1" "$T/$SN.log" <<'PY'
import sys
ids = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] == "250"}
got = {l.split()[5] for l in open(sys.argv[2])}
sys.exit(0 if ids <= got else 1)
PY
}
# tls_lines BLASTLOG [FIELD]: how many of the messages in BLASTLOG the sink logged with
# tls=TLSv1.3 (and FIELD, e.g. auth=alice); plain_lines BLASTLOG: ... with neither tls= nor auth=.
tls_lines() {
	python3 - "$1" "$T/$SN.log" "${2:-}" <<'PY'
import sys
ids = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] == "250"}
want = {"tls=TLSv1.3"} | ({sys.argv[3]} if sys.argv[3] else set())
print(sum(1 for l in open(sys.argv[2]) if l.split()[5] in ids and want <= set(l.split()[6:])))
PY
}
plain_lines() {
	python3 - "$1" "$T/$SN.log" <<'PY'
import sys
ids = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] == "250"}
print(sum(1 for l in open(sys.argv[2]) if l.split()[5] in ids and len(l.split()) == 6))
PY
}
blast bt --tls
[[ $BR =~ sessions=([0-9]+)\ tls_sessions=([0-9]+)\ tls_failed=0 ]] &&
	[ "${BASH_REMATCH[1]}" -gt 0 ] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] ||
	fail "blast --tls: not every session was encrypted: $BR"
[ "$(tls_lines "$T/bt.blast")" = $N ] || fail "blast --tls: $(tls_lines "$T/bt.blast") of $N logged tls="
grep -q 'TLS: .* sessions (TLSv1\.[23] ' "$T/bt.berr" || fail "blast --tls: no TLS summary"
blast br --tls-required
[[ $BR == *" tls_failed=0"* && ! $BR =~ \ tls_sessions=0\  ]] || fail "blast --tls-required: $BR"
[ "$(tls_lines "$T/br.blast")" = $N ] || fail "blast --tls-required: not all logged tls="
P0=$P
P=$PT blast bs --smtps
[ "$(tls_lines "$T/bs.blast")" = $N ] || fail "blast --smtps: not all logged tls="
P=$P0
blast ba --tls-required --auth alice:s3cret
[ "$(tls_lines "$T/ba.blast" auth=alice)" = $N ] || fail "blast --auth: not all logged auth=alice"
rc=0
"$BLAST" -q -t "127.0.0.1:$P" -n 10 -c 2 --tls-required --auth alice:Wr0ng >"$T/bw.bout" \
	2>"$T/bw.berr" || rc=$?
BR=$(cat "$T/bw.bout")
[ $rc -eq 1 ] && [[ $BR == *" ok=0 "* && ! $BR =~ auth_failed=0 ]] ||
	fail "blast --auth with a wrong password: exit $rc: $BR"
grep -q 'authentication failed' "$T/bw.berr" || fail "blast --auth alice:Wr0ng: no AUTH error"
! grep -q 'Wr0ng' "$T/bw.berr" "$T/bw.bout" || fail "riptide-blast printed the password"
blast bp
[[ $BR == *" tls_sessions=0 tls_failed=0"* ]] || fail "plaintext blast: $BR"
[ "$(plain_lines "$T/bp.blast")" = $N ] || fail "plaintext blast: logged with tls= or auth="
grep -c " <blast\." "$T/$SN.log" | grep -qx $((5 * N)) || fail "blast: not 5x$N messages at the sink"
down
absent $ABSENT
# TLS sessions: swaks starttls, tls12, smtps, plainok, loginok, badPLAIN, badLOGIN, baduser,
# s_client, every blast session that got ready but the plaintext ones, and each of bw's (TLS was
# up when its AUTH failed)
bsess=$(sed -n 's/.* auth_failed=\([0-9]*\).*/\1/p' "$T/bw.bout")
for b in bt br bs ba; do
	bsess=$((bsess + $(sed -n 's/.* tls_sessions=\([0-9]*\).*/\1/p' "$T/$b.bout")))
done
[ "$(counter tls_sessions)" = $((9 + bsess)) ] ||
	fail "tls_sessions=$(counter tls_sessions), want $((9 + bsess))"
pass "riptide-blast --tls/--tls-required/--smtps/--auth: $N messages each, all logged tls=TLSv1.3 (auth=alice); a wrong password fails; plaintext still works; tls_sessions=$(counter tls_sessions)"

# ---- 3. --auth-required; AUTH on a UNIX socket without TLS; --auth-plaintext ----
P=$(free_port)
up req --tls-cert "$C/server.pem" --tls-key "$C/server.key" --auth alice:s3cret --auth-required \
	-l "unix:$T/req.sock"
sw req-plain
has req-plain '530 5.7.0 Authentication required'
sw req-tls --tls
has req-tls '530 5.7.0 Authentication required'
sw req-auth --tls --auth PLAIN --auth-user alice --auth-password s3cret
[ $SW_RC -eq 0 ] || fail "--auth-required with AUTH: exit $SW_RC"
logged req-auth "$TLS13 auth=alice"
timeout 20 swaks --socket "$T/req.sock" --from s@sender.test --to r@rcpt.test \
	--header "Message-Id: <req-unix@t>" --auth LOGIN --auth-user alice --auth-password s3cret \
	>"$T/sw-req-unix.out" 2>&1 || fail "AUTH over the UNIX socket: $(tail -n 3 "$T/sw-req-unix.out")"
logged req-unix "auth=alice" # secure without TLS: no tls=
down
absent req-plain req-tls
[ "$(counter rejected)" = 2 ] || fail "--auth-required: rejected=$(counter rejected), want 2"
pass "--auth-required: 530 5.7.0 without AUTH, 250 after; AUTH on a UNIX socket without TLS"

P=$(free_port)
up apt --auth alice:s3cret --auth-plaintext
sw apt-swaks --auth PLAIN --auth-user alice --auth-password s3cret
[ $SW_RC -eq 0 ] || fail "--auth-plaintext: swaks AUTH PLAIN without TLS: exit $SW_RC"
hasnt apt-swaks 'STARTTLS'
logged apt-swaks "auth=alice"
rc=0
"$BLAST" -q -t "127.0.0.1:$P" -n 5 -c 1 --auth alice:s3cret >"$T/apt1.bout" 2>"$T/apt1.berr" || rc=$?
[ $rc -eq 1 ] && grep -q 'not encrypted' "$T/apt1.berr" ||
	fail "blast --auth without --auth-plaintext over plaintext: exit $rc: $(cat "$T/apt1.berr")"
"$BLAST" -q -t "127.0.0.1:$P" -n 30 -c 2 --auth alice:s3cret --auth-plaintext -L "$T/apt2.blast" \
	>"$T/apt2.bout" 2>"$T/apt2.berr" || fail "blast --auth --auth-plaintext: $(cat "$T/apt2.berr")"
wait_until 10 all_in "$T/apt2.blast" || fail "blast --auth --auth-plaintext: not all in the log"
[ "$(grep -c ' <blast\..* auth=alice$' "$T/$SN.log")" = 30 ] ||
	fail "blast --auth --auth-plaintext: not 30 lines ending in auth=alice"
down
pass "--auth-plaintext: AUTH without TLS (swaks, blast --auth-plaintext; blast refuses without it)"

# ---- 4. --tls-fail: 220 to STARTTLS, then every handshake fails; plaintext still delivers ----
P=$(free_port)
PT=$(free_port)
up fail --tls-fail --tls-listen "127.0.0.1:$PT"
wait_port "$PT"
sw fail-tls --tls
[ $SW_RC -ne 0 ] || fail "swaks --tls against --tls-fail: exit 0"
has fail-tls '250-STARTTLS'
has fail-tls '220 2.0.0 Ready to start TLS'
has fail-tls 'TLS startup failed'
sw fail-tlsc --server "127.0.0.1:$PT" --tlsc
[ $SW_RC -ne 0 ] || fail "swaks --tlsc against --tls-fail: exit 0"
has fail-tlsc 'TLS startup failed'
timeout 20 openssl s_client -connect "127.0.0.1:$P" -starttls smtp </dev/null \
	>"$T/fail-s_client.out" 2>&1 && fail "openssl s_client: handshake with --tls-fail succeeded"
sw fail-plain
[ $SW_RC -eq 0 ] || fail "plaintext to --tls-fail: exit $SW_RC"
logged fail-plain ""
# riptide-blast: --tls falls back to plaintext (and delivers), --tls-required gives up
"$BLAST" -q -t "127.0.0.1:$P" -n 40 -c 2 --tls >"$T/ft.bout" 2>"$T/ft.berr" ||
	fail "blast --tls against --tls-fail: $(cat "$T/ft.bout" "$T/ft.berr")"
BR=$(cat "$T/ft.bout")
[[ $BR == *" ok=40 "* && $BR == *" tls_sessions=0 "* && ! $BR =~ tls_failed=0 ]] ||
	fail "blast --tls against --tls-fail: $BR"
rc=0
"$BLAST" -q -t "127.0.0.1:$P" -n 10 -c 1 --tls-required >"$T/fr.bout" 2>"$T/fr.berr" || rc=$?
BR=$(cat "$T/fr.bout")
[ $rc -eq 1 ] && [[ $BR == *" ok=0 "* && ! $BR =~ tls_failed=0 ]] ||
	fail "blast --tls-required against --tls-fail: exit $rc: $BR"
grep -Eq 'TLS handshake failed|STARTTLS response injection' "$T/fr.berr" ||
	fail "blast --tls-required: no TLS error"
down
absent fail-tls fail-tlsc
[ "$(counter messages)" = 41 ] || fail "--tls-fail: messages=$(counter messages), want 41"
pass "--tls-fail: STARTTLS answered 220, handshakes fail (swaks, s_client, blast), plaintext delivers"
