"""What one more arch costs: each chosen unit compiled with nvcc's own per-phase timing (``nvcc --time``).

The plan predicts a build from one-arch costs (mamba_build/data/build_costs.toml). With N archs nvcc runs,
per arch, a device preprocessing (``gcc (preprocessing 1)``), ``cicc`` and ``ptxas``; once per unit it runs the
host side (``gcc (preprocessing 4)``, ``cudafe++``, ``fatbinary``, ``gcc (compiling)``). This script compiles
units of a real sdist with the package's own flags (the exact command torch's cpp_extension writes into
build.ninja, as mamba-build's patches leave it) for a list of archs, ``--threads 1`` so that every phase runs
alone, and reports per unit and arch the seconds of each phase: the per-arch factors (relative to sm_90) and
the share of a unit's one-arch time that recurs per arch.

Usage (repo root; a real build, so on the shared machine under ``flock /work/heavy.lock``)::

    python benchmarks/arch_costs.py --sdist causal_conv1d-1.7.0.tar.gz --package causal-conv1d \
        --arch 7.5,8.0,8.7,9.0,10.0,12.0,10.3,11.0,12.1 --split-units \
        --unit causal_conv1d_bwd.mbpart01.cu --unit causal_conv1d_fwd.cu --out /tmp/arch-costs/cc [--jobs 2]
        [--merge causal_conv1d_bwd.mbpart10.cu+causal_conv1d_bwd.mbpart11.cu]

``--per-arch`` also compiles every unit once per arch (that -gencode alone) and records the CPU time of each
(getrusage: robust on a shared machine, where nvcc's --time phases, wall-clock times, grow with the load). With
the all-arch compile's CPU time C and the one-arch ones c_a, a unit's host part is h = (sum c_a - C) / (n - 1)
and arch a's device part d_a = c_a - h.

``--merge A+B`` also compiles A with B's explicit instantiations appended (one unit holding both, as upstream's
whole file holds all of them), so that ``benchmarks/sass_parity.py OUT/objects/merged OUT/objects/split`` can
check, arch by arch, that splitting instantiations into units leaves every kernel's SASS as it was.
Writes OUT/arch_costs.json and prints a table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# nvcc --time phases that run once per -gencode: "<host compiler> (preprocessing 1)", cicc, ptxas
_PER_ARCH = re.compile(r"^(?:cicc|ptxas|.*\(preprocessing 1\))$")
_FAKE_NINJA = """#!/bin/sh
# arch_costs.py: keep torch's build.ninja, compile nothing
if [ "$1" = "--version" ]; then exec {real} --version; fi
cp build.ninja {dest}
exit 3
"""
_INSTANTIATION = re.compile(r"^template (?:void|struct|class) .*;[ \t]*(?://.*)?$")


def _capture_build_file(tree: Path, env: dict[str, str], python: str, real_ninja: str, out: Path) -> Path:
    """Run the patched setup.py's build_ext with a ninja that only copies build.ninja (nothing compiles)."""
    fake = out / "fake-ninja"
    fake.mkdir(parents=True, exist_ok=True)
    dest = out / "build.ninja"
    (fake / "ninja").write_text(_FAKE_NINJA.format(real=shlex.quote(real_ninja), dest=shlex.quote(str(dest))))
    (fake / "ninja").chmod(0o755)
    env = dict(env, PATH=os.pathsep.join([str(fake), env.get("PATH", "")]))
    proc = subprocess.run([python, "setup.py", "build_ext"], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=1800)
    if not dest.is_file():
        raise SystemExit("arch_costs: setup.py wrote no build.ninja:\n" + (proc.stdout + proc.stderr)[-3000:])
    return dest


def _command(real_ninja: str, build_file: Path, output: str) -> str:
    proc = subprocess.run([real_ninja, "-f", str(build_file), "-t", "commands", output], capture_output=True,
                          text=True, timeout=60, cwd=build_file.parent)
    lines = [x for x in proc.stdout.splitlines() if x.strip()]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"arch_costs: ninja -t commands {output}: {proc.stderr.strip()}")
    return lines[-1]


def _retarget(cmd: str, unit: str, source: Path, obj: Path, csv_path: Path) -> list[str]:
    """The unit's command with --threads 1, nvcc's --time table, and our source / object paths."""
    argv = shlex.split(cmd)
    out: list[str] = []
    skip = 0
    for a in argv:
        if skip:
            skip -= 1
            continue
        if a in ("--threads", "-t", "--split-compile", "-split-compile", "--time", "-time"):
            skip = 1
        elif a == unit:
            out.append(str(source))
        elif a == "-o":
            out += ["-o", str(obj)]
            skip = 1
        elif a in ("--dependency-output", "-MF"):
            out += [a, str(obj) + ".d"]
            skip = 1
        else:
            out.append(a)
    return out + ["--threads", "1", "--time", str(csv_path)]


