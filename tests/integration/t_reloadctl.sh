#!/usr/bin/env bash
# riptidectl reload (issue 9): a running riptide reads its file again through the control
# socket and riptidectl prints what it applied. A changed valid file: exit 0, "reloaded", and
# the change takes effect (a new [route] sends its domain to a second sink). A broken file (an
# unknown key): exit 1, the message names file:line, and the daemon keeps running and
# delivering with the old configuration (the route stays although the broken file drops it).
# No daemon: exit 2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib5.sh"
start_sink
P2=$(free_port)
start_sink_at 127.0.0.1 "$P2"
write_config </dev/null
start_riptide
SOCK=$SPOOL/control.sock
wait_until 10 test -S "$SOCK" || fail "no control socket at $SOCK"

# reload [ARGS]: riptidectl ARGS reload; RC its exit code, stdout+stderr in $T/reload.out.
reload() {
	set +e
	"$RIPTIDECTL" -c "$CONF" -t 40 "$@" reload >"$T/reload.out" 2>&1
	RC=$?
	set -e
}

send_as s@sender.test a@routed.test a
wait_until 10 sink_has_rcpt a@routed.test || fail "a@routed.test did not reach the relay"
[ "$(rcpt_at 127.0.0.1 a@routed.test)" -eq 0 ] || fail "a@routed.test reached the second sink"
pass "before the reload: routed.test goes to the default relay"

# ---- a changed, valid file ----
printf '[route routed.test]\nrelay = 127.0.0.1:%s\n' "$P2" >>"$CONF"
reload
[ "$RC" -eq 0 ] || fail "reload of a valid file: exit $RC: $(cat "$T/reload.out")"
grep -q "^reloaded $CONF: " "$T/reload.out" || fail "reload said: $(cat "$T/reload.out")"
grep -q '1 routes (1 in use)' "$T/reload.out" || fail "reload does not count the route: $(cat "$T/reload.out")"
send_as s@sender.test b@routed.test b
wait_until 10 rcpt_arrived b@routed.test 127.0.0.1 || fail "after the reload b@routed.test did not take the route"
[ "$(sink_rcpt b@routed.test)" -eq 0 ] || fail "b@routed.test reached the default relay"
reload --json
[ "$RC" -eq 0 ] || fail "reload --json: exit $RC: $(cat "$T/reload.out")"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["action"] == "reloaded" and j["message"].startswith("reloaded "), j' "$T/reload.out" ||
	fail "reload --json: $(cat "$T/reload.out")"
pass "riptidectl reload: exit 0, 'reloaded' with what it applied; the new route is used; --json"

# ---- a broken file: refused, the running configuration kept ----
cp "$CONF" "$T/good.conf"
grep -v -e '^\[route routed.test\]' -e "^relay = 127.0.0.1:$P2\$" "$T/good.conf" >"$CONF"
printf '[delivery]\nbogus_key = 1\n' >>"$CONF"
LINE=$(grep -n '^bogus_key' "$CONF" | cut -d: -f1)
reload
[ "$RC" -eq 1 ] || fail "reload of a broken file: exit $RC, want 1: $(cat "$T/reload.out")"
grep -q "$CONF:$LINE: .*bogus_key" "$T/reload.out" || fail "the message does not name $CONF:$LINE: $(cat "$T/reload.out")"
grep -q 'running configuration kept' "$T/reload.out" || fail "the message does not say the configuration is kept: $(cat "$T/reload.out")"
kill -0 "$RIPTIDE_PID" 2>/dev/null || fail "riptide died after a refused reload"
send_as s@sender.test c@routed.test c
send_as s@sender.test d@other.test d
wait_until 10 rcpt_arrived c@routed.test 127.0.0.1 || fail "c@routed.test did not take the kept route"
wait_until 10 sink_has_rcpt d@other.test || fail "d@other.test not delivered after the refused reload"
[ "$(sink_rcpt c@routed.test)" -eq 0 ] || fail "the broken file's routes were applied"
pass "a broken file: exit 1, file:line named, the daemon runs on and delivers with the old routes"

cp "$T/good.conf" "$CONF"
stop_riptide
reload
[ "$RC" -eq 2 ] || fail "reload without a daemon: exit $RC, want 2"
grep -q 'is riptide running' "$T/reload.out" || fail "no daemon: $(cat "$T/reload.out")"
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"
pass "no daemon: exit 2; queue empty"
