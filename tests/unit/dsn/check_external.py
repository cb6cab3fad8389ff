#!/usr/bin/python3
"""check_external.py SAMPLES_EXE — notices built by engine/dsn, judged by software riptide
did not write.

Why: a notice is only useful if the sender's software can read it. dsn_samples writes sample
notices (each kind, each way of attaching the original, two recipients with ORCPT and ENVID,
an 8-bit original, a hostile reply text) into a temporary directory; this script parses them
with Python's email package (multipart/report, report-type, the message/delivery-status
per-message and per-recipient fields, the attached original's type and content) and with
sisimai, the bounce-parsing library (recipient, reason and status it extracts). The sisimai
checks are skipped, with a note, only when `perl -MSisimai -e1` fails.
"""
import email
import email.policy
import os
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


RCPT_TWO = [
    {"Original-Recipient": "rfc822; Bob@Example.NET", "Final-Recipient": "rfc822; bob@example.net",
     "Action": "failed", "Status": "5.1.1", "Remote-MTA": "dns; mx1.example.net",
     "Diagnostic-Code": "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: "
                        "User unknown in virtual mailbox table",
     "Last-Attempt-Date": "Tue, 14 Jan 2025 10:23:01 +0000"},
    {"Final-Recipient": "rfc822; carol@example.com", "Action": "failed", "Status": "5.2.2",
     "Remote-MTA": "dns; mx.example.com", "Diagnostic-Code": "smtp; 552 5.2.2 Mailbox full"},
]
RCPT_511 = [{"Final-Recipient": "rfc822; nosuchuser@example.net", "Action": "failed",
             "Status": "5.1.1", "Remote-MTA": "dns; mx1.example.net"}]

# name: (subject, original part type or None, recipients' expected fields, ENVID)
SAMPLES = {
    "failure_full": ("Undelivered Mail Returned to Sender", "message/rfc822", RCPT_TWO,
                     "env-2025-0001"),
    "failure_headers": ("Undelivered Mail Returned to Sender", "text/rfc822-headers", RCPT_TWO,
                        "env-2025-0001"),
    "failure_none": ("Undelivered Mail Returned to Sender", None, RCPT_TWO, "env-2025-0001"),
    "failure_511": ("Undelivered Mail Returned to Sender", "message/rfc822", RCPT_511, None),
    "failure_8bit": ("Undelivered Mail Returned to Sender", "message/rfc822", RCPT_511, None),
    "failure_hostile": ("Undelivered Mail Returned to Sender", "text/rfc822-headers",
                        [{"Final-Recipient": "rfc822; dave@example.net", "Action": "failed",
                          "Status": "5.0.0", "Remote-MTA": "dns; mx.example.net"}], None),
    "delay_headers": ("Delayed Mail (still being retried)", "text/rfc822-headers",
                      [{"Final-Recipient": "rfc822; erin@example.net", "Action": "delayed",
                        "Status": "4.7.1", "Will-Retry-Until": "Sun, 19 Jan 2025 10:22:01 +0000"},
                       {"Final-Recipient": "rfc822; frank@example.net", "Action": "delayed",
                        "Status": "4.0.0", "Diagnostic-Code": "X-riptide; connection timed out"}],
                      None),
    "relayed_none": ("Relayed Mail (delivery status notification)", None,
                     [{"Original-Recipient": "rfc822; gina@example.net",
                       "Final-Recipient": "rfc822; gina@example.net", "Action": "relayed",
                       "Status": "2.0.0"}], None),
}


def check_lines(name, raw):
    lines = raw.split(b"\r\n")
    check(raw.endswith(b"\r\n"), name + ": does not end in CRLF")
    check(all(b"\n" not in l and b"\r" not in l for l in lines), name + ": bare CR or LF")
    check(all(len(l) <= 998 for l in lines), name + ": a line over 998 octets")


