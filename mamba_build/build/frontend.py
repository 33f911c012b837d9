"""What turns a patched source tree into a wheel: its PEP 517 backend's ``build_wheel`` hook, called directly in the
target Python (``backend``, the default), or the plan's installer (``installer``: ``pip wheel --no-build-isolation
--no-deps`` or ``uv build --wheel --no-build-isolation``, mamba_build/plan/installer.py).

Both build without isolation, with the environment as it is. The difference is pip's metadata step: before
``build_wheel``, ``pip wheel`` calls ``prepare_metadata_for_build_wheel``, which for setuptools runs the package's
setup.py (and its torch import) a second time: ~4 s of every cold build on the 2-core machine
(docs/benchmarks.md, "Where the rest of the native wall time goes"), and nothing of it is used here (there are no
dependencies to resolve: --no-deps).
"""

from __future__ import annotations

from pathlib import Path

from mamba_build.errors import SourceError, UsageError

BACKEND, INSTALLER = "backend", "installer"
FRONTENDS = (BACKEND, INSTALLER)
# PEP 517: a tree without pyproject.toml or without [build-system] build-backend is built by setuptools' legacy
# backend (which also puts the tree on sys.path, as running setup.py did)
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"
HOOK_SCRIPT = Path(__file__).with_name("pep517_hook.py")  # what the target Python runs


def choose(requested: str) -> tuple[str, str]:
    """(frontend, reason) for ``--build-frontend``."""
    if requested == BACKEND:
        return BACKEND, (
            "each source tree's PEP 517 backend (pyproject.toml's build-backend; setuptools' by default), its "
            "build_wheel called in the target Python, no build isolation; `pip wheel` would first run setup.py "
            "once more for metadata (--build-frontend installer builds that way)"
        )
    if requested == INSTALLER:
        return INSTALLER, (
            "--build-frontend installer: the installer below builds (pip wheel / uv build), as upstream's docs do"
        )
    raise UsageError(f"unknown --build-frontend {requested!r}", f"use one of: {', '.join(FRONTENDS)}")


def build_system(tree: Path | str) -> tuple[str, tuple[str, ...]]:
    """(build-backend, backend-path) of the tree's pyproject.toml, PEP 517's default where it names none."""
    from mamba_build.tables import tomllib

    path = Path(tree) / "pyproject.toml"
    if not path.is_file():
        return DEFAULT_BACKEND, ()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{path} does not parse ({exc}), so its build backend is unknown",
            "fix the file (pip cannot build this tree either) or use another source (--source, --version)",
        ) from None
    system = doc.get("build-system") or {}
    backend = system.get("build-backend") or DEFAULT_BACKEND
    paths = system.get("backend-path") or []
    return str(backend), tuple(str(Path(tree) / p) for p in paths)


def wheel_argv(plan, tree: Path, out_dir: Path) -> list[str]:
    """The command that builds the wheel of ``tree`` into ``out_dir`` (run with the tree as its cwd)."""
    if plan.build_frontend == INSTALLER:
        return plan.installer_for().wheel_argv(tree, out_dir)
    backend, paths = build_system(tree)
    return [plan.python, str(HOOK_SCRIPT), str(out_dir), backend, *paths]
