"""The toolchain probe: compile, import and (on a GPU) run our own small CUDA extension.

``csrc/probe/`` holds a tiny extension built from the same ingredients as the Mamba kernels
(kernels templated over fp32/fp16/bf16 behind ``AT_DISPATCH_FLOATING_TYPES_AND2``, a
``cub::BlockScan``, launch on ``at::cuda::getCurrentCUDAStream()``, ``ATen/cuda/CUDAContext.h``,
a ``PYBIND11_MODULE(TORCH_EXTENSION_NAME, ...)`` binding). Compiling it for one arch takes well
under a minute, so it proves toolkit + host compiler + torch headers work before a long build.

* :func:`build_probe` compiles it in a child process of the target Python (mamba_build/children/probe_build.py,
  run by :mod:`mamba_build.child`) with
  ``torch.utils.cpp_extension.load`` (ninja), with ``CUDA_HOME``, ``CC`` (which torch turns into
  ``nvcc -ccbin``), ``CXX``, ``MAX_JOBS`` and explicit ``-gencode`` flags set by us, the full log
  written to a file through :func:`mamba_build.runner.stream`.
* :func:`run_probe` imports the built ``.so`` in another child (children/probe_run.py); with a GPU it runs the scan for
  fp32/fp16/bf16 and compares with ``torch.cumsum``; without one it reports *import only*
  (``ProbeRun.passed is None``), never a GPU pass.

Both return data and never print. Bad input (malformed arch, no ``nvcc`` under ``cuda_home``)
raises :class:`~mamba_build.errors.UsageError` / :class:`~mamba_build.errors.ToolkitError`.

Tolerances of the GPU comparison (``|out - ref| <= atol + rtol * |ref|`` elementwise, where
``ref = torch.cumsum(x.float(), -1)``: torch's scan over the fp32 upcast of the same inputs, x ~
N(0, 1), shape (8, 1000)). The probe accumulates in fp32 too (``at::acc_type``), so for fp16/bf16
only the final rounding differs (half an ulp, eps/2 relative). A same-dtype ``torch.cumsum`` is
no reference: on an H100 (torch 2.11) it differed from ours by up to 0.19 (fp16) and 0.5 (bf16)
at |sums| < 128 (presumably it rounds partial sums to the low precision).

=========  ========  ========
dtype      atol      rtol
=========  ========  ========
float32    1e-4      1e-5
float16    1e-3      1e-3     (~1 eps of fp16, 2x the rounding)
bfloat16   1e-2      8e-3     (~1 eps of bf16, 2x the rounding)
=========  ========  ========
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mamba_build import child, paths
from mamba_build.diagnose import explain
from mamba_build.diagnose.probes.toolkits import MATH_HEADERS
from mamba_build.errors import ToolkitError, UsageError
from mamba_build.plan import archs

MODULE_NAME = "mamba_build_probe"
SOURCES = ("probe.cpp", "probe_kernel.cu")

# (atol, rtol) per dtype; see the module docstring.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (1e-4, 1e-5),
    "float16": (1e-3, 1e-3),
    "bfloat16": (1e-2, 8e-3),
}

# Headers that ATen/cuda/CUDAContext.h (used by the probe AND by the Mamba kernels) includes
# besides the CUDA runtime. A toolkit assembled from NVIDIA's pip wheels (nvcc + cudart only)
# lacks them; torch's own pip CUDA libraries ship them under site-packages/nvidia/*/include.
LIBRARY_HEADERS = MATH_HEADERS  # one list: probes.toolkits.MATH_HEADERS


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of :func:`build_probe`. ``ok``: the extension compiled and linked."""

    ok: bool
    compile_seconds: float | None  # time of the compile+link step alone (None if it never started)
    so_path: Path | None
    log_path: Path
    error_excerpt: str | None = None
    fix: str | None = None  # what to do about a failure we recognise
    arch: str = ""
    gencode: tuple[str, ...] = ()
    include_dirs_added: tuple[Path, ...] = ()  # extra header dirs given to the compile (see build_probe)
    wall_seconds: float = 0.0  # whole child process, torch import included
    timed_out: bool = False
    import_error: str | None = None  # compiled, but loading it in the build process failed


