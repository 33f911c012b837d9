"""`mamba-build install --index-url ROOT`: the consumer side of an index written by `mamba-build index`.

One frozen :class:`InstallPlan` is resolved first (:func:`resolve_install`): the environment's facts
(Python tags, torch X.Y, torch's CUDA major, C++ ABI, the GPUs or ``--arch``), and for every package
each candidate of the index's manifest with the reasons it does not fit, the chosen wheel, or a build.
:func:`execute_install` then downloads the chosen wheels, checks each against the manifest's sha256 (and
the channel page's), its own provenance (dist-info/mamba_build.json) against this torch, and its
extension's undefined c10::/at::/torch:: symbols against this torch's libraries; smoke-tests them in
staging (mamba_build/build/smoke); installs them with the installer ``compile`` uses; and builds with the
compile pipeline what nothing in the index fits (unless ``no_build``). Nothing is installed unless every
chosen wheel passed every check. ``doctor --index-url`` shows the plan (:func:`plan_checks`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

from packaging.tags import compatible_tags, cpython_tags, platform_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from mamba_build.plan import archs as archs_mod
from mamba_build import paths, tables
from mamba_build.dist import provenance
from mamba_build.dist.channels import Channel
from mamba_build.diagnose.environment import to_jsonable
from mamba_build.errors import EnvironmentProblem, NetworkError, SourceError, UsageError
from mamba_build.hashing import sha256_file
from mamba_build.dist.manifest import Manifest, WheelRecord
from mamba_build.plan.packages import PACKAGES

KNOWN = PACKAGES  # the default when the index has them


# --- the environment --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The environment the wheels are for (probed, never guessed)."""

    python: str
    python_version: str
    tags: frozenset[str]
    torch_version: str | None
    torch_cuda: str | None
    cxx11_abi: bool | None
    torch_dir: str | None
    gpus: tuple[tuple[str, int], ...]  # (name, sm number) of the GPUs the wheel must run on
    archs_from: str  # "the visible GPUs", "--arch 8.0,9.0", or "" (none: not checked)

    @property
    def channel(self) -> Channel | None:
        return Channel.of(self.torch_version, self.torch_cuda, self.cxx11_abi)

    def describe(self) -> str:
        ch = self.channel
        return (
            f"Python {self.python_version} ({self.python}), torch {self.torch_version} "
            + (f"[channel {ch.name}]" if ch else "")
            + "; archs: "
            + (
                ", ".join(f"{n} (sm_{sm})" for n, sm in self.gpus) + f" [{self.archs_from}]"
                if self.gpus
                else "not checked (no GPU visible, no --arch)"
            )
        )


def supported_tags(python_version: str) -> frozenset[str]:
    """Wheel tags a CPython of this version installs on this machine (packaging's own lists)."""
    v = tables.version_tuple(python_version)
    plats = list(platform_tags())
    return frozenset(str(t) for t in [*cpython_tags(v[:2], platforms=plats), *compatible_tags(v[:2], platforms=plats)])


def target_from_env(env, arch: str | None = None) -> Target:
    """:class:`Target` of a gathered :class:`~mamba_build.diagnose.environment.Environment` (or the python/gpu part of it)."""
    t = env.python.torch
    if not t.importable or not t.cuda:
        why = (t.error or "torch does not import") if not t.importable else "it is a CPU-only build"
        raise EnvironmentProblem(
            f"torch in {env.python.executable} cannot take CUDA extension wheels: {why}",
            "install a CUDA build of torch first (`mamba-build doctor` says which)",
        )
    if arch:
        gpus = tuple((f"--arch {a}", archs_mod.sm_number(a)) for a in archs_mod.parse_arch_list(arch))
        archs_from = f"--arch {arch}"
    else:
        gpus = tuple((g.name, archs_mod.sm_number(g.compute_capability)) for g in env.gpus.gpus if g.compute_capability)
        archs_from = "the visible GPUs" if gpus else ""
    return Target(
        env.python.executable,
        env.python.version or "",
        supported_tags(env.python.version or "3"),
        t.version,
        t.cuda,
        t.cxx11_abi,
        str(Path(t.file).parent) if t.file else None,
        gpus,
        archs_from,
    )


def probe_target(python: str | None, arch: str | None) -> Target:
    from types import SimpleNamespace

    from mamba_build.diagnose.probes.gpu import GpuInfo, probe_gpus
    from mamba_build.diagnose.probes.python_env import probe_python_env

    py = probe_python_env(python, extensions=False)
    gpus = GpuInfo(None, None, None, ()) if arch else probe_gpus()
    return target_from_env(SimpleNamespace(python=py, gpus=gpus), arch)


