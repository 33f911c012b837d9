#!/usr/bin/env bash
# GPU (H100): benchmarks/build_speed.py -- mamba-build cold, mamba-build warm, upstream's default build of the
# same sdists, then the kernel parity check -- started DETACHED (setsid nohup) because one device command may
# last only 10 min while the whole benchmark takes ~25 min; this script returns at once.
# Run from the repo root, with the sdists carried in .carry/sdists (no network there):
#   bash scripts/gpu/h100_bench.sh [build_speed.py options, e.g. --upstream-mode concurrent --arch 9.0]
#   bash scripts/gpu/poll.sh [seconds]     # repeat until it says "finished"; results land in $OUT
# Results in $BENCH_DIR (default /tmp/bench): results.json, table.md (rewritten after every phase), logs.
set -u
B=${BENCH_DIR:-/tmp/bench}
PY=$(command -v "${PY:-python3}") || { echo "no ${PY:-python3} on PATH"; exit 3; }
if [ -f "$B/pid" ] && [ ! -e "$B/done" ] && kill -0 "$(cat "$B/pid")" 2>/dev/null; then
  echo "a benchmark is already running in $B (pid $(cat "$B/pid")): follow it with bash scripts/gpu/poll.sh"
  exit 0
fi
rm -rf "$B"; mkdir -p "$B"
{ echo "## $(date -u '+%F %T UTC') $(hostname)"; nproc; free -g | head -2; nvidia-smi -L 2>&1 | head -4
  "$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, torch.version.cuda)' 2>&1
  for m in ninja packaging setuptools wheel pybind11 rich requests; do
    "$PY" -c "import $m" 2>/dev/null || echo "python module missing: $m"; done
  ls -l .carry/sdists; } > "$B/machine.txt" 2>&1
export PYTHONUNBUFFERED=1 BENCH_DIR="$B" BENCH_PY="$PY"
# shellcheck disable=SC2016  # expanded by the inner bash, on purpose
setsid nohup bash -c '
  "$BENCH_PY" benchmarks/build_speed.py --sdists .carry/sdists --out "$BENCH_DIR" --python "$BENCH_PY" "$@"
  rc=$?
  [ -e "$BENCH_DIR/done" ] || echo "exit $rc (build_speed.py ended without writing done)" > "$BENCH_DIR/done"
' build-speed "$@" > "$B/driver.log" 2>&1 < /dev/null &
echo $! > "$B/pid"
sleep 10
echo "started benchmarks/build_speed.py (pid $(cat "$B/pid")) in $B with $PY; follow: bash scripts/gpu/poll.sh 540"
cat "$B/machine.txt"; tail -n 20 "$B/driver.log"
[ -f "$B/current" ] && cat "$B/current"
exit 0
