"""Explain a failed build/import/runtime log: the root cause, the evidence lines and the fix.

The knowledge lives in ``mamba_build/data/failures.toml`` (the catalog) and
``mamba_build/data/locale.toml`` (localized compiler/loader messages); this module only scans and reasons.

API (for ``explain``, ``compile``, ``install`` and ``doctor``):

* :func:`diagnose_text` ``(text, context=None) -> Explanation``: the one call other commands use to
  classify a failure (a log, a traceback, a subprocess's stderr). ``expl.root`` is the root cause
  (``None`` = unknown), ``expl.root.id`` its catalog id, ``expl.second_candidate`` the runner-up.
* :func:`explain_text` ``(text, context=None, *, max_findings=5) -> Explanation``
* :func:`explain_file` ``(path_or_dash, context=None, *, max_findings=5) -> Explanation``;
  raises :class:`~mamba_build.errors.UsageError` for an unreadable, binary or non-text file.
* :func:`explain_lines` ``(iterable_of_str, context=None, ...)`` for output already in hand
  (e.g. ``runner.stream``'s tail, or lines read from its log file).
* :func:`render_text` ``(explanation) -> str``: the plain-text report (no colour codes).
* :func:`probe_context` ``() -> dict``: cheap facts about this machine (reads files, starts no
  process) usable as ``context`` when the log was made here.
* :func:`probe_rule` ``(text) -> (ProbeRule, re.Match) | None``: the first of the catalog's ``[[probe]]``
  rules that matches (the probe build's short log: ``doctor --probe``, mamba_build/diagnose/toolchain_probe.py).
* :func:`load_catalog` ``(without=frozenset()) -> Catalog``: the catalog; ``without`` drops every
  pattern (and every condition of a pattern) that cites one of those corpus entries (the held-out
  evaluation, mamba_build/diagnose/explain_eval.py).

How a log is read (the "reasoning", in this order):

1. Every line is normalized: colour codes removed, progress-bar carriage returns resolved, and
   localized gcc/glibc messages (e.g. ``致命错误：``, ``Datei oder Verzeichnis nicht gefunden``)
   replaced by their English text, so one English pattern covers every locale.
2. Patterns are matched per line and across two consecutive lines (a message that a terminal, pip
   or uv wrapped), only counting a two-line match when it really spans the line break.
3. Facts the log states are collected: torch/nvcc/gcc/python versions, CUDA_HOME, the driver, the
   platform (Windows drive paths, macOS ``/Users/``...). Patterns may be conditioned on them
   (``when``), e.g. a C++17 ``#error`` with gcc 6 is the old compiler, not the project's -std flag.
4. A pattern counts only when its conditions hold: ``requires`` (every one of these regexes matches
   somewhere in the log), ``excludes`` (none does), ``unless`` (not on the same line), ``when``
   (facts). ``tail`` patterns must match the last non-blank line: a build that was still running
   (or hanging) when the log ends.
5. Follow-on errors (an undefined name, a generic "command failed", a traceback in the build
   backend, ``ninja: build stopped``) are never causes: a line already explained by a more
   fundamental cause (lower ``rank``) does not start another finding, and the catalog's [cascade]
   lines are reported as consequences, not causes.
6. Findings with a strong trigger come first (then by rank, then by line). A finding that rests
   only on ``weak`` evidence is reported with ``confidence = "low"``; when the only findings are
   weak and they disagree, the answer is "unknown" with the candidates listed, because a wrong
   confident answer is worse than none.

``context`` keys (all strings, all optional; the doctor fills what it knows):
``torch_version`` (``2.14.1+cu130``), ``torch_cuda`` (``13.0``), ``nvcc_version`` (``13.0``),
``nvcc_path``, ``cuda_home``, ``toolkits`` (toolkit roots found on the machine, separated by
``os.pathsep`` or commas), ``gcc_version``, ``gpu_arch`` (``sm_90``/``90``/``9.0``),
``gpu_name``, ``driver_version`` (``cuda_version`` is read as ``nvcc_version``). Values read from the log win
over the context; anything still
missing is replaced by readable text from the catalog's ``[defaults]``, never an error.

Everything is bounded: at most ``MAX_BYTES`` are read (streamed, line by line), lines are cut
at ``MAX_LINE_CHARS``, at most ``MAX_CANDIDATE_LINES`` lines are examined in detail and the scan
stops after ``TIME_BUDGET_S`` seconds; ``Explanation.truncated`` says when any limit was hit.
"""

from __future__ import annotations

import codecs
import collections
import dataclasses
import functools
import glob
import io
import os
import re
import string
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mamba_build import tables
from mamba_build.errors import UsageError
from mamba_build.plan import archs

MAX_BYTES = 64 * 1024 * 1024
MAX_LINE_CHARS = 4096
SNIFF_BYTES = 64 * 1024
MAX_CANDIDATE_LINES = 1_000_000
TIME_BUDGET_S = 20.0
MAX_SUSPICIOUS = 10
MAX_TRIGGERS_KEPT = 32
MAX_EVIDENCE = 6
EVIDENCE_CHARS = 400
TAIL_LINES = 3
JOIN_MIN_LITERAL = 20  # a message is matched across a line break only when its pattern has a literal this long
JOIN_FRAGMENT = 8  # the head and tail of such a literal: a line that holds one may be the half of a wrapped message
HARD_WRAP_MIN = 60  # a line this long that ends without a space may have been cut mid-word by a terminal
MAX_FOLLOW_ON = 6

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# Markdown and HTML that wrap a log pasted into an issue (a code fence, a <details> block): never the
# log's own last line, so the `tail` patterns (a build still running when the log ends) look past them
_MARKUP = re.compile(r"\s*(?:```|~~~|</?details>|</?summary>)")
# Markdown blockquote markers ("> ") in front of every line of a log quoted in an issue: when both lines of a
# wrapped message carry them, the break is inside the quoted text and the second line's marker is not part of it
_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)+")


def _unquoted(prev: str, line: str) -> str:
    """``line`` without its blockquote marker when ``prev`` carries the same one (else ``line``)."""
    if ">" not in line[:8]:
        return line
    quoted, q_prev = _QUOTE.match(line), _QUOTE.match(prev)
    if quoted and q_prev and quoted.group(0).count(">") == q_prev.group(0).count(">"):
        return line[quoted.end() :]
    return line


# ----------------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Condition:
    """``<fact> <op> <value>`` on the facts of a log, e.g. ``gcc_major < 7`` or ``platform == macos``."""

    fact: str
    op: str
    value: str

    _OPS = ("<=", ">=", "==", "!=", "<", ">")

    @classmethod
    def parse(cls, text: str, where: str) -> Condition:
        for op in cls._OPS:
            if op in text:
                fact, value = (s.strip() for s in text.split(op, 1))
                if fact and value:
                    return cls(fact, op, value)
        raise ValueError(f"failures.toml: bad condition {text!r} in {where} (want '<fact> <op> <value>')")

    def holds(self, facts: Mapping[str, str]) -> bool:
        have = facts.get(self.fact)
        if have is None:
            return False
        if self.op in ("==", "!="):
            equal = have.lower() in {v.strip().lower() for v in self.value.split("|")}
            return equal if self.op == "==" else not equal
        a, b = tables.version_tuple(have), tables.version_tuple(self.value)
        if not a or not b:
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]


