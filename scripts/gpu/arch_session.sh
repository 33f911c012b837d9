#!/usr/bin/env bash
# GPU (H200), issue 17 in ONE lease of <= 22 device minutes (start included): carry [".carry", ".whl"].
#   call 1:  bash scripts/gpu/arch_session.sh 540     # set up, start the driver detached, follow it 540 s
#   call 2:  bash scripts/gpu/arch_poll.sh 570        # right away (the machine goes back when idle)
#   call 3:  bash scripts/gpu/arch_poll.sh 300        # until it prints "finished"; results in $OUT each time
# The driver (below, detached: one device command may last 10 min) runs, one after the other, with a deadline of
# DEADLINE_S (default 1140 s) from its start; a step that cannot fit in what is left is skipped and named:
#  1. a9: `benchmarks/build_speed.py --arch upstream --phases cold`: mamba-build cold, both packages, for
#     upstream's own arch list (read from the sdists' setup.py: sm_75 ... sm_121), the whole command;
#  2. n1: the same for the visible GPU (sm_90), cold;
#  3. parity: static SASS of every sm_90 kernel, a9's wheels against n1's (benchmarks/sass_parity.py): nvcc
#     compiles each -gencode on its own, so the 9-arch build's sm_90 code must be n1's exactly (and n1's is
#     upstream's: 2026-11-23 on the 2-core machine, and kernel parity 24/24 against upstream's wheels on
#     the H200 on 2026-12-02). The other 8 archs: checked on the 2-core machine (scripts/arch_costs_2core.sh);
#  4. n2, n3: two more native cold runs (the median of 3, spread reported);
#  5. kernels: benchmarks/kernel_speed.py --quick, n1's wheels against a9's on this GPU (sm_90), if time is left.
#  6. mutation (only when named in STEPS): scripts/gpu/mutation_check.sh with the time left (<= 330 s): the smoke
#     test against deliberately broken kernels (issue 18), into $S/mutation.
# STEPS (default "a9 n1 parity n2 n3 kernels") picks and orders the steps, e.g. a native-only session that also
# proves the smoke test on the GPU: STEPS="n1 n2 n3 mutation" DEADLINE_S=1250 bash scripts/gpu/arch_session.sh 540.
# Before each native run the size of Triton's kernel cache (~/.triton/cache) goes to steps.txt: the machine's
# first smoke test compiles the Mamba2 block's Triton kernels, later ones find them there.
# Upstream's default 9-arch build (835 + 481 s on 2026-12-02) does not fit in this lease: the report compares
# against that run (same machine type, NOT the same run; build_speed.py --report-only ... --merge says so).
set -u
FOLLOW=${1:-540}; DEADLINE=${DEADLINE_S:-1140}
S=${SESSION_DIR:-/tmp/i17s}
PY=$(command -v python3)
if [ -f "$S/pid" ] && [ ! -e "$S/done" ] && kill -0 "$(cat "$S/pid")" 2>/dev/null; then
  echo "already running in $S (pid $(cat "$S/pid")): bash scripts/gpu/arch_poll.sh"; exit 0
fi
rm -rf "$S"; mkdir -p "$S"
{ echo "== $(date -u '+%F %T UTC') arch_session: python3 = $PY, git $(git log -1 --format=%h 2>/dev/null)"
  lscpu 2>/dev/null | grep -E "^(Model name|Thread|Core|Socket|CPU\(s\))"; nproc
  grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; nvidia-smi -L 2>&1 | head -2; nvcc --version 2>&1 | tail -2
  "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade .whl/ninja-*.whl 2>&1 | tail -2
  echo "ninja next to python3: $("$(dirname "$PY")/ninja" --version 2>&1)"; ls -l .carry/sdists; } > "$S/machine.txt" 2>&1
