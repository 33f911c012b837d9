"""Explain a failed build/import/runtime log: the root cause, the evidence lines and the fix.

The knowledge lives in ``mamba_build/data/failures.toml`` (the catalog); this module only scans.

API (for ``explain``, ``compile`` and ``doctor``):

* :func:`explain_text` ``(text, context=None, *, max_findings=5) -> Explanation``
* :func:`explain_file` ``(path_or_dash, context=None, *, max_findings=5) -> Explanation``;
  raises :class:`~mamba_build.errors.UsageError` for an unreadable, binary or non-text file.
* :func:`explain_lines` ``(iterable_of_str, context=None, ...)`` for output already in hand
  (e.g. ``runner.stream``'s tail, or lines read from its log file).
* :func:`render_text` ``(explanation) -> str``: the plain-text report (no colour codes).
* :func:`probe_context` ``() -> dict``: cheap facts about this machine (reads files, starts no
  process) usable as ``context`` when the log was made here.

``context`` keys (all strings, all optional; the doctor fills what it knows):
``torch_version`` (``2.14.1+cu130``), ``torch_cuda`` (``13.0``), ``nvcc_version`` (``13.0``),
``nvcc_path``, ``cuda_home``, ``toolkits`` (toolkit roots found on the machine, separated by
``os.pathsep`` or commas), ``gcc_version``, ``gpu_arch`` (``sm_90``/``90``/``9.0``),
``gpu_name``, ``driver_version`` (``cuda_version`` is read as ``nvcc_version``). Values read from the log win over the context; anything still
missing is replaced by readable text from the catalog's ``[defaults]``, never an error.

Everything is bounded: at most ``MAX_BYTES`` are read (streamed, line by line), lines are cut
at ``MAX_LINE_CHARS``, at most ``MAX_CANDIDATE_LINES`` lines are examined in detail and the scan
stops after ``TIME_BUDGET_S`` seconds; ``Explanation.truncated`` says when any limit was hit.
"""

from __future__ import annotations

import codecs
import functools
import glob
import io
import os
import re
import string
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from mamba_build import tables
from mamba_build.errors import UsageError

MAX_BYTES = 64 * 1024 * 1024
MAX_LINE_CHARS = 4096
SNIFF_BYTES = 64 * 1024
MAX_CANDIDATE_LINES = 1_000_000
TIME_BUDGET_S = 20.0
MAX_SUSPICIOUS = 10
MAX_TRIGGERS_KEPT = 8
MAX_EVIDENCE = 6
EVIDENCE_CHARS = 400

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


# ----------------------------------------------------------------------------------- catalog


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


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]
    defaults: tuple[tuple[str, str], ...]
    facts: tuple[re.Pattern, ...]
    cascade: tuple[re.Pattern, ...]
    suspicious: tuple[re.Pattern, ...]
    # Fast first test: literal -> the owners (entry index, or "facts"/"cascade"/"suspicious")
    # of the regexes that cannot match a line without it; `always` owners have a regex with no
    # required literal and are tried on every line.
    keywords: tuple[tuple[str, frozenset], ...]
    always: frozenset

    def entry(self, failure_id: str) -> CatalogEntry | None:
        return next((e for e in self.entries if e.id == failure_id), None)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.entries)


def _compile_all(patterns: Iterable[str], where: str) -> tuple[re.Pattern, ...]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as exc:  # a broken catalog is our bug: say where
            raise ValueError(f"failures.toml: bad regex in {where}: {p!r}: {exc}") from exc
    return tuple(out)


try:  # the regex parser, to find the literal text every match must contain
    from re import _constants as _sre_c, _parser as _sre_p  # Python >= 3.11
except ImportError:  # pragma: no cover
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_p  # type: ignore[no-redef]

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
            if alts and all(a is not None for a in alts):
                sets.append(frozenset().union(*alts))
        elif op in _REPEATS and av[0] >= 1:
            inner = _required(list(av[2]))
            if inner is not None:
                sets.append(inner)
    flush()
    options = [frozenset([r]) for r in runs if len(r) >= 3] + [st for st in sets if min(map(len, st)) >= 3]
    if not options:
        return None
    return max(options, key=lambda st: (min(map(len, st)), -len(st)))


