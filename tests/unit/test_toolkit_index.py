"""Resolving a CUDA 13.x wheel set from the index: the selection logic on index listings shaped like PyPI's.

The real index is exercised by tests/integration/test_toolchain_resolve_real.py (every 13.x on PyPI).
"""

from __future__ import annotations

import json

import pytest

from mamba_build.build.sources import ProjectFile
from mamba_build.errors import SourceError, UsageError
from mamba_build.toolchain import toolkit_index, toolkits

# the shape of cuda_toolkit-13.x METADATA (both quote styles NVIDIA used: 13.0.x single, 13.2+ double)
METADATA = """Metadata-Version: 2.4
Name: cuda-toolkit
Version: 13.4.3
Provides-Extra: all
Requires-Dist: nvidia-cublas==13.8.0.4.*; (sys_platform == "linux" and platform_machine == "x86_64") and extra == "all"
Requires-Dist: nvidia-cuda-nvcc==13.4.92.*; (sys_platform == "linux" and platform_machine == "x86_64") and extra == "all"
Provides-Extra: cccl
Requires-Dist: nvidia-cuda-cccl==13.3.4.3.1.*; (sys_platform == "linux" and platform_machine == "x86_64" or sys_platform == "linux" and platform_machine == "aarch64") and extra == "cccl"
Provides-Extra: crt
Requires-Dist: nvidia-cuda-crt==13.4.92.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'crt'
Provides-Extra: cudart
Requires-Dist: nvidia-cuda-runtime==13.4.92.*; (sys_platform == "linux" and platform_machine == "x86_64" or sys_platform == "linux" and platform_machine == "aarch64") and extra == "cudart"
Provides-Extra: cuobjdump
Requires-Dist: nvidia-cuda-cuobjdump==13.4.92.*; (sys_platform == "linux" and platform_machine == "x86_64" or sys_platform == "linux" and platform_machine == "aarch64") and extra == "cuobjdump"
Provides-Extra: nvcc
Requires-Dist: nvidia-cuda-crt==13.4.92.*; (sys_platform == "linux" and platform_machine == "x86_64" or sys_platform == "linux" and platform_machine == "aarch64") and extra == "nvcc"
Requires-Dist: nvidia-cuda-nvcc==13.4.92.*; (sys_platform == "linux" and platform_machine == "x86_64" or sys_platform == "linux" and platform_machine == "aarch64") and extra == "nvcc"
Provides-Extra: nvvm
Requires-Dist: nvidia-nvvm==13.4.92.*; (sys_platform == "linux" and platform_machine == "x86_64" or sys_platform == "linux" and platform_machine == "aarch64") and extra == "nvvm"
Provides-Extra: nvtx
Requires-Dist: nvidia-nvtx==13.4.92.*; (sys_platform == "linux" and platform_machine == "x86_64") and extra == "nvtx"
"""

RULE = toolkit_index.rules()["13"]


def f(name: str, *, yanked=False, sha="ab" * 32, size=10) -> ProjectFile:
    return ProjectFile(name, f"https://files.example/{name}", sha, size, yanked)


def test_requirements_of_the_extras_one_per_project():
    reqs, extras = toolkit_index.requirements_of(METADATA, RULE["extras"], RULE["optional_extras"])
    got = {r.name: str(r.specifier) for r in reqs}
    assert got == {"nvidia-cuda-cccl": "==13.3.4.3.1.*", "nvidia-cuda-crt": "==13.4.92.*",
                   "nvidia-cuda-runtime": "==13.4.92.*", "nvidia-cuda-cuobjdump": "==13.4.92.*",
                   "nvidia-cuda-nvcc": "==13.4.92.*", "nvidia-nvvm": "==13.4.92.*"}
    assert extras == ["nvcc", "crt", "nvvm", "cudart", "cccl", "cuobjdump"]  # nvtx / all are not asked for


def test_optional_extra_may_be_absent_required_may_not():
    old = "\n".join(line for line in METADATA.splitlines() if "cuobjdump" not in line)  # 13.0 / 13.1 have none
    reqs, extras = toolkit_index.requirements_of(old, RULE["extras"], RULE["optional_extras"])
    assert "cuobjdump" not in extras and "nvidia-cuda-cuobjdump" not in {r.name for r in reqs}
    no_cccl = "\n".join(line for line in METADATA.splitlines() if "cccl" not in line)
    with pytest.raises(SourceError, match="no extra cccl"):
        toolkit_index.requirements_of(no_cccl, RULE["extras"])


def test_metapackage_newest_final_release_of_the_minor():
    files = [f("cuda_toolkit-13.4.0rc1-py2.py3-none-any.whl"), f("cuda_toolkit-13.4.1.0-py2.py3-none-any.whl"),
             f("cuda_toolkit-13.4.3-py2.py3-none-any.whl"), f("cuda_toolkit-13.4.4-py2.py3-none-any.whl", yanked=True),
             f("cuda_toolkit-13.5.0-py2.py3-none-any.whl"), f("cuda_toolkit-13.40.0-py2.py3-none-any.whl")]
    assert toolkit_index.pick_metapackage(files, "13.4").filename == "cuda_toolkit-13.4.3-py2.py3-none-any.whl"
    assert toolkit_index.pick_metapackage(files, "13.6") is None


