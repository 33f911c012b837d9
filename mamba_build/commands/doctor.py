"""`mamba-build doctor`: see every build trap before the build."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from mamba_build import __version__, paths
from mamba_build.diagnose.checks import Status, resolve_target, run_checks
from mamba_build.diagnose.checks.base import Check, fail, ok, skip, warn
from mamba_build.diagnose.environment import gather, to_jsonable
from mamba_build.errors import ExitCode
from mamba_build.plan.archs import parse_arch_list
from mamba_build.plan.toolkit_choice import validate_cuda_version
from mamba_build.render import dumps, print_checks

NAME = "doctor"
HELP = "inspect the machine and report every build trap with its fix"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cuda", metavar="X.Y", help="judge the machine for this CUDA version (default: torch's)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument(
        "--probe", action="store_true", help="also compile, import and (with a GPU) run our small CUDA probe extension"
    )
    p.add_argument(
        "--arch",
        metavar="X.Y",
        default=None,
        help="arch for --probe when no GPU is visible (default 8.0; with a GPU: the GPU's)",
    )
    p.add_argument("--python", metavar="PATH", help="the Python environment to inspect (default: this one)")
    p.add_argument("--verbose", "-v", action="store_true", help="show the details of every check")
    p.add_argument(
        "--index-url",
        metavar="URL",
        help="also say what `mamba-build install --index-url URL` would install here (or build)",
    )


def run(args: argparse.Namespace) -> int:
    cuda = validate_cuda_version(args.cuda) if args.cuda else None
    probe_arch = parse_arch_list(args.arch)[0] if args.arch else None
    env = gather(args.python)
    target = resolve_target(env, cuda)
    checks = run_checks(env, target)
    probe_data = None
    if args.probe:
        probe_check, probe_data = run_probe_check(env, target, probe_arch)
        checks.append(probe_check)
    install_plan = None
    if getattr(args, "index_url", None):
        install_plan, index_checks = index_check(env, args.index_url)
        checks.extend(index_checks)
    failed = any(c.status == Status.FAIL for c in checks)
    if args.json:
        doc = {
            "version": __version__,
            "environment": {
                **to_jsonable(env),
                "target": {
                    "cuda": target.cuda,
                    "reason": target.reason,
                    "toolkit": target.toolkit.home if target.toolkit else None,
                },
            },
            "checks": [c.to_dict() for c in checks],
        }
        if probe_data is not None:
            doc["probe"] = probe_data
        if install_plan is not None:
            doc["install_plan"] = install_plan.to_dict()
        sys.stdout.write(dumps(doc) + "\n")
    else:
        title = f"mamba-build {__version__} doctor" + (f" (target CUDA {cuda})" if cuda else "")
        print_checks(checks, verbose=args.verbose, title=title)
    return ExitCode.CHECK_FAILED if failed else ExitCode.OK


def index_check(env, index_url: str):
    """(install plan or None, checks): what `install --index-url` would do here; never raises."""
    from mamba_build.dist.install import plan_checks, resolve_install, target_from_env
    from mamba_build.errors import MambaBuildError

    try:
        plan = resolve_install(index_url, target=target_from_env(env))
    except MambaBuildError as err:
        return None, [fail("index", f"cannot plan an install from {index_url}: {err.message}", err.fix)]
    return plan, plan_checks(plan)


def run_probe_check(env, target, arch: str | None) -> tuple[Check, dict]:
    """Compile, import and (with a GPU) run the probe extension with the target toolkit."""
    from mamba_build.diagnose.checks.compilers import choose_for_build
    from mamba_build.diagnose.checks.cuda import build_include_dirs
    from mamba_build.diagnose.toolchain_probe import build_probe, run_probe

    tk = target.toolkit
    if tk is None:
        return skip("probe", "no usable toolkit to compile the probe with"), {"ok": False, "reason": "no toolkit"}
    if not (env.python.torch.importable and env.python.torch.cuda):
        return skip("probe", "needs a CUDA build of torch"), {"ok": False, "reason": "no CUDA torch"}
    choice = choose_for_build(env, target)
    if choice is None:
        return fail("probe", f"no host compiler accepted by CUDA {tk.version}", "see the host-compiler check"), {
            "ok": False,
            "reason": "no compiler",
        }
    gpus = [g for g in env.gpus.gpus if g.compute_capability]
    use_arch = arch or (gpus[0].compute_capability if gpus else "8.0")
    workdir = Path(tempfile.mkdtemp(prefix="probe-", dir=paths.builds_dir()))
    result = build_probe(
        cuda_home=Path(tk.home),
        cc=choice.cc,
        cxx=choice.cxx,
        arch=use_arch,
        python=env.python.executable,
        workdir=workdir,
        extra_nvcc_flags=("-allow-unsupported-compiler",) if choice.unsupported_override else (),
        extra_include_dirs=[Path(d) for d in build_include_dirs(env, tk)],
    )
    data = {
        "ok": result.ok,
        "arch": use_arch,
        "toolkit": tk.home,
        "cuda": tk.version,
        "cc": choice.cc,
        "cxx": choice.cxx,
        "compile_seconds": round(result.compile_seconds, 1) if result.compile_seconds is not None else None,
        "log": str(result.log_path) if result.log_path else None,
    }
    if not result.ok:
        from mamba_build.build.pipeline import explain_failure

        data["error"] = result.error_excerpt
        cause, fix, evidence = explain_failure(Path(result.log_path)) if result.log_path else ("", None, "")
        return fail(
            "probe",
            f"the probe extension did not compile with CUDA {tk.version} and "
            f"{Path(choice.cxx).name} for sm_{use_arch.replace('.', '')}: {cause}",
            (fix + "; " if fix else "") + f"full log: {result.log_path}",
            (result.error_excerpt or "") + ("\n" + evidence if evidence else ""),
        ), data
    assert result.so_path is not None  # it compiled
    run_result = run_probe(result.so_path, python=env.python.executable)
    data["run"] = to_jsonable(run_result)
    for leftover in workdir.iterdir():  # keep the log only
        if leftover != result.log_path:
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    what = (
        f"compiled in {result.compile_seconds:.0f}s with CUDA {tk.version}, {Path(choice.cxx).name}, "
        f"sm_{use_arch.replace('.', '')}"
    )
    if not run_result.imported:
        from mamba_build.diagnose.explain import diagnose_text

        root = diagnose_text(run_result.error or "").root
        data["explain_id"] = root.id if root else None
        return fail(
            "probe",
            what + ", but it does not import" + (f" [{root.id}]: {root.cause}" if root else ""),
            root.fix if root else "see details",
            run_result.error or "",
        ), data
    if run_result.ran_on_gpu:
        if run_result.passed:
            return ok("probe", what + "; ran on the GPU and matches torch.cumsum"), data
        return fail(
            "probe",
            what + "; ran on the GPU but does NOT match torch",
            "the toolchain miscompiles: try another host compiler or toolkit",
            str(run_result),
        ), data
    return warn(
        "probe",
        what + "; imported (no GPU here: import only, not a run)",
        "run `mamba-build doctor --probe` on the GPU machine to run the kernel",
    ), data
