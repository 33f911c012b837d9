#!/usr/bin/env bash
# GPU: one cold `mamba-build compile` of both packages (the cold phase of benchmarks/build_speed.py, same
# command), for a short device budget: everything goes to $OUT as it happens, so a run cut off by the budget
# still brings back the plan, the [k/n] completion times and the pool's .ninja_log (start and end of
# every unit of both packages in the one ninja, ms: pool.ninja_log).   bash scripts/gpu/cold_check.sh        (carry [".carry", ".whl"])
# --skip-missing-deps: the device has no network, and mamba-ssm 2.3.2.post1 declares tilelang/quack-kernels, which the
# smoke test does not import (without it compile stops before the build, exit 6, naming the pip line).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=$(command -v python3)
"$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade .whl/ninja-*.whl >/dev/null 2>&1
export PYTHONUNBUFFERED=1 MAMBA_BUILD_CACHE=/tmp/mb-cache
{ date -u '+%F %T UTC'; lscpu | grep -E '^(Model name|Thread|Core|Socket)'; nproc; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; nvidia-smi -L; git log -1 --format=%h; } \
  > "$OUT/machine.txt" 2>&1
( while sleep 5; do
    find /tmp/mb-cache/builds -name .ninja_log 2>/dev/null | while read -r f; do
      case "$f" in */pool/build/*) cp "$f" "$OUT/pool.ninja_log" ;;   # /tmp/mb-cache/builds/RUN/pool/build/
                   *) cp "$f" "$OUT/ninja_log.$(echo "$f" | cut -d/ -f7)" ;; esac
    done
  done ) &
copier=$!
start=$(date +%s)
/usr/bin/time -v "$PY" -m mamba_build compile --package causal-conv1d,mamba-ssm \
  --source causal-conv1d=.carry/sdists/causal_conv1d-1.7.0.tar.gz \
  --source mamba-ssm=.carry/sdists/mamba_ssm-2.3.2.post1.tar.gz --wheel-dir /tmp/wheels-cold --keep-build --skip-missing-deps \
  > "$OUT/cold.log" 2>&1
rc=$?
echo "[exit $rc after $(( $(date +%s) - start )) s]" >> "$OUT/cold.log"
sleep 6; kill $copier 2>/dev/null
find /tmp/mb-cache/builds -name .ninja_log | while read -r f; do echo "== $f"; cat "$f"; done > "$OUT/ninja_logs.txt"
tail -45 "$OUT/cold.log"
