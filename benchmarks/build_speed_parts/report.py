"""Rendering: the table, the targets' verdicts, merging runs and repeats, the markdown report."""

from __future__ import annotations

import datetime as _dt
import re
import statistics

from .common import (
    PACKAGES,
    TARGET_BOUND_RATIO,
    TARGET_COLD_S,
    TARGET_SPEEDUP,
    TARGET_WARM_S,
)
from .outputs import wheel_package


def fmt_s(s: float | None) -> str:
    if s is None:
        return ""
    if s < 100:
        return f"{s:.1f} s"
    n = int(round(s))
    return f"{n} s ({n // 60}:{n % 60:02d})"


def fmt_rss(kb: int | None) -> str:
    return "" if not kb else f"{kb / 1024 / 1024:.2f} GiB" if kb >= 1024 * 1024 else f"{kb / 1024:.0f} MiB"


def fmt_bytes(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:.1f} MB"


def _status_wall(rec: dict | None) -> tuple[str, float | None, bool]:
    """(wall text, seconds or lower bound, finished) for one command's record."""
    if not rec:
        return "not run", None, False
    st = rec.get("status")
    if st == "done":
        return fmt_s(rec.get("wall_s")), rec.get("wall_s"), True
    if st == "failed":
        return f"failed (exit {rec.get('rc')}) after {fmt_s(rec.get('wall_s'))}", rec.get("wall_s"), False
    if st == "timeout":
        return f"> {fmt_s(rec.get('wall_s'))}, did not finish (timeout)", rec.get("wall_s"), False
    if st == "running":
        el = rec.get("elapsed_s")
        return (f"> {fmt_s(el)}, did not finish" if el else "started, did not finish"), el, False
    if st == "error":
        return f"error: {rec.get('error', '')[:120]}", None, False
    if st == "skipped":
        return f"skipped: {rec.get('note', '')}", None, False
    return str(st or "not run"), None, False


def upstream_total(up: dict | None) -> tuple[float | None, str]:
    """(total wall, state): state "done" (every package built: the measured total), "partial" (cut off or
    timed out: a lower bound from what ran: sequential, the finished walls plus the running one's elapsed
    time; concurrent, the longest), "failed" (a build failed), or "none" (nothing ran)."""
    if not up:
        return None, "none"
    pk = list((up.get("packages") or {}).values())
    if pk and all(r.get("status") == "done" for r in pk):
        if up.get("status") == "done" and up.get("wall_s"):
            return up["wall_s"], "done"
        walls = [r.get("wall_s") or 0 for r in pk]
        return (max(walls) if up.get("mode") == "concurrent" else sum(walls)), "done"
    if any(r.get("status") in ("failed", "error") for r in pk) or (up.get("status") == "error" and not pk):
        return None, "failed"
    walls = []
    for r in pk:
        w = r.get("wall_s") if r.get("status") in ("done", "timeout") else r.get("elapsed_s")
        if w:
            walls.append(w)
    if not walls:
        return None, "none"
    return (max(walls) if up.get("mode") == "concurrent" else sum(walls)), "partial"


def archs_text(archs: dict | list | None) -> str:
    if not archs:
        return ""
    if isinstance(archs, dict):
        items = list(archs.get("sass") or []) + list(archs.get("ptx") or [])
    else:
        items = list(archs)
    return ", ".join(items)