# the regex lists that may cite corpus logs item by item (each has a parallel ``<name>_cites`` tuple): a
# trigger's own conditions (PatternMeta) and an entry's lists (CatalogEntry); explain_eval reports them too
PATTERN_CONDITIONS = ("requires", "excludes", "unless")
ENTRY_CONDITIONS = ("support", "requires", "excludes")


@dataclass(frozen=True)
class PatternMeta:
    """What a trigger pattern needs besides matching, and where it was learned (``cites``)."""

    cites: tuple[str, ...] = ()  # corpus entries it was written from ("public:013"); () = not from a log
    weak: bool = False  # evidence that alone gives only a low-confidence finding
    requires: tuple[re.Pattern, ...] = ()  # ALL must match somewhere in the log
    excludes: tuple[re.Pattern, ...] = ()  # NONE may match anywhere in the log
    unless: tuple[re.Pattern, ...] = ()  # NONE may match the same line
    when: tuple[Condition, ...] = ()  # facts conditions, all must hold
    tail: bool = False  # must match the last non-blank line of the log
    note: str = ""  # the class knowledge it encodes (for the report)
    needs: tuple[str, ...] = ()  # substrings the line must contain (a cheap prefilter)
    # per requires/excludes/unless regex, the corpus entries it was written from (an item may be a table
    # {re, from}: a condition learned from a log is left out when that log is scored, like a cited pattern)
    requires_cites: tuple[tuple[str, ...], ...] = ()
    excludes_cites: tuple[tuple[str, ...], ...] = ()
    unless_cites: tuple[tuple[str, ...], ...] = ()

    def without(self, refs: frozenset) -> PatternMeta:
        """This pattern's conditions less the ones that cite one of ``refs``."""
        return _drop_cited(self, PATTERN_CONDITIONS, refs)


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    phase: str
    rank: int
    cause: str
    fix: str
    patterns: tuple[re.Pattern, ...]
    support: tuple[re.Pattern, ...]
    requires: tuple[re.Pattern, ...]
    excludes: tuple[re.Pattern, ...]
    defaults: tuple[tuple[str, str], ...]
    source: str
    meta: tuple[PatternMeta, ...] = ()  # one per pattern, same order
    doctor: tuple[str, ...] = ()  # the doctor checks that see it before a build (id or "family:")
    # the corpus entries each support/requires/excludes regex was written from (same order; () = none)
    support_cites: tuple[tuple[str, ...], ...] = ()
    requires_cites: tuple[tuple[str, ...], ...] = ()
    excludes_cites: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]
    defaults: tuple[tuple[str, str], ...]
    # [placeholder_help]: placeholder -> (what its template value stands for, whether `explain --here` fills it)
    placeholder_help: tuple[tuple[str, tuple[str, bool]], ...]
    facts: tuple[re.Pattern, ...]
    cascade: tuple[re.Pattern, ...]
    suspicious: tuple[re.Pattern, ...]
    # Fast first test: literal -> the owners (entry index, or "facts"/"cascade"/"suspicious", or
    # ("cond", i) for a pattern-level requires/excludes regex) of the regexes that cannot match a
    # line without it; `always` owners have a regex with no required literal and are tried on every line.
    keywords: tuple[tuple[str, frozenset], ...]
    always: frozenset
    conditions: tuple[re.Pattern, ...] = ()  # every pattern-level requires/excludes regex, deduplicated
    locale: tuple[tuple[str, str], ...] = ()  # (localized text, English) longest first
    locale_re: re.Pattern | None = None
    without: frozenset = frozenset()  # the corpus entries whose patterns were left out
    # per entry, per trigger pattern: the literals one of which a matching line contains (None = any
    # line), and whether the pattern is long enough to be wrapped over two lines by a terminal or pip
    lits: tuple[tuple[frozenset | None, ...], ...] = ()
    joinable: tuple[tuple[bool, ...], ...] = ()
    support_lits: tuple[tuple[frozenset | None, ...], ...] = ()
    join_keywords: frozenset = frozenset()  # the literals of the joinable patterns
    join_only: tuple[str, ...] = ()  # those that are not keywords (patterns indexed by `needs`)
    # the head and tail (JOIN_FRAGMENT chars) of each joinable literal: a wrap splits the literal itself,
    # so a line holding only a fragment still has to be tried joined with its neighbour
    join_fragments: tuple[str, ...] = ()
    join_owners: tuple[tuple[str, frozenset], ...] = ()  # joinable literal -> owners (found in the joined text)
    fact_cites: tuple[tuple[str, ...], ...] = ()  # per facts regex, the corpus entries it was written from
    cond_blob: tuple[tuple[re.Pattern, frozenset | None], ...] = ()  # conditions, searched per batch

    def entry(self, failure_id: str) -> CatalogEntry | None:
        return next((e for e in self.entries if e.id == failure_id), None)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.entries)


