#!/usr/bin/env bash
# GPU (H200), issue 17/18: where the smoke test's time goes, on a FRESH machine (Triton's cache empty) and again on
# the same wheels once Triton's cache holds the Mamba2 kernels. One device call (~6 min):
#   bash scripts/gpu/smoke_timing.sh        (carry [".carry", ".whl"]: the two sdists, a ninja >= 1.13 wheel)
# 1. one cold `compile` of both packages for the visible GPU (the cold phase of benchmarks/build_speed.py: native,
#    --skip-missing-deps, a fresh cache); its smoke.log (each check's record with "t", seconds since the checks
#    began: mamba_build/build/smoke/checks.py) goes to $OUT/first-smoke.log;
# 2. the smoke test again on the same wheels (smoke_test_wheels, a fresh staging dir, Triton's cache now warm):
#    $OUT/second-smoke.log; 3. $OUT/smoke-timing.md: the seconds each check took in both runs.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; S=/tmp/smoke-timing; rm -rf "$S"; mkdir -p "$S"
PY=$(command -v python3)
"$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade .whl/ninja-*.whl >/dev/null 2>&1
export PYTHONUNBUFFERED=1
{ date -u '+%F %T UTC'; nproc; nvidia-smi -L; echo "Triton cache: $(du -sh ~/.triton/cache 2>/dev/null | cut -f1 || echo none)"; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
"$PY" benchmarks/build_speed.py --sdists .carry/sdists --out "$S/n" --python "$PY" --phases cold --timeout-compile 420 \
  --extra-compile-args=--skip-missing-deps > "$OUT/build_speed.log" 2>&1
echo "build_speed exit $?"; sed -n '/^| build/,/^$/p' "$S/n/table.md" | tee "$OUT/table.md"
# compile keeps a run's smoke.log only while the run dir exists: look under the cache, then the whole out dir
f=$(find "$S/n" -name smoke.log 2>/dev/null | head -1); [ -n "$f" ] && cp "$f" "$OUT/first-smoke.log" || echo "no first smoke.log under $S/n"
"$PY" - "$S" "$OUT" <<'PY'
import json, sys, time
from pathlib import Path
from mamba_build.build.smoke import smoke_test_wheels
S, OUT = Path(sys.argv[1]), Path(sys.argv[2])
wheels = sorted((S / "n" / "wheels-cold").glob("*.whl"))
t = time.monotonic()
rep = smoke_test_wheels(wheels, python=sys.executable, workdir=S / "resmoke", timeout=600)
print(f"second smoke test: {rep.summary()} in {time.monotonic() - t:.1f} s (wall, staging included)")
(OUT / "second-smoke.log").write_text(rep.log_path.read_text())

def times(log: Path) -> dict:
    """what ran (each "running" record: an import, a suite) -> its seconds (the next record that starts
    something else or ends the checks, minus its own t)."""
    out, cur, t0 = {}, None, 0.0
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "t" not in rec or not ("running" in rec or "result" in rec):
            continue
        if cur is not None:
            out[cur] = round(rec["t"] - t0, 2)
        cur, t0 = rec.get("running"), rec["t"]
    return out

first = times(OUT / "first-smoke.log") if (OUT / "first-smoke.log").exists() else {}
second = times(OUT / "second-smoke.log")
rows = ["| what ran | first run (Triton cache empty), s | second run, s |", "|---|---:|---:|"]
for name in dict.fromkeys([*first, *second]):
    rows.append(f"| {name} | {first.get(name, '')} | {second.get(name, '')} |")
rows.append(f"| **sum** | {sum(first.values()):.1f} | {sum(second.values()):.1f} |")
(OUT / "smoke-timing.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
PY
