"""install.py: choosing the index's wheel for exactly this environment, and refusing everything else.

Selection is tested on constructed records (every reason a candidate does not fit) and on a real file://
index of pip-built, stamped wheels (reading it back, the tampered wheel, --no-build, doctor's view).
The end-to-end install of real extension wheels into real torch environments is
tests/integration/test_install_index_real.py."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from mamba_build.commands import doctor as doctor_cmd
from mamba_build.diagnose.probes.gpu import GpuInfo
from mamba_build.dist import index, install, provenance
from mamba_build.dist.manifest import WheelRecord
from mamba_build.errors import EnvironmentProblem, SourceError, UsageError
from tests.unit.envs import make_env
from tests.unit.wheel_factory import prov, stamped


def record(filename: str, torch="2.14.1+cu130", cuda="13.0", abi=True, sass=(80, 90), ptx=(90,)) -> WheelRecord:
    return WheelRecord(filename=filename, sha256="0" * 64, size=1, package=filename.split("-")[0].replace("_", "-"),
                       version=filename.split("-")[1], python_tag="cp311", torch_version=torch, torch_cuda=cuda,
                       cxx11_abi=abi, archs_sass=tuple(sass), archs_ptx=tuple(ptx), toolkit_version=cuda,
                       host_compiler="g++ 12", flags=(), source_sha256=None, source_origin=None, build_seconds=1.0,
                       mamba_build_version="t")


CP311 = "cp311-cp311-linux_x86_64.whl"


def test_target_from_the_environment():
    t = install.target_from_env(make_env())
    assert t.channel.name == "cu13-torch2.14-cxx11abiTRUE" and t.gpus == (("NVIDIA H100 80GB HBM3", 90),)
    assert "cp311-cp311-linux_x86_64" in t.tags and "py3-none-any" in t.tags and "cp312-cp312-linux_x86_64" not in t.tags
    assert install.target_from_env(make_env(), arch="8.6").gpus == (("--arch 8.6", 86),)
    cpu = make_env()
    cpu = replace(cpu, python=replace(cpu.python, torch=replace(cpu.python.torch, cuda=None)))
    with pytest.raises(EnvironmentProblem, match="CPU-only"):
        install.target_from_env(cpu)


def test_every_reason_a_candidate_does_not_fit():
    t = install.target_from_env(make_env())
    cases = [
        (f"causal_conv1d-1.7.0+cu13torch2.14cxx11abitrue-{CP311}", {}, []),
        (f"causal_conv1d-1.7.0+cu13torch2.9cxx11abitrue-{CP311}", dict(torch="2.9.0"),
         ["built for torch 2.9, this environment has torch 2.14"]),
        (f"causal_conv1d-1.7.0+cu12torch2.14cxx11abitrue-{CP311}", dict(cuda="12.8"),
         ["built for CUDA 12, this torch is a CUDA 13 build"]),
        (f"causal_conv1d-1.7.0+cu13torch2.14cxx11abifalse-{CP311}", dict(abi=False),
         ["C++11 ABI off, this torch has it on"]),
        ("causal_conv1d-1.7.0+cu13torch2.14cxx11abitrue-cp312-cp312-linux_x86_64.whl", {}, ["this is Python 3.11.7"]),
        (f"causal_conv1d-1.6.0+cu13torch2.14cxx11abitrue-{CP311}", dict(sass=(80, 86), ptx=()),
         ["holds sm_80, sm_86: nothing that runs on NVIDIA H100 80GB HBM3 (sm_90)"]),
    ]
    for fn, kw, want in cases:
        cand = install.judge(record(fn, **kw), t, None)
        assert cand.fits == (not want), (fn, cand.problems)
        for w in want:
            assert any(w in p for p in cand.problems), (fn, cand.problems)
    # PTX JIT-compiles onto a newer GPU; SASS runs on the same major only
    assert install.judge(record(f"x-1+a-{CP311}", sass=(80,), ptx=(80,)), t, None).fits
    assert not install.judge(record(f"x-1+a-{CP311}", sass=(80, 86), ptx=()), t, None).fits


def test_the_newest_fitting_wheel_is_chosen_the_rest_say_why(tmp_path):
    from mamba_build.dist.manifest import Manifest

    m = Manifest()
    for fn, kw in ((f"causal_conv1d-1.7.0+cu13torch2.9cxx11abitrue-{CP311}", dict(torch="2.9.0")),
                   (f"causal_conv1d-1.7.0+cu13torch2.14cxx11abitrue-{CP311}", {}),
                   (f"causal_conv1d-1.6.0+cu13torch2.14cxx11abitrue-{CP311}", {})):
        m.add(record(fn, **kw))
    t = install.target_from_env(make_env())
    (choice,) = install.choose(m, t, ["causal-conv1d"], None)
    assert choice.chosen.record.filename.startswith("causal_conv1d-1.7.0+cu13torch2.14")
    assert choice.build_version == "1.7.0"
    (none,) = install.choose(m, replace(t, torch_version="2.5.1+cu124", torch_cuda="12.4", cxx11_abi=False),
                             ["causal-conv1d"], None)
    assert none.chosen is None and "no wheel in the index fits" in none.why_not()
    assert none.why_not().count("built for torch") == 3 and "CUDA 13, this torch is a CUDA 12 build" in none.why_not()
    assert install.default_packages(m) == ("causal-conv1d",)


# --- a real file:// index ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def built_index(tmp_path_factory):
    """Two stamped (pip-built) wheels of one project for torch 2.14 and 2.9, indexed (once)."""
    tmp = tmp_path_factory.mktemp("index")
    work, dist = tmp / "work", tmp / "root"
    a = stamped(work, dist, "mb_fixture", "0.3.0+cu13torch2.14cxx11abiTRUE", "mbf", prov("2.14.1+cu130", "13.0"),
                requires=("torch",))
    b = stamped(work, dist, "mb_fixture", "0.3.0+cu13torch2.9cxx11abiTRUE", "mbf", prov("2.9.0+cu130", "13.0"),
                requires=("torch",))
    index.build_index([dist])
    return dist, a.name, b.name


@pytest.fixture()
def real_index(built_index, tmp_path):
    """A copy of ``built_index`` this test may change."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(built_index[0], root)
    return root, root / built_index[1], root / built_index[2]