# --- reading the index --------------------------------------------------------------------------


def root_url(url: str) -> str:
    """The index root as a URL without a trailing slash: file://, http(s)://, or a local path."""
    if "://" not in url:
        return Path(url).expanduser().resolve().as_uri()
    scheme = urlparse(url).scheme
    if scheme not in ("file", "http", "https"):
        raise UsageError(f"--index-url {url}: {scheme}:// is not supported", "use file://, https:// or a path")
    return url.rstrip("/")


def read_url(url: str, what: str) -> bytes | None:
    """The bytes at ``url`` (file:// or http(s)://); None when it does not exist (HTTP 404/403, no file)."""
    if url.startswith("file:"):
        path = Path(unquote(urlparse(url).path))
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
    from mamba_build.build.sources import _get

    resp = _get(url, what)
    if resp.status_code in (403, 404):
        return None
    if resp.status_code >= 400:
        raise NetworkError(
            f"{url} answered HTTP {resp.status_code} while {what}",
            "check the URL and that the index is published; try again later",
        )
    return resp.content


def load_manifest(root: str) -> Manifest:
    data = read_url(f"{root}/manifest.json", "reading the index's manifest.json")
    if data is None:
        raise UsageError(
            f"no manifest.json at {root}/manifest.json",
            "pass the root that `mamba-build index --out DIR` wrote (the folder holding manifest.json "
            "and simple/), not simple/ or a channel",
        )
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise SourceError(f"{root}/manifest.json is not JSON: {exc}", "re-publish the index") from exc
    return Manifest.from_json(doc, source=f"{root}/manifest.json")


class Pages:
    """Channel pages of one index, read once each: (channel, project) -> {file name: (url, sha256)}."""

    def __init__(self, root: str):
        self.root = root
        self._cache: dict[tuple[str, str], dict[str, tuple[str, str]] | None] = {}

    def url(self, channel: str, project: str) -> str:
        return f"{self.root}/simple/{channel}/{project}/"

    def files(self, channel: str, project: str) -> dict[str, tuple[str, str]] | None:
        key = (channel, project)
        if key not in self._cache:
            page = self.url(channel, project)
            data = read_url(page + "index.json", f"reading the index page of {project} in {channel}")
            files = None
            if data is not None:
                try:
                    doc = json.loads(data.decode("utf-8"))
                    files = {f["filename"]: (urljoin(page, f["url"]), f["hashes"]["sha256"]) for f in doc["files"]}
                except (ValueError, KeyError, TypeError) as exc:
                    raise SourceError(
                        f"{page}index.json is not a PEP 691 project page: {exc}",
                        "re-run `mamba-build index` over the published tree",
                    ) from exc
            self._cache[key] = files
        return self._cache[key]


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    record: WheelRecord
    channel: str | None
    problems: tuple[str, ...] = ()
    url: str | None = None  # where the channel page says the file is

    @property
    def fits(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PackageChoice:
    package: str
    candidates: tuple[Candidate, ...]
    chosen: Candidate | None
    build_version: str | None = None  # the index's newest version of it: the version a fallback build pins

    def why_not(self) -> str:
        if not self.candidates:
            return f"{self.package}: the index has no wheel of it"
        lines = [f"{self.package}: no wheel in the index fits this environment"]
        lines += [f"  {c.record.filename}: {'; '.join(c.problems)}" for c in self.candidates]
        return "\n".join(lines)


@dataclass(frozen=True)
class InstallPlan:
    index_url: str
    target: Target
    choices: tuple[PackageChoice, ...]
    no_build: bool = False
    arch: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)  # fallback builds: --source per package
    cuda: str | None = None  # fallback builds: --cuda

    @property
    def to_install(self) -> list[PackageChoice]:
        return [c for c in self.choices if c.chosen is not None]

    @property
    def to_build(self) -> list[PackageChoice]:
        return [c for c in self.choices if c.chosen is None]

    def to_dict(self) -> dict[str, Any]:
        doc = to_jsonable(self)
        doc["target"]["tags"] = len(self.target.tags)  # the count: the list is long and derived
        doc["target"]["channel"] = self.target.channel.name if self.target.channel else None
        for choice, out in zip(self.choices, doc["choices"], strict=False):
            out["action"] = "install" if choice.chosen else ("none" if self.no_build else "build")
        return doc


