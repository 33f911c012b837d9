"""Wheels for distribution: manifest, index, verify, matrix, install from an index, provenance and channels."""
