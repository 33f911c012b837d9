"""Host compiler choice rules and host_config.h parsing."""

from __future__ import annotations

import pytest

from mamba_build import tables
from mamba_build.errors import CompilerError, ExitCode
from mamba_build.plan.host_compiler import (
    CompilerCandidate,
    HostLimits,
    choose_host_compiler,
    parse_host_config,
    torch_gcc_bounds,
    wanted_gcc_major,
)

# Excerpts of include/crt/host_config.h as shipped (11.8: nvidia-cuda-nvcc-cu11==11.8.89;
# 12.4: nvidia-cuda-nvcc-cu12==12.4.131), whitespace as in the originals.
HC_118 = """
#if defined(__ICC)
#if (__ICC != 1500 && __ICC != 1600 && __ICC != 1700 && __ICC != 1800 && !(__ICC >= 1900 && __ICC <= 2021)) || !defined(__GNUC__) || !defined(__LP64__)
#error -- unsupported ICC configuration!
#endif
#endif /* __ICC */

#if __GNUC__ > 11

#error -- unsupported GNU version! gcc versions later than 11 are not supported! The nvcc flag '-allow-unsupported-compiler' can be used to override this version check.

#endif /* __GNUC__ > 11 */


#if defined(__clang__) && !defined(__ibmxl_vrm__) && !defined(__ICC) && !defined(__HORIZON__) && !defined(__APPLE__)

#if (__clang_major__ >= 15) || (__clang_major__ < 3) || ((__clang_major__ == 3) &&  (__clang_minor__ < 3))
#error -- unsupported clang version! clang version must be less than 15 and greater than 3.2 .
#endif  /* (__clang_major__ >=  15) || (__clang_major__ < 3) || ((__clang_major__ == 3) &&  (__clang_minor__ < 3)) */

#endif
"""

HC_124 = """
#if defined(__GRCO_CLANG_COMPILER__)
#if (__GRCO_CLANG_COMPILER__ == 1) && ((__clang_major__ < 16) || (__clang_major__ > 17))
#error -- unsupported Grace clang version! The version must be 16.x to 17.x.
#endif
#endif /* __GRCO_CLANG_COMPILER__  */

#if __GNUC__ > 13

#error -- unsupported GNU version! gcc versions later than 13 are not supported!

#endif /* __GNUC__ > 13 */


#if defined(__HORIZON__)
#if (__clang_major__ >= 99) || (__clang_major__ < 3) || ((__clang_major__ == 3) &&  (__clang_minor__ < 3))
#error -- unsupported HOS clang version!
#endif
#endif /* __HORIZON__  */

#if defined(__clang__) && !defined(__ibmxl_vrm__) && !defined(__ICC) && !defined(__HORIZON__) && !defined(__APPLE__) && !defined(__GRCO_CLANG_COMPILER__)

#if (__clang_major__ >= 18) || (__clang_major__ < 3) || ((__clang_major__ == 3) &&  (__clang_minor__ < 3))
#error -- unsupported clang version! clang version must be less than 18 and greater than 3.2 .
#endif
#endif
"""

# CUDA_GCC_VERSIONS-style table: 12.4 / 13.0 as in torch 2.14.1's cpp_extension; torch has no 11.8
# entry (its 11.x entries stop at 11.7 = ((6, 0, 0), (12, 0))), so "11.8" here is a made-up twin.
TORCH_GCC = {
    "11.7": ((6, 0, 0), (12, 0)),
    "11.8": ((6, 0, 0), (12, 0)),
    "12.4": ((6, 0, 0), (14, 0)),
    "13.0": ((6, 0, 0), (16, 0)),
}


def gcc(major, minor=0, patch=0, prefix="/usr/bin"):
    suffix = f"-{major}"
    return CompilerCandidate(f"{prefix}/gcc{suffix}", f"{prefix}/g++{suffix}", "gcc", (major, minor, patch))


def clang(major, minor=0):
    return CompilerCandidate(f"/usr/bin/clang-{major}", f"/usr/bin/clang++-{major}", "clang", (major, minor, 0))


def test_parse_118():
    assert parse_host_config(HC_118) == HostLimits(gcc_max=11, clang_max=14, clang_min=(3, 3))


def test_parse_124_ignores_grace_and_horizon_blocks():
    assert parse_host_config(HC_124) == HostLimits(gcc_max=13, clang_max=17, clang_min=(3, 3))


def test_parse_ge_form_and_nothing():
    assert parse_host_config("#if __GNUC__ >= 12\n#error x\n#endif\n").gcc_max == 11
    assert parse_host_config("/* no tests */") == HostLimits(None, None, None)


@pytest.mark.toolchain
def test_parse_real_header_matches_cuda_table(cuda_home):
    """The real crt/host_config.h of the provisioned toolkit (tests/conftest.py::cuda_home)."""
    path = cuda_home / "include" / "crt" / "host_config.h"
    text = path.read_text(errors="replace")
    limits = parse_host_config(text)
    import re
    version = re.search(r"CUDA_VERSION\s+(\d+)", (path.parent.parent / "cuda.h").read_text(errors="replace"))
    assert limits.gcc_max is not None and limits.clang_max is not None and limits.clang_min == (3, 3)
    if version:
        v = int(version.group(1))
        release = tables.cuda_release(f"{v // 1000}.{(v % 1000) // 10}")
        assert release is not None, v
        if release is not None:
            assert (limits.gcc_max, limits.clang_max) == (release.gcc_max, release.clang_max)


