"""Are two builds' GPU kernels the same machine code? (static kernel parity, no GPU needed)

Kernel speed is decided by the SASS (the GPU machine code) nvcc leaves in the `.so`. If every kernel of
build B has exactly the SASS of the same kernel in build A, B's kernels run exactly as fast as A's:
this is the strongest form of issue 5's "the kernels are not slower", and it needs no GPU. It answers
for mamba-build's speed-ups one by one:

- ``--split-compile 0`` (nvcc parallelises its optimiser; NVIDIA documents "minimal (if any) impact on
  performance" -- here we check: none),
- the ``split-bwd-units`` recipe (the same templates compiled in 18 units instead of 1),
- the arch list (upstream builds 9 archs, we build one: nvcc compiles each ``-gencode`` on its own, so
  upstream's sm_90 code equals an sm_90-only build with the same flags).

Usage::

    python benchmarks/sass_parity.py A B [--arch 90 | --arch 75,80,90 | --arch all] [--json out.json]

A and B are wheels, shared objects, object files, or directories (every .whl, .so and .o in them, together:
a split build's units on one side, the whole unit on the other). Every cubin for the arch is disassembled with
cuobjdump (the toolkit's, or the one Triton ships); kernels are matched by mangled name, and their
instruction text (with encodings) must be identical. Exit 0: identical; 1: some kernel differs or is
missing; 2: usage error. Where timings on a GPU are wanted too, see benchmarks/kernel_speed.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_ARCH = re.compile(r"^\s*arch = sm_(\d+)", re.MULTILINE)
_FUNC = re.compile(r"^\s*Function : (\S+)\s*$")
_CODE = re.compile(r"/\*[0-9a-f]{4,}\*/\s*(.*?)\s*;?\s*/\* (0x[0-9a-f]+) \*/")
_ENC2 = re.compile(r"^\s*/\* (0x[0-9a-f]+) \*/\s*$")


def cuobjdump() -> Path:
    from mamba_build.dist.fatbin import find_cuobjdump

    found = find_cuobjdump()
    if found is None:
        raise SystemExit("sass_parity: no cuobjdump found (CUDA toolkit or `pip install triton`)")
    return found


def objects(path: Path, tmp: Path) -> list[Path]:
    """The binaries to disassemble: the extension modules inside a wheel, or the file itself."""
    if path.is_dir():
        return [o for f in sorted(path.rglob("*")) if f.is_file() and f.suffix in (".whl", ".so", ".o")
                for o in objects(f, tmp)]
    if path.suffix == ".whl":
        out = []
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.endswith(".so"):
                    target = tmp / hashlib.sha256(str(path).encode()).hexdigest()[:8] / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(name))
                    out.append(target)
        return out
    return [path]


def kernels(binary: Path, arch: int, tool: Path) -> dict[str, str]:
    """{mangled kernel name: SASS text (instructions and encodings)} for one arch."""
    res = subprocess.run([str(tool), "-sass", "-arch", f"sm_{arch}", str(binary)], capture_output=True, text=True,
                         timeout=1800)
    if res.returncode != 0:  # a binary without that arch: cuobjdump refuses the filter, so read it all
        res = subprocess.run([str(tool), "-sass", str(binary)], capture_output=True, text=True, check=True, timeout=1800)
    text = res.stdout
    found: dict[str, str] = {}
    current_arch, name, body = None, None, []

    def flush():
        if name is not None and current_arch == arch:
            found[name] = "\n".join(body)

    for line in text.splitlines():
        m = _ARCH.match(line)
        if m:
            flush()
            name, body, current_arch = None, [], int(m.group(1))
            continue
        m = _FUNC.match(line)
        if m:
            flush()
            name, body = m.group(1), []
            continue
        if name is None:
            continue
        m = _CODE.search(line)
        if m:
            body.append(f"{m.group(1)} {m.group(2)}")
            continue
        m = _ENC2.match(line)
        if m:
            body.append(m.group(1))
    flush()
    return found


def collect(path: Path, arch: int, tool: Path, tmp: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for obj in objects(path, tmp):
        out.update(kernels(obj, arch, tool))
    return out


def compare(a: dict[str, str], b: dict[str, str]) -> dict:
    names = sorted(set(a) | set(b))
    differ = [n for n in names if n in a and n in b and a[n] != b[n]]
    return {"kernels_a": len(a), "kernels_b": len(b), "identical": sum(1 for n in names if a.get(n) == b.get(n)),
            "only_in_a": [n for n in names if n not in b], "only_in_b": [n for n in names if n not in a],
            "differ": differ, "instructions_a": sum(s.count("\n") + 1 for s in a.values()),
            "same": bool(names) and not differ and set(a) == set(b)}


def archs_in(binary: Path, tool: Path) -> set[int]:
    text = subprocess.run([str(tool), "-lelf", str(binary)], capture_output=True, text=True, timeout=600).stdout
    return {int(m) for m in re.findall(r"\.sm_(\d+)[a-z]?\.cubin", text)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--arch", default="90",
                   help="SM number(s) whose SASS is compared: 90 (default), a list 75,80,90, or all (every arch in A)")
    p.add_argument("--json", type=Path, help="write the comparison here")
    args = p.parse_args(argv)
    for f in (args.a, args.b):
        if not f.exists():
            print(f"sass_parity: {f} does not exist", file=sys.stderr)
            return 2
    tool = cuobjdump()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.arch == "all":
            archs = sorted(set().union(*(archs_in(o, tool) for o in objects(args.a, Path(tmp)))))
        else:
            archs = [int(x) for x in args.arch.replace(" ", "").split(",") if x]
        for arch in archs:
            a = collect(args.a, arch, tool, Path(tmp))
            b = collect(args.b, arch, tool, Path(tmp))
            result = compare(a, b)
            result.update({"a": str(args.a), "b": str(args.b), "arch": arch, "cuobjdump": str(tool)})
            results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results[0] if len(results) == 1 else results, indent=1))
    rc = 0
    for result in results:
        arch, n = result["arch"], result["kernels_a"]
        if not n:
            print(f"sass_parity: no sm_{arch} kernels in {args.a}", file=sys.stderr)
            rc = max(rc, 2)
            continue
        verdict = "IDENTICAL" if result["same"] else "DIFFERENT"
        names = len(set(result["only_in_a"]) | set(result["only_in_b"])) + result["identical"] + len(result["differ"])
        print(f"sm_{arch}: {verdict}: {result['identical']} of {names} kernels identical "
              f"({result['instructions_a']} instructions in A); only in A: {len(result['only_in_a'])}, only in B: "
              f"{len(result['only_in_b'])}, differing: {len(result['differ'])}")
        for k in result["differ"][:10] + result["only_in_a"][:5] + result["only_in_b"][:5]:
            print(f"  {k}")
        if not result["same"]:
            rc = max(rc, 1)
    return rc if results else 2


if __name__ == "__main__":
    sys.exit(main())
