"""mamba-build: diagnose, patch, build and verify the CUDA extensions of Mamba."""

__version__ = "0.1.0"
