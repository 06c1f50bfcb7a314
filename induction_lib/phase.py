"""The phase change: find it in a training curve, put runs side by side, sweep a setting.

How a transition is found (`detect`, one rule for every curve in the book). A logistic step

    y(t) = after + (before - after) * sigmoid(-(t - mid) / w)

is fitted to the curve by least squares: a grid over the midpoint `mid` and the width `w`, the two
levels in closed form for each. The curve has a transition when the fitted step

* is large: |after - before| >= `min_change` (in the curve's units: nats, or a score in [0, 1]);
* explains the curve: R^2 >= `min_r2`;
* is abrupt: its 10-90 % window, mid -/+ w ln 9, spans at most `max_width` of the run;
* comes after a plateau: the window starts after the first record.

A flat curve, a steady slow decline and pure noise all fail one of these, and `detect` returns None.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import scores
from .data import BOS, repeated_tokens

LN9 = math.log(9.0)  # a logistic goes from 10 % to 90 % of its step over mid -/+ w ln 9


# ---------------------------------------------------------------- detection


@dataclass(frozen=True)
class Transition:
    """A detected step in a curve: the 10-90 % window [start, end], its midpoint, the fitted levels."""

    start: float
    mid: float
    end: float
    before: float
    after: float
    r2: float

    @property
    def change(self) -> float:
        """after - before: negative for a drop (a loss), positive for a rise (a score)."""
        return self.after - self.before

    def as_dict(self) -> dict:
        return asdict(self)


def _as_curve(steps, values) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(steps.tolist() if isinstance(steps, torch.Tensor) else steps, dtype=float)
    y = np.asarray(values.tolist() if isinstance(values, torch.Tensor) else values, dtype=float)
    if t.ndim != 1 or y.shape != t.shape or len(t) < 4:
        raise ValueError(f"need two 1-D sequences of the same length >= 4, got shapes {t.shape} and {y.shape}")
    if not np.all(np.diff(t) > 0):
        raise ValueError("steps must be strictly increasing")
    if not np.all(np.isfinite(y)):
        raise ValueError("values must be finite")
    return t, y


def fit_step(steps, values, n_widths: int = 48) -> Transition:
    """The least-squares logistic step through a curve (always returns one; `detect` judges it)."""
    t, y = _as_curve(steps, values)
    span = t[-1] - t[0]
    mids = np.union1d(t, (t[1:] + t[:-1]) / 2)
    widths = np.geomspace(np.diff(t).min() / 8, span, n_widths)
    yc = y - y.mean()
    var_y = float((yc * yc).sum())
    best = (-1.0, 0, 0, 0.0, 0.0)  # r2, mid index, width index, a, b
    for j, w in enumerate(widths):  # one width at a time: [mids, records] arrays stay small
        s = 1.0 / (1.0 + np.exp(np.clip((t[None, :] - mids[:, None]) / w, -60, 60)))
        sc = s - s.mean(axis=-1, keepdims=True)
        cov, var_s = sc @ yc, (sc * sc).sum(axis=-1)
        ok = var_s > 1e-12
        r2 = np.where(ok, cov ** 2 / np.where(ok, var_s, 1.0) / max(var_y, 1e-300), 0.0)
        i = int(np.argmax(r2))
        if r2[i] > best[0]:
            b = cov[i] / var_s[i] if ok[i] else 0.0     # y = a + b s: before = a + b, after = a
            best = (float(r2[i]), i, j, float(y.mean() - b * s[i].mean()), float(b))
    r2, i, j, a, b = best
    mid, w = float(mids[i]), float(widths[j])
    return Transition(start=mid - w * LN9, mid=mid, end=mid + w * LN9, before=a + b, after=a,
                      r2=r2 if var_y > 0 else 0.0)


def detect(steps, values, min_change: float = 0.3, max_width: float = 0.25,
           min_r2: float = 0.7, direction: str | None = None) -> Transition | None:
    """The transition in a curve by the rule in the module docstring, or None if it has
    none. direction: "fall" or "rise" to accept only drops (losses) or only rises
    (scores)."""
    if direction not in (None, "fall", "rise"):
        raise ValueError(f"direction must be None, 'fall' or 'rise', got {direction!r}")
    t, _ = _as_curve(steps, values)
    fit = fit_step(steps, values)
    if abs(fit.change) < min_change or fit.r2 < min_r2:
        return None
    wrong_way = fit.change > 0 if direction == "fall" else fit.change < 0
    if direction is not None and wrong_way:
        return None
    if fit.end - fit.start > max_width * (t[-1] - t[0]) or fit.start <= t[0]:
        return None
    return fit


# ---------------------------------------------------------------- the curves of a run


DIRECTION = {"repeat loss": "fall", "first-copy loss": None, "training loss": "fall", "ICL score": "fall",
             "previous-token score": "rise", "induction score": "rise"}


def curves(history, icl: str = "held-out") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A run's curves (from its History, or from a sweep's `summary` of it), name -> (steps, values): the
    loss on the repeated (second) and the first copy of held-out BOS + prefix + r + r, the training
    objective (at the records), an ICL score, the best previous-token score in layer 0 and the best
    induction score in the last layer.

    icl="held-out": loss on the repeated copy minus loss on the first copy of the held-out repeats (late
    minus early in the context, where the late tokens have an earlier occurrence to use); icl="history":
    the history's own score, the loss at a late minus an early position of training-distribution
    sequences (`History.icl`; meaningful on text, near 0 on random tokens, where a copy is as likely
    early as late)."""
    if icl not in ("held-out", "history"):
        raise ValueError(f"icl must be 'held-out' or 'history', got {icl!r}")
    if isinstance(history, dict):  # a sweep's `summary` of a run
        steps, repeat, first = (np.asarray(history[k], dtype=float)
                                for k in ("steps", "repeat_loss", "first_half_loss"))
        return {"repeat loss": (steps, repeat), "first-copy loss": (steps, first),
                "training loss": (steps, np.asarray(history["train_loss"])), "ICL score": (steps, repeat - first),
                "previous-token score": (steps, np.asarray(history["previous_token"])),
                "induction score": (steps, np.asarray(history["induction"]))}
    steps = np.asarray(history.steps, dtype=float)
    prev = torch.stack(list(history.prev_token))   # [records, layers, heads]
    ind = torch.stack(list(history.induction))
    repeat, first = np.asarray(history.repeat_loss), np.asarray(history.first_half_loss)
    return {"repeat loss": (steps, repeat), "first-copy loss": (steps, first),
            "training loss": (steps, np.asarray(history.train_loss)),
            "ICL score": (steps, repeat - first if icl == "held-out" else np.asarray(history.icl)),
            "previous-token score": (steps, prev[:, 0].max(dim=-1).values.numpy()),
            "induction score": (steps, ind[:, -1].max(dim=-1).values.numpy())}


