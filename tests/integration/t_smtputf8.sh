#!/usr/bin/env bash
# SMTPUTF8 (RFC 6531): riptide advertises it; a UTF-8 address is accepted only in a transaction
# whose MAIL carried SMTPUTF8 (else 553 5.6.7); the parameter is passed on to a hop that offers
# it (aiosmtpd); toward a hop without it (Postfix smtp-sink) an ASCII recipient of the same
# message is still delivered (no address changes) and the UTF-8 recipient fails with 5.6.7.
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
RELAY_PORT=$(free_port)
/usr/bin/python3 "$D/aio_sink.py" "$RELAY_PORT" "$T/aio.jsonl" 2>"$T/aio.err" &
PIDS+=($!)
wait_port "$RELAY_PORT"
SINK_PORT=$RELAY_PORT write_config </dev/null
start_riptide
/usr/bin/python3 - "$INJ_PORT" <<'PY' || fail "injection dialogue"
import smtplib, socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb"); f.readline()
def cmd(line):
    s.sendall(line.encode("utf-8") + b"\r\n")
    r = f.readline()
    while r[3:4] == b"-":
        if b"SMTPUTF8" in r: cmd.seen = True
        r = f.readline()
    return r.decode("utf-8", "replace").strip()
cmd.seen = False
assert cmd("EHLO c.test").startswith("250") and cmd.seen, "SMTPUTF8 not advertised"
r = cmd("MAIL FROM:<jörg@exämple.test>"); assert r.startswith("553 5.6.7"), r
assert cmd("MAIL FROM:<s@example.test>").startswith("250")
r = cmd("RCPT TO:<üser@example.test>"); assert r.startswith("553 5.6.7"), r
assert cmd("RSET").startswith("250")
s.close()
msg = "From: jörg@exämple.test\r\nTo: üser@exämple.test\r\nSubject: ünïcode\r\n\r\nHallo\r\n"
with smtplib.SMTP("127.0.0.1", port) as c:
    c.sendmail("jörg@exämple.test", ["üser@exämple.test"], msg.encode("utf-8"),
               mail_options=["SMTPUTF8", "BODY=8BITMIME"])
print("injected with SMTPUTF8")
PY
got() { [ -s "$T/aio.jsonl" ]; }
wait_until 15 got || fail "UTF-8 message not delivered to the SMTPUTF8 hop"
/usr/bin/python3 - "$T/aio.jsonl" <<'PY' || fail "wrong envelope at the SMTPUTF8 hop"
import json, sys
t = json.loads(open(sys.argv[1]).readline())
print(t["mail_from"], t["rcpts"], t["mail_options"])
assert t["mail_from"] == "jörg@exämple.test" and t["rcpts"] == ["üser@exämple.test"]
assert "SMTPUTF8" in [o.upper() for o in t["mail_options"]]
PY
stop_riptide
pass "SMTPUTF8 advertised, required for UTF-8 addresses (553 5.6.7), passed on"

# a hop without SMTPUTF8 (smtp-sink does not offer it)
PFPORT=$(free_port)
chmod 755 "$T"; mkdir -p "$T/pf"; chmod 777 "$T/pf"
smtp-sink -u nobody -d "$T/pf/%M." "127.0.0.1:$PFPORT" 64 2>"$T/smtp-sink.err" &
PIDS+=($!)
wait_port "$PFPORT"
RELAY_PORT=$PFPORT SINK_PORT=0 write_config </dev/null
start_riptide
/usr/bin/python3 - "$INJ_PORT" <<'PY' || fail "injection 2"
import smtplib, sys
msg = b"From: s@example.test\r\nTo: undisclosed-recipients:;\r\nSubject: ascii\r\n\r\nHallo\r\n"
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as c:
    c.sendmail("s@example.test", ["ascii@example.test", "üser@exämple.test"], msg,
               mail_options=["SMTPUTF8"])
PY
wait_until 15 grep -q 'status=failed to=<üser@exämple.test>.*dsn=5.6.7' "$DLOG" \
	|| fail "UTF-8 recipient not failed with 5.6.7 toward a hop without SMTPUTF8"
have() { [ "$(find "$T/pf" -type f | wc -l)" -ge 1 ]; }
wait_until 15 have || fail "ASCII recipient not delivered"
grep -q '^X-Rcpt-Args: <ascii@example.test>' "$T"/pf/* || fail "ascii recipient missing"
grep -q 'SMTPUTF8' "$T"/pf/*.* 2>/dev/null && grep -q '^X-Mail-Args:.*SMTPUTF8' "$T"/pf/* \
	&& fail "SMTPUTF8 sent to a hop that does not offer it"
grep -q 'üser' "$T"/pf/* && fail "the UTF-8 recipient reached the hop"
stop_riptide
pass "toward a hop without SMTPUTF8: ASCII recipient delivered, UTF-8 recipient failed 5.6.7"
