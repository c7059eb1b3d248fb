"""The `mobstore` command line (also `python -m engine`); `main` is the console entry point."""

from . import demo, fleet, maintenance, meerkat, queries  # noqa: F401 - each module registers its commands on the group
from .app import cli, main

__all__ = ["cli", "main"]
