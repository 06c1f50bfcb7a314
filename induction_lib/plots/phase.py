"""Figures of the phase change: one run's dynamics, runs side by side, a sweep, patterns over training.

The numbers come from `induction_lib.phase` (curves, detected transitions, snapshots); this module only draws.
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import phase
from . import OKABE_ITO, WIDTH, attention_patterns


def patterns_over_training(model, history, steps, heads, half_len: int = 14, seed: int = 3) -> Figure:
    """Attention patterns of `heads` at the snapshot `steps` (`phase.snapshot_patterns`): one row per head,
    one column per step."""
    panels, titles = phase.snapshot_patterns(model, history, steps, heads, half_len, seed)
    return attention_patterns(panels, titles=titles, ncols=len(steps))


def _shade(ax, tr: phase.Transition | None, colour: str = "0.85", label: str | None = None) -> None:
    if tr is not None:
        ax.axvspan(tr.start, tr.end, color=colour, zorder=0, lw=0, label=label)


def dynamics_figure(history, icl: str = "held-out", window: phase.Transition | None = None,
                    xmax: float | None = None, title: str | None = None, held_out_loss: bool = True) -> Figure:
    """One run on a shared step axis: the losses (training objective, held-out first and repeated copy),
    the ICL score, every layer-0 head's previous-token score and every last-layer head's induction score.
    The grey band is `window` (default: the repeat-loss transition); a dotted line marks the midpoint
    of each panel's own transition, where it has one. held_out_loss=False leaves out the two held-out
    losses (on random tokens), e.g. for a model trained on text."""
    found = phase.transitions(history, icl)
    window = found["repeat loss"] if window is None else window
    c = phase.curves(history, icl)
    steps = np.asarray(history.steps, dtype=float)
    fig = Figure(figsize=(WIDTH + 0.5, 7.2), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [1.3, 0.8, 1, 1]})
    ax = axes[0]
    every = np.asarray(history.every_step_loss)
    ax.plot(np.arange(len(every)), every, color=OKABE_ITO[4] if held_out_loss else OKABE_ITO[0],
            lw=0.5 if held_out_loss else 0.8, alpha=0.6 if held_out_loss else 0.9, label="training objective")
    if held_out_loss:
        ax.plot(*c["first-copy loss"], color=OKABE_ITO[5], lw=1.5, label="held-out loss, first copy")
        ax.plot(*c["repeat loss"], color=OKABE_ITO[0], lw=1.8, label="held-out loss, repeated copy")
    ax.set_ylabel("loss (nats)")
    ax.legend(fontsize=7, loc="lower left")
    ax = axes[1]
    ax.plot(*c["ICL score"], color=OKABE_ITO[3], lw=1.4)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylabel("ICL score\n(late - early loss)", fontsize=9)
    prev, ind = torch.stack(list(history.prev_token)), torch.stack(list(history.induction))
    last = ind.shape[1] - 1
    for ax, sc, layer, name in ((axes[2], prev, 0, "previous-token"), (axes[3], ind, last, "induction")):
        for h in range(sc.shape[2]):
            ax.plot(steps, sc[:, layer, h].numpy(), color=OKABE_ITO[h % len(OKABE_ITO)], lw=1.3,
                    label=f"head {layer}.{h}")
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"{name} score\n(layer {layer})", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", ncol=sc.shape[2])
    for ax, key in zip(axes, ("repeat loss", "ICL score", "previous-token score", "induction score")):
        _shade(ax, window)
        if found[key] is not None:
            ax.axvline(found[key].mid, color="0.3", ls=":", lw=1)
    axes[-1].set_xlabel("training step")
    axes[-1].set_xlim(0, xmax if xmax is not None else steps[-1])
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def side_by_side(runs: dict, xmax: float | None = None, title: str | None = None) -> Figure:
    """Several runs (name -> History, or a sweep's `summary`), one column each, on the same axes: top,
    the held-out repeat loss and (thin) the training objective; bottom, the best layer-0 previous-token
    score and the best last-layer induction score. Each run's own repeat-loss transition is shaded, or
    the panel says that none was detected."""
    names = list(runs)
    fig = Figure(figsize=(WIDTH + 0.5, 4.2), layout="constrained")
    axes = fig.subplots(2, len(names), sharex=True, sharey="row", squeeze=False)
    all_curves = {name: phase.curves(runs[name]) for name in names}
    top = max(max(c["repeat loss"][1].max(), c["training loss"][1].max()) for c in all_curves.values())
    for k, name in enumerate(names):
        c = all_curves[name]
        tr = phase.detect(*c["repeat loss"], direction="fall")
        ax = axes[0, k]
        ax.plot(*c["training loss"], color=OKABE_ITO[4], lw=0.9, label="training objective")
        ax.plot(*c["repeat loss"], color=OKABE_ITO[0], lw=1.6, label="held-out repeat loss")
        ax.set_title(name, fontsize=9)
        _shade(ax, tr)
        ax.text(0.97, 0.93, f"transition at step {tr.mid:.0f}" if tr else "no transition detected",
                transform=ax.transAxes, ha="right", va="top", fontsize=8)
        ax.set_ylim(0, top * 1.12)
        ax = axes[1, k]
        ax.plot(*c["previous-token score"], color=OKABE_ITO[2], lw=1.4, label="best previous-token score")
        ax.plot(*c["induction score"], color=OKABE_ITO[3], lw=1.4, label="best induction score, last layer")
        _shade(ax, tr)
        ax.set_ylim(0, 1)
        ax.set_xlabel("training step")
    axes[0, 0].set_ylabel("loss (nats)", fontsize=9)
    axes[1, 0].set_ylabel("head score", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    axes[1, 0].legend(fontsize=7, loc="center right")
    if xmax is not None:
        axes[0, 0].set_xlim(0, xmax)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ---------------------------------------------------------------- sweeps


def sweep_figure(sweep: dict, title: str | None = None) -> Figure:
    """A sweep (as written by benchmarks/phase_sweep.py): one panel per setting varied, the detected
    transition step of every seed (dots; a cross at the top: no transition) against the setting's value."""
    settings = list(sweep["settings"])
    fig = Figure(figsize=(WIDTH + 0.5, 2.8), layout="constrained")
    axes = fig.subplots(1, len(settings), sharey=True, squeeze=False)[0]
    ymax = max(r["steps"][-1] for r in sweep["runs"])
    for ax, setting in zip(axes, settings):
        values = sweep["settings"][setting]
        for k, v in enumerate(values):
            runs = [r for r in sweep["runs"] if r["setting"] == setting and r["value"] == v]
            for j, r in enumerate(runs):
                tr = phase.summary_transition(r)
                x = k + (j - (len(runs) - 1) / 2) * 0.08
                if tr is None:
                    ax.plot(x, ymax, "x", color=OKABE_ITO[3], ms=7)
                else:
                    ax.plot(x, tr.mid, "o", color=OKABE_ITO[0], ms=5, alpha=0.8)
        ax.set_xticks(range(len(values)), [f"{v:g}" for v in values])
        ax.set_xlim(-0.5, len(values) - 0.5)
        ax.set_xlabel(setting)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("transition step")
    axes[0].set_ylim(0, ymax * 1.05)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
