"""CUDA 11.8 / 12.4 assembly from Debian packages (source = "debian") with FAKE .deb files.

The fake ``nvidia-cuda-toolkit`` .deb is built with ``dpkg-deb --build`` and has the same internal
layout as the real package in Debian 12 (11.8) and Debian 13 (12.4) (usr/lib/nvidia-cuda-toolkit/bin/
{nvcc,cicc,crt,gcc,g++}, nvcc.profile -> /etc/nvcc.profile, usr/bin/{ptxas,...}, usr/bin/nvcc shell
wrapper); the pin table's real shared ``[debian]`` section (archive, ``map``, ``nvcc_profile``) and each
release's real ``[apt]`` / ``[[deb]]`` entries are used, so a map entry the fake lacks fails here too.
apt-get is replaced by a fake at ``runner.run`` (the real one is exercised by tests/integration).
Most tests use 11.8; those marked with ``DEBIAN_RELEASES`` run for every source = "debian" release.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from mamba_build import runner, tables
from mamba_build.errors import ExitCode, NetworkError, SourceError, ToolkitError
from mamba_build.toolchain import assemble as tc_assemble
from mamba_build.toolchain import fetch as tc_fetch
from mamba_build.toolchain import pins as tc_pins
from mamba_build.toolchain import toolkits

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is needed to build fake .debs")

# what each source = "debian" release of the real pin table must say: .deb version, Debian suite,
# nvcc's full version, newest gcc of its host_config.h, the CUDA major of its PyPI wheels
EXPECTED = {
    "11.8": ("11.8.89~11.8.0-5~deb12u1", "bookworm", "11.8.89", 11, "cu11"),
    "12.4": ("12.4.131~12.4.1-2", "trixie", "12.4.131", 13, "cu12"),
}
DEBIAN_RELEASES = sorted(EXPECTED)
VERSION = EXPECTED["11.8"][0]
DEB_NAME = f"nvidia-cuda-toolkit_{VERSION}_amd64.deb"


def fake_nvcc(full: str) -> str:
    """A stand-in nvcc that answers --version / --list-gpu-arch like NVIDIA's for release ``full``."""
    short = ".".join(full.split(".")[:2])
    return f"""#!/bin/sh
case "$1" in
  --version) printf 'nvcc: NVIDIA (R) Cuda compiler driver\\nCuda compilation tools, release {short}, V{full}\\nBuild cuda_{short}.r{short}/compiler.31833905_0\\n' ;;
  --list-gpu-arch) printf 'compute_35\\ncompute_80\\ncompute_90\\n' ;;
  *) exit 1 ;;
esac
"""


FAKE_NVCC = fake_nvcc("11.8.89")

DEBIAN_PROFILE = """NVVMIR_LIBRARY_DIR = /usr/lib/nvidia-cuda-toolkit/libdevice

PATH\t\t+= /usr/lib/nvidia-cuda-toolkit/bin:

LIBRARIES\t=+ $(_SPACE_) -L/usr/lib/x86_64-linux-gnu/stubs -L/usr/lib/x86_64-linux-gnu
"""

def host_config(gcc_max: int) -> str:
    return (f"#if __GNUC__ > {gcc_max}\n#error -- unsupported GNU version! gcc versions later than {gcc_max} are "
            "not supported!\n#endif\n")


HOST_CONFIG = host_config(11)


