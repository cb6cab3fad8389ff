#!/usr/bin/env bash
# Notices (issue 7): a broken template directory is refused at start (exit 2, stderr names
# file:line); with good templates their text and subject are in the notices; a recipient still
# deferred when the lifetime ends fails (5.4.7) with exactly one failure notice, after exactly one
# delay warning; the failed recipients of one message share one notice; postmaster gets a copy of
# every failure notice (same transaction); dsn_original = headers attaches text/rfc822-headers;
# mail from <> and a notice that itself fails never cause a notice (notice-suppressed). Every
# notice is read by Python's email package, a user-unknown one also by sisimai.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib5.sh"
start_sink

# ---- broken templates: a config error at start-up, exit 2, "dsn_templates: FILE:LINE: ..." ----
BAD=$T/tpl-bad
mkdir -p "$BAD"
printf 'Subject: fine\n\nline two\nhello {nope}\n' >"$BAD/failure.txt"
write_config <<EOF2
[delivery]
dsn_templates = $BAD
EOF2
refused() { # refused FILE LINE: riptide refuses to start, naming FILE:LINE
	local rc=0
	timeout 20 "$RIPTIDE" -c "$CONF" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
	[ $rc -eq 2 ] || fail "broken template $1: riptide exited $rc, want 2: $(cat "$T/bad.err")"
	grep -q "dsn_templates: $BAD/$1:$2: " "$T/bad.err" ||
		fail "stderr does not name $1:$2: $(cat "$T/bad.err")"
}
refused failure.txt 4
printf 'Subject: fine\n\nok {sender}\n' >"$BAD/failure.txt"
printf 'Waiting since {queued_time\n' >"$BAD/delay.txt"
refused delay.txt 1
printf 'Subject: x {recipients}\n\ntext\n' >"$BAD/delay.txt"
refused delay.txt 1
[ ! -e "$SPOOL/control.sock" ] || fail "a refused start left a control socket"
pass "broken templates refused at start: exit 2, file:line on stderr (unknown placeholder, unclosed brace, list in subject)"

# ---- the daemon with good templates, postmaster, dsn_original = headers, short lifetime ----
TPL=$T/tpl
mkdir -p "$TPL"
cat >"$TPL/failure.txt" <<'EOF2'
Subject: Bounce for {sender} [{queue_id}]

