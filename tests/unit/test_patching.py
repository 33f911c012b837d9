"""The patch engine and every setup.py recipe, on a synthetic setup.py shaped like upstream's."""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

import pytest

from mamba_build.build import patching
from mamba_build.build.patching import PatchOptions, Status, apply_patches, plan_patches
from mamba_build.errors import ExitCode, PatchError, UsageError
from tests.setup_recorder import gencode_of, record

# A small setup.py with the same shapes as the upstream template (written for this test).
SYNTHETIC = textwrap.dedent('''\
    import os
    import urllib.request
    import urllib.error
    from packaging.version import parse, Version
    from setuptools import setup, find_packages
    import subprocess
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel

    import torch
    from torch.utils.cpp_extension import BuildExtension, CUDAExtension, CUDA_HOME

    FORCE_BUILD = os.getenv("DEMO_FORCE_BUILD", "FALSE") == "TRUE"
    SKIP_CUDA_BUILD = os.getenv("DEMO_SKIP_CUDA_BUILD", "FALSE") == "TRUE"
    FORCE_CXX11_ABI = os.getenv("DEMO_FORCE_CXX11_ABI", "FALSE") == "TRUE"


    def get_cuda_bare_metal_version(cuda_dir):
        raw_output = subprocess.check_output([cuda_dir + "/bin/nvcc", "-V"], universal_newlines=True)
        output = raw_output.split()
        return raw_output, parse(output[output.index("release") + 1].split(",")[0])


    def append_nvcc_threads(nvcc_extra_args):
        return nvcc_extra_args + ["--threads", "4"]


    ext_modules = []
    if not SKIP_CUDA_BUILD:
        cc_flag = []
        _, bare_metal_version = get_cuda_bare_metal_version(CUDA_HOME)
        cc_flag.append("-gencode")
        cc_flag.append("arch=compute_70,code=sm_70")
        cc_flag.append("-gencode")
        cc_flag.append("arch=compute_80,code=sm_80")
        if bare_metal_version >= Version("11.8"):
            cc_flag.append("-gencode")
            cc_flag.append("arch=compute_90,code=sm_90")

        # HACK: The compiler flag -D_GLIBCXX_USE_CXX11_ABI is set to be the same as
        # torch._C._GLIBCXX_USE_CXX11_ABI
        if FORCE_CXX11_ABI:
            torch._C._GLIBCXX_USE_CXX11_ABI = True
        ext_modules.append(
            CUDAExtension(
                name="demo_cuda",
                sources=["csrc/demo.cpp", "csrc/demo_kernel.cu"],
                extra_compile_args={"cxx": ["-O3"], "nvcc": append_nvcc_threads(["-O3"] + cc_flag)},
            )
        )


    class CachedWheelsCommand(_bdist_wheel):
        def run(self):
            if FORCE_BUILD:
                return super().run()
            wheel_url, wheel_filename = "https://github.com/x/y/releases/demo.whl", "demo.whl"
            try:
                urllib.request.urlretrieve(wheel_url, wheel_filename)
            except urllib.error.HTTPError:
                super().run()


    setup(
        name="demo",
        ext_modules=ext_modules,
        cmdclass={"bdist_wheel": CachedWheelsCommand, "build_ext": BuildExtension}
        if ext_modules
        else {
            "bdist_wheel": CachedWheelsCommand,
        },
    )
''')

SETUP_RECIPES = [r.id for r in patching.load_recipes("mamba-ssm")]


@pytest.fixture
def tree(tmp_path) -> Path:
    t = tmp_path / "demo-1.0"
    t.mkdir()
    (t / "setup.py").write_text(SYNTHETIC)
    return t


def statuses(results):
    return {r.recipe: r.status for r in results}


def opts(**kw) -> PatchOptions:
    kw.setdefault("archs", ("9.0",))
    return PatchOptions(**kw)


