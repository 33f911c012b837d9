"""Smoke test of built wheels: our own references, the child-process checks, the staging runner.

* :mod:`.references` -- pure-PyTorch references (causal conv1d, selective scan, Mamba block).
* :mod:`.checks` -- the script run in the target Python (prints one JSON object).
* :mod:`.stage` -- :func:`smoke_test_wheels`: stage with ``pip --target``, run checks, report.
"""

from mamba_build.build.smoke.stage import SmokeCheck, SmokeReport, smoke_test_wheels

__all__ = ["SmokeCheck", "SmokeReport", "smoke_test_wheels"]
