"""mamba_build.build.ninja_pool: reading torch's build.ninja, the unit order, the environment check, the shim."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mamba_build.build import ninja_pool
from mamba_build.build.jobserver import find_ninja
from mamba_build.errors import BuildError

TORCH_STYLE = """ninja_required_version = 1.3
cxx = /usr/bin/g++
nvcc = /usr/local/cuda/bin/nvcc

cflags = -O3 -I/t/csrc
post_cflags = -std=c++20
cuda_cflags = -O3 --compiler-options ''"'"'-fPIC'"'"''
cuda_post_cflags = -gencode arch=compute_90,code=sm_90

rule compile
  command = $cxx -MMD -MF $out.d $cflags -c $in -o $out $post_cflags
  depfile = $out.d
  deps = gcc

rule cuda_compile
  depfile = $out.d
  deps = gcc
  command = $nvcc --generate-dependencies-with-compile --dependency-output $out.d $cuda_cflags -c $in -o $out $cuda_post_cflags



build /t/build/temp.x/csrc/a.o: compile /t/csrc/a.cpp
build /t/build/temp.x/csrc/my$ dir/b.o: cuda_compile /t/csrc/my$ dir/b.cu
build /t/build/temp.x/csrc/c.o: cuda_compile /t/csrc/c.cu | /t/csrc/c.h
  extra = 1
"""


def test_parse_keeps_the_header_and_every_edge():
    bf = ninja_pool.parse_build_file(TORCH_STYLE, "pkg")
    assert "rule cuda_compile" in bf.header and "cuda_post_cflags =" in bf.header and "build " not in bf.header
    assert [e.source for e in bf.edges] == ["/t/csrc/a.cpp", "/t/csrc/my dir/b.cu", "/t/csrc/c.cu"]
    assert bf.edges[1].outputs == ("/t/build/temp.x/csrc/my dir/b.o",)
    assert bf.edges[2].statement.endswith("  extra = 1")  # an edge's own variables stay with it


def test_order_is_longest_first_then_package_order():
    a = ninja_pool.parse_build_file(TORCH_STYLE, "a")
    b = ninja_pool.parse_build_file(TORCH_STYLE.replace("/t/", "/u/"), "b")
    cost = {"a.cpp": 5, "b.cu": 20, "c.cu": 5}
    edges = ninja_pool.order_edges({"a": a, "b": b}, lambda pkg, src: cost[src.rsplit("/", 1)[-1]], ["b", "a"])
    assert [(e.package, e.source.rsplit("/", 1)[-1]) for e in edges] == [
        ("b", "b.cu"), ("a", "b.cu"), ("b", "a.cpp"), ("b", "c.cu"), ("a", "a.cpp"), ("a", "c.cu")]


def test_environment_mismatch_names_the_variables_a_compiler_reads():
    base = {"PATH": "/x", "CPATH": "/i", "CAUSAL_CONV1D_FORCE_BUILD": "TRUE", "PIP_BUILD_TRACKER": "/1"}
    other = dict(base, CAUSAL_CONV1D_FORCE_BUILD="x", PIP_BUILD_TRACKER="/2")
    assert ninja_pool.compile_env_mismatch({"a": base, "b": other}) == []
    assert ninja_pool.compile_env_mismatch({"a": base, "b": dict(other, NVCC_APPEND_FLAGS="-G", CPATH="/j")}) == [
        "CPATH", "NVCC_APPEND_FLAGS"]


def test_the_pool_refuses_packages_whose_compile_environment_differs(tmp_path):
    pool = ninja_pool.NinjaPool(tmp_path / "pool", ["a", "b"], "/bin/true", sys.executable, 2, lambda p, s: 0.0)
    pool.prepare(tmp_path)
    for name, cpath in (("a", "/i"), ("b", "/j")):
        (tmp_path / f"{name}.ninja").write_text(TORCH_STYLE)
        pool.requests[name] = {"build_file": str(tmp_path / f"{name}.ninja"), "env": {"PATH": "/x", "CPATH": cpath}}
    with pytest.raises(BuildError) as err:
        pool.write_build()
    assert "CPATH" in str(err.value) and "--schedule sequential" in err.value.fix


def test_the_shim_passes_anything_but_a_build_to_the_real_ninja(tmp_path):
    real = find_ninja(sys.executable)
    if real.path is None:
        pytest.skip("no ninja here")
    pool = ninja_pool.NinjaPool(tmp_path / "pool", ["a"], real.path, sys.executable, 2, lambda p, s: 0.0)
    pool.prepare(tmp_path)
    out = subprocess.run([str(pool.bin / "ninja"), "--version"], capture_output=True, text=True, timeout=30,
                         env={"PATH": "/usr/bin:/bin", ninja_pool.PACKAGE_VAR: "a"}, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == real.version_text
    assert not list(pool.spool.iterdir())  # no request handed in


def test_echo_filter_drops_the_shims_copy_of_the_pool_output():
    seen = []
    handle = ninja_pool.echo_filter(seen.append)
    for line in ["  [1/2] live", f"  {ninja_pool.ECHO_BEGIN}", "  [1/2] again", f"  {ninja_pool.ECHO_END}", "  link"]:
        handle(line)
    assert seen == ["  [1/2] live", "  link"]


_OWNER = """
import sys, time
from mamba_build.build import ninja_pool
pool = ninja_pool.NinjaPool(sys.argv[1] + "/pool", ["a"], "/bin/false", sys.executable, 2, lambda p, s: 0.0)
pool.prepare(sys.argv[1])
print(pool.bin / "ninja", flush=True)
time.sleep(600)
"""


def _start_owner_and_shim(tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    shim = owner.stdout.readline().strip()
    work = tmp_path / "build"
    work.mkdir()
    (work / "build.ninja").write_text(TORCH_STYLE)
    proc = subprocess.Popen([shim, "-v", "-j", "2"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={"PATH": "/usr/bin:/bin", ninja_pool.PACKAGE_VAR: "a"})
    request = tmp_path / "pool" / "spool" / "a.request.json"
    deadline = time.monotonic() + 60
    while not request.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert request.exists(), "the shim never handed in its build file"
    return owner, proc


def test_the_shim_stops_when_the_process_that_runs_the_pool_is_killed(tmp_path):
    owner, proc = _start_owner_and_shim(tmp_path)
    try:
        time.sleep(1.5)
        assert proc.poll() is None, "the shim must wait while its pool's owner lives"
        owner.kill()  # SIGKILL: no clean-up of any kind in the owner
        owner.wait(30)
        start = time.monotonic()
        _, err = proc.communicate(timeout=30)
    finally:
        for p in (owner, proc):
            if p.poll() is None:
                p.kill()
    assert proc.returncode == 1 and time.monotonic() - start < 10
    assert f"(pid {owner.pid})" in err and "has ended" in err and "a's units" in err, err


def test_the_shim_takes_its_result_when_the_owner_finished_and_let_go(tmp_path):
    pool = ninja_pool.NinjaPool(tmp_path / "pool", ["a"], "/bin/false", sys.executable, 2, lambda p, s: 0.0)
    pool.prepare(tmp_path)
    work = tmp_path / "build"
    work.mkdir()
    (work / "build.ninja").write_text(TORCH_STYLE)
    proc = subprocess.Popen([str(pool.bin / "ninja"), "-v"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={"PATH": "/usr/bin:/bin", ninja_pool.PACKAGE_VAR: "a"})
    while not (pool.spool / "a.request.json").exists():
        time.sleep(0.05)
    pool.finish(0)  # writes the result, then lets go of the lock
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "has ended" not in err
