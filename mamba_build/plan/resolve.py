"""From options to a frozen plan: gather the environment, provision a toolkit when one is missing, resolve the
plan (mamba_build/plan/build_plan.py), then the launcher and runtime-dependency decisions (launcher.py,
runtime_deps.py).
`compile`, `wheels` and `install`'s fallback build all start here."""

from __future__ import annotations

import sys

from mamba_build.plan.build_plan import BuildPlan, CompileOptions


def resolve(opts: CompileOptions, *, dry_run: bool = False) -> BuildPlan:
    """Gather the environment and resolve the plan. Without a usable toolkit of torch's CUDA major (or of
    --cuda X.Y) one is provisioned first (mamba_build/toolchain/provision.py) unless --no-provision; with ``dry_run``
    the plan shows the toolkit-to-be and nothing is installed."""
    from dataclasses import replace

    from mamba_build.diagnose.environment import gather
    from mamba_build.plan.build_plan import resolve_plan
    from mamba_build.plan.toolkit_choice import validate_cuda_version
    from mamba_build.toolchain import provision

    env = gather(opts.python, extensions=False)
    cuda = validate_cuda_version(opts.cuda) if opts.cuda else None
    need = provision.decide(env, cuda) if opts.provision else None
    if need is not None and dry_run:
        env = provision.with_planned(env, need)
    elif need is not None:
        provision.provision(need, env, log=lambda msg: print(msg, file=sys.stderr))
        env = gather(opts.python, extensions=False)
    from mamba_build.plan.launcher import with_launcher
    from mamba_build.plan.runtime_deps import with_runtime_deps

    plan = with_runtime_deps(with_launcher(resolve_plan(opts, env), opts.launcher, env), opts)
    if need is not None:
        reason = (
            f"{'will be provisioned' if dry_run else 'provisioned'}: {need.to_dict()['command']} ({need.how}); "
            f"{need.reason}"
        )
        plan = replace(plan, toolkit=replace(plan.toolkit, provision=need.to_dict(), reason=reason))
    return plan