def test_recipe_sets_are_the_documented_ones():
    assert SETUP_RECIPES == ["force-build", "skip-cuda-build-off", "keep-cuda-build-on", "cxx11-abi", "torch-compiler-map",
                             "gencode-strip", "gencode-plan", "allow-unsupported-compiler", "nvcc-threads",
                             "no-prebuilt-wheel", "no-ninja", "cxx-std", "split-bwd-launch"]
    assert [r.id for r in patching.load_recipes("causal-conv1d")] == SETUP_RECIPES[:-2] + ["split-bwd-units"]
    assert [r.id for r in patching.load_recipes("torch")] == ["torch-compiler-map-inplace"]


def test_default_options_apply_every_unconditional_recipe(tree):
    results = apply_patches(tree, "causal-conv1d", "1.7.0", opts())
    st = statuses(results)
    assert st == {
        "force-build": Status.APPLIED, "skip-cuda-build-off": Status.APPLIED,
        "keep-cuda-build-on": Status.SKIPPED_GENERATION, "cxx11-abi": Status.APPLIED,
        "torch-compiler-map": Status.SKIPPED_OPTION, "gencode-strip": Status.APPLIED,
        "gencode-plan": Status.APPLIED, "allow-unsupported-compiler": Status.SKIPPED_OPTION,
        "nvcc-threads": Status.APPLIED, "no-prebuilt-wheel": Status.APPLIED, "no-ninja": Status.SKIPPED_OPTION,
        "split-bwd-units": Status.SKIPPED_OPTION,
    }
    text = (tree / "setup.py").read_text()
    assert "FORCE_BUILD = True  # mamba-build:force-build" in text
    assert "SKIP_CUDA_BUILD = False  # mamba-build:skip-cuda-build-off" in text
    assert "FORCE_CXX11_ABI = False  # mamba-build:cxx11-abi" in text
    assert "sm_70" not in re.sub(r"#.*", "", text)  # only in the "(was ...)" comments
    assert "urlretrieve" not in text
    assert "with_options" not in text
    assert (tree / "setup.py.mamba-build-orig").read_text() == SYNTHETIC
    compile(text, "setup.py", "exec")
    # every recipe that applied left its marker
    for rid, s in st.items():
        assert (f"mamba-build:{rid}" in text) == (s is Status.APPLIED), rid
    # strip count: one per hard-coded pair
    assert next(r for r in results if r.recipe == "gencode-strip").matches == 3


def test_reapply_same_options_is_byte_identical_and_reports_already_applied(tree):
    o = opts(archs=("8.0", "9.0+PTX"), split_compile=2, use_ninja=False)
    apply_patches(tree, "causal-conv1d", "1.7.0", o)
    first = (tree / "setup.py").read_bytes()
    mtime = (tree / "setup.py").stat().st_mtime_ns
    results = apply_patches(tree, "causal-conv1d", "1.7.0", o)
    assert (tree / "setup.py").read_bytes() == first
    assert (tree / "setup.py").stat().st_mtime_ns == mtime  # not even rewritten
    st = statuses(results)
    assert {s for s in st.values()} == {Status.ALREADY_APPLIED, Status.SKIPPED_OPTION, Status.SKIPPED_GENERATION}
    assert st["no-ninja"] is Status.ALREADY_APPLIED


def test_changed_options_repatch_from_pristine(tree):
    apply_patches(tree, "causal-conv1d", "1.7.0", opts(archs=("8.0",), nvcc_threads=2))
    results = apply_patches(tree, "causal-conv1d", "1.7.0", opts(archs=("9.0",), nvcc_threads=8))
    text = (tree / "setup.py").read_text()
    assert '"--threads", "8"' in text and '"--threads", "2"' not in text
    assert "compute_80" not in re.sub(r"#.*", "", text)
    assert text.count("# mamba-build:gencode-plan begin") == 1
    st = statuses(results)
    assert st["gencode-plan"] is Status.APPLIED and st["nvcc-threads"] is Status.APPLIED
    assert st["force-build"] is Status.ALREADY_APPLIED  # unchanged by the new options
    # going back to the first options gives the first bytes again
    apply_patches(tree, "causal-conv1d", "1.7.0", opts(archs=("8.0",), nvcc_threads=2))
    again = (tree / "setup.py").read_text()
    tree2 = tree.parent / "other"
    tree2.mkdir()
    (tree2 / "setup.py").write_text(SYNTHETIC)
    apply_patches(tree2, "causal-conv1d", "1.7.0", opts(archs=("8.0",), nvcc_threads=2))
    assert again == (tree2 / "setup.py").read_text()


