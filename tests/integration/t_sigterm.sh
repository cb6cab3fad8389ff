#!/usr/bin/env bash
# SIGTERM under load: riptide stops accepting, exits 0 within a bounded time, and whatever was
# accepted but not delivered is safe in the queue and delivered after the restart.
. "$(dirname "$0")/lib.sh"
start_sink -w 20
write_config </dev/null
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 3000 -c 20 -L "$T/blast.log" >"$T/blast.out" 2>&1 &
blast=$!
PIDS+=("$blast")
wait_until 30 sink_ge 50 || fail "no delivery"
stop_riptide
wait "$blast" || true
acc=$(awk '$2 == 250' "$T/blast.log" | wc -l)
left=$(queue_count)
echo "accepted $acc, at the sink $(sink_messages), left in the queue $left"
[ "$left" -gt 0 ] || echo "note: everything was delivered before the stop"
start_riptide
wait_until 90 all_arrived "$T/blast.log" || fail "accepted messages missing after the restart"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty"
pass "SIGTERM: clean exit 0, queue kept, delivered after restart"
