"""What ``import <package>`` imports from outside the package, read from its source tree without running it.

The smoke test's pre-started child (:class:`~mamba_build.build.smoke.stage.WarmChild`) imports these while the
wheels build, so that the checks' ``import mamba_ssm`` only runs the package's own modules: mamba-ssm's
``__init__`` reaches ``transformers.generation`` (``mamba_ssm/utils/generation.py``), which loads torch's dynamo and
distributed modules: seconds that do not depend on the wheels.

The walk follows the package's own imports from its ``__init__`` (absolute and relative), the statements that run
at import time only (module level, also inside ``if``/``try``/``with`` and class bodies; never a function's body),
and records each import of another module as ``(module, names)`` (``from module import names``), in the order the
import would meet them. Modules named in ``own`` (the packages and extension modules being built) are never
recorded: they must come from the staged wheels, so the child must not import another copy first.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path

Import = tuple[str, tuple[str, ...]]  # (module, names): `from module import names`; () for `import module`
_TRY = (ast.Try, getattr(ast, "TryStar", ast.Try))  # try/except* is Python 3.11's


def _module_file(tree: Path, module: str) -> Path | None:
    base = tree.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _import_time_statements(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of ``body`` that run when the module is imported (not those inside functions)."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        yield node
        if isinstance(node, ast.If | ast.For | ast.While | ast.With):
            yield from _import_time_statements(node.body)
            yield from _import_time_statements(getattr(node, "orelse", []))
        elif isinstance(node, _TRY):
            yield from _import_time_statements(node.body)
            for handler in node.handlers:
                yield from _import_time_statements(handler.body)
            yield from _import_time_statements(node.orelse)
            yield from _import_time_statements(node.finalbody)
        elif isinstance(node, ast.ClassDef):
            yield from _import_time_statements(node.body)


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if level == 0:
        return name or ""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join([*base, name] if name else base)


def external_imports(tree: Path | str, package: str, own: Collection[str] = ()) -> list[Import]:
    """``(module, names)`` for every import of a module outside ``package`` that ``import <package>`` runs, read
    from ``tree/<package>``; top-level names in ``own`` (and ``package`` itself) are left out. Files that do not
    parse are skipped (the real import will say why)."""
    tree = Path(tree)
    skip = {package, *own}
    out: list[Import] = []
    visited: set[str] = set()

    def external(module: str, names: tuple[str, ...]) -> None:
        if module and module.split(".")[0] not in skip and (module, names) not in out:
            out.append((module, names))

    def internal(module: str) -> None:  # importing a.b.c runs a, a.b and a.b.c, each once, depth first
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            walk(".".join(parts[:i]))

    def walk(module: str) -> None:
        if module in visited:
            return
        visited.add(module)
        path = _module_file(tree, module)
        if path is None:
            return
        try:
            body = ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body
        except (SyntaxError, UnicodeDecodeError, ValueError):
            return
        is_package = path.name == "__init__.py"
        for node in _import_time_statements(body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == package:
                        internal(alias.name)
                    else:
                        external(alias.name, ())
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(module, is_package, node.level, node.module)
                names = tuple(a.name for a in node.names if a.name != "*")
                if target.split(".")[0] != package:
                    external(target, names)
                    continue
                internal(target)
                for name in names:  # `from pkg.sub import mod` may import a submodule
                    if _module_file(tree, f"{target}.{name}") is not None:
                        internal(f"{target}.{name}")

    walk(package)
    return out


def for_packages(trees: Iterable[tuple[Path | str, str]], own: Collection[str]) -> list[Import]:
    """:func:`external_imports` of several ``(tree, package)``, in order, without repeats."""
    out: list[Import] = []
    for tree, package in trees:
        for item in external_imports(tree, package, own):
            if item not in out:
                out.append(item)
    return out