def test_dry_run_writes_nothing(tree):
    results = plan_patches(tree, "causal-conv1d", "1.7.0", opts())
    assert (tree / "setup.py").read_text() == SYNTHETIC
    assert not (tree / "setup.py.mamba-build-orig").exists()
    assert statuses(results)["force-build"] is Status.APPLIED


def test_missing_anchor_is_a_loud_patch_error(tree):
    (tree / "setup.py").write_text(SYNTHETIC.replace('["--threads", "4"]', '["-t", "4"]'))
    with pytest.raises(PatchError) as info:
        apply_patches(tree, "causal-conv1d", "9.9.9", opts())
    err = info.value
    assert err.exit_code == ExitCode.PATCH == 5
    for needle in ("nvcc-threads", "setup.py", "causal-conv1d 9.9.9", "--threads"):
        assert needle in err.message, needle
    assert "upstream changed" in err.fix and "--version" in err.fix
    # nothing was written: the error comes before any write
    assert not (tree / "setup.py.mamba-build-orig").exists()
    # non-strict plan reports it instead, and raise_for_missing turns it into the error
    results = plan_patches(tree, "causal-conv1d", "9.9.9", opts(), strict=False)
    assert statuses(results)["nvcc-threads"] is Status.ANCHOR_NOT_FOUND
    with pytest.raises(PatchError, match="nvcc-threads"):
        patching.raise_for_missing(results, tree, "causal-conv1d", "9.9.9")


def test_anchor_matching_too_often_is_an_error(tree):
    (tree / "setup.py").write_text(SYNTHETIC + '\nFORCE_BUILD = os.getenv("X_FORCE_BUILD", "FALSE") == "TRUE"\n')
    with pytest.raises(PatchError, match=r"force-build.*expected exactly 1.*2 match"):
        apply_patches(tree, "causal-conv1d", "1.0", opts())


def test_patched_file_without_pristine_is_refused(tree):
    apply_patches(tree, "causal-conv1d", "1.7.0", opts())
    (tree / "setup.py.mamba-build-orig").unlink()
    with pytest.raises(PatchError, match="pristine"):
        apply_patches(tree, "causal-conv1d", "1.7.0", opts())


