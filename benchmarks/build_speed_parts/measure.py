"""Measuring one command: a wrapper child runs it and reports its own RUSAGE_CHILDREN (wall, CPU of
the waited-for process tree, peak RSS of its largest process)."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, time
spec = json.loads(sys.argv[1])
try:  # orphans of the tree (their parent killed or gone) come back to us: reaped and counted, not left as zombies
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
def reap(seconds):
    end = time.monotonic() + seconds
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= end:
                return
            time.sleep(0.1)
log = open(spec["log"], "ab", buffering=0)
log.write(("$ " + spec["display"] + "\n").encode())
start = time.monotonic()
proc = subprocess.Popen(spec["argv"], cwd=spec.get("cwd"), stdout=log, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, start_new_session=True)
def kill_tree(*_):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            pass
def on_signal(signum, _frame):
    kill_tree()
    reap(15)
    sys.exit(128 + signum)
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
timed_out = False
try:
    rc = proc.wait(timeout=spec.get("timeout"))
except subprocess.TimeoutExpired:
    timed_out = True
    kill_tree()
    rc = proc.wait()
reap(15 if timed_out else 0)
wall = time.monotonic() - start
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
log.write(("\n[exit %s after %.1f s%s]\n" % (rc, wall, ", timed out" if timed_out else "")).encode())
print(json.dumps({"rc": rc, "wall_s": round(wall, 3), "user_s": round(ru.ru_utime, 3), "sys_s": round(ru.ru_stime, 3),
                  "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "maxrss_kb": ru.ru_maxrss, "timed_out": timed_out}))
"""


class Measured:
    """One command running under the rusage wrapper (started at once; `result()` waits)."""

    def __init__(self, argv: list[str], log: Path, *, timeout: float | None = None, env: dict | None = None,
                 cwd: Path | str | None = None, display: str | None = None):
        self.argv = [str(a) for a in argv]
        self.display = display or shlex.join(self.argv)
        self.log = Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        spec = {"argv": self.argv, "log": str(self.log), "timeout": timeout, "display": self.display,
                "cwd": str(cwd) if cwd else None}
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-c", WRAPPER, json.dumps(spec)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        self._result: dict | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def done(self) -> bool:
        return self.proc.poll() is not None

    def stop(self) -> None:
        if not self.done():
            self.proc.send_signal(signal.SIGTERM)

    def result(self) -> dict:
        if self._result is None:
            out, err = self.proc.communicate()
            try:
                self._result = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                self._result = {"rc": self.proc.returncode, "wall_s": round(self.elapsed(), 3), "cpu_s": None,
                                "user_s": None, "sys_s": None, "maxrss_kb": None, "timed_out": False,
                                "wrapper_error": (err or out)[-2000:]}
        return self._result


def measure(argv: list[str], log: Path, **kw) -> dict:
    """Run `argv` to the end under the wrapper: {rc, wall_s, user_s, sys_s, cpu_s, maxrss_kb, timed_out}."""
    return Measured(argv, log, **kw).result()