def render_table(results: dict) -> str:
    phases = results.get("phases") or {}
    packages = (results.get("settings") or {}).get("packages") or list(PACKAGES)
    sdists = (results.get("settings") or {}).get("sdists") or {}
    targets = {"cold_s": TARGET_COLD_S, "speedup": TARGET_SPEEDUP, "warm_s": TARGET_WARM_S,
               "bound_ratio": TARGET_BOUND_RATIO, **(results.get("targets") or {})}

    def label(name: str) -> str:
        f = (sdists.get(name) or {}).get("file") or (PACKAGES[name].sdist if name in PACKAGES else name)
        m = re.match(r"[A-Za-z0-9_]+-(.+)\.tar\.gz$", f)
        return f"{name} {m.group(1)}" if m else name

    rows = ["| build | wall | CPU time (user+sys) | peak RSS (largest process) | wheel size |", "|---|---|---|---|---|"]
    up = phases.get("upstream")
    mode = (up or {}).get("mode") or (results.get("settings") or {}).get("upstream_mode") or "sequential"
    if up:
        for name in packages:
            r = (up.get("packages") or {}).get(name)
            wall, _, _ = _status_wall(r) if r else ("not run", None, False)
            if r and r.get("status", "").startswith("not started"):
                wall = r["status"]
            a = archs_text((r or {}).get("archs"))
            rows.append(f"| upstream default, {label(name)}" + (f" ({a})" if a else "") + f" | {wall} | "
                        f"{fmt_s((r or {}).get('cpu_s'))} | {fmt_rss((r or {}).get('maxrss_kb'))} | "
                        f"{fmt_bytes(((r or {}).get('wheel') or {}).get('bytes'))} |")
        total, state = upstream_total(up)
        total_txt = {"done": fmt_s(total), "partial": f"> {fmt_s(total)}, did not finish",
                     "failed": "failed"}.get(state, "did not finish")
        size = sum(((r.get("wheel") or {}).get("bytes") or 0) for r in (up.get("packages") or {}).values())
        rows.append(f"| **upstream default, total** ({mode}) | **{total_txt}** | {fmt_s(up.get('cpu_s'))} | "
                    f"{fmt_rss(up.get('maxrss_kb'))} | {fmt_bytes(size) if size else ''} |")
    else:
        rows.append("| upstream default | not run | | | |")

    for phase in ("cold", "warm"):
        rec = phases.get(phase)
        if not rec:
            rows.append(f"| mamba-build {phase} | not run | | | |")
            continue
        wheels = rec.get("wheels") or {}
        if phase == "cold":
            built = rec.get("built") or {}
            for name in packages:
                b = built.get(name)
                w = wheels.get(name) or {}
                a = ", ".join((b or {}).get("archs") or [])
                rows.append(f"| mamba-build cold, {label(name)}: build" + (f" ({a})" if a else "")
                            + f" | {fmt_s(b['seconds']) if b else ''} | | | {fmt_bytes(w.get('bytes'))} |")
            installs = (results.get("plan") or {}).get("install", True)
            what = "plan, builds, arch check, smoke test" + (", install" if installs else "; no install")
            if rec.get("built_all_s") is not None:
                what += f"; builds at the same time, all in {fmt_s(rec['built_all_s'])}"
            if rec.get("stages_s"):
                what += "; stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in rec["stages_s"].items())
        else:
            cached = rec.get("cached") or []
            hit = len(cached) >= len(packages) and bool(cached)
            what = ("verified cache hit: " + ", ".join(wheel_package(c) for c in cached)) if cached else "no cache hit seen"
            if rec.get("built") and not hit:
                what += "; rebuilt: " + ", ".join(rec["built"])
        wall, _, _ = _status_wall(rec)
        size = sum((w.get("bytes") or 0) for w in wheels.values())
        rows.append(f"| **mamba-build {phase}, whole command** ({what}) | **{wall}** | {fmt_s(rec.get('cpu_s'))} | "
                    f"{fmt_rss(rec.get('maxrss_kb'))} | {fmt_bytes(size) if size else ''} |")
    return "\n".join(rows) + "\n\n" + "\n".join(target_lines(results, targets))


def bound_lines(results: dict, targets: dict) -> list[str]:
    """How close the cold build came to its CPU-work bound (CPU seconds of the whole command / CPUs), and what the
    plan predicted (one-core seconds of the 2-core machine: data/build_costs.toml)."""
    cold = (results.get("phases") or {}).get("cold") or {}
    cpus = (results.get("machine") or {}).get("cpus_usable") or (results.get("machine") or {}).get("cpus")
    plan = results.get("plan") or {}
    out = []
    if cold.get("cpu_s") and cpus:
        bound = cold["cpu_s"] / cpus
        ratio = cold["wall_s"] / bound
        goal = targets.get("bound_ratio")
        out.append(f"- CPU-work bound: {cold['cpu_s']:.0f} CPU s / {cpus} CPUs = {fmt_s(bound)}; cold wall / bound = "
                   f"{ratio:.2f}" + (f" (target <= {goal:.2f}): {'**pass**' if ratio <= goal else '**miss**'}" if goal else ""))
    if plan.get("predicted_build_s") is not None:
        out.append(f"- the plan predicted: build ~{plan['predicted_build_s']:.0f} s, CPU-work bound "
                   f"{plan.get('cpu_bound_s') or 0:.0f} s ({plan.get('cpu_work_s') or 0:.0f} CPU s / {plan.get('jobs')} "
                   f"slots; one-core seconds of the 2-core machine), nvcc --threads {plan.get('nvcc_threads')}, "
                   f"split units {plan.get('split_units')}")
    return out