cat "$S/machine.txt"
# free memory reads low on this VM until used (KINDS.md): the job count it would give is raised to the CPUs
jobs_arg() {  # compile args of a dry run -> "--jobs N" when only MemAvailable made the plan's job count low
  "$PY" -m mamba_build compile --package causal-conv1d,mamba-ssm \
    --source causal-conv1d=.carry/sdists/causal_conv1d-1.7.0.tar.gz \
    --source mamba-ssm=.carry/sdists/mamba_ssm-2.3.2.post1.tar.gz "$@" --dry-run --json 2>/dev/null | "$PY" -c '
import json, os, sys
try:
    p = json.loads(sys.stdin.read())
except ValueError:
    print("dry-run plan: not JSON", file=sys.stderr); raise SystemExit
for k in ("archs", "jobs", "jobs_reason", "split_units", "split_units_reason", "nvcc_threads", "nvcc_threads_reason",
          "split_compile", "split_reason", "predicted_build_s", "cpu_bound_s", "prediction_reason"):
    print(f"plan {k}: {p.get(k)}", file=sys.stderr)
if "GiB free" in (p.get("jobs_reason") or "") and (p.get("jobs") or 0) < os.cpu_count():
    print(f"--jobs {os.cpu_count()}")
'
}
UPSTREAM_ARCHS=$("$PY" -c 'import sys; sys.path.insert(0, "benchmarks"); from pathlib import Path
import build_speed as b; print(b.upstream_arch_list([Path(".carry/sdists/causal_conv1d-1.7.0.tar.gz"), Path(".carry/sdists/mamba_ssm-2.3.2.post1.tar.gz")]))')
echo "upstream's arch list (setup.py of both sdists): $UPSTREAM_ARCHS"
J9=$(jobs_arg --arch "$UPSTREAM_ARCHS"); JN=$(jobs_arg)
# the machine has no network: mamba-ssm's declared requirements it lacks (tilelang, quack-kernels, ...) cannot be
# installed, and `import mamba_ssm` needs only einops, transformers, triton (there): build, and list them
J9="${J9:+$J9 }--skip-missing-deps"; JN="${JN:+$JN }--skip-missing-deps"
echo "extra compile args: 9 archs: '${J9}', native: '${JN}'"
STEPS=${STEPS:-a9 n1 parity n2 n3 kernels}
echo "steps: $STEPS"
export PYTHONUNBUFFERED=1 S PY DEADLINE J9 JN STEPS
# shellcheck disable=SC2016  # expanded by the driver's bash
setsid nohup bash -c '
  t0=$(date +%s); left() { echo $(( DEADLINE - ($(date +%s) - t0) )); }
  step() {  # name need_s command...: run it when it fits in what is left, else skip it and say so
    local name=$1 need=$2; shift 2
    if [ "$(left)" -lt "$need" ]; then echo "skipped $name: $(left) s left, needs ~$need s" | tee -a "$S/steps.txt"; return 1; fi
    echo "phase $name since $(date -u +%T) (left $(left) s)" > "$S/current"; echo "log $S/$name.log" >> "$S/current"
    local t=$(date +%s); "$@" > "$S/$name.log" 2>&1; local rc=$?
    echo "$name: exit $rc after $(( $(date +%s) - t )) s" | tee -a "$S/steps.txt"; return $rc
  }
  bs() {  # out timeout extra-compile-args build_speed-args...
    local out=$1 to=$2 extra=$3; shift 3
    "$PY" benchmarks/build_speed.py --sdists .carry/sdists --out "$S/$out" --python "$PY" --phases cold \
      --timeout-compile "$to" ${extra:+--extra-compile-args "$extra"} "$@"
  }
  triton_cache() { echo "$1: Triton cache before it: $(du -sh ~/.triton/cache 2>/dev/null | cut -f1 || echo none)" >> "$S/steps.txt"; }
  native() { triton_cache "$1"; bs "$1" 330 "$JN"; }
  mutation() { OUT="$S/mutation" bash scripts/gpu/mutation_check.sh "$(( $(left) - 30 < 330 ? $(left) - 30 : 330 ))"; }
  kernels() {
    rm -rf "$S/kb"; mkdir -p "$S/kb/native" "$S/kb/nine-arch"
    for w in "$S"/n1/wheels-cold/*.whl; do "$PY" -m zipfile -e "$w" "$S/kb/native"; done
    for w in "$S"/a9/wheels-cold/*.whl; do "$PY" -m zipfile -e "$w" "$S/kb/nine-arch"; done
    "$PY" benchmarks/kernel_speed.py --build "native=$S/kb/native" --build "nine-arch=$S/kb/nine-arch" \
      --ops causal_conv1d,selective_scan --quick --json "$S/kernels.json" --markdown "$S/kernels.md"
  }
  for st in $STEPS; do
    case $st in
      a9) step a9 700 bs a9 "$(( $(left) - 20 ))" "$J9" --arch upstream --target-cold-s 0 --target-speedup 3 ;;
      n1|n2|n3) step "$st" 190 native "$st" ;;
      parity) step parity 60 "$PY" benchmarks/sass_parity.py "$S/a9/wheels-cold" "$S/n1/wheels-cold" --arch 90 --json "$S/parity.json" ;;
      kernels) step kernels 100 kernels ;;
      mutation) step mutation 240 mutation ;;
      *) echo "unknown step $st" >> "$S/steps.txt" ;;
    esac
  done
  echo "exit 0 $(date -u +%T) after $(( $(date +%s) - t0 )) s" > "$S/done"; rm -f "$S/current"
' arch-session > "$S/driver.log" 2>&1 < /dev/null &
echo $! > "$S/pid"
echo "driver started (pid $(cat "$S/pid")), deadline ${DEADLINE} s"
bash scripts/gpu/arch_poll.sh "$FOLLOW"