def check_report(name, msg, exp_rcpts, envid):
    ds = msg.get_payload()[1]
    check(ds.get_content_type() == "message/delivery-status", name + ": part 2 type")
    blocks = ds.get_payload()
    check(isinstance(blocks, list) and len(blocks) == 1 + len(exp_rcpts),
          "%s: %d delivery-status blocks" % (name, len(blocks)))
    per_msg = blocks[0]
    check(per_msg["Reporting-MTA"] == "dns; mta1.riptide.example", name + ": Reporting-MTA")
    check(per_msg["Arrival-Date"] == "Tue, 14 Jan 2025 10:22:01 +0000", name + ": Arrival-Date")
    check(per_msg["Original-Envelope-Id"] == envid, name + ": Original-Envelope-Id")
    for i, exp in enumerate(exp_rcpts):
        if i + 1 >= len(blocks):
            break
        got = blocks[i + 1]
        for k, v in exp.items():
            check(str(got[k]) == v, "%s: recipient %d %s = %r, want %r" % (name, i, k, got[k], v))
        if "Original-Recipient" not in exp:
            check(got["Original-Recipient"] is None, "%s: recipient %d has ORCPT" % (name, i))


def check_original(name, msg, otype):
    parts = msg.get_payload()
    check(len(parts) == (3 if otype else 2), "%s: %d parts" % (name, len(parts)))
    if not otype or len(parts) < 3:
        return
    o = parts[2]
    check(o.get_content_type() == otype, "%s: original is %s" % (name, o.get_content_type()))
    if otype == "message/rfc822":
        inner = o.get_payload()[0]
        if name == "failure_8bit":
            check(inner["Message-ID"] == "<8bit-1@example.org>", name + ": inner Message-ID")
            check("Grüße aus Köln" in inner.get_content(), name + ": inner 8-bit body")
            check(msg["Content-Transfer-Encoding"] == "8bit", name + ": top CTE not 8bit")
        else:
            check(inner["Subject"] == "Quarterly report", name + ": inner Subject")
            check("the report is attached" in inner.get_content(), name + ": inner body")
    else:
        text = o.get_content()
        check("Subject: Quarterly report" in text, name + ": headers part lacks Subject")
        check("the report is attached" not in text, name + ": headers part has the body")


def check_email(path, name, exp):
    subject, otype, rcpts, envid = exp
    raw = open(path, "rb").read()
    check_lines(name, raw)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    check(msg.get_content_type() == "multipart/report", name + ": not multipart/report")
    check(msg.get_param("report-type") == "delivery-status", name + ": report-type")
    check(msg["Subject"] == subject, "%s: Subject %r" % (name, msg["Subject"]))
    check(msg["From"] == "Mail Delivery System <MAILER-DAEMON@mta1.riptide.example>",
          name + ": From")
    to = msg["To"].addresses if msg["To"] else ()
    check(len(to) == 1 and to[0].addr_spec == "alice@example.org", name + ": To")
    check(msg["Auto-Submitted"] == "auto-replied", name + ": Auto-Submitted")
    check(msg["Message-ID"] is not None and msg["Date"] is not None, name + ": no id or date")
    for part in msg.walk():
        check(not part.defects, "%s: defects %r" % (name, part.defects))
    parts = msg.get_payload()
    check(parts[0].get_content_type() == "text/plain", name + ": part 1 type")
    check(parts[0].get_content_charset() == "utf-8", name + ": part 1 charset")
    check_report(name, msg, rcpts, envid)
    check_original(name, msg, otype)
    if name == "failure_hostile":
        check(msg["X-Injected"] is None and msg["X-Evil"] is None, name + ": injected header")
        check(len(msg.get_payload()) == 3, name + ": injected MIME part")


# A template with a long UTF-8 Subject (RFC 2047 words, folded) and a UTF-8 text with every
# placeholder (quoted-printable), as an operator would write it.
CUSTOM_TPL = ("Subject: Rückläufer {queue_id} für {sender} — Zustellung fehlgeschlagen "
              "({envid}) ✉ noch etwas Text damit die Zeile gefaltet wird\n"
              "\n"
              "Hallo {sender}, hier ist {hostname}.\n"
              "Eingang: {queued_time}; gewartet: {delay}; ENVID: {envid}; ID {queue_id}.\n"
              "{recipients}\n"
              "Gründe:\n"
              "{reasons}\n"
              "Klammern: {{ und }\n")