def _deb_tree(root: Path, nvcc: str = FAKE_NVCC, drop: tuple[str, ...] = ()) -> None:
    """Files as in Debian 12's nvidia-cuda-toolkit (a subset: what the map uses, plus decoys)."""
    files = {
        "usr/lib/nvidia-cuda-toolkit/bin/nvcc": (nvcc, 0o755),
        "usr/lib/nvidia-cuda-toolkit/bin/cicc": ("#!/bin/sh\necho cicc\n", 0o755),
        "usr/lib/nvidia-cuda-toolkit/bin/gcc": ("#!/bin/sh\nexec gcc-11 \"$@\"\n", 0o755),
        "usr/lib/nvidia-cuda-toolkit/bin/g++": ("#!/bin/sh\nexec g++-11 \"$@\"\n", 0o755),
        "usr/lib/nvidia-cuda-toolkit/bin/crt/link.stub": ("stub", 0o644),
        "usr/lib/nvidia-cuda-toolkit/bin/crt/prelink.stub": ("stub", 0o644),
        "usr/lib/nvidia-cuda-toolkit/libdevice/libdevice.10.bc": ("BC", 0o644),
        "usr/bin/nvcc": ("#!/bin/sh\n\nexec /usr/lib/nvidia-cuda-toolkit/bin/nvcc \"$@\"\n", 0o755),
        "etc/nvcc.profile": (DEBIAN_PROFILE, 0o644),
        "usr/include/nvvm.h": ("// nvvm", 0o644),
    }
    for tool in ("ptxas", "fatbinary", "nvlink", "cudafe++", "bin2c", "cuobjdump", "nvprune", "cu++filt",
                 "__nvcc_device_query", "nvdisasm"):
        files[f"usr/bin/{tool}"] = (f"#!/bin/sh\necho debian-{tool}\n", 0o755)
    for rel, (content, mode) in files.items():
        if rel in drop:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)
    os.symlink("/etc/nvcc.profile", root / "usr/lib/nvidia-cuda-toolkit/bin/nvcc.profile")


def build_fake_deb(dest: Path, work: Path, version: str = VERSION, **kw) -> Path:
    tree = work / "debtree"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: nvidia-cuda-toolkit\nVersion: {version}\nArchitecture: amd64\n"
        "Maintainer: test <test@example.invalid>\nDescription: fake NVIDIA CUDA development toolkit\n")
    _deb_tree(tree, **kw)
    out = dest / f"nvidia-cuda-toolkit_{version}_amd64.deb"
    proc = runner.run(["dpkg-deb", "--root-owner-group", "--build", tree, out], timeout=120)
    assert proc.ok, proc.output
    return out