def required_literals(pattern: re.Pattern) -> frozenset | None:
    """Literals one of which any line matching ``pattern`` contains; None when there is none."""
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        return _required(list(_sre_p.parse(pattern.pattern, pattern.flags)))
    except Exception:  # noqa: BLE001 - internal parser API: fall back to "always try"
        return None


@functools.lru_cache(maxsize=None)
def load_catalog() -> Catalog:
    """Parse and compile ``data/failures.toml`` once per process."""
    data = tables.load("failures")
    entries = []
    seen: set[str] = set()
    for raw in data.get("failure", []):
        fid = raw["id"]
        if fid in seen:
            raise ValueError(f"failures.toml: duplicate id {fid!r}")
        seen.add(fid)
        pats = _compile_all(raw.get("patterns", []), fid)
        sup = _compile_all(raw.get("support", []), fid)
        req = _compile_all(raw.get("requires", []), fid)
        exc = _compile_all(raw.get("excludes", []), fid)
        entries.append(CatalogEntry(
            id=fid, phase=raw.get("phase", "any"), rank=int(raw.get("rank", 1000)),
            cause=raw.get("cause", ""), fix=raw.get("fix", ""), patterns=pats, support=sup,
            requires=req, excludes=exc, defaults=tuple(sorted(raw.get("defaults", {}).items())),
            source=raw.get("source", ""),
        ))
    entries.sort(key=lambda e: e.rank)
    facts = _compile_all(data.get("facts", {}).get("patterns", []), "facts")
    cascade = _compile_all(data.get("cascade", {}).get("patterns", []), "cascade")
    suspicious = _compile_all(data.get("suspicious", {}).get("patterns", []), "suspicious")
    owners: list[tuple[Any, re.Pattern]] = [
        (i, p) for i, e in enumerate(entries) for p in (*e.patterns, *e.support, *e.requires, *e.excludes)
    ]
    owners += [("facts", p) for p in facts] + [("cascade", p) for p in cascade]
    owners += [("suspicious", p) for p in suspicious]
    index: dict[str, set] = {}
    always: set = set()
    for owner, pat in owners:
        lits = required_literals(pat)
        if lits is None:
            always.add(owner)
        else:
            for lit in lits:
                index.setdefault(lit, set()).add(owner)
    return Catalog(
        entries=tuple(entries),
        defaults=tuple(sorted(data.get("defaults", {}).items())),
        facts=facts, cascade=cascade, suspicious=suspicious,
        keywords=tuple(sorted((k, frozenset(v)) for k, v in index.items())),
        always=frozenset(always),
    )


# ----------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Finding:
    id: str
    phase: str
    cause: str
    fix: str
    evidence: tuple[tuple[int, str], ...]  # (1-based line number, line text)
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "phase": self.phase, "rank": self.rank, "cause": self.cause,
            "fix": self.fix, "evidence": [{"line": n, "text": t} for n, t in self.evidence],
        }


@dataclass(frozen=True)
class Explanation:
    findings: tuple[Finding, ...]
    unknown: bool
    suspicious_lines: tuple[tuple[int, str], ...]
    lines_read: int
    truncated: bool

    @property
    def root(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "unknown": self.unknown,
            "findings": [f.to_dict() for f in self.findings],
            "suspicious_lines": [{"line": n, "text": t} for n, t in self.suspicious_lines],
            "lines_read": self.lines_read,
            "truncated": self.truncated,
        }


# ----------------------------------------------------------------------------------- scanning


@dataclass
class _Hit:
    line_no: int
    text: str
    groups: dict[str, str]


@dataclass
class _EntryState:
    triggers: list[_Hit] = field(default_factory=list)
    support: list[_Hit] = field(default_factory=list)
    requires_hit: _Hit | None = None
    excluded: bool = False


