"""The build plan: one frozen object resolved from options + the environment before anything runs.

`compile --dry-run` prints it; the pipeline only executes it. Every choice carries its reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from mamba_build import paths
from mamba_build.build.build_tools import BuildOverlay
from mamba_build.diagnose.checks import resolve_target
from mamba_build.diagnose.checks.compilers import nearest_torch_bounds, toolkit_limit
from mamba_build.diagnose.checks.cuda import build_include_dirs
from mamba_build.diagnose.environment import Environment, to_jsonable
from mamba_build.dist.channels import Channel
from mamba_build.errors import EnvironmentProblem, SourceError, ToolkitError, UsageError
from mamba_build.plan import archs as archs_mod
from mamba_build.plan import job_count
from mamba_build.plan.launcher import LauncherChoice
from mamba_build.plan.packages import PACKAGES
from mamba_build.plan.toolkit_choice import validate_cuda_version

ALL_PACKAGES = PACKAGES  # the default of --package
T = TypeVar("T")


@dataclass(frozen=True)
class CompileOptions:
    """What the user asked for (CLI flags), before resolution."""

    cuda: str | None = None
    packages: tuple[str, ...] = ALL_PACKAGES
    versions: dict[str, str] = field(default_factory=dict)  # {"mamba-ssm": "2.2.6.post3"}
    sources: dict[str, str] = field(default_factory=dict)  # {"causal-conv1d": "/path/or/git+url@ref"}
    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    arch: str = "native"
    jobs: int | None = None
    nvcc_threads: int | None = None
    split_compile: int | None = None  # None: decide; 0: nvcc decides; -1: off
    use_ninja: bool = True
    wheel_dir: str | None = None
    install: bool = True
    patch_torch: str = "process"  # or "inplace"
    allow_unsupported_compiler: bool = False
    provision: bool = True  # install a toolkit when none usable is found (--no-provision: never)
    python: str | None = None
    build_dir: str | None = None
    keep_build: bool = False
    use_cache: bool = True
    timeout: float = 3 * 3600.0
    schedule: str | None = None  # None: decide; "pool" (one jobserver, packages at once) or "sequential"
    split_units: bool | None = None  # None: decide (on with 4+ jobs)
    rerun_smoke: bool = False  # smoke-test verified cache hits again
    triton_warmup: bool = True  # run Mamba2 from mamba-ssm's source tree while the wheels build (--no-triton-warmup)
    build_frontend: str = "backend"  # --build-frontend: backend (PEP 517 build_wheel) / installer (pip wheel, uv build)
    launcher: str = "none"  # --launcher: none / auto / ccache / sccache / a path to one (mamba_build/plan/launcher.py)
    install_deps: bool = True  # install the packages' missing runtime requirements first (--no-deps: refuse)
    skip_missing_deps: bool = False  # --skip-missing-deps: neither install nor refuse; list them and build


@dataclass(frozen=True)
class PackagePlan:
    name: str  # "causal-conv1d"
    version: str | None  # None: whatever the source tree holds
    source: str  # "pypi", git URL@ref, directory, archive
    extension_module: str
    env_prefix: str
    # The switches that turn the CUDA extension ON in both generations of upstream's setup.py: the releases
    # (up to mamba-ssm 2.3.2.post1) build it unless <P>SKIP_CUDA_BUILD=TRUE; mamba's main branch (July 2026,
    # ../shared/upstream/mamba-main-setup.py) only when <P>KEEP_CUDA_BUILD=TRUE. The recipes skip-cuda-build-off /
    # keep-cuda-build-on force whichever the source has (the patch step says which); both are set as well.
    cuda_build_env: dict[str, str] | None = field(default=None, compare=False)  # filled from env_prefix

    def __post_init__(self) -> None:
        if self.cuda_build_env is None:
            object.__setattr__(
                self,
                "cuda_build_env",
                {f"{self.env_prefix}SKIP_CUDA_BUILD": "FALSE", f"{self.env_prefix}KEEP_CUDA_BUILD": "TRUE"},
            )


@dataclass(frozen=True)
class CompilerPlan:
    cc: str
    cxx: str
    version: str
    reason: str
    unsupported_override: bool


class _Flat(Generic[T]):
    """One flat name of the plan (its JSON key, and what its readers use), read from one of its parts:
    ``plan.cuda_home`` is ``plan.toolkit.home``."""

    def __init__(self, part: str, attr: str) -> None:
        self.part, self.attr = part, attr

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Flat[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return getattr(getattr(obj, self.part), self.attr)


@dataclass(frozen=True)
class TorchPlan:
    """The target environment's torch, and what the build does with its cpp_extension."""

    python: str
    version: str
    cuda: str
    cxx11_abi: bool
    patch_torch: str  # "process" or "inplace"
    # torch's CUDA_GCC_VERSIONS entry for the toolkit, as the build process patches it in
    compiler_bounds: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]
    local_version: str  # the wheels' +local version (the channel)
    cxx_std: str | None = None  # "20": setup.py's -std=c++17 raised to what torch's headers require
    cxx_std_reason: str = ""


@dataclass(frozen=True)
class ToolkitPlan:
    home: str
    version: str
    reason: str
    include_dirs: tuple[str, ...] = ()  # added through CPATH: a conda toolkit's targets/*/include, math headers
    # the toolkit `compile` installs (installed) first because none usable was found
    # (mamba_build/toolchain/provision.py): {"cuda", "reason", "home", "how", "command"}; None: the toolkit was
    # already there
    provision: dict[str, str] | None = None


