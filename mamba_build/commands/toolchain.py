"""`mamba-build toolchain install|list|remove`: CUDA toolkits assembled without root.

13.x from NVIDIA's PyPI wheels (13.0 pinned, later 13.x resolved from the index at install time, with a
lock file written next to the toolkit); 11.8 / 12.4 from Debian 12 / 13's nvidia-cuda-toolkit .deb (the compiler,
fetched with apt-get through a private configuration) plus NVIDIA's cu11 / cu12 PyPI wheels (headers,
libcudart). See data/toolchains.toml.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mamba_build.errors import ExitCode
from mamba_build.toolchain import toolkits

NAME = "toolchain"
HELP = (
    "install, list or remove CUDA toolkits assembled from NVIDIA PyPI wheels (13.x) or "
    "Debian packages + wheels (11.8, 12.4); no root needed"
)


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    inst = sub.add_parser(
        "install",
        help="download the pinned files and assemble a CUDA_HOME under the cache",
        description="Download the pinned files for CUDA X.Y (sha256-checked) and assemble a toolkit usable as "
        "CUDA_HOME under the mamba-build cache, without root. 13.0: NVIDIA's PyPI wheels (~105 MB), pinned; "
        "13.1 and later 13.x: the same wheels of that release, resolved from the package index "
        "through NVIDIA's cuda-toolkit metapackage (~110-130 MB; the files and their sha256 are "
        "written to mamba-build-toolchain.lock.json next to the toolkit). "
        "11.8 / 12.4: the compiler from the non-free nvidia-cuda-toolkit .deb of Debian 12 / Debian 13 "
        "(84 / 87 MB; downloaded "
        "with apt-get using a private sources list/state/cache under the mamba-build cache, "
        "signature checked with /usr/share/keyrings/debian-archive-keyring.gpg; unpacked with "
        "dpkg-deb) plus NVIDIA's cu11 / cu12 wheels for headers and libcudart (~23 / ~26 MB). "
        "cuBLAS/cuSPARSE/cuSOLVER headers are copied from the nvidia-* packages of this Python's torch: run it "
        "with the mamba-build of the environment you will build in.",
    )
    inst.add_argument("--cuda", required=True, metavar="X.Y", help="CUDA release: 11.8, 12.4 or any 13.x on PyPI")
    inst.add_argument(
        "--lock",
        metavar="FILE",
        type=Path,
        help="install exactly the wheel set of this lock file (the mamba-build-toolchain.lock.json "
        "written next to a toolkit; with --find-links: offline)",
    )
    inst.add_argument("--index-url", metavar="URL", help="package index to download from (default: pip's)")
    inst.add_argument(
        "--find-links",
        metavar="DIR",
        type=Path,
        help="folder of wheels (and, for 11.8 / 12.4, the pinned .deb) downloaded elsewhere (offline "
        "install; no index is used unless --index-url is also given)",
    )
    inst.add_argument(
        "--debian-mirror",
        metavar="URL",
        help="Debian archive to fetch .deb files from (default: http://deb.debian.org/debian)",
    )
    inst.add_argument(
        "--math-headers-from",
        metavar="DIR",
        type=Path,
        help="include folder (or site-packages) with cublas_v2.h, cusparse.h, cusolverDn.h; "
        "default: the nvidia-* packages next to this Python's torch",
    )
    inst.add_argument("--force", action="store_true", help="reinstall even if already installed")
    inst.add_argument("--json", action="store_true", help="print the installed toolkit as JSON")
    lst = sub.add_parser("list", help="show installed toolkits with their nvcc version and GPU archs")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    rm = sub.add_parser("remove", help="delete an installed toolkit")
    rm.add_argument("--cuda", required=True, metavar="X.Y")


def _describe(info: toolkits.ToolchainInfo) -> str:
    archs = " ".join(f"sm_{a}" for a in info.archs) or "unknown"
    headers = "yes" if info.has_math_headers else "no (torch extensions need them: see --math-headers-from)"
    return (
        f"CUDA {info.cuda}  nvcc {info.nvcc_version or '?'}  {info.path}\n"
        f"    archs: {archs}\n    cuBLAS/cuSPARSE/cuSOLVER headers: {headers}\n"
        + (f"    wheels: {info.origin}; lock: {info.lock_file}\n" if info.origin else "")
        + f"    use: export CUDA_HOME={info.path}"
    )


def _as_json(info: toolkits.ToolchainInfo) -> dict:
    data = info.to_json()
    data["path"] = str(info.path)
    data["nvcc"] = str(info.nvcc)
    data["lock_file"] = str(info.lock_file) if info.lock_file.is_file() else None
    return data


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "action", None)
    if action == "install":
        info = toolkits.install(
            args.cuda,
            index_url=args.index_url,
            find_links=args.find_links,
            math_headers_from=args.math_headers_from,
            force=args.force,
            debian_mirror=args.debian_mirror,
            lock=args.lock,
        )
        if args.json:
            print(json.dumps(_as_json(info), indent=2))
        else:
            print(_describe(info))
            if not info.has_math_headers:
                print(
                    "note: no cuBLAS/cuSPARSE/cuSOLVER headers were found to copy; torch's "
                    "ATen/cuda headers include them. Rerun with --force --math-headers-from DIR."
                )
        return ExitCode.OK
    if action == "list":
        installed = toolkits.list_installed()
        if args.json:
            print(json.dumps([_as_json(i) for i in installed], indent=2))
        elif not installed:
            print(
                "no toolkits installed; installable: "
                + toolkits.installable_text()
                + " (mamba-build toolchain install --cuda X.Y)"
            )
        else:
            for info in installed:
                print(_describe(info))
        return ExitCode.OK
    if action == "remove":
        path = toolkits.remove(args.cuda)
        print(f"removed {path}")
        return ExitCode.OK
    print("usage: mamba-build toolchain {install,list,remove} ... (see --help)")
    return ExitCode.USAGE
