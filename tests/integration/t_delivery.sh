#!/usr/bin/env bash
# swaks and riptide-blast inject (TCP and UNIX socket); riptide-sink receives byte-identical
# bodies behind riptide's Received: header: dot-stuffing round trip, 8-bit content, a long
# message; the delivery log has one line per delivered recipient; the queue is empty afterwards.
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
# riptide adds exactly one Received: trace header (RFC 5321 4.4) in front; the rest is
# byte-identical: every copy that came straight from swaks has a twin via riptide that equals it
# once riptide's header is taken off, and the raw UNIX socket copies equal the original files.
python3 - "$SINK_DIR" "$T" <<'PY' || fail "bodies via riptide differ from the originals"
import os, re, sys
d, t = sys.argv[1], sys.argv[2]
hdr = re.compile(rb"^Received: from (\S+)(?: \((\[[^]]+\])\))?\r\n\tby \S+ \(riptide\) with "
                 rb"(E?SMTP) id ([0-9a-f]{32});\r\n\t\w{3}, \d\d \w{3} \d{4} "
                 rb"\d\d:\d\d:\d\d \+0000\r\n")
via, direct = [], []
for name in os.listdir(d):
    b = open(os.path.join(d, name), "rb").read()
    m = hdr.match(b)
    if not m:
        direct.append(b)
        continue
    assert not hdr.match(b[m.end():]), "two riptide headers"
    via.append((m.group(1), m.group(2), b[m.end():]))
bodies = [v[2] for v in via]
for b in direct:
    assert b in bodies, "a swaks message changed on its way through riptide"
for f in ("dots", "8bit", "long"):
    orig = open(f"{t}/{f}.eml", "rb").read()
    hits = [v for v in via if v[2] == orig]
    assert len(hits) == 1, f"{f}: {len(hits)} exact copies via the UNIX socket"
    assert hits[0][0] == b"unix.test" and hits[0][1] is None, hits[0][:2]
tcp = [v for v in via if v[1] is not None]
assert tcp and all(v[1] == b"[127.0.0.1]" for v in tcp), "TCP clients named by address literal"
print(f"{len(via)} via riptide (one Received: each), {len(direct)} direct: identical")
PY
pass "swaks (TCP) and raw UNIX socket: one Received: header, then byte-identical bodies (dots, 8-bit, 1 MB)"

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
