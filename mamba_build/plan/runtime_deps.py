"""The built packages' runtime requirements, settled before anything is built.

compile installs the built wheels with ``--no-deps`` (torch must not move), so what the packages need at
run time (mamba-ssm: einops, transformers, triton, ...) must already be in the target environment, or
``import mamba_ssm`` fails in the smoke test after the whole build. So, at plan time:

1. read what each package declares: the sdist's ``PKG-INFO`` (``Requires-Dist``), or a source tree's
   ``PKG-INFO`` / ``setup.py`` (a literal ``install_requires``); a git source is read right after it is
   fetched, still before building (:func:`after_fetch`);
2. ask the target which distributions it has, and evaluate the requirements' markers there;
3. plan to install the MISSING ones before building (:func:`install_missing`), with every distribution
   already there pinned to its version (a constraints file), so torch and everything else stays exactly as
   it is; with ``--no-deps`` the plan fails instead, naming the pip line that does it.

torch is never installed or changed; an installed distribution whose version does not satisfy a
requirement is left as it is and reported (changing it is the user's call).
"""

from __future__ import annotations

import email.parser
import tarfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mamba_build import child, runner
from mamba_build.errors import BuildError, EnvironmentProblem

NEVER = ("torch",)  # never installed, upgraded or downgraded by mamba-build


@dataclass(frozen=True)
class RuntimeDeps:
    declared: dict[str, tuple[str, ...]] = field(default_factory=dict)  # package -> its requirements
    read_from: dict[str, str] = field(default_factory=dict)  # package -> where they were read
    missing: tuple[str, ...] = ()  # requirements to install before building, as declared
    mismatched: tuple[str, ...] = ()  # "triton>=3.5.0 (3.4.0 installed)": left as it is
    unknown: tuple[str, ...] = ()  # packages whose requirements are read after fetching (git, URL)
    action: str = "none"  # "none": nothing missing; "install": before building; "refuse": --no-deps;
    # "skip": --skip-missing-deps (listed, not installed)
    pins: tuple[str, ...] = ()  # the constraints: every distribution in the target, name==version
    command: str = ""  # the line that installs the missing ones with torch pinned (the fix for --no-deps)
    reason: str = ""
    allowed: bool = True  # False with --no-deps
    skip_missing: bool = False  # --skip-missing-deps

    def summary(self) -> str:
        """One line for the plan."""
        if self.action == "install":
            text = (
                f"{', '.join(self.missing)}: installed before the build, with the {len(self.pins)} "
                f"distributions already there pinned (constraints), so torch and the rest stay"
            )
        elif self.action == "refuse":
            text = f"{', '.join(self.missing)} missing: --no-deps"
        elif self.action == "skip":
            text = f"{', '.join(self.missing)} missing, not installed (--skip-missing-deps): `{self.command}`"
        else:
            text = "every declared requirement is installed" if self.declared else "none declared"
        if self.unknown:
            text += f"; {', '.join(self.unknown)}: read after fetching (not an sdist or tree known now)"
        if self.mismatched:
            text += f"; left as installed: {', '.join(self.mismatched)}"
        return text


# --------------------------------------------------------------------------------------------
# What a package declares
# --------------------------------------------------------------------------------------------


def _from_pkg_info(text: str) -> list[str]:
    return [r.strip() for r in email.parser.Parser().parsestr(text).get_all("Requires-Dist") or []]