def transitions(history, icl: str = "held-out", **kwargs) -> dict[str, Transition | None]:
    """`detect` on the run's held-out curves: the repeat loss, the ICL score (late-minus-early loss: it
    falls), the previous-token and the induction score (they rise)."""
    c = curves(history, icl)
    return {name: detect(*c[name], direction=DIRECTION[name], **kwargs)
            for name in ("repeat loss", "ICL score", "previous-token score", "induction score")}


def transition_step(history, **kwargs) -> float | None:
    """The midpoint of the transition in the held-out repeat loss (None: no transition)."""
    tr = detect(history.steps, history.repeat_loss, direction="fall", **kwargs)
    return None if tr is None else tr.mid


def crossing(steps, values, tr: Transition, frac: float) -> float | None:
    """The first recorded step at which the curve has covered `frac` of the fitted step `tr` (from
    tr.before towards tr.after): 0.1 = the onset, 0.5 = half-way. None if it never gets there."""
    if not 0 < frac < 1:
        raise ValueError(f"frac must be in (0, 1), got {frac}")
    t, y = _as_curve(steps, values)
    progress = (y - tr.before) / tr.change
    hit = np.nonzero(progress >= frac)[0]
    return float(t[hit[0]]) if len(hit) else None


def first_below(steps, values, level: float) -> float | None:
    """The first recorded step at which a curve is below `level` (None if never): a threshold reading that
    needs no fitted step, for curves that fall in two stages or stall."""
    t, y = _as_curve(steps, values)
    hit = np.nonzero(y < level)[0]
    return float(t[hit[0]]) if len(hit) else None


def value_at(steps, values, step: float) -> float:
    """A curve's value at `step`, interpolated linearly between records (a crossing step of another curve
    usually falls between two records)."""
    t, y = _as_curve(steps, values)
    if not t[0] <= step <= t[-1]:
        raise ValueError(f"step {step} is outside the recorded steps {t[0]:g} to {t[-1]:g}")
    return float(np.interp(step, t, y))


def formation_order(history, fracs: tuple = (0.1, 0.5, 0.9)) -> dict[str, dict[float, float | None]]:
    """Which forms first: for the repeat loss, the previous-token score and the induction score of a run
    (a History or a sweep's `summary`),
    the step at which each has covered each fraction of its own fitted step (None: no transition)."""
    c = curves(history)
    out = {}
    for name in ("previous-token score", "induction score", "repeat loss"):
        tr = detect(*c[name], direction=DIRECTION[name])
        out[name] = {f: (None if tr is None else crossing(*c[name], tr, f)) for f in fracs}
    return out