def no_gpu_target(**kw):
    env = make_env(gpus=GpuInfo(None, None, None, ()))
    return replace(install.target_from_env(env), **kw)


def test_resolve_reads_the_index_and_its_pages(real_index):
    root, a, b = real_index
    plan = install.resolve_install(str(root), target=no_gpu_target())  # a plain path works as well as file://
    (choice,) = plan.choices
    assert choice.package == "mb-fixture" and choice.chosen.record.filename == a.name
    assert choice.chosen.url == (root / a.name).resolve().as_uri().replace("+", "%2B") \
        or Path(install.unquote(choice.chosen.url[7:])) == (root / a.name).resolve()
    assert [c.problems for c in choice.candidates if c is not choice.chosen] == \
        [("built for torch 2.9, this environment has torch 2.14",)]
    text = install.render_plan(plan)
    assert f"install {a.name} (channel cu13-torch2.14-cxx11abiTRUE)" in text and "not checked" in text
    doc = plan.to_dict()
    assert doc["choices"][0]["action"] == "install" and doc["target"]["channel"] == "cu13-torch2.14-cxx11abiTRUE"
    json.dumps(doc)


def test_a_wheel_missing_from_its_channel_page_is_not_chosen(real_index):
    root, a, _b = real_index
    page = root / "simple" / "cu13-torch2.14-cxx11abiTRUE" / "mb-fixture" / "index.json"
    doc = json.loads(page.read_text())
    doc["files"] = []
    page.write_text(json.dumps(doc))
    (choice,) = install.resolve_install(root.as_uri(), target=no_gpu_target()).choices
    assert choice.chosen is None
    assert any("not listed on the channel page" in p for c in choice.candidates for p in c.problems)


