"""The whole compile pipeline for real: real nvcc 13.0 (the toolkit the tests provision with `mamba-build
toolchain install`, tests/conftest.py::cuda_home), real torch 2.14.1, real sources.

1. Our upstream-shaped fixture package (csrc/fixture: FORCE_BUILD switches, a prebuilt-wheel
   downloader, a hard-coded -gencode list with sm_70 that CUDA 13 rejects), about 1 min.
2. The real causal-conv1d sdist from PyPI for one arch (sm_90), about 5-8 min on 2 cores: built ONCE
   per session by `mamba-build wheels` (tests/integration/conftest.py::causal_conv1d_wheels) and
   shared with the index tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mamba_build.dist.fatbin import archs_in_wheel
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.toolchain]


@pytest.fixture(scope="module")
def fixture_build(tmp_path_factory, cuda_env):
    out = tmp_path_factory.mktemp("fixture-wheels")
    proc = run_cli("compile", "--package", "mb-fixture", "--source", str(REPO / "csrc" / "fixture"), "--arch", "8.0",
                   "--no-install", "--no-cache", "--wheel-dir", str(out), "--json", env=cuda_env, timeout=1200)
    return proc, out


def test_fixture_builds_through_the_pipeline(fixture_build):
    proc, out = fixture_build
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1
    wheel = wheels[0]
    assert wheel.name.startswith("mb_fixture-0.3.0+cu13torch2.14cxx11abi")
    # every recipe reported, the prebuilt-wheel downloader neutralised, the gencode list replaced
    assert "force-build: applied" in proc.stderr and "no-prebuilt-wheel: applied" in proc.stderr
    assert "gencode-strip: applied" in proc.stderr and "Guessing wheel URL" not in proc.stderr
    found = archs_in_wheel(wheel)
    assert found.sass == (80,) and found.ptx == ()  # sm_70 from upstream's list is gone, only the plan's arch
    assert report["installed"] is False and report["plan"]["archs"] == ["8.0"]
    # its units went through the pool's one ninja (torch found our shim, not the slow distutils fallback)
    assert "pool    one ninja for mb-fixture: 2 units" in proc.stderr, proc.stderr[-3000:]
    build_log = Path(report["wheels"][0]["log"]).read_text(errors="replace")
    assert "Falling back to using the slow distutils backend" not in build_log and "[2/2]" in build_log
    assert set(report["timings_s"]) >= {"builds", "smoke test+arch check"}
    with zipfile.ZipFile(wheel) as zf:
        assert any(n.startswith("mb_fixture_cuda") and n.endswith(".so") for n in zf.namelist())


def test_fixture_smoke_is_import_only_without_gpu(fixture_build):
    proc, _ = fixture_build
    report = json.loads(proc.stdout)
    smoke = report["smoke"]
    assert smoke["passed"] is True and smoke["gpu"] is False
    assert any(c["name"].startswith("import mb_fixture_cuda") and c["status"] == "ok" for c in smoke["checks"])
    log = Path(smoke["log_path"])  # with the build logs, which outlive the staging dir a finished run removes
    assert log.parent.name == "logs" and log.is_file(), log
    assert '{"check": {"name": "import mb_fixture_cuda' in log.read_text()  # the child's records, kept


def test_warm_rebuild_is_a_verified_cache_hit(fixture_build, tmp_path, cuda_env):
    proc, out = fixture_build
    assert proc.returncode == 0
    first = next(out.glob("*.whl"))
    again = run_cli("compile", "--package", "mb-fixture", "--source", str(REPO / "csrc" / "fixture"), "--arch", "8.0",
                    "--no-install", "--wheel-dir", str(tmp_path), env=cuda_env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "cached  " in again.stderr and "sha256 verified" in again.stderr and "build   " not in again.stderr
    assert (tmp_path / first.name).read_bytes() == first.read_bytes()


def test_build_failure_is_explained_and_nothing_is_left(tmp_path, cuda_env):
    """A source tree whose .cu does not compile: a typed build error with the log, no wheel."""
    import shutil

    broken = tmp_path / "fixture"
    shutil.copytree(REPO / "csrc" / "fixture", broken)
    (broken / "csrc" / "fixture_kernel.cu").write_text('#include "no_such_header_mamba_build.h"\n')
    out = tmp_path / "wheels"
    proc = run_cli("compile", "--package", "mb-fixture", "--source", str(broken), "--arch", "8.0", "--no-install",
                   "--wheel-dir", str(out), env=cuda_env, timeout=900)
    assert proc.returncode == 6, proc.stderr[-2000:]
    assert "mamba-build build failed" in proc.stderr and "no_such_header_mamba_build.h" in proc.stderr
    assert "full log:" in proc.stderr
    assert not out.exists() or not list(out.glob("*.whl"))


def test_real_causal_conv1d_holds_exactly_the_requested_arch(causal_conv1d_wheels):
    out, proc = causal_conv1d_wheels
    wheel = next(out.glob("causal_conv1d-*.whl"))
    assert wheel.name.startswith("causal_conv1d-1.7.0+cu13torch2.14cxx11abi")
    found = archs_in_wheel(wheel)
    assert found.sass == (90,) and found.ptx == ()
    assert found.tool.endswith("cuobjdump"), "checked with cuobjdump --list-elf, not the fallback"


def test_real_causal_conv1d_imports_in_a_child_process(causal_conv1d_wheels, tmp_path):
    out, _ = causal_conv1d_wheels
    wheel = next(out.glob("causal_conv1d-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path)
    code = "import torch, causal_conv1d_cuda, causal_conv1d; print(causal_conv1d.__version__)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1.7.0"


def test_ctrl_c_mid_build_restores_torch_and_leaves_nothing(tmp_path, cuda_env):
    """SIGINT while nvcc runs, with --patch-torch inplace: exit 130, torch's file byte-identical,
    no wheel, no compiler processes left, the build tree removed."""
    import hashlib
    import os
    import signal
    import time

    import torch.utils.cpp_extension as cpp_ext

    target = Path(cpp_ext.__file__)
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    out = tmp_path / "wheels"
    build_dir = tmp_path / "builds"
    env = dict(os.environ, PYTHONUNBUFFERED="1", **cuda_env)
    proc = subprocess.Popen([sys.executable, "-m", "mamba_build", "compile", "--package", "mb-fixture", "--source",
                             str(REPO / "csrc" / "fixture"), "--arch", "8.0", "--no-install", "--no-cache",
                             "--patch-torch", "inplace", "--wheel-dir", str(out), "--build-dir", str(build_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
                            # a terminal's Ctrl-C: SIGINT handled normally even if this test runs in background
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # wait until a compiler really runs on the build tree
            ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
            if any(str(build_dir) in line and ("nvcc" in line or "cc1plus" in line or "cicc" in line)
                   for line in ps.splitlines()):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the build never started")
        patched = hashlib.sha256(target.read_bytes()).hexdigest()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        run_cli("restore-torch", timeout=120)
    assert patched != before, "--patch-torch inplace did edit torch's file during the build"
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "rolled back" in err
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before
    assert not out.exists() or not list(out.glob("*.whl"))
    assert not list(build_dir.glob("run-*/src")), "source tree left behind"
    time.sleep(1)
    ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
    assert str(build_dir) not in ps, "compiler processes left running"


def test_several_archs_compile_with_nvcc_threads_paced_by_the_pools_jobserver(tmp_path, cuda_env):
    """Issue 17: with several archs the pool gives nvcc one thread per arch and `--jobserver` (MAKEFLAGS from the
    pool's jobserver, no MAX_JOBS): the real build runs that way and the wheel holds every arch's SASS."""
    out = tmp_path / "wheels"
    proc = run_cli("compile", "--package", "mb-fixture", "--source", str(REPO / "csrc" / "fixture"), "--arch",
                   "8.0,9.0", "--no-install", "--no-cache", "--wheel-dir", str(out), "--json", env=cuda_env,
                   timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    plan = report["plan"]
    assert plan["schedule"] == "pool" and plan["nvcc_jobserver"] is True and plan["nvcc_threads"] == 2
    assert "paced by the pool's jobserver" in plan["nvcc_threads_reason"]
    ninja_log = next(Path(report["wheels"][0]["log"]).parent.glob("ninja-mb-fixture.log")).read_text(errors="replace")
    nvcc_lines = [ln for ln in ninja_log.splitlines() if "nvcc" in ln and " -c " in ln]
    assert nvcc_lines and all("--threads 2" in ln or "'--threads', '2'" in ln or "-t 2" in ln for ln in nvcc_lines), \
        ninja_log[-2000:]
    assert archs_in_wheel(next(out.glob("*.whl"))).sass == (80, 90)
