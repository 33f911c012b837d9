"""The one way mamba-build runs a script of its own in another Python (the target environment's, which need not
have mamba-build installed): ``python mamba_build/children/NAME.py ARGS...`` through :mod:`mamba_build.runner`
(timeouts, the command line logged), with the results handed back in a file of its own: one JSON value per line,
written by the child's ``_mb_child.emit`` and named by ``$MAMBA_BUILD_RESULT``. Whatever torch, warnings or a
build print on stdout/stderr never gets in the way of the result, and what a child emitted before it crashed is
still read."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mamba_build import runner
from mamba_build.children._mb_child import RESULT_ENV

CHILDREN = Path(__file__).with_name("children")
PROTOCOL_FILE = CHILDREN / "_mb_child.py"  # the child side: copy it next to a child script run from elsewhere


@dataclass
class ChildRun:
    result: runner.CommandResult  # the process: returncode, stdout/stderr (tails), timed_out, missing
    records: list[Any] = field(default_factory=list)  # every JSON value the child emitted, in order

    @property
    def data(self) -> Any | None:
        """The child's (last) result; None when it emitted none (it failed before)."""
        return self.records[-1] if self.records else None


def script(name: str) -> Path:
    """The file of child script ``name`` (mamba_build/children/NAME.py)."""
    return CHILDREN / f"{name}.py"


def read_records(path: Path) -> list[Any]:
    """The JSON values of a result file, one per line; a torn last line (the child was killed) is dropped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def run(
    python: str | os.PathLike,
    name: str,
    args: Sequence[str] = (),
    **kw: Any,
) -> ChildRun:
    """Run child script ``name`` (mamba_build/children/NAME.py) with ``python``: :func:`run_script`."""
    return run_script(python, script(name), args, **kw)


def run_script(
    python: str | os.PathLike,
    path: str | os.PathLike,
    args: Sequence[str] = (),
    **kw: Any,
) -> ChildRun:
    """Run the child script at ``path`` with ``python`` (a script kept outside mamba_build, such as the smoke
    test's copy next to its staged wheels, has ``_mb_child.py`` copied beside it: :data:`PROTOCOL_FILE`)."""
    return run_argv([str(python), str(path), *args], **kw)


def run_argv(
    argv: Sequence[str | os.PathLike],
    *,
    timeout: float,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    max_output: int = runner.MAX_OUTPUT,
) -> ChildRun:
    """Run ``argv`` (a child script, or ``python -m pytest`` with our plugin) with ``$MAMBA_BUILD_RESULT`` set and
    read back what it emitted; with ``log_path`` its output streams into that log (:func:`runner.stream`), else it
    is captured (:func:`runner.run`, keeping at most ``max_output`` characters)."""
    with tempfile.TemporaryDirectory(prefix="mb-child-") as tmp:
        out = Path(tmp) / "result.jsonl"
        extra_env = {**(extra_env or {}), RESULT_ENV: str(out)}
        if log_path is not None:
            res = runner.stream(argv, log_path=log_path, timeout=timeout, cwd=cwd, env=env, extra_env=extra_env)
        else:
            res = runner.run(argv, timeout=timeout, cwd=cwd, env=env, extra_env=extra_env, max_output=max_output)
        return ChildRun(res, read_records(out))
