"""mamba_build.build.torch_headers: one include path per header content, so ccache hits across Python versions."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from mamba_build.build import torch_headers
from mamba_build.build.torch_headers import header_map, rewrite


def fake_torch(site: Path, headers: dict[str, str], *, record: bool = True, version: str = "2.14.1") -> str:
    """A site-packages with torch/__init__.py, torch/include/** and (optionally) the wheel's RECORD."""
    torch = site / "torch"
    rows = []
    for name, text in headers.items():
        f = torch / "include" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        digest = hashlib.sha256(text.encode()).hexdigest()
        rows.append(f"torch/include/{name},sha256={digest},{len(text.encode())}")
    (torch / "__init__.py").write_text("")
    rows.append("torch/__init__.py,sha256=x,0")
    if record:
        info = site / f"torch-{version}.dist-info"
        info.mkdir()
        (info / "RECORD").write_text("\n".join(rows) + "\n")
    return str(torch / "__init__.py")


HEADERS = {"c10/util/Half.h": "#pragma once\nstruct Half {};\n", "ATen/ATen.h": "#include <c10/util/Half.h>\n"}


def test_same_headers_in_two_venvs_map_to_one_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(tmp_path / "cache"))
    a = header_map(fake_torch(tmp_path / "py311", HEADERS), "2.14.1+cu130")
    b = header_map(fake_torch(tmp_path / "py312", HEADERS), "2.14.1+cu130")
    assert a.how == b.how == "RECORD" and a.digest == b.digest and a.target == b.target
    assert a.source != b.source and a.target.startswith(str(tmp_path / "cache" / "torch-include" / "2.14.1_cu130-"))
    assert not Path(a.target).exists()  # the plan only names it; the first nvcc unit copies
    other = header_map(fake_torch(tmp_path / "other", {**HEADERS, "ATen/ATen.h": "// changed\n"}), "2.14.1+cu130")
    assert other.target != a.target


def test_a_header_changed_after_install_is_hashed_from_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(tmp_path / "cache"))
    f = fake_torch(tmp_path / "a", HEADERS)
    clean = header_map(f, "2.14.1")
    (Path(f).parent / "include" / "ATen" / "ATen.h").write_text("#include <c10/util/Half.h>\n// edited\n")
    edited = header_map(f, "2.14.1")
    assert edited.how == "files" and edited.target != clean.target
    norecord = header_map(fake_torch(tmp_path / "b", HEADERS, record=False), "2.14.1")
    assert norecord.how == "files" and header_map(fake_torch(tmp_path / "c", HEADERS, record=False), "2.14.1") == \
        torch_headers.HeaderMap(str(tmp_path / "c" / "torch" / "include"), norecord.target, norecord.digest, "files")
    assert header_map(None, "2.14.1") is None
    assert header_map(str(tmp_path / "nothing" / "torch" / "__init__.py"), "2.14.1") is None


def test_rewrite_moves_only_this_torchs_include_dirs():
    src, dst = "/v/site/torch/include", "/c/torch-include/x/include"
    argv = ["ccache", "nvcc", f"-I{src}", f"-I{src}/torch/csrc/api/include", "-I/usr/local/cuda/include",
            "-I/v/site/torch/include2", "-isystem", f"{src}/x", f"-isystem{src}", "-I", src,
            f"--include-path={src}/y", "-c", "a.cu", "-o", f"{src}/not-an-include.o"]
    assert rewrite(argv, src + "/", dst) == [
        "ccache", "nvcc", f"-I{dst}", f"-I{dst}/torch/csrc/api/include", "-I/usr/local/cuda/include",
        "-I/v/site/torch/include2", "-isystem", f"{dst}/x", f"-isystem{dst}", "-I", dst,
        f"--include-path={dst}/y", "-c", "a.cu", "-o", f"{src}/not-an-include.o"]


def test_the_launcher_copies_once_then_runs_the_rewritten_command(tmp_path):
    src = tmp_path / "site" / "torch" / "include"
    (src / "c10").mkdir(parents=True)
    (src / "c10" / "a.h").write_text("x")
    dst = tmp_path / "cache" / "torch-include" / "v-1" / "include"
    argv = [sys.executable, "-m", "mamba_build.build.torch_headers", "--map", f"{src}={dst}", "--",
            "printf", "%s\\n", f"-I{src}", f"-I{src}/c10", "-O3"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [f"-I{dst}", f"-I{dst}/c10", "-O3"]
    assert (dst / "c10" / "a.h").read_text() == "x" and [p.name for p in dst.parent.iterdir()] == ["include"]
    bad = subprocess.run([sys.executable, "-m", "mamba_build.build.torch_headers", "nvcc"], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).parents[2])
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_launcher_puts_the_rewrite_in_front_of_nvcc(tmp_path, monkeypatch):
    from mamba_build.plan import launcher

    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(tmp_path / "cache"))
    a = tmp_path / "bin"
    a.mkdir()
    (a / "ccache").write_text("#!/bin/sh\necho 'ccache version 4.7.5'\n")
    (a / "ccache").chmod(0o755)
    m = header_map(fake_torch(tmp_path / "site", HEADERS), "2.14.1")
    got = launcher.resolve("ccache", nvcc="/opt/cuda/bin/nvcc", use_ninja=True, cpp_extension_text=None,
                           environ={"PATH": str(a)}, headers=m, build_dir=str(tmp_path / "cache" / "builds"))
    # the base dir covers the builds and the headers' copy: CI jobs with caches at different paths hash alike
    assert got.env["CCACHE_BASEDIR"] == str(tmp_path / "cache")
    import shlex

    argv = shlex.split(got.env["PYTORCH_NVCC"])
    assert argv[:3] == [sys.executable, "-m", "mamba_build.build.torch_headers"]
    assert argv[-3:] == ["--", str(a / "ccache"), "/opt/cuda/bin/nvcc"] and f"{m.source}={m.target}" in argv
    assert "hit across Python versions" in got.reason
    plain = launcher.resolve("ccache", nvcc="/opt/cuda/bin/nvcc", use_ninja=True, cpp_extension_text=None,
                             environ={"PATH": str(a)}, build_dir="/b/builds")
    assert shlex.split(plain.env["PYTORCH_NVCC"]) == [str(a / "ccache"), "/opt/cuda/bin/nvcc"]
    assert plain.env["CCACHE_BASEDIR"] == "/b/builds"
    apart = launcher.resolve("ccache", nvcc="/opt/cuda/bin/nvcc", use_ninja=True, cpp_extension_text=None,
                             environ={"PATH": str(a)}, headers=m, build_dir="/elsewhere/builds")
    assert apart.env["CCACHE_BASEDIR"] == "/elsewhere/builds"  # never "/": only the builds are made relative


@pytest.mark.parametrize("choice", ["none"])
def test_no_launcher_no_header_copy(tmp_path, monkeypatch, choice):
    from dataclasses import replace

    from mamba_build.plan import launcher
    from mamba_build.plan.build_plan import CompileOptions, resolve_plan
    from tests.unit.envs import make_env

    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(tmp_path / "cache"))
    env = make_env()
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch,
                                                                 file=fake_torch(tmp_path / "site", HEADERS))))
    plan = resolve_plan(CompileOptions(arch="9.0", versions={"causal-conv1d": "1.7.0"}, packages=("causal-conv1d",)),
                        env)
    none = launcher.with_launcher(plan, choice, env)
    assert "PYTORCH_NVCC" not in none.launcher_env and not (tmp_path / "cache" / "torch-include").exists()


def test_cpath_dirs_are_mapped_too(tmp_path, monkeypatch):
    """The CUDA math headers the plan adds through CPATH (torch's nvidia-* packages, one copy per venv) get one path
    per content as well; the launcher rewrites CPATH before ccache hashes it."""
    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(tmp_path / "cache"))
    dirs = []
    for venv in ("py311", "py312"):
        d = tmp_path / venv / "nvidia" / "cu13" / "include"
        d.mkdir(parents=True)
        (d / "cublas_v2.h").write_text("// cublas\n")
        dirs.append(str(d))
    maps = [torch_headers.header_maps(fake_torch(tmp_path / f"site{k}", HEADERS), "2.14.1", [d]) for k, d in enumerate(dirs)]
    assert [len(m) for m in maps] == [2, 2] and maps[0][1].target == maps[1][1].target != maps[0][0].target
    assert "/cpath-" in maps[0][1].target and torch_headers.dir_map(str(tmp_path / "none")) is None
    src = dirs[1]
    env = dict(__import__("os").environ, CPATH=f"{src}:/other/include")
    argv = [sys.executable, "-m", "mamba_build.build.torch_headers", *[a for m in maps[1] for a in ("--map", f"{m.source}={m.target}")],
            "--", "sh", "-c", 'echo "$CPATH"; echo "$0"', f"-I{maps[1][0].source}/c10"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    cpath, arg = out.stdout.split("\n")[:2]
    assert cpath == f"{maps[1][1].target}:/other/include" and arg == f"-I{maps[1][0].target}/c10"
    assert Path(maps[1][1].target, "cublas_v2.h").read_text() == "// cublas\n"
