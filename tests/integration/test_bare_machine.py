"""A bare machine, for real: `compile` with no CUDA toolkit installed provisions one and builds with it.

scripts/test_bare_machine.sh runs each command in a private mount namespace in which this machine's toolkit
is gone (/usr/local/cuda-13.0 under an empty tmpfs, the /usr/local/bin wrappers and every nvcc on PATH hidden);
nothing outside changes. Each mamba-build run gets a fresh MAMBA_BUILD_CACHE, so the toolkit is really
assembled (its wheels are hard-linked in from the test cache first, so nothing is downloaded again).
About 2 minutes on 2 cores: provisioning ~30 s, the fixture package ~60 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mamba_build.dist.fatbin import archs_in_wheel
from mamba_build.toolchain import toolkits
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.toolchain]

SCRIPT = REPO / "scripts" / "test_bare_machine.sh"
FIXTURE = ["--package", "mb-fixture", "--source", str(REPO / "csrc" / "fixture"), "--arch", "8.0", "--no-install"]


def bare(*argv, cache: Path, timeout: float = 1200) -> subprocess.CompletedProcess:
    """``argv`` run in the bare namespace with MAMBA_BUILD_CACHE=cache (CUDA_HOME & co. unset)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT", "CONDA_PREFIX", "MB_BARE_INSIDE")}
    env["MAMBA_BUILD_CACHE"] = str(cache)
    proc = subprocess.run(["bash", str(SCRIPT), *map(str, argv)], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)
    if proc.returncode == 77:
        pytest.skip("no mount namespace can be made here (needs root or user namespaces): " + proc.stderr[-300:])
    return proc


def seeded_cache(root: Path, test_cache: Path) -> Path:
    """A fresh MAMBA_BUILD_CACHE whose wheel store already holds the pinned 13.0 wheels (hard links)."""
    pins = toolkits.release_pins("13.0")
    files = toolkits.fetch_wheels(pins, test_cache / "toolkits" / "wheels" / "nvidia")  # cached: no download
    store = root / "wheels" / "nvidia"
    store.mkdir(parents=True)
    for path in files.values():
        try:
            os.link(path, store / path.name)
        except OSError:
            shutil.copy2(path, store / path.name)
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory, cuda_home, test_cache) -> Path:
    # cuda_home: the provisioned toolkit's wheels are in the test cache once it exists
    return seeded_cache(tmp_path_factory.mktemp("bare") / "mb-cache", test_cache)


def test_the_namespace_has_no_toolkit(cache):
    proc = bare(sys.executable, "-c", "import shutil, os; print(shutil.which('nvcc'), "
                "os.path.exists('/usr/local/cuda-13.0/bin/nvcc'), os.path.exists('/usr/local/cuda/bin/nvcc'))",
                cache=cache, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "False", "False"]


def test_dry_run_says_it_will_provision(cache):
    proc = bare(sys.executable, "-m", "mamba_build", "compile", *FIXTURE, "--dry-run", "--json", cache=cache, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = json.loads(proc.stdout)
    home = cache / "toolchains" / "cuda-13.0"
    assert plan["provision"]["cuda"] == "13.0" and plan["provision"]["command"] == "mamba-build toolchain install --cuda 13.0"
    assert "no usable toolkit of torch's CUDA major 13 found (found: none)" in plan["provision"]["reason"]
    assert plan["cuda_home"] == str(home) and plan["toolkit_reason"].startswith("will be provisioned")
    assert not home.exists(), "--dry-run must not install anything"
    text = bare(sys.executable, "-m", "mamba_build", "compile", *FIXTURE, "--dry-run", cache=cache, timeout=300)
    assert "[will be provisioned: mamba-build toolchain install --cuda 13.0" in text.stdout


def test_no_provision_stops_with_the_fix(cache):
    proc = bare(sys.executable, "-m", "mamba_build", "compile", *FIXTURE, "--dry-run", "--no-provision", cache=cache,
                timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    err = " ".join(proc.stderr.split())  # the error paragraph is wrapped
    assert "no usable CUDA 13.0 toolkit found (found: none)" in err
    assert "Fix: run `mamba-build toolchain install --cuda 13.0`" in err


def test_compile_provisions_and_builds_the_fixture(cache, tmp_path):
    out = tmp_path / "wheels"
    proc = bare(sys.executable, "-m", "mamba_build", "compile", *FIXTURE, "--no-cache", "--wheel-dir", out, "--json",
                cache=cache, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "provisioning CUDA 13.0 with `mamba-build toolchain install --cuda 13.0`" in proc.stderr
    report = json.loads(proc.stdout)
    home = cache / "toolchains" / "cuda-13.0"
    assert report["plan"]["cuda_home"] == str(home) and report["plan"]["provision"]["cuda"] == "13.0"
    assert report["plan"]["toolkit_reason"].startswith("provisioned: mamba-build toolchain install --cuda 13.0")
    info = toolkits.ToolchainInfo.from_dir(home)
    assert info is not None and info.nvcc_version == "13.0.88" and info.origin == "pin table"
    assert json.loads(info.lock_file.read_text())["cuda"] == "13.0"
    (wheel,) = out.glob("mb_fixture-*.whl")
    assert archs_in_wheel(wheel).sass == (80,)
    with zipfile.ZipFile(wheel) as zf:
        assert any(n.startswith("mb_fixture_cuda") and n.endswith(".so") for n in zf.namelist())
    assert report["smoke"]["passed"] is True
