"""Where the build and the runtime look for things outside the toolkit: the include directories the
user's environment adds (CPATH & co., searched by gcc and nvcc before the system directories), and
the driver library libcuda.so.1 as Triton finds it (TRITON_LIBCUDA_PATH, `ldconfig -p`,
LD_LIBRARY_PATH; triton/backends/nvidia/driver.py libcuda_dirs() of triton 3.8.0)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mamba_build import runner

# where NVIDIA's driver packages and container runtimes put libcuda.so.1 (Debian/Ubuntu multiarch, RHEL,
# the NVIDIA container toolkit's /usr/local/nvidia, WSL2)
DRIVER_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/local/nvidia/lib64",
    "/usr/local/nvidia/lib",
    "/usr/lib/wsl/lib",
)
INCLUDE_VARS = ("CPATH", "CPLUS_INCLUDE_PATH", "C_INCLUDE_PATH")
_CUDART = re.compile(r"#define\s+CUDART_VERSION\s+(\d+)")


@dataclass(frozen=True)
class IncludeDir:
    var: str  # the variable that names it
    path: str
    cub: bool  # holds cub/cub.cuh
    thrust: bool  # holds thrust/version.h
    cudart_version: str | None  # "12.4" from its cuda_runtime_api.h, None without one


@dataclass(frozen=True)
class LibcudaInfo:
    env_path: str | None  # $TRITON_LIBCUDA_PATH
    ldconfig_locs: tuple[str, ...]  # `ldconfig -p` lines naming libcuda.so.1 (their paths)
    ld_library_path_dirs: tuple[str, ...]  # $LD_LIBRARY_PATH dirs holding libcuda.so.1
    error: str | None = None  # ldconfig could not run
    unversioned_dirs: tuple[str, ...] = ()  # of those dirs, the ones that also hold libcuda.so (for -lcuda)
    elsewhere: tuple[str, ...] = ()  # usual driver directories holding libcuda.so.1 (for the fix)

    @property
    def dirs(self) -> tuple[str, ...]:
        """The directories triton would use, in its order (empty: triton stops with 'libcuda.so cannot found')."""
        if self.env_path:
            return (self.env_path,)
        dirs = tuple(os.path.dirname(p) for p in self.ldconfig_locs)
        return dirs or self.ld_library_path_dirs

    @property
    def found(self) -> bool:
        return any(os.path.exists(os.path.join(d, "libcuda.so.1")) for d in self.dirs)


def cudart_version(header: Path) -> str | None:
    """CUDART_VERSION of a cuda_runtime_api.h as X.Y (12040 -> 12.4)."""
    try:
        m = _CUDART.search(header.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    if not m:
        return None
    n = int(m.group(1))
    return f"{n // 1000}.{n % 1000 // 10}"


def probe_include_dirs(environ: Mapping[str, str] | None = None) -> tuple[IncludeDir, ...]:
    environ = os.environ if environ is None else environ
    out: list[IncludeDir] = []
    for var in INCLUDE_VARS:
        for d in (environ.get(var) or "").split(os.pathsep):
            if not d or not os.path.isdir(d):
                continue
            p = Path(d)
            rt = p / "cuda_runtime_api.h"
            out.append(
                IncludeDir(
                    var,
                    d,
                    (p / "cub" / "cub.cuh").exists(),
                    (p / "thrust" / "version.h").exists(),
                    cudart_version(rt) if rt.exists() else None,
                )
            )
    return tuple(out)


def parse_ldconfig(text: str) -> tuple[str, ...]:
    # each line looks like: libcuda.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcuda.so.1
    return tuple(line.split()[-1] for line in text.splitlines() if "libcuda.so.1" in line and "=>" in line)


def probe_libcuda(environ: Mapping[str, str] | None = None) -> LibcudaInfo:
    environ = os.environ if environ is None else environ
    ldconfig = "/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else shutil.which("ldconfig")
    locs: tuple[str, ...] = ()
    error = None
    if ldconfig:
        res = runner.run([ldconfig, "-p"], timeout=20)
        if res.ok:
            locs = parse_ldconfig(res.stdout)
        else:
            error = (res.stderr or res.stdout).strip()[-200:] or f"ldconfig exited {res.returncode}"
    else:
        error = "no ldconfig"
    ld_dirs = tuple(
        d
        for d in (environ.get("LD_LIBRARY_PATH") or "").split(":")
        if d and os.path.exists(os.path.join(d, "libcuda.so.1"))
    )
    info = LibcudaInfo(environ.get("TRITON_LIBCUDA_PATH") or None, locs, ld_dirs, error)
    unversioned = tuple(d for d in info.dirs if os.path.exists(os.path.join(d, "libcuda.so")))
    elsewhere = tuple(d for d in DRIVER_DIRS if os.path.exists(os.path.join(d, "libcuda.so.1")))
    return LibcudaInfo(info.env_path, locs, ld_dirs, error, unversioned, elsewhere)


# Where a triton release links its launcher with `-lcuda` (needs the unversioned libcuda.so, which only
# the driver's development package or a symlink provides): triton 2.x common/build.py and runtime/build.py
# pass "-lcuda"; 3.x releases before the switch to libcuda.so.1 list libraries = ['cuda'] in
# backends/nvidia/driver.py; 3.8.0 lists ['libcuda.so.1'].
_TRITON_FILES = ("triton/backends/nvidia/driver.py", "triton/runtime/build.py", "triton/common/build.py")
_LINKS_LCUDA = re.compile(r"""["']-lcuda["']|libraries\s*=\s*\[\s*["']cuda["']""")


def triton_links_libcuda_so(site_packages: str | os.PathLike) -> bool | None:
    """True when the installed triton links with -lcuda; None when triton's sources are not there."""
    seen = False
    for rel in _TRITON_FILES:
        try:
            text = (Path(site_packages) / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        seen = True
        if _LINKS_LCUDA.search(text):
            return True
    return False if seen else None
