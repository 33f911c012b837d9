"""Platform, glibc, Python packaging tools, machine resources."""

from __future__ import annotations

from mamba_build.diagnose.checks.base import Check, fail, ok, skip, warn
from mamba_build.diagnose.environment import Environment
from mamba_build.diagnose.probes.system import manylinux_glibc
from mamba_build.plan import job_count
from mamba_build.tables import version_tuple

SUPPORTED_MACHINES = ("x86_64", "aarch64")


def check_platform(env: Environment) -> Check:
    p = env.platform
    distro = f"{p.distro_id or '?'} {p.distro_version or ''}".strip()
    if p.system != "Linux" or p.machine not in SUPPORTED_MACHINES:
        return fail(
            "platform",
            f"{p.system} {p.machine} is not supported",
            "build on Linux x86_64 or aarch64 (on Windows: inside WSL2); mamba's CUDA kernels "
            "and torch's CUDA extension builds exist only there",
        )
    return ok("platform", f"{p.system} {p.machine} ({distro})")


def check_glibc(env: Environment) -> Check:
    have = env.platform.glibc
    if have is None:
        return fail(
            "glibc",
            "not a glibc system (musl or other libc)",
            "use a glibc-based distribution (Debian, Ubuntu, RHEL...); torch wheels need glibc",
        )
    needs = []
    for tag in env.python.torch.wheel_tags:
        req = manylinux_glibc(tag)
        if req:
            needs.append((req, f"torch wheel tag {tag}"))
    if not needs and env.python.torch.version:
        needs.append(("2.17", "torch wheel (no tag found; assuming manylinux2014)"))
    too_new = [(req, why) for req, why in needs if version_tuple(req) > version_tuple(have)]
    detail = "; ".join(f"{why} needs glibc >= {req}" for req, why in needs) or "no torch wheel tag to compare"
    detail += (
        "; upstream's prebuilt mamba-ssm/causal-conv1d wheels are tagged linux_x86_64 and carry no "
        "glibc promise, which is why mamba-build compiles them here instead"
    )
    if too_new:
        req, why = too_new[0]
        return fail(
            "glibc",
            f"glibc {have} is older than {req} ({why})",
            f"use a distribution with glibc >= {req} (e.g. Ubuntu 20.04+/Debian 11+) or a container",
            details=detail,
        )
    return ok("glibc", f"glibc {have}" + (f" (torch needs >= {needs[0][0]})" if needs else ""), detail)


def check_python_tools(env: Environment) -> list[Check]:
    py = env.python
    if py.version is None:
        return [
            fail(
                "python",
                f"could not run the target Python: {py.child_error}",
                "pass --python /path/to/venv/bin/python of the environment to build for",
            )
        ]
    checks = []
    ver = version_tuple(py.version)
    if ver < (3, 9):
        checks.append(
            fail(
                "python",
                f"Python {py.version} is too old (mamba-ssm needs >= 3.9)",
                "create a venv with Python 3.10-3.12: python3.12 -m venv .venv",
            )
        )
    else:
        checks.append(ok("python", f"Python {py.version} at {py.executable}"))
    inst, problem = _installer(env)
    checks.append(check_pip(inst, problem))
    pip_cmd = inst.command_line([]) if inst is not None else f"{py.executable} -m pip install"
    for name, needed_for in (
        ("setuptools", "running upstream setup.py"),
        ("wheel", "upstream setup.py imports wheel.bdist_wheel"),
        ("packaging", "upstream setup.py imports packaging.version"),
    ):
        version = py.packages.get(name)
        if version:
            checks.append(ok(name, f"{name} {version}"))
        else:
            checks.append(fail(name, f"{name} is not installed ({needed_for})", f"{pip_cmd} {name}"))
    # `import mamba_ssm` imports these at module level (mamba_ssm/modules/*.py, utils/generation.py, ops/triton)
    runtime = [name for name in ("einops", "transformers", "triton") if not py.packages.get(name)]
    if runtime:
        checks.append(
            warn(
                "runtime-deps",
                f"{', '.join(runtime)} not installed: `import mamba_ssm` needs them "
                "(compile installs the missing ones before building, pinned so torch stays; with "
                "--no-deps it refuses)",
                f"{pip_cmd} {' '.join(runtime)}",
            )
        )
    else:
        checks.append(ok("runtime-deps", "einops, transformers, triton (what `import mamba_ssm` needs) are installed"))
    ninja = py.packages.get("ninja")
    if ninja:
        checks.append(ok("ninja", f"ninja {ninja} (parallel builds)"))
    else:
        checks.append(
            warn("ninja", "ninja is not installed: torch falls back to a slow serial build", f"{pip_cmd} ninja")
        )
    return checks


def _installer(env: Environment):
    """(installer, None) or (None, the EnvironmentProblem saying why there is none)."""
    from mamba_build.errors import EnvironmentProblem
    from mamba_build.plan.installer import choose

    try:
        return choose(env.python.executable, env.python.packages.get("pip")), None
    except EnvironmentProblem as err:
        return None, err


def check_pip(inst, problem=None) -> Check:
    """What builds and installs into the environment (mamba_build/plan/installer.py, the same choice as the
    compile plan's): its own pip, mamba-build's pip run with --python (a venv made by uv has no pip), or uv."""
    from mamba_build.plan.installer import OWN_PIP

    if inst is None:
        return fail("pip", problem.message, problem.fix)
    if inst.kind == OWN_PIP:
        return ok("pip", f"pip {inst.version}")
    return ok(
        "pip",
        f"no pip in this environment: installs by {inst.describe()} (builds: each tree's PEP 517 backend, or "
        "the same with --build-frontend installer)",
        inst.reason,
    )


def check_resources(env: Environment) -> Check:
    r = env.resources
    rec = job_count.recommend_jobs(r.cpus, r.mem_available_gb)
    summary = (
        f"{r.cpus} CPUs, {r.mem_available_gb or 0:.1f} GiB free of {r.mem_total_gb or 0:.1f} GiB RAM, "
        f"{r.disk_free_gb or 0:.1f} GiB free disk at {r.disk_path}; MAX_JOBS={rec.jobs}"
    )
    details = rec.reason
    if r.disk_free_gb is not None and r.disk_free_gb < job_count.DISK_MIN_GB:
        return fail(
            "resources",
            summary,
            f"free at least {job_count.DISK_MIN_GB:.0f} GiB in {r.disk_path} "
            "or point TMPDIR/--build-dir at a larger disk",
            details,
        )
    if r.mem_available_gb is not None and r.mem_available_gb < job_count.PER_JOB_GB:
        return warn(
            "resources",
            summary,
            "close other programs or build with --jobs 1; "
            f"one nvcc job of these sources peaks at {job_count.PER_JOB_GB} GB",
            details,
        )
    if r.disk_free_gb is not None and r.disk_free_gb < job_count.DISK_WARN_GB:
        return warn(
            "resources",
            summary,
            f"a build of both packages needs about {job_count.DISK_WARN_GB:.0f} GiB of temporary space",
            details,
        )
    return ok("resources", summary, details)


def skip_if_no_torch(id: str) -> Check:
    return skip(id, "torch is not importable; see the torch check")
