"""Subcommands. Each module defines ``NAME``, ``HELP``, ``register(parser)`` and ``run(args) -> int``.

``COMMANDS`` lists the modules in the order ``mamba-build --help`` shows them.
"""

COMMANDS = (
    "doctor",
    "explain",
    "compile",
    "wheels",
    "cache",
    "fetch",
    "patch",
    "restore-torch",
    "toolchain",
    "verify",
    "index",
    "install",
    "matrix",
    "test",
)