def _groups(m: re.Match) -> dict[str, str]:
    return {k: v.strip() for k, v in m.groupdict().items() if v and v.strip()}


class _Scan:
    """One pass over the lines; keeps a bounded amount of state whatever the input size."""

    def __init__(self, catalog: Catalog):
        self.cat = catalog
        self.states = [_EntryState() for _ in catalog.entries]
        self.facts: dict[str, str] = {}
        self.suspicious: list[tuple[int, str]] = []
        self.cascade_lines: list[tuple[int, str]] = []
        self.lines = 0
        self.candidates = 0
        self.stopped = False

    def feed_batch(self, lines: list[str]) -> None:
        """Scan a batch of lines: literals are looked for in the whole batch first (C speed)."""
        cat = self.cat
        first = self.lines + 1
        self.lines += len(lines)
        blob = "\n".join(lines)
        present = [(k, owners) for k, owners in cat.keywords if k in blob]
        if not present and not cat.always:
            return
        for offset, line in enumerate(lines):
            owners = set(cat.always)
            for k, own in present:
                if k in line:
                    owners |= own
            if owners:
                self._line(first + offset, line, owners)

    def _line(self, no: int, line: str, owners: set) -> None:
        self.candidates += 1
        if "\x1b" in line:
            line = _ANSI.sub("", line)
        for i in sorted(o for o in owners if isinstance(o, int)):
            entry, st = self.cat.entries[i], self.states[i]
            if st.excluded:
                continue
            if any(p.search(line) for p in entry.excludes):
                st.excluded = True
                continue
            for p in entry.patterns:
                m = p.search(line)
                if m:
                    if len(st.triggers) < MAX_TRIGGERS_KEPT:
                        st.triggers.append(_Hit(no, line, _groups(m)))
                    break
            else:
                if len(st.support) < 2:
                    for p in entry.support:
                        m = p.search(line)
                        if m:
                            st.support.append(_Hit(no, line, _groups(m)))
                            break
            if st.requires_hit is None and entry.requires:
                for p in entry.requires:
                    if p.search(line):
                        st.requires_hit = _Hit(no, line, {})
                        break
        if "facts" in owners:
            for p in self.cat.facts:
                m = p.search(line)
                if m:
                    for k, v in _groups(m).items():
                        self.facts.setdefault(k, v)
        if "suspicious" in owners and any(p.search(line) for p in self.cat.suspicious):
            if any(p.search(line) for p in self.cat.cascade):
                if len(self.cascade_lines) < MAX_SUSPICIOUS:
                    self.cascade_lines.append((no, line))
            elif len(self.suspicious) < MAX_SUSPICIOUS:
                self.suspicious.append((no, line))


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 3] + "..."


class _Values(dict):
    """format_map() mapping: known values, else catalog defaults, else readable text."""

    def __init__(self, values: Mapping[str, str], defaults: Mapping[str, str]):
        super().__init__(values)
        self._defaults = defaults

    def __missing__(self, key: str) -> str:
        if key in self._defaults:
            return self._defaults[key]
        return f"<{key.replace('_', ' ')}>"


def fill(template: str, values: Mapping[str, str], defaults: Mapping[str, str] | None = None) -> str:
    """Fill ``{name}`` placeholders; never raises (a malformed template is returned as is)."""
    mapping = _Values(values, defaults or {})
    try:
        return string.Formatter().vformat(template, (), mapping)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        return template


def _split_paths(value: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,%s\n]" % re.escape(os.pathsep), value) if p.strip()]


