#!/usr/bin/env bash
# Limits at injection (issue 7): with max_queue_messages reached, new mail gets 452 4.3.1 at MAIL,
# and a transaction that began before the queue filled gets it at DATA; nothing accepted is lost
# or delivered twice once outgoing is switched on (SIGHUP), and mail is accepted again when the
# queue has room. max_queue_bytes works the same way. A message with max_hops (50) Received:
# fields is accepted, one with 51 is refused with 554 5.4.6 at the end of DATA.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib5.sh"
D=$(dirname "$0")
start_sink
write_config <<'EOF2'
[delivery]
outgoing = no
[queue]
max_queue_messages = 5
EOF2
start_riptide

# Four messages fit; a session opens a transaction while there is room for one more; another
# session takes that room; the first session's DATA is refused, and so is any new MAIL.
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 4 -c 1 -L "$T/b1.log" >"$T/b1.out" 2>&1 || fail "blast 1"
[ "$(awk '$2 == 250' "$T/b1.log" | wc -l)" -eq 4 ] || fail "4 messages into an empty queue: $(cat "$T/b1.log")"
python3 - "$INJ_PORT" >"$T/race.out" 2>&1 <<'PY' || fail "queue-full dialog: $(cat "$T/race.out")"
import smtplib, sys
port = int(sys.argv[1])
msg = lambda n: (f"Subject: {n}\r\nMessage-ID: <{n}@limits.test>\r\n\r\nbody {n}\r\n").encode()
a = smtplib.SMTP("127.0.0.1", port, timeout=20)
a.ehlo("a.test")
assert a.mail("s@sender.test")[0] == 250
assert a.rcpt("late@example.test")[0] == 250
b = smtplib.SMTP("127.0.0.1", port, timeout=20)
b.ehlo("b.test")
b.sendmail("s@sender.test", ["fifth@example.test"], msg("fifth"))   # raises unless 250
code, text = a.docmd("DATA")
if code == 354:
    a.send(msg("late") + b".\r\n")
    code, text = a.getreply()
print("late DATA:", code, text)
assert code == 452 and text.startswith(b"4.3.1"), (code, text)
code, text = b.docmd("MAIL FROM:<s@sender.test>")
print("new MAIL:", code, text)
assert code == 452 and text.startswith(b"4.3.1"), (code, text)
a.quit(), b.quit()
PY
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 3 -c 1 -L "$T/b2.log" >"$T/b2.out" 2>&1 || true
[ "$(awk '$2 == 452' "$T/b2.log" | wc -l)" -eq 3 ] || fail "queue full, but: $(cat "$T/b2.log")"
ctl --json summary | python3 -c '
import json, sys
t = json.loads(sys.stdin.readline())
assert t["messages"] == 5, t' || fail "queue does not hold exactly the 5 accepted messages"
pass "queue full: 452 4.3.1 at MAIL and at DATA; the 5 accepted messages stay queued"

sed -i 's/^outgoing = no$/outgoing = yes/' "$CONF"
kill -HUP "$RIPTIDE_PID"
wait_until 20 all_arrived "$T/b1.log" || fail "accepted blast messages lost"
wait_until 10 sink_has_rcpt fifth@example.test || fail "the fifth message was lost"
sleep 1
[ "$(sink_messages)" -eq 5 ] || fail "sink got $(sink_messages) messages, want exactly 5"
[ "$(sink_rcpt late@example.test)" -eq 0 ] || fail "the refused message was delivered"
python3 - "$SINK_LOG" <<'PY' || fail "a message arrived twice"
import sys
ids = [l.split()[5] for l in open(sys.argv[1])]
assert len(ids) == len(set(ids)), ids
PY
send_to ok-after@example.test
wait_until 10 sink_has_rcpt ok-after@example.test || fail "not accepting again after the drain"
pass "outgoing on: every accepted message delivered once, none of the refused; room again"

# Hop limit (default max_hops 50): 50 Received: fields pass, 51 are a loop.
hops() { # hops N FILE: a message with N Received: fields
	python3 - "$1" "$2" <<'PY'
import sys
n, f = int(sys.argv[1]), sys.argv[2]
h = "".join(f"Received: from h{i}.test by h{i+1}.test; Mon, 1 Jan 2024 00:00:{i % 60:02d} +0000\r\n"
            for i in range(n))
open(f, "wb").write((h + f"Subject: hops {n}\r\n\r\nloop?\r\n").encode())
PY
}
hops 50 "$T/h50.eml"
hops 51 "$T/h51.eml"
python3 "$D/smtp_dialog.py" "$INJ_PORT" >"$T/hops.out" <<EOF2 || fail "hop dialog: $(cat "$T/hops.out")"
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@sender.test>
EXPECT 250
SEND RCPT TO:<hops51@example.test>
EXPECT 250
SEND DATA
EXPECT 354
BODYFILE $T/h51.eml
EXPECT 554 5.4.6
SEND MAIL FROM:<s@sender.test>
EXPECT 250
SEND RCPT TO:<hops50@example.test>
EXPECT 250
SEND DATA
EXPECT 354
BODYFILE $T/h50.eml
EXPECT 250 2.0.0
SEND QUIT
EXPECT 221
EOF2
wait_until 10 sink_has_rcpt hops50@example.test || fail "the 50-hop message was not delivered"
f=$(grep -l '^Subject: hops 50' "$SINK_DIR"/*.eml)
[ "$(grep -c '^Received:' "$f")" -eq 51 ] || fail "50-hop message: $(grep -c '^Received:' "$f") Received: fields at the sink"
[ "$(sink_rcpt hops51@example.test)" -eq 0 ] || fail "the 51-hop message was delivered"
pass "hop limit: 50 Received: accepted (51 with ours), 51 refused with 554 5.4.6"
all_notices_ok
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"

# max_queue_bytes: 3 KiB messages against a 10 KiB limit.
reset_spool
write_config <<'EOF2'
[delivery]
outgoing = no
[queue]
max_queue_bytes = 10k
EOF2
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 6 -c 1 -s 3k -L "$T/b3.log" >"$T/b3.out" 2>&1 || true
ok=$(awk '$2 == 250' "$T/b3.log" | wc -l)
full=$(awk '$2 == 452' "$T/b3.log" | wc -l)
[ "$ok" -ge 3 ] && [ "$ok" -le 4 ] && [ $((ok + full)) -eq 6 ] ||
	fail "max_queue_bytes 10k, 3 KiB messages: $ok accepted, $full refused: $(cat "$T/b3.log")"
bytes=$(ctl --json summary | python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["bytes"])')
[ "$bytes" -ge 10240 ] || [ "$ok" -eq 4 ] || fail "refused below the limit: $bytes bytes queued"
sed -i 's/^outgoing = no$/outgoing = yes/' "$CONF"
kill -HUP "$RIPTIDE_PID"
wait_until 20 all_arrived "$T/b3.log" || fail "accepted messages lost (max_queue_bytes)"
pass "max_queue_bytes: $ok accepted ($bytes bytes), $full refused with 452, all accepted delivered"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"
pass "queue empty"
