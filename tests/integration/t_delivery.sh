#!/usr/bin/env bash
# swaks and riptide-blast inject (TCP and UNIX socket); riptide-sink receives byte-identical
# bodies: dot-stuffing round trip, 8-bit content, a long message; the delivery log has one
# line per delivered recipient; the queue is empty afterwards.
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
start_sink
write_config </dev/null
start_riptide

python3 - "$T" <<'PY'
import sys, random
t = sys.argv[1]
crlf = lambda lines: ("\r\n".join(lines) + "\r\n").encode("latin-1")
open(f"{t}/dots.eml", "wb").write(crlf(["Subject: dots", "", ".", "..", ".leading dot",
    "middle . dot", "...", ". space", "end"]))
body8 = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".encode() + \
    "Grüße aus Köln — 日本語 ✓\r\n".encode() + bytes(range(0x80, 0x100)) + b"\r\n"
open(f"{t}/8bit.eml", "wb").write(body8)
random.seed(7)
lines = ["Subject: long", ""] + [("." if i % 97 == 0 else "") +
    "".join(random.choice("abcdefghijklmnopqrstuvwxyz .") for _ in range(76)) for i in range(14000)]
open(f"{t}/long.eml", "wb").write(crlf(lines))
PY
n=0
for f in dots 8bit long; do
	swaks -S 2 --server "127.0.0.1:$INJ_PORT" --from sender@example.test \
		--to "rcpt-$f@example.test" --data "@$T/$f.eml" --8bitmime >"$T/swaks-$f.out" 2>&1 \
		|| fail "swaks $f failed: $(tail -n 5 "$T/swaks-$f.out")"
	grep -q '<~  250 2.0.0 Ok: queued as [0-9a-f]\{32\}' "$T/swaks-$f.out" \
		|| fail "no 'queued as <id>' reply for $f"
	n=$((n + 1))
done
python3 "$D/smtp_dialog.py" "unix:$T/inject.sock" <<EOF2 || fail "UNIX socket injection"
GREET
SEND EHLO unix.test
EXPECT 250
SEND MAIL FROM:<sender@example.test>
EXPECT 250
SEND RCPT TO:<rcpt-unix@example.test>
EXPECT 250
SEND DATA
EXPECT 354
BODYFILE $T/dots.eml
EXPECT 250 2.0.0
SEND QUIT
EXPECT 221
EOF2
n=$((n + 1))
wait_until 30 test "$(sink_messages)" -ge "$n" || fail "sink got $(sink_messages) of $n"
for f in dots 8bit long; do
	found=0
	for g in "$SINK_DIR"/*; do cmp -s "$g" "$T/$f.eml" && found=$((found + 1)); done
	[ $found -ge 1 ] || fail "no byte-identical copy of $f.eml at the sink"
done
cmp_count=0
for g in "$SINK_DIR"/*; do cmp -s "$g" "$T/dots.eml" && cmp_count=$((cmp_count + 1)); done
[ $cmp_count -eq 2 ] || fail "expected 2 identical copies of dots.eml (swaks + UNIX), got $cmp_count"
pass "swaks + UNIX socket: byte-identical bodies (dots, 8-bit, 1 MB)"

"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 500 -c 10 -r 2 -d a.example.test,b.example.test \
	-L "$T/blast.log" >"$T/blast.out" || fail "blast failed"
grep -q 'ok=500 ' "$T/blast.out" || fail "blast: $(tail -n1 "$T/blast.out")"
n=$((n + 500))
wait_until 60 test "$(sink_messages)" -ge "$n" || fail "sink got $(sink_messages) of $n"
python3 - "$T/blast.log" "$SINK_LOG" <<'PY' || fail "blast messages missing at the sink"
import sys
sent = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] == "250"}
got = {l.split()[5] for l in open(sys.argv[2])}
missing = sent - got
assert len(sent) == 500 and not missing, f"{len(missing)} of {len(sent)} missing"
PY
stop_riptide
[ "$(log_count delivered)" -eq $((4 + 1000)) ] || fail "delivered lines: $(log_count delivered)"
[ "$(queue_count)" -eq 0 ] || fail "queue not empty"
pass "riptide-blast: 500 messages x 2 recipients delivered, logged, queue empty"
