"""The build-only overlay: build-time tools a build needs that the target environment lacks or cannot provide.

Upstream's setup.py needs setuptools, packaging and wheel; torch's cpp_extension needs setuptools (and, in
old torch releases, ``pkg_resources``: torch 2.0.1's cpp_extension.py does ``from pkg_resources import
packaging`` at module level, and setuptools >= 82 no longer ships pkg_resources), and builds in parallel
only with ninja. When the target environment cannot provide one of these, mamba-build does NOT install,
upgrade or downgrade anything there: it installs the pinned release (``data/build_tools.toml``) into a
cache folder with ``pip install --target``, checks it in the target Python, and puts that folder first on
the build subprocess's ``PYTHONPATH`` (its ``bin/`` first on ``PATH``, for ninja). The plan records the
overlay and the reason for every tool in it; nothing else sees it.

:func:`needed` decides (pure: from the probed facts), :func:`plan_overlay` names the folder,
:func:`ensure` fills and checks it (the pipeline's first step), :meth:`BuildOverlay.env` is what the build
process gets. The doctor's ``pkg-resources`` check and this module share :func:`pkg_resources_trap`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from mamba_build import paths, runner, tables
from mamba_build.errors import EnvironmentProblem, NetworkError

ORDER = ("setuptools", "packaging", "wheel", "ninja")  # the tools an overlay may hold, in this order
MARKER = ".mamba-build-overlay.json"
_OFFLINE = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Could not fetch URL",
    "No matching distribution found",
)


@dataclass(frozen=True)
class ToolPin:
    name: str
    version: str
    python: str  # Requires-Python of that release
    verify: str  # code run in the target Python with the overlay on PYTHONPATH; prints the version
    why: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def pins() -> dict[str, ToolPin]:
    data = tables.load("build_tools")["tool"]
    last_with = tables.load("setuptools")["pkg_resources"]["last_with"]  # the overlay's setuptools
    return {
        name: ToolPin(name, d["version"] if name != "setuptools" else last_with, d["python"], d["verify"], d["why"])
        for name, d in data.items()
    }


def pkg_resources_removed_in() -> str:
    """The first setuptools without pkg_resources (82.0.0; data/setuptools.toml, checked on PyPI's wheels)."""
    return tables.load("setuptools")["pkg_resources"]["removed_in"]


def pkg_resources_fix(python: str) -> str:
    """The fix for the user's own environment: a setuptools that still has pkg_resources.packaging."""
    return f'{python} -m pip install "{tables.pkg_resources_pin()}"'


@dataclass(frozen=True)
class OverlayTool:
    name: str
    version: str
    reason: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class BuildOverlay:
    """A folder of pinned build tools on the build subprocess's PYTHONPATH (and PATH), and why."""

    path: str
    tools: tuple[OverlayTool, ...]

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(t.requirement for t in self.tools)

    @property
    def bin_dir(self) -> str | None:
        """``<overlay>/bin`` when it holds a program the build runs (ninja), else None."""
        return str(Path(self.path) / "bin") if any(t.name == "ninja" for t in self.tools) else None

    @property
    def ninja(self) -> str | None:
        return str(Path(self.path) / "bin" / "ninja") if self.bin_dir else None

    def env(self, path_env: str | None = None) -> dict[str, str]:
        """PYTHONPATH (and PATH) of the build process: the overlay first, the caller's values after it."""
        out = {"PYTHONPATH": os.pathsep.join([self.path, *filter(None, [os.environ.get("PYTHONPATH")])])}
        if self.bin_dir:
            out["PATH"] = os.pathsep.join(
                [self.bin_dir, path_env if path_env is not None else os.environ.get("PATH", "")]
            )
        return out

    def describe(self) -> str:
        return "; ".join(f"{t.requirement}: {t.reason}" for t in self.tools)


def pkg_resources_trap(pyenv) -> str | None:
    """Why a build against this torch dies importing pkg_resources, or None when it does not.

    ``pyenv`` is a :class:`mamba_build.diagnose.probes.python_env.PythonEnv`. The trap: torch's cpp_extension.py imports
    pkg_resources at module level (read from the file: torch 2.0.1 line 25, ``from pkg_resources import
    packaging``) and the environment cannot give it: no setuptools, a setuptools whose pkg_resources is gone
    (>= 82) or lacks ``packaging`` (70.x) (data/setuptools.toml), or the target Python does not find it."""
    t = pyenv.torch
    line = getattr(t, "pkg_resources_import", None)
    if line is None:
        return None
    have = pyenv.packages.get("setuptools")
    origins = getattr(pyenv, "module_origins", None) or {}
    why: str | None
    if not have:
        why = "setuptools is not installed"
    else:
        why = tables.pkg_resources_verdict(have)
        if why is None and "pkg_resources" in origins and origins["pkg_resources"] is None:
            why = f"the target Python finds no pkg_resources (setuptools {have})"
    if why is None:
        return None
    return f"torch {t.version or '?'}'s cpp_extension.py imports pkg_resources (line {line}), but {why}"


def needed(pyenv, *, ninja_missing: bool = False) -> tuple[OverlayTool, ...]:
    """The tools the build must get from an overlay, each with its reason (in ``ORDER``)."""
    table = pins()
    packages = pyenv.packages
    out: list[OverlayTool] = []
    trap = pkg_resources_trap(pyenv)
    for name in ORDER:
        pin = table[name]
        if name == "setuptools":
            if not packages.get("setuptools"):
                reason = f"setuptools is not installed in {pyenv.executable} ({pin.why})"
            elif trap:
                reason = trap
            else:
                continue
        elif name == "ninja":
            if not ninja_missing:
                continue
            reason = f"no ninja in {pyenv.executable}'s environment or on PATH ({pin.why})"
        elif not packages.get(name):
            reason = f"{name} is not installed in {pyenv.executable} ({pin.why})"
        else:
            continue
        out.append(OverlayTool(name, pin.version, reason))
    return tuple(out)


def overlays_dir() -> Path:
    return paths.subdir("overlays", create=False)


def plan_overlay(pyenv, *, ninja_missing: bool = False) -> BuildOverlay | None:
    """The overlay a build for ``pyenv`` needs (its folder is named for its pins), or None."""
    tools = needed(pyenv, ninja_missing=ninja_missing)
    if not tools:
        return None
    name = "+".join(f"{t.name}-{t.version}" for t in tools)
    return BuildOverlay(str(overlays_dir() / name), tools)


def _python_version(python: str) -> str | None:
    res = runner.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=60)
    return res.stdout.strip() if res.ok else None


