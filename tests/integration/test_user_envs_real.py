"""mamba-build where users are (issue 14), for real: real wheel, real venvs, real nvcc 13.0 and torch 2.14.1.

1. Installed from its own wheel: mamba-build's wheel (`pip wheel` of this checkout) installed NON-editable
   into a fresh venv that has neither torch nor pip (how pipx / `uv tool install` keep a tool apart from the
   torch environment), run from outside the checkout: `fetch`, `patch` of the folder fetch filled,
   `compile --dry-run`, `doctor --probe` against the torch environment through --python, and a real
   build of the fixture package it ships (csrc/fixture) into a venv made by uv, where no pip exists on
   either side and uv on PATH builds and installs.
2. A venv made by uv (uv from PyPI, installed by the Makefile) with torch 2.14.1: compile from the
   project venv builds and installs into it with mamba-build's own pip and pip's --python option.
7. The fixture's runtime requirement (einops, in a copy whose setup.py declares it and whose package
   imports it) is installed into that venv before the build, torch pinned; --no-deps refuses at plan time.

The uv venv is kept in ``$MAMBA_BUILD_TEST_CACHE/venv-uv-torch<version>`` (5.4 GB; ~40 s to make from
the local wheels pip's configuration points at) and put back to its recipe at the start of each session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.network,
              pytest.mark.skipif(not Path("/usr/local/cuda-13.0/bin/nvcc").exists(), reason="needs CUDA 13.0")]

TORCH = metadata.version("torch")  # the project venv's torch (Makefile: TORCH_SPEC), e.g. 2.14.1
UV_VENV_RECIPE = (f"torch=={TORCH}", "setuptools", "wheel", "packaging", "ninja")
RESET = ("mb-fixture", "einops")  # what the tests below install into the uv venv


def _run(argv, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)


def _pip_for(python: Path, *args, timeout=1800) -> subprocess.CompletedProcess:
    """The project venv's pip, run for another interpreter (pip's --python option)."""
    return _run([sys.executable, "-m", "pip", "--python", python, *args], timeout=timeout)


def _imports(python: Path, code: str) -> subprocess.CompletedProcess:
    return _run([python, "-c", code], timeout=300, cwd="/")


@pytest.fixture(scope="module")
def uv_exe() -> Path:
    """uv from PyPI, installed into the project venv by the Makefile (else on PATH)."""
    found = Path(sys.executable).parent / "uv"
    if not found.is_file():
        found = Path(shutil.which("uv") or "")
    if not found.is_file():
        pytest.fail("uv is not installed: `make venv` installs it from PyPI into the project venv")
    return found


@pytest.fixture(scope="module")
def uv_venv(uv_exe, test_cache) -> Path:
    """A venv made by uv (so: no pip) with torch==TORCH, setuptools, wheel, packaging and ninja. torch comes
    from where the project venv's pip gets it (pip's configuration: local wheels here, PyPI elsewhere), put
    there by that pip with its --python option, which adds no pip to the venv. uv itself would not read pip's
    configuration, and the venv must hold the same torch build as the project venv."""
    venv = test_cache / f"venv-uv-torch{TORCH.split('+')[0].replace('.', '')}"
    py = venv / "bin" / "python"
    ok = py.exists() and _imports(py, "import torch, setuptools, wheel, packaging, ninja; print(torch.__version__)")
    if not (ok and ok.returncode == 0 and ok.stdout.strip().split("+")[0] == TORCH.split("+")[0]):
        shutil.rmtree(venv, ignore_errors=True)
        base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        made = _run([uv_exe, "venv", "--quiet", "--python", base, venv], timeout=300)
        assert made.returncode == 0, made.stderr
        inst = _pip_for(py, "install", "-q", *UV_VENV_RECIPE)
        assert inst.returncode == 0, inst.stderr[-3000:]
    else:  # back to the recipe: what an earlier session's tests installed goes
        _pip_for(py, "uninstall", "-y", "-q", *RESET, timeout=300)
    assert _imports(py, "import pip").returncode != 0, f"{venv} must have no pip (a venv made by uv)"
    assert _imports(py, "import einops").returncode != 0
    return venv


@pytest.fixture(scope="module")
def mb_wheel(tmp_path_factory) -> Path:
    """mamba-build's own wheel, built by pip from a copy of this checkout's files (git's view of them)."""
    src = tmp_path_factory.mktemp("mb-src") / "mamba-build"
    listed = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    for rel in filter(None, listed.stdout.split("\0")):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    out = tmp_path_factory.mktemp("mb-wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", out, src])
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = out.glob("mamba_build-*.whl")
    return wheel


