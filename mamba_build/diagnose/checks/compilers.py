"""Host compilers judged against the target toolkit's host_config.h and torch's CUDA_GCC_VERSIONS."""

from __future__ import annotations

import os
import shutil

from mamba_build import tables
from mamba_build.diagnose.checks.base import Check, Target, fail, ok, skip, warn
from mamba_build.diagnose.environment import Environment
from mamba_build.diagnose.probes.compilers import Compiler


def toolkit_limit(target: Target, kind: str) -> int | None:
    tk = target.toolkit
    if tk is None:
        return None
    own = tk.gcc_max if kind == "gcc" else tk.clang_max
    if own is not None:
        return own
    rel = tables.cuda_release(tk.version) if tk.version else None
    return (rel.gcc_max if kind == "gcc" else rel.clang_max) if rel else None


def torch_bounds(env: Environment, target: Target, kind: str):
    tk = target.toolkit
    if tk is None or not tk.version:
        return None
    table = env.python.torch.gcc_bounds if kind == "gcc" else env.python.torch.clang_bounds
    return table.get(tk.version)


def nearest_torch_bounds(env: Environment, target: Target, kind: str):
    """torch's entry for the toolkit's CUDA X.Y, else the entry of the newest X.(lower) it has (torch's map
    stops at the CUDA releases its version knew: 2.14.1's at 13.0), else None. Its lower bound is what the
    in-process map extension (patches/setup-common.toml, torch-compiler-map) gives a newer minor."""
    exact = torch_bounds(env, target, kind)
    tk = target.toolkit
    if exact is not None or tk is None or not tk.version:
        return exact
    table = env.python.torch.gcc_bounds if kind == "gcc" else env.python.torch.clang_bounds
    major, minor = tables.version_tuple(tk.version)[:2]
    lower = [k for k in table if tables.version_tuple(k)[:1] == (major,) and tables.version_tuple(k)[1:2] < (minor,)]
    return table[max(lower, key=tables.version_tuple)] if lower else None


def judge(comp: Compiler, env: Environment, target: Target) -> tuple[bool, bool | None, str]:
    """(accepted by the toolkit, accepted by torch's map (None: no entry), explanation)."""
    limit = toolkit_limit(target, comp.kind)
    by_toolkit = comp.major is not None and (limit is None or comp.major <= limit)
    bounds = torch_bounds(env, target, comp.kind)
    by_torch = None
    if bounds is not None:
        lo, hi = bounds
        by_torch = comp.version >= tuple(lo) and comp.version < tuple(hi)
    why = f"{comp.kind} {comp.version_str}: toolkit allows <= {limit if limit is not None else '?'}"
    if bounds is not None:
        why += f"; torch's map allows >= {'.'.join(map(str, bounds[0]))}, < {'.'.join(map(str, bounds[1]))}"
    else:
        why += "; torch's map has no entry for this CUDA version"
    return by_toolkit, by_torch, why


def default_compiler(env: Environment) -> Compiler | None:
    """What a plain build uses: $CXX (else c++) for torch's check; nvcc's host compiler follows it."""
    name = os.environ.get("CXX", "c++").split()[0]
    path = shutil.which(name)
    if not path:
        return None
    real = os.path.realpath(path)
    for comp in env.compilers:
        if comp.cxx and os.path.realpath(comp.cxx) == real:
            return comp
    return None


def _install_hint(env: Environment, major: int) -> str:
    distro = (env.platform.distro_id or "", *env.platform.distro_like)
    if any(d in ("debian", "ubuntu") for d in distro):
        apt = f"apt-get install gcc-{major} g++-{major}"
    elif any(d in ("rhel", "fedora", "centos") for d in distro):
        apt = f"dnf install gcc-toolset-{major}"
    else:
        apt = f"install gcc {major} with your package manager"
    return f"{apt}  (without root: conda install -c conda-forge gxx_linux-64={major})"


def _cc_cxx(c) -> str:
    """CC=gcc-12 CXX=g++-12 for one of check_host_compiler's gccs (each has a C++ driver)."""
    assert c.cxx is not None
    return f"CC={os.path.basename(c.cc)} CXX={os.path.basename(c.cxx)}"