def test_newest_accepted_gcc_wins():
    limits = parse_host_config(HC_118)
    choice = choose_host_compiler([gcc(12, 2), gcc(11, 3), gcc(10, 2), gcc(9, 5)], limits,
                                  torch_gcc_bounds("11.8", TORCH_GCC), cuda="11.8")
    assert (choice.cxx, choice.version, choice.unsupported_override) == ("/usr/bin/g++-11", (11, 3, 0), False)
    assert "12.2" in choice.reason and choice.nvcc_flags == []


def test_torch_bound_can_be_stricter_than_nvcc():
    limits = HostLimits(gcc_max=13, clang_max=17, clang_min=(3, 3))
    choice = choose_host_compiler([gcc(13, 1), gcc(12, 3)], limits, ((6, 0, 0), (13, 0)), cuda="12.2")
    assert choice.version == (12, 3, 0)
    assert wanted_gcc_major(limits, ((6, 0, 0), (13, 0))) == 12


def test_too_old_for_torch():
    limits = HostLimits(gcc_max=11, clang_max=14, clang_min=(3, 3))
    with pytest.raises(CompilerError) as exc:
        choose_host_compiler([gcc(5, 4)], limits, TORCH_GCC["11.8"], cuda="11.8")
    assert "torch needs gcc >= 6.0.0" in exc.value.message


def test_none_accepted_raises_with_install_hint():
    limits = parse_host_config(HC_118)
    with pytest.raises(CompilerError) as exc:
        choose_host_compiler([gcc(12, 2), gcc(13, 1)], limits, TORCH_GCC["11.8"], cuda="11.8")
    err = exc.value
    assert err.exit_code == ExitCode.ENVIRONMENT
    assert "gcc 12.2" in err.message and "gcc <= 11" in err.message
    assert "apt-get install gcc-11 g++-11" in err.fix
    assert "conda install -c conda-forge gxx_linux-64=11" in err.fix
    assert "--allow-unsupported-compiler" in err.fix


def test_hint_number_follows_the_limit():
    limits = HostLimits(gcc_max=13, clang_max=17, clang_min=(3, 3))
    with pytest.raises(CompilerError) as exc:
        choose_host_compiler([gcc(14, 2)], limits, TORCH_GCC["12.4"], cuda="12.4")
    assert "gcc-13 g++-13" in exc.value.fix and "gxx_linux-64=13" in exc.value.fix


def test_no_compiler_at_all():
    with pytest.raises(CompilerError) as exc:
        choose_host_compiler([], HostLimits(11, 14, (3, 3)), TORCH_GCC["11.8"], cuda="11.8")
    assert "no gcc or clang was found" in exc.value.message


def test_allow_unsupported_picks_newest_and_flags_it():
    limits = parse_host_config(HC_118)
    choice = choose_host_compiler([gcc(12, 2), gcc(13, 1)], limits, TORCH_GCC["11.8"], cuda="11.8",
                                  allow_unsupported=True)
    assert choice.version == (13, 1, 0) and choice.unsupported_override
    assert choice.nvcc_flags == ["-allow-unsupported-compiler"]
    assert "miscompile" in choice.reason


def test_allow_unsupported_does_not_override_a_good_choice():
    choice = choose_host_compiler([gcc(13, 1), gcc(11, 4)], parse_host_config(HC_118), None,
                                  allow_unsupported=True)
    assert choice.version == (11, 4, 0) and not choice.unsupported_override


def test_clang_only_when_no_gcc_fits():
    limits = parse_host_config(HC_124)
    assert choose_host_compiler([gcc(12), clang(17)], limits, None).kind == "gcc"
    choice = choose_host_compiler([gcc(14), clang(18), clang(17, 1)], limits, None)
    assert choice.kind == "clang" and choice.version == (17, 1, 0)
    with pytest.raises(CompilerError):
        choose_host_compiler([clang(3, 2)], limits, None)


def test_no_limits_known_accepts_newest():
    choice = choose_host_compiler([gcc(9), gcc(14)], HostLimits(None, None, None), None)
    assert choice.version == (14, 0, 0)


def test_torch_gcc_bounds_lookup():
    assert torch_gcc_bounds("11.8", TORCH_GCC) == ((6, 0, 0), (12, 0))
    assert torch_gcc_bounds("12.4.1", TORCH_GCC) == ((6, 0, 0), (14, 0))
    assert torch_gcc_bounds("10.2", TORCH_GCC) is None


def test_real_torch_table_if_available():
    cpp_extension = pytest.importorskip("torch.utils.cpp_extension")
    table = getattr(cpp_extension, "CUDA_GCC_VERSIONS", None)
    if not table:
        pytest.skip("this torch has no CUDA_GCC_VERSIONS")
    bounds = torch_gcc_bounds("12.4", table)
    assert bounds is not None and bounds[1][0] >= 13
