"""Upstream's own tests (the ``tests/`` its source ships) run against staged or installed wheels.

:func:`run_upstream_tests` gets the package's source of the version under test (the sdist from the index, or
``--source``), copies its ``tests/`` out of the tree (so that ``import causal_conv1d`` resolves to the staged
or installed build, never to the source's uncompiled package), and runs pytest in the target Python with a
small plugin of ours (``mamba_build/children/upstream_pytest_plugin.py``) that

* keeps a seeded random sample of the collected tests (``sample``), for a time budget: the full causal-conv1d
  file is 9,485 tests, 108 s on an H200;
* skips, and lists, the tests that need the network or a model download (found in their source:
  :data:`NETWORK_MARKERS`) -- a build machine or a GPU box may have neither;
* stops starting tests once ``time_budget`` seconds are spent (the rest count as "not run");
* hands every outcome back as it comes, through the child protocol (``mamba_build/child.py``; no parsing of
  pytest's text, and a pytest killed in a kernel keeps what it reported before).

Without a CUDA GPU in the target Python nothing of this can run (every test launches kernels): the tests are
only collected, and the result says so (``ran`` False, how many were collected) -- never a pass.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mamba_build import child, runner
from mamba_build.errors import EnvironmentProblem, SourceError

# A test whose own source holds one of these needs the network or a model from a hub.
NETWORK_MARKERS = (
    "from_pretrained(",
    "hf_hub_download(",
    "snapshot_download(",
    "cached_file(",
    "urlopen(",
    "requests.get(",
    "http://",
    "https://",
)
BUDGET_REASON = "mamba-build: time budget used up"  # the plugin's skip reason (children/upstream_pytest_plugin.py)
PLUGIN_NAME = "upstream_pytest_plugin"  # mamba_build/children/upstream_pytest_plugin.py, the child protocol


@dataclass
class UpstreamTestRun:
    """What one package's upstream tests did (``ran`` False: collected only, nothing was run)."""

    package: str
    version: str
    source: str  # where the test files came from
    files: list[str]
    python: str
    against: str  # "staged in DIR" or "installed"
    gpu: bool = False
    ran: bool = False
    collected: int = 0
    selected: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0  # by the tests themselves (e.g. an unsupported combination)
    not_run: int = 0  # the time budget was used up
    network_skipped: dict[str, str] = field(default_factory=dict)  # test -> why (the network or a model)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (node id, the end of its report)
    seconds: float = 0.0
    log: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.ran and self.failed == 0 and self.passed > 0

    def to_json(self) -> dict:
        doc = asdict(self)
        doc["ok"] = self.ok
        return doc

    def summary(self) -> str:
        head = f"{self.package} {self.version}: upstream's tests ({', '.join(self.files) or 'none shipped'})"
        if not self.ran:
            return f"{head}: NOT RUN -- {self.note} ({self.collected} collected)"
        parts = [f"{self.passed} passed", f"{self.failed} failed", f"{self.skipped} skipped by the tests"]
        if self.network_skipped:
            parts.append(f"{len(self.network_skipped)} needing the network or a model skipped")
        if self.not_run:
            parts.append(f"{self.not_run} not run (time budget)")
        sample = f" of {self.collected} collected" if self.selected != self.collected else ""
        return f"{head}: {self.selected} selected{sample}: {', '.join(parts)} in {self.seconds:.0f}s"


def find_test_files(tree: Path) -> list[Path]:
    tests = Path(tree) / "tests"
    if not tests.is_dir():
        return []
    return sorted(p for p in tests.rglob("*.py") if p.name.startswith("test_") or p.name.endswith("_test.py"))


def network_tests(root: Path, files: Sequence[Path]) -> dict[str, str]:
    """{"tests/x.py::test_f" (or ::Class::test_f): why} for the tests whose source names the network or a hub."""
    found: dict[str, str] = {}
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        rel = path.relative_to(root).as_posix()
        scopes = [(node, "") for node in tree.body]
        while scopes:
            node, prefix = scopes.pop(0)
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                scopes += [(n, f"{prefix}{node.name}::") for n in node.body]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                body = ast.get_source_segment(text, node) or ""
                hit = next((m for m in NETWORK_MARKERS if m in body), None)
                if hit:
                    found[f"{rel}::{prefix}{node.name}"] = f"needs the network or a model download ({hit.rstrip('(')})"
    return found


def _pytest_env(
    plugin_dir: Path,
    staging: Path | None,
    skips: dict,
    sample: int | None,
    seed: int,
    budget: float | None,
) -> dict[str, str]:
    paths = [str(plugin_dir)] + ([str(staging)] if staging else [])
    old = os.environ.get("PYTHONPATH")
    env = {
        "PYTHONPATH": os.pathsep.join(paths + ([old] if old else [])),
        "MB_UPSTREAM_SKIP": json.dumps(skips),
        "MB_UPSTREAM_SEED": str(seed),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONWARNINGS": "ignore",
    }
    if sample:
        env["MB_UPSTREAM_SAMPLE"] = str(sample)
    if budget is not None:
        env["MB_UPSTREAM_BUDGET"] = str(budget)
    return env


def installed_version(python: str, package: str, staging: Path | None) -> str | None:
    """The version of ``package`` the target Python imports (from ``staging`` first)."""
    env = {"PYTHONPATH": str(staging)} if staging else None
    res = runner.run(
        [python, "-c", f"import importlib.metadata as m; print(m.version({package!r}))"], timeout=120, extra_env=env
    )
    return res.stdout.strip().splitlines()[-1] if res.ok and res.stdout.strip() else None


