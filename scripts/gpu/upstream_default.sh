#!/usr/bin/env bash
# Upstream's default build of the same sources, for comparison (benchmarks): the pristine sdist,
# `pip wheel --no-build-isolation --no-deps` with only FORCE_BUILD (the machine has no network, so the
# prebuilt-wheel download cannot be the default path) and CUDA_HOME set: upstream's own arch list,
# --threads 4, ninja's default job count. Runs detached (setsid) so it survives the 10-min call limit;
# results in /tmp/upstream/<pkg>.{timev,log,ls}. Usage: bash scripts/gpu/upstream_default.sh [pkg...]
set -u
R=/tmp/upstream; mkdir -p "$R"; SD=$(pwd)/.carry/sdists; PY=${PY:-python3}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} PYTHONUNBUFFERED=1
run_one() {
  local pkg=$1 tarball=$2 prefix=$3 d
  d=$(mktemp -d /tmp/up-XXXX); tar xzf "$tarball" -C "$d"; cd "$d"/*/ || return
  env "${prefix}FORCE_BUILD=TRUE" /usr/bin/time -v -o "$R/$pkg.timev" \
    "$PY" -m pip wheel --no-build-isolation --no-deps -v -w "$R/wheels-$pkg" . > "$R/$pkg.log" 2>&1
  echo "exit $?" >> "$R/$pkg.log"; ls -l "$R/wheels-$pkg" > "$R/$pkg.ls" 2>&1
}
main() {
  for pkg in "$@"; do
    case $pkg in
      causal-conv1d) run_one causal-conv1d "$SD/causal_conv1d-1.7.0.tar.gz" CAUSAL_CONV1D_ ;;
      mamba-ssm) run_one mamba-ssm "$SD/mamba_ssm-2.3.2.post1.tar.gz" MAMBA_ ;;
    esac
  done
  touch "$R/done"
}
main "${@:-causal-conv1d mamba-ssm}"
