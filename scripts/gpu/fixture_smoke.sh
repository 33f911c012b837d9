#!/usr/bin/env bash
# The fixture's numerical smoke check on a real GPU: `compile --package mb-fixture` must pass (exit 0, the check
# "mb_fixture_cuda scale_add" ok in every dtype, CPU tensors refused), and the same package with one deliberate bug
# in its kernel (x - alpha*y) must fail that check (exit 7, nothing copied out).
# Run from the repo root:  bash scripts/gpu/fixture_smoke.sh   (OUT=<dir> collects the results)
set -u
. "$(dirname "$0")/machine.sh"  # OUT, MAMBA_BUILD_CACHE, PY, $OUT/machine.txt
( time "$PY" -m mamba_build compile --package mb-fixture --source csrc/fixture --arch 9.0 --no-install \
    --wheel-dir /tmp/mb-fx --json ) > "$OUT/fixture.json" 2> "$OUT/fixture.txt"
echo "compile exit $?" >> "$OUT/fixture.txt"
ls -l /tmp/mb-fx >> "$OUT/fixture.txt" 2>&1
rm -rf /tmp/fx-mutant && cp -r csrc/fixture /tmp/fx-mutant
sed -i 's/static_cast<float>(x\[i\]) + alpha \*/static_cast<float>(x[i]) - alpha */' /tmp/fx-mutant/csrc/fixture_kernel.cu
grep -n 'alpha \*' /tmp/fx-mutant/csrc/fixture_kernel.cu > "$OUT/mutant.txt"
( time "$PY" -m mamba_build compile --package mb-fixture --source /tmp/fx-mutant --arch 9.0 --no-install \
    --wheel-dir /tmp/mb-fx-mutant ) >> "$OUT/mutant.txt" 2>&1
echo "compile exit $?" >> "$OUT/mutant.txt"
ls -l /tmp/mb-fx-mutant >> "$OUT/mutant.txt" 2>&1
find "$MAMBA_BUILD_CACHE"/builds -name smoke.log -exec cp --parents {} "$OUT" \; 2>/dev/null
true
