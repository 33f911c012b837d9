"""One pool of compile slots for every build of a run: a GNU make jobserver that ninja and nvcc join.

Why: building the two packages one after the other leaves cores idle while each package's longest
unit finishes, and `nvcc --split-compile 0` in every job oversubscribes the CPUs (16 jobs x 16
threads). With a jobserver (the GNU make 4.4 "fifo" protocol) there is ONE budget of N slots:

- every `ninja` (>= 1.13 joins a jobserver found in MAKEFLAGS, but only when it is NOT given ``-j``,
  so MAX_JOBS must stay unset: torch's cpp_extension then runs plain ``ninja -v``) takes a slot per
  compile job; both packages' ninjas draw from the same pool, so their units interleave;
- ``nvcc --jobserver`` (CUDA >= 12.x: see ``nvcc --help``) takes further slots for its threads (one per
  arch with ``--threads``, or ``--split-compile``'s), waiting while none is free, so the last units of a
  build spread over the cores the others have released, and never more than N processes compile at once
  (tests/integration/test_nvcc_jobserver_real.py). Not every time: nvcc 13.0 left a free token unused in 5 of
  16 compiles of a three-arch unit (2026-12-03), its archs then one after the other -- slower, never wrong.

Why one ninja (mamba_build/build/ninja_pool.py) and not one per package: a ninja asks the fifo for slots only when
it starts and when one of ITS OWN units ends (measured with ninja 1.13.2: a ninja started after another had
drained the fifo ran on its one implicit slot until its first unit ended, with slots free meanwhile;
tests/unit/test_schedule.py). So the pool runs every package's units in one ninja; the jobserver remains for
nvcc's threads, where the plan uses them (several archs, or one long unit that bounds the build). A side effect
measured on the H200 at nine archs: while nvcc's threads take the slots that free up, the ninja's short units wait
until one of its own units ends (docs/benchmarks.md, "Nine archs again").

Protocol: the server writes N - K tokens into a fifo (K = the clients it starts, each owns one
implicit slot); clients read a byte before starting a job and write it back when it ends.
Checked here with ninja 1.13.2 and nvcc 13.0 (tests/unit/test_jobserver.py runs the real ninja).
"""

from __future__ import annotations

import array
import fcntl
import functools
import os
import re
import shutil
import stat
import termios
import threading
from dataclasses import dataclass
from pathlib import Path

from mamba_build import runner

NINJA_JOBSERVER_MIN = (1, 13)


@dataclass(frozen=True)
class NinjaInfo:
    path: str | None
    version: tuple[int, ...] | None
    version_text: str

    @property
    def joins_jobserver(self) -> bool:
        return self.version is not None and self.version[:2] >= NINJA_JOBSERVER_MIN


def parse_ninja_version(text: str) -> tuple[int, ...] | None:
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(x) for x in m.groups() if x is not None) if m else None


def find_ninja(python: str, path_env: str | None = None) -> NinjaInfo:
    """The ninja torch's cpp_extension will run: the one next to ``python`` (pip's ninja in that
    environment, which the build PATH puts first), else the first on PATH."""
    candidates = [Path(python).parent / "ninja"]
    found = shutil.which("ninja", path=path_env if path_env is not None else os.environ.get("PATH"))
    if found:
        candidates.append(Path(found))
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            res = runner.run([str(cand), "--version"], timeout=30)
            text = (res.stdout or "").strip()
            return NinjaInfo(str(cand), parse_ninja_version(text) if res.ok else None, text or res.stderr.strip())
    return NinjaInfo(None, None, "not found")


@functools.cache
def nvcc_supports_jobserver(nvcc: str) -> bool:
    """Whether this nvcc has ``--jobserver`` (read from its own --help, not from a version table)."""
    res = runner.run([nvcc, "--help"], timeout=60)
    return res.ok and re.search(r"^--jobserver\b", res.stdout, re.MULTILINE) is not None


class JobServer:
    """A fifo jobserver with ``slots`` slots for ``clients`` directly started clients (context manager).

    ``makeflags`` is the MAKEFLAGS value to give the clients. Each client runs its first job on an
    implicit slot (the protocol: the fifo holds ``slots - clients`` tokens); when a client ends while
    others still run, ``client_done()`` puts its slot into the fifo, or the pool would shrink by one
    for the rest of the build (measured on 2 slots: causal-conv1d done at 347 s, mamba-ssm then ran
    its last 300 s on ONE core). The fifo is removed on exit; tokens that a killed client held are
    simply gone with it.
    """

    def __init__(self, slots: int, clients: int, directory: Path):
        if slots < 1 or clients < 1:
            raise ValueError(f"jobserver needs slots >= 1 and clients >= 1 (got {slots}, {clients})")
        self.slots = slots
        self.clients = clients
        self.path = Path(directory) / "jobserver.fifo"
        self._fd: int | None = None
        self._running = clients
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        return max(0, self.slots - self.clients)

    @property
    def makeflags(self) -> str:
        return f"-j{self.slots} --jobserver-auth=fifo:{self.path}"

    def __enter__(self) -> JobServer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        os.mkfifo(self.path, 0o600)
        # O_RDWR: never blocks on open, and keeps the fifo alive while clients come and go
        self._fd = os.open(self.path, os.O_RDWR)
        if self.tokens:
            os.write(self._fd, b"+" * self.tokens)
        return self

    def client_done(self) -> None:
        """One client ended: its implicit slot goes to the fifo for the clients still running."""
        with self._lock:
            if self._running <= 0:
                return
            self._running -= 1
            if self._running > 0 and self._fd is not None:
                os.write(self._fd, b"+")

    def queued(self) -> int:
        """Tokens in the fifo now, read without taking them (FIONREAD), so no client ever finds the
        fifo empty because of us (a ninja that finds it empty waits for one of its own units to end)."""
        assert self._fd is not None
        buf = array.array("i", [0])
        fcntl.ioctl(self._fd, termios.FIONREAD, buf)
        return int(buf[0])

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            if stat.S_ISFIFO(os.lstat(self.path).st_mode):
                self.path.unlink()
        except FileNotFoundError:
            pass
