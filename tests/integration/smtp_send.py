#!/usr/bin/env python3
"""smtp_send.py PORT FROM SPEC... — send one message per SPEC to 127.0.0.1:PORT, all in one SMTP
session (Python's smtplib, a client riptide did not write), and print one line per message:
"RCPT CODE TEXT" (the reply to the final dot, or to the first refused command).

SPEC is "RCPT[|HEADER: VALUE]..." : the recipient, then header fields to put in the message
(e.g. "a@x.test|X-Riptide-Pool: p1"). The message gets From, To, Subject, Message-ID and Date
unless SPEC gives them, and the body "body line N". Exit status 0 when the session itself worked
(whatever the replies), 2 on a connection or protocol failure.

Why: swaks costs about a second per message on a loaded machine; the pool tests send dozens.
"""
import smtplib
import sys
import time


def message(n, frm, spec):
    parts = spec.split("|")
    rcpt, fields = parts[0], parts[1:]
    names = {f.split(":", 1)[0].strip().lower() for f in fields}
    hdr = list(fields)
    defaults = [("From", frm), ("To", rcpt), ("Subject", f"m{n}"),
                ("Message-ID", f"<m{n}.{time.time_ns()}@smtp-send.test>"),
                ("Date", time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()))]
    for k, v in defaults:
        if k.lower() not in names:
            hdr.append(f"{k}: {v}")
    return rcpt, "\r\n".join(hdr) + f"\r\n\r\nbody line {n}\r\n"


def main():
    port, frm, specs = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    try:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="smtp-send.test", timeout=30)
        s.ehlo()
        for n, spec in enumerate(specs):
            rcpt, msg = message(n, frm, spec)
            try:
                s.mail(frm)
                code, text = s.rcpt(rcpt)
                if code < 300:
                    code, text = s.data(msg.encode())
                else:
                    s.rset()
            except smtplib.SMTPResponseException as e:
                code, text = e.smtp_code, e.smtp_error
                s.rset()
            print(rcpt, code, text.decode(errors="replace").replace("\n", " "), flush=True)
        s.quit()
    except (OSError, smtplib.SMTPException) as e:
        print(f"session failed: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
