"""The job-count rule: never more nvcc jobs than free memory holds (OOM-killed cc1plus otherwise)."""

from __future__ import annotations

import pytest

from mamba_build.plan.job_count import HEADROOM_GB, PER_JOB_GB, PER_JOB_SPLIT_GB, recommend_jobs


@pytest.mark.parametrize("cpus,mem,split,expected", [
    (16, 120.0, False, 16),   # H100 box: CPU-bound
    (16, 15.0, False, 4),     # 16 GB laptop with 16 threads: (15 - 1) / 3.4 = 4
    (16, 15.0, True, 2),      # same with split-compile: (15 - 1) / 6.1 = 2
    (2, 22.0, False, 2),      # this CI machine
    (8, 2.0, False, 1),       # never below one job
    (0, 10.0, False, 1),      # unknown CPU count
])
def test_jobs_rule(cpus, mem, split, expected):
    rec = recommend_jobs(cpus, mem, split_compile=split)
    assert rec.jobs == expected
    per = PER_JOB_SPLIT_GB if split else PER_JOB_GB
    assert rec.jobs == 1 or rec.jobs * per + HEADROOM_GB <= mem


def test_memory_unknown_falls_back_to_cpus():
    rec = recommend_jobs(6, None)
    assert rec.jobs == 6 and rec.limited_by == "cpus"


def test_reason_names_the_limit():
    rec = recommend_jobs(16, 15.0)
    assert rec.limited_by == "memory" and "3.4 GB per nvcc job" in rec.reason
