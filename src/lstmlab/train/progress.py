"""A minimal progress bar on stderr: drawn only on a terminal, silent in CI or when quiet."""
from __future__ import annotations

import os
import sys
import time

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
    """``with Progress(total, label) as bar: bar.update(n, "loss 0.01")``; redraws at most 10x/s."""

    def __init__(self, total: int, label: str = "", enabled: bool = True, start: int = 0,
                 stream=None, width: int = 28):
        self.total, self.label, self.enabled = max(total, 1), label, enabled
        self.n, self.width = start, width
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.n0 = start
        self._last = 0.0

    def update(self, n: int, note: str = "", force: bool = False) -> None:
        self.n = n
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1 and n < self.total:
            return
        self._last = now
        frac = min(n / self.total, 1.0)
        full = int(frac * self.width)
        rate = (n - self.n0) / max(now - self.t0, 1e-9)
        eta = (self.total - n) / rate if rate > 0 else float("nan")
        bar = "#" * full + "-" * (self.width - full)
        eta_s = f"{eta:5.0f}s" if eta == eta else "    ?s"
        self.stream.write(f"\r{self.label} [{bar}] {n}/{self.total} eta {eta_s} {note}\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.update(self.n, force=True)
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
