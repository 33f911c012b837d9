#!/usr/bin/env bash
# GPU: the smoke test against deliberately broken kernels (issue 18), ~5.5 min in one device call:
#   bash scripts/gpu/mutation_check.sh [BUDGET_S]          (carry [".carry"]: .carry/sdists/ holds
#   causal_conv1d-1.7.0.tar.gz and mamba_ssm-2.3.2.post1.tar.gz, as for scripts/gpu/cold_check.sh)
# Builds both packages (the control, which must pass the new smoke test: every launch shape, real and complex,
# the seeds' Mamba and Mamba2), then four mutants (tests/mutants/mutants.toml), one unit each, and smoke-tests
# each; then upstream's tests of the good wheels, sampled, with the time left. Results go to $OUT as they come:
# mutation.json, mutation.md, control.json, mutation.log, logs/ (record them in docs/gpu/, docs/benchmarks.md).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
BUDGET=${1:-330}
PY=$(command -v python3)
{ date -u '+%F %T UTC'; nproc; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; nvidia-smi -L; git log -1 --format=%h 2>/dev/null;
  "$PY" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__)';
  "$PY" -c 'import triton; print("triton", triton.__version__)' 2>&1 | tail -1; } > "$OUT/machine.txt" 2>&1
export PYTHONUNBUFFERED=1 MAMBA_BUILD_CACHE=/tmp/mb-cache
"$PY" scripts/gpu/mutation_check.py --budget "$BUDGET" --out "$OUT" 2>&1 | tee "$OUT/mutation.stdout"
rc=${PIPESTATUS[0]}
cat "$OUT/mutation.md" 2>/dev/null
echo "[mutation_check exit $rc]"
exit "$rc"
