"""A small engine that applies the declarative patch recipes in ``patches/*.toml``.

Recipe file format (one TOML file per package, ``patches/<package>.toml``)::

    include = ["setup-common.toml"]        # optional: recipes shared between packages

    [[recipe]]
    id = "force-build"                      # unique; also the marker ``# mamba-build:force-build``
    description = "..."
    file = "setup.py"                       # target, relative to the source tree
    kind = "regex_replace"                  # regex_replace | insert_before | insert_after | append | split_units
    anchors = ['^FORCE_BUILD = .*$']        # alternatives (Python regex, MULTILINE); first that matches wins
    count = 1                               # exact number of matches required (default 1) ...
    min_count = 1                           # ... or at least this many (then ``count`` is ignored)
    template = '''...{placeholder}...'''    # replacement / inserted text
    when = "use_ninja"                      # optional: option that enables it; "!use_ninja" negates
    versions = ">=1.1"                      # optional: PEP 440 specifier on the package version
    group = "cuda-build-switch"             # optional: see "Generations" below

Generations: recipes that share a ``group`` (same file) are alternatives for different generations of
that file (mamba's releases have ``SKIP_CUDA_BUILD``, its main branch since July 2026 ``KEEP_CUDA_BUILD``).
Exactly one of them must find its anchor; the others report ``skipped (other generation)``. None found
is "anchor not found" for each (loud, as always); more than one is an error too (the file is neither).

Kind ``split_units`` (a build-speed recipe) splits one translation unit into several: each anchor
match is one explicit template instantiation line; the target keeps the shared code plus one of them
and sibling files ``<stem>.mbpartNN<suffix>`` get the same code plus one other each, so nvcc compiles
them in parallel (same templates, same flags: the kernels are the same). Extra keys:
``sources_file`` / ``sources_anchor`` (the line listing the target in setup.py; the new files are
inserted after it) and optional ``first`` (a regex: matching units go first, the longest ones).
Optional, for a unit with one instantiation whose kernels are many (a launcher that dispatches over
launch shapes): ``expand``, a list of templates rendered from each anchor match (its named groups,
``{match}``): each rendered text is one unit, the first stays in the target (it can declare the others'
instantiations ``extern template`` and keep the dispatcher); ``requires_file`` and ``requires``,
regexes that must each match that file (e.g. the dispatcher and the launcher's signature the templates
name), else the recipe is "anchor not found". ``file`` may be a glob (``*``): every matching file is
split the same way, and ``sources_anchor`` then names the file's line with ``{file}`` (its path,
regex-escaped).

Placeholders are ``{name}``: the option values of :func:`option_placeholders`, the named groups of
the anchor match (``{indent}`` ...) and ``{match}`` (the whole matched text). Inserted blocks are
wrapped in ``# mamba-build:<id> begin`` / ``# mamba-build:<id> end`` lines at the anchor's
indentation; a ``regex_replace`` template must itself contain ``mamba-build:<id>``.

Idempotence: the untouched file is kept next to the target as ``<file>.mamba-build-orig`` and every
run patches from that pristine copy, so applying the same options twice leaves the file
byte-identical (and reports ``already applied``), and different options re-patch cleanly.
A recipe whose anchor is not found is an error (:class:`PatchError`), never silence.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from mamba_build import paths
from mamba_build.errors import PatchError, UsageError
from mamba_build.plan.archs import gencode_flags, parse_arch_list  # noqa: F401 (re-exported)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRISTINE_SUFFIX = ".mamba-build-orig"
MARKER = "mamba-build:"
KINDS = ("regex_replace", "insert_before", "insert_after", "append", "split_units")
PART_INFIX = ".mbpart"

_PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")

VersionBounds = Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]]


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchOptions:
    """What the build plan decided; every recipe renders from these values only."""

    archs: tuple[str, ...]  # "9.0", "8.0", "9.0+PTX", "9.0a"
    nvcc_threads: int = 4
    split_compile: int | None = None  # nvcc --split-compile N (CUDA >= 11.8)
    use_ninja: bool = True
    cxx11_abi: bool = False  # FORCE_CXX11_ABI: set True when torch uses the C++11 ABI
    # torch.utils.cpp_extension.CUDA_GCC_VERSIONS entries to set in the build process:
    # {"13.0": ((6, 0, 0), (16, 0))}  (min inclusive, max exclusive, as torch's own table)
    compiler_bounds: VersionBounds | None = None
    clang_bounds: VersionBounds | None = None  # same for CUDA_CLANG_VERSIONS
    allow_unsupported_compiler: bool = False  # adds nvcc -allow-unsupported-compiler
    split_units: bool = False  # split_units recipes (one unit per instantiation)
    cxx_std: str | None = None  # "20": -std=c++17 raised to what torch's headers need

    def __post_init__(self) -> None:
        if not self.archs:
            raise UsageError("no CUDA architecture given", "pass at least one, e.g. --arch 9.0")
        object.__setattr__(self, "archs", parse_arch_list(self.archs))
        if int(self.nvcc_threads) < 1:
            raise UsageError(f"nvcc threads must be >= 1, not {self.nvcc_threads}", "use --threads 1 or more")
        if self.split_compile is not None and int(self.split_compile) < 0:
            raise UsageError(
                f"--split-compile must be >= 0, not {self.split_compile}",
                "use 0 (nvcc picks) or a positive thread count",
            )
        for name in ("compiler_bounds", "clang_bounds"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _normalise_bounds(value, name))

    def as_dict(self) -> dict[str, Any]:
        return {
            "archs": list(self.archs),
            "nvcc_threads": self.nvcc_threads,
            "split_compile": self.split_compile,
            "use_ninja": self.use_ninja,
            "cxx11_abi": self.cxx11_abi,
            "compiler_bounds": _bounds_json(self.compiler_bounds),
            "clang_bounds": _bounds_json(self.clang_bounds),
            "allow_unsupported_compiler": self.allow_unsupported_compiler,
            "split_units": self.split_units,
            "cxx_std": self.cxx_std,
        }


def _bounds_json(bounds: VersionBounds | None):
    return None if bounds is None else {k: [list(v[0]), list(v[1])] for k, v in bounds.items()}


def _normalise_bounds(bounds: Mapping, name: str) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    out: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for cuda, pair in dict(bounds).items():
        if not re.fullmatch(r"\d+\.\d+", str(cuda)):
            raise UsageError(f"{name}: CUDA version {cuda!r} is not X.Y", 'use keys like "13.0"')
        try:
            lo, hi = pair
            lo_t, hi_t = tuple(int(x) for x in lo), tuple(int(x) for x in hi)
        except (TypeError, ValueError):
            raise UsageError(
                f"{name}[{cuda}] must be ((min...), (max_exclusive...)), not {pair!r}",
                "pass integer tuples such as ((6, 0, 0), (16, 0))",
            ) from None
        if not lo_t or not hi_t or lo_t >= hi_t:
            raise UsageError(f"{name}[{cuda}]: empty range {lo_t} .. {hi_t}", "min must be below max")
        out[str(cuda)] = (lo_t, hi_t)
    return out


def option_placeholders(options: PatchOptions) -> dict[str, str]:
    """The ``{name}`` values recipe templates may use."""
    flags = gencode_flags(options.archs)
    pairs = [f"{flags[i]!r}, {flags[i + 1]!r}," for i in range(0, len(flags), 2)]
    split = "" if options.split_compile is None else f', "--split-compile", "{int(options.split_compile)}"'
    return {
        "archs": ",".join(options.archs),
        "gencode_pairs": "\n".join("    " + p.replace("'", '"') for p in pairs),
        "nvcc_threads": str(int(options.nvcc_threads)),
        "split_compile_args": split,
        "cxx11_abi": "True" if options.cxx11_abi else "False",
        "gcc_bounds": repr(dict(options.compiler_bounds or {})),
        "clang_bounds": repr(dict(options.clang_bounds or {})),
        "cxx_std": str(options.cxx_std or ""),
    }


# --------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    id: str
    description: str
    file: str
    kind: str
    anchors: tuple[str, ...]
    template: str
    count: int | None = 1
    min_count: int | None = None
    when: str | None = None
    versions: str | None = None
    source: str = ""  # the recipe file it came from
    sources_file: str | None = None  # split_units: the file listing the sources (setup.py)
    sources_anchor: str | None = None  # split_units: the regex of the target's line there
    first: str | None = None  # split_units: units matching this regex are listed first
    expand: tuple[str, ...] = ()  # split_units: unit templates per anchor match (the first stays in the target)
    requires_file: str | None = None  # split_units: the file ``requires`` is checked against
    requires: tuple[str, ...] = ()  # split_units: regexes that must each match requires_file
    group: str | None = None  # alternatives for different generations of the file: exactly one must match

    def enabled_by(self, options: PatchOptions) -> bool:
        if not self.when:
            return True
        negate = self.when.startswith("!")
        value = getattr(options, self.when.lstrip("!"))
        on = bool(value) if not isinstance(value, Mapping) else len(value) > 0
        return not on if negate else on

    def applies_to(self, version: str | None) -> bool:
        if not self.versions or version is None:
            return True
        try:
            return Version(version) in SpecifierSet(self.versions)
        except InvalidVersion:
            return True


def _recipe_from_toml(raw: Mapping[str, Any], source: str) -> Recipe:
    where = f"{source}: recipe {raw.get('id', '?')!r}"
    for key in ("id", "description", "file", "kind"):
        if not raw.get(key):
            raise PatchError(f"{where} has no {key!r}", "fix the recipe file (patches/*.toml)")
    if raw["kind"] not in KINDS:
        raise PatchError(
            f"{where}: unknown kind {raw['kind']!r} (known: {', '.join(KINDS)})", "fix the recipe file (patches/*.toml)"
        )
    anchors = raw.get("anchors") or ([raw["anchor"]] if raw.get("anchor") else [])
    if not anchors:
        raise PatchError(f"{where} has no anchor", "every recipe needs an anchor regex, also kind=append")
    for a in anchors:
        try:
            re.compile(a, re.MULTILINE)
        except re.error as exc:
            raise PatchError(f"{where}: anchor {a!r} is not a valid regex ({exc})", "fix the recipe file") from None
    template = raw.get("template", "")
    if raw["kind"] == "split_units":
        for key in ("sources_file", "sources_anchor"):
            if not raw.get(key):
                raise PatchError(f"{where}: a split_units recipe needs {key!r}", "fix the recipe file")
        if bool(raw.get("requires")) != bool(raw.get("requires_file")):
            raise PatchError(f"{where}: 'requires' and 'requires_file' go together", "fix the recipe file")
        if raw.get("expand") is not None and (not isinstance(raw["expand"], list) or len(raw["expand"]) < 2):
            raise PatchError(f"{where}: 'expand' must list at least two unit templates", "fix the recipe file")
        for a in raw.get("requires") or []:
            try:
                re.compile(a, re.MULTILINE)
            except re.error as exc:
                raise PatchError(
                    f"{where}: requires {a!r} is not a valid regex ({exc})", "fix the recipe file"
                ) from None
        for key in ("sources_anchor", "first"):
            if raw.get(key):
                try:
                    re.compile(raw[key], re.MULTILINE)
                except re.error as exc:
                    raise PatchError(
                        f"{where}: {key} {raw[key]!r} is not a valid regex ({exc})", "fix the recipe file"
                    ) from None
    if raw["kind"] == "regex_replace" and f"{MARKER}{raw['id']}" not in template:
        raise PatchError(
            f"{where}: a regex_replace template must carry the marker '{MARKER}{raw['id']}'",
            "add it as a trailing comment in the template",
        )
    if raw.get("group") is not None and (
        raw["kind"] == "split_units" or not isinstance(raw["group"], str) or not raw["group"]
    ):
        raise PatchError(
            f"{where}: 'group' must be a non-empty string, and split_units recipes take none", "fix the recipe file"
        )
    if raw.get("versions"):
        try:
            SpecifierSet(raw["versions"])
        except InvalidSpecifier:
            raise PatchError(f"{where}: bad versions specifier {raw['versions']!r}", "fix the recipe file") from None
    when = raw.get("when")
    if when and when.lstrip("!") not in PatchOptions.__dataclass_fields__:
        raise PatchError(f"{where}: 'when' names unknown option {when!r}", "use a PatchOptions field name")
    min_count = raw.get("min_count")
    return Recipe(
        id=raw["id"],
        description=raw["description"],
        file=raw["file"],
        kind=raw["kind"],
        anchors=tuple(anchors),
        template=template,
        count=None if min_count is not None else int(raw.get("count", 1)),
        min_count=None if min_count is None else int(min_count),
        when=when,
        versions=raw.get("versions"),
        source=source,
        sources_file=raw.get("sources_file"),
        sources_anchor=raw.get("sources_anchor"),
        first=raw.get("first"),
        expand=tuple(raw.get("expand") or ()),
        requires_file=raw.get("requires_file"),
        requires=tuple(raw.get("requires") or ()),
        group=raw.get("group"),
    )


def _load_file(path: Path, seen: tuple[Path, ...] = ()) -> list[Recipe]:
    if path in seen:
        raise PatchError(f"recipe include loop at {path}", "fix the include lists in patches/*.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PatchError(f"recipe file {path} does not exist", "reinstall mamba-build") from None
    except tomllib.TOMLDecodeError as exc:
        raise PatchError(f"recipe file {path} is not valid TOML ({exc})", "fix the recipe file") from None
    recipes: list[Recipe] = []
    for inc in data.get("include", []):
        recipes += _load_file(path.parent / inc, seen + (path,))
    recipes += [_recipe_from_toml(r, path.name) for r in data.get("recipe", [])]
    return recipes


@functools.cache
def _load_recipes_cached(package: str, patches_dir: str) -> tuple[Recipe, ...]:
    recipes = _load_file(Path(patches_dir) / f"{package}.toml")
    ids = [r.id for r in recipes]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise PatchError(f"duplicate recipe ids for {package}: {', '.join(dupes)}", "make recipe ids unique")
    files: dict[str, set[str]] = {}
    for r in recipes:
        if r.group:
            files.setdefault(r.group, set()).add(r.file)
    split = sorted(g for g, f in files.items() if len(f) > 1)
    if split:
        raise PatchError(
            f"recipe group(s) {', '.join(split)} of {package} span several files", "a group is one file's generations"
        )
    return tuple(recipes)


def load_recipes(package: str, patches_dir: Path | None = None) -> list[Recipe]:
    """Recipes for ``package`` ("mamba-ssm", "causal-conv1d", "torch"), includes resolved, in order."""
    return list(_load_recipes_cached(package, str(patches_dir or paths.patches_dir())))


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------


class Status(str, enum.Enum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already applied"
    SKIPPED_OPTION = "skipped (option off)"
    SKIPPED_VERSION = "skipped (version)"
    SKIPPED_GENERATION = "skipped (other generation)"  # a sibling of its group matched this file instead
    ANCHOR_NOT_FOUND = "anchor not found"


@dataclass(frozen=True)
class PatchResult:
    recipe: str
    file: str
    status: Status
    detail: str = ""
    matches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "file": self.file,
            "status": self.status.value,
            "detail": self.detail,
            "matches": self.matches,
        }


@dataclass
class _Outcome:
    text: str
    fragments: dict[str, list[str]] = field(default_factory=dict)  # recipe id -> rendered texts
    counts: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # recipe id -> why


def _render(template: str, values: Mapping[str, str], recipe: Recipe) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in values:
            raise PatchError(
                f"recipe {recipe.id!r} ({recipe.source}) uses unknown placeholder {{{name}}}",
                f"known: {', '.join(sorted(values))}",
            )
        return values[name]

    return _PLACEHOLDER_RE.sub(sub, template)


def _block(recipe: Recipe, body: str, indent: str) -> str:
    lines = [f"# {MARKER}{recipe.id} begin", *body.rstrip("\n").split("\n"), f"# {MARKER}{recipe.id} end"]
    return "".join((indent + line if line.strip() else "") + "\n" for line in lines)


def _count_ok(recipe: Recipe, n: int) -> bool:
    if recipe.min_count is not None:
        return n >= recipe.min_count
    return n == recipe.count


def _expected(recipe: Recipe) -> str:
    return f"at least {recipe.min_count}" if recipe.min_count is not None else f"exactly {recipe.count}"


def apply_recipes_to_text(text: str, recipes: Sequence[Recipe], options: PatchOptions) -> _Outcome:
    """Apply (already filtered) recipes in order to ``text``; pure, no I/O."""
    base_values = option_placeholders(options)
    out = _Outcome(text)
    for recipe in recipes:
        chosen: list[re.Match] | None = None
        tried = []
        for anchor in recipe.anchors:
            found = list(re.finditer(anchor, out.text, re.MULTILINE))
            tried.append(f"{anchor!r}: {len(found)} match(es)")
            if found and _count_ok(recipe, len(found)):
                chosen = found
                break
        if chosen is None:
            out.missing[recipe.id] = f"expected {_expected(recipe)}; " + "; ".join(tried)
            continue
        out.counts[recipe.id] = len(chosen)
        frags: list[str] = []
        pieces: list[str] = []
        pos = 0
        src = out.text
        for m in chosen:
            values = dict(base_values)
            values.update({k: (v or "") for k, v in m.groupdict().items()})
            values["match"] = m.group(0)
            indent = m.groupdict().get("indent")
            if indent is None:
                line_start = src.rfind("\n", 0, m.start()) + 1
                rest = src[line_start:]
                indent = rest[: len(rest) - len(rest.lstrip(" \t"))]
            body = _render(recipe.template, values, recipe)
            if recipe.kind == "regex_replace":
                pieces += [src[pos : m.start()], body]
                pos = m.end()
                frags.append(body)
            elif recipe.kind == "insert_before":
                line_start = src.rfind("\n", 0, m.start()) + 1
                block = _block(recipe, body, indent)
                pieces += [src[pos:line_start], block]
                pos = line_start
                frags.append(block)
            elif recipe.kind == "insert_after":
                nl = src.find("\n", m.end())
                line_end = len(src) if nl < 0 else nl + 1
                block = _block(recipe, body, indent)
                head = src[pos:line_end]
                if not head.endswith("\n"):
                    head += "\n"
                pieces += [head, block]
                pos = line_end
                frags.append(block)
        if recipe.kind == "append":  # anchor only proves the file is what we expect
            block = _block(recipe, _render(recipe.template, base_values, recipe), "")
            new = src if src.endswith("\n") else src + "\n"
            out.text = new + block
            frags.append(block)
        else:
            pieces.append(src[pos:])
            out.text = "".join(pieces)
        out.fragments[recipe.id] = frags
    return out


def _resolve_groups(recs: Sequence[Recipe], outcome: _Outcome, where: str) -> dict[str, str]:
    """Recipes of one group are alternatives: the one that matched stays, the others leave ``outcome.missing``
    and are returned ({id: why}) as skipped for another generation. None matched: all stay missing (loud)."""
    groups: dict[str, list[Recipe]] = {}
    for r in recs:
        if r.group:
            groups.setdefault(r.group, []).append(r)
    skipped: dict[str, str] = {}
    for group, members in groups.items():
        hit = [r for r in members if r.id not in outcome.missing]
        if len(hit) > 1:
            raise PatchError(
                f"{where} has the anchors of {len(hit)} recipes of group {group!r} "
                f"({', '.join(r.id for r in hit)}), which are alternatives for different generations "
                "of the file",
                "upstream changed this file; report it to mamba-build with the package version",
            )
        if len(hit) == 1:
            for r in members:
                if r.id in outcome.missing:
                    skipped[r.id] = f"this {r.file} is the generation of {hit[0].id} (group {group})"
                    del outcome.missing[r.id]
        else:
            for r in members:  # say what was looked for, all generations
                others = ", ".join(m.id for m in members if m is not r)
                outcome.missing[r.id] += f"; nor the anchor of its alternative(s) {others} (group {group})"
    return skipped


def _selected(recipes: Sequence[Recipe], version: str | None, options: PatchOptions):
    active, skipped = [], []
    for r in recipes:
        if not r.applies_to(version):
            skipped.append(PatchResult(r.id, r.file, Status.SKIPPED_VERSION, f"recipe is for {r.versions}"))
        elif not r.enabled_by(options):
            skipped.append(PatchResult(r.id, r.file, Status.SKIPPED_OPTION, f"needs option {r.when}"))
        else:
            active.append(r)
    return active, skipped


def pristine_path(target: Path) -> Path:
    return target.with_name(target.name + PRISTINE_SUFFIX)


def _read_base(target: Path, package: str, version: str | None) -> tuple[str, str]:
    """(pristine text, current text). A patched file without its pristine copy is refused."""
    if not target.is_file():
        raise PatchError(
            f"{target} does not exist (patching {package} {version or ''})",
            "point at an unpacked source tree (mamba-build fetch PKG --dest DIR)",
        )
    current = target.read_text(encoding="utf-8")
    orig = pristine_path(target)
    if orig.is_file():
        return orig.read_text(encoding="utf-8"), current
    if MARKER in current:
        raise PatchError(
            f"{target} was patched by mamba-build but its pristine copy {orig.name} is gone",
            "unpack the source again (mamba-build fetch) and re-run the patch",
        )
    return current, current


def _anchor_error(package: str, version: str | None, tree: Path, recipe: Recipe, why: str) -> PatchError:
    return PatchError(
        f"patch recipe {recipe.id!r} ({recipe.source}) found no anchor in {tree / recipe.file} of "
        f"{package} {version or '(unknown version)'}: {why}",
        "upstream changed this file; report it to mamba-build with the package version, "
        "or build an older release with --version / --source",
    )


@dataclass(frozen=True)
class _Split:
    """What a split_units recipe will write: the target, its sibling parts, the sources-list recipe."""

    recipe: Recipe
    target: Path
    current: str
    new_text: str
    parts: dict[Path, str]
    sources_recipe: Recipe

    def done(self) -> bool:
        return self.current == self.new_text and all(
            p.is_file() and p.read_text(encoding="utf-8") == text for p, text in self.parts.items()
        )


def part_path(target: Path, k: int) -> Path:
    return target.with_name(f"{target.stem}{PART_INFIX}{k:02d}{target.suffix}")


def _existing_parts(target: Path) -> list[Path]:
    """Part files a split_units recipe wrote earlier (recognised by the marker on their first line)."""
    out = []
    for p in sorted(target.parent.glob(f"{target.stem}{PART_INFIX}*{target.suffix}")):
        try:
            with open(p, encoding="utf-8", errors="replace") as fh:
                if MARKER in fh.readline():
                    out.append(p)
        except OSError:
            pass
    return out


def split_targets(tree: Path, recipe: Recipe) -> list[str]:
    """The files a split_units recipe splits (relative posix paths): ``file`` itself, or every match of it
    as a glob (their pristine names: earlier parts are never targets)."""
    if not any(c in recipe.file for c in "*?["):
        return [recipe.file]
    out = []
    for p in sorted(Path(tree).glob(recipe.file)):
        if p.is_file() and PART_INFIX not in p.name and not p.name.endswith(PRISTINE_SUFFIX):
            out.append(p.relative_to(tree).as_posix())
    return out


def _prepare_split(tree: Path, recipe: Recipe, rel: str, package: str, version: str | None) -> _Split | str:
    """The split of ``rel`` (one target of ``recipe``, from its pristine text), or why its anchor was not found."""
    target = tree / rel
    base, current = _read_base(target, package, version)
    if recipe.requires:
        assert recipe.requires_file is not None  # the loader takes requires only with requires_file
        req_base, _ = _read_base(tree / recipe.requires_file, package, version)
        absent = [r for r in recipe.requires if not re.search(r, req_base, re.MULTILINE)]
        if absent:
            return f"{recipe.requires_file} no longer has " + "; ".join(repr(r) for r in absent)
    chosen, tried = None, []
    for anchor in recipe.anchors:
        found = list(re.finditer(anchor, base, re.MULTILINE))
        tried.append(f"{anchor!r}: {len(found)} match(es)")
        if found and _count_ok(recipe, len(found)):
            chosen = found
            break
    if chosen is None:
        return f"{rel}: expected {_expected(recipe)}; " + "; ".join(tried)
    if recipe.expand:
        units = []
        for m in chosen:
            values = {k: (v or "") for k, v in m.groupdict().items()}
            values["match"] = m.group(0).rstrip()
            units += [_render(t, values, recipe).rstrip() for t in recipe.expand]
    else:
        units = [m.group(0).rstrip() for m in chosen]
    first = recipe.first
    if first:
        units.sort(key=lambda u: 0 if re.search(first, u) else 1)  # stable: longest units first
    pieces, pos = [], 0
    for m in chosen:
        nl = base.find("\n", m.end())
        pieces.append(base[pos : m.start()])
        pos = len(base) if nl < 0 else nl + 1
    shared = "".join(pieces) + base[pos:]
    shared = shared if shared.endswith("\n") else shared + "\n"
    n = len(units)
    what = "its share of the instantiations" if recipe.expand else "one explicit instantiation"

    def render(k: int) -> str:
        return (
            f"// {MARKER}{recipe.id} unit {k + 1}/{n} of {rel}: the shared code plus {what} "
            f"(same templates, same flags)\n{shared}{units[k]}\n"
        )

    parts = {part_path(target, k): render(k) for k in range(1, n)}
    rel_dir = Path(rel).parent
    listing = "\n".join(f'"{(rel_dir / p.name).as_posix()}",' for p in parts)
    anchor = (recipe.sources_anchor or "").replace("{file}", re.escape(rel))
    sub_id = recipe.id if rel == recipe.file else f"{recipe.id}@{Path(rel).name}"
    sources = Recipe(
        id=sub_id,
        description=f"{rel} parts listed",
        file=recipe.sources_file or "setup.py",
        kind="insert_after",
        anchors=(anchor,),
        template=listing,
        source=recipe.source,
    )
    return _Split(recipe, target, current, render(0), parts, sources)


def _unsplit(tree: Path, recipe: Recipe) -> None:
    """A split_units recipe that is off now: put its targets back and remove the parts it wrote."""
    for rel in split_targets(tree, recipe):
        target = tree / rel
        orig = pristine_path(target)
        if orig.is_file() and target.is_file() and target.read_bytes() != orig.read_bytes():
            _atomic_write(target, orig.read_text(encoding="utf-8"))
        for p in _existing_parts(target):
            p.unlink()


def _run(
    tree: Path,
    package: str,
    version: str | None,
    options: PatchOptions,
    *,
    write: bool,
    strict: bool,
    recipes: Sequence[Recipe] | None,
) -> list[PatchResult]:
    tree = Path(tree)
    all_recipes = list(recipes) if recipes is not None else load_recipes(package)
    active, skipped = _selected(all_recipes, version, options)
    results: dict[str, PatchResult] = {r.recipe: r for r in skipped}
    by_file: dict[str, list[Recipe]] = {}
    splits: list[_Split] = []
    for r in active:
        if r.kind != "split_units":
            by_file.setdefault(r.file, []).append(r)
            continue
        targets = split_targets(tree, r)
        preps = [_prepare_split(tree, r, rel, package, version) for rel in targets] or [f"no file matches {r.file!r}"]
        why = next((p for p in preps if isinstance(p, str)), None)
        if why is not None:
            if strict:
                raise _anchor_error(package, version, tree, r, why)
            results[r.id] = PatchResult(r.id, r.file, Status.ANCHOR_NOT_FOUND, why)
            continue
        for prep in preps:
            assert isinstance(prep, _Split)  # no str (a reason) among them: see `why`
            splits.append(prep)
            by_file.setdefault(prep.sources_recipe.file, []).append(prep.sources_recipe)
    planned: list[tuple[Path, str, str, str]] = []
    for fname, recs in by_file.items():
        target = tree / fname
        base, current = _read_base(target, package, version)
        outcome = apply_recipes_to_text(base, recs, options)
        other_generation = _resolve_groups(recs, outcome, f"{target} of {package} {version or ''}".rstrip())
        for r in recs:
            if r.id in other_generation:
                results[r.id] = PatchResult(r.id, fname, Status.SKIPPED_GENERATION, other_generation[r.id])
                continue
            if r.id in outcome.missing:
                if strict:
                    raise _anchor_error(package, version, tree, r, outcome.missing[r.id])
                results[r.id] = PatchResult(r.id, fname, Status.ANCHOR_NOT_FOUND, outcome.missing[r.id])
                continue
            done = current != base and all(f in current for f in outcome.fragments[r.id])
            results[r.id] = PatchResult(
                r.id, fname, Status.ALREADY_APPLIED if done else Status.APPLIED, r.description, outcome.counts[r.id]
            )
        if outcome.missing:
            continue
        if target.suffix == ".py":
            try:
                compile(outcome.text, str(target), "exec")
            except SyntaxError as exc:
                raise PatchError(
                    f"patching {target} ({package} {version}) produced invalid Python: {exc}",
                    "report it to mamba-build with the package version",
                ) from None
        planned.append((target, base, current, outcome.text))
    by_recipe: dict[str, list[_Split]] = {}
    for sp in splits:
        by_recipe.setdefault(sp.recipe.id, []).append(sp)
    for rid, group in by_recipe.items():
        listed = [results.get(sp.sources_recipe.id) for sp in group]
        lost = next((x for x in listed if x is not None and x.status is Status.ANCHOR_NOT_FOUND), None)
        if lost is not None:
            results[rid] = PatchResult(rid, group[0].recipe.file, Status.ANCHOR_NOT_FOUND, lost.detail)
            continue
        done = all(x is not None and x.status is Status.ALREADY_APPLIED for x in listed) and all(
            sp.done() for sp in group
        )
        n = sum(len(sp.parts) + 1 for sp in group)
        files = f"{len(group)} files, " if len(group) > 1 else ""
        results[rid] = PatchResult(
            rid,
            group[0].recipe.file,
            Status.ALREADY_APPLIED if done else Status.APPLIED,
            f"{group[0].recipe.description} ({files}{n} units)",
            n,
        )
    if write:
        for r in all_recipes:
            if r.kind == "split_units" and r.id not in {sp.recipe.id for sp in splits}:
                _unsplit(tree, r)
        for target, base, current, new in planned:
            if new == current:
                continue
            orig = pristine_path(target)
            if not orig.exists():
                _atomic_write(orig, base)
            _atomic_write(target, new)
        for sp in splits:
            base, _ = _read_base(sp.target, package, version)
            if sp.current != sp.new_text:
                if not pristine_path(sp.target).exists():
                    _atomic_write(pristine_path(sp.target), base)
                _atomic_write(sp.target, sp.new_text)
            for p in _existing_parts(sp.target):
                if p not in sp.parts:
                    p.unlink()
            for p, text in sp.parts.items():
                if not p.is_file() or p.read_text(encoding="utf-8") != text:
                    _atomic_write(p, text)
    return [results[r.id] for r in all_recipes]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    except OSError:
        pass
    os.replace(tmp, path)


def plan_patches(
    tree: Path,
    package: str,
    version: str | None,
    options: PatchOptions,
    *,
    strict: bool = True,
    recipes: Sequence[Recipe] | None = None,
) -> list[PatchResult]:
    """Dry run: what :func:`apply_patches` would do. Nothing is written.

    With ``strict`` (default) a missing anchor raises :class:`PatchError`; otherwise it is reported
    as ``Status.ANCHOR_NOT_FOUND`` and the caller must raise (see :func:`raise_for_missing`).
    """
    return _run(tree, package, version, options, write=False, strict=strict, recipes=recipes)


def apply_patches(
    tree: Path, package: str, version: str | None, options: PatchOptions, *, recipes: Sequence[Recipe] | None = None
) -> list[PatchResult]:
    """Patch the tree (idempotent). Raises :class:`PatchError` on a missing anchor, before writing."""
    return _run(tree, package, version, options, write=True, strict=True, recipes=recipes)


def raise_for_missing(results: Sequence[PatchResult], tree: Path, package: str, version: str | None) -> None:
    missing = [r for r in results if r.status is Status.ANCHOR_NOT_FOUND]
    if missing:
        first = missing[0]
        recipe = next((r for r in load_recipes(package) if r.id == first.recipe), None)
        if recipe is None:
            raise PatchError(
                f"recipe {first.recipe!r}: anchor not found in {first.file}: {first.detail}",
                "upstream changed; report it to mamba-build",
            )
        raise _anchor_error(package, version, Path(tree), recipe, first.detail)


def unpatch(tree: Path, files: Iterable[str] = ("setup.py",)) -> list[Path]:
    """Put pristine copies back (used by tests and by `patch --revert` style callers)."""
    restored = []
    for fname in files:
        target = Path(tree) / fname
        orig = pristine_path(target)
        if orig.is_file():
            os.replace(orig, target)
            restored.append(target)
    return restored


def results_json(results: Sequence[PatchResult]) -> str:
    return json.dumps([r.as_dict() for r in results], indent=2)
