#!/usr/bin/env bash
# Disk full drill (issue #3): the spool on a 20 MB tmpfs, a filler file leaves ~3 MB, a blast of
# 512 KB messages fills it. While it is full, injection answers 452 4.3.1 and nothing that got
# 250 is lost; once the filler is deleted riptide writes again by itself within seconds, records
# what it delivered meanwhile, and after a restart delivers nothing twice. SIGTERM stays within
# shutdown_timeout and every delivery-log status is a documented one. Needs root (mount).
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root to mount a tmpfs"
	exit 77
fi
MNT=$T/mnt
mkdir -p "$MNT"
mount -t tmpfs -o size=20m tmpfs "$MNT" || fail "cannot mount a tmpfs"
umount_mnt() { umount -l "$MNT" 2>/dev/null || true; }
trap 'umount_mnt; it_cleanup' EXIT

start_sink
write_config <<EOF
[queue]
memory_budget = 64M
EOF
sed -i "s|^spool = .*|spool = $MNT/spool|" "$CONF"
start_riptide

# 1. fill the file system, leaving ~3 MB
avail=$(df -k --output=avail "$MNT" | tail -1)
dd if=/dev/zero of="$MNT/filler" bs=1k count=$((avail - 3000)) status=none || true
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 60 -c 4 -s 512k -L "$T/blast1.log" >"$T/blast1.out" 2>&1 || true
ok1=$(awk '$2 == 250' "$T/blast1.log" | wc -l)
full1=$(awk '$2 == 452' "$T/blast1.log" | wc -l)
echo "blast while filling: $ok1 got 250, $full1 got 452"
[ "$full1" -gt 0 ] || fail "no 452 while the disk filled up"
awk '$2 != 250 && $2 != 452 && $2 != 421 && $2 != 0 {print; bad=1} END {exit bad}' \
	"$T/blast1.log" || fail "a reply other than 250/452 while the disk was full"

# 2. still full: a new injection gets 452 4.3.1 (swaks prints the server's reply)
head -c 700000 /dev/zero | tr '\0' 'x' | fold -w 76 >"$T/big.txt"
swaks --server "127.0.0.1:$INJ_PORT" --from s@example.test --to full@example.test \
	--body "@$T/big.txt" >"$T/swaks_full.out" 2>&1 || true
grep -q '452 4.3.1' "$T/swaks_full.out" || fail "no 452 4.3.1 while the disk is full"
pass "while the spool is full injection answers 452 4.3.1"

# 3. free the space: riptide resumes by itself and delivers everything that got 250
rm -f "$MNT/filler"
sleep 1
"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 20 -c 2 -s 2k -L "$T/blast2.log" >"$T/blast2.out" 2>&1 || true
ok2() { [ "$(awk '$2 == 250' "$T/blast2.log" | wc -l)" -gt 0 ]; }
for _ in 1 2 3 4 5 6 7 8 9 10; do
	ok2 && break
	sleep 1
	"$BLAST" -q -t "127.0.0.1:$INJ_PORT" -n 20 -c 2 -s 2k -L "$T/blast2.log" >"$T/blast2.out" 2>&1 || true
done
ok2 || fail "injection did not recover within ~10 s of freeing space"
cat "$T/blast1.log" "$T/blast2.log" >"$T/blast.log"
wait_until 20 all_arrived "$T/blast.log" || fail "accepted messages missing at the sink"
pass "riptide resumed by itself after space was freed; every 250 arrived"

# 4. SIGTERM within shutdown_timeout (5 s in write_config), then restart: nothing twice
t0=$(date +%s%N)
stop_riptide
dt=$((($(date +%s%N) - t0) / 1000000))
echo "SIGTERM -> exit: ${dt} ms"
[ "$dt" -le 5500 ] || fail "stop took ${dt} ms, shutdown_timeout is 5 s"
before=$(sink_messages)
start_riptide
sleep 3
stop_riptide
[ "$(sink_messages)" -eq "$before" ] || fail "messages delivered again after the restart"
python3 - "$SINK_LOG" <<'PY' || fail "a message arrived twice"
import sys, collections
c = collections.Counter(l.split()[5] for l in open(sys.argv[1]))
d = [k for k, v in c.items() if v > 1]
print(f"sink: {sum(c.values())} messages, {len(d)} duplicates")
sys.exit(1 if d else 0)
PY
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"
bad=$(grep -o 'status=[a-z]*' "$DLOG" | sort -u | grep -vE 'status=(queued|delivered|deferred|failed)$' || true)
[ -z "$bad" ] || fail "undocumented delivery-log status: $bad"
pass "no duplicate after restart, queue empty, only documented statuses"