def has_cuda(python: str, staging: Path | None = None) -> bool:
    res = runner.run(
        [python, "-c", "import torch; print(torch.cuda.is_available())"],
        timeout=300,
        extra_env={"PYTHONPATH": str(staging)} if staging else None,
    )
    return res.ok and res.stdout.strip().endswith("True")


def run_upstream_tests(
    package: str,
    *,
    python: str,
    workdir: Path,
    staging: Path | None = None,
    source: str | None = None,
    version: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    time_budget: float | None = None,
    timeout: float = 3600,
    index_url: str | None = None,
    find_links: Sequence[str] | None = None,
    gpu: bool | None = None,
) -> UpstreamTestRun:
    """Run ``package``'s shipped tests in ``python`` against ``staging`` (a ``pip --target`` dir) or, when None,
    what that Python has installed. Collects only (``ran`` False) where no CUDA GPU is visible."""
    from mamba_build.build.sources import fetch
    from mamba_build.plan.packages import package_info

    info = package_info(package)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    version = version or installed_version(python, info.name, staging)
    if version is None:
        raise EnvironmentProblem(
            f"{info.name} is not installed in {python}" + (f" nor staged in {staging}" if staging else ""),
            "install it (mamba-build compile) or pass its wheel with --wheel",
        )
    public = version.split("+", 1)[0]
    fetched = fetch(info.name, public, source, workdir / "src", index_url, find_links, verify=False)
    files = find_test_files(fetched.tree)
    against = f"staged in {staging}" if staging else "installed"
    run = UpstreamTestRun(
        info.name, version, fetched.origin, [f.relative_to(fetched.tree).as_posix() for f in files], python, against
    )
    if not files:
        run.note = f"the source of {info.name} {public} ships no tests/test_*.py"
        return run
    copy = workdir / f"tests-{info.name}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(fetched.tree / "tests", copy / "tests")
    (copy / "pytest.ini").write_text("[pytest]\naddopts =\n", encoding="utf-8")
    plugin_dir = workdir / "plugin"
    plugin_dir.mkdir(exist_ok=True)
    for f in (child.script(PLUGIN_NAME), child.PROTOCOL_FILE):
        shutil.copyfile(f, plugin_dir / f.name)
    skips = network_tests(copy, [copy / f for f in run.files])
    run.gpu = has_cuda(python, staging) if gpu is None else gpu
    argv = [
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        PLUGIN_NAME,
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(copy),
        "-c",
        str(copy / "pytest.ini"),
        *(["--collect-only"] if not run.gpu else []),
        *run.files,
    ]
    env = _pytest_env(plugin_dir, staging, skips, sample, seed, time_budget)
    done = child.run_argv(argv, timeout=timeout, cwd=copy, extra_env=env, max_output=2_000_000)
    res = done.result
    log = workdir / f"pytest-{info.name}.log"
    log.write_text(
        f"$ {res.cmdline}\n# rc={res.returncode} {res.duration:.1f}s\n{res.output}", encoding="utf-8", errors="replace"
    )
    run.log, run.seconds = str(log), res.duration
    if "No module named pytest" in res.output:
        raise EnvironmentProblem(f"pytest is not installed in {python}", f"{python} -m pip install pytest")
    state = _state(done.records)
    if state is None:
        tail = "\n".join(res.output.strip().splitlines()[-20:])
        raise SourceError(
            f"upstream's tests of {info.name} could not be collected (pytest exit {res.returncode})",
            f"read {log}",
            details=tail,
        ) from None
    run.collected, run.selected = state["collected"], len(state["selected"])
    run.network_skipped = {k: v for k, v in skips.items() if any(n.split("[")[0] == k for n in state["selected"])}
    if not run.gpu:
        run.note = (
            "no CUDA GPU visible to this Python: upstream's tests launch CUDA kernels, so none can run "
            "here -- this is not a pass"
        )
        return run
    run.ran = True
    for r in state["results"]:
        if r["outcome"] == "passed":
            run.passed += 1
        elif r["outcome"] == "failed":
            run.failed += 1
            run.failures.append((r["nodeid"] + ("" if r["when"] == "call" else f" ({r['when']})"), r["text"][-1500:]))
        elif r["text"].startswith(BUDGET_REASON) or BUDGET_REASON in r["text"]:
            run.not_run += 1
        elif r["nodeid"].split("[")[0] in skips:
            pass  # counted in network_skipped
        else:
            run.skipped += 1
    if res.timed_out:
        run.note = f"pytest timed out after {timeout:.0f}s"
        run.failed += 1
        run.failures.append(("(the whole run)", run.note))
    elif not state["finished"]:  # killed (a kernel that takes the process down): what ran before is kept above
        last = state["results"][-1]["nodeid"] if state["results"] else "(none)"
        run.note = (
            f"pytest died (exit {res.returncode}) before the end of the session, after {len(state['results'])} "
            f"reported outcomes; the last one reported: {last}"
        )
        run.failed += 1
        run.failures.append(("(the whole run)", run.note))
    return run


def _state(records: list) -> dict | None:
    """The plugin's records (children/upstream_pytest_plugin.py) as ``{"collected", "selected", "results",
    "finished"}``; None when pytest never got through collection."""
    state: dict | None = None
    results: list[dict] = []
    finished = False
    for rec in records:
        if not isinstance(rec, dict):
            continue
        if "collected" in rec:
            state = {"collected": int(rec["collected"]), "selected": list(rec.get("selected", []))}
        elif "test" in rec:
            results.append(rec["test"])
        elif "finished" in rec:
            finished = True
    return None if state is None else {**state, "results": results, "finished": finished}