def test_stub_run_gives_exactly_the_plans_gencode_threads_and_no_network(tree, tmp_path):
    variants = {
        "plain": opts(archs=("9.0",)),
        "ptx": opts(archs=("8.0", "9.0+PTX"), nvcc_threads=6, split_compile=3, use_ninja=False, cxx11_abi=True,
                    compiler_bounds={"13.0": ((6, 0, 0), (17, 0))}, clang_bounds={"13.0": ((7, 0), (22, 0))},
                    allow_unsupported_compiler=True),
        "arch-specific": opts(archs=("9.0a", "10.0f")),
    }
    files = {}
    for name, o in variants.items():
        t = tmp_path / name
        t.mkdir()
        (t / "setup.py").write_text(SYNTHETIC)
        apply_patches(t, "causal-conv1d", "1.7.0", o)
        files[name] = t / "setup.py"
    orig = tmp_path / "orig"
    orig.mkdir()
    (orig / "setup.py").write_text(SYNTHETIC)
    rec = record([*files.values(), orig / "setup.py"], tmp_path)

    plain = rec[str(files["plain"])]
    assert plain["ok"], plain
    assert gencode_of(plain["nvcc"]) == ["arch=compute_90,code=sm_90"]
    assert plain["nvcc"][-2:] == ["--threads", "4"]
    assert plain["use_ninja"] is True and plain["cxx11_abi"] is False
    assert plain["gcc_bounds"] == {"13.0": [[6, 0, 0], [16, 0]]}  # torch's own table untouched
    assert plain["wheel_urlretrieve_calls"] == 0 and plain["wheel_outcome"] == ["source build"]

    ptx = rec[str(files["ptx"])]
    assert ptx["ok"], ptx
    assert gencode_of(ptx["nvcc"]) == ["arch=compute_80,code=sm_80", "arch=compute_90,code=sm_90",
                                       "arch=compute_90,code=compute_90"]
    assert ptx["nvcc"].count("-gencode") == 3
    assert "-allow-unsupported-compiler" in ptx["nvcc"]
    assert ptx["nvcc"][-4:] == ["--threads", "6", "--split-compile", "3"]
    assert ptx["use_ninja"] is False
    assert ptx["cxx11_abi"] is True
    assert ptx["gcc_bounds"] == {"13.0": [[6, 0, 0], [17, 0]]}
    assert ptx["clang_bounds"] == {"13.0": [[7, 0], [22, 0]]}

    spec = rec[str(files["arch-specific"])]
    assert gencode_of(spec["nvcc"]) == ["arch=compute_90a,code=sm_90a", "arch=compute_100f,code=sm_100f"]

    # the unpatched file really would reach for GitHub and build the old list: the checks above bite
    o = rec[str(orig / "setup.py")]
    assert o["wheel_urlretrieve_calls"] == 1
    assert gencode_of(o["nvcc"]) == ["arch=compute_70,code=sm_70", "arch=compute_80,code=sm_80",
                                     "arch=compute_90,code=sm_90"]


def test_version_scoped_and_alternative_anchor_recipes(tree, tmp_path):
    pdir = tmp_path / "patches"
    pdir.mkdir()
    (pdir / "demo.toml").write_text(textwrap.dedent('''\
        [[recipe]]
        id = "old-only"
        description = "only for < 2"
        file = "setup.py"
        kind = "insert_after"
        versions = "<2"
        anchors = ['^import os$']
        template = 'OLD = True'

        [[recipe]]
        id = "alt"
        description = "second anchor alternative"
        file = "setup.py"
        kind = "insert_before"
        anchors = ['^this does not exist$', '^ext_modules = \\[\\]$']
        template = 'ALT = {archs}'
        '''))
    recipes = patching.load_recipes("demo", pdir)
    r1 = apply_patches(tree, "demo", "1.5", opts(archs=("8.0", "9.0")), recipes=recipes)
    assert statuses(r1) == {"old-only": Status.APPLIED, "alt": Status.APPLIED}
    text = (tree / "setup.py").read_text()
    assert "# mamba-build:old-only begin\nOLD = True\n# mamba-build:old-only end\n" in text
    assert "# mamba-build:alt begin\nALT = 8.0,9.0\n# mamba-build:alt end\next_modules = []" in text
    r2 = apply_patches(tree, "demo", "2.0", opts(archs=("8.0", "9.0")), recipes=recipes)
    assert statuses(r2) == {"old-only": Status.SKIPPED_VERSION, "alt": Status.ALREADY_APPLIED}
    assert "OLD = True" not in (tree / "setup.py").read_text()


# mamba's main branch (July 2026) replaced SKIP_CUDA_BUILD by KEEP_CUDA_BUILD (off unless "TRUE"): this line is
# the shape of ../shared/upstream/mamba-main-setup.py, written for this test
KEEP_LINE = 'KEEP_CUDA_BUILD = os.getenv("DEMO_KEEP_CUDA_BUILD", "FALSE") == "TRUE"'
SKIP_LINE = 'SKIP_CUDA_BUILD = os.getenv("DEMO_SKIP_CUDA_BUILD", "FALSE") == "TRUE"'
MAIN_GENERATION = SYNTHETIC.replace(SKIP_LINE, KEEP_LINE).replace("if not SKIP_CUDA_BUILD:", "if KEEP_CUDA_BUILD:")