def progress_crossing(steps, values, frac: float, k: int = 5) -> float | None:
    """The first recorded step at which a curve has covered `frac` of the way from its starting level (the
    median of its first `k` records) to its final level (the median of its last `k`); None if it never
    does. Unlike `crossing` it needs no fitted step, so it also reads curves that change slowly or in
    parts (a logistic fits those badly, and `detect` rejects them)."""
    if not 0 < frac < 1:
        raise ValueError(f"frac must be in (0, 1), got {frac}")
    t, y = _as_curve(steps, values)
    k = max(1, min(k, len(y) // 2))
    start, end = float(np.median(y[:k])), float(np.median(y[-k:]))
    if start == end:
        return None
    hit = np.nonzero((y - start) / (end - start) >= frac)[0]
    return float(t[hit[0]]) if len(hit) else None


def progress_order(history, fracs: tuple = (0.1, 0.5, 0.9), k: int = 5) -> dict[str, dict[float, float | None]]:
    """Which forms first, without fitted steps: for the previous-token score, the induction score and the
    repeat loss of a run (a History or a sweep's `summary`), the first step at which each has covered each
    fraction of the way from its starting to its final level (`progress_crossing`)."""
    c = curves(history)
    return {name: {f: progress_crossing(*c[name], f, k) for f in fracs}
            for name in ("previous-token score", "induction score", "repeat loss")}


ORDER_CURVES = ("previous-token score", "induction score", "repeat loss")


def format_order(order: dict, label: str = "") -> str:
    """`progress_order` (or `formation_order`) as a text table: one row per curve, one column
    per fraction, "-" where a curve never gets there; `label` heads the first column."""
    fracs = list(next(iter(order.values())))
    lines = [f"{label:>8}{'':>22}" + "".join(f"{f'{f:.0%}':>7}" for f in fracs)]
    for name, at in order.items():
        cells = "".join(f"{'-' if at[f] is None else f'{at[f]:.0f}':>7}" for f in fracs)
        lines.append(f"{'':>8}{name:>22}" + cells)
    return "\n".join(lines)


def order_lags(run, order: dict | None = None) -> dict[str, float | None]:
    """How far apart the parts of the circuit form in one run (a History or a sweep's
    `summary`), from `progress_order` (computed here unless given), in steps:

    * "onset spread": from the first to the last curve to cover 10 % of its way;
    * "loss half lag": the repeat loss reaching 50 % minus the induction score reaching it;
    * "prev half lag", "prev 90 lag": the previous-token score reaching 50 % (90 %) minus the
      induction score reaching it;
    * "prev after loss 90": the previous-token score reaching 90 % minus the repeat loss;

    and "prev at induction 90": the previous-token score (not a step) when the induction
    score has covered 90 % of its way. None where a curve never gets there."""
    o = progress_order(run) if order is None else order
    prev, ind, loss = (o[name] for name in ORDER_CURVES)

    def lag(later, earlier, frac):
        a, b = later[frac], earlier[frac]
        return None if a is None or b is None else a - b

    onsets = [at[0.1] for at in o.values()]
    prev_at = None
    if ind[0.9] is not None:
        prev_at = value_at(*curves(run)["previous-token score"], ind[0.9])
    return {"onset spread": None if None in onsets else max(onsets) - min(onsets),
            "loss half lag": lag(loss, ind, 0.5), "prev half lag": lag(prev, ind, 0.5),
            "prev 90 lag": lag(prev, ind, 0.9), "prev after loss 90": lag(prev, loss, 0.9),
            "prev at induction 90": prev_at}


def load_sweep(path=None) -> dict:
    """The stored phase-change sweep (benchmarks/phase_sweep.py): `path`, or
    book/data/phase_sweep.json found from the working directory (the repository root or
    book/) or next to this package in a source checkout."""
    if path is not None:
        return json.loads(Path(path).read_text())
    here = Path(__file__).resolve().parent.parent
    places = (Path("data"), Path("book/data"), here / "book" / "data")
    for place in places:
        if (place / "phase_sweep.json").exists():
            return json.loads((place / "phase_sweep.json").read_text())
    raise FileNotFoundError("phase_sweep.json not found in " + ", ".join(map(str, places))
                            + "; run benchmarks/phase_sweep.py or pass its path")


def bump(history, window: Transition, margin: float = 2.0) -> tuple[float, float]:
    """The loss bump: the rise of the first-copy loss (which no copying can predict) above its level just
    before the transition, at its highest point within `margin` window-widths of the window.
    Returns (step of the peak, rise in nats)."""
    t, y = np.asarray(history.steps, dtype=float), np.asarray(history.first_half_loss)
    w = window.end - window.start
    before = y[(t <= window.start) & (t >= window.start - w)]
    level = float(np.median(before)) if len(before) else float(y[t <= window.start][-1])
    inside = (t >= window.start - margin * w) & (t <= window.end + margin * w)
    k = int(np.argmax(np.where(inside, y, -np.inf)))
    return float(t[k]), float(y[k] - level)


# ---------------------------------------------------------------- heads and snapshots


def nearest_snapshot(history, step: float) -> int:
    """The snapshot step closest to `step`."""
    if not history.snapshots:
        raise ValueError("this history has no snapshots: train with TrainConfig(snapshot_steps=...)")
    return min(history.snapshots, key=lambda s: (abs(s - step), s))


@torch.no_grad()
def snapshot_patterns(model, history, steps, heads, half_len: int = 14, seed: int = 3,
                      tokens: torch.Tensor | None = None) -> tuple[torch.Tensor, list[str]]:
    """Attention patterns of `heads` [(layer, head), ...] at the snapshot `steps`, one row per head, one column
    per step, on one held-out BOS + r + r (distinct tokens, |r| = half_len; or the one sequence `tokens`
    [1, pos]): ([n_heads * n_steps, q, k], titles)."""
    if tokens is None:
        cfg = model.cfg
        half = min(half_len, (cfg.n_ctx - 1) // 2)
        tokens = repeated_tokens(1, half, cfg.d_vocab, seed=seed, distinct=half < cfg.d_vocab - 1)
    scratch = copy.deepcopy(model)
    by_step = []                                     # one forward pass per snapshot, every head read off it
    for step in steps:
        if step not in history.snapshots:
            raise ValueError(f"step {step} has no snapshot; use nearest_snapshot")
        scratch.load_state_dict(history.snapshots[step])
        _, cache = scratch.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
        by_step.append([cache.pattern(layer)[0, head] for layer, head in heads])
    panels = [by_step[j][i] for i in range(len(heads)) for j in range(len(steps))]
    titles = [f"head {layer}.{head}, step {step}" for layer, head in heads for step in steps]
    return torch.stack(panels), titles


@torch.no_grad()
def repeated_text(model, ids: torch.Tensor, half_len: int = 31, batch: int = 64, seed: int = 0) -> dict:
    """Induction on natural text: BOS + a random segment of `ids` (1-D token ids, e.g. text the model never
    trained on) + the same segment again. Returns the mean loss on the first and on the second copy (after
    their first token) and every head's diagonal induction score, [n_layers, n_heads]."""
    if ids.dim() != 1 or len(ids) <= half_len or 1 + 2 * half_len > model.cfg.n_ctx:
        raise ValueError(f"need 1-D ids longer than half_len={half_len} and 1 + 2 * half_len <= n_ctx")
    starts = torch.randint(0, len(ids) - half_len, (batch,), generator=torch.Generator().manual_seed(seed))
    seg = torch.stack([ids[s:s + half_len] for s in starts.tolist()])
    tokens = torch.cat([torch.full((batch, 1), BOS, dtype=torch.long), seg, seg], dim=1)
    logits, cache = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    loss = scores.per_position_loss(logits, tokens)
    return {"first copy": loss[:, 1:half_len].mean().item(),
            "second copy": loss[:, half_len + 1:2 * half_len].mean().item(),
            "induction": torch.stack([scores.diagonal_induction_score_from_pattern(cache.pattern(layer), half_len)
                                      for layer in range(model.cfg.n_layers)])}


def summary(history) -> dict:
    """A run's curves as plain lists (JSON-able, a few kB): what a sweep keeps of each run."""
    c = curves(history)
    return {"steps": [int(s) for s in history.steps],
            "repeat_loss": [round(float(v), 4) for v in history.repeat_loss],
            "first_half_loss": [round(float(v), 4) for v in history.first_half_loss],
            "train_loss": [round(float(v), 4) for v in history.train_loss],
            "previous_token": [round(float(v), 4) for v in c["previous-token score"][1]],
            "induction": [round(float(v), 4) for v in c["induction score"][1]],
            "formed_step": history.formed_step, "seconds": round(float(history.seconds), 2)}


def summary_transition(run: dict, **kwargs) -> Transition | None:
    """`detect` on a sweep summary's repeat loss."""
    return detect(run["steps"], run["repeat_loss"], direction="fall", **kwargs)
