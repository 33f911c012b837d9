"""binary.py: the cuobjdump parser on captured real output, and real nvcc-built binaries."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from mamba_build.dist import fatbin
from mamba_build.errors import ToolkitError

DATA = Path(__file__).parent / "data" / "cuobjdump"


def test_parse_list_elf_real_output():
    archs = fatbin.parse_cuobjdump((DATA / "list-elf-sm80-sm90.txt").read_text())
    assert archs.sass == (80, 90)  # each cubin listed twice; counted once
    assert archs.ptx == ()
    assert archs.sass_names == ("sm_80", "sm_90")


def test_parse_list_ptx_real_output():
    archs = fatbin.parse_cuobjdump((DATA / "list-ptx-sm80-sm90.txt").read_text())
    assert archs.sass == () and archs.ptx == (90,)


def test_parse_combined_listing_with_arch_suffixes():
    archs = fatbin.parse_cuobjdump((DATA / "list-elf-ptx-sm90a-sm100f-compute120.txt").read_text(), tool="x")
    assert archs.sass == (90, 100)
    assert archs.ptx == (100, 120)
    assert archs.sass_names == ("sm_90a", "sm_100")
    assert archs.ptx_names == ("sm_100f", "sm_120")
    assert archs.tool == "x"


def test_parse_no_device_code_and_garbage():
    assert fatbin.parse_cuobjdump((DATA / "no-device-code.txt").read_text()).empty
    assert fatbin.parse_cuobjdump("ELF file 1: weird.cubin\nrandom text\n").empty


def test_union():
    a = fatbin.BinaryArchs((80,), (), "t", ("sm_80",), ())
    b = fatbin.BinaryArchs((90, 80), (90,), "t", ("sm_90",), ("sm_90",))
    u = a.union(b)
    assert u.sass == (80, 90) and u.ptx == (90,) and u.sass_names == ("sm_80", "sm_90")


def test_find_cuobjdump_explicit_missing(tmp_path):
    assert fatbin.find_cuobjdump(tmp_path / "nope") is None
    with pytest.raises(ToolkitError):
        fatbin.list_archs(tmp_path / "nope.so")


def test_plain_elf_has_no_device_code(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    src = tmp_path / "x.c"
    src.write_text("int f(void){return 1;}\n")
    so = tmp_path / "libx.so"
    subprocess.run([cc, "-shared", "-fPIC", str(src), "-o", str(so)], check=True)
    assert fatbin.scan_fatbin(so).empty
    assert fatbin.list_archs(so).empty


def test_scan_fatbin_rejects_non_elf(tmp_path):
    junk = tmp_path / "junk.so"
    junk.write_bytes(b"not an elf at all")
    with pytest.raises(ValueError):
        fatbin.scan_fatbin(junk)


@pytest.mark.toolchain  # real nvcc (tests/conftest.py::cuda_home)
def test_real_binary_cuobjdump_and_fatbin_scan_agree(cuda_so):
    scanned = fatbin.scan_fatbin(cuda_so)
    assert scanned.sass == (80, 90) and scanned.ptx == (90,)
    assert scanned.tool == fatbin.TOOL_FATBIN_SCAN
    tool = fatbin.find_cuobjdump()
    if tool is None:
        pytest.skip("no cuobjdump on this machine (the fat binary scan was checked)")
    archs = fatbin.list_archs(cuda_so)
    assert archs.sass == (80, 90) and archs.ptx == (90,)
    assert archs.tool == str(tool)


@pytest.mark.toolchain  # real nvcc (tests/conftest.py::cuda_home)
def test_list_archs_falls_back_without_cuobjdump(cuda_so, monkeypatch):
    monkeypatch.setattr(fatbin, "find_cuobjdump", lambda explicit=None: None)
    archs = fatbin.list_archs(cuda_so)
    assert (archs.sass, archs.ptx, archs.tool) == ((80, 90), (90,), fatbin.TOOL_FATBIN_SCAN)


@pytest.mark.toolchain  # real nvcc (tests/conftest.py::cuda_home)
def test_archs_in_wheel_unions_shared_objects(cuda_so, tmp_path):
    whl = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.write(cuda_so, "demo/_a.so")
        zf.writestr("demo/__init__.py", "")
    archs = fatbin.archs_in_wheel(whl)
    assert archs.sass == (80, 90) and archs.ptx == (90,)
    empty = tmp_path / "pure-1.0-py3-none-any.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("pure/__init__.py", "")
    assert fatbin.archs_in_wheel(empty).empty


# --- dynamic symbols: the C++ ABI check `install` runs ------------------------------------------

def _gxx(tmp_path, name, source, *extra):
    import shutil as _sh
    import subprocess as _sp

    gxx = _sh.which("g++")
    if gxx is None:
        pytest.skip("g++ not installed")
    src = tmp_path.parent / f"src-{name}.cpp"  # never next to the libraries (torch/lib/lib*.so* is globbed)
    src.write_text(source)
    out = tmp_path / name
    _sp.run([gxx, "-shared", "-fPIC", "-o", str(out), str(src), *extra], check=True, capture_output=True, timeout=120)
    return out


def test_dynamic_symbols_and_unresolved_torch_symbols(tmp_path):
    from mamba_build.dist.fatbin import dynamic_symbols, unresolved_torch_symbols

    lib = tmp_path / "torch" / "lib"
    lib.mkdir(parents=True)
    c10 = _gxx(lib, "libc10.so", "namespace c10 { int have(int x) { return x; } }\n"
                                 "namespace at { struct T { virtual ~T(); }; T::~T() {} }\n")
    ext = _gxx(tmp_path, "ext.so", "namespace c10 { int have(int); int gone(int); }\n"
                                   "namespace other { int elsewhere(); }\n"
                                   "int use(int x) { return c10::have(x) + c10::gone(x) + other::elsewhere(); }\n",
               f"-L{lib}", "-lc10")
    syms = dynamic_symbols(ext)
    assert "_ZN3c104haveEi" in syms.undefined and "_ZN3c104goneEi" in syms.undefined
    assert "_Z3usei" in syms.defined
    assert "_ZN3c104haveEi" in dynamic_symbols(c10).defined and "_ZN2at1TD2Ev" in dynamic_symbols(c10).defined
    assert "libc10.so" in syms.needed
    # c10::gone is missing from "torch"; other::elsewhere is not torch's business
    assert unresolved_torch_symbols([ext], tmp_path / "torch") == {"ext.so": ["_ZN3c104goneEi"]}
    with pytest.raises(ValueError, match="no torch libraries"):
        unresolved_torch_symbols([ext], tmp_path / "nothing")


def test_dynamic_symbols_agree_with_readelf(tmp_path):
    import shutil as _sh
    import subprocess as _sp

    from mamba_build.dist.fatbin import dynamic_symbols

    if _sh.which("readelf") is None:
        pytest.skip("readelf not installed")
    so = _gxx(tmp_path, "x.so", "#include <string>\nstd::string f(const char* s) { return s; }\n")
    out = _sp.run(["readelf", "--dyn-syms", "-W", str(so)], capture_output=True, text=True, check=True).stdout
    undefined, defined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].rstrip(":").isdigit() and parts[7]:
            (undefined if parts[6] == "UND" else defined).add(parts[7].split("@")[0])
    syms = dynamic_symbols(so)
    assert syms.undefined == undefined and syms.defined == defined