def test_the_cuda_switch_of_either_generation_is_forced_on(tree, tmp_path):
    (tree / "setup.py").write_text(MAIN_GENERATION)
    st = statuses(apply_patches(tree, "mamba-ssm", "2.3.2.post1", opts()))
    assert st["keep-cuda-build-on"] is Status.APPLIED and st["skip-cuda-build-off"] is Status.SKIPPED_GENERATION
    text = (tree / "setup.py").read_text()
    assert f"KEEP_CUDA_BUILD = True  # mamba-build:keep-cuda-build-on (was: {KEEP_LINE})" in text
    again = statuses(apply_patches(tree, "mamba-ssm", "2.3.2.post1", opts()))
    assert again["keep-cuda-build-on"] is Status.ALREADY_APPLIED
    assert again["skip-cuda-build-off"] is Status.SKIPPED_GENERATION
    # the stubbed run: unpatched, main's generation builds NO extension; patched, it builds it
    orig = tmp_path / "orig"
    orig.mkdir()
    (orig / "setup.py").write_text(MAIN_GENERATION)
    rec = record([tree / "setup.py", orig / "setup.py"], tmp_path / "rec")
    assert rec[str(orig / "setup.py")]["ok"] and rec[str(orig / "setup.py")]["extensions"] == []
    assert rec[str(tree / "setup.py")]["extensions"] == ["demo_cuda"]


def test_a_file_of_neither_or_both_generations_is_a_loud_patch_error(tree):
    (tree / "setup.py").write_text(SYNTHETIC.replace(SKIP_LINE, 'BUILD_KERNELS = os.getenv("DEMO_KERNELS") == "1"'))
    with pytest.raises(PatchError) as info:
        apply_patches(tree, "mamba-ssm", "9.9.9", opts())
    assert "skip-cuda-build-off" in info.value.message and "keep-cuda-build-on" in info.value.message
    assert "group cuda-build-switch" in info.value.message and info.value.exit_code == ExitCode.PATCH
    assert not (tree / "setup.py.mamba-build-orig").exists()
    results = plan_patches(tree, "mamba-ssm", "9.9.9", opts(), strict=False)
    assert statuses(results)["skip-cuda-build-off"] is Status.ANCHOR_NOT_FOUND
    assert statuses(results)["keep-cuda-build-on"] is Status.ANCHOR_NOT_FOUND
    (tree / "setup.py").write_text(SYNTHETIC.replace(SKIP_LINE, SKIP_LINE + "\n" + KEEP_LINE))
    with pytest.raises(PatchError, match="alternatives for different generations"):
        apply_patches(tree, "mamba-ssm", "9.9.9", opts())


def test_group_rules_in_recipe_files(tmp_path):
    body = ('[[recipe]]\nid = "{id}"\ndescription = "d"\nfile = "{file}"\nkind = "append"\nanchors = ["x"]\n'
            'template = "y"\ngroup = "g"\n')
    (tmp_path / "two.toml").write_text(body.format(id="a", file="setup.py") + body.format(id="b", file="other.py"))
    with pytest.raises(PatchError, match="span several files"):
        patching.load_recipes("two", tmp_path)
    (tmp_path / "empty.toml").write_text(body.format(id="a", file="setup.py").replace('group = "g"', 'group = ""'))
    with pytest.raises(PatchError, match="non-empty string"):
        patching.load_recipes("empty", tmp_path)


@pytest.mark.parametrize("body, message", [
    ('kind = "regex_replace"\nanchors = ["x"]\ntemplate = "y"', "must carry the marker"),
    ('kind = "explode"\nanchors = ["x"]\ntemplate = "y"', "unknown kind"),
    ('kind = "append"\ntemplate = "y"', "no anchor"),
    ('kind = "append"\nanchors = ["("]\ntemplate = "y"', "not a valid regex"),
    ('kind = "append"\nanchors = ["x"]\ntemplate = "y"\nwhen = "colour"', "unknown option"),
])
def test_bad_recipes_are_rejected(tmp_path, body, message):
    (tmp_path / "bad.toml").write_text(f'[[recipe]]\nid = "r"\ndescription = "d"\nfile = "setup.py"\n{body}\n')
    with pytest.raises(PatchError, match=message):
        patching.load_recipes("bad", tmp_path)


