"""Issue 19 for real: one index, two torch releases of one CUDA major, every environment gets its own wheel.

The fixture package (csrc/fixture) is built by `mamba-build wheels` for torch 2.5.1 and for torch 2.6.0 (PyPI's
default builds of both are CUDA 12.4, C++11 ABI off) with the CUDA 12.4 toolkit that `toolchain install` makes
(session fixtures of tests/integration/conftest.py: ``torch251_venv``, ``torch260_venv``, ``cuda124_cli_install``),
and both go into one index. Then, in fresh environments that see one torch or the other (a venv with a .pth to the
cached torch venv, so the cached venvs are never changed):

- ``mamba-build install --index-url ROOT`` and the pip line `index` printed each install the wheel of that torch;
- uv's printed line resolves the same (``--dry-run`` against the cached venvs themselves);
- the wrong pairing is never made: the other channel's line is unsatisfiable with the channel alone, and with
  PyPI as the default index pip and uv would replace torch (their dry runs say so), never keep it;
  `install --no-build` refuses, saying why for the candidate; the symbol check agrees with a real import;
- a tampered wheel is refused and nothing is installed;
- provenance (dist-info/mamba_build.json) is in every wheel and in the installed dist-info; `verify` and
  `doctor --index-url` read it.

Budget on 2 cores (measured, see the report in docs/ci/README.md): the torch 2.6.0 venv from cached wheels ~1 min
(a clean machine first downloads ~1.1 GB more than torch 2.5.1's), two fixture builds, the rest ~1 min.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mamba_build.dist import provenance
from mamba_build.dist.fatbin import unresolved_torch_symbols
from mamba_build.dist.install import extension_objects
from mamba_build.dist.manifest import finalize_wheel
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.network]

CH25, CH26 = "cu12-torch2.5-cxx11abiFALSE", "cu12-torch2.6-cxx11abiFALSE"
LABEL = {CH25: "cu12torch2.5cxx11abifalse", CH26: "cu12torch2.6cxx11abifalse"}
TORCH = {CH25: "2.5", CH26: "2.6"}


def _run(argv, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)


def clean_env(**extra) -> dict[str, str]:
    """No pip configuration or find-links of this machine: pip sees the indexes it is given and PyPI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def purelib(python: Path) -> str:
    return _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], 120).stdout.strip()


def env_with_torch(where: Path, torch_venv: Path) -> Path:
    """A fresh venv that sees the packages of a cached torch venv through a .pth file; returns its python."""
    made = _run([sys.executable, "-m", "venv", where], 300)
    assert made.returncode == 0, made.stderr
    py = where / "bin" / "python"
    Path(purelib(py), "torch-venv.pth").write_text(purelib(torch_venv / "bin" / "python") + "\n")
    return py


