"""`octet` subcommands for this concept (filled in by its issue)."""
from __future__ import annotations


def register(subparsers) -> None:
    """Add this concept's subcommands to the `octet` parser."""
