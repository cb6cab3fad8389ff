#!/usr/bin/env bash
# riptide-sink as a fault tool: each --no-<ext> switch hides exactly its EHLO keyword (and its
# MAIL parameter is then refused), each --reply point answers the chosen code at that step and
# not at the others, --drop-after closes without a reply at the chosen step (earlier pipelined
# replies still arrive), --421-after answers 421 there and closes, --max-rcpts gives 452 4.5.3
# beyond N recipients per transaction, /N and %P rules fire on their share of occurrences, and
# the per-recipient local parts compose with the rules, and DSN (RFC 3461) is offered with the
# MAIL/RCPT parameters of each message recorded in its log line (--no-dsn hides it). The client
# is smtp_dialog.py, so every reply is checked byte for byte (code and enhanced code). --log-peer
# ends each log line with peer=ADDR helo=NAME; the stats max_concurrent (exact over all threads)
# and open_now follow N sessions held open at once.
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")

# up NAME [FLAGS...]: start riptide-sink with FLAGS on an ephemeral loopback port (SP, found
# with ss once the sink says it listens); files $T/NAME.*. (No python here: each dialog already
# starts one, and python's start-up dominates this test on a loaded machine.)
up() {
	SN=$1
	shift
	"$SINK" -t 2 -l 127.0.0.1:0 -o "$T/$SN.log" "$@" >"$T/$SN.out" 2>"$T/$SN.err" &
	SPID=$!
	PIDS+=("$SPID")
	SP=
	for _ in $(seq 200); do
		grep -q 'listening on' "$T/$SN.err" &&
			SP=$(ss -Hltnp | sed -n "s/.* 127\.0\.0\.1:\([0-9]*\) .*pid=$SPID,.*/\1/p" | head -1)
		[ -n "$SP" ] && return 0
		sleep 0.05
	done
	fail "$SN: riptide-sink $* did not start"
}

# talk TAG: run the dialog on stdin against the sink; every EXPECT must match.
talk() {
	python3 "$D/smtp_dialog.py" "$SP" >"$T/$SN.$1.dlg" 2>&1 || {
		cat "$T/$SN.$1.dlg" >&2
		fail "$SN/$1: dialog"
	}
}

# closes TAG: run the dialog on stdin; every EXPECT but the last must match, and the server must
# close the connection (no reply at all) while the last one waits.
closes() {
	local f=$T/$SN.$1.dlg
	if python3 "$D/smtp_dialog.py" "$SP" >"$f" 2>&1; then
		cat "$f" >&2
		fail "$SN/$1: the server replied; expected a close without reply"
	fi
	grep -q 'connection closed while waiting for a reply' "$f" && ! grep -q '^FAIL: expected' "$f" \
		|| { cat "$f" >&2; fail "$SN/$1: not closed at the chosen step"; }
}

# ehlo_kw FILE: the EHLO keywords in a dialog transcript, sorted, on one line.
ehlo_kw() {
	grep -m1 '^<<< 250-' "$1" | sed 's/^<<< //' | tr '|' '\n' | tail -n +2 \
		| sed 's/^ *250[- ]//; s/ .*//' | sort | paste -sd' '
}

ALL="8BITMIME DSN ENHANCEDSTATUSCODES PIPELINING SIZE SMTPUTF8"

# ---- 0. options: -h documents every option; bad values are usage errors (exit 2) ----
"$SINK" -h >"$T/help.txt" || fail "-h exits nonzero"
for o in -l -t -o -d -c -g -x -w -s -q --log-peer --no-pipelining --no-size --no-8bitmime --no-smtputf8 \
	--no-dsn --no-enhancedstatuscodes --no-starttls --reply --drop-after --421-after --max-rcpts; do
	grep -q -- "$o\b" "$T/help.txt" || fail "-h does not document $o"
done
for bad in "--reply rcpt=352" "--reply data=250" "--reply bogus=550" "--reply rcpt" \
	"--reply rcpt=45x" "--reply rcpt%100=450" "--drop-after rcpt/1" "--drop-after mail," \
	"--421-after quit" "--max-rcpts 0" "-g 99"; do
	rc=0
	# shellcheck disable=SC2086
	timeout 5 "$SINK" -q -l "unix:$T/never.sock" $bad >/dev/null 2>&1 || rc=$?
	[ $rc -eq 2 ] || fail "'$bad' was not refused as a usage error (exit $rc)"
