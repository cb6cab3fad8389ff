# shellcheck shell=bash
# tests/integration/lib_route.sh — helpers for the static route and egress pool tests (issue 9):
# named riptide-sinks on any loopback address and port. Source it after lib.sh.
#
# Why: these tests tell routes apart by which sink got a message, and several sinks share one
# address (127.0.0.1) on different ports, which lib.sh's start_sink_at (files named after the
# address) cannot hold apart; the sinks here are named by the test instead, and log the peer's
# address and EHLO name (--log-peer) so pools can be checked too. Nothing in lib.sh changes.

[ ! -x /usr/bin/python3 ] || PATH=/usr/bin:$PATH
declare -A NSINK_PID=()

# nsink NAME ADDR PORT [SINK FLAGS...]: riptide-sink NAME on ADDR:PORT, one thread, --log-peer,
# files $T/s-NAME.log (-o), .stats (-c), .err, .out and dir $T/s-NAME.d (-d); waits until it
# listens (its readiness probe is one connection: see ns_conns).
nsink() {
	local n=$1 a=$2 p=$3
	shift 3
	mkdir -p "$T/s-$n.d"
	: >>"$T/s-$n.log"
	"$SINK" -q -t 1 -l "$a:$p" --log-peer -o "$T/s-$n.log" -c "$T/s-$n.stats" -d "$T/s-$n.d" \
		"$@" >>"$T/s-$n.out" 2>>"$T/s-$n.err" &
	NSINK_PID[$n]=$!
	PIDS+=("$!")
	wait_tcp "$a" "$p" "${NSINK_PID[$n]}"
}

# nsink_stop NAME: stop sink NAME and reap it (its files stay).
nsink_stop() {
	stop_pid "${NSINK_PID[$1]}"
	unset "NSINK_PID[$1]"
}

# ns_log NAME: path of sink NAME's -o log.
ns_log() { echo "$T/s-$1.log"; }

# ns_rcpt NAME RCPT: accepted transactions at sink NAME that carried RCPT.
ns_rcpt() {
	awk -v r="$2" '{ n += index("," $3 ",", "," r ",") > 0 } END { print n + 0 }' \
		"$T/s-$1.log" 2>/dev/null || echo 0
}

# ns_has NAME RCPT: true once RCPT reached sink NAME (for wait_until).
ns_has() { [ "$(ns_rcpt "$1" "$2")" -ge 1 ]; }

# ns_line NAME RCPT: sink NAME's log line(s) of the transaction(s) that carried RCPT.
ns_line() { awk -v r="$2" 'index("," $3 ",", "," r ",") > 0' "$T/s-$1.log" 2>/dev/null; }

# ns_msgs NAME: messages sink NAME accepted (lines of its log).
ns_msgs() { wc -l <"$T/s-$1.log"; }

# ns_conns NAME: connections sink NAME accepted, not counting nsink's readiness probe.
ns_conns() {
	local v
	v=$(sed -n 's/.*\bconnections=\([0-9]*\).*/\1/p' "$T/s-$1.stats" 2>/dev/null)
	echo $((${v:-1} - 1))
}

# where RCPT SINK...: the names of the sinks (of those given) that got RCPT, blank-separated.
where() {
	local r=$1 n out=
	shift
	for n in "$@"; do ns_has "$n" "$r" && out="$out $n"; done
	echo "${out# }"
}

# free_ports N: N distinct TCP ports free on 127.0.0.1 right now, blank-separated (held together
# while chosen, so no two are the same).
free_ports() {
	python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# smtp_send TAG FROM SPEC...: send one message per SPEC ("RCPT[|Header: value]...", see
# smtp_send.py) in one session to riptide's $INJ_PORT; the replies ("RCPT CODE TEXT" lines) in
# $T/send-TAG.out. Fails the test if the session broke.
smtp_send() {
	local tag=$1
	shift
	python3 "$(dirname "${BASH_SOURCE[0]}")/smtp_send.py" "$INJ_PORT" "$@" >"$T/send-$tag.out" \
		2>"$T/send-$tag.err" || fail "smtp_send $tag: $(cat "$T/send-$tag.err")"
}

# send_all TAG FROM SPEC...: smtp_send, and every message must be queued (250).
send_all() {
	local tag=$1 n
	smtp_send "$@"
	shift 2
	n=$(grep -c '^[^ ]* 250 ' "$T/send-$tag.out" || true)
	[ "$n" -eq $# ] || fail "send $tag: $n of $# queued: $(grep -v '^[^ ]* 250 ' "$T/send-$tag.out" | head -n 3)"
}

# arrives SINK RCPT WHAT: wait (<= 20 s) until RCPT reached sink SINK; else fail with WHAT, the
# sinks (of $SINKS) that have it and its last two delivery log lines.
arrives() {
	wait_until 20 ns_has "$1" "$2" && return 0
	fail "$3 (found at: '$(where "$2" "${SINKS[@]}")'; log: $(grep -F "to=<$2>" "$DLOG" 2>/dev/null | tail -n 2))"
}