def _cited(items: Iterable[Any], where: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """A list of regexes, each a string or a table ``{re, from, note}``: (the regexes, their ``from``)."""
    pats: list[str] = []
    cites: list[tuple[str, ...]] = []
    for raw in items:
        if isinstance(raw, dict):
            unknown = set(raw) - {"re", "from", "note"}
            if "re" not in raw or unknown:
                raise ValueError(f"failures.toml: a regex table in {where} needs 're' (and only 'from', 'note')")
            pats.append(raw["re"])
            cites.append(tuple(raw.get("from", ())))
        else:
            pats.append(raw)
            cites.append(())
    return tuple(pats), tuple(cites)


def _keep(pats: tuple, cites: tuple[tuple[str, ...], ...], without: frozenset) -> tuple:
    """The regexes of a cited list whose citations do not touch ``without``."""
    return tuple(p for p, c in zip(pats, cites, strict=True) if not (set(c) & without))


def _drop_cited(obj: Any, fields: tuple[str, ...], without: frozenset) -> Any:
    """``obj`` (a frozen dataclass) with each cited regex list in ``fields`` (and its ``<field>_cites``) less
    the regexes that cite one of ``without``; ``obj`` itself when none does."""
    if not any(set(c) & without for f in fields for c in getattr(obj, f + "_cites")):
        return obj
    changes: dict[str, tuple] = {}
    for f in fields:
        cites = getattr(obj, f + "_cites")
        changes[f] = _keep(getattr(obj, f), cites, without)
        changes[f + "_cites"] = tuple(c for c in cites if not (set(c) & without))
    return dataclasses.replace(obj, **changes)


def _compile_all(patterns: Iterable[str], where: str) -> tuple[re.Pattern, ...]:
    out = []
    for p in patterns:
        try:
            out.append(_compile(p))
        except re.error as exc:  # a broken catalog is our bug: say where
            raise ValueError(f"failures.toml: bad regex in {where}: {p!r}: {exc}") from exc
    return tuple(out)


@functools.cache
def _compile(pattern: str) -> re.Pattern:
    return re.compile(pattern)


# the regex parser, to find the literal text every match must contain
if sys.version_info >= (3, 11):
    from re import _constants as _sre_c
    from re import _parser as _sre_p
else:  # pragma: no cover
    import sre_constants as _sre_c
    import sre_parse as _sre_p

_REPEATS = tuple(getattr(_sre_c, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_sre_c, n))


def _flatten(items):
    for op, av in items:
        if op is _sre_c.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if add_flags & _sre_c.SRE_FLAG_IGNORECASE:
                yield (None, None)
            else:
                yield from _flatten(sub)
        else:
            yield op, av


def _required(items) -> frozenset | None:
    """A set of literals, one of which every match of the parsed sequence contains (or None)."""
    runs: list[str] = []
    sets: list[frozenset] = []
    cur: list[str] = []

    def flush():
        if cur:
            runs.append("".join(cur))
            cur.clear()

    for op, av in _flatten(items):
        if op is _sre_c.LITERAL:
            cur.append(chr(av))
            continue
        flush()
        if op is _sre_c.BRANCH:
            alts = [_required(list(alt)) for alt in av[1]]
            known = [a for a in alts if a is not None]
            if alts and len(known) == len(alts):
                sets.append(frozenset().union(*known))
        elif op in _REPEATS and av[0] >= 1:
            inner = _required(list(av[2]))
            if inner is not None:
                sets.append(inner)
    flush()
    options = [frozenset([r]) for r in runs if len(r) >= 3] + [st for st in sets if min(map(len, st)) >= 3]
    if not options:
        return None
    return max(options, key=lambda st: (min(map(len, st)), -len(st)))


@functools.cache
def _required_literals_cached(pattern: str, flags: int) -> frozenset | None:
    if flags & re.IGNORECASE:
        return None
    try:
        return _required(_sre_p.parse(pattern, flags).data)
    except Exception:  # noqa: BLE001 - internal parser API: fall back to "always try"
        return None


def required_literals(pattern: re.Pattern) -> frozenset | None:
    """Literals one of which any line matching ``pattern`` contains; None when there is none."""
    return _required_literals_cached(pattern.pattern, pattern.flags)


_META_KEYS = {"re", "from", "weak", "requires", "excludes", "unless", "when", "tail", "note", "needs"}


def _pattern_spec(raw: Any, where: str) -> tuple[str, PatternMeta]:
    """A pattern is a string (class knowledge, cites no log) or a table with ``re`` and metadata."""
    if isinstance(raw, str):
        return raw, PatternMeta()
    if not isinstance(raw, dict) or "re" not in raw:
        raise ValueError(f"failures.toml: pattern in {where} must be a string or a table with 're'")
    unknown = set(raw) - _META_KEYS
    if unknown:
        raise ValueError(f"failures.toml: unknown pattern keys {sorted(unknown)} in {where}")
    conditions: dict[str, Any] = {}  # <name> and <name>_cites per condition list
    for k in PATTERN_CONDITIONS:
        regexes, cites = _cited(raw.get(k, ()), f"{where} {k}")
        conditions[k], conditions[k + "_cites"] = _compile_all(regexes, where), cites
    return raw["re"], PatternMeta(
        cites=tuple(raw.get("from", ())),
        weak=bool(raw.get("weak", False)),
        **conditions,
        when=tuple(Condition.parse(c, where) for c in raw.get("when", ())),
        tail=bool(raw.get("tail", False)),
        note=raw.get("note", ""),
        needs=tuple(raw.get("needs", ())),
    )


@functools.cache
def _base_catalog() -> tuple[tuple[CatalogEntry, ...], dict]:
    data = tables.load("failures")
    entries = []
    seen: set[str] = set()
    for raw in data.get("failure", []):
        fid = raw["id"]
        if fid in seen:
            raise ValueError(f"failures.toml: duplicate id {fid!r}")
        seen.add(fid)
        specs = [_pattern_spec(p, fid) for p in raw.get("patterns", [])]
        pats = _compile_all([s for s, _ in specs], fid)
        lists: dict[str, Any] = {}  # <name> and <name>_cites per list
        for k in ENTRY_CONDITIONS:
            regexes, cites = _cited(raw.get(k, []), f"{fid} {k}")
            lists[k], lists[k + "_cites"] = _compile_all(regexes, fid), cites
        entries.append(
            CatalogEntry(
                id=fid,
                phase=raw.get("phase", "any"),
                rank=int(raw.get("rank", 1000)),
                cause=raw.get("cause", ""),
                fix=raw.get("fix", ""),
                patterns=pats,
                defaults=tuple(sorted(raw.get("defaults", {}).items())),
                source=raw.get("source", ""),
                meta=tuple(m for _, m in specs),
                doctor=tuple(raw.get("doctor", ())),
                **lists,
            )
        )
    entries.sort(key=lambda e: e.rank)
    return tuple(entries), data


@functools.cache
def _locale_table() -> tuple[tuple[str, str], ...]:
    try:
        data = tables.load("locale")
    except FileNotFoundError:  # pragma: no cover - the data file ships with the package
        return ()
    pairs = {m["text"]: m["english"] for m in data.get("message", [])}
    return tuple(sorted(pairs.items(), key=lambda kv: -len(kv[0])))


@dataclass(frozen=True)
class ProbeRule:
    """One of failures.toml's ``[[probe]]`` rules: the first that matches a probe build log names its fix."""

    name: str
    pattern: re.Pattern
    fix: str | None  # None: the caller finishes it (the header rule)
    failure: str | None  # the catalog entry it is a case of


@functools.cache
def probe_rules() -> tuple[ProbeRule, ...]:
    return tuple(
        ProbeRule(r["name"], _compile(r["re"]), r.get("fix"), r.get("failure"))
        for r in tables.load("failures").get("probe", [])
    )


def probe_rule(text: str) -> tuple[ProbeRule, re.Match] | None:
    """The first ``[[probe]]`` rule whose regex is found in ``text`` (in the catalog's order), with its match."""
    for rule in probe_rules():
        m = rule.pattern.search(text)
        if m:
            return rule, m
    return None


@functools.lru_cache(maxsize=256)
def load_catalog(without: frozenset = frozenset()) -> Catalog:
    """Parse and compile the catalog once per process.

    ``without``: corpus references (``public:013``...) whose patterns are left out, so that a log
    can be scored by patterns that were not written from it (grouped cross-validation).
    """
    base, data = _base_catalog()
    without = frozenset(without)
    entries = []
    for e in base:
        keep = [i for i, m in enumerate(e.meta) if not (set(m.cites) & without)] if without else range(len(e.patterns))
        if without and len(keep) != len(e.patterns):
            e = dataclasses.replace(e, patterns=tuple(e.patterns[i] for i in keep), meta=tuple(e.meta[i] for i in keep))
        if without:
            meta = tuple(m.without(without) for m in e.meta)
            if any(a is not b for a, b in zip(meta, e.meta, strict=True)):
                e = dataclasses.replace(e, meta=meta)
            e = _drop_cited(e, ENTRY_CONDITIONS, without)
        entries.append(e)
    fact_pats, fact_cites = _cited(data.get("facts", {}).get("patterns", []), "facts")
    if without:
        fact_cites, fact_pats = (
            tuple(c for c in fact_cites if not (set(c) & without)),
            _keep(fact_pats, fact_cites, without),
        )
    facts = _compile_all(fact_pats, "facts")
    cascade = _compile_all(data.get("cascade", {}).get("patterns", []), "cascade")
    suspicious = _compile_all(data.get("suspicious", {}).get("patterns", []), "suspicious")
    conditions: list[re.Pattern] = []
    for e in entries:
        for m in e.meta:
            for p in (*m.requires, *m.excludes):
                if p not in conditions:
                    conditions.append(p)
    owners: list[tuple[Any, re.Pattern]] = [
        (i, p) for i, e in enumerate(entries) for k, p in enumerate(e.patterns) if not e.meta[k].needs
    ]
    owners += [(i, p) for i, e in enumerate(entries) for p in (*e.support, *e.requires, *e.excludes)]
    owners += [("facts", p) for p in facts] + [("cascade", p) for p in cascade]
    owners += [("suspicious", p) for p in suspicious]
    index: dict[str, set] = {}
    always: set = set()
    for i, e in enumerate(entries):  # a pattern with `needs` is looked up by what it needs (more selective)
        for m in e.meta:
            if m.needs:
                index.setdefault(m.needs[0], set()).add(i)
    for owner, pat in owners:
        pat_lits = required_literals(pat)
        if pat_lits is None:
            always.add(owner)
        else:
            for lit in pat_lits:
                index.setdefault(lit, set()).add(owner)
    locale = _locale_table()
    locale_re = re.compile("|".join(re.escape(t) for t, _ in locale)) if locale else None
    lits = tuple(tuple(required_literals(p) for p in e.patterns) for e in entries)
    support_lits = tuple(tuple(required_literals(p) for p in e.support) for e in entries)
    # searched over a whole batch: negated classes must not run across line ends ([^x] -> [^\nx])
    cond_blob = tuple(
        (re.compile(p.pattern.replace("[^", "[^\\n"), p.flags | re.M), required_literals(p)) for p in conditions
    )
    joinable = tuple(tuple(bool(lt and max(map(len, lt)) >= JOIN_MIN_LITERAL) for lt in row) for row in lits)
    join_kw = frozenset(
        k
        for row, jrow in zip(lits, joinable, strict=True)
        for lt, j in zip(row, jrow, strict=True)
        if j
        for k in lt or ()
    )
    fragments = sorted(
        {f for k in join_kw if len(k) >= JOIN_MIN_LITERAL for f in (k[:JOIN_FRAGMENT], k[-JOIN_FRAGMENT:]) if f.strip()}
        - join_kw
    )
    join_owners = tuple(sorted((k, frozenset(index[k])) for k in join_kw if k in index))
    return Catalog(
        entries=tuple(entries),
        defaults=tuple(sorted(data.get("defaults", {}).items())),
        placeholder_help=tuple(
            sorted(
                (k, (str(v["means"]), bool(v.get("here", False)))) for k, v in data.get("placeholder_help", {}).items()
            )
        ),
        facts=facts,
        cascade=cascade,
        suspicious=suspicious,
        keywords=tuple(sorted((k, frozenset(v)) for k, v in index.items())),
        always=frozenset(always),
        conditions=tuple(conditions),
        locale=locale,
        locale_re=locale_re,
        without=without,
        lits=lits,
        joinable=joinable,
        support_lits=support_lits,
        cond_blob=cond_blob,
        join_keywords=join_kw,
        join_only=tuple(sorted(join_kw - set(index))),
        join_fragments=tuple(fragments),
        join_owners=join_owners,
        fact_cites=fact_cites,
    )


TRIGGER_KINDS = ("trigger", "trigger (weak)")  # entry_cited_lists' kind of a trigger: plain, weak


def entry_cited_lists(
    e: CatalogEntry,
) -> Iterator[tuple[str, tuple[re.Pattern, ...], tuple[tuple[str, ...], ...], str]]:
    """Every regex list of an entry that may cite corpus logs, as (kind, regexes, their citations, note): each
    trigger (a list of one; kind one of TRIGGER_KINDS) followed by its own conditions ("trigger's
    requires" ...), then the entry's lists ("support", "requires", "excludes"). The one walk of that structure:
    ``entry_cites`` and explain_eval's report of cited regexes read it."""
    for p, m in zip(e.patterns, e.meta, strict=True):
        yield TRIGGER_KINDS[m.weak], (p,), (m.cites,), m.note
        for k in PATTERN_CONDITIONS:
            yield f"trigger's {k}", getattr(m, k), getattr(m, k + "_cites"), m.note
    for k in ENTRY_CONDITIONS:
        yield k, getattr(e, k), getattr(e, k + "_cites"), ""


def entry_cites(e: CatalogEntry) -> Iterator[tuple[str, ...]]:
    """The citations of every regex of an entry: its triggers, their own conditions, the entry's lists."""
    for _kind, _regexes, cites, _note in entry_cited_lists(e):
        yield from cites


def corpus_refs(catalog: Catalog | None = None) -> dict[str, list[str]]:
    """corpus reference -> the ids of the catalog entries whose patterns cite it."""
    out: dict[str, list[str]] = {}
    cat = catalog or load_catalog()
    for e in cat.entries:
        for cites in entry_cites(e):
            for ref in cites:
                out.setdefault(ref, [])
                if e.id not in out[ref]:
                    out[ref].append(e.id)
    for cites in cat.fact_cites:
        for ref in cites:
            out.setdefault(ref, [])
            if "facts" not in out[ref]:
                out[ref].append("facts")
    return out


# ----------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Finding:
    id: str
    phase: str
    cause: str
    fix: str
    evidence: tuple[tuple[int, str], ...]  # (1-based line number, line text)
    rank: int
    confidence: str = "high"  # "high": a strong trigger matched; "low": weak evidence only
    doctor: tuple[str, ...] = ()  # `mamba-build doctor` checks that see this cause before a build
    # placeholders of cause/fix that neither the log nor the context filled (the text shows the catalog's default)
    not_in_log: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phase": self.phase,
            "rank": self.rank,
            "cause": self.cause,
            "fix": self.fix,
            "evidence": [{"line": n, "text": t} for n, t in self.evidence],
            "confidence": self.confidence,
            "doctor_checks": list(self.doctor),
            "not_in_log": list(self.not_in_log),
        }


