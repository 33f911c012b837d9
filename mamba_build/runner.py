"""The one place that runs subprocesses.

Every command line is logged (``logging`` at DEBUG, and appended with its full output to the
session log under ``~/.cache/mamba-build/logs``). Every call has a timeout. Long builds go
through :func:`stream`, which writes output to its own log file as it arrives, hands each line
to a callback (the progress display), and kills the whole process group on timeout or Ctrl-C.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mamba_build import paths

log = logging.getLogger("mamba_build.runner")

_session_log: Path | None = None
_session_lock = threading.Lock()


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int | None  # None: could not start, or timed out
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    missing: bool = False  # the executable does not exist / is not executable
    log_path: Path | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return self.stdout + ("\n" + self.stderr if self.stderr else "")

    @property
    def cmdline(self) -> str:
        return shlex.join(self.argv)


def session_log() -> Path | None:
    """Path of this process's command log (created lazily; None when it cannot be written)."""
    global _session_log
    with _session_lock:
        if _session_log is None:
            try:
                stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
                _session_log = paths.logs_dir() / f"commands-{stamp}-{os.getpid()}.log"
            except OSError:
                return None
        return _session_log


def _append_session_log(result: CommandResult) -> None:
    target = session_log()
    if target is None:
        return
    try:
        with _session_lock, open(target, "a", encoding="utf-8", errors="replace") as fh:
            fh.write(
                f"$ {result.cmdline}\n# rc={result.returncode} timed_out={result.timed_out} {result.duration:.2f}s\n"
            )
            if result.stdout:
                fh.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
            if result.stderr:
                fh.write("# stderr\n" + result.stderr + ("" if result.stderr.endswith("\n") else "\n"))
    except OSError:
        pass


def _merged_env(env: Mapping[str, str] | None, extra_env: Mapping[str, str] | None) -> dict[str, str] | None:
    if env is None and extra_env is None:
        return None
    merged = dict(os.environ if env is None else env)
    if extra_env:
        merged.update(extra_env)
    return merged


MAX_OUTPUT = 4_000_000  # bytes of stdout and of stderr a captured command keeps (the first ones)


