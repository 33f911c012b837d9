"""The warm path: a stored smoke verdict is reused only for exactly the wheels it was given, and
an identical installed wheel is not reinstalled (checked against a real pip install)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mamba_build.build import cache
from mamba_build.build.pipeline import BuiltWheel, reused_smoke, smoke_record
from mamba_build.build.smoke.stage import SmokeCheck, SmokeReport
from mamba_build.dist.already_installed import installed_identical
from tests.unit.test_schedule import _plan
from tests.unit.wheel_factory import build_wheel, clean_pip_env

H100 = "NVIDIA H100 80GB HBM3"


def _wheels(keys=("k1", "k2")):
    return [BuiltWheel(f"p{i}", "1.0", Path(f"/w/p{i}.whl"), Path(), 0.0, "pypi", None, from_cache=True,
                       cache_key=k) for i, k in enumerate(keys)]


def _passed(device=H100, gpu=True):
    return SmokeReport(passed=True, gpu=gpu, device=device, checks=[
        SmokeCheck("selective_scan float32 fwd", "ok", "out 1e-5/0.05", 1.5e-5, 0.0484)])


def _with(wheels, record):
    return [replace(w, smoke=record) for w in wheels]


def test_verdict_reused_for_the_same_wheel_set_on_the_same_gpu(monkeypatch):
    plan = _plan(monkeypatch)
    wheels = _wheels()
    rec = smoke_record(_passed(), wheels)
    got = reused_smoke(plan, _with(wheels, rec))
    assert got is not None and got.passed and got.gpu and got.reused and H100 in got.reused
    assert got.checks[0].max_abs_err == 1.5e-5 and got.verdict == "pass"


def test_verdict_not_reused_when_anything_differs(monkeypatch):
    plan = _plan(monkeypatch)
    wheels = _wheels()
    rec = smoke_record(_passed(), wheels)
    assert reused_smoke(plan.with_(rerun_smoke=True), _with(wheels, rec)) is None
    other_set = smoke_record(_passed(), _wheels(("k1", "k3")))
    assert reused_smoke(plan, _with(wheels, other_set)) is None  # tested with another companion wheel
    assert reused_smoke(plan, _with(wheels, smoke_record(_passed(device="NVIDIA A100-SXM4-80GB"), wheels))) is None
    assert reused_smoke(plan, _with(wheels, smoke_record(_passed(gpu=False), wheels))) is None  # import-only
    assert reused_smoke(plan, _with(wheels, smoke_record(_passed(device=None), wheels))) is None  # no device named
    fresh = _with(wheels, rec)
    fresh[1] = replace(fresh[1], from_cache=False)  # one wheel was just built: test it again
    assert reused_smoke(plan, fresh) is None
    assert reused_smoke(plan, _wheels()) is None  # no verdict stored


def test_no_gpu_reuses_only_an_import_only_verdict(monkeypatch):
    plan = _plan(monkeypatch).with_(gpus=())
    wheels = _wheels()
    assert reused_smoke(plan, _with(wheels, smoke_record(_passed(), wheels))) is None
    got = reused_smoke(plan, _with(wheels, smoke_record(_passed(device=None, gpu=False), wheels)))
    assert got is not None and got.verdict == "import-only"


def test_cache_keeps_the_verdict(isolated_cache, tmp_path):
    wheel = tmp_path / "p-1.0-py3-none-any.whl"
    wheel.write_bytes(b"x" * 100)
    rec = smoke_record(_passed(), _wheels())
    cache.store("ab" * 32, wheel, {"package": "p"}, smoke=rec)
    assert cache.lookup("ab" * 32).smoke["verdict"] == "pass"
    cache.record_smoke("ab" * 32, {**rec, "verdict": "import-only"})
    assert cache.lookup("ab" * 32).smoke["verdict"] == "import-only"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("installed")
    blob = work / "blob.so"
    blob.write_bytes(b"\x7fELF not really" * 100)
    wheel = build_wheel(work, "mb-demo", "1.0", "mb_demo", so_file=blob)
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(target), str(wheel)], check=True, env=clean_pip_env(), timeout=300)
    return wheel, target


def test_identical_install_is_recognised_and_a_changed_file_is_not(installed, monkeypatch):
    wheel, target = installed
    monkeypatch.setenv("PYTHONPATH", str(target))
    assert installed_identical(sys.executable, [wheel]) is True
    so = next(target.rglob("_kernels.so"))
    original = so.read_bytes()
    try:
        so.write_bytes(original + b"!")
        assert installed_identical(sys.executable, [wheel]) is False
    finally:
        so.write_bytes(original)
    monkeypatch.delenv("PYTHONPATH")
    assert installed_identical(sys.executable, [wheel]) is False  # not installed in this environment

