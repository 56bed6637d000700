"""Held-out text coloured by the activation of chosen cells: one self-contained HTML page.

Each chosen cell gets a block of the text in which every character's background shows the
cell's activation after reading it, on a diverging scale from blue (-1) through white (0) to
red (+1), as in Karpathy, Johnson & Fei-Fei (2015, Fig. 2). The colours are 21 CSS classes in
the page itself: no script, font or file outside it. :func:`screenshot` renders a page in
headless Chromium (the check that it displays, and the README's picture).
"""
from __future__ import annotations

import html
import os
import shutil
import subprocess

import numpy as np

__all__ = ["cells_html", "write_cells_html", "find_chromium", "screenshot", "dump_dom"]

_BINS = 21


def _colour(v: float) -> str:
    """Activation in [-1, 1] -> a diverging background colour (blue, white, red)."""
    v = float(np.clip(v, -1.0, 1.0))
    r, g, b = (255, int(255 * (1 - v)), int(255 * (1 - v))) if v >= 0 else \
        (int(255 * (1 + v)), int(255 * (1 + v)), 255)
    return f"#{r:02x}{g:02x}{b:02x}"


def cells_html(text: str, acts: np.ndarray, cells: list[dict], title: str) -> str:
    """The page: ``text`` (n characters), ``acts`` (n, k) one column per entry of ``cells``
    (dicts with ``cell`` and a ``caption``)."""
    levels = np.linspace(-1.0, 1.0, _BINS)
    style = "\n".join(f".b{i}{{background:{_colour(v)}}}" for i, v in enumerate(levels))
    blocks = []
    for j, cell in enumerate(cells):
        q = np.rint((np.clip(acts[:, j], -1, 1) + 1) / 2 * (_BINS - 1)).astype(int)   # (n,)
        spans = []
        for ch, b in zip(text, q):
            shown = "\u21b5\n" if ch == "\n" else html.escape(ch)
            spans.append(f'<span class="b{b}">{shown}</span>')
        blocks.append(f'<section class="cell" data-cell="{html.escape(cell["cell"])}">'
                      f'<h2>cell {html.escape(cell["cell"])}</h2><p>{html.escape(cell["caption"])}</p>'
                      f'<pre>{"".join(spans)}</pre></section>')
    legend = "".join(f'<span class="b{i}">&nbsp;{v:+.1f}&nbsp;</span>'
                     for i, v in enumerate(levels) if i % 5 == 0)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>\n"
            "body{font-family:sans-serif;margin:1.5em;max-width:70em}"
            "pre{font-family:monospace;font-size:13px;line-height:1.35;white-space:pre-wrap;"
            "border:1px solid #ccc;padding:.5em}h2{font-size:1.05em;margin:1.2em 0 .2em}"
            "p{margin:.2em 0;color:#333}\n" + style + "\n</style></head><body>"
            f"<h1 style=\"font-size:1.3em\">{html.escape(title)}</h1>"
            f"<p>activation after reading each character: {legend} (blue -1, white 0, red +1); "
            "\u21b5 marks a newline</p>" + "".join(blocks) + "</body></html>\n")


def write_cells_html(path, text, acts, cells, title) -> str:
    from ..core.io import atomic_write_bytes
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_bytes(path, [cells_html(text, acts, cells, title).encode("utf-8")])
    return os.fspath(path)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _chromium(args, timeout=120):
    exe = find_chromium()
    if exe is None:
        raise ValueError("browser: no Chromium found (Debian: apt-get install chromium)")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def screenshot(html_path, png_path, width: int = 1100, height: int = 900) -> str:
    """Render ``html_path`` in headless Chromium and save a PNG of the window."""
    url = "file://" + os.path.abspath(html_path)
    r = _chromium([f"--screenshot={os.path.abspath(png_path)}", f"--window-size={width},{height}", url])
    if not os.path.exists(png_path):
        raise ValueError(f"browser: Chromium wrote no screenshot ({r.stderr.strip()[-200:]})")
    return os.fspath(png_path)


def dump_dom(html_path) -> str:
    """The DOM Chromium builds from ``html_path``, serialised (what the browser displays)."""
    return _chromium(["--dump-dom", "file://" + os.path.abspath(html_path)]).stdout
