"""How a smoke test that did not pass is reported: failing checks go to explain's catalog; a GPU run that
failed nothing but skipped a check it may not skip is called incomplete, plainly, and is never a pass."""

from __future__ import annotations

from mamba_build.build.pipeline import smoke_failure_cause
from mamba_build.build.smoke.stage import FAIL, OK, SKIPPED, SmokeCheck, SmokeReport
from mamba_build.errors import SmokeTestError

IMPORTED = SmokeCheck("import some_ext", OK, "from /staging/some_ext.so")
NO_REF = SmokeCheck("some_ext numbers", SKIPPED, "no reference for this module: import only")


def test_a_gpu_run_that_skipped_a_required_check_is_incomplete_not_failed_for_no_known_cause():
    smoke = SmokeReport(passed=False, gpu=True, checks=[IMPORTED, NO_REF], device="NVIDIA H200")
    assert smoke.verdict == "fail" and smoke.failed == [] and smoke.unchecked == [NO_REF]
    assert smoke.summary().startswith("smoke test INCOMPLETE on NVIDIA H200: some_ext numbers not checked")
    assert smoke.failure_details() == "  some_ext numbers: skipped on the GPU (no reference for this module: import only)"
    cause, fix = smoke_failure_cause(smoke)
    assert cause == "the GPU run skipped some_ext numbers, so the kernels were not checked"
    assert fix is not None and "numerical references only for causal-conv1d, mamba-ssm" in fix
    try:
        smoke.raise_for_failure()
    except SmokeTestError as exc:
        assert "skipped on the GPU" in str(exc.details)
    else:
        raise AssertionError("an incomplete GPU run passed")


def test_without_a_gpu_skipped_numbers_are_import_only_and_optional_skips_do_not_count():
    assert SmokeReport(passed=True, gpu=False, checks=[IMPORTED, NO_REF]).unchecked == []
    optional = SmokeCheck("mamba2 block", SKIPPED, "triton does not import", optional=True)
    assert SmokeReport(passed=True, gpu=True, checks=[IMPORTED, optional]).unchecked == []


def test_failing_checks_are_explained_by_the_catalog():
    died = SmokeCheck(
        "import causal_conv1d_cuda",
        FAIL,
        "ImportError: causal_conv1d_cuda.so: undefined symbol: _ZN3c104cuda9SetDeviceEi",
    )
    smoke = SmokeReport(passed=False, gpu=True, checks=[died, NO_REF])
    assert smoke.failure_details() == f"  {died.name}: {died.detail}"  # the failure, not the skip beside it
    cause, _ = smoke_failure_cause(smoke)
    assert cause.startswith("[abi-undefined-symbol]"), cause


def test_wrong_numbers_are_said_to_be_the_builds_not_an_unknown_cause():
    off = SmokeCheck(
        "mb_fixture_cuda scale_add",
        FAIL,
        "float32, 10001: out: 10001 of 10001 elements off (rtol 1e-06, atol 1e-06); worst at [5843]: -4.236 vs 0.04433",
        4.28,
        1.04e-06,
    )
    cause, fix = smoke_failure_cause(SmokeReport(passed=False, gpu=True, checks=[IMPORTED, off]))
    assert cause == "the kernels ran but computed wrong numbers in mb_fixture_cuda scale_add"
    assert fix is not None and "unmodified sources" in fix
    # a case that raised beside it is no numerical failure: the catalog (or its "no known cause") answers
    raised = SmokeCheck("causal_conv1d float32 fwd", FAIL, "float32 weight, channel-first: RuntimeError: boom")
    cause, _ = smoke_failure_cause(SmokeReport(passed=False, gpu=True, checks=[off, raised]))
    assert "wrong numbers" not in cause
