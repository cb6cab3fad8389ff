# tests/integration/lib.sh — shared harness for riptide's integration tests (bash).
#
# Why: every test starts real processes on ephemeral loopback ports with a temp spool, asserts on
# what the sink received / what the log and queue say, and must stop everything it started, even
# on failure. Source this file, then use the helpers below. Binaries come from the environment
# meson sets (RIPTIDE, SINK, BLAST); third-party peers (swaks, smtp-sink, dnsmasq) from PATH.
set -euo pipefail

: "${RIPTIDE:?RIPTIDE must point at the riptide binary}"
: "${SINK:?SINK must point at riptide-sink}"
: "${BLAST:?BLAST must point at riptide-blast}"
PATH=$PATH:/usr/sbin:/sbin
# Sanitizer builds: leaks are checked by the unit tests; daemons killed with -9 cannot free.
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0

T=$(mktemp -d /tmp/riptide-it.XXXXXX)
PIDS=()

it_cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ $rc -ne 0 ]; then
		echo "--- test failed (rc=$rc); files in $T:" >&2
		for f in "$T"/*.err "$T"/*.log; do
			[ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 30 "$f" >&2; }
		done
	fi
	[ -n "${KEEP:-}" ] || rm -rf "$T"
	exit $rc
}
trap it_cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [HOST]: wait (<= 10 s) until something listens there.
wait_port() {
	local host=${2:-127.0.0.1}
	for _ in $(seq 200); do
		python3 -c "import socket,sys; socket.create_connection(('$host',$1),0.2).close()" \
			2>/dev/null && return 0
		sleep 0.05
	done
	fail "nothing listens on $host:$1"
}

# wait_until TIMEOUT_S CMD...: poll CMD every 0.1 s until it succeeds or the time is up.
wait_until() {
	local t=$1; shift
	local n=$((t * 10))
	for _ in $(seq "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# start_sink [FLAGS...]: start riptide-sink on a fresh port; sets SINK_PORT, SINK_LOG (-o),
# SINK_STATS (-c), SINK_DIR (-d), SINK_PID.
start_sink() {
	SINK_PORT=$(free_port)
	SINK_LOG=$T/sink.log
	SINK_STATS=$T/sink.stats
	SINK_DIR=$T/sink.d
	mkdir -p "$SINK_DIR"
	"$SINK" -q -t 2 -l "127.0.0.1:$SINK_PORT" -o "$SINK_LOG" -c "$SINK_STATS" -d "$SINK_DIR" \
		"$@" 2>"$T/sink.err" &
	SINK_PID=$!
	PIDS+=("$SINK_PID")
	wait_port "$SINK_PORT"
}

# For tests that start riptide-sinks themselves, one at a time as $SPID, named $SN:
# down: SIGTERM the sink; it must exit 0 (its stats line is then in $T/$SN.out).
down() {
	local rc=0
	kill -TERM "$SPID"
	wait "$SPID" || rc=$?
	[ $rc -eq 0 ] || fail "$SN: riptide-sink exited $rc"
}

# counter KEY: a counter (the whole key) from the stopped sink's stats line.
counter() {
	sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" "$T/$SN.out"
}

# sink_messages: messages the sink accepted so far (from its stats file).
sink_messages() {
	sed -n 's/.*messages=\([0-9]*\).*/\1/p' "$SINK_STATS" 2>/dev/null || echo 0
}

# write_config [EXTRA INI LINES on stdin]: write $T/riptide.conf for relay mode to the sink;
# extra lines (whole sections) are appended from stdin. Sets INJ_PORT, SPOOL, DLOG, CONF.
write_config() {
	INJ_PORT=${INJ_PORT:-$(free_port)}
	SPOOL=$T/spool
	DLOG=$T/delivery.log
	CONF=$T/riptide.conf
	{
		printf '[main]\nspool = %s\nlog = %s\nshards = 2\nshutdown_timeout = 5s\n' "$SPOOL" "$DLOG"
		printf '[inject]\nlisten = 127.0.0.1:%s\nsocket = %s\n' "$INJ_PORT" "$T/inject.sock"
		printf '[delivery]\nrelay = 127.0.0.1:%s\nretry_delay = 1s\n' "${RELAY_PORT:-$SINK_PORT}"
		printf '[queue]\nscan_interval = 200ms\n'
		cat
	} >"$CONF"
}

# start_riptide: start the daemon on $CONF; sets RIPTIDE_PID.
start_riptide() {
	"$RIPTIDE" -c "$CONF" 2>>"$T/riptide.err" &
	RIPTIDE_PID=$!
	PIDS+=("$RIPTIDE_PID")
	wait_port "$INJ_PORT"
}

