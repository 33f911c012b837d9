#!/usr/bin/env bash
# GPU: follow the benchmark that scripts/gpu/h100_bench.sh started. Waits up to N seconds (default 540, under
# the device's 10-min call limit) or until $BENCH_DIR/done exists, printing progress (current phase, last lines
# of its logs) every minute, then copies what there is so far into $OUT: results.json, table.md,
# kernels.json, cold.log, warm.log, cold.pool.ninja_log (the cold build's units), logs-tail.txt (tails of every other log): at most 8 files,
# each < 16 MB. Run it again while it says "still running"; partial results are valid each time.
# Usage: bash scripts/gpu/poll.sh [seconds]
set -u
B=${BENCH_DIR:-/tmp/bench}; OUT=${OUT:-/tmp/mb-out}; mkdir -p "$OUT"
limit=${1:-540}; start=$(date +%s); last=0
[ -d "$B" ] || { echo "no benchmark in $B: start it with bash scripts/gpu/h100_bench.sh"; exit 1; }
progress() {
  echo "== $(date -u '+%T UTC') (+$(( $(date +%s) - start ))s)"
  [ -f "$B/current" ] || return 0
  cat "$B/current"
  sed -n 's/^log //p' "$B/current" | while read -r l; do
    [ -f "$l" ] && { echo "-- $(basename "$l"):"; tail -n 4 "$l" | cut -c1-220; }
  done
}
while [ ! -e "$B/done" ]; do
  now=$(date +%s)
  [ $((now - start)) -ge "$limit" ] && break
  if [ $((now - last)) -ge 60 ]; then progress; last=$now; fi
  sleep 5
done
if [ -e "$B/done" ]; then echo "finished: $(cat "$B/done")"; else echo "still running:"; progress; fi
copy() {  # copy a whole file under 15 MB, else its tail
  [ -f "$B/$1" ] || return 0
  if [ "$(stat -c %s "$B/$1")" -lt 15000000 ]; then cp "$B/$1" "$OUT/$1"; else tail -c 15000000 "$B/$1" > "$OUT/$1"; fi
}
for f in results.json table.md kernels.json cold.log warm.log cold.pool.ninja_log; do copy "$f"; done
{
  for l in "$B"/machine.txt "$B"/driver.log "$B"/upstream-*.log "$B"/kernels-aa.log "$B"/kernels.log "$B"/cache/builds/run-*/logs/*.log; do
    [ -f "$l" ] || continue
    echo "===== ${l#"$B"/} ($(stat -c %s "$l") bytes), last 200 kB"
    tail -c 200000 "$l"; echo
  done
} > "$OUT/logs-tail.txt" 2>&1
ls -l "$OUT"
[ -f "$B/table.md" ] && cat "$B/table.md"
exit 0