done
pass "-h documents every option; bad fault/limit values exit 2"

# ---- 1. hidden extensions, each on its own ----
up plain
talk ehlo <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test> SIZE=100 BODY=8BITMIME SMTPUTF8
EXPECT 250 2.1.0
SEND QUIT
EXPECT 221
EOF
[ "$(ehlo_kw "$T/plain.ehlo.dlg")" = "$ALL" ] || fail "default EHLO: $(ehlo_kw "$T/plain.ehlo.dlg")"
down

# hide SWITCH KEYWORD MAIL-PARAMETER-REFUSED-OR-EMPTY
hide() {
	local sw=$1 kw=$2 param=$3 want
	up "hide$kw" "$sw"
	{
		printf 'GREET\nSEND EHLO client.test\nEXPECT 250\n'
		if [ -n "$param" ]; then
			printf 'SEND MAIL FROM:<s@example.test> %s\nEXPECT 555 5.5.4\n' "$param"
		fi
		printf 'SEND MAIL FROM:<s@example.test>\nEXPECT 250\nSEND QUIT\nEXPECT 221\n'
	} | talk ehlo
	want=$(tr ' ' '\n' <<<"$ALL" | grep -vx "$kw" | paste -sd' ')
	[ "$(ehlo_kw "$T/hide$kw.ehlo.dlg")" = "$want" ] \
		|| fail "$sw: EHLO offers '$(ehlo_kw "$T/hide$kw.ehlo.dlg")', expected '$want'"
	down
}
hide --no-pipelining PIPELINING ""
hide --no-size SIZE "SIZE=100"
hide --no-8bitmime 8BITMIME "BODY=8BITMIME"
hide --no-smtputf8 SMTPUTF8 "SMTPUTF8"
hide --no-dsn DSN "RET=FULL"
hide --no-enhancedstatuscodes ENHANCEDSTATUSCODES ""
grep -q '^<<< 250 Ok$' "$T/hideENHANCEDSTATUSCODES.ehlo.dlg" \
	|| fail "--no-enhancedstatuscodes: MAIL reply still carries an enhanced code"
hide --no-starttls STARTTLS "" # no-op: STARTTLS is not offered; everything else stays
up hidesmtputf8b --no-smtputf8
talk utf8 <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
RAW b"MAIL FROM:<j\xc3\xb6rg@example.test>\r\n"
EXPECT 553 5.6.7
SEND QUIT
EXPECT 221
EOF
down
up hidedsnb --no-dsn
talk rcpt <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test> ENVID=x
EXPECT 555 5.5.4
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<r@example.test> NOTIFY=NEVER
EXPECT 555 5.5.4
SEND RCPT TO:<r@example.test> ORCPT=rfc822;r@example.test
EXPECT 555 5.5.4
SEND QUIT
EXPECT 221
EOF
down
pass "--no-{pipelining,size,8bitmime,smtputf8,dsn,enhancedstatuscodes} hide exactly their" \
	"keyword (SIZE=/BODY=/SMTPUTF8/RET=/ENVID=/NOTIFY=/ORCPT= then 555 5.5.4);" \
	"--no-starttls accepted"

# ---- 2. --reply at each step: the code there, the normal reply elsewhere ----
up reply_ehlo --reply "ehlo=550:5.7.1 go away"
talk d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 550 5.7.1
SEND HELO client.test
EXPECT 550 5.7.1
SEND MAIL FROM:<s@example.test>
EXPECT 503 5.5.1
SEND QUIT
EXPECT 221
EOF
down
up reply_mail --reply "mail=451:4.3.5 try later"
talk d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 451 4.3.5
SEND RCPT TO:<r@example.test>
EXPECT 503 5.5.1
SEND QUIT
EXPECT 221
EOF
down
up reply_rcpt --reply rcpt=452
talk d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250 2.1.0
SEND RCPT TO:<r@example.test>
EXPECT 452 4.3.0
SEND RCPT TO:<q@example.test>
EXPECT 452 4.3.0
SEND DATA
EXPECT 503 5.5.1
SEND QUIT
EXPECT 221
EOF
down
up reply_data --reply "data=554:5.7.1 no data today"
talk d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250 2.1.0
SEND RCPT TO:<r@example.test>
EXPECT 250 2.1.5
SEND DATA
EXPECT 554 5.7.1
SEND RCPT TO:<r@example.test>
EXPECT 503 5.5.1
SEND MAIL FROM:<s@example.test>
EXPECT 250 2.1.0
SEND QUIT
EXPECT 221
EOF
down
up reply_dot --reply "dot=554:5.7.1 rejected"
talk d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250 2.1.0
SEND RCPT TO:<r@example.test>
EXPECT 250 2.1.5
SEND DATA
EXPECT 354
RAW b"Subject: t\r\n\r\nbody\r\n.\r\n"
EXPECT 554 5.7.1
SEND QUIT
EXPECT 221
EOF
down
[ "$(counter messages)" -eq 0 ] && [ "$(counter rejected)" -eq 1 ] && [ ! -s "$T/reply_dot.log" ] \
	|| fail "--reply dot=554: $(cat "$T/reply_dot.out")"
