"""The seeds' stack for real (issue 15): torch 2.0.1 + CUDA 11.8 + gcc-11, causal-conv1d 1.1.1 and mamba-ssm
1.1.3.post1, in a venv a new user makes today (setuptools 84.2.1: no pkg_resources).

Fixtures (tests/integration/conftest.py): ``torch201_seed_venv`` (that venv), ``cuda118_cli_install`` (CUDA 11.8
by `toolchain install`), ``old_seed_sources`` (release tarballs of both pins, made from PyPI's sdists: what they
hold is in its docstring) and ``old_seed_build`` (ONE real compile of both, ~12 min on 2 cores).

1. torch 2.0.1's cpp_extension does `from pkg_resources import packaging`: the trap is real (a plain `pip wheel`
   dies), the doctor predicts it, and compile builds anyway through a build-only setuptools overlay recorded in
   the plan, leaving the venv's setuptools, packaging, ninja and wheel exactly as they were.
2. The old setup.py shapes come from tarballs (``--source``), take the recipes as new releases do, and build
   with CUDA 11.8 + torch 2.0.1 + gcc-11: each wheel holds its extension with exactly sm_80, and imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from mamba_build.dist import fatbin

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _run(argv, timeout, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)


def _cli_env(cli) -> dict:
    env = dict(os.environ, MAMBA_BUILD_CACHE=str(cli.cache))
    for key in ("CUDA_HOME", "CUDA_PATH", "CC", "CXX", "TORCH_CUDA_ARCH_LIST", "PYTHONPATH"):
        env.pop(key, None)
    return env


def test_todays_setuptools_breaks_every_build_against_torch201(torch201_seed_venv, cuda118_cli_install,
                                                                old_seed_sources, tmp_path):
    """The trap, without mamba-build: `pip wheel` of causal-conv1d 1.1.1 in the seed venv stops in metadata
    generation, because setuptools 84.2.1 has no pkg_resources (a few seconds, nothing is compiled)."""
    with tarfile.open(old_seed_sources["causal-conv1d"]) as tf:
        tf.extractall(tmp_path, filter="data")
    (tree,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    env = _cli_env(cuda118_cli_install)
    env.update(CUDA_HOME=str(cuda118_cli_install.toolkit.path), CAUSAL_CONV1D_FORCE_BUILD="TRUE")
    proc = _run([torch201_seed_venv / "bin" / "python", "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                 "-w", tmp_path / "out", tree], 600, env=env, cwd=tree)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "from pkg_resources import packaging" in out and "No module named 'pkg_resources'" in out, out[-3000:]
    assert "torch/utils/cpp_extension.py" in out


def test_doctor_predicts_the_pkg_resources_trap(torch201_seed_venv, torch201_venv, cuda118_cli_install):
    env = _cli_env(cuda118_cli_install)
    by_venv = {}
    for venv in (torch201_seed_venv, torch201_venv):
        proc = _run([venv / "bin" / "mamba-build", "doctor", "--cuda", "11.8", "--json"], 600, env=env)
        assert proc.stdout.strip(), proc.stderr[-3000:]
        doc = json.loads(proc.stdout)
        by_venv[venv] = next(c for c in doc["checks"] if c["id"] == "pkg-resources")
        assert doc["environment"]["python"]["torch"]["pkg_resources_import"] == 25  # read from cpp_extension.py
    seed = by_venv[torch201_seed_venv]
    assert seed["status"] == "fail", seed
    assert "setuptools 84.2.1 has no pkg_resources (removed in 82.0.0)" in seed["summary"]
    assert seed["fix"] == f'{torch201_seed_venv / "bin" / "python"} -m pip install "setuptools<82"'
    assert "setuptools==81.0.0" in seed["details"]
    # the fixture venv of test_cuda118_real.py: Python 3.11's venv seeds setuptools 65.5.0, which has it
    assert by_venv[torch201_venv]["status"] == "ok", by_venv[torch201_venv]


def test_the_plan_records_the_overlay_and_why(torch201_seed_venv, torch201_venv, cuda118_cli_install,
                                              old_seed_sources):
    env = _cli_env(cuda118_cli_install)
    argv = ["compile", "--cuda", "11.8", "--arch", "8.0", "--source", f"causal-conv1d={old_seed_sources['causal-conv1d']}",
            "--source", f"mamba-ssm={old_seed_sources['mamba-ssm']}", "--dry-run", "--json"]
    seed = _run([torch201_seed_venv / "bin" / "mamba-build", *argv], 600, env=env)
    assert seed.returncode == 0, seed.stderr[-3000:]
    plan = json.loads(seed.stdout)
    overlay = plan["build_overlay"]
    assert [(t["name"], t["version"]) for t in overlay["tools"]] == [("setuptools", "81.0.0")]
    assert "cpp_extension.py imports pkg_resources (line 25)" in overlay["tools"][0]["reason"]
    assert overlay["path"] == str(cuda118_cli_install.cache / "overlays" / "setuptools-81.0.0")
    for pkg in plan["packages"]:
        prefix = "CAUSAL_CONV1D_" if pkg["name"] == "causal-conv1d" else "MAMBA_"
        assert pkg["cuda_build_env"] == {f"{prefix}SKIP_CUDA_BUILD": "FALSE", f"{prefix}KEEP_CUDA_BUILD": "TRUE"}
    text = _run([torch201_seed_venv / "bin" / "mamba-build", *argv[:-1]], 600, env=env)
    assert "build tools setuptools==81.0.0 from a build-only overlay on the build's PYTHONPATH" in text.stdout
    old = _run([torch201_venv / "bin" / "mamba-build", *argv], 600, env=env)
    assert old.returncode == 0 and json.loads(old.stdout)["build_overlay"] is None, old.stderr[-2000:]


def test_old_seeds_build_with_cuda118_torch201_gcc11(old_seed_build, cuda118_cli_install):
    b = old_seed_build
    err = b.proc.stderr
    print(f"old seeds (causal-conv1d 1.1.1 + mamba-ssm 1.1.3.post1), CUDA 11.8, sm_80: {b.seconds:.0f} s")
    plan = err[err.index("mamba-build plan"):]
    assert "torch       2.0.1+cu117" in plan
    assert f"CUDA 11.8 at {cuda118_cli_install.toolkit.path}" in plan
    compiler = next(line for line in plan.splitlines() if line.strip().startswith("compiler"))
    assert "g++-11" in compiler and "(gcc 11." in compiler, compiler
    assert "build tools setuptools==81.0.0 from a build-only overlay" in plan
    assert b.report["plan"]["build_overlay"]["tools"][0]["version"] == "81.0.0"
    assert "timing  build tools" in err  # the overlay was made (or checked) before the builds

    # the recipes applied to the old setup.py shapes as to new ones: the releases' switch, not main's
    for name in ("causal-conv1d", "mamba-ssm"):
        got = {r["recipe"]: r["status"] for r in b.report["patches"][name]}
        assert got["skip-cuda-build-off"] == "applied" and got["keep-cuda-build-on"] == "skipped (other generation)"
        for rid in ("force-build", "cxx11-abi", "gencode-strip", "gencode-plan", "nvcc-threads", "no-prebuilt-wheel"):
            assert got[rid] == "applied", (name, rid, got)

    # each wheel: its extension, exactly sm_80, the torch 2.0 / CUDA 11 local version (pip lower-cases it)
    expect = {"causal-conv1d": ("causal_conv1d-1.1.1+cu11torch2.0cxx11abifalse", "causal_conv1d_cuda"),
              "mamba-ssm": ("mamba_ssm-1.1.3.post1+cu11torch2.0cxx11abifalse", "selective_scan_cuda")}
    for prefix, module in expect.values():
        (whl,) = sorted(b.wheel_dir.glob(prefix.split("-")[0] + "-*.whl"))
        assert whl.name.lower().startswith(prefix), whl.name
        assert any(n.startswith(module + ".") and n.endswith(".so") for n in fatbin.shared_objects_in_wheel(whl))
        archs = fatbin.archs_in_wheel(whl, cuobjdump=cuda118_cli_install.toolkit.path / "bin" / "cuobjdump")
        assert list(archs.sass) == [80] and not list(archs.ptx), (whl.name, archs)

    # the smoke test (GPU hidden: import only) imported both extensions and both packages under torch 2.0.1
    smoke = {c["name"]: c["status"] for c in b.report["smoke"]["checks"]}
    for name in ("import causal_conv1d_cuda", "import causal_conv1d", "import selective_scan_cuda", "import mamba_ssm"):
        assert smoke.get(name) == "ok", (name, smoke)
    assert b.report["smoke"]["passed"] and not b.report["smoke"]["gpu"]


def test_the_venvs_build_tools_are_untouched(old_seed_build, cuda118_cli_install):
    """setuptools, packaging, ninja and wheel of the venv: the same versions and files after the compile, and
    pkg_resources still not importable there; the overlay lives in mamba-build's cache, checked."""
    b = old_seed_build
    assert b.tools_after == b.tools_before
    assert "setuptools 84.2.1 " in b.tools_after and "pkg_resources False" in b.tools_after
    overlay = Path(b.report["plan"]["build_overlay"]["path"])
    assert overlay.parent == cuda118_cli_install.cache / "overlays"
    assert (overlay / "pkg_resources" / "__init__.py").is_file() and (overlay / "setuptools-81.0.0.dist-info").is_dir()
    marker = json.loads((overlay / ".mamba-build-overlay.json").read_text())
    assert marker["requirements"] == ["setuptools==81.0.0"]