def test_a_tampered_wheel_is_refused_before_anything_runs(real_index, tmp_path):
    root, a, _b = real_index
    plan = install.resolve_install(root.as_uri(), target=no_gpu_target())
    data = bytearray(a.read_bytes())
    data[len(data) // 2] ^= 0xFF
    a.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="tampered or corrupt") as err:
        install.fetch_wheel(plan.choices[0].chosen, tmp_path / "dl")
    assert "the index's manifest.json says" in err.value.message
    assert not list((tmp_path / "dl").iterdir())  # nothing kept


def test_no_build_refuses_with_every_reason(real_index):
    root, _a, _b = real_index
    plan = install.resolve_install(root.as_uri(), target=no_gpu_target(torch_version="2.5.1+cu124",
                                                                       torch_cuda="12.4", cxx11_abi=False),
                                   no_build=True)
    with pytest.raises(EnvironmentProblem) as err:
        install.execute_install(plan, log=lambda _m: None)
    assert err.value.exit_code == 3
    assert "built for torch 2.14, this environment has torch 2.5" in err.value.details
    assert "built for torch 2.9" in err.value.details and "channel cu12-torch2.5-cxx11abiFALSE" in err.value.fix


def test_provenance_in_the_wheel_outranks_a_wrong_manifest(real_index):
    _root, a, _b = real_index
    t = no_gpu_target(torch_version="2.9.0+cu130")
    assert "torch 2.14, this environment has torch 2.9" in install.check_provenance(a, t)
    assert install.check_provenance(a, no_gpu_target()) is None


def test_bad_urls_say_what_to_pass(tmp_path, real_index):
    root, _a, _b = real_index
    with pytest.raises(UsageError, match="no manifest.json") as err:
        install.resolve_install((root / "simple").as_uri(), target=no_gpu_target())
    assert "not simple/ or a channel" in err.value.fix
    with pytest.raises(UsageError, match="ftp"):
        install.resolve_install("ftp://x/y", target=no_gpu_target())


def test_doctor_index_url_says_what_it_would_install(real_index, capsys):
    root, a, _b = real_index
    env = make_env(gpus=GpuInfo(None, None, None, ()))
    plan, checks = doctor_cmd.index_check(env, root.as_uri())
    (check,) = checks
    assert check.id == "index:mb-fixture" and check.status.value == "ok" and a.name in check.summary
    env26 = replace(env, python=replace(env.python, torch=replace(env.python.torch, version="2.6.0+cu124",
                                                                  cuda="12.4", cxx11_abi=False)))
    _plan, (warned,) = doctor_cmd.index_check(env26, root.as_uri())
    assert warned.status.value == "warn" and "would build it" in warned.summary
    _plan, (failed,) = doctor_cmd.index_check(env, (root / "nope").as_uri())
    assert failed.status.value == "fail" and "no manifest.json" in failed.summary


def test_installed_provenance_check(tmp_path):
    """doctor: an installed extension whose dist-info says another torch fails, naming the difference."""
    from mamba_build.diagnose.checks.installed_extensions import provenance_checks
    from mamba_build.diagnose.probes.python_env import ExtensionInfo

    site = tmp_path / "site"
    dist_info = site / "causal_conv1d-1.7.0+cu13torch2.9cxx11abitrue.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / provenance.FILE_NAME).write_text(json.dumps(prov("2.9.0+cu130", "13.0")))
    so = site / "causal_conv1d_cuda.cpython-311-x86_64-linux-gnu.so"
    so.write_bytes(b"")
    ext = ExtensionInfo("causal_conv1d_cuda", "causal-conv1d", True, True, None, str(so))
    (check,) = provenance_checks(make_env(), ext)
    assert check.status.value == "fail" and "built for torch 2.9, this environment has torch 2.14" in check.summary
    (dist_info / provenance.FILE_NAME).write_text(json.dumps(prov("2.14.1+cu130", "13.0")))
    (check,) = provenance_checks(make_env(), ext)
    assert check.status.value == "ok" and "built by" in check.summary
    (dist_info / provenance.FILE_NAME).unlink()
    (check,) = provenance_checks(make_env(), ext)
    assert check.status.value == "skip" and "not built by mamba-build" in check.summary


