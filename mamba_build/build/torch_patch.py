"""torch's host-compiler table (``CUDA_GCC_VERSIONS``) widened for one build.

Two modes:

* ``process`` (default): no file is touched. The setup.py recipe ``torch-compiler-map``
  (patches/setup-common.toml, enabled by ``PatchOptions.compiler_bounds``) updates the table inside
  the build process. :func:`patched_torch_compiler_map` only reports what it would do.
* ``inplace``: ``torch/utils/cpp_extension.py`` of the chosen Python is edited (recipe
  ``torch-compiler-map-inplace`` in patches/torch.toml), after a byte copy is saved next to it as
  ``cpp_extension.py.mamba-build-backup`` and a journal is written to
  ``<cache>/torch-patches/*.json``. The original is put back in ``finally`` (errors and Ctrl-C too)
  and checked byte for byte. If the process dies before that, ``mamba-build restore-torch``
  finds the journal (or the backup next to the file) and puts it back.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mamba_build import child, paths
from mamba_build.build.patching import PatchOptions, VersionBounds, apply_recipes_to_text, load_recipes
from mamba_build.errors import EnvironmentProblem, PatchError, UsageError

log = logging.getLogger("mamba_build.build.torch_patch")

BACKUP_SUFFIX = ".mamba-build-backup"
MODES = ("process", "inplace")


@dataclass
class TorchPatchState:
    mode: str
    target: Path | None = None
    backup: Path | None = None
    journal: Path | None = None
    applied: bool = False
    restored: bool = False
    notes: list[str] = field(default_factory=list)


def backup_path(target: Path) -> Path:
    return target.with_name(target.name + BACKUP_SUFFIX)


def journal_dir(create: bool = True) -> Path:
    return paths.subdir("torch-patches", create=create)


def _journal_path(target: Path) -> Path:
    key = hashlib.sha256(str(target.resolve()).encode()).hexdigest()[:16]
    return journal_dir() / f"{key}.json"


def locate_cpp_extension(python: str | os.PathLike | None = None) -> Path:
    """Path of torch/utils/cpp_extension.py of ``python`` (default: this interpreter)."""
    exe = str(python or sys.executable)
    ran = child.run(exe, "cpp_extension_path", timeout=60)  # without importing torch (which takes seconds)
    res = ran.result
    if res.missing:
        raise UsageError(f"cannot run Python {exe}: {res.stderr.strip()}", "pass an existing interpreter with --python")
    if not res.ok:
        raise EnvironmentProblem(
            f"torch is not installed for {exe}", "install torch into that environment, or pass the right --python"
        )
    path = Path(ran.data or "")
    if not path.is_file():
        raise EnvironmentProblem(
            f"{path} does not exist (torch installation of {exe} is incomplete)", "reinstall torch"
        )
    return path


def _render_inplace(original: str, bounds: VersionBounds, clang_bounds: VersionBounds | None) -> str:
    options = PatchOptions(archs=("9.0",), compiler_bounds=bounds, clang_bounds=clang_bounds)
    recipes = load_recipes("torch")
    outcome = apply_recipes_to_text(original, recipes, options)
    if outcome.missing:
        rid, why = next(iter(outcome.missing.items()))
        raise PatchError(
            f"patch recipe {rid!r} (torch.toml) found no anchor in torch's cpp_extension.py: {why}",
            "this torch has no CUDA_GCC_VERSIONS table; use the default --patch-torch process "
            "or report it to mamba-build with your torch version",
        )
    return outcome.text


def _write_journal(target: Path, backup: Path, patched_sha: str, original_sha: str) -> Path:
    jp = _journal_path(target)
    data = {
        "target": str(target),
        "backup": str(backup),
        "original_sha256": original_sha,
        "patched_sha256": patched_sha,
        "pid": os.getpid(),
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    tmp = jp.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, jp)
    return jp


def _read_journal(jp: Path) -> dict | None:
    try:
        return json.loads(jp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class RestoreOutcome:
    target: Path
    status: str  # "restored" | "nothing to restore" | "backup already matches" | "stale backup"
    detail: str = ""


def restore_file(target: Path, *, journal: dict | None = None) -> RestoreOutcome:
    """Put ``<target>.mamba-build-backup`` back onto ``target`` and verify byte equality.

    A backup is only restored over a file that is either our patched version (sha256 from the
    journal, or the mamba-build marker) or identical to it; a file that changed since (torch
    reinstalled) is never overwritten: that is reported as "stale backup" and left alone.
    """
    target = Path(target)
    backup = backup_path(target)
    jp = _journal_path(target)
    if journal is None and jp.exists():
        journal = _read_journal(jp)
    if not backup.exists():
        if jp.exists():
            jp.unlink()
        return RestoreOutcome(target, "nothing to restore")
    if not target.exists():
        shutil.copy2(backup, target)
    else:
        cur = target.read_bytes()
        if cur == backup.read_bytes():
            backup.unlink()
            if jp.exists():
                jp.unlink()
            return RestoreOutcome(target, "backup already matches")
        ours = b"# mamba-build:torch-compiler-map-inplace" in cur or (
            journal is not None and hashlib.sha256(cur).hexdigest() == journal.get("patched_sha256")
        )
        if not ours:
            return RestoreOutcome(
                target,
                "stale backup",
                f"{target} changed since mamba-build patched it (torch reinstalled?); "
                f"the backup {backup} was left alone",
            )
        tmp = target.with_name(f".{target.name}.restore-{os.getpid()}")
        shutil.copy2(backup, tmp)
        os.replace(tmp, target)
    if target.read_bytes() != backup.read_bytes():
        raise EnvironmentProblem(
            f"restoring {target} from {backup} did not give identical bytes", f"copy {backup} over {target} by hand"
        )
    backup.unlink()
    if jp.exists():
        jp.unlink()
    return RestoreOutcome(target, "restored")


def restore_all(targets: list[Path] | None = None) -> list[RestoreOutcome]:
    """Restore every journaled backup, plus the given targets (whose backups may lack a journal)."""
    todo: dict[str, tuple[Path, dict | None]] = {}
    jd = journal_dir(create=False)
    if jd.is_dir():
        for jp in sorted(jd.glob("*.json")):
            data = _read_journal(jp)
            if not data or "target" not in data:
                continue
            todo[str(Path(data["target"]))] = (Path(data["target"]), data)
    for t in targets or []:
        todo.setdefault(str(Path(t)), (Path(t), None))
    return [restore_file(path, journal=data) for path, data in todo.values()]


@contextlib.contextmanager
def patched_torch_compiler_map(
    bounds: VersionBounds | None,
    mode: str = "process",
    *,
    python: str | os.PathLike | None = None,
    target: str | os.PathLike | None = None,
    clang_bounds: VersionBounds | None = None,
) -> Iterator[TorchPatchState]:
    """Widen torch's compiler table for the duration of the ``with`` block.

    ``mode="process"``: nothing is touched (the setup.py recipe does it in the build process).
    ``mode="inplace"``: edit ``target`` (default: cpp_extension.py of ``python``), restore on exit,
    whatever the exit (exception, KeyboardInterrupt), and verify the bytes.
    """
    if mode not in MODES:
        raise UsageError(f"unknown torch patch mode {mode!r}", f"use one of {', '.join(MODES)}")
    state = TorchPatchState(mode=mode)
    if mode == "process" or not bounds:
        if mode == "inplace":
            state.notes.append("no compiler bounds to set: cpp_extension.py left alone")
        yield state
        return

    path = Path(target) if target is not None else locate_cpp_extension(python)
    backup = backup_path(path)
    if backup.exists():  # a previous run died before restoring: put it back first
        outcome = restore_file(path)
        if outcome.status == "stale backup":
            raise EnvironmentProblem(
                outcome.detail, f"delete {backup} if torch was reinstalled since, then run the build again"
            )
        state.notes.append(f"earlier backup: {outcome.status}")
    original = path.read_bytes()
    patched = _render_inplace(original.decode("utf-8"), bounds, clang_bounds).encode("utf-8")
    try:
        shutil.copy2(path, backup)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot write {backup}: {exc}",
            "use the default --patch-torch process (no file is touched), or make torch's directory writable",
        ) from None
    state.target, state.backup = path, backup
    try:
        state.journal = _write_journal(
            path, backup, hashlib.sha256(patched).hexdigest(), hashlib.sha256(original).hexdigest()
        )
        tmp = path.with_name(f".{path.name}.mamba-build-{os.getpid()}")
        with open(tmp, "wb") as fh:
            fh.write(patched)
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
        state.applied = True
        log.info("patched %s (backup %s)", path, backup)
        yield state
    finally:
        outcome = restore_file(path)
        state.restored = outcome.status in ("restored", "backup already matches")
        if not state.restored:
            raise EnvironmentProblem(
                f"could not restore {path}: {outcome.status} {outcome.detail}", "run `mamba-build restore-torch`"
            )
        if path.read_bytes() != original:
            raise EnvironmentProblem(
                f"{path} differs from its original after restoring",
                "reinstall torch (pip install --force-reinstall --no-deps torch==<version>)",
            )
