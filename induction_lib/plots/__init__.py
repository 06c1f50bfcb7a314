"""Matplotlib figures for the book: attention patterns, head scores, losses, circuits, ablations.

Every function returns the `matplotlib.figure.Figure` it drew on and never calls `plt.show()`. With
`ax=None` it makes its own figure as a bare `Figure` (not registered with pyplot, so nothing leaks
and a notebook shows it once, as the cell's value); pass `ax=` to draw into a figure of your own.
Colours are colour-blind safe: 'viridis' for values in [0, 1], the diverging 'RdBu_r' (ColorBrewer,
colour-blind safe) for signed matrices, and the Okabe-Ito palette (Okabe & Ito 2008) for lines and bars.
Sizes suit a book column about 6 inches wide; the explanatory diagrams (`plots.diagrams`: the induction
circuit, the corruption experiment, the attention-Hopfield mapping) are drawn page-wide, 10 inches.
(Training curves are drawn by the chapters themselves.)
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000"]
SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"
WIDTH = 6.0           # inches: a book column
MAX_TICK_LABELS = 40  # more tokens than this and the token labels are thinned


def _numpy(x, name: str, dims: Sequence[int]) -> np.ndarray:
    """x (tensor, array or nested list) as a float numpy array with one of the allowed numbers of dims."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x, dtype=float)
    if x.ndim not in dims:
        raise ValueError(f"{name} must have {' or '.join(map(str, dims))} dimensions, got shape {x.shape}")
    return x


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        try:
            return ax.get_figure(root=True), ax  # matplotlib >= 3.10 (ax may sit in a SubFigure)
        except TypeError:
            return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _token_ticks(ax: Axes, labels, n: int, axis: str, max_labels: int = MAX_TICK_LABELS) -> None:
    """Token labels on one axis; thinned to at most `max_labels` (every k-th token) when longer."""
    if labels is None:
        return
    labels = [str(t) for t in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries but the pattern has {n} positions")
    step = max(1, math.ceil(n / max_labels))
    idx = list(range(0, n, step))
    size = 8 if n <= 20 else 6
    if axis == "x":
        ax.set_xticks(idx, [labels[i] for i in idx], rotation=90, fontsize=size)
    else:
        ax.set_yticks(idx, [labels[i] for i in idx], fontsize=size)


def _text_colour(value: float, vmin: float, vmax: float, cmap) -> str:
    """Black on light cells, white on dark ones."""
    r, g, b, _ = cmap((value - vmin) / (vmax - vmin) if vmax > vmin else 0.5)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def attention_pattern(pattern_2d, labels=None, ax: Axes | None = None, title: str | None = None) -> Figure:
    """One head's attention pattern [query, key] as a heatmap in [0, 1], with token labels on both
    axes (thinned to every k-th token beyond 40 tokens). Row i: where query position i looks."""
    a = _numpy(pattern_2d, "pattern_2d", (2,))
    fig, ax = _figure_and_axes(ax, (WIDTH, WIDTH * 0.85))
    im = ax.imshow(a, cmap=SEQUENTIAL, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel("key position (attended to)")
    ax.set_ylabel("query position (attending)")
    _token_ticks(ax, labels, a.shape[1], "x")
    _token_ticks(ax, labels, a.shape[0], "y")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, label="attention weight", shrink=0.8)
    return fig


def attention_patterns(patterns, labels=None, titles: Sequence[str] | None = None, ncols: int = 4) -> Figure:
    """A grid of patterns [head, query, key], one panel per head, sharing one colour scale."""
    p = _numpy(patterns, "patterns", (3,))
    n = p.shape[0]
    if not (isinstance(ncols, int) and ncols >= 1):
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries but there are {n} patterns")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    side = WIDTH / ncols
    fig = Figure(figsize=(WIDTH + 0.6, side * nrows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    im = None
    for i, ax in enumerate(axes):
        if i >= n:
            ax.set_axis_off()
            continue
        im = ax.imshow(p[i], cmap=SEQUENTIAL, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(titles[i] if titles is not None else f"head {i}", fontsize=9)
        if labels is not None:
            _token_ticks(ax, labels, p.shape[2], "x", max_labels=12)
            _token_ticks(ax, labels, p.shape[1], "y", max_labels=12)
        else:
            ax.tick_params(labelsize=7)
        if i % ncols == 0:
            ax.set_ylabel("query", fontsize=8)
        if i // ncols == nrows - 1 or i + ncols >= n:
            ax.set_xlabel("key", fontsize=8)
    fig.colorbar(im, ax=axes.tolist(), label="attention weight", shrink=0.8)
    return fig


def head_scores(scores, title: str | None = None, ax: Axes | None = None, vmin: float = 0, vmax: float = 1,
                annotate: bool = True, cmap: str | None = None) -> Figure:
    """A [layers, heads] score table as a heatmap; each cell labelled "L.H" and its value.
    Scores that can be negative (vmin < 0) get the diverging colour map."""
    s = _numpy(scores, "scores", (2,))
    n_layers, n_heads = s.shape
    cmap_name = cmap or (DIVERGING if vmin < 0 else SEQUENTIAL)
    fig, ax = _figure_and_axes(ax, (min(WIDTH, 1.2 + 1.1 * n_heads), 0.9 + 0.8 * n_layers))
    im = ax.imshow(s, cmap=cmap_name, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(n_heads), [f"head {h}" for h in range(n_heads)])
    ax.set_yticks(range(n_layers), [f"layer {l}" for l in range(n_layers)])
    if annotate:
        for l in range(n_layers):
            for h in range(n_heads):
                ax.text(h, l, f"{l}.{h}\n{s[l, h]:.2f}", ha="center", va="center", fontsize=8,
                        color=_text_colour(s[l, h], vmin, vmax, im.cmap))
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, label="score")
    return fig


def loss_per_position(losses, repeat_start: int | None = None, repeat_end: int | None = None,
                      ax: Axes | None = None, label: str | None = None, chance: float | None = None,
                      color: str | None = None) -> Figure:
    """Next-token loss at each position ([pos], or [batch, pos] averaged over the batch).

    Index p is the loss of predicting token p + 1 (as `scores.per_position_loss` returns it).
    [repeat_start, repeat_end) in the same indices is shaded as the repeated region; `chance`
    (e.g. ln(d_vocab), the loss of a uniform guess) is drawn as a dashed line. Call again with the
    same `ax` to overlay curves (e.g. clean vs ablated); each new curve takes the next Okabe-Ito colour.
    """
    x = _numpy(losses, "losses", (1, 2))
    mean = x.mean(axis=0) if x.ndim == 2 else x
    fig, ax = _figure_and_axes(ax, (WIDTH, 3.0))
    existing = [ln for ln in ax.get_lines() if ln.get_gid() == "loss_curve"]
    colour = color or OKABE_ITO[len(existing) % len(OKABE_ITO)]
    pos = np.arange(len(mean))
    line, = ax.plot(pos, mean, color=colour, lw=1.6, label=label or ("loss" if not existing else None))
    line.set_gid("loss_curve")
    if x.ndim == 2 and x.shape[0] > 1:  # the spread over the batch: a faint band of +- one standard error
        se = x.std(axis=0) / math.sqrt(x.shape[0])
        ax.fill_between(pos, mean - se, mean + se, color=colour, alpha=0.2, lw=0)
    gids = {a.get_gid() for a in ax.patches + ax.get_lines()}
    if repeat_start is not None or repeat_end is not None:
        start = 0 if repeat_start is None else repeat_start
        end = len(mean) if repeat_end is None else repeat_end
        if not (0 <= start < end <= len(mean)):
            raise ValueError(f"need 0 <= repeat_start < repeat_end <= {len(mean)}, got {repeat_start}, {repeat_end}")
        if "repeat_region" not in gids:
            ax.axvspan(start - 0.5, end - 0.5, color="0.85", zorder=0, label="repeated half").set_gid("repeat_region")
    if chance is not None and "chance" not in gids:
        ax.axhline(chance, color="0.3", ls="--", lw=1, label=f"chance = {chance:.2f} nats").set_gid("chance")
    ax.set_xlabel("position p (loss of predicting token p + 1)")
    ax.set_ylabel("loss (nats)")
    ax.set_xlim(-0.5, len(mean) - 0.5)
    top = max(float(np.nanmax(ln.get_ydata())) for ln in ax.get_lines() if ln.get_gid() == "loss_curve")
    ax.set_ylim(0, 1.08 * max(top, chance or 0.0))
    ax.legend(fontsize=8, loc="best")
    return fig


def composition_scores(scores, baseline_mean: float, baseline_std: float, kind: str = "K",
                       ax: Axes | None = None) -> Figure:
    """Composition scores [layer-0 head, layer-1 head] as a heatmap, each cell annotated with its
    value and its distance from the random baseline in standard deviations, z = (s - mean) / std."""
    s = _numpy(scores, "scores", (2,))
    if kind not in ("Q", "K", "V"):
        raise ValueError(f"kind must be one of 'Q', 'K', 'V', got {kind!r}")
    n0, n1 = s.shape
    fig, ax = _figure_and_axes(ax, (min(WIDTH, 1.6 + 1.1 * n1), 1.0 + 0.75 * n0))
    vmax = max(float(s.max()), baseline_mean + 3 * baseline_std)
    im = ax.imshow(s, cmap=SEQUENTIAL, vmin=0, vmax=vmax, aspect="auto")
    for i in range(n0):
        for j in range(n1):
            z = (s[i, j] - baseline_mean) / baseline_std if baseline_std > 0 else float("nan")
            ax.text(j, i, f"{s[i, j]:.2f}\nz={z:.1f}", ha="center", va="center", fontsize=8,
                    color=_text_colour(s[i, j], 0, vmax, im.cmap))
    ax.set_xticks(range(n1), [f"1.{j}" for j in range(n1)])
    ax.set_yticks(range(n0), [f"0.{i}" for i in range(n0)])
    ax.set_xlabel("layer-1 head (reads)")
    ax.set_ylabel("layer-0 head (writes)")
    ax.set_title(f"{kind}-composition; random baseline {baseline_mean:.3f} ± {baseline_std:.3f}", fontsize=10)
    cbar = fig.colorbar(im, ax=ax, label="composition score")
    cbar.ax.axhline(baseline_mean, color="white", lw=1.5)
    return fig


def circuit_matrix(matrix, ax: Axes | None = None, title: str | None = None, xlabel: str = "key token",
                   ylabel: str = "query token", labels=None) -> Figure:
    """A QK or OV circuit matrix (e.g. [vocab, vocab] or [pos, pos]) on a diverging scale centred at 0.
    For an OV circuit pass xlabel="output logit", ylabel="attended token"."""
    m = _numpy(matrix, "matrix", (2,))
    fig, ax = _figure_and_axes(ax, (WIDTH, WIDTH * 0.85))
    vmax = float(np.abs(m).max()) or 1.0
    im = ax.imshow(m, cmap=DIVERGING, vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _token_ticks(ax, labels, m.shape[1], "x")
    _token_ticks(ax, labels, m.shape[0], "y")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def _series(effects) -> tuple[list[str], np.ndarray]:
    """Names and values of one series: a mapping name -> number, or a [layers, heads] tensor ("L.H")."""
    if isinstance(effects, Mapping):
        return [str(k) for k in effects], np.array([float(v) for v in effects.values()])
    v = _numpy(effects, "effects", (1, 2))
    if v.ndim == 1:
        return [str(i) for i in range(len(v))], v
    return [f"{l}.{h}" for l in range(v.shape[0]) for h in range(v.shape[1])], v.ravel()


def ablation_effects(effects, ax: Axes | None = None, ylabel: str = "change in loss (nats)",
                     title: str | None = None) -> Figure:
    """Bar chart of ablation effects: a mapping name -> value, a [layers, heads] tensor (bars named
    "L.H"), or a mapping series -> (either of those) for grouped bars, e.g.
    {"repeated half": d_rep, "first half": d_first}."""
    def is_series(v):
        return isinstance(v, Mapping) or (isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim >= 1)
    grouped = isinstance(effects, Mapping) and len(effects) > 0 and all(map(is_series, effects.values()))
    series = {k: _series(v) for k, v in effects.items()} if grouped else {None: _series(effects)}
    names = next(iter(series.values()))[0]
    if any(s[0] != names for s in series.values()):
        raise ValueError("every series of a grouped bar chart must name the same bars")
    fig, ax = _figure_and_axes(ax, (WIDTH, 3.0))
    width = 0.8 / len(series)
    x = np.arange(len(names))
    for i, (label, (_, values)) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label,
               color=OKABE_ITO[i % len(OKABE_ITO)])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, names, rotation=0 if max(map(len, names)) <= 6 else 45, ha="center" if
                  max(map(len, names)) <= 6 else "right")
    ax.set_xlabel("head (layer.head)" if all("." in n for n in names) else "")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if grouped:
        ax.legend(fontsize=8)
    return fig


def attention_by_position(curves: Mapping[str, object], positions=None, starts: Sequence[int] = (),
                          xlabel: str = "query position", ylabel: str = "attention on the target",
                          ax: Axes | None = None) -> Figure:
    """One line per head over query positions, e.g. each head's attention on its induction target
    (`scores.induction_attention` averaged over the batch), to show where in the context a head works.
    curves: {label: [n]}; positions: [n] (default 0 .. n - 1); starts: positions where a region (a copy)
    begins, drawn as dotted lines just before them."""
    if not curves:
        raise ValueError("curves is empty: give at least one {label: [n] values}")
    fig, ax = _figure_and_axes(ax, (WIDTH, 2.6))
    for i, (label, values) in enumerate(curves.items()):
        y = _numpy(values, f"curve {label!r}", (1,))
        x = np.arange(len(y)) if positions is None else _numpy(positions, "positions", (1,))
        if len(x) != len(y):
            raise ValueError(f"curve {label!r} has {len(y)} values but positions has {len(x)}")
        ax.plot(x, y, marker=".", lw=1, color=OKABE_ITO[i % len(OKABE_ITO)], label=label)
    for x0 in starts:
        ax.axvline(x0 - 0.5, color="0.6", ls=":", lw=1)
    ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.05))
    ax.legend(fontsize=8)
    return fig

def source(*objects) -> "IPython.display.Code":
    """The library's own source of functions or classes, highlighted, as a cell shows it: how the book
    shows the code a reader should read (from the library, never pasted into a chapter)."""
    import inspect

    from IPython.display import Code

    if not objects:
        raise ValueError("source() needs at least one function or class")
    bad = [repr(o) for o in objects if not (inspect.isfunction(o) or inspect.isclass(o) or inspect.ismethod(o))]
    if bad:
        raise TypeError(f"source() shows functions, methods and classes, got {', '.join(bad)}")
    return Code("\n\n".join(inspect.getsource(o).rstrip() for o in objects), language="python")


from . import hopfield, natural_text, phase  # noqa: E402,F401  (figures by topic: plots.phase, ...)
from .diagrams import corruption_positions, hopfield_mapping, induction_circuit  # noqa: E402,F401
