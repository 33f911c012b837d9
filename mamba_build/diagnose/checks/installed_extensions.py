"""What is already installed: package versions, do the extension modules import, which archs they hold."""

from __future__ import annotations

from pathlib import Path

from mamba_build.diagnose.checks.base import Check, fail, ok, skip, warn
from mamba_build.diagnose.environment import Environment
from mamba_build.diagnose.probes.python_env import ExtensionInfo
from mamba_build.diagnose.probes.system import required_glibc
from mamba_build.plan.archs import runs_on
from mamba_build.tables import version_tuple


def rebuild_cmd(package: str) -> str:
    return f"mamba-build compile --package {package} --no-cache"


def check_extension(env: Environment, ext: ExtensionInfo) -> list[Check]:
    pkg_version = env.python.packages.get(ext.package)
    cid = f"installed:{ext.package}"
    if not pkg_version and not ext.present:
        return [skip(cid, f"{ext.package} is not installed (mamba-build compile builds it)")]
    checks: list[Check] = []
    if pkg_version and not ext.present:
        checks.append(
            fail(
                cid,
                f"{ext.package} {pkg_version} is installed but its CUDA module {ext.module} is not "
                "(built with SKIP_CUDA_BUILD or from an sdist without csrc/)",
                rebuild_cmd(ext.package),
            )
        )
        return checks
    checks.append(ok(cid, f"{ext.package} {pkg_version or '?'} with {ext.module} at {ext.origin}"))
    icid = f"import:{ext.module}"
    if ext.imports is None:
        checks.append(skip(icid, ext.error or "not tried"))
    elif ext.imports:
        checks.append(ok(icid, f"{ext.module} imports"))
    else:
        checks.append(_import_failure(env, ext, icid))
    if ext.origin and Path(ext.origin).exists():
        checks.extend(provenance_checks(env, ext))
        checks.extend(_binary_checks(env, ext))
    return checks


# import failures that a build on this machine cures (it links against the local torch and runtime)
_REBUILD_CURES = frozenset(
    {
        "abi-undefined-symbol",
        "glibcxx-missing",
        "glibc-too-old",
        "extension-not-built",
        "extension-missing-from-wheel",
        "no-kernel-image",
    }
)


def _import_failure(env: Environment, ext: ExtensionInfo, icid: str) -> Check:
    """Why the module does not import, from the catalog of `mamba-build explain` (one classifier)."""
    from mamba_build.diagnose.explain import diagnose_text

    err = ext.error or ""
    context = {"package": ext.package, "module": ext.module, "torch_version": env.python.torch.version or ""}
    root = diagnose_text(err, {k: v for k, v in context.items() if v}).root
    if root is None:
        return fail(icid, f"{ext.module} does not import: {err[:200]}", rebuild_cmd(ext.package), err)
    fix = rebuild_cmd(ext.package) if root.id in _REBUILD_CURES else root.fix
    return fail(icid, f"{ext.module} does not import [{root.id}]: {root.cause}", fix, err)


def provenance_checks(env: Environment, ext: ExtensionInfo) -> list[Check]:
    """What the installed wheel's dist-info/mamba_build.json says it was built against, against this torch."""
    from mamba_build.dist import provenance
    from mamba_build.dist.channels import Channel

    cid = f"provenance:{ext.package}"
    assert ext.origin is not None  # called for an extension found on disk (installed_checks)
    prov, dist_info = provenance.read_installed(Path(ext.origin).parent, ext.package)
    if prov is None:
        where = f" ({dist_info.name} has no {provenance.FILE_NAME})" if dist_info else ""
        return [skip(cid, f"{ext.package} was not built by mamba-build{where}: what it was built against is unknown")]
    built = provenance.channel_of(prov)
    t = env.python.torch
    here = Channel.of(t.version, t.cuda, t.cxx11_abi) if t.importable else None
    if built is not None and here is not None and built != here:
        return [
            fail(
                cid,
                f"{ext.package}: " + "; ".join(built.differences(here)) + " (its dist-info/"
                f"{provenance.FILE_NAME}): it will fail to import or misbehave",
                rebuild_cmd(ext.package),
                provenance.describe(prov),
            )
        ]
    return [ok(cid, f"{ext.package} {provenance.describe(prov)}")]


def _binary_checks(env: Environment, ext: ExtensionInfo) -> list[Check]:
    from mamba_build.dist.fatbin import list_archs

    checks: list[Check] = []
    assert ext.origin is not None  # called for an extension found on disk (installed_checks)
    so = Path(ext.origin)
    glibc, _glibcxx = required_glibc(so)
    have = env.platform.glibc
    if glibc and have and version_tuple(glibc) > version_tuple(have):
        checks.append(
            fail(
                f"glibc:{ext.module}",
                f"{ext.module} needs glibc {glibc}, this system has {have}",
                rebuild_cmd(ext.package),
            )
        )
    acid = f"archs:{ext.module}"
    cuobjdump = None
    for tk in env.toolkits:
        candidate = Path(tk.home) / "bin" / "cuobjdump"
        if candidate.exists():
            cuobjdump = str(candidate)
            break
    try:
        archs = list_archs(so, cuobjdump=cuobjdump)
    except Exception as exc:  # a corrupt .so or missing cuobjdump must not stop the doctor
        checks.append(skip(acid, f"could not read the archs inside {so.name}: {exc}"))
        return checks
    inside = ", ".join([f"sm_{a}" for a in archs.sass] + [f"compute_{a} (PTX)" for a in archs.ptx]) or "none"
    gpus = [g for g in env.gpus.gpus if g.compute_capability]
    if not gpus:
        checks.append(ok(acid, f"{so.name} holds {inside}"))
        return checks
    missing = []
    for g in gpus:
        sm = int((g.compute_capability or "").replace(".", ""))  # gpus: those with one
        if not runs_on(archs.sass, archs.ptx, sm):
            missing.append((g, sm))
    if missing:
        g, sm = missing[0]
        checks.append(
            fail(
                acid,
                f"{so.name} holds {inside}, nothing for {g.name} (sm_{sm}): the first call "
                "fails with `no kernel image is available for execution on the device`",
                f"mamba-build compile --package {ext.package} --arch {g.compute_capability}",
            )
        )
    else:
        checks.append(ok(acid, f"{so.name} holds {inside}; runs on every visible GPU"))
    return checks


def check_installed(env: Environment) -> list[Check]:
    if not env.python.extensions:
        return [warn("installed", "could not inspect installed packages", None, env.python.child_error or "")]
    out: list[Check] = []
    for ext in env.python.extensions:
        out.extend(check_extension(env, ext))
    return out
