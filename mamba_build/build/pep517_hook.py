"""Run as a script by the target Python (mamba_build/build/frontend.py; stdlib only, nothing of mamba-build is
imported): build the wheel of the source tree in the current directory by
calling its PEP 517 backend's ``build_wheel`` hook, in the target Python, with the environment as it is (no build
isolation: the target's torch and setuptools, or the build-only overlay on PYTHONPATH).

This is the hook ``pip wheel --no-build-isolation --no-deps`` ends with; pip first calls
``prepare_metadata_for_build_wheel`` as well, which for setuptools runs setup.py (and its torch import) once more.
argv: OUT_DIR BACKEND [BACKEND_PATH ...] (BACKEND as pyproject.toml's ``build-backend``, ``module:object``;
BACKEND_PATH: its ``backend-path`` entries, relative to the tree). Its last line names the wheel; exit 0 only
when the hook returned one that exists.
"""

import importlib
import os
import sys
import traceback


def main(argv):
    out_dir, spec, *backend_path = argv
    here = os.path.dirname(os.path.abspath(__file__))
    # this script's folder is not the build's (as with pip's hook runner, the backend imports from the environment);
    # an in-tree backend (backend-path) comes first
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    sys.path[:0] = [os.path.abspath(p) for p in backend_path]
    module_name, _, attrs = spec.partition(":")
    backend = importlib.import_module(module_name)
    for attr in filter(None, attrs.split(".")):
        backend = getattr(backend, attr)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    print(f"mamba-build: {spec}.build_wheel({out_dir!r})", flush=True)
    name = backend.build_wheel(out_dir)
    path = os.path.join(out_dir, name)
    if not os.path.isfile(path):
        print(f"mamba-build: the backend returned {name!r}, but {path} does not exist", file=sys.stderr, flush=True)
        return 1
    print(f"mamba-build: built {name}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - the traceback is the build log's last words
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)