grep -q '^<<< 554 5.7.1 rejected$' "$T/reply_dot.d.dlg" || fail "--reply dot: text not used"
up reply_greet -g 554
talk d <<'EOF'
EXPECT 554 5.3.2
EOF
down
pass "--reply ehlo/helo, mail, rcpt, data, dot (and -g) answer their code only at their step"

# /N: only every Nth occurrence; a 2xx rule at the dot accepts with its text.
up every --reply "dot/2=451:4.7.1 every second" --reply "dot/3=250:2.0.0 custom ok"
{
	printf 'GREET\nSEND EHLO client.test\nEXPECT 250\n'
	for want in "250 2.0.0" "451 4.7.1" "250 2.0.0" "451 4.7.1" "250 2.0.0" "451 4.7.1"; do
		printf 'SEND MAIL FROM:<s@example.test>\nEXPECT 250\nSEND RCPT TO:<r@example.test>\n'
		printf 'EXPECT 250\nSEND DATA\nEXPECT 354\nRAW b"Subject: n\\r\\n\\r\\nx\\r\\n.\\r\\n"\n'
		printf 'EXPECT %s\n' "$want"
	done
	printf 'SEND QUIT\nEXPECT 221\n'
} | talk d
down
# dot #1,3,5 pass the /2 rule; of these the /3 rule sees three and fires on the third (#5).
grep -c '^<<< 250 2.0.0 custom ok$' "$T/every.d.dlg" | grep -qx 1 || fail "/3 rule did not fire once"
[ "$(counter messages)" -eq 3 ] || fail "/N: $(counter messages) messages accepted, expected 3"
pass "STEP/N fires on every Nth occurrence; rules of one step are tried in order"

# %P: about P percent of the occurrences.
up pct --reply "rcpt%50=450:4.2.0 coin"
{
	printf 'GREET\nSEND EHLO client.test\nEXPECT 250\nSEND MAIL FROM:<s@example.test>\nEXPECT 250\n'
	for i in $(seq 400); do printf 'SEND RCPT TO:<r%s@example.test>\n' "$i"; done
	printf 'EXPECTN 400 250\n' # (mismatches are counted below, not here)
} >"$T/pct.steps"
python3 "$D/smtp_dialog.py" "$SP" "$T/pct.steps" >"$T/pct.dlg" 2>&1 || true
down
n450=$(grep -c '^<<< 450 4.2.0 coin$' "$T/pct.dlg" || true)
n250=$(grep -c '^<<< 250 2.1.5' "$T/pct.dlg" || true)
[ $((n450 + n250)) -eq 400 ] && [ "$n450" -ge 120 ] && [ "$n450" -le 280 ] \
	|| fail "%50: $n450 rejected, $n250 accepted of 400"
pass "STEP%P fires on about P percent ($n450 of 400 at 50%)"

