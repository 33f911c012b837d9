#!/usr/bin/env bash
# GPU session 1 (device tool, H100): doctor, doctor --probe, then mamba-build compile of both
# packages from the sdists carried in .carry/sdists, with the smoke test on the GPU.
# Run from the repo root:  bash scripts/gpu/h100_session1.sh   (OUT=<dir> collects the results)
set -u
OUT=${OUT:-/tmp/mb-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MAMBA_BUILD_CACHE=/tmp/mb-cache
PY=${PY:-python3}
SD=.carry/sdists
mb() { "$PY" -m mamba_build "$@"; }
{
  echo "## $(date -u '+%F %T UTC') $(nvidia-smi -L | head -1)"; nproc; free -g | head -2
  "$PY" -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'
  which nvcc; nvcc --version | tail -2
} > "$OUT/machine.txt" 2>&1
COLUMNS=140 mb doctor > "$OUT/doctor.txt" 2>&1; echo "doctor exit $?" >> "$OUT/doctor.txt"
mb doctor --json > "$OUT/doctor.json" 2>/dev/null
( time mb doctor --probe --json ) > "$OUT/probe.json" 2> "$OUT/probe.time"
/usr/bin/time -v -o "$OUT/compile.timev" "$PY" -m mamba_build compile \
  --source "causal-conv1d=$SD/causal_conv1d-1.7.0.tar.gz" --source "mamba-ssm=$SD/mamba_ssm-2.3.2.post1.tar.gz" \
  --wheel-dir /tmp/mb-wheels > "$OUT/compile.txt" 2>&1
echo "compile exit $?" >> "$OUT/compile.txt"
ls -l /tmp/mb-wheels >> "$OUT/compile.txt" 2>&1
cp -r "$MAMBA_BUILD_CACHE"/builds/run-*/logs "$OUT/build-logs" 2>/dev/null || true
