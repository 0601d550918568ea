"""Grid Engine: `bootgpu sge submit` and `bootgpu status` (to be built; see issue 4)."""

from __future__ import annotations


def register_commands(subparsers) -> None:
    """Add this module's subcommands to the CLI's subparsers."""