def _unfinished_verdict(rec: dict | None, target: float) -> str:
    """The verdict for a compile phase that did not finish successfully."""
    if not rec:
        return "not run"
    wall, seconds, _ = _status_wall(rec)
    if rec.get("status") == "running" and (seconds or 0) < target:
        return f"not established ({wall}: cut off)"
    return f"**miss** ({wall})"


def _upstream_subset(results: dict) -> list[str]:
    """The upstream packages when they are fewer than the compiled ones (else [])."""
    st = results.get("settings") or {}
    pk, up = st.get("packages") or list(PACKAGES), st.get("upstream_packages")
    return list(up) if up and set(up) < set(pk) else []


def target_lines(results: dict, targets: dict) -> list[str]:
    phases = results.get("phases") or {}
    cold, warm, up = phases.get("cold"), phases.get("warm"), phases.get("upstream")
    lines = []
    cold_ok = bool(cold) and cold.get("status") == "done"
    c_s = cold.get("wall_s") if cold_ok else None
    pk = (results.get("settings") or {}).get("packages") or list(PACKAGES)
    which = "both packages" if len(pk) == 2 else ", ".join(pk) + " only"
    repeats = results.get("cold_repeats") or []
    if cold_ok and repeats:  # several cold runs of the same command: the median decides, the spread is reported
        walls = sorted(r["wall_s"] for r in repeats)
        c_s = statistics.median(walls)
        spread = walls[-1] - walls[0]
        verdict = ("" if targets.get("cold_s") is None else
                   f" (target < {targets['cold_s']:.0f} s): {'**pass**' if c_s < targets['cold_s'] else '**miss**'}")
        lines.append(f"- cold build ({which}, whole command), median of {len(walls)} cold runs: {fmt_s(c_s)}{verdict}; "
                     f"runs {', '.join(fmt_s(w) for w in walls)}; spread (max - min) {spread:.0f} s "
                     f"({100 * spread / c_s:.0f} % of the median)")
    elif cold_ok:
        if targets.get("cold_s") is None:
            lines.append(f"- cold build ({which}, whole command): {fmt_s(c_s)}")
        else:
            verdict = "**pass**" if c_s < targets["cold_s"] else "**miss**"
            lines.append(f"- cold build ({which}, whole command) under {targets['cold_s']:.0f} s: {fmt_s(c_s)}: {verdict}")
    elif targets.get("cold_s") is not None:
        lines.append(f"- cold build under {targets['cold_s']:.0f} s: " + _unfinished_verdict(cold, targets["cold_s"]))
    if cold_ok:
        lines += bound_lines(results, targets)
    total, state = upstream_total(up)
    goal = f"(target >= {targets['speedup']:.0f}x)"
    if not up:
        lines.append(f"- speedup over upstream's default build {goal}: not measured (upstream not run)")
    elif not cold_ok:
        lines.append(f"- speedup over upstream's default build {goal}: not measured (no successful cold build)")
    elif state == "done" and _upstream_subset(results):
        sp = total / c_s
        only = ", ".join(_upstream_subset(results))
        verdict = "**pass** (already at the lower bound)" if sp >= targets["speedup"] else "**not established**"
        lines.append(f"- speedup >= {sp:.1f}x = upstream {only} alone {fmt_s(total)} (a lower bound of upstream's default "
                     f"install of both: pip builds them one after the other) / cold {fmt_s(c_s)} {goal}: {verdict}")
    elif state == "done":
        sp = total / c_s
        lines.append(f"- speedup = upstream total {fmt_s(total)} / cold {fmt_s(c_s)} = {sp:.1f}x {goal}: "
                     f"{'**pass**' if sp >= targets['speedup'] else '**miss**'}")
    elif state == "partial":
        sp = total / c_s
        verdict = ("**pass** (already at the lower bound)" if sp >= targets["speedup"]
                   else "**not established**: upstream stopped before the ratio could reach the target")
        lines.append(f"- speedup > {sp:.1f}x = upstream > {fmt_s(total)} (did not finish) / cold {fmt_s(c_s)} {goal}: {verdict}")
    elif state == "failed":
        lines.append(f"- speedup over upstream's default build {goal}: not measured (upstream's build failed; see its log)")
    else:
        lines.append(f"- speedup over upstream's default build {goal}: not measured (upstream: {up.get('status')})")
    if warm and warm.get("status") == "done":
        w_s = warm["wall_s"]
        hit = bool(warm.get("cached"))
        lines.append(f"- warm rebuild under {targets['warm_s']:.0f} s: {fmt_s(w_s)}"
                     + ("" if hit else " (no `cached` line in its output)") + f": {'**pass**' if w_s < targets['warm_s'] else '**miss**'}")
    else:
        lines.append(f"- warm rebuild under {targets['warm_s']:.0f} s: " + _unfinished_verdict(warm, targets["warm_s"]))
    return lines