@dataclass(frozen=True)
class ProbeRun:
    """Outcome of :func:`run_probe`.

    ``passed`` is True/False only when the kernel ran on a GPU; None means "import only" (no GPU):
    never report that as a pass.
    """

    imported: bool
    ran_on_gpu: bool
    passed: bool | None
    max_abs_err: dict[str, float] = field(default_factory=dict)
    within_tol: dict[str, bool] = field(default_factory=dict)
    tolerances: dict[str, tuple[float, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # probe_info() of the .so + device facts
    device: str | None = None
    device_arch: int | None = None  # __CUDA_ARCH__ of the kernel image that ran
    error: str | None = None

    @property
    def status(self) -> str:
        """'gpu-pass', 'gpu-fail', 'import-only' or 'import-failed'."""
        if not self.imported:
            return "import-failed"
        if not self.ran_on_gpu:
            return "import-only"
        return "gpu-pass" if self.passed else "gpu-fail"


def source_dir() -> Path:
    return paths.csrc_dir() / "probe"


def arch_gencode(arch: str) -> tuple[str, ...]:
    """'9.0' -> ('-gencode', 'arch=compute_90,code=sm_90'); '9.0a', '8.6+PTX', 'sm_90' also accepted."""
    return tuple(archs.gencode_flags([torch_arch_list_entry(arch)]))


def torch_arch_list_entry(arch: str) -> str:
    """'sm_90a' -> '9.0a': the arch as TORCH_CUDA_ARCH_LIST writes it."""
    canon = archs.parse_loose_arch(arch)
    if canon is None:
        raise UsageError(f"malformed CUDA arch {arch!r}", "give it as X.Y, e.g. --arch 9.0 (H100) or 8.0 (A100)")
    return canon


def missing_library_headers(cuda_home: Path) -> list[str]:
    """Which of :data:`LIBRARY_HEADERS` the toolkit's include dirs lack."""
    dirs = [Path(cuda_home) / "include", Path(cuda_home) / "targets" / "x86_64-linux" / "include"]
    return [h for h in LIBRARY_HEADERS if not any((d / h).is_file() for d in dirs)]


def torch_library_header_dirs(
    python: str = sys.executable, headers: Sequence[str] = LIBRARY_HEADERS, timeout: float = 60
) -> list[Path]:
    """Include dirs of the NVIDIA pip packages (installed with torch) in ``python``'s env that hold
    any of ``headers``, e.g. ``.../site-packages/nvidia/cu13/include``. Empty when there are none."""
    ran = child.run(python, "nvidia_include_dirs", [json.dumps(list(headers))], timeout=timeout)
    if not ran.result.ok or not isinstance(ran.data, list):
        return []
    return [Path(p) for p in ran.data]


def needed_include_dirs(cuda_home: Path, python: str = sys.executable) -> list[Path]:
    """Extra include dirs a build against ``cuda_home`` needs for ATen/cuda/CUDAContext.h: empty
    when the toolkit has cusparse.h & co., else torch's pip NVIDIA include dirs (may be empty too
    when torch's env has none). The real Mamba builds need the same dirs (e.g. via ``CPATH``)."""
    if not (Path(cuda_home) / "include" / "cuda_runtime_api.h").is_file():
        return []  # not a toolkit at all: adding torch's headers would only hide that
    missing = missing_library_headers(cuda_home)
    if not missing:
        return []
    return torch_library_header_dirs(python, missing)


def build_probe(
    *,
    cuda_home: Path,
    cc: str,
    cxx: str,
    arch: str = "8.0",
    python: str = sys.executable,
    workdir: Path,
    extra_nvcc_flags: Sequence[str] = (),
    extra_include_dirs: Sequence[Path] | None = None,
    max_jobs: int | None = None,
    timeout: float = 600,
) -> ProbeResult:
    """Compile the probe for one ``arch`` ("X.Y") with the given toolkit and host compilers.

    ``extra_include_dirs=None`` (default) means: when the toolkit lacks cusparse.h & co. (see
    :func:`needed_include_dirs`), add torch's pip NVIDIA include dirs; what was added is in
    ``ProbeResult.include_dirs_added``, and the real build needs the same. Pass ``()`` to add none.
    The build goes to ``workdir/probe-build`` (wiped first, so every call really compiles); the log
    to ``workdir/probe-build.log``.
    """
    cuda_home = Path(cuda_home)
    gencode = arch_gencode(arch)
    nvcc = cuda_home / "bin" / "nvcc"
    if not os.access(nvcc, os.X_OK):
        raise ToolkitError(
            f"no nvcc at {nvcc}",
            "point CUDA_HOME / --cuda-home at the CUDA toolkit's root "
            "(the directory holding bin/nvcc, e.g. /usr/local/cuda-13.0)",
        )
    src = source_dir()
    sources = [src / name for name in SOURCES]
    for s in sources:
        if not s.is_file():
            raise ToolkitError(f"probe source {s} is missing", "reinstall mamba-build from its source checkout")
    if extra_include_dirs is None:
        include_dirs = needed_include_dirs(cuda_home, python)
    else:
        include_dirs = [Path(p) for p in extra_include_dirs]

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    build_dir = workdir / "probe-build"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    log_path = workdir / "probe-build.log"

    cfg = {
        "name": MODULE_NAME,
        "sources": [str(s) for s in sources],
        "nvcc_flags": list(gencode) + list(extra_nvcc_flags),
        "include_dirs": [str(p) for p in include_dirs],
        "build_dir": str(build_dir),
        "cuda_home": str(cuda_home),
    }
    py_bin = str(Path(python).parent)  # the env's bin: ninja from pip lives there (not resolved)
    env = dict(os.environ)
    for var in ("CUDA_PATH", "CUDA_ROOT", "CUDACXX", "TORCH_EXTENSIONS_DIR"):
        env.pop(var, None)
    env.update(
        {
            "CUDA_HOME": str(cuda_home),
            "CC": cc,
            "CXX": cxx,
            "NVCC_CCBIN": cc,
            "TORCH_CUDA_ARCH_LIST": torch_arch_list_entry(arch),
            "MAX_JOBS": str(max_jobs or max(1, min(os.cpu_count() or 1, len(SOURCES)))),
            "PATH": os.pathsep.join([str(cuda_home / "bin"), py_bin, env.get("PATH", "")]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    start = time.monotonic()
    ran = child.run(python, "probe_build", [json.dumps(cfg)], log_path=log_path, timeout=timeout, cwd=workdir, env=env)
    res = ran.result
    wall = time.monotonic() - start
    payload = ran.data or {}
    so = payload.get("so_path")
    so_path = Path(so) if so and Path(so).is_file() else None
    ok = bool(payload.get("compiled")) and so_path is not None and res.ok
    excerpt = fix = None
    if not ok:
        text = _read(log_path)
        excerpt = error_excerpt(text) or payload.get("error") or res.stdout[-2000:] or res.stderr
        if res.timed_out:
            excerpt = f"timed out after {timeout:.0f}s\n" + (excerpt or "")
        fix = diagnose(
            text + "\n" + (payload.get("error") or ""),
            cuda_home=cuda_home,
            python=python,
            timed_out=res.timed_out,
            missing_program=res.missing,
        )
    return ProbeResult(
        ok=ok,
        compile_seconds=payload.get("compile_seconds"),
        so_path=so_path,
        log_path=log_path,
        error_excerpt=excerpt,
        fix=fix,
        arch=arch,
        gencode=gencode,
        include_dirs_added=tuple(include_dirs),
        wall_seconds=wall,
        timed_out=res.timed_out,
        import_error=payload.get("import_error"),
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


_ERROR_LINE = re.compile(
    r"(\berror\b|fatal error|No such file|undefined reference|unsupported|"
    r"Unsupported gpu architecture|not found)",
    re.IGNORECASE,
)


def error_excerpt(log_text: str, max_lines: int = 25) -> str | None:
    """The first compiler/linker error lines of a build log (with one line of context after)."""
    lines = log_text.splitlines()
    picked: list[str] = []
    seen: set[int] = set()
    for i, line in enumerate(lines):
        if line.startswith(("$ ", "# cwd=", "# rc=", "probe: ")):
            continue
        if _ERROR_LINE.search(line) and not line.lstrip().startswith('File "'):
            for j in (i, i + 1):
                if j < len(lines) and j not in seen:
                    seen.add(j)
                    picked.append(lines[j])
        if len(picked) >= max_lines:
            break
    return "\n".join(picked) if picked else None


def diagnose(
    text: str, *, cuda_home: Path, python: str, timed_out: bool = False, missing_program: bool = False
) -> str | None:
    """A fix for the failures we recognise in a probe build log; None when we don't."""
    if missing_program:
        return f"{python} could not be started: give the Python of the environment that has torch"
    if timed_out:
        return "the compile ran past its time limit: check the machine's load, or raise the timeout"
    hit = explain.probe_rule(text)
    if hit is None:
        return None
    rule, m = hit
    if rule.fix is not None:
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        return explain.fill(rule.fix, {"python": python, "cuda_home": str(cuda_home), **groups})
    if rule.name == "header-missing":
        header = Path(m.group("header")).name
        not_a_toolkit = not (Path(cuda_home) / "include" / "cuda_runtime_api.h").is_file()
        if header in ("cuda_runtime_api.h", "cuda_runtime.h", "cuda.h") or not_a_toolkit:
            return (
                f"{cuda_home} is not a complete CUDA toolkit (no {header}): set CUDA_HOME to the "
                "toolkit root that holds bin/nvcc and include/cuda_runtime_api.h"
            )
        if header in LIBRARY_HEADERS or header.startswith(("cusparse", "cublas", "cusolver", "curand", "cufft")):
            dirs = torch_library_header_dirs(python, [header])
            if dirs:
                where = os.pathsep.join(str(d) for d in dirs)
                return (
                    f"the toolkit at {cuda_home} has no {header} (a pip-assembled toolkit without the "
                    f"CUDA math libraries); torch's own NVIDIA packages have it: add CPATH={where} "
                    "(the probe does this itself unless extra_include_dirs is given)"
                )
            return (
                f"the toolkit at {cuda_home} has no {header}: install the CUDA math library headers "
                "(cuSPARSE, cuBLAS, cuSOLVER) for this CUDA version"
            )
        return f"a header is missing ({header}): install the package that provides it"
    return None


def run_probe(so_path: Path, python: str = sys.executable, *, timeout: float = 300, seed: int = 0) -> ProbeRun:
    """Import the built probe in a child ``python``; on a GPU, run it for fp32/fp16/bf16 against
    ``torch.cumsum`` with :data:`TOLERANCES`. Without a GPU: import only (``passed is None``)."""
    cfg = {
        "so_path": str(so_path),
        "name": MODULE_NAME,
        "seed": seed,
        "tolerances": {k: list(v) for k, v in TOLERANCES.items()},
    }
    ran = child.run(python, "probe_run", [json.dumps(cfg)], timeout=timeout, extra_env={"PYTHONDONTWRITEBYTECODE": "1"})
    res = ran.result
    payload = ran.data
    if payload is None:
        why = "timed out" if res.timed_out else f"exited with {res.returncode}"
        tail = (res.stderr or res.stdout)[-2000:]
        return ProbeRun(
            imported=False,
            ran_on_gpu=False,
            passed=False if res.timed_out else None,
            tolerances=dict(TOLERANCES),
            error=f"probe run {why}: {tail}".strip(),
        )
    error = payload.get("error")
    if error and res.stderr:
        error = error + "\n" + res.stderr[-2000:]
    return ProbeRun(
        imported=bool(payload.get("imported")),
        ran_on_gpu=bool(payload.get("ran_on_gpu")),
        passed=payload.get("passed") if payload.get("ran_on_gpu") else None,
        max_abs_err={k: float(v) for k, v in payload.get("max_abs_err", {}).items()},
        within_tol={k: bool(v) for k, v in payload.get("within_tol", {}).items()},
        tolerances=dict(TOLERANCES),
        info=dict(payload.get("info") or {}),
        device=payload.get("device"),
        device_arch=payload.get("device_arch"),
        error=error,
    )
