#!/usr/bin/env python3
"""bench/e2e_stats.py - number crunching for bench/e2e (kept out of bash on purpose).

Subcommands (each prints `key=value` pairs on one line, or a table):
  port [N]                       print N free loopback TCP ports (bind to port 0, read, close)
  wait-port PORT SECS            exit 0 once 127.0.0.1:PORT accepts a connection, 1 on timeout
  latency BLASTLOG SINKLOG       join riptide-blast's -L log with riptide-sink's -o log by
                                 Message-ID; inject->delivery latency of every message that got a
                                 250 = last sink receive wall_us - blast start_wall_us (MAIL sent)
  memwatch OUT PID...            until killed: every second sum VmRSS and Pss over the PIDs and all
                                 their descendants, rewrite OUT with the peaks seen (for Postfix,
                                 whose work is spread over many short-lived processes)
  hwm PID...                     sum of VmHWM over the PIDs and their descendants
  descendants PID...             the PIDs and all their live descendants
  table RESULTS...               final table; each RESULTS file holds key=value lines of one run

Percentiles are nearest-rank: p = sorted[ceil(q * n) - 1].
"""
import math
import os
import signal
import socket
import sys
import time


def cmd_port(args):
    count = int(args[0]) if args else 1
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_wait_port(args):
    port, secs = int(args[0]), float(args[1])
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return 0
        except OSError:
            time.sleep(0.05)
    return 1


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[max(0, math.ceil(q * len(sorted_vals)) - 1)]


def read_blast(path):
    """message-id -> (code, start_us, reply_us) for every line of the blast log."""
    out = {}
    with open(path, errors="replace") as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[3].isdigit() and p[4].isdigit():
                out[p[0]] = (p[1], int(p[3]), int(p[4]))
    return out


def read_sink(path):
    """message-id -> (latest receive wall_us, number of sink lines) from the sink's -o log."""
    out = {}
    with open(path, errors="replace") as f:
        for line in f:
            p = line.split()
            if len(p) < 6 or not p[0].isdigit() or p[5] == "-":
                continue
            us, n = out.get(p[5], (0, 0))
            out[p[5]] = (max(us, int(p[0])), n + 1)
    return out


def cmd_latency(args):
    blast, sink = read_blast(args[0]), read_sink(args[1])
    ok = {mid: v for mid, v in blast.items() if v[0] == "250"}
    lat, last_us, missing, dup = [], 0, 0, 0
    for mid, (_, start, _) in ok.items():
        got = sink.get(mid)
        if got is None:
            missing += 1
            continue
        lat.append((got[0] - start) / 1000.0)
        last_us = max(last_us, got[0])
        dup += got[1] > 1
    lat.sort()
    first_us = min((v[1] for v in blast.values()), default=0)
    span = (last_us - first_us) / 1e6 if lat else 0.0
    print(f"joined={len(lat)} missing={missing} multi_line={dup} unknown_at_sink="
          f"{sum(1 for m in sink if m not in blast)} first_start_us={first_us} "
          f"last_recv_us={last_us} span_s={span:.3f} "
          f"msg_per_s={(len(lat) / span if span > 0 else 0):.1f} "
          f"p50_ms={pct(lat, 0.50):.2f} p99_ms={pct(lat, 0.99):.2f} "
          f"max_ms={(lat[-1] if lat else float('nan')):.2f}")


def descendants(roots):
    """The PIDs in roots plus every live process below them."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    seen, todo = set(), [r for r in roots]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(children.get(p, []))
    return seen


def status_kb(pid, key, fname="status"):
    try:
        with open(f"/proc/{pid}/{fname}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cmd_memwatch(args):
    out, roots = args[0], [int(a) for a in args[1:]]
    peak_rss = peak_pss = peak_procs = 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        pids = descendants(roots)
        rss = sum(status_kb(p, "VmRSS") for p in pids)
        pss = sum(status_kb(p, "Pss", "smaps_rollup") for p in pids)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        peak_procs = max(peak_procs, len(pids))
        with open(out + ".tmp", "w") as f:
            f.write(f"peak_rss_kb={peak_rss} peak_pss_kb={peak_pss} peak_procs={peak_procs}\n")
        os.replace(out + ".tmp", out)
        time.sleep(1.0)


def cmd_descendants(args):
    print(" ".join(str(p) for p in sorted(descendants([int(a) for a in args]))))


def cmd_hwm(args):
    pids = descendants([int(a) for a in args])
    print(sum(status_kb(p, "VmHWM") for p in pids))


def read_kv(path):
    """One result per line, `key=value`, the value may hold blanks; the last one wins."""
    d = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            d[k] = v
    return d


def cmd_table(args):
    cols = [("run", "name", "{}"), ("msg/s e2e", "msg_per_s", "{}"),
            ("p50 ms", "p50_ms", "{}"), ("p99 ms", "p99_ms", "{}"),
            ("inject msg/s", "inj_msg_per_s", "{}"), ("inj p50 ms", "inj_p50_ms", "{}"),
            ("inj p99 ms", "inj_p99_ms", "{}"), ("peak RSS", "rss", "{}"),
            ("delivered", "delivered", "{}")]
    rows = [[c[0] for c in cols]]
    for path in args:
        d = read_kv(path)
        rows.append([c[2].format(d.get(c[1], "-")) for c in cols])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    for n, r in enumerate(rows):
        print("  ".join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i])
                        for i, v in enumerate(r)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main():
    cmds = {"port": cmd_port, "wait-port": cmd_wait_port, "latency": cmd_latency,
            "memwatch": cmd_memwatch, "hwm": cmd_hwm,
            "descendants": cmd_descendants, "table": cmd_table}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    sys.exit(cmds[sys.argv[1]](sys.argv[2:]) or 0)


if __name__ == "__main__":
    main()
