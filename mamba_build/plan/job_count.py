"""How many parallel compile jobs a machine can take without being OOM-killed.

Per-job peak memory was measured on these sources (docs/benchmarks.md): one nvcc job of
causal-conv1d/mamba-ssm peaks at 3.4 GB RSS; with `--split-compile` at about 6.1 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

PER_JOB_GB = 3.4  # measured: nvcc job of causal_conv1d_bwd.cu, one arch, peak RSS
PER_JOB_SPLIT_GB = 6.1  # measured: same with --split-compile=0
HEADROOM_GB = 1.0  # left for the rest of the system
DISK_MIN_GB = 2.0
DISK_WARN_GB = 10.0


@dataclass(frozen=True)
class JobsRecommendation:
    jobs: int
    limited_by: str  # "cpus" or "memory"
    reason: str


def recommend_jobs(cpus: int, mem_available_gb: float | None, *, split_compile: bool = False) -> JobsRecommendation:
    per_job = PER_JOB_SPLIT_GB if split_compile else PER_JOB_GB
    cpus = max(1, int(cpus or 1))
    if mem_available_gb is None:
        return JobsRecommendation(cpus, "cpus", f"{cpus} CPUs; free memory unknown")
    by_mem = max(1, int((mem_available_gb - HEADROOM_GB) // per_job))
    jobs = min(cpus, by_mem)
    limited = "memory" if by_mem < cpus else "cpus"
    return JobsRecommendation(
        jobs,
        limited,
        f"min({cpus} CPUs, ({mem_available_gb:.1f} GiB free - {HEADROOM_GB} GiB headroom) / {per_job} GB per "
        f"nvcc job{' with split-compile' if split_compile else ''} = {by_mem}) = {jobs}",
    )
