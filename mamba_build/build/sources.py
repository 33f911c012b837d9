"""Getting the source tree of a package: PyPI sdist, git URL@ref, local tree, or .tar.gz/.zip.

PyPI downloads do NOT go through ``pip download``: for an sdist pip prepares metadata by running
setup.py in an isolated build environment, and these setup.py files ``import torch`` at the top,
so that fails (or installs torch into the isolated env). Instead the file is fetched straight from
the package index's Simple API (PEP 691 JSON, or PEP 503 HTML from mirrors that only speak that),
honouring pip's own settings: ``--index-url``, else ``$PIP_INDEX_URL``, else pip's configured
``global.index-url``, else https://pypi.org/simple; ``--find-links`` / ``$PIP_FIND_LINKS`` (a local
directory or an HTML page); ``$PIP_CERT`` / ``$REQUESTS_CA_BUNDLE`` and the usual proxy variables.
The index's sha256 is checked; the file is cached as ``<cache>/sdists/<sha256>/<filename>``.
"""

from __future__ import annotations

import ast
import hashlib
import html.parser
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mamba_build import paths, runner
from mamba_build.errors import NetworkError, SourceError, UsageError
from mamba_build.hashing import sha256_file
from mamba_build.plan.packages import PackageInfo, package_info

DEFAULT_INDEX = "https://pypi.org/simple"
SOURCE_MARKER = ".mamba-build-source.json"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
_TIMEOUT = 30.0


# --------------------------------------------------------------------------------------------
# Source specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "pypi" | "git" | "local" | "archive"
    location: str = ""  # git URL, directory, archive path or URL
    ref: str | None = None  # git ref

    def __str__(self) -> str:
        if self.kind == "pypi":
            return "pypi"
        return f"{self.location}@{self.ref}" if self.ref else self.location


def _split_ref(text: str) -> tuple[str, str | None]:
    """'git+https://h/r.git@v1' -> (url, 'v1'); ignores user@host in the URL."""
    if "@" not in text:
        return text, None
    head, ref = text.rsplit("@", 1)
    if "://" in head:
        after = head.split("://", 1)[1]
        if "/" not in after:  # the @ belonged to user@host
            return text, None
    elif "/" not in head and ":" not in head:  # "git@host:org/repo" without a ref
        return text, None
    if not ref or ":" in ref:
        return text, None
    return head, ref


def parse_source_spec(text: str | None) -> SourceSpec:
    """``pypi`` (default), ``git+URL[@ref]`` / ``URL.git[@ref]`` / ``DIR@ref`` (git), a local
    directory, or a ``.tar.gz``/``.tgz``/``.zip`` path or URL."""
    text = (text or "pypi").strip()
    if text.lower() == "pypi":
        return SourceSpec("pypi")
    lower = text.lower()
    if lower.endswith(ARCHIVE_SUFFIXES):
        return SourceSpec(
            "archive", text[5:] if lower.startswith("file:") and not lower.startswith("file://") else text
        )
    if lower.startswith("git+"):
        url, ref = _split_ref(text[4:])
        return SourceSpec("git", url, ref)
    url, ref = _split_ref(text)
    if url.endswith(".git") or url.startswith("git@") or lower.startswith(("ssh://", "git://")):
        return SourceSpec("git", url, ref)
    if url.startswith("file://"):
        local = unquote(urlparse(url).path)
        if ref or (Path(local) / ".git").exists():
            return SourceSpec("git", url, ref)
        return SourceSpec("local", local)
    if ref is not None and Path(url).expanduser().is_dir():
        return SourceSpec("git", str(Path(url).expanduser().resolve()), ref)
    if Path(text).expanduser().is_dir():
        return SourceSpec("local", str(Path(text).expanduser().resolve()))
    if lower.startswith(("http://", "https://")):
        raise UsageError(
            f"--source {text}: an URL must end in .tar.gz, .tgz or .zip, or be a git URL (git+https://...@ref)",
            "e.g. --source git+https://github.com/state-spaces/mamba@v2.2.4",
        )
    raise UsageError(
        f"--source {text!r} is neither 'pypi', a git URL, an existing directory nor an archive",
        "use --source pypi, git+URL@REF, a directory, or a .tar.gz/.zip file",
    )


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedSource:
    tree: Path
    package: str
    version: str
    origin: str  # where it came from (URL, path, git URL@ref (commit))
    sha256: str | None  # of the downloaded / read archive; None for a local tree
    archive: Path | None  # cached archive, if there was one
    from_cache: bool = False

    def as_dict(self) -> dict:
        return {
            "tree": str(self.tree),
            "package": self.package,
            "version": self.version,
            "origin": self.origin,
            "sha256": self.sha256,
            "archive": str(self.archive) if self.archive else None,
            "from_cache": self.from_cache,
        }


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    version: Version
    sha256: str | None
    yanked: bool = False


