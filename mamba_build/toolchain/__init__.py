"""CUDA toolkits mamba-build installs itself (no root): the pinned releases, the index resolver, provisioning."""
