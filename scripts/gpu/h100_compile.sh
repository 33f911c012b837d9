#!/usr/bin/env bash
# GPU: `mamba-build compile` of both packages from the carried sdists (install + GPU smoke test),
# timed with /usr/bin/time -v (wall, peak RSS). Run from the repo root; results under $OUT.
set -u
OUT=${OUT:-/tmp/mb-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MAMBA_BUILD_CACHE=${MAMBA_BUILD_CACHE:-/tmp/mb-cache}
PY=${PY:-python3}; SD=.carry/sdists
/usr/bin/time -v -o "$OUT/compile.timev" "$PY" -m mamba_build compile "$@" \
  --source "causal-conv1d=$SD/causal_conv1d-1.7.0.tar.gz" --source "mamba-ssm=$SD/mamba_ssm-2.3.2.post1.tar.gz" \
  --wheel-dir /tmp/mb-wheels > "$OUT/compile.txt" 2>&1
echo "compile exit $?" >> "$OUT/compile.txt"
ls -l /tmp/mb-wheels >> "$OUT/compile.txt" 2>&1
for f in "$MAMBA_BUILD_CACHE"/builds/run-*/logs/*.log; do tail -c 60000 "$f" > "$OUT/$(basename "$f")"; done 2>/dev/null