def machine_line(m: dict) -> str:
    if not m:
        return "unknown"
    gpu = ", ".join(m.get("gpus") or []) or "no GPU"
    parts = [f"{m.get('hostname') or 'host'}: {m.get('cpu_model') or 'CPU ?'} x {m.get('cpus_usable') or m.get('cpus')} CPUs",
             f"{m.get('mem_gib')} GiB RAM", gpu]
    if m.get("nvcc"):
        parts.append(f"nvcc {m['nvcc'].split('release')[-1].strip(' ,')} at {m.get('cuda_home')}")
    if m.get("torch"):
        parts.append(f"torch {m['torch']}")
    if m.get("python"):
        parts.append(f"Python {m['python']}")
    return ", ".join(parts)


def merge_runs(first: dict, *more: dict) -> dict:
    """One report of several runs on the same machine (``--report-only A --merge B``): A's phases, plus the upstream
    packages that only a later run built (each of them built alone, so the upstream mode is "sequential": one
    after the other, as `pip install` of both does) and every run's kernel tables. ``merged_from`` names them."""
    import copy

    out = copy.deepcopy(first)
    up = out.setdefault("phases", {}).setdefault("upstream", {"mode": "sequential", "packages": {}})
    kern = out["phases"].get("kernels")
    out["merged_from"] = [first.get("command")]
    out["merged_how"] = []
    for other in more:
        how = _same_run(first, other)
        same = how.startswith("same machine")
        out["merged_from"].append(other.get("command"))
        out["merged_how"].append(how)
        oup = (other.get("phases") or {}).get("upstream") or {}
        for name, rec in (oup.get("packages") or {}).items():
            if (up["packages"].get(name) or {}).get("status") != "done":
                up["packages"][name] = dict(rec, run=other.get("started"))
        ok = (other.get("phases") or {}).get("kernels")
        if ok and ok.get("markdown"):
            md = ok["markdown"].strip()
            if not same:  # another run's tables compare THAT run's wheels, not this run's
                md = f"(from the run of {other.get('started')}: its own wheels, NOT this run's)\n\n" + md
            if kern is None:
                kern = out["phases"]["kernels"] = dict(ok, markdown=md)
                if not same:
                    kern["note"] = f"kernel tables of another run ({other.get('started')}), not of this run's wheels"
            else:
                kern["markdown"] = (kern.get("markdown") or "").rstrip() + "\n\n" + md
                kern["note"] = ("both packages, one kernel_speed.py run per package (one per benchmark run)" if same
                                else "kernel tables of several runs; those of other runs compare their own wheels")
        if same:
            out["finished"] = other.get("finished") or out.get("finished")
    pk = list(up["packages"].values())
    if pk and all(r.get("status") == "done" for r in pk):
        up.update(status="done", mode="sequential", wall_s=round(sum(r.get("wall_s") or 0 for r in pk), 3),
                  cpu_s=round(sum(r.get("cpu_s") or 0 for r in pk), 3),
                  maxrss_kb=max((r.get("maxrss_kb") or 0) for r in pk))
        up.pop("timeout_reason", None)
        out.setdefault("settings", {})["upstream_packages"] = list(up["packages"])
    return out