def _archs_text(sass, ptx) -> str:
    return ", ".join([f"sm_{a}" for a in sass] + [f"compute_{a} (PTX)" for a in ptx]) or "no GPU code"


def judge(record: WheelRecord, target: Target, pages: Pages | None) -> Candidate:
    """One candidate with every reason it does not fit (an empty list: it fits)."""
    problems: list[str] = []
    try:
        wheel_tags = {str(t) for t in parse_wheel_filename(record.filename)[3]}
    except Exception as exc:  # a bad name in the manifest
        return Candidate(record, None, (f"not a wheel file name: {exc}",))
    if not wheel_tags & target.tags:
        problems.append(f"built for {', '.join(sorted(wheel_tags))}, this is Python {target.python_version}")
    channel = Channel.of(record.torch_version, record.torch_cuda, record.cxx11_abi)
    if channel is None:
        problems.append("the manifest does not say which torch/CUDA/ABI it was built against")
    elif target.channel is not None:
        problems += channel.differences(target.channel)
    for name, sm in target.gpus:
        if not archs_mod.runs_on(record.archs_sass, record.archs_ptx, sm):
            problems.append(
                f"holds {_archs_text(record.archs_sass, record.archs_ptx)}: nothing that runs on {name} (sm_{sm})"
            )
    url = None
    if not problems and channel is not None and pages is not None:
        files = pages.files(channel.name, canonicalize_name(record.package))
        listed = (files or {}).get(record.filename)
        if listed is None:
            problems.append(
                f"not listed on the channel page {pages.url(channel.name, record.package)} "
                "(re-run `mamba-build index` over the published tree)"
            )
        elif listed[1] != record.sha256:
            problems.append(
                f"the channel page gives sha256 {listed[1][:16]}..., manifest.json {record.sha256[:16]}...: "
                "the index and its manifest disagree (changed after `mamba-build index`)"
            )
        else:
            url = listed[0]
    return Candidate(record, channel.name if channel else None, tuple(problems), url)


def _version_key(record: WheelRecord):
    try:
        return (1, Version(record.version))
    except InvalidVersion:
        return (0, Version("0"))


def choose(
    manifest: Manifest, target: Target, packages: Sequence[str], pages: Pages | None
) -> tuple[PackageChoice, ...]:
    choices = []
    for package in packages:
        want = canonicalize_name(package)
        records = [r for r in manifest if canonicalize_name(r.package) == want]
        candidates = tuple(judge(r, target, pages) for r in sorted(records, key=_version_key, reverse=True))
        fitting = [c for c in candidates if c.fits]
        newest = max(records, key=_version_key).version.split("+")[0] if records else None
        choices.append(PackageChoice(want, candidates, fitting[0] if fitting else None, newest))
    return tuple(choices)


def default_packages(manifest: Manifest) -> tuple[str, ...]:
    """What the index offers: mamba-ssm/causal-conv1d when it has them, else every package in it."""
    have = sorted({canonicalize_name(r.package) for r in manifest})
    known = tuple(p for p in KNOWN if p in have)
    return known or tuple(have)


def resolve_install(
    index_url: str,
    *,
    python: str | None = None,
    packages: Sequence[str] = (),
    arch: str | None = None,
    no_build: bool = False,
    target: Target | None = None,
    sources: Mapping[str, str] | None = None,
    cuda: str | None = None,
) -> InstallPlan:
    """Read the index and the environment; decide, per package, which wheel or a build. Reads only."""
    root = root_url(index_url)
    manifest = load_manifest(root)
    target = target or probe_target(python, arch)
    wanted = tuple(dict.fromkeys(canonicalize_name(p) for item in packages for p in item.split(",") if p.strip()))
    choices = choose(manifest, target, wanted or default_packages(manifest), Pages(root))
    return InstallPlan(root, target, choices, no_build, arch, dict(sources or {}), cuda)


def render_plan(plan: InstallPlan) -> str:
    lines = [f"index   {plan.index_url}", f"target  {plan.target.describe()}"]
    for choice in plan.choices:
        if choice.chosen:
            lines.append(f"install {choice.chosen.record.filename} (channel {choice.chosen.channel})")
        else:
            action = (
                "nothing (--no-build)"
                if plan.no_build
                else (
                    "build with `mamba-build compile`"
                    + (f" ({choice.package}=={choice.build_version})" if choice.build_version else "")
                )
            )
            lines.append(f"{'none' if plan.no_build else 'build'}    {choice.package}: {action}")
        for c in choice.candidates:
            if c is not choice.chosen:
                lines.append(f"        skipped {c.record.filename}: " + ("; ".join(c.problems) or "an older fit"))
    return "\n".join(lines)


