"""A static package index for a wheel directory: PEP 503 HTML plus the PEP 691 JSON form.

Layout (ROOT is the wheel directory; ``pip install --index-url file://ROOT/simple ...`` works,
and so does serving ROOT with any static web server or object store)::

    ROOT/<wheel files>, ROOT/manifest.json
    ROOT/simple/index.html, ROOT/simple/index.json                 project list
    ROOT/simple/<normalized-name>/index.html, .../index.json       links ../../<wheel>#sha256=<hex>

Merging: an existing index under ROOT/simple is read first (our index.json files, else the
HTML anchors). Entries are keyed by file name and never dropped: a wheel that is no longer in
ROOT keeps its entry (and its old URL) until someone deletes the project's index files by hand.
Wheels present in ROOT always win (their hash is recomputed). Other source directories given to
:func:`build_index` are merged into ROOT first: their wheels are copied in and their manifest
records added to ROOT/manifest.json; a different wheel under an existing file name is an error.
"""

from __future__ import annotations

import email.parser
import html
import json
import logging
import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote, unquote

from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from mamba_build.errors import UsageError
from mamba_build.manifest import Manifest, parse_wheel_name, sha256_file, wheels_in

log = logging.getLogger(__name__)

API_VERSION = "1.1"  # PEP 691 + PEP 700 (versions, size)
JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
SIMPLE = "simple"


def normalize(name: str) -> str:
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class IndexEntry:
    filename: str
    url: str  # relative to the project page
    sha256: str
    size: int | None = None
    requires_python: str | None = None

    @property
    def project(self) -> str:
        return normalize(parse_wheel_filename(self.filename)[0]) if self.filename.endswith(".whl") \
            else normalize(re.split(r"-\d", self.filename, maxsplit=1)[0])

    @property
    def version(self) -> str | None:
        try:
            return str(parse_wheel_filename(self.filename)[1])
        except Exception:  # not a wheel name (an sdist kept from an older index)
            return None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"filename": self.filename, "url": self.url, "hashes": {"sha256": self.sha256}}
        if self.requires_python:
            out["requires-python"] = self.requires_python
        if self.size is not None:
            out["size"] = self.size
        return out


@dataclass
class IndexResult:
    root: Path
    projects: dict[str, dict[str, IndexEntry]] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)       # file names new in the index
    kept: list[str] = field(default_factory=list)        # kept entries whose wheel is not in ROOT
    copied: list[str] = field(default_factory=list)      # wheels copied in from other directories

    @property
    def simple_dir(self) -> Path:
        return self.root / SIMPLE

    @property
    def file_count(self) -> int:
        return sum(len(v) for v in self.projects.values())


def requires_python(whl: Path) -> str | None:
    """``Requires-Python`` of a wheel's METADATA (None when absent or unreadable)."""
    try:
        with zipfile.ZipFile(whl) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if not names:
                return None
            text = zf.read(names[0]).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return None
    value = email.parser.Parser().parsestr(text, headersonly=True).get("Requires-Python")
    return value.strip() if value else None


# --- reading an existing index -----------------------------------------------------------------

_ANCHOR = re.compile(r"<a\s+([^>]*)>(.*?)</a>", re.I | re.S)
_ATTR = re.compile(r'([\w:-]+)\s*=\s*"([^"]*)"')


def read_index(root: str | os.PathLike) -> dict[str, dict[str, IndexEntry]]:
    """Entries of an existing index under ROOT/simple (JSON pages preferred, HTML otherwise)."""
    simple = Path(root) / SIMPLE
    projects: dict[str, dict[str, IndexEntry]] = {}
    if not simple.is_dir():
        return projects
    for page_dir in sorted(p for p in simple.iterdir() if p.is_dir()):
        entries: dict[str, IndexEntry] = {}
        json_page, html_page = page_dir / "index.json", page_dir / "index.html"
        if json_page.is_file():
            try:
                doc = json.loads(json_page.read_text(encoding="utf-8"))
                for f in doc.get("files", []):
                    sha = (f.get("hashes") or {}).get("sha256")
                    if not sha:
                        continue
                    entries[f["filename"]] = IndexEntry(f["filename"], f["url"], sha, f.get("size"),
                                                        f.get("requires-python"))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"cannot read the existing index page {json_page}: {exc}",
                                 "fix or delete that file; the index is rebuilt from the wheels present") from exc
        elif html_page.is_file():
            for attrs, text in _ANCHOR.findall(html_page.read_text(encoding="utf-8", errors="replace")):
                values = {k.lower(): html.unescape(v) for k, v in _ATTR.findall(attrs)}
                href = values.get("href", "")
                url, _, fragment = href.partition("#")
                if not fragment.startswith("sha256="):
                    continue
                filename = html.unescape(text).strip() or unquote(url.rsplit("/", 1)[-1])
                entries[filename] = IndexEntry(filename, url, fragment[len("sha256="):], None,
                                               values.get("data-requires-python"))
        if entries:
            projects.setdefault(normalize(page_dir.name), {}).update(entries)
    return projects


# --- merging wheel directories ----------------------------------------------------------------

