#!/usr/bin/env bash
# Does ccache reuse a unit compiled against the same torch headers at another path? (docs/benchmarks.md, "The
# Python axis"). One small .cu (c10 headers, like mamba's units), four compiles through
# `python -m mamba_build.build.torch_headers --map <venv torch include>=<cache home>/torch-include/v/include -- ccache nvcc`:
#   A: venv A's headers, Python 3.11's include dir, cache home 1, a fresh CCACHE_DIR;
#   B: venv B's copy of the same headers, Python 3.12's, cache home 1, the same CCACHE_DIR;
#   C: as B in cache home 2 with a fresh CCACHE_DIR, sharing only a file: remote storage with A and B;
#   D: as A in cache home 2 (C's CCACHE_DIR).
# Then the same A and B with the headers given as they are (no mapping). Prints ccache's counters and each object's
# sha256. Usage (repo root, a CUDA 13 toolkit, ccache): flock /work/heavy.lock bash scripts/ccache_across_paths.sh
set -u
PY=${PY:-.venv/bin/python}; NV=${NVCC:-/usr/local/cuda-13.0/bin/nvcc}; E=$(mktemp -d); REPO=$PWD
TI=$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "include"))')
P311=(/root/.pyenv/versions/3.11*/include/python3.11); P312=(/root/.pyenv/versions/3.12*/include/python3.12)
mkdir -p "$E/A" "$E/B"; cp -r "$TI" "$E/A/include"; cp -r "$TI" "$E/B/include"
cat > "$E/k.cu" <<'CU'
#include <c10/util/Half.h>
#include <c10/util/BFloat16.h>
template <typename T> __global__ void k(T* x, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] = static_cast<T>(static_cast<float>(x[i]) * 2.f); }
template __global__ void k<c10::Half>(c10::Half*, int);
template __global__ void k<float>(float*, int);
CU
job() {  # name cache-home ccache-dir venv-include python-include map(yes/no)
  local H=$2 CD=$3 VI=$4 PI=$5 W=$2/builds/$1/src/pkg; mkdir -p "$W"; cp "$E/k.cu" "$W/"
  local pre=(); [ "$6" = yes ] && pre=("$REPO/$PY" -m mamba_build.build.torch_headers --map "$VI=$H/torch-include/v/include" --)
  (cd "$W" && CCACHE_DIR=$CD CCACHE_BASEDIR=$H CCACHE_NOHASHDIR=1 CCACHE_REMOTE_STORAGE=file:$E/remote \
     "${pre[@]}" ccache "$NV" -I"$W" -I"$VI" -I"$PI" -gencode arch=compute_80,code=sm_80 -O3 -lineinfo -c "$W/k.cu" -o "$W/k.o")
  printf '%-40s %s  object %s\n' "$1" "$(CCACHE_DIR=$CD ccache --print-stats | grep -E '^(direct_cache_hit|preprocessed_cache_hit|cache_miss|remote_storage_hit)\b' | tr '\t\n' '= ')" "$(sha256sum "$W/k.o" | cut -c1-16)"
}
job "A: venv A, py3.11, home 1" "$E/h1" "$E/c1" "$E/A/include" "${P311[0]}" yes
job "B: venv B, py3.12, home 1" "$E/h1" "$E/c1" "$E/B/include" "${P312[0]}" yes
job "C: venv B, py3.12, home 2, remote" "$E/h2" "$E/c2" "$E/B/include" "${P312[0]}" yes
job "D: venv A, py3.11, home 2, remote" "$E/h2" "$E/c2" "$E/A/include" "${P311[0]}" yes
echo "-- without the mapping (each venv's own path), a fresh cache:"
job "A': venv A, py3.11" "$E/h3" "$E/c3" "$E/A/include" "${P311[0]}" no
job "B': venv B, py3.12" "$E/h3" "$E/c3" "$E/B/include" "${P312[0]}" no
rm -rf "$E"
