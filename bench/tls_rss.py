#!/usr/bin/python3
"""bench/tls_rss.py — resident memory per SMTP session, plaintext vs TLS, measured on a real
riptide-sink (engine/smtpd + engine/xport + tls/, the same session code as riptide's listener).

Usage: bench/tls_rss.py [-n SESSIONS] [--build DIR]   (default 1000 sessions, build dir build/)

It makes a throwaway PKI (tests/integration/mkcerts.sh), starts riptide-sink with --tls-cert on
a loopback port, then opens SESSIONS connections that each say EHLO and stay idle (plaintext),
reads the sink's VmRSS, closes them, and does the same with SESSIONS connections that each
complete STARTTLS and a second EHLO (TLS 1.3). It prints the RSS growth per session for both
and the difference (what TLS adds per idle session). Python's ssl (OpenSSL) is the client.
"""
import asyncio, os, socket, ssl, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
n = int(sys.argv[sys.argv.index("-n") + 1]) if "-n" in sys.argv else 1000
build = sys.argv[sys.argv.index("--build") + 1] if "--build" in sys.argv else os.path.join(ROOT, "build")


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def reply(r):
    while True:
        line = await r.readline()
        if not line or line[3:4] != b"-":
            return line


async def session(port, tls, hold, ready):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await reply(r)
    w.write(b"EHLO bench.test\r\n")
    await reply(r)
    if tls:
        w.write(b"STARTTLS\r\n")
        await reply(r)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        await w.start_tls(ctx)
        w.write(b"EHLO bench.test\r\n")
        await reply(r)
    ready.append(1)
    await hold.wait()
    w.write(b"QUIT\r\n")
    await w.drain()
    w.close()


async def measure(port, pid, tls):
    hold, ready = asyncio.Event(), []
    base = rss_kb(pid)
    tasks = [asyncio.create_task(session(port, tls, hold, ready)) for _ in range(n)]
    while len(ready) < n:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    grown = rss_kb(pid) - base
    hold.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(0.5)
    return grown


def main():
    pki = tempfile.mkdtemp(prefix="riptide-tlsrss.")
    subprocess.run([os.path.join(ROOT, "tests/integration/mkcerts.sh"), pki], check=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    sink = subprocess.Popen([os.path.join(build, "tools/sink/riptide-sink"), "-q", "-t", "1",
                             "-l", f"127.0.0.1:{port}", "--tls-cert", f"{pki}/server.pem",
                             "--tls-key", f"{pki}/server.key"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        asyncio.run(measure(port, sink.pid, False))  # warm-up: freelists, arenas
        plain = asyncio.run(measure(port, sink.pid, False))
        tls = asyncio.run(measure(port, sink.pid, True))
        print(f"riptide-sink, {n} idle sessions: plaintext +{plain / n:.1f} KB/session, "
              f"TLS 1.3 +{tls / n:.1f} KB/session, TLS adds {(tls - plain) / n:.1f} KB/session "
              f"(VmRSS growth while they are open)")
    finally:
        sink.terminate()
        sink.wait()
        subprocess.run(["rm", "-rf", pki])


main()