# stop_riptide: SIGTERM and wait; fails the test unless it exits 0 within 20 s.
stop_riptide() {
	kill -TERM "$RIPTIDE_PID"
	local rc=0
	for _ in $(seq 200); do
		kill -0 "$RIPTIDE_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$RIPTIDE_PID" 2>/dev/null && fail "riptide did not stop within 20 s of SIGTERM"
	wait "$RIPTIDE_PID" || rc=$?
	[ $rc -eq 0 ] || fail "riptide exited $rc after SIGTERM"
}

# queue_count: messages in the (stopped) daemon's queue.
queue_count() {
	"$RIPTIDE" -c "$CONF" --queue-count
}

# sink_ge N: true once the sink has accepted at least N messages (for wait_until).
sink_ge() {
	[ "$(sink_messages)" -ge "$1" ]
}

# all_arrived BLASTLOG: true when every message that got 250 in riptide-blast's -L log is in the
# sink's -o log (joined by Message-ID). Extra or duplicate arrivals are allowed here.
all_arrived() {
	python3 - "$1" "$SINK_LOG" <<'PY'
import sys
sent = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] == "250"}
got = {l.split()[5] for l in open(sys.argv[2])}
sys.exit(0 if sent and sent <= got else 1)
PY
}

# log_count STATUS: delivery log lines with status=STATUS.
log_count() {
	grep -c "status=$1" "$DLOG" 2>/dev/null || true
}

# ---- independent mode (MX delivery): dnsmasq zones and sinks on 127.0.0.x / ::1 -------------
# The helpers below add, never change, what the ones above do. Files of each instance live in $T
# under its name (dnsmasq-NAME.*, mx-ADDR.*), so the failure dump above shows their tails.
declare -A DNSMASQ_PID=() DNSMASQ_PORT=() MXSINK_PID=()

