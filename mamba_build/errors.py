"""Typed errors. Each carries a user-facing fix and maps to a documented exit code.

Exit codes (also in README.md, "Exit codes"):

====  ==========================================================
0     success; for ``doctor``: no check failed
1     ``doctor``/``verify``: at least one check failed
2     usage error (bad option, malformed arch list, unknown CUDA version)
3     environment problem found before building (toolkit, compiler, torch)
4     source problem (download failed, sdist incomplete, bad tarball)
5     patch anchor not found (upstream changed)
6     build failed (compiler or linker error)
7     smoke test failed (import or numerical check); nothing was installed
8     network failure
9     disk full
10    ``test``: upstream's tests were collected but could not run (no CUDA GPU visible)
130   interrupted (Ctrl-C); everything was rolled back
====  ==========================================================
"""

from __future__ import annotations

import textwrap
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    ENVIRONMENT = 3
    SOURCE = 4
    PATCH = 5
    BUILD = 6
    SMOKE = 7
    NETWORK = 8
    DISK_FULL = 9
    NOT_RUN = 10
    INTERRUPTED = 130


class MambaBuildError(Exception):
    """Base of every error we raise on purpose: a message, a fix, an exit code."""

    exit_code: ExitCode = ExitCode.ENVIRONMENT
    title = "error"

    def __init__(self, message: str, fix: str | None = None, *, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details = details

    def render(self, width: int = 100) -> str:
        """One paragraph: what went wrong, then the fix."""
        text = f"mamba-build {self.title}: {self.message.rstrip('.')}."
        if self.fix:
            text += f" Fix: {self.fix.rstrip('.')}."
        out = textwrap.fill(text, width=width, break_on_hyphens=False, break_long_words=False)
        if self.details:
            out += "\n" + self.details.rstrip()
        return out


class UsageError(MambaBuildError):
    exit_code = ExitCode.USAGE
    title = "usage error"


class EnvironmentProblem(MambaBuildError):
    exit_code = ExitCode.ENVIRONMENT
    title = "environment error"


class ToolkitError(EnvironmentProblem):
    title = "toolkit error"


class CompilerError(EnvironmentProblem):
    title = "host compiler error"


class SourceError(MambaBuildError):
    exit_code = ExitCode.SOURCE
    title = "source error"


class PatchError(MambaBuildError):
    exit_code = ExitCode.PATCH
    title = "patch error"


class BuildError(MambaBuildError):
    exit_code = ExitCode.BUILD
    title = "build failed"


class ExtensionMissingError(BuildError):
    """The build "succeeded" but its wheel lacks the extension module it exists for (explain id
    ``extension-missing-from-wheel``): setup.py switched the CUDA build off in a way we did not force on."""

    title = "build failed"


class SmokeTestError(MambaBuildError):
    exit_code = ExitCode.SMOKE
    title = "smoke test failed"


class NetworkError(MambaBuildError):
    exit_code = ExitCode.NETWORK
    title = "network error"


class DiskFullError(MambaBuildError):
    exit_code = ExitCode.DISK_FULL
    title = "disk full"


class Interrupted(MambaBuildError):
    exit_code = ExitCode.INTERRUPTED
    title = "interrupted"
