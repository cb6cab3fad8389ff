#!/usr/bin/env bash
# TLS with Postfix (Debian's package, a temporary self-contained instance on a loopback port)
# in both roles: riptide delivers to Postfix's smtpd over STARTTLS with the certificate verified
# (tls = required, tls_ca_file), and Postfix's smtp client relays into riptide's listener over
# STARTTLS (smtp_tls_security_level = encrypt). Both sides' logs must say TLS was used.
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
[ "$(id -u)" = 0 ] || { echo "skip: needs root (Postfix daemons start as root)"; exit 77; }
C=$T/pki
"$D/mkcerts.sh" "$C" || fail "mkcerts"
chmod 755 "$T"
PF=$T/pf
PF_PORT=$(free_port)
start_sink

# pf_config RELAYHOST_PORT SMTP_TLS_LEVEL: a main.cf/master.cf relaying everything there
pf_config() {
	mkdir -p "$PF/conf" "$PF/queue" "$PF/data"
	chown postfix:postfix "$PF/data"
	cat >"$PF/conf/main.cf" <<EOF2
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
myhostname = postfix-tls.invalid
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:$1
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtputf8_enable = no
smtpd_tls_chain_files = $C/server-combined.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtp_tls_security_level = $2
smtp_tls_loglevel = 1
biff = no
EOF2
	cat >"$PF/conf/master.cf" <<EOF2
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
tlsmgr unix - - n 1000? 1 tlsmgr
postlog unix-dgram n - n - 1 postlogd
EOF2
}
pf_stop() {
	postfix -c "$PF/conf" stop >>"$T/pf.out" 2>&1 || true
	for _ in $(seq 100); do
		[ -s "$PF/queue/pid/master.pid" ] && kill -0 "$(tr -d ' ' <"$PF/queue/pid/master.pid")" 2>/dev/null || return 0
		sleep 0.1
	done
}
trap 'pf_stop; it_cleanup' EXIT
pf_start() {
	postfix -c "$PF/conf" check >>"$T/pf.out" 2>&1 || fail "postfix check: $(cat "$T/pf.out")"
	postfix -c "$PF/conf" start >>"$T/pf.out" 2>&1 || fail "postfix start: $(cat "$T/pf.out")"
	wait_port "$PF_PORT"
}

# 1: riptide -> Postfix smtpd (STARTTLS, certificate verified by riptide) -> sink
pf_config "$SINK_PORT" none
pf_start
RELAY_PORT=$PF_PORT write_config <<EOF2
[delivery]
tls = required
tls_ca_file = $C/ca.pem
EOF2
start_riptide
swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test --to a@example.test >"$T/swaks-a.out" 2>&1 ||
	fail "injection"
wait_until 30 sink_ge 1 || fail "nothing reached the sink through Postfix: $(tail -5 "$PF/maillog")"
grep -q 'status=delivered to=<a@example.test>.* tls=TLSv1\.[23] .*verified=yes ' "$DLOG" ||
	fail "riptide's line: $(grep 'to=<a@' "$DLOG")"
grep -q 'TLS connection established from localhost\[127.0.0.1\]' "$PF/maillog" ||
	fail "Postfix saw no TLS: $(grep -i tls "$PF/maillog" | tail -3)"
pass "riptide -> Postfix smtpd over STARTTLS, verified: $(grep -o 'TLS connection established from.*' "$PF/maillog" | head -1 | cut -c1-110)"
stop_riptide
pf_stop

# 2: swaks -> Postfix -> riptide's listener (Postfix's smtp client does STARTTLS) -> sink
rm -rf "$T/spool"
INJ_PORT=$(free_port)
write_config <<EOF2
[inject]
tls_cert = $C/server.pem
tls_key = $C/server.key
EOF2
start_riptide
pf_config "$INJ_PORT" encrypt
pf_start
swaks --server "127.0.0.1:$PF_PORT" --from s@example.test --to b@example.test >"$T/swaks-b.out" 2>&1 ||
	fail "injection into Postfix: $(tail -5 "$T/swaks-b.out")"
wait_until 30 sink_ge 2 || fail "b@ did not arrive: $(tail -5 "$PF/maillog")"
grep -q 'TLS connection established to 127.0.0.1\[127.0.0.1\]' "$PF/maillog" ||
	fail "Postfix's smtp: $(grep -i tls "$PF/maillog" | tail -3)"
grep -l 'b@example.test' "$SINK_DIR"/* | xargs grep -q 'with ESMTPS id' || fail "Received: lacks ESMTPS"
pass "Postfix smtp -> riptide over STARTTLS: $(grep -o 'TLS connection established to.*' "$PF/maillog" | head -1 | cut -c1-110)"
stop_riptide
