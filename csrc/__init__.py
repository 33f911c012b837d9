"""mamba-build's own C++/CUDA sources (probe/: the doctor's probe extension; fixture/: the small
upstream-shaped test package), shipped in the wheel as the package ``mamba_build.csrc``.

Not code to import: found through ``mamba_build.paths.csrc_dir()``.
"""
