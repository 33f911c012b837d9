"""What a check returns, and the target a set of checks judges the machine for."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from mamba_build.diagnose.probes.toolkits import Toolkit


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    id: str
    status: Status
    summary: str
    details: str = ""
    fix: str | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "status": self.status.value,
            "summary": self.summary,
            "details": self.details,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Target:
    """What the checks judge the machine for: a CUDA version and the toolkit chosen for it."""

    cuda: str | None  # requested with --cuda, else None
    toolkit: Toolkit | None
    reason: str
    alternatives: tuple[Toolkit, ...] = field(default=())


def ok(id: str, summary: str, details: str = "") -> Check:
    return Check(id, Status.OK, summary, details)


def warn(id: str, summary: str, fix: str | None = None, details: str = "") -> Check:
    return Check(id, Status.WARN, summary, details, fix)


def fail(id: str, summary: str, fix: str | None = None, details: str = "") -> Check:
    return Check(id, Status.FAIL, summary, details, fix)


def skip(id: str, summary: str, details: str = "") -> Check:
    return Check(id, Status.SKIP, summary, details)