def _derive(values: dict[str, str]) -> None:
    """Values computed from others (only where not already known)."""
    tv = values.get("torch_version", "")
    m = re.search(r"\+cu(\d+)(\d)\b", tv)
    if m and "torch_cuda" not in values:
        values["torch_cuda"] = f"{m.group(1)}.{m.group(2)}"
    for src, dst in (("cuda_version", "nvcc_version"), ("nvcc_version", "nvcc_cuda"), ("nvcc_cuda", "nvcc_version")):
        if src in values and dst not in values:
            values[dst] = values[src]
    nv = values.get("nvcc_version") or values.get("torch_cuda")
    if nv and "cuda_tag" not in values:
        m = re.match(r"(\d+)\.(\d+)", nv)
        if m:
            values["cuda_tag"] = f"cu{m.group(1)}{m.group(2)}"
    if "gcc_max" not in values and values.get("gcc_max_excl", "").isdigit():
        values["gcc_max"] = str(int(values["gcc_max_excl"]) - 1)
    if "toolkit" not in values and values.get("toolkits"):
        roots = _split_paths(values["toolkits"])
        want = values.get("torch_cuda", "")
        major = want.split(".")[0] if want else ""
        pick = (next((r for r in roots if want and f"cuda-{want}" in r), None)
                or next((r for r in roots if major and re.search(rf"cuda-{major}\.", r)), None)
                or (roots[0] if roots else None))
        if pick:
            values["toolkit"] = pick
    ga = values.get("gpu_arch", "")
    m = re.search(r"(\d+)(\d)[af]?$", ga.replace("sm_", "").replace(".", ""))
    if m and "gpu_arch_dotted" not in values:
        values["gpu_arch_dotted"] = f"{m.group(1)}.{m.group(2)}"
    mf = values.get("missing_file")
    if mf and "csrc/" in mf:
        values["missing_file"] = "csrc/" + mf.split("csrc/", 1)[1]
    mod = values.get("module")
    if mod and "module_dist" not in values:
        values["module_dist"] = mod.split(".")[0]


def _finish(scan: _Scan, context: Mapping[str, str] | None, max_findings: int, truncated: bool) -> Explanation:
    cat = scan.cat
    defaults = dict(cat.defaults)
    candidates = []
    for entry, st in zip(cat.entries, scan.states):
        if not st.triggers or st.excluded:
            continue
        if entry.requires and st.requires_hit is None:
            continue
        candidates.append((entry.rank, st.triggers[0].line_no, entry, st))
    candidates.sort(key=lambda c: (c[0], c[1]))
    claimed: set[int] = set()
    findings: list[Finding] = []
    for _, _, entry, st in candidates:
        fresh = [h for h in st.triggers if h.line_no not in claimed]
        if not fresh:
            continue  # every line it saw is already explained by a more fundamental cause
        claimed.update(h.line_no for h in st.triggers)
        values: dict[str, str] = {}
        for hit in sorted([*st.triggers, *st.support], key=lambda h: h.line_no):
            for k, v in hit.groups.items():
                values.setdefault(k, v)
        for k, v in scan.facts.items():
            values.setdefault(k, v)
        for k, v in (context or {}).items():
            if v is not None and str(v).strip():
                values.setdefault(str(k), str(v))
        _derive(values)
        entry_defaults = {**defaults, **dict(entry.defaults)}
        ev_hits = fresh[:3] + st.support[:2] + ([st.requires_hit] if st.requires_hit else [])
        seen: set[int] = set()
        evidence = []
        for h in sorted(ev_hits, key=lambda h: h.line_no):
            if h.line_no not in seen:
                seen.add(h.line_no)
                evidence.append((h.line_no, _clip(h.text)))
        findings.append(Finding(
            id=entry.id, phase=entry.phase, cause=fill(entry.cause, values, entry_defaults),
            fix=fill(entry.fix, values, entry_defaults), evidence=tuple(evidence[:MAX_EVIDENCE]),
            rank=entry.rank,
        ))
        if len(findings) >= max(1, max_findings):
            break
    suspicious: tuple[tuple[int, str], ...] = ()
    if not findings:
        picked = scan.suspicious[:MAX_SUSPICIOUS]
        picked += scan.cascade_lines[: MAX_SUSPICIOUS - len(picked)]
        suspicious = tuple((n, _clip(t)) for n, t in sorted(picked))
    return Explanation(tuple(findings), not findings, suspicious, scan.lines, truncated or scan.stopped)


