"""Probes over fake executables on PATH: wrappers, symlinks, garbage output, nvidia-smi, gcc."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mamba_build.diagnose.probes import compilers, gpu, python_env, toolkits
from tests.unit import fakes


@pytest.fixture
def no_system_toolkits(monkeypatch, tmp_path, isolated_cache):
    monkeypatch.setattr(toolkits, "SYSTEM_GLOBS", (str(tmp_path / "sys" / "cuda*"),))
    for var in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT", "CUDA_TOOLKIT_ROOT_DIR", "CONDA_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_wrapper_script_is_seen_through(no_system_toolkits, monkeypatch):
    tmp = no_system_toolkits
    real = fakes.make_toolkit(tmp / "sys" / "cuda-13.0", "13.0")
    wrap_bin = tmp / "usr-local" / "bin"
    fakes.make_wrapper(wrap_bin, real / "bin" / "nvcc")
    env = {"PATH": fakes.path_with(wrap_bin)}
    found, on_path = toolkits.candidate_homes(env, extra_site_dirs=[])
    assert on_path.via_wrapper and on_path.resolved == str(real / "bin" / "nvcc")
    assert os.path.realpath(real) in found
    assert any("wrapper" in s for s in found[os.path.realpath(real)])
    # torch, by contrast, takes dirname(dirname(which nvcc)) = the wrapper's prefix
    guess, how = python_env.torch_cuda_home_guess({"PATH": env["PATH"]})
    assert guess == str(tmp / "usr-local") and "which nvcc" in how


def test_symlink_chain_is_resolved(no_system_toolkits):
    tmp = no_system_toolkits
    real = fakes.make_toolkit(tmp / "sys" / "cuda-12.4", "12.4", gcc_max=13)
    link_dir = tmp / "links"
    link_dir.mkdir()
    (link_dir / "nvcc").symlink_to(real / "bin" / "nvcc")
    found, on_path = toolkits.candidate_homes({"PATH": str(link_dir)}, extra_site_dirs=[])
    assert on_path.resolved == str(real / "bin" / "nvcc") and not on_path.via_wrapper
    assert os.path.realpath(real) in found


def test_describe_reads_version_archs_and_host_config(no_system_toolkits):
    home = fakes.make_toolkit(no_system_toolkits / "sys" / "cuda-11.8", "11.8", "11.8.89", gcc_max=11,
                              clang_max=14, archs=(35, 50, 70, 80, 86, 89, 90))
    tk = toolkits.describe(str(home), ["test"])
    assert (tk.version, tk.version_full) == ("11.8", "11.8.89")
    assert tk.archs == (35, 50, 70, 80, 86, 89, 90) and tk.archs_source == "nvcc --list-gpu-arch"
    assert tk.gcc_max == 11 and tk.clang_max == 14
    assert tk.usable and tk.has_cub


def test_garbage_nvcc_output_does_not_crash(no_system_toolkits):
    home = fakes.make_toolkit(no_system_toolkits / "sys" / "cuda-x", version_output="\x00\xff garbage\n" * 50)
    tk = toolkits.describe(str(home), ["test"])
    assert tk.version is None and not tk.usable


def test_nvcc_that_hangs_is_timed_out(no_system_toolkits):
    home = no_system_toolkits / "sys" / "cuda-hang"
    fakes.make_toolkit(home)
    fakes.write_exe(home / "bin" / "nvcc", "#!/bin/sh\nexec /bin/sleep 30\n")
    tk = toolkits.describe(str(home), ["test"], timeout=1)
    assert tk.version is None and tk.nvcc_error


def test_cuda_home_pointing_nowhere_is_reported(no_system_toolkits):
    found, _ = toolkits.candidate_homes({"CUDA_HOME": "/nonexistent/cuda", "PATH": ""}, extra_site_dirs=[])
    assert "/nonexistent/cuda" in found
    tk = toolkits.describe("/nonexistent/cuda", found["/nonexistent/cuda"])
    assert not tk.usable and tk.nvcc is None


def test_site_packages_and_managed_toolkits_found(no_system_toolkits, isolated_cache):
    site = no_system_toolkits / "site-packages"
    fakes.make_toolkit(site / "nvidia" / "cuda_nvcc", "12.8", gcc_max=14)
    fakes.make_toolkit(isolated_cache / "toolchains" / "cuda-11.8", "11.8", gcc_max=11)
    found, _ = toolkits.candidate_homes({"PATH": ""}, extra_site_dirs=[str(site)])
    sources = {Path(k).name: v for k, v in found.items()}
    assert "site-packages nvidia/cuda_nvcc" in sources["cuda_nvcc"]
    assert "mamba-build toolchain" in sources["cuda-11.8"]


def test_nvidia_smi_parsing(tmp_path, monkeypatch):
    fakes.make_nvidia_smi(tmp_path, [("NVIDIA H100 80GB HBM3", "9.0"), ("NVIDIA A100", "8.0")])
    monkeypatch.setenv("PATH", fakes.path_with(tmp_path))
    info = gpu.probe_gpus()
    assert info.driver_version == "580.159.04" and info.driver_cuda == "13.0"
    assert [(g.name, g.compute_capability) for g in info.gpus] == [("NVIDIA H100 80GB HBM3", "9.0"),
                                                                   ("NVIDIA A100", "8.0")]


def test_nvidia_smi_failing_is_reported(tmp_path, monkeypatch):
    fakes.write_exe(tmp_path / "nvidia-smi", "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not "
                    "communicate with the NVIDIA driver.' >&2\nexit 9\n")
    monkeypatch.setenv("PATH", fakes.path_with(tmp_path))
    info = gpu.probe_gpus()
    assert info.gpus == () and "could not communicate" in info.error


def test_gpu_query_garbage_lines_ignored():
    gpus, driver = gpu.parse_query("garbage\n0, H100, [N/A], 580.1, 80000\n\x00\x01\n")
    assert len(gpus) == 1 and gpus[0].compute_capability is None and driver == "580.1"


def test_compilers_found_with_versions(tmp_path):
    fakes.make_gcc(tmp_path, "12.2.0")
    fakes.make_gcc(tmp_path, "11.4.0", names=("gcc-11", "g++-11"))
    found = compilers.probe_compilers(path=fakes.path_with(tmp_path))
    versions = sorted(c.version for c in found if c.kind == "gcc")
    assert versions == [(11, 4, 0), (12, 2, 0)]
    assert all(c.cxx for c in found)


def test_torch_bounds_read_without_importing_torch(tmp_path):
    src = tmp_path / "cpp_extension.py"
    src.write_text(textwrap.dedent("""
        MINIMUM_GCC_VERSION = (5, 0, 0)
        MINIMUM_CLANG_VERSION = (3, 3, 0)
        CUDA_GCC_VERSIONS: VersionMap = {
            '11.8': (MINIMUM_GCC_VERSION, (12, 0)),
            '13.0': ((6, 0, 0), (16, 0)),
        }
        CUDA_CLANG_VERSIONS = {'13.0': ((7, 0), (21, 0))}
    """))
    gcc_b, clang_b = python_env.read_compiler_bounds(src)
    assert gcc_b == {"11.8": ((5, 0, 0), (12, 0)), "13.0": ((6, 0, 0), (16, 0))}
    assert clang_b == {"13.0": ((7, 0), (21, 0))}


def test_child_survives_broken_torch(tmp_path, monkeypatch):
    """A torch that raises on import must not crash the doctor: the error is reported."""
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise OSError('libtorch_cuda.so: cannot open shared object file')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    info = python_env.probe_python_env(sys.executable, extensions=True)
    assert info.version and not info.torch.importable
    assert "libtorch_cuda.so" in (info.torch.error or "")


@pytest.mark.skipif(not Path("/usr/bin/gcc").exists(), reason="needs gcc to build a .so")
def test_extension_with_undefined_symbol_is_diagnosed(tmp_path, monkeypatch):
    """A real shared object whose import fails with `undefined symbol`, as after a torch upgrade."""
    pytest.importorskip("torch")  # the child tries extension imports only after torch imports
    src = tmp_path / "ext.c"
    src.write_text(textwrap.dedent("""
        extern void _ZN3c104cuda9SetDeviceEa(void);
        void *PyInit_selective_scan_cuda(void) { _ZN3c104cuda9SetDeviceEa(); return 0; }
    """))
    so = tmp_path / "selective_scan_cuda.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    info = python_env.probe_python_env(sys.executable, extensions=True)
    ext = next(e for e in info.extensions if e.module == "selective_scan_cuda")
    assert ext.present and ext.imports is False
    assert "undefined symbol: _ZN3c104cuda9SetDeviceEa" in ext.error
