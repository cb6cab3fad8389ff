#!/usr/bin/env bash
# The DSN SMTP extension (RFC 3461, issue 7): riptide advertises DSN, stores RET, ENVID, NOTIFY
# and ORCPT with the message (riptidectl show, across a restart) and passes them on to a next hop
# that offers DSN (riptide-sink's log shows them, wire form); NOTIFY decides who is reported
# (NEVER and DELAY-only recipients are not in a failure notice); RET=HDRS / RET=FULL choose the
# attachment, ENVID and ORCPT appear as Original-Envelope-Id and Original-Recipient. To a next
# hop without DSN nothing is passed on and a NOTIFY=SUCCESS recipient gets a "relayed" notice;
# a relayed notice carries the original's header only. Notices are read by Python's email package.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib5.sh"
D=$(dirname "$0")
printf 'Subject: m1\r\nX-Test: dsn\r\n\r\nbody one\r\n' >"$T/m1.eml"
printf 'Subject: m2\r\n\r\nbody two\r\n' >"$T/m2.eml"

# ---- next hop offers DSN; mail is queued with outgoing = no, then delivered after a restart ----
start_sink
write_config <<'EOF2'
[delivery]
outgoing = no
EOF2
start_riptide
python3 "$D/smtp_dialog.py" "$INJ_PORT" >"$T/d1.out" <<EOF2 || fail "DSN dialog: $(cat "$T/d1.out")"
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@sender.test> RET=HDRS ENVID=q+2B1
EXPECT 250
SEND RCPT TO:<ok-a@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bx@orig.example
EXPECT 250
SEND RCPT TO:<ok-b@example.test> NOTIFY=NEVER
EXPECT 250
SEND RCPT TO:<550-c@example.test> NOTIFY=FAILURE ORCPT=rfc822;c@orig.example
EXPECT 250
SEND RCPT TO:<550-d@example.test> NOTIFY=NEVER
EXPECT 250
SEND RCPT TO:<550-e@example.test> NOTIFY=DELAY
EXPECT 250
SEND DATA
EXPECT 354
BODYFILE $T/m1.eml
EXPECT 250 2.0.0
SEND MAIL FROM:<s@sender.test> RET=FULL ENVID=m2
EXPECT 250
SEND RCPT TO:<550-f@example.test>
EXPECT 250
SEND RCPT TO:<ok-g@example.test> NOTIFY=SUCCESS
EXPECT 250
SEND DATA
EXPECT 354
BODYFILE $T/m2.eml
EXPECT 250 2.0.0
SEND QUIT
EXPECT 221
EOF2
python3 "$D/smtp_dialog.py" "$INJ_PORT" >"$T/d0.out" <<'EOF2' || fail "bad DSN parameters: $(cat "$T/d0.out")"
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@sender.test> RET=XYZ
EXPECT 501 5.5.4
SEND MAIL FROM:<s@sender.test> RET=FULL RET=HDRS
EXPECT 501 5.5.4
SEND MAIL FROM:<s@sender.test> ENVID=a+ZZ
EXPECT 501 5.5.4
SEND MAIL FROM:<s@sender.test>
EXPECT 250
SEND RCPT TO:<a@example.test> NOTIFY=NEVER,SUCCESS
EXPECT 501 5.5.4
SEND RCPT TO:<a@example.test> NOTIFY=SOMETIMES
EXPECT 501 5.5.4
SEND RCPT TO:<a@example.test> ORCPT=a@example.test
EXPECT 501 5.5.4
SEND QUIT
EXPECT 221
EOF2
grep -q '^<<< 250-.*| 250[- ]DSN\b' "$T/d1.out" || fail "EHLO does not advertise DSN: $(head -2 "$T/d1.out")"
M1=$(sed -n 's/.*queued as \([0-9a-f]\{32\}\).*/\1/p' "$T/d1.out" | sed -n 1p)
M2=$(sed -n 's/.*queued as \([0-9a-f]\{32\}\).*/\1/p' "$T/d1.out" | sed -n 2p)
[ -n "$M1" ] && [ -n "$M2" ] || fail "no queue ids: $(cat "$T/d1.out")"
ctl --json show "$M1" >"$T/show1.json" || fail "riptidectl show $M1"
python3 - "$T/show1.json" <<'PY' || fail "stored DSN parameters: $(cat "$T/show1.json")"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["envid"] == "q+1", m["envid"]           # ENVID=q+2B1 is xtext for "q+1"
assert m["ret"] == "HDRS", m["ret"]
r = {x["address"]: x for x in m["recipients"]}
want = {"ok-a@example.test": (["SUCCESS", "FAILURE"], "rfc822;a+x@orig.example"),
        "ok-b@example.test": (["NEVER"], ""), "550-c@example.test": (["FAILURE"], "rfc822;c@orig.example"),
        "550-d@example.test": (["NEVER"], ""), "550-e@example.test": (["DELAY"], "")}
assert set(r) == set(want), sorted(r)
for a, (notify, orcpt) in want.items():
    assert r[a]["notify"] == notify, (a, r[a]["notify"])
    assert (r[a]["orcpt"] or "") == orcpt, (a, r[a]["orcpt"])
    assert r[a]["state"] == "pending", (a, r[a]["state"])
PY
pass "DSN advertised; bad RET/ENVID/NOTIFY/ORCPT refused (501 5.5.4); good ones stored (riptidectl show --json)"

