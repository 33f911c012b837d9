#!/usr/bin/env bash
# Re-create the real failure logs in tests/data/failure-logs/ (the ones `mamba-build explain` is
# tested on besides ../shared/failure-logs). Not run in CI: the logs are committed.
#
# Made on: Linux x86_64, 2 cores, no GPU, gcc 12.2, CUDA 13.0 at /usr/local/cuda-13.0 with `nvcc`
# on PATH being the wrapper /usr/local/bin/nvcc (so torch guesses CUDA_HOME=/usr/local), the
# project venv (.venv, torch 2.14.1+cu130). PyPI (or a mirror) must be reachable for the CUDA 11.8
# nvcc wheels and torch==2.13.0.
#
# Every log is the real output of the command shown in its first line; only paths are rewritten
# (work dir -> /home/user/work, venvs -> /home/user/venv*, $HOME -> /home/user) and each log is
# capped at 150 KB.
#
# Usage: scripts/make_failure_logs.sh [OUT_DIR]   (default tests/data/failure-logs)
set -uo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$REPO/tests/data/failure-logs}"
PY="${PYTHON:-$REPO/.venv/bin/python}"
WORK="${WORK:-/tmp/mb-failure-logs}"
OLD_TORCH="${OLD_TORCH:-torch==2.13.0}"
mkdir -p "$OUT" "$WORK"
VENV_DIR="$(cd "$(dirname "$PY")/.." && pwd)"

sanitize() {  # stdin -> stdout: rewrite private paths, cap the size
  sed -e "s#$WORK/venv-old#/home/user/venv-old#g" \
      -e "s#$WORK#/home/user/work#g" \
      -e "s#$VENV_DIR#/home/user/venv#g" \
      -e "s#$REPO#/home/user/mamba-build#g" \
      -e "s#$HOME#/home/user#g" \
      -e "s#/tmp/pip-[a-z-]*-[a-z0-9_]*#/tmp/pip-tmp#g" | head -c 150000
}

capture() {  # capture NAME CMD...: run CMD (in a shell), keep "$ CMD" + its output
  local name="$1"; shift
  echo "== $name: $*" >&2
  { echo "\$ $*"; bash -c "$*" 2>&1; echo "# exit status: $?"; } | sanitize > "$OUT/$name"
}

# --- a tiny CUDA extension (our own code, nothing upstream) -----------------------------------
EXT="$WORK/tinyext"
rm -rf "$EXT"; mkdir -p "$EXT"
cat > "$EXT/setup.py" <<'EOF'
import os
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CUDAExtension

nvcc_flags = os.environ.get("TINYEXT_NVCC_FLAGS", "-gencode arch=compute_90,code=sm_90").split()
setup(
    name="tinyext",
    version="0.0.1",
    ext_modules=[CUDAExtension("tinyext_cuda", ["tinyext.cpp", "tinyext_kernel.cu"],
                               extra_compile_args={"cxx": ["-O1"], "nvcc": ["-O1", *nvcc_flags]})],
    cmdclass={"build_ext": BuildExtension},
)
EOF
cat > "$EXT/tinyext.cpp" <<'EOF'
#include <torch/extension.h>
#include <cuda_runtime_api.h>

void tinyext_launch(float* x, int n);

torch::Tensor twice(torch::Tensor x) {
  TORCH_CHECK(x.is_cuda(), "x must be a CUDA tensor");
  auto y = x.contiguous().clone();
  tinyext_launch(y.data_ptr<float>(), static_cast<int>(y.numel()));
  return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("twice", &twice); }
EOF
cat > "$EXT/tinyext_kernel.cu" <<'EOF'
#include <cuda_runtime.h>

__global__ void twice_kernel(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= 2.0f;
}

void tinyext_launch(float* x, int n) { twice_kernel<<<(n + 255) / 256, 256>>>(x, n); }
EOF

# 07: CUDA_HOME unset; torch follows `which nvcc` (/usr/local/bin/nvcc, a wrapper) to /usr/local.
capture 07-tinyext-cuda-home-wrong.log \
  "cd $EXT && rm -rf build && env -u CUDA_HOME -u CUDA_PATH MAX_JOBS=2 $PY -m pip wheel --no-build-isolation --no-deps -v --wheel-dir $WORK/wheels ."

# 09: nvcc 13.0 asked for compute_70 (Volta), which CUDA 13 dropped.
capture 09-nvcc13-compute70.log \
  "cd $EXT && /usr/local/cuda-13.0/bin/nvcc -gencode arch=compute_70,code=sm_70 -c tinyext_kernel.cu -o $WORK/k70.o"

# 12: the same tiny extension built right (CUDA_HOME set): a clean build, for the negative test.
capture 12-tinyext-build-ok.log \
  "cd $EXT && rm -rf build && CUDA_HOME=/usr/local/cuda-13.0 MAX_JOBS=2 $PY -m pip wheel --no-build-isolation --no-deps -v --wheel-dir $WORK/wheels ."