@dataclass(frozen=True)
class SchedulePlan:
    """What is compiled for which archs, how many at a time, in which order, and how long it should take."""

    archs: tuple[str, ...]
    archs_reason: str
    jobs: int
    jobs_reason: str
    nvcc_threads: int
    split_compile: int | None  # None: off
    split_reason: str
    use_ninja: bool
    kind: str = "sequential"  # "pool": one jobserver for every build, packages at the same time
    reason: str = ""
    ninja: str | None = None  # the ninja the builds run (its directory goes first on PATH)
    nvcc_jobserver: bool = False  # nvcc --jobserver: nvcc's threads (per arch, split-compile's) take the pool's slots
    split_units: bool = False  # split_units patch recipes (the longest unit split per instantiation)
    split_units_reason: str = ""
    pool_order: tuple[str, ...] = ()  # kind "pool": the packages' order, ties of the unit order (costs.py)
    pool_order_reason: str = ""
    # nvcc --threads, why (mamba_build/plan/costs.py choose_threads), and the build time the costs table predicts
    nvcc_threads_reason: str = ""
    predicted_build_s: float | None = None  # max(longest unit, cpu_work_s / jobs), one-core s of the 2-core machine
    cpu_work_s: float | None = None  # CPU seconds of the units (one core), the same units
    cpu_bound_s: float | None = None  # cpu_work_s / jobs: the CPU-work bound
    prediction_reason: str = ""
    # what turns a source tree into a wheel (mamba_build/build/frontend.py), and why
    frontend: str = "backend"
    frontend_reason: str = ""


@dataclass(frozen=True)
class OutputPlan:
    """Where things go and how the run behaves."""

    wheel_dir: str
    build_dir: str
    install: bool
    index_url: str | None
    find_links: tuple[str, ...]
    keep_build: bool
    use_cache: bool
    timeout: float


@dataclass(frozen=True)
class SmokePlan:
    gpu_present: bool
    gpus: tuple[str, ...] = ()  # names of the visible GPUs (a stored smoke verdict must match)
    rerun: bool = False  # smoke-test verified cache hits again
    # Triton's caches filled for the Mamba2 check while the wheels build (smoke/triton_warmup.py), and why (not)
    triton_warmup: bool = False
    triton_warmup_reason: str = ""