def test_component_newest_allowed_for_this_platform():
    from packaging.requirements import Requirement

    files = [f("nvidia_cuda_nvcc-13.4.92-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"),
             f("nvidia_cuda_nvcc-13.4.92-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl"),
             f("nvidia_cuda_nvcc-13.4.92-py3-none-win_amd64.whl"),
             f("nvidia_cuda_nvcc-13.4.59-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"),
             f("nvidia_cuda_nvcc-13.5.37-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl")]
    import platform

    pick = toolkit_index.pick_component(files, Requirement("nvidia-cuda-nvcc==13.4.92.*"))
    assert pick.filename.startswith("nvidia_cuda_nvcc-13.4.92-") and platform.machine() in pick.filename
    assert toolkit_index.pick_component(files, Requirement("nvidia-cuda-nvcc==13.3.*")) is None


def test_resolve_from_an_index_listing(monkeypatch, tmp_path):
    """resolve() end to end on a fake index: the metapackage's wheel is read, each component picked with its sha256."""
    import io
    import platform
    import zipfile

    from mamba_build.build import sources

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cuda_toolkit-13.4.3.dist-info/METADATA", METADATA)
    wheel = buf.getvalue()
    import hashlib

    meta_sha = hashlib.sha256(wheel).hexdigest()
    arch = platform.machine()
    listing = {"cuda-toolkit": [f("cuda_toolkit-13.4.3-py2.py3-none-any.whl", sha=meta_sha)]}
    for name, version in [("nvidia_cuda_nvcc", "13.4.92"), ("nvidia_cuda_crt", "13.4.92"), ("nvidia_nvvm", "13.4.92"),
                          ("nvidia_cuda_runtime", "13.4.92"), ("nvidia_cuda_cccl", "13.3.4.3.1"),
                          ("nvidia_cuda_cuobjdump", "13.4.92")]:
        listing[name.replace("_", "-")] = [f(f"{name}-{version}-py3-none-manylinux2014_{arch}.whl", sha=name[-4:] * 16)]
    monkeypatch.setattr(sources, "list_project_files", lambda name, index_url=None: listing[name])
    monkeypatch.setattr(sources, "download_bytes", lambda url, what, sha: wheel if sha == meta_sha else b"")
    monkeypatch.setattr(sources, "_pip_config", lambda key: None)
    pins, lock = toolkit_index.resolve("13.4")
    assert pins.cuda == "13.4" and {w.name for w in pins.wheels} == {
        "nvidia-cuda-nvcc", "nvidia-cuda-crt", "nvidia-nvvm", "nvidia-cuda-runtime", "nvidia-cuda-cccl",
        "nvidia-cuda-cuobjdump"}
    cccl = next(w for w in pins.wheels if w.name == "nvidia-cuda-cccl")
    assert cccl.version == "13.3.4.3.1" and cccl.root == "nvidia/cu13" and cccl.files[0].sha256 == "cccl" * 16
    assert lock["metapackage"]["version"] == "13.4.3" and lock["metapackage"]["sha256"] == meta_sha
    assert {w["filename"] for w in lock["wheels"]} == {w.files[0].filename for w in pins.wheels}
    # the lock reads back to the same wheel set
    path = tmp_path / toolkit_index.LOCK_NAME
    path.write_text(json.dumps(lock))
    again, _ = toolkit_index.pins_from_lock(path, "13.4")
    assert again.wheels == pins.wheels
    with pytest.raises(UsageError, match="locks CUDA 13.4, not 13.5"):
        toolkit_index.pins_from_lock(path, "13.5")
    with pytest.raises(UsageError, match="no final cuda-toolkit release 13.6"):
        toolkit_index.resolve("13.6")


def test_pinned_release_lock_round_trip(tmp_path):
    pins = toolkits.release_pins("13.0")
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(toolkit_index.lock_data(pins, "pin table")))
    again, data = toolkit_index.pins_from_lock(path)
    assert again.wheels == pins.wheels and data["source"] == "pin table"


def test_offline_resolution_needs_a_lock(monkeypatch, isolated_cache, tmp_path):
    with pytest.raises(UsageError) as err:
        toolkits.release_for_install("13.4", find_links=tmp_path)
    assert "--lock FILE --find-links DIR" in err.value.fix
    # a pinned release needs no index
    pins, origin, lock = toolkits.release_for_install("13.0", find_links=tmp_path)
    assert origin == "pin table" and lock is None and pins == toolkits.release_pins("13.0")


def test_unknown_major_is_not_resolved():
    assert toolkit_index.resolvable("13.4") and not toolkit_index.resolvable("12.6")
    with pytest.raises(UsageError, match="12.6 is not a release mamba-build can install"):
        toolkits.release_for_install("12.6")
