"""The CI job matrix: one wheel build per (package, python, torch, CUDA, arch set).

The CI system runs the jobs (GitHub Actions ``strategy.matrix`` from ``fromJSON``, GitLab
``parallel:matrix``); mamba-build only expands the config into jobs. Config (TOML)::

    [wheels]
    packages = ["causal-conv1d", "mamba-ssm"]
    archs = ["8.0,9.0"]                # arch lists (one job each); PTX of the newest is added by `wheels`
    [wheels.versions]                  # optional version pins, read by `mamba-build wheels --config`
    causal-conv1d = "1.5.2"

    [matrix]
    python = ["3.11", "3.12"]
    torch = ["2.8.0", "2.14.1"]
    cuda = ["12.8", "13.0"]            # toolkit (container) and torch wheel CUDA, major.minor
    # package = [...], arch = [...]    # default: wheels.packages / wheels.archs
    [matrix.torch_cuda]                # CUDA builds of each torch minor; default: PyPI's (tables)
    "2.8" = ["12.6", "12.8", "12.9"]
    [[matrix.exclude]]                 # drop combinations (every given key must match)
    python = "3.13"
    torch = "2.5.1"

    [container]
    image = "nvidia/cuda:{cuda_full}-devel-ubuntu22.04"
    [container.cuda_full]              # image tag of each CUDA (default: X.Y.0)
    "13.0" = "13.0.1"
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from mamba_build import tables
from mamba_build.plan import archs
from mamba_build.errors import UsageError
from mamba_build.plan.packages import PACKAGES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GITHUB_MAX_JOBS = 256  # GitHub Actions: a matrix generates at most 256 jobs per workflow run
GITLAB_MAX_JOBS = 200  # GitLab CI: parallel:matrix generates at most 200 jobs
DEFAULT_IMAGE = "nvidia/cuda:{cuda_full}-devel-ubuntu22.04"
DEFAULT_ARCHS = ("8.0,9.0",)
KNOWN_PACKAGES = PACKAGES
JOB_KEYS = ("name", "package", "python", "torch", "cuda", "arch", "image", "torch_index", "artifact")
GITLAB_VARS = {
    "package": "MB_PACKAGE",
    "python": "MB_PYTHON",
    "torch": "MB_TORCH",
    "cuda": "MB_CUDA",
    "arch": "MB_ARCH",
    "image": "MB_IMAGE",
    "torch_index": "MB_TORCH_INDEX",
    "artifact": "MB_ARTIFACT",
}


@dataclass
class MatrixConfig:
    python: list[str]
    torch: list[str]
    cuda: list[str]
    packages: list[str]
    archs: list[str]
    versions: dict[str, str] = field(default_factory=dict)
    torch_cuda: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[dict[str, str]] = field(default_factory=list)
    image: str = DEFAULT_IMAGE
    cuda_full: dict[str, str] = field(default_factory=dict)
    source: str = "config"


def _strings(value: Any, key: str, source: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise UsageError(f"{source}: {key} must be a non-empty list", f'write e.g. {key} = ["..."]')
    out = []
    for item in value:
        if isinstance(item, list):  # an arch set written as a list: ["8.0", "9.0"]
            item = ",".join(str(x) for x in item)
        if isinstance(item, float):
            raise UsageError(
                f"{source}: {key} has the number {item}; versions must be quoted strings",
                f'write {key} = ["{item}"] (TOML reads 3.10 as 3.1)',
            )
        out.append(str(item).strip())
    return out


def normalize_arch_list(text: str) -> str:
    """'8.0;9.0+PTX' / '8.0 9.0' -> '8.0,9.0+PTX': the grammar of :mod:`mamba_build.plan.archs`, comma-joined."""
    return ",".join(archs.parse_arch_list(text))


def arch_numbers(arch_list: str) -> list[int]:
    return [archs.sm_number(a) for a in arch_list.split(",")]


def load_config(path: str | os.PathLike) -> MatrixConfig:
    """Parse and check a matrix config file (raises :class:`UsageError` with a fix)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(
            f"config file {p} does not exist", "pass --config with a TOML file (see docs/ci/README.md)"
        ) from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config {p}: {exc}", "fix the TOML syntax") from exc
    return config_from_dict(data, source=str(p))


def config_from_dict(data: Mapping[str, Any], source: str = "config") -> MatrixConfig:
    wheels = dict(data.get("wheels") or {})
    matrix = dict(data.get("matrix") or {})
    container = dict(data.get("container") or {})
    unknown = sorted(set(data) - {"wheels", "matrix", "container"})
    if unknown:
        raise UsageError(f"{source}: unknown table(s) {unknown}", "use [wheels], [matrix] and [container]")
    packages = _strings(matrix.get("package") or wheels.get("packages") or list(KNOWN_PACKAGES), "package", source)
    for pkg in packages:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", pkg):
            raise UsageError(f"{source}: {pkg!r} is not a package name", f"use e.g. {', '.join(KNOWN_PACKAGES)}")
    arch_lists = [
        normalize_arch_list(a)
        for a in _strings(matrix.get("arch") or wheels.get("archs") or list(DEFAULT_ARCHS), "arch", source)
    ]
    missing = [k for k in ("python", "torch", "cuda") if not matrix.get(k)]
    if missing:
        raise UsageError(
            f"{source}: [matrix] needs {', '.join(missing)}",
            'write e.g. python = ["3.11"], torch = ["2.14.1"], cuda = ["13.0"]',
        )
    cfg = MatrixConfig(
        python=_strings(matrix["python"], "python", source),
        torch=_strings(matrix["torch"], "torch", source),
        cuda=_strings(matrix["cuda"], "cuda", source),
        packages=packages,
        archs=arch_lists,
        versions={str(k): str(v) for k, v in (wheels.get("versions") or {}).items()},
        torch_cuda={
            str(k): _strings(v, f"torch_cuda.{k}", source) for k, v in (matrix.get("torch_cuda") or {}).items()
        },
        exclude=[{str(k): str(v) for k, v in e.items()} for e in (matrix.get("exclude") or [])],
        image=str(container.get("image", DEFAULT_IMAGE)),
        cuda_full={str(k): str(v) for k, v in (container.get("cuda_full") or {}).items()},
        source=source,
    )
    for v in cfg.python + cfg.torch + cfg.cuda:
        try:
            Version(v)
        except InvalidVersion as exc:
            raise UsageError(f"{source}: {v!r} is not a version", 'quote versions: "3.11", "2.14.1", "13.0"') from exc
    return cfg