def merge_into(root: Path, source: Path, manifest: Manifest) -> list[str]:
    """Copy the wheels of ``source`` into ``root`` and add their manifest records; returns names copied."""
    copied: list[str] = []
    src_manifest = Manifest.load(source)
    for whl in wheels_in(source):
        digest = sha256_file(whl)
        record = src_manifest.records.get(whl.name)
        if record is not None and record.sha256 != digest:
            raise UsageError(f"{whl} does not match its manifest entry in {source} (sha256 {digest[:16]}..., "
                             f"manifest {record.sha256[:16]}...)",
                             f"run `mamba-build verify {source}` and rebuild or re-download that wheel")
        dest = root / whl.name
        if dest.exists():
            if sha256_file(dest) != digest:
                raise UsageError(f"two different wheels are named {whl.name} ({source} and {root})",
                                 "rebuild one with a distinct version or local label (e.g. +cu128torch2.8), "
                                 "or delete the stale one")
        else:
            tmp = dest.with_name(f".{dest.name}.partial")
            shutil.copy2(whl, tmp)
            os.replace(tmp, dest)
            copied.append(whl.name)
        if record is not None:
            manifest.add(record)
        else:
            log.warning("index: %s has no manifest entry in %s; `mamba-build verify` will flag it", whl.name, source)
    return copied


# --- writing -----------------------------------------------------------------------------------

def _version_key(v: str):
    try:
        return (0, Version(v))
    except InvalidVersion:
        return (1, v)


def _project_html(name: str, entries: Sequence[IndexEntry]) -> str:
    lines = ["<!DOCTYPE html>", "<html>", "  <head>",
             f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
             f"    <title>Links for {html.escape(name)}</title>", "  </head>", "  <body>",
             f"    <h1>Links for {html.escape(name)}</h1>"]
    for e in entries:
        rp = f' data-requires-python="{html.escape(e.requires_python, quote=True)}"' if e.requires_python else ""
        href = html.escape(f"{e.url}#sha256={e.sha256}", quote=True)
        lines.append(f'    <a href="{href}"{rp}>{html.escape(e.filename)}</a><br/>')
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines)


def _root_html(names: Sequence[str]) -> str:
    lines = ["<!DOCTYPE html>", "<html>", "  <head>",
             f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
             "    <title>Simple index</title>", "  </head>", "  <body>"]
    lines += [f'    <a href="{html.escape(n)}/">{html.escape(n)}</a><br/>' for n in names]
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines)


def project_json(name: str, entries: Sequence[IndexEntry]) -> dict[str, Any]:
    versions = sorted({v for v in (e.version for e in entries) if v}, key=_version_key)
    return {"meta": {"api-version": API_VERSION}, "name": name, "versions": versions,
            "files": [e.to_json() for e in entries]}


def root_json(names: Sequence[str]) -> dict[str, Any]:
    return {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_index(root: Path, projects: dict[str, dict[str, IndexEntry]]) -> None:
    simple = root / SIMPLE
    names = sorted(projects)
    for name in names:
        entries = sorted(projects[name].values(), key=lambda e: (_version_key(e.version or ""), e.filename))
        _write(simple / name / "index.html", _project_html(name, entries))
        _write(simple / name / "index.json", json.dumps(project_json(name, entries), indent=2) + "\n")
    _write(simple / "index.html", _root_html(names))
    _write(simple / "index.json", json.dumps(root_json(names), indent=2) + "\n")


def build_index(dirs: Sequence[str | os.PathLike], out: str | os.PathLike | None = None) -> IndexResult:
    """Merge ``dirs`` into ROOT (``out``, default the first dir) and (re)write ROOT/simple."""
    if not dirs:
        raise UsageError("no wheel directory given", "pass the directory that `mamba-build wheels --out` wrote")
    sources = [Path(d) for d in dirs]
    for src in sources:
        if not src.is_dir():
            raise UsageError(f"{src} is not a directory", "pass a directory holding .whl files")
    root = Path(out) if out is not None else sources[0]
    root.mkdir(parents=True, exist_ok=True)
    result = IndexResult(root)
    manifest = Manifest.load(root)
    before = len(manifest)
    for src in sources:
        if src.resolve() != root.resolve():
            result.copied += merge_into(root, src, manifest)
    if result.copied or len(manifest) != before:
        manifest.save(root)
    projects = read_index(root)
    previous = {fn for entries in projects.values() for fn in entries}
    present: set[str] = set()
    for whl in wheels_in(root):
        name, _version, _tag = parse_wheel_name(whl.name)
        entry = IndexEntry(whl.name, f"../../{quote(whl.name)}", sha256_file(whl), whl.stat().st_size,
                           requires_python(whl))
        projects.setdefault(normalize(name), {})[whl.name] = entry
        present.add(whl.name)
        if whl.name not in previous:
            result.added.append(whl.name)
    result.kept = sorted(previous - present)
    if not projects:
        raise UsageError(f"no wheels in {root} and no existing index to keep",
                         "build wheels first: `mamba-build wheels --out DIR`")
    write_index(root, projects)
    result.projects = projects
    return result
