"""Child script (mamba_build/diagnose/toolchain_probe.py): argv[1] = JSON list of header names; emits the sorted
include dirs of the NVIDIA pip packages (installed with torch) that hold any of them."""

import importlib.util
import json
import os
import sys

from _mb_child import emit

names = json.loads(sys.argv[1])
out = []
spec = importlib.util.find_spec("nvidia")
roots = list(spec.submodule_search_locations or []) if spec else []
for root in roots:
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) == "include" and any(n in filenames for n in names):
            out.append(dirpath)
        if dirpath.count(os.sep) - root.count(os.sep) >= 2:
            dirnames[:] = [d for d in dirnames if d == "include"]
emit(sorted(set(out)))
