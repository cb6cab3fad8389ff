#!/usr/bin/python3
"""aio_sink.py — a receiving MTA built on Python's aiosmtpd (a real third-party SMTP server) for
riptide's integration tests. Usage: aio_sink.py PORT LOGFILE [--max-rcpts N] [--no-8bitmime]

Every message it accepts is appended to LOGFILE as one JSON line: {"mail_from", "rcpts", "data"
(latin-1 text of the raw bytes), "mail_options", "peer" (client address and port)}. With --max-rcpts N it answers
"452 4.5.3 Too many recipients" to the recipients of one transaction beyond the N-th
(RFC 5321 4.5.3.1.10), like a relay with a per-transaction limit.
"""
import asyncio, json, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

port, logfile = int(sys.argv[1]), sys.argv[2]
max_rcpts = int(sys.argv[sys.argv.index("--max-rcpts") + 1]) if "--max-rcpts" in sys.argv else 0


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if max_rcpts and len(envelope.rcpt_tos) >= max_rcpts:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with open(logfile, "a") as f:
            f.write(json.dumps({"mail_from": envelope.mail_from, "rcpts": envelope.rcpt_tos,
                                "data": envelope.original_content.decode("latin-1"),
                                "mail_options": envelope.mail_options,
                                "peer": list(session.peer)}) + "\n")
        return "250 2.0.0 OK"


class Ctl(Controller):
    def factory(self):
        return SMTP(self.handler, decode_data=False, enable_SMTPUTF8=True)


ctl = Ctl(Handler(), hostname="127.0.0.1", port=port)
ctl.start()
try:
    __import__("signal").pause()
finally:
    ctl.stop()