# --------------------------------------------------------------------------------------------
# Index access
# --------------------------------------------------------------------------------------------


def _pip_config(key: str) -> str | None:
    import sys

    res = runner.run([sys.executable, "-m", "pip", "config", "get", key], timeout=30)
    value = res.stdout.strip() if res.ok else ""
    return value or None


def resolve_index(
    index_url: str | None = None, find_links: Iterable[str] | str | None = None, *, consult_pip_config: bool = True
) -> tuple[str, list[str]]:
    """(index URL, find-links list) as pip would pick them."""
    idx = (
        index_url
        or os.environ.get("PIP_INDEX_URL")
        or (_pip_config("global.index-url") if consult_pip_config else None)
        or DEFAULT_INDEX
    )
    if find_links is None:
        env = os.environ.get("PIP_FIND_LINKS", "")
        links = [x for x in re.split(r"\s+", env) if x]
    elif isinstance(find_links, str):
        links = [find_links]
    else:
        links = [str(x) for x in find_links]
    return idx.rstrip("/") + "/", links


def _session():
    import requests

    s = requests.Session()
    cert = os.environ.get("PIP_CERT")
    if cert:
        s.verify = cert
    s.headers["User-Agent"] = "mamba-build (+https://pypi.org/project/mamba-build)"
    return s


def _network_error(what: str, url: str, exc: Exception) -> NetworkError:
    return NetworkError(
        f"could not reach {url} while {what}: {exc.__class__.__name__}: {str(exc)[:200]}",
        "check your network, proxy (HTTPS_PROXY) and PIP_INDEX_URL/--index-url; offline, use "
        "--find-links DIR with the sdist in it, or --source path/to/sdist.tar.gz",
    )


def _get(url: str, what: str, *, accept: str | None = None, stream: bool = False):
    import requests

    headers = {"Accept": accept} if accept else {}
    try:
        resp = _session().get(url, headers=headers, timeout=_TIMEOUT, stream=stream)
    except requests.exceptions.RequestException as exc:
        raise _network_error(what, url, exc) from None
    return resp


class _LinkParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            d = dict(attrs)
            if d.get("href"):
                self.links.append((d["href"], d))


def _sdist_version(filename: str, info: PackageInfo) -> Version | None:
    name = filename
    for suf in (".tar.gz", ".zip"):
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
            break
    else:
        return None
    if "-" not in name:
        return None
    proj, ver = name.rsplit("-", 1)
    if canonicalize_name(proj) != canonicalize_name(info.pypi_name):
        return None
    try:
        return Version(ver)
    except InvalidVersion:
        return None


def _file_from(filename: str, url: str, sha: str | None, yanked: bool, info: PackageInfo) -> IndexFile | None:
    v = _sdist_version(filename, info)
    if v is None:
        return None
    if sha is None and "#sha256=" in url:
        sha = url.split("#sha256=", 1)[1]
    return IndexFile(filename, url.split("#", 1)[0], v, sha, yanked)


def _parse_html(text: str, base: str, info: PackageInfo) -> list[IndexFile]:
    p = _LinkParser()
    p.feed(text)
    out = []
    for href, attrs in p.links:
        full = urljoin(base, href)
        fname = unquote(urlparse(full).path.rsplit("/", 1)[-1])
        f = _file_from(fname, full, None, "data-yanked" in attrs, info)
        if f:
            out.append(f)
    return out