@pytest.fixture(scope="module")
def tool(mb_wheel, uv_exe, tmp_path_factory):
    """The wheel installed NON-editable into a fresh venv with no torch and no pip; returns a runner of
    its `mamba-build` from outside the checkout, with uv (alone) on PATH."""
    root = tmp_path_factory.mktemp("tool")
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], timeout=300)
    assert made.returncode == 0, made.stderr
    inst = _pip_for(venv / "bin" / "python", "install", "-q", mb_wheel, timeout=600)
    assert inst.returncode == 0, inst.stderr[-3000:]
    for absent in ("torch", "pip"):
        assert _imports(venv / "bin" / "python", f"import {absent}").returncode != 0, f"{absent} in the tool venv"
    uv_dir = root / "uv-bin"
    uv_dir.mkdir()
    (uv_dir / "uv").symlink_to(uv_exe)
    project_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join([str(uv_dir), *(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                           if p and p != project_bin)])
    cwd = root / "work"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=path, MAMBA_BUILD_CACHE=str(root / "mb-cache"))

    def run(*args, timeout=900) -> subprocess.CompletedProcess:
        return _run([venv / "bin" / "mamba-build", *args], timeout=timeout, cwd=cwd, env=env)

    run.venv = venv
    run.cwd = cwd
    return run


def test_the_wheel_ships_the_recipes_and_sources_and_the_tool_finds_them(tool):
    where = _run([tool.venv / "bin" / "python", "-c",
                  "from mamba_build import paths; print(paths.patches_dir()); print(paths.csrc_dir())"], cwd=tool.cwd)
    patches, csrc = map(Path, where.stdout.split())
    site = next((tool.venv / "lib").glob("python3*/site-packages"))
    assert patches == site / "mamba_build" / "patches" and csrc == site / "mamba_build" / "csrc"
    for name in ("causal-conv1d.toml", "mamba-ssm.toml", "setup-common.toml", "mb-fixture.toml", "torch.toml"):
        assert (patches / name).is_file(), name
    for name in ("probe/probe.cpp", "probe/probe_kernel.cu", "fixture/setup.py", "fixture/pyproject.toml",
                 "fixture/csrc/fixture.cpp", "fixture/csrc/fixture_kernel.cu", "fixture/mb_fixture/__init__.py"):
        assert (csrc / name).is_file(), name


def test_fetch_then_patch_the_folder_it_filled_for_another_env(tool):
    dest = tool.cwd / "src"
    got = tool("fetch", "causal-conv1d==1.7.0", "--dest", str(dest))
    assert got.returncode == 0, got.stderr[-2000:]
    patched = tool("patch", str(dest), "--arch", "9.0", "--python", sys.executable)
    assert patched.returncode == 0, patched.stdout + patched.stderr[-2000:]
    assert "causal-conv1d 1.7.0 in" in patched.stdout and "cxx11-abi                    applied" in patched.stdout
    text = (dest / "causal_conv1d-1.7.0" / "setup.py").read_text()
    assert "mamba-build:force-build" in text and "FORCE_CXX11_ABI = True" in text  # torch 2.14's ABI, asked there


