"""smoke/import_graph.py: what `import <package>` imports from outside the package, read from its source tree (the
smoke test's pre-started child imports these while the wheels build); and checks.warm_up importing them."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from mamba_build.build.smoke import checks
from mamba_build.build.smoke.import_graph import external_imports, for_packages


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_follows_the_package_own_imports_and_records_the_others_in_order(tmp_path):
    tree = _tree(tmp_path, {
        "pkg/__init__.py": "from pkg.ops.scan import scan_fn\nfrom .models import Model\nimport numpy\n",
        "pkg/ops/__init__.py": "",
        "pkg/ops/scan.py": "import torch\nimport other_ext\nfrom einops import rearrange, repeat\n",
        "pkg/models.py": (
            "try:\n    from fancy.hub import Mixin\nexcept ImportError:\n    Mixin = object\n"
            "if True:\n    from transformers.generation import TextStreamer\n"
            "class Model:\n    import inside_class_body\n"
            "def later():\n    import only_when_called\n"
            "from . import utils\n"
        ),
        "pkg/utils/__init__.py": "from ..ops import scan\nimport json\n",
        "pkg/unused.py": "import never_imported_by_init\n",
    })
    got = external_imports(tree, "pkg", own={"other_ext"})
    assert got == [  # the order the import meets them: depth first
        ("torch", ()),
        ("einops", ("rearrange", "repeat")),
        ("fancy.hub", ("Mixin",)),
        ("transformers.generation", ("TextStreamer",)),
        ("inside_class_body", ()),
        ("json", ()),
        ("numpy", ()),
    ]


def test_the_packages_being_built_are_never_recorded(tmp_path):
    """mamba-ssm imports causal_conv1d and selective_scan_cuda: both must come from the staged wheels, so the child
    must not import another copy before staging is on its path."""
    tree = _tree(tmp_path, {
        "mamba/__init__.py": "import selective_ext\nfrom conv.cpp_functions import fwd\nimport conv\nimport torch\n",
    })
    assert external_imports(tree, "mamba", own={"selective_ext", "conv"}) == [("torch", ())]
    assert for_packages([(tree, "mamba"), (tree, "mamba")], own=()) == [
        ("selective_ext", ()), ("conv.cpp_functions", ("fwd",)), ("conv", ()), ("torch", ())
    ]


def test_a_file_that_does_not_parse_is_skipped(tmp_path):
    tree = _tree(tmp_path, {"pkg/__init__.py": "import torch\nfrom . import bad\n", "pkg/bad.py": "def (:\n"})
    assert external_imports(tree, "pkg") == [("torch", ())]


def test_warm_up_imports_names_and_drops_the_packages_own_modules(tmp_path, monkeypatch):
    """A lazy module's name loads its submodule on first access; a copy of a package being built that a third-party
    import pulled in is dropped again, so the checks import it from staging."""
    _tree(tmp_path, {
        "lazyish/__init__.py": (
            "import importlib\n"
            "def __getattr__(name):\n"
            "    if name == 'Heavy':\n"
            "        return importlib.import_module('lazyish.heavy').Heavy\n"
            "    raise AttributeError(name)\n"
        ),
        "lazyish/heavy.py": "import builtpkg\nclass Heavy: pass\n",
        "builtpkg/__init__.py": "",
        "builtpkg/sub.py": "",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in ("lazyish", "lazyish.heavy", "builtpkg", "builtpkg.sub"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    checks.warm_up([["lazyish", ["Heavy"]], ["builtpkg.sub", []], ["no_such_module_xyz", ["x"]]], own=["builtpkg"])
    assert "lazyish.heavy" in sys.modules  # the name was loaded, not only the lazy package
    assert not any(m == "builtpkg" or m.startswith("builtpkg.") for m in sys.modules)
