"""Child script (mamba_build/dist/already_installed.py): argv = distribution names; emits {name: {"version", "files":
{path: [hash, absolute path]}} or null} for this Python's environment."""

import importlib.metadata as md
import sys

from _mb_child import emit

out: dict = {}
for name in sys.argv[1:]:
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        out[name] = None
        continue
    files = {}
    for f in dist.files or []:
        if f.hash is not None:
            files[str(f).replace("\\", "/")] = [f"{f.hash.mode}={f.hash.value}", str(f.locate())]
    out[name] = {"version": dist.version, "files": files}
emit(out)
