#!/usr/bin/env bash
# GPU: follow scripts/gpu/arch_session.sh's driver for up to N seconds (default 540) or until it is done, printing
# progress every minute; then copy what there is into $OUT (each run's results.json, table.md, cold.log tail,
# cold.pool.ninja_log, smoke.log, triton-warmup.log; parity.json; kernels.json/.md; steps.txt; driver.log), so a lease cut short still brings
# back every finished step. Usage: bash scripts/gpu/arch_poll.sh [seconds]
set -u
S=${SESSION_DIR:-/tmp/i17s}; FINAL_OUT=${OUT:-/tmp/mb-out}; OUT=$(mktemp -d)  # collected here, then packed:
# the device tool brings back at most 8 files, so $FINAL_OUT gets results.tar.gz (everything) and steps.txt
limit=${1:-540}; start=$(date +%s); last=0
[ -d "$S" ] || { echo "nothing in $S: start it with bash scripts/gpu/arch_session.sh"; exit 1; }
progress() {
  echo "== $(date -u '+%T UTC') (+$(( $(date +%s) - start ))s)"; cat "$S/steps.txt" 2>/dev/null
  [ -f "$S/current" ] && { cat "$S/current"; sed -n 's/^log //p' "$S/current" | while read -r l; do tail -n 3 "$l" | cut -c1-200; done; }
  for r in "$S"/*/current; do [ -f "$r" ] && sed -n 's/^log //p' "$r" | while read -r l; do tail -n 2 "$l" | cut -c1-200; done; done
}
while [ ! -e "$S/done" ]; do
  now=$(date +%s); [ $((now - start)) -ge "$limit" ] && break
  if [ $((now - last)) -ge 60 ]; then progress; last=$now; fi
  sleep 5
done
if [ -e "$S/done" ]; then echo "finished: $(cat "$S/done")"; else echo "still running:"; progress; fi
for f in machine.txt steps.txt driver.log parity.json kernels.json kernels.md; do [ -f "$S/$f" ] && cp "$S/$f" "$OUT/"; done
for d in "$S"/a9 "$S"/n1 "$S"/n2 "$S"/n3; do
  [ -d "$d" ] || continue; n=$(basename "$d"); mkdir -p "$OUT/$n"
  for f in results.json table.md cold.pool.ninja_log; do [ -f "$d/$f" ] && cp "$d/$f" "$OUT/$n/"; done
  [ -f "$d/cold.log" ] && tail -c 3000000 "$d/cold.log" > "$OUT/$n/cold.log"
  for f in smoke.log triton-warmup.log; do  # the run's own logs (compile keeps them with the build logs)
    for l in "$d"/cache/builds/run-*/logs/"$f"; do [ -f "$l" ] && tail -c 500000 "$l" > "$OUT/$n/$f"; done
  done
done
if [ -d "$S/mutation" ]; then mkdir -p "$OUT/mutation"
  for f in machine.txt mutation.json mutation.md control.json mutation.stdout; do [ -f "$S/mutation/$f" ] && cp "$S/mutation/$f" "$OUT/mutation/"; done
fi
for l in "$S"/*.log; do [ -f "$l" ] && tail -c 200000 "$l" > "$OUT/step-$(basename "$l")"; done
find "$OUT" -type f -printf "%8s %p\n" | head -40
mkdir -p "$FINAL_OUT"; tar -C "$OUT" -czf "$FINAL_OUT/results.tar.gz" .; cp "$S/steps.txt" "$FINAL_OUT/" 2>/dev/null
ls -l "$FINAL_OUT"
for d in a9 n1 n2 n3; do [ -f "$S/$d/table.md" ] && { echo "== $d"; sed -n '/^| build/,$p' "$S/$d/table.md" | head -30; }; done
exit 0
