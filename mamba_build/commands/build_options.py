"""The build options `compile` and `wheels` share: their argparse flags and the CompileOptions they make."""

from __future__ import annotations

import argparse

from mamba_build.errors import UsageError
from mamba_build.plan.build_plan import ALL_PACKAGES, CompileOptions


def add_build_options(p: argparse.ArgumentParser, *, arch_default: str | None = "native") -> None:
    """Options shared by `compile` and `wheels` (what to build, with what)."""
    p.add_argument("--cuda", metavar="X.Y", help="CUDA toolkit version to build with (default: matches torch)")
    p.add_argument(
        "--package",
        action="append",
        metavar="NAME",
        help="mamba-ssm and/or causal-conv1d (repeatable or comma-separated; default: both)",
    )
    p.add_argument(
        "--version",
        dest="versions",
        action="append",
        default=[],
        metavar="PKG==VER",
        help="pin a version, e.g. --version mamba-ssm==2.2.6.post3",
    )
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="[PKG=]SPEC",
        help="pypi (default), git+URL@REF, a local tree, or a .tar.gz/.zip; PKG= when building both",
    )
    p.add_argument(
        "--index-url",
        help="package index for sources and missing runtime requirements (default: pip's configuration / PyPI)",
    )
    p.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="DIR|URL",
        help="extra sdist locations (also searched for the wheels of missing runtime requirements)",
    )
    p.add_argument(
        "--arch",
        default=arch_default,
        help="native (the visible GPUs), all (what the toolkit accepts), or a list: 8.0,9.0+PTX"
        + (f" (default: {arch_default})" if arch_default else ""),
    )
    p.add_argument("--jobs", type=int, help="parallel compile jobs (default: from free memory and CPUs)")
    p.add_argument("--nvcc-threads", type=int, help="nvcc --threads (default: number of archs, at most 4)")
    p.add_argument("--split-compile", type=int, metavar="N", help="nvcc --split-compile N (0: nvcc decides)")
    p.add_argument("--no-split-compile", action="store_true", help="never use --split-compile")
    p.add_argument("--no-ninja", action="store_true", help="build without ninja (slow; for broken ninja setups)")
    p.add_argument(
        "--schedule",
        choices=["pool", "sequential"],
        help="pool: one jobserver shared by both packages' builds, built at the same time (default when "
        "ninja >= 1.13); sequential: one package after the other",
    )
    p.add_argument(
        "--build-frontend",
        choices=["backend", "installer"],
        default="backend",
        help="backend (default): call each source tree's PEP 517 build_wheel directly in the target Python; "
        "installer: build with `pip wheel --no-build-isolation` (or `uv build`), which first runs setup.py once "
        "more for metadata",
    )
    p.add_argument(
        "--split-units",
        dest="split_units",
        action="store_true",
        default=None,
        help="split the longest unit (causal_conv1d_bwd.cu) into one unit per instantiation (default: on with 4+ jobs)",
    )
    p.add_argument("--no-split-units", dest="split_units", action="store_false", help="never split units")
    p.add_argument(
        "--patch-torch",
        choices=["process", "inplace"],
        default="process",
        help="how torch's compiler map is patched: in the build process only (default) or in the file, "
        "with a backup restored afterwards",
    )
    p.add_argument(
        "--allow-unsupported-compiler",
        action="store_true",
        help="use the newest gcc even if the toolkit rejects it (nvcc -allow-unsupported-compiler); may miscompile",
    )
    p.add_argument(
        "--provision",
        dest="provision",
        action="store_true",
        default=None,
        help="if no usable toolkit of torch's CUDA major (or of --cuda X.Y) is found, assemble one without "
        "root with `toolchain install` before building (the default)",
    )
    p.add_argument(
        "--no-provision",
        dest="provision",
        action="store_false",
        help="never install a toolkit: stop with the fix instead",
    )
    p.add_argument("--python", metavar="PATH", help="the Python environment to build for (default: this one)")
    p.add_argument("--build-dir", help="temporary build directory (default: ~/.cache/mamba-build/builds)")
    p.add_argument("--keep-build", action="store_true", help="keep the source trees and intermediate files")
    p.add_argument("--no-cache", action="store_true", help="rebuild even if an identical wheel is cached")
    p.add_argument(
        "--launcher",
        default="none",
        metavar="{none,ccache,sccache,auto}",
        help="compiler cache in front of nvcc for partial rebuilds: ccache, sccache (local or your "
        "SCCACHE_* remote storage), auto (ccache, else sccache, else none), none (default), or a "
        "path to a ccache/sccache executable",
    )
    p.add_argument("--timeout", type=float, default=3 * 3600.0, help="seconds allowed per package build")
    p.add_argument(
        "--no-deps",
        action="store_true",
        help="do not install the packages' missing runtime requirements (einops, transformers, ...) "
        "before building; fail at plan time with the pip line instead (default: install them, "
        "with everything already installed pinned)",
    )
    p.add_argument(
        "--skip-missing-deps",
        action="store_true",
        help="build even when declared runtime requirements are missing and cannot be installed (an "
        "offline machine): the plan lists them with the pip line, and the smoke test's import "
        "shows whether the packages need them",
    )


