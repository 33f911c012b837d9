"""verify.py and the `verify` command: hashes, sizes, archs from the binary, unknown wheels."""

from __future__ import annotations

import argparse
import json
import shutil
import zipfile

import pytest

from mamba_build.commands import verify as verify_cmd
from mamba_build.dist import manifest
from mamba_build.dist.verify import render, verify_dir
from tests.unit.wheel_factory import build_wheel


def run_verify(capsys, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    verify_cmd.register(parser)
    rc = verify_cmd.run(parser.parse_args(list(argv)))
    return rc, capsys.readouterr().out


@pytest.fixture(scope="module")
def dist_template(tmp_path_factory, request):
    """A wheel directory with one CUDA wheel (real fat binary when nvcc exists) and one pure wheel."""
    work = tmp_path_factory.mktemp("verify")
    so = None
    try:
        so = request.getfixturevalue("cuda_so")
    except pytest.skip.Exception:
        pass
    out = work / "dist"
    w1 = build_wheel(work, "causal_conv1d", "1.7.0+cu13torch2.14cxx11abiTRUE", "cc_fixture", so_file=so)
    w2 = build_wheel(work, "mamba_ssm", "2.2.0", "ms_fixture")
    for w in (w1, w2):
        manifest.finalize_wheel(w, out, {"torch_version": "2.14.1"}, run_auditwheel=False)
    return out, so is not None


@pytest.fixture
def dist(dist_template, tmp_path):
    src, has_cuda = dist_template
    dst = tmp_path / "dist"
    shutil.copytree(src, dst)
    return dst, has_cuda


def test_clean_directory_passes(dist, capsys):
    d, has_cuda = dist
    rc, out = run_verify(capsys, str(d))
    assert rc == 0, out
    assert "2 wheel(s) verified, all ok" in out
    if has_cuda:
        assert "sass sm_80,sm_90; ptx sm_90" in out
    rc, out = run_verify(capsys, str(d), "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["ok"] is True and len(doc["wheels"]) == 2


def test_tampered_wheel_fails_with_clear_message(dist, capsys):
    d, _ = dist
    target = next(d.glob("causal_conv1d-*.whl"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte: same size, different hash
    target.write_bytes(bytes(data))
    rc, out = run_verify(capsys, str(d))
    assert rc == 1
    assert f"FAIL  {target.name}" in out
    assert "sha256 is" in out and "tampered" in out
    assert "1 of 2 wheel(s) failed" in out
    assert "ok    mamba_ssm" in out  # the other wheel is still reported ok


def test_arch_mismatch_missing_file_and_unknown_wheel(dist, tmp_path, capsys):
    d, has_cuda = dist
    m = manifest.Manifest.load(d)
    cc = next(r for r in m if r.package == "causal-conv1d")
    import dataclasses
    m.add(dataclasses.replace(cc, archs_sass=(75, 80, 90), archs_ptx=(100,)))  # claims archs it lacks
    m.save(d)
    ms = next(d.glob("mamba_ssm-*.whl"))
    ms.unlink()
    stray = d / "stray-1.0-py3-none-any.whl"
    with zipfile.ZipFile(stray, "w") as zf:
        zf.writestr("stray/__init__.py", "")
    report = verify_dir(d)
    assert not report.ok
    by_name = {c.filename: c for c in report.checks}
    assert any("SASS archs in the binary are" in p and "manifest says sm_75,sm_80,sm_90" in p
               for p in by_name[cc.filename].problems)
    assert any("PTX archs" in p for p in by_name[cc.filename].problems)
    assert by_name[ms.name].problems == ["listed in manifest.json but the file is missing"]
    assert "not in manifest.json" in by_name[stray.name].problems[0]
    text = render(report)
    assert "3 of 3 wheel(s) failed" in text


def test_missing_or_corrupt_manifest(tmp_path, capsys):
    rc, out = run_verify(capsys, str(tmp_path))
    assert rc == 1 and "manifest.json does not exist" in out
    (tmp_path / "manifest.json").write_text('{"schema_version": 1}')
    rc, out = run_verify(capsys, str(tmp_path))
    assert rc == 1 and "does not match the manifest schema" in out


def test_verify_an_index_root_checks_channels_provenance_and_core_metadata(tmp_path):
    """verify ROOT of an index: each wheel's stamp against its record, its channel page, its .metadata."""
    import json as _json

    from mamba_build.dist import index, provenance
    from mamba_build.dist.verify import verify_dir
    from tests.unit.wheel_factory import build_wheel, prov, stamped

    work, root = tmp_path / "work", tmp_path / "root"
    a = stamped(work, root, "mb_fixture", "0.3.0+cu13torch2.14cxx11abiTRUE", "mbf", prov("2.14.1", "13.0"))
    stray = build_wheel(work, "stray", "1.0", "stray_mod")  # in ROOT, in no manifest
    (root / stray.name).write_bytes(stray.read_bytes())
    index.build_index([root])
    report = verify_dir(root, check_archs=False)
    by_name = {c.filename: c for c in report.checks}
    assert by_name[a.name].ok, by_name[a.name].problems
    assert not by_name[stray.name].ok and not report.problems
    # a page naming the wrong channel, a .metadata that lies, a manifest record that disagrees with the stamp
    page = root / "simple" / "cu13-torch2.14-cxx11abiTRUE" / "mb-fixture"
    moved = root / "simple" / "cu13-torch2.9-cxx11abiTRUE" / "mb-fixture"
    moved.parent.mkdir(parents=True)
    page.rename(moved)
    (root / (a.name + ".metadata")).write_text("Metadata-Version: 2.1\n")
    doc = _json.loads((root / "manifest.json").read_text())
    doc["wheels"][0]["toolkit_version"] = "12.8"
    (root / "manifest.json").write_text(_json.dumps(doc))
    problems = {c.filename: c.problems for c in verify_dir(root, check_archs=False).checks}[a.name]
    assert any("listed in channel cu13-torch2.9-cxx11abiTRUE, but built for cu13-torch2.14" in p for p in problems)
    assert any(".metadata (PEP 658) is missing or does not match" in p for p in problems)
    assert any(f"toolkit_version: the wheel's {provenance.FILE_NAME} says '13.0', manifest.json says '12.8'" in p
               for p in problems)
    # the old flat layout is a directory problem
    (root / "simple" / "mb-fixture").mkdir()
    (root / "simple" / "mb-fixture" / "index.html").write_text(f'<a href="../../{a.name}#sha256={"a" * 64}">{a.name}</a>')
    assert any("old layout" in p for p in verify_dir(root, check_archs=False).problems)