# ---- 3. --drop-after: close without a reply, at the chosen step only ----
up drop_connect --drop-after connect
closes d <<'EOF'
GREET
EOF
down
up drop_ehlo --drop-after helo
closes d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
EOF
down
up drop_mail --drop-after mail
closes d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250
EOF
down
# rcpt, pipelined: the replies to MAIL and the first RCPT arrive, the second RCPT gets none.
up drop_rcpt --drop-after rcpt/2
closes d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
RAW b"MAIL FROM:<s@example.test>\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\n"
EXPECT 250 2.1.0
EXPECT 250 2.1.5
EXPECT 250
EOF
down
up drop_data --drop-after data
closes d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<r@example.test>
EXPECT 250
SEND DATA
EXPECT 354
EOF
down
up drop_dot --drop-after .
closes d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<r@example.test>
EXPECT 250
SEND DATA
EXPECT 354
RAW b"Subject: t\r\n\r\nbody\r\n.\r\n"
EXPECT 250
EOF
down
[ "$(counter messages)" -eq 0 ] && [ ! -s "$T/drop_dot.log" ] || fail "a dropped message was accepted"
pass "--drop-after connect, ehlo, mail, rcpt (pipelined), data, dot: closed with no reply there"

# ---- 4. --421-after: 421 at the chosen step, then closed; a list of steps ----
up q421 --421-after ehlo/2,dot
closes first <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<r@example.test>
EXPECT 250
SEND DATA
EXPECT 354
RAW b"Subject: t\r\n\r\nbody\r\n.\r\n"
EXPECT 421 4.3.0
EXPECT 250
EOF
closes second <<'EOF'
GREET
SEND EHLO client.test
EXPECT 421 4.3.0
EXPECT 250
EOF
down
[ "$(counter messages)" -eq 0 ] || fail "--421-after dot accepted the message"
up q421rcpt --421-after rcpt
closes d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<r@example.test>
EXPECT 421 4.3.0
EXPECT 250
EOF
down
pass "--421-after ehlo/2,dot and rcpt: 421 4.3.0 at that step, then closed"

# ---- 5. --max-rcpts, and the local parts composing with the rules ----
up maxr --max-rcpts 2
talk d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<550-x@example.test>
EXPECT 550 5.1.1
SEND RCPT TO:<a@example.test>
EXPECT 250
SEND RCPT TO:<b@example.test>
EXPECT 250
SEND RCPT TO:<c@example.test>
EXPECT 452 4.5.3
SEND RCPT TO:<d@example.test>
EXPECT 452 4.5.3
SEND DATA
EXPECT 354
RAW b"Subject: t\r\n\r\nbody\r\n.\r\n"
EXPECT 250 2.0.0
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<e@example.test>
EXPECT 250
SEND RCPT TO:<f@example.test>
EXPECT 250
SEND RCPT TO:<g@example.test>
EXPECT 452 4.5.3
SEND QUIT
EXPECT 221
EOF
down
grep -q ' s@example.test a@example.test,b@example.test ' "$T/maxr.log" \
	|| fail "--max-rcpts 2: the message does not carry exactly the first two recipients"
pass "--max-rcpts 2: 452 4.5.3 beyond the second accepted recipient of each transaction"

# every 2nd RCPT gets the rule's 452; the others follow their local part (550-, data450-).
up compose --reply "rcpt/2=452:4.5.3 quota"
talk d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<a@example.test>
EXPECT 250 2.1.5
SEND RCPT TO:<550-b@example.test>
EXPECT 452 4.5.3
SEND RCPT TO:<550-c@example.test>
EXPECT 550 5.1.1
SEND RCPT TO:<z@example.test>
EXPECT 452 4.5.3
SEND RCPT TO:<data450-d@example.test>
EXPECT 250 2.1.5
SEND DATA
EXPECT 354
RAW b"Subject: t\r\n\r\nbody\r\n.\r\n"
EXPECT 450 4.3.0
SEND QUIT
EXPECT 221
EOF
down
pass "fault rules compose with the local-part behaviours"

