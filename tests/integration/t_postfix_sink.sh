#!/usr/bin/env bash
# A real third-party receiver: riptide relays to Postfix's smtp-sink; every message arrives,
# each one a dumped transaction with riptide's envelope and the exact Message-ID.
. "$(dirname "$0")/lib.sh"
command -v smtp-sink >/dev/null || fail "Postfix smtp-sink not installed"
PFPORT=$(free_port)
chmod 755 "$T"
mkdir -p "$T/pf"
chmod 777 "$T/pf"
smtp-sink -u nobody -d "$T/pf/%M." "127.0.0.1:$PFPORT" 256 2>"$T/smtp-sink.err" &
PIDS+=($!)
wait_port "$PFPORT"
RELAY_PORT=$PFPORT SINK_PORT=0 write_config </dev/null
start_riptide
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 200 -c 10 -L "$T/blast.log" >"$T/blast.out" || fail "blast"
grep -q 'ok=200 ' "$T/blast.out" || fail "blast: $(tail -n1 "$T/blast.out")"
count() { find "$T/pf" -type f | wc -l; }
count_ge() { [ "$(count)" -ge "$1" ]; }
wait_until 60 count_ge 200 || fail "smtp-sink got $(count) of 200"
python3 - "$T/blast.log" "$T/pf" <<'PY' || fail "Message-IDs at smtp-sink differ from those accepted"
import os, re, sys
sent = {l.split()[0] for l in open(sys.argv[1]) if l.split()[1] == "250"}
got = set()
for root, _, files in os.walk(sys.argv[2]):
    for f in files:
        data = open(os.path.join(root, f), "rb").read().decode("latin-1")
        m = re.search(r"^Message-ID:\s*(\S+)", data, re.I | re.M)
        assert m, f"{f}: no Message-ID"
        assert re.search(r"^X-Mail-Args: <blast@riptide-blast.test>", data, re.M), f"{f}: sender"
        assert re.search(r"^X-Rcpt-Args: <user\d+@example.test>", data, re.M), f"{f}: recipient"
        got.add(m.group(1))
assert sent == got, (len(sent), len(got))
PY
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty"
pass "relayed 200 messages to Postfix smtp-sink"
