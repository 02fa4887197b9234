"""Errors every floor may raise, and the exit codes the CLI turns them into.

Exit codes mean something to cron (it mails only on non-zero):
  0 done (also: nothing announced today), 1 anything unexpected,
  2 bad usage or configuration, 3 arXiv (or, for ``octet digest --send``, the mail server
  or the webhook) unreachable after retries.
"""
from __future__ import annotations

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class ConfigError(ValueError):
    """A setting has a value Octet cannot use; the message names the fix (exit 2)."""


class UsageError(ValueError):
    """Bad input from the user; the message says what to do instead (exit 2)."""