def _one_arch(argv: list[str], arch: str) -> list[str]:
    """``argv`` with its -gencode pairs replaced by the one of ``arch`` ("9.0" -> compute_90/sm_90)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "-gencode":
            skip = True
            continue
        if a.startswith(("-gencode=", "--generate-code=", "--generate-code")):
            continue
        out.append(a)
    n = arch.split("+")[0].replace(".", "")
    at = out.index("--threads") if "--threads" in out else len(out)
    return out[:at] + ["-gencode", f"arch=compute_{n},code=sm_{n}"] + out[at:]


def _run_unit(argv: list[str], cwd: Path, log: Path) -> dict:
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    rc = os.waitstatus_to_exitcode(status)
    return {"rc": rc, "wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
            "max_rss_mib": round(ru.ru_maxrss / 1024, 1)}


def parse_time_csv(text: str) -> dict:
    """nvcc --time's table -> {"per_arch": {"sm_90": {phase: s}}, "once": {phase: s}} (seconds)."""
    per_arch: dict[str, dict[str, float]] = {}
    once: dict[str, float] = {}
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows[1:]:
        if len(row) < 8:
            continue
        phase, arch, value, unit = row[1].strip(), row[4].strip(), row[6].strip(), row[7].strip()
        try:
            seconds = float(value) / (1000.0 if unit == "ms" else 1.0)
        except ValueError:
            continue
        if _PER_ARCH.match(phase) and arch:
            key = "sm_" + arch.split("_")[-1]
            per_arch.setdefault(key, {})[phase] = per_arch.get(key, {}).get(phase, 0.0) + seconds
        elif phase != "nvcc (driver)":
            once[phase] = once.get(phase, 0.0) + seconds
    return {"per_arch": per_arch, "once": once}


def _merge(tree: Path, spec: str, dest: Path) -> Path:
    """A's text with B's explicit-instantiation lines appended: one unit holding both."""
    a_name, b_name = spec.split("+", 1)
    a, b = _find(tree, a_name), _find(tree, b_name)
    a_text = a.read_text()
    extra = [line for line in b.read_text().splitlines() if _INSTANTIATION.match(line) and line not in a_text]
    if not extra:
        raise SystemExit(f"arch_costs: --merge {spec}: no explicit instantiation of {b_name} to add")
    dest.write_text(a_text.rstrip("\n") + "\n" + "\n".join(extra) + "\n")
    return dest