def check_custom(path):
    raw = open(path, "rb").read()
    check_lines("custom_tpl", raw)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    want = ("Rückläufer 0123456789abcdef0123456789abcdef für alice@example.org — Zustellung "
            "fehlgeschlagen (env-2025-0001) ✉ noch etwas Text damit die Zeile gefaltet wird")
    check(msg["Subject"] == want, "custom_tpl: Subject %r" % msg["Subject"])
    head = raw.split(b"\r\n\r\n")[0]
    check(all(b < 128 for b in head), "custom_tpl: 8-bit header")
    text = msg.get_payload()[0]
    check(text["Content-Transfer-Encoding"] == "quoted-printable", "custom_tpl: text CTE")
    want = ("Hallo alice@example.org, hier ist mta1.riptide.example.\n"
            "Eingang: Tue, 14 Jan 2025 10:22:01 +0000; gewartet: 2 days 3 hours; "
            "ENVID: env-2025-0001; ID 0123456789abcdef0123456789abcdef.\n"
            "<bob@example.net>: host mx1.example.net said: 550 5.1.1 <bob@example.net>: "
            "Recipient address rejected: User unknown in virtual mailbox table\n"
            "<carol@example.com>: host mx.example.com said: 552 5.2.2 Mailbox full\n"
            "Gründe:\n"
            "host mx1.example.net said: 550 5.1.1 <bob@example.net>: "
            "Recipient address rejected: User unknown in virtual mailbox table\n"
            "host mx.example.com said: 552 5.2.2 Mailbox full\n"
            "Klammern: { und }\n")
    got = text.get_content().replace("\r\n", "\n")  # email keeps the wire's CRLF
    check(got == want, "custom_tpl: text %r" % got)
    check_report("custom_tpl", msg, RCPT_TWO, "env-2025-0001")
    check_original("custom_tpl", msg, "message/rfc822")
    print("email: custom template parsed")


def sisimai(path):
    code = ('use Sisimai; my $v = Sisimai->make($ARGV[0]) || []; '
            'printf "%s\\t%s\\t%s\\t%s\\n", $_->recipient->address, $_->reason, '
            '$_->deliverystatus, $_->action for @$v;')
    out = subprocess.run(["perl", "-e", code, path], capture_output=True, text=True, check=True)
    return [l.split("\t") for l in out.stdout.splitlines()]


def check_sisimai(d):
    if subprocess.run(["perl", "-MSisimai", "-e1"], capture_output=True).returncode != 0:
        print("SKIP: sisimai (perl -MSisimai -e1 fails; Debian package libsisimai-perl)")
        return
    want = {
        "failure_511": [["nosuchuser@example.net", "userunknown", "5.1.1", "failed"]],
        "failure_full": [["bob@example.net", "userunknown", "5.1.1", "failed"],
                         ["carol@example.com", "mailboxfull", "5.2.2", "failed"]],
        "failure_8bit": [["nosuchuser@example.net", "userunknown", "5.1.1", "failed"]],
    }
    for name, exp in want.items():
        got = sisimai(os.path.join(d, name + ".eml"))
        check(got == exp, "sisimai %s: %r, want %r" % (name, got, exp))
    got = sisimai(os.path.join(d, "delay_headers.eml"))
    check([g[0] for g in got] == ["erin@example.net", "frank@example.net"] and
          all(g[3] == "delayed" for g in got), "sisimai delay_headers: %r" % got)
    print("sisimai: %d notices parsed" % (len(want) + 1))


def main():
    with tempfile.TemporaryDirectory(prefix="dsn_samples.") as d:
        tpl = os.path.join(d, "tpl")
        os.mkdir(tpl)
        with open(os.path.join(tpl, "failure.txt"), "w", encoding="utf-8") as f:
            f.write(CUSTOM_TPL)
        subprocess.run([sys.argv[1], d, tpl], check=True)
        check_custom(os.path.join(d, "custom_tpl.eml"))
        for name, exp in SAMPLES.items():
            check_email(os.path.join(d, name + ".eml"), name, exp)
        print("email: %d notices parsed" % len(SAMPLES))
        check_sisimai(d)
    print("dsn_external: %s" % ("%d checks failed" % len(failures) if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
