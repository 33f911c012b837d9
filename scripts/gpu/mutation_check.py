#!/usr/bin/env python3
"""GPU: does the smoke test catch broken kernels? Builds both packages, then each mutant of
tests/mutants/mutants.toml (a deliberate bug in a copy of a real kernel), and smoke-tests every build.

    python3 scripts/gpu/mutation_check.py [--budget 330] [--sdists .carry/sdists] [--out $OUT]

1. fetch + patch causal-conv1d 1.7.0 and mamba-ssm 2.3.2.post1 (the carried sdists; no network needed), build
   both at once (schedule sequential: each package's own ninja in its own tree, so a rebuild there recompiles
   only what changed), and smoke-test them: the control, which must pass -- its report (every check's worst
   element) goes to control.json;
2. per package, one mutant after the other: apply it in the tree, rebuild (ninja recompiles the one mutated
   unit; setuptools relinks), take it back, smoke-test the mutant wheel (with the good causal-conv1d wheel
   beside a mamba-ssm mutant) while the next one builds. The two packages' chains run at the same time;
3. a mutant is CAUGHT when every check it `expect`s failed and every `must_pass` one passed;
4. with the time left: upstream's own tests of the good wheels, sampled (`mamba-build test`).
Everything is written to $OUT as it happens (mutation.json, mutation.md, control.json, logs/); a mutant that
would not fit in the budget is reported "not run". Exit 0: the control passed and every mutant run was caught.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from mamba_build.build.patching import apply_patches, raise_for_missing  # noqa: E402
from mamba_build.build.pipeline import build_wheel, patch_options  # noqa: E402
from mamba_build.plan.build_plan import CompileOptions  # noqa: E402
from mamba_build.plan.resolve import resolve  # noqa: E402
from mamba_build.build.smoke.stage import smoke_test_wheels  # noqa: E402
from mamba_build.build.sources import fetch  # noqa: E402
from tests import mutants  # noqa: E402

VERSIONS = {"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}
SDISTS = {"causal-conv1d": "causal_conv1d-1.7.0.tar.gz", "mamba-ssm": "mamba_ssm-2.3.2.post1.tar.gz"}
# seconds a mutant needs on the H200 (one unit + relink + wheel + smoke test), to keep within the budget
COST = {"causal-conv1d": 45, "mamba-ssm": 100}


class Run:
    def __init__(self, out: Path, budget: float):
        self.out, self.budget, self.start = out, budget, time.monotonic()
        self.lock = threading.Lock()
        self.doc: dict = {"machine": {}, "plan": {}, "control": None, "mutants": [], "upstream_tests": None}
        (out / "logs").mkdir(parents=True, exist_ok=True)
        self.logf = open(out / "mutation.log", "a", encoding="utf-8")

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def say(self, msg: str) -> None:
        line = f"[{self.elapsed():6.1f}s] {msg}"
        with self.lock:
            print(line, flush=True)
            self.logf.write(line + "\n")
            self.logf.flush()

    def save(self) -> None:
        with self.lock:
            self.doc["elapsed_s"] = round(self.elapsed(), 1)
            tmp = self.out / "mutation.json.tmp"
            tmp.write_text(json.dumps(self.doc, indent=1, default=str), encoding="utf-8")
            tmp.replace(self.out / "mutation.json")
            (self.out / "mutation.md").write_text(table(self.doc), encoding="utf-8")


def table(doc: dict) -> str:
    c = doc.get("control") or {}
    lines = [f"control (unmutated build): {c.get('verdict', 'not run')} on {c.get('device')}; "
             f"{c.get('failed') or 'no check failed'}", "",
             "| mutant | bug | unit rebuilt | build s | verdict | failing checks |", "|---|---|---|---|---|---|"]
    for m in doc["mutants"]:
        lines.append(f"| {m['id']} | {m['bug']} | {m['unit']} | {m.get('build_s', '')} | {m.get('verdict', 'smoke test running')} | "
                     f"{', '.join(m.get('failing', [])) or m.get('why', '')} |")
    return "\n".join(lines) + "\n"


def report_dict(rep) -> dict:
    return {"verdict": rep.verdict, "device": rep.device, "passed": rep.passed,
            "failed": [c.name for c in rep.failed], "checks": [asdict(c) for c in rep.checks],
            "log": str(rep.log_path)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdists", type=Path, default=REPO / ".carry" / "sdists")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/out")))
    ap.add_argument("--work", type=Path, default=Path("/tmp/mutation"))
    ap.add_argument("--budget", type=float, default=330.0, help="seconds for everything (the device lease's share)")
    ap.add_argument("--packages", default="causal-conv1d,mamba-ssm")
    ap.add_argument("--only", default="", help="comma-separated mutant ids (default: all)")
    ap.add_argument("--arch", default="native")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--upstream-sample", type=int, default=2000, help="upstream tests per package at the end (0: none)")
    args = ap.parse_args()

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    run = Run(out, args.budget)
    names = [n for n in args.packages.split(",") if n]
    only = {x for x in args.only.split(",") if x}
    gpu = (subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
           if shutil.which("nvidia-smi") else "no nvidia-smi: no GPU")
    run.doc["machine"] = {"gpu": gpu, "cpus": os.cpu_count(), "python": sys.executable,
                          "platform": platform.platform(), "budget_s": args.budget}
    sources = {n: str(args.sdists / SDISTS[n]) if (args.sdists / SDISTS[n]).is_file() else "pypi" for n in names}
    opts = CompileOptions(packages=tuple(names), versions={n: VERSIONS[n] for n in names}, sources=sources,
                          arch=args.arch, jobs=args.jobs, schedule="sequential", install=False, use_cache=False,
                          wheel_dir=str(args.work / "wheelhouse"), build_dir=str(args.work / "builds"),
                          keep_build=True, timeout=1800)
    plan = resolve(opts)
    run.doc["plan"] = {"archs": plan.archs, "jobs": plan.jobs, "split_units": plan.split_units,
                       "split_units_reason": plan.split_units_reason, "python": plan.python,
                       "torch": plan.torch_version, "cuda": plan.cuda_version, "sources": sources}
    run.say(f"plan: archs {plan.archs}, {plan.jobs} jobs, split units {plan.split_units}, torch {plan.torch_version}")
    pkgs = {p.name: p for p in plan.packages}
    trees = {}
    for name, pkg in pkgs.items():
        fetched = fetch(pkg.name, pkg.version, pkg.source, args.work / "src")
        results = apply_patches(fetched.tree, pkg.name, fetched.version, patch_options(plan))
        raise_for_missing(results, fetched.tree, pkg.name, fetched.version)
        trees[name] = fetched.tree
        run.say(f"patched {name}: " + ", ".join(f"{r.recipe}: {r.status.value}" for r in results))

    def build(name: str, label: str) -> tuple[Path, float]:
        t = time.monotonic()
        wheel = build_wheel(plan, pkgs[name], trees[name], args.work / "wheels" / label / name,
                            out / "logs" / f"build-{label}-{name}.log", show_progress=False)
        return wheel, round(time.monotonic() - t, 1)

    def smoke(label: str, wheels: list[Path]):
        rep = smoke_test_wheels(wheels, python=plan.python, workdir=args.work / "smoke" / label, timeout=900)
        if rep.log_path and rep.log_path.is_file():
            shutil.copy2(rep.log_path, out / "logs" / f"smoke-{label}.log")
        return rep

    with concurrent.futures.ThreadPoolExecutor(len(names)) as ex:
        futs = {n: ex.submit(build, n, "good") for n in names}
        good = {}
        for n, f in futs.items():
            good[n], secs = f.result()
            run.say(f"built {n} (good) in {secs} s: {good[n].name}")
    run.doc["good_build_s"] = round(run.elapsed(), 1)
    smokes = concurrent.futures.ThreadPoolExecutor(2)
    control = smokes.submit(smoke, "control", list(good.values()))

    def chain(name: str) -> None:
        for m in mutants.load(name):
            if only and m.id not in only:
                continue
            entry = {"id": m.id, "package": name, "bug": m.bug, "unit": m.compiled, "expect": list(m.expect)}
            with run.lock:
                run.doc["mutants"].append(entry)
            if run.elapsed() + COST[name] > args.budget:
                entry.update(verdict="not run", why=f"the budget ({args.budget:.0f} s) would be exceeded")
                run.say(f"{m.id}: not run (budget)")
                run.save()
                continue
            applied = mutants.apply(m, trees[name])
            try:
                wheel, secs = build(name, m.id)
            except BaseException as exc:  # noqa: BLE001 - a mutant that does not build is reported, not fatal
                entry.update(verdict="did not build", why=str(exc)[:2000])
                run.say(f"{m.id}: DID NOT BUILD: {str(exc)[:300]}")
                run.save()
                continue
            finally:
                applied.revert()
            entry["build_s"] = secs
            run.say(f"{m.id}: built in {secs} s, smoke test running")
            companions = [good[n] for n in good if n != name and name == "mamba-ssm"]
            entry["future"] = smokes.submit(smoke, m.id, [wheel, *companions])

    with concurrent.futures.ThreadPoolExecutor(len(names)) as ex:
        chains = [ex.submit(chain, n) for n in names]
        ctrl = control.result()
        run.doc["control"] = report_dict(ctrl)
        (out / "control.json").write_text(json.dumps(run.doc["control"], indent=1, default=str), encoding="utf-8")
        run.say(f"control: {ctrl.summary()}" + (f" -- FAILED: {[c.name for c in ctrl.failed]}" if ctrl.failed else ""))
        run.save()
        for c in chains:
            c.result()
    for entry in run.doc["mutants"]:
        fut = entry.pop("future", None)
        if fut is None:
            continue
        rep = fut.result()
        m = next(x for x in mutants.load() if x.id == entry["id"])
        failing = {c.name for c in rep.checks if c.status == "fail"}
        passing = {c.name for c in rep.checks if c.status == "ok"}
        caught, why = m.judge(failing, passing)
        entry.update(verdict="CAUGHT" if caught else "MISSED", why=why, failing=sorted(failing),
                     smoke=rep.verdict, details={c.name: c.detail for c in rep.checks if c.status == "fail"})
        run.say(f"{m.id} ({m.bug}): {entry['verdict']}: {why}; failing: {sorted(failing)}")
        run.save()
    smokes.shutdown()

    left = args.budget - run.elapsed()
    if args.upstream_sample and left > 40:
        from mamba_build.commands.test import run_tests

        try:
            runs = run_tests(names, python=plan.python, wheels=[str(w) for w in good.values()],
                             sample=args.upstream_sample, seed=0, time_budget=max(10.0, (left - 25) / max(1, len(names))),
                             sources=sources, workdir=args.work / "upstream", timeout=left)
        except Exception as exc:  # noqa: BLE001 - informational; the mutants' verdicts stand
            run.doc["upstream_tests"] = {"error": f"{type(exc).__name__}: {exc}"}
            run.say(f"upstream tests: error: {exc}")
        else:
            run.doc["upstream_tests"] = [r.to_json() for r in runs]
            for r in runs:
                run.say(r.summary())
                for test, text in r.failures[:5]:
                    run.say(f"  FAILED {test}: {text.strip().splitlines()[-1][:200] if text.strip() else ''}")
    else:
        run.say(f"upstream tests: not run ({left:.0f} s left)")
    run.save()
    ok = bool(run.doc["control"] and run.doc["control"]["passed"]) and all(
        m["verdict"] == "CAUGHT" for m in run.doc["mutants"] if m["verdict"] != "not run")
    run.say(f"finished: {'OK' if ok else 'NOT OK'} (control {run.doc['control']['verdict']}, "
            + ", ".join(f"{m['id']} {m['verdict']}" for m in run.doc["mutants"]) + ")")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
