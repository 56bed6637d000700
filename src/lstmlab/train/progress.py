"""Progress bars on stderr (tqdm's): drawn only on a terminal, silent in CI or when quiet."""
from __future__ import annotations

import os
import sys

__all__ = ["Progress", "show_progress"]


def show_progress(quiet: bool = False, stream=None) -> bool:
    """True when a bar should be drawn: not quiet, stream is a TTY, and not in CI."""
    stream = stream if stream is not None else sys.stderr
    if quiet or os.environ.get("CI"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """``with Progress(total, label) as bar: bar.update(n, "loss 0.01")``: a ``tqdm`` bar
    (at most 10 redraws a second) when ``enabled``, nothing otherwise."""

    def __init__(self, total: int, label: str = "", enabled: bool = True, start: int = 0,
                 stream=None):
        self.n = start
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=max(total, 1), initial=start, desc=label, mininterval=0.1,
                            file=stream if stream is not None else sys.stderr,
                            dynamic_ncols=True, leave=True)

    def update(self, n: int, note: str = "", force: bool = False) -> None:
        """Move the bar to ``n`` done, with ``note`` after it (``force``: redraw now)."""
        if self.bar is not None:
            if note:
                self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(n - self.n)
            if force:
                self.bar.refresh()
        self.n = n

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
