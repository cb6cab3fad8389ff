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
# swaks: once through riptide, once straight to the sink; riptide must be transparent (same
# body hash at the sink). swaks itself may touch line endings, so the direct copy is the reference.
for f in dots 8bit long; do
	for via in riptide direct; do
		port=$INJ_PORT
		[ $via = direct ] && port=$SINK_PORT
		swaks --server "127.0.0.1:$port" --from sender@example.test \
			--to "$via-$f@example.test" --data "@$T/$f.eml" >"$T/swaks-$via-$f.out" 2>&1 \
			|| fail "swaks $via $f failed: $(tail -n 5 "$T/swaks-$via-$f.out")"
		n=$((n + 1))
	done
	grep -q ' 250 2.0.0 Ok: queued as [0-9a-f]\{32\}$' "$T/swaks-riptide-$f.out" \
		|| fail "no 'queued as <id>' reply for $f"
done
# Raw socket over the UNIX listener: exact bytes, compared with the original files.
{
	echo GREET; echo "SEND EHLO unix.test"; echo "EXPECT 250"
	for f in dots 8bit long; do
		echo "SEND MAIL FROM:<sender@example.test>"; echo "EXPECT 250"
		echo "SEND RCPT TO:<unix-$f@example.test>"; echo "EXPECT 250"
		echo "SEND DATA"; echo "EXPECT 354"; echo "BODYFILE $T/$f.eml"; echo "EXPECT 250 2.0.0"
	done
	echo "SEND QUIT"; echo "EXPECT 221"
} >"$T/unix.steps"
python3 "$D/smtp_dialog.py" "unix:$T/inject.sock" "$T/unix.steps" >"$T/unix.out" \
	|| fail "UNIX socket injection: $(tail -n 3 "$T/unix.out")"
n=$((n + 3))
wait_until 30 sink_ge "$n" || fail "sink got $(sink_messages) of $n"
hash_of() { awk -v r="$1" '$3 == r {print $5}' "$SINK_LOG"; }
for f in dots 8bit long; do
	h1=$(hash_of "riptide-$f@example.test"); h2=$(hash_of "direct-$f@example.test")
	[ -n "$h1" ] && [ "$h1" = "$h2" ] || fail "$f: via riptide $h1, direct $h2"
	found=0
	for g in "$SINK_DIR"/*; do cmp -s "$g" "$T/$f.eml" && found=$((found + 1)); done
	[ $found -ge 1 ] || fail "no byte-identical copy of $f.eml at the sink (UNIX socket path)"
done
pass "swaks (TCP) and raw UNIX socket: byte-identical bodies (dots, 8-bit, 1 MB)"

"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 500 -c 10 -r 2 -d a.example.test,b.example.test \
	-L "$T/blast.log" >"$T/blast.out" || fail "blast failed"
grep -q 'ok=500 ' "$T/blast.out" || fail "blast: $(tail -n1 "$T/blast.out")"
n=$((n + 500))
wait_until 60 sink_ge "$n" || fail "sink got $(sink_messages) of $n"
all_arrived "$T/blast.log" || fail "blast messages missing at the sink"
stop_riptide
[ "$(log_count delivered)" -eq $((6 + 1000)) ] || fail "delivered lines: $(log_count delivered)"
[ "$(queue_count)" -eq 0 ] || fail "queue not empty"
pass "riptide-blast: 500 messages x 2 recipients delivered, logged, queue empty"