def _list_index(index: str, info: PackageInfo) -> list[IndexFile]:
    url = urljoin(index, canonicalize_name(info.pypi_name) + "/")
    resp = _get(url, f"listing {info.pypi_name}", accept="application/vnd.pypi.simple.v1+json, text/html;q=0.1")
    if resp.status_code == 404:
        raise SourceError(
            f"{info.pypi_name} is not on the package index {index}",
            f"check --index-url / PIP_INDEX_URL, or build from git: --source {info.git_source_hint()}",
        )
    if resp.status_code >= 400:
        raise NetworkError(
            f"the package index answered HTTP {resp.status_code} for {url}",
            "check --index-url / PIP_INDEX_URL and your credentials for the mirror",
        )
    ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype:
        data = resp.json()
        out = []
        for f in data.get("files", []):
            item = _file_from(
                f.get("filename", ""),
                urljoin(url, f.get("url", "")),
                (f.get("hashes") or {}).get("sha256"),
                bool(f.get("yanked")),
                info,
            )
            if item:
                out.append(item)
        return out
    return _parse_html(resp.text, url, info)


@dataclass(frozen=True)
class ProjectFile:
    """One file of a project on the index, as the Simple API lists it (any kind: wheel or sdist)."""

    filename: str
    url: str
    sha256: str | None
    size: int | None = None
    yanked: bool = False


def list_project_files(project: str, index_url: str | None = None) -> list[ProjectFile]:
    """Every file of ``project`` on the package index (PEP 691 JSON, else PEP 503 HTML), with the
    index's sha256 (and size where the index gives it). The index is pip's (see :func:`resolve_index`)."""
    index, _ = resolve_index(index_url, ())
    url = urljoin(index, canonicalize_name(project) + "/")
    resp = _get(url, f"listing {project}", accept="application/vnd.pypi.simple.v1+json, text/html;q=0.1")
    if resp.status_code == 404:
        raise SourceError(
            f"{project} is not on the package index {index}",
            "check --index-url / PIP_INDEX_URL (it must mirror https://pypi.org/simple)",
        )
    if resp.status_code >= 400:
        raise NetworkError(
            f"the package index answered HTTP {resp.status_code} for {url}",
            "check --index-url / PIP_INDEX_URL and your credentials for the mirror",
        )
    out: list[ProjectFile] = []
    if "json" in resp.headers.get("Content-Type", ""):
        for f in resp.json().get("files", []):
            out.append(
                ProjectFile(
                    f.get("filename", ""),
                    urljoin(url, f.get("url", "")),
                    (f.get("hashes") or {}).get("sha256"),
                    f.get("size"),
                    bool(f.get("yanked")),
                )
            )
        return out
    p = _LinkParser()
    p.feed(resp.text)
    for href, attrs in p.links:
        full = urljoin(url, href)
        sha = full.split("#sha256=", 1)[1] if "#sha256=" in full else None
        out.append(
            ProjectFile(
                unquote(urlparse(full).path.rsplit("/", 1)[-1]),
                full.split("#", 1)[0],
                sha,
                None,
                "data-yanked" in attrs,
            )
        )
    return out


def download_bytes(url: str, what: str, expected_sha: str | None) -> bytes:
    """A small file (metadata, a metapackage wheel) read into memory, its sha256 checked when known."""
    resp = _get(url, what)
    if resp.status_code >= 400:
        raise NetworkError(f"HTTP {resp.status_code} while {what} ({url})", "rerun; check the index or proxy")
    data = resp.content
    if expected_sha and hashlib.sha256(data).hexdigest() != expected_sha.lower():
        raise SourceError(
            f"sha256 of {url.rsplit('/', 1)[-1]} does not match the index while {what}",
            "rerun; if it persists, the index or a proxy serves a different file",
        )
    return data


def _list_find_links(link: str, info: PackageInfo) -> list[IndexFile]:
    if link.startswith(("http://", "https://")):
        resp = _get(link, f"reading find-links page for {info.pypi_name}")
        if resp.status_code >= 400:
            raise NetworkError(f"--find-links {link} answered HTTP {resp.status_code}", "check the URL")
        return _parse_html(resp.text, link, info)
    path = Path(unquote(urlparse(link).path) if link.startswith("file:") else link).expanduser()
    if path.is_file():
        f = _file_from(path.name, path.resolve().as_uri(), None, False, info)
        return [f] if f else []
    if not path.is_dir():
        raise UsageError(f"--find-links {link}: no such directory", "give a directory holding sdists, or an URL")
    out = []
    for child in sorted(path.iterdir()):
        f = _file_from(child.name, child.resolve().as_uri(), None, False, info)
        if f:
            out.append(f)
    return out


