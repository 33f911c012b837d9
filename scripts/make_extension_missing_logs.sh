#!/usr/bin/env bash
# Re-create the real logs of `extension-missing-from-wheel` in tests/data/failure-logs/ (61-63,
# numbered apart from the other streams' logs): a wheel that pip builds "successfully" without its
# CUDA module, then the import of that module.
# No public issue thread quotes such a log in full, so these are made here. Not run in CI: the logs
# are committed. Same machine and conventions as scripts/make_failure_logs.sh (project venv with
# torch 2.14.1+cu130; the PyPI sdists from the tests' download cache; paths rewritten).
#
# Usage: flock /work/heavy.lock scripts/make_extension_missing_logs.sh [OUT_DIR]
set -uo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$REPO/tests/data/failure-logs}"
PY="${PYTHON:-$REPO/.venv/bin/python}"
WORK="${WORK:-/tmp/mb-extension-missing}"
SDISTS="${MAMBA_BUILD_TEST_CACHE:-$HOME/.cache/mamba-build-tests}/pypi-sdists"
MAIN_SETUP="$REPO/../shared/upstream/mamba-main-setup.py"
rm -rf "$WORK"; mkdir -p "$OUT" "$WORK"
VENV_DIR="$(cd "$(dirname "$PY")/.." && pwd)"

sanitize() {
  sed -e "s#$WORK#/home/user/work#g" -e "s#$VENV_DIR#/home/user/venv#g" -e "s#$SDISTS#/home/user/sdists#g" \
      -e "s#$REPO#/home/user/mamba-build#g" -e "s#$HOME#/home/user#g" \
      -e "s#/tmp/pip-[a-z-]*-[a-z0-9_]*#/tmp/pip-tmp#g" | head -c 150000
}

capture() {  # capture NAME CMD...: run CMD (in a shell), keep "$ CMD" + its output
  local name="$1"; shift
  echo "== $name: $*" >&2
  { echo "\$ $*"; bash -c "$*" 2>&1; echo "# exit status: $?"; } | sanitize > "$OUT/$name"
}

build_and_import() {  # build_and_import ENV SRC MODULE: pip wheel, install into a target dir, import
  local envs="$1" src="$2" mod="$3" w="$WORK/wheel-$(basename "$2")" t="$WORK/target-$(basename "$2")"
  echo "$envs $PY -m pip wheel --no-build-isolation --no-deps --no-cache-dir -v -w $w $src" \
       "&& $PY -m pip install --no-deps --no-index --target $t $w/*.whl" \
       "&& PYTHONPATH=$t $PY -c 'import torch, $mod'"
}

tar xzf "$SDISTS/mamba_ssm-2.2.6.post3.tar.gz" -C "$WORK"
tar xzf "$SDISTS/causal_conv1d-1.5.2.tar.gz" -C "$WORK"

# 61: mamba-ssm with its CUDA build switched off (and the prebuilt-wheel download skipped)
capture 61-extension-missing-from-wheel-mamba-skip.log \
  "$(build_and_import "MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE" "$WORK/mamba_ssm-2.2.6.post3" selective_scan_cuda)"

# 62: causal-conv1d likewise
capture 62-extension-missing-from-wheel-causal-skip.log \
  "$(build_and_import "CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE" "$WORK/causal_conv1d-1.5.2" causal_conv1d_cuda)"

# 63: mamba's main-branch setup.py (builds selective_scan_cuda only with MAMBA_KEEP_CUDA_BUILD=TRUE),
# used on the 2.2.6.post3 sources, MAMBA_KEEP_CUDA_BUILD unset
if [ -f "$MAIN_SETUP" ]; then
  cp -r "$WORK/mamba_ssm-2.2.6.post3" "$WORK/mamba-main"
  cp "$MAIN_SETUP" "$WORK/mamba-main/setup.py"
  capture 63-extension-missing-from-wheel-main-no-keep.log \
    "$(build_and_import "" "$WORK/mamba-main" selective_scan_cuda)"
fi
rm -rf "$WORK"