def run(
    argv: Sequence[str | os.PathLike],
    *,
    timeout: float = 60.0,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    input: str | None = None,
    max_output: int = MAX_OUTPUT,
) -> CommandResult:
    """Run a short command and capture its output. Never raises for a failing or missing program."""
    args = tuple(str(a) for a in argv)
    log.debug("run: %s (cwd=%s, timeout=%ss)", shlex.join(args), cwd, timeout)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=_merged_env(env, extra_env),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError, OSError) as exc:
        result = CommandResult(args, None, "", str(exc), time.monotonic() - start, missing=True)
        _append_session_log(result)
        return result
    timed_out = False
    try:
        out_b, err_b = proc.communicate(input=input.encode() if input is not None else None, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out_b, err_b = proc.communicate()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    result = CommandResult(
        args,
        None if timed_out else proc.returncode,
        out_b[:max_output].decode("utf-8", "replace"),
        err_b[:max_output].decode("utf-8", "replace"),
        time.monotonic() - start,
        timed_out=timed_out,
    )
    _append_session_log(result)
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class StreamState:
    """What :func:`stream` has seen so far; read by progress displays."""

    lines: int = 0
    tail: list[str] = field(default_factory=list)


def stream(
    argv: Sequence[str | os.PathLike],
    *,
    log_path: Path,
    timeout: float,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    tail_lines: int = 400,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> CommandResult:
    """Run a long command, stdout and stderr merged, every line written to ``log_path``.

    Ctrl-C (KeyboardInterrupt) kills the process group and re-raises, so callers can roll back.
    The returned ``stdout`` holds the last ``tail_lines`` lines; the full text is in the log.
    """
    args = tuple(str(a) for a in argv)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.debug("stream: %s > %s", shlex.join(args), log_path)
    start = time.monotonic()
    tail: list[str] = []
    with open(log_path, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(f"$ {shlex.join(args)}\n# cwd={cwd}\n")
        fh.flush()
        try:
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                env=_merged_env(env, extra_env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            fh.write(f"# could not start: {exc}\n")
            return CommandResult(args, None, "", str(exc), 0.0, missing=True, log_path=log_path)
        if on_start is not None:
            on_start(proc)
        timer = threading.Timer(timeout, _kill_group, args=(proc,))
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace")
                fh.write(line)
                tail.append(line.rstrip("\n"))
                if len(tail) > tail_lines:
                    del tail[: len(tail) - tail_lines]
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            proc.wait()
        except BaseException:
            _kill_group(proc)
            proc.wait()
            fh.write("\n# interrupted: process group killed\n")
            raise
        finally:
            timer.cancel()
        duration = time.monotonic() - start
        timed_out = duration >= timeout and proc.returncode != 0
        fh.write(f"\n# rc={proc.returncode} {duration:.1f}s{' TIMED OUT' if timed_out else ''}\n")
    result = CommandResult(
        args,
        None if timed_out else proc.returncode,
        "\n".join(tail),
        "",
        duration,
        timed_out=timed_out,
        log_path=log_path,
    )
    _append_session_log(
        CommandResult(args, result.returncode, f"(full output in {log_path})", "", duration, timed_out=timed_out)
    )
    return result


@dataclass(frozen=True)
class StreamJob:
    """One command of :func:`stream_many` (the arguments of :func:`stream`)."""

    argv: Sequence[str | os.PathLike]
    log_path: Path
    cwd: str | os.PathLike | None = None
    extra_env: Mapping[str, str] | None = None
    on_line: Callable[[str], None] | None = None
    on_exit: Callable[[], None] | None = None  # called once its process has ended (any outcome)
    # called in the job's thread before its process starts, given a stopping() predicate; blocks as long as
    # the job must wait (e.g. the pool's ninja waits for every package's build file); the job is not started
    # if the others are stopping by then. A mapping it returns is the job's whole environment.
    gate: Callable[[Callable[[], bool]], Mapping[str, str] | None] | None = None
    on_result: Callable[[object], None] | None = None  # given its CommandResult (or exception), before on_exit


@dataclass
class ManyResult:
    results: list[CommandResult]
    first_failure: int | None  # index of the job that failed first; the others were then stopped


def stream_many(jobs: Sequence[StreamJob], *, timeout: float, fail_fast: bool = True) -> ManyResult:
    """Run several long commands at the same time, each exactly as :func:`stream` does.

    With ``fail_fast`` the first failure stops the others (their process groups are killed), so a
    broken build does not keep the machine busy for minutes. Ctrl-C kills every process group and
    re-raises, like :func:`stream`. A job's ``gate`` may hold its start back (the pool's ninja waits for every
    build file).
    """
    procs: dict[int, subprocess.Popen] = {}
    lock = threading.Lock()
    results: list[CommandResult | BaseException | None] = [None] * len(jobs)
    state: dict[str, Any] = {"first": None, "stopping": False}

    def stop_all(except_index: int | None = None) -> None:
        with lock:
            state["stopping"] = True
            victims = [p for i, p in procs.items() if i != except_index]
        for proc in victims:
            if proc.poll() is None:
                _kill_group(proc)

    def started(i: int, proc: subprocess.Popen) -> None:
        with lock:
            procs[i] = proc
            late = state["stopping"]
        if late:
            _kill_group(proc)

    def work(i: int, job: StreamJob) -> None:
        try:
            env = job.gate(lambda: bool(state["stopping"])) if job.gate is not None else None
            if state["stopping"]:
                res: CommandResult | BaseException = CommandResult(
                    tuple(str(a) for a in job.argv),
                    None,
                    "",
                    "not started: the pool stopped first",
                    0.0,
                    log_path=job.log_path,
                )
            else:
                res = stream(
                    job.argv,
                    log_path=job.log_path,
                    timeout=timeout,
                    cwd=job.cwd,
                    env=env,
                    extra_env=job.extra_env,
                    on_line=job.on_line,
                    on_start=lambda p: started(i, p),
                )
        except BaseException as exc:  # reported by the caller's thread
            res = exc
        if job.on_result is not None:
            try:
                job.on_result(res)
            except BaseException as exc:  # noqa: BLE001 (reported like the job's own failure)
                res = exc
        if job.on_exit is not None:
            job.on_exit()
        results[i] = res
        failed = isinstance(res, BaseException) or not res.ok
        if failed:
            with lock:
                first = state["first"] is None and not state["stopping"]
                if first:
                    state["first"] = i
            if first and fail_fast:
                stop_all(except_index=i)

    threads = [
        threading.Thread(target=work, args=(i, job), daemon=True, name=f"stream-{i}") for i, job in enumerate(jobs)
    ]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except BaseException:
        stop_all()
        for t in threads:
            t.join(10)
        raise
    for res in results:
        if isinstance(res, BaseException):
            raise res
    return ManyResult([r for r in results if isinstance(r, CommandResult)], state["first"])
