#!/usr/bin/env bash
# Configuration errors name the file, line and key and exit 2; --print-config prints a file that
# loads back to the same configuration.
. "$(dirname "$0")/lib.sh"
printf '[main]\nshards = 1\n[inject]\nbogus_key = 3\n' >"$T/bad1.conf"
printf '[delivery]\nmax_connections = lots\n' >"$T/bad2.conf"
printf '[nosuch]\nx = 1\n' >"$T/bad3.conf"
for f in bad1:4:bogus_key bad2:2:max_connections bad3:1:nosuch; do
	IFS=: read -r name line key <<<"$f"
	rc=0
	"$RIPTIDE" -c "$T/$name.conf" --print-config >"$T/out" 2>"$T/err" || rc=$?
	[ $rc -eq 2 ] || fail "$name: exit $rc, expected 2"
	grep -q "$T/$name.conf:$line:.*$key" "$T/err" || fail "$name: message was: $(cat "$T/err")"
done
rc=0
"$RIPTIDE" -c "$T/missing.conf" 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q missing.conf "$T/err" || fail "missing file: rc=$rc $(cat "$T/err")"
rc=0
"$RIPTIDE" --no-such-flag 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "unknown flag: exit $rc"
pass "bad configurations exit 2 naming file:line:key"
"$RIPTIDE" --print-config >"$T/p1.conf"
"$RIPTIDE" -c "$T/p1.conf" --print-config >"$T/p2.conf"
cmp -s "$T/p1.conf" "$T/p2.conf" || fail "print-config does not round-trip"
grep -q '^max_connections = 1000$' "$T/p1.conf" || fail "default max_connections is not 1000"
pass "--print-config round-trips"
printf '[delivery]\nmode = independent\nport = 2525\nfirst_mx_only = yes\n' >"$T/indep.conf"
"$RIPTIDE" -c "$T/indep.conf" --print-config >"$T/indep.out" || fail "independent --print-config"
for kv in 'mode = independent' 'port = 2525' 'first_mx_only = yes' 'max_connections_per_destination = 20' \
	'fallback_relay =' 'source_address =' 'max_ready_per_destination = 2000'; do
	grep -qx "$kv" "$T/indep.out" || fail "--print-config lacks '$kv'"
done
printf '[delivery]\nmode = independent\nport = 0\n' >"$T/badport.conf"
rc=0
"$RIPTIDE" -c "$T/badport.conf" 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q "badport.conf:3" "$T/err" || fail "port = 0: rc=$rc $(cat "$T/err")"
pass "independent mode keys print and validate"
