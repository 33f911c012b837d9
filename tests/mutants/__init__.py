"""Mutants of the real kernels (mutants.toml): load them, apply one to a source tree, take it back."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPEC = Path(__file__).resolve().parent / "mutants.toml"
SUFFIX = ".mbmut"


@dataclass(frozen=True)
class Mutant:
    id: str
    package: str
    bug: str
    file: str
    anchor: str
    replace: str
    expect: tuple[str, ...]
    unit: str | None = None
    may_fail: tuple[str, ...] = ()
    must_pass: tuple[str, ...] = ()

    @property
    def compiled(self) -> str:
        """The translation unit that must be rebuilt."""
        return self.unit or self.file

    def judge(self, failing: set[str], passing: set[str]) -> tuple[bool, str]:
        """(caught, why): every expected check failed and every must_pass check passed."""
        missed = [c for c in self.expect if c not in failing]
        broke = [c for c in self.must_pass if c not in passing]
        extra = sorted(failing - set(self.expect) - set(self.may_fail))
        why = []
        if missed:
            why.append("expected to fail but did not: " + ", ".join(missed))
        if broke:
            why.append("should have passed: " + ", ".join(broke))
        if extra:
            why.append("also failed: " + ", ".join(extra))
        return not missed and not broke, "; ".join(why) or "caught, in the expected checks"


def load(package: str | None = None) -> list[Mutant]:
    data = tomllib.loads(SPEC.read_text(encoding="utf-8"))
    out = []
    for m in data["mutant"]:
        kw = dict(m)
        for key in ("expect", "may_fail", "must_pass"):
            kw[key] = tuple(kw.get(key, ()))
        out.append(Mutant(**kw))
    return [m for m in out if package is None or m.package == package]


class MutationError(RuntimeError):
    pass


@dataclass
class Applied:
    """A mutant in a tree; :meth:`revert` puts every byte back (and removes the header copy)."""

    mutant: Mutant
    tree: Path
    saved: dict[Path, bytes] = field(default_factory=dict)
    created: list[Path] = field(default_factory=list)

    def revert(self) -> None:
        for path, data in self.saved.items():
            path.write_bytes(data)
        for path in self.created:
            path.unlink(missing_ok=True)
        self.saved, self.created = {}, []


def _replace_once(text: str, old: str, new: str, where: Path) -> str:
    n = text.count(old)
    if n != 1:
        raise MutationError(f"{where}: the anchor occurs {n} times, not once: {old[:80]!r}")
    return text.replace(old, new)


def apply(mutant: Mutant, tree: Path) -> Applied:
    """Mutate ``tree`` in place. A header's mutation goes into a copy that only ``mutant.unit`` includes."""
    tree = Path(tree)
    done = Applied(mutant, tree)
    src = tree / mutant.file
    text = src.read_text(encoding="utf-8")
    mutated = _replace_once(text, mutant.anchor, mutant.replace, src)
    try:
        if mutant.unit is None or mutant.unit == mutant.file:
            done.saved[src] = src.read_bytes()
            src.write_text(mutated, encoding="utf-8")
        else:
            copy = src.with_name(src.stem + SUFFIX + src.suffix)
            copy.write_text(mutated, encoding="utf-8")
            done.created.append(copy)
            unit = tree / mutant.unit
            done.saved[unit] = unit.read_bytes()
            unit.write_text(_replace_once(unit.read_text(encoding="utf-8"), f'#include "{src.name}"',
                                          f'#include "{copy.name}"  // mamba-build mutant {mutant.id}', unit),
                            encoding="utf-8")
    except BaseException:
        done.revert()
        raise
    return done
