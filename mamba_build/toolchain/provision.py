"""`compile` on a machine without a usable toolkit: which CUDA release to provision, and the toolkit-to-be.

When no usable toolkit of torch's CUDA major is found (or none of the ``--cuda X.Y`` asked for),
``compile`` (and ``wheels``) assemble one without root with ``toolchain install`` before the plan
is resolved, unless ``--no-provision``. :func:`decide` returns what to install and why (None:
nothing to do); :func:`planned_toolkit` describes the toolkit-to-be from the data tables, so that
``--dry-run`` resolves and prints the whole plan without downloading anything; :func:`provision`
installs it. The release: torch's CUDA X.Y itself when it can be installed (a pinned release, or
any release of a major resolved from the index), else the installable release of the same major
closest to it (torch's cpp_extension accepts a minor mismatch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from mamba_build import tables
from mamba_build.diagnose.environment import Environment
from mamba_build.diagnose.probes.toolkits import MATH_HEADERS, Toolkit
from mamba_build.toolchain import toolkits


@dataclass(frozen=True)
class Provision:
    cuda: str  # the release `toolchain install` assembles
    reason: str  # why it is needed
    home: str  # where it will be (the mamba-build cache)
    how: str  # what is downloaded, for the plan

    def to_dict(self) -> dict:
        return {
            "cuda": self.cuda,
            "reason": self.reason,
            "home": self.home,
            "how": self.how,
            "command": f"mamba-build toolchain install --cuda {self.cuda}",
        }


def installable(cuda: str) -> bool:
    from mamba_build.toolchain.toolkit_index import resolvable

    pins = toolkits.pinned_releases().get(cuda)
    if pins is not None:
        return pins.complete
    return resolvable(cuda) and tables.cuda_release(cuda) is not None


def release_for(cuda: str) -> tuple[str | None, str]:
    """(release to install for CUDA ``cuda``, why that one); None when nothing of its major can be installed."""
    if installable(cuda):
        return cuda, f"CUDA {cuda} itself"
    major = cuda.split(".")[0]
    same = [v for v in tables.known_cuda_versions() if v.split(".")[0] == major and installable(v)]
    if not same:
        return None, f"no CUDA {major}.x release can be installed without root ({toolkits.installable_text()})"
    minor = tables.version_tuple(cuda)[1]
    best = min(same, key=lambda v: (abs(tables.version_tuple(v)[1] - minor), -tables.version_tuple(v)[1]))
    return best, f"CUDA {cuda} cannot be installed without root; {best} is the closest of its major that can"


def _how(cuda: str) -> str:
    pins = toolkits.pinned_releases().get(cuda)
    if pins is not None and pins.source == "debian":
        return (
            f"the pinned Debian nvidia-cuda-toolkit .deb + NVIDIA's cu{cuda.split('.')[0]} wheels "
            f"(~{pins.download_bytes // 2**20} MB)"
        )
    if pins is not None:
        return f"NVIDIA's pinned PyPI wheels (~{pins.download_bytes // 2**20} MB)"
    return "NVIDIA's PyPI wheels of that release, resolved from the index (~110-130 MB)"


def decide(env: Environment, cuda: str | None) -> Provision | None:
    """What ``compile`` must provision for ``--cuda cuda`` (None: torch's), or None when a usable toolkit exists."""
    from mamba_build.diagnose.checks import resolve_target

    t = env.python.torch
    if not (t.importable and t.cuda):
        return None  # the plan refuses a CPU-only torch with its own message
    target = resolve_target(env, cuda)
    tk = target.toolkit
    if cuda:
        if tk is not None:
            return None
        release, why = (cuda, f"--cuda {cuda}") if installable(cuda) else (None, "")
        if release is None:
            return None  # the plan's error says what to do
        reason = f"no usable CUDA {cuda} toolkit found ({_found(env)})"
    else:
        if tk is not None and tk.version and tk.version.split(".")[0] == t.cuda.split(".")[0]:
            return None
        release, why = release_for(t.cuda)
        if release is None:
            return None
        reason = (
            f"no usable toolkit of torch's CUDA major {t.cuda.split('.')[0]} found ({_found(env)}); "
            f"torch is CUDA {t.cuda}: {why}"
        )
    return Provision(release, reason, str(toolkits.toolkit_dir(release)), _how(release))


def _found(env: Environment) -> str:
    found = sorted({f"{t.version} at {t.home}" for t in env.toolkits if t.usable})
    return "found: " + (", ".join(found) if found else "none")


def planned_toolkit(p: Provision, env: Environment) -> Toolkit:
    """The toolkit ``toolchain install`` will make, described from data/cuda.toml (for ``--dry-run``)."""
    rel = tables.cuda_release(p.cuda)
    home = Path(p.home)
    # install copies the math headers from the target environment's NVIDIA packages when it has them
    has_math = bool(env.python.nvidia_include_dirs)
    return Toolkit(
        home=p.home,
        sources=("to be provisioned: " + p.to_dict()["command"],),
        nvcc=str(home / "bin" / "nvcc"),
        version=p.cuda,
        version_full=None,
        nvcc_error=None,
        has_runtime_headers=True,
        has_cub=True,
        archs=rel.archs if rel else (),
        archs_source="table" if rel else "none",
        gcc_max=rel.gcc_max if rel else None,
        clang_max=rel.clang_max if rel else None,
        host_config=None,
        managed=True,
        missing_math_headers=() if has_math else MATH_HEADERS,
    )


def with_planned(env: Environment, p: Provision) -> Environment:
    """``env`` as it will be once ``p`` is installed (the planned toolkit added)."""
    return replace(env, toolkits=env.toolkits + (planned_toolkit(p, env),))


def provision(p: Provision, env: Environment, log=None) -> toolkits.ToolchainInfo:
    """``toolchain install --cuda p.cuda``; the math headers come from the target environment's NVIDIA packages."""
    if log:
        log(f"provisioning CUDA {p.cuda} with `mamba-build toolchain install --cuda {p.cuda}` ({p.how}): {p.reason}")
    headers = [Path(d) for d in env.python.nvidia_include_dirs if os.path.isdir(d)]
    return toolkits.install(p.cuda, math_headers_from=headers or None)
