"""Build speed: upstream's default build vs `mamba-build compile` cold vs warm, on one machine, in one run.

Usage (from the repo root; on the H100 through scripts/gpu/h100_bench.sh + scripts/gpu/poll.sh):

    python benchmarks/build_speed.py --sdists .carry/sdists --out /tmp/bench \
        [--packages causal-conv1d,mamba-ssm] [--arch 9.0 | native] [--phases cold,warm,kernels-aa,upstream,kernels] \
        [--upstream-mode sequential|concurrent] [--python PY] [--extra-compile-args "..."] \
        [--report docs/benchmarks.md --section h100-build-speed]
    python benchmarks/build_speed.py --report-only /tmp/bench [--report docs/benchmarks.md --section NAME]

Phases (always run in this order, whichever are asked for):

- cold: `PY -m mamba_build compile --package ... --source PKG=<sdist> ... --wheel-dir OUT/wheels-cold` with
  MAMBA_BUILD_CACHE=OUT/cache emptied first;
- warm: the same command again with the same cache (a verified cache hit);
- upstream: each pristine sdist unpacked and built with `PY -m pip wheel --no-build-isolation --no-deps -v`,
  only `<PREFIX>FORCE_BUILD=TRUE` and `CUDA_HOME` set (MAX_JOBS unset: ninja's default), one after the
  other (`sequential`, what `pip install causal-conv1d mamba-ssm` does) or both at once (`concurrent`);
- kernels-aa: mamba-build's cold wheels timed against themselves with `benchmarks/kernel_speed.py`
  (`--kernel-aa-args`, default `--quick`): the method's noise floor, and a check on this GPU that the timing
  script works before the long upstream phase;
- kernels: both builds' wheels unzipped, then `PY benchmarks/kernel_speed.py` compares their kernels, for
  every package both built (`--ops`): a package whose upstream build did not finish is left out and named.

Every command runs under a small wrapper child process that runs it and prints its own
getrusage(RUSAGE_CHILDREN): wall, user+sys CPU time of the whole (waited-for) process tree, and peak RSS of
the largest single process, per phase, nothing accumulated across phases. OUT/results.json and
OUT/table.md are rewritten after every phase (and every 20 s during one), so partial results survive a
machine that is taken away; OUT/current names the running phase and its logs; OUT/done is written at the end.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

# The phases live in build_speed_parts/ (one module each); this file is the command line, and re-exports the parts'
# names so `import build_speed` (scripts/gpu/arch_session.sh, tests/unit/test_build_speed.py) keeps working.
from _report import write_section  # noqa: E402
from build_speed_parts.bench import Bench, record_for  # noqa: E402
from build_speed_parts.common import (  # noqa: E402
    HEARTBEAT_S,
    KERNEL_OPS,
    PACKAGES,
    PHASES,
    REPO,
    SCHEMA,
    TARGET_BOUND_RATIO,
    TARGET_COLD_S,
    TARGET_SPEEDUP,
    TARGET_WARM_S,
    Package,
    run_text,
    utc_now,
    write_atomic,
)
from build_speed_parts.machine import dry_run_plan, ensure_sdist, machine_fingerprint, upstream_arch_list  # noqa: E402
from build_speed_parts.measure import WRAPPER, Measured, measure  # noqa: E402
from build_speed_parts.outputs import cuobjdump_archs, parse_compile_output, wheel_package, wheels_in  # noqa: E402
from build_speed_parts.report import (  # noqa: E402
    add_repeats,
    archs_text,
    bound_lines,
    fmt_bytes,
    fmt_rss,
    fmt_s,
    machine_line,
    merge_runs,
    render_report,
    render_table,
    target_lines,
    upstream_total,
)

__all__ = [
    "HEARTBEAT_S", "KERNEL_OPS", "PACKAGES", "PHASES", "REPO", "SCHEMA", "TARGET_BOUND_RATIO", "TARGET_COLD_S",
    "TARGET_SPEEDUP", "TARGET_WARM_S", "WRAPPER", "Bench", "Measured", "Package", "add_repeats", "archs_text",
    "bound_lines", "cuobjdump_archs", "dry_run_plan", "ensure_sdist", "fmt_bytes", "fmt_rss", "fmt_s",
    "machine_fingerprint", "machine_line", "main", "measure", "merge_runs", "parse_args", "parse_compile_output",
    "record_for", "render_report", "render_table", "report_only", "run_text", "target_lines", "upstream_arch_list",
    "upstream_total", "utc_now", "wheel_package", "wheels_in", "write_atomic", "write_section",
]

# ----------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sdists", help="directory with the sdists (downloaded from PyPI if absent)")
    ap.add_argument("--out", help="results directory (results.json, table.md, logs, wheels, cache)")
    ap.add_argument("--packages", default="causal-conv1d,mamba-ssm")
    ap.add_argument("--arch", default="native", help="compile --arch (default native: the visible GPUs); upstream: "
                    "the archs of the sdists' own setup.py (causal-conv1d 1.7.0, mamba-ssm 2.3.2.post1: sm_75 ... sm_121)")
    ap.add_argument("--phases", default=",".join(PHASES), help="any of " + ",".join(PHASES) + " (run in that order)")
    ap.add_argument("--upstream-mode", choices=("sequential", "concurrent"), default="sequential")
    ap.add_argument("--upstream-packages", default=None,
                    help="upstream builds only these (default: --packages); a subset gives a lower bound of upstream's "
                         "default install of all (pip builds them one after the other), e.g. causal-conv1d alone")
    ap.add_argument("--python", default=sys.executable, help="the Python that builds (default: this one)")
    ap.add_argument("--cuda-home", default=None, help="toolkit for upstream (default: the one compile's plan picks)")
    ap.add_argument("--extra-compile-args", default="", help="appended to both compile commands")
    ap.add_argument("--kernel-args", default="", help="appended to the kernel_speed.py command (e.g. --quick)")
    ap.add_argument("--kernel-aa-args", default="--quick",
                    help="appended to the kernels-aa command (mamba-build against itself; default --quick)")
    ap.add_argument("--timeout-compile", type=float, default=3600.0, help="seconds per compile command")
    ap.add_argument("--timeout-upstream", type=float, default=5400.0, help="seconds for the whole upstream phase")
    ap.add_argument("--timeout-kernels", type=float, default=1800.0)
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="end the whole run within this many seconds of its start (a leased machine): the upstream "
                         "phase is cut off early enough to leave --reserve-kernels-s for the kernels phase")
    ap.add_argument("--reserve-kernels-s", type=float, default=150.0)
    ap.add_argument("--report", default=None, help="markdown file whose section to replace (e.g. docs/benchmarks.md)")
    ap.add_argument("--section", default="h100-build-speed")
    ap.add_argument("--target-cold-s", type=float, default=TARGET_COLD_S,
                    help=f"the cold build's target in seconds (default {TARGET_COLD_S:.0f}; 0: none)")
    ap.add_argument("--target-speedup", type=float, default=TARGET_SPEEDUP,
                    help=f"the speedup over upstream's default build to reach (default {TARGET_SPEEDUP:.0f})")
    ap.add_argument("--repeat", metavar="OUT2", action="append", default=[],
                    help="with --report-only: more cold runs of the same command (median and spread of the cold wall)")
    ap.add_argument("--merge", metavar="OUT2", action="append", default=[],
                    help="with --report-only: add the upstream packages and kernel tables of another run's results")
    ap.add_argument("--report-only", metavar="OUT", default=None,
                    help="regenerate table.md (and --report) from OUT/results.json, run nothing")
    argv, i = list(argv), 0
    while i < len(argv) - 1:  # these values start with "--": argparse would take them for options
        if argv[i] in ("--extra-compile-args", "--kernel-args", "--kernel-aa-args"):
            argv[i:i + 2] = [f"{argv[i]}={argv[i + 1]}"]
        i += 1
    args = ap.parse_args(argv)
    args.argv = argv
    if not args.target_cold_s:
        args.target_cold_s = None
    args.packages = [p.strip() for p in args.packages.split(",") if p.strip()]
    for p in args.packages:
        if p not in PACKAGES:
            ap.error(f"--packages: unknown {p!r} (known: {', '.join(PACKAGES)})")
    up = args.upstream_packages
    args.upstream_packages = [p.strip() for p in up.split(",") if p.strip()] if up else list(args.packages)
    for p in args.upstream_packages:
        if p not in args.packages:
            ap.error(f"--upstream-packages: {p!r} is not one of --packages")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    for p in args.phases:
        if p not in PHASES:
            ap.error(f"--phases: unknown {p!r} (known: {', '.join(PHASES)})")
    if not args.report_only and not (args.sdists and args.out):
        ap.error("--sdists and --out are required (or --report-only OUT)")
    return args


def report_only(args: argparse.Namespace) -> int:
    src = Path(args.report_only)
    results = json.loads((src / "results.json" if src.is_dir() else src).read_text(encoding="utf-8"))
    if args.merge:
        others = [json.loads((Path(m) / "results.json" if Path(m).is_dir() else Path(m)).read_text(encoding="utf-8"))
                  for m in args.merge]
        results = merge_runs(results, *others)
    if args.repeat:
        results = add_repeats(results, [json.loads((Path(m) / "results.json" if Path(m).is_dir() else Path(m))
                                                   .read_text(encoding="utf-8")) for m in args.repeat])
    report = render_report(results)
    table = (src if src.is_dir() else src.parent) / "table.md"
    try:
        write_atomic(table, report + "\n")
    except OSError as exc:
        print(f"(table.md not rewritten: {exc})", file=sys.stderr)
    print(report)
    if args.report:
        write_section(args.section, report, Path(args.report))
    return 0


def _sigterm(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report_only:
        return report_only(args)
    if argv is None:
        signal.signal(signal.SIGTERM, _sigterm)
    bench = Bench(args)
    rc = 1
    try:
        rc = bench.run()
    finally:
        (bench.out / "current").unlink(missing_ok=True)
        (bench.out / "done").write_text(f"exit {rc} {utc_now()}\n")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
