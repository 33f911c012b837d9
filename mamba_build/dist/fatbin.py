"""What is inside a CUDA extension binary: the SASS (cubin) and PTX architectures it carries.

``list_archs(so)`` asks ``cuobjdump --list-elf --list-ptx`` (through :mod:`mamba_build.runner`)
and parses its listing with :func:`parse_cuobjdump`. Without cuobjdump it falls back to
:func:`scan_fatbin`, which reads the fat binary headers of the ELF ``.nv_fatbin`` section
directly (no NVIDIA tool needed; it cannot tell ``sm_90a`` from ``sm_90``, cuobjdump can).
``archs_in_wheel(whl)`` unions the archs of every shared object inside a wheel.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mamba_build import runner
from mamba_build.errors import ToolkitError

TOOL_FATBIN_SCAN = "elf-fatbin-scan"


@dataclass(frozen=True)
class BinaryArchs:
    """Architectures found in a binary: ``sass`` are cubins (run as is), ``ptx`` can be JIT-compiled.

    Numbers are compute capabilities times ten (80 = sm_80). ``sass_names``/``ptx_names`` keep the
    spelling of the tool (``sm_90a``, ``sm_100f``) where it gives one. ``tool`` says what read them.
    """

    sass: tuple[int, ...]
    ptx: tuple[int, ...]
    tool: str
    sass_names: tuple[str, ...] = ()
    ptx_names: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.sass and not self.ptx

    def union(self, other: BinaryArchs) -> BinaryArchs:
        return BinaryArchs(
            tuple(sorted(set(self.sass) | set(other.sass))),
            tuple(sorted(set(self.ptx) | set(other.ptx))),
            self.tool if self.tool == other.tool or not other.tool else (self.tool or other.tool),
            _sorted_names(set(self.sass_names) | set(other.sass_names)),
            _sorted_names(set(self.ptx_names) | set(other.ptx_names)),
        )


_ENTRY = re.compile(r"^\s*(ELF|PTX) file\s+\d+:\s+(\S+)\s*$")
_ARCH = re.compile(r"(?:^|[._])(?:sm|compute)_(\d+)([a-z]?)(?=\.(?:cubin|ptx)$|$)")
NO_DEVICE_CODE = "does not contain device code"


def _arch_number(name: str) -> tuple[int, str] | None:
    m = _ARCH.search(name)
    if not m:
        return None
    return int(m.group(1)), f"sm_{m.group(1)}{m.group(2)}"


def _sorted_names(names: set[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=lambda n: (int(re.sub(r"\D", "", n) or 0), n)))


def parse_cuobjdump(text: str, tool: str = "cuobjdump") -> BinaryArchs:
    """Parse the output of ``cuobjdump --list-elf --list-ptx`` (either listing or both).

    Lines look like ``ELF file    1: mod.1.sm_80.cubin`` and ``PTX file    1: mod.1.sm_90.ptx``;
    anything else (info lines such as "does not contain device code") is ignored.
    """
    sass: set[int] = set()
    ptx: set[int] = set()
    sass_names: set[str] = set()
    ptx_names: set[str] = set()
    for line in text.splitlines():
        m = _ENTRY.match(line)
        if not m:
            continue
        parsed = _arch_number(m.group(2))
        if parsed is None:
            continue
        number, name = parsed
        if m.group(1) == "ELF":
            sass.add(number)
            sass_names.add(name)
        else:
            ptx.add(number)
            ptx_names.add(name)
    return BinaryArchs(
        tuple(sorted(sass)), tuple(sorted(ptx)), tool, _sorted_names(sass_names), _sorted_names(ptx_names)
    )


def find_cuobjdump(explicit: str | os.PathLike | None = None) -> Path | None:
    """cuobjdump: ``explicit``, ``$CUDA_HOME/bin``, ``$CUDA_PATH/bin``, PATH, ``/usr/local/cuda*/bin``,
    then the copy Triton ships (``triton/backends/nvidia/bin``); None when there is none."""
    if explicit:
        cand = Path(explicit)
        return cand if cand.is_file() and os.access(cand, os.X_OK) else None
    candidates: list[Path] = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]) / "bin" / "cuobjdump")
    on_path = shutil.which("cuobjdump")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path("/usr/local/cuda/bin/cuobjdump"))
    candidates.extend(Path(p) for p in sorted(glob.glob("/usr/local/cuda-*/bin/cuobjdump"), reverse=True))
    try:
        spec = importlib.util.find_spec("triton")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(Path(loc) / "backends" / "nvidia" / "bin" / "cuobjdump")
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def list_archs(
    so_path: str | os.PathLike, cuobjdump: str | os.PathLike | None = None, *, fallback: bool = True
) -> BinaryArchs:
    """Archs compiled into ``so_path``. Empty tuples for a binary without device code.

    Uses cuobjdump when one is found (``cuobjdump`` argument first), else the ELF fat binary scan.
    Raises :class:`ToolkitError` when neither can read the file.
    """
    path = Path(so_path)
    if not path.is_file():
        raise ToolkitError(f"{path} does not exist", "pass the path of a built extension (.so)")
    tool = find_cuobjdump(cuobjdump)
    if cuobjdump and tool is None:
        raise ToolkitError(
            f"cuobjdump not found at {cuobjdump}",
            "pass the path of an executable cuobjdump, or leave it out to search for one",
        )
    problem = ""
    if tool is not None:
        res = runner.run([tool, "--list-elf", "--list-ptx", path], timeout=120)
        if res.ok:
            return parse_cuobjdump(res.stdout, tool=str(tool))
        if NO_DEVICE_CODE in res.output:
            return BinaryArchs((), (), str(tool))
        problem = f"`{res.cmdline}` failed (rc={res.returncode}): {res.output.strip()[-300:]}"
    if fallback:
        try:
            return scan_fatbin(path)
        except ValueError as exc:
            problem = (problem + "; " if problem else "") + f"fat binary scan: {exc}"
    raise ToolkitError(
        f"could not read the GPU architectures in {path}: {problem or 'no cuobjdump found'}",
        "install the CUDA toolkit's cuobjdump (set CUDA_HOME) or check that the file is an ELF shared object",
    )


# --- ELF .nv_fatbin scan (no NVIDIA tool) ------------------------------------------------------
# Fat binary layout (as written by nvcc's fatbinary): a container header
#   u32 magic 0xBA55ED50, u16 version, u16 header_size, u64 payload_size
# followed by entries, each with a header
#   u16 kind (1 = PTX, 2 = ELF/cubin), u16 version, u32 header_size, u64 payload_size, ...,
#   u32 arch at offset 28 (compute capability * 10).
_FATBIN_MAGIC = 0xBA55ED50


def scan_fatbin(so_path: str | os.PathLike) -> BinaryArchs:
    """Archs from the fat binary headers of the ELF ``.nv_fatbin`` section (64-bit little endian)."""
    data = Path(so_path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off, strtab_size = sections[shstrndx][4], sections[shstrndx][5]
    strtab = data[strtab_off : strtab_off + strtab_size]
    sass: set[int] = set()
    ptx: set[int] = set()
    for name_off, sh_type, _flags, _addr, offset, size in sections:
        name = strtab[name_off : strtab.index(b"\0", name_off)].decode("ascii", "replace")
        if name != ".nv_fatbin" or sh_type == 8:  # SHT_NOBITS holds no bytes
            continue
        blob = data[offset : offset + size]
        pos = 0
        while True:
            pos = blob.find(struct.pack("<I", _FATBIN_MAGIC), pos)
            if pos < 0 or pos + 16 > len(blob):
                break
            _magic, _ver, hsize, fsize = struct.unpack_from("<IHHQ", blob, pos)
            entry, end = pos + hsize, min(pos + hsize + fsize, len(blob))
            while entry + 32 <= end:
                kind, _v, ehsize, esize = struct.unpack_from("<HHIQ", blob, entry)
                (arch,) = struct.unpack_from("<I", blob, entry + 28)
                if ehsize == 0:
                    break
                (ptx if kind == 1 else sass if kind == 2 else set()).add(arch)
                entry += ehsize + esize
            pos = max(end, pos + 4)
    return BinaryArchs(
        tuple(sorted(sass)),
        tuple(sorted(ptx)),
        TOOL_FATBIN_SCAN,
        tuple(f"sm_{a}" for a in sorted(sass)),
        tuple(f"sm_{a}" for a in sorted(ptx)),
    )


def shared_objects_in_wheel(whl_path: str | os.PathLike) -> list[str]:
    with zipfile.ZipFile(whl_path) as zf:
        return sorted(n for n in zf.namelist() if re.search(r"\.so(\.\d+)*$", n))


def archs_in_wheel(whl_path: str | os.PathLike, cuobjdump: str | os.PathLike | None = None) -> BinaryArchs:
    """Union of the archs of every ``.so`` in the wheel (extracted to a temporary directory).

    A wheel without shared objects gives empty archs with ``tool='no shared objects'``.
    """
    members = shared_objects_in_wheel(whl_path)
    if not members:
        return BinaryArchs((), (), "no shared objects")
    result: BinaryArchs | None = None
    with tempfile.TemporaryDirectory(prefix="mamba-build-whl-") as tmp, zipfile.ZipFile(whl_path) as zf:
        for i, member in enumerate(members):
            target = Path(tmp) / f"{i}-{Path(member).name}"
            with zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            archs = list_archs(target, cuobjdump)
            result = archs if result is None else result.union(archs)
    assert result is not None
    return result


# --- dynamic symbols (the C++ ABI check of an extension against a torch) ---------------------------
# ELF64 little endian: section headers give .dynsym (SHT_DYNSYM = 11) and its string table (sh_link);
# each Elf64_Sym is u32 name, u8 info, u8 other, u16 shndx, u64 value, u64 size. shndx 0 = undefined.
_SHT_DYNSYM = 11
_SYM = struct.Struct("<IBBHQQ")
# mangled C++ names in torch's namespaces (functions, and vtables/typeinfo of their classes)
TORCH_NAMESPACES = re.compile(r"^_Z(?:T[VIS])?NK?(?:3c10|2at|5torch)")


@dataclass(frozen=True)
class DynamicSymbols:
    defined: frozenset[str]
    undefined: frozenset[str]
    needed: tuple[str, ...] = ()  # DT_NEEDED libraries


def dynamic_symbols(so_path: str | os.PathLike) -> DynamicSymbols:
    """Names in the ``.dynsym`` table of a 64-bit little-endian ELF file (no binutils needed)."""
    import mmap

    with open(so_path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ValueError(f"{so_path}: not a 64-bit little-endian ELF file")
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, _shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        defined: set[str] = set()
        undefined: set[str] = set()
        needed: list[str] = []
        for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
            if sh_type == 6:  # SHT_DYNAMIC: DT_NEEDED (1) entries point into its string table
                str_off = sections[link][4]
                for pos in range(offset, offset + size, 16):
                    tag, val = struct.unpack_from("<qQ", data, pos)
                    if tag == 0:
                        break
                    if tag == 1:
                        end = data.find(b"\0", str_off + val)
                        needed.append(data[str_off + val : end].decode("utf-8", "replace"))
            if sh_type != _SHT_DYNSYM:
                continue
            str_off = sections[link][4]
            step = entsize or _SYM.size
            for pos in range(offset + step, offset + size, step):  # entry 0 is the null symbol
                st_name, _st_info, _other, shndx, _value, _size = _SYM.unpack_from(data, pos)
                if not st_name:
                    continue
                end = data.find(b"\0", str_off + st_name)
                name = data[str_off + st_name : end].decode("utf-8", "replace")
                (undefined if shndx == 0 else defined).add(name)
    return DynamicSymbols(frozenset(defined), frozenset(undefined), tuple(needed))


def torch_libraries(torch_dir: str | os.PathLike) -> list[Path]:
    """torch's own shared libraries (``torch/lib/libtorch*.so``, ``libc10*.so``, ``libshm.so``)."""
    lib = Path(torch_dir) / "lib"
    return sorted(p for p in lib.glob("lib*.so*") if p.is_file() and re.match(r"lib(torch|c10|shm)", p.name))


def unresolved_torch_symbols(so_paths, torch_dir: str | os.PathLike) -> dict[str, list[str]]:
    """{extension file name: its undefined c10::/at::/torch:: symbols that no torch library defines}.

    Empty lists everywhere: the extension links against this torch (what ``undefined symbol`` at import
    would otherwise report). Raises ValueError when torch's libraries are not found."""
    libs = torch_libraries(torch_dir)
    if not libs:
        raise ValueError(f"no torch libraries under {Path(torch_dir) / 'lib'}")
    available: set[str] = set()
    for lib in libs:
        available |= dynamic_symbols(lib).defined
    out: dict[str, list[str]] = {}
    for so in so_paths:
        wanted = {s.split("@", 1)[0] for s in dynamic_symbols(so).undefined if TORCH_NAMESPACES.match(s)}
        out[Path(so).name] = sorted(wanted - available)
    return out