def test_unknown_placeholder_is_an_error(tree, tmp_path):
    (tmp_path / "p.toml").write_text('[[recipe]]\nid = "r"\ndescription = "d"\nfile = "setup.py"\n'
                                     'kind = "insert_after"\nanchors = ["^import os$"]\ntemplate = "X = {nope}"\n')
    with pytest.raises(PatchError, match="unknown placeholder"):
        apply_patches(tree, "p", None, opts(), recipes=patching.load_recipes("p", tmp_path))


@pytest.mark.parametrize("text, expected", [
    ("9.0", ("9.0",)), ("8.0,9.0", ("8.0", "9.0")), ("8.0 9.0+PTX", ("8.0", "9.0+PTX")),
    ("9.0a;10.0", ("9.0a", "10.0")), ("9.0,9.0", ("9.0",)),
])
def test_arch_lists(text, expected):
    assert patching.parse_arch_list(text) == expected


@pytest.mark.parametrize("bad", ["", "90", "sm_90", "9", "9.0+ptx", "9.0,abc", "9.10", "compute_90"])
def test_malformed_arch_lists_are_usage_errors(bad):
    with pytest.raises(UsageError) as info:
        patching.parse_arch_list(bad)
    assert info.value.exit_code == 2


def test_gencode_flags():
    assert patching.gencode_flags(["8.6", "9.0+PTX"]) == [
        "-gencode", "arch=compute_86,code=sm_86",
        "-gencode", "arch=compute_90,code=sm_90", "-gencode", "arch=compute_90,code=compute_90"]


def test_option_validation():
    with pytest.raises(UsageError):
        PatchOptions(archs=())
    with pytest.raises(UsageError):
        PatchOptions(archs=("9.0",), nvcc_threads=0)
    with pytest.raises(UsageError):
        PatchOptions(archs=("9.0",), compiler_bounds={"13": ((6,), (16,))})
    with pytest.raises(UsageError):
        PatchOptions(archs=("9.0",), compiler_bounds={"13.0": ((16,), (6,))})
    assert PatchOptions(archs="8.0,9.0").archs == ("8.0", "9.0")


def test_cli_patch_dry_run_json_and_errors(tree, capsys, monkeypatch):
    from mamba_build import cli
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    (tree / "setup.py").write_text(SYNTHETIC.replace("import os\n", 'import os\nPACKAGE_NAME = "causal_conv1d"\n', 1))
    rc = cli.main(["patch", str(tree), "--arch", "9.0", "--cxx11-abi", "off", "--dry-run", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["package"] == "causal-conv1d" and out["dry_run"] is True
    assert {r["recipe"]: r["status"] for r in out["results"]}["force-build"] == "applied"
    assert not (tree / "setup.py.mamba-build-orig").exists()
    assert cli.main(["patch", str(tree), "--arch", "9,0", "--cxx11-abi", "off"]) == 2
    assert cli.main(["patch", str(tree), "--cxx11-abi", "off"]) == 2  # no arch at all
    assert cli.main(["patch", str(tree), "--arch", "8.0", "--no-ninja", "--cxx11-abi", "on"]) == 0
    text = (tree / "setup.py").read_text()
    assert "use_ninja=False" in text and "FORCE_CXX11_ABI = True" in text
    ast.parse(text)
    (tree / "setup.py.mamba-build-orig").write_text(SYNTHETIC.replace("urllib.request.urlretrieve", "fetch"))
    capsys.readouterr()
    assert cli.main(["patch", str(tree), "--arch", "8.0", "--cxx11-abi", "off", "--dry-run"]) == 5
    captured = capsys.readouterr()
    assert "anchor not found" in captured.out and "no-prebuilt-wheel" in captured.err
