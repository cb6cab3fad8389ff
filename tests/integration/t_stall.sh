#!/usr/bin/env bash
# A stalled daemon (SIGSTOP for 3 s in the middle of a drain) must not turn replies that arrived
# meanwhile into timeouts: no deferral, nothing delivered twice. (A linked timeout whose recv had
# completed could cancel the next recv on the same op by user_data when its task work ran late:
# "timeout waiting for reply to end of data" on a message the relay had taken: a duplicate.)
. "$(dirname "$0")/lib.sh"
N=30000
start_sink
write_config < <(printf '[delivery]\noutgoing = no\n')
start_riptide
"$BLAST" -t "127.0.0.1:$INJ_PORT" -n "$N" -c 50 -s 1024 >"$T/blast.out" 2>&1 || fail "blast"
stop_riptide
write_config </dev/null # outgoing on: the backlog drains
start_riptide
drained_some() { [ "$(wc -l <"$SINK_LOG")" -ge 2000 ]; }
wait_until 30 drained_some || fail "the backlog does not drain"
kill -STOP "$RIPTIDE_PID"
sleep 3
kill -CONT "$RIPTIDE_PID"
all_in() { [ "$(wc -l <"$SINK_LOG")" -ge "$N" ]; }
wait_until 120 all_in || fail "not everything arrived: $(wc -l <"$SINK_LOG") of $N"
sleep 1
d=$(grep -c 'status=deferred' "$DLOG" || true)
[ "$d" -eq 0 ] || fail "$d deferrals after the stall: $(grep -m1 'status=deferred' "$DLOG")"
dup=$(awk '{print $6}' "$SINK_LOG" | sort | uniq -d | wc -l)
[ "$dup" -eq 0 ] || fail "$dup messages delivered twice"
pass "a 3 s stall during a drain of $N: no false timeout, nothing twice"
stop_riptide