def installed_version(py: Path, dist: str = "mb-fixture") -> str | None:
    res = _run([py, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"], 120)
    return res.stdout.strip() if res.returncode == 0 else None


@pytest.fixture(scope="module")
def build_env(cuda124_cli_install) -> dict[str, str]:
    """The CLI finds the managed CUDA 12.4 toolkit (and keeps its build cache) in that MAMBA_BUILD_CACHE."""
    return {"MAMBA_BUILD_CACHE": str(cuda124_cli_install.cache)}


@dataclass
class Built:
    dists: dict[str, Path]                 # channel -> a wheel dir with manifest.json
    fallback: subprocess.CompletedProcess  # `install` into a torch 2.6 environment from the torch-2.5-only index
    fallback_python: Path


@pytest.fixture(scope="module")
def built(torch251_venv, torch260_venv, build_env, tmp_path_factory) -> Built:
    """The fixture for torch 2.5.1 by `mamba-build wheels`; for torch 2.6.0 by `mamba-build install` from an index
    holding only the 2.5 wheel (nothing fits, so it builds with the compile pipeline), its wheel then recorded as
    `wheels` records one (finalize_wheel): both sm_80 + compute_80 PTX, CUDA 12.4 toolkit, one build each."""
    tmp = tmp_path_factory.mktemp("built")
    dist25, dist26, only25 = tmp / "dist-25", tmp / "dist-26", tmp / "only25"
    start = time.monotonic()
    proc = run_cli("wheels", "--python", str(torch251_venv / "bin" / "python"), "--cuda", "12.4", "--package",
                   "mb-fixture", "--source", str(REPO / "csrc" / "fixture"), "--arch", "8.0", "--out", str(dist25),
                   "--no-cache", env=build_env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-5000:]
    print(f"wheels for {CH25}: {time.monotonic() - start:.0f} s")
    assert run_cli("index", str(dist25), "--out", str(only25), timeout=300).returncode == 0
    py = env_with_torch(tmp / "env26", torch260_venv)
    start = time.monotonic()
    fallback = run_cli("install", "--index-url", only25.as_uri(), "--python", str(py), "--source",
                       str(REPO / "csrc" / "fixture"), "--arch", "8.0+PTX", "--cuda", "12.4", "--json",
                       env=build_env, timeout=1800, cwd=tmp)
    print(f"install (building) for {CH26}: {time.monotonic() - start:.0f} s")
    assert fallback.returncode == 0, fallback.stderr[-5000:]
    (whl,) = (tmp / "wheelhouse").glob("mb_fixture-*.whl")  # compile's default --wheel-dir, in the cwd
    finalize_wheel(whl, dist26)
    return Built({CH25: dist25, CH26: dist26}, fallback, py)


@pytest.fixture(scope="module")
def dists(built) -> dict[str, Path]:
    return built.dists


@pytest.fixture(scope="module")
def root(dists, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("index") / "public"
    proc = run_cli("index", str(dists[CH25]), str(dists[CH26]), "--out", str(path), timeout=300)
    assert proc.returncode == 0, proc.stderr
    (path / "index-output.txt").write_text(proc.stdout)
    return path


def wheel_of(root: Path, channel: str) -> Path:
    (whl,) = root.glob(f"mb_fixture-*+{LABEL[channel]}-*.whl")
    return whl


def printed_lines(root: Path) -> dict[str, dict[str, str]]:
    """{channel: {"pip": line, "uv": line}} as `mamba-build index` printed them."""
    out: dict[str, dict[str, str]] = {}
    channel = None
    for line in (root / "index-output.txt").read_text().splitlines():
        if line.startswith("channel "):
            channel = line.split()[1]
        elif channel and line.strip().startswith(("pip:", "uv:")):
            tool, _, cmd = line.strip().partition(": ")
            out.setdefault(channel, {})[tool.rstrip(":")] = cmd.strip()
    return out


def test_one_channel_per_torch_with_provenance_in_each_wheel(root):
    simple = root / "simple"
    assert sorted(p.name for p in simple.iterdir() if p.is_dir()) == [CH25, CH26]
    for channel, torch_version in ((CH25, "2.5.1+cu124"), (CH26, "2.6.0+cu124")):
        page = json.loads((simple / channel / "mb-fixture" / "index.json").read_text())
        whl = wheel_of(root, channel)
        assert [f["filename"] for f in page["files"]] == [whl.name]
        assert page["files"][0]["core-metadata"]["sha256"]
        prov = provenance.read_wheel(whl)
        assert prov["channel"] == channel and prov["torch_version"] == torch_version and prov["torch_cuda"] == "12.4"
        assert prov["toolkit_version"] == "12.4" and prov["cxx11_abi"] is False
        assert prov["archs_sass"] == [80] and prov["archs_ptx"] == [80] and prov["archs"] == ["8.0+PTX"]
        assert prov["source_origin"].startswith(str(REPO / "csrc" / "fixture")) and prov["source_tree_digest"]
        assert {r["recipe"] for r in prov["recipes"]} and prov["host_compiler"].startswith("g++")
        meta = (root / (whl.name + ".metadata")).read_text()
        assert provenance.torch_requirements(meta) == [f"torch=={torch_version[:3]}.*"]
    lines = printed_lines(root)
    assert set(lines) == {CH25, CH26} and all(set(v) == {"pip", "uv"} for v in lines.values())
    ok = run_cli("verify", str(root), timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2 wheel(s) verified, all ok" in ok.stdout


def test_install_gives_each_environment_its_own_wheel(root, torch251_venv, torch260_venv, tmp_path):
    for channel, venv in ((CH25, torch251_venv), (CH26, torch260_venv)):
        py = env_with_torch(tmp_path / channel, venv)
        if channel == CH25:  # doctor says beforehand what install then does (once: doctor probes everything)
            doctor = run_cli("doctor", "--python", str(py), "--index-url", root.as_uri(), "--json", timeout=600)
            checks = {c["id"]: c for c in json.loads(doctor.stdout)["checks"]}
            assert checks["index:mb-fixture"]["status"] == "ok", checks["index:mb-fixture"]
            assert wheel_of(root, channel).name in checks["index:mb-fixture"]["summary"]
        start = time.monotonic()
        proc = run_cli("install", "--index-url", root.as_uri(), "--python", str(py), "--json", timeout=900)
        print(f"install into the {channel} environment: {time.monotonic() - start:.0f} s")
        assert proc.returncode == 0, proc.stderr[-4000:]
        doc = json.loads(proc.stdout)
        assert doc["installed"] == [wheel_of(root, channel).name] and doc["smoke"] == "import-only"
        assert "sha256 matches manifest.json" in proc.stderr and "every c10::/at::/torch:: symbol" in proc.stderr
        assert installed_version(py) == f"0.3.0+{LABEL[channel]}"
        imp = _run([py, "-c", "import torch, mb_fixture_cuda; print(torch.__version__)"], 300)
        assert imp.returncode == 0, imp.stderr
        prov, _where = provenance.read_installed(purelib(py), "mb-fixture")
        assert prov["channel"] == channel  # provenance travels into the environment
        if channel == CH25:
            again = run_cli("install", "--index-url", root.as_uri(), "--python", str(py), timeout=900)
            assert again.returncode == 0 and "already installed" in again.stderr


def test_printed_pip_line_gives_each_environment_its_own_wheel(root, torch251_venv, torch260_venv, tmp_path):
    lines = printed_lines(root)
    for channel, venv in ((CH25, torch251_venv), (CH26, torch260_venv)):
        py = env_with_torch(tmp_path / channel, venv)
        argv = shlex.split(lines[channel]["pip"])
        assert argv[:4] == ["python", "-m", "pip", "install"]
        proc = _run([py, *argv[1:]], 600, env=clean_env())
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        done = proc.stdout.split("Successfully installed", 1)[-1].split()
        assert done and not [d for d in done if d.startswith(("torch-", "triton-"))], done  # torch stays as it was
        assert installed_version(py) == f"0.3.0+{LABEL[channel]}"
        imp = _run([py, "-c", "import torch, mb_fixture_cuda"], 300)
        assert imp.returncode == 0, imp.stderr


def _dry_run_installs(tool: str, proc: subprocess.CompletedProcess) -> set[str]:
    """name==version of what a --dry-run would install (pip: 'Would install a-1 b-2'; uv: ' + a==1')."""
    text = proc.stdout + proc.stderr
    if tool == "pip":
        line = next((ln for ln in text.splitlines() if ln.startswith("Would install ")), "")
        return {"==".join(item.rsplit("-", 1)).lower().replace("_", "-") for item in line.split()[2:]}
    return {ln.strip()[2:].lower() for ln in text.splitlines() if ln.strip().startswith("+ ")}


def test_printed_lines_resolve_per_torch_and_never_pair_another(root, torch251_venv, torch260_venv, uv_exe):
    """Dry runs in the cached venvs themselves (nothing changes): each channel's line against each torch."""
    lines = printed_lines(root)
    venvs = {CH25: torch251_venv, CH26: torch260_venv}
    env = clean_env(UV_CACHE_DIR=str(root.parent / "uv-cache"))
    seen = {}
    for channel in (CH25, CH26):
        for venv_channel, venv in venvs.items():
            py = venv / "bin" / "python"
            for tool in ("pip", "uv"):
                argv = shlex.split(lines[channel][tool])
                argv = [py, *argv[1:], "--dry-run"] if tool == "pip" else \
                    [uv_exe, *argv[1:], "--python", py, "--dry-run"]
                proc = _run(argv, 600, env=env)
                plan = _dry_run_installs(tool, proc)
                seen[(channel, venv_channel, tool)] = (proc.returncode, sorted(plan))
                assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
                assert f"mb-fixture==0.3.0+{LABEL[channel]}" in plan, (tool, channel, plan)
                torch_planned = [p for p in plan if p.startswith("torch==")]
                if channel == venv_channel:
                    assert not torch_planned, (tool, channel, plan)  # the installed torch fits: left alone
                else:
                    # the other channel: the resolver would REPLACE torch by that channel's release, never pair
                    assert torch_planned and torch_planned[0].startswith(f"torch=={TORCH[channel]}."), (tool, plan)
    print(json.dumps({" ".join(k): v for k, v in seen.items()}, indent=1))
    # with the channel as the only index, the other torch's wheel is unsatisfiable for both tools
    url = f"{root.as_uri()}/simple/{CH26}/"
    req = f"mb-fixture==0.3.0+{LABEL[CH26]}"
    pip = _run([torch251_venv / "bin" / "python", "-m", "pip", "install", "--dry-run", "--index-url", url, req], 600,
               env=env)
    assert pip.returncode != 0 and "No matching distribution found for torch==2.6.*" in pip.stderr, pip.stderr
    uv = _run([uv_exe, "pip", "install", "--python", torch251_venv / "bin" / "python", "--dry-run", "--index-url", url,
               req], 600, env=env)
    assert uv.returncode != 0 and "torch==2.6.*" in uv.stderr and "unsatisfiable" in uv.stderr, uv.stderr


def test_install_refuses_the_other_torch_and_says_why(dists, torch251_venv, tmp_path):
    only26 = tmp_path / "only26"
    proc = run_cli("index", str(dists[CH26]), "--out", str(only26), timeout=300)
    assert proc.returncode == 0, proc.stderr
    py = env_with_torch(tmp_path / "env", torch251_venv)
    proc = run_cli("install", "--index-url", only26.as_uri(), "--python", str(py), "--no-build", timeout=600)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"mb_fixture-0.3.0+{LABEL[CH26]}" in proc.stderr
    assert "built for torch 2.6, this environment has torch 2.5" in proc.stderr
    assert installed_version(py) is None


def test_symbol_check_agrees_with_a_real_import(root, torch251_venv, torch260_venv, tmp_path):
    """The check `install` runs (undefined c10/at/torch symbols against torch's libraries) says what importing
    the extension under that torch really does: fine across 2.5/2.6 for this small fixture (so the channels keep
    them apart by policy: torch promises no ABI across releases), and a real `undefined symbol` under torch
    2.14.1 (this project's venv, C++11 ABI on; libcudart.so.12 made visible so the loader gets that far)."""
    cudart12 = next((torch251_venv / "lib").glob("python3.*/site-packages/nvidia/cuda_runtime/lib"))
    torches = {CH25: torch251_venv / "bin" / "python", CH26: torch260_venv / "bin" / "python",
               "2.14.1": Path(sys.executable)}
    pairs = {CH25: (CH25, CH26, "2.14.1"), CH26: (CH25,)}  # (26, 26) imports in the install test already
    results = {}
    for channel in (CH25, CH26):
        sos = extension_objects(wheel_of(root, channel), tmp_path / channel)
        stage = tmp_path / f"stage-{channel}"
        stage.mkdir()
        shutil.copy2(sos[0], stage / sos[0].name.split("-", 1)[1])
        for torch_name in pairs[channel]:
            py = torches[torch_name]
            torch_dir = _run([py, "-c", "import torch, os; print(os.path.dirname(torch.__file__))"], 300).stdout.strip()
            missing = [s for v in unresolved_torch_symbols(sos, torch_dir).values() for s in v]
            imp = _run([py, "-c", "import sys, torch; sys.path.insert(0, sys.argv[1]); import mb_fixture_cuda", stage],
                       300, env={**os.environ, "LD_LIBRARY_PATH": str(cudart12)})
            results[(channel, torch_name)] = (missing, imp.returncode, imp.stderr.strip()[-200:])
            assert bool(missing) == (imp.returncode != 0), results
            if missing:  # the loader names one of them
                named = re.search(r"undefined symbol: (\S+)", imp.stderr)
                assert named and named.group(1) in missing, (imp.stderr, missing)
    print(json.dumps({" / ".join(k): v[:2] for k, v in results.items()}, indent=1))
    assert not results[(CH25, CH25)][0] and results[(CH25, CH25)][1] == 0
    assert results[(CH25, "2.14.1")][0]  # a real mismatch, caught


def test_a_tampered_wheel_is_refused(root, torch251_venv, tmp_path):
    copy = tmp_path / "public"
    shutil.copytree(root, copy)
    whl = wheel_of(copy, CH25)
    data = bytearray(whl.read_bytes())
    data[len(data) // 2] ^= 0xFF
    whl.write_bytes(bytes(data))
    py = env_with_torch(tmp_path / "env", torch251_venv)
    proc = run_cli("install", "--index-url", copy.as_uri(), "--python", str(py), timeout=600)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "tampered or corrupt" in proc.stderr and whl.name in proc.stderr
    assert installed_version(py) is None
    bad = run_cli("verify", str(copy), timeout=600)
    assert bad.returncode == 1 and "sha256" in bad.stdout


def test_nothing_fits_so_install_builds_it_with_compile(built):
    """The torch 2.6 environment and an index with only the torch 2.5 wheel (the `built` fixture): `install`
    said why the candidate does not fit, built the fixture with the compile pipeline and installed that build."""
    proc, py = built.fallback, built.fallback_python
    assert f"mb_fixture-0.3.0+{LABEL[CH25]}" in proc.stderr
    assert "built for torch 2.5, this environment has torch 2.6" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["installed"] == [] and len(doc["built"]) == 1
    assert doc["plan"]["choices"][0]["action"] == "build"
    assert doc["built"][0].startswith(f"mb_fixture-0.3.0+{LABEL[CH26]}-")
    assert installed_version(py) == f"0.3.0+{LABEL[CH26]}"
    prov, _ = provenance.read_installed(purelib(py), "mb-fixture")
    assert prov["channel"] == CH26 and prov["torch_version"] == "2.6.0+cu124" and prov["archs"] == ["8.0+PTX"]