def test_nothing_fits_builds_with_compile_pinned_to_the_index_version(real_index, monkeypatch):
    """The fallback is `compile`'s own resolve + execute, for exactly the packages nothing fits (the real build
    runs in tests/integration); here: what it is asked for."""
    import mamba_build.plan.resolve as resolve_mod

    root, _a, _b = real_index
    asked = {}

    class Stop(Exception):
        pass

    def fake_resolve(opts):
        asked["opts"] = opts
        raise Stop

    monkeypatch.setattr(resolve_mod, "resolve", fake_resolve)
    target = no_gpu_target(torch_version="2.6.0+cu124", torch_cuda="12.4", cxx11_abi=False)
    plan = install.resolve_install(root.as_uri(), target=target, arch="8.0", cuda="12.4")
    assert [c.package for c in plan.to_build] == ["mb-fixture"] and not plan.to_install
    assert "build    mb-fixture: build with `mamba-build compile` (mb-fixture==0.3.0)" in install.render_plan(plan)
    logged = []
    with pytest.raises(Stop):
        install.execute_install(plan, log=logged.append)
    opts = asked["opts"]
    assert opts.packages == ("mb-fixture",) and opts.versions == {"mb-fixture": "0.3.0"}
    assert opts.python == target.python and opts.arch == "8.0" and opts.cuda == "12.4" and opts.install
    assert any("built for torch 2.14, this environment has torch 2.6" in m for m in logged)
    # a --source replaces the version pin (the tree says its version)
    plan = replace(plan, sources={"mb-fixture": "/src/fixture"})
    with pytest.raises(Stop):
        install.execute_install(plan, log=logged.append)
    assert asked["opts"].sources == {"mb-fixture": "/src/fixture"} and asked["opts"].versions == {}


def test_an_index_served_over_http(real_index, tmp_path):
    """The same index through a web server (loopback): pages and wheel fetched over HTTP, 404 understood."""
    import functools
    import http.server
    import threading

    root, a, _b = real_index
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args, **kw: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        plan = install.resolve_install(url, target=no_gpu_target())
        (choice,) = plan.choices
        assert choice.chosen.record.filename == a.name and choice.chosen.url.startswith("http://127.0.0.1")
        got = install.fetch_wheel(choice.chosen, tmp_path / "dl")
        assert got.read_bytes() == a.read_bytes()
        with pytest.raises(UsageError, match="no manifest.json"):
            install.resolve_install(url + "simple/", target=no_gpu_target())
    finally:
        server.shutdown()
        server.server_close()


def test_source_options_of_the_command(real_index):
    from mamba_build.commands.install import _sources, _with_bare_source

    assert _sources(["mb-fixture=/src/fx", "/src/other", "git+https://h/r.git@v1"]) == \
        ({"mb-fixture": "/src/fx"}, ["/src/other", "git+https://h/r.git@v1"])
    root, _a, _b = real_index
    target = no_gpu_target(torch_version="2.6.0+cu124", torch_cuda="12.4", cxx11_abi=False)
    plan = install.resolve_install(root.as_uri(), target=target)
    assert _with_bare_source(plan, ["/src/fx"]).sources == {"mb-fixture": "/src/fx"}
    assert _with_bare_source(install.resolve_install(root.as_uri(), target=no_gpu_target()), ["/x"]).sources == {}
    with pytest.raises(UsageError, match="ambiguous"):
        _with_bare_source(plan, ["/a", "/b"])
