"""One ninja for the translation units of every package of a run (schedule "pool").

Why: two ninjas sharing a jobserver do not share it well. A ninja asks the jobserver for slots only when
it starts and when one of its own units ends, so a package whose units run long holds few slots while the
other's end and are taken by whoever asks first (measured on the H200, docs/benchmarks.md "Start order":
causal-conv1d's ninja ran 1-3 units for 70 s with slots free). One ninja that holds every unit of every
package in one list has no such race: with ``-j N`` it keeps N units running until none is left, and it
starts them in the order of the list, which we write longest unit first (the LPT rule: a long unit started
last would run alone at the end).

How, without touching torch: each package's ``pip wheel`` runs as usual. torch's cpp_extension writes the
package's ``build.ninja`` and runs ``ninja -v`` in its build directory; the ``ninja`` it finds first on PATH is
our shim (written by :meth:`NinjaPool.prepare`). The shim hands the package's build file to the pool (a
request file in the spool directory, with the environment torch gave it) and waits. Once every package has
handed in its build file (or its pip has ended), the pool writes one build file that holds every package's
units, each in its own ``subninja`` scope (the package's own variables and rules, so nothing of one package
leaks into another's commands), and runs the real ninja on it once. When it ends, each shim prints its
package's part of the output (with the package's own ``[k/n]`` counts) and exits with the package's outcome;
torch then links as usual. Any other ninja call (``ninja --version``) goes straight to the real ninja.

The edges run with the environment of the first package's ninja; the pool refuses to start (a BuildError with
the fix) when another package's environment differs in a variable a compiler reads (:data:`COMPILE_ENV`).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mamba_build.errors import BuildError

PACKAGE_VAR = "MAMBA_BUILD_POOL_PACKAGE"
# variables a compile command (nvcc, cicc, ptxas, gcc, ccache, sccache) reads: they must agree between packages
COMPILE_ENV = (
    "PATH",
    "CPATH",
    "C_INCLUDE_PATH",
    "CPLUS_INCLUDE_PATH",
    "LIBRARY_PATH",
    "LD_LIBRARY_PATH",
    "TMPDIR",
    "HOME",
    "MAKEFLAGS",
    "CUDA_HOME",
    "CUDA_PATH",
    "NVCC_APPEND_FLAGS",
    "NVCC_PREPEND_FLAGS",
    "NVCC_CCBIN",
)
COMPILE_ENV_PREFIXES = ("CCACHE_", "SCCACHE_", "NVCC_")

_SHIM = """#!{python}
# mamba-build's ninja shim (mamba_build/build/ninja_pool.py): torch's cpp_extension runs `ninja -v [-j N]` in a
# package's build directory; this hands the package's build.ninja to the run's one ninja and waits for it.
import json, os, sys, time
REAL, SPOOL, VAR, BEGIN, END = {real!r}, {spool!r}, {var!r}, {begin!r}, {end!r}
OWNER_LOCK, OWNER_PID = {lock!r}, {owner}
args = sys.argv[1:]
pkg = os.environ.get(VAR)
plain = all(a == "-v" or a.startswith("-j") or a.isdigit() for a in args)
if not (pkg and plain and os.path.isfile("build.ninja")):
    os.execv(REAL, [REAL] + args)
request = os.path.join(SPOOL, pkg + ".request.json")
with open(request + ".tmp", "w") as fh:
    json.dump({{"package": pkg, "build_file": os.path.abspath("build.ninja"), "env": dict(os.environ),
               "pid": os.getpid()}}, fh)
os.replace(request + ".tmp", request)
result = os.path.join(SPOOL, pkg + ".result.json")