def test_compile_dry_run_for_another_env(tool):
    plan = tool("compile", "--python", sys.executable, "--package", "causal-conv1d", "--version",
                "causal-conv1d==1.7.0", "--arch", "9.0", "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr[-2000:]
    data = json.loads(plan.stdout)
    assert data["python"] == sys.executable and data["torch_version"].startswith(TORCH.split("+")[0])
    assert data["installer"]["kind"] == "pip" and data["installer"]["python"] == sys.executable
    deps = data["runtime_deps"]
    assert list(deps["declared"]["causal-conv1d"]) == ["torch", "packaging", "ninja"]
    assert deps["read_from"]["causal-conv1d"] == "Requires-Dist of causal_conv1d-1.7.0.tar.gz/PKG-INFO"
    assert deps["action"] == "none" and deps["missing"] == []


def test_doctor_probe_for_another_env(tool):
    doc = tool("doctor", "--probe", "--python", sys.executable, "--arch", "8.0", "--json", timeout=900)
    data = json.loads(doc.stdout)
    probe = data["probe"]
    assert probe["ok"] is True and probe["run"]["imported"] is True, json.dumps(probe)[:3000]
    check = next(c for c in data["checks"] if c["id"] == "probe")
    assert check["status"] in ("ok", "warn") and "compiled in" in check["summary"], check
    assert data["environment"]["python"]["executable"] == sys.executable


def test_installed_tool_builds_the_fixture_it_ships_into_a_uv_venv_with_uv(tool, uv_venv, tmp_path):
    """No pip in the tool's venv nor in the target: uv (on PATH) builds and installs."""
    fixture = tool.cwd / "fixture"
    site = next((tool.venv / "lib").glob("python3*/site-packages"))
    shutil.copytree(site / "mamba_build" / "csrc" / "fixture", fixture)
    py = uv_venv / "bin" / "python"
    proc = tool("compile", "--python", str(py), "--package", "mb-fixture", "--source", str(fixture), "--arch", "8.0",
                "--wheel-dir", str(tmp_path), "--json", timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    plan = report["plan"]
    assert plan["installer"]["kind"] == "uv" and report["installed"] is True
    # uv build puts the venv's bin/ first on PATH (torch then runs that ninja, not the pool's shim): MAX_JOBS
    assert plan["schedule"] == "sequential" and "uv build" in plan["schedule_reason"]
    assert report["smoke"]["passed"] is True
    got = _imports(py, "import torch, mb_fixture_cuda, mb_fixture; print(mb_fixture_cuda.__file__)")
    assert got.returncode == 0 and str(uv_venv) in got.stdout, got.stderr[-2000:]
    assert _imports(py, "import pip").returncode != 0  # uv added no pip


@pytest.fixture
def fixture_needing_einops(tmp_path) -> Path:
    """The fixture package with a runtime requirement (einops) declared in setup.py and imported."""
    tree = tmp_path / "fixture"
    shutil.copytree(REPO / "csrc" / "fixture", tree)
    setup = tree / "setup.py"
    text = setup.read_text()
    assert 'install_requires=["torch"]' in text
    setup.write_text(text.replace('install_requires=["torch"]', 'install_requires=["torch", "einops"]'))
    with open(tree / "mb_fixture" / "__init__.py", "a") as fh:
        fh.write("\nimport einops  # a runtime requirement, declared in setup.py (tests/integration)\n")
    return tree


def test_no_deps_refuses_at_plan_time_with_the_pip_line(uv_venv, fixture_needing_einops):
    py = uv_venv / "bin" / "python"
    proc = run_cli("compile", "--python", str(py), "--package", "mb-fixture", "--source", str(fixture_needing_einops),
                   "--arch", "8.0", "--no-deps", "--dry-run", timeout=600)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "einops" in proc.stderr and "--no-deps" in proc.stderr
    line = f"{sys.executable} -m pip --python {py} install einops torch=={TORCH}"
    assert line in " ".join(proc.stderr.split()), proc.stderr


def test_compile_into_a_uv_venv_installs_runtime_deps_first(uv_venv, fixture_needing_einops, tmp_path):
    """From the project venv (which has pip >= 22.3): its pip builds and installs with --python."""
    py = uv_venv / "bin" / "python"
    torch_before = _imports(py, "import torch; print(torch.__version__, torch.__file__)").stdout
    proc = run_cli("compile", "--python", str(py), "--package", "mb-fixture", "--source", str(fixture_needing_einops),
                   "--arch", "8.0", "--wheel-dir", str(tmp_path), "--json", timeout=1500,
                   env={"MAMBA_BUILD_CACHE": str(tmp_path / "mb-cache")})
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    inst = report["plan"]["installer"]
    assert inst["kind"] == "pip --python" and inst["program"][-2:] == ["--python", str(py)]
    deps = report["plan"]["runtime_deps"]
    assert deps["action"] == "install" and deps["missing"] == ["einops"]
    assert f"torch=={TORCH}" in deps["pins"]
    err = proc.stderr
    assert "deps    installing einops" in err and err.index("deps    installing einops") < err.index("build   mb-fixture")
    assert report["installed"] is True and report["smoke"]["passed"] is True
    got = _imports(py, "import torch, einops, mb_fixture, mb_fixture_cuda; print(mb_fixture_cuda.__file__)")
    assert got.returncode == 0 and str(uv_venv) in got.stdout, got.stderr[-2000:]
    assert _imports(py, "import torch; print(torch.__version__, torch.__file__)").stdout == torch_before
    assert _imports(py, "import pip").returncode != 0  # nothing added pip
