"""Scripts mamba-build runs in another Python (the target environment, which need not have mamba-build): each is
started as ``python FILE ARGS...`` by :mod:`mamba_build.child` and hands its results back through
:func:`_mb_child.emit`. They use the standard library (and torch, where they say so) only."""
