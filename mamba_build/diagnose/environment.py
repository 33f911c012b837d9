"""The environment model: every probe's data in one frozen object, gathered concurrently."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from mamba_build.diagnose.probes.compilers import Compiler, probe_compilers
from mamba_build.diagnose.probes.gpu import GpuInfo, probe_gpus
from mamba_build.diagnose.probes.python_env import PythonEnv, probe_python_env, torch_cuda_home_guess
from mamba_build.diagnose.probes.search_paths import IncludeDir, LibcudaInfo, probe_include_dirs, probe_libcuda
from mamba_build.diagnose.probes.system import PlatformInfo, Resources, probe_platform, probe_resources
from mamba_build.diagnose.probes.toolkits import NvccOnPath, Toolkit, conda_prefix_of, probe_toolkits


@dataclass(frozen=True)
class Environment:
    platform: PlatformInfo
    resources: Resources
    python: PythonEnv
    gpus: GpuInfo
    toolkits: tuple[Toolkit, ...]
    nvcc_on_path: NvccOnPath | None
    torch_cuda_home: str | None  # what torch's cpp_extension would pick
    torch_cuda_home_how: str
    compilers: tuple[Compiler, ...]
    probe_seconds: float
    include_dirs: tuple[IncludeDir, ...] = ()  # CPATH & co. (stray CUDA headers)
    libcuda: LibcudaInfo | None = None  # libcuda.so.1 as triton finds it (None: not probed)
    conda_prefixes: tuple[str, ...] = ()  # $CONDA_PREFIX and the conda environment of the target Python

    def toolkit_at(self, home: str | None) -> Toolkit | None:
        if not home:
            return None
        real = os.path.realpath(home)
        return next((t for t in self.toolkits if os.path.realpath(t.home) == real), None)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


def to_jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def conda_prefixes(python: str | None = None) -> tuple[str, ...]:
    """The conda environments in play: $CONDA_PREFIX (the activated one) and the one of ``python``."""
    found = [os.environ.get("CONDA_PREFIX") or None, conda_prefix_of(python)]
    return tuple(dict.fromkeys(p for p in found if p))


def gather(
    python: str | None = None, build_dir: str | os.PathLike[str] = ".", *, extensions: bool = True
) -> Environment:
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=5) as pool:
        f_py = pool.submit(probe_python_env, python, extensions=extensions)
        f_gpu = pool.submit(probe_gpus)
        f_tk = pool.submit(probe_toolkits, None, python)
        f_cc = pool.submit(probe_compilers, None, conda_prefixes(python))
        f_lc = pool.submit(probe_libcuda)
        platform_info = probe_platform()
        resources = probe_resources(build_dir)
        toolkits, on_path = f_tk.result()
        guess, how = torch_cuda_home_guess()
        env = Environment(
            platform=platform_info,
            resources=resources,
            python=f_py.result(),
            gpus=f_gpu.result(),
            toolkits=toolkits,
            nvcc_on_path=on_path,
            torch_cuda_home=guess,
            torch_cuda_home_how=how,
            compilers=f_cc.result(),
            probe_seconds=0.0,
            include_dirs=probe_include_dirs(),
            libcuda=f_lc.result(),
            conda_prefixes=conda_prefixes(python),
        )
    return Environment(**{**env.__dict__, "probe_seconds": round(time.monotonic() - start, 3)})