# wait_tcp HOST PORT [PID]: wait (<= 10 s) until HOST:PORT (HOST may be ::1) accepts a TCP
# connection; fails the test at once if PID (the process meant to listen) has exited. Uses bash's
# /dev/tcp, no python per try (its start-up takes up to a second on a loaded machine).
wait_tcp() {
	local h=$1 p=$2 pid=${3:-}
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/$h/$p") 2>/dev/null && return 0
		[ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || fail "pid $pid exited before listening on $h:$p"
		sleep 0.05
	done
	fail "nothing listens on $h:$p"
}

# free_dns_port: a port free on 127.0.0.1 for both UDP and TCP right now (dnsmasq listens on both).
free_dns_port() {
	python3 - <<'PY'
import socket
for _ in range(50):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    p = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        u.close()
    t.close()
    print(p)
    break
else:
    raise SystemExit("no free UDP+TCP port")
PY
}

# free_port_all ADDR...: a TCP port free on every ADDR right now (MX sinks share the daemon's
# one `port`; an address may be ::1).
free_port_all() {
	python3 - "$@" <<'PY'
import socket, sys
def fam(a): return socket.AF_INET6 if ":" in a else socket.AF_INET
addrs = sys.argv[1:]
for _ in range(50):
    s = socket.socket(fam(addrs[0]))
    s.bind((addrs[0], 0))
    p = s.getsockname()[1]
    held = [s]
    try:
        for a in addrs[1:]:
            x = socket.socket(fam(a))
            held.append(x)
            x.bind((a, p))
    except OSError:
        continue
    finally:
        for x in held:
            x.close()
    print(p)
    break
else:
    raise SystemExit("no port free on all of " + " ".join(addrs))
PY
}

# start_udp_hole [PORT]: a UDP socket on 127.0.0.1 that reads nothing and answers nothing (a DNS
# server that never replies: lookups time out instead of getting ICMP "port unreachable").
# PORT defaults to a fresh one. Sets HOLE_PORT, HOLE_PID (stop it with stop_pid $HOLE_PID).
start_udp_hole() {
	HOLE_PORT=${1:-$(free_dns_port)}
	rm -f "$T/hole.$HOLE_PORT"
	python3 -c 'import socket, sys, time, os
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
while True: time.sleep(3600)' "$HOLE_PORT" "$T/hole.$HOLE_PORT" 2>"$T/hole.err" &
	HOLE_PID=$!
	PIDS+=("$HOLE_PID")
	wait_until 10 test -e "$T/hole.$HOLE_PORT" || fail "UDP hole on port $HOLE_PORT did not start"
}

# stop_pid PID: SIGTERM PID (a child started by a helper here), reap it, drop it from PIDS.
stop_pid() {
	local p keep=()
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# start_dnsmasq NAME PORT|- [DNSMASQ ARGS...]: run Debian's dnsmasq in the foreground on
# 127.0.0.1:PORT (UDP and TCP; "-": a fresh port), serving only what ARGS say (no resolv.conf,
# no /etc/hosts; names under .test it does not know get NXDOMAIN: --local=/test/), each query
# logged (--log-queries) to $T/dnsmasq-NAME.log. Record syntax that works (see t_testdns.sh):
#   --mx-host=DOMAIN,HOST,PREF   --mx-host=DOMAIN,.,0 (null MX)   --host-record=NAME,IPv4[,IPv6]
#   --address=/nx.test/ (NXDOMAIN)   --server=/slow.test/127.0.0.1#HOLE_PORT (never answers)
#   --local-ttl=SECS (TTL of all these records)
# Sets DNS_PORT, DNS_PID, DNS_LOG, DNSMASQ_PORT[NAME], DNSMASQ_PID[NAME]. Fails the
# test if dnsmasq exits (bad arguments: see $T/dnsmasq-NAME.err) or does not listen within 10 s.
start_dnsmasq() {
	local name=$1 port=$2
	shift 2
	[ "$port" != - ] || port=$(free_dns_port)
	DNS_LOG=$T/dnsmasq-$name.log
	dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 \
		--bind-interfaces --port="$port" --pid-file= --user=root --local=/test/ \
		--log-queries --log-facility="$DNS_LOG" "$@" 2>>"$T/dnsmasq-$name.err" &
	DNS_PID=$!
	DNS_PORT=$port
	PIDS+=("$DNS_PID")
	DNSMASQ_PID[$name]=$DNS_PID
	DNSMASQ_PORT[$name]=$port
	wait_tcp 127.0.0.1 "$port" "$DNS_PID"
}

# stop_dnsmasq NAME: stop that dnsmasq and reap it (its port is free again for a restart with
# other records: start_dnsmasq NAME "$port" ...; the query log is appended to, not truncated).
stop_dnsmasq() {
	stop_pid "${DNSMASQ_PID[$1]}"
	unset "DNSMASQ_PID[$1]"
}

# dns_queries NAME TYPE QNAME: queries of TYPE (MX, A, AAAA) for QNAME in dnsmasq NAME's log.
dns_queries() {
	grep -c "query\[$2\] $3 from " "$T/dnsmasq-$1.log" 2>/dev/null || true
}

# dns_check DOMAIN PATTERN...: the zone on $DNS_PORT is what the test thinks: riptidectl
# test-dns DOMAIN (with implicit MX on, 300 ms timeout, one try) prints lines matching every
# extended regex PATTERN (fixture self-check before the daemon is involved).
dns_check() {
	local d=$1 p
	shift
	: "${RIPTIDECTL:?RIPTIDECTL must point at riptidectl}"
	printf '[delivery]\ndns_servers = 127.0.0.1:%s\ndns_timeout = 300ms\ndns_tries = 1\n' \
		"$DNS_PORT" >"$T/dnscheck.conf"
	"$RIPTIDECTL" -c "$T/dnscheck.conf" test-dns "$d" >"$T/dnscheck.out" 2>&1 || true
	for p in "$@"; do
		grep -Eq -- "$p" "$T/dnscheck.out" ||
			fail "zone fixture: test-dns $d lacks /$p/: $(cat "$T/dnscheck.out")"
	done
}

# mx_tag ADDR: the file-name tag of the sink at ADDR (127.0.0.2 -> 127.0.0.2, ::1 -> v6_1).
mx_tag() {
	local a=$1
	[[ $a == *:* ]] && a=v6${a//:/_}
	echo "${a/v6__/v6_}"
}

# start_sink_at ADDR PORT [SINK FLAGS...]: riptide-sink on ADDR:PORT (an MX host: 127.0.0.x or
# ::1), one thread, files $T/mx-TAG.log (-o), .stats (-c), .err, dir .d (-d); waits until it
# listens. Later flags win (e.g. -w 3000, -g 421, --reply rcpt/2=450).
start_sink_at() {
	local a=$1 port=$2 tag l
	shift 2
	tag=$(mx_tag "$a")
	l="$a:$port"
	[[ $a == *:* ]] && l="[$a]:$port"
	mkdir -p "$T/mx-$tag.d"
	"$SINK" -q -t 1 -l "$l" -o "$T/mx-$tag.log" -c "$T/mx-$tag.stats" -d "$T/mx-$tag.d" \
		"$@" >>"$T/mx-$tag.out" 2>>"$T/mx-$tag.err" &
	MXSINK_PID[$tag]=$!
	PIDS+=("$!")
	wait_tcp "$a" "$port" "${MXSINK_PID[$tag]}"
}

# stop_sink_at ADDR: stop the sink at ADDR and reap it (its files stay).
stop_sink_at() {
	local tag
	tag=$(mx_tag "$1")
	stop_pid "${MXSINK_PID[$tag]}"
	unset "MXSINK_PID[$tag]"
}

# sink_at ADDR KEY: counter KEY (messages, recipients, connections, ...) of the sink at ADDR.
sink_at() {
	local v
	v=$(sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" "$T/mx-$(mx_tag "$1").stats" 2>/dev/null)
	echo "${v:-0}"
}

# sink_at_conns ADDR: connections the sink at ADDR accepted since it listened, not counting the
# one readiness probe of start_sink_at (stats file: rewritten every 100 ms).
sink_at_conns() { echo $(($(sink_at "$1" connections) - 1)); }

# sink_at_log ADDR: path of the -o log of the sink at ADDR.
sink_at_log() { echo "$T/mx-$(mx_tag "$1").log"; }

# rcpt_at ADDR RCPT: how many accepted transactions at the sink at ADDR carried RCPT.
rcpt_at() {
	awk -v r="$2" '{ n += index("," $3 ",", "," r ",") > 0 } END { print n + 0 }' \
		"$(sink_at_log "$1")" 2>/dev/null || echo 0
}

# rcpt_arrived RCPT ADDR: true once RCPT is in the sink at ADDR's log (for wait_until).
rcpt_arrived() { [ "$(rcpt_at "$2" "$1")" -ge 1 ]; }

# write_mx_config [EXTRA INI LINES on stdin]: write $T/riptide.conf for independent mode: MX
# port $MX_PORT, DNS from dnsmasq on $DNS_PORT (500 ms, one try), retry after 1 s, short
# connect and greeting timeouts (2 s) so a dead or tarpitting host costs little. Extra lines
# (whole sections; a key given again wins) come from stdin. Sets INJ_PORT, SPOOL, DLOG, CONF.
write_mx_config() {
	INJ_PORT=${INJ_PORT:-$(free_port)}
	SPOOL=$T/spool
	DLOG=$T/delivery.log
	CONF=$T/riptide.conf
	{
		printf '[main]\nspool = %s\nlog = %s\nshards = 2\nshutdown_timeout = 5s\n' "$SPOOL" "$DLOG"
		printf '[inject]\nlisten = 127.0.0.1:%s\nsocket = %s\n' "$INJ_PORT" "$T/inject.sock"
		printf '[delivery]\nmode = independent\nport = %s\n' "$MX_PORT"
		printf 'dns_servers = 127.0.0.1:%s\ndns_timeout = 500ms\ndns_tries = 1\n' "$DNS_PORT"
		printf 'retry_delay = 1s\nconnect_timeout = 2s\ngreeting_timeout = 2s\nmx_rollup = no\n'
		printf '[queue]\nscan_interval = 200ms\n'
		cat
	} >"$CONF"
}

# send_to RCPT[,RCPT...] [TAG]: one message from s@sender.test through riptide (swaks over TCP);
# fails the test unless it is queued (250).
send_to() {
	local tag=${2:-$(echo "$1" | tr -c 'A-Za-z0-9\n' _)}
	swaks --server "127.0.0.1:$INJ_PORT" --from s@sender.test --to "$1" \
		--header "Subject: $tag" >"$T/swaks-$tag.out" 2>&1 ||
		fail "swaks to $1: $(tail -n 3 "$T/swaks-$tag.out")"
}

# dlog_has REGEX: true if a delivery log line matches the extended REGEX (for wait_until).
dlog_has() { grep -Eq -- "$1" "$DLOG" 2>/dev/null; }

# rcpts_at_domain ADDR DOMAIN: recipients @DOMAIN in the accepted transactions of the sink at ADDR.
rcpts_at_domain() {
	awk -v d="@$2" '{ n2 = split($3, r, ","); for (i = 1; i <= n2; i++)
		n += (substr(r[i], length(r[i]) - length(d) + 1) == d) } END { print n + 0 }' \
		"$(sink_at_log "$1")" 2>/dev/null || echo 0
}

# dlog_line STATUS RCPT [REGEX...]: true if one delivery log line has "status=STATUS to=<RCPT>"
# and matches every further extended REGEX (e.g. 'mx=mxa\.pref\.test ' 'attempts=1 ').
dlog_line() {
	local st=$1 r=$2 l p ok
	shift 2
	while IFS= read -r l; do
		ok=1
		for p in "$@"; do [[ $l =~ $p ]] || { ok=0; break; }; done
		[ $ok = 0 ] || return 0
	done < <(grep -F -- "status=$st to=<$r>" "$DLOG" 2>/dev/null)
	return 1
}
