"""Getting the pinned files of a release into the download store, verified by sha256: wheels with pip (index or
--find-links), Debian .deb files with apt's own client (no root, a private apt configuration)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from mamba_build import paths, runner
from mamba_build.errors import NetworkError, SourceError, ToolkitError
from mamba_build.hashing import sha256_file
from mamba_build.toolchain.pins import _NETWORK_MARKERS, AptSource, DebPin, ReleasePins, WheelPin

PinT = TypeVar("PinT")  # a WheelPin or a DebPin


def _verified_file_in(files: Sequence[tuple[str, str]], folders: Sequence[Path]) -> Path | None:
    """The first ``folder/filename`` whose sha256 is the pinned one, over (filename, sha256) pairs and folders."""
    for folder in folders:
        for filename, sha256 in files:
            candidate = folder / filename
            if candidate.is_file() and sha256_file(candidate) == sha256:
                return candidate
    return None


def _pinned_file_in(pin: WheelPin, folders: Sequence[Path]) -> Path | None:
    return _verified_file_in([(f.filename, f.sha256) for f in pin.files], folders)


def fetch_wheels(
    pins: ReleasePins,
    store: Path,
    *,
    index_url: str | None = None,
    find_links: Path | str | None = None,
    timeout: float = 1800.0,
) -> dict[str, Path]:
    """Pinned wheel files of ``pins`` (name -> path), verified; downloads only what is missing."""

    def download(todo: list[WheelPin]) -> None:
        _pip_download(todo, store, index_url=index_url, find_links=find_links, timeout=timeout)

    return _fetch_pinned(
        pins.wheels,
        store,
        find_links,
        key=lambda p: p.name,
        local=_pinned_file_in,
        download=download,
        verify=_verify_downloaded,
    )


def _fetch_pinned(
    pinned: Sequence[PinT],
    store: Path,
    find_links: Path | str | None,
    *,
    key: Callable[[PinT], str],
    local: Callable[[PinT, Sequence[Path]], Path | None],
    download: Callable[[list[PinT]], None],
    verify: Callable[[PinT, Path], Path],
) -> dict[str, Path]:
    """The one way pinned files are fetched (wheels and .deb files alike): what the store or --find-links holds
    with the pinned sha256 is taken as it is, the rest is downloaded into the store in one go and verified."""
    store.mkdir(parents=True, exist_ok=True)
    local_dirs = [store] + ([Path(find_links)] if find_links and Path(find_links).is_dir() else [])
    found: dict[str, Path] = {}
    todo: list[PinT] = []
    for pin in pinned:
        hit = local(pin, local_dirs)
        if hit is not None:
            found[key(pin)] = hit
        else:
            todo.append(pin)
    if todo:
        download(todo)
        for pin in todo:
            found[key(pin)] = verify(pin, store)
    return found


def _pip_download(
    pins: Sequence[WheelPin], dest: Path, *, index_url: str | None, find_links: Path | str | None, timeout: float
) -> None:
    argv: list[str] = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
    ]
    if index_url:
        argv += ["--index-url", index_url]
    if find_links:
        argv += ["--find-links", str(find_links)]
        if not index_url:
            argv.append("--no-index")
    argv += [p.requirement for p in pins]
    result = runner.run(argv, timeout=timeout)
    if result.ok:
        return
    out = result.output
    tail = "\n".join(out.strip().splitlines()[-15:])
    if result.timed_out or any(m in out for m in _NETWORK_MARKERS):
        raise NetworkError(
            "pip could not reach the package index to download " + ", ".join(p.requirement for p in pins),
            "download the wheels on a machine with internet (pip download --no-deps -d wheels "
            + " ".join(p.requirement for p in pins)
            + "), copy the folder here and rerun with "
            "--find-links <that folder>; or pass --index-url for a reachable mirror",
            details=tail,
        )
    if result.missing:
        raise ToolkitError(
            f"could not run pip with {sys.executable}",
            f"install pip into this Python ({sys.executable} -m ensurepip) and rerun",
            details=result.stderr,
        )
    raise SourceError(
        "pip download failed for " + ", ".join(p.requirement for p in pins),
        "check that the index (or --find-links folder) has these exact versions for this platform; "
        "the full pip output is in the command log under " + str(paths.logs_dir()),
        details=tail,
    )


def _checked_download(path: Path, sha256: str, if_again: str) -> Path:
    """``path`` when its sha256 is the pinned one; else the file is set aside (``.bad-sha256``, so a rerun
    downloads it again and nothing is lost) and a SourceError says what to do if it differs again."""
    actual = sha256_file(path)
    if actual == sha256:
        return path
    bad = path.with_name(path.name + ".bad-sha256")
    os.replace(path, bad)
    raise SourceError(
        f"sha256 of {path.name} is {actual}, the pin says {sha256}",
        f"the file was moved to {bad.name}; rerun to download it again. If it differs again, {if_again}",
    )


def _verify_downloaded(pin: WheelPin, store: Path) -> Path:
    stem = pin.name.replace("-", "_") + "-" + pin.version + "-"
    candidates = sorted(p for p in store.glob("*.whl") if p.name.lower().startswith(stem.lower()))
    if not candidates:
        raise SourceError(
            f"pip reported success but no {pin.requirement} wheel is in {store}",
            "rerun; if it persists, pass --find-links with the pinned wheel files",
        )
    for path in candidates:
        expected = pin.matching_file(path.name)
        if expected is None:
            continue
        return _checked_download(
            path,
            expected.sha256,
            "your index or mirror serves a different file: use --index-url https://pypi.org/simple "
            "or --find-links with the wheel downloaded from PyPI",
        )
    names = ", ".join(p.name for p in candidates)
    raise SourceError(
        f"pip downloaded {names} for {pin.requirement}, a file that is not pinned "
        f"(pinned: {', '.join(f.filename for f in pin.files)})",
        "pinned toolkits exist for manylinux x86_64 only; on another platform install the CUDA "
        "toolkit yourself and set CUDA_HOME",
    )


# --------------------------------------------------------------------------------------------
# Debian packages (source = "debian"): apt's own client, run without root and without the system's
# apt state


_APT_NETWORK_MARKERS = (
    "Could not resolve",
    "Temporary failure resolving",
    "Failed to fetch",
    "Could not connect",
    "Connection failed",
    "Connection timed out",
    "Unable to connect",
    "Network is unreachable",
    "No route to host",
)
_APT_SIGNATURE_MARKERS = (
    "NO_PUBKEY",
    "is not signed",
    "EXPKEYSIG",
    "BADSIG",
    "The following signatures couldn't be verified",
    "Signed-By",
    "signed-by",
)


def _pinned_deb_in(pin: DebPin, folders: Sequence[Path]) -> Path | None:
    return _verified_file_in([(pin.filename, pin.sha256)], folders)


def fetch_debs(
    pins: ReleasePins,
    store: Path,
    *,
    find_links: Path | str | None = None,
    mirror: str | None = None,
    timeout: float = 1800.0,
) -> dict[str, Path]:
    """Pinned .deb files of ``pins`` (package -> path), sha256-verified; downloads only what is missing."""

    def download(todo: list[DebPin]) -> None:
        assert pins.apt is not None
        _apt_download(pins.apt, todo, store, mirror=mirror, timeout=timeout)

    return _fetch_pinned(
        pins.debs,
        store,
        find_links,
        key=lambda p: p.package,
        local=_pinned_deb_in,
        download=download,
        verify=_verify_deb,
    )


def apt_options(source: AptSource, root: Path, mirror: str | None = None) -> list[str]:
    """``-o`` options that make apt-get use only a private sources list, state and cache under ``root``.

    Nothing of the system's apt state is read or written: the sources list, the lists, the
    package cache and the (empty) dpkg status are ours, locking is off (no root needed), and the
    system's preferences (pinning) are ignored. apt.conf(.d) still applies, so a configured proxy
    is honoured. The archive signature is checked against ``source.keyring`` (Signed-By).
    """
    state, cache = root / "state", root / "cache"
    for d in (state / "lists" / "partial", cache / "archives" / "partial"):
        d.mkdir(parents=True, exist_ok=True)
    sources = root / "sources.list"
    sources.write_text(source.line(mirror) + "\n", encoding="utf-8")
    status = state / "status"
    if not status.exists():
        status.write_text("", encoding="utf-8")
    opts = {
        "Dir::Etc::SourceList": str(sources),
        "Dir::Etc::SourceParts": "/dev/null",
        "Dir::Etc::Preferences": "/dev/null",
        "Dir::Etc::PreferencesParts": "/dev/null",
        "Dir::State": str(state),
        "Dir::State::status": str(status),
        "Dir::Cache": str(cache),
        "Debug::NoLocking": "1",
        "APT::Architecture": source.arch,
        "APT::Architectures": source.arch,
        "Acquire::Languages": "none",
    }
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # as root apt hands downloads to the `_apt` user, who cannot write into a user's cache
        opts["APT::Sandbox::User"] = "root"
    out: list[str] = []
    for key, value in opts.items():
        out += ["-o", f"{key}={value}"]
    return out


def _manual_deb_hint(source: AptSource, pins: Sequence[DebPin], mirror: str | None) -> str:
    base = (mirror or source.uri).rstrip("/")
    urls = " ".join(f"{base}/{p.pool}" for p in pins)
    sums = ", ".join(f"{p.filename}: {p.sha256}" for p in pins)
    return (
        f"download {urls} (or the same files from https://snapshot.debian.org) on any machine, check "
        f"their sha256 ({sums}), copy them into a folder here and rerun with --find-links <that folder>"
    )


def _apt_download(source: AptSource, pins: Sequence[DebPin], dest: Path, *, mirror: str | None, timeout: float) -> None:
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise ToolkitError(
            "apt-get is not available, so the Debian packages "
            + ", ".join(p.requirement for p in pins)
            + " cannot be downloaded here",
            _manual_deb_hint(source, pins, mirror),
        )
    if not Path(source.keyring).is_file():
        raise ToolkitError(
            f"the Debian archive keyring {source.keyring} is missing, so apt cannot check the archive's signature",
            "install it (apt-get install debian-archive-keyring), or " + _manual_deb_hint(source, pins, mirror),
        )
    opts = apt_options(source, dest / "apt", mirror)
    update = runner.run([apt_get, *opts, "update"], timeout=timeout)
    out = update.output
    if update.timed_out or (not update.ok and any(m in out for m in _APT_NETWORK_MARKERS)):
        raise NetworkError(
            f"apt-get could not reach the Debian archive {mirror or source.uri}",
            "check the connection or proxy (apt honours Acquire::http::Proxy in apt.conf), pass "
            "--debian-mirror URL for a reachable mirror, or " + _manual_deb_hint(source, pins, mirror),
            details="\n".join(out.strip().splitlines()[-10:]),
        )
    if any(m in out for m in _APT_SIGNATURE_MARKERS) and not update.ok:
        raise SourceError(
            f"apt-get could not verify the signature of {mirror or source.uri} {source.suite} with {source.keyring}",
            "update debian-archive-keyring, or " + _manual_deb_hint(source, pins, mirror),
            details="\n".join(out.strip().splitlines()[-10:]),
        )
    if not update.ok:
        raise SourceError(
            f"apt-get update failed for {source.line(mirror)}",
            "the full output is in the command log under " + str(paths.logs_dir()),
            details="\n".join(out.strip().splitlines()[-10:]),
        )
    download = runner.run([apt_get, *opts, "download", *[p.requirement for p in pins]], cwd=dest, timeout=timeout)
    if download.ok:
        return
    out = download.output
    tail = "\n".join(out.strip().splitlines()[-10:])
    if download.timed_out or any(m in out for m in _APT_NETWORK_MARKERS):
        raise NetworkError(
            "apt-get could not download " + ", ".join(p.requirement for p in pins),
            "rerun; or " + _manual_deb_hint(source, pins, mirror),
            details=tail,
        )
    raise SourceError(
        "apt-get download failed for "
        + ", ".join(p.requirement for p in pins)
        + f" from {mirror or source.uri} {source.suite} ({' '.join(source.components)})",
        "the pinned version may have been replaced by a newer Debian point release; "
        + _manual_deb_hint(source, pins, mirror),
        details=tail,
    )


def _verify_deb(pin: DebPin, store: Path) -> Path:
    path = store / pin.filename
    if not path.is_file():
        raise SourceError(
            f"apt-get reported success but {pin.filename} is not in {store}",
            "rerun; if it persists, pass --find-links with the pinned .deb files",
        )
    return _checked_download(
        path,
        pin.sha256,
        "the archive serves a different build of the package: download the pinned file from "
        "https://snapshot.debian.org and pass --find-links",
    )