@dataclass(frozen=True)
class Candidate:
    """Another cause the log also matched, and why it is not the root."""

    id: str
    confidence: str
    why_not_root: str
    evidence: tuple[tuple[int, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "confidence": self.confidence,
            "why_not_root": self.why_not_root,
            "evidence": [{"line": n, "text": t} for n, t in self.evidence],
        }


@dataclass(frozen=True)
class Explanation:
    findings: tuple[Finding, ...]
    unknown: bool
    suspicious_lines: tuple[tuple[int, str], ...]
    lines_read: int
    truncated: bool
    facts: tuple[tuple[str, str], ...] = ()  # what the log states: versions, paths, platform
    alternatives: tuple[Candidate, ...] = ()  # other causes considered, with why they lost
    follow_on_lines: tuple[tuple[int, str], ...] = ()  # loud consequences below the root (not causes)

    @property
    def root(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.findings)

    @property
    def second_candidate(self) -> Candidate | None:
        """The runner-up: the next finding, else the best alternative that lost."""
        if len(self.findings) > 1:
            f = self.findings[1]
            return Candidate(f.id, f.confidence, "less fundamental than the root (reported second)", f.evidence)
        return self.alternatives[0] if self.alternatives else None

    def to_dict(self) -> dict[str, Any]:
        second = self.second_candidate
        return {
            "schema": 1,
            "unknown": self.unknown,
            "findings": [f.to_dict() for f in self.findings],
            "suspicious_lines": [{"line": n, "text": t} for n, t in self.suspicious_lines],
            "lines_read": self.lines_read,
            "truncated": self.truncated,
            "facts": dict(self.facts),
            "second_candidate": second.to_dict() if second else None,
            "alternatives": [c.to_dict() for c in self.alternatives],
            "follow_on_lines": [{"line": n, "text": t} for n, t in self.follow_on_lines],
        }


# ----------------------------------------------------------------------------------- scanning


@dataclass
class _Hit:
    line_no: int
    text: str
    groups: dict[str, str]
    spec: int = -1  # index of the trigger pattern (and its PatternMeta) in the entry


@dataclass
class _EntryState:
    triggers: list[_Hit] = field(default_factory=list)
    support: list[_Hit] = field(default_factory=list)
    requires_hit: _Hit | None = None
    excluded: bool = False


def _groups(m: re.Match) -> dict[str, str]:
    return {k: v.strip() for k, v in m.groupdict().items() if v and v.strip()}


def normalize(line: str, catalog: Catalog | None = None) -> str:
    """The line as the patterns see it: no colour codes, localized tool messages in English."""
    cat = catalog or load_catalog()
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if cat.locale_re is not None and cat.locale_re.search(line):
        table = dict(cat.locale)
        line = cat.locale_re.sub(lambda m: table[m.group(0)], line)
    return line


def _may_be_localized(text: str, cat: Catalog) -> bool:
    """Cheap test before the big alternation: non-ASCII text, or one of the ASCII translations."""
    return not text.isascii() or any(t in text for t in _ascii_translations(cat.locale))


@functools.lru_cache(maxsize=4)
def _ascii_translations(locale: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return tuple(t for t, _ in locale if t.isascii())


class _Scan:
    """One pass over the lines; keeps a bounded amount of state whatever the input size."""

    def __init__(self, catalog: Catalog):
        self.cat = catalog
        self.states = [_EntryState() for _ in catalog.entries]
        self.facts: dict[str, str] = {}
        self.suspicious: list[tuple[int, str]] = []
        self.cascade_lines: list[tuple[int, str]] = []
        self.conds_hit: set[int] = set()
        self.tail: collections.deque = collections.deque(maxlen=TAIL_LINES)
        self.lines = 0
        self.candidates = 0
        self.stopped = False
        self._prev: tuple[int, str, set] | None = None  # the last line: number, text, owners

    def feed_batch(self, lines: list[str]) -> None:
        """Scan a batch of lines: literals are looked for in the whole batch first (C speed)."""
        cat = self.cat
        first = self.lines + 1
        self.lines += len(lines)
        blob = "\n".join(lines)
        # the patterns see normalize()'s view: colour codes (gcc/ninja/uv with colour forced, CI logs) split
        # a message anywhere, localized tool messages are translated
        if "\x1b" in blob or (
            cat.locale_re is not None and _may_be_localized(blob, cat) and cat.locale_re.search(blob)
        ):
            lines = [normalize(ln, cat) for ln in lines]
            blob = "\n".join(lines)
        present = [(k, owners) for k, owners in cat.keywords if k in blob]
        # only wrapped messages need two-line matching; most of their literals are keywords already looked for
        join_keys = [k for k, _ in present if k in cat.join_keywords]
        join_keys += [k for k in cat.join_only if k in blob]
        join_keys += [k for k in cat.join_fragments if k in blob]
        for ci, (cre, clits) in enumerate(cat.cond_blob):  # "somewhere in the log": one search per batch
            if ci not in self.conds_hit and (clits is None or any(lit in blob for lit in clits)):
                if cre.search(blob):
                    self.conds_hit.add(ci)
        for offset, line in enumerate(lines):
            no = first + offset
            if line.strip() and not _MARKUP.match(line):
                self.tail.append((no, line))
            owners = set(cat.always)
            for k, own in present:
                if k in line:
                    owners |= own
            if owners:
                self._line(no, line, owners)
            prev = self._prev
            if (
                join_keys
                and prev is not None
                and (_unquoted(prev[1], line)[:1].isspace() or len(prev[1]) > 40)
                and any(k in line or k in prev[1] for k in join_keys)
            ):
                self._join(prev, no, line, present)
            self._prev = (no, line, owners)

    def _join(self, prev: tuple[int, str, set], no: int, line: str, present) -> None:
        """Trigger patterns whose match spans the break between two lines (a wrapped message).

        Tried two ways: with one space at the break (pip, uv and terminals wrap at a space and indent
        the next line; the Markdown quote marker of a quoted log's second line is dropped), and, when
        the first line is long, ends without a space and the next line starts at column 0, without one
        (a terminal that cut a word at its width: ``unsupp``/``orted``).
        """
        head = prev[1].rstrip()
        line = _unquoted(prev[1], line)
        self._join_as(prev, head, head + " " + line.lstrip(), present, 1)
        if len(prev[1]) >= HARD_WRAP_MIN and not prev[1][-1:].isspace() and line[:1] and not line[:1].isspace():
            self._join_as(prev, prev[1], prev[1] + line, present, 0)

    def _join_as(self, prev: tuple[int, str, set], head: str, joined: str, present, gap: int) -> None:
        owners = set(self.cat.always)
        for k, own in present:
            if k in joined:
                owners |= own
        for k, own in self.cat.join_owners:  # a literal the wrap split is in neither line, only in the join
            if k in joined:
                owners |= own
        for i in sorted(o for o in owners if isinstance(o, int)):
            entry, st = self.cat.entries[i], self.states[i]
            if st.excluded or len(st.triggers) >= MAX_TRIGGERS_KEPT:
                continue
            for j, p in enumerate(entry.patterns):
                if entry.meta[j].tail or not self.cat.joinable[i][j]:
                    continue
                if not any(lit in joined for lit in self.cat.lits[i][j] or ()):  # joinable: it has literals
                    continue
                if not all(n in joined for n in entry.meta[j].needs):
                    continue
                m = p.search(joined)
                if m and m.start() < len(head) < m.end() - gap:
                    if any(u.search(joined) for u in entry.meta[j].unless):
                        continue
                    if len(st.triggers) < MAX_TRIGGERS_KEPT:
                        st.triggers.append(_Hit(prev[0], joined, _groups(m), j))

    def _line(self, no: int, line: str, owners: set) -> None:
        self.candidates += 1
        for i in sorted(o for o in owners if isinstance(o, int)):
            entry, st = self.cat.entries[i], self.states[i]
            if st.excluded:
                continue
            if any(p.search(line) for p in entry.excludes):
                st.excluded = True
                continue
            matched = False
            for j, p in enumerate(entry.patterns):
                meta = entry.meta[j]
                if meta.tail:
                    continue
                lt = self.cat.lits[i][j]
                if lt is not None and not any(lit in line for lit in lt):
                    continue
                if meta.needs and not all(n in line for n in meta.needs):
                    continue
                m = p.search(line)
                if m and not any(u.search(line) for u in meta.unless):
                    matched = True
                    if len(st.triggers) < MAX_TRIGGERS_KEPT:
                        st.triggers.append(_Hit(no, line, _groups(m), j))
            if not matched:
                if len(st.support) < 2:
                    for k, p in enumerate(entry.support):
                        lt = self.cat.support_lits[i][k]
                        if lt is not None and not any(lit in line for lit in lt):
                            continue
                        m = p.search(line)
                        if m:
                            st.support.append(_Hit(no, line, _groups(m)))
                            break
            if st.requires_hit is None and entry.requires:
                for p in entry.requires:
                    if p.search(line):
                        st.requires_hit = _Hit(no, line, {})
                        break
        if "facts" in owners and self.cat.facts:
            for p in self.cat.facts:
                m = p.search(line)
                if m:
                    for name, value in _groups(m).items():
                        self.facts.setdefault(name, value)
        if "cascade" in owners and any(p.search(line) for p in self.cat.cascade):
            if len(self.cascade_lines) < 4 * MAX_SUSPICIOUS:
                self.cascade_lines.append((no, line))
        elif "suspicious" in owners and any(p.search(line) for p in self.cat.suspicious):
            if len(self.suspicious) < MAX_SUSPICIOUS:
                self.suspicious.append((no, line))

    def finish_tail(self) -> None:
        """Patterns that must match the last non-blank line (a build still running when the log ends)."""
        if not self.tail:
            return
        no, line = self.tail[-1]
        for i, entry in enumerate(self.cat.entries):
            st = self.states[i]
            for j, p in enumerate(entry.patterns):
                if entry.meta[j].tail:
                    m = p.search(line)
                    if m:
                        st.triggers.append(_Hit(no, line, _groups(m), j))
                        break


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 3] + "..."


class _Values(dict):
    """format_map() mapping: known values, else catalog defaults, else readable text."""

    def __init__(self, values: Mapping[str, str], defaults: Mapping[str, str]):
        super().__init__(values)
        self._defaults = defaults
        self.missed: list[str] = []  # placeholders the values did not fill, in the order the text uses them

    def __missing__(self, key: str) -> str:
        if key not in self.missed:
            self.missed.append(key)
        if key in self._defaults:
            return self._defaults[key]
        return f"<{key.replace('_', ' ')}>"


def fill(template: str, values: Mapping[str, str], defaults: Mapping[str, str] | None = None) -> str:
    """Fill ``{name}`` placeholders; never raises (a malformed template is returned as is)."""
    return fill_noting(template, values, defaults)[0]


def fill_noting(
    template: str, values: Mapping[str, str], defaults: Mapping[str, str] | None = None
) -> tuple[str, tuple[str, ...]]:
    """``fill``, and the placeholders it had to fill from ``defaults`` (or readable text): not in ``values``."""
    mapping = _Values(values, defaults or {})
    try:
        return string.Formatter().vformat(template, (), mapping), tuple(mapping.missed)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        return template, ()


def _split_paths(value: str) -> list[str]:
    return [p.strip() for p in re.split(rf"[,{re.escape(os.pathsep)}\n]", value) if p.strip()]


def derive_facts(values: dict[str, str]) -> None:
    """Facts computed from others (only where not already known): platform, majors, torch's CUDA, CUDA tags."""
    if "platform" not in values:
        for key, name in (("os_windows", "windows"), ("os_macos", "macos")):
            if key in values:
                values["platform"] = name
                break
    gv = values.get("gcc_version", "")
    m = re.match(r"(\d+)", gv)
    if m and "gcc_major" not in values:
        values["gcc_major"] = m.group(1)
    lib = values.get("library", "")
    # only these libraries' soname major is the CUDA major (CUDA 13.0's lib64: libcudart/libcublas/libcublasLt/
    # libnvrtc/libnvJitLink .so.13, but libcufft.so.12, libcusolver.so.12, libcusparse.so.12, libcurand.so.10)
    m = re.search(r"lib(?:cudart|cublas|cublasLt|nvrtc|nvJitLink)\.so\.(\d+)", lib)
    if m and "cuda_major" not in values:
        values["cuda_major"] = m.group(1)
    pt = values.get("python_tag", "")
    if pt and "python_version" not in values and len(pt) >= 2:
        values["python_version"] = f"{pt[0]}.{pt[1:]}"
    m = re.search(r"\+cu(\d+)(\d)\b", values.get("torch_version", ""))
    if m and "torch_cuda" not in values:
        values["torch_cuda"] = f"{m.group(1)}.{m.group(2)}"
    # the toolkit a build would use (nvcc's release) against torch's own CUDA: torch's cpp_extension refuses
    # to build across CUDA majors (_check_cuda_version), so "differ" is that refusal waiting to happen
    nvcc = re.match(r"(\d+)\.", values.get("nvcc_version", "") or values.get("nvcc_cuda", ""))
    torch_cuda = re.match(r"(\d+)\.", values.get("torch_cuda", ""))
    if nvcc and torch_cuda and "cuda_majors" not in values:
        values["cuda_majors"] = "agree" if nvcc.group(1) == torch_cuda.group(1) else "differ"


def _derive(values: dict[str, str]) -> None:
    """Values computed from others (only where not already known)."""
    derive_facts(values)
    for src, dst in (("cuda_version", "nvcc_version"), ("nvcc_version", "nvcc_cuda"), ("nvcc_cuda", "nvcc_version")):
        if src in values and dst not in values:
            values[dst] = values[src]
    nv = values.get("nvcc_version") or values.get("torch_cuda")
    if nv and "cuda_tag" not in values:
        m = re.match(r"(\d+)\.(\d+)", nv)
        if m:
            values["cuda_tag"] = f"cu{m.group(1)}{m.group(2)}"
    if values.get("compiler") in ("GNU", "GCC"):  # host_config.h and torch name the family; users type gcc
        values["compiler"] = "gcc"
    if "gcc_max" not in values and values.get("gcc_max_excl", "").isdigit():
        values["gcc_max"] = str(int(values["gcc_max_excl"]) - 1)
    if "toolkit" not in values and values.get("toolkits"):
        roots = _split_paths(values["toolkits"])
        want = values.get("torch_cuda", "")
        major = want.split(".")[0] if want else ""
        pick = (
            next((r for r in roots if want and f"cuda-{want}" in r), None)
            or next((r for r in roots if major and re.search(rf"cuda-{major}\.", r)), None)
            or (roots[0] if roots else None)
        )
        if pick:
            values["toolkit"] = pick
    ga = values.get("gpu_arch", "")
    canon = archs.parse_loose_arch(ga) if ga else None
    if canon and "gpu_arch_dotted" not in values:
        values["gpu_arch_dotted"] = canon.split("+")[0].rstrip("af")
    mf = values.get("missing_file")
    if mf and "csrc/" in mf:
        values["missing_file"] = "csrc/" + mf.split("csrc/", 1)[1]
    if values.get("package") and "package_spec" not in values:  # the package as a pip argument
        values["package_spec"] = values["package"]
    mod = values.get("module")
    if mod and "module_dist" not in values:
        values["module_dist"] = mod.split(".")[0]


_FACT_KEYS = (
    "platform",
    "torch_version",
    "torch_cuda",
    "nvcc_version",
    "cuda_home",
    "gcc_version",
    "python_version",
    "driver_version",
    "gpu_name",
    "glibc_version",
)


def _valid(entry: CatalogEntry, hit: _Hit, conds_hit: set[int], cat: Catalog, facts: Mapping[str, str]) -> bool:
    meta = entry.meta[hit.spec] if 0 <= hit.spec < len(entry.meta) else PatternMeta()
    for p in meta.requires:
        if cat.conditions.index(p) not in conds_hit:
            return False
    for p in meta.excludes:
        if cat.conditions.index(p) in conds_hit:
            return False
    return all(c.holds(facts) for c in meta.when)


def _entry_defaults(cat: Catalog, entry: CatalogEntry | None) -> dict[str, str]:
    """The text for placeholders nothing filled: the catalog's [defaults], overridden by the entry's own."""
    return {**dict(cat.defaults), **dict(entry.defaults if entry else ())}


def _finish(scan: _Scan, context: Mapping[str, str] | None, max_findings: int, truncated: bool) -> Explanation:
    cat = scan.cat
    scan.finish_tail()
    facts = dict(scan.facts)
    derive_facts(facts)
    candidates = []
    for entry, st in zip(cat.entries, scan.states, strict=True):
        if not st.triggers or st.excluded:
            continue
        if entry.requires and st.requires_hit is None:
            continue
        valid = [h for h in st.triggers if _valid(entry, h, scan.conds_hit, cat, facts)]
        if not valid:
            continue
        strong = [h for h in valid if not entry.meta[h.spec].weak] if entry.meta else valid
        conf = "high" if strong else "low"
        hits = strong or valid
        candidates.append((0 if strong else 1, entry.rank, hits[0].line_no, entry, st, hits, conf))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    claimed: dict[int, str] = {}
    findings: list[Finding] = []
    lost: list[Candidate] = []
    for _, _, _, entry, st, hits, conf in candidates:
        fresh = [h for h in hits if h.line_no not in claimed]
        if not fresh or len(findings) >= max(1, max_findings):
            by = claimed.get(hits[0].line_no)
            why = (
                f"its line {hits[0].line_no} is already explained by [{by}], a more fundamental cause"
                if by
                else "beyond the number of findings asked for"
            )
            lost.append(Candidate(entry.id, conf, why, tuple((h.line_no, _clip(h.text)) for h in hits[:2])))
            continue
        for h in hits:
            claimed.setdefault(h.line_no, entry.id)
        values: dict[str, str] = {}
        for hit in sorted([*hits, *st.support], key=lambda h: h.line_no):
            for k, v in hit.groups.items():
                values.setdefault(k, v)
        for k, v in facts.items():
            values.setdefault(k, v)
        for k, v in (context or {}).items():
            if v is not None and str(v).strip():
                values.setdefault(str(k), str(v))
        _derive(values)
        entry_defaults = _entry_defaults(cat, entry)
        ev_hits = fresh[:3] + st.support[:2] + ([st.requires_hit] if st.requires_hit else [])
        seen: set[int] = set()
        evidence = []
        for h in sorted(ev_hits, key=lambda h: h.line_no):
            if h.line_no not in seen:
                seen.add(h.line_no)
                evidence.append((h.line_no, _clip(h.text)))
        cause, missed_cause = fill_noting(entry.cause, values, entry_defaults)
        fix, missed_fix = fill_noting(entry.fix, values, entry_defaults)
        findings.append(
            Finding(
                id=entry.id,
                phase=entry.phase,
                cause=cause,
                fix=fix,
                not_in_log=tuple(dict.fromkeys(missed_cause + missed_fix)),
                evidence=tuple(evidence[:MAX_EVIDENCE]),
                rank=entry.rank,
                confidence=conf,
                doctor=entry.doctor,
            )
        )
    if findings and all(f.confidence == "low" for f in findings) and len({f.id for f in findings}) > 1:
        # only weak, disagreeing evidence: say unknown and show the candidates
        lost = [
            Candidate(f.id, f.confidence, "weak evidence that disagrees with another weak candidate", f.evidence)
            for f in findings
        ] + lost
        findings = []
    suspicious: tuple[tuple[int, str], ...] = ()
    follow: tuple[tuple[int, str], ...] = ()
    if not findings:
        picked = scan.suspicious[:MAX_SUSPICIOUS]
        picked += scan.cascade_lines[: MAX_SUSPICIOUS - len(picked)]
        suspicious = tuple((n, _clip(t)) for n, t in sorted(picked))
    else:
        root_line = min(n for n, _ in findings[0].evidence) if findings[0].evidence else 0
        follow = tuple((n, _clip(t)) for n, t in scan.cascade_lines if n > root_line)[:MAX_FOLLOW_ON]
    shown = tuple((k, facts[k]) for k in _FACT_KEYS if facts.get(k))
    return Explanation(
        tuple(findings),
        not findings,
        suspicious,
        scan.lines,
        truncated or scan.stopped,
        facts=shown,
        alternatives=tuple(lost),
        follow_on_lines=follow,
    )


BATCH_LINES = 2048


def explain_lines(
    lines: Iterable[str],
    context: Mapping[str, str] | None = None,
    *,
    max_findings: int = 5,
    max_bytes: int = MAX_BYTES,
    catalog: Catalog | None = None,
) -> Explanation:
    """Explain lines already in hand (each is cut at MAX_LINE_CHARS; at most max_bytes chars)."""
    scan = _Scan(catalog or load_catalog())
    budget = max_bytes
    truncated = False
    deadline = time.monotonic() + TIME_BUDGET_S
    batch: list[str] = []
    for raw in lines:
        if budget <= 0:
            truncated = True
            break
        budget -= len(raw) + 1
        line = raw.rstrip("\r\n")
        if "\r" in line:  # progress bars: keep the last state of the line
            line = line.rsplit("\r", 1)[-1] or line.replace("\r", " ")
        batch.append(line[:MAX_LINE_CHARS])
        if len(batch) >= BATCH_LINES:
            scan.feed_batch(batch)
            batch = []
            if scan.candidates > MAX_CANDIDATE_LINES or time.monotonic() > deadline:
                scan.stopped = True
                break
    if batch and not scan.stopped:
        scan.feed_batch(batch)
    return _finish(scan, context, max_findings, truncated)


def _iter_text_lines(fh: IO[str]) -> Iterator[str]:
    """Lines of a text stream, each at most MAX_LINE_CHARS; the rest of a longer line is skipped."""
    while True:
        chunk = fh.readline(MAX_LINE_CHARS)
        if not chunk:
            return
        if len(chunk) >= MAX_LINE_CHARS and not chunk.endswith("\n"):
            while True:  # drain the rest of an over-long line without keeping it
                rest = fh.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith("\n"):
                    break
        yield chunk


def explain_text(
    text: str, context: Mapping[str, str] | None = None, *, max_findings: int = 5, catalog: Catalog | None = None
) -> Explanation:
    """Explain a log given as one string."""
    if not isinstance(text, str):
        raise TypeError("explain_text() takes str; use explain_file() for bytes or paths")
    return explain_lines(_iter_text_lines(io.StringIO(text)), context, max_findings=max_findings, catalog=catalog)


def diagnose_text(text: str, context: Mapping[str, str] | None = None) -> Explanation:
    """Classify a failure's output (a build log, a traceback, stderr): the API for other commands.

    ``result.root`` is the root cause (``None`` when unknown; never a guess from weak, disagreeing
    evidence), ``result.root.id`` its catalog id, ``result.root.fix`` the fix,
    ``result.second_candidate`` the runner-up and ``result.facts`` what the text states.
    """
    return explain_text(text, context)


# ----------------------------------------------------------------------------------- files


def looks_binary(sample: bytes) -> bool:
    """NUL bytes (outside a UTF-16 BOM text) or mostly non-text bytes in the sample."""
    if not sample:
        return False
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    if b"\x00" in sample:
        return True
    text = sample.decode("utf-8", "replace")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f\b\x1b\x0b"))
    return bad / max(1, len(text)) > 0.10


class _CountingReader(io.RawIOBase):
    """Reads at most ``limit`` bytes from ``raw`` (prefixed by ``head``); sets ``hit_limit``."""

    def __init__(self, head: bytes, raw: IO[bytes], limit: int):
        self._head = head
        self._raw = raw
        self._left = limit
        self.hit_limit = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self._left <= 0:
            if self._head or self._raw.read(1):
                self.hit_limit = True
            return 0
        want = min(len(buf), self._left)
        if self._head:
            data, self._head = self._head[:want], self._head[want:]
        else:
            data = self._raw.read(want)
        n = len(data)
        buf[:n] = data
        self._left -= n
        return n


def explain_stream(
    raw: IO[bytes],
    context: Mapping[str, str] | None = None,
    *,
    name: str = "the log",
    max_findings: int = 5,
    max_bytes: int = MAX_BYTES,
    catalog: Catalog | None = None,
) -> Explanation:
    """Explain a binary stream (file or stdin), streaming; refuses binary data with UsageError."""
    head = raw.read(SNIFF_BYTES) or b""
    if looks_binary(head):
        raise UsageError(
            f"{name} is not a text log (it holds NUL bytes or mostly non-text data)",
            "pass the build log as text, e.g. `pip install ... 2>&1 | tee build.log` and then "
            "`mamba-build explain build.log`",
        )
    encoding = "utf-8"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # e.g. PowerShell's `>` redirection
    reader = _CountingReader(head, raw, max_bytes)
    text = io.TextIOWrapper(
        io.BufferedReader(reader, buffer_size=1 << 16), encoding=encoding, errors="replace", newline=None
    )
    expl = explain_lines(
        _iter_text_lines(text), context, max_findings=max_findings, max_bytes=max_bytes * 4, catalog=catalog
    )
    if reader.hit_limit and not expl.truncated:
        expl = dataclasses.replace(expl, truncated=True)
    return expl


def explain_file(
    path_or_dash: str | os.PathLike,
    context: Mapping[str, str] | None = None,
    *,
    max_findings: int = 5,
    max_bytes: int = MAX_BYTES,
    catalog: Catalog | None = None,
) -> Explanation:
    """Explain a log file, or standard input for ``-``."""
    if str(path_or_dash) == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise UsageError("standard input is not readable", "give the log file as an argument")
        return explain_stream(
            stream, context, name="standard input", max_findings=max_findings, max_bytes=max_bytes, catalog=catalog
        )
    path = Path(path_or_dash)
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a log file", "give the path of the log file itself")
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise UsageError(
            f"no such file: {path}", "check the path, or pipe the log in: `... | mamba-build explain -`"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}", "check the file's permissions") from None
    with fh:
        try:
            return explain_stream(
                fh, context, name=str(path), max_findings=max_findings, max_bytes=max_bytes, catalog=catalog
            )
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}", "check the file") from None