def _write_wheel(path: Path, members: dict[str, tuple[str, int]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (content, mode) in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, content)


def fake_wheels(cuda: str) -> dict[str, tuple[str, list[str], dict[str, tuple[str, int]]]]:
    """Wheels with the real cuXX wheels' names and roots (nvidia/cuda_nvcc, _runtime, _cccl), tiny contents."""
    _, _, _, gcc_max, cu = EXPECTED[cuda]
    soname = "libcudart.so.11.0" if cu == "cu11" else f"libcudart.so.{cu[2:]}"
    return {
        f"nvidia-cuda-nvcc-{cu}": ("nvidia/cuda_nvcc", ["include"], {
            "nvidia/cuda_nvcc/bin/ptxas": ("#!/bin/sh\necho pypi-ptxas\n", 0o755),
            "nvidia/cuda_nvcc/nvvm/lib64/libnvvm.so": ("ELF", 0o755),
            "nvidia/cuda_nvcc/include/crt/host_config.h": (host_config(gcc_max), 0o644),
            "nvidia/cuda_nvcc/include/__init__.py": ("", 0o644),
        }),
        f"nvidia-cuda-runtime-{cu}": ("nvidia/cuda_runtime", ["include", "lib"], {
            "nvidia/cuda_runtime/include/cuda_runtime.h": (f"// rt {cuda}", 0o644),
            f"nvidia/cuda_runtime/lib/{soname}": ("ELF", 0o755),
            "nvidia/cuda_runtime/__init__.py": ("", 0o644),
        }),
        f"nvidia-cuda-cccl-{cu}": ("nvidia/cuda_cccl", ["include"], {
            "nvidia/cuda_cccl/include/cub/cub.cuh": ("// cub", 0o644),
            "nvidia/cuda_cccl/include/thrust/version.h": ("// thrust", 0o644),
        }),
    }


FAKE_WHEELS = fake_wheels("11.8")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_deb_set(cuda: str, tmp_path: Path, monkeypatch) -> tuple[Path, Path, dict]:
    """Fake .deb + cuXX wheels in tmp_path/files and a pin table for them: the real table's shared
    ``[debian]`` section (archive, map, nvcc_profile) and the real release's ``[apt]`` / ``[[deb]]``."""
    version, _, full, _, _ = EXPECTED[cuda]
    files = tmp_path / "files"
    files.mkdir()
    deb = build_fake_deb(files, tmp_path, version=version, nvcc=fake_nvcc(full))
    real_table = tables.load("toolchains")
    real = real_table["release"][cuda]
    release = {
        "source": "debian", "complete": True, "missing": [], "apt": dict(real["apt"]),
        "deb": [dict(real["deb"][0], sha256=_sha(deb), size=deb.stat().st_size)],
        "wheel": [],
    }
    for name, (root, members, content) in fake_wheels(cuda).items():
        filename = f"{name.replace('-', '_')}-{full}-py3-none-manylinux2014_x86_64.whl"
        _write_wheel(files / filename, content)
        release["wheel"].append({"name": name, "version": full, "root": root, "members": members,
                                 "files": [{"filename": filename, "sha256": _sha(files / filename)}]})
    table = {"debian": real_table["debian"], "release": {cuda: release},
             "math_headers": {"globs": ["cublas*.h", "cusparse*.h", "cusolver*.h"],
                              cuda.split(".")[0]: ["nvidia/cublas/include", "nvidia/cusparse/include",
                                                   "nvidia/cusolver/include"]}}
    monkeypatch.setattr(tc_pins, "_load_table", lambda: table)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site-packages" not in p])
    monkeypatch.setattr(tc_fetch, "_pip_download", lambda *a, **k: pytest.fail("wheels are all local"))
    return files, deb, table


@pytest.fixture
def deb_set(tmp_path, monkeypatch, isolated_cache):
    """11.8: fake .deb + cu11 wheels and a pin table for them (see make_deb_set)."""
    return make_deb_set("11.8", tmp_path, monkeypatch)


class FakeApt:
    """Stands in for apt-get at runner.run: records argv and "downloads" the fake .deb into cwd."""

    def __init__(self, monkeypatch, deb: Path | None, update=(0, "", ""), download=None):
        self.calls: list[tuple[list[str], dict]] = []
        self.deb, self.update, self.download = deb, update, download
        self.real_run = runner.run
        monkeypatch.setattr(runner, "run", self)
        monkeypatch.setattr(tc_fetch.shutil, "which",
                            lambda name, *a, **k: "/usr/bin/apt-get" if name == "apt-get" else shutil.which(name))

    def __call__(self, argv, **kw):
        argv = [str(a) for a in argv]
        if argv[0] != "/usr/bin/apt-get":
            return self.real_run(argv, **kw)
        self.calls.append((argv, kw))
        if argv[-1] == "update":
            rc, out, err = self.update
            return runner.CommandResult(tuple(argv), rc, out, err, 0.1)
        if self.download is not None:
            rc, out, err = self.download
            return runner.CommandResult(tuple(argv), rc, out, err, 0.1)
        shutil.copy(self.deb, Path(kw["cwd"]) / self.deb.name)
        return runner.CommandResult(tuple(argv), 0, f"Get:1 ... {self.deb.name}", "", 0.1)


def test_every_debian_release_is_expected_here():
    debian = sorted(v for v, p in toolkits.pinned_releases().items() if p.source == "debian")
    assert debian == DEBIAN_RELEASES


@pytest.mark.parametrize("cuda", DEBIAN_RELEASES)
def test_real_pin_table_debian_entry(cuda):
    version, suite, _, _, cu = EXPECTED[cuda]
    pins = toolkits.release_pins(cuda)
    assert pins.source == "debian" and pins.complete and not pins.missing and pins.apt is not None
    assert pins.apt.keyring == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert pins.apt.uri == "http://deb.debian.org/debian"
    assert pins.apt.suite == suite and "non-free" in pins.apt.components
    (deb,) = pins.debs
    assert deb.package == "nvidia-cuda-toolkit" and deb.version == version
    assert deb.filename == f"nvidia-cuda-toolkit_{version}_amd64.deb"
    name = deb.filename
    assert len(deb.sha256) == 64 and deb.pool.endswith("/" + name) and deb.pool.startswith("pool/non-free/")
    targets = dict((dst, src) for src, dst in deb.map)
    for needed in ("bin/nvcc", "nvvm/bin/cicc", "nvvm/libdevice", "bin/ptxas", "bin/fatbinary", "bin/nvlink",
                   "bin/cudafe++", "bin/bin2c", "bin/crt"):
        assert needed in targets, needed
    assert targets["bin/nvcc"] == "usr/lib/nvidia-cuda-toolkit/bin/nvcc"  # the binary, not the sh wrapper
    assert not any(dst.endswith(("/gcc", "/g++")) for dst in targets)  # Debian's host compiler wrappers
    assert "$(TOP)" in pins.nvcc_profile and "/usr/" not in pins.nvcc_profile
    assert {w.name for w in pins.wheels} == {f"nvidia-cuda-nvcc-{cu}", f"nvidia-cuda-runtime-{cu}",
                                             f"nvidia-cuda-cccl-{cu}"}
    assert all(w.members for w in pins.wheels)
    assert 100e6 < pins.download_bytes < 120e6
    assert cuda in toolkits.installable_releases()


def test_debian_releases_share_one_map_and_profile():
    """The map and nvcc.profile live once, in [debian.package.nvidia-cuda-toolkit]; entries reuse them."""
    raw = tables.load("toolchains")
    pins = [toolkits.release_pins(v) for v in DEBIAN_RELEASES]
    assert len({p.debs[0].map for p in pins}) == 1 and len({p.nvcc_profile for p in pins}) == 1
    for v in DEBIAN_RELEASES:
        assert "map" not in raw["release"][v]["deb"][0] and "nvcc_profile" not in raw["release"][v]
        assert set(raw["release"][v]["apt"]) == {"suite"}


def test_an_entry_may_override_the_shared_debian_keys():
    raw = tables.load("toolchains")
    entry = dict(raw["release"]["12.4"], apt={"suite": "sid", "components": ["contrib", "non-free"]},
                 nvcc_profile="TOP = x\n")
    entry["deb"] = [dict(entry["deb"][0], map=[["usr/bin/nvcc", "bin/nvcc"]])]
    pins = tc_pins._parse_release("12.4", entry, raw["debian"])
    assert pins.apt.line() == ("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg arch=amd64] "
                               "http://deb.debian.org/debian sid contrib non-free")
    assert pins.nvcc_profile == "TOP = x\n" and pins.debs[0].map == (("usr/bin/nvcc", "bin/nvcc"),)
    with pytest.raises(ToolkitError):  # without the shared section there is no archive uri / keyring / map
        tc_pins._parse_release("12.4", raw["release"]["12.4"], None)


@pytest.mark.parametrize("cuda", DEBIAN_RELEASES)
def test_assembles_each_debian_release(cuda, tmp_path, monkeypatch, isolated_cache):
    version, suite, full, gcc_max, cu = EXPECTED[cuda]
    files, deb, _ = make_deb_set(cuda, tmp_path, monkeypatch)
    apt = FakeApt(monkeypatch, deb)
    store = tmp_path / "store"
    info = toolkits.install(cuda, wheels_dir=files, debs_dir=store)
    home = isolated_cache / "toolchains" / f"cuda-{cuda}"
    assert info.path == home and info.cuda == cuda and info.nvcc_version == full
    line = (store / "apt" / "sources.list").read_text().strip()
    assert line == ("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg arch=amd64] "
                    f"http://deb.debian.org/debian {suite} non-free")
    assert apt.calls[1][0][-1] == f"nvidia-cuda-toolkit={version}"
    assert (home / "bin" / "nvcc").read_text() == fake_nvcc(full)
    assert (home / "include" / "crt" / "host_config.h").read_text() == host_config(gcc_max)
    assert "$(TOP)/nvvm/bin" in (home / "bin" / "nvcc.profile").read_text()
    soname = "libcudart.so.11.0" if cu == "cu11" else f"libcudart.so.{cu[2:]}"
    assert os.readlink(home / "lib64" / "libcudart.so") == soname
    meta = json.loads((home / toolkits.METADATA_NAME).read_text())
    assert meta["debs"][0]["version"] == version and meta["debs"][0]["archive"].endswith(" " + suite)


def test_assembles_layout_from_deb_and_wheels(deb_set, isolated_cache):
    files, deb, _ = deb_set
    info = toolkits.install("11.8", find_links=files, wheels_dir=files, debs_dir=files)
    home = isolated_cache / "toolchains" / "cuda-11.8"
    assert info.path == home and info.nvcc_version == "11.8.89" and info.archs == [35, 80, 90]
    assert (home / "bin" / "nvcc").read_text() == FAKE_NVCC  # the real driver, not usr/bin/nvcc's wrapper
    assert os.access(home / "nvvm" / "bin" / "cicc", os.X_OK)
    assert (home / "nvvm" / "libdevice" / "libdevice.10.bc").is_file()
    assert (home / "bin" / "crt" / "link.stub").is_file()
    assert "debian-ptxas" in (home / "bin" / "ptxas").read_text()  # the wheel's ptxas is not used
    for tool in ("fatbinary", "nvlink", "cudafe++", "bin2c"):
        assert os.access(home / "bin" / tool, os.X_OK), tool
    assert not (home / "bin" / "gcc").exists() and not (home / "bin" / "g++").exists()
    assert not (home / "nvvm" / "lib64").exists()  # outside the nvcc wheel's `members`
    assert (home / "include" / "crt" / "host_config.h").read_text() == HOST_CONFIG
    assert (home / "include" / "cub" / "cub.cuh").is_file() and (home / "include" / "thrust" / "version.h").is_file()
    assert not list(home.rglob("__init__.py"))
    assert os.readlink(home / "lib64" / "libcudart.so") == "libcudart.so.11.0"
    assert not [p for p in home.iterdir() if p.name.startswith(".deb-")]
    meta = json.loads((home / toolkits.METADATA_NAME).read_text())
    assert meta["debs"] == [{"package": "nvidia-cuda-toolkit", "version": VERSION, "file": DEB_NAME,
                             "sha256": _sha(deb), "archive": "http://deb.debian.org/debian bookworm"}]
    assert [w["name"] for w in meta["wheels"]] == list(FAKE_WHEELS)
    assert meta["layout"]["bin/nvcc"].startswith("from nvidia-cuda-toolkit")
    assert sorted(p.name for p in home.parent.iterdir()) == ["cuda-11.8"]


def test_nvcc_profile_is_rewritten_relative_to_the_toolkit(deb_set, isolated_cache):
    files, _, _ = deb_set
    info = toolkits.install("11.8", find_links=files, wheels_dir=files, debs_dir=files)
    profile = info.path / "bin" / "nvcc.profile"
    assert not profile.is_symlink()  # Debian's is a link to /etc/nvcc.profile
    text = profile.read_text()
    assert "/usr/lib/nvidia-cuda-toolkit" not in text and "/usr/lib/x86_64-linux-gnu" not in text
    assert text.startswith("TOP") and "$(_HERE_)/.." in text
    assert "NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice" in text
    assert "$(TOP)/nvvm/bin" in text and '-I$(TOP)/include' in text and '-L$(TOP)/lib64' in text
    # everything the profile points at exists in the assembled folder
    assert (info.path / "nvvm" / "libdevice").is_dir() and (info.path / "nvvm" / "bin" / "cicc").is_file()
    assert (info.path / "include").is_dir() and (info.path / "lib64").is_dir()


def test_apt_is_run_rootless_with_a_private_config(deb_set, isolated_cache, tmp_path, monkeypatch):
    _, deb, _ = deb_set
    apt = FakeApt(monkeypatch, deb)
    store = tmp_path / "store"
    toolkits.install("11.8", wheels_dir=deb_set[0], debs_dir=store)
    assert [c[0][-1] for c in apt.calls[:1]] == ["update"]
    argv, kw = apt.calls[1]
    assert argv[-2:] == ["download", f"nvidia-cuda-toolkit={VERSION}"] and kw["cwd"] == store
    opts = dict(a.split("=", 1) for a in argv[1:-2] if a != "-o")
    aptdir = store / "apt"
    assert opts["Dir::Etc::SourceList"] == str(aptdir / "sources.list")
    assert opts["Dir::Etc::SourceParts"] == "/dev/null" and opts["Debug::NoLocking"] == "1"
    assert opts["Dir::State"] == str(aptdir / "state") and opts["Dir::Cache"] == str(aptdir / "cache")
    assert opts["Dir::State::status"] == str(aptdir / "state" / "status")
    assert not any("/var/lib/apt" in v or "/etc/apt" in v for v in opts.values())
    line = (aptdir / "sources.list").read_text().strip()
    assert line == ("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg arch=amd64] "
                    "http://deb.debian.org/debian bookworm non-free")
    assert "trusted=yes" not in line and "AllowUnauthenticated" not in " ".join(argv)
    assert (store / DEB_NAME).is_file()
    # a second install finds the verified .deb and does not run apt again
    apt.calls.clear()
    toolkits.install("11.8", wheels_dir=deb_set[0], debs_dir=store, force=True)
    assert apt.calls == []


def test_debian_mirror_replaces_the_archive(deb_set, isolated_cache, tmp_path, monkeypatch):
    FakeApt(monkeypatch, deb_set[1])
    toolkits.install("11.8", wheels_dir=deb_set[0], debs_dir=tmp_path / "s", debian_mirror="http://mirror.example/debian/")
    assert " http://mirror.example/debian bookworm non-free" in (tmp_path / "s" / "apt" / "sources.list").read_text()


def test_deb_hash_mismatch_is_an_error_with_fix(deb_set, isolated_cache, tmp_path, monkeypatch):
    _, deb, table = deb_set
    table["release"]["11.8"]["deb"][0]["sha256"] = "1" * 64
    FakeApt(monkeypatch, deb)
    store = tmp_path / "store"
    with pytest.raises(SourceError) as exc:
        toolkits.install("11.8", wheels_dir=deb_set[0], debs_dir=store)
    assert "sha256" in exc.value.message and DEB_NAME in exc.value.message and "1" * 64 in exc.value.message
    assert "snapshot.debian.org" in exc.value.fix and exc.value.exit_code == ExitCode.SOURCE
    assert (store / (DEB_NAME + ".bad-sha256")).exists() and not (store / DEB_NAME).exists()
    assert not (isolated_cache / "toolchains").exists() or not list((isolated_cache / "toolchains").iterdir())


def test_a_deb_lacking_a_mapped_path_leaves_nothing_behind(deb_set, isolated_cache, tmp_path):
    files, deb, table = deb_set
    (tmp_path / "broken").mkdir()
    broken = build_fake_deb(tmp_path / "broken", tmp_path, drop=("usr/lib/nvidia-cuda-toolkit/bin/cicc",))
    table["release"]["11.8"]["deb"][0]["sha256"] = _sha(broken)
    with pytest.raises(SourceError) as exc:
        toolkits.install("11.8", find_links=tmp_path / "broken", wheels_dir=files, debs_dir=tmp_path / "store")
    assert "usr/lib/nvidia-cuda-toolkit/bin/cicc" in exc.value.message
    assert list((isolated_cache / "toolchains").iterdir()) == []


def test_failed_reinstall_keeps_the_old_toolkit(deb_set, isolated_cache, tmp_path, monkeypatch):
    files, _, table = deb_set
    first = toolkits.install("11.8", find_links=files, wheels_dir=files, debs_dir=files)
    (tmp_path / "bad").mkdir()
    bad = build_fake_deb(tmp_path / "bad", tmp_path, nvcc="#!/bin/sh\nexit 1\n")
    table["release"]["11.8"]["deb"][0]["sha256"] = _sha(bad)
    with pytest.raises(ToolkitError):
        toolkits.install("11.8", find_links=tmp_path / "bad", wheels_dir=files, debs_dir=tmp_path / "s", force=True)
    assert toolkits.find("11.8").path == first.path and (first.path / "bin" / "nvcc").read_text() == FAKE_NVCC
    assert sorted(p.name for p in first.path.parent.iterdir()) == ["cuda-11.8"]


def test_interrupt_while_unpacking_rolls_back(deb_set, isolated_cache, monkeypatch):
    files, _, _ = deb_set
    real = tc_assemble._extract_deb

    def half_then_interrupt(deb, pin, dest):
        real(deb, pin, dest)
        raise KeyboardInterrupt

    monkeypatch.setattr(tc_assemble, "_extract_deb", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        toolkits.install("11.8", find_links=files, wheels_dir=files, debs_dir=files)
    assert list((isolated_cache / "toolchains").iterdir()) == []


def test_unreachable_archive_is_a_network_error(deb_set, isolated_cache, tmp_path, monkeypatch):
    FakeApt(monkeypatch, None, update=(100, "Err:1 http://deb.debian.org/debian bookworm InRelease\n"
                                      "  Temporary failure resolving 'deb.debian.org'",
                                      "E: Some index files failed to download."))
    with pytest.raises(NetworkError) as exc:
        toolkits.install("11.8", wheels_dir=deb_set[0], debs_dir=tmp_path / "s")
    fix = exc.value.fix
    assert "--find-links" in fix and f"http://deb.debian.org/debian/pool/non-free/n/nvidia-cuda-toolkit/{DEB_NAME}" in fix
    assert exc.value.exit_code == ExitCode.NETWORK


def test_bad_signature_is_a_source_error(deb_set, isolated_cache, tmp_path, monkeypatch):
    FakeApt(monkeypatch, None, update=(100, "", "W: GPG error: http://deb.debian.org/debian bookworm InRelease: "
                                      "The following signatures couldn't be verified because the public key is "
                                      "not available: NO_PUBKEY 0E98404D386FA1D9\nE: The repository is not signed."))
    with pytest.raises(SourceError) as exc:
        toolkits.install("11.8", wheels_dir=deb_set[0], debs_dir=tmp_path / "s")
    assert "signature" in exc.value.message and "debian-archive-keyring" in exc.value.fix


def test_version_gone_from_the_archive_points_at_snapshot(deb_set, isolated_cache, tmp_path, monkeypatch):
    FakeApt(monkeypatch, None, download=(100, "", f"E: Version '{VERSION}' for 'nvidia-cuda-toolkit' was not found"))
    with pytest.raises(SourceError) as exc:
        toolkits.install("11.8", wheels_dir=deb_set[0], debs_dir=tmp_path / "s")
    assert "point release" in exc.value.fix and "snapshot.debian.org" in exc.value.fix


def test_without_apt_get_the_fix_is_a_manual_download(deb_set, isolated_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(tc_fetch.shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(ToolkitError) as exc:
        toolkits.install("11.8", wheels_dir=deb_set[0], debs_dir=tmp_path / "s")
    assert "apt-get" in exc.value.message and DEB_NAME in exc.value.fix and "--find-links" in exc.value.fix


def test_cli_install_118_from_local_files(deb_set, isolated_cache, capsys):
    from mamba_build import cli
    files, _, _ = deb_set
    assert cli.main(["toolchain", "install", "--cuda", "11.8", "--find-links", str(files)]) == 0
    out = capsys.readouterr().out
    assert "CUDA 11.8  nvcc 11.8.89" in out and "sm_80" in out
