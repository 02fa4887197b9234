"""Progress bars for long commands: papers/s and an ETA on stderr, only where a person
watches.

A bar shows when standard error is a terminal; under cron, in a pipe, in the tests and
with ``--json`` (``set_quiet``) it draws nothing, so no bar lands in cron's mail or in a
script's output. ``OCTET_PROGRESS=1`` forces bars (a terminal multiplexer that hides the
terminal), ``OCTET_PROGRESS=0`` turns them off.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

_quiet = False


def set_quiet(quiet: bool) -> None:
    """No bar for the rest of this process (``--json``: the output is for a script)."""
    global _quiet
    _quiet = quiet


def visible() -> bool:
    """Whether a bar would be drawn now."""
    forced = os.environ.get("OCTET_PROGRESS", "").strip()
    if _quiet or forced == "0":
        return False
    return forced == "1" or bool(getattr(sys.stderr, "isatty", lambda: False)())


class Bar:
    """One bar; every method does nothing when no bar is drawn."""

    def __init__(self, description: str, total: int | None, unit: str) -> None:
        self._bar = None
        if visible():
            from tqdm import tqdm

            # disable=False: the CLI sets TQDM_DISABLE for the model libraries' own bars.
            self._bar = tqdm(total=total, desc=description, unit=f" {unit}", file=sys.stderr,
                             disable=False, dynamic_ncols=True, smoothing=0.1,
                             unit_scale=False, leave=True)

    def update(self, count: int = 1) -> None:
        """``count`` more done."""
        if self._bar is not None and count:
            self._bar.update(count)

    def set_total(self, total: int | None) -> None:
        """The total, once it is known or when it changes."""
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def note(self, text: str) -> None:
        """A few words after the bar (what is being done now)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@contextmanager
def bar(description: str, total: int | None = None, unit: str = "papers") -> Iterator[Bar]:
    """A bar for the ``with`` block, closed (its last state left on screen) at the end."""
    drawn = Bar(description, total, unit)
    try:
        yield drawn
    finally:
        drawn.close()