def list_sdists(
    package: str, index_url: str | None = None, find_links: Iterable[str] | str | None = None, *, use_index: bool = True
) -> list[IndexFile]:
    """Every sdist of ``package`` on the find-links and the index (find-links first)."""
    info = package_info(package)
    idx, links = resolve_index(index_url, find_links)
    files: list[IndexFile] = []
    for link in links:
        files += _list_find_links(link, info)
    if use_index:
        try:
            files += _list_index(idx, info)
        except NetworkError:
            if not files:
                raise
    return files


def available_versions(
    package: str, index_url: str | None = None, find_links: Iterable[str] | str | None = None
) -> list[str]:
    """Versions with an sdist on the index / find-links, not yanked, oldest first."""
    vs = {f.version for f in list_sdists(package, index_url, find_links) if not f.yanked}
    return [str(v) for v in sorted(vs)]


# --------------------------------------------------------------------------------------------
# Download + cache
# --------------------------------------------------------------------------------------------


def _cached(filename: str, sha: str | None) -> Path | None:
    root = paths.sdists_dir()
    if sha:
        p = root / sha / filename
        return p if p.is_file() and sha256_file(p) == sha else None
    for p in root.glob(f"*/{filename}"):
        if p.parent.name == sha256_file(p):
            return p
    return None


def _store(src: Path, filename: str) -> tuple[Path, str]:
    sha = sha256_file(src)
    dest_dir = paths.sdists_dir() / sha
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / filename
    if not dest.exists():
        tmp = dest_dir / f".{filename}.{os.getpid()}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    return dest, sha


def _download(url: str, filename: str, expected_sha: str | None, what: str) -> Path:
    """Download into the cache (or hand back the cached copy); verifies the expected sha256."""
    hit = _cached(filename, expected_sha)
    if hit is not None:
        return hit
    if url.startswith("file:"):
        src = Path(unquote(urlparse(url).path))
        if not src.is_file():
            raise SourceError(f"{src} does not exist", "check --find-links / --source")
        dest, sha = _store(src, filename)
    else:
        import requests

        resp = _get(url, what, stream=True)
        if resp.status_code >= 400:
            raise NetworkError(
                f"downloading {url} failed: HTTP {resp.status_code}",
                "check the URL / index, or use --source with a local archive",
            )
        tmpdir = Path(tempfile.mkdtemp(prefix="mb-dl-", dir=paths.sdists_dir()))
        try:
            part = tmpdir / filename
            try:
                with open(part, "wb") as fh:
                    for chunk in resp.iter_content(1 << 16):
                        fh.write(chunk)
            except requests.exceptions.RequestException as exc:
                raise _network_error(what, url, exc) from None
            dest, sha = _store(part, filename)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    if expected_sha and sha != expected_sha:
        shutil.rmtree(dest.parent, ignore_errors=True)
        raise SourceError(
            f"{filename} from {url} has sha256 {sha}, the index says {expected_sha}",
            "the download is corrupt or the mirror is wrong; run again, or check the mirror",
        )
    return dest


def _find_cached_offline(info: PackageInfo, version: str) -> Path | None:
    want = Version(version)
    for p in sorted(paths.sdists_dir().glob("*/*")):
        if p.is_file() and _sdist_version(p.name, info) == want and p.parent.name == sha256_file(p):
            return p
    return None


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


def _check_member_name(name: str, archive: Path) -> None:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in norm.split("/"):
        raise SourceError(
            f"{archive.name} contains an unsafe path {name!r}",
            "refusing to unpack it; get the archive from a trusted place",
        )


