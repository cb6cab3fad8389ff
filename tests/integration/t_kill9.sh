#!/usr/bin/env bash
# kill -9 under load, then restart: every message that got 250 arrives at the sink (a message
# may arrive twice only if it was in flight at the kill).
. "$(dirname "$0")/lib.sh"
start_sink
write_config </dev/null
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 40000 -c 40 -L "$T/blast.log" >"$T/blast.out" 2>&1 &
blast=$!
PIDS+=("$blast")
wait_until 30 sink_ge 500 || fail "no delivery under load"
kill -9 "$RIPTIDE_PID"
wait "$RIPTIDE_PID" 2>/dev/null || true
wait "$blast" || true
acc=$(awk '$2 == 250' "$T/blast.log" | wc -l)
[ "$acc" -gt 0 ] || fail "nothing was accepted before the kill"
echo "accepted before kill -9: $acc; at the sink so far: $(sink_messages)"
start_riptide
wait_until 90 all_arrived "$T/blast.log" || fail "some accepted messages never arrived after the restart"
python3 - "$T/blast.log" "$SINK_LOG" <<'PY'
import sys, collections
sent = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] == "250"}
c = collections.Counter(l.split()[5] for l in open(sys.argv[2]))
dups = sum(1 for k, v in c.items() if v > 1)
print(f"accepted {len(sent)}, all arrived; duplicates (in flight at the kill): {dups}")
PY
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty at the end"
pass "kill -9 lost nothing that got 250"
