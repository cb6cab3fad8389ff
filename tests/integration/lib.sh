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