# --- CUDA 11.8 from NVIDIA's PyPI wheels ----------------------------------------------------------
# nvidia-cuda-nvcc-cu11 11.8.89 ships ptxas, nvvm and the compiler headers (crt/host_config.h, which
# holds the host-compiler version check) but not the nvcc driver, cudafe++ or cicc; no other
# source of a full 11.8 toolkit is reachable from this machine. So "cuda-11.8" below is a toolkit
# tree whose include/ is CUDA 11.8's (both wheels) and whose driver programs (bin/, nvvm/) are
# copied from CUDA 13.0, because nvcc finds include/ relative to its own bin/ (nvcc.profile).
# The gcc check that fails is the one in 11.8's crt/host_config.h, run by nvcc's real
# preprocessing step with the real gcc 12.
CU118="$WORK/cuda-11.8"
if [ ! -x "$CU118/bin/nvcc" ]; then
  rm -rf "$WORK/cu118-wheels" "$WORK/cu118-unpacked" "$CU118"
  "$PY" -m pip download --no-deps --only-binary=:all: --dest "$WORK/cu118-wheels" \
      nvidia-cuda-nvcc-cu11==11.8.89 nvidia-cuda-runtime-cu11==11.8.89 2>&1 | grep -v "WARNING: Location" >&2
  mkdir -p "$WORK/cu118-unpacked"
  for w in "$WORK"/cu118-wheels/*.whl; do unzip -q -o "$w" -d "$WORK/cu118-unpacked"; done
  mkdir -p "$CU118/include" "$CU118/lib64"
  cp -a "$WORK/cu118-unpacked/nvidia/cuda_nvcc/include/." "$CU118/include/"
  cp -a "$WORK/cu118-unpacked/nvidia/cuda_runtime/include/." "$CU118/include/"
  cp -a "$WORK/cu118-unpacked/nvidia/cuda_runtime/lib/." "$CU118/lib64/"
  cp -a /usr/local/cuda-13.0/bin "$CU118/bin"
  cp -a /usr/local/cuda-13.0/nvvm "$CU118/nvvm"
fi
grep -n "unsupported GNU version" "$CU118/include/crt/host_config.h" | head -1 >&2

# 08: nvcc with CUDA 11.8's headers, host compiler gcc 12 (11.8 accepts gcc <= 11).
capture 08-cuda118-headers-gcc12.log \
  "cd $EXT && gcc --version | head -1 && $CU118/bin/nvcc -gencode arch=compute_80,code=sm_80 -c tinyext_kernel.cu -o $WORK/k80.o"

# 15: the tiny extension built by pip with CUDA_HOME at that tree.
capture 15-tinyext-cuda118-headers-gcc12.log \
  "cd $EXT && rm -rf build && CUDA_HOME=$CU118 MAX_JOBS=1 TINYEXT_NVCC_FLAGS='-gencode arch=compute_80,code=sm_80' $PY -m pip wheel --no-build-isolation --no-deps -v --wheel-dir $WORK/wheels ."

# 11: CUDA_HOME pointing at a tree with no bin/nvcc (the bare 11.8 runtime wheel's directory).
capture 11-cuda-home-without-nvcc.log \
  "cd $EXT && rm -rf build && CUDA_HOME=$WORK/cu118-unpacked/nvidia/cuda_runtime MAX_JOBS=2 $PY -m pip wheel --no-build-isolation --no-deps -v --wheel-dir $WORK/wheels ."

# --- an extension built against one torch, imported under another -----------------------------
OLDV="$WORK/venv-old"
if [ ! -x "$OLDV/bin/python" ]; then
  python3.11 -m venv "$OLDV" || "$PY" -m venv "$OLDV"
  "$OLDV/bin/python" -m pip install -q "$OLD_TORCH" setuptools wheel ninja numpy >&2
fi
CPPEXT="$WORK/cppext"
rm -rf "$CPPEXT"; mkdir -p "$CPPEXT"
cat > "$CPPEXT/setup.py" <<'EOF'
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

setup(name="abiext", version="0.0.1",
      ext_modules=[CppExtension("abiext", ["abiext.cpp"], extra_compile_args=["-O1"])],
      cmdclass={"build_ext": BuildExtension})
EOF
cat > "$CPPEXT/abiext.cpp" <<'EOF'
#include <torch/extension.h>
#include <string>

// Uses c10 entry points whose signatures carry std::string / c10 types, as real extensions do.
torch::Tensor scaled(torch::Tensor x, double s, const std::string& tag) {
  TORCH_CHECK(x.dim() > 0, "abiext: ", tag, " needs a tensor with dims, got ", x.sizes());
  return x.to(c10::ScalarType::Float).mul(s);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("scaled", &scaled); }
EOF
(cd "$CPPEXT" && MAX_JOBS=2 "$OLDV/bin/python" setup.py -q build_ext --inplace >&2)

cat > "$CPPEXT/try_import.py" <<'EOF'
import torch
print("importing abiext under torch", torch.__version__)
import abiext
print(abiext.scaled(torch.ones(2), 2.0, "ok"))
EOF
# 10: built in the old torch's venv, imported under the project venv's torch.
capture 10-import-other-torch.log \
  "cd $CPPEXT && $OLDV/bin/python -c 'import torch; print(torch.__version__)' && ls abiext*.so && $PY try_import.py"
if ! grep -q "undefined symbol" "$OUT/10-import-other-torch.log"; then
  # Fallback: same torch, other C++ ABI setting (gives the same class of undefined symbol).
  rm -f "$CPPEXT"/abiext*.so; rm -rf "$CPPEXT/build"
  (cd "$CPPEXT" && CFLAGS="-D_GLIBCXX_USE_CXX11_ABI=0" MAX_JOBS=2 "$PY" setup.py -q build_ext --inplace >&2)
  capture 10-import-other-torch.log "cd $CPPEXT && ls abiext*.so && $PY try_import.py"
fi

# 13: a CPU-only torch asked for CUDA.
capture 13-torch-cpu-only.log \
  "cd $WORK && $OLDV/bin/python -c 'import torch; print(torch.__version__, torch.version.cuda); torch.zeros(4).cuda()'"

# 14: the package installed but its CUDA module never built.
capture 14-no-module-selective-scan-cuda.log \
  "cd $WORK && $PY -c 'import selective_scan_cuda'"

echo "logs written to $OUT" >&2
ls -l "$OUT" >&2
