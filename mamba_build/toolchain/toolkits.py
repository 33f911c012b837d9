"""CUDA toolkits assembled without root, kept under ``paths.toolchains_dir()``.

``install("13.0")`` downloads the pinned wheels (``data/toolchains.toml``) with pip, checks each
file's sha256 against the pins, unzips them into a staging folder next to the target and lays
them out as a normal CUDA_HOME::

    cuda-13.0/bin/nvcc (+ nvcc.profile, cudafe++, fatbinary, nvlink, ptxas)
    cuda-13.0/nvvm/bin/cicc, nvvm/libdevice
    cuda-13.0/include/ (runtime, crt/, cccl/, + cuBLAS/cuSPARSE/cuSOLVER headers when found)
    cuda-13.0/lib64/libcudart.so -> libcudart.so.13   (lib -> lib64)
    cuda-13.0/mamba-build-toolchain.json, mamba-build-toolchain.lock.json

CUDA 13.x releases the pin table does not list (13.1 and later) are resolved from the package index
at install time through NVIDIA's ``cuda-toolkit`` metapackage (:mod:`mamba_build.toolchain.toolkit_index`, the
``[resolve]`` table) and installed the same way; every install writes the wheel set it used (files,
sha256) to ``mamba-build-toolchain.lock.json`` next to the toolkit, and ``install(lock=...)`` installs
exactly such a set again.

``bin/nvcc --version`` is run in the staging folder; only then is it renamed into place, so a
failure or Ctrl-C leaves nothing half-made. Releases whose PyPI wheels lack the compiler driver
(every 11.x and 12.x: their nvcc wheels hold only ptxas, libnvvm and headers) are pinned but
refused with an explanation; see the comments in ``data/toolchains.toml``.

``source = "debian"`` releases (11.8 from Debian 12 bookworm, 12.4 from Debian 13 trixie) take the
compiler (nvcc, cicc, ptxas, cudafe++, fatbinary, nvlink, bin2c, libdevice) from a pinned Debian
``.deb`` instead: apt's own client downloads it
without root through a private configuration (its own sources list, state and cache folders under
the cache; the system's apt state is never read or written; the archive signature is checked with
the system's Debian keyring), its sha256 is checked against the pin, ``dpkg-deb -x`` unpacks it
into the staging folder, the pin table's ``map`` moves the files into the CUDA_HOME layout and
``bin/nvcc.profile`` is written from the pin table (Debian's points at /usr/lib/nvidia-cuda-toolkit
and relies on /usr/include). Headers and libcudart still come from the pinned PyPI wheels. The archive,
the ``map`` and the profile are shared by those releases (``[debian]`` in the pin table); an entry
names its suite and its pinned .deb files.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mamba_build import paths
from mamba_build.errors import DiskFullError, ToolkitError, UsageError
from mamba_build.toolchain.assemble import _add_math_headers, _validate, assemble, parse_gpu_archs, parse_nvcc_version
from mamba_build.toolchain.fetch import fetch_debs, fetch_wheels
from mamba_build.toolchain.installed import ToolchainInfo, _rmtree, find, list_installed, remove, toolkit_dir
from mamba_build.toolchain.pins import (
    METADATA_NAME,
    ReleasePins,
    WheelFile,
    WheelPin,
    _normalize_cuda,
    installable_releases,
    installable_text,
    pinned_releases,
    release_pins,
)

# --------------------------------------------------------------------------------------------
# install


def release_for_install(
    cuda: str, *, index_url: str | None = None, find_links: Path | str | None = None, lock: Path | None = None
) -> tuple[ReleasePins, str, dict[str, Any] | None]:
    """(pins, origin, resolved lock or None) of what ``install`` assembles for ``cuda``: the ``lock`` file when
    given, else the pin table's entry, else (a ``[resolve]`` major) the wheel set resolved from the index."""
    from mamba_build.toolchain import toolkit_index

    version = _normalize_cuda(cuda)
    if lock is not None:
        pins, data = toolkit_index.pins_from_lock(Path(lock), version)
        return pins, f"lock {lock}", data
    if version in pinned_releases() or not toolkit_index.resolvable(version):
        return release_pins(version), "pin table", None
    if find_links and not index_url:
        raise UsageError(
            f"CUDA {version} is resolved from the package index at install time, and --find-links without "
            "--index-url works offline",
            f"install it once where the index is reachable and pass its {toolkit_index.LOCK_NAME} here with "
            "--lock FILE --find-links DIR (the wheels it names in DIR); or add --index-url",
        )
    pins, data = toolkit_index.resolve(version, index_url=index_url)
    meta = data["metapackage"]
    return pins, f"index ({meta['name']} {meta['version']})", data