def plan_checks(plan: InstallPlan) -> list:
    """doctor --index-url: what install would do, as checks (ok: a wheel fits; warn: it would build)."""
    from mamba_build.diagnose.checks.base import ok, warn

    out = []
    for choice in plan.choices:
        cid = f"index:{choice.package}"
        if choice.chosen:
            r = choice.chosen.record
            out.append(
                ok(
                    cid,
                    f"`mamba-build install --index-url {plan.index_url}` would install {r.filename} "
                    f"(channel {choice.chosen.channel}; {_archs_text(r.archs_sass, r.archs_ptx)})",
                )
            )
        else:
            out.append(
                warn(
                    cid,
                    f"no wheel of {choice.package} in {plan.index_url} fits this environment: "
                    "`mamba-build install` would build it",
                    "publish a wheel built for channel "
                    f"{plan.target.channel.name if plan.target.channel else '?'} (or let install build it)",
                    choice.why_not(),
                )
            )
    return out


# --- executing -------------------------------------------------------------------------------


@dataclass
class InstallReport:
    installed: list[Path] = field(default_factory=list)  # wheels from the index, verified and installed
    already: bool = False  # the same files were installed already
    smoke: Any = None  # a SmokeReport
    built: Any = None  # the compile report of a fallback build


def fetch_wheel(candidate: Candidate, dest_dir: Path) -> Path:
    """Download the chosen wheel and check it against the manifest's sha256 (refused on any difference)."""
    rec = candidate.record
    assert candidate.url is not None  # a candidate without problems has its channel page's url
    dest_dir.mkdir(parents=True, exist_ok=True)
    data = read_url(candidate.url, f"downloading {rec.filename}")
    if data is None:
        raise SourceError(
            f"{candidate.url} does not exist (listed on the channel page)",
            "re-publish the whole index root (wheels, *.metadata, manifest.json and simple/)",
        )
    part = dest_dir / f".{rec.filename}.part"
    part.write_bytes(data)
    digest = sha256_file(part)
    if digest != rec.sha256:
        part.unlink(missing_ok=True)
        raise SourceError(
            f"{rec.filename} from {candidate.url} has sha256 {digest}, the index's manifest.json says "
            f"{rec.sha256}: the file changed after it was built and indexed (tampered or corrupt); "
            "it was not installed",
            "rebuild or restore the wheel, re-run `mamba-build index` and `mamba-build verify` on the published tree",
        )
    final = dest_dir / rec.filename
    os.replace(part, final)
    return final


def check_provenance(wheel: Path, target: Target) -> str | None:
    """What the wheel itself says it was built against must be this environment's channel."""
    prov = provenance.read_wheel(wheel)
    if prov is None:
        return None  # built before provenance stamps: the manifest's facts were all there is
    ch = provenance.channel_of(prov)
    if ch is None or target.channel is None or ch == target.channel:
        return None
    return (
        f"{wheel.name}: its dist-info/mamba_build.json says "
        + "; ".join(ch.differences(target.channel))
        + " (manifest.json says otherwise: the index is wrong)"
    )


def extension_objects(wheel: Path, into: Path) -> list[Path]:
    """The shared objects of a wheel, extracted."""
    from mamba_build.dist.fatbin import shared_objects_in_wheel

    out = []
    with zipfile.ZipFile(wheel) as zf:
        for i, member in enumerate(shared_objects_in_wheel(wheel)):
            target = into / f"{i}-{Path(member).name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(target)
    return out


def check_symbols(wheel: Path, target: Target, workdir: Path) -> dict[str, list[str]]:
    """{extension: undefined torch symbols this torch does not define} for one wheel."""
    from mamba_build.dist.fatbin import unresolved_torch_symbols

    if not target.torch_dir:
        return {}
    sos = extension_objects(wheel, workdir / wheel.stem)
    return {k: v for k, v in unresolved_torch_symbols(sos, target.torch_dir).items() if v}


