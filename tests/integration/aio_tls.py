#!/usr/bin/python3
"""aio_tls.py — a TLS-capable receiving MTA on Python's aiosmtpd (a third-party SMTP and TLS
stack: Python's ssl module, i.e. OpenSSL) for riptide's TLS and AUTH integration tests.

Usage: aio_tls.py PORT LOGFILE [--starttls CERT KEY] [--smtps CERT KEY] [--auth USER:PASS]
                  [--auth-required] [--bad-handshake]

--starttls: STARTTLS offered with that certificate; --smtps: TLS on connect instead.
--auth USER:PASS: AUTH PLAIN/LOGIN accepted for that login (over TLS only, aiosmtpd's default);
--auth-required: MAIL needs AUTH (530 otherwise).
--bad-handshake: STARTTLS is offered and answered 220, then the server writes plaintext
  garbage and closes: a handshake that always fails, as from a broken TLS stack.
Every accepted message is appended to LOGFILE as one JSON line: mail_from, rcpts, data
(latin-1), tls (null, or [cipher, protocol, bits] of the connection), auth (the login or null).
"""
import asyncio, json, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, syntax

port, logfile = int(sys.argv[1]), sys.argv[2]
args = sys.argv[3:]


def opt(name, n=1):
    if name not in args:
        return None
    i = args.index(name)
    return args[i + 1:i + 1 + n]


def context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class Handler:
    async def handle_DATA(self, server, session, envelope):
        cipher = server.transport.get_extra_info("cipher")
        with open(logfile, "a") as f:
            f.write(json.dumps({"mail_from": envelope.mail_from, "rcpts": envelope.rcpt_tos,
                                "data": envelope.original_content.decode("latin-1"),
                                "tls": list(cipher) if cipher else None,
                                "auth": session.auth_data.decode() if isinstance(
                                    session.auth_data, bytes) else session.auth_data}) + "\n")
        return "250 2.0.0 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    want = opt("--auth")[0].split(":", 1)
    ok = auth_data.login.decode() == want[0] and auth_data.password.decode() == want[1]
    return AuthResult(success=ok, auth_data=auth_data.login if ok else None)


class BadTLS(SMTP):
    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg):
        await self.push("220 2.0.0 Ready to start TLS")
        self.transport.write(b"this is not a TLS record\r\n")
        self.transport.close()


class Ctl(Controller):
    def factory(self):
        kw = dict(decode_data=False, enable_SMTPUTF8=True)
        st = opt("--starttls", 2)
        if st:
            kw["tls_context"] = context(*st)
        if opt("--auth"):
            kw["authenticator"] = authenticator
            kw["auth_required"] = "--auth-required" in args
        cls = BadTLS if "--bad-handshake" in args else SMTP
        return cls(self.handler, **kw)


smtps = opt("--smtps", 2)
ctl = Ctl(Handler(), hostname="127.0.0.1", port=port,
          ssl_context=context(*smtps) if smtps else None)
ctl.start()
try:
    __import__("signal").pause()
finally:
    ctl.stop()
