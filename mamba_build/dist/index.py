"""A static package index of extension wheels: one PEP 503 + PEP 691 channel per build line.

Wheels that differ only in what they were built against (torch X.Y, CUDA major, C++ ABI) never share a
project page: each such line is a channel of its own (:mod:`mamba_build.dist.channels`), so a resolver that
reads one channel cannot pick a wheel built for another torch, whatever the version labels say.

Layout (ROOT is the index root; serve it with any static web server or object store)::

    ROOT/<wheel files>, ROOT/manifest.json
    ROOT/<wheel>.metadata                                   PEP 658/714 core metadata (the wheel's METADATA)
    ROOT/simple/index.html, ROOT/simple/index.json          the channels (lists no projects itself)
    ROOT/simple/<channel>/index.html, .../index.json        the channel's projects (a PEP 503 root)
    ROOT/simple/<channel>/<project>/index.html, index.json  links ../../../<wheel>#sha256=<hex>

``pip install --extra-index-url <ROOT URL>/simple/<channel>/ ...`` (the lines :func:`install_lines` prints)
reads one channel; ``mamba-build install --index-url <ROOT URL>`` picks the channel itself.

A wheel's channel comes from the provenance the build stamped into it (dist-info/mamba_build.json), else
from its manifest record; both present and disagreeing is an error. A wheel with neither is not indexed
(reported as ``unplaced``).

Merging: an existing index under ROOT/simple is read first (our index.json files, else the HTML anchors).
Entries are keyed by file name and never dropped: a wheel that is no longer in ROOT keeps its entry (and
its old URL) until someone deletes it from the project's index files by hand. Pages of the old flat layout
(``simple/<project>/``, one page for every torch) are removed, their entries moved into their channels
where the manifest says which (``migrated``); an entry whose build is unknown is dropped with the old page
(``dropped``), because serving it is what caused wrong-torch installs. Wheels present in ROOT always win
(their hash is recomputed). Other source directories given to :func:`build_index` are merged into ROOT
first: their wheels are copied in and their manifest records added to ROOT/manifest.json; a different
wheel under an existing file name is an error.
"""

from __future__ import annotations

import email.parser
import hashlib
import html
import json
import logging
import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from mamba_build.dist import provenance
from mamba_build.dist.channels import Channel
from mamba_build.errors import UsageError
from mamba_build.hashing import sha256_file
from mamba_build.dist.manifest import Manifest, WheelRecord, parse_wheel_name, wheels_in

log = logging.getLogger(__name__)

API_VERSION = "1.1"  # PEP 691 + PEP 700 (versions, size); PEP 658/714 core-metadata
JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
SIMPLE = "simple"
METADATA_SUFFIX = ".metadata"  # PEP 658: the core metadata file sits at the wheel's URL + ".metadata"


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
    core_metadata_sha256: str | None = None  # PEP 658/714: sha256 of the file at url + ".metadata"

    @property
    def project(self) -> str:
        return (
            normalize(parse_wheel_filename(self.filename)[0])
            if self.filename.endswith(".whl")
            else normalize(re.split(r"-\d", self.filename, maxsplit=1)[0])
        )

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
        if self.core_metadata_sha256:  # PEP 714's key, and PEP 658's older one for older clients
            out["core-metadata"] = {"sha256": self.core_metadata_sha256}
            out["dist-info-metadata"] = {"sha256": self.core_metadata_sha256}
        return out


Projects = dict[str, dict[str, IndexEntry]]  # project -> file name -> entry


@dataclass
class IndexResult:
    root: Path
    channels: dict[str, Projects] = field(default_factory=dict)  # channel name -> its projects
    added: list[str] = field(default_factory=list)  # file names new in the index
    kept: list[str] = field(default_factory=list)  # kept entries whose wheel is not in ROOT
    copied: list[str] = field(default_factory=list)  # wheels copied in from other directories
    migrated: list[str] = field(default_factory=list)  # entries moved from the old flat layout into channels
    dropped: list[str] = field(default_factory=list)  # old flat-layout entries of unknown build (not served)
    unplaced: list[str] = field(default_factory=list)  # wheels in ROOT with no known build: not indexed
    lines: dict[str, InstallLines] = field(default_factory=dict)  # channel -> its pip / uv install lines

    @property
    def simple_dir(self) -> Path:
        return self.root / SIMPLE

    @property
    def projects(self) -> Projects:
        """Every channel's projects together (file names are unique across channels)."""
        out: Projects = {}
        for projects in self.channels.values():
            for name, entries in projects.items():
                out.setdefault(name, {}).update(entries)
        return out

    @property
    def file_count(self) -> int:
        return sum(len(v) for p in self.channels.values() for v in p.values())


