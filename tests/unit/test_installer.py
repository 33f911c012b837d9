"""What builds and installs into the target (mamba_build/plan/installer.py): the choice, its command lines, and
the doctor's `pip` check that reports the same choice. The real pip-less (uv) venv is built into in
tests/integration/test_user_envs_real.py."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from mamba_build.diagnose.checks import Status, resolve_target, run_checks
from mamba_build.errors import EnvironmentProblem
from mamba_build.plan import installer
from mamba_build.plan.build_plan import CompileOptions, resolve_plan
from tests.unit.envs import make_env

T = "/envs/uv/bin/python"


def test_the_targets_own_pip_comes_first():
    inst = installer.choose(T, "25.0")
    assert inst.kind == installer.OWN_PIP and inst.program == (T, "-m", "pip")
    assert inst.wheel_argv("/src", "/out") == [T, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                                               "--no-cache-dir", "-v", "-w", "/out", "/src"]


def test_no_pip_in_the_target_runs_mamba_builds_pip_with_its_python_option(monkeypatch):
    monkeypatch.setattr(installer, "own_pip_version", lambda: "26.3")
    inst = installer.choose(T, None)
    assert inst.kind == installer.PIP_PYTHON
    assert inst.program == (sys.executable, "-m", "pip", "--python", T)
    assert "no pip" in inst.reason and "--python" in inst.reason
    argv = inst.install_argv(["/w/a.whl"], no_deps=True, no_index=True, force_reinstall=True)
    assert argv[:5] == [sys.executable, "-m", "pip", "--python", T] and argv[5] == "install"
    assert {"--no-deps", "--no-index", "--force-reinstall"} <= set(argv) and argv[-1] == "/w/a.whl"
    assert inst.command_line(["einops"]) == f"{sys.executable} -m pip --python {T} install einops"


def test_old_or_absent_pip_falls_back_to_uv_on_path(monkeypatch):
    monkeypatch.setattr(installer, "uv_on_path", lambda: ("/opt/bin/uv", "0.13.9"))
    for host in ("22.2", None):
        monkeypatch.setattr(installer, "own_pip_version", lambda host=host: host)
        inst = installer.choose(T, None)
        assert inst.kind == installer.UV and inst.program == ("/opt/bin/uv",) and inst.version == "0.13.9"
    assert inst.wheel_argv("/src", "/out") == ["/opt/bin/uv", "build", "--wheel", "--no-build-isolation",
                                               "--python", T, "--out-dir", "/out", "-v", "/src"]
    staged = inst.install_argv(["/w/a.whl"], no_deps=True, no_index=True, target="/stage")
    assert staged == ["/opt/bin/uv", "pip", "install", "--python", T, "--no-deps", "--no-index",
                      "--target", "/stage", "/w/a.whl"]
    assert "--reinstall" in inst.install_argv(["/w/a.whl"], force_reinstall=True)
    assert inst.install_argv(["einops"], constraints="/c.txt")[-3:] == ["-c", "/c.txt", "einops"]


def test_nothing_to_build_with_is_an_environment_error_with_both_fixes(monkeypatch):
    monkeypatch.setattr(installer, "own_pip_version", lambda: None)
    monkeypatch.setattr(installer, "uv_on_path", lambda: None)
    with pytest.raises(EnvironmentProblem) as err:
        installer.choose(T, None)
    assert "no pip" in err.value.message and "uv" in err.value.fix and "ensurepip" in err.value.fix


def test_the_plan_records_the_choice_and_json_carries_it(monkeypatch):
    monkeypatch.setattr(installer, "own_pip_version", lambda: "26.3")
    env = make_env()
    pk = {k: v for k, v in env.python.packages.items() if k != "pip"}
    plan = resolve_plan(CompileOptions(versions={"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}),
                        replace(env, python=replace(env.python, packages=pk)))
    assert plan.installer.kind == installer.PIP_PYTHON
    data = plan.to_dict()["installer"]
    assert data["kind"] == "pip --python" and data["python"] == "/v/bin/python" and "no pip" in data["reason"]
    assert plan.installer_for() is plan.installer
    with_pip = resolve_plan(CompileOptions(versions={"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}), env)
    assert with_pip.installer.kind == installer.OWN_PIP


def _pip_check(env):
    return {c.id: c for c in run_checks(env, resolve_target(env, None))}["pip"]


def test_doctor_pip_check_reports_the_same_choice(monkeypatch):
    env = make_env()
    assert _pip_check(env).status == Status.OK and _pip_check(env).summary == "pip 25.0"
    no_pip = replace(env, python=replace(env.python, packages={k: v for k, v in env.python.packages.items()
                                                               if k != "pip"}))
    monkeypatch.setattr(installer, "own_pip_version", lambda: "26.3")
    c = _pip_check(no_pip)
    assert c.status == Status.OK and "no pip in this environment" in c.summary and "--python" in c.summary
    monkeypatch.setattr(installer, "own_pip_version", lambda: None)
    monkeypatch.setattr(installer, "uv_on_path", lambda: None)
    c = _pip_check(no_pip)
    assert c.status == Status.FAIL and "uv" in c.fix


def test_uv_builds_one_package_after_the_other_with_max_jobs(monkeypatch):
    """uv build puts the environment's bin/ first on PATH: torch would run the ninja there, not the pool's shim."""
    from mamba_build.build import jobserver
    from mamba_build.build.jobserver import NinjaInfo
    from mamba_build.errors import UsageError

    monkeypatch.setattr(jobserver, "find_ninja", lambda python, path_env=None: NinjaInfo("/v/bin/ninja", (1, 13), "1.13"))
    monkeypatch.setattr(jobserver, "nvcc_supports_jobserver", lambda nvcc: True)
    monkeypatch.setattr(installer, "own_pip_version", lambda: None)
    monkeypatch.setattr(installer, "uv_on_path", lambda: ("/opt/bin/uv", "0.13.9"))
    env = make_env()
    env = replace(env, python=replace(env.python, packages={k: v for k, v in env.python.packages.items() if k != "pip"}))
    pins = {"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}
    plan = resolve_plan(CompileOptions(versions=pins, arch="9.0"), env)
    assert plan.installer.kind == installer.UV and plan.schedule == "sequential" and "uv build" in plan.schedule_reason
    assert plan.env_for(plan.packages[0])["MAX_JOBS"] == str(plan.jobs)
    with pytest.raises(UsageError):
        resolve_plan(CompileOptions(versions=pins, arch="9.0", schedule="pool"), env)
    assert resolve_plan(CompileOptions(versions=pins, arch="9.0"), make_env()).schedule == "pool"
