#!/usr/bin/env bash
# Per-arch compile costs and per-arch SASS parity of mamba-build's unit splits, on a machine without GPU
# (docs/benchmarks.md "What one more arch costs"). Every unit is compiled with the package's own flags for
# upstream's 9 archs (causal-conv1d 1.7.0 / mamba-ssm 2.3.2.post1 with CUDA 13.0: sm_75 ... sm_121), nvcc
# --threads 1 --time, two units at a time; ~18 min on 2 cores.
#   - causal-conv1d, split units: a channellast instantiation (mbpart01), two plain ones (mbpart10, mbpart11),
#     causal_conv1d_fwd.cu, causal_conv1d_update.cu; and mbpart10 + mbpart11's instantiation in ONE unit (the
#     way upstream's whole file holds them) -> SASS of every arch: merged vs split;
#   - mamba-ssm, whole: selective_scan_bwd_bf16_real.cu (upstream's unit) and selective_scan_fwd_bf16.cu;
#     split: the two halves of selective_scan_bwd_bf16_real.cu (split-bwd-launch) -> SASS of every arch.
# Usage (repo root): flock /work/heavy.lock bash scripts/arch_costs_2core.sh [OUT]
set -eu
PY=${PY:-.venv/bin/python}; OUT=${1:-/tmp/arch-costs}; mkdir -p "$OUT"
SD=${SDISTS:-$HOME/.cache/mamba-build-tests/pypi-sdists}
ARCHS=7.5,8.0,8.7,9.0,10.0,12.0,10.3,11.0,12.1   # upstream's list, in setup.py's order
{ date -u; nproc; uptime; } > "$OUT/machine.txt"
"$PY" benchmarks/arch_costs.py --sdist "$SD/causal_conv1d-1.7.0.tar.gz" --package causal-conv1d --arch $ARCHS \
  --split-units --unit causal_conv1d_bwd.mbpart01.cu --unit causal_conv1d_fwd.cu --unit causal_conv1d_update.cu \
  --unit causal_conv1d_bwd.mbpart10.cu --unit causal_conv1d_bwd.mbpart11.cu \
  --merge causal_conv1d_bwd.mbpart10.cu+causal_conv1d_bwd.mbpart11.cu --out "$OUT/cc" | tee "$OUT/cc.txt"
"$PY" benchmarks/arch_costs.py --sdist "$SD/mamba_ssm-2.3.2.post1.tar.gz" --package mamba-ssm --arch $ARCHS \
  --unit selective_scan_bwd_bf16_real.cu --unit selective_scan_fwd_bf16.cu --out "$OUT/ms-whole" | tee "$OUT/ms-whole.txt"
"$PY" benchmarks/arch_costs.py --sdist "$SD/mamba_ssm-2.3.2.post1.tar.gz" --package mamba-ssm --arch $ARCHS \
  --split-units --unit selective_scan_bwd_bf16_real.cu --unit selective_scan_bwd_bf16_real.mbpart01.cu \
  --out "$OUT/ms-split" | tee "$OUT/ms-split.txt"
# SASS of every arch: the same kernels whether the instantiations share a unit or not
mkdir -p "$OUT/parity/cc-split" "$OUT/parity/ms-whole"
cp "$OUT"/cc/objects/split/causal_conv1d_bwd.mbpart1[01].cu.o "$OUT/parity/cc-split/"
cp "$OUT"/ms-whole/objects/whole/selective_scan_bwd_bf16_real.cu.o "$OUT/parity/ms-whole/"
"$PY" benchmarks/sass_parity.py "$OUT/cc/objects/merged" "$OUT/parity/cc-split" --arch all \
  --json "$OUT/parity/cc.json" | tee "$OUT/parity/cc.txt"
"$PY" benchmarks/sass_parity.py "$OUT/parity/ms-whole" "$OUT/ms-split/objects/split" --arch all \
  --json "$OUT/parity/ms.json" | tee "$OUT/parity/ms.txt"