def requires_python(whl: Path) -> str | None:
    """``Requires-Python`` of a wheel's METADATA (None when absent or unreadable)."""
    data = provenance.wheel_metadata(whl)
    if data is None:
        return None
    value = email.parser.Parser().parsestr(data.decode("utf-8", "replace"), headersonly=True).get("Requires-Python")
    return value.strip() if value else None


# --- which channel ---------------------------------------------------------------------------


def channel_of_wheel(whl: Path, record: WheelRecord | None) -> Channel | None:
    """The wheel's channel: its stamped provenance, else its manifest record (UsageError if they disagree)."""
    from_wheel = provenance.channel_of(provenance.read_wheel(whl))
    from_record = Channel.of(record.torch_version, record.torch_cuda, record.cxx11_abi) if record else None
    if from_wheel and from_record and from_wheel != from_record:
        raise UsageError(
            f"{whl.name}: its dist-info/mamba_build.json says it was built for {from_wheel.describe()}, "
            f"manifest.json says {from_record.describe()}",
            f"run `mamba-build verify {whl.parent}`; rebuild the wheel or restore its manifest record",
        )
    return from_wheel or from_record


# --- reading an existing index -----------------------------------------------------------------

_ANCHOR = re.compile(r"<a\s+([^>]*)>(.*?)</a>", re.I | re.S)
_ATTR = re.compile(r'([\w:-]+)\s*=\s*"([^"]*)"')


def _metadata_hash(value: Any) -> str | None:
    """PEP 658/714 value: ``{"sha256": hex}`` (JSON) or ``sha256=hex`` (HTML); True/"true" carry no hash."""
    if isinstance(value, dict):
        return value.get("sha256")
    if isinstance(value, str) and value.startswith("sha256="):
        return value[len("sha256=") :]
    return None


def read_page(page_dir: Path) -> dict[str, IndexEntry]:
    """Entries of one project page (index.json preferred, else the HTML anchors)."""
    entries: dict[str, IndexEntry] = {}
    json_page, html_page = page_dir / "index.json", page_dir / "index.html"
    if json_page.is_file():
        try:
            doc = json.loads(json_page.read_text(encoding="utf-8"))
            for f in doc.get("files", []):
                sha = (f.get("hashes") or {}).get("sha256")
                if not sha:
                    continue
                meta = _metadata_hash(f.get("core-metadata")) or _metadata_hash(f.get("dist-info-metadata"))
                entries[f["filename"]] = IndexEntry(
                    f["filename"], f["url"], sha, f.get("size"), f.get("requires-python"), meta
                )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"cannot read the existing index page {json_page}: {exc}",
                "fix or delete that file; the index is rebuilt from the wheels present",
            ) from exc
    elif html_page.is_file():
        for attrs, text in _ANCHOR.findall(html_page.read_text(encoding="utf-8", errors="replace")):
            values = {k.lower(): html.unescape(v) for k, v in _ATTR.findall(attrs)}
            href = values.get("href", "")
            url, _, fragment = href.partition("#")
            if not fragment.startswith("sha256="):
                continue
            filename = html.unescape(text).strip() or unquote(url.rsplit("/", 1)[-1])
            meta = _metadata_hash(values.get("data-core-metadata")) or _metadata_hash(
                values.get("data-dist-info-metadata")
            )
            entries[filename] = IndexEntry(
                filename, url, fragment[len("sha256=") :], None, values.get("data-requires-python"), meta
            )
    return entries


def read_index(root: str | os.PathLike) -> tuple[dict[str, Projects], Projects]:
    """(channel name -> projects, old flat-layout projects) of an existing index under ROOT/simple."""
    simple = Path(root) / SIMPLE
    channels: dict[str, Projects] = {}
    legacy: Projects = {}
    if not simple.is_dir():
        return channels, legacy
    for sub in sorted(p for p in simple.iterdir() if p.is_dir()):
        if Channel.parse(sub.name) is None:
            entries = read_page(sub)
            if entries:
                legacy.setdefault(normalize(sub.name), {}).update(entries)
            continue
        for page_dir in sorted(p for p in sub.iterdir() if p.is_dir()):
            entries = read_page(page_dir)
            if entries:
                channels.setdefault(sub.name, {}).setdefault(normalize(page_dir.name), {}).update(entries)
    return channels, legacy


# --- merging wheel directories ----------------------------------------------------------------


