"""torch, driver, GPUs, toolkits, torch's CUDA_HOME guess, torch CUDA vs nvcc, GPU archs."""

from __future__ import annotations

import os

from mamba_build import tables
from mamba_build.diagnose.checks.base import Check, Target, fail, ok, skip, warn
from mamba_build.diagnose.environment import Environment
from mamba_build.diagnose.probes.toolkits import Toolkit
from mamba_build.tables import version_tuple


def cuda_tag(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"cu{major}{minor}"


def torch_install_fix(env: Environment, cuda: str | None = None) -> str:
    """The command that installs a CUDA build of torch matching a toolkit on this machine."""
    py = env.python.executable
    usable = sorted((t for t in env.toolkits if t.usable), key=lambda t: version_tuple(t.version or ""))
    cuda = cuda or (usable[-1].version if usable else None) or "12.8"
    return (
        f"{py} -m pip install --force-reinstall torch --index-url "
        f"https://download.pytorch.org/whl/{cuda_tag(cuda)}  (a CUDA {cuda} build; the default PyPI "
        f"wheel of torch {tables.major_minor(env.python.torch.version) if env.python.torch.version else 'X.Y'} "
        f"is CUDA {tables.torch_pypi_cuda(env.python.torch.version or '0.0') or 'see pytorch.org'})"
    )


def check_torch(env: Environment) -> Check:
    t = env.python.torch
    py = env.python.executable
    if not t.version and not t.importable:
        return fail(
            "torch",
            "torch is not installed in this environment",
            f"{py} -m pip install torch  (mamba-build never installs torch for you)",
        )
    if not t.importable:
        return fail(
            "torch",
            f"torch {t.version or ''} does not import: {t.error}",
            f"{py} -m pip install --force-reinstall torch=={(t.version or '').split('+')[0]}",
            details=t.error or "",
        )
    abi = "on" if t.cxx11_abi else "off"
    if t.hip:
        return fail(
            "torch",
            f"torch {t.version} is a ROCm build (HIP {t.hip}): unsupported by mamba-build",
            "use a CUDA build of torch; ROCm builds of mamba-ssm are not handled by this tool",
        )
    if not t.cuda:
        return fail(
            "torch", f"torch {t.version} is a CPU-only build (torch.version.cuda is None)", torch_install_fix(env)
        )
    return ok("torch", f"torch {t.version}, CUDA {t.cuda}, C++11 ABI {abi}", f"at {t.file}")


def check_torch_version(env: Environment) -> Check:
    """Pre-release, nightly and vendor builds of torch (explain id torch-version-unparsable)."""
    from packaging.version import InvalidVersion, Version

    v = env.python.torch.version
    if not v:
        return skip("torch-version", "torch is not installed")
    try:
        ver = Version(v)
    except InvalidVersion:
        return fail(
            "torch-version",
            f"torch's version {v!r} is not a valid version: setup.py code that parses it "
            "(packaging.version) stops with InvalidVersion",
            "use a release build of torch (pypi.org or download.pytorch.org)",
        )
    release = v.split("+")[0].split(".")
    if ver.is_prerelease or ver.is_devrelease or not all(p.isdigit() for p in release):
        return warn(
            "torch-version",
            f"torch {v} is a pre-release, nightly or vendor build: setup.py code that "
            "turns its version into numbers (int() of each part) stops with `invalid literal for int()`, "
            "and no prebuilt wheel is made for it",
            "nothing to do for mamba-build compile (it builds from source); for other packages use a "
            "release build of torch",
            details=f"torch.__version__ = {v}",
        )
    return ok("torch-version", f"torch {v} is a release build")


def check_driver(env: Environment, target: Target) -> list[Check]:
    g = env.gpus
    if not g.nvidia_smi:
        return [
            warn(
                "driver",
                "no NVIDIA driver found (nvidia-smi missing): nothing can run on a GPU here",
                "builds still work with an explicit arch list, e.g. mamba-build compile --arch 8.0,9.0; "
                "install the NVIDIA driver to run them",
            )
        ]
    if g.error or not g.driver_version:
        return [
            warn(
                "driver",
                f"nvidia-smi failed: {g.error or 'no driver version'}",
                "check the driver with `nvidia-smi`; in containers pass --gpus all",
            )
        ]
    checks = [ok("driver", f"NVIDIA driver {g.driver_version} (supports CUDA up to {g.driver_cuda or '?'})")]
    needs = []
    if target.toolkit and target.toolkit.version:
        needs.append(("toolkit", target.toolkit.version))
    if env.python.torch.cuda:
        needs.append(("torch", env.python.torch.cuda))
    for who, cuda in needs:
        checks.append(_driver_vs(g.driver_version, cuda, who))
    return checks


def _driver_vs(driver: str, cuda: str, who: str) -> Check:
    cid = f"driver-vs-{who}"
    rel = tables.cuda_release(cuda)
    major = int(cuda.split(".")[0])
    compat = tables.minor_compat_driver(major)
    if rel is not None and rel.min_driver is None:  # not recorded (data/cuda.toml): judged by minor compatibility
        if compat and version_tuple(driver) >= version_tuple(compat):
            return warn(
                cid,
                f"driver {driver} runs CUDA {cuda} ({who}) at least through minor-version compatibility "
                f"(>= {compat}); the driver that fully supports {cuda} is not recorded in mamba-build's data",
                f"nothing to do for building; to JIT-compile PTX of CUDA {cuda} the driver of that release is "
                "needed (NVIDIA's CUDA release notes, table 3)",
            )
        rel = None
    if rel and rel.min_driver and version_tuple(driver) >= version_tuple(rel.min_driver):
        return ok(cid, f"driver {driver} >= {rel.min_driver} needed by CUDA {cuda} ({who})")
    if compat and version_tuple(driver) >= version_tuple(compat):
        return warn(
            cid,
            f"driver {driver} runs CUDA {cuda} ({who}) only through minor-version compatibility "
            f"(full support from {rel.min_driver if rel else '?'})",
            f"upgrade the NVIDIA driver to >= {rel.min_driver if rel else compat} to use PTX JIT and every feature",
            details="CUDA minor version compatibility: binaries built with any "
            f"{major}.x toolkit run on drivers >= {compat}, but PTX of a newer minor cannot be JIT-compiled",
        )
    need = rel.min_driver if rel else compat or "?"
    return fail(
        cid,
        f"driver {driver} is too old for CUDA {cuda} ({who}), which needs >= {need}",
        f"upgrade the NVIDIA driver to >= {need}, or use a toolkit/torch of an older CUDA",
    )


def check_gpus(env: Environment) -> Check:
    g = env.gpus
    if not g.gpus:
        return warn(
            "gpus",
            "no GPU visible: the arch list must be given (--arch 8.0,9.0), and the smoke test can only import",
            "mamba-build compile --arch X.Y (your GPUs' compute capability)",
        )
    desc = ", ".join(f"#{x.index} {x.name} (sm_{(x.compute_capability or '?').replace('.', '')})" for x in g.gpus)
    return ok("gpus", desc)


def check_toolkits(env: Environment, target: Target) -> list[Check]:
    checks: list[Check] = []
    if not env.toolkits:
        want = target.cuda or env.python.torch.cuda or "12.8"
        fix = (
            f"mamba-build toolchain install --cuda {want}  (no root needed; `mamba-build compile` does it itself), "
            f"or install the CUDA {want} toolkit and export CUDA_HOME=/usr/local/cuda-{want}"
        )
        runtime_only = [p for p in env.conda_prefixes if _has_cudart(p)]
        if runtime_only:  # e.g. `conda install cudatoolkit==11.8`: the runtime libraries, no compiler
            return [
                fail(
                    "toolkits",
                    f"no CUDA toolkit found: the conda environment {runtime_only[0]} has the CUDA "
                    "runtime libraries (libcudart) but no nvcc (conda's `cudatoolkit` package ships no compiler)",
                    f"conda install -c nvidia cuda-nvcc={want} cuda-cudart-dev={want} cuda-cccl={want}  "
                    f"(in that environment); or {fix}",
                )
            ]
        checks.append(fail("toolkits", "no CUDA toolkit found (no nvcc anywhere)", fix))
        return checks
    for tk in env.toolkits:
        cid = f"toolkit:{tk.home}"
        how = ", ".join(tk.sources)
        if not tk.nvcc:
            checks.append(
                fail(
                    cid,
                    f"{tk.home} ({how}) has no bin/nvcc: not a CUDA toolkit",
                    "unset that variable or point it at a real toolkit (a directory with bin/nvcc and "
                    "include/cuda_runtime_api.h)",
                )
            )
            continue
        if not tk.version:
            checks.append(
                warn(
                    cid,
                    f"{tk.home}: `nvcc --version` gave no readable version",
                    f"run {tk.nvcc} --version by hand; reinstall the toolkit if it fails",
                    details=tk.nvcc_error or "",
                )
            )
            continue
        limits = f"gcc <= {tk.gcc_max}" if tk.gcc_max else "gcc limit unknown"
        if tk.clang_max:
            limits += f", clang <= {tk.clang_max}"
        archs = ",".join(f"sm_{a}" for a in tk.archs) or "?"
        summary = f"CUDA {tk.version_full or tk.version} at {tk.home} ({how}); {limits}"
        details = (
            f"nvcc {tk.nvcc}; archs ({tk.archs_source}): {archs}; host_config {tk.host_config}; "
            f"cuda_runtime_api.h {'yes' if tk.has_runtime_headers else 'MISSING'}; cub "
            f"{'yes' if tk.has_cub else 'MISSING'}"
        )
        chosen = target.toolkit is not None and target.toolkit.home == tk.home
        if not tk.has_runtime_headers:
            checks.append(
                (fail if chosen else warn)(
                    cid,
                    summary + ": cuda_runtime_api.h missing",
                    "install the toolkit's headers (cuda-cudart-dev / nvidia-cuda-runtime) or use "
                    f"mamba-build toolchain install --cuda {tk.version}",
                    details,
                )
            )
        elif not tk.has_cub:
            checks.append(
                (fail if chosen else warn)(
                    cid,
                    summary + ": CCCL/cub headers missing (the Mamba kernels include <cub/...>)",
                    f"mamba-build toolchain install --cuda {tk.version}",
                    details,
                )
            )
        else:
            checks.append(ok(cid, summary + (" [chosen]" if chosen else ""), details))
    return checks


def check_libcuda(env: Environment) -> Check:
    """libcuda.so.1 as triton looks for it (explain id triton-libcuda-missing)."""
    from mamba_build.diagnose.probes.search_paths import triton_links_libcuda_so

    info = env.libcuda
    triton = env.python.packages.get("triton")
    if not triton:
        return skip("libcuda", "triton is not installed")
    if info is None:
        return skip("libcuda", "not probed")
    if not env.gpus.nvidia_smi:
        return skip("libcuda", "no NVIDIA driver here: triton's kernels cannot run (nothing to look for)")
    fix_dir = info.elsewhere[0] if info.elsewhere else "<the directory of libcuda.so.1>"
    if not info.found:
        where = (
            f"TRITON_LIBCUDA_PATH={info.env_path} holds no libcuda.so.1"
            if info.env_path
            else "libcuda.so.1 is neither in `ldconfig -p` nor in LD_LIBRARY_PATH"
        )
        return warn(
            "libcuda",
            f"triton {triton} cannot find the driver library: {where}; mamba's Triton kernels "
            "(Mamba-2, layer norm) stop with `libcuda.so cannot found!`",
            f"export TRITON_LIBCUDA_PATH={fix_dir}  (or, as root, run `ldconfig`; in a container start it "
            "with --gpus all)",
            details=info.error or "",
        )
    site = os.path.dirname(os.path.dirname(env.python.torch.file)) if env.python.torch.file else None
    if site and triton_links_libcuda_so(site) and not info.unversioned_dirs:
        d = info.dirs[0]
        return warn(
            "libcuda",
            f"triton {triton} links its launcher with -lcuda, but {d} has only libcuda.so.1 "
            "(no libcuda.so): its first kernel stops with `/usr/bin/ld: cannot find -lcuda`",
            f"as root: ln -s libcuda.so.1 {d}/libcuda.so && ldconfig  (or upgrade triton)",
        )
    return ok("libcuda", f"triton {triton} finds libcuda.so.1 in {', '.join(info.dirs)}")


def check_include_path(env: Environment, target: Target) -> Check:
    """CUDA headers that CPATH & co. put before the toolkit's (explain id toolkit-headers-mixed)."""
    tk = target.toolkit
    own = {os.path.realpath(d) for d in env.python.nvidia_include_dirs}
    home = os.path.realpath(tk.home) + os.sep if tk else None
    for d in env.include_dirs:
        real = os.path.realpath(d.path)
        if real in own or (home and (real + os.sep).startswith(home)):
            continue
        what = None
        if d.cub or d.thrust:
            what = f"its own {'CUB' if d.cub else 'Thrust'} headers"
        elif (
            d.cudart_version
            and tk
            and tk.version
            and tables.major_minor(d.cudart_version) != tables.major_minor(tk.version)
        ):
            what = f"the CUDA {d.cudart_version} runtime headers"
        if what:
            return warn(
                "include-path",
                f"{d.var} adds {d.path}, with {what}, ahead of the target toolkit's "
                f"({tk.home if tk else 'none'}): mixed toolkit headers stop the build (e.g. Thrust's "
                "`The version of CUB in your include path is not compatible`)",
                f"remove {d.path} from {d.var} for the build",
                details=str(d),
            )
    from mamba_build.diagnose.probes.search_paths import INCLUDE_VARS

    names = "/".join(INCLUDE_VARS)
    listed = ", ".join(d.path for d in env.include_dirs) or "nothing"
    return ok("include-path", f"no stray CUDA headers on {names} ({listed})")


def _has_cudart(prefix: str) -> bool:
    import glob

    return bool(
        glob.glob(os.path.join(prefix, "lib", "libcudart.so*"))
        or glob.glob(os.path.join(prefix, "targets", "*", "lib", "libcudart.so*"))
    )


def check_nvcc_on_path(env: Environment) -> Check | None:
    p = env.nvcc_on_path
    if p is None:
        return None
    if p.via_wrapper or len(p.chain) > 1:
        kind = "a wrapper script" if p.via_wrapper else "a symlink"
        return ok(
            "nvcc-on-path", f"`nvcc` on PATH is {p.path}, {kind} around {p.resolved or '?'}", " -> ".join(p.chain)
        )
    return ok("nvcc-on-path", f"`nvcc` on PATH is {p.path}")


def check_cuda_home(env: Environment, target: Target) -> Check:
    guess, how = env.torch_cuda_home, env.torch_cuda_home_how
    best = target.toolkit
    best_txt = best.home if best else None
    if guess is None:
        return fail(
            "cuda-home",
            f"torch's cpp_extension finds no CUDA toolkit ({how})",
            f"export CUDA_HOME={best_txt}"
            if best_txt
            else "mamba-build toolchain install --cuda X.Y, then export CUDA_HOME to what it prints",
        )
    tk = env.toolkit_at(guess)
    if tk is None or not tk.usable:
        missing = "bin/nvcc" if not os.path.exists(os.path.join(guess, "bin", "nvcc")) else "include/cuda_runtime_api.h"
        fix = (
            f"export CUDA_HOME={best_txt}  (mamba-build compile sets it for you)"
            if best_txt
            else "mamba-build toolchain install --cuda X.Y, then export CUDA_HOME to it"
        )
        return fail(
            "cuda-home",
            f"torch would use CUDA_HOME={guess} ({how}), which is not a CUDA toolkit "
            f"(no {missing}): builds die with `cuda_runtime_api.h: No such file or directory`",
            fix,
            details="torch.utils.cpp_extension._find_cuda_home takes $CUDA_HOME, $CUDA_PATH, then "
            "dirname(dirname(which nvcc)) without resolving links or wrapper scripts",
        )
    if best and os.path.realpath(best.home) != os.path.realpath(guess):
        return warn(
            "cuda-home",
            f"torch would use CUDA_HOME={guess} (CUDA {tk.version}, {how}) but the target is "
            f"{best.home} (CUDA {best.version})",
            f"export CUDA_HOME={best.home}  (mamba-build compile sets it for you)",
        )
    return ok("cuda-home", f"torch would use CUDA_HOME={guess} (CUDA {tk.version}, {how})")


def check_target(env: Environment, target: Target) -> Check:
    if target.toolkit:
        return ok("target", f"target toolkit: CUDA {target.toolkit.version} at {target.toolkit.home}", target.reason)
    want = target.cuda or env.python.torch.cuda
    others = ", ".join(sorted({t.version for t in env.toolkits if t.version})) or "none"
    fix = (
        f"mamba-build toolchain install --cuda {want}  (no root needed; `mamba-build compile` does it itself)"
        if want
        else "install a CUDA build of torch first"
    )
    return fail("target", f"no usable toolkit for CUDA {want or '?'} ({target.reason}); toolkits found: {others}", fix)


def check_torch_vs_nvcc(env: Environment, target: Target) -> Check:
    t = env.python.torch
    tk = target.toolkit
    if not (t.importable and t.cuda) or not (tk and tk.version):
        return skip("torch-vs-nvcc", "needs a CUDA torch and a toolkit")
    tmaj, tmin = t.cuda.split(".")[:2]
    nmaj, nmin = tk.version.split(".")[:2]
    if tmaj != nmaj:
        return fail(
            "torch-vs-nvcc",
            f"nvcc {tk.version} ({tk.home}) and torch's CUDA {t.cuda} differ in major "
            "version: cpp_extension refuses to build (CUDA_MISMATCH_MESSAGE)",
            f"use a CUDA {tmaj}.x toolkit (mamba-build toolchain install --cuda {t.cuda}) or install a "
            f"torch built for CUDA {nmaj}.x: {torch_install_fix(env, tk.version)}",
        )
    if tmin != nmin:
        return warn(
            "torch-vs-nvcc",
            f"nvcc {tk.version} vs torch's CUDA {t.cuda}: minor mismatch (cpp_extension "
            "only warns; supported by CUDA minor-version compatibility)",
            f"for an exact match: mamba-build toolchain install --cuda {t.cuda}",
        )
    return ok("torch-vs-nvcc", f"nvcc {tk.version} matches torch's CUDA {t.cuda}")


def check_gpu_archs(env: Environment, target: Target) -> Check:
    tk = target.toolkit
    if not env.gpus.gpus:
        return skip("gpu-arch", "no GPU visible")
    if not (tk and tk.archs):
        return skip("gpu-arch", "no toolkit arch list")
    bad = []
    for g in env.gpus.gpus:
        if not g.compute_capability:
            continue
        sm = int(g.compute_capability.replace(".", ""))
        if sm not in tk.archs:
            bad.append((g, sm))
    if bad:
        g, sm = bad[0]
        newer = [v for v, rel in tables.cuda_releases().items() if sm in rel.archs]
        hint = f"CUDA {', '.join(newer)}" if newer else "a toolkit that lists it in `nvcc --list-gpu-arch`"
        return fail(
            "gpu-arch",
            f"{g.name} is sm_{sm}, which CUDA {tk.version} cannot target (it accepts {tk.archs[0]}..{tk.archs[-1]})",
            f"use {hint}: mamba-build toolchain install --cuda {newer[-1] if newer else 'X.Y'}",
        )
    sms = ", ".join(f"sm_{g.compute_capability.replace('.', '')}" for g in env.gpus.gpus if g.compute_capability)
    return ok("gpu-arch", f"CUDA {tk.version} can target {sms}")


def build_include_dirs(env: Environment, toolkit: Toolkit) -> list[str]:
    """Include dirs a torch CUDA extension build needs beyond what torch's cpp_extension adds
    (``$CUDA_HOME/include``): the toolkit's own headers where they live elsewhere (a conda environment's
    ``targets/x86_64-linux/include``), then its missing math headers (:func:`math_include_dirs`)."""
    own = os.path.realpath(os.path.join(toolkit.home, "include"))
    dirs = [d for d in toolkit.include_dirs if os.path.realpath(d) != own]
    return list(dict.fromkeys(dirs + math_include_dirs(env, toolkit)))


def math_include_dirs(env: Environment, toolkit: Toolkit) -> list[str]:
    """Extra include dirs a torch CUDA extension build needs with this toolkit (its missing math
    headers, taken from torch's own NVIDIA pip packages); empty when the toolkit is complete."""
    if not toolkit.missing_math_headers:
        return []
    return list(env.python.nvidia_include_dirs)


def check_toolkit_headers(env: Environment, target: Target) -> Check:
    tk = target.toolkit
    if tk is None or not tk.usable:
        return skip("toolkit-headers", "no usable target toolkit")
    missing = tk.missing_math_headers
    if not missing:
        return ok("toolkit-headers", f"{tk.home} has the CUDA math library headers torch's ATen/cuda includes")
    dirs = math_include_dirs(env, tk)
    what = (
        f"{tk.home} lacks {', '.join(missing)} (CUDA math libraries), which torch's ATen/cuda/CUDAContext.h "
        "includes: builds die with `cusparse.h: No such file or directory`"
    )
    if dirs:
        return fail(
            "toolkit-headers",
            what,
            f"export CPATH={os.pathsep.join(dirs)}  (torch's own NVIDIA packages "
            "ship them; mamba-build compile adds them for you)",
        )
    return fail(
        "toolkit-headers",
        what,
        f"install the math library headers of CUDA {tk.version} (cuda-libraries-dev) "
        "or `pip install nvidia-cusparse nvidia-cublas nvidia-cusolver` matching torch's CUDA",
    )