stop_riptide
sed -i 's/^outgoing = no$/outgoing = yes/' "$CONF"
start_riptide
wait_until 20 sink_has_rcpt ok-a@example.test || fail "M1 not delivered after the restart"
wait_until 20 sink_has_rcpt ok-g@example.test || fail "M2 not delivered after the restart"
python3 - "$SINK_LOG" <<'PY' || fail "DSN parameters not passed on: $(cat "$SINK_LOG")"
import sys
lines = [l.split() for l in open(sys.argv[1]) if l.split()[1] == "s@sender.test"]
got = {}
for f in lines:
    rcpts = f[2].split(",")
    params = f[6:]
    mail = [p for p in params if ":" not in p.split("=")[0]]
    for i, r in enumerate(rcpts):
        mine = sorted(p.split(":", 1)[1] for p in params if p.startswith(f"{i}:"))
        assert r not in got, f"{r} arrived twice"
        got[r] = (mail, mine)
want = {
    "ok-a@example.test": (["RET=HDRS", "ENVID=q+2B1"],
                          ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;a+2Bx@orig.example"]),
    "ok-b@example.test": (["RET=HDRS", "ENVID=q+2B1"], ["NOTIFY=NEVER"]),
    "ok-g@example.test": (["RET=FULL", "ENVID=m2"], ["NOTIFY=SUCCESS"]),
}
assert got == want, f"got {got}"
PY
pass "the next hop (DSN offered) got RET, ENVID, NOTIFY and ORCPT, after a restart"

# Failure notices: M1 reports only 550-c@ (NOTIFY=FAILURE; NEVER and DELAY-only are left out).
wait_until 10 notice_ge 1 --orig "$M1" || fail "no notice for M1"
wait_until 10 notice_ge 1 --orig "$M2" || fail "no notice for M2"
wait_until 5 dlog_line failed 550-e@example.test || fail "550-e@ not failed"
sleep 1
[ "$(notice_n --orig "$M1")" -eq 1 ] || fail "M1: $(notice_n --orig "$M1") notices, want 1"
[ "$(notice_n --orig "$M2")" -eq 1 ] || fail "M2: $(notice_n --orig "$M2") notices (a relayed one?)"
dsn_ok "$(notices --orig "$M1")" --to s@sender.test --action failed --rcpt 550-c@example.test=5.1.1 \
	--envid q+1 --orcpt 550-c@example.test=rfc822\;c@orig.example --original headers --orig-subject m1
grep -q '^body one' "$(notices --orig "$M1")" && fail "RET=HDRS but the body is in the notice"
dsn_ok "$(notices --orig "$M2")" --to s@sender.test --action failed --rcpt 550-f@example.test=5.1.1 \
	--envid m2 --original full --orig-subject m2
grep -q '^body two' "$(notices --orig "$M2")" || fail "RET=FULL but no body in the notice"
pass "NOTIFY honoured (NEVER, DELAY-only not reported), RET=HDRS/FULL, Original-Envelope-Id, Original-Recipient"
all_notices_ok
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"

# ---- next hop without DSN ----
# (One message with a failure and a relayed notice in the same commit: this found the
# notice_ents use after free in notice_count, fixed in fd5fde1; ASan builds catch a regression.)
stop_pid "$SINK_PID" >/dev/null
mv "$SINK_LOG" "$T/sink-dsn.log"
mv "$SINK_DIR" "$T/sink-dsn.d"
start_sink --no-dsn
reset_spool
write_config </dev/null
start_riptide
python3 "$D/smtp_dialog.py" "$INJ_PORT" >"$T/d2.out" <<EOF2 || fail "no-DSN dialog: $(cat "$T/d2.out")"
GREET
SEND EHLO client.test
EXPECT 250
SEND MAIL FROM:<s@sender.test> ENVID=rel-1
EXPECT 250
SEND RCPT TO:<ok-r@example.test> NOTIFY=SUCCESS ORCPT=rfc822;r@orig.example
EXPECT 250
SEND RCPT TO:<ok-s@example.test>
EXPECT 250
SEND RCPT TO:<550-t@example.test>
EXPECT 250
SEND DATA
EXPECT 354
BODYFILE $T/m1.eml
EXPECT 250 2.0.0
SEND QUIT
EXPECT 221
EOF2
M3=$(sed -n 's/.*queued as \([0-9a-f]\{32\}\).*/\1/p' "$T/d2.out")
wait_until 20 sink_has_rcpt ok-r@example.test || fail "M3 not delivered"
awk '$2 == "s@sender.test" && NF != 6 { exit 1 }' "$SINK_LOG" ||
	fail "parameters passed to a hop without DSN: $(cat "$SINK_LOG")"
[ "$(sink_rcpt ok-s@example.test)" -eq 1 ] || fail "ok-s@ not delivered once"
wait_until 10 notice_ge 2 --orig "$M3" || fail "M3: want a relayed and a failure notice, got $(notice_n --orig "$M3")"
sleep 1
[ "$(notice_n --orig "$M3")" -eq 2 ] || fail "M3: $(notice_n --orig "$M3") notices, want 2"
R=$(notices --orig "$M3" --action relayed)
F=$(notices --orig "$M3" --action failed)
[ -n "$R" ] || fail "no relayed notice for ok-r@ (NOTIFY=SUCCESS, hop without DSN)"
dsn_ok "$R" --to s@sender.test --action relayed --rcpt ok-r@example.test --envid rel-1 \
	--orcpt ok-r@example.test=rfc822\;r@orig.example --original headers --orig-subject m1
dsn_ok "$F" --to s@sender.test --action failed --rcpt 550-t@example.test=5.1.1 --envid rel-1 \
	--original full --orig-subject m1
pass "hop without DSN: nothing passed on, relayed notice (headers only) for NOTIFY=SUCCESS"
all_notices_ok
kill -0 "$RIPTIDE_PID" 2>/dev/null || fail "riptide died: $(grep -m1 ERROR "$T/riptide.err")"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"
pass "queue empty"