def _symbol_error(wheel: Path, missing: dict[str, list[str]], target: Target) -> EnvironmentProblem:
    from mamba_build.build.pipeline import explain_failure

    # the dynamic loader's own words for the first missing symbol, classified by the explain catalog
    name, syms = next(iter(missing.items()))
    text = f"ImportError: {name.split('-', 1)[-1]}: undefined symbol: {syms[0]}\nunder torch {target.torch_version}"
    cause, fix, _ = explain_failure(text)
    shown = "\n".join(f"  {n.split('-', 1)[-1]}: {len(s)} missing, e.g. {', '.join(s[:3])}" for n, s in missing.items())
    return EnvironmentProblem(
        f"{wheel.name} does not link against torch {target.torch_version} here: {cause}; it was not installed",
        fix or "rebuild it against this torch (`mamba-build compile`)",
        details=shown,
    )


def execute_install(plan: InstallPlan, *, log: Callable[[str], None] = print, keep: bool = False) -> InstallReport:
    from mamba_build.dist.already_installed import installed_identical
    from mamba_build.build.pipeline import install_wheel_files
    from mamba_build.build.smoke.stage import smoke_test_wheels

    report = InstallReport()
    if plan.to_build and plan.no_build:
        raise EnvironmentProblem(
            "nothing in the index fits this environment for "
            + ", ".join(c.package for c in plan.to_build)
            + f" ({plan.target.describe()}); nothing was installed",
            "build it here: `mamba-build install --index-url ... ` without --no-build (or `mamba-build compile`), "
            "or publish wheels built for channel " + (plan.target.channel.name if plan.target.channel else "?"),
            details="\n".join(c.why_not() for c in plan.to_build),
        )
    if plan.to_install:
        workdir = Path(tempfile.mkdtemp(prefix="install-", dir=paths.builds_dir()))
        try:
            wheels = []
            for choice in plan.to_install:
                assert choice.chosen is not None  # to_install: the chosen ones
                wheel = fetch_wheel(choice.chosen, workdir / "wheels")
                log(f"fetched {wheel.name}: sha256 matches manifest.json")
                problem = check_provenance(wheel, plan.target)
                if problem:
                    raise EnvironmentProblem(
                        problem + "; it was not installed",
                        "rebuild the index (`mamba-build verify ROOT` shows the wrong record)",
                    )
                missing = check_symbols(wheel, plan.target, workdir / "so")
                if missing:
                    raise _symbol_error(wheel, missing, plan.target)
                log(
                    f"symbols {wheel.name}: every c10::/at::/torch:: symbol it needs is in torch "
                    f"{plan.target.torch_version} here"
                )
                wheels.append(wheel)
            from mamba_build.plan.installer import for_python

            inst = for_python(plan.target.python)  # the target's pip, mamba-build's pip --python, or uv
            smoke = smoke_test_wheels(
                wheels, python=plan.target.python, workdir=workdir / "staging", timeout=1800, installer=inst
            )
            report.smoke = smoke
            log(f"smoke   {smoke.summary()}")
            if not smoke.passed:
                from mamba_build.errors import SmokeTestError
                from mamba_build.build.pipeline import smoke_failure_cause

                cause, fix = smoke_failure_cause(smoke)
                raise SmokeTestError(
                    f"the index's wheels failed their smoke test here ({cause}); nothing was installed",
                    fix or f"see {smoke.log_path}",
                    details=smoke.failure_details(),
                )
            if installed_identical(plan.target.python, wheels):
                report.already = True
                log("install already installed: " + ", ".join(w.name for w in wheels) + " (the same files)")
            else:
                install_wheel_files(plan.target.python, wheels, inst)
                log("install " + ", ".join(w.name for w in wheels))
            report.installed = wheels
        finally:
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
    if plan.to_build:
        report.built = build_missing(plan, log)
    return report


def build_missing(plan: InstallPlan, log: Callable[[str], None]):
    """The compile pipeline for the packages no index wheel fits (pinned to the index's version)."""
    from mamba_build.plan.packages import package_info
    from mamba_build.build.pipeline import execute
    from mamba_build.plan.build_plan import CompileOptions
    from mamba_build.render import describe_plan
    from mamba_build.plan.resolve import resolve

    names = tuple(package_info(c.package).name for c in plan.to_build)
    versions = {
        package_info(c.package).name: c.build_version
        for c in plan.to_build
        if c.build_version and package_info(c.package).name not in plan.sources
    }
    for c in plan.to_build:
        log(f"build   {c.why_not()}")
    opts = CompileOptions(
        cuda=plan.cuda,
        packages=names,
        versions=versions,
        sources=dict(plan.sources),
        arch=plan.arch or "native",
        python=plan.target.python,
        install=True,
    )
    build_plan = resolve(opts)
    print(describe_plan(build_plan), file=sys.stderr)
    return execute(build_plan, log=log, show_progress=False)
