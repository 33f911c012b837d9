# Sourced by the GPU scripts: OUT (the results folder, $OUT on the device machine), the build cache, the Python,
# and $OUT/machine.txt (date, GPU, cores, torch) -- what every recorded run states about where it ran.
OUT=${OUT:-/tmp/mb-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MAMBA_BUILD_CACHE=${MAMBA_BUILD_CACHE:-/tmp/mb-cache}
PY=${PY:-python3}
{ echo "## $(date -u '+%F %T UTC') $(nvidia-smi -L | head -1)"; nproc
  "$PY" -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'; } > "$OUT/machine.txt" 2>&1