def owner_gone():
    # the mamba-build process that runs the pool holds an exclusive flock on OWNER_LOCK until it has written
    # every result; the kernel drops it when that process dies, however it dies (kill -9 included)
    try:
        import fcntl
        fd = os.open(OWNER_LOCK, os.O_RDONLY)
    except (ImportError, OSError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


tick = 0
while not os.path.exists(result):
    time.sleep(0.05)
    tick += 1
    if tick % 10 == 0 and owner_gone() and not os.path.exists(result):
        sys.stderr.write("mamba-build ninja pool: the mamba-build process (pid %d) that runs this build's pool has "
                         "ended, so nothing will compile %s's units: stopping. Run mamba-build again (it cleans up "
                         "after itself), or build with --schedule sequential.\\n" % (OWNER_PID, pkg))
        sys.exit(1)
with open(result) as fh:
    verdict = json.load(fh)
if verdict.get("output") and os.path.isfile(verdict["output"]):
    sys.stdout.write(BEGIN + "\\n")
    with open(verdict["output"], errors="replace") as fh:
        sys.stdout.write(fh.read())
    sys.stdout.write(END + "\\n")
if verdict.get("message"):
    sys.stdout.write("mamba-build ninja pool: " + verdict["message"] + "\\n")
sys.stdout.flush()
sys.exit(int(verdict.get("rc", 1)))
"""

ECHO_BEGIN = "mamba-build ninja pool: this package's units, as the pool's ninja built them:"
ECHO_END = "mamba-build ninja pool: end of this package's units"
_PROGRESS_RE = re.compile(r"^\[(\d+)/(\d+)\]\s+(.*)$")


@dataclass(frozen=True)
class Edge:
    package: str
    statement: str  # the `build ...` line, with any indented lines under it
    outputs: tuple[str, ...]
    source: str  # the first explicit input (the unit's source file)
    cost: float = 0.0


@dataclass(frozen=True)
class BuildFile:
    """A torch-written build.ninja: everything but its edges (variables, rules), and its edges."""

    header: str
    edges: tuple[Edge, ...]


def _unescape(path: str) -> str:
    return re.sub(r"\$(.)", r"\1", path)


def _split_paths(text: str) -> list[str]:
    """Ninja path list: separated by unescaped spaces."""
    return [_unescape(p) for p in re.split(r"(?<!\$) +", text.strip()) if p]


def parse_build_file(text: str, package: str) -> BuildFile:
    """Split a build.ninja into its header and its ``build`` statements (with their indented lines)."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():  # join `$` line continuations
        if raw.endswith("$") and not raw.endswith("$$"):
            pending += raw[:-1]
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    header: list[str] = []
    edges: list[Edge] = []
    current: list[str] | None = None
    for line in lines:
        if current is not None and line.startswith((" ", "\t")) and line.strip():
            current.append(line)
            continue
        if current is not None:
            edges.append(_edge(package, current))
            current = None
        if line.startswith("build "):
            current = [line]
        elif line.startswith("default "):
            continue  # every output is built; a default list would only narrow that
        else:
            header.append(line)
    if current is not None:
        edges.append(_edge(package, current))
    return BuildFile("\n".join(header).rstrip("\n") + "\n", tuple(edges))


def _edge(package: str, stmt: list[str]) -> Edge:
    m = re.match(r"build\s+(.*?)(?<!\$):\s*(\S+)\s*(.*)$", stmt[0])
    if m is None:
        raise BuildError(
            f"the ninja pool cannot read this build statement of {package}: {stmt[0][:200]!r}",
            "build with --schedule sequential and report it to mamba-build",
        )
    outs = re.split(r"(?<!\$)\|", m.group(1))[0]
    ins = re.split(r"(?<!\$)\|", m.group(3))[0]
    sources = _split_paths(ins)
    return Edge(package, "\n".join(stmt), tuple(_split_paths(outs)), sources[0] if sources else "")


def compile_env_mismatch(envs: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The compile-relevant variables whose values differ between the packages' environments."""
    names = sorted(envs)
    if len(names) < 2:
        return []
    keys = set()
    for env in envs.values():
        keys |= {k for k in env if k in COMPILE_ENV or k.startswith(COMPILE_ENV_PREFIXES)}
    return sorted(k for k in keys if len({envs[n].get(k) for n in names}) > 1)


def order_edges(
    files: Mapping[str, BuildFile], cost_of: Callable[[str, str], float], package_order: Sequence[str]
) -> list[Edge]:
    """Every edge, the most expensive unit first (ties: the packages' order, then each file's own order)."""
    rank = {p: k for k, p in enumerate(package_order)}
    edges = []
    for pkg, bf in files.items():
        for k, e in enumerate(bf.edges):
            edges.append(
                (Edge(e.package, e.statement, e.outputs, e.source, cost_of(pkg, e.source)), rank.get(pkg, len(rank)), k)
            )
    edges.sort(key=lambda t: (-t[0].cost, t[1], t[2]))
    return [e for e, _, _ in edges]


@dataclass
class _Attribution:
    """Splits the pool ninja's output by package: the [k/n] lines name the unit's output path."""

    owner: dict[str, str]  # output path -> package
    totals: dict[str, int]
    done: dict[str, int] = field(default_factory=dict)
    current: str | None = None
    failed: list[str] = field(default_factory=list)  # packages with a FAILED unit, in order

    def package_of(self, text: str) -> str | None:
        for path, pkg in self.owner.items():
            if path in text:
                return pkg
        return None

    def feed(self, line: str) -> tuple[str | None, str]:
        """(package, the line as that package's own ninja would have printed it)."""
        m = _PROGRESS_RE.match(line)
        if m:
            pkg = self.package_of(m.group(3))
            self.current = pkg
            if pkg is not None:
                self.done[pkg] = self.done.get(pkg, 0) + 1
                return pkg, f"[{self.done[pkg]}/{self.totals[pkg]}] {m.group(3)}"
            return None, line
        if line.startswith("FAILED: "):
            pkg = self.package_of(line)
            self.current = pkg
            if pkg is not None and pkg not in self.failed:
                self.failed.append(pkg)
        return self.current, line


class NinjaPool:
    """The spool, the shim and the combined build of one run; see the module docstring."""

    def __init__(
        self,
        root: Path,
        packages: Sequence[str],
        real_ninja: str,
        python: str,
        jobs: int | None,
        cost_of: Callable[[str, str], float],
        package_order: Sequence[str] = (),
    ):
        self.root = Path(root)
        self.packages = list(packages)
        self.real_ninja = real_ninja
        self.python = python
        self.jobs = jobs  # None: ninja joins the jobserver in MAKEFLAGS (no -j)
        self.cost_of = cost_of
        self.package_order = list(package_order) or self.packages
        self.spool = self.root / "spool"
        self.bin = self.root / "bin"
        self.build_dir = self.root / "build"
        self.logs: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._attr: _Attribution | None = None
        self._outputs: dict[str, IO[str]] = {}
        self.ordered: list[Edge] = []
        self.requests: dict[str, dict] = {}
        self.owner_lock = self.root / "owner.lock"
        self._lock_fd: int | None = None

    # -- set-up ---------------------------------------------------------------------------------------
    def prepare(self, log_dir: Path) -> None:
        for d in (self.spool, self.bin, self.build_dir / "edges"):
            d.mkdir(parents=True, exist_ok=True)
        self._hold_owner_lock()
        shim = self.bin / "ninja"
        shim.write_text(
            _SHIM.format(
                python=self.python,
                real=self.real_ninja,
                spool=str(self.spool),
                var=PACKAGE_VAR,
                begin=ECHO_BEGIN,
                end=ECHO_END,
                lock=str(self.owner_lock),
                owner=os.getpid(),
            ),
            encoding="utf-8",
        )
        shim.chmod(0o755)
        self.logs = {p: Path(log_dir) / f"ninja-{p}.log" for p in self.packages}

    def _hold_owner_lock(self) -> None:
        """An exclusive flock held while this process owes the shims their results: a shim whose owner died
        (the lock is free and no result came) stops with a clear message instead of waiting forever."""
        try:
            import fcntl
        except ImportError:  # no flock: the shims cannot tell, as before
            return
        if self._lock_fd is None:
            fd = os.open(self.owner_lock, os.O_RDWR | os.O_CREAT, 0o644)  # O_CLOEXEC: children do not inherit it
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_fd = fd

    def release(self) -> None:
        """Let go of the owner lock (after every result is written; also safe when never held)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def env_for(self, package: str, base_path: str) -> dict[str, str]:
        """What a package's build environment adds: the shim first on PATH, and the package's name."""
        return {"PATH": os.pathsep.join([str(self.bin), base_path]), PACKAGE_VAR: package}

    def argv(self) -> list[str]:
        return [self.real_ninja, "-v", *(["-j", str(self.jobs)] if self.jobs else []), "-C", str(self.build_dir)]

    # -- waiting for the packages ---------------------------------------------------------------------
    def _read_requests(self) -> None:
        for p in self.packages:
            if p in self.requests:
                continue
            f = self.spool / f"{p}.request.json"
            if f.is_file():
                try:
                    self.requests[p] = json.loads(f.read_text(encoding="utf-8"))
                except ValueError:
                    pass  # being written (it is renamed into place, so this is rare)

    def wait_requests(self, ended: Callable[[str], bool], stopping: Callable[[], bool]) -> bool:
        """Block until every package has handed in its build file or its pip has ended. False: stopping."""
        while True:
            self._read_requests()
            if all(p in self.requests or ended(p) for p in self.packages):
                self._read_requests()
                return True
            if stopping():
                return False
            time.sleep(0.05)

    # -- the combined build ---------------------------------------------------------------------------
    def write_build(self) -> Path:
        """The combined build.ninja of every request (longest units first); returns its path."""
        envs = {p: r.get("env") or {} for p, r in self.requests.items()}
        differ = compile_env_mismatch(envs)
        if differ:
            raise BuildError(
                "the packages' build environments differ in " + ", ".join(differ) + ", so their units cannot "
                "run in one ninja",
                "build with --schedule sequential (one package after the other)",
            )
        files = {
            p: parse_build_file(Path(r["build_file"]).read_text(encoding="utf-8"), p) for p, r in self.requests.items()
        }
        self.ordered = order_edges(files, self.cost_of, self.package_order)
        owner = {o: e.package for e in self.ordered for o in e.outputs}
        totals = {p: len(bf.edges) for p, bf in files.items()}
        self._attr = _Attribution(dict(sorted(owner.items(), key=lambda kv: -len(kv[0]))), totals)
        top = [
            "# mamba-build: every package's units, each in its package's own scope, longest first",
            "ninja_required_version = 1.3",
        ]
        for k, e in enumerate(self.ordered):
            sub = self.build_dir / "edges" / f"{k:04d}.ninja"
            sub.write_text(
                f"# {e.package}: {Path(e.source).name} (estimated {e.cost:g} s)\n"
                f"{files[e.package].header}\n{e.statement}\n",
                encoding="utf-8",
            )
            top.append(f"subninja {_escape(str(sub))}")
        path = self.build_dir / "build.ninja"
        path.write_text("\n".join(top) + "\n", encoding="utf-8")
        for p in self.requests:
            self._outputs[p] = open(self.logs[p], "w", encoding="utf-8", errors="replace")
        return path

    def environment(self) -> dict[str, str] | None:
        """The environment the pool's ninja runs with: the first requesting package's, minus our variable."""
        for p in self.package_order + self.packages:
            if p in self.requests:
                env = dict(self.requests[p].get("env") or {})
                env.pop(PACKAGE_VAR, None)
                env["PATH"] = os.pathsep.join(x for x in env.get("PATH", "").split(os.pathsep) if x != str(self.bin))
                return env
        return None

    def on_line(self, line: str) -> tuple[str | None, str]:
        """Attribute one output line of the pool's ninja; returns (package, its line) for the progress display."""
        with self._lock:
            if self._attr is None:
                return None, line
            pkg, text = self._attr.feed(line)
            targets = [pkg] if pkg is not None else list(self._outputs)
            for p in targets:
                fh = self._outputs.get(p)
                if fh is not None:
                    fh.write(text + "\n")
            return pkg, text

    def failed_packages(self) -> list[str]:
        return list(self._attr.failed) if self._attr else []

    def finish(self, rc: int | None, why: str = "") -> None:
        """Release every waiting shim: rc 0 where the pool's ninja succeeded, else 1 with the reason."""
        for fh in self._outputs.values():
            try:
                fh.close()
            except OSError:
                pass
        failed = self.failed_packages()
        for p in self.packages:
            verdict: dict[str, Any]
            if rc == 0:
                verdict = {"rc": 0}
            elif p in failed:
                verdict = {"rc": 1, "message": f"a unit of {p} failed (the pool's ninja: {self.build_dir})"}
            else:
                cause = f"{', '.join(failed)} failed" if failed else (why or f"exit status {rc}")
                verdict = {"rc": 1, "message": f"the pool's ninja stopped before {p}'s units were done: {cause}"}
            if p in self.logs and self.logs[p].is_file():
                verdict["output"] = str(self.logs[p])
            f = self.spool / f"{p}.result.json"
            tmp = f.with_name(f.name + ".tmp")
            tmp.write_text(json.dumps(verdict), encoding="utf-8")
            os.replace(tmp, f)
        self.release()  # only now: a shim that sees the lock free re-reads its result first


def echo_filter(on_line: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """A pip log's line handler that skips the shim's echo of the pool's output (already shown live)."""
    if on_line is None:
        return None
    state = {"echo": False}

    def handle(line: str) -> None:
        text = line.strip()  # pip -v indents its build's output
        if text == ECHO_BEGIN or text == ECHO_END:
            state["echo"] = text == ECHO_BEGIN
            return
        if not state["echo"]:
            on_line(line)

    return handle


def _escape(path: str) -> str:
    return path.replace("$", "$$").replace(" ", "$ ").replace(":", "$:")


def describe(edges: Sequence[Edge], limit: int = 4) -> str:
    head = ", ".join(f"{Path(e.source).name} ({e.cost:g} s)" for e in edges[:limit])
    return f"{len(edges)} units, longest first: {head}{', ...' if len(edges) > limit else ''}"
