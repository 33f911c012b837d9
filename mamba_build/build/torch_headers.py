"""torch's C++ headers at one path per content, so that a compiler cache hits across Python versions.

A wheel matrix builds the same (package, torch, CUDA, archs) once per Python version. The ``.cu`` units of
mamba-ssm and causal-conv1d include torch's c10/ATen headers and cub, never Python's, and every Python's torch
wheel of one release ships the same headers; so the device code of every unit is the same for every Python.
What keeps ccache from reusing it is the path: each venv has torch's headers at its own place, and nvcc gets
``-I<venv>/lib/python3.X/site-packages/torch/include``. ccache's direct mode hashes that argument, and its
preprocessor mode hashes the include paths named in the preprocessed output's line markers (measured with
ccache 4.7.5: two copies of the same headers at two paths, 0 hits), which also end up in the objects' line
tables (``-lineinfo``).

So the nvcc units get the headers at ``<cache>/torch-include/<torch version>-<digest>/include``, a copy made
once per content (the digest: the sha256 of every header, as the wheel's RECORD lists them, checked against
the files' sizes; a torch without a RECORD is hashed file by file). ``PYTORCH_NVCC`` runs nvcc through
``python -m mamba_build.build.torch_headers --map FROM=TO -- <launcher> <nvcc>``, which rewrites the ``-I`` /
``-isystem`` arguments that name this torch's include directory and then executes the launcher. Same content,
same path: a unit compiled for Python 3.11 is a cache hit for 3.12, and the two objects are byte-identical.
The host ``.cpp`` units include ``torch/extension.h`` and so Python.h: they are compiled per Python (torch's
own wrapper puts the launcher in front of them; they miss across Pythons, as they must).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mamba_build import paths

SUBDIR = "torch-include"


@dataclass(frozen=True)
class HeaderMap:
    """This torch's include directory and the content-addressed copy nvcc gets instead."""

    source: str  # <site-packages>/torch/include
    target: str  # <cache>/torch-include/<version>-<digest>/include
    digest: str
    how: str  # "RECORD" (the wheel's own sha256 list, sizes checked) or "files" (hashed here)


def _record_digest(torch_dir: Path) -> str | None:
    """sha256 over the RECORD lines of torch/include/**, when every listed size matches the file on disk."""
    site = torch_dir.parent
    for info in sorted(site.glob("torch-*.dist-info")):
        record = info / "RECORD"
        try:
            lines = record.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        rows = sorted(line for line in lines if line.startswith("torch/include/"))
        if not rows or not any(line.startswith("torch/__init__.py,") for line in lines):
            continue
        for row in rows:
            name, _, rest = row.partition(",")
            size = rest.rpartition(",")[2]
            try:
                if size and os.stat(site / name).st_size != int(size):
                    return None  # a header changed after install: hash the files themselves
            except (OSError, ValueError):
                return None
        return hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return None


def _files_digest(include: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(include):
        dirs.sort()
        for f in sorted(files):
            p = Path(dirpath) / f
            h.update(str(p.relative_to(include)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def header_map(torch_file: str | None, torch_version: str) -> HeaderMap | None:
    """Where the headers of the torch at ``torch_file`` go (nothing is copied here: the first nvcc unit of a
    build makes the copy, :func:`ensure_copy`); None when this torch has no include directory."""
    if not torch_file:
        return None
    torch_dir = Path(torch_file).resolve().parent
    include = torch_dir / "include"
    if not include.is_dir():
        return None
    digest, how = _record_digest(torch_dir), "RECORD"
    if digest is None:
        digest, how = _files_digest(include), "files"
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in torch_version)
    return HeaderMap(str(include), str(paths.cache_home() / SUBDIR / f"{safe}-{digest[:16]}" / "include"), digest, how)


def dir_map(include: str) -> HeaderMap | None:
    """The content-addressed place of another include directory (the plan's CPATH: CUDA math headers from torch's
    nvidia-* packages, ~200 files, hashed here); None when it is not a directory."""
    d = Path(include)
    if not d.is_dir():
        return None
    digest = _files_digest(d)
    return HeaderMap(str(d), str(paths.cache_home() / SUBDIR / f"cpath-{digest[:16]}" / "include"), digest, "files")


def header_maps(torch_file: str | None, torch_version: str, extra_dirs=()) -> list[HeaderMap]:
    """torch's headers and the plan's extra include directories, each at one path per content."""
    maps = [header_map(torch_file, torch_version), *(dir_map(d) for d in extra_dirs)]
    return [m for m in maps if m is not None]


def ensure_copy(source: str, target: str) -> None:
    """Copy ``source`` to ``target`` unless it is there (atomic: parallel units race, one rename wins)."""
    dest = Path(target)
    if dest.is_dir():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".copy-", dir=dest.parent))
    try:
        shutil.copytree(source, tmp / "include", symlinks=True)
        try:
            (tmp / "include").rename(dest)
        except OSError:
            if not dest.is_dir():  # not another unit's copy that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rewrite(argv: Sequence[str], source: str, target: str) -> list[str]:
    """``argv`` with every include directory under ``source`` moved under ``target`` (-I/-isystem, joined or not)."""

    def moved(path: str) -> str:
        return _moved(path, source, target)

    out: list[str] = []
    take_next = False
    for arg in argv:
        if take_next:
            out.append(moved(arg))
            take_next = False
        elif arg in ("-I", "-isystem", "--include-path"):
            out.append(arg)
            take_next = True
        elif arg.startswith("-isystem"):
            out.append("-isystem" + moved(arg[len("-isystem") :]))
        elif arg.startswith("--include-path="):
            out.append("--include-path=" + moved(arg[len("--include-path=") :]))
        elif arg.startswith("-I"):
            out.append("-I" + moved(arg[2:]))
        else:
            out.append(arg)
    return out


def launcher_argv(mappings, command: Sequence[str]) -> list[str]:
    """What PYTORCH_NVCC runs: this module (in mamba-build's own Python), then ``command`` (launcher, nvcc)."""
    if isinstance(mappings, HeaderMap):
        mappings = [mappings]
    maps = [a for m in mappings for a in ("--map", f"{m.source}={m.target}")]
    return [sys.executable, "-m", "mamba_build.build.torch_headers", *maps, "--", *command]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    pairs: list[tuple[str, str]] = []
    while len(args) >= 2 and args[0] == "--map" and "=" in args[1]:
        source, _, target = args[1].partition("=")
        pairs.append((source, target))
        args = args[2:]
    if not pairs or len(args) < 2 or args[0] != "--":
        print(
            "usage: python -m mamba_build.build.torch_headers --map FROM=TO [--map FROM=TO ...] -- COMMAND ...",
            file=sys.stderr,
        )
        return 2
    command = args[1:]
    cpath = os.environ.get("CPATH")
    for source, target in pairs:
        ensure_copy(source, target)
        command = rewrite(command, source, target)
        if cpath:
            cpath = os.pathsep.join(_moved(p, source, target) for p in cpath.split(os.pathsep))
    if cpath is not None:
        os.environ["CPATH"] = cpath
    os.execvp(command[0], command)
    return 127  # not reached


def _moved(path: str, source: str, target: str) -> str:
    src = source.rstrip("/")
    if path == src or path.startswith(src + "/"):
        return target.rstrip("/") + path[len(src) :]
    return path


if __name__ == "__main__":
    sys.exit(main())
