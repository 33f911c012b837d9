"""The target Python environment: interpreter, packages, torch, installed extensions.

Torch facts come from a child process (``mamba_build/children/python_env.py``) so a broken torch cannot crash the
doctor. Facts that can be read from files (torch's compiler-version map) are read without
importing anything.
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mamba_build import child


@dataclass(frozen=True)
class TorchInfo:
    importable: bool
    error: str | None = None
    version: str | None = None
    cuda: str | None = None
    hip: str | None = None
    cxx11_abi: bool | None = None
    file: str | None = None
    cuda_available: bool = False
    devices: tuple[dict, ...] = ()
    arch_list: tuple[str, ...] = ()
    wheel_tags: tuple[str, ...] = ()
    gcc_bounds: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    clang_bounds: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    cpp_extension_path: str | None = None
    # line of cpp_extension.py's module-level `import pkg_resources` / `from pkg_resources import ...`
    # (torch 2.0.1: line 25, `from pkg_resources import packaging`); None: it has none (or unreadable)
    pkg_resources_import: int | None = None


@dataclass(frozen=True)
class ExtensionInfo:
    module: str
    package: str
    present: bool
    imports: bool | None  # None: not tried (torch broken)
    error: str | None
    origin: str | None


@dataclass(frozen=True)
class PythonEnv:
    executable: str
    version: str | None
    packages: dict[str, str | None]
    torch: TorchInfo
    extensions: tuple[ExtensionInfo, ...]
    child_error: str | None = None  # the child crashed or timed out
    nvidia_include_dirs: tuple[str, ...] = ()  # torch's NVIDIA pip packages' include dirs (math headers)
    # where the target Python finds modules a build imports ({"pkg_resources": path or None}); empty: not asked
    module_origins: dict[str, str | None] = field(default_factory=dict)


def read_compiler_bounds(cpp_extension: Path) -> tuple[dict, dict]:
    """CUDA_GCC_VERSIONS / CUDA_CLANG_VERSIONS from torch's cpp_extension.py, by parsing, not importing."""
    try:
        tree = ast.parse(cpp_extension.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}, {}
    consts: dict[str, Any] = {}
    maps: dict[str, dict] = {}
    for node in tree.body:
        targets: list[str] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            targets, value = [node.target.id], node.value
        if value is None:
            continue
        for name in targets:
            if name.startswith("MINIMUM_") and name.endswith("_VERSION"):
                try:
                    consts[name] = ast.literal_eval(value)
                except ValueError:
                    pass
            elif name in ("CUDA_GCC_VERSIONS", "CUDA_CLANG_VERSIONS") and isinstance(value, ast.Dict):
                parsed = {}
                for k, v in zip(value.keys, value.values, strict=True):
                    if not isinstance(k, ast.Constant) or not isinstance(v, ast.Tuple) or len(v.elts) != 2:
                        continue
                    bounds = []
                    for elt in v.elts:
                        if isinstance(elt, ast.Name):
                            bounds.append(tuple(consts.get(elt.id, ())))
                        else:
                            try:
                                bounds.append(tuple(ast.literal_eval(elt)))
                            except ValueError:
                                bounds.append(())
                    parsed[str(k.value)] = (bounds[0], bounds[1])
                maps[name] = parsed
    return maps.get("CUDA_GCC_VERSIONS", {}), maps.get("CUDA_CLANG_VERSIONS", {})