def _same_run(first: dict, other: dict) -> str:
    """How another run relates to the first: the same lease (same host, started within 2 h of the first's end),
    or a different run, named, whose numbers are NOT from the same run."""
    def when(text):
        try:
            return _dt.datetime.strptime((text or "")[:19], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
    a, b = when(first.get("finished") or first.get("started")), when(other.get("started"))
    host_a, host_b = (first.get("machine") or {}).get("hostname"), (other.get("machine") or {}).get("hostname")
    if a and b and host_a == host_b and abs((b - a).total_seconds()) <= 7200:
        return "same machine, same lease, right after"
    return (f"a different run: {other.get('started')} on {host_b or 'another machine'} ({machine_line(other.get('machine') or {})}); "
            "its numbers are NOT from the same run")


def add_repeats(results: dict, runs: list[dict]) -> dict:
    """Several cold runs of the same command (``--report-only A --repeat B --repeat C``): the table shows A, the
    target line the median and spread of every run's cold wall."""
    reps = []
    for k, r in enumerate([results, *runs], 1):
        cold = (r.get("phases") or {}).get("cold") or {}
        if cold.get("status") == "done":
            reps.append({"run": k, "wall_s": cold["wall_s"], "cpu_s": cold.get("cpu_s"), "started": r.get("started")})
    out = dict(results)
    out["cold_repeats"] = reps
    return out


def render_report(results: dict) -> str:
    m = results.get("machine") or {}
    plan = results.get("plan") or {}
    phases = results.get("phases") or {}
    lines = [f"- machine: {machine_line(m)}",
             f"- date: {results.get('started')}" + (f" to {results['finished']}" if results.get("finished") else " (unfinished)"),
             f"- command: `{results.get('command')}`" + (f" (git {m['git']})" if m.get("git") else "")]
    for k, extra in enumerate((results.get("merged_from") or [])[1:]):
        how = (results.get("merged_how") or [])[k] if k < len(results.get("merged_how") or []) else \
            "same machine, same lease, right after"
        lines.append(f"- merged with the run of `{extra}` ({how})")
    for r in results.get("cold_repeats") or []:
        lines.append(f"- cold run {r['run']}: {fmt_s(r['wall_s'])} wall, {fmt_s(r.get('cpu_s'))} CPU ({r['started']})")
    if plan:
        lines.append(f"- mamba-build plan: archs {', '.join(plan.get('archs') or [])}, "
                     f"{plan.get('schedule') or 'sequential'} schedule, jobs {plan.get('jobs')}, "
                     f"compiler {plan.get('compiler')}, toolkit {plan.get('cuda_home')}, install {plan.get('install')}")
    if m.get("missing_modules"):
        lines.append(f"- modules missing from that Python: {', '.join(m['missing_modules'])}")
    up = phases.get("upstream")
    lines.append("")
    lines.append(render_table(results))
    lines.append("")
    notes = ["upstream default = the pristine sdist built with `pip wheel --no-build-isolation --no-deps -v`, only "
             "`<PREFIX>FORCE_BUILD=TRUE` and `CUDA_HOME` set, MAX_JOBS unset (ninja's default), upstream's own arch "
             "list and flags. `pip install` would first try to download a prebuilt wheel from GitHub; the benchmark "
             "machine has no network, so that cannot be the default path here, and FORCE_BUILD makes it build."]
    if up:
        notes.append(f"upstream mode: {up.get('mode')} ("
                     + ("one package after the other, as `pip install causal-conv1d mamba-ssm` does)" if up.get("mode") != "concurrent"
                        else "both packages at the same time: faster for upstream, so a conservative baseline)"))
        if up.get("timeout_reason"):
            notes.append(f"upstream's time limit: {fmt_s(up.get('timeout_s'))} ({up['timeout_reason']}); a build "
                         "cut off there gives a lower bound, never a measured total")
    notes.append("wall = elapsed time of the command; CPU time = user+sys of the whole process tree; peak RSS = the "
                 "largest single process (getrusage(RUSAGE_CHILDREN) of a wrapper process per command)")
    if "cold" in phases:
        notes.append("mamba-build per-package rows: the build seconds `compile` printed (`built ... in Ns`); "
                     "with the pool schedule they overlap")
    lines += [f"- {n}" for n in notes]
    for name, title in (("kernels-aa", "Kernel timing noise floor (`benchmarks/kernel_speed.py`, mamba-build's cold "
                                       "wheels against themselves, before the upstream phase)"),
                        ("kernels", "Kernel parity (`benchmarks/kernel_speed.py`, upstream vs mamba-build cold wheels)")):
        k = phases.get(name)
        if not k:
            continue
        lines.append("")
        lines.append(title + ":")
        if k.get("note") and k.get("status") != "skipped":
            lines.append(f"- {k['note']}")
        if k.get("markdown"):
            lines.append("")
            lines.append(k["markdown"].strip())
        else:
            lines.append(f"- {_status_wall(k)[0]}" + (f" (log: {k['log']})" if k.get("log") else ""))
            lines += [f"  `{ln.strip()[:300]}`" for ln in k.get("error_tail") or []]
    return "\n".join(lines)
