#!/bin/sh
# Times `flightrec audit ACCOUNT FILE` against what a user would run instead, in one run:
# `grep -F ACCOUNT FILE | tac` on the plain file, `zcat` (alone, and piped into grep and
# tac) on its gzip-compressed rotation. Prints the best of ROUNDS runs of each (rounds
# interleave the commands, so load hits them alike), the ratios, the peak RSS, and the
# load average before and after.
#
#   sh benches/audit/run.sh [LINES] [ROUNDS]      # defaults: 1000000 and 7
#
# The log is written by `adapters/audit/examples/audit_log.rs` (deterministic) into
# $BENCH_DIR (default: a directory under ${TMPDIR:-/tmp}); ACCOUNT is user42@example.org.
set -eu
LINES=${1:-1000000}
ROUNDS=${2:-7}
ACCOUNT=user42@example.org
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/flightrec-audit-bench}
mkdir -p "$DIR"
cd "$ROOT"
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build -q --release -p flightrec-cli --bin flightrec
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build -q --release -p flightrec-audit --example audit_log
BIN=$ROOT/target/release/flightrec
LOG=$DIR/audit.log
if [ ! -f "$LOG" ] || [ "$(wc -l < "$LOG")" -ne "$LINES" ]; then
    "$ROOT/target/release/examples/audit_log" "$LINES" "$LOG"
    gzip -k -f "$LOG"
fi
echo "log: $LINES lines, $(wc -c < "$LOG") bytes; gzip: $(wc -c < "$LOG.gz") bytes; account $ACCOUNT"
# The lines shown are grep's, newest first (the generated file's times only increase).
"$BIN" audit --output lines "$ACCOUNT" "$LOG" | sed '$d' > "$DIR/ours.txt"
grep -F "$ACCOUNT" "$LOG" | tac > "$DIR/grep.txt"
cmp -s "$DIR/ours.txt" "$DIR/grep.txt" || { echo "ours and grep | tac differ" >&2; exit 1; }
echo "same lines as grep -F | tac: $(wc -l < "$DIR/grep.txt")"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s%N; }
# best NAME: the least time seen for NAME so far, in ms.
best() { eval "echo \${best_$1:-}"; }
timed() {
    name=$1; shift
    t0=$(now); sh -c "$*" > /dev/null; t1=$(now)
    ms=$(( (t1 - t0) / 1000000 ))
    prev=$(best "$name")
    if [ -z "$prev" ] || [ "$ms" -lt "$prev" ]; then eval "best_$name=$ms"; fi
}
i=0
while [ "$i" -lt "$ROUNDS" ]; do
    timed ours "'$BIN' audit '$ACCOUNT' '$LOG'"
    timed grep_tac "grep -F '$ACCOUNT' '$LOG' | tac"
    timed ours_gz "'$BIN' audit '$ACCOUNT' '$LOG.gz'"
    timed zcat "zcat '$LOG.gz'"
    timed zcat_grep_tac "zcat '$LOG.gz' | grep -F '$ACCOUNT' | tac"
    timed ours_all "'$BIN' audit '$LOG'"
    i=$((i + 1))
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.2f", a / b }'; }
printf '%-46s %8s\n' "command (best of $ROUNDS)" "ms"
printf '%-46s %8s\n' "flightrec audit ACCOUNT audit.log" "$(best ours)"
printf '%-46s %8s\n' "grep -F ACCOUNT audit.log | tac" "$(best grep_tac)"
printf '%-46s %8s\n' "flightrec audit ACCOUNT audit.log.gz" "$(best ours_gz)"
printf '%-46s %8s\n' "zcat audit.log.gz > /dev/null" "$(best zcat)"
printf '%-46s %8s\n' "zcat audit.log.gz | grep -F ACCOUNT | tac" "$(best zcat_grep_tac)"
printf '%-46s %8s\n' "flightrec audit audit.log (every record)" "$(best ours_all)"
echo "plain: ours / (grep | tac) = $(ratio "$(best ours)" "$(best grep_tac)")"
echo "gz:    ours / zcat = $(ratio "$(best ours_gz)" "$(best zcat)"); ours / (zcat | grep | tac) = $(ratio "$(best ours_gz)" "$(best zcat_grep_tac)")"
for f in "$LOG" "$LOG.gz"; do
    /usr/bin/time -f "peak RSS of flightrec audit ACCOUNT $(basename "$f"): %M KB" "$BIN" audit "$ACCOUNT" "$f" > /dev/null
done
/usr/bin/time -f "peak RSS of flightrec audit $(basename "$LOG") (every record): %M KB" "$BIN" audit "$LOG" > /dev/null