def cuda_builds_of(torch_version: str, cfg: MatrixConfig) -> list[str] | None:
    """CUDA major.minor builds that exist for a torch release (config first, then the PyPI table)."""
    minor = tables.major_minor(torch_version)
    if minor in cfg.torch_cuda:
        return [tables.major_minor(c) for c in cfg.torch_cuda[minor]]
    default = tables.torch_pypi_cuda(torch_version)
    return [default] if default else None


@dataclass
class Expansion:
    jobs: list[dict[str, str]]
    skipped: list[str]  # why combinations were left out (for stderr)


def _artifact_name(job: Mapping[str, str]) -> str:
    arch = job["arch"].replace(".", "").replace(",", "-").replace("+PTX", "p")
    raw = f"wheels-{job['package']}-py{job['python']}-torch{job['torch']}-cu{job['cuda']}-sm{arch}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)


def expand(cfg: MatrixConfig) -> Expansion:
    jobs: list[dict[str, str]] = []
    skipped: list[str] = []
    for package, python, torch, cuda, arch in itertools.product(
        cfg.packages, cfg.python, cfg.torch, cfg.cuda, cfg.archs
    ):
        combo = {"package": package, "python": python, "torch": torch, "cuda": cuda, "arch": arch}
        label = f"{package} py{python} torch{torch} cu{cuda} {arch}"
        if any(all(combo.get(k) == v for k, v in ex.items()) for ex in cfg.exclude):
            skipped.append(f"{label}: excluded by config")
            continue
        builds = cuda_builds_of(torch, cfg)
        if builds is None:
            skipped.append(
                f"{label}: no known CUDA builds of torch {tables.major_minor(torch)} "
                f'(add [matrix.torch_cuda] "{tables.major_minor(torch)}" = [...])'
            )
            continue
        if tables.major_minor(cuda) not in builds:
            skipped.append(f"{label}: torch {tables.major_minor(torch)} has CUDA builds {', '.join(builds)} only")
            continue
        release = tables.cuda_release(cuda)
        if release is not None:
            unsupported = [a for a in arch_numbers(arch) if a not in release.archs]
            if unsupported:
                skipped.append(f"{label}: CUDA {cuda} cannot build sm_{', sm_'.join(map(str, unsupported))}")
                continue
        mm = tables.major_minor(cuda)
        full = cfg.cuda_full.get(mm, cuda if cuda.count(".") >= 2 else f"{mm}.0")
        job = {
            "name": label,
            **combo,
            "image": cfg.image.format(cuda=mm, cuda_full=full, python=python, torch=torch),
            "torch_index": f"https://download.pytorch.org/whl/cu{mm.replace('.', '')}",
        }
        job["artifact"] = _artifact_name(job)
        jobs.append({k: str(job[k]) for k in JOB_KEYS})
    return Expansion(jobs, skipped)


def github_matrix(jobs: Sequence[Mapping[str, str]]) -> dict[str, list[dict[str, str]]]:
    """``{"include": [...]}`` for ``strategy.matrix: ${{ fromJSON(...) }}``."""
    if not jobs:
        raise UsageError(
            "the matrix is empty: every combination was excluded",
            "check [matrix] and [matrix.torch_cuda] in the config (run with --explain to see why)",
        )
    if len(jobs) > GITHUB_MAX_JOBS:
        raise UsageError(
            f"{len(jobs)} jobs exceed GitHub Actions' limit of {GITHUB_MAX_JOBS} per matrix",
            "split the config (e.g. one per package) or narrow python/torch/cuda",
        )
    return {"include": [dict(j) for j in jobs]}


def gitlab_matrix(jobs: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """``{"parallel": {"matrix": [...]}}`` with MB_* variables, one entry (one job) per build."""
    if not jobs:
        raise UsageError(
            "the matrix is empty: every combination was excluded",
            "check [matrix] and [matrix.torch_cuda] in the config",
        )
    if len(jobs) > GITLAB_MAX_JOBS:
        raise UsageError(
            f"{len(jobs)} jobs exceed GitLab's limit of {GITLAB_MAX_JOBS} for parallel:matrix",
            "split the config (e.g. one per package) or narrow python/torch/cuda",
        )
    return {"parallel": {"matrix": [{GITLAB_VARS[k]: j[k] for k in GITLAB_VARS} for j in jobs]}}


def render_gitlab(jobs: Sequence[Mapping[str, str]], job_name: str = ".mamba-build-matrix") -> str:
    """A YAML hidden job holding ``parallel:matrix``, for a build job to ``extends:``.

    Scalars are JSON-quoted strings, which YAML reads as the same strings.
    """
    matrix = gitlab_matrix(jobs)["parallel"]["matrix"]
    lines = [f"{job_name}:", "  parallel:", "    matrix:"]
    for entry in matrix:
        first = True
        for key, value in entry.items():
            lines.append(f"      {'- ' if first else '  '}{key}: {json.dumps(value)}")
            first = False
    return "\n".join(lines) + "\n"
