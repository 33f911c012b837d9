"""Checks judge the environment model; each returns ``Check`` objects (ok / warn / fail / skip + fix)."""

from __future__ import annotations

from mamba_build.diagnose.checks.base import Check, Status, Target
from mamba_build.diagnose.environment import Environment
from mamba_build.plan.toolkit_choice import choose_toolkit


def resolve_target(env: Environment, cuda: str | None) -> Target:
    tk, reason = choose_toolkit(
        env.toolkits, cuda=cuda, torch_cuda=env.python.torch.cuda, torch_pick=env.torch_cuda_home
    )
    return Target(cuda=cuda, toolkit=tk, reason=reason)


def run_checks(env: Environment, target: Target) -> list[Check]:
    from mamba_build.diagnose.checks import build_tools, compilers, cuda, installed_extensions, system

    checks: list[Check] = [system.check_platform(env), system.check_glibc(env)]
    checks += system.check_python_tools(env)
    checks.append(build_tools.check_pkg_resources(env))
    checks.append(cuda.check_torch(env))
    checks.append(cuda.check_torch_version(env))
    checks += cuda.check_driver(env, target)
    checks.append(cuda.check_gpus(env))
    checks += cuda.check_toolkits(env, target)
    on_path = cuda.check_nvcc_on_path(env)
    if on_path:
        checks.append(on_path)
    checks.append(cuda.check_target(env, target))
    checks.append(cuda.check_cuda_home(env, target))
    checks.append(cuda.check_toolkit_headers(env, target))
    checks.append(cuda.check_include_path(env, target))
    checks.append(cuda.check_torch_vs_nvcc(env, target))
    checks.append(compilers.check_host_compiler(env, target))
    checks.append(compilers.check_cxx_standard(env))
    checks.append(cuda.check_gpu_archs(env, target))
    checks.append(system.check_resources(env))
    checks.append(cuda.check_libcuda(env))
    checks += installed_extensions.check_installed(env)
    return checks


def worst(checks: list[Check]) -> Status:
    order = [Status.FAIL, Status.WARN, Status.OK, Status.SKIP]
    for status in order:
        if any(c.status == status for c in checks):
            return status
    return Status.OK


__all__ = ["Check", "Status", "Target", "resolve_target", "run_checks", "worst"]