def _pip(python: str) -> list[str]:
    """pip to install with: mamba-build's own (the target may have none, e.g. a venv made by uv), else the
    target's."""
    for exe in dict.fromkeys([sys.executable, python]):
        if runner.run([exe, "-m", "pip", "--version"], timeout=60).ok:
            return [exe, "-m", "pip"]
    raise EnvironmentProblem(
        f"no pip to fill the build-tools overlay (neither {sys.executable} nor {python} has pip)",
        f"{sys.executable} -m ensurepip, or install pip into {python}'s environment",
    )


def _verify(overlay: BuildOverlay, where: Path, python: str) -> list[str]:
    """What is wrong with the overlay at ``where`` for ``python`` (empty: every tool checks out)."""
    problems = []
    env = {
        "PYTHONPATH": os.pathsep.join([str(where), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "PYTHONWARNINGS": "ignore",
        "PYTHONNOUSERSITE": "1",
    }
    table = pins()
    for tool in overlay.tools:
        res = runner.run([python, "-c", table[tool.name].verify], timeout=120, extra_env=env)
        got = res.stdout.strip().splitlines()[-1:] if res.ok else []
        if not res.ok or got != [tool.version]:
            detail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            problems.append(
                f"{tool.requirement}: {detail[0] if not res.ok else 'found version ' + (got[0] if got else '?')}"
            )
        if tool.name == "ninja":
            run = runner.run([str(where / "bin" / "ninja"), "--version"], timeout=60)
            if not run.ok or not run.stdout.strip().startswith(tool.version):  # "1.13.2.git.kitware.jobserver-pipe-1"
                problems.append(
                    f"{tool.requirement}: bin/ninja --version says {run.stdout.strip() or run.stderr.strip()!r}"
                )
    return problems


def ensure(
    overlay: BuildOverlay, python: str, *, index_url: str | None = None, find_links: tuple[str, ...] = (), log=None
) -> Path:
    """Fill the overlay folder (once; later builds reuse it after checking it again) and return it.

    Installs the pins with ``pip install --target`` into a temporary folder next to it, checks every tool
    in ``python`` with the overlay on PYTHONPATH, then renames it into place (a half-filled overlay is
    never used). Raises NetworkError when the index cannot be reached, EnvironmentProblem otherwise."""
    final = Path(overlay.path)
    if (final / MARKER).is_file() and not _verify(overlay, final, python):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    pyver = _python_version(python)
    if pyver is None:
        raise EnvironmentProblem(f"cannot run {python} to fill the build-tools overlay", "check --python")
    table = pins()
    bad = [t.requirement for t in overlay.tools if not _python_ok(pyver, table[t.name].python)]
    if bad:
        raise EnvironmentProblem(
            f"the build needs {', '.join(bad)} in a build-only overlay, but Python {pyver} "
            f"is older than {'/'.join(table[r.split('==')[0]].python for r in bad)}",
            "build for a newer Python (--python), or install the tools in that environment "
            "yourself: " + "; ".join(t.reason for t in overlay.tools),
        )
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    moved = False
    try:
        argv = [
            *_pip(python),
            "install",
            "--target",
            str(stage),
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            pyver,
            "--no-warn-script-location",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
        ]
        if index_url:
            argv += ["--index-url", index_url]
        for link in find_links:
            argv += ["--find-links", link]
        if log:
            log(f"overlay {' '.join(overlay.requirements)} -> {final} (build-only; your environment is not changed)")
        res = runner.run(argv + list(overlay.requirements), timeout=900)
        if not res.ok:
            text = (res.stderr or res.stdout).strip()
            err = NetworkError if any(m in text for m in _OFFLINE) else EnvironmentProblem
            raise err(
                f"pip could not fetch the build-only overlay {', '.join(overlay.requirements)}: "
                f"{text.splitlines()[-1] if text else 'exit ' + str(res.returncode)}",
                "check the network / PIP_INDEX_URL (or pass --find-links DIR holding those wheels), or fix the "
                "environment yourself: " + "; ".join(t.reason for t in overlay.tools),
                details=text[-2000:],
            )
        problems = _verify(overlay, stage, python)
        if problems:
            raise EnvironmentProblem(
                "the build-only overlay does not work in " + python + ": " + "; ".join(problems),
                "report it to mamba-build; meanwhile install the tools yourself: "
                + "; ".join(t.reason for t in overlay.tools),
            )
        (stage / MARKER).write_text(
            json.dumps(
                {
                    "requirements": list(overlay.requirements),
                    "reasons": {t.name: t.reason for t in overlay.tools},
                    "checked_with": python,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(stage, final)
        moved = True
        return final
    finally:
        if not moved:
            shutil.rmtree(stage, ignore_errors=True)


def _python_ok(pyver: str, spec: str) -> bool:
    try:
        return Version(pyver) in SpecifierSet(spec)
    except InvalidVersion:
        return True
