"""Checks for chapter 5, the phase change: finding a transition in a curve (the steepest fall, then a
robust detector), the first step at which an induction head appears, what a one-layer model can do, and
what the smeared keys learn; and for chapter 6, how the transition step scales with a setting of a sweep.

The curve checks run the student's function on synthetic curves with a known transition (logistic steps
on different step grids, with noise, a transient loss bump, an outlier record, a rise instead of a fall)
and on real training histories; value answers are compared with quantities computed here from first
principles, never with a number the notebook printed above the exercise.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch

from ._core import as_float, call, delegates_to, exercise, fail, fmt, given


def sigmoid_curve(steps: torch.Tensor, drop_at: float, width: float, high: float = 4.0, low: float = 1.0,
                  bump: tuple[float, float, float] | None = None, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """A curve that goes from `high` to `low` around `drop_at` (a logistic of the given width; high < low
    gives a rise); `bump = (at, height, width)` adds a transient bump (a Gaussian), `noise` Gaussian noise."""
    t = steps.to(torch.float64)
    loss = low + (high - low) * torch.sigmoid(-(t - drop_at) / width)
    if bump is not None:
        at, height, w = bump
        loss = loss + height * torch.exp(-((t - at) / w) ** 2)
    if noise:
        g = torch.Generator().manual_seed(seed)
        loss = loss + noise * torch.randn(len(t), generator=g, dtype=torch.float64)
    return loss


def _phase_functions():
    from .. import phase

    return (phase.detect, phase.fit_step, phase.transitions, phase.transition_step, phase.summary_transition,
            phase.crossing, phase.progress_crossing, phase.first_below)


def _no_delegation(fn, what):
    __tracebackhide__ = True
    lib = delegates_to(fn, *_phase_functions())
    if lib:
        fail(f"your function calls il.phase.{lib}, the library's detector; the point of this exercise is "
             f"{what} yourself, with tensor operations")


def _step_answer(fn, steps, values, case):
    __tracebackhide__ = True
    s0, v0 = steps.clone(), values.clone()
    out = call(fn, steps, values, case=case)
    if not (torch.equal(steps, s0) and torch.equal(values, v0)):
        fail("your function changed its input tensors in place; work on copies")
    if out is None:
        fail(f"on {case} your function returned None; return the step (a number)")
    return as_float(out, f"your step for {case}")


def _diagnose(v, steps, values, want, tol, extra=()):
    """A hint for a wrong step v: an index, the lowest/highest value, the first or last step, or one of the
    (condition, hint) pairs in `extra`."""
    index = int((steps.double() - want).abs().argmin())
    if abs(v - index) <= 2 and abs(v - want) > tol:
        return f"you returned an index into the curve; return the step itself, steps[index] (here ≈ {want:g})"
    for cond, hint in extra:
        if cond:
            return hint
    if abs(v - float(steps[int(values.argmin())])) <= tol or abs(v - float(steps[int(values.argmax())])) <= tol:
        return "that is where the curve is lowest (or highest); a transition is where it moves, not where it ends"
    if abs(v - float(steps[-1])) <= tol:
        return "that is the last step: look for where the curve moves"
    if abs(v - float(steps[0])) <= tol:
        return "that is the first step: look for where the curve moves"
    return ""


# ---------------------------------------------------------------- 5.1 the steepest fall


@exercise("transition_window")
def transition_window(fn) -> str:
    """fn(steps [n], losses [n]) -> the training step at which the loss falls fastest between two
    consecutive records (their midpoint, or either end). Both arguments are 1-D tensors; steps are
    increasing and need not start at 0 or be evenly spaced.

    Cases: a drop preceded by a sharp transient loss bump (its rise is steeper per record than the drop, its
    fall back is not: a sign error and the largest |change| both find the bump); logistic
    drops on a 0, 10, 20 … grid, on a grid starting at 50 with spacing 25, and on an uneven grid; a noisy
    drop. The answer must be within two local grid spacings of the true drop. Rejects: the index instead of
    the step, the lowest loss, the fastest RISE (a sign error: it finds the bump), the largest |change|
    (also the bump), the first or last step, a function that calls il.phase."""
    __tracebackhide__ = True
    _no_delegation(fn, "to find the steepest fall")
    cases = []
    s = torch.arange(0, 1500, 10)
    # bump: rises by ~0.6 per record on its way up (steeper than the drop's ~0.3), then falls back slowly
    up = sigmoid_curve(s, 900, 25) + 0.9 * torch.exp(-((s.double() - 300) / 12) ** 2) * (s <= 300) \
        + 0.9 * torch.exp(-((s.double() - 300) / 200) ** 2) * (s > 300)
    cases.append(("a sharp loss bump at step 300, then a drop at step 900 (steps 0, 10, … 1490)", s, up, 900.0))
    s = torch.arange(0, 1000, 10)
    cases.append(("a drop at step 400 (steps 0, 10, … 990)", s, sigmoid_curve(s, 400, 30), 400.0))
    s = torch.arange(50, 3050, 25)
    cases.append(("a drop at step 1800 (steps 50, 75, … 3025)", s, sigmoid_curve(s, 1800, 60), 1800.0))
    s = torch.unique(torch.cat([torch.arange(0, 600, 7), torch.arange(600, 2400, 40)]))
    cases.append(("a drop at step 1300 on an uneven grid (every 7 steps to 600, then every 40)", s,
                  sigmoid_curve(s, 1300, 60), 1300.0))
    s = torch.arange(0, 2000, 20)
    cases.append(("a noisy drop at step 1200 (steps 0, 20, … 1980; noise σ = 0.01)", s,
                  sigmoid_curve(s, 1200, 50, noise=0.01, seed=3), 1200.0))
    for name, steps, losses, want in cases:
        v = _step_answer(fn, steps, losses, name)
        j = int((steps.double() - want).abs().argmin())
        spacing = float(steps[min(j + 1, len(steps) - 1)] - steps[max(j - 1, 0)]) / 2
        tol = 2 * spacing + 1e-9
        if abs(v - want) <= tol:
            continue
        diffs = losses[1:] - losses[:-1]
        i_up, i_abs = int(diffs.argmax()), int(diffs.abs().argmax())
        near = lambda i: abs(v - float(steps[i])) <= tol or abs(v - float(steps[i + 1])) <= tol  # noqa: E731
        hint = _diagnose(v, steps, losses, want, tol, extra=[
            ((near(i_up) or near(i_abs)) and "bump" in name, "that is where the loss RISES fastest (the bump): "
             "check the sign of the differences — the steepest fall is the most negative change, not the largest "
             "change or the largest |change|"),
        ])
        fail(f"on {name} your transition step is {fmt(v)}, expected about {want:g} (± {tol:g})"
             + (f" — {hint}" if hint else ""))
    return f"all {len(cases)} curves passed."


# ---------------------------------------------------------------- 5.2 a robust transition detector


def _spike(values, i, height):
    v = values.clone()
    v[i] += height
    return v


def _robust_cases():
    """(description, steps, values, true midpoint, logistic width) of the synthetic curves."""
    out = []
    s = torch.arange(0, 1000, 10)
    out.append(("a clean drop at step 400 (steps 0, 10, … 990)", s, sigmoid_curve(s, 400, 30), 400.0, 30.0))
    s = torch.arange(50, 3050, 25)
    out.append(("a noisy drop at step 1800 (steps 50, 75, … 3025; noise σ = 0.2, 7 % of the drop)", s,
                sigmoid_curve(s, 1800, 60, noise=0.2, seed=3), 1800.0, 60.0))
    s = torch.arange(0, 2000, 20)
    out.append(("a noisy RISE from 0.02 to 0.9 at step 700 (an induction score; σ = 0.04)", s,
                sigmoid_curve(s, 700, 40, high=0.02, low=0.9, noise=0.04, seed=5), 700.0, 40.0))
    s = torch.arange(0, 1500, 10)
    out.append(("a sharp loss bump at step 300 (+1 nat), then a drop at step 900", s,
                sigmoid_curve(s, 900, 40, bump=(300, 1.0, 15), noise=0.02, seed=7), 900.0, 40.0))
    s = torch.unique(torch.logspace(0, math.log10(5000), 90).round().long())
    out.append(("a drop at step 600 on a log-spaced grid (steps 1, 2, … 5000, denser early)", s,
                sigmoid_curve(s, 600, 50, noise=0.02, seed=9), 600.0, 50.0))
    s = torch.arange(0, 1200, 10)
    out.append(("a drop at step 700 with outlier records (+3 nats at the first record and at step 300)", s,
                _spike(_spike(sigmoid_curve(s, 700, 30, noise=0.03, seed=11), 0, 3.0), 30, 3.0), 700.0, 30.0))
    s = torch.arange(0, 2000, 10)
    out.append(("an early drop at step 150 in a long run (steps 0, 10, … 1990)", s,
                sigmoid_curve(s, 150, 20, noise=0.02, seed=13), 150.0, 20.0))
    s = torch.arange(0, 1000, 10)
    out.append(("a small rise from 0.0 to 0.25 at step 500 (σ = 0.01)", s,
                sigmoid_curve(s, 500, 25, high=0.0, low=0.25, noise=0.01, seed=15), 500.0, 25.0))
    return out


@exercise("find_transition")
def find_transition(fn, history=None) -> str:
    """fn(steps [n], values [n]) -> the step at which a curve that moves from one level to another is
    half-way: a loss that falls or a score that rises, measured with noise, on any increasing step grid.
    It must not be fooled by a transient bump or a single outlier record (even the first or the last).

    Cases (_robust_cases): a clean drop; a noisy drop (σ = 7 % of the drop, on a grid from 50 by 25); a noisy
    rise; a sharp bump before the drop; a log-spaced grid; outlier records at the first record and on the
    plateau; an early drop in a long run (the mean of the curve is not half-way); a small rise of 0.25 (which
    il.phase.detect would refuse). Tolerance: max(2 local grid spacings, 1.5 logistic widths) — the 10–90 %
    window is 4.4 widths, and with the noise used a level-crossing estimate errs by about 0.3 widths. Then the
    real training history (`history`, default the shipped model's): the repeat loss and the best last-layer
    induction score must be placed inside the 10–90 % window that il.phase.detect fits to each.
    Rejects: the steepest fall (noise, bump and outliers fool it), levels taken from the first and last
    records, the mean of the curve as the half-way level, a detector that only handles falls, the index, the
    lowest value, a function that calls il.phase."""
    __tracebackhide__ = True
    _no_delegation(fn, "to build a detector")
    n = 0
    for name, steps, values, want, width in _robust_cases():
        v = _step_answer(fn, steps, values, name)
        j = int((steps.double() - want).abs().argmin())
        spacing = float(steps[min(j + 1, len(steps) - 1)] - steps[max(j - 1, 0)]) / 2
        tol = max(2 * spacing, 1.5 * width)
        n += 1
        if abs(v - want) <= tol:
            continue
        d = values[1:] - values[:-1]
        rise = "RISE" in name or "rise" in name
        near = lambda i: min(abs(v - float(steps[i])), abs(v - float(steps[i + 1]))) <= 2 * spacing  # noqa: E731
        steepest = near(int(d.argmax() if rise else d.argmin()))
        only_falls = rise and (near(int(d.argmin())) or abs(v - float(steps[-1])) <= tol
                               or abs(v - float(steps[0])) <= tol)
        hint = _diagnose(v, steps, values, want, tol, extra=[
            (only_falls, "your detector seems to handle only falls, and this score rises; measure the progress "
             "from the level before to the level after, (y − before) / (after − before), which works both ways"),
            (steepest, "that is the steepest single change between two records, which noise, a bump or one "
             "outlier record can fake; find where the curve has covered half the way from its level before "
             "to its level after"),
            ("outlier" in name, "an outlier record moved your levels: estimate the level before and the level "
             "after from several records (a median), not from the first and the last record alone"),
            ("early" in name, "the half-way level is half-way between the level before and the level after, not "
             "the mean of the curve (here most of the run is after the drop, which pulls the mean down)"),
        ])
        fail(f"on {name} your transition step is {fmt(v)}, expected about {want:g} (± {tol:g})"
             + (f" — {hint}" if hint else ""))
    from .. import phase

    if history is None:
        from ..zoo import load_with_history

        history = load_with_history("induction-2l", progress=False)[1]
    curves = phase.curves(history)
    for key in ("repeat loss", "induction score"):
        steps, values = (torch.as_tensor(x) for x in curves[key])
        fit = phase.detect(steps, values)
        if fit is None:
            raise RuntimeError(f"check bug: no transition in the history's {key}")
        v = _step_answer(fn, steps.clone(), values.clone(), f"the training history's {key}")
        n += 1
        if not fit.start <= v <= fit.end:
            fail(f"on the training history's {key} your transition step is {fmt(v)}, outside the window "
                 f"{fit.start:.0f} – {fit.end:.0f} in which the curve does 10 % to 90 % of its change")
    return f"all {n} curves passed, the real history too."


# ---------------------------------------------------------------- 5.3 the first induction step


def toy_history(best_last, steps, layers=2, middle_high=False, level_exact=None):
    """A History-like record (steps, induction [layers, heads] per record) whose best LAST-layer score is
    `best_last`; layer 0 scores high throughout (a function that reads all layers fails), and with
    `middle_high` the middle layer of a 3-layer history rises before the last (one that reads layer 1
    fails)."""
    induction = []
    for i, b in enumerate(best_last):
        sc = torch.zeros(layers, 3)
        sc[0] = torch.tensor([0.9, 0.1, 0.0])
        if layers > 2:
            sc[1] = torch.tensor([0.0, min(1.0, 0.3 * i), 0.1]) if middle_high else 0.05
        sc[-1] = torch.tensor([b / 2, 0.0, b])
        induction.append(sc)
    return SimpleNamespace(steps=list(steps), induction=induction)


def _first(history, level):
    for s, sc in zip(history.steps, history.induction):
        if float(torch.as_tensor(sc)[-1].max()) >= level:
            return int(s)
    return None


@exercise("first_induction_step")
def first_induction_step(fn, history=None, level: float = 0.5) -> str:
    """fn(history, level=0.5) -> the first recorded step at which the best induction score of the LAST
    layer (history.induction: one [layers, heads] tensor per record, history.steps the steps) is at least
    `level`, or None if it never is.

    Cases: `history` (the live run, if given); toy histories with records from step 100 by 25 (an index is
    not a step), layer 0 scoring high throughout (reading every layer is wrong), 3 layers with the middle one
    rising first (reading layer 1 is wrong), a record exactly at the level (> instead of ≥ is wrong), another
    level, and one that never gets there (None, not an error or the last step)."""
    __tracebackhide__ = True
    if not callable(fn):
        given(fn)
        fail(f"write a function first_induction_step(history, level=0.5); got {type(fn).__name__} {fn!r:.40} — "
             f"the check runs it on several histories")
    steps = list(range(100, 100 + 25 * 8, 25))
    cases = [
        ("a toy history (2 layers; records at steps 100, 125, …)",
         toy_history([0.0, 0.1, 0.3, 0.6, 0.8, 0.9, 0.9, 0.9], steps), 0.5),
        ("a toy history with 3 layers (the middle one rises first)",
         toy_history([0.0, 0.0, 0.1, 0.2, 0.4, 0.7, 0.9, 0.9], steps, layers=3, middle_high=True), 0.5),
        ("a toy history in which one record is exactly at the level 0.5",
         toy_history([0.0, 0.2, 0.4, 0.5, 0.8, 0.9, 0.9, 0.9], steps), 0.5),
        ("a toy history, level 0.85", toy_history([0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.95], steps), 0.85),
        ("a toy history that never reaches 0.5", toy_history([0.0, 0.1, 0.2, 0.3, 0.4, 0.3, 0.4, 0.4], steps), 0.5),
    ]
    if history is not None:
        cases.insert(0, ("your training history", history, level))
    for name, h, lv in cases:
        want = _first(h, lv)
        try:
            out = call(fn, h, lv, case=name)
        except StopIteration:
            fail(f"on {name} your function raised StopIteration: the score never reaches {lv:g}, and `next(...)` "
                 f"without a default has nothing to return — use next(..., None) and return None")
        if want is None:
            if out is not None:
                fail(f"on {name} your function returned {out!r}; the best score never reaches {lv:g}, so return "
                     f"None")
            continue
        if out is None:
            fail(f"on {name} your function returned None, but the best last-layer score reaches {lv:g} at step "
                 f"{want}")
        v = as_float(out, f"your step on {name}")
        if v == want:
            continue
        hs = [int(s) for s in h.steps]
        best_any = next((s for s, sc in zip(hs, h.induction) if float(torch.as_tensor(sc).max()) >= lv), None)
        best_l1 = next((s for s, sc in zip(hs, h.induction) if float(torch.as_tensor(sc)[1].max()) >= lv), None)
        strict = next((s for s, sc in zip(hs, h.induction) if float(torch.as_tensor(sc)[-1].max()) > lv), None)
        i_want = hs.index(want)
        if v == i_want and v not in hs:
            hint = f"{fmt(v)} is the index of the record, not its step: give history.steps[index]"
        elif v == best_any:
            hint = "that is where ANY layer's best score reaches the level; an induction head is in the last layer"
        elif v == best_l1 and len(h.induction[0]) > 2:
            hint = "that is layer 1's score; in a 3-layer model the last layer is 2 — index it as [-1]"
        elif v == strict:
            hint = f"you asked for a score above {lv:g}; 'at least' means ≥ (a record is exactly at the level)"
        elif v in hs and hs.index(int(v)) > i_want:
            hint = "a later record; find the FIRST one at or above the level"
        else:
            hint = "look for the first record whose last-layer best score is ≥ the level"
        fail(f"on {name} your step is {fmt(v)}, expected {want} — {hint}")
    return f"all {len(cases)} histories passed."


# ---------------------------------------------------------------- 5.4 what can one layer do?


def _even_guess(tokens: torch.Tensor, region: slice) -> float:
    """First principles: at each position p of `region` the guess is uniform over the distinct ordinary
    tokens among tokens[1 … p]; its loss is ln(their number) when the next token is among them."""
    logs = []
    for row in tokens.tolist():
        for p in range(region.start, region.stop):
            seen = set(row[1:p + 1])
            if row[p + 1] not in seen:
                raise RuntimeError("check bug: the next token was not seen before")
            logs.append(math.log(len(seen)))
    return sum(logs) / len(logs)


def _even_cases(model):
    from ..scores import eval_regions, eval_tokens

    cases = []
    if model is not None:
        cases.append(("the held-out tokens of your model (il.scores.eval_tokens)", eval_tokens(model),
                      eval_regions(model)["repeated half"]))
    g = torch.Generator().manual_seed(17)
    # vocabulary 13, a prefix of 5 and r of 10 drawn WITH repeats: the count differs between sequences
    prefix, r = torch.randint(1, 13, (6, 5), generator=g), torch.randint(1, 13, (6, 10), generator=g)
    t = torch.cat([torch.zeros(6, 1, dtype=torch.long), prefix, r, r], 1)
    cases.append(("6 sequences BOS + 5 tokens + r + r, |r| = 10, tokens repeating (vocabulary 13)", t,
                  slice(1 + 5 + 10, 1 + 5 + 20 - 1)))
    r = torch.randint(1, 40, (3, 6), generator=g)
    t = torch.cat([torch.zeros(3, 1, dtype=torch.long), r, r], 1)
    cases.append(("3 sequences BOS + r + r, |r| = 6, no prefix", t, slice(7, 12)))
    return cases


@exercise("even_guess_loss")
def even_guess_loss(fn, model=None) -> str:
    """fn(tokens [batch, pos], region: slice) -> the mean loss, over the sequences and the positions p of
    `region` (predicting token p + 1), of a guess spread evenly over the distinct ordinary tokens seen so far
    (tokens[1 … p], BOS excluded): the mean of ln(count).

    The answer is computed here from first principles on each case: the held-out layout of `model` (every
    token distinct: ln(prefix + |r|)), a layout with repeating tokens (the count varies, so ln of the mean
    count is not the mean of ln), and one without a prefix. Tolerance 1e-3 nats: far above float32 rounding
    (1e-6) and far below the nearest wrong answer, a count off by one, ln(n + 1) − ln n ≈ 1/n ≥ 0.015 for the
    at most 64 tokens here. Rejects (named): the chance loss ln(V − 1) — the very answer the exercise refutes
    —, ln V, BOS counted, the prefix forgotten (ln |r|), positions counted instead of distinct tokens, ln of the
    mean count (Jensen), a fixed number."""
    __tracebackhide__ = True
    if not callable(fn):
        given(fn)
        fail(f"write a function even_guess_loss(tokens, region); got {type(fn).__name__} {fn!r:.40} — the check "
             f"runs it on several token layouts")
    vocab = model.cfg.d_vocab if model is not None else 64
    answers = []
    for name, tokens, region in _even_cases(model):
        want = _even_guess(tokens, region)
        t0 = tokens.clone()
        v = as_float(call(fn, tokens, region, case=name), f"your loss on {name}")
        if not torch.equal(tokens, t0):
            fail("your function changed the tokens in place")
        answers.append(v)
        if abs(v - want) <= 1e-3:
            continue
        rows = tokens.tolist()
        ps = range(region.start, region.stop)
        counts = [len(set(row[1:p + 1])) for row in rows for p in ps]
        wrong = [
            (math.log(vocab - 1), f"that is ln({vocab - 1}), the chance loss of a guess over every ordinary token — "
             "exactly what the exercise asks you to beat: spread the guess over the tokens SEEN so far"),
            (math.log(vocab), f"that is ln({vocab}), a uniform guess over the whole vocabulary"),
            (sum(math.log(c + 1) for c in counts) / len(counts), "you counted BOS (position 0) among the seen "
             "tokens; it is never a target, count from position 1"),
            (sum(math.log(len(set(row[region.start - (region.stop - region.start):p + 1]))) for row in rows
                 for p in ps) / len(counts),
             "you counted only the tokens of r; the tokens before r have been seen too"),
            (sum(math.log(p) for p in ps) / len(ps), "you counted positions, not distinct tokens: a token seen "
             "twice is one candidate (use a set, or torch.unique)"),
            (math.log(sum(counts) / len(counts)), "that is ln of the mean count; the loss is the mean of ln(count) "
             "over the positions (ln is concave: the two differ when the counts do)"),
        ]
        hint = next((h for w, h in wrong if abs(v - w) <= 1e-3), "")
        if not hint and len(set(answers)) == 1 and len(answers) > 1:
            hint = "your function returned the same number on different layouts; compute it from `tokens`"
        fail(f"on {name} your loss is {fmt(v)} nats, expected {want:.4f}" + (f" — {hint}" if hint else ""))
    if len(set(answers)) == 1:
        fail("your function returns the same number whatever the tokens; compute it from `tokens` and `region`")
    return f"all {len(answers)} layouts passed."


# ---------------------------------------------------------------- 5.5 what did the smearing learn?


@exercise("smear_prediction")
def smear_prediction(predicted, model=None) -> str:
    """predicted: σ(α) that suits an induction head with smeared keys, k_j ← σ k_j + (1 − σ) k_{j−1}. From
    the circuit: 0 (the key at B's position should be the key of the token before it, A). Accepted: 0 … 0.2.
    The trained heads of `smeared-1l` end at 0.05–0.09 (started at 0.5); the nearest wrong answers are 0.5
    (no change from the start) and 1 (the key of the token itself): 0.2 separates them with room on both
    sides. With `model`, the summary reports the measured value of its best induction head."""
    __tracebackhide__ = True
    given(predicted)
    v = as_float(predicted, "your σ(α)")
    if not 0 <= v <= 1:
        fail(f"σ(α) is a sigmoid, between 0 and 1; got {fmt(v)}")
    if v > 0.2:
        if abs(v - 0.5) <= 0.05:
            hint = ("0.5 is where every head started (α = 0): half its own key, half the previous one. Which "
                    "key should the position of B offer to a query that holds A?")
        elif v >= 0.8:
            hint = ("with σ near 1 the key at j stays the key of token j itself, so a query for A finds the "
                    "earlier A, not the B after it")
        else:
            hint = ("the key at B's position should describe the token before it (A) and nothing else: how much "
                    "of B's own key does that leave?")
        fail(f"your σ(α) = {fmt(v)} — {hint}")
    summary = f"σ(α) ≈ {fmt(v)}"
    if model is not None and getattr(model.blocks[0].attn, "smear_alpha", None) is not None:
        from ..scores import diagonal_induction_scores

        head = int(diagonal_induction_scores(model)[0].argmax())
        summary += f"; trained head 0.{head}: {torch.sigmoid(model.blocks[0].attn.smear_alpha[head]).item():.3f}"
    return summary + "."


# ---------------------------------------------------------------- 6.1 how the transition scales


def _sweep_run(setting, value, seed, mid, every, last, width, noise_seed, arrays=False):
    """One run as a sweep stores it (phase.summary): a repeat loss that falls from 4.1 to 0.05 nats
    around `mid` (None: no transition, the loss stays near chance), records every `every` steps."""
    steps = torch.arange(0, last + 1, every)
    if mid is None:
        loss = sigmoid_curve(steps, 0.0, 1.0, high=4.1, low=4.1, noise=0.01, seed=noise_seed)
        score = sigmoid_curve(steps, 0.0, 1.0, high=0.05, low=0.05, noise=0.005, seed=noise_seed + 1)
    else:
        loss = sigmoid_curve(steps, mid, width, high=4.1, low=0.05, noise=0.01, seed=noise_seed)
        score = sigmoid_curve(steps, mid, width, high=0.05, low=0.9, noise=0.005, seed=noise_seed + 1)
    first = sigmoid_curve(steps, 0.0, 1.0, high=4.15, low=4.15, noise=0.01, seed=noise_seed + 2)
    conv = (lambda t: t.numpy().round(4)) if arrays else (lambda t: [round(float(x), 4) for x in t])
    return {"setting": setting, "value": value, "seed": seed, "eval_every": every,
            "steps": steps.numpy() if arrays else [int(s) for s in steps], "repeat_loss": conv(loss),
            "first_half_loss": conv(first), "train_loss": conv(loss + 0.3), "previous_token": conv(score),
            "induction": conv(score)}


WIDTH = 20.0   # the logistic width of every synthetic sweep run: its 10-90 % window is 2 · 20 · ln 9 ≈ 88 steps


def _exponent_cases():
    """(description, runs, setting, mids, exponent by construction or None) of the synthetic sweeps; mids[i]
    is the transition midpoint of runs[i] by construction (None: no transition). Midpoints follow
    mid = c · value^p times a seed factor, placed on a record. The step grids differ between values (an
    index is not a step), the windows have the same width in steps at every value (the window's start or
    end is not the midpoint), groups are unequal (fitting per-value means is not fitting runs), and runs of
    other settings with positive values are mixed in (forgetting to filter gives a finite, wrong slope)."""
    def place(mid, every):
        return None if mid is None else float(round(mid / every) * every)

    def add(pairs, setting, value, seed, mid, every, last, arrays=False):
        pairs.append((_sweep_run(setting, value, seed, mid, every, last, WIDTH, 7 + 3 * len(pairs), arrays), mid))

    def others():
        pairs = []
        for s in (1, 2, 3):
            add(pairs, "seed", s, s, place(230 + 25 * s, 5), 5, 1500)
        for v, m in ((32, 240.0), (128, 290.0)):
            add(pairs, "vocabulary", v, 0, place(m, 25), 25, 2000)
        return pairs

    cases = []
    # learning rate: p = -0.5; the largest learning rate never forms a head
    pairs = others()
    for value, every, last, factors in ((0.002, 25, 2000, (1.04, 0.96)), (0.006, 10, 2000, (1.04, 0.96)),
                                        (0.018, 5, 1000, (1.04, 0.96)), (0.054, 25, 2000, (None, None))):
        for seed, f in enumerate(factors):
            mid = None if f is None else place(260 * (value / 0.006) ** -0.5 * f, every)
            add(pairs, "learning rate", value, seed, mid, every, last)
    cases.append(("a sweep of learning rates 0.002, 0.006, 0.018 (two seeds each, recorded every 25, 10 "
                  "and 5 steps) and 0.054 (two runs without a transition), mixed with other settings' runs",
                  pairs, "learning rate", -0.5))
    # context: p = +2, unequal groups, one run without a transition at the largest value
    pairs = others()[::-1]
    for value, factors in ((96, (1.0,)), (48, (1.0,)), (64, (1.2, 1.25, 1.3)), (128, (1.0, None))):
        for seed, f in enumerate(factors):
            mid = None if f is None else place(220 * (value / 64) ** 2 * f, 20)
            add(pairs, "context", value, seed, mid, 20, 3000)
    cases.append(("a sweep of context lengths 48, 64 (three seeds, all late), 96 and 128 (one run with a "
                  "transition, one without), mixed with other settings' runs", pairs, "context", 2.0))
    # vocabulary: p = +0.3, numpy arrays and numpy integers
    pairs = []
    for value in (16, 32, 64, 128):
        for seed, f in enumerate((0.97, 1.03)):
            add(pairs, "vocabulary", np.int64(value), seed, place(300 * (value / 64) ** 0.3 * f, 10), 10, 1500,
                arrays=True)
    for s in (0, 1):
        add(pairs, "learning rate", 0.01, s, place(215 + 10 * s, 25), 25, 2000, arrays=True)
    cases.append(("a sweep of vocabularies 16, 32, 64, 128 stored as numpy arrays and numpy integers",
                  pairs, "vocabulary", 0.3))
    # only one value forms: no slope
    pairs = others()
    for value, mid in ((0.003, None), (0.01, 225.0), (0.01, 250.0), (0.03, None)):
        add(pairs, "learning rate", value, len(pairs) % 2, mid, 25, 2000)
    cases.append(("a sweep in which only the learning rate 0.01 has runs with a transition (0.003 and 0.03 "
                  "have none)", pairs, "learning rate", None))
    return [(name, [r for r, _ in pairs], setting, [m for _, m in pairs], p) for name, pairs, setting, p in cases]


def _slope(x, y, intercept=True):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if not intercept:
        return float((x * y).sum() / (x * x).sum())
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def _exponent_wrongs(runs, setting, mids):
    """(value, diagnosis) of the known wrong exponents on a sweep whose midpoints are `mids`."""
    ln10 = math.log(10)
    pts = [(float(r["value"]), m, r) for r, m in zip(runs, mids) if r["setting"] == setting and m is not None]
    x = [math.log(v) for v, _, _ in pts]
    y = [math.log(m) for _, m, _ in pts]
    out = []
    if len(set(x)) < 2:
        return out
    p = _slope(x, y)
    every = [float(r["steps"][1]) - float(r["steps"][0]) for _, _, r in pts]
    out += [
        (_slope(y, x), "you fitted ln(value) against ln(step), the wrong way round; the exponent is the slope of "
                       "ln(transition step) against ln(value)"),
        (_slope([v for v, _, _ in pts], [m for _, m, _ in pts]), "that is a slope in steps per unit of the "
         "setting; a scaling exponent is the slope of ln(step) against ln(value), a log-log fit"),
        (p * ln10, "one axis in log10 and the other in ln: use the same logarithm on both axes"),
        (p / ln10, "one axis in log10 and the other in ln: use the same logarithm on both axes"),
        (-p, "the sign is flipped: the slope of ln(step) against ln(value) is positive when a larger value "
             "comes later"),
        (_slope(x, [math.log(m / e) for (_, m, _), e in zip(pts, every)]), "you used the index of the record, "
         "not the step: the runs here are recorded at different intervals, so an index is not a step"),
        (_slope(x, y, intercept=False), "you forgot to subtract the means: a least-squares slope is "
         "Σ(x − x̄)(y − ȳ) / Σ(x − x̄)², a line with an intercept, not one through the origin"),
    ]
    for edge, sign in (("start", -1), ("end", 1)):
        out.append((_slope(x, [math.log(m + sign * WIDTH * math.log(9)) for _, m, _ in pts]),
                    f"that is the slope of the window's {edge}; take its midpoint (`.mid`)"))
    groups = {}
    for xi, yi, (_, m, _) in zip(x, y, pts):
        groups.setdefault(xi, []).append((yi, m))
    gx = list(groups)
    for gy in ([np.mean([a for a, _ in g]) for g in groups.values()],
               [math.log(np.mean([b for _, b in g])) for g in groups.values()]):
        out.append((_slope(gx, gy), "you fitted the mean of each value's runs; the fit here takes every run "
                    "with a transition as one point (a value with one run should weigh less than one with three)"))
    last = [(float(r["value"]), m if m is not None else float(r["steps"][-1]), r)
            for r, m in zip(runs, mids) if r["setting"] == setting]
    out.append((_slope([math.log(v) for v, _, _ in last], [math.log(m) for _, m, _ in last]),
                "you gave the runs without a transition the last step; leave them out: they have no transition "
                "step to fit"))
    numeric = [(float(r["value"]), m) for r, m in zip(runs, mids) if m is not None]
    out.append((_slope([math.log(v) for v, _ in numeric], [math.log(m) for _, m in numeric]),
                f"you fitted the runs of every setting; keep only those with run['setting'] == {setting!r}"))
    return out


def _copy_runs(runs):
    import copy

    return copy.deepcopy(runs)


def _same_runs(a, b) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if set(ra) != set(rb):
            return False
        for k in ra:
            va, vb = ra[k], rb[k]
            if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                if not (isinstance(va, np.ndarray) and isinstance(vb, np.ndarray) and np.array_equal(va, vb)):
                    return False
            elif va != vb:
                return False
    return True


def _exponent_answer(fn, runs, setting, case):
    __tracebackhide__ = True
    pristine = _copy_runs(runs)
    out = call(fn, runs, setting, case=case)
    if not _same_runs(runs, pristine):
        runs[:] = pristine
        fail(f"on {case} your function changed the runs it was given (sorted, removed or edited them); the "
             f"check restored them. Build new lists instead (e.g. [r for r in runs if …])")
    if out is None:
        return None
    if isinstance(out, (tuple, list)) and len(out) == 2:
        fail(f"on {case} your function returned two numbers {out!r:.60}; return only the slope (np.polyfit "
             f"returns [slope, intercept]: take the first)")
    t = torch.as_tensor(np.asarray(out, dtype=float)) if not isinstance(out, torch.Tensor) else out.detach()
    if t.numel() == 1 and not math.isfinite(float(t.reshape(()))):
        return float("nan")
    return as_float(out, f"your exponent on {case}")


@exercise("scaling_exponent")
def scaling_exponent(fn, sweep=None) -> str:
    """fn(runs, setting) -> the exponent p of a power law step ∝ value^p for the transition: the
    least-squares slope of ln(transition midpoint) against ln(value) over the runs of `setting` that have a
    transition (il.phase.summary_transition(run).mid), each such run one point; None when fewer than two
    distinct values have one.

    Cases (_exponent_cases): four synthetic sweeps with a known exponent (−0.5 over learning rates with
    step grids that differ between values and runs without a transition; +2 over context lengths with
    unequal groups and a run without a transition; +0.3 over vocabularies stored as numpy arrays and numpy
    integers; one in which a single value forms, so None), each mixed with other settings' runs. Tolerance
    0.03: the chapter's rule finds the designed midpoints exactly (tests/test_exercises_ch6_8.py), and each
    named wrong answer is ≥ 0.06 away on the sweep built to catch it. With `sweep`, the real sweep's
    learning rate, context and vocabulary exponents are compared with the same fit made here (tolerance
    0.05). Rejects (named): the regression the
    wrong way round, no logs, log10 on one axis, the sign, the record index, no intercept, the window's
    start or end, per-value means, runs without a transition given the last step, every setting's runs, a
    number on the one-value sweep, the same number on every sweep, runs edited in place (restored)."""
    __tracebackhide__ = True
    if not callable(fn):
        given(fn)
        fail(f"write a function scaling_exponent(runs, setting); got {type(fn).__name__} {fn!r:.40} — the check "
             f"runs it on sweeps of its own")
    cases = _exponent_cases()
    got = [(_exponent_answer(fn, runs, setting, name), name, runs, setting, mids, want)
           for name, runs, setting, mids, want in cases]
    numbers = [v for v, *_ in got if v is not None and math.isfinite(v)]
    for v, name, runs, setting, mids, want in got:
        if want is None:
            if v is None:
                continue
            fail(f"on {name} your function returned {v!r:.10}; with a transition at one value only there is no "
                 f"line to fit (every point has the same ln(value)): return None")
        if v is None:
            fail(f"on {name} your function returned None, but runs at several values have a transition; fit "
                 f"the slope (expected about {want:+g})")
        if not math.isfinite(v):
            fail(f"on {name} your exponent is {v}; a log of 0 or of None? Keep only the runs of {setting!r} that "
                 f"have a transition (summary_transition returns None for the others)")
        pts = [(r, m) for r, m in zip(runs, mids) if r["setting"] == setting and m is not None]
        want = _slope([math.log(float(r["value"])) for r, _ in pts], [math.log(m) for _, m in pts])
        if abs(v - want) <= 0.03:
            continue
        hint = next((h for w, h in _exponent_wrongs(runs, setting, mids)
                     if abs(v - w) <= 0.03 and abs(w - want) > 0.06), "")
        if not hint and len(numbers) > 2 and max(numbers) - min(numbers) < 1e-9:
            hint = "your function returns the same number on every sweep; compute it from `runs`"
        fail(f"on {name} your exponent is {fmt(v)}, expected {want:+.3f} (± 0.03)" + (f" — {hint}" if hint else ""))
    summary = f"all {len(cases)} synthetic sweeps passed"
    if sweep is None:
        return summary + "."
    from .. import phase

    found = []
    for setting in ("learning rate", "context", "vocabulary"):
        runs = _copy_runs(sweep["runs"])
        pts = [(float(r["value"]), phase.summary_transition(r)) for r in sweep["runs"] if r["setting"] == setting]
        pts = [(v, tr.mid) for v, tr in pts if tr is not None]
        want = _slope([math.log(v) for v, _ in pts], [math.log(m) for _, m in pts])
        v = _exponent_answer(fn, runs, setting, f"the book's sweep, setting {setting!r}")
        if v is None or not math.isfinite(v) or abs(v - want) > 0.05:
            fail(f"on the book's sweep your {setting} exponent is {v if v is None else fmt(v)}, expected "
                 f"{want:+.2f} (± 0.05), the slope of ln(summary_transition(run).mid) against ln(value)")
        found.append(f"{setting} {v:+.2f}")
    return summary + "; the book's sweep: " + ", ".join(found) + "."
