"""Find every CUDA toolkit on the machine and describe each one. Returns data only.

Places looked at: $CUDA_HOME / $CUDA_PATH, `nvcc` on PATH resolved through symlinks AND wrapper
scripts, /usr/local/cuda*, /opt/cuda*, /usr/lib/cuda, conda prefixes, `nvidia/cuda_nvcc` inside
site-packages, and toolkits assembled by `mamba-build toolchain install`.

Conda environments (``$CONDA_PREFIX``, and the environment of ``--python`` when it has ``conda-meta/``)
lay a toolkit out differently from NVIDIA's installers (conda-forge's cuda-nvcc / cuda-cudart-dev /
cuda-cccl recipes, and the nvidia channel's): ``bin/nvcc`` (its nvcc.profile points at
``$(_TARGET_DIR_)``), ``nvvm/``, and the headers and libraries under ``targets/x86_64-linux/include``
and ``targets/x86_64-linux/lib`` (``lib/`` holds symlinks to the libraries, ``include/`` no CUDA header).
Such a prefix is a toolkit here like any other; :attr:`Toolkit.include_dirs` says where its headers are,
because torch's cpp_extension adds only ``$CUDA_HOME/include`` for the host compiler.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mamba_build import paths, runner

# Headers torch's ATen/cuda/CUDAContextLight.h includes: the CUDA math libraries' (not the compiler's).
# A toolkit without them (e.g. a compiler-only install) fails every torch CUDA extension build.
MATH_HEADERS = ("cusparse.h", "cublas_v2.h", "cublasLt.h", "cusolverDn.h")

# Where system toolkits live (tests point this at a temporary tree).
SYSTEM_GLOBS = (
    "/usr/local/cuda",
    "/usr/local/cuda-*",
    "/opt/cuda",
    "/opt/cuda-*",
    "/usr/lib/cuda",
    "/opt/nvidia/hpc_sdk/Linux_*/*/cuda/*",
)

_WRAPPER_TARGET = re.compile(r"""(?:^|[\s"'=])(/[^\s"';|&]*?/bin/nvcc)(?=$|[\s"';|&])""", re.M)


@dataclass(frozen=True)
class NvccOnPath:
    path: str  # what `which nvcc` returns
    resolved: str | None  # the real nvcc binary after links and wrapper scripts
    chain: tuple[str, ...]  # every hop: link targets and wrapper scripts
    via_wrapper: bool


@dataclass(frozen=True)
class Toolkit:
    home: str  # the directory CUDA_HOME must point at
    sources: tuple[str, ...]  # how it was found ("$CUDA_HOME", "nvcc on PATH", "/usr/local/cuda*", ...)
    nvcc: str | None
    version: str | None  # "13.0"
    version_full: str | None  # "13.0.88"
    nvcc_error: str | None
    has_runtime_headers: bool  # cuda_runtime_api.h
    has_cub: bool
    archs: tuple[int, ...]  # SM numbers nvcc accepts (compute_XX), from --list-gpu-arch
    archs_source: str  # "nvcc --list-gpu-arch" or "table" or "none"
    gcc_max: int | None  # from the toolkit's own crt/host_config.h
    clang_max: int | None
    host_config: str | None
    managed: bool  # assembled by mamba-build
    missing_math_headers: tuple[str, ...] = ()  # of MATH_HEADERS
    include_dirs: tuple[str, ...] = ()  # where its cuda_runtime_api.h is: include/, or targets/<arch>/include (conda)

    @property
    def usable(self) -> bool:
        return bool(self.nvcc and self.version and self.has_runtime_headers)


def is_script(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


def resolve_nvcc(path: str, max_hops: int = 8) -> NvccOnPath:
    """Follow symlinks and shell wrappers (`exec /real/bin/nvcc "$@"`) to the real nvcc binary."""
    chain: list[str] = [path]
    current = path
    via_wrapper = False
    for _ in range(max_hops):
        real = os.path.realpath(current)
        if real != current:
            chain.append(real)
            current = real
        if not is_script(current):
            return NvccOnPath(path, current if os.path.isfile(current) else None, tuple(chain), via_wrapper)
        try:
            text = Path(current).read_text(encoding="utf-8", errors="replace")[:20000]
        except OSError:
            break
        targets = [t for t in _WRAPPER_TARGET.findall(text) if os.path.realpath(t) != os.path.realpath(current)]
        existing = [t for t in targets if os.path.exists(t)]
        if not existing:  # a script that names no other nvcc: it is the end of the chain
            return NvccOnPath(path, current, tuple(chain), via_wrapper)
        via_wrapper = True
        current = existing[0]
        chain.append(current)
    return NvccOnPath(path, None, tuple(chain), via_wrapper)


def nvcc_home_from_dryrun(nvcc: str, timeout: float = 15.0) -> str | None:
    """Ask nvcc itself where it lives (`-dryrun` prints `_HERE_=<real bin dir>`): sees through any wrapper."""
    res = runner.run([nvcc, "-dryrun", "-E", "-x", "cu", os.devnull, "-o", os.devnull], timeout=timeout)
    m = re.search(r"^#\$ _HERE_=(.+)$", res.output, re.M)
    if m:
        return os.path.dirname(os.path.realpath(m.group(1).strip()))
    return None


def parse_nvcc_version(text: str) -> tuple[str | None, str | None]:
    """'Cuda compilation tools, release 13.0, V13.0.88' -> ('13.0', '13.0.88'); garbage -> (None, None)."""
    m = re.search(r"release (\d+)\.(\d+)(?:,\s*V(\d+\.\d+\.\d+))?", text)
    if not m:
        return None, None
    return f"{int(m.group(1))}.{int(m.group(2))}", m.group(3)


def parse_gpu_arch_list(text: str) -> tuple[int, ...]:
    nums = {int(m) for m in re.findall(r"\bcompute_(\d+)[a-z]?\b", text)}
    return tuple(sorted(nums))


def _include_dirs(home: Path) -> list[Path]:
    dirs = [home / "include"]
    dirs += [Path(p) for p in sorted(glob.glob(str(home / "targets" / "*" / "include")))]
    return dirs


def _find_header(home: Path, *rel: str) -> Path | None:
    for inc in _include_dirs(home):
        for r in rel:
            if (inc / r).exists():
                return inc / r
    return None


def conda_prefix_of(python: str | None) -> str | None:
    """The conda environment ``python`` belongs to (its prefix holds ``conda-meta/``), else None."""
    if not python:
        return None
    prefix = Path(python).parent.parent
    return str(prefix) if (prefix / "conda-meta").is_dir() else None


def looks_like_toolkit(home: Path) -> bool:
    return (home / "nvvm").is_dir() or _find_header(home, "cuda_runtime_api.h") is not None


def candidate_homes(
    environ: dict[str, str] | None = None, extra_site_dirs: list[str] | None = None, python: str | None = None
) -> tuple[dict[str, list[str]], NvccOnPath | None]:
    """Map toolkit home -> how it was found. Also returns what `nvcc` on PATH really is.
    ``python``: the target interpreter; its conda environment (if it is one) is searched too."""
    env = os.environ if environ is None else environ
    found: dict[str, list[str]] = {}

    def add(home: str | os.PathLike | None, source: str) -> None:
        if not home:
            return
        home_p = Path(home)
        if not (home_p / "bin" / "nvcc").exists() and not source.startswith("$"):
            return
        where = found.setdefault(os.path.realpath(home_p), [])
        if source not in where:
            where.append(source)

    for var in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT", "CUDA_TOOLKIT_ROOT_DIR"):
        add(env.get(var), f"${var}")
    on_path = None
    which = shutil.which("nvcc", path=env.get("PATH"))
    if which:
        on_path = resolve_nvcc(which)
        home = Path(on_path.resolved).parent.parent if on_path.resolved else None
        if home is not None and looks_like_toolkit(home):
            add(home, "nvcc on PATH" + (" (through a wrapper)" if on_path.via_wrapper else ""))
        else:  # an opaque wrapper: ask nvcc where it really lives
            real_home = nvcc_home_from_dryrun(which)
            if real_home:
                add(real_home, "nvcc on PATH (located by nvcc -dryrun)")
                on_path = NvccOnPath(
                    which,
                    str(Path(real_home) / "bin" / "nvcc"),
                    on_path.chain + (str(Path(real_home) / "bin" / "nvcc"),),
                    True,
                )
    for pattern in SYSTEM_GLOBS:
        for hit in sorted(glob.glob(pattern)):
            add(hit, pattern)
    for var in ("CONDA_PREFIX",):
        if env.get(var):
            add(env[var], f"${var}")
    target_env = conda_prefix_of(python)
    if target_env:
        add(target_env, "conda environment of --python")
    for site in extra_site_dirs if extra_site_dirs is not None else [p for p in sys.path if "site-packages" in p]:
        add(Path(site) / "nvidia" / "cuda_nvcc", "site-packages nvidia/cuda_nvcc")
    managed = paths.toolchains_dir(create=False)
    if managed.is_dir():
        for child in sorted(managed.iterdir()):
            if child.is_dir() and not child.name.startswith(".") and ".tmp" not in child.name:
                add(child, "mamba-build toolchain")
    return found, on_path


def describe(home: str, sources: list[str], timeout: float = 20.0) -> Toolkit:
    from mamba_build.plan.host_compiler import parse_host_config

    home_p = Path(home)
    nvcc = home_p / "bin" / "nvcc"
    version = full = err = None
    archs: tuple[int, ...] = ()
    archs_source = "none"
    if nvcc.exists():
        res = runner.run([str(nvcc), "--version"], timeout=timeout)
        version, full = parse_nvcc_version(res.stdout)
        if not res.ok or version is None:
            err = (res.stderr or res.stdout).strip()[-300:] or f"exit code {res.returncode}"
            version = None if not res.ok else version
        if version:
            arch_res = runner.run([str(nvcc), "--list-gpu-arch"], timeout=timeout)
            archs = parse_gpu_arch_list(arch_res.stdout) if arch_res.ok else ()
            archs_source = "nvcc --list-gpu-arch" if archs else "none"
    else:
        err = f"{nvcc} does not exist"
    if version and not archs:
        from mamba_build import tables

        rel = tables.cuda_release(version)
        if rel:
            archs, archs_source = rel.archs, "table"
    host_config = _find_header(home_p, "crt/host_config.h")
    gcc_max = clang_max = None
    if host_config:
        try:
            limits = parse_host_config(host_config.read_text(encoding="utf-8", errors="replace"))
            gcc_max, clang_max = limits.gcc_max, limits.clang_max
        except OSError:
            pass
    managed_root = os.path.realpath(paths.toolchains_dir(create=False))
    return Toolkit(
        home=home,
        sources=tuple(sources),
        nvcc=str(nvcc) if nvcc.exists() else None,
        version=version,
        version_full=full,
        nvcc_error=err,
        has_runtime_headers=_find_header(home_p, "cuda_runtime_api.h") is not None,
        has_cub=_find_header(home_p, "cub/cub.cuh", "cccl/cub/cub.cuh") is not None,
        archs=archs,
        archs_source=archs_source,
        gcc_max=gcc_max,
        clang_max=clang_max,
        host_config=str(host_config) if host_config else None,
        managed=os.path.realpath(home).startswith(managed_root + os.sep),
        missing_math_headers=tuple(h for h in MATH_HEADERS if _find_header(home_p, h) is None),
        include_dirs=tuple(str(d) for d in _include_dirs(home_p) if (d / "cuda_runtime_api.h").exists()),
    )


def probe_toolkits(
    environ: dict[str, str] | None = None, python: str | None = None
) -> tuple[tuple[Toolkit, ...], NvccOnPath | None]:
    homes, on_path = candidate_homes(environ, python=python)
    with ThreadPoolExecutor(max_workers=4) as pool:
        toolkits = list(pool.map(lambda item: describe(item[0], item[1]), homes.items()))
    return tuple(toolkits), on_path
