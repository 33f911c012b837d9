#!/usr/bin/env bash
# Re-create the real failure logs of issue 15 in tests/data/failure-logs/ (40, 41). Not run in CI: the logs are
# committed. Same machine and conventions as scripts/make_failure_logs.sh (Linux x86_64, 2 cores, no GPU; paths
# rewritten; first line the command, last its exit status).
#
# 40 pkg-resources-missing: `pip wheel --no-build-isolation` of causal-conv1d 1.7.0 (PyPI sdist) in a venv with
#    torch 2.0.1+cu117 and setuptools 84.2.1 (no pkg_resources), CUDA 11.8 from `mamba-build toolchain install`:
#    torch's cpp_extension.py line 25 `from pkg_resources import packaging` stops metadata generation. The venv:
#    $SEED_VENV (default: the test cache's venv-torch201-seed, made by tests/integration/conftest.py).
# 41 extension-missing-from-wheel: `mamba-build compile` (project venv, torch 2.14.1, CUDA 13.0) of mamba-build's
#    own fixture package whose setup.py got one more CUDA-build gate no recipe knows: pip succeeds, the wheel has
#    no mb_fixture_cuda, and compile stops (exit 6). No nvcc runs in either.
#
# Usage: scripts/make_old_stack_logs.sh [OUT_DIR]
set -uo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$REPO/tests/data/failure-logs}"
PY="${PYTHON:-$REPO/.venv/bin/python}"
CACHE="${MAMBA_BUILD_TEST_CACHE:-$HOME/.cache/mamba-build-tests}"
SEED_VENV="${SEED_VENV:-$CACHE/venv-torch201-seed}"
WORK="${WORK:-/tmp/mb-old-stack-logs}"
rm -rf "$WORK"; mkdir -p "$OUT" "$WORK"
VENV_DIR="$(cd "$(dirname "$PY")/.." && pwd)"

sanitize() {
  sed -e "s#$WORK#/home/user/work#g" -e "s#$SEED_VENV#/home/user/venv-torch201#g" -e "s#$VENV_DIR#/home/user/venv#g" \
      -e "s#$CACHE#/home/user/.cache/mamba-build-tests#g" -e "s#$REPO#/home/user/mamba-build#g" \
      -e "s#$HOME#/home/user#g" -e "s#/tmp/pip-[a-z-]*-[a-z0-9_]*#/tmp/pip-tmp#g" \
      -e "s#/tmp/tmp[a-z0-9_]*#/tmp/tmpXXXX#g" | head -c 150000
}

capture() {  # capture NAME CMD...: run CMD (in a shell), keep "$ CMD" + its output
  local name="$1"; shift
  echo "== $name: $*" >&2
  { echo "\$ $*"; bash -c "$*" 2>&1; echo "# exit status: $?"; } | sanitize > "$OUT/$name"
}

# 40: the pkg_resources trap
"$SEED_VENV/bin/python" -c "import torch, setuptools; assert torch.__version__ == '2.0.1+cu117' and setuptools.__version__ == '84.2.1'" \
  || { echo "need $SEED_VENV (torch 2.0.1, setuptools 84.2.1): run tests/integration/test_old_stack_real.py once" >&2; exit 1; }
export MAMBA_BUILD_CACHE="$WORK/mb-cache"
"$SEED_VENV/bin/mamba-build" toolchain install --cuda 11.8 --find-links "$CACHE/cuda118-files" >/dev/null 2>&1 \
  || "$SEED_VENV/bin/mamba-build" toolchain install --cuda 11.8 >/dev/null
tar xzf "$CACHE/pypi-sdists/causal_conv1d-1.7.0.tar.gz" -C "$WORK"
capture 40-pkg-resources-missing-torch201-setuptools84.log \
  "cd $WORK/causal_conv1d-1.7.0 && CUDA_HOME=$MAMBA_BUILD_CACHE/toolchains/cuda-11.8 CAUSAL_CONV1D_FORCE_BUILD=TRUE" \
  "$SEED_VENV/bin/python -m pip wheel --no-build-isolation --no-deps --no-cache-dir -v -w $WORK/w40 ."

# 41: a wheel without its extension module, as mamba-build compile reports it
cp -r "$REPO/csrc/fixture" "$WORK/fixture"
sed -i 's/^if not SKIP_CUDA_BUILD:$/if not SKIP_CUDA_BUILD and os.getenv("MB_FIXTURE_NEW_KERNEL_GATE") == "TRUE":/' "$WORK/fixture/setup.py"
grep -q MB_FIXTURE_NEW_KERNEL_GATE "$WORK/fixture/setup.py" || { echo "fixture setup.py changed: update this script" >&2; exit 1; }
capture 41-extension-missing-from-wheel-new-gate.log \
  "MAMBA_BUILD_CACHE=$WORK/mb-cache-13 $PY -m mamba_build compile --package mb-fixture --source $WORK/fixture --arch 8.0 --no-install --no-cache --wheel-dir $WORK/w41"
rm -rf "$WORK"