# ---- 6. DSN: the MAIL/RCPT parameters each message came with are in its log line ----
up dsn
talk d <<'EOF'
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@example.test> ret=hdrs ENVID=QQ+2b1+3D2 BODY=8BITMIME SIZE=100
EXPECT 250 2.1.0
SEND RCPT TO:<a@example.test> NOTIFY=success,failure ORCPT=rfc822;a+2Bx@example.test
EXPECT 250 2.1.5
SEND RCPT TO:<b@example.test>
EXPECT 250 2.1.5
SEND RCPT TO:<d@example.test> NOTIFY=NEVER,SUCCESS
EXPECT 501 5.5.4
SEND RCPT TO:<c@example.test> NOTIFY=NEVER
EXPECT 250 2.1.5
SEND DATA
EXPECT 354
RAW b"Message-ID: <dsn1@example.test>\r\n\r\nbody\r\n.\r\n"
EXPECT 250 2.0.0
SEND MAIL FROM:<s@example.test> RET=FULL RET=HDRS
EXPECT 501 5.5.4
SEND MAIL FROM:<s@example.test> ENVID=a+0Db
EXPECT 501 5.5.4
SEND MAIL FROM:<s@example.test>
EXPECT 250 2.1.0
SEND RCPT TO:<e@example.test>
EXPECT 250 2.1.5
SEND DATA
EXPECT 354
RAW b"Message-ID: <dsn2@example.test>\r\n\r\nbody\r\n.\r\n"
EXPECT 250 2.0.0
SEND QUIT
EXPECT 221
EOF
down
got=$(grep ' <dsn1@example.test> ' "$T/dsn.log" | cut -d' ' -f2,3,6-)
want="s@example.test a@example.test,b@example.test,c@example.test <dsn1@example.test> BODY=8BITMIME"
want+=" RET=HDRS ENVID=QQ+2B1+3D2 0:NOTIFY=SUCCESS,FAILURE 0:ORCPT=rfc822;a+2Bx@example.test"
want+=" 2:NOTIFY=NEVER"
[ "$got" = "$want" ] || fail "DSN parameters in the log line: '$got', expected '$want'"
got=$(grep ' <dsn2@example.test>' "$T/dsn.log" | cut -d' ' -f2,3,6-)
[ "$got" = "s@example.test e@example.test <dsn2@example.test>" ] \
	|| fail "a message without parameters: '$got'"
pass "DSN offered; RET/ENVID/NOTIFY/ORCPT recorded per message and recipient (canonical form);" \
	"bad values 501 5.5.4"

# ---- 7. --log-peer: peer=ADDR helo=NAME end each log line (TCP v4, v6, unix:) ----
up peer --log-peer -l "unix:$T/peer.sock" -l "[::1]:0"
swaks -s 127.0.0.1 -p "$SP" -f s@example.test -t a@example.test --ehlo helo-one.example.test \
	>"$T/peer.swaks1" 2>&1 || fail "swaks over TCP: $(tail -5 "$T/peer.swaks1")"
swaks --socket "$T/peer.sock" -f s@example.test -t b@example.test --ehlo helo-unix.test \
	>"$T/peer.swaks2" 2>&1 || fail "swaks over unix: $(tail -5 "$T/peer.swaks2")"
P6=$(ss -Hltnp | sed -n "s/.* \[::1\]:\([0-9]*\) .*pid=$SPID,.*/\1/p" | head -1)
[ -n "$P6" ] || fail "no [::1] listener"
# (this swaks has no IPv6: riptide-blast, whose EHLO name is riptide-blast.test)
"$BLAST" -q -t "[::1]:$P6" -n 1 --rcpt c@example.test >"$T/peer.bout6" 2>&1 ||
	fail "blast over ::1: $(cat "$T/peer.bout6")"
# A second EHLO replaces the first; only the first word of the argument is the name.
talk d <<'EOF2'
GREET
SEND EHLO first.test
EXPECT 250
SEND EHLO second.test and=more words
EXPECT 250
SEND MAIL FROM:<s@example.test> RET=HDRS
EXPECT 250
SEND RCPT TO:<d@example.test>
EXPECT 250
SEND DATA
EXPECT 354
RAW b"Message-ID: <peer4@example.test>\r\n\r\nbody\r\n.\r\n"
EXPECT 250 2.0.0
SEND QUIT
EXPECT 221
EOF2
"$BLAST" -q -t "127.0.0.1:$SP" -n 25 -c 5 -d blast.test >"$T/peer.bout" 2>&1 ||
	fail "blast: $(cat "$T/peer.bout")"
down
# after_mid RCPT: the fields after the Message-ID of the line of the message to RCPT.
after_mid() { grep " $1@example.test " "$T/peer.log" | cut -d' ' -f7-; }
[ "$(after_mid a)" = "peer=127.0.0.1 helo=helo-one.example.test" ] || fail "TCP: '$(after_mid a)'"
[ "$(after_mid b)" = "peer=unix helo=helo-unix.test" ] || fail "unix: '$(after_mid b)'"
[ "$(after_mid c)" = "peer=::1 helo=riptide-blast.test" ] || fail "::1: '$(after_mid c)'"
[ "$(after_mid d)" = "RET=HDRS peer=127.0.0.1 helo=second.test" ] ||
	fail "second greeting: '$(after_mid d)'"