# ----------------------------------------------------------------------------------- context


def probe_context() -> dict[str, str]:
    """Facts about this machine for placeholders; reads files only (no import of torch, no process)."""
    ctx: dict[str, str] = {}
    roots = sorted({str(Path(p).parent.parent) for p in glob.glob("/usr/local/cuda-*/bin/nvcc")})
    env_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if env_home:
        ctx["cuda_home"] = env_home
        if Path(env_home, "bin", "nvcc").exists() and env_home not in roots:
            roots.insert(0, env_home)
    if roots:
        ctx["toolkits"] = ",".join(roots)
    try:
        import importlib.util

        spec = importlib.util.find_spec("torch")
        if spec and spec.origin:
            vfile = Path(spec.origin).parent / "version.py"
            text = vfile.read_text(encoding="utf-8", errors="replace")[:20000]
            m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)", text, re.M)
            if m:
                ctx["torch_version"] = m.group(1)
            m = re.search(r"^cuda(?:\s*:[^=]*)?=\s*['\"]([\d.]+)['\"]", text, re.M)
            if m:
                ctx["torch_cuda"] = m.group(1)
    except (ImportError, OSError, ValueError):
        pass
    return ctx


# ----------------------------------------------------------------------------------- rendering


def _wrap(text: str, indent: str, width: int = 100) -> str:
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _not_in_log_note(f: Finding, here: bool) -> str:
    """What the template values in a finding's text stand for (the catalog's [placeholder_help])."""
    cat = load_catalog()
    defaults = _entry_defaults(cat, next((e for e in cat.entries if e.id == f.id), None))
    helps = dict(cat.placeholder_help)
    named = [k for k in f.not_in_log if k in helps and k in defaults]
    if not named:
        return ""
    parts = [f"{defaults[k]} is {helps[k][0]}" for k in named]
    note = "Not in the log: " + "; ".join(parts) + "."
    filled_here = [defaults[k] for k in named if helps[k][1]]
    if not here and filled_here:
        note += (
            " On the machine that made the log, `mamba-build explain --here` fills in "
            + " and ".join(filled_here)
            + " from its torch and toolkits."
        )
    return note


