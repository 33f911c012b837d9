"""Environment reports users paste into bug reports (issue 16 item 3: the facts a log states about the
environment): torch's `python -m torch.utils.collect_env`, torch.__config__.show() and the detectron2/mmcv
reports that quote it. Their versions become facts (the cause/fix texts and `when` conditions use them), and
nvcc's release against torch's CUDA in different majors is the refusal torch's build check makes (weak: the
report alone does not show the failing build used that nvcc). The reports below follow the tools' formats
(torch 2.14.1's collect_env.py run on this machine) with other versions.
"""

from __future__ import annotations

from mamba_build.diagnose import explain as ex


def _collect_env(torch_cuda: str, nvcc: str, os_name: str = "Ubuntu 22.04.4 LTS (x86_64)") -> str:
    return (
        "Collecting environment information...\n"
        f"PyTorch version: 2.3.1+cu{torch_cuda.replace('.', '')}\n"
        "Is debug build: False\n"
        f"CUDA used to build PyTorch: {torch_cuda}\n"
        "ROCM used to build PyTorch: N/A\n\n"
        f"OS: {os_name}\n"
        "GCC version: (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0\n"
        "Clang version: Could not collect\n"
        "CMake version: version 3.29.2\n"
        "Libc version: glibc-2.35\n\n"
        "Python version: 3.10.12 (main, Nov 20 2023, 15:14:05) [GCC 11.4.0] (64-bit runtime)\n"
        "Is CUDA available: True\n"
        f"CUDA runtime version: {nvcc}\n"
        "GPU models and configuration: GPU 0: NVIDIA A100-SXM4-80GB\n"
        "Nvidia driver version: 550.54.15\n"
    )


def test_collect_env_versions_become_facts() -> None:
    facts = dict(ex.explain_text(_collect_env("12.1", "12.1.105")).facts)
    assert facts["torch_cuda"] == "12.1"
    assert facts["nvcc_version"] == "12.1"
    assert facts["gcc_version"] == "11.4.0"
    assert facts["glibc_version"] == "2.35"
    assert facts["driver_version"] == "550.54.15"
    windows = dict(ex.explain_text(_collect_env("12.1", "12.1.105", "Microsoft Windows 11 Pro (10.0.22631 64-bit)")).facts)
    assert windows["platform"] == "windows"
    mac = dict(ex.explain_text(_collect_env("12.1", "12.1.105", "macOS 14.4.1 (arm64)")).facts)
    assert mac["platform"] == "macos"


def test_collect_env_with_nvcc_of_another_major_is_the_mismatch() -> None:
    expl = ex.explain_text(_collect_env("12.1", "11.5.119"))
    assert expl.root is not None and expl.root.id == "cuda-major-mismatch"
    assert expl.root.confidence == "low"
    assert "CUDA 11.5" in expl.root.cause and "CUDA 12.1" in expl.root.cause
    # the near miss: the same report with nvcc of torch's major names nothing (a minor difference only warns)
    assert ex.explain_text(_collect_env("12.1", "12.4.131")).root is None


def test_a_torch_1x_config_with_an_older_nvcc_is_the_mismatch() -> None:
    # detectron2's collect_env: nvcc's line and torch.__config__.show()'s ' - CUDA Runtime X.Y'
    report = (
        "CUDA compiler           Cuda compilation tools, release 10.1, V10.1.243\n"
        "PyTorch                 1.9.0 @/opt/conda/lib/python3.8/site-packages/torch\n"
        "PyTorch built with:\n"
        "  - GCC 7.3\n"
        "  - CUDA Runtime 11.1\n"
        "  - CuDNN 8.0.5\n"
    )
    expl = ex.explain_text(report)
    assert expl.root is not None and expl.root.id == "cuda-major-mismatch"
    assert "CUDA 10.1" in expl.root.cause and "CUDA 11.1" in expl.root.cause
    assert ex.explain_text(report.replace("CUDA Runtime 11.1", "CUDA Runtime 10.2")).root is None


def test_an_error_of_its_own_outranks_the_reports_mismatch() -> None:
    # the report is weak evidence: a strong finding of the log (here a missing header) stays the root
    log = _collect_env("12.1", "11.5.119") + (
        "csrc/selective_scan/selective_scan.cpp:5:10: fatal error: cuda_runtime_api.h: No such file or directory\n"
    )
    expl = ex.explain_text(log)
    assert expl.root is not None and expl.root.id != "cuda-major-mismatch"
