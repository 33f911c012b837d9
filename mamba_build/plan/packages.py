"""The two packages we build: facts from ``data/packages.toml``, version defaults and pair checks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mamba_build import tables
from mamba_build.errors import SourceError, UsageError

# The two Mamba packages, in build/install order (mamba-ssm imports causal-conv1d): the one list of them.
PACKAGES = ("causal-conv1d", "mamba-ssm")


@dataclass(frozen=True)
class PackageInfo:
    name: str  # canonical: "mamba-ssm"
    pypi_name: str
    dist_name: str  # "mamba_ssm"
    import_name: str
    extension_module: str
    env_prefix: str
    first_complete_sdist: Version
    first_cuda13_release: Version
    git_url: str
    tag_format: str

    def tag(self, version: str) -> str:
        return self.tag_format.format(version=version)

    def git_source_hint(self, version: str | None = None) -> str:
        ref = self.tag(version) if version else "main"
        return f"git+{self.git_url}@{ref}"

    def tarball_hint(self, version: str | None = None) -> str:
        if version:
            return f"{self.git_url}/archive/refs/tags/{self.tag(version)}.tar.gz"
        return f"{self.git_url}/archive/refs/heads/main.tar.gz"


def known_packages() -> tuple[str, ...]:
    """Every package of data/packages.toml: the two Mamba packages, then the others (the test fixture)."""
    return (*PACKAGES, *(n for n in tables.load("packages")["package"] if n not in PACKAGES))


def package_info(name: str) -> PackageInfo:
    key = canonicalize_name(name)
    data = tables.load("packages")["package"]
    if key not in data:
        raise UsageError(f"unknown package {name!r}", f"use one of: {', '.join(PACKAGES)}")
    d = data[key]
    return PackageInfo(
        name=key,
        pypi_name=d["pypi_name"],
        dist_name=d["dist_name"],
        import_name=d["import_name"],
        extension_module=d["extension_module"],
        env_prefix=d["env_prefix"],
        first_complete_sdist=Version(d["first_complete_sdist"]),
        first_cuda13_release=Version(d["first_cuda13_release"]),
        git_url=d["git_url"],
        tag_format=d["tag_format"],
    )


def parse_requirement(text: str) -> tuple[str, str | None]:
    """'mamba-ssm==2.2.6.post3' -> ('mamba-ssm', '2.2.6.post3'); 'causal_conv1d' -> ('causal-conv1d', None)."""
    m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([^\s,;]+))?\s*", text or "")
    if not m:
        raise UsageError(
            f"cannot read {text!r} as PACKAGE or PACKAGE==VERSION",
            "write e.g. mamba-ssm==2.2.6.post3 (only exact pins are supported)",
        )
    info = package_info(m.group(1))
    version = m.group(2)
    if version is not None:
        try:
            Version(version)
        except InvalidVersion:
            raise UsageError(
                f"{version!r} is not a valid version of {info.name}", "write e.g. mamba-ssm==2.2.6.post3"
            ) from None
    return info.name, version


def cuda_major_of(cuda_version: str | None) -> int | None:
    if not cuda_version:
        return None
    try:
        return Version(cuda_version).major
    except InvalidVersion:
        return None


def _cuda13_or_newer(cuda_version: str | None) -> bool:
    major = cuda_major_of(cuda_version)
    return major is not None and major >= 13


def version_supported(package: str, version: str, cuda_version: str | None = None) -> tuple[bool, str]:
    """(ok, reason) for building ``package==version`` from its PyPI sdist."""
    info = package_info(package)
    v = Version(version)
    if v < info.first_complete_sdist:
        return False, (
            f"the PyPI sdist of {info.name} {version} lacks the CUDA sources its setup.py lists "
            f"(complete from {info.first_complete_sdist} on)"
        )
    if _cuda13_or_newer(cuda_version) and v < info.first_cuda13_release:
        return False, (
            f"{info.name} {version} predates upstream's CUDA 13 support "
            f"(setup.py has CUDA 13 handling from {info.first_cuda13_release} on)"
        )
    return True, ""


def incompatible_reason(mamba_version: str, causal_conv1d_version: str) -> str | None:
    """The reason this pair is known not to work together, or None."""
    mv, cv = Version(mamba_version), Version(causal_conv1d_version)
    for rule in tables.load("packages").get("incompatible", []):
        if mv in SpecifierSet(rule["mamba-ssm"]) and cv in SpecifierSet(rule["causal-conv1d"]):
            return rule["reason"]
    return None


def check_pair(mamba_version: str, causal_conv1d_version: str) -> None:
    """Refuse a known-incompatible pair (UsageError, exit 2) with the reason."""
    reason = incompatible_reason(mamba_version, causal_conv1d_version)
    if reason:
        raise UsageError(
            f"mamba-ssm {mamba_version} and causal-conv1d {causal_conv1d_version} are known not to "
            f"work together: {reason}",
            "pin a newer causal-conv1d (--version causal-conv1d==X) or leave the versions to the defaults",
        )


@dataclass(frozen=True)
class TorchRequirement:
    """A known torch minimum of some releases of a package (``[[torch_requirement]]`` in packages.toml).

    ``scope``: "build" when the CUDA extension cannot be built (or loaded) with an older torch,
    "python" when the extension builds and loads but the package's Python code does not import.
    """

    package: str
    versions: SpecifierSet
    torch: SpecifierSet
    scope: str
    reason: str
    determined: str


def torch_requirements(package: str | None = None) -> list[TorchRequirement]:
    out = []
    for r in tables.load("packages").get("torch_requirement", []):
        if package is not None and canonicalize_name(r["package"]) != canonicalize_name(package):
            continue
        if r["scope"] not in ("build", "python"):
            raise ValueError(f"packages.toml: torch_requirement scope {r['scope']!r} (build or python)")
        out.append(
            TorchRequirement(
                canonicalize_name(r["package"]),
                SpecifierSet(r["versions"]),
                SpecifierSet(r["torch"]),
                r["scope"],
                r["reason"],
                r["determined"],
            )
        )
    return out


def _torch_release(torch_version: str | None) -> Version | None:
    """'2.0.1+cu117' -> Version('2.0.1'); None for None or an unreadable version."""
    if not torch_version:
        return None
    try:
        return Version(Version(str(torch_version)).base_version)
    except InvalidVersion:
        return None


def unmet_torch_requirements(package: str, version: str, torch_version: str | None) -> list[TorchRequirement]:
    """The known torch requirements of ``package==version`` that ``torch_version`` does not meet."""
    tv = _torch_release(torch_version)
    if tv is None:
        return []
    v = Version(version)
    return [
        r
        for r in torch_requirements(package)
        if r.versions.contains(v, prereleases=True) and not r.torch.contains(tv, prereleases=True)
    ]


def _ranked_candidates(
    package: str, available: Iterable[str], torch_version: str | None, cuda_version: str | None
) -> tuple[list[str], list[str]]:
    """(ranked, excluded_by_torch): buildable releases, newest first, those whose Python code also
    works with ``torch_version`` ahead of those where only the extension does; and the releases left
    out because their extension needs a newer torch."""
    full, ext_only, excluded = [], [], []
    for v in _sorted_releases(available):
        if not version_supported(package, str(v), cuda_version)[0]:
            continue
        unmet = unmet_torch_requirements(package, str(v), torch_version)
        if any(r.scope == "build" for r in unmet):
            excluded.append(str(v))
        elif unmet:
            ext_only.append(str(v))
        else:
            full.append(str(v))
    return full + ext_only, excluded


def _sorted_releases(versions: Iterable[str]) -> list[Version]:
    out = []
    for v in versions:
        try:
            pv = Version(str(v))
        except InvalidVersion:
            continue
        if not pv.is_prerelease and not pv.is_devrelease:
            out.append(pv)
    return sorted(set(out), reverse=True)


def default_version(
    package: str, available: Iterable[str], torch_version: str | None = None, cuda_version: str | None = None
) -> str:
    """Newest release in ``available`` whose sdist is complete and which supports the CUDA major.

    With ``torch_version`` the known torch minimums (``[[torch_requirement]]`` in data/packages.toml)
    apply: releases whose extension needs a newer torch are skipped, and the newest release whose
    Python code also works with that torch is preferred; when there is none (causal-conv1d >= 1.5.1
    on torch < 2.4), the newest release whose extension builds is taken.
    """
    info = package_info(package)
    ranked, excluded = _ranked_candidates(info.name, available, torch_version, cuda_version)
    if ranked:
        return ranked[0]
    if excluded:
        reasons = "; ".join(
            f"{r.versions}: torch {r.torch} ({r.reason})" for r in torch_requirements(info.name) if r.scope == "build"
        )
        raise SourceError(
            f"no release of {info.name} on the index builds against torch {torch_version} "
            f"(known requirements: {reasons})",
            "use a newer torch in this environment, or build an older release from git: "
            f"--source {info.git_source_hint()}",
        )
    raise SourceError(
        f"no release of {info.name} on the index can be built here (need >= "
        f"{info.first_complete_sdist}"
        + (f", CUDA {cuda_version} needs >= {info.first_cuda13_release}" if _cuda13_or_newer(cuda_version) else "")
        + ")",
        f"point --index-url/--find-links at an index that has it, or build from git: --source {info.git_source_hint()}",
    )


def default_versions(
    torch_version: str | None, available: Mapping[str, Iterable[str]], cuda_version: str | None = None
) -> dict[str, str]:
    """{'mamba-ssm': ..., 'causal-conv1d': ...}: the newest buildable pair that is not known-incompatible.

    ``available`` maps each package to the versions on the index (``sources.available_versions``).
    """
    mamba = default_version("mamba-ssm", available["mamba-ssm"], torch_version, cuda_version)
    cc_candidates = _ranked_candidates("causal-conv1d", available["causal-conv1d"], torch_version, cuda_version)[0]
    for cc in cc_candidates:
        if incompatible_reason(mamba, cc) is None:
            return {"mamba-ssm": mamba, "causal-conv1d": cc}
    if not cc_candidates:
        default_version("causal-conv1d", [], torch_version, cuda_version)  # raises with the explanation
    check_pair(mamba, cc_candidates[0])  # raises with the reason
    return {"mamba-ssm": mamba, "causal-conv1d": cc_candidates[0]}  # pragma: no cover