def _from_setup_py(text: str) -> list[str] | None:
    """A literal ``install_requires=[...]`` in setup.py (upstream's form), else None."""
    import ast

    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.keyword)
            and node.arg == "install_requires"
            and isinstance(node.value, (ast.List, ast.Tuple))
        ):
            return [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return None


def _choose(pkg_info: str | None, setup_py: str | None, where: str) -> tuple[list[str], str]:
    if pkg_info is not None:
        reqs = _from_pkg_info(pkg_info)
        if reqs:
            return reqs, f"Requires-Dist of {where}/PKG-INFO"
    literal = _from_setup_py(setup_py) if setup_py is not None else None
    if literal is not None:
        return literal, f"install_requires of {where}/setup.py"
    return [], f"{where}: no Requires-Dist, no literal install_requires"


def declared_in_tree(tree: Path) -> tuple[list[str], str]:
    """(requirements, where they were read) of an unpacked source tree."""
    tree = Path(tree)

    def read(name: str) -> str | None:
        try:
            return (tree / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    return _choose(read("PKG-INFO"), read("setup.py"), str(tree))


def declared_in_archive(archive: Path) -> tuple[list[str], str]:
    """(requirements, where they were read) of an sdist (.tar.gz or .zip), read without unpacking it."""
    archive = Path(archive)
    found: dict[str, str] = {}
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    parts = name.split("/")
                    if len(parts) == 2 and parts[1] in ("PKG-INFO", "setup.py"):
                        found[parts[1]] = zf.read(name).decode("utf-8", "replace")
        else:
            with tarfile.open(archive, "r:*") as tf:
                for member in tf:
                    parts = member.name.split("/")
                    if member.isfile() and len(parts) == 2 and parts[1] in ("PKG-INFO", "setup.py"):
                        fh = tf.extractfile(member)
                        if fh is not None:
                            found[parts[1]] = fh.read().decode("utf-8", "replace")
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        return [], f"{archive.name}: not readable ({exc.__class__.__name__})"
    return _choose(found.get("PKG-INFO"), found.get("setup.py"), archive.name)


def declared_for(
    name: str, version: str | None, source: str, index_url: str | None, find_links: Iterable[str] | None
) -> tuple[list[str], str] | None:
    """What package ``name`` declares, from the same place the build will take it; None when that is
    known only after fetching (git, an archive URL)."""
    from mamba_build.build import sources

    spec = sources.parse_source_spec(source)
    if spec.kind == "pypi":
        archive = sources.download_sdist(name, version, index_url, list(find_links or ()) or None)
        return declared_in_archive(archive)
    if spec.kind == "local":
        return declared_in_tree(Path(spec.location))
    if spec.kind == "archive" and not spec.location.lower().startswith(("http://", "https://")):
        return declared_in_archive(Path(spec.location.removeprefix("file://")).expanduser())
    return None


# --------------------------------------------------------------------------------------------
# What the target has, and what is missing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetDists:
    dists: dict[str, tuple[str, str]]  # canonical name -> (name as installed, version)
    markers: dict[str, str]


def target_dists(python: str) -> TargetDists:
    # its distributions and the values of the marker variables (PEP 508): mamba_build/children/target_dists.py
    ran = child.run(python, "target_dists", timeout=120, extra_env={"PYTHONWARNINGS": "ignore"})
    res = ran.result
    data = ran.data if res.ok else None
    if not data:
        raise EnvironmentProblem(
            f"cannot list the distributions installed for {python} ({(res.stderr or res.stdout).strip()[-300:]})",
            "check that --python names a working interpreter",
        )
    dists: dict[str, tuple[str, str]] = {canonicalize_name(n): (n, v) for n, v in data["dists"]}
    return TargetDists(dists, data["markers"])


def unmet(requirements: Iterable[str], target: TargetDists, skip: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(missing, mismatched) among ``requirements`` for ``target``; names in ``skip`` (the packages
    being built) and torch are left out. Extras-only and non-matching markers do not apply."""
    skipped = {canonicalize_name(s) for s in (*skip, *NEVER)}
    missing: list[str] = []
    mismatched: list[str] = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({**target.markers, "extra": ""}):
            continue
        key = canonicalize_name(req.name)
        if key in skipped:
            continue
        have = target.dists.get(key)
        if have is None:
            if str(req) not in missing:
                missing.append(str(req))
            continue
        try:
            ok = not req.specifier or req.specifier.contains(Version(have[1]), prereleases=True)
        except InvalidVersion:
            ok = True
        if not ok:
            mismatched.append(f"{req} ({have[1]} installed)")
    return missing, mismatched


def pins_of(target: TargetDists) -> tuple[str, ...]:
    """``name==version`` for every distribution in the target (the constraints of the install)."""
    out = []
    for name, version in sorted(target.dists.values(), key=lambda nv: nv[0].lower()):
        try:
            Version(version)
        except InvalidVersion:
            continue
        out.append(f"{name}=={version}")
    return tuple(out)


def _decide(
    declared: Mapping[str, tuple[str, ...]],
    read_from: Mapping[str, str],
    unknown: tuple[str, ...],
    target: TargetDists,
    installer,
    install_deps: bool,
    building: Iterable[str],
    skip: bool = False,
) -> RuntimeDeps:
    missing: list[str] = []
    mismatched: list[str] = []
    for reqs in declared.values():
        m, mm = unmet(reqs, target, building)
        missing += [r for r in m if r not in missing]
        mismatched += [r for r in mm if r not in mismatched]
    torch = target.dists.get("torch")
    pinned_torch = [f"torch=={torch[1]}"] if torch else []
    command = installer.command_line([*missing, *pinned_torch]) if missing else ""
    if not missing:
        action, reason = "none", ""
    elif skip:
        action = "skip"
        reason = (
            "--skip-missing-deps: nothing is installed; the smoke test's import shows whether the packages need them"
        )
    elif install_deps:
        action = "install"
        reason = (
            "the wheels are installed with --no-deps (torch must not move), so what the packages import "
            "at run time must be there before the smoke test imports them"
        )
    else:
        action, reason = "refuse", "--no-deps: mamba-build installs nothing but the wheels it builds"
    return RuntimeDeps(
        dict(declared),
        dict(read_from),
        tuple(missing),
        tuple(mismatched),
        unknown,
        action,
        pins_of(target) if missing else (),
        command,
        reason,
        install_deps,
        skip,
    )


def refusal(deps: RuntimeDeps, python: str) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"the packages need {', '.join(deps.missing)} at run time, which {python} lacks, and --no-deps "
        "says not to install them (the smoke test would fail to import the packages after the whole build)",
        f"install them first, with torch pinned: `{deps.command}`; or drop --no-deps",
    )


def resolve_runtime_deps(opts, packages, installer, target: TargetDists | None = None) -> RuntimeDeps:
    """The plan's runtime requirements for ``packages`` (PackagePlan) built into ``installer.python``.
    Raises the --no-deps refusal at plan time."""
    declared: dict[str, tuple[str, ...]] = {}
    read_from: dict[str, str] = {}
    unknown: list[str] = []
    for pkg in packages:
        got = declared_for(pkg.name, pkg.version, pkg.source, opts.index_url, opts.find_links)
        if got is None:
            unknown.append(pkg.name)
            continue
        declared[pkg.name], read_from[pkg.name] = tuple(got[0]), got[1]
    target = target or target_dists(installer.python)
    deps = _decide(
        declared,
        read_from,
        tuple(unknown),
        target,
        installer,
        opts.install_deps,
        [p.name for p in packages],
        skip=getattr(opts, "skip_missing_deps", False),
    )
    if deps.action == "refuse":
        raise refusal(deps, installer.python)
    return deps


def after_fetch(plan, trees: Mapping[str, Path]) -> RuntimeDeps:
    """The plan's runtime requirements completed with those of the packages read only after fetching
    (``trees``: package -> fetched tree). Raises the --no-deps refusal."""
    deps = plan.runtime_deps
    if deps is None or not deps.unknown:
        return deps
    declared, read_from = dict(deps.declared), dict(deps.read_from)
    for name in deps.unknown:
        if name in trees:
            reqs, where = declared_in_tree(trees[name])
            declared[name], read_from[name] = tuple(reqs), where
    out = _decide(
        declared,
        read_from,
        (),
        target_dists(plan.python),
        plan.installer_for(),
        deps.allowed,
        [p.name for p in plan.packages],
        skip=deps.skip_missing,
    )
    if out.action == "refuse":
        raise refusal(out, plan.python)
    return out


def install_missing(plan, deps: RuntimeDeps, workdir: Path, log=print) -> None:
    """Install ``deps.missing`` into the target before building, every distribution already there
    pinned (constraints), so nothing installed changes."""
    if deps is None or deps.action != "install" or not deps.missing:
        return
    inst = plan.installer_for()
    workdir.mkdir(parents=True, exist_ok=True)
    constraints = workdir / "runtime-constraints.txt"
    constraints.write_text("\n".join(deps.pins) + "\n", encoding="utf-8")
    log(
        f"deps    installing {', '.join(deps.missing)} ({inst.kind}; the {len(deps.pins)} installed "
        "distributions pinned)"
    )
    res = runner.run(
        inst.install_argv(deps.missing, constraints=constraints, index_url=plan.index_url, find_links=plan.find_links),
        timeout=1800,
    )
    if not res.ok:
        raise BuildError(
            f"installing the runtime requirements {', '.join(deps.missing)} failed before the build "
            "(with every installed distribution pinned, so nothing already there was changed)",
            f"install them yourself and rerun: `{deps.command}` (offline: download their wheels elsewhere and "
            "pass --find-links DIR, which this install uses too)",
            details="\n".join(res.output.strip().splitlines()[-25:]),
        )


def with_runtime_deps(plan, opts):
    """``plan`` with its runtime requirements resolved (see :func:`resolve_runtime_deps`)."""
    return replace(plan, runtime_deps=resolve_runtime_deps(opts, plan.packages, plan.installer_for()))
