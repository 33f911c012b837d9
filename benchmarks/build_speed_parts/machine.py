"""The sdists (upstream's arch list, download if absent) and the machine (fingerprint, compile's dry-run plan)."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import tarfile
from pathlib import Path

from mamba_build.hashing import sha256_file  # the project's one copy

from .common import REPO, Package, run_text

_GENCODE = re.compile(r'"arch=compute_(\d+)[af]?,code=sm_(\d+)[af]?"')


def upstream_arch_list(sdists: list[Path]) -> str:
    """The -gencode archs every sdist's setup.py names (CUDA 13 takes them all), in the first one's order, as an
    --arch list ("7.5,8.0,..."); the sdists must agree (causal-conv1d 1.7.0 and mamba-ssm 2.3.2.post1 do)."""
    lists = []
    for sdist in sdists:
        with tarfile.open(sdist) as tf:
            member = next(m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/setup.py"))
            text = tf.extractfile(member).read().decode("utf-8", "replace")
        archs = [f"{int(c) // 10}.{int(c) % 10}" for c, _ in _GENCODE.findall(text)]
        lists.append(list(dict.fromkeys(archs)))
    if not lists or not lists[0] or any(set(x) != set(lists[0]) for x in lists):
        raise SystemExit("--arch upstream: the sdists' setup.py name different arch lists: "
                         + "; ".join(f"{s.name}: {','.join(x)}" for s, x in zip(sdists, lists, strict=True)))
    return ",".join(lists[0])


def ensure_sdist(sdists: Path, pkg: Package) -> Path:
    """The sdist in --sdists; downloaded with curl from PyPI's simple index (sha256 checked) if absent."""
    path = sdists / pkg.sdist
    if path.exists():
        return path
    sdists.mkdir(parents=True, exist_ok=True)
    index = run_text(["curl", "-fsSL", f"https://pypi.org/simple/{pkg.name}/"], timeout=120)
    if not index:
        raise SystemExit(f"{path} is missing and https://pypi.org/simple/{pkg.name}/ could not be read: "
                         f"put {pkg.sdist} into {sdists}")
    m = re.search(r'href="([^"]*/' + re.escape(pkg.sdist) + r'(?:#sha256=([0-9a-f]{64}))?)"', index)
    if not m:
        raise SystemExit(f"{pkg.sdist} is not listed on https://pypi.org/simple/{pkg.name}/")
    url, digest = m.group(1).split("#")[0], m.group(2)
    tmp = path.with_name(path.name + ".part")
    if subprocess.run(["curl", "-fsSL", "-o", str(tmp), url]).returncode != 0:
        raise SystemExit(f"could not download {url}")
    if digest and sha256_file(tmp) != digest:
        tmp.unlink()
        raise SystemExit(f"{url}: sha256 mismatch")
    os.replace(tmp, path)
    return path


def machine_fingerprint(py: str, cuda_home: str | None) -> dict:
    info: dict = {"hostname": platform.node(), "cpus": os.cpu_count(),
                  "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        info["cpu_model"] = m.group(1).strip() if m else platform.processor() or None
    except OSError:
        info["cpu_model"] = platform.processor() or None
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        info["mem_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, AttributeError):
        info["mem_gib"] = None
    gpus = run_text(["nvidia-smi", "-L"], timeout=30)
    info["gpus"] = [g.split(" (UUID")[0].strip() for g in (gpus or "").splitlines() if g.strip()]
    nvcc = Path(cuda_home) / "bin" / "nvcc" if cuda_home else None
    text = run_text([str(nvcc), "--version"]) if nvcc and nvcc.exists() else None
    info["cuda_home"] = cuda_home
    info["nvcc"] = next((ln.strip() for ln in (text or "").splitlines() if "release" in ln), None)
    probe = ("import json, platform, sys\nout = {'python': platform.python_version(), 'executable': sys.executable}\n"
             "try:\n import torch; out['torch'] = torch.__version__; out['torch_cuda'] = torch.version.cuda\n"
             "except Exception as e: out['torch'] = 'import failed: %s' % e\n"
             "import importlib.util as u\n"
             "out['missing_modules'] = [m for m in ('ninja', 'packaging', 'setuptools', 'wheel', 'rich', 'requests')"
             " if u.find_spec(m) is None]\nprint(json.dumps(out))")
    try:
        info.update(json.loads(run_text([py, "-c", probe], timeout=120) or "{}"))
    except ValueError:
        pass
    info["os"] = platform.platform()
    git = run_text(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], timeout=20)
    info["git"] = git.strip() if git else None
    return info


def dry_run_plan(py: str, compile_args: list[str], env: dict) -> dict:
    """`compile --dry-run --json` of the same command: the toolkit, compiler, archs, jobs it will use."""
    try:
        out = subprocess.run([py, "-m", "mamba_build", "compile", *compile_args, "--dry-run", "--json"],
                             capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
        plan = json.loads(out.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}
    keep = ("cuda_home", "cuda_version", "torch_version", "archs", "jobs", "jobs_reason", "schedule", "split_compile",
            "split_units", "nvcc_threads", "nvcc_threads_reason", "use_ninja", "install", "local_version",
            "predicted_build_s", "cpu_work_s", "cpu_bound_s", "prediction_reason")
    plan_small = {k: plan.get(k) for k in keep if k in plan}
    plan_small["compiler"] = (plan.get("compiler") or {}).get("cxx")
    return plan_small
