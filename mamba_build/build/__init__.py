"""Executing a plan: sources, patches, the one-ninja pool and its jobserver, the wheel cache, the pipeline and the
smoke test of the built wheels."""
