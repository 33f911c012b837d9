"""index.py: one PEP 503/691 channel per (CUDA major, torch X.Y, ABI) over real (pip-built, stamped) wheels,
installed with pip into a fresh venv by the printed line; PEP 658 core metadata; merging; the old layout."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from mamba_build.commands import index as index_cmd
from mamba_build.dist import index, manifest, provenance
from mamba_build.errors import UsageError
from tests.unit.wheel_factory import build_wheel, clean_pip_env, prov, stamped

CU13_214 = "cu13-torch2.14-cxx11abiTRUE"
CU13_29 = "cu13-torch2.9-cxx11abiTRUE"


@pytest.mark.parametrize("raw,norm", [
    ("causal_conv1d", "causal-conv1d"), ("Mamba_SSM", "mamba-ssm"), ("a.b-_c", "a-b-c"),
    ("Friendly-Bard", "friendly-bard"), ("FRIENDLY__bard", "friendly-bard"), ("friendly.bard", "friendly-bard"),
])
def test_normalize(raw, norm):
    assert index.normalize(raw) == norm


def run_index(capsys, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    index_cmd.register(parser)
    rc = index_cmd.run(parser.parse_args(list(argv)))
    return rc, capsys.readouterr().out


def check_pep691_project(doc: dict, name: str) -> None:
    assert doc["meta"]["api-version"] == index.API_VERSION == "1.1"
    assert doc["name"] == name == index.normalize(name)
    assert isinstance(doc["versions"], list)
    for f in doc["files"]:
        assert set(f) <= {"filename", "url", "hashes", "requires-python", "size", "core-metadata",
                          "dist-info-metadata"}
        assert re.fullmatch(r"[0-9a-f]{64}", f["hashes"]["sha256"])
        assert f["url"].endswith(f["filename"].replace("+", "%2B"))


def fresh_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=180)
    return venv / "bin" / "python"


def test_the_reported_bug_each_torch_gets_its_own_channel(tmp_path, capsys):
    """Issue 19: 1.7.0+cu13torch2.9... and +cu13torch2.14... on one page: pip took the 2.9 one for torch 2.14,
    because local labels compare per segment, as strings when not numbers. Now they never share a page."""
    assert Version("1.7.0+cu13torch2.9cxx11abitrue") > Version("1.7.0+cu13torch2.14cxx11abitrue")  # the cause
    work, dist = tmp_path / "work", tmp_path / "dist"
    w214 = stamped(work, dist, "causal_conv1d", "1.7.0+cu13torch2.14cxx11abiTRUE", "cc_fx", prov("2.14.1", "13.0"),
                   requires_python=">=3.8")
    w29 = stamped(work, dist, "causal_conv1d", "1.7.0+cu13torch2.9cxx11abiTRUE", "cc_fx", prov("2.9.0", "13.0"))
    rc, out = run_index(capsys, str(dist))
    assert rc == 0 and "2 file(s), 2 channel(s)" in out
    simple = dist / "simple"
    assert sorted(p.name for p in simple.iterdir() if p.is_dir()) == [CU13_214, CU13_29]
    assert not (simple / "causal-conv1d").exists()  # no page where both compete
    for channel, whl in ((CU13_214, w214), (CU13_29, w29)):
        doc = json.loads((simple / channel / "causal-conv1d" / "index.json").read_text())
        check_pep691_project(doc, "causal-conv1d")
        assert [f["filename"] for f in doc["files"]] == [whl.name]
        assert json.loads((simple / channel / "index.json").read_text())["projects"] == [{"name": "causal-conv1d"}]
    # the printed lines: one per channel, the exact version (local label: only this channel can have it)
    pip_lines = dict(re.findall(r"channel (\S+) .*\n  pip: (.+)", out))
    assert set(pip_lines) == {CU13_214, CU13_29}
    line = pip_lines[CU13_214]
    assert f"--extra-index-url {simple.resolve().as_uri()}/{CU13_214}/" in line
    assert line.endswith("causal-conv1d==1.7.0+cu13torch2.14cxx11abitrue")
    assert "uv pip install --extra-index-url" in out and "mamba-build install --index-url file://" in out

    # a fresh venv (no torch here: --no-deps) runs the printed line; its default index is an empty one (offline)
    py = fresh_venv(tmp_path)
    argv = shlex.split(line)[3:]  # after "python -m pip"
    (tmp_path / "empty" / "simple").mkdir(parents=True)
    env = {**clean_pip_env(), "PIP_INDEX_URL": (tmp_path / "empty" / "simple").as_uri()}
    # the old line (--index-url ROOT/simple NAME) finds nothing now, instead of the wrong torch's wheel
    res = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--dry-run", "--index-url", simple.as_uri(),
                          "causal-conv1d"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode != 0 and "No matching distribution" in res.stderr
    res = subprocess.run([str(py), "-m", "pip", *argv, "--no-deps"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    got = subprocess.run([str(py), "-c", "import importlib.metadata as m; print(m.version('causal-conv1d'))"],
                         capture_output=True, text=True, timeout=60).stdout.strip()
    assert got == "1.7.0+cu13torch2.14cxx11abitrue"


def test_pep658_core_metadata_and_requires_python(tmp_path):
    work, dist = tmp_path / "work", tmp_path / "dist"
    whl = stamped(work, dist, "causal_conv1d", "1.7.0+cu12torch2.5cxx11abiFALSE", "cc_fx",
                  prov("2.5.1+cu124", "12.4", False), requires_python=">=3.9", requires=("torch", "ninja"))
    index.build_index([dist])
    meta_file = dist / (whl.name + ".metadata")
    inside = provenance.wheel_metadata(whl)
    assert meta_file.read_bytes() == inside and b"Requires-Dist: torch==2.5.*" in inside
    digest = hashlib.sha256(inside).hexdigest()
    page = dist / "simple" / "cu12-torch2.5-cxx11abiFALSE" / "causal-conv1d"
    (f,) = json.loads((page / "index.json").read_text())["files"]
    assert f["core-metadata"] == f["dist-info-metadata"] == {"sha256": digest}
    assert f["requires-python"] == ">=3.9" and f["size"] == whl.stat().st_size
    html_page = (page / "index.html").read_text()
    assert f'data-core-metadata="sha256={digest}"' in html_page and 'data-requires-python="&gt;=3.9"' in html_page
    assert f'href="../../../{whl.name.replace("+", "%2B")}#sha256={manifest.sha256_file(whl)}"' in html_page
    assert '<meta name="pypi:repository-version" content="1.1">' in html_page
    # read back from an existing page (HTML only too) with the metadata hash
    (page / "index.json").unlink()
    assert index.read_page(page)[whl.name].core_metadata_sha256 == digest


def test_merge_keeps_entries_and_moves_a_rebuilt_wheel(tmp_path, capsys):
    work, dist = tmp_path / "work", tmp_path / "dist"
    a = stamped(work, dist, "mamba_ssm", "2.2.4+cu13torch2.14cxx11abiTRUE", "ms_fx", prov("2.14.1", "13.0"))
    index.build_index([dist])
    b = stamped(work, dist, "mamba_ssm", "2.2.5+cu13torch2.14cxx11abiTRUE", "ms_fx", prov("2.14.1", "13.0"))
    rc, out = run_index(capsys, str(dist))
    assert f"new: {b.name}" in out
    page = dist / "simple" / CU13_214 / "mamba-ssm" / "index.json"
    assert {f["filename"] for f in json.loads(page.read_text())["files"]} == {a.name, b.name}
    assert "mamba-ssm==2.2.5+cu13torch2.14cxx11abitrue" in out  # the line pins the newest
    a.unlink()  # a wheel removed from ROOT keeps its entry (never drop)
    result = index.build_index([dist])
    assert result.kept == [a.name] and a.name in result.channels[CU13_214]["mamba-ssm"]


def test_merge_several_dirs_into_root(tmp_path, capsys):
    work = tmp_path / "work"
    part1, part2, public = tmp_path / "parts" / "a", tmp_path / "parts" / "b", tmp_path / "public"
    w1 = stamped(work, part1, "causal_conv1d", "1.7.0", "cc_fx", prov("2.14.1", "13.0"))
    w2 = stamped(work, part2, "mamba_ssm", "2.2.4", "ms_fx", prov("2.8.0+cu128", "12.8"))
    rc, out = run_index(capsys, str(part1), str(part2), "--out", str(public), "--json",
                        "--base-url", "https://wheels.example/mb/")
    doc = json.loads(out)
    assert sorted(doc["copied"]) == sorted([w1.name, w2.name])
    assert set(manifest.Manifest.load(public).records) == {w1.name, w2.name}
    assert set(doc["channels"]) == {CU13_214, "cu12-torch2.8-cxx11abiTRUE"}
    assert doc["channels"][CU13_214]["pip"] == ("python -m pip install --extra-index-url "
                                                f"https://wheels.example/mb/simple/{CU13_214}/ causal-conv1d==1.7.0")
    assert doc["install"] == "mamba-build install --index-url https://wheels.example/mb"
    root = json.loads((public / "simple" / "index.json").read_text())
    assert root["projects"] == [] and [c["name"] for c in root["_channels"]] == sorted(doc["channels"])
    # an existing channel page made elsewhere (HTML only, absolute URL) is merged too
    other = public / "simple" / CU13_214 / "other"
    other.mkdir()
    (other / "index.html").write_text('<a href="https://x.invalid/other-1.0-py3-none-any.whl#sha256=' + "a" * 64 +
                                      '">other-1.0-py3-none-any.whl</a>')
    result = index.build_index([public])
    assert "other-1.0-py3-none-any.whl" in result.channels[CU13_214]["other"]
    assert json.loads((other / "index.json").read_text())["files"][0]["url"].startswith("https://")


def test_old_flat_layout_is_moved_into_channels(tmp_path):
    """An index written by the old `index` (simple/<project>/ for every torch) stops serving mixed pages."""
    work, dist = tmp_path / "work", tmp_path / "dist"
    w = stamped(work, dist, "causal_conv1d", "1.7.0+cu13torch2.14cxx11abiTRUE", "cc_fx", prov("2.14.1", "13.0"))
    gone = stamped(work, dist, "causal_conv1d", "1.6.0+cu13torch2.14cxx11abiTRUE", "cc_fx", prov("2.14.1", "13.0"))
    old = dist / "simple" / "causal-conv1d"
    old.mkdir(parents=True)
    lines = [f'<a href="../../{n}#sha256={"b" * 64}">{n}</a>' for n in (w.name, gone.name, "stranger-1.0-py3-none-any.whl")]
    (old / "index.html").write_text("\n".join(lines))
    gone.unlink()  # its entry moves (the manifest knows its build), with its URL one level deeper
    result = index.build_index([dist])
    assert not old.exists()
    assert sorted(result.migrated) == sorted([w.name, gone.name]) and result.dropped == ["stranger-1.0-py3-none-any.whl"]
    entries = result.channels[CU13_214]["causal-conv1d"]
    assert entries[gone.name].url == f"../../../{gone.name}" and entries[gone.name].sha256 == "b" * 64
    assert entries[w.name].sha256 == manifest.sha256_file(w)  # the wheel present wins


def test_wheel_of_unknown_build_is_not_indexed(tmp_path, capsys):
    work, dist = tmp_path / "work", tmp_path / "dist"
    stamped(work, dist, "causal_conv1d", "1.7.0", "cc_fx", prov("2.14.1", "13.0"))
    bare = stamped(work, dist, "mamba_ssm", "2.2.4", "ms_fx", None)  # no stamp, no facts in its record
    rc, out = run_index(capsys, str(dist))
    assert "NOT indexed" in out and bare.name in out
    assert not list((dist / "simple").glob("*/mamba-ssm"))
    only = tmp_path / "only"
    stamped(tmp_path / "work2", only, "mamba_ssm", "2.2.4", "ms_fx", None)
    with pytest.raises(UsageError, match="no indexable wheels"):
        index.build_index([only])


def test_manifest_and_wheel_disagreeing_is_refused(tmp_path):
    work, dist = tmp_path / "work", tmp_path / "dist"
    whl = build_wheel(work, "causal_conv1d", "1.7.0", "cc_fx")
    provenance.stamp(whl, prov("2.14.1", "13.0"))
    manifest.finalize_wheel(whl, dist, {"torch_version": "2.9.0", "torch_cuda": "13.0", "cxx11_abi": True},
                            run_auditwheel=False)
    with pytest.raises(UsageError, match="built for torch 2.14.x.*manifest.json says torch 2.9.x"):
        index.build_index([dist])


def test_conflicting_wheel_names_are_refused(tmp_path):
    work = tmp_path / "work"
    a, b = tmp_path / "a", tmp_path / "b"
    w = stamped(work, a, "causal_conv1d", "1.7.0", "cc_fx", prov("2.14.1", "13.0"))
    b.mkdir()
    data = bytearray(w.read_bytes())
    data[-30] ^= 1
    (b / w.name).write_bytes(bytes(data))
    with pytest.raises(UsageError, match="two different wheels"):
        index.build_index([a, b])


def test_empty_dir_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError):
        index.build_index([tmp_path])
