"""Host C/C++ compilers on PATH: gcc/g++, gcc-N/g++-N, clang/clang++, conda's x86_64-conda-linux-gnu-gcc/g++
(also in the bin/ of the conda environments in play when they are not on PATH). Returns data only.

Conda's compilers come first, so that at an equal version the environment's own compiler (the one that
matches its libstdc++) is preferred to the system's."""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mamba_build import runner

VERSIONED = range(7, 16)


@dataclass(frozen=True)
class Compiler:
    kind: str  # "gcc" or "clang"
    cc: str  # path of the C compiler
    cxx: str | None  # path of the matching C++ compiler (None: C++ part missing)
    version: tuple[int, ...]  # (12, 2, 0); () when unreadable
    real: str  # realpath of cc, for de-duplication

    @property
    def major(self) -> int | None:
        return self.version[0] if self.version else None

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version)) or "?"


def parse_version(text: str) -> tuple[int, ...]:
    m = re.search(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text.strip().splitlines()[0] if text.strip() else "")
    if not m:
        return ()
    return tuple(int(g) for g in m.groups() if g is not None)


def _version(path: str, kind: str) -> tuple[int, ...]:
    if kind == "gcc":
        res = runner.run([path, "-dumpfullversion", "-dumpversion"], timeout=10)
        return parse_version(res.stdout) if res.ok else ()
    res = runner.run([path, "--version"], timeout=10)
    m = re.search(r"clang version (\d+(?:\.\d+)*)", res.stdout)
    return tuple(int(p) for p in m.group(1).split(".")) if (res.ok and m) else ()


# conda-forge's gcc_linux-64 / gxx_linux-64 (and the aarch64 / ppc64le builds) name their drivers this way
CONDA_TRIPLETS = ("x86_64-conda-linux-gnu", "aarch64-conda-linux-gnu", "powerpc64le-conda-linux-gnu")


def candidate_names() -> list[tuple[str, str, str]]:
    names = [("gcc", f"{t}-gcc", f"{t}-g++") for t in CONDA_TRIPLETS]
    names += [("gcc", "gcc", "g++"), ("clang", "clang", "clang++")]
    names += [("gcc", f"gcc-{n}", f"g++-{n}") for n in VERSIONED]
    names += [("clang", f"clang-{n}", f"clang++-{n}") for n in range(10, 22)]
    return names


def probe_compilers(path: str | None = None, conda_prefixes: tuple[str, ...] = ()) -> tuple[Compiler, ...]:
    search = path if path is not None else os.environ.get("PATH", "")
    extra = [os.path.join(p, "bin") for p in conda_prefixes if os.path.join(p, "bin") not in search.split(os.pathsep)]
    if extra:
        search = os.pathsep.join([search, *extra]) if search else os.pathsep.join(extra)
    found: list[tuple[str, str, str | None]] = []
    for kind, cc_name, cxx_name in candidate_names():
        cc = shutil.which(cc_name, path=search)
        if cc:
            found.append((kind, cc, shutil.which(cxx_name, path=search)))
    cc_env = os.environ.get("CC")
    exe = shutil.which(cc_env.split()[0], path=search) if cc_env else None
    if exe:
        guess = "clang" if "clang" in os.path.basename(exe) else "gcc"
        cxx_env = os.environ.get("CXX")
        found.append((guess, exe, shutil.which(cxx_env.split()[0], path=search) if cxx_env else None))

    def describe(item: tuple[str, str, str | None]) -> Compiler:
        kind, cc, cxx = item
        return Compiler(kind, cc, cxx, _version(cc, kind), os.path.realpath(cc))

    with ThreadPoolExecutor(max_workers=4) as pool:
        compilers = list(pool.map(describe, found))
    unique: dict[str, Compiler] = {}
    for comp in compilers:
        # keep the most specific name per real binary (gcc-12 over gcc), but keep both if versions differ
        key = comp.real
        if key not in unique or (os.path.basename(comp.cc) != comp.kind and comp.cxx):
            unique[key] = comp
    return tuple(sorted(unique.values(), key=lambda c: (c.kind, c.version), reverse=True))