def _safe_extract_tar(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                _check_member_name(m.name, archive)
                if m.issym() or m.islnk():
                    base = Path(m.name).parent if m.issym() else Path()
                    target = os.path.normpath(str(base / m.linkname))
                    if m.linkname.startswith("/") or target.startswith(".."):
                        raise SourceError(
                            f"{archive.name}: link {m.name!r} -> {m.linkname!r} points outside the tree",
                            "refusing to unpack it; get the archive from a trusted place",
                        )
                elif not (m.isfile() or m.isdir()):
                    raise SourceError(
                        f"{archive.name}: {m.name!r} is a device/fifo entry",
                        "refusing to unpack it; get the archive from a trusted place",
                    )
            tf.extractall(into, members=members, filter="data")
    except SourceError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno == 28:
            raise
        raise SourceError(
            f"{archive} is not a readable .tar.gz ({exc.__class__.__name__}: {exc})",
            "the file is corrupt or incomplete; delete it and download again",
        ) from None


def _safe_extract_zip(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member_name(info.filename, archive)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise SourceError(
                        f"{archive.name}: {info.filename!r} is a symlink",
                        "refusing to unpack links from a zip; use the .tar.gz",
                    )
            bad = zf.testzip()
            if bad is not None:
                raise SourceError(f"{archive.name}: {bad} fails its CRC check", "the file is corrupt; get it again")
            zf.extractall(into)
    except SourceError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise SourceError(
            f"{archive} is not a readable .zip ({exc.__class__.__name__}: {exc})",
            "the file is corrupt or incomplete; delete it and download again",
        ) from None


def _claim_dest(final: Path) -> None:
    """Remove an earlier tree of ours at ``final``; refuse to touch anything else."""
    if final.exists() or final.is_symlink():
        if not (final / SOURCE_MARKER).is_file():
            raise SourceError(
                f"{final} already exists and was not unpacked by mamba-build",
                "choose another --dest, or remove it yourself",
            )
        shutil.rmtree(final)


def extract_archive(archive: Path, dest: Path) -> Path:
    """Safely unpack ``archive`` under ``dest``; returns the top-level directory of the tree."""
    archive = Path(archive)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".mb-extract-", dir=dest))
    moved = False
    try:
        if archive.name.lower().endswith(".zip"):
            _safe_extract_zip(archive, stage)
        else:
            _safe_extract_tar(archive, stage)
        entries = [p for p in stage.iterdir() if p.name not in ("pax_global_header",)]
        if len(entries) == 1 and entries[0].is_dir():
            top = entries[0]
            name = top.name
        else:
            top = stage
            name = archive.name
            for suf in ARCHIVE_SUFFIXES:
                if name.lower().endswith(suf):
                    name = name[: -len(suf)]
        if not entries:
            raise SourceError(f"{archive} is empty", "the file is corrupt or incomplete; get it again")
        final = dest / name
        _claim_dest(final)
        if top is stage:
            os.replace(stage, final)
            moved = True
        else:
            os.replace(top, final)
        return final
    finally:
        if not moved:
            shutil.rmtree(stage, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Tree checks
# --------------------------------------------------------------------------------------------


def extension_sources(setup_py: Path) -> list[str]:
    """String literals under every ``sources=[...]`` keyword in setup.py (the extension's files)."""
    try:
        tree = ast.parse(setup_py.read_text(encoding="utf-8"), str(setup_py))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{setup_py} is not valid Python ({exc})", "the source tree is damaged; fetch it again"
        ) from exc
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "sources" and isinstance(node.value, (ast.List, ast.Tuple)):
            out += [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return out


def tree_version(tree: Path, package: str) -> str | None:
    info = package_info(package)
    init = Path(tree) / info.import_name / "__init__.py"
    try:
        m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", init.read_text(encoding="utf-8"), re.M)
    except OSError:
        return None
    return m.group(1) if m else None


def verify_tree(tree: Path, package: str, version: str | None = None) -> list[str]:
    """Check setup.py and every extension source it lists; returns that list. Raises SourceError."""
    info = package_info(package)
    tree = Path(tree)
    version = version or tree_version(tree, package)
    label = f"{info.name} {version}" if version else info.name
    setup_py = tree / "setup.py"
    alt = f"--source {info.git_source_hint(version)} (git) or --source {info.tarball_hint(version)} (GitHub tarball)"
    if not setup_py.is_file():
        raise SourceError(
            f"{tree} has no setup.py, so it is not a {info.name} source tree",
            f"point at the directory holding setup.py, or use {alt}",
        )
    sources = extension_sources(setup_py)
    if not sources:
        raise SourceError(
            f"{setup_py} lists no extension sources (sources=[...]) for {info.extension_module}",
            f"upstream changed its setup.py; report it to mamba-build, or use {alt}",
        )
    missing = [s for s in sources if not (tree / s).is_file()]
    if missing:
        pypi_hint = f"--version {info.name}>={info.first_complete_sdist}"
        raise SourceError(
            f"the source of {label} is incomplete: {len(missing)} of the {len(sources)} files setup.py compiles "
            f"into {info.extension_module} are missing (first: {missing[0]}); PyPI sdists of {info.name} carry "
            f"the CUDA sources only from {info.first_complete_sdist} on",
            f"use a release from {info.first_complete_sdist} on (e.g. {pypi_hint.replace('>=', '==')}), or build "
            f"this version from {alt}",
        )
    return sources


# --------------------------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------------------------


def _write_marker(tree: Path, fetched: dict) -> None:
    (tree / SOURCE_MARKER).write_text(json.dumps(fetched, indent=2) + "\n", encoding="utf-8")


def _finish(
    tree: Path,
    info: PackageInfo,
    version: str | None,
    origin: str,
    sha: str | None,
    archive: Path | None,
    from_cache: bool,
    verify: bool,
) -> FetchedSource:
    found = tree_version(tree, info.name)
    if version and found and Version(found) != Version(version) and not origin.startswith("git"):
        raise SourceError(
            f"{origin} holds {info.name} {found}, not the requested {version}",
            "drop --version or point --source at the wanted release",
        )
    final_version = found or version or "unknown"
    result = FetchedSource(tree, info.name, final_version, origin, sha, archive, from_cache)
    _write_marker(tree, result.as_dict())
    if verify:
        verify_tree(tree, info.name, final_version)
    return result


def _fetch_pypi(
    info: PackageInfo, version: str | None, dest: Path, index_url, find_links, verify: bool
) -> FetchedSource:
    chosen, archive, from_cache = _pypi_sdist(info, version, index_url, find_links)
    tree = extract_archive(archive, dest)
    if chosen is None:
        return _finish(
            tree, info, version, f"cache {archive} (index unreachable)", archive.parent.name, archive, True, verify
        )
    return _finish(tree, info, str(chosen.version), chosen.url, archive.parent.name, archive, from_cache, verify)


def download_sdist(
    package: str, version: str | None, index_url: str | None = None, find_links: Iterable[str] | str | None = None
) -> Path:
    """The sdist ``fetch`` would unpack, downloaded into (or found in) the cache, not unpacked."""
    return _pypi_sdist(package_info(package), version, index_url, find_links)[1]


def _pypi_sdist(info: PackageInfo, version: str | None, index_url, find_links) -> tuple[IndexFile | None, Path, bool]:
    """(the index's file, the cached archive, whether it was cached before); the file is None when the
    index was unreachable and a cached copy of the pinned version stood in."""
    idx, links = resolve_index(index_url, find_links)
    try:
        files = [f for f in list_sdists(info.name, index_url=idx, find_links=links) if f.filename]
    except NetworkError:
        cached = _find_cached_offline(info, version) if version else None
        if cached is None:
            raise
        return None, cached, True
    if version:
        want = Version(version)
        matches = [f for f in files if f.version == want]
        if not matches:
            near = sorted({str(f.version) for f in files if not f.yanked}, key=Version)[-5:]
            raise SourceError(
                f"{info.name} {version} has no sdist on {idx}" + (f" or {', '.join(links)}" if links else ""),
                f"pick one that exists (newest: {', '.join(near) or 'none'}), or build from git: "
                f"--source {info.git_source_hint(version)}",
            )
        chosen = next((f for f in matches if f.filename.endswith(".tar.gz")), matches[0])
    else:
        good = [f for f in files if not f.yanked and not f.version.is_prerelease]
        if not good:
            raise SourceError(
                f"no sdist of {info.name} on {idx}",
                f"check --index-url, or build from git: --source {info.git_source_hint()}",
            )
        chosen = max(good, key=lambda f: (f.version, f.filename.endswith(".tar.gz")))
    before = _cached(chosen.filename, chosen.sha256)
    archive = _download(chosen.url, chosen.filename, chosen.sha256, f"downloading {chosen.filename}")
    return chosen, archive, before is not None


def _fetch_archive(info: PackageInfo, version: str | None, spec: SourceSpec, dest: Path, verify: bool) -> FetchedSource:
    loc = spec.location
    if loc.lower().startswith(("http://", "https://")):
        fname = unquote(urlparse(loc).path.rsplit("/", 1)[-1])
        if not _sdist_version(fname, info):  # GitHub tarballs are named v2.2.4.tar.gz: keep them apart
            fname = f"{info.dist_name}-{fname}"
        archive = _download(loc, fname, None, f"downloading {loc}")
        from_cache = False
    else:
        path = Path(unquote(urlparse(loc).path) if loc.startswith("file:") else loc).expanduser()
        if not path.is_file():
            raise SourceError(f"archive {path} does not exist", "check the --source path")
        archive, _sha = _store(path, path.name)
        from_cache = False
    tree = extract_archive(archive, dest)
    return _finish(tree, info, version, loc, archive.parent.name, archive, from_cache, verify)


def _fetch_local(info: PackageInfo, version: str | None, spec: SourceSpec, dest: Path, verify: bool) -> FetchedSource:
    src = Path(spec.location)
    if not (src / "setup.py").is_file():
        raise SourceError(f"{src} has no setup.py", f"point --source at the top of a {info.name} checkout")
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / src.name
    if final.resolve() == src.resolve():
        raise UsageError(f"--dest {dest} would copy {src} onto itself", "choose another --dest")
    _claim_dest(final)
    shutil.copytree(
        src,
        final,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.so"),
    )
    return _finish(final, info, version, str(src), None, None, False, verify)


def _git(args: list[str], what: str, cwd: Path | None = None, timeout: float = 600):
    res = runner.run(["git", *args], cwd=cwd, timeout=timeout)
    if res.missing:
        raise SourceError("git is not installed", "install git, or use --source with a .tar.gz of the release")
    if not res.ok:
        text = (res.stderr or res.stdout).strip()
        net = re.search(
            r"Could not resolve host|unable to access|Connection (refused|timed out)|"
            r"Failed to connect|Network is unreachable",
            text,
        )
        err = NetworkError if net else SourceError
        raise err(
            f"git {what} failed: {text[-400:]}",
            "check the URL and ref (branch, tag or commit); behind a proxy set https_proxy, or "
            "download a .tar.gz of the release and use --source FILE",
        )
    return res


def _fetch_git(info: PackageInfo, version: str | None, spec: SourceSpec, dest: Path, verify: bool) -> FetchedSource:
    url = spec.location
    ref = spec.ref or (info.tag(version) if version else "HEAD")
    work = Path(tempfile.mkdtemp(prefix="mb-git-", dir=paths.subdir("git")))
    try:
        _git(["clone", "--quiet", "--no-checkout", url, str(work / "repo")], f"clone {url}")
        repo = work / "repo"
        commit = _git(
            ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], f"find ref {ref!r} in {url}", cwd=repo
        ).stdout.strip()
        name = f"{info.dist_name}-{re.sub(r'[^A-Za-z0-9._-]+', '_', ref)}"
        tar = work / f"{name}.tar.gz"
        _git(["archive", "--format=tar.gz", f"--prefix={name}/", "-o", str(tar), commit], f"archive {commit}", cwd=repo)
        archive, sha = _store(tar, f"{name}-{commit[:12]}.tar.gz")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tree = extract_archive(archive, dest)
    return _finish(tree, info, version, f"git {url}@{ref} ({commit})", sha, archive, False, verify)


def fetch(
    package: str,
    version: str | None,
    spec: SourceSpec | str | None,
    dest: Path,
    index_url: str | None = None,
    find_links: Iterable[str] | str | None = None,
    *,
    verify: bool = True,
) -> FetchedSource:
    """Get the source tree of ``package`` into ``dest`` (``dest/<name>-<version>/``).

    ``spec``: a :class:`SourceSpec` or its text (``None``/``"pypi"``: the package index).
    With ``verify`` (default) the tree is checked with :func:`verify_tree` before returning.
    """
    info = package_info(package)
    if not isinstance(spec, SourceSpec):
        spec = parse_source_spec(spec)
    dest = Path(dest).expanduser().resolve()
    if spec.kind == "pypi":
        return _fetch_pypi(info, version, dest, index_url, find_links, verify)
    if spec.kind == "archive":
        return _fetch_archive(info, version, spec, dest, verify)
    if spec.kind == "local":
        return _fetch_local(info, version, spec, dest, verify)
    return _fetch_git(info, version, spec, dest, verify)
