"""mamba-build's patch recipes (the *.toml here), shipped in the wheel as the package ``mamba_build.patches``.

Not code: the recipes are data, read by mamba_build/build/patching.py through ``mamba_build.paths.patches_dir()``.
"""
