"""Source specs, safe extraction, tree verification, and every kind of source (git via a local repo)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from mamba_build import cli
from mamba_build.build import sources
from mamba_build.build.sources import SourceSpec, parse_source_spec
from mamba_build.errors import ExitCode, NetworkError, SourceError, UsageError
from mamba_build.plan import packages

CC_SOURCES = ["csrc/causal_conv1d.cpp", "csrc/causal_conv1d_fwd.cu", "csrc/causal_conv1d_bwd.cu",
              "csrc/causal_conv1d_update.cu"]


def make_tree(root: Path, version: str = "1.7.0", missing: tuple[str, ...] = ()) -> Path:
    """A synthetic causal-conv1d tree: setup.py listing CC_SOURCES, package __init__ with __version__."""
    root.mkdir(parents=True)
    srcs = ",\n".join(f'        "{s}"' for s in CC_SOURCES)
    (root / "setup.py").write_text(
        'PACKAGE_NAME = "causal_conv1d"\n'
        'from torch.utils.cpp_extension import CUDAExtension\n'
        f'ext = CUDAExtension(\n    name="causal_conv1d_cuda",\n    sources=[\n{srcs}\n    ],\n)\n')
    (root / "causal_conv1d").mkdir()
    (root / "causal_conv1d" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    for s in CC_SOURCES:
        if s not in missing:
            (root / s).parent.mkdir(parents=True, exist_ok=True)
            (root / s).write_text("// kernel\n")
    return root


def tar_of(tree: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tf:
        tf.add(tree, arcname=tree.name)
    return out


# ---------------------------------------------------------------- spec parsing

@pytest.mark.parametrize("text, expected", [
    (None, SourceSpec("pypi")),
    ("pypi", SourceSpec("pypi")),
    ("git+https://github.com/state-spaces/mamba@v2.2.4", SourceSpec("git", "https://github.com/state-spaces/mamba", "v2.2.4")),
    ("git+https://github.com/state-spaces/mamba", SourceSpec("git", "https://github.com/state-spaces/mamba", None)),
    ("https://github.com/Dao-AILab/causal-conv1d.git@release/1.5", SourceSpec("git", "https://github.com/Dao-AILab/causal-conv1d.git", "release/1.5")),
    ("git+https://user@host.example/repo.git", SourceSpec("git", "https://user@host.example/repo.git", None)),
    ("git@github.com:state-spaces/mamba.git", SourceSpec("git", "git@github.com:state-spaces/mamba.git", None)),
    ("git@github.com:state-spaces/mamba.git@v2.2.4", SourceSpec("git", "git@github.com:state-spaces/mamba.git", "v2.2.4")),
    ("file:///srv/mamba@abc123", SourceSpec("git", "file:///srv/mamba", "abc123")),
    ("/tmp/x/mamba_ssm-2.2.5.tar.gz", SourceSpec("archive", "/tmp/x/mamba_ssm-2.2.5.tar.gz")),
    ("https://github.com/state-spaces/mamba/archive/refs/tags/v2.2.4.tar.gz",
     SourceSpec("archive", "https://github.com/state-spaces/mamba/archive/refs/tags/v2.2.4.tar.gz")),
    ("./src.zip", SourceSpec("archive", "./src.zip")),
])
def test_parse_source_spec(text, expected):
    assert parse_source_spec(text) == expected


def test_parse_local_dir_and_dir_at_ref(tmp_path):
    assert parse_source_spec(str(tmp_path)) == SourceSpec("local", str(tmp_path.resolve()))
    assert parse_source_spec(f"{tmp_path}@v1") == SourceSpec("git", str(tmp_path.resolve()), "v1")


@pytest.mark.parametrize("bad", ["/no/such/dir", "https://example.com/page", "ftp-ish"])
def test_bad_specs_are_usage_errors(bad):
    with pytest.raises(UsageError):
        parse_source_spec(bad)


def test_parse_requirement():
    assert packages.parse_requirement("mamba-ssm==2.2.6.post3") == ("mamba-ssm", "2.2.6.post3")
    assert packages.parse_requirement("causal_conv1d") == ("causal-conv1d", None)
    for bad in ["flash-attn", "mamba-ssm>=2", "mamba-ssm==not a version"]:
        with pytest.raises(UsageError):
            packages.parse_requirement(bad)


# ---------------------------------------------------------------- extraction

def _evil_tar(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        ok = tarfile.TarInfo("pkg/setup.py")
        ok.size = 1
        tf.addfile(ok, io.BytesIO(b"x"))
        if member.isfile():
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
        else:
            tf.addfile(member)
    return path


@pytest.mark.parametrize("name, kind, link", [
    ("../escape.txt", tarfile.REGTYPE, ""),
    ("/abs/escape.txt", tarfile.REGTYPE, ""),
    ("pkg/../../escape.txt", tarfile.REGTYPE, ""),
    ("pkg/link", tarfile.SYMTYPE, "../../etc/passwd"),
    ("pkg/abslink", tarfile.SYMTYPE, "/etc/passwd"),
    ("pkg/hard", tarfile.LNKTYPE, "../outside"),
    ("pkg/dev", tarfile.CHRTYPE, ""),
])
def test_malicious_tar_is_refused(tmp_path, name, kind, link):
    m = tarfile.TarInfo(name)
    m.type = kind
    m.linkname = link
    archive = _evil_tar(tmp_path / "evil.tar.gz", m)
    dest = tmp_path / "dest"
    with pytest.raises(SourceError) as info:
        sources.extract_archive(archive, dest)
    assert info.value.exit_code == ExitCode.SOURCE
    assert not (tmp_path / "escape.txt").exists()
    assert [p.name for p in dest.iterdir()] == []  # the staging dir was cleaned up


def test_malicious_zip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/setup.py", "x")
        zf.writestr("../escape.txt", "x")
    with pytest.raises(SourceError, match="unsafe path"):
        sources.extract_archive(archive, tmp_path / "dest")


@pytest.mark.parametrize("payload", [b"", b"not a tarball at all", None])
def test_corrupt_archives_are_source_errors(tmp_path, payload):
    archive = tmp_path / "causal_conv1d-1.7.0.tar.gz"
    if payload is None:  # truncated real tarball
        good = tar_of(make_tree(tmp_path / "causal_conv1d-1.7.0"), tmp_path / "good.tar.gz").read_bytes()
        payload = good[: len(good) // 2]
    archive.write_bytes(payload)
    with pytest.raises(SourceError, match="not a readable .tar.gz") as info:
        sources.extract_archive(archive, tmp_path / "dest")
    assert "corrupt or incomplete" in info.value.fix
    bad_zip = tmp_path / "x.zip"
    bad_zip.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(SourceError):
        sources.extract_archive(bad_zip, tmp_path / "dest2")


def test_dest_that_is_not_ours_is_not_overwritten(tmp_path, isolated_cache):
    archive = tar_of(make_tree(tmp_path / "src" / "causal_conv1d-1.7.0"), tmp_path / "causal_conv1d-1.7.0.tar.gz")
    (tmp_path / "dest" / "causal_conv1d-1.7.0").mkdir(parents=True)
    (tmp_path / "dest" / "causal_conv1d-1.7.0" / "mine.txt").write_text("keep")
    with pytest.raises(SourceError, match="not unpacked by mamba-build"):
        sources.fetch("causal-conv1d", None, str(archive), tmp_path / "dest")
    assert (tmp_path / "dest" / "causal_conv1d-1.7.0" / "mine.txt").read_text() == "keep"


# ---------------------------------------------------------------- verify_tree

def test_verify_tree_lists_sources(tmp_path):
    tree = make_tree(tmp_path / "t")
    assert sources.verify_tree(tree, "causal-conv1d") == CC_SOURCES


def test_verify_tree_missing_csrc_says_so_and_shows_alternatives(tmp_path):
    tree = make_tree(tmp_path / "t", version="1.5.1", missing=("csrc/causal_conv1d.cpp",))
    with pytest.raises(SourceError) as info:
        sources.verify_tree(tree, "causal-conv1d")
    err = info.value
    assert "causal-conv1d 1.5.1" in err.message and "csrc/causal_conv1d.cpp" in err.message
    assert "1 of the 4" in err.message and "from 1.5.2 on" in err.message
    assert "causal-conv1d==1.5.2" in err.fix
    assert "git+https://github.com/Dao-AILab/causal-conv1d@v1.5.1" in err.fix
    assert "archive/refs/tags/v1.5.1.tar.gz" in err.fix


def test_verify_tree_without_setup_py(tmp_path):
    (tmp_path / "t").mkdir()
    with pytest.raises(SourceError, match="no setup.py"):
        sources.verify_tree(tmp_path / "t", "mamba-ssm")


# ---------------------------------------------------------------- archive / zip / local / git sources

def test_tarball_source_records_sha256_and_caches(tmp_path, isolated_cache):
    archive = tar_of(make_tree(tmp_path / "src" / "causal_conv1d-1.7.0"), tmp_path / "causal_conv1d-1.7.0.tar.gz")
    got = sources.fetch("causal-conv1d", "1.7.0", str(archive), tmp_path / "dest")
    assert got.tree == (tmp_path / "dest" / "causal_conv1d-1.7.0").resolve()
    assert got.version == "1.7.0" and got.sha256 == sources.sha256_file(archive)
    assert got.archive.read_bytes() == archive.read_bytes()
    assert got.archive.is_relative_to(isolated_cache / "sdists" / got.sha256)
    marker = json.loads((got.tree / sources.SOURCE_MARKER).read_text())
    assert marker["sha256"] == got.sha256
    # fetching again replaces our own tree
    (got.tree / "setup.py").write_text("patched")
    again = sources.fetch("causal-conv1d", None, str(archive), tmp_path / "dest")
    assert (again.tree / "setup.py").read_text() != "patched"


def test_tarball_with_wrong_version_is_refused(tmp_path, isolated_cache):
    archive = tar_of(make_tree(tmp_path / "src" / "causal_conv1d-1.6.0", "1.6.0"), tmp_path / "cc.tar.gz")
    with pytest.raises(SourceError, match="not the requested 1.7.0"):
        sources.fetch("causal-conv1d", "1.7.0", str(archive), tmp_path / "dest")


def test_zip_source(tmp_path, isolated_cache):
    tree = make_tree(tmp_path / "src" / "causal_conv1d-1.7.0")
    archive = Path(shutil.make_archive(str(tmp_path / "cc"), "zip", tree.parent, tree.name))
    got = sources.fetch("causal-conv1d", None, str(archive), tmp_path / "dest")
    assert got.version == "1.7.0" and (got.tree / "csrc" / "causal_conv1d.cpp").is_file()
    assert got.sha256 == sources.sha256_file(archive)


def test_incomplete_tarball_is_refused_with_alternatives(tmp_path, isolated_cache):
    archive = tar_of(make_tree(tmp_path / "src" / "causal_conv1d-1.5.1", "1.5.1", missing=("csrc/causal_conv1d.cpp",)),
                     tmp_path / "causal_conv1d-1.5.1.tar.gz")
    with pytest.raises(SourceError, match="incomplete"):
        sources.fetch("causal-conv1d", None, str(archive), tmp_path / "dest")


def test_local_tree_is_copied_not_touched(tmp_path, isolated_cache):
    src = make_tree(tmp_path / "checkout")
    (src / ".git").mkdir()
    got = sources.fetch("causal-conv1d", None, str(src), tmp_path / "dest")
    assert got.tree == (tmp_path / "dest" / "checkout").resolve() and got.sha256 is None
    assert not (got.tree / ".git").exists()
    assert sorted(p.name for p in src.iterdir()) == [".git", "causal_conv1d", "csrc", "setup.py"]


def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def git_repo(tmp_path) -> Path:
    if not shutil.which("git"):
        pytest.skip("git not installed")
    repo = make_tree(tmp_path / "repo", version="1.6.0")
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "v1.6.0", cwd=repo)
    _git("tag", "v1.6.0", cwd=repo)
    (repo / "causal_conv1d" / "__init__.py").write_text('__version__ = "1.7.0"\n')
    _git("commit", "-q", "-am", "v1.7.0", cwd=repo)
    return repo


def test_git_source_at_tag_branch_and_default(tmp_path, isolated_cache, git_repo):
    url = git_repo.as_uri()
    at_tag = sources.fetch("causal-conv1d", None, f"git+{url}@v1.6.0", tmp_path / "d1")
    assert at_tag.version == "1.6.0" and "@v1.6.0 (" in at_tag.origin
    assert len(at_tag.sha256) == 64 and at_tag.archive.is_file()
    assert not (at_tag.tree / ".git").exists()
    head = sources.fetch("causal-conv1d", None, f"{git_repo}@main", tmp_path / "d2")
    assert head.version == "1.7.0"
    # --version X with no ref picks tag vX
    pinned = sources.fetch("causal-conv1d", "1.6.0", f"git+{url}", tmp_path / "d3")
    assert pinned.version == "1.6.0"


def test_git_bad_ref_and_bad_url(tmp_path, isolated_cache, git_repo):
    with pytest.raises(SourceError, match="no-such-tag"):
        sources.fetch("causal-conv1d", None, f"git+{git_repo.as_uri()}@no-such-tag", tmp_path / "d")
    with pytest.raises(SourceError, match="clone"):
        sources.fetch("causal-conv1d", None, f"git+{(tmp_path / 'nothing').as_uri()}@v1", tmp_path / "d")


# ---------------------------------------------------------------- index access without the network

def test_find_links_dir_and_cache_hit(tmp_path, isolated_cache):
    links = tmp_path / "links"
    links.mkdir()
    for v in ("1.6.0", "1.7.0"):
        tar_of(make_tree(tmp_path / "src" / f"causal_conv1d-{v}", v), links / f"causal_conv1d-{v}.tar.gz")
    (links / "unrelated-1.0.tar.gz").write_bytes(b"x")
    assert sources.available_versions("causal-conv1d", index_url="http://127.0.0.1:9/",
                                      find_links=str(links)) == ["1.6.0", "1.7.0"]
    first = sources.fetch("causal-conv1d", None, "pypi", tmp_path / "d", index_url="http://127.0.0.1:9/",
                          find_links=[str(links)])
    assert first.version == "1.7.0" and not first.from_cache
    assert first.sha256 == sources.sha256_file(links / "causal_conv1d-1.7.0.tar.gz")
    second = sources.fetch("causal-conv1d", "1.7.0", "pypi", tmp_path / "d", index_url="http://127.0.0.1:9/",
                           find_links=[str(links)])
    assert second.from_cache and second.archive == first.archive


def test_unreachable_index_is_a_network_error(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(NetworkError) as info:
        sources.fetch("mamba-ssm", "2.3.1", None, tmp_path / "d", index_url="http://127.0.0.1:9/")
    assert info.value.exit_code == ExitCode.NETWORK == 8
    assert "127.0.0.1:9" in info.value.message
    assert "PIP_INDEX_URL" in info.value.fix and "--find-links" in info.value.fix
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    assert cli.main(["fetch", "mamba-ssm==2.3.1", "--dest", str(tmp_path / "d")]) == 8


def test_unreachable_index_falls_back_to_a_cached_pinned_sdist(tmp_path, isolated_cache):
    links = tmp_path / "links"
    links.mkdir()
    tar_of(make_tree(tmp_path / "src" / "causal_conv1d-1.7.0"), links / "causal_conv1d-1.7.0.tar.gz")
    sources.fetch("causal-conv1d", "1.7.0", None, tmp_path / "d", index_url="http://127.0.0.1:9/",
                  find_links=str(links))
    shutil.rmtree(links)
    got = sources.fetch("causal-conv1d", "1.7.0", None, tmp_path / "d", index_url="http://127.0.0.1:9/",
                        find_links=[])
    assert got.from_cache and "index unreachable" in got.origin


def test_pep503_html_index_parsing():
    info = packages.package_info("causal-conv1d")
    html = ('<html><body><a href="../../files/causal_conv1d-1.7.0.tar.gz#sha256=abc">x</a>'
            '<a href="causal_conv1d-1.6.0.tar.gz" data-yanked="">y</a>'
            '<a href="causal_conv1d-1.7.0-cp311-linux_x86_64.whl">w</a></body></html>')
    files = sources._parse_html(html, "https://mirror.example/simple/causal-conv1d/", info)
    assert [(f.filename, f.url, f.sha256, f.yanked) for f in files] == [
        ("causal_conv1d-1.7.0.tar.gz", "https://mirror.example/files/causal_conv1d-1.7.0.tar.gz", "abc", False),
        ("causal_conv1d-1.6.0.tar.gz", "https://mirror.example/simple/causal-conv1d/causal_conv1d-1.6.0.tar.gz",
         None, True),
    ]


def test_sha256_mismatch_is_a_source_error(tmp_path, isolated_cache):
    f = tmp_path / "causal_conv1d-1.7.0.tar.gz"
    f.write_bytes(b"data")
    with pytest.raises(SourceError, match="sha256"):
        sources._download(f.as_uri(), f.name, "0" * 64, "test")


# ---------------------------------------------------------------- package facts and defaults

def test_default_versions_and_pairs():
    avail = {"mamba-ssm": ["2.2.4", "2.2.5", "2.2.6.post3", "2.3.2.post1", "3.0.0rc1"],
             "causal-conv1d": ["1.5.0.post8", "1.5.1", "1.5.2", "1.7.0"]}
    assert packages.default_versions("2.14.1", avail) == {"mamba-ssm": "2.3.2.post1", "causal-conv1d": "1.7.0"}
    old = {"mamba-ssm": ["2.2.4", "2.2.5"], "causal-conv1d": ["1.5.1", "1.5.2"]}
    assert packages.default_versions("2.5", old, cuda_version="12.4") == {"mamba-ssm": "2.2.5",
                                                                          "causal-conv1d": "1.5.2"}
    with pytest.raises(SourceError, match="CUDA 13.0 needs >= 2.2.6"):
        packages.default_versions("2.14.1", old, cuda_version="13.0")
    with pytest.raises(UsageError, match="cpp_functions"):
        packages.check_pair("2.2.6.post3", "1.5.0.post8")
    with pytest.raises(UsageError, match="<1.2.0"):
        packages.check_pair("1.1.4", "1.2.0")
    packages.check_pair("2.3.2.post1", "1.5.2")
    assert packages.version_supported("causal-conv1d", "1.5.1")[0] is False
    assert packages.package_info("mamba_ssm").extension_module == "selective_scan_cuda"


# ---------------------------------------------------------------- real PyPI

@pytest.mark.network
def test_real_pypi_incomplete_sdist_and_cache(tmp_path, test_cache, monkeypatch):
    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(test_cache / "mamba-build-cache"))
    for var in ("PIP_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SourceError) as info:
        sources.fetch("causal-conv1d", "1.5.1", None, tmp_path / "d", index_url=sources.DEFAULT_INDEX)
    assert "csrc/causal_conv1d.cpp" in info.value.message and "--source" in info.value.fix
    first = sources.fetch("causal-conv1d", "1.5.2", None, tmp_path / "d", index_url=sources.DEFAULT_INDEX)
    again = sources.fetch("causal-conv1d", "1.5.2", None, tmp_path / "d", index_url=sources.DEFAULT_INDEX)
    assert again.from_cache and again.sha256 == first.sha256 == sources.sha256_file(first.archive)
    assert first.origin.startswith("https://") and first.version == "1.5.2"
    assert "1.5.2" in sources.available_versions("causal-conv1d", index_url=sources.DEFAULT_INDEX)
