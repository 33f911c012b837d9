"""The child side of mamba_build/child.py: how a child script hands back its results. A child script runs with
this folder first on sys.path, so it does ``from _mb_child import emit``."""

import json
import os

RESULT_ENV = "MAMBA_BUILD_RESULT"  # the file the parent reads: one JSON value per line


def emit(value) -> None:
    """Append one JSON value to the result file, at once (a crash later in the child keeps it)."""
    with open(os.environ[RESULT_ENV], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(value) + "\n")