BATCH_LINES = 2048


def explain_lines(lines: Iterable[str], context: Mapping[str, str] | None = None, *,
                  max_findings: int = 5, max_bytes: int = MAX_BYTES) -> Explanation:
    """Explain lines already in hand (each is cut at MAX_LINE_CHARS; at most max_bytes chars)."""
    scan = _Scan(load_catalog())
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


def explain_text(text: str, context: Mapping[str, str] | None = None, *, max_findings: int = 5) -> Explanation:
    """Explain a log given as one string."""
    if not isinstance(text, str):
        raise TypeError("explain_text() takes str; use explain_file() for bytes or paths")
    return explain_lines(_iter_text_lines(io.StringIO(text)), context, max_findings=max_findings)


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


def explain_stream(raw: IO[bytes], context: Mapping[str, str] | None = None, *, name: str = "the log",
                   max_findings: int = 5, max_bytes: int = MAX_BYTES) -> Explanation:
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
    text = io.TextIOWrapper(io.BufferedReader(reader, buffer_size=1 << 16), encoding=encoding,
                            errors="replace", newline=None)
    expl = explain_lines(_iter_text_lines(text), context, max_findings=max_findings, max_bytes=max_bytes * 4)
    if reader.hit_limit and not expl.truncated:
        expl = Explanation(expl.findings, expl.unknown, expl.suspicious_lines, expl.lines_read, True)
    return expl


def explain_file(path_or_dash: str | os.PathLike, context: Mapping[str, str] | None = None, *,
                 max_findings: int = 5, max_bytes: int = MAX_BYTES) -> Explanation:
    """Explain a log file, or standard input for ``-``."""
    if str(path_or_dash) == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise UsageError("standard input is not readable", "give the log file as an argument")
        return explain_stream(stream, context, name="standard input", max_findings=max_findings,
                              max_bytes=max_bytes)
    path = Path(path_or_dash)
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a log file", "give the path of the log file itself")
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}", "check the path, or pipe the log in: `... | mamba-build explain -`") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}", "check the file's permissions") from None
    with fh:
        try:
            return explain_stream(fh, context, name=str(path), max_findings=max_findings, max_bytes=max_bytes)
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
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False)


def render_text(expl: Explanation, width: int = 100) -> str:
    """Plain-text report: cause, evidence (with line numbers) and fix of each finding."""
    out: list[str] = []
    scope = f"{expl.lines_read} line{'s' if expl.lines_read != 1 else ''} read"
    if expl.truncated:
        scope += f", input cut at the size/line limits ({MAX_BYTES // (1024 * 1024)} MiB)"
    if expl.findings:
        n = len(expl.findings)
        head = f"{n} known cause{'s' if n > 1 else ''} found ({scope})"
        if n > 1:
            head += ", most fundamental first"
        out.append(head + ":")
        for i, f in enumerate(expl.findings, 1):
            out.append("")
            out.append(f"{i}. [{f.id}] ({f.phase})")
            out.append(_wrap(f"Cause: {f.cause}", "   ", width))
            if f.evidence:
                out.append("   Evidence:")
                for no, text in f.evidence:
                    out.append(f"     line {no}: {text[: width + 60]}")
            out.append(_wrap(f"Fix: {f.fix}", "   ", width))
        return "\n".join(out) + "\n"
    if expl.lines_read == 0:
        out.append("The log is empty: there is nothing to explain.")
    elif expl.suspicious_lines:
        out.append(f"No known cause recognised ({scope}). These lines look like the error:")
        for no, text in expl.suspicious_lines:
            out.append(f"  line {no}: {text[: width + 60]}")
        out.append("")
        out.append(_wrap("The first of them is usually the real error; the later ones are often its consequences. "
                         "If this failure repeats, please report it with the log so it can be added to the catalog.",
                         "", width))
    else:
        out.append(f"No failure found ({scope}): nothing in this log looks like an error. "
                   "If the build failed, the error is not in this part of the output.")
    return "\n".join(out) + "\n"
