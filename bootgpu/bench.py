"""`bootgpu bench`: per-stage time and peak memory of each backend next to a straightforward
reference implementation of the original algorithm (to be built; see issue 5)."""

from __future__ import annotations


def register_commands(subparsers) -> None:
    """Add `bootgpu bench` to the CLI's subparsers."""
