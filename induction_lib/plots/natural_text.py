"""Figures of natural text: how well a model predicts each character."""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

from ..data import VISIBLE
from . import OKABE_ITO


def char_probability_figure(probs: torch.Tensor, text: str, spans=(), title: str | None = None):
    """Bars: the probability of each character of `text` ([len(text)], from `char_probabilities`), the
    characters on the x axis; `spans` [(start, length), ...] are shaded (e.g. two occurrences of a name)."""
    fig = Figure(figsize=(7.5, 2.4), layout="constrained")
    ax = fig.add_subplot()
    for start, length in spans:
        ax.axvspan(start - 0.5, start + length - 0.5, color="0.88", zorder=0)
    ax.bar(range(len(text)), probs.numpy(), color=OKABE_ITO[0], width=0.8)
    ax.set_xticks(range(len(text)), [VISIBLE.get(c, c) for c in text], fontsize=7)
    ax.set_xlim(-0.6, len(text) - 0.4)
    ax.set_ylim(0, 1)
    ax.set_ylabel("p(this character)", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
