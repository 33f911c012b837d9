"""mamba-build's pytest plugin for upstream's tests (``pytest -p upstream_pytest_plugin``; see
mamba_build/build/upstream_tests.py, which copies this file and ``_mb_child.py`` into a folder of their own on
PYTHONPATH). It answers through the child protocol (mamba_build/child.py): ``{"collected": N, "selected":
[nodeid, ...]}`` once the sample is drawn, then one ``{"test": {...}}`` per reported outcome as it comes, then
``{"finished": exitstatus}``; a pytest that dies in a kernel keeps every outcome reported before."""

import json
import os
import random
import time

import pytest
from _mb_child import emit

BUDGET_REASON = "mamba-build: time budget used up"  # upstream_tests.BUDGET_REASON reads the same text back
_START = time.monotonic()


def pytest_collection_modifyitems(session, config, items):
    collected = len(items)
    keep = list(items)
    n = os.environ.get("MB_UPSTREAM_SAMPLE")
    if n and int(n) < len(keep):
        rng = random.Random(int(os.environ.get("MB_UPSTREAM_SEED", "0")))
        chosen = set(rng.sample(range(len(keep)), int(n)))
        dropped = [it for k, it in enumerate(keep) if k not in chosen]
        keep = [it for k, it in enumerate(keep) if k in chosen]
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    skips = json.loads(os.environ.get("MB_UPSTREAM_SKIP", "{}"))
    for it in keep:
        reason = skips.get(it.nodeid.split("[")[0])
        if reason:
            it.add_marker(pytest.mark.skip(reason=reason))
    emit({"collected": collected, "selected": [it.nodeid for it in keep]})


def pytest_runtest_setup(item):
    budget = os.environ.get("MB_UPSTREAM_BUDGET")
    if budget and time.monotonic() - _START > float(budget):
        pytest.skip(BUDGET_REASON)


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        text = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            text = str(report.longrepr[2])
        elif report.failed:
            text = str(report.longrepr)[-3000:]
        emit(
            {
                "test": {
                    "nodeid": report.nodeid,
                    "when": report.when,
                    "outcome": report.outcome,
                    "seconds": round(report.duration, 3),
                    "text": text,
                }
            }
        )


def pytest_sessionfinish(session, exitstatus):
    emit({"finished": int(exitstatus)})
