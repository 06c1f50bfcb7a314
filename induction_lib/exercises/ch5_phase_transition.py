"""Checks for chapter 5, the phase transition."""
from __future__ import annotations

import torch

from ._core import as_float, call, exercise, fail, fmt, given


def sigmoid_curve(steps: torch.Tensor, drop_at: float, width: float, high: float = 4.0, low: float = 1.0,
                  bump: tuple[float, float, float] | None = None, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """A loss curve that falls from `high` to `low` around `drop_at` (a logistic of the given width);
    `bump = (at, height, width)` adds a transient rise (a Gaussian), `noise` Gaussian noise."""
    t = steps.to(torch.float64)
    loss = low + (high - low) * torch.sigmoid(-(t - drop_at) / width)
    if bump is not None:
        at, height, w = bump
        loss = loss + height * torch.exp(-((t - at) / w) ** 2)
    if noise:
        g = torch.Generator().manual_seed(seed)
        loss = loss + noise * torch.randn(len(t), generator=g, dtype=torch.float64)
    return loss


@exercise("transition_window")
def transition_window(fn) -> str:
    """fn(steps [n], losses [n]) -> the training step at which the loss falls fastest (a value from
    `steps`, or between two of them). Both arguments are 1-D tensors; steps are increasing and need
    not start at 0 or be 1 apart.

    Cases: a drop preceded by a transient loss bump (Olsson et al.'s bump), logistic drops at known
    steps (on a 0, 10, 20 … grid; on a grid starting at 50 with spacing 25), a noisy drop.
    The answer must be within two grid spacings of the true drop (or the logistic's width).
    Rejects: returning the index instead of the step, the step of the lowest loss, the fastest
    RISE (a sign error: it finds the bump), the first or last step."""
    __tracebackhide__ = True
    cases = []
    s = torch.arange(0, 1500, 10)
    cases.append(("a loss bump at step 300, then a drop at step 900 (steps 0, 10, … 1490)", s,
                  sigmoid_curve(s, 900, 25, bump=(300, 0.3, 40)), 900.0))
    s = torch.arange(0, 1000, 10)
    cases.append(("a drop at step 400 (steps 0, 10, … 990)", s, sigmoid_curve(s, 400, 30), 400.0))
    s = torch.arange(50, 3050, 25)
    cases.append(("a drop at step 1800 (steps 50, 75, … 3025)", s, sigmoid_curve(s, 1800, 60), 1800.0))
    s = torch.arange(0, 2000, 20)
    cases.append(("a noisy drop at step 1200 (steps 0, 20, … 1980; noise σ = 0.01)", s,
                  sigmoid_curve(s, 1200, 50, noise=0.01, seed=3), 1200.0))
    for name, steps, losses, want in cases:
        s0, l0 = steps.clone(), losses.clone()
        v = as_float(call(fn, steps, losses, case=name), f"your step for {name}")
        if not (torch.equal(steps, s0) and torch.equal(losses, l0)):
            fail("your function changed its input tensors in place; work on copies")
        spacing = float(steps[1] - steps[0])
        tol = 2 * spacing + 1e-9
        if abs(v - want) <= tol:
            continue
        index = int((steps - want).abs().argmin())
        hint = ""
        if abs(v - index) <= 2:
            hint = f"you returned an index into the curve; return the step itself, steps[index] (here ≈ {want:g})"
        elif abs(v - float(steps[int(losses.argmin())])) <= tol or abs(v - float(steps[-1])) <= tol:
            hint = "that is where the loss is lowest (or the end of training); look for where it falls fastest"
        elif "bump" in name and abs(v - 300) <= 60:
            hint = ("that is where the loss RISES fastest (the bump): check the sign of the differences — "
                    "the steepest fall is the most negative change")
        elif abs(v - float(steps[0])) <= tol:
            hint = "that is the first step: look for the most negative change of the loss between evaluations"
        fail(f"on {name} your transition step is {fmt(v)}, expected about {want:g} (± {tol:g})"
             + (f" — {hint}" if hint else ""))
    return f"all {len(cases)} curves passed."


@exercise("first_induction_step")
def first_induction_step(step, history, level: float = 0.5) -> str:
    """step: the first recorded training step at which the best last-layer induction score of
    `history` (a `train.History`: `history.steps`, `history.induction` [layers, heads] per record) is at
    least `level`. Rejects: a step that is not a record, the index of the record instead of its step, a
    step where the score is still below `level`, and a later step than the first."""
    __tracebackhide__ = True
    given(step)
    v = as_float(step, "your step")
    steps = [int(s) for s in history.steps]
    best = [float(sc[-1].max()) for sc in history.induction]
    first = next((i for i, b in enumerate(best) if b >= level), None)
    if first is None:
        fail(f"this history never reaches an induction score of {level:g} (best {max(best):.2f})")
    if v not in steps:
        if v == int(v) and 0 <= v < len(steps) and best[int(v)] >= level:
            fail(f"{fmt(v)} is the index of a record, not its step: the records are at steps "
                 f"{steps[0]}, {steps[1]}, {steps[2]}, …; give history.steps[index]")
        fail(f"{fmt(v)} is not a recorded step; the scores are recorded at steps {steps[0]}, {steps[1]}, "
             f"{steps[2]}, … {steps[-1]}")
    i = steps.index(int(v))
    if best[i] < level:
        fail(f"at step {steps[i]} the best induction score is {best[i]:.2f}, still below {level:g}: look later")
    if i > first:
        fail(f"at step {steps[i]} the score is {best[i]:.2f}, but it was already {best[first]:.2f} at step "
             f"{steps[first]}: find the first record at or above {level:g}")
    before = f"; {best[i - 1]:.2f} at step {steps[i - 1]}" if i else ""
    return f"step {steps[i]}: best induction score {best[i]:.2f}{before}."