@dataclass(frozen=True)
class BuildPlan:
    """The plan, made of its parts. The flat names below (the keys of its JSON, in order) read from them."""

    packages: tuple[PackagePlan, ...]
    torch: TorchPlan
    toolkit: ToolkitPlan
    compiler: CompilerPlan
    scheduling: SchedulePlan
    output: OutputPlan
    smoke: SmokePlan
    # compiler launcher in front of nvcc (mamba_build/plan/launcher.py; not part of the wheel cache key)
    launcher_choice: LauncherChoice = field(default_factory=LauncherChoice)
    # what builds and installs into the target: its own pip, mamba-build's pip --python, or uv
    # (mamba_build/plan/installer.py)
    installer: Any = None  # installer.Installer (None: the target's own pip)
    runtime_deps: Any = None  # runtime_deps.RuntimeDeps: the packages' runtime requirements missing from the target
    # build tools the target environment lacks or cannot provide, on the build's PYTHONPATH only (build_tools.py)
    build_overlay: BuildOverlay | None = None

    python = _Flat[str]("torch", "python")
    torch_version = _Flat[str]("torch", "version")
    torch_cuda = _Flat[str]("torch", "cuda")
    cxx11_abi = _Flat[bool]("torch", "cxx11_abi")
    cuda_home = _Flat[str]("toolkit", "home")
    cuda_version = _Flat[str]("toolkit", "version")
    toolkit_reason = _Flat[str]("toolkit", "reason")
    archs = _Flat[tuple[str, ...]]("scheduling", "archs")
    archs_reason = _Flat[str]("scheduling", "archs_reason")
    jobs = _Flat[int]("scheduling", "jobs")
    jobs_reason = _Flat[str]("scheduling", "jobs_reason")
    nvcc_threads = _Flat[int]("scheduling", "nvcc_threads")
    split_compile = _Flat["int | None"]("scheduling", "split_compile")
    split_reason = _Flat[str]("scheduling", "split_reason")
    use_ninja = _Flat[bool]("scheduling", "use_ninja")
    wheel_dir = _Flat[str]("output", "wheel_dir")
    build_dir = _Flat[str]("output", "build_dir")
    install = _Flat[bool]("output", "install")
    patch_torch = _Flat[str]("torch", "patch_torch")
    compiler_bounds = _Flat[dict[str, tuple[tuple[int, ...], tuple[int, ...]]]]("torch", "compiler_bounds")
    local_version = _Flat[str]("torch", "local_version")
    index_url = _Flat["str | None"]("output", "index_url")
    find_links = _Flat[tuple[str, ...]]("output", "find_links")
    keep_build = _Flat[bool]("output", "keep_build")
    use_cache = _Flat[bool]("output", "use_cache")
    gpu_present = _Flat[bool]("smoke", "gpu_present")
    timeout = _Flat[float]("output", "timeout")
    include_dirs = _Flat[tuple[str, ...]]("toolkit", "include_dirs")
    schedule = _Flat[str]("scheduling", "kind")
    schedule_reason = _Flat[str]("scheduling", "reason")
    ninja = _Flat["str | None"]("scheduling", "ninja")
    nvcc_jobserver = _Flat[bool]("scheduling", "nvcc_jobserver")
    split_units = _Flat[bool]("scheduling", "split_units")
    split_units_reason = _Flat[str]("scheduling", "split_units_reason")
    pool_order = _Flat[tuple[str, ...]]("scheduling", "pool_order")
    pool_order_reason = _Flat[str]("scheduling", "pool_order_reason")
    rerun_smoke = _Flat[bool]("smoke", "rerun")
    gpus = _Flat[tuple[str, ...]]("smoke", "gpus")
    triton_warmup = _Flat[bool]("smoke", "triton_warmup")
    triton_warmup_reason = _Flat[str]("smoke", "triton_warmup_reason")
    build_frontend = _Flat[str]("scheduling", "frontend")
    build_frontend_reason = _Flat[str]("scheduling", "frontend_reason")
    cxx_std = _Flat["str | None"]("torch", "cxx_std")
    cxx_std_reason = _Flat[str]("torch", "cxx_std_reason")
    launcher = _Flat[str]("launcher_choice", "name")  # none / ccache / sccache
    launcher_path = _Flat["str | None"]("launcher_choice", "path")
    launcher_version = _Flat[str]("launcher_choice", "version")
    launcher_reason = _Flat[str]("launcher_choice", "reason")
    launcher_cache_dir = _Flat["str | None"]("launcher_choice", "cache_dir")
    launcher_host_units = _Flat[bool]("launcher_choice", "host_units")
    launcher_env = _Flat[dict[str, str]]("launcher_choice", "env")
    launcher_path_prepend = _Flat["str | None"]("launcher_choice", "path_prepend")
    nvcc_threads_reason = _Flat[str]("scheduling", "nvcc_threads_reason")
    predicted_build_s = _Flat["float | None"]("scheduling", "predicted_build_s")
    cpu_work_s = _Flat["float | None"]("scheduling", "cpu_work_s")
    cpu_bound_s = _Flat["float | None"]("scheduling", "cpu_bound_s")
    prediction_reason = _Flat[str]("scheduling", "prediction_reason")
    provision = _Flat["dict[str, str] | None"]("toolkit", "provision")

    def with_(self, **changes: Any) -> BuildPlan:
        """A copy with fields changed, flat names included: ``plan.with_(jobs=6)`` sets ``plan.scheduling.jobs``."""
        top: dict[str, Any] = {}
        parts: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            flat = type(self).__dict__.get(key)
            if isinstance(flat, _Flat):
                parts.setdefault(flat.part, {})[flat.attr] = value
            else:
                top[key] = value
        for part, kw in parts.items():
            top[part] = replace(getattr(self, part), **kw)
        return replace(self, **top)

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON of `compile --dry-run --json` (keys: JSON_KEYS, in that order)."""
        return {key: to_jsonable(getattr(self, key)) for key in JSON_KEYS}

    def installer_for(self):
        """The plan's installer (mamba_build/plan/installer.py); the target's own pip where none was chosen."""
        from mamba_build.plan.installer import default

        return self.installer or default(self.python)

    def env_for(self, pkg: PackagePlan, makeflags: str | None = None) -> dict[str, str]:
        """Environment variables of the build process of one package.

        ``makeflags``: the jobserver's MAKEFLAGS (schedule "pool"); MAX_JOBS is then left unset,
        because ninja ignores a jobserver when torch passes it ``-j``.
        """
        toolkit_bin = str(Path(self.cuda_home) / "bin")
        path = [toolkit_bin]
        if self.ninja:
            path.append(str(Path(self.ninja).parent))
        env = {
            "CUDA_HOME": self.cuda_home,
            "CUDA_PATH": self.cuda_home,
            "PATH": os.pathsep.join([*dict.fromkeys(path), os.environ.get("PATH", "")]),
            "CC": self.compiler.cc,
            "CXX": self.compiler.cxx,
            "NVCC_CCBIN": self.compiler.cxx,
            "TORCH_CUDA_ARCH_LIST": archs_mod.torch_arch_list(self.archs),
            f"{pkg.env_prefix}FORCE_BUILD": "TRUE",
            **(pkg.cuda_build_env or {}),  # set by __post_init__
            f"{pkg.env_prefix}FORCE_CXX11_ABI": "TRUE" if self.cxx11_abi else "FALSE",
            f"{pkg.env_prefix}LOCAL_VERSION": self.local_version,
            "PIP_NO_BUILD_ISOLATION": "0",  # pip's inverted spelling: "0" disables isolation
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        if self.build_overlay is not None:  # build-only tools: first on PYTHONPATH (and PATH), the env untouched
            env.update(self.build_overlay.env(env["PATH"]))
        if self.include_dirs:
            env["CPATH"] = os.pathsep.join([*self.include_dirs, *filter(None, [os.environ.get("CPATH")])])
        nvcc_append = []
        if self.compiler.unsupported_override:
            nvcc_append.append("-allow-unsupported-compiler")
        if makeflags:
            env["MAKEFLAGS"] = makeflags
            if self.nvcc_jobserver:
                nvcc_append.append("--jobserver")
        else:
            env["MAX_JOBS"] = str(self.jobs)
        if nvcc_append:
            env["NVCC_APPEND_FLAGS"] = " ".join(nvcc_append)
        # --- launcher (ccache / sccache in front of nvcc; mamba_build/plan/launcher.py) ---
        if self.launcher_env or self.launcher_path_prepend:
            from mamba_build.plan.launcher import apply as _apply_launcher

            _apply_launcher(env, self.launcher_env, self.launcher_path_prepend)
        # --- end launcher ---
        return env


# The plan's JSON keys, in their order (add, never rename: scripts and the index read them).
JSON_KEYS = (
    "packages",
    "python",
    "torch_version",
    "torch_cuda",
    "cxx11_abi",
    "cuda_home",
    "cuda_version",
    "toolkit_reason",
    "compiler",
    "archs",
    "archs_reason",
    "jobs",
    "jobs_reason",
    "nvcc_threads",
    "split_compile",
    "split_reason",
    "use_ninja",
    "wheel_dir",
    "build_dir",
    "install",
    "patch_torch",
    "compiler_bounds",
    "local_version",
    "index_url",
    "find_links",
    "keep_build",
    "use_cache",
    "gpu_present",
    "timeout",
    "include_dirs",
    "schedule",
    "schedule_reason",
    "ninja",
    "nvcc_jobserver",
    "split_units",
    "split_units_reason",
    "pool_order",
    "pool_order_reason",
    "rerun_smoke",
    "gpus",
    "cxx_std",
    "cxx_std_reason",
    "launcher",
    "launcher_path",
    "launcher_version",
    "launcher_reason",
    "launcher_cache_dir",
    "launcher_host_units",
    "launcher_env",
    "launcher_path_prepend",
    "installer",
    "runtime_deps",
    "build_overlay",
    "nvcc_threads_reason",
    "predicted_build_s",
    "cpu_work_s",
    "cpu_bound_s",
    "prediction_reason",
    "provision",
    "triton_warmup",
    "triton_warmup_reason",
    "build_frontend",
    "build_frontend_reason",
)


def _resolve_archs(
    opts: CompileOptions, env: Environment, toolkit_archs: tuple[int, ...]
) -> tuple[tuple[str, ...], str]:
    spec = archs_mod.parse_arch_list(opts.arch, allow_keywords=True)
    gpus = [g for g in env.gpus.gpus if g.compute_capability]
    if spec == ("native",):
        if not gpus:
            raise UsageError(
                "no GPU is visible, so `--arch native` has nothing to build for",
                "name the target archs explicitly, e.g. --arch 8.0,9.0 (8.0 = A100, 8.6 = RTX 30xx, 8.9 = L4/RTX 40xx, "
                "9.0 = H100, 10.0 = B200, 12.0 = RTX 50xx)",
            )
        archs = tuple(dict.fromkeys(g.compute_capability for g in gpus if g.compute_capability))
        reason = "the visible GPUs: " + ", ".join(f"{g.name} ({g.compute_capability})" for g in gpus)
    elif spec == ("all",):
        archs = tuple(f"{a // 10}.{a % 10}" for a in toolkit_archs)
        reason = "every arch the toolkit accepts (nvcc --list-gpu-arch)"
    else:
        archs, reason = spec, "--arch"
    bad = [a for a in archs if toolkit_archs and archs_mod.sm_number(a) not in toolkit_archs]
    if bad:
        accepted = ", ".join(f"{a // 10}.{a % 10}" for a in toolkit_archs)
        raise UsageError(
            f"the toolkit cannot target {', '.join(bad)} (it accepts {accepted})",
            "pick archs from that list, or another toolkit with --cuda X.Y",
        )
    return archs, reason


def _resolve_compiler(env: Environment, target, opts: CompileOptions) -> CompilerPlan:
    from mamba_build.diagnose.checks.compilers import host_compiler_choice

    choice = host_compiler_choice(env, target, allow_unsupported=opts.allow_unsupported_compiler)
    return CompilerPlan(
        cc=choice.cc,
        cxx=choice.cxx,
        version=".".join(map(str, choice.version)),
        reason=choice.reason,
        unsupported_override=choice.unsupported_override,
    )


def _split_compile(opts: CompileOptions, env: Environment, jobs: int) -> tuple[int | None, str]:
    """nvcc --split-compile: 0 (nvcc uses every core for one unit) when cores and memory allow.

    The critical path of these builds is ONE translation unit (causal_conv1d_bwd.cu: 228 s cicc +
    182 s ptxas for one arch), so splitting each unit across all cores is what shortens the build;
    measured on the 16-core H100 machine: causal-conv1d sm_90 8:40 -> 2:29. It costs memory (about
    6.1 GB per nvcc job instead of 3.4), which the job count below is reduced for.
    """
    if opts.split_compile is not None:
        if opts.split_compile < 0:
            return None, "--no-split-compile"
        return opts.split_compile, f"--split-compile {opts.split_compile}"
    cpus = env.resources.cpus
    mem = env.resources.mem_available_gb
    if cpus < 4:
        return None, f"off: {cpus} CPUs leave nothing to split across"
    if mem is not None and job_count.PER_JOB_SPLIT_GB + job_count.HEADROOM_GB > mem:
        return None, f"off: one nvcc job with split-compile needs {job_count.PER_JOB_SPLIT_GB} GB, {mem:.0f} GiB free"
    return 0, (
        f"0 = nvcc splits each unit across all {cpus} CPUs (the longest unit is the critical path; "
        "measured on H100: causal-conv1d sm_90 8:40 -> 2:29)"
    )


_CPLUSPLUS = {"201703": "17", "202002": "20", "202302": "23"}


def torch_cxx_std(torch_file: str | None) -> tuple[str | None, str]:
    """The C++ standard the installed torch's headers demand, read from its ATen/ATen.h
    (`#if ... __cplusplus < 202002L / #error C++20 or later ...` in torch 2.14), and why."""
    if not torch_file:
        return None, "torch's headers not found"
    header = Path(torch_file).parent / "include" / "ATen" / "ATen.h"
    try:
        text = header.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, f"{header} not readable"
    import re

    m = re.search(r"__cplusplus\s*<\s*(\d{6})L?[^\n]*\n\s*#\s*error[^\n]*", text)
    std = _CPLUSPLUS.get(m.group(1)) if m else None
    if std is None or std == "17":
        return None, f"{header.name} needs no more than C++17"
    return std, f"{header} stops anything older than C++{std} (#error), and setup.py asks for c++17"


def _split_units(opts: CompileOptions, jobs: int, *, pool: bool, archs, nvcc_threads: int) -> tuple[bool, str]:
    """split_units recipes on or off: where the measured costs (mamba_build/plan/costs.py) predict it faster."""
    from mamba_build.plan.costs import choose_split_units

    if opts.split_units is not None:
        return opts.split_units, "--split-units" if opts.split_units else "--no-split-units"
    choice = choose_split_units(opts.packages, jobs, pool=pool, archs=archs, nvcc_threads=nvcc_threads)
    if choice is not None:
        return choice.split, choice.reason
    if jobs >= 4:  # a package without measured costs: the longest unit is likely the critical path on many slots
        return True, (
            f"{jobs} jobs: the longest unit (causal_conv1d_bwd.cu, 446 s of one core for sm_90) would be "
            "the critical path; its 18 instantiations become units that run in parallel"
        )
    return False, f"{jobs} jobs: splitting only adds front-end work when the cores are busy anyway"


def _split_compile_needed(
    opts: CompileOptions,
    jobs: int,
    split: int,
    reason: str,
    nvcc_js: bool,
    *,
    split_units: bool,
    archs,
    nvcc_threads: int,
    paced: bool = False,
) -> tuple[int | None, str, bool]:
    """Automatic split-compile stays on only where one unit, not the total work, bounds the build: where the
    units outnumber the slots, every slot is busy with a whole unit anyway, and nvcc's threads would only
    oversubscribe the CPUs (or, through the jobserver, take slots from units waiting to start). ``paced``: nvcc's
    per-arch threads already take the slots that free up (the jobserver paces them)."""
    from mamba_build.plan.costs import bound

    b = bound(opts.packages, jobs, split_units=split_units, archs=archs, nvcc_threads=nvcc_threads)
    if b is None:
        return split, reason, nvcc_js
    longest, spread = b
    if spread >= longest and paced:
        return (
            None,
            (
                f"off: the total work bounds the build, not one unit (predicted {spread:.0f} s of CPU per slot "
                f"against the longest unit's {longest:.0f} s with its archs side by side, data/build_costs.toml); "
                "the slots that free up at the end take the last units' archs (nvcc --threads, paced by the "
                "pool's jobserver)"
            ),
            False,
        )
    if spread >= longest and nvcc_threads > 1:
        return (
            None,
            (
                f"off: at --threads {nvcc_threads} the longest unit ({longest:.0f} s) no longer outlasts the work "
                f"per slot ({spread:.0f} s, data/build_costs.toml), so split-compile's threads would only "
                "oversubscribe the CPUs"
            ),
            False,
        )
    if spread >= longest:
        return (
            None,
            (
                f"off: the total work bounds the build, not one unit (predicted {spread:.0f} s of CPU per slot "
                f"against the longest unit's {longest:.0f} s, data/build_costs.toml), so every slot is busy "
                "with a whole unit and nvcc's threads would only oversubscribe the CPUs"
            ),
            False,
        )
    return (
        split,
        reason + f" (predicted: the longest unit {longest:.0f} s, the total work {spread:.0f} s per slot)",
        nvcc_js,
    )


def _nvcc_threads(
    opts: CompileOptions, jobs: int, *, pool: bool, archs, split_units: bool, jobserver: bool = False
) -> tuple[int, str]:
    """nvcc --threads. ``jobserver``: the pool's jobserver can pace nvcc's threads (nvcc --jobserver): one per
    arch, each beyond the first on a slot that is free. Without it, threads only where slots would otherwise
    idle (mamba_build/plan/costs.py choose_threads), else 1, since unpaced threads oversubscribe the CPUs."""
    from mamba_build.plan.costs import choose_threads

    if opts.nvcc_threads:
        return opts.nvcc_threads, "--nvcc-threads"
    if jobserver and len(archs) > 1:
        n = len(archs)
        return n, (
            f"{n}: one per arch, paced by the pool's jobserver (nvcc --jobserver): each arch beyond a unit's first "
            f"compiles only on a free slot, so never more than {jobs} compiles run at once; while every slot is "
            "busy a unit compiles its archs one by one, and at the end of the build the last units' archs take "
            "the slots the others released (issue 17: at nine archs the last units ran alone for minutes)"
        )
    groups = [list(opts.packages)] if pool else [[p] for p in opts.packages]
    choices = [choose_threads(g, jobs, split_units=split_units, archs=archs) for g in groups]
    known = [c for c in choices if c is not None]
    if choices and len(known) == len(choices):
        best = max(known, key=lambda c: c.threads)
        return best.threads, best.reason
    t = max(1, min(len(archs), 4))
    return t, f"{t}: one per arch, at most 4 (a package here has no measured costs in data/build_costs.toml)"


def _prediction(
    opts: CompileOptions, jobs: int, *, pool: bool, archs, split_units: bool, nvcc_threads: int
) -> tuple[float | None, float | None, float | None, str]:
    """(predicted build s, CPU work s, CPU-work bound s, the line that says how) from data/build_costs.toml."""
    from mamba_build.plan.costs import bound

    groups = [list(opts.packages)] if pool else [[p] for p in opts.packages]
    maybe = [bound(g, jobs, split_units=split_units, archs=archs, nvcc_threads=nvcc_threads) for g in groups]
    terms = [t for t in maybe if t is not None]
    if not maybe or len(terms) != len(maybe):
        return None, None, None, "no prediction: a package here has no measured costs in data/build_costs.toml"
    predicted = sum(max(t) for t in terms)
    cpu_bound = sum(t[1] for t in terms)
    work = cpu_bound * jobs
    longest = max(t[0] for t in terms)
    how = f"max(longest unit {longest:.0f} s, CPU work {work:.0f} s / {jobs} slots = {cpu_bound:.0f} s)" + (
        "" if pool or len(groups) == 1 else ", per package, one after the other"
    )
    return (
        predicted,
        work,
        cpu_bound,
        (
            f"{how}; one-core seconds of the 2-core machine (data/build_costs.toml), "
            f"{len(archs)} arch{'s' if len(archs) != 1 else ''} weighted by their "
            "measured cost; the whole command adds setup.py and torch's import per package, the links, the smoke test"
        ),
    )


def _pool_reason(nvcc_js: bool, jobs: int) -> str:
    return (
        "one ninja builds every package's units, the longest first (mamba_build/build/ninja_pool.py), while each "
        "package's wheel build runs as usual"
        + (
            f"; it and nvcc's threads (nvcc --jobserver) share one jobserver of {jobs} slots"
            if nvcc_js
            else f", {jobs} units at a time"
        )
    )


def _schedule(opts: CompileOptions, python: str, nvcc: str | None, split: int | None, installer=None, ninja=None):
    """(schedule, reason, ninja path, nvcc --jobserver) -- see mamba_build/build/jobserver.py. ``ninja``: the
    NinjaInfo the builds run (found, or the build-only overlay's); None: looked up here."""
    from mamba_build.build.jobserver import NINJA_JOBSERVER_MIN, find_ninja, nvcc_supports_jobserver
    from mamba_build.plan.installer import UV

    if opts.schedule not in (None, "pool", "sequential"):
        raise UsageError(f"--schedule {opts.schedule!r}", "use --schedule pool or --schedule sequential")
    ninja = (ninja or find_ninja(python)) if opts.use_ninja else None
    ninja_path = ninja.path if ninja else None
    if opts.schedule == "sequential":
        return "sequential", "--schedule sequential: one package after the other, MAX_JOBS each", ninja_path, False
    if not opts.use_ninja:
        return "sequential", "ninja off: setuptools compiles the units one by one", None, False
    if installer is not None and installer.kind == UV:
        why = (
            "uv build puts the environment's bin/ first on PATH, so torch runs the ninja there, never the "
            "pool's (mamba_build/build/ninja_pool.py)"
        )
        if opts.schedule == "pool":
            raise UsageError(
                f"--schedule pool: {why}",
                "build with pip: put pip >= 22.3 into mamba-build's "
                "environment (it then runs for the target with pip's --python option)",
            )
        return "sequential", f"{why}: one package after the other, MAX_JOBS each", ninja_path, False
    if not ninja.joins_jobserver:
        need = ".".join(map(str, NINJA_JOBSERVER_MIN))
        why = f"ninja {ninja.version_text} ({ninja.path}) cannot join a jobserver (needs >= {need})"
        if opts.schedule == "pool":
            raise UsageError(f"--schedule pool: {why}", f"{python} -m pip install 'ninja>={need}'")
        return "sequential", f"{why}: one package after the other, MAX_JOBS each", ninja_path, False
    nvcc_js = bool(nvcc and split is not None and nvcc_supports_jobserver(nvcc))
    return "pool", "", ninja_path, nvcc_js  # the reason: _pool_reason, once the job count is known


def resolve_plan(opts: CompileOptions, env: Environment) -> BuildPlan:
    from mamba_build.plan.packages import package_info

    t = env.python.torch
    if not t.importable or not t.cuda:
        why = "is not importable" if not t.importable else "is a CPU-only build"
        raise EnvironmentProblem(
            f"torch in {env.python.executable} {why}",
            "run `mamba-build doctor` for the fix (a CUDA build of torch is needed to build CUDA extensions)",
        )
    cuda = validate_cuda_version(opts.cuda) if opts.cuda else None
    target = resolve_target(env, cuda)
    tk = target.toolkit
    if tk is None:
        want = cuda or t.cuda
        found = ", ".join(sorted({f"{x.version} ({x.home})" for x in env.toolkits if x.usable})) or "none"
        raise ToolkitError(
            f"no usable CUDA {want} toolkit found (found: {found})",
            f"run `mamba-build toolchain install --cuda {want}` (no root needed), leave out "
            f"--no-provision to let compile do it, or install CUDA {want} and set CUDA_HOME",
        )
    # resolve_target picks only usable toolkits (those have a version); an importable torch has one
    assert tk.version is not None and t.version is not None
    if tk.version.split(".")[0] != t.cuda.split(".")[0]:
        raise ToolkitError(
            f"nvcc {tk.version} ({tk.home}) and torch's CUDA {t.cuda} differ in major version",
            f"use a CUDA {t.cuda.split('.')[0]}.x toolkit (`mamba-build toolchain install --cuda {t.cuda}`; "
            "compile does it itself unless --no-provision) or a torch built for that CUDA major",
        )
    if not tk.has_cub:
        raise ToolkitError(
            f"{tk.home} lacks the CCCL/cub headers the Mamba kernels include",
            f"mamba-build toolchain install --cuda {tk.version}",
        )
    archs, archs_reason = _resolve_archs(opts, env, tk.archs)
    compiler = _resolve_compiler(env, target, opts)
    rec = job_count.recommend_jobs(env.resources.cpus, env.resources.mem_available_gb)
    njobs = opts.jobs if opts.jobs else rec.jobs
    jobs_reason = "--jobs" if opts.jobs else rec.reason
    split, split_reason = _split_compile(opts, env, njobs)
    from mamba_build.plan.installer import choose as choose_installer

    inst = choose_installer(env.python.executable, env.python.packages.get("pip"))
    overlay, ninja = _build_overlay(opts, env)
    schedule, schedule_reason, ninja_path, nvcc_js = _schedule(opts, env.python.executable, tk.nvcc, split, inst, ninja)
    if split is not None and not opts.jobs and not nvcc_js:  # keep memory in bounds with split-compile's larger jobs
        # (with nvcc --jobserver every split thread takes a slot, so the slots already bound memory)
        rec2 = job_count.recommend_jobs(env.resources.cpus, env.resources.mem_available_gb, split_compile=True)
        if rec2.jobs < njobs:
            njobs, jobs_reason = rec2.jobs, rec2.reason
    # units split or whole at one thread per unit (threads help only where slots idle: decided after)
    split_units, split_units_reason = _split_units(
        opts, njobs, pool=schedule == "pool", archs=archs, nvcc_threads=opts.nvcc_threads or 1
    )
    from mamba_build.build.jobserver import nvcc_supports_jobserver

    # nvcc's threads paced by the pool's jobserver where this nvcc can join it (archs > 1: else nothing to pace)
    paced = schedule == "pool" and len(archs) > 1 and bool(tk.nvcc) and nvcc_supports_jobserver(tk.nvcc)
    nvcc_threads, nvcc_threads_reason = _nvcc_threads(
        opts, njobs, pool=schedule == "pool", archs=archs, split_units=split_units, jobserver=paced
    )
    threads_paced = paced and nvcc_threads > 1
    if split is not None and opts.split_compile is None:
        split, split_reason, nvcc_js = _split_compile_needed(
            opts,
            njobs,
            split,
            split_reason,
            nvcc_js,
            split_units=split_units,
            archs=archs,
            nvcc_threads=nvcc_threads,
            paced=threads_paced,
        )
    nvcc_js = nvcc_js or threads_paced
    predicted_s, cpu_work_s, cpu_bound_s, prediction_reason = _prediction(
        opts, njobs, pool=schedule == "pool", archs=archs, split_units=split_units, nvcc_threads=nvcc_threads
    )
    if schedule == "pool":
        schedule_reason = _pool_reason(nvcc_js, njobs)
    pool_order: tuple[str, ...] = ()
    pool_order_reason = ""
    if schedule == "pool" and len(opts.packages) > 1:
        from mamba_build.plan.costs import pool_order as _pool_order

        pool_order, pool_order_reason = _pool_order(opts.packages, split_units)
    cxx_std, cxx_std_reason = torch_cxx_std(t.file)
    bounds: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    # torch's CUDA_GCC_VERSIONS entry for this toolkit (added in the build process, or replaced: its upper bound
    # from the toolkit's host_config.h); a minor torch's map lacks (13.1+ for torch 2.14) takes the lower bound
    # of the newest minor of the same major it has
    gcc_b = nearest_torch_bounds(env, target, "gcc")
    limit = toolkit_limit(target, "gcc")
    if limit is not None:
        lo = tuple(gcc_b[0]) if gcc_b else (6, 0, 0)
        bounds[tk.version] = (lo, (limit + 1, 0))
    channel = Channel.of(t.version, t.cuda, bool(t.cxx11_abi))
    assert channel is not None  # all three are known here
    local_version = channel.local_version  # same CUDA major as tk
    versions = resolve_versions(opts, tk.version, t.version)
    pkgs = []
    for name in opts.packages:
        info = package_info(name)
        pkgs.append(
            PackagePlan(
                info.name,
                versions.get(info.name),
                opts.sources.get(info.name, "pypi"),
                info.extension_module,
                info.env_prefix,
            )
        )
    if opts.patch_torch not in ("process", "inplace"):
        raise UsageError(f"--patch-torch {opts.patch_torch!r}", "use --patch-torch process (default) or inplace")
    return BuildPlan(
        packages=tuple(pkgs),
        torch=TorchPlan(
            python=env.python.executable,
            version=t.version,
            cuda=t.cuda,
            cxx11_abi=bool(t.cxx11_abi),
            patch_torch=opts.patch_torch,
            compiler_bounds=bounds,
            local_version=local_version,
            cxx_std=cxx_std,
            cxx_std_reason=cxx_std_reason,
        ),
        toolkit=ToolkitPlan(
            home=tk.home, version=tk.version, reason=target.reason, include_dirs=tuple(build_include_dirs(env, tk))
        ),
        compiler=compiler,
        scheduling=SchedulePlan(
            archs=archs,
            archs_reason=archs_reason,
            jobs=njobs,
            jobs_reason=jobs_reason,
            nvcc_threads=nvcc_threads,
            split_compile=split,
            split_reason=split_reason,
            use_ninja=opts.use_ninja,
            kind=schedule,
            reason=schedule_reason,
            ninja=ninja_path,
            nvcc_jobserver=nvcc_js,
            split_units=split_units,
            split_units_reason=split_units_reason,
            pool_order=pool_order,
            pool_order_reason=pool_order_reason,
            nvcc_threads_reason=nvcc_threads_reason,
            predicted_build_s=predicted_s,
            cpu_work_s=cpu_work_s,
            cpu_bound_s=cpu_bound_s,
            prediction_reason=prediction_reason,
            **_frontend(opts),
        ),
        output=OutputPlan(
            wheel_dir=str(Path(opts.wheel_dir or "wheelhouse").resolve()),
            build_dir=str(Path(opts.build_dir).resolve()) if opts.build_dir else str(paths.builds_dir()),
            install=opts.install,
            index_url=opts.index_url,
            find_links=opts.find_links,
            keep_build=opts.keep_build,
            use_cache=opts.use_cache,
            timeout=opts.timeout,
        ),
        smoke=SmokePlan(
            gpu_present=bool(env.gpus.gpus),
            gpus=tuple(g.name for g in env.gpus.gpus),
            rerun=opts.rerun_smoke,
            **_triton_warmup(opts, bool(env.gpus.gpus), [p.name for p in pkgs]),
        ),
        installer=inst,
        build_overlay=overlay,
    )


def _frontend(opts: CompileOptions) -> dict:
    from mamba_build.build import frontend

    name, why = frontend.choose(opts.build_frontend)
    return {"frontend": name, "frontend_reason": why}


def _triton_warmup(opts: CompileOptions, gpu: bool, packages: list[str]) -> dict:
    """Whether a child runs the smoke test's Mamba2 block from mamba-ssm's source tree while the wheels build
    (mamba_build/build/smoke/triton_warmup.py), so that Triton's cache holds its kernels when the smoke test starts."""
    if not opts.triton_warmup:
        on, why = False, "off (--no-triton-warmup): the smoke test compiles Mamba2's Triton kernels itself"
    elif not gpu:
        on, why = False, "off: no GPU, the smoke test runs no Mamba2 block"
    elif "mamba-ssm" not in packages:
        on, why = False, "off: mamba-ssm is not built, no Mamba2 block"
    else:
        on, why = (
            True,
            (
                "on: while the wheels build, a child runs the smoke test's Mamba2 block from mamba-ssm's source tree "
                "(causal-conv1d's conv in plain torch), so Triton's cache holds its kernels when the smoke test starts "
                "(~100 s on a machine whose cache is empty); Triton keeps autotuning's results in that cache too "
                "(TRITON_CACHE_AUTOTUNING=1 for the smoke test's children)"
            ),
        )
    return {"triton_warmup": on, "triton_warmup_reason": why}


def _build_overlay(opts: CompileOptions, env: Environment):
    """(the build-only overlay or None, the NinjaInfo the builds run or None) -- mamba_build/build/build_tools.py."""
    from mamba_build.build.build_tools import plan_overlay
    from mamba_build.build.jobserver import NinjaInfo, find_ninja, parse_ninja_version

    ninja = find_ninja(env.python.executable) if opts.use_ninja else None
    overlay = plan_overlay(env.python, ninja_missing=ninja is not None and ninja.path is None)
    if overlay is not None and overlay.ninja:
        version = next(t.version for t in overlay.tools if t.name == "ninja")
        ninja = NinjaInfo(overlay.ninja, parse_ninja_version(version), f"{version} (build-only overlay)")
    return overlay, ninja


def resolve_versions(opts: CompileOptions, cuda_version: str, torch_version: str | None = None) -> dict[str, str]:
    """Pinned versions as given; PyPI-sourced packages without a pin get the newest buildable release
    (for ``torch_version``: see ``packages.default_version``).

    Known-incompatible pairs are refused (UsageError) whether pinned or defaulted.
    """
    from mamba_build.build import sources
    from mamba_build.plan import packages

    versions = {k: v for k, v in opts.versions.items() if v}
    if "mamba-ssm" in versions and "causal-conv1d" in versions:
        packages.check_pair(versions["mamba-ssm"], versions["causal-conv1d"])
    for name, version in versions.items():
        if opts.sources.get(name, "pypi") == "pypi":
            ok, why = packages.version_supported(name, version, cuda_version)
            if not ok:
                info = packages.package_info(name)
                raise SourceError(
                    f"{name}=={version}: {why}",
                    f"pin >= {info.first_complete_sdist}, or build that version from git or a tarball: "
                    f"--source {name}={info.git_source_hint(version)}",
                )
    missing = [n for n in opts.packages if n not in versions and opts.sources.get(n, "pypi") == "pypi"]
    if missing:
        available = {
            n: sources.available_versions(n, opts.index_url, opts.find_links or None)
            for n in ALL_PACKAGES
            if n in missing
        }
        if set(missing) == set(ALL_PACKAGES):
            versions.update(packages.default_versions(torch_version, available, cuda_version))
        else:
            for n in missing:
                versions[n] = packages.default_version(n, available[n], torch_version, cuda_version)
    if "mamba-ssm" in versions and "causal-conv1d" in versions:
        packages.check_pair(versions["mamba-ssm"], versions["causal-conv1d"])
    return versions