# Messages per client address, from the log alone (blast's 25 come from 127.0.0.1 too).
per=$(grep -o ' peer=[^ ]*' "$T/peer.log" | LC_ALL=C sort | uniq -c | awk '{print $2 "=" $1}' |
	paste -sd' ')
[ "$per" = "peer=127.0.0.1=27 peer=::1=1 peer=unix=1" ] || fail "messages per peer: $per"
[ "$(grep -c ' peer=127\.0\.0\.1 helo=riptide-blast\.test$' "$T/peer.log")" = 25 ] ||
	fail "blast's EHLO name not on its 25 lines"
[ "$(awk '{print $(NF-1), $NF}' "$T/peer.log" | grep -vc '^peer=[^ ]* helo=[^ ]*$')" = 0 ] ||
	fail "peer= and helo= are not the last two fields of every line"
pass "--log-peer: peer=127.0.0.1 / ::1 / unix and helo=<the current greeting's name> end" \
	"every line; messages per peer countable ($per)"

# ---- 8. stats: max_concurrent (exact, all threads) and open_now ----
# hold N: open N connections, each waits for its greeting and its EHLO reply (so the sink has
# seen it), then all stay open until $T/release exists; then they close.
hold() {
	rm -f "$T/release" "$T/held"
	python3 - "$SP" "$1" "$T/release" "$T/held" <<'PY' &
import os, socket, sys, time
port, n, release, held = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ss = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
for s in ss:
    f = s.makefile("rb")
    assert f.readline().startswith(b"220"), "greeting"
    s.sendall(b"EHLO hold.test\r\n")
    while (l := f.readline())[:4] != b"250 ":
        assert l.startswith(b"250-"), l
open(held, "w").close()
while not os.path.exists(release):
    time.sleep(0.05)
for s in ss:
    s.close()
PY
	HPID=$!
	PIDS+=("$HPID")
	wait_until 20 test -e "$T/held" || fail "hold $1: connections not ready"
}
release() {
	touch "$T/release"
	wait "$HPID" || fail "hold: the client failed"
}
cstat() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" "$T/conc.stats" 2>/dev/null; }
stats_are() { [ "$(cstat max_concurrent)" = "$1" ] && [ "$(cstat open_now)" = "$2" ]; }

N=12
up conc -t 3 -c "$T/conc.stats"
wait_until 10 stats_are 0 0 || fail "fresh sink: $(cat "$T/conc.stats")"
hold $N
wait_until 10 stats_are $N $N || fail "$N held: $(cat "$T/conc.stats")"
release
wait_until 10 stats_are $N 0 || fail "after closing $N: $(cat "$T/conc.stats")"
hold 3 # fewer at once later: the maximum stays
wait_until 10 stats_are $N 3 || fail "3 held after $N: $(cat "$T/conc.stats")"
release
wait_until 10 stats_are $N 0 || fail "after closing 3: $(cat "$T/conc.stats")"
hold $((N + 5))
wait_until 10 stats_are $((N + 5)) $((N + 5)) || fail "$((N + 5)) held: $(cat "$T/conc.stats")"
release
wait_until 10 stats_are $((N + 5)) 0 || fail "after closing $((N + 5)): $(cat "$T/conc.stats")"
down
[ "$(counter max_concurrent)" = $((N + 5)) ] && [ "$(counter open_now)" = 0 ] &&
	[ "$(counter connections)" = $((2 * N + 8)) ] || fail "exit line: $(cat "$T/conc.out")"
keys=$(grep -o '[a-z_]*=' "$T/conc.out" | paste -sd' ')
[ "$keys" = "messages= recipients= bytes= connections= rejected= tls_sessions= max_concurrent= open_now=" ] ||
	fail "stat names or order changed: $(cat "$T/conc.out")"
pass "stats: max_concurrent reaches N sessions held at once over 3 threads ($N, then $((N + 5)))" \
	"and stays; open_now follows the open sessions back to 0"