def check_host_compiler(env: Environment, target: Target) -> Check:
    tk = target.toolkit
    if tk is None:
        return skip("host-compiler", "no target toolkit")
    gccs = [c for c in env.compilers if c.kind == "gcc" and c.cxx]  # (with a C++ compiler: cxx is not None below)
    if not gccs:
        return fail("host-compiler", "no gcc/g++ found", _install_hint(env, toolkit_limit(target, "gcc") or 11))
    verdicts = {c.cc: judge(c, env, target) for c in gccs}
    good = [c for c in gccs if verdicts[c.cc][0] and verdicts[c.cc][1] is not False]
    good.sort(key=lambda c: c.version, reverse=True)
    default = default_compiler(env)
    listing = "; ".join(verdicts[c.cc][2] + f" ({c.cc})" for c in gccs)
    limit = toolkit_limit(target, "gcc")
    if default is not None and default.kind == "gcc":
        by_tk, by_torch, why = verdicts.get(default.cc) or judge(default, env, target)
        name = f"the default compiler ({os.path.basename(default.cxx or default.cc)} {default.version_str})"
        if by_tk and by_torch:
            return ok("host-compiler", f"{name} is accepted by CUDA {tk.version} and torch", listing)
        if by_tk and by_torch is None:
            return warn(
                "host-compiler",
                f"{name} fits CUDA {tk.version}'s host_config.h, but torch's "
                f"CUDA_GCC_VERSIONS has no entry for {tk.version} (torch only warns)",
                "nothing to do; mamba-build compile adds the entry inside the build process",
                listing,
            )
        if by_tk and by_torch is False:
            alt = good[0] if good else None
            fix = (
                f"{_cc_cxx(alt)}"
                if alt
                else "mamba-build compile patches torch's compiler map inside the build process "
                "(--patch-torch inplace edits the file with a backup)"
            )
            return fail(
                "host-compiler",
                f"{name} is accepted by CUDA {tk.version} but outside torch's "
                f"CUDA_GCC_VERSIONS bounds: cpp_extension refuses it",
                fix,
                listing,
            )
        alt = good[0] if good else None
        fix = f"{_cc_cxx(alt)}  (mamba-build compile picks it for you)" if alt else _install_hint(env, limit or 11)
        return fail(
            "host-compiler",
            f"{name} is too new for CUDA {tk.version} (its host_config.h accepts gcc <= "
            f"{limit}): nvcc stops with `unsupported GNU version`",
            fix,
            listing,
        )
    if good:
        return ok(
            "host-compiler", f"gcc {good[0].version_str} ({good[0].cc}) is accepted by CUDA {tk.version}", listing
        )
    return fail(
        "host-compiler",
        f"no gcc accepted by CUDA {tk.version} (gcc <= {limit})",
        _install_hint(env, limit or 11),
        listing,
    )


def check_cxx_standard(env: Environment) -> Check:
    """torch's headers vs the -std=c++17 of mamba-ssm's setup.py (explain id cxx-standard)."""
    from mamba_build.plan.build_plan import torch_cxx_std

    t = env.python.torch
    if not t.importable:
        return skip("cxx-standard", "torch is not importable; see the torch check")
    std, why = torch_cxx_std(t.file)
    if std is None:
        return ok("cxx-standard", f"torch {t.version}'s headers accept C++17 (what mamba-ssm's setup.py asks for)", why)
    return warn(
        "cxx-standard",
        f"torch {t.version}'s headers require C++{std}, but mamba-ssm's setup.py compiles with "
        f"-std=c++17: a plain `pip install mamba-ssm` stops with `C++{std} or later compatible compiler is "
        "required`",
        "nothing to do for mamba-build compile (its cxx-std recipe raises the standard); "
        "with pip, use a torch whose headers accept C++17",
        why,
    )


def host_compiler_choice(env: Environment, target: Target, *, allow_unsupported: bool = False):
    """The host compiler a build should use (rules in :mod:`mamba_build.plan.host_compiler`); CompilerError if none
    fits."""
    from mamba_build.plan.host_compiler import CompilerCandidate, HostLimits, choose_host_compiler

    tk = target.toolkit
    limits = HostLimits(gcc_max=toolkit_limit(target, "gcc"), clang_max=toolkit_limit(target, "clang"), clang_min=None)
    cands = [
        CompilerCandidate(cc=c.cc, cxx=c.cxx, kind=c.kind, version=c.version)
        for c in env.compilers
        if c.cxx and c.version
    ]
    return choose_host_compiler(
        cands,
        limits,
        torch_bounds(env, target, "gcc"),
        cuda=(tk.version or "") if tk else "",
        allow_unsupported=allow_unsupported,
    )


def choose_for_build(env: Environment, target: Target, *, allow_unsupported: bool = False):
    """Like :func:`host_compiler_choice`, but None instead of an error (for the doctor's probe)."""
    from mamba_build.errors import CompilerError

    if target.toolkit is None:
        return None
    try:
        return host_compiler_choice(env, target, allow_unsupported=allow_unsupported)
    except CompilerError:
        return None
