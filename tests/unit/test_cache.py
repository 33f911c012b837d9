"""The wheel cache: keys, integrity, size limit."""

from __future__ import annotations

import os
import time

import pytest

from mamba_build.build import cache

BASE = {"package": "causal-conv1d", "version": "1.7.0", "source_sha256": "ab" * 32, "recipes": "cd" * 32,
        "python": "/v/bin/python", "torch": "2.14.1+cu130", "torch_cuda": "13.0", "cxx11_abi": True,
        "toolkit": "/usr/local/cuda-13.0", "cuda": "13.0", "compiler": "/usr/bin/g++-12 12.2.0",
        "unsupported_compiler": False, "archs": ["9.0"], "nvcc_threads": 1, "split_compile": None,
        "include_dirs": [], "local_version": "cu13torch2.14cxx11abiTRUE", "split_units": False}


@pytest.mark.parametrize("field,value", [
    ("package", "mamba-ssm"), ("version", "1.6.2"), ("source_sha256", "00" * 32), ("recipes", "ee" * 32),
    ("python", "/w/bin/python"), ("torch", "2.14.0+cu130"), ("torch_cuda", "12.8"), ("cxx11_abi", False),
    ("toolkit", "/opt/cuda"), ("cuda", "12.9"), ("compiler", "/usr/bin/g++-11 11.3.0"),
    ("unsupported_compiler", True), ("archs", ["9.0+PTX"]), ("nvcc_threads", 4), ("split_compile", 0),
    ("include_dirs", ["/x"]), ("local_version", "cu13torch2.14cxx11abiFALSE"), ("split_units", True),
])
def test_any_component_change_misses(field, value):
    assert cache.make_key({**BASE, field: value}) != cache.make_key(BASE)


def test_same_components_same_key():
    assert cache.make_key(dict(BASE)) == cache.make_key(dict(reversed(list(BASE.items()))))


def _wheel(tmp_path, name="causal_conv1d-1.7.0-cp311-cp311-linux_x86_64.whl", size=1000):
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


def test_store_lookup_roundtrip(isolated_cache, tmp_path):
    key = cache.make_key(BASE)
    assert cache.lookup(key) is None
    entry = cache.store(key, _wheel(tmp_path), BASE)
    hit = cache.lookup(key)
    assert hit is not None and hit.sha256 == entry.sha256 and hit.wheel.read_bytes() == (tmp_path / hit.wheel.name).read_bytes()


def test_corrupt_cached_wheel_is_detected_and_dropped(isolated_cache, tmp_path):
    key = cache.make_key(BASE)
    entry = cache.store(key, _wheel(tmp_path), BASE)
    data = bytearray(entry.wheel.read_bytes())
    data[10] ^= 0xFF
    entry.wheel.write_bytes(bytes(data))
    assert cache.lookup(key) is None  # a miss: the pipeline rebuilds
    assert not entry.wheel.parent.exists()


def test_size_limit_evicts_least_recently_used(isolated_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA_BUILD_CACHE_MAX_GB", str(2500 / 1024**3))  # room for two 1000-byte wheels
    keys = []
    for i in range(3):
        key = cache.make_key({**BASE, "version": f"1.{i}"})
        cache.store(key, _wheel(tmp_path, f"w{i}-1.0-py3-none-any.whl"), BASE)
        keys.append(key)
        time.sleep(0.01)
        if i == 1:
            assert cache.lookup(keys[0]) is not None  # touch the oldest: now it is recently used
            time.sleep(0.01)
    remaining = {e.key for e in cache.entries()}
    assert remaining == {keys[0], keys[2]}
    assert sum(e.size for e in cache.entries()) <= 2500


def test_clear(isolated_cache, tmp_path):
    cache.store(cache.make_key(BASE), _wheel(tmp_path), BASE)
    assert cache.clear() == 1 and cache.entries() == []


def test_tree_digest_ignores_build_outputs_and_patch_backups(tmp_path):
    (tmp_path / "csrc").mkdir()
    (tmp_path / "csrc" / "a.cu").write_text("x")
    (tmp_path / "setup.py").write_text("y")
    d1 = cache.tree_digest(tmp_path)
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "obj.o").write_text("z")
    (tmp_path / "setup.py.mamba-build-orig").write_text("y0")
    (tmp_path / ".mamba-build-source.json").write_text('{"tree": "/somewhere/else"}')
    assert cache.tree_digest(tmp_path) == d1
    (tmp_path / "csrc" / "a.cu").write_text("changed")
    assert cache.tree_digest(tmp_path) != d1
