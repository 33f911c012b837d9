"""What builds and installs into the target environment: its own pip, mamba-build's pip run for it, or uv.

A venv made by uv has no pip, and a mamba-build installed with pipx or `uv tool install` lives apart from
the torch environment it builds for. :func:`choose` picks, once, at plan time (the plan records the choice
and its reason), in this order:

- ``pip``: the target's own pip (``<python> -m pip``);
- ``pip --python``: the target has no pip, but mamba-build's environment has pip >= 22.3: that pip runs
  with its ``--python`` option, which re-executes pip under the target interpreter, so builds and installs
  see the target's torch and packages and nothing is added to the target to do it;
- ``uv``: neither has pip and ``uv`` is on PATH (``uv tool install mamba-build`` and a uv venv):
  ``uv build --wheel --no-build-isolation --python T`` builds, ``uv pip install --python T`` installs;
- none: :class:`~mamba_build.errors.EnvironmentProblem` with the fixes, before anything runs.

Every command line the pipeline, the smoke test's staging and the runtime-requirement install run
against the target is made here (:meth:`Installer.wheel_argv`, :meth:`Installer.install_argv`).
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mamba_build.errors import EnvironmentProblem

PIP_PYTHON_MIN = (22, 3)  # pip's --python option (pip 22.3 release notes)

OWN_PIP, PIP_PYTHON, UV = "pip", "pip --python", "uv"


@dataclass(frozen=True)
class Installer:
    kind: str  # OWN_PIP, PIP_PYTHON or UV
    python: str  # the target interpreter
    program: tuple[str, ...]  # what starts it: (T, -m, pip) | (mamba-build's python, -m, pip, --python, T) | (uv,)
    version: str  # pip's or uv's version
    reason: str

    def wheel_argv(self, tree: Path | str, out_dir: Path | str) -> list[str]:
        """Build the wheel of ``tree`` into ``out_dir`` without isolation and without dependencies (the
        target's torch and setuptools build it)."""
        if self.kind == UV:
            return [
                *self.program,
                "build",
                "--wheel",
                "--no-build-isolation",
                "--python",
                self.python,
                "--out-dir",
                str(out_dir),
                "-v",
                str(tree),
            ]
        return [
            *self.program,
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "--no-cache-dir",
            "-v",
            "-w",
            str(out_dir),
            str(tree),
        ]

    def install_argv(
        self,
        items: Iterable[str | Path],
        *,
        no_deps: bool = False,
        no_index: bool = False,
        force_reinstall: bool = False,
        target: Path | str | None = None,
        constraints: Path | str | None = None,
        index_url: str | None = None,
        find_links: Sequence[str] = (),
    ) -> list[str]:
        """Install wheels or requirements (``items``) into the target environment, or into ``target``
        (a staging directory) when given."""
        if self.kind == UV:
            argv = [*self.program, "pip", "install", "--python", self.python]
            if force_reinstall:
                argv.append("--reinstall")
        else:
            argv = [*self.program, "install", "--disable-pip-version-check", "--no-input"]
            if force_reinstall:
                argv.append("--force-reinstall")
            if target is not None:
                argv.append("--no-warn-script-location")
        if no_deps:
            argv.append("--no-deps")
        if no_index:
            argv.append("--no-index")
        if target is not None:
            argv += ["--target", str(target)]
        if constraints is not None:
            argv += ["-c", str(constraints)]
        if index_url:
            argv += ["--index-url", index_url]
        for link in find_links:
            argv += ["--find-links", str(link)]
        return argv + [str(i) for i in items]

    def command_line(self, items: Sequence[str]) -> str:
        """The shell line a user runs to install ``items`` (requirements) into the target the same way."""
        head = (
            [*self.program, "pip", "install", "--python", self.python]
            if self.kind == UV
            else [*self.program, "install"]
        )
        return shlex.join([*head, *items])

    def describe(self) -> str:
        return f"{shlex.join(self.program)} ({self.kind} {self.version})"


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def own_pip_version() -> str | None:
    """pip's version in mamba-build's own environment (None: no pip here, e.g. `uv tool install`)."""
    try:
        return metadata.version("pip")
    except metadata.PackageNotFoundError:
        return None


def uv_on_path() -> tuple[str, str] | None:
    """(path, version) of the ``uv`` on PATH, or None."""
    from mamba_build import runner

    path = shutil.which("uv")
    if not path:
        return None
    res = runner.run([path, "--version"], timeout=30)
    if not res.ok:
        return None
    words = res.stdout.split()
    return path, (words[1] if len(words) > 1 else res.stdout.strip())


def choose(python: str, target_pip: str | None) -> Installer:
    """The way to build and install into ``python``'s environment; ``target_pip``: the version of pip
    installed there (None: none, e.g. a venv made by uv)."""
    if target_pip:
        return Installer(OWN_PIP, python, (python, "-m", "pip"), target_pip, f"the environment's own pip {target_pip}")
    host = own_pip_version()
    if host and _version_tuple(host) >= PIP_PYTHON_MIN:
        return Installer(
            PIP_PYTHON,
            python,
            (sys.executable, "-m", "pip", "--python", python),
            host,
            f"{python} has no pip (a venv made by uv has none): mamba-build's own pip {host} runs for "
            "it with pip's --python option, so nothing is added to that environment",
        )
    uv = uv_on_path()
    if uv is not None:
        why = (
            f"mamba-build's own pip {host} is older than 22.3 (no --python option)"
            if host
            else "mamba-build's environment has no pip either"
        )
        return Installer(
            UV,
            python,
            (uv[0],),
            uv[1],
            f"{python} has no pip, and {why}: uv {uv[1]} ({uv[0]}) builds with `uv build` and "
            "installs with `uv pip install --python`",
        )
    raise EnvironmentProblem(
        f"{python} has no pip, mamba-build's own environment has "
        + (f"pip {host} (--python needs >= 22.3)" if host else "no pip")
        + ", and no uv is on PATH: nothing can build and install into that environment",
        f"put uv on PATH (`pip install uv` or `pipx install uv`), or add pip to the environment "
        f"(`uv pip install --python {python} pip` or `{python} -m ensurepip`)",
    )


def target_pip_version(python: str) -> str | None:
    """The version of the pip installed in ``python``'s environment (None: none there, e.g. a uv venv)."""
    from mamba_build import runner

    res = runner.run([python, "-c", "from importlib.metadata import version; print(version('pip'))"], timeout=60)
    return res.stdout.strip() or None if res.ok else None


def for_python(python: str) -> Installer:
    """:func:`choose` for ``python`` when no environment probe is at hand (``test``, ``install``)."""
    return choose(python, target_pip_version(python))


def default(python: str) -> Installer:
    """The target's own pip, without asking (plans made before the choice was recorded, tests)."""
    return Installer(OWN_PIP, python, (python, "-m", "pip"), "", "the environment's own pip")
