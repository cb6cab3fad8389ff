#!/usr/bin/env bash
# 8BITMIME toward the next hop (RFC 6152): to Postfix's smtp-sink -8 (no 8BITMIME) an 8-bit MIME
# message arrives converted to 7 bit (quoted-printable / base64, no BODY=8BITMIME) and decodes to
# the same text; a message with raw 8-bit bytes in a header cannot be converted and fails with
# 5.6.3 without reaching the sink; to a hop that offers 8BITMIME (riptide-sink) the same message
# arrives byte for byte with BODY=8BITMIME.
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
command -v smtp-sink >/dev/null || fail "Postfix smtp-sink not installed"
PFPORT=$(free_port)
chmod 755 "$T"
mkdir -p "$T/pf"
chmod 777 "$T/pf"
smtp-sink -8 -u nobody -d "$T/pf/%M." "127.0.0.1:$PFPORT" 64 2>"$T/smtp-sink.err" &
PIDS+=($!)
wait_port "$PFPORT"
RELAY_PORT=$PFPORT SINK_PORT=0 write_config </dev/null
start_riptide
/usr/bin/python3 - "$INJ_PORT" "$T" <<'PY' || fail "injection"
import smtplib, sys
from email.message import EmailMessage
port, t = int(sys.argv[1]), sys.argv[2]
m = EmailMessage()
m["From"], m["To"], m["Subject"] = "s@example.test", "mime@example.test", "eight bit"
m["Message-ID"] = "<mime-1@example.test>"
m.set_content("Grüße aus Köln — ünïcödé\nline two ½\n", cte="8bit")
m.add_alternative("<p>Grüße ½</p>\n", subtype="html", cte="8bit")
raw = m.as_bytes(policy=m.policy.clone(linesep="\r\n"))
open(f"{t}/mime.eml", "wb").write(raw)
bad = (b"From: s@example.test\r\nTo: hdr@example.test\r\nSubject: Gr\xfc\xdfe raw\r\n"
       b"Message-ID: <mime-2@example.test>\r\n\r\nbody \xe4\r\n")
with smtplib.SMTP("127.0.0.1", port) as s:
    s.sendmail("s@example.test", ["mime@example.test"], raw, mail_options=["BODY=8BITMIME"])
    s.sendmail("s@example.test", ["hdr@example.test"], bad, mail_options=["BODY=8BITMIME"])
PY
have() { [ "$(find "$T/pf" -type f | wc -l)" -ge 1 ]; }
wait_until 20 have || fail "converted message did not arrive at smtp-sink -8"
wait_until 20 grep -q 'status=failed to=<hdr@example.test>.*dsn=5.6.3' "$DLOG" \
	|| fail "8-bit header message not failed with 5.6.3"
/usr/bin/python3 - "$T/pf" "$T/mime.eml" <<'PY' || fail "converted message wrong"
import email, email.policy, os, re, sys
files = [os.path.join(r, f) for r, _, fs in os.walk(sys.argv[1]) for f in fs]
assert len(files) == 1, files
raw = open(files[0], "rb").read()
assert all(b < 0x80 for b in raw), "8-bit byte reached a hop without 8BITMIME"
args = re.search(rb"^X-Mail-Args: (.*)$", raw, re.M).group(1)
assert b"8BITMIME" not in args, args
got = email.message_from_bytes(raw[raw.index(b"From: s@"):], policy=email.policy.default)
want = email.message_from_bytes(open(sys.argv[2], "rb").read(), policy=email.policy.default)
text = lambda m: [p.get_content().replace("\r\n", "\n") for p in m.walk() if not p.is_multipart()]
g, w = text(got), text(want)
assert g == w, (g, w)
print("converted parts:", [p["Content-Transfer-Encoding"] for p in got.walk() if not p.is_multipart()])
PY
grep -q 'hdr@example.test' "$T"/pf/* && fail "the unconvertible message reached the sink"
pass "smtp-sink -8 got 7-bit quoted-printable that decodes to the original; 8-bit header -> 5.6.3"
stop_riptide

# a hop that offers 8BITMIME gets the message unchanged
start_sink
RELAY_PORT=$SINK_PORT write_config </dev/null
start_riptide
/usr/bin/python3 - "$INJ_PORT" "$T/mime.eml" <<'PY' || fail "injection 2"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.sendmail("s@example.test", ["mime@example.test"], open(sys.argv[2], "rb").read(),
               mail_options=["BODY=8BITMIME"])
PY
wait_until 20 sink_ge 1 || fail "not delivered to riptide-sink"
/usr/bin/python3 - "$SINK_DIR" "$T/mime.eml" <<'PY' || fail "message changed on an 8BITMIME hop"
import os, sys
files = [os.path.join(r, f) for r, _, fs in os.walk(sys.argv[1]) for f in fs]
got = open(files[0], "rb").read()
want = open(sys.argv[2], "rb").read()
i = got.index(b"From: s@")  # after riptide's Received: header
assert got[i:] == want[want.index(b"From: s@"):], "body differs"
PY
stop_riptide
pass "an 8BITMIME hop receives the original bytes"