def options_from_args(args: argparse.Namespace) -> CompileOptions:
    from mamba_build.plan.packages import package_info, parse_requirement

    names: list[str] = []
    for item in args.package or []:
        names += [package_info(n.strip()).name for n in item.split(",") if n.strip()]
    # causal-conv1d first (mamba-ssm uses it); other packages (the test fixture) in the order given
    packages = (
        tuple(n for n in ALL_PACKAGES if n in names) + tuple(dict.fromkeys(n for n in names if n not in ALL_PACKAGES))
        if names
        else ALL_PACKAGES
    )
    versions: dict[str, str] = {}
    for pin in args.versions:
        name, version = parse_requirement(pin)
        if version is None:
            raise UsageError(f"--version {pin!r} has no version", "write --version NAME==VERSION")
        versions[name] = version
    sources: dict[str, str] = {}
    for spec in args.source:
        head, sep, rest = spec.partition("=")
        if sep and head.replace("_", "-").lower() in (*ALL_PACKAGES, *packages):
            sources[package_info(head).name] = rest
        elif len(packages) == 1:
            sources[packages[0]] = spec
        else:
            raise UsageError(
                f"--source {spec!r} is ambiguous with two packages",
                "write --source causal-conv1d=SPEC / --source mamba-ssm=SPEC, or add --package NAME",
            )
    for n, v in [(k, v) for k, v in versions.items() if k not in packages]:
        raise UsageError(f"--version {n}=={v} names a package that is not being built", f"add --package {n}")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}", "use --jobs 1 or more")
    split = -1 if args.no_split_compile else args.split_compile
    return CompileOptions(
        cuda=args.cuda,
        packages=packages,
        versions=versions,
        sources=sources,
        index_url=args.index_url,
        find_links=tuple(args.find_links),
        arch=args.arch,
        jobs=args.jobs,
        nvcc_threads=args.nvcc_threads,
        split_compile=split,
        use_ninja=not args.no_ninja,
        wheel_dir=getattr(args, "wheel_dir", None),
        install=not getattr(args, "no_install", True),
        patch_torch=args.patch_torch,
        allow_unsupported_compiler=args.allow_unsupported_compiler,
        provision=args.provision is not False,
        python=args.python,
        build_dir=args.build_dir,
        keep_build=args.keep_build,
        use_cache=not args.no_cache,
        timeout=args.timeout,
        schedule=args.schedule,
        split_units=args.split_units,
        rerun_smoke=getattr(args, "rerun_smoke", False),
        triton_warmup=not getattr(args, "no_triton_warmup", False),
        build_frontend=getattr(args, "build_frontend", None) or "backend",
        launcher=getattr(args, "launcher", None) or "none",
        install_deps=not getattr(args, "no_deps", False),
        skip_missing_deps=getattr(args, "skip_missing_deps", False),
    )