def merge_into(root: Path, source: Path, manifest: Manifest) -> list[str]:
    """Copy the wheels of ``source`` into ``root`` and add their manifest records; returns names copied."""
    copied: list[str] = []
    src_manifest = Manifest.load(source)
    for whl in wheels_in(source):
        digest = sha256_file(whl)
        record = src_manifest.records.get(whl.name)
        if record is not None and record.sha256 != digest:
            raise UsageError(
                f"{whl} does not match its manifest entry in {source} (sha256 {digest[:16]}..., "
                f"manifest {record.sha256[:16]}...)",
                f"run `mamba-build verify {source}` and rebuild or re-download that wheel",
            )
        dest = root / whl.name
        if dest.exists():
            if sha256_file(dest) != digest:
                raise UsageError(
                    f"two different wheels are named {whl.name} ({source} and {root})",
                    "rebuild one with a distinct version or local label (e.g. +cu128torch2.8), or delete the stale one",
                )
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


def _head(title: str) -> list[str]:
    return [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        f"    <title>{html.escape(title)}</title>",
        "  </head>",
        "  <body>",
    ]


def _project_html(name: str, entries: Sequence[IndexEntry]) -> str:
    lines = _head(f"Links for {name}") + [f"    <h1>Links for {html.escape(name)}</h1>"]
    for e in entries:
        attrs = f' data-requires-python="{html.escape(e.requires_python, quote=True)}"' if e.requires_python else ""
        if e.core_metadata_sha256:
            attrs += (
                f' data-dist-info-metadata="sha256={e.core_metadata_sha256}"'
                f' data-core-metadata="sha256={e.core_metadata_sha256}"'
            )
        href = html.escape(f"{e.url}#sha256={e.sha256}", quote=True)
        lines.append(f'    <a href="{href}"{attrs}>{html.escape(e.filename)}</a><br/>')
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines)


def _root_html(names: Sequence[str], title: str = "Simple index") -> str:
    lines = _head(title)
    lines += [f'    <a href="{html.escape(n)}/">{html.escape(n)}</a><br/>' for n in names]
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines)


def _channels_html(channels: Mapping[str, Projects], lines_of: Mapping[str, InstallLines]) -> str:
    lines = _head("mamba-build index: channels") + [
        "    <h1>Channels</h1>",
        "    <p>One channel per (CUDA major, torch X.Y, C++ ABI): use the one of the torch you have, or let "
        "<code>mamba-build install --index-url ROOT</code> pick it. This page lists no projects: "
        "<code>--index-url .../simple</code> finds nothing on purpose.</p>",
        "    <ul>",
    ]
    for name in sorted(channels):
        ch = Channel.parse(name)
        il = lines_of[name]
        lines.append(
            f'      <li><a href="{html.escape(name)}/">{html.escape(name)}</a> '
            f"({html.escape(ch.describe() if ch else name)}): {html.escape(', '.join(sorted(channels[name])))}"
            f"<br/><code>{html.escape(il.pip)}</code><br/><code>{html.escape(il.uv)}</code></li>"
        )
    lines += ["    </ul>", "  </body>", "</html>", ""]
    return "\n".join(lines)


def project_json(name: str, entries: Sequence[IndexEntry]) -> dict[str, Any]:
    versions = sorted({v for v in (e.version for e in entries) if v}, key=_version_key)
    return {
        "meta": {"api-version": API_VERSION},
        "name": name,
        "versions": versions,
        "files": [e.to_json() for e in entries],
    }