def render_text(expl: Explanation, width: int = 100, here: bool = False) -> str:
    """Plain-text report: cause, evidence (with line numbers) and fix of each finding."""
    out: list[str] = []
    scope = f"{expl.lines_read} line{'s' if expl.lines_read != 1 else ''} read"
    if expl.truncated:
        scope += f", input cut at the size/line limits ({MAX_BYTES // (1024 * 1024)} MiB)"
    facts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in expl.facts)
    if expl.findings:
        n = len(expl.findings)
        head = f"{n} known cause{'s' if n > 1 else ''} found ({scope})"
        if n > 1:
            head += ", most fundamental first"
        out.append(head + ":")
        for i, f in enumerate(expl.findings, 1):
            out.append("")
            out.append(
                f"{i}. [{f.id}] ({f.phase})"
                + ("  [low confidence: weak evidence only]" if f.confidence == "low" else "")
            )
            out.append(_wrap(f"Cause: {f.cause}", "   ", width))
            if f.evidence:
                out.append("   Evidence:")
                for no, text in f.evidence:
                    out.append(f"     line {no}: {text[: width + 60]}")
            out.append(_wrap(f"Fix: {f.fix}", "   ", width))
            note = _not_in_log_note(f, here)
            if note:
                out.append(_wrap(note, "   ", width))
            if f.doctor:
                out.append(
                    _wrap(
                        # a name ending in ':' is a family of checks, one per module/toolkit (archs:<module>)
                        f"Seen before a build by `mamba-build doctor` (check{'s' if len(f.doctor) > 1 else ''} "
                        + ", ".join(c + "*" if c.endswith(":") else c for c in f.doctor)
                        + ").",
                        "   ",
                        width,
                    )
                )
        if expl.follow_on_lines:
            out.append("")
            out.append(
                _wrap(
                    "Consequences, not causes (they follow from the above): "
                    + ", ".join(f"line {n}" for n, _ in expl.follow_on_lines)
                    + ".",
                    "",
                    width,
                )
            )
        if expl.alternatives:
            c = expl.alternatives[0]
            out.append(_wrap(f"Also considered: [{c.id}] ({c.why_not_root}).", "", width))
        if facts:
            out.append(_wrap(f"Facts read from the log: {facts}.", "", width))
        return "\n".join(out) + "\n"
    if expl.lines_read == 0:
        out.append("The log is empty: there is nothing to explain.")
    elif expl.suspicious_lines:
        out.append(f"No known cause recognised ({scope}). These lines look like the error:")
        for no, text in expl.suspicious_lines:
            out.append(f"  line {no}: {text[: width + 60]}")
        out.append("")
        out.append(
            _wrap(
                "The first of them is usually the real error; the later ones are often its consequences. "
                "If this failure repeats, please report it with the log so it can be added to the catalog.",
                "",
                width,
            )
        )
    else:
        out.append(
            f"No failure found ({scope}): nothing in this log looks like an error. "
            "If the build failed, the error is not in this part of the output."
        )
    if expl.alternatives:
        out.append(
            _wrap(
                "Possible but not certain (weak, disagreeing evidence): "
                + ", ".join(f"[{c.id}]" for c in expl.alternatives)
                + ".",
                "",
                width,
            )
        )
    if facts:
        out.append(_wrap(f"Facts read from the log: {facts}.", "", width))
    return "\n".join(out) + "\n"
