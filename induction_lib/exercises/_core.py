"""What every check shares: the error type, the not-implemented protocol, small helpers.

A check is a function decorated with `@exercise(name)`. Its body runs the student's answer on
hand-built cases and fresh random inputs and calls `fail(...)` with a precise diagnosis at the
first thing that is wrong; it returns a short summary when everything passed. The decorator turns
that into the three outcomes a notebook shows:

* passed          -> prints "✓ name: summary", returns None;
* wrong answer    -> prints "✗ name: diagnosis", raises ExerciseError (an AssertionError), so a
                     wrong answer in the solved book fails the notebook under nbval;
* not implemented -> prints "⏳ name: not implemented yet …", raises NotImplementedError (the
                     student's own stub error, which names the exercise, when there is one).

Checks never call a reference solution: they compare with properties and fixed numbers.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import torch


class ExerciseError(AssertionError):
    """A check found a wrong answer; the message says what is wrong and, if it can, why."""


class _NotImplemented(Exception):
    """Internal: the student's answer is still the stub (carries the original error, if any)."""


def fail(message: str) -> None:
    __tracebackhide__ = True
    raise ExerciseError(message)


def call(fn: Callable, *args, case: str, **kwargs):
    """Call the student's function on one case. A NotImplementedError means "not done yet"; any
    other error is reported with the case it happened on, then re-raised unchanged (so the
    traceback points at the student's line)."""
    __tracebackhide__ = True
    if not callable(fn):
        if fn is None or fn is Ellipsis:
            raise _NotImplemented(None)
        fail(f"expected a function, got {type(fn).__name__} {fn!r}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise _NotImplemented(err) from None
    except Exception as err:
        print(f"✗ your function raised {type(err).__name__} on {case}:")
        raise


def given(value) -> None:
    """A value answer that is still a placeholder (None or ...) counts as not implemented."""
    __tracebackhide__ = True
    if value is None or value is Ellipsis:
        raise _NotImplemented(None)


def _run(name: str, body: Callable[..., str], args, kwargs) -> BaseException | None:
    """Run a check's body; print ✓, ✗ or ⏳; return the error to raise (None when it passed)."""
    try:
        summary = body(*args, **kwargs)
    except _NotImplemented as stub:
        print(f"⏳ check.{name}: not implemented yet. Replace the `raise NotImplementedError(...)` line in the "
              f"exercise cell with your code, run that cell, then run this one again.")
        err = stub.args[0]
        if err is None:
            err = NotImplementedError(f"check.{name}: the answer is still a placeholder (None or ...); "
                                      f"fill in the exercise first")
        return err.with_traceback(None)
    except ExerciseError as err:
        print(f"✗ check.{name}: {err}")
        return err.with_traceback(None)
    print(f"✓ check.{name}: {summary}")
    return None


def exercise(name: str):
    """Decorator for a check: prints ✓/✗/⏳ and raises ExerciseError or NotImplementedError."""

    def decorate(body: Callable[..., str]):
        @functools.wraps(body)
        def check(*args, **kwargs):
            __tracebackhide__ = True
            error = _run(name, body, args, kwargs)
            if error is not None:
                # The line printed above the traceback says what is wrong (✗) or what to do next (⏳).
                raise error from None

        check.exercise_name = name
        return check

    return decorate


# ---------------------------------------------------------------- conversions and comparisons


def shape_of(x) -> str:
    return "[" + ", ".join(str(s) for s in x.shape) + "]" if hasattr(x, "shape") else type(x).__name__


def as_tensor(x, what: str) -> torch.Tensor:
    """Tensor / numpy array / number / list -> float64 tensor, or fail naming `what`."""
    __tracebackhide__ = True
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(x)
        except Exception:
            fail(f"{what} should be a tensor, got {type(x).__name__} {x!r:.80}")
    if t.is_complex():
        if t.numel() and t.imag.abs().max() > 1e-6:
            fail(f"{what} is complex ({t}); it should be real (take .real only when the imaginary "
                 f"part is zero — here it is not)")
        t = t.real
    if t.dtype == torch.bool:
        t = t.long()
    return t.to(torch.float64)


def as_float(x, what: str) -> float:
    __tracebackhide__ = True
    t = as_tensor(x, what)
    if t.numel() != 1:
        fail(f"{what} should be a single number, got shape {shape_of(t)}")
    v = t.reshape(()).item()
    if not math.isfinite(v):
        fail(f"{what} is {v}, not a finite number")
    return v


def close(a: float, b: float, tol: float = 1e-4) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def fmt(x: float) -> str:
    return f"{x:.4g}"


def expect_shape(t: torch.Tensor, shape: tuple, what: str, hints: dict | None = None) -> None:
    """Fail unless t has `shape`; `hints` maps a wrong shape to an explanation."""
    __tracebackhide__ = True
    if tuple(t.shape) != tuple(shape):
        hint = (hints or {}).get(tuple(t.shape), "")
        want = ", ".join(map(str, shape))
        fail(f"{what} has shape {shape_of(t)}, expected [{want}]" + (f" — {hint}" if hint else ""))


def unchanged(before: torch.Tensor, after: Any, what: str) -> None:
    __tracebackhide__ = True
    if isinstance(after, torch.Tensor) and not torch.equal(before, after):
        fail(f"your function changed its input {what} in place; work on a copy (e.g. `x = x.clone()`) "
             f"or build a new tensor, so the caller's data stays as it was")


def per_head_score(fn: Callable, pattern: torch.Tensor, *args, case: str, heads: int, hints: dict) -> torch.Tensor:
    """Call fn(pattern, *args), which must leave the pattern unchanged and return one score per head;
    `hints` maps wrong result shapes to what the student probably did."""
    __tracebackhide__ = True
    before = pattern.clone()
    out = call(fn, pattern, *args, case=case)
    unchanged(before, pattern, "pattern")
    if out is None:
        fail(f"on {case} your function returned None; did you forget `return`?")
    t = as_tensor(out, "your score")
    expect_shape(t, (heads,), f"on {case} your score", hints)
    return t


# ---------------------------------------------------------------- models for checks (chapters 1-3)


def as_int(x, what: str) -> int:
    """An integer answer given as int, numpy / torch integer scalar, 0-d array or integral float."""
    __tracebackhide__ = True
    if isinstance(x, bool):
        fail(f"{what} should be an integer, got the boolean {x!r}")
    if hasattr(x, "item") and hasattr(x, "shape"):      # torch tensors, numpy arrays and scalars
        if math.prod(x.shape) != 1:
            fail(f"{what} should be a single integer, got shape {shape_of(x)}")
        x = x.item()
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if not isinstance(x, int) or isinstance(x, bool):
        fail(f"{what} should be an integer, got {type(x).__name__} {x!r}")
    return x


def delegates_to(fn, *library_fns) -> str | None:
    """The name of the library function `fn` is, or calls by name (a static look at its code), else None.
    Used where the point of an exercise is to build the thing the library already has."""
    names = {f.__name__ for f in library_fns}
    if any(fn is f for f in library_fns):
        return fn.__name__
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    found = names & set(code.co_names)
    # an alias (`from … import k_composition_circuit as kc`) or a closure variable holding the function
    values = [getattr(fn, "__globals__", {}).get(n) for n in code.co_names]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:          # an empty cell
            pass
    found |= {f.__name__ for f in library_fns for v in values if v is f}
    return min(found) if found else None


class intact:
    """Context manager: fail (after restoring it) if the student's code left `model` changed — its
    weights, its train/eval mode or its hooks."""

    def __init__(self, model, case: str):
        self.model, self.case = model, case

    def _hooks(self):
        return [(m, k) for m in self.model.modules() for d in (m._forward_hooks, m._forward_pre_hooks)
                for k in list(d)]

    def __enter__(self):
        self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.training = self.model.training
        self.hooks = set(id(m) * 1_000_003 + k for m, k in self._hooks())
        return self

    def __exit__(self, kind, err, tb):
        __tracebackhide__ = True
        changed = [k for k, v in self.model.state_dict().items() if not torch.equal(v, self.state[k])]
        new_hooks = [(m, k) for m, k in self._hooks() if id(m) * 1_000_003 + k not in self.hooks]
        mode = self.model.training != self.training
        if changed:
            self.model.load_state_dict(self.state)
        for m, k in new_hooks:
            m._forward_hooks.pop(k, None)
            m._forward_pre_hooks.pop(k, None)
        self.model.train(self.training)
        if kind is None and (changed or new_hooks or mode):
            what = (f"changed its weights ({', '.join(changed[:3])}{' …' if len(changed) > 3 else ''})"
                    if changed else "left a hook attached" if new_hooks else "switched its train/eval mode")
            fail(f"on {self.case} your function {what}; the check restored the model. Read the weights "
                 f"without changing them (no in-place operations on model.W_Q … ; remove hooks you add)")
        return False


def model_with_heads(base, n_layers: int, n_heads: int, heads: dict, seed: int | None = None,
                     write: bool = False):
    """A model with base's embeddings, positions, unembedding and head size but another geometry.

    heads maps (layer, head) of the new model to (layer, head) of base, whose W_Q, W_K (and W_V, W_O
    if `write`) it copies. Every other head gets zero W_Q, W_K (uniform causal attention) and zero
    W_V, W_O, or random weights of the default scale if `seed` is given. With write=False no copied
    head writes anything, so the residual stream is the token embedding at every layer and a copied
    layer-0 head attends exactly as it does in base, wherever it is placed."""
    import dataclasses

    from ..model import Transformer

    cfg = dataclasses.replace(base.cfg, n_layers=n_layers, n_heads=n_heads)
    if seed is not None:
        torch.manual_seed(seed)
    m = Transformer(cfg).eval()
    with torch.no_grad():
        m.W_E.copy_(base.W_E)
        m.W_pos.copy_(base.W_pos)
        m.W_U.copy_(base.W_U)
        for block in m.blocks:
            for name in ("W_Q", "W_K", "W_V", "W_O"):
                if seed is None:
                    getattr(block.attn, name).zero_()
        for (layer, head), (bl, bh) in heads.items():
            src, dst = base.blocks[bl].attn, m.blocks[layer].attn
            names = ("W_Q", "W_K", "W_V", "W_O") if write else ("W_Q", "W_K")
            for name in names:
                getattr(dst, name)[head].copy_(getattr(src, name)[bh])
            if not write:
                dst.W_V[head].zero_()
                dst.W_O[head].zero_()
    return m
