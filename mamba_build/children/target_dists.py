"""Child script (mamba_build/plan/runtime_deps.py): emits this Python's distributions ([name, version] each) and the
values of the PEP 508 marker variables."""

import importlib.metadata as md
import os
import platform
import sys

from _mb_child import emit

dists = {}
for d in md.distributions():
    name = d.metadata["Name"]
    if name and name.lower() not in dists:
        dists[name.lower()] = [name, d.version]
impl = sys.implementation
iv = f"{impl.version.major}.{impl.version.minor}.{impl.version.micro}"
if impl.version.releaselevel != "final":
    iv += impl.version.releaselevel[0] + str(impl.version.serial)
markers = {
    "implementation_name": impl.name,
    "implementation_version": iv,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
emit({"dists": list(dists.values()), "markers": markers})
