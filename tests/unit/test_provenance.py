"""provenance.py + channels.py: the stamp inside real wheels (pip-built), the torch pin, RECORD, reading back."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mamba_build.dist import manifest, provenance
from mamba_build.dist.channels import Channel
from tests.unit.wheel_factory import build_wheel, clean_pip_env

PROV = {"schema_version": 1, "torch_version": "2.5.1+cu124", "torch_cuda": "12.4", "cxx11_abi": False,
        "toolkit_version": "12.4", "host_compiler": "g++ 12.2.0", "flags": ["--arch 8.0+PTX"],
        "archs": ["8.0+PTX"], "archs_sass": [80], "archs_ptx": [80], "source_origin": "pypi:x",
        "source_sha256": "ab" * 32, "recipes": [{"recipe": "r1", "file": "setup.py", "status": "applied"}],
        "build_seconds": 12.5, "mamba_build_version": "9.9.9"}


def test_channel_names_round_trip():
    ch = Channel.of("2.5.1+cu124", "12.4", False)
    assert ch.name == "cu12-torch2.5-cxx11abiFALSE" and ch.local_version == "cu12torch2.5cxx11abiFALSE"
    assert ch.torch_requirement == "torch==2.5.*"
    assert Channel.parse(ch.name) == ch
    assert Channel.of("2.14.1", "13.0", True).name == "cu13-torch2.14-cxx11abiTRUE"
    assert Channel.parse("causal-conv1d") is None and Channel.of("2.5.1", None, True) is None
    diff = Channel.of("2.6.0", "12.4", False).differences(ch)
    assert diff == ["built for torch 2.6, this environment has torch 2.5"]


def _record_ok(whl: Path) -> None:
    """Every member's RECORD hash and size are right, and every member is listed."""
    with zipfile.ZipFile(whl) as zf:
        assert zf.testzip() is None
        top = provenance.dist_info_dir(zf.namelist())
        rows = {r[0]: r for r in csv.reader(io.StringIO(zf.read(f"{top}/RECORD").decode()))}
        assert set(rows) == set(zf.namelist())
        for name in zf.namelist():
            if name.endswith("/RECORD"):
                continue
            data = zf.read(name)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert rows[name][1] == f"sha256={digest}" and rows[name][2] == str(len(data)), name


def test_stamp_pins_torch_adds_provenance_keeps_the_rest(tmp_path):
    whl = build_wheel(tmp_path / "w", "causal_conv1d", "1.5.2+cu12torch2.5cxx11abiFALSE", "cc_fx",
                      requires=("torch", "packaging", "torch>=2.0; python_version>'3'"))
    with zipfile.ZipFile(whl) as zf:
        before = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    provenance.stamp(whl, PROV)
    _record_ok(whl)
    with zipfile.ZipFile(whl) as zf:
        after = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    top = provenance.dist_info_dir(after)
    changed = {n for n in after if before.get(n) != after[n]}
    assert changed == {f"{top}/METADATA", f"{top}/RECORD", f"{top}/mamba_build.json"}
    meta = after[f"{top}/METADATA"].decode()
    assert provenance.torch_requirements(meta) == ["torch==2.5.*", "torch==2.5.*,>=2.0; python_version > \"3\""]
    assert "Requires-Dist: packaging" in meta
    assert provenance.read_wheel(whl) == PROV
    # stamping again replaces the stamp, no duplicate members
    provenance.stamp(whl, {**PROV, "build_seconds": 1.0})
    _record_ok(whl)
    with zipfile.ZipFile(whl) as zf:
        assert len(zf.namelist()) == len(set(zf.namelist())) == len(after)
    assert provenance.read_wheel(whl)["build_seconds"] == 1.0
    assert provenance.wheel_metadata(whl).decode().count("Requires-Dist: torch==2.5.*\n") == 1


def test_stamp_adds_the_pin_when_torch_is_not_required(tmp_path):
    whl = build_wheel(tmp_path / "w", "mb_fixture", "0.3.0", "mbf")
    provenance.stamp(whl, PROV)
    assert provenance.torch_requirements(provenance.wheel_metadata(whl).decode()) == ["torch==2.5.*"]
    _record_ok(whl)


def test_stamped_wheel_installs_and_the_dist_info_carries_it(tmp_path):
    whl = build_wheel(tmp_path / "w", "mb_fixture", "0.3.0+cu12torch2.5cxx11abiFALSE", "mbf", requires=("torch",))
    provenance.stamp(whl, PROV)
    target = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target),
                          str(whl)], capture_output=True, text=True, env=clean_pip_env(), timeout=300)
    assert res.returncode == 0, res.stderr
    prov, where = provenance.read_installed(target, "MB-Fixture")
    assert prov == PROV and where.name == "mb_fixture-0.3.0+cu12torch2.5cxx11abifalse.dist-info"  # normalized
    assert provenance.read_installed(target, "causal-conv1d") == (None, None)
    assert "against torch 2.5.1+cu124 (CUDA 12.4, C++11 ABI off)" in provenance.describe(prov)


def test_manifest_record_comes_from_the_wheel(tmp_path):
    whl = build_wheel(tmp_path / "w", "mb_fixture", "0.3.0+cu12torch2.5cxx11abiFALSE", "mbf")
    provenance.stamp(whl, PROV)
    rec = manifest.finalize_wheel(whl, tmp_path / "dist", run_auditwheel=False)
    assert (rec.torch_version, rec.torch_cuda, rec.cxx11_abi, rec.toolkit_version, rec.host_compiler) == \
        ("2.5.1+cu124", "12.4", False, "12.4", "g++ 12.2.0")
    assert rec.source_sha256 == "ab" * 32 and rec.build_seconds == 12.5 and rec.mamba_build_version == "9.9.9"
    assert json.loads((tmp_path / "dist" / "manifest.json").read_text())["wheels"][0]["flags"] == ["--arch 8.0+PTX"]


def test_of_build_from_a_plan():
    from mamba_build.plan.build_plan import CompileOptions, resolve_plan
    from tests.unit.envs import make_env

    plan = resolve_plan(CompileOptions(arch="8.0,9.0+PTX", packages=("causal-conv1d",),
                                       versions={"causal-conv1d": "1.7.0"}), make_env())
    doc = provenance.of_build(plan, source_origin="pypi", source_sha256=None, build_seconds=3.21)
    assert doc["archs_sass"] == [80, 90] and doc["archs_ptx"] == [90] and doc["build_seconds"] == 3.2
    assert doc["channel"] == f"cu{plan.torch_cuda.split('.')[0]}-torch{'.'.join(plan.torch_version.split('.')[:2])}" \
        f"-cxx11abi{'TRUE' if plan.cxx11_abi else 'FALSE'}"
    assert doc["channel"].replace("-", "") == plan.local_version  # one fact: the label and the channel agree
    assert "--arch 8.0,9.0+PTX" in doc["flags"]


@pytest.mark.parametrize("bad", [b"not a zip", b""])
def test_read_wheel_of_garbage_is_none(tmp_path, bad):
    p = tmp_path / "x-1.0-py3-none-any.whl"
    p.write_bytes(bad)
    assert provenance.read_wheel(p) is None and provenance.wheel_metadata(p) is None
