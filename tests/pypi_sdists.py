"""Real sdists of mamba-ssm and causal-conv1d from PyPI, for tests (nothing of upstream is committed).

Downloaded at run time through PyPI's JSON API, sha256-checked, cached in the test cache
(``$MAMBA_BUILD_TEST_CACHE/pypi-sdists``), extracted into the caller's temporary folders.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from pathlib import Path

PACKAGES = ("mamba-ssm", "causal-conv1d")


def sdists(package: str) -> list[dict]:
    """Every sdist of ``package`` on PyPI: {package, version, filename, url, sha256}."""
    import requests
    resp = requests.get(f"https://pypi.org/pypi/{package}/json", timeout=30)
    resp.raise_for_status()
    out = []
    for version, files in resp.json()["releases"].items():
        for f in files:
            if f["packagetype"] == "sdist" and not f.get("yanked"):
                out.append({"package": package, "version": version, "filename": f["filename"], "url": f["url"],
                            "sha256": f["digests"]["sha256"]})
    return out


def download(item: dict, cache: Path) -> Path:
    import requests
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / item["filename"]
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == item["sha256"]:
        return path
    resp = requests.get(item["url"], timeout=60)
    resp.raise_for_status()
    assert hashlib.sha256(resp.content).hexdigest() == item["sha256"], item["filename"]
    tmp = path.with_suffix(".part")
    tmp.write_bytes(resp.content)
    tmp.replace(path)
    return path


def extract(archive: Path, into: Path) -> Path:
    """Trusted PyPI file; returns the tree (top-level directory)."""
    into.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(into, filter="data")
    (top,) = [p for p in into.iterdir() if p.is_dir()]
    return top


def sdist_tree(package: str, version: str, cache: Path, into: Path) -> Path:
    """The extracted sdist of ``package==version`` (a fresh copy under ``into``)."""
    (item,) = [i for i in sdists(package) if i["version"] == version]
    return extract(download(item, cache), into / f"{package}-{version}")
