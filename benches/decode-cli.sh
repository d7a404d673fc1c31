#!/usr/bin/env bash
# End-to-end `flightrec decode` of a 1-million-record dump, from the command line: the
# release binary, text, JSON and forensic in one run, output to /dev/null (text and JSON
# also through a pipe to `wc -c`). Prints, per format, the best of RUNS of wall time and of
# CPU time (user + system, from /usr/bin/time), records per second for each, and the peak
# RSS; the load average before and after. `flightrec info` over the same dump (every frame
# and payload decoded and checked, nothing rendered) is the control: on a loaded machine
# its rate says how much the machine gave at that moment.
#
#   benches/decode-cli.sh [RUNS] [gateway|callsite|bench]   (from the workspace root; 7 runs)
#
# The dump is made by `adapters/decode/examples/gen_dump.rs` (deterministic) into
# target/decode-1m-MIX.dump, once: `gateway` (the default) is the Linux recorder's dumps
# (Unix clock in nanoseconds) of a gateway's records with log lines in the full form,
# `callsite` the same records as the Linux recorder writes them now (log lines in the
# callsite form, a callsite table per dump), `bench` the decode bench's records
# (boot clock in milliseconds, shorter). FLIGHTREC=path times another build.
set -euo pipefail
runs=${1:-7}
mix=${2:-gateway}
records=1000000
dump=target/decode-1m-$mix.dump
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
[ -n "${FLIGHTREC:-}" ] || cargo build --quiet --release -p flightrec-cli
if [ ! -s "$dump" ]; then
  cargo run --quiet --release -p flightrec-decode --example gen_dump -- "$dump" "$records" "$mix"
fi
bin=${FLIGHTREC:-target/release/flightrec}
echo "input: $dump, $(stat -c %s "$dump") bytes, $records records"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# best_of NAME COMMAND...: runs COMMAND (a shell string) RUNS times, prints the best wall
# and CPU times.
best_of() {
  local name=$1 cmd=$2 best_wall=999999 best_cpu=999999 rss=0
  for _ in $(seq "$runs"); do
    local t0=$EPOCHREALTIME
    /usr/bin/time -f "%U %S %M" -o target/decode-cli.time bash -c "$cmd"
    local t1=$EPOCHREALTIME
    local wall cpu
    wall=$(echo "$t1 - $t0" | bc -l)
    read -r u s m < target/decode-cli.time
    cpu=$(echo "$u + $s" | bc -l)
    (( $(echo "$wall < $best_wall" | bc -l) )) && best_wall=$wall
    (( $(echo "$cpu < $best_cpu" | bc -l) )) && best_cpu=$cpu
    (( m > rss )) && rss=$m
  done
  printf "%-28s wall %6.3f s  %5.2f M rec/s   CPU %6.2f s  %5.2f M rec/s   peak RSS %6d KB\n" \
    "$name" "$best_wall" "$(echo "$records / $best_wall / 1000000" | bc -l)" \
    "$best_cpu" "$(echo "$records / $best_cpu / 1000000" | bc -l)" "$rss"
}

best_of "info (control: no render)" "$bin info $dump > /dev/null"
best_of "text > /dev/null" "$bin decode --format text $dump > /dev/null"
best_of "json > /dev/null" "$bin decode --format json $dump > /dev/null"
best_of "forensic > /dev/null" "$bin decode --format forensic $dump > /dev/null"
best_of "text | wc -c" "$bin decode --format text $dump | wc -c > /dev/null"
best_of "json | wc -c" "$bin decode --format json $dump | wc -c > /dev/null"
echo "output bytes: text $($bin decode --format text $dump | wc -c), json $($bin decode --format json $dump | wc -c), forensic $($bin decode --format forensic $dump | wc -c)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
