"""benchmarks/sass_parity.py on real nvcc output: the same code is IDENTICAL, a changed kernel,
a missing kernel or a missing arch is caught (exit 1)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from tests.unit.wheel_factory import KERNEL

pytestmark = pytest.mark.toolchain  # real nvcc: the toolkit provisioned by tests/conftest.py::cuda_home

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sass_parity.py"
spec = importlib.util.spec_from_file_location("sass_parity", SCRIPT)
sass_parity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sass_parity)


def _obj(tmp: Path, name: str, source: str, gencode=("-gencode", "arch=compute_90,code=sm_90"), *, nvcc: Path) -> Path:
    src = tmp / f"{name}.cu"
    src.write_text(source)
    out = tmp / f"{name}.o"
    subprocess.run([str(nvcc), *gencode, "-c", str(src), "-o", str(out)], check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def objs(tmp_path_factory, cuda_home):
    from mamba_build.dist.fatbin import find_cuobjdump

    if find_cuobjdump() is None:  # a toolkit without it (pip-assembled) and no Triton: skipped, an error under CI=true
        pytest.skip("no cuobjdump on this machine (the CUDA toolkit's, or Triton's: it comes with torch)")
    nvcc = cuda_home / "bin" / "nvcc"
    tmp = tmp_path_factory.mktemp("sass")
    changed = KERNEL.replace("a[i] += b[i];", "a[i] += 2.0f * b[i];")
    extra = KERNEL + "__global__ void scale(float* a, int n) { int i = threadIdx.x; if (i < n) a[i] *= 3.0f; }\n"
    return {"a": _obj(tmp, "a", KERNEL, nvcc=nvcc), "same": _obj(tmp, "same", KERNEL, nvcc=nvcc),
            "changed": _obj(tmp, "changed", changed, nvcc=nvcc), "extra": _obj(tmp, "extra", extra, nvcc=nvcc),
            "two_archs": _obj(tmp, "two", KERNEL, ("-gencode", "arch=compute_80,code=sm_80",
                                                   "-gencode", "arch=compute_90,code=sm_90"), nvcc=nvcc)}


def test_same_source_is_identical(objs, capsys):
    assert sass_parity.main([str(objs["a"]), str(objs["same"])]) == 0
    assert "IDENTICAL" in capsys.readouterr().out


def test_changed_or_missing_kernels_are_caught(objs, capsys):
    assert sass_parity.main([str(objs["a"]), str(objs["changed"])]) == 1
    assert "differing: 1" in capsys.readouterr().out
    assert sass_parity.main([str(objs["a"]), str(objs["extra"])]) == 1
    assert "only in B: 1" in capsys.readouterr().out


def test_each_gencode_is_compiled_on_its_own(objs):
    """Why upstream's 9-arch build has the same sm_90 code as an sm_90-only build with its flags."""
    assert sass_parity.main([str(objs["two_archs"]), str(objs["a"])]) == 0
    assert sass_parity.main([str(objs["two_archs"]), str(objs["a"]), "--arch", "80"]) == 1


def test_wheels_are_read_and_an_absent_arch_is_a_usage_error(cuda_so, objs, tmp_path):
    assert sass_parity.main([str(cuda_so), str(cuda_so)]) == 0
    assert sass_parity.main([str(objs["a"]), str(objs["a"]), "--arch", "75"]) == 2
    assert sass_parity.main([str(tmp_path / "nope.o"), str(objs["a"])]) == 2
