# tests/integration/lib5.sh — helpers for the queue lifecycle tests (issue 7): retry schedule,
# expiry, notices (DSN), queue limits and riptidectl. Source it after lib.sh.
#
# Why: these tests look at the same few things again and again — the queue id swaks was given,
# how often a recipient reached the sink, which notices arrived and what a parser other than
# riptide's own makes of them (dsn_check.py: Python's email package; sisimai) — so those
# checks live here once. Nothing here changes what lib.sh's helpers do.

# Debian's python3 first: a version manager's shim (pyenv) in PATH costs about a second per start
# on a loaded machine, which these tests (and lib.sh's free_port/wait_port) pay many times.
[ ! -x /usr/bin/python3 ] || PATH=/usr/bin:$PATH
D5=$(dirname "${BASH_SOURCE[0]}")
DSN_CHECK=$D5/dsn_check.py
: "${RIPTIDECTL:?RIPTIDECTL must point at riptidectl}"


# send_as FROM RCPT[,RCPT...] TAG [SWAKS ARGS...]: one message through riptide (swaks over TCP)
# from FROM ("<>" = the null sender); fails the test unless it is queued. Output in
# $T/swaks-TAG.out (qid_of TAG reads its queue id).
send_as() {
	local from=$1 to=$2 tag=$3
	shift 3
	swaks --server "127.0.0.1:$INJ_PORT" --from "$from" --to "$to" \
		--header "Subject: $tag" "$@" >"$T/swaks-$tag.out" 2>&1 ||
		fail "swaks $tag to $to: $(tail -n 3 "$T/swaks-$tag.out")"
}

# qid_of TAG: the queue id riptide gave the message sent with tag TAG (send_to / send_as).
qid_of() {
	local id
	id=$(sed -n 's/.* 250 2\.0\.0 Ok: queued as \([0-9a-f]\{32\}\)\r*$/\1/p' "$T/swaks-$1.out")
	[ -n "$id" ] || fail "no queue id in $T/swaks-$1.out"
	echo "$id"
}

# sink_rcpt RCPT: how many accepted transactions at the sink ($SINK_LOG) carried RCPT.
sink_rcpt() {
	awk -v r="$1" '{ n += index("," $3 ",", "," r ",") > 0 } END { print n + 0 }' \
		"$SINK_LOG" 2>/dev/null || echo 0
}

# sink_has_rcpt RCPT: true once RCPT reached the sink (for wait_until).
sink_has_rcpt() { [ "$(sink_rcpt "$1")" -ge 1 ]; }

# dlog_n REGEX: delivery log lines matching the extended REGEX.
dlog_n() { grep -Ec -- "$1" "$DLOG" 2>/dev/null || true; }

# notices [ARGS]: paths of the delivery status notifications the sink saved ($SINK_DIR), one per
# line, filtered by dsn_check.py find's options (--orig ID, --action failed|delayed|relayed).
notices() { python3 "$DSN_CHECK" find "$SINK_DIR" "$@"; }

# notice_n [ARGS]: how many notices match (see notices).
notice_n() { notices "$@" | grep -c . || true; }

# notice_ge N [ARGS]: true once at least N notices match (for wait_until).
notice_ge() {
	local n=$1
	shift
	[ "$(notice_n "$@")" -ge "$n" ]
}

# dsn_ok FILE [ARGS]: FILE is a well-formed notice as dsn_check.py check ARGS demands; fails
# the test with the checker's reason otherwise.
dsn_ok() {
	local out
	out=$(python3 "$DSN_CHECK" check "$@" 2>&1) || fail "notice $1: $out"
}

# sisimai_read FILE: what sisimai (libsisimai-perl, a bounce parser riptide did not write) finds
# in FILE: the number of bounces, then one line per bounce "RCPT REASON STATUS".
sisimai_read() {
	perl -MSisimai -e '
		my $v = Sisimai->make($ARGV[0]) // [];
		print scalar(@$v), "\n";
		for my $e (@$v) {
			print join(" ", $e->recipient->address, $e->reason, $e->deliverystatus), "\n";
		}' "$1" 2>&1
}

# sisimai_ok FILE RCPT REASON [STATUS]: sisimai finds exactly one bounce in FILE, for RCPT, with
# REASON (e.g. userunknown) and, when given, delivery status STATUS.
sisimai_ok() {
	local got want="1"$'\n'"$2 $3"
	got=$(sisimai_read "$1") || fail "sisimai on $1: $got"
	[ -z "${4:-}" ] || want="$want $4"
	[[ $got == "$want"* ]] || fail "sisimai on $1: want '$2 $3 ${4:-}', got: $(echo $got)"
}

# ctl ARGS...: riptidectl -c $CONF queue ARGS (10 s per step); its output on stdout.
ctl() { "$RIPTIDECTL" -c "$CONF" -t 10 queue "$@"; }

# reset_spool: forget the previous daemon's spool and delivery log (the daemon must be
# stopped) before the next configuration of the same test starts.
reset_spool() { rm -rf "$SPOOL" "$DLOG"; }

# all_notices_ok: every message the sink got from <> is a delivery status notification that
# dsn_check.py check accepts (structure, per-recipient fields): no notice goes unread.
all_notices_ok() {
	local f n
	n=$(awk '$2 == "<>"' "$SINK_LOG" 2>/dev/null | wc -l)
	[ "$(notice_n)" -eq "$n" ] || fail "$n messages from <> at the sink, $(notice_n) of them notices"
	for f in $(notices); do dsn_ok "$f"; done
}