Custom failure text from {hostname}.
Queued {queued_time}, waited {delay}. ENVID=[{envid}]
Recipients:
{recipients}
Reasons:
{reasons}
Literal {{brace}.
EOF2
cat >"$TPL/delay.txt" <<'EOF2'
Subject: Still trying for {sender}

Custom delay text: {queue_id} waited {delay}.
{recipients}
EOF2
write_config <<EOF2
[delivery]
retry_delay = 1s
lifetime = 4s
warn_after = 2s
postmaster = pm@example.test
dsn_original = headers
dsn_templates = $TPL
EOF2
start_riptide
send_as s@sender.test 450-life@example.test life
send_as s@sender.test 550-c@example.test one
send_as s@sender.test 550-d1@example.test,550-d2@example.test,ok-d@example.test two
send_as "<>" 550-null@example.test null
send_as 550-back@example.test 550-e@example.test loop
LIFE=$(qid_of life)
ONE=$(qid_of one)
TWO=$(qid_of two)
NULL=$(qid_of null)
LOOP=$(qid_of loop)

# One notice per message for the 550s, with the custom text; a copy to postmaster.
wait_until 20 notice_ge 1 --orig "$ONE" || fail "no notice for 550-c@"
wait_until 20 notice_ge 1 --orig "$TWO" || fail "no notice for 550-d1@/550-d2@"
N1=$(notices --orig "$ONE")
dsn_ok "$N1" --to s@sender.test --action failed --rcpt 550-c@example.test=5.1.1 \
	--original headers --orig-subject one --subject "^Bounce for s@sender\.test \[$ONE\]\$" \
	--text '^Custom failure text from \S+\.' --text 'Recipients:\r?\n<550-c@example\.test>' \
	--text 'Literal \{brace\}\.' --text 'ENVID=\[\]' --text 'Reasons:\r?\n\S'
sisimai_ok "$N1" 550-c@example.test userunknown 5.1.1
N2=$(notices --orig "$TWO")
[ "$(echo "$N2" | wc -l)" -eq 1 ] || fail "two failed recipients of one message: $(echo "$N2" | wc -l) notices"
dsn_ok "$N2" --to s@sender.test --action failed \
	--rcpt 550-d1@example.test=5.1.1 --rcpt 550-d2@example.test=5.1.1 --original headers \
	--text '<550-d1@example\.test>' --text '<550-d2@example\.test>'
[ "$(sink_rcpt ok-d@example.test)" -eq 1 ] || fail "ok-d@ not delivered once"
grep -Eq "^\S+ $ONE event=notice-queued notice=[0-9a-f]{32} to=<s@sender\.test> cc=pm@example\.test size=[0-9]+\$" \
	"$DLOG" || fail "no notice-queued line with cc=postmaster for 550-c@"
# the sink saves the body before it logs the transaction: wait for the log line
with_pm() { awk -v m="$1" '$6 == m && $2 == "<>" && $3 == "s@sender.test,pm@example.test" \
	{ n++ } END { exit n != 1 }' "$SINK_LOG"; }
for n in "$N1" "$N2"; do
	mid=$(grep -m1 -i '^Message-ID:' "$n" | tr -d '\r' | awk '{print $2}')
	wait_until 5 with_pm "$mid" || fail "notice $mid: not one transaction to the sender and postmaster"
done
pass "550s: one notice per message (custom template, headers attached), postmaster copy, sisimai"

# From <>: failed, no notice, logged as suppressed.
wait_until 10 dlog_line failed 550-null@example.test || fail "550-null@ not failed"
wait_until 10 dlog_has "^\S+ $NULL event=notice-suppressed from=<>" ||
	fail "no notice-suppressed line for the message from <>"
[ "$(dlog_n "^\S+ $NULL event=notice-queued")" -eq 0 ] || fail "a notice was queued for <>"

# A notice that fails itself (sender 550-back@ is refused by the sink): no notice about it.
wait_until 10 dlog_line failed 550-back@example.test || fail "the notice to 550-back@ did not fail"
NOTE=$(sed -n "s/^\S* $LOOP event=notice-queued notice=\([0-9a-f]*\) .*/\1/p" "$DLOG")
[ -n "$NOTE" ] || fail "no notice queued for 550-e@"
wait_until 10 dlog_has "^\S+ $NOTE event=notice-suppressed from=<>" ||
	fail "failed notice $NOTE: no notice-suppressed line"
[ "$(dlog_n "^\S+ $NOTE event=notice-queued")" -eq 0 ] || fail "a notice about a notice was queued"
[ "$(sink_rcpt pm@example.test)" -ge 3 ] || fail "postmaster did not get the copy of the 550-e@ notice"
pass "no notice for mail from <> nor about a notice (notice-suppressed logged)"

# Lifetime: 450-life@ is deferred until 4 s have passed, then fails with 5.4.7; one delay warning
# (after warn_after) and one failure notice, both from the templates.
wait_until 20 dlog_line failed 450-life@example.test 'dsn=5\.4\.7 ' ||
	fail "450-life@ did not expire"
dlog_line failed 450-life@example.test 'reason="expired: delivery time expired, queued longer than the lifetime \(4 s\)"' ||
	fail "lifetime expiry without its reason: $(grep 'status=failed to=<450-life' "$DLOG")"
python3 - "$DLOG" <<'PY' || fail "expired at the wrong time"
import datetime, sys
ts = lambda l: datetime.datetime.fromisoformat(l.split()[0].rstrip("Z")).timestamp()
q = f = None
for l in open(sys.argv[1]):
    if "status=queued" in l and q is None and "nrcpt=1" in l:
        q = ts(l)
    if "status=failed to=<450-life@" in l:
        f = ts(l)
print("queued -> expired:", round(f - q, 3), "s")
assert 3.8 <= f - q <= 6.5, f - q
PY
[ "$(dlog_n 'status=deferred to=<450-life@example.test>')" -ge 3 ] || fail "450-life@: too few rounds"
wait_until 10 notice_ge 2 --orig "$LIFE" || fail "450-life@: notices missing"
sleep 1.5
[ "$(notice_n --orig "$LIFE" --action failed)" -eq 1 ] ||
	fail "450-life@: $(notice_n --orig "$LIFE" --action failed) failure notices, want 1"
[ "$(notice_n --orig "$LIFE" --action delayed)" -eq 1 ] ||
	fail "450-life@: $(notice_n --orig "$LIFE" --action delayed) delay warnings, want 1"
[ "$(notice_n --orig "$LIFE")" -eq 2 ] || fail "450-life@: other notices too"
dsn_ok "$(notices --orig "$LIFE" --action failed)" --to s@sender.test \
	--rcpt 450-life@example.test=5.4.7 --original headers --orig-subject life \
	--subject "^Bounce for s@sender\.test" --text 'Custom failure text' --text '<450-life@example\.test>'
dsn_ok "$(notices --orig "$LIFE" --action delayed)" --to s@sender.test \
	--rcpt 450-life@example.test --original headers --orig-subject life \
	--subject '^Still trying for s@sender\.test$' --text "^Custom delay text: $LIFE waited "
pass "lifetime: failed with 5.4.7 after 4 s, one delay warning and one failure notice (templates)"

all_notices_ok
stop_riptide
[ "$(queue_count)" -eq 0 ] || fail "queue not empty: $(queue_count)"
pass "queue empty"
