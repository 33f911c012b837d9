"""Wheels for an internal index, for real: build (fixture + real causal-conv1d), index, pip install, verify."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mamba_build.dist import provenance
from mamba_build.dist.fatbin import archs_in_wheel
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.toolchain]


@pytest.fixture(scope="module")
def fixture_wheels(tmp_path_factory, cuda_env):
    """The fixture built by `mamba-build wheels` for two archs (+PTX for the newest): ~1-2 min."""
    out = tmp_path_factory.mktemp("fixture-dist")
    proc = run_cli("wheels", "--out", str(out), "--package", "mb-fixture", "--source", str(REPO / "csrc" / "fixture"),
                   "--arch", "8.0,9.0", "--no-cache", env=cuda_env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def index_root(tmp_path_factory, fixture_wheels, causal_conv1d_wheels):
    root = tmp_path_factory.mktemp("index")
    cc_out, _ = causal_conv1d_wheels
    proc = run_cli("index", str(fixture_wheels), str(cc_out), "--out", str(root), timeout=300)
    assert proc.returncode == 0, proc.stderr
    (root / "index-output.txt").write_text(proc.stdout)
    return root


def test_wheels_manifest_records_archs_from_the_binary(fixture_wheels):
    manifest = json.loads((fixture_wheels / "manifest.json").read_text())
    (entry,) = [w for w in manifest["wheels"] if w["package"] in ("mb-fixture", "mb_fixture")]
    assert entry["archs_sass"] == [80, 90] and entry["archs_ptx"] == [90]  # PTX added for the newest arch
    assert entry["toolkit_version"] == "13.0" and entry["torch_version"].startswith("2.14.1")
    assert entry["host_compiler"].startswith("g++") and entry["build_seconds"] > 0
    whl = fixture_wheels / entry["filename"]
    prov = provenance.read_wheel(whl)  # the manifest's build facts are the wheel's own stamp
    assert {k: prov[k] for k in provenance.MANIFEST_KEYS if k in entry} == \
        {k: entry[k] for k in provenance.MANIFEST_KEYS if k in prov}
    assert prov["channel"] == "cu13-torch2.14-cxx11abiTRUE" and prov["archs"] == ["8.0", "9.0+PTX"]
    found = archs_in_wheel(whl)
    assert (list(found.sass), list(found.ptx)) == ([80, 90], [90])


def test_index_is_pip_installable_into_a_fresh_venv(index_root, tmp_path):
    channel = index_root / "simple" / "cu13-torch2.14-cxx11abiTRUE"
    assert (channel / "mb-fixture" / "index.html").exists() and (channel / "causal-conv1d" / "index.json").exists()
    out = (index_root / "index-output.txt").read_text()
    (pip_line,) = [ln.split("pip: ", 1)[1] for ln in out.splitlines() if ln.strip().startswith("pip: ")]
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # torch (5 GB) is made visible from the project venv rather than installed again
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "project-torch.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # venv's bundled setuptools is older than torch requires; let the project venv's one be seen instead
    subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "-q", "setuptools"], timeout=300,
                   env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"})
    # the line `index` printed for this channel, offline: the default index is an empty one
    (tmp_path / "empty" / "simple").mkdir(parents=True)
    argv = shlex.split(pip_line)
    assert argv[:4] == ["python", "-m", "pip", "install"] and "causal-conv1d==1.7.0+cu13torch2.14cxx11abitrue" in argv
    proc = subprocess.run([str(py), *argv[1:], "--no-cache-dir"], capture_output=True, text=True, timeout=900,
                          env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path),
                               "PIP_INDEX_URL": (tmp_path / "empty" / "simple").as_uri()})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    code = ("import torch, mb_fixture_cuda, causal_conv1d_cuda, causal_conv1d, os; "
            "print(os.path.dirname(mb_fixture_cuda.__file__)); print(causal_conv1d.__version__)")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    where, version = out.stdout.split()
    assert where == site and version == "1.7.0"


def test_verify_passes_then_fails_on_a_tampered_wheel(fixture_wheels, tmp_path):
    ok = run_cli("verify", str(fixture_wheels), timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    copy = tmp_path / "dist"
    shutil.copytree(fixture_wheels, copy)
    whl = next(copy.glob("*.whl"))
    data = bytearray(whl.read_bytes())
    data[len(data) // 2] ^= 0xFF
    whl.write_bytes(bytes(data))
    bad = run_cli("verify", str(copy), timeout=300)
    assert bad.returncode == 1
    assert "sha256" in (bad.stdout + bad.stderr)