def module_level_import(path: Path, module: str) -> int | None:
    """Line of the first unconditional module-level ``import <module>`` / ``from <module>[.x] import ...``
    in ``path`` (imports inside try/if/def do not count: they cannot break importing the file); None
    when there is none or the file cannot be parsed. Read by parsing, never by importing."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Import) and any(
            a.name == module or a.name.startswith(module + ".") for a in node.names
        ):
            return node.lineno
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and (node.module == module or node.module.startswith(module + "."))
        ):
            return node.lineno
    return None


def torch_cuda_home_guess(environ: dict[str, str] | None = None, path: str | None = None) -> tuple[str | None, str]:
    """Reproduce torch.utils.cpp_extension._find_cuda_home (torch 2.x, Linux).

    Order: $CUDA_HOME, $CUDA_PATH, dirname(dirname(which nvcc)) WITHOUT resolving links or
    wrapper scripts, then /usr/local/cuda if it exists. Returns (path or None, how it was found).
    """
    env = os.environ if environ is None else environ
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if env.get(var):
            return env[var], f"${var}"
    nvcc = shutil.which("nvcc", path=path if path is not None else env.get("PATH"))
    if nvcc:
        return os.path.dirname(os.path.dirname(nvcc)), f"`which nvcc` = {nvcc}"
    if os.path.exists("/usr/local/cuda"):
        return "/usr/local/cuda", "default /usr/local/cuda"
    return None, "no $CUDA_HOME, no nvcc on PATH, no /usr/local/cuda"


def probe_python_env(python: str | None = None, *, extensions: bool = True, timeout: float = 60.0) -> PythonEnv:
    exe = python or sys.executable
    ran = child.run(
        exe,
        "python_env",
        ["--extensions"] if extensions else [],
        timeout=timeout,
        extra_env={"PYTHONWARNINGS": "ignore"},
    )
    result = ran.result
    records = [r for r in ran.records if isinstance(r, dict) and "kind" in r]
    py = next((r for r in records if r["kind"] == "python"), {})
    t = next((r for r in records if r["kind"] == "torch"), None)
    child_error = None
    if result.missing:
        child_error = f"cannot run {exe}: {result.stderr.strip()}"
    elif result.timed_out:
        child_error = f"{exe} did not answer within {timeout:.0f}s"
    elif not result.ok:
        child_error = f"child exited with {result.returncode}: {result.stderr.strip()[-500:]}"

    packages = dict(py.get("packages") or {})
    torch_origin = py.get("torch_origin")
    cpp_ext = Path(torch_origin).parent / "utils" / "cpp_extension.py" if torch_origin else None
    gcc_b, clang_b = read_compiler_bounds(cpp_ext) if cpp_ext and cpp_ext.exists() else ({}, {})
    pkg_res = module_level_import(cpp_ext, "pkg_resources") if cpp_ext and cpp_ext.exists() else None
    if t is None or not t.get("ok"):
        err: str | None
        if t is None:
            err = "torch is not installed" if not packages.get("torch") else (child_error or "import torch crashed")
        else:
            err = t.get("error")
        torch_info = TorchInfo(
            importable=False,
            error=err,
            version=packages.get("torch"),
            wheel_tags=tuple(py.get("torch_wheel_tags") or ()),
            gcc_bounds=gcc_b,
            clang_bounds=clang_b,
            cpp_extension_path=str(cpp_ext) if cpp_ext else None,
            pkg_resources_import=pkg_res,
        )
    else:
        torch_info = TorchInfo(
            importable=True,
            version=t.get("version"),
            cuda=t.get("cuda"),
            hip=t.get("hip"),
            cxx11_abi=t.get("cxx11_abi"),
            file=t.get("file"),
            cuda_available=bool(t.get("cuda_available")),
            devices=tuple(t.get("devices") or ()),
            arch_list=tuple(t.get("arch_list") or ()),
            wheel_tags=tuple(py.get("torch_wheel_tags") or ()),
            gcc_bounds=gcc_b,
            clang_bounds=clang_b,
            cpp_extension_path=str(cpp_ext) if cpp_ext else None,
            pkg_resources_import=pkg_res,
        )
    ext_records = {r["module"]: r for r in records if r["kind"] == "extension"}
    exts = []
    for module, origin in (py.get("extension_origins") or {}).items():
        rec = ext_records.get(module)
        package = "causal-conv1d" if module.startswith("causal") else "mamba-ssm"
        if rec is None:
            exts.append(
                ExtensionInfo(
                    module,
                    package,
                    origin is not None,
                    None,
                    None if origin is None else "not tried (torch did not import)",
                    origin,
                )
            )
        else:
            exts.append(
                ExtensionInfo(
                    module,
                    package,
                    bool(rec.get("present")),
                    bool(rec.get("ok")) if rec.get("present") else None,
                    rec.get("error"),
                    rec.get("origin"),
                )
            )
    return PythonEnv(
        executable=py.get("executable") or exe,
        version=py.get("version"),
        packages=packages,
        torch=torch_info,
        extensions=tuple(exts),
        child_error=child_error,
        nvidia_include_dirs=tuple(py.get("nvidia_include_dirs") or ()),
        module_origins=dict(py.get("module_origins") or {}),
    )