def _find(tree: Path, name: str) -> Path:
    hits = [p for p in tree.rglob(name) if "build" not in p.relative_to(tree).parts[:1]]
    if len(hits) != 1:
        raise SystemExit(f"arch_costs: {name}: {len(hits)} files in {tree}")
    return hits[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sdist", required=True, type=Path)
    p.add_argument("--package", required=True)
    p.add_argument("--arch", required=True, help="arch list, e.g. 7.5,8.0,9.0")
    p.add_argument("--unit", action="append", default=[], help="a source file name of the build (repeatable)")
    p.add_argument("--merge", action="append", default=[], metavar="A+B", help="also compile A + B's instantiations")
    p.add_argument("--split-units", action="store_true", help="apply the split_units recipes first")
    p.add_argument("--per-arch", action="store_true", help="also compile each unit once per arch (CPU time of each)")
    p.add_argument("--all-cpu-from", type=Path, metavar="JSON",
                   help="with --per-arch: skip the all-arch compiles, take their CPU time from an earlier arch_costs.json")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--python", default=sys.executable)
    args = p.parse_args(argv)

    from mamba_build.build.patching import apply_patches, raise_for_missing
    from mamba_build.build.pipeline import patch_options
    from mamba_build.diagnose.environment import gather
    from mamba_build.plan.build_plan import CompileOptions, resolve_plan
    from mamba_build.plan.launcher import with_launcher

    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "objects").mkdir(parents=True)
    with tarfile.open(args.sdist) as tf:
        tf.extractall(out / "src", filter="data")
    tree = next(d for d in (out / "src").iterdir() if (d / "setup.py").is_file())
    version = tree.name.rsplit("-", 1)[-1]
    opts = CompileOptions(packages=(args.package,), versions={}, sources={args.package: str(tree)}, arch=args.arch,
                          jobs=1, nvcc_threads=1, split_compile=-1, schedule="sequential", install=False,
                          use_cache=False, split_units=args.split_units, python=args.python)
    env_info = gather(args.python, extensions=False)
    plan = with_launcher(resolve_plan(opts, env_info), "none", env_info)  # torch's own ccache wrapping off
    results = apply_patches(tree, args.package, version, patch_options(plan))
    raise_for_missing(results, tree, args.package, version)
    env = dict(os.environ)
    env.update(plan.env_for(plan.packages[0]))
    real_ninja = plan.ninja or shutil.which("ninja")
    build_file = _capture_build_file(tree, env, args.python, real_ninja, out)
    from mamba_build.build.ninja_pool import parse_build_file

    edges = {Path(e.source).name: e for e in parse_build_file(build_file.read_text(), args.package).edges}
    jobs = []
    for name in args.unit:
        if name not in edges:
            raise SystemExit(f"arch_costs: no unit {name} in build.ninja (units: {', '.join(sorted(edges))})")
        e = edges[name]
        jobs.append(("split" if args.split_units else "whole", name, Path(e.source),
                     _command(real_ninja, build_file, e.outputs[0]), e.source))
    for spec in args.merge:
        a_name = spec.split("+", 1)[0]
        src = _merge(tree, spec, Path(_find(tree, a_name)).with_name("merged." + a_name))
        jobs.append(("merged", spec, src, _command(real_ninja, build_file, edges[a_name].outputs[0]),
                     edges[a_name].source))

    earlier = {}
    if args.all_cpu_from:
        earlier = {u["unit"]: u for u in json.loads(args.all_cpu_from.read_text())["units"] if u.get("rc") == 0}

    def one(job):
        group, name, source, cmd, unit_src = job
        d = out / "objects" / group
        d.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
        csv_path = out / f"{stem}.time.csv"
        argv_ = _retarget(cmd, unit_src, source, d / f"{stem}.o", csv_path)
        (out / f"{stem}.cmd").write_text(shlex.join(argv_) + "\n")
        if name in earlier:
            res = {k: earlier[name][k] for k in ("rc", "wall_s", "cpu_s", "max_rss_mib", "per_arch", "once")}
            res.update(unit=name, group=group, all_cpu_from=str(args.all_cpu_from))
        else:
            res = _run_unit(argv_, tree, out / f"{stem}.log")
            res.update(unit=name, group=group, **parse_time_csv(csv_path.read_text() if csv_path.is_file() else ""))
        print(f"{name}: rc {res['rc']}, {res['wall_s']:.0f} s wall, {res['cpu_s']:.0f} s CPU", flush=True)
        if args.per_arch and group != "merged":
            one = {}
            for arch in plan.archs:
                a_argv = _one_arch([x for x in argv_ if x not in ("--time", str(csv_path))], arch)
                a_dir = out / "objects" / f"{group}-{arch}"
                a_dir.mkdir(parents=True, exist_ok=True)
                a_argv[a_argv.index("-o") + 1] = str(a_dir / f"{stem}.o")
                r = _run_unit(a_argv, tree, out / f"{stem}.{arch}.log")
                one["sm_" + arch.split("+")[0].replace(".", "")] = r["cpu_s"]
                print(f"  {name} {arch} alone: rc {r['rc']}, {r['cpu_s']:.1f} s CPU", flush=True)
            n = len(one)
            host = (sum(one.values()) - res["cpu_s"]) / (n - 1) if n > 1 else None
            res.update(one_arch_cpu_s=one, host_cpu_s=None if host is None else round(host, 2),
                       device_cpu_s=None if host is None else {a: round(c - host, 2) for a, c in one.items()})
        return res

    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        units = list(pool.map(one, jobs))
    report = {"package": args.package, "version": version, "archs": list(plan.archs), "nvcc": plan.cuda_version,
              "compiler": plan.compiler.cxx, "torch": plan.torch_version, "jobs": args.jobs,
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(start)),
              "command": shlex.join([sys.executable, *sys.argv]), "units": units}
    (out / "arch_costs.json").write_text(json.dumps(report, indent=1))
    print(render(report))
    return 0 if all(u["rc"] == 0 for u in units) else 1


def render(report: dict) -> str:
    """One row per unit: its once-per-unit seconds and each arch's per-arch seconds: nvcc --time's phases (wall
    clock), and with --per-arch a second row of CPU seconds (host part h, then each arch's device part)."""
    archs = ["sm_" + a.split("+")[0].replace(".", "") for a in report["archs"]]
    head = "| unit | what | wall | CPU | once | " + " | ".join(archs) + " |"
    rows = [head, "|" + "---|" * (5 + len(archs))]
    for u in report["units"]:
        per = {a: sum(v.values()) for a, v in u["per_arch"].items()}
        rows.append(f"| {u['unit']} | nvcc --time (wall) | {u['wall_s']:.0f} | {u['cpu_s']:.0f} | "
                    f"{sum(u['once'].values()):.1f} | " + " | ".join(f"{per.get(a, 0):.1f}" for a in archs) + " |")
        if u.get("device_cpu_s"):
            rows.append(f"| {u['unit']} | CPU, each arch alone | | {sum(u['one_arch_cpu_s'].values()):.0f} | "
                        f"{u['host_cpu_s']:.1f} | " + " | ".join(f"{u['device_cpu_s'].get(a, 0):.1f}" for a in archs) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
