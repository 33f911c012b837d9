"""Toolkit assembly from a FAKE wheel set (same internal layout as NVIDIA's 13.x wheels)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from mamba_build import tables
from mamba_build.commands import toolchain as toolchain_cmd
from mamba_build.errors import ExitCode, NetworkError, SourceError, ToolkitError, UsageError
from mamba_build.toolchain import fetch as tc_fetch
from mamba_build.toolchain import pins as tc_pins
from mamba_build.toolchain import toolkits

FAKE_NVCC = """#!/bin/sh
case "$1" in
  --version) printf 'nvcc: NVIDIA (R) Cuda compiler driver\\nCuda compilation tools, release 13.0, V13.0.88\\nBuild cuda_13.0.r13.0/compiler.36424714_0\\n' ;;
  --list-gpu-arch) printf 'compute_75\\ncompute_80\\ncompute_90\\n' ;;
  *) exit 1 ;;
esac
"""

HOST_CONFIG = "#if __GNUC__ > 15\n#error -- unsupported GNU version!\n#endif\n"

# name -> {member path: (content, mode)}; mirrors nvidia/cu13/ of the real 13.0 wheels
FAKE_WHEELS = {
    "nvidia-cuda-nvcc": {
        "nvidia/__init__.py": ("", 0o644),
        "nvidia/cu13/bin/nvcc": (FAKE_NVCC, 0o755),
        "nvidia/cu13/bin/nvcc.profile": ("TOP = $(_HERE_)/..\nCICC_PATH = $(TOP)/nvvm/bin\n", 0o644),
        "nvidia/cu13/bin/ptxas": ("#!/bin/sh\n", 0o755),
        "nvidia/cu13/bin/crt/link.stub": ("stub", 0o644),
    },
    "nvidia-nvvm": {
        "nvidia/cu13/nvvm/bin/cicc": ("#!/bin/sh\n", 0o755),
        "nvidia/cu13/lib/libnvvm.so.4": ("ELF", 0o755),
    },
    "nvidia-cuda-crt": {"nvidia/cu13/include/crt/host_config.h": (HOST_CONFIG, 0o644)},
    "nvidia-cuda-runtime": {
        "nvidia/cu13/include/cuda_runtime.h": ("// rt", 0o644),
        "nvidia/cu13/include/__init__.py": ("", 0o644),
        "nvidia/cu13/lib/libcudart.so.13": ("ELF", 0o755),
    },
    "nvidia-cuda-cccl": {
        "nvidia/cu13/include/cccl/cub/cub.cuh": ("// cub", 0o644),
        "nvidia/cu13/.metadata/.sizes.txt": ("1", 0o644),
    },
}


def _write_wheel(path: Path, members: dict[str, tuple[str, int]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (content, mode) in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_set(tmp_path, monkeypatch, isolated_cache):
    """Fake wheels in tmp_path/wheels and a pin table for them (13.0 complete, 11.8 incomplete)."""
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    release = {"complete": True, "missing": [], "wheel": []}
    for name, members in FAKE_WHEELS.items():
        filename = f"{name.replace('-', '_')}-13.0.1-py3-none-manylinux2014_x86_64.whl"
        _write_wheel(wheel_dir / filename, members)
        release["wheel"].append({"name": name, "version": "13.0.1", "root": "nvidia/cu13", "files": [
            {"filename": filename, "sha256": _sha(wheel_dir / filename), "size": (wheel_dir / filename).stat().st_size}]})
    table = {
        "release": {
            "13.0": release,
            "11.8": {"complete": False, "missing": ["bin/nvcc", "nvvm/bin/cicc"], "wheel": [
                {"name": "nvidia-cuda-nvcc-cu11", "version": "11.8.89", "root": "nvidia/cuda_nvcc",
                 "files": [{"filename": "x.whl", "sha256": "0" * 64}]}]},
        },
        "math_headers": {"globs": ["cublas*.h", "cusparse*.h", "cusolver*.h"], "13": ["nvidia/cu13/include"]},
    }
    monkeypatch.setattr(tc_pins, "_load_table", lambda: table)
    # keep the real site-packages out of math header discovery unless a test asks for it
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site-packages" not in p])
    return wheel_dir, table


def test_real_pin_table_is_well_formed():
    releases = toolkits.pinned_releases()
    assert {"11.8", "12.4", "12.8", "13.0"} <= set(releases)
    for version, pins in releases.items():
        assert pins.wheels, version
        for w in pins.wheels:
            assert w.files and w.root.startswith("nvidia/")
            for f in w.files:
                assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
                assert f.filename.endswith(".whl") and "x86_64" in f.filename
                assert f.filename.lower().startswith(w.name.replace("-", "_") + "-" + w.version + "-")
    assert releases["13.0"].complete
    names = {w.name for w in releases["13.0"].wheels}
    assert names == {"nvidia-cuda-nvcc", "nvidia-nvvm", "nvidia-cuda-crt", "nvidia-cuda-runtime", "nvidia-cuda-cccl"}
    assert not releases["12.8"].complete and "bin/nvcc" in releases["12.8"].missing
    # 11.8 / 12.4: compiler from Debian 12 / 13 (tests/unit/test_toolchain_debian.py), headers/cudart from the
    # cu11 / cu12 wheels
    for v in ("11.8", "12.4"):
        assert releases[v].complete and releases[v].source == "debian" and not releases[v].missing
    assert releases["13.0"].source == "pypi" and not releases["13.0"].debs
    assert toolkits.installable_releases() == ["11.8", "12.4", "13.0"]
    # every pinned release is one the CUDA facts table knows
    assert set(releases) <= set(tables.cuda_releases())


def test_install_assembles_layout(fake_set, isolated_cache):
    wheel_dir, _ = fake_set
    info = toolkits.install("13.0", find_links=wheel_dir, wheels_dir=wheel_dir)
    home = isolated_cache / "toolchains" / "cuda-13.0"
    assert info.path == home and info.cuda == "13.0" and info.nvcc_version == "13.0.88"
    assert info.archs == [75, 80, 90]
    assert os.access(home / "bin" / "nvcc", os.X_OK)
    assert os.access(home / "nvvm" / "bin" / "cicc", os.X_OK)
    assert (home / "bin" / "nvcc.profile").is_file()
    assert (home / "include" / "crt" / "host_config.h").is_file()
    assert (home / "include" / "cccl" / "cub" / "cub.cuh").is_file()
    assert (home / "lib").is_symlink() and os.readlink(home / "lib") == "lib64"
    assert os.readlink(home / "lib64" / "libcudart.so") == "libcudart.so.13"
    assert (home / "lib64" / "libnvvm.so").is_symlink()
    assert not list(home.rglob("__init__.py")) and not (home / ".metadata").exists()
    meta = json.loads((home / toolkits.METADATA_NAME).read_text())
    assert meta["cuda"] == "13.0" and "release 13.0, V13.0.88" in meta["nvcc_version_text"]
    assert [w["name"] for w in meta["wheels"]][0] == "nvidia-cuda-nvcc"
    assert all(len(w["sha256"]) == 64 and w["version"] == "13.0.1" for w in meta["wheels"])
    assert meta["created"] and meta["layout"]["cicc"] == "nvvm/bin/cicc"
    assert meta["math_headers"] is None and not info.has_math_headers
    assert info.env()["CUDA_HOME"] == str(home)
    assert not [p for p in home.parent.iterdir() if p.name != "cuda-13.0"]  # no staging leftovers


def test_install_is_idempotent_and_force_replaces(fake_set, isolated_cache):
    wheel_dir, _ = fake_set
    first = toolkits.install("13.0", find_links=wheel_dir, wheels_dir=wheel_dir)
    marker = first.path / "marker"
    marker.write_text("x")
    assert toolkits.install("13.0.2", find_links=wheel_dir, wheels_dir=wheel_dir).path == first.path
    assert marker.exists()
    toolkits.install("13.0", find_links=wheel_dir, wheels_dir=wheel_dir, force=True)
    assert not marker.exists()
    assert sorted(p.name for p in first.path.parent.iterdir()) == ["cuda-13.0"]


def test_math_headers_copied(fake_set, isolated_cache, tmp_path):
    wheel_dir, _ = fake_set
    inc = tmp_path / "site" / "nvidia" / "cu13" / "include"
    inc.mkdir(parents=True)
    for name in ("cublas_v2.h", "cublasLt.h", "cusparse.h", "cusolverDn.h", "cufft.h", "cuda_runtime.h"):
        (inc / name).write_text(f"// {name} from torch env")
    info = toolkits.install("13.0", find_links=wheel_dir, wheels_dir=wheel_dir, math_headers_from=tmp_path / "site")
    include = info.path / "include"
    assert (include / "cublas_v2.h").is_file() and (include / "cusolverDn.h").is_file()
    assert not (include / "cufft.h").exists()  # only what torch's headers need
    assert (include / "cuda_runtime.h").read_text() == "// rt"  # the toolkit's own header wins
    assert info.has_math_headers and sorted(info.math_headers["files"]) == ["cublasLt.h", "cublas_v2.h",
                                                                              "cusolverDn.h", "cusparse.h"]


def test_math_headers_from_empty_dir_is_an_error(fake_set, isolated_cache, tmp_path):
    wheel_dir, _ = fake_set
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolkitError):
        toolkits.install("13.0", find_links=wheel_dir, wheels_dir=wheel_dir, math_headers_from=tmp_path / "empty")
    assert not (isolated_cache / "toolchains" / "cuda-13.0").exists()


def test_hash_mismatch_is_an_error_with_fix(fake_set, isolated_cache, tmp_path, monkeypatch):
    wheel_dir, table = fake_set
    store = tmp_path / "store"
    store.mkdir()
    bad_name = table["release"]["13.0"]["wheel"][1]["files"][0]["filename"]
    table["release"]["13.0"]["wheel"][1]["files"][0]["sha256"] = "1" * 64

    def fake_pip(pins, dest, **kw):  # "downloads" every requested wheel from the fake set
        for pin in pins:
            for f in pin.files:
                (dest / f.filename).write_bytes((wheel_dir / f.filename).read_bytes())

    monkeypatch.setattr(tc_fetch, "_pip_download", fake_pip)
    with pytest.raises(SourceError) as exc:
        toolkits.install("13.0", wheels_dir=store)
    assert "sha256" in exc.value.message and bad_name in exc.value.message
    assert exc.value.fix and "--index-url" in exc.value.fix
    assert exc.value.exit_code == ExitCode.SOURCE
    assert (store / (bad_name + ".bad-sha256")).exists() and not (store / bad_name).exists()
    assert not (isolated_cache / "toolchains").exists() or not list((isolated_cache / "toolchains").iterdir())


def test_cached_wheels_are_not_downloaded_again(fake_set, isolated_cache, monkeypatch):
    wheel_dir, _ = fake_set
    monkeypatch.setattr(tc_fetch, "_pip_download", lambda *a, **k: pytest.fail("pip should not run"))
    toolkits.install("13.0", wheels_dir=wheel_dir)


def test_corrupt_wheel_leaves_nothing_behind(fake_set, isolated_cache):
    wheel_dir, table = fake_set
    victim = wheel_dir / table["release"]["13.0"]["wheel"][3]["files"][0]["filename"]  # runtime, after nvcc
    data = bytearray(victim.read_bytes())
    data[40:200] = b"\x00" * 160  # break the first member's compressed data; keep the directory
    victim.write_bytes(bytes(data))
    table["release"]["13.0"]["wheel"][3]["files"][0]["sha256"] = _sha(victim)
    with pytest.raises(SourceError) as exc:
        toolkits.install("13.0", wheels_dir=wheel_dir)
    assert victim.name in exc.value.message
    root = isolated_cache / "toolchains"
    assert list(root.iterdir()) == []  # staging removed, nothing half-made
    assert toolkits.list_installed() == [] and toolkits.find("13.0") is None


def test_truncated_wheel_is_a_source_error(fake_set, isolated_cache):
    wheel_dir, table = fake_set
    victim = wheel_dir / table["release"]["13.0"]["wheel"][0]["files"][0]["filename"]
    victim.write_bytes(victim.read_bytes()[:50])
    table["release"]["13.0"]["wheel"][0]["files"][0]["sha256"] = _sha(victim)
    with pytest.raises(SourceError):
        toolkits.install("13.0", wheels_dir=wheel_dir)
    assert list((isolated_cache / "toolchains").iterdir()) == []


def test_interrupt_during_validation_rolls_back(fake_set, isolated_cache, monkeypatch):
    wheel_dir, _ = fake_set

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(toolkits, "_validate", boom)
    with pytest.raises(KeyboardInterrupt):
        toolkits.install("13.0", wheels_dir=wheel_dir)
    assert list((isolated_cache / "toolchains").iterdir()) == []


def test_nvcc_that_does_not_run_is_rejected(fake_set, isolated_cache, tmp_path):
    wheel_dir, table = fake_set
    members = dict(FAKE_WHEELS["nvidia-cuda-nvcc"])
    members["nvidia/cu13/bin/nvcc"] = ("#!/bin/sh\nexit 1\n", 0o755)
    entry = table["release"]["13.0"]["wheel"][0]["files"][0]
    _write_wheel(wheel_dir / entry["filename"], members)
    entry["sha256"] = _sha(wheel_dir / entry["filename"])
    with pytest.raises(ToolkitError):
        toolkits.install("13.0", wheels_dir=wheel_dir)
    assert list((isolated_cache / "toolchains").iterdir()) == []


def test_list_find_remove(fake_set, isolated_cache):
    wheel_dir, _ = fake_set
    assert toolkits.list_installed() == []
    toolkits.install("13.0", wheels_dir=wheel_dir)
    root = isolated_cache / "toolchains"
    (root / "cuda-12.1.tmp-999").mkdir()  # a stale staging dir is not a toolkit
    (root / "cuda-9.9").mkdir()  # nor is a folder without metadata
    installed = toolkits.list_installed()
    assert [i.cuda for i in installed] == ["13.0"] and installed[0].archs == [75, 80, 90]
    assert toolkits.find("13.0").path == root / "cuda-13.0"
    assert toolkits.find("13.0.1").path == root / "cuda-13.0"
    assert toolkits.find("12.4") is None and toolkits.find("abc") is None
    toolkits.remove("13.0")
    assert toolkits.find("13.0") is None and not (root / "cuda-13.0").exists()
    with pytest.raises(UsageError):
        toolkits.remove("13.0")


@pytest.mark.parametrize("bad", ["10.2", "12.99", "abc", "", "13"])
def test_unknown_version_is_usage_error(fake_set, bad):
    with pytest.raises(UsageError) as exc:
        toolkits.install(bad)
    assert exc.value.exit_code == ExitCode.USAGE
    assert "13.0" in exc.value.message + (exc.value.fix or "")


def test_incomplete_release_explains_missing_compiler(fake_set, isolated_cache, monkeypatch):
    monkeypatch.setattr(tc_fetch, "_pip_download", lambda *a, **k: pytest.fail("nothing to download"))
    with pytest.raises(ToolkitError) as exc:
        toolkits.install("11.8")
    assert "bin/nvcc" in exc.value.message and "nvvm/bin/cicc" in exc.value.message
    assert "--toolkitpath" in exc.value.fix and "13.0" in exc.value.fix
    assert exc.value.exit_code == ExitCode.ENVIRONMENT


def test_offline_is_network_error(fake_set, isolated_cache, tmp_path, monkeypatch):
    from mamba_build import runner

    def offline(argv, **kw):
        assert "download" in argv and "nvidia-cuda-nvcc==13.0.1" in argv
        return runner.CommandResult(tuple(argv), 1, "", "WARNING: Retrying ... NewConnectionError('Failed to "
                                    "establish a new connection: [Errno -3] Temporary failure in name resolution')\n"
                                    "ERROR: No matching distribution found for nvidia-cuda-nvcc==13.0.1", 1.0)

    monkeypatch.setattr(runner, "run", offline)
    with pytest.raises(NetworkError) as exc:
        toolkits.install("13.0", wheels_dir=tmp_path / "empty-store")
    assert "--find-links" in exc.value.fix and exc.value.exit_code == ExitCode.NETWORK


def test_pip_argv_find_links_means_no_index(monkeypatch, tmp_path):
    from mamba_build import runner
    seen = {}

    def fake_run(argv, **kw):
        seen["argv"] = list(argv)
        return runner.CommandResult(tuple(argv), 0, "", "", 0.1)

    monkeypatch.setattr(runner, "run", fake_run)
    pin = toolkits.WheelPin("nvidia-nvvm", "13.0.88", "nvidia/cu13", (toolkits.WheelFile("f.whl", "0" * 64),))
    tc_fetch._pip_download([pin], tmp_path, index_url=None, find_links=tmp_path, timeout=5)
    argv = seen["argv"]
    assert argv[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in argv and "--no-index" in argv and "nvidia-nvvm==13.0.88" in argv
    tc_fetch._pip_download([pin], tmp_path, index_url="https://example.invalid/simple", find_links=tmp_path, timeout=5)
    assert "--no-index" not in seen["argv"] and "--index-url" in seen["argv"]


def test_parsers():
    text = "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 11.8, V11.8.89\n"
    assert toolkits.parse_nvcc_version(text) == ("11.8", "11.8.89")
    assert toolkits.parse_nvcc_version("garbage") is None
    assert toolkits.parse_gpu_archs("compute_90\ncompute_80\ncompute_100\n") == [80, 90, 100]


def test_cli_list_install_remove(fake_set, isolated_cache, capsys):
    from mamba_build import cli
    wheel_dir, _ = fake_set
    assert cli.main(["toolchain", "list"]) == 0
    assert "no toolkits installed" in capsys.readouterr().out
    assert cli.main(["toolchain", "install", "--cuda", "13.0", "--find-links", str(wheel_dir)]) == 0
    assert "nvcc 13.0.88" in capsys.readouterr().out
    assert cli.main(["toolchain", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["cuda"] == "13.0" and data[0]["archs"] == [75, 80, 90] and data[0]["nvcc"].endswith("bin/nvcc")
    assert cli.main(["toolchain", "install", "--cuda", "10.2"]) == ExitCode.USAGE
    assert cli.main(["toolchain", "remove", "--cuda", "13.0"]) == 0
    assert cli.main(["toolchain", "remove", "--cuda", "13.0"]) == ExitCode.USAGE
    assert toolchain_cmd.NAME == "toolchain"