def install(
    cuda: str,
    *,
    wheels_dir: Path | None = None,
    index_url: str | None = None,
    find_links: Path | str | None = None,
    math_headers_from: Path | Sequence[Path] | None = None,
    force: bool = False,
    timeout: float = 1800.0,
    debs_dir: Path | None = None,
    debian_mirror: str | None = None,
    lock: Path | None = None,
) -> ToolchainInfo:
    """Assemble the toolkit for CUDA ``cuda`` from pinned PyPI wheels; see the module docstring.

    Releases the pin table does not list are resolved from the index at install time (majors of its
    ``[resolve]`` table; :mod:`mamba_build.toolchain.toolkit_index`); ``lock``: install exactly the wheel set of a
    lock file instead. Either way the wheel set is written next to the toolkit as its lock file.

    ``wheels_dir``: where downloaded wheels are kept (default: the cache's ``wheels/nvidia``);
    files already there with the pinned sha256 are not downloaded again. ``find_links``: a folder
    of wheels downloaded elsewhere (offline installs); used first, and pip is then run with
    ``--no-index`` unless ``index_url`` is also given. ``math_headers_from``: an include folder (or
    a site-packages) holding cublas_v2.h / cusparse.h / cusolverDn.h; default: the site-packages
    of this Python. An existing toolkit is returned as is unless ``force``.

    For ``source = "debian"`` releases also: ``debs_dir``, where downloaded .deb files are kept
    (default: the cache's ``debs``; apt's private lists live in its ``apt/`` subfolder);
    ``find_links`` is searched for the pinned .deb files too; ``debian_mirror`` replaces the
    archive URI of the pin table (e.g. a local mirror).
    """
    target = paths.toolchains_dir() / f"cuda-{_normalize_cuda(cuda)}"
    if target.exists() and not force:
        existing = ToolchainInfo.from_dir(target)
        if existing is not None and existing.nvcc.exists():
            return existing
    pins, origin, resolved = release_for_install(cuda, index_url=index_url, find_links=find_links, lock=lock)
    if not pins.complete:
        raise ToolkitError(
            f"NVIDIA's PyPI wheels for CUDA {pins.cuda} do not contain a compiler: "
            f"{pins.wheels[0].requirement if pins.wheels else 'the nvcc wheel'} holds only ptxas, "
            f"libnvvm and headers ({', '.join(pins.missing)} are missing), so no CUDA {pins.cuda} "
            "toolkit can be assembled from PyPI",
            f"install the CUDA {pins.cuda} toolkit without root with NVIDIA's runfile "
            f"(sh cuda_{pins.cuda}.*_linux.run --silent --toolkit --toolkitpath=$HOME/cuda-{pins.cuda}) "
            f"or with conda (conda install -c nvidia/label/cuda-{pins.cuda}.0 cuda-nvcc cuda-cudart-dev "
            f"libcublas-dev libcusparse-dev libcusolver-dev) and set CUDA_HOME to it; or build with "
            f"a release that PyPI does provide: {installable_text()}",
        )
    target = paths.toolchains_dir(create=True) / f"cuda-{pins.cuda}"

    wheel_store = Path(wheels_dir) if wheels_dir else paths.wheel_cache_dir() / "nvidia"
    files = fetch_wheels(pins, wheel_store, index_url=index_url, find_links=find_links, timeout=timeout)
    debs: dict[str, Path] = {}
    if pins.debs:
        deb_store = Path(debs_dir) if debs_dir else paths.cache_home() / "debs"
        debs = fetch_debs(pins, deb_store, find_links=find_links, mirror=debian_mirror, timeout=timeout)

    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    _rmtree(staging)
    try:
        layout = assemble(pins, files, staging, debs=debs)
        headers = _add_math_headers(staging, pins.cuda, math_headers_from)
        info = _validate(staging, pins, files, layout, headers, debs, origin=origin)
        from mamba_build.toolchain.toolkit_index import lock_data

        info.lock_file.write_text(json.dumps(lock_data(pins, origin, resolved), indent=2) + "\n", encoding="utf-8")
        _commit(staging, target)
        info.path = target
        return info
    except OSError as exc:
        _rmtree(staging)
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"no space left while assembling {staging}",
                f"free at least {2 * pins.download_bytes // 2**20 + 200} MB under "
                f"{paths.cache_home()} (or set MAMBA_BUILD_CACHE to a larger disk) and rerun",
            ) from exc
        raise
    except BaseException:
        _rmtree(staging)
        raise


def _commit(staging: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.with_name(f"{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        _rmtree(old)


# The toolchain's API, one import away (mamba_build.toolchain.toolkits): the pin table (pins.py), the installed
# toolkits (installed.py), fetching (fetch.py) and assembly (assemble.py) live in their own modules.
__all__ = [
    "METADATA_NAME",
    "ReleasePins",
    "ToolchainInfo",
    "WheelFile",
    "WheelPin",
    "assemble",
    "fetch_debs",
    "fetch_wheels",
    "find",
    "install",
    "installable_releases",
    "installable_text",
    "list_installed",
    "parse_gpu_archs",
    "parse_nvcc_version",
    "pinned_releases",
    "release_for_install",
    "release_pins",
    "remove",
    "toolkit_dir",
]
