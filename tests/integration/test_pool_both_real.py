"""Both packages, for real, through the pool's one ninja (tests/conftest.py::pool_wheels, once per session):
causal-conv1d 1.7.0 + mamba-ssm 2.3.2.post1 for sm_90 on this GPU-less machine, and everything the smoke test
and `mamba-build test` can check without a GPU: the arch list in each binary, the kernels every launch shape
needs, the staged import (never in the environment), upstream's test files collected but -- honestly -- not run.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from mamba_build.dist.fatbin import archs_in_wheel
from tests.conftest import POOL_VERSIONS, run_cli

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/local/cuda-13.0/bin/nvcc").exists(), reason="needs CUDA 13.0")]


def test_both_packages_were_built_by_one_ninja(pool_wheels):
    err = pool_wheels.proc.stderr
    assert "pool    one ninja for causal-conv1d + mamba-ssm:" in err, err[-3000:]
    assert "split-bwd-launch: applied" in err and "split-bwd-units: applied" in err  # the GPU machine's units
    manifest = json.loads((pool_wheels.out / "manifest.json").read_text())
    assert sorted(w["package"].replace("_", "-") for w in manifest["wheels"]) == sorted(POOL_VERSIONS)
    for name, wheel in pool_wheels.wheels.items():
        assert wheel.name.startswith(f"{name.replace('-', '_')}-{POOL_VERSIONS[name]}+cu13torch2.14cxx11abi")
        found = archs_in_wheel(wheel)
        assert (found.sass, found.ptx) == ((90,), ()), (name, found)
    print(f"pool build of both packages: {pool_wheels.seconds:.0f} s")


def _symbols(wheel: Path, module: str, tmp: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        (so,) = [n for n in zf.namelist() if n.startswith(module) and n.endswith(".so")]
        zf.extract(so, tmp)
    return subprocess.run(["nm", "-C", str(tmp / so)], capture_output=True, text=True, check=True).stdout


def test_every_launch_shape_and_instantiation_is_in_the_binaries(pool_wheels, tmp_path):
    """What the smoke test's shapes reach on a GPU must exist: the 5 bwd launch shapes of selective_scan for each
    input type, real and complex (split-bwd-launch moves two of them into another unit), and causal-conv1d's 18
    bwd instantiations (split-bwd-units gives each a unit)."""
    scan = _symbols(pool_wheels.wheels["mamba-ssm"], "selective_scan_cuda", tmp_path)
    for shape in ("32, 4", "32, 8", "32, 16", "64, 16", "128, 16"):
        for itype in ("float", "c10::Half", "c10::BFloat16"):
            for wtype in ("float", "c10::complex<float>"):
                for kind in ("bwd", "fwd"):
                    pattern = (rf"Selective_Scan_{kind}_kernel_traits<{shape}, (?:\d+, )?(?:(?:true|false), ){{4,5}}"
                               rf"{re.escape(itype)}, {re.escape(wtype)} ?>")
                    assert re.search(pattern, scan), (kind, shape, itype, wtype)
    conv = _symbols(pool_wheels.wheels["causal-conv1d"], "causal_conv1d_cuda", tmp_path)
    types = ("float", "c10::Half", "c10::BFloat16")
    for fn in ("causal_conv1d_bwd_cuda", "causal_conv1d_channellast_bwd_cuda", "causal_conv1d_fwd_cuda"):
        for it in types:
            for wt in types:
                assert f"void {fn}<{it}, {wt}>(" in conv, (fn, it, wt)
    for text, mod in ((scan, "selective_scan_cuda"), (conv, "causal_conv1d_cuda")):
        assert f"PyInit_{mod}" in text


def test_the_builds_smoke_test_imported_both_from_staging_and_said_import_only(pool_wheels):
    """The smoke test `wheels` ran on these wheels (staged with pip --target): every module imported from the
    staging dir, every numerical suite skipped, and the verdict says it is not a pass."""
    err = pool_wheels.proc.stderr
    assert "smoke test: IMPORT ONLY (no GPU): not a pass" in err, err[-3000:]
    for mod in ("causal_conv1d_cuda", "causal_conv1d", "selective_scan_cuda", "mamba_ssm"):
        assert re.search(rf"^  ok +import {mod}  from \S*/smoke-staging/", err, re.M), mod
    for suite in ("causal_conv1d", "selective_scan", "mamba_block", "mamba2_block"):
        assert re.search(rf"^  skipped +{suite}  no GPU: import only", err, re.M), suite


def test_upstream_tests_are_collected_but_not_run_without_a_gpu(pool_wheels, tmp_path):
    proc = run_cli("test", "--wheel", str(pool_wheels.wheels["causal-conv1d"]), "--wheel",
                   str(pool_wheels.wheels["mamba-ssm"]), "--json", "--work-dir", str(tmp_path), timeout=1800)
    assert proc.returncode == 10, proc.stdout[-2000:] + proc.stderr[-3000:]
    runs = {r["package"]: r for r in json.loads(proc.stdout)}
    cc, ms = runs["causal-conv1d"], runs["mamba-ssm"]
    assert cc["files"] == ["tests/test_causal_conv1d.py"] and cc["collected"] > 9000, cc
    assert sorted(ms["files"]) == ["tests/test_determinism.py", "tests/test_generation.py"] and ms["collected"] > 0
    for r in (cc, ms):
        assert r["ran"] is False and r["passed"] == 0 and r["ok"] is False and "no CUDA GPU" in r["note"]
        assert r["version"].startswith(POOL_VERSIONS[r["package"]])
        assert "staged in" in r["against"]

