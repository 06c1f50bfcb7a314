"""Text with a value per token, as coloured HTML (like CircuitsVis's colored_tokens): static, so it works on
the web page with no kernel; hover a token to read its value."""
from __future__ import annotations

import html

import numpy as np
from IPython.display import HTML

from ..data import VISIBLE


def _colour(x: float) -> str:
    """0 → white, 1 → a saturated blue (the book's palette)."""
    x = float(np.clip(x, 0.0, 1.0))
    r, g, b = (int(round(255 + (c - 255) * x)) for c in (0, 114, 178))
    return f"rgb({r},{g},{b})"


def colored_tokens(pieces, values, vmax: float | None = None, label: str = "value", marks=None,
                   legend: str | None = None) -> HTML:
    """One span per token, its background shaded by `values` (0 … vmax), its value in a tooltip; tokens where
    `marks` is true are underlined. Newlines break the line (and show as ⏎)."""
    values = np.asarray(values, dtype=float)
    if len(pieces) != len(values):
        raise ValueError(f"got {len(pieces)} tokens but {len(values)} values: one value per token")
    marks = np.zeros(len(pieces), bool) if marks is None else np.asarray(marks, bool)
    if len(marks) != len(pieces):
        raise ValueError(f"got {len(pieces)} tokens but {len(marks)} marks: one mark per token")
    top = vmax if vmax is not None else max(float(np.nanmax(values)), 1e-9)
    spans = []
    for piece, v, mark in zip(pieces, values, marks):
        shown = html.escape("".join(VISIBLE.get(c, c) if c != " " else "\u00a0" for c in piece))
        style = f"background:{_colour(v / top)};" + ("border-bottom:2px solid #D55E00;" if mark else "")
        spans.append(f'<span title="{html.escape(repr(piece))}: {label} {v:.2f}" style="{style}">{shown}</span>')
        if "\n" in piece:
            spans.append("<br>")
    note = f'<div style="font-size:85%;color:#555;margin-top:4px">{html.escape(legend)}</div>' if legend else ""
    return HTML('<div style="font-family:monospace;font-size:12px;line-height:1.7;white-space:normal">'
                + "".join(spans) + "</div>" + note)
