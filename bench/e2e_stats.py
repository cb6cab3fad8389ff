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
  rusage OUT CMD [ARG...]        run CMD (SIGTERM/SIGINT forwarded), then write its user+sys CPU
                                 seconds to OUT as `cpu_s=...`; exit with CMD's status
  cpu PID...                     user+sys CPU seconds so far of the PIDs (/proc/PID/stat)
  port-all ADDR...               a TCP port free on every ADDR (127.0.0.x, ::1) right now
  dns-port                       a port free on 127.0.0.1 for both UDP and TCP (for dnsmasq)
  zone DIR NDOMAINS K PCT        independent-mode zone: NDOMAINS domains d<i>.e2e.test, each with
                                 one MX on K healthy hosts (127.0.0.2..K+1, round robin), PCT% of
                                 them on the tarpit host 127.0.0.(K+2) instead; writes DIR/zone.conf
                                 (dnsmasq --conf-file), DIR/domains (comma list for blast -d),
                                 DIR/healthy and DIR/tarpit (one domain a line)
  expect-healthy BLASTLOG NDOMAINS PCT RCPTS
                                 recipients of the 250-answered messages that are in healthy
                                 domains (riptide-blast: message <blast.RUN.SEQ@...>, recipient
                                 k = (SEQ-1)*RCPTS+j goes to domain k % NDOMAINS)
  filter-domains SINKLOG DOMAINFILE
                                 the sink log lines whose recipients are all in DOMAINFILE
  dns-count LOG                  dnsmasq --log-queries LOG: queries, distinct (type, name) pairs

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
            ("delivered", "delivered", "{}"), ("MTA cpu us/msg", "cpu_mta_us", "{}"),
            ("sink cpu us/msg", "cpu_sink_us", "{}"), ("blast cpu us/msg", "cpu_blast_us", "{}")]
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


def cmd_rusage(args):
    out, cmd = args[0], args[1:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    def forward(n, _frame):
        try:
            os.kill(pid, n)
        except ProcessLookupError:
            pass
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    _, status, ru = os.wait4(pid, 0)  # retried after a signal handler (PEP 475)
    with open(out, "w") as f:
        f.write(f"cpu_s={ru.ru_utime + ru.ru_stime:.3f}\n")
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def cmd_cpu(args):
    tck, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in args:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    print(f"{total / tck:.3f}")


def cmd_port_all(args):
    def fam(a):
        return socket.AF_INET6 if ":" in a else socket.AF_INET
    for _ in range(100):
        first = socket.socket(fam(args[0]))
        first.bind((args[0], 0))
        port, held, ok = first.getsockname()[1], [first], True
        for a in args[1:]:
            x = socket.socket(fam(a))
            held.append(x)
            try:
                x.bind((a, port))
            except OSError:
                ok = False
                break
        for x in held:
            x.close()
        if ok:
            print(port)
            return 0
    return "no port free on all of " + " ".join(args)


def cmd_dns_port(args):
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port, t = u.getsockname()[1], socket.socket()
        try:
            t.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close()
        t.close()
        print(port)
        return 0
    return "no port free for UDP and TCP"


def tarpitted(i, pct):
    """Spread PCT% of the domains evenly over the index range (exactly PCT% of 100 domains)."""
    return (i + 1) * pct // 100 - i * pct // 100 == 1


def domain(i):
    return f"d{i}.e2e.test"


def cmd_zone(args):
    d, n, k, pct = args[0], int(args[1]), int(args[2]), int(args[3])
    lines = [f"host-record=mx{j}.e2e.test,127.0.0.{j + 2}" for j in range(k)]
    lines.append(f"host-record=mxslow.e2e.test,127.0.0.{k + 2}")
    healthy, slow = [], []
    for i in range(n):
        if pct and tarpitted(i, pct):
            slow.append(domain(i))
            lines.append(f"mx-host={domain(i)},mxslow.e2e.test,10")
        else:
            healthy.append(domain(i))
            lines.append(f"mx-host={domain(i)},mx{i % k}.e2e.test,10")
    for name, data in (("zone.conf", lines), ("healthy", healthy), ("tarpit", slow)):
        with open(os.path.join(d, name), "w") as f:
            f.write("".join(x + "\n" for x in data))
    with open(os.path.join(d, "domains"), "w") as f:
        f.write(",".join(domain(i) for i in range(n)))
    print(f"domains={n} healthy={len(healthy)} tarpit={len(slow)}")


def cmd_expect_healthy(args):
    n, pct, r = int(args[1]), int(args[2]), int(args[3])
    want = 0
    for mid, (code, _, _) in read_blast(args[0]).items():
        if code != "250":
            continue
        seq = int(mid.split("@")[0].rsplit(".", 1)[1])
        want += sum(1 for j in range(r) if not tarpitted(((seq - 1) * r + j) % n, pct))
    print(want)


def cmd_filter_domains(args):
    keep = {l.strip() for l in open(args[1]) if l.strip()}
    with open(args[0], errors="replace") as f:
        for line in f:
            p = line.split()
            if len(p) >= 6 and all(x.rpartition("@")[2] in keep for x in p[2].split(",")):
                sys.stdout.write(line)


def cmd_domain_rate(args):
    """domain-rate SINKLOG DOMAIN LIMIT RATE NDOMAINS: the limited domain's arrival rate and
    the other domains' total rate, from the sink log (TIME_US first, recipients third)."""
    path, dom, limit, rate, ndom = args[0], args[1].lower(), args[2], args[3], int(args[4])
    mine, other = [], []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 3:
                continue
            t = int(p[0]) / 1e6
            for r in p[2].split(","):
                (mine if r.lower().endswith("@" + dom) else other).append(t)
    def rate_of(ts):
        return (len(ts) - 1) / (max(ts) - min(ts)) if len(ts) > 1 and max(ts) > min(ts) else 0.0
    gaps = sorted(b - a for a, b in zip(sorted(mine), sorted(mine)[1:]))
    print(f"shaping: {dom} (limit {limit}/s): {len(mine)} recipients at {rate_of(mine):.2f}/s "
          f"(smallest gap {gaps[0] * 1000 if gaps else 0:.0f} ms, median "
          f"{gaps[len(gaps) // 2] * 1000 if gaps else 0:.0f} ms); the other {ndom - 1} domains "
          f"(each allowed {rate}/s): {len(other)} recipients at {rate_of(other):.0f}/s in total")


def cmd_dns_count(args):
    q, names = 0, set()
    with open(args[0], errors="replace") as f:
        for line in f:
            p = line.split()
            for i, tok in enumerate(p[:-1]):
                # "query[MX] name" (plain) or "auth[MX] name" (authoritative zone)
                if tok.startswith(("query[", "auth[")) and tok.endswith("]"):
                    q += 1
                    names.add((tok[tok.index("["):], p[i + 1]))
                    break
    print(f"queries={q} distinct={len(names)}")


def main():
    cmds = {"domain-rate": cmd_domain_rate, "port": cmd_port, "wait-port": cmd_wait_port, "latency": cmd_latency,
            "memwatch": cmd_memwatch, "hwm": cmd_hwm,
            "descendants": cmd_descendants, "table": cmd_table, "rusage": cmd_rusage,
            "cpu": cmd_cpu, "port-all": cmd_port_all, "dns-port": cmd_dns_port,
            "zone": cmd_zone, "expect-healthy": cmd_expect_healthy,
            "filter-domains": cmd_filter_domains, "dns-count": cmd_dns_count}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    sys.exit(cmds[sys.argv[1]](sys.argv[2:]) or 0)


if __name__ == "__main__":
    main()
