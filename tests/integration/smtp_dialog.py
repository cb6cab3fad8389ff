#!/usr/bin/env python3
"""smtp_dialog.py — scripted raw SMTP client for riptide's integration tests.

Why: swaks and riptide-blast cover the normal paths; limit and smuggling tests need exact bytes
on the wire and exact replies back. The script reads steps from a file (or stdin), one per line:

    SEND <text>          send text + CRLF
    RAW <python-literal> send these exact bytes (e.g. RAW b"a\\n.\\nb\\r\\n.\\r\\n")
    BODYFILE <path>      send the file's bytes dot-stuffed, then CRLF.CRLF
    EXPECT <code> [enh]  read one reply; fail unless its code (and enhanced code) match
    EXPECTN <n> <code>   read n replies, each must have that code (pipelined batches)
    GREET                read the greeting (expect 220)

It exits 0 when every EXPECT matched, 1 otherwise, printing each reply it read.
"""
import ast
import socket
import sys


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("FAIL: connection closed while waiting for a reply")
        line = line.decode("latin-1").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            break
    code = int(lines[-1][:3])
    rest = lines[-1][4:].split(" ", 1)
    enh = rest[0] if rest and rest[0].count(".") == 2 else ""
    return code, enh, lines


def dot_stuff(data):
    out = []
    for line in data.split(b"\r\n"):
        out.append(b"." + line if line.startswith(b".") else line)
    body = b"\r\n".join(out)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def expect(f, want_code, want_enh):
    code, enh, lines = read_reply(f)
    print("<<< " + " | ".join(lines))
    if code != int(want_code) or (want_enh and enh != want_enh):
        print(f"FAIL: expected {want_code} {want_enh or ''}, got {code} {enh}", file=sys.stderr)
        return False
    return True


def run(port, steps, host="127.0.0.1"):
    if port.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(port[5:])
    else:
        sock = socket.create_connection((host, int(port)), timeout=20)
    sock.settimeout(20)
    f = sock.makefile("rb")
    ok = True
    for step in steps:
        step = step.rstrip("\n")
        if not step.strip() or step.startswith("#"):
            continue
        op, _, arg = step.partition(" ")
        if op == "SEND":
            sock.sendall(arg.encode("latin-1") + b"\r\n")
        elif op == "RAW":
            sock.sendall(eval(arg, {"__builtins__": {}}))  # test steps are trusted
        elif op == "BODYFILE":
            sock.sendall(dot_stuff(open(arg, "rb").read()))
        elif op == "GREET":
            ok &= expect(f, 220, "")
        elif op == "EXPECT":
            parts = arg.split()
            ok &= expect(f, parts[0], parts[1] if len(parts) > 1 else "")
        elif op == "EXPECTN":
            n, code = arg.split()[:2]
            for _ in range(int(n)):
                ok &= expect(f, code, "")
        else:
            raise SystemExit(f"bad step: {step}")
    sock.close()
    return ok


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: smtp_dialog.py PORT|unix:/path [STEPFILE]")
    src = open(sys.argv[2]) if len(sys.argv) > 2 else sys.stdin
    sys.exit(0 if run(sys.argv[1], src.readlines()) else 1)
