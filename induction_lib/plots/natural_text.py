"""Figures of natural text: how well a text model predicts each token, and its training seen on held-out text."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from ..data import VISIBLE
from . import OKABE_ITO, WIDTH


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


def passage_figure(passage: dict, title: str | None = None) -> Figure:
    """The loss on each token of a passage read twice (`text.repeated_passage`): first copy and second copy
    on the same axis, token by token."""
    first, second = passage["first"].numpy(), passage["second"].numpy()
    fig = Figure(figsize=(WIDTH + 1.5, 2.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(2, len(first) + 2)
    ax.plot(x, first, color=OKABE_ITO[1], lw=1.2, label=f"first reading (mean {first.mean():.2f})")
    ax.plot(x, second, color=OKABE_ITO[0], lw=1.2, label=f"second reading (mean {second.mean():.2f})")
    ax.set_xlabel("token of the passage")
    ax.set_ylabel("loss (nats)")
    ax.set_xlim(1, len(first) + 2)
    ax.set_ylim(0, None)
    ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


CLASS_COLOURS = {"copyable": OKABE_ITO[0], "seen, other follower": OKABE_ITO[1], "first occurrence": OKABE_ITO[2]}


def text_training_figure(curves: dict, marks: dict | None = None, title: str | None = None) -> Figure:
    """A text model's training seen on held-out text (`text.snapshot_curves`): the loss on each class of
    targets, Olsson's ICL score, and the best induction score on random repeats, against the step.
    `marks` {label: step} draws labelled vertical lines (e.g. where the induction score crosses a level)."""
    steps = np.asarray(curves["steps"], dtype=float)
    fig = Figure(figsize=(WIDTH + 0.5, 6.0), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1.4, 1, 1]})
    for name, values in curves["loss"].items():
        axes[0].plot(steps, values, marker="o", ms=3, lw=1.4, color=CLASS_COLOURS.get(name), label=name)
    axes[0].set_ylabel("held-out loss\n(nats per token)", fontsize=9)
    axes[0].legend(fontsize=8, title="target", title_fontsize=8)
    axes[1].plot(steps, curves["icl"], marker="o", ms=3, color=OKABE_ITO[3])
    axes[1].axhline(0, color="0.5", lw=0.6)
    axes[1].set_ylabel("ICL score\n(late − early loss)", fontsize=9)
    axes[2].plot(steps, curves["induction"], marker="o", ms=3, color=OKABE_ITO[5])
    axes[2].set_ylim(0, 1)
    axes[2].set_ylabel("best induction\nscore (layer 1)", fontsize=9)
    axes[2].set_xlabel("training step")
    for label, step in (marks or {}).items():
        for ax in axes:
            ax.axvline(step, color="0.4", ls=":", lw=1)
        axes[0].annotate(label, (step, 1.0), xycoords=("data", "axes fraction"), fontsize=8, ha="left",
                         va="top", xytext=(3, -3), textcoords="offset points")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
