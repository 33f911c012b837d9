#!/usr/bin/env bash
# Static kernel parity on a machine without GPU: build the same sdist with mamba-build's speed-ups off
# (what upstream's setup.py does for one arch: whole units, no --split-compile) and on (split units,
# --split-compile 0 with nvcc --jobserver, as the plan picks on a 16-core machine), then compare the
# sm_90 SASS of every kernel (benchmarks/sass_parity.py). Also checks that nvcc compiles each -gencode
# on its own: upstream's default 9-arch flags give the same sm_90 code as sm_90 alone.
# Usage (repo root, after `make venv`): bash scripts/sass_parity_2core.sh [causal-conv1d|mamba-ssm ...]
# Needs the sdists in .carry/sdists (causal_conv1d-1.7.0.tar.gz, mamba_ssm-2.3.2.post1.tar.gz).
set -eu
PY=${PY:-.venv/bin/python}; SD=.carry/sdists; W=${WORK:-/tmp/sass-parity}; mkdir -p "$W"
sdist() { case $1 in causal-conv1d) echo "$SD/causal_conv1d-1.7.0.tar.gz" ;; mamba-ssm) echo "$SD/mamba_ssm-2.3.2.post1.tar.gz" ;; esac; }
build() {  # build PKG VARIANT FLAGS...
  local pkg=$1 variant=$2; shift 2
  MAMBA_BUILD_CACHE="$W/cache-$variant" "$PY" -m mamba_build compile --package "$pkg" --source "$(sdist "$pkg")" \
    --arch 9.0 --no-install --no-cache --wheel-dir "$W/$pkg-$variant" "$@" > "$W/$pkg-$variant.log" 2>&1
  grep -E "^built|split units|nvcc  " "$W/$pkg-$variant.log"
}
case " $* " in *" mamba-ssm "*|"  ") # the smoke test imports mamba_ssm: its runtime deps, as `make demo` installs them
  "$PY" -m pip install -q einops transformers ;; esac
# shellcheck disable=SC2068
for pkg in ${@:-causal-conv1d mamba-ssm}; do
  build "$pkg" whole --no-split-units --no-split-compile --schedule sequential
  build "$pkg" fast --split-units --split-compile 0
  "$PY" benchmarks/sass_parity.py "$W/$pkg"-whole/*.whl "$W/$pkg"-fast/*.whl --json "$W/$pkg-sass.json"
done
# each -gencode on its own: causal_conv1d_update.cu with upstream's 9 archs vs sm_90 alone
T=$(mktemp -d); tar xzf "$SD/causal_conv1d-1.7.0.tar.gz" -C "$T"; U="$T/causal_conv1d-1.7.0/csrc/causal_conv1d_update.cu"
INC=$("$PY" -c 'import torch.utils.cpp_extension as c, sysconfig; print(" ".join("-I"+p for p in c.include_paths("cuda")+[sysconfig.get_paths()["include"]]))')
NV=$("$PY" -c 'import torch.utils.cpp_extension as c; print(c.CUDA_HOME)')/bin/nvcc
FL="$INC -O3 -std=c++17 -U__CUDA_NO_HALF_OPERATORS__ -U__CUDA_NO_HALF_CONVERSIONS__ -U__CUDA_NO_BFLOAT16_OPERATORS__
 -U__CUDA_NO_BFLOAT16_CONVERSIONS__ -U__CUDA_NO_BFLOAT162_OPERATORS__ -U__CUDA_NO_BFLOAT162_CONVERSIONS__
 --expt-relaxed-constexpr --expt-extended-lambda --use_fast_math -lineinfo -Xcompiler -fPIC -D_GLIBCXX_USE_CXX11_ABI=1"
G9=""; for a in 75 80 87 90 100 120 103 110 121; do G9="$G9 -gencode arch=compute_$a,code=sm_$a"; done
# shellcheck disable=SC2086  # FL and G9 are word lists on purpose
CPATH=$("$PY" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "include"))' 2>/dev/null || true) \
  "$NV" $FL $G9 --threads 4 -c "$U" -o "$W/update-9arch.o"
# shellcheck disable=SC2086
CPATH=$("$PY" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "include"))' 2>/dev/null || true) \
  "$NV" $FL -gencode arch=compute_90,code=sm_90 -c "$U" -o "$W/update-sm90.o"
"$PY" benchmarks/sass_parity.py "$W/update-9arch.o" "$W/update-sm90.o"
rm -rf "$T"
