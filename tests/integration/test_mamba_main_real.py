"""mamba's next release (issue 15): upstream main's setup.py (July 2026) builds selective_scan_cuda only with
MAMBA_KEEP_CUDA_BUILD=TRUE, and without it a "successful" build has no CUDA extension.

``mamba_main_source`` (tests/conftest.py): mamba-ssm 2.3.2.post1's sdist with ../shared/upstream/mamba-main-setup.py
over its setup.py. ``mamba_main_wheels``: that tree built once per session (sm_90) by `mamba-build wheels`.
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

from mamba_build.build.pipeline import check_wheel_extension
from mamba_build.errors import ExtensionMissingError
from mamba_build.plan.build_plan import PackagePlan
from tests.conftest import REPO, run_cli

MAMBA = PackagePlan("mamba-ssm", None, "main", "selective_scan_cuda", "MAMBA_")


@pytest.mark.slow
@pytest.mark.network
def test_main_setup_py_builds_selective_scan_cuda(mamba_main_wheels):
    (whl,) = sorted(Path(mamba_main_wheels).glob("mamba_ssm-*.whl"))
    assert whl.name.startswith("mamba_ssm-2.3.2.post1+cu"), whl.name
    member = check_wheel_extension(MAMBA, whl)
    with zipfile.ZipFile(whl) as zf:
        assert zf.getinfo(member).file_size > 1_000_000, member  # kernels, not a stub


@pytest.mark.network
def test_main_setup_py_without_the_flag_is_a_wheel_without_the_extension(mamba_main_source, tmp_path):
    """The trap, for real (no nvcc runs): pip builds main's setup.py into a wheel WITHOUT selective_scan_cuda and
    says it succeeded; the pipeline's wheel check refuses that wheel (explain id extension-missing-from-wheel)."""
    tree = tmp_path / "tree"
    shutil.copytree(mamba_main_source, tree)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w",
                           str(tmp_path / "out"), str(tree)], capture_output=True, text=True, timeout=600, cwd=tree,
                          env={k: v for k, v in os.environ.items() if not k.startswith("MAMBA_")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = (tmp_path / "out").glob("mamba_ssm-*.whl")
    with pytest.raises(ExtensionMissingError, match="holds no selective_scan_cuda extension module"):
        check_wheel_extension(MAMBA, whl)


@pytest.mark.network
def test_patch_and_plan_say_which_switch_was_set(mamba_main_source, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(mamba_main_source, tree)
    proc = run_cli("patch", str(tree), "--package", "mamba-ssm", "--arch", "9.0", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = {r["recipe"]: r["status"] for r in json.loads(proc.stdout)["results"]}
    assert got["keep-cuda-build-on"] == "applied" and got["skip-cuda-build-off"] == "skipped (other generation)"
    assert "KEEP_CUDA_BUILD = True  # mamba-build:keep-cuda-build-on" in (tree / "setup.py").read_text()
    plan = run_cli("compile", "--package", "mamba-ssm", "--source", str(mamba_main_source), "--arch", "9.0",
                   "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert json.loads(plan.stdout)["packages"][0]["cuda_build_env"] == {"MAMBA_SKIP_CUDA_BUILD": "FALSE",
                                                                        "MAMBA_KEEP_CUDA_BUILD": "TRUE"}


def test_a_build_that_drops_its_extension_fails_loudly(tmp_path):
    """End to end with mamba-build's own fixture package: its setup.py given one more gate that no recipe knows
    (as main's KEEP_CUDA_BUILD was before this issue), `compile` gets a wheel without mb_fixture_cuda from a
    successful pip run and must stop with exit 6, install nothing and put no wheel in the wheel dir."""
    src = tmp_path / "fixture"
    shutil.copytree(REPO / "csrc" / "fixture", src)
    setup = src / "setup.py"
    text = setup.read_text()
    assert "if not SKIP_CUDA_BUILD:" in text
    setup.write_text(text.replace("if not SKIP_CUDA_BUILD:",
                                  'if not SKIP_CUDA_BUILD and os.getenv("MB_FIXTURE_NEW_KERNEL_GATE") == "TRUE":'))
    out = tmp_path / "wheels"
    proc = run_cli("compile", "--package", "mb-fixture", "--source", str(src), "--arch", "8.0", "--no-install",
                   "--no-cache", "--wheel-dir", str(out), timeout=900)
    assert proc.returncode == 6, proc.stderr[-3000:]
    said = " ".join(proc.stderr.split())  # the error paragraph is wrapped
    assert "mamba-build build failed" in said and "holds no mb_fixture_cuda extension module" in said, said[-3000:]
    assert "MB_FIXTURE_KEEP_CUDA_BUILD" in said  # the fix names the switches mamba-build knows
    assert not out.exists() or not list(out.glob("*.whl"))
