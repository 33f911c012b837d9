"""`mamba-build patch DIR`: apply the patch recipes to an unpacked source tree (plumbing)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mamba_build import runner
from mamba_build.build import patching, sources
from mamba_build.errors import UsageError
from mamba_build.plan import packages

NAME = "patch"
HELP = "apply mamba-build's setup.py patches (archs, threads, no prebuilt wheel, ...) to a source tree"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="source tree (holding setup.py), e.g. from `mamba-build fetch`")
    parser.add_argument("--package", choices=packages.known_packages(), help="default: detected from the tree")
    parser.add_argument("--arch", help="CUDA archs, e.g. 9.0 or 8.0,9.0+PTX (default: $TORCH_CUDA_ARCH_LIST)")
    parser.add_argument("--threads", type=int, default=4, help="nvcc --threads (default 4)")
    parser.add_argument("--split-compile", type=int, metavar="N", help="nvcc --split-compile N")
    parser.add_argument("--no-ninja", action="store_true", help="BuildExtension.with_options(use_ninja=False)")
    parser.add_argument(
        "--cxx11-abi",
        choices=("auto", "on", "off"),
        default="auto",
        help="FORCE_CXX11_ABI (auto: what the torch of --python uses)",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter whose torch decides --cxx11-abi auto")
    parser.add_argument(
        "--allow-unsupported-compiler", action="store_true", help="pass nvcc -allow-unsupported-compiler"
    )
    parser.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def detect_package(tree: Path) -> str:
    for name in packages.known_packages():
        info = packages.package_info(name)
        if (tree / info.import_name / "__init__.py").is_file():
            return name
    setup = tree / "setup.py"
    text = setup.read_text(encoding="utf-8", errors="replace") if setup.is_file() else ""
    for name in packages.known_packages():
        if f'PACKAGE_NAME = "{packages.package_info(name).import_name}"' in text:
            return name
    raise UsageError(f"cannot tell whether {tree} is mamba-ssm or causal-conv1d", "pass --package")


def torch_cxx11_abi(python: str) -> bool:
    res = runner.run([python, "-c", "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"], timeout=120)
    if not res.ok:
        raise UsageError(
            f"cannot ask the torch of {python} for its C++ ABI ({(res.stderr or '').strip()[-200:]})",
            "pass --cxx11-abi on/off, or --python with the interpreter that has torch",
        )
    return res.stdout.strip().splitlines()[-1] == "1"


def source_tree(path: Path) -> Path:
    """``path`` itself when it holds setup.py; else the one source tree inside it (the folder
    `mamba-build fetch --dest DIR` filled holds DIR/<name>-<version>/)."""
    if (path / "setup.py").is_file():
        return path
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory", "point at a source tree, e.g. from `mamba-build fetch`")
    trees = sorted(p for p in path.iterdir() if p.is_dir() and (p / "setup.py").is_file())
    if len(trees) == 1:
        return trees[0]
    if not trees:
        raise UsageError(
            f"{path} has no setup.py, nor a folder holding one",
            "point at a source tree, e.g. the folder `mamba-build fetch PKG --dest DIR` filled",
        )
    raise UsageError(
        f"{path} holds {len(trees)} source trees ({', '.join(p.name for p in trees)})",
        "name the one to patch: " + " or ".join(str(p) for p in trees),
    )


def run(args: argparse.Namespace) -> int:
    tree = source_tree(args.dir)
    arch_text = args.arch or os.environ.get("TORCH_CUDA_ARCH_LIST")
    if not arch_text:
        raise UsageError("no CUDA architecture given", "pass --arch, e.g. --arch 9.0 or --arch 8.0,9.0+PTX")
    archs = patching.parse_arch_list(arch_text)
    abi = {"on": True, "off": False}.get(args.cxx11_abi)
    if abi is None:
        abi = torch_cxx11_abi(args.python)
    options = patching.PatchOptions(
        archs=archs,
        nvcc_threads=args.threads,
        split_compile=args.split_compile,
        use_ninja=not args.no_ninja,
        cxx11_abi=abi,
        allow_unsupported_compiler=args.allow_unsupported_compiler,
    )
    package = args.package or detect_package(tree)
    version = sources.tree_version(tree, package)
    if args.dry_run:
        results = patching.plan_patches(tree, package, version, options, strict=False)
    else:
        results = patching.apply_patches(tree, package, version, options)
    if args.json:
        print(
            json.dumps(
                {
                    "package": package,
                    "version": version,
                    "tree": str(tree),
                    "dry_run": args.dry_run,
                    "options": options.as_dict(),
                    "results": [r.as_dict() for r in results],
                },
                indent=2,
            )
        )
    else:
        print(f"{package} {version or '?'} in {tree}{' (dry run: nothing written)' if args.dry_run else ''}")
        for r in results:
            print(f"  {r.recipe:28} {r.status.value:26} {r.detail}")
    patching.raise_for_missing(results, tree, package, version)
    return 0
