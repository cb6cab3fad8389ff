#!/usr/bin/env bash
# A relay that takes 50 recipients per transaction (aiosmtpd answering "452 4.5.3 Too many
# recipients" beyond that): a 120-recipient message is delivered at once in transactions of 50,
# 50 and 20 on the same connection, not after retry_delay (set to 1h here), and nothing is
# logged as deferred.
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
RELAY_PORT=$(free_port)
/usr/bin/python3 "$D/aio_sink.py" "$RELAY_PORT" "$T/aio.jsonl" --max-rcpts 50 2>"$T/aio.err" &
PIDS+=($!)
wait_port "$RELAY_PORT"
SINK_PORT=$RELAY_PORT
write_config <<'EOF2'
[delivery]
retry_delay = 1h
max_recipients_per_transaction = 500
EOF2
sed -i '0,/^retry_delay = 1s$/{/^retry_delay = 1s$/d}' "$CONF"
start_riptide
rcpts=$(seq -f 'r%g@example.test' 1 120 | paste -sd, -)
swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test --to "$rcpts" \
	--header "To: undisclosed-recipients:;" >"$T/swaks.out" 2>&1 \
	|| fail "swaks"
got() { /usr/bin/python3 -c "
import json,sys
n=sum(len(json.loads(l)['rcpts']) for l in open('$T/aio.jsonl'))
sys.exit(0 if n>=120 else 1)" 2>/dev/null; }
wait_until 15 got || fail "not every recipient arrived within 15 s (retry_delay is 1h)"
/usr/bin/python3 - "$T/aio.jsonl" <<'PY' || fail "wrong transactions"
import json, sys
txns = [json.loads(l) for l in open(sys.argv[1])]
sizes = [len(t["rcpts"]) for t in txns]
allr = sorted(r for t in txns for r in t["rcpts"])
print("transactions:", sizes)
assert sizes == [50, 50, 20], sizes
assert len({tuple(t["peer"]) for t in txns}) == 1, "not one connection"
assert allr == sorted(f"r{i}@example.test" for i in range(1, 121)), "recipients differ"
PY
[ "$(log_count deferred)" -eq 0 ] || fail "recipients were deferred"
[ "$(log_count delivered)" -eq 120 ] || fail "expected 120 delivered lines, got $(log_count delivered)"
pass "452 4.5.3: remaining recipients sent at once in new transactions"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty"
