"""Content-addressed cache of verified wheels: a rebuild of the same thing is a copy.

Key: sha256 over everything that decides the binary: package, version, source sha256, the patch
recipes, toolkit (full nvcc version), host compiler, torch version + CUDA + C++11 ABI, Python tag,
archs and nvcc flags, mamba-build's version. Entries hold the wheel and ``entry.json`` with the
wheel's sha256; a wheel whose hash no longer matches is deleted and rebuilt. The cache has a size
limit (``MAMBA_BUILD_CACHE_MAX_GB``, default 20); the least recently used entries go first.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mamba_build import __version__, paths
from mamba_build.hashing import sha256_file

DEFAULT_MAX_GB = 20.0


@dataclass(frozen=True)
class CacheEntry:
    key: str
    wheel: Path
    sha256: str
    size: int
    created: float
    last_used: float
    components: dict[str, Any]
    smoke: dict[str, Any] | None = None  # the smoke-test verdict these exact wheels got (see pipeline)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["wheel"] = str(self.wheel)
        return d


def root() -> Path:
    return paths.cache_home() / "wheel-cache"


def max_bytes() -> int:
    try:
        gb = float(os.environ.get("MAMBA_BUILD_CACHE_MAX_GB", DEFAULT_MAX_GB))
    except ValueError:
        gb = DEFAULT_MAX_GB
    return int(gb * 1024**3)


def make_key(components: Mapping[str, Any]) -> str:
    doc = {
        **components,
        "mamba_build": __version__,
        "python_tag": components.get("python_tag") or f"cp{sys.version_info.major}{sys.version_info.minor}",
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def tree_digest(tree: Path, skip: tuple[str, ...] = ("build", ".git", "__pycache__", "dist")) -> str:
    """sha256 over the files of a source tree (for local/git sources without an archive hash)."""
    h = hashlib.sha256()
    tree = Path(tree)
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        rel = path.relative_to(tree)
        if (
            rel.parts[0] in skip
            or ".egg-info" in rel.parts[0]
            or path.name.endswith(".mamba-build-orig")
            or path.name.startswith(".mamba-build")
        ):  # our own markers (fetch origin, dest paths)
            continue
        h.update(str(rel).encode() + b"\0")
        h.update(sha256_file(path).encode())
    return h.hexdigest()


def _entry_dir(key: str) -> Path:
    return root() / key[:2] / key


def _read(entry_dir: Path) -> CacheEntry | None:
    try:
        meta = json.loads((entry_dir / "entry.json").read_text())
        return CacheEntry(
            meta["key"],
            entry_dir / meta["wheel"],
            meta["sha256"],
            meta["size"],
            meta["created"],
            meta.get("last_used", meta["created"]),
            meta.get("components", {}),
            meta.get("smoke"),
        )
    except (OSError, ValueError, KeyError):
        return None


def lookup(key: str) -> CacheEntry | None:
    """The verified cached wheel for ``key``, or None. A corrupt entry is removed (a miss)."""
    d = _entry_dir(key)
    entry = _read(d)
    if entry is None:
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)
        return None
    if not entry.wheel.is_file() or sha256_file(entry.wheel) != entry.sha256:
        shutil.rmtree(d, ignore_errors=True)
        return None
    meta = json.loads((d / "entry.json").read_text())
    meta["last_used"] = time.time()
    _write_json(d / "entry.json", meta)
    return entry


def store(key: str, wheel: Path, components: Mapping[str, Any], smoke: Mapping[str, Any] | None = None) -> CacheEntry:
    d = _entry_dir(key)
    tmp = d.with_name(d.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy2(wheel, tmp / wheel.name)
    now = time.time()
    meta = {
        "key": key,
        "wheel": wheel.name,
        "sha256": sha256_file(tmp / wheel.name),
        "size": wheel.stat().st_size,
        "created": now,
        "last_used": now,
        "components": dict(components),
        "smoke": dict(smoke) if smoke else None,
    }
    _write_json(tmp / "entry.json", meta)
    shutil.rmtree(d, ignore_errors=True)
    tmp.replace(d)
    enforce_limit()
    return _read(d)  # type: ignore[return-value]


def record_smoke(key: str, smoke: Mapping[str, Any]) -> None:
    """Attach a (new) smoke-test verdict to an existing entry."""
    path = _entry_dir(key) / "entry.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    meta["smoke"] = dict(smoke)
    _write_json(path, meta)


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    tmp.replace(path)


def entries() -> list[CacheEntry]:
    if not root().is_dir():
        return []
    found = []
    for shard in root().iterdir():
        if shard.is_dir():
            for d in shard.iterdir():
                e = _read(d) if d.is_dir() and ".tmp-" not in d.name else None
                if e:
                    found.append(e)
    return sorted(found, key=lambda e: e.last_used, reverse=True)


def enforce_limit(limit: int | None = None) -> list[CacheEntry]:
    """Evict least recently used entries until the cache fits; returns what was evicted."""
    limit = max_bytes() if limit is None else limit
    current = entries()
    total = sum(e.size for e in current)
    evicted = []
    for e in sorted(current, key=lambda e: e.last_used):
        if total <= limit:
            break
        shutil.rmtree(e.wheel.parent, ignore_errors=True)
        total -= e.size
        evicted.append(e)
    return evicted


def clear() -> int:
    n = len(entries())
    shutil.rmtree(root(), ignore_errors=True)
    return n
