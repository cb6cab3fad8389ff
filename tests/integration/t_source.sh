#!/usr/bin/env bash
# source_address: outbound connections leave from the configured address. aiosmtpd (a real
# third-party server) records each client's address: with source_address = 127.0.0.7 the relay
# sees 127.0.0.7, without it the kernel's choice (127.0.0.1). An address the host does not have
# defers the mail with the bind error (never bounces it).
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
RELAY_PORT=$(free_port)
/usr/bin/python3 "$D/aio_sink.py" "$RELAY_PORT" "$T/aio.jsonl" 2>"$T/aio.err" &
PIDS+=($!)
wait_port "$RELAY_PORT"
SINK_PORT=$RELAY_PORT
peer_of() { # peer_of RCPT: the client address of the transaction that carried RCPT
	/usr/bin/python3 -c "
import json,sys
for l in open('$T/aio.jsonl'):
    t=json.loads(l)
    if '$1' in t['rcpts']: print(t['peer'][0]); sys.exit(0)
sys.exit(1)" 2>/dev/null
}
write_config <<'EOF2'
[delivery]
source_address = 127.0.0.7
EOF2
start_riptide
swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test --to a@example.test >"$T/swaks.out" 2>&1 ||
	fail "swaks"
wait_until 15 peer_of a@example.test || fail "a@ did not arrive"
[ "$(peer_of a@example.test)" = 127.0.0.7 ] || fail "source 127.0.0.7: relay saw $(peer_of a@example.test)"
stop_riptide
pass "source_address = 127.0.0.7: the relay saw 127.0.0.7"

sed -i 's/^source_address = .*/source_address = 192.0.2.1;::1/' "$CONF"
start_riptide
swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test --to b@example.test >"$T/swaks.out" 2>&1 ||
	fail "swaks 2"
wait_until 15 grep -q 'status=deferred to=<b@example.test>.*cannot bind source address 192.0.2.1' "$DLOG" ||
	fail "a source address the host lacks: no deferral naming the bind error"
grep -q 'status=failed to=<b@example.test>' "$DLOG" && fail "bind error bounced the mail"
stop_riptide
pass "source_address the host does not have: deferred with the bind error"
