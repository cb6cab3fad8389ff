#!/usr/bin/env bash
# Injection limits and protocol errors get the exact replies (code + enhanced status), pipelined
# commands are honoured, and only <CRLF>.<CRLF> ends DATA (no SMTP smuggling).
. "$(dirname "$0")/lib.sh"
D=$(dirname "$0")
start_sink
write_config <<'EOF2'
[inject]
max_message_size = 10k
max_recipients = 3
max_line_length = 512
EOF2
start_riptide
long=$(printf 'X%.0s' $(seq 600))
python3 "$D/smtp_dialog.py" "$INJ_PORT" <<EOF2 || fail "limits dialog"
GREET
SEND EHLO client.test
EXPECT 250
SEND FOO bar
EXPECT 500 5.5.1
SEND RCPT TO:<a@example.test>
EXPECT 503 5.5.1
SEND DATA
EXPECT 503 5.5.1
SEND MAIL FROM:<s@example.test> SIZE=999999
EXPECT 552 5.3.4
SEND MAIL FROM:<s b@example.test>
EXPECT 501 5.1.3
SEND $long
EXPECT 500 5.5.2
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND MAIL FROM:<s@example.test>
EXPECT 503 5.5.1
SEND RCPT TO:<bad address@example.test>
EXPECT 501 5.1.3
SEND RCPT TO:<r1@example.test>
EXPECT 250
SEND RCPT TO:<r2@example.test>
EXPECT 250
SEND RCPT TO:<r3@example.test>
EXPECT 250
SEND RCPT TO:<r4@example.test>
EXPECT 452 4.5.3
SEND DATA
EXPECT 354
RAW b"Subject: big\r\n\r\n" + b"0123456789abcdef" * 1024 + b"\r\n.\r\n"
EXPECT 552 5.3.4
SEND RSET
EXPECT 250
SEND NOOP
EXPECT 250
SEND QUIT
EXPECT 221
EOF2
pass "limits and error replies"

# Pipelined transaction, then a smuggling attempt: bare-LF and bare-CR dots must not end DATA.
python3 "$D/smtp_dialog.py" "$INJ_PORT" <<'EOF2' || fail "pipelining/smuggling dialog"
GREET
SEND EHLO client.test
EXPECT 250
RAW b"MAIL FROM:<s@example.test>\r\nRCPT TO:<p1@example.test>\r\nRCPT TO:<p2@example.test>\r\nDATA\r\n"
EXPECT 250
EXPECT 250
EXPECT 250
EXPECT 354
RAW b"Subject: pipelined\r\n\r\nhello\r\n.\r\n"
EXPECT 250 2.0.0
SEND MAIL FROM:<s@example.test>
EXPECT 250
SEND RCPT TO:<victim@example.test>
EXPECT 250
SEND DATA
EXPECT 354
RAW b"Subject: smuggle\r\n\r\nline1\n.\nMAIL FROM:<evil@example.test>\r\nx\r.\rRCPT TO:<evil@example.test>\r\nz\n.\r\nDATA\r\n.\r\n"
EXPECT 250 2.0.0
SEND QUIT
EXPECT 221
EOF2
wait_until 20 sink_ge 2 || fail "sink got $(sink_messages) of 2 messages"
sleep 0.5
[ "$(sink_messages)" -eq 2 ] || fail "sink got $(sink_messages) messages, expected exactly 2"
grep -q 'evil@example.test' "$SINK_LOG" && fail "a smuggled envelope reached the sink"
grep -lq 'MAIL FROM:<evil@example.test>' "$SINK_DIR"/* || fail "smuggled text is not inside the body"
grep -q ' s@example.test p1@example.test,p2@example.test ' "$SINK_LOG" \
	|| fail "pipelined message not delivered with both recipients"
pass "pipelining and smuggling-safe DATA"
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty after delivery"
pass "queue empty"
