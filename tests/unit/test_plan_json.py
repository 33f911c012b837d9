"""The plan's JSON (`compile --dry-run --json`, `wheels --dry-run --json`) keeps every field name and value: the
plan is made of parts (toolkit, compiler, schedule, launcher ...), its to_dict() stays flat. The files in
data/plan-json/ were written by the flat BuildPlan before it was split (commit 34d3394); the keys keep their order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mamba_build.build import jobserver
from mamba_build.build.jobserver import NinjaInfo
from mamba_build.diagnose.probes.gpu import GpuInfo
from mamba_build.plan.build_plan import CompileOptions, resolve_plan
from mamba_build.plan.launcher import LauncherChoice, with_choice
from tests.unit.envs import make_env

DATA = Path(__file__).parent / "data" / "plan-json"
PINNED = {"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}
FIXED = {"versions": PINNED, "wheel_dir": "/w/wheelhouse", "build_dir": "/w/builds"}
NO_GPU = GpuInfo(None, None, None, ())
CCACHE = LauncherChoice(
    name="ccache",
    path="/usr/bin/ccache",
    version="4.8",
    reason="--launcher ccache",
    cache_dir="/c/ccache",
    host_units=True,
    env={"CCACHE_DIR": "/c/ccache", "PYTORCH_NVCC": "/usr/bin/ccache nvcc"},
    path_prepend="/usr/lib/ccache",
)
CASES = {
    "native-h100": ({}, {}, None),
    "two-archs-sequential": ({"arch": "8.0,9.0+PTX", "schedule": "sequential", "jobs": 2}, {"gpus": NO_GPU}, None),
    "pool-split-ccache": ({"arch": "8.0,9.0", "jobs": 8, "split_units": True}, {"gpus": NO_GPU}, CCACHE),
    "one-package-no-install": ({"arch": "9.0", "packages": ("mamba-ssm",), "install": False}, {}, None),
}


def plan_json(name: str) -> dict:
    opt_kw, env_kw, launcher = CASES[name]
    # what the machine says, fixed: a ninja that joins a jobserver, an nvcc with --jobserver
    jobserver.find_ninja = lambda python, path_env=None: NinjaInfo("/v/bin/ninja", (1, 13, 1), "1.13.1")
    jobserver.nvcc_supports_jobserver = lambda nvcc: True
    plan = resolve_plan(CompileOptions(**{**FIXED, **opt_kw}), make_env(**env_kw))
    if launcher is not None:
        plan = with_choice(plan, launcher)
    return json.loads(json.dumps(plan.to_dict()))


@pytest.mark.parametrize("name", sorted(CASES))
def test_plan_json_keeps_every_field_name_value_and_order(name, monkeypatch):
    monkeypatch.setattr(jobserver, "find_ninja", jobserver.find_ninja)  # restored after the test
    monkeypatch.setattr(jobserver, "nvcc_supports_jobserver", jobserver.nvcc_supports_jobserver)
    want = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    got = plan_json(name)
    assert list(got) == list(want)
    assert got == want
