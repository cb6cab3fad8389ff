#!/usr/bin/env bash
# Slow and greedy clients: a client sending one byte every 300 ms is cut off by the per-command
# deadline (in commands) and by the DATA deadline (in the body) with 421 4.4.2, although each
# read comes well within [inject] timeout; max_sessions holds for the whole daemon (2 shards,
# limit 3: the 4th concurrent connection gets 421 4.7.0 whichever shard takes it); a thousand-
# byte-announcing SIZE= costs nothing until data arrives (checked in the smtpd unit tests).
. "$(dirname "$0")/lib.sh"
start_sink
write_config <<'EOF2'
[inject]
timeout = 5m
command_deadline = 2s
data_deadline = 3s
max_sessions = 3
EOF2
start_riptide
python3 - "$INJ_PORT" <<'PY' || fail "slow client not cut off"
import socket, sys, time
port = int(sys.argv[1])

def dribble(s, data, limit):
    """Send data one byte every 300 ms; return (seconds, what the server said) once it closes."""
    t0 = time.time()
    s.settimeout(0.3)
    got = b""
    for b in data:
        try:
            s.send(bytes([b]))
        except OSError:
            break
        try:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
            if b"421" in got:
                break
        except socket.timeout:
            pass
        if time.time() - t0 > limit:
            break
    return time.time() - t0, got.decode("latin-1")

# in a command: 'EHLO' + 100 bytes of name, one per 300 ms, would take 31 s
s = socket.create_connection(("127.0.0.1", port))
s.recv(4096)
dt, got = dribble(s, b"EHLO " + b"a" * 100 + b"\r\n", 15)
print(f"command: cut after {dt:.1f} s: {got.strip()!r}")
assert "421 4.4.2" in got and 1.5 <= dt <= 5, "command deadline"
s.close()

# in DATA: a valid transaction, then the body one byte per 300 ms
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO c.test\r\n")
while True:
    l = f.readline()
    if l[3:4] == b" ":
        break
for cmd, code in ((b"MAIL FROM:<s@example.test>", b"250"), (b"RCPT TO:<r@example.test>", b"250"),
                  (b"DATA", b"354")):
    s.sendall(cmd + b"\r\n")
    assert f.readline().startswith(code), cmd
dt, got = dribble(s, b"Subject: slow\r\n\r\n" + b"x" * 200 + b"\r\n.\r\n", 15)
print(f"data: cut after {dt:.1f} s: {got.strip()!r}")
assert "421 4.4.2" in got and 2.5 <= dt <= 6, "data deadline"
f.close()  # the makefile() object holds the socket open too
s.close()

# max_sessions = 3 for the whole daemon (2 shards)
time.sleep(0.5)  # the sessions above are gone
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
greets = []
for c in conns:
    c.settimeout(5)
    greets.append(c.recv(4096).decode("latin-1"))
print("greetings:", [g[:9] for g in greets])
assert sum(g.startswith("220") for g in greets) == 3, greets
assert sum(g.startswith("421 4.7.0") for g in greets) == 1, greets
for c in conns:
    c.close()
PY
pass "command and DATA deadlines cut a 1-byte/300ms client; max_sessions is daemon-wide"
swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test --to ok@example.test >"$T/s.out" 2>&1 \
	|| fail "a normal client after the slow ones"
wait_until 10 grep -q ' ok@example.test ' "$SINK_LOG" || fail "normal mail not delivered"
stop_riptide
pass "normal mail still flows"
