#!/usr/bin/env bash
# GPU: issue 5's whole benchmark in ONE device lease (30 min of device time, 10 min per command, warm 30 s
# between commands). First command: set up, start benchmarks/build_speed.py detached, follow it:
#   bash scripts/gpu/bench_session.sh [FOLLOW_S] [DEADLINE_S] [RESERVE_S]    (carry [".carry", ".whl"])
# then, right away after each return (the machine goes back after 30 s idle):
#   bash scripts/gpu/poll.sh 570                                        # until it says "finished"
# What it does:
# 1. puts ninja >= 1.13 (the carried wheel .whl/ninja-*.whl) next to the image's python3, so that
#    `compile` can use its jobserver pool (the image's own ninja may be older);
# 2. prints the machine (CPUs, MemTotal/MemAvailable, GPU, nvcc, torch) and compile's dry-run plan;
#    where the plan's job count is below the CPU count only because MemAvailable reads low (a Firecracker
#    VM whose memory grows as it is used: KINDS.md), it passes --jobs <CPUs>, and says so;
# 3. starts build_speed.py through h100_bench.sh, phases PHASES (default cold,warm,upstream,kernels; add
#    kernels-aa for the noise floor, measured on the H200 on 2026-12-01: byte-identical wheels, 8/8 parity),
#    with --deadline-s DEADLINE_S (default 1640) and --reserve-kernels-s RESERVE_S (default 60), so the
#    upstream phase is cut in time for the kernels phase (2026-12-01: 1470/120 left upstream 1043 s, too
#    little for upstream causal-conv1d next to mamba-ssm);
# 4. follows it for FOLLOW_S (default 520) with poll.sh, which copies the results into $OUT.
# PHASES: build_speed.py --phases (e.g. PHASES=cold,warm for a short check). BENCH_ARGS: more build_speed.py options.
set -u
FOLLOW=${1:-520}; DEADLINE=${2:-1640}; RESERVE=${3:-60}; PHASES=${PHASES:-cold,warm,upstream,kernels}
# upstream: causal-conv1d alone by default (2026-12-01: next to mamba-ssm it had not finished after 1043 s; alone its
# critical path, causal_conv1d_bwd.cu at nvcc --threads 4 over 9 archs, is not starved); a lower bound of upstream's
# default install of both, which pip builds one after the other. UPSTREAM=causal-conv1d,mamba-ssm for both.
UPSTREAM=${UPSTREAM:-causal-conv1d}
PY=$(command -v python3)
echo "== $(date -u '+%F %T UTC') bench_session: python3 = $PY"
lscpu 2>/dev/null | grep -E "^(Model name|Thread|Core|Socket|CPU\(s\))"; nproc; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; nvidia-smi -L 2>&1 | head -2
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | head -3
command -v nvcc && nvcc --version | tail -2
echo "ninja before: $(ninja --version 2>&1) ($(command -v ninja))"
bindir=$(dirname "$PY")
"$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade .whl/ninja-*.whl 2>&1 | tail -2
echo "ninja next to python3: $("$bindir/ninja" --version 2>&1)"
export PYTHONUNBUFFERED=1
plan=$("$PY" -m mamba_build compile --package causal-conv1d,mamba-ssm \
  --source causal-conv1d=.carry/sdists/causal_conv1d-1.7.0.tar.gz \
  --source mamba-ssm=.carry/sdists/mamba_ssm-2.3.2.post1.tar.gz --dry-run --json 2>&1)
# one read of the plan: its lines to stderr (shown), and on stdout the job count when free memory limited it
limited=$(echo "$plan" | "$PY" -c '
import json, sys
try:
    p = json.loads(sys.stdin.read())
except ValueError:
    print("dry-run plan: not JSON", file=sys.stderr); print(0); raise SystemExit
for k in ("cuda_home", "cuda_version", "torch_version", "archs", "jobs", "jobs_reason", "schedule", "schedule_reason",
          "split_compile", "split_reason", "nvcc_jobserver", "split_units", "split_units_reason", "nvcc_threads"):
    print(f"plan {k}: {p.get(k)}", file=sys.stderr)
print("plan compiler:", (p.get("compiler") or {}).get("cxx"), file=sys.stderr)
print(p.get("jobs") or 0 if "GiB free" in (p.get("jobs_reason") or "") else 0)
') || limited=0
extra=""
if [ "${limited:-0}" -gt 0 ] && [ "$limited" -lt "$(nproc)" ]; then
  extra="--jobs $(nproc)"
  echo "the plan chose $limited jobs from MemAvailable; this VM's memory grows on use (128 GiB): passing $extra"
fi
read -r -a more <<< "${BENCH_ARGS:-}"
bash scripts/gpu/h100_bench.sh --phases "$PHASES" --upstream-mode concurrent --upstream-packages "$UPSTREAM" \
  --deadline-s "$DEADLINE" --reserve-kernels-s "$RESERVE" \
  --kernel-args "--rounds 3" ${extra:+--extra-compile-args "$extra"} "${more[@]}"
bash scripts/gpu/poll.sh "$FOLLOW"
