"""Build-time tools the target torch needs beyond its own package list (pkg_resources)."""

from __future__ import annotations

from mamba_build.build import build_tools
from mamba_build.diagnose.checks.base import Check, fail, ok, skip
from mamba_build.diagnose.environment import Environment


def check_pkg_resources(env: Environment) -> Check:
    """Predicts the pkg_resources trap (explain id pkg-resources-missing): the target torch's cpp_extension
    imports pkg_resources at module level and the environment cannot give it (build_tools.pkg_resources_trap):
    every CUDA extension build against that torch stops in metadata generation. `mamba-build compile` builds
    anyway, with a build-only setuptools overlay (mamba_build/build/build_tools.py); other builds need the fix."""
    py, t = env.python, env.python.torch
    if not t.cpp_extension_path:
        return skip("pkg-resources", "torch's cpp_extension.py not found (see the torch check)")
    if t.pkg_resources_import is None:
        return ok(
            "pkg-resources",
            f"torch {t.version or ''}'s cpp_extension does not import pkg_resources (any setuptools works)".replace(
                "  ", " "
            ),
        )
    trap = build_tools.pkg_resources_trap(py)
    if trap is None:
        where = (py.module_origins or {}).get("pkg_resources")
        return ok(
            "pkg-resources",
            f"torch {t.version}'s cpp_extension imports pkg_resources (line "
            f"{t.pkg_resources_import}); setuptools {py.packages.get('setuptools')} still has it",
            f"found at {where}" if where else "",
        )
    pin = build_tools.pins()["setuptools"]
    return fail(
        "pkg-resources",
        f"{trap}: every CUDA extension build against this torch stops in metadata "
        "generation (`No module named 'pkg_resources'`)",
        build_tools.pkg_resources_fix(py.executable),
        f"{t.cpp_extension_path} line {t.pkg_resources_import}. `mamba-build compile` builds anyway and "
        f"leaves this environment as it is: it puts setuptools=={pin.version} (the newest with "
        f"pkg_resources; {build_tools.pkg_resources_removed_in()} removed it) on the build process's "
        "PYTHONPATH, a build-only overlay recorded in the plan",
    )