def root_json(names: Sequence[str]) -> dict[str, Any]:
    return {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class InstallLines:
    channel: str
    url: str  # the channel's index URL (ends with /)
    requirements: tuple[str, ...]  # "causal-conv1d==1.5.2+cu12torch2.5cxx11abiFALSE": the newest of each project
    pip: str
    uv: str


def base_url_of(root: Path, base_url: str | None) -> str:
    return (base_url or root.resolve().as_uri()).rstrip("/")


def install_lines(base_url: str, channel: str, projects: Projects) -> InstallLines:
    """The pip and uv lines that install the newest wheel of every project of one channel.

    The channel is an extra index (``--extra-index-url``: the user's own index stays for torch and the other
    dependencies); each requirement pins the exact version with its local label, which only this channel
    has (PyPI refuses local versions), so neither tool can take the name from another index."""
    url = f"{base_url}/{SIMPLE}/{channel}/"
    reqs = []
    for name in sorted(projects):
        versions = [v for v in (e.version for e in projects[name].values()) if v]
        if versions:
            reqs.append(f"{name}=={max(versions, key=_version_key)}")
    quoted = " ".join(shlex.quote(r) for r in reqs)
    return InstallLines(
        channel,
        url,
        tuple(reqs),
        pip=f"python -m pip install --extra-index-url {url} {quoted}",
        uv=f"uv pip install --extra-index-url {url} {quoted}",
    )


def write_index(root: Path, channels: dict[str, Projects], base_url: str | None = None) -> dict[str, InstallLines]:
    """Write every channel's pages and the channel list; returns the install lines of each channel."""
    simple = root / SIMPLE
    base = base_url_of(root, base_url)
    lines_of = {}
    for channel in sorted(channels):
        projects = channels[channel]
        names = sorted(projects)
        for name in names:
            entries = sorted(projects[name].values(), key=lambda e: (_version_key(e.version or ""), e.filename))
            _write(simple / channel / name / "index.html", _project_html(name, entries))
            _write(simple / channel / name / "index.json", json.dumps(project_json(name, entries), indent=2) + "\n")
        _write(simple / channel / "index.html", _root_html(names, f"Simple index: {channel}"))
        _write(simple / channel / "index.json", json.dumps(root_json(names), indent=2) + "\n")
        lines_of[channel] = install_lines(base, channel, projects)
    _write(simple / "index.html", _channels_html(channels, lines_of))
    doc = root_json([])
    doc["_channels"] = [
        {"name": c, "url": f"{c}/", "projects": sorted(channels[c]), "pip": lines_of[c].pip, "uv": lines_of[c].uv}
        for c in sorted(channels)
    ]
    _write(simple / "index.json", json.dumps(doc, indent=2) + "\n")
    return lines_of


def write_core_metadata(whl: Path) -> str | None:
    """ROOT/<wheel>.metadata (PEP 658): the wheel's METADATA, byte for byte; returns its sha256."""
    data = provenance.wheel_metadata(whl)
    if data is None:
        return None
    target = whl.with_name(whl.name + METADATA_SUFFIX)
    if not target.is_file() or target.read_bytes() != data:
        _write(target, data)
    return hashlib.sha256(data).hexdigest()


def build_index(
    dirs: Sequence[str | os.PathLike], out: str | os.PathLike | None = None, base_url: str | None = None
) -> IndexResult:
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
    channels, legacy = read_index(root)
    previous = {fn for projects in channels.values() for entries in projects.values() for fn in entries}
    where = {fn: c for c, projects in channels.items() for entries in projects.values() for fn in entries}
    present: set[str] = set()
    for whl in wheels_in(root):
        name, _version, _tag = parse_wheel_name(whl.name)
        channel = channel_of_wheel(whl, manifest.records.get(whl.name))
        if channel is None:
            result.unplaced.append(whl.name)
            continue
        old = where.get(whl.name)
        if old is not None and old != channel.name:  # its build facts changed: it moves
            for entries in channels[old].values():
                entries.pop(whl.name, None)
        entry = IndexEntry(
            whl.name,
            f"../../../{quote(whl.name)}",
            sha256_file(whl),
            whl.stat().st_size,
            requires_python(whl),
            write_core_metadata(whl),
        )
        channels.setdefault(channel.name, {}).setdefault(normalize(name), {})[whl.name] = entry
        present.add(whl.name)
        if whl.name not in previous:
            result.added.append(whl.name)
    for project, entries in legacy.items():  # the old flat layout: into channels where the build is known
        for fn, e in entries.items():
            if fn in present:
                result.migrated.append(fn)
                continue
            record = manifest.records.get(fn)
            channel = Channel.of(record.torch_version, record.torch_cuda, record.cxx11_abi) if record else None
            if channel is None:
                result.dropped.append(fn)
                continue
            moved = IndexEntry(
                fn,
                f"../{e.url}" if not re.match(r"^[a-z]+:", e.url) and not e.url.startswith("/") else e.url,
                e.sha256,
                e.size,
                e.requires_python,
                e.core_metadata_sha256,
            )
            channels.setdefault(channel.name, {}).setdefault(project, {}).setdefault(fn, moved)
            result.migrated.append(fn)
    for projects in channels.values():
        for project in [p for p, entries in projects.items() if not entries]:
            del projects[project]
    channels = {c: p for c, p in channels.items() if p}
    result.kept = sorted(previous - present)
    if not channels:
        raise UsageError(
            f"no indexable wheels in {root} and no existing index to keep"
            + (
                f" ({len(result.unplaced)} wheel(s) of unknown build: {', '.join(result.unplaced)})"
                if result.unplaced
                else ""
            ),
            "build wheels with `mamba-build wheels --out DIR` (they carry what they were built "
            "against in dist-info/mamba_build.json and manifest.json)",
        )
    for name in legacy:  # served the wrong torch: gone once its entries have channels
        shutil.rmtree(root / SIMPLE / name, ignore_errors=True)
    for stale in (
        [d for d in (root / SIMPLE).iterdir() if d.is_dir() and Channel.parse(d.name) and d.name not in channels]
        if (root / SIMPLE).is_dir()
        else []
    ):
        shutil.rmtree(stale, ignore_errors=True)
    result.channels = channels
    result.lines = write_index(root, channels, base_url)
    return result
