#!/usr/bin/env bash
# GPU: cold build of both packages, then the same command again (a verified wheel-cache hit),
# each timed with /usr/bin/time -v. Run from the repo root; results under $OUT.
set -u
OUT=${OUT:-/tmp/mb-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MAMBA_BUILD_CACHE=${MAMBA_BUILD_CACHE:-/tmp/mb-cache}
PY=${PY:-python3}; SD=.carry/sdists
for pass in cold warm; do
  /usr/bin/time -v -o "$OUT/$pass.timev" "$PY" -m mamba_build compile \
    --source "causal-conv1d=$SD/causal_conv1d-1.7.0.tar.gz" --source "mamba-ssm=$SD/mamba_ssm-2.3.2.post1.tar.gz" \
    --wheel-dir "/tmp/mb-wheels-$pass" > "$OUT/$pass.txt" 2>&1
  echo "exit $?" >> "$OUT/$pass.txt"
done
"$PY" -m mamba_build cache list > "$OUT/cache.txt" 2>&1
