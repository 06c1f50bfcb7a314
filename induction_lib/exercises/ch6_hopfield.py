"""Checks for chapters 7 and 8, modern Hopfield networks and attention as memory (Ramsauer et al. 2020)."""
from __future__ import annotations

import math

import torch

from ._core import (
    as_float,
    as_tensor,
    call,
    delegates_to,
    exercise,
    expect_shape,
    fail,
    fmt,
    given,
    shape_of,
)


def hopfield_energy(X: torch.Tensor, xi: torch.Tensor, beta: float) -> float:
    """E(ξ) = −β⁻¹ log Σᵢ exp(β xᵢᵀξ) + ½ ξᵀξ + β⁻¹ log N + ½ M², M the largest pattern norm
    (Ramsauer et al. 2020, eq. 2). X: [d, N] (patterns as columns), ξ: [d], β > 0."""
    N = X.shape[1]
    lse = torch.logsumexp(beta * (X.T @ xi), dim=0)
    M = X.norm(dim=0).max()
    return float(-lse / beta + 0.5 * xi @ xi + math.log(N) / beta + 0.5 * M ** 2)


def _update(fn, X, xi, beta, case):
    __tracebackhide__ = True
    X0, xi0 = X.clone(), xi.clone()
    out = call(fn, X, xi, beta, case=case)
    if not (torch.equal(X, X0) and torch.equal(xi, xi0)):
        fail(f"on {case} your function changed X or ξ in place; return a new tensor")
    if out is None:
        fail(f"on {case} your function returned None; did you forget `return`?")
    t = as_tensor(out, "your new state")
    d, N = X.shape
    hints = {(d, 1): "return a 1-D state [d] (e.g. .squeeze(-1) or keep ξ 1-D)",
             (1, d): "return a 1-D state [d]"}
    if N != d:
        hints[(N,)] = ("that is one number per stored pattern — the softmax weights; the new state is X @ weights, "
                       "a weighted average of the patterns")
    expect_shape(t, (d,), f"on {case} your new state", hints)
    return t


@exercise("hopfield_update")
def hopfield_update(fn) -> str:
    """fn(X [d, N], xi [d], beta) -> X softmax(β Xᵀ ξ), the modern Hopfield update: the stored
    patterns are the columns of X, the new state a softmax-weighted average of them.

    Cases: fixed numbers (d = 3, N = 2, β = 1 and β = 2), a square X that is not symmetric, β = 0
    (the mean of the patterns), β = 50 (the nearest pattern), a random float32 X [7, 11], the energy never
    increases over three updates (computed here from Ramsauer et al.'s formula). Rejects: forgetting β, β⁻¹
    instead of β, X ξ instead of Xᵀ ξ, a softmax over a size-1 axis (every weight 1: the sum of the
    patterns), returning the weights instead of the state, calling the library (hf.update, hf.weights)."""
    __tracebackhide__ = True
    from .. import hopfield as hf

    lib = delegates_to(fn, hf.update, hf.weights, hf.retrieve)
    if lib:
        fail(f"your function calls hf.{lib}, the library's update; write it yourself: the overlaps Xᵀξ, a "
             f"softmax, and the weighted sum of the columns of X")
    d64 = torch.float64
    Xs = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [3.0, 0.0, 1.0]], dtype=d64)
    xs = torch.tensor([1.0, -1.0, 0.5], dtype=d64)
    got = _update(fn, Xs, xs, 0.7, "a square, non-symmetric X (d = N = 3), β = 0.7")
    w = torch.softmax(0.7 * (Xs.T @ xs), 0)
    if not torch.allclose(got, Xs @ w, atol=1e-6):
        wrong = [
            (Xs @ torch.softmax(0.7 * (Xs @ xs), 0), "you used X ξ; the dot products of ξ with the stored patterns "
                                                     "(the columns of X) are Xᵀ ξ"),
            (Xs.T @ w, "the new state is X @ weights (a combination of the columns), not Xᵀ @ weights"),
            (w, "that is the softmax weights; the new state is X @ weights, a weighted average of the patterns"),
            (Xs.sum(1), "every pattern got weight 1: the softmax ran over an axis of size 1; take it over the N "
                        "stored patterns"),
            (Xs @ torch.softmax(Xs.T @ xs, 0), "multiply the dot products by β before the softmax"),
            (Xs @ torch.softmax((Xs.T @ xs) / 0.7, 0), "you divided by β; the update is softmax(β Xᵀξ)"),
        ]
        hint = next((h for bad, h in wrong if torch.allclose(got, bad, atol=1e-6)), "")
        fail(f"on a square, non-symmetric X (d = N = 3, β = 0.7) your new state is "
             f"{[round(x, 4) for x in got.tolist()]}, expected {[round(x, 4) for x in (Xs @ w).tolist()]}"
             + (f" — {hint}" if hint else ""))

    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=d64)
    xi = torch.tensor([1.0, 0.0, 0.0], dtype=d64)
    for beta in (1.0, 2.0):
        case = f"X = [e0, e1] (d = 3, N = 2), ξ = e0, β = {beta:g}"
        got = _update(fn, X, xi, beta, case)
        p = math.exp(beta) / (1 + math.exp(beta))
        want = torch.tensor([p, 1 - p, 0.0], dtype=d64)
        if not torch.allclose(got, want, atol=1e-6):
            hint = ""
            q = math.exp(1.0) / (1 + math.exp(1.0))
            r = math.exp(1 / beta) / (1 + math.exp(1 / beta))
            if beta == 2.0 and torch.allclose(got, torch.tensor([q, 1 - q, 0.0], dtype=d64), atol=1e-6):
                hint = "that is the β = 1 answer: multiply the dot products by β before the softmax"
            elif beta == 2.0 and torch.allclose(got, torch.tensor([r, 1 - r, 0.0], dtype=d64), atol=1e-6):
                hint = "you divided by β; the update is softmax(β Xᵀξ) (β is an inverse temperature)"
            elif torch.allclose(got, X.sum(1), atol=1e-6):
                hint = ("every pattern got weight 1: the softmax ran over an axis of size 1; take it over the N "
                        "stored patterns")
            fail(f"on {case} your new state is {[round(x, 4) for x in got.tolist()]}, expected "
                 f"{[round(x, 4) for x in want.tolist()]} (weights softmax(β·[1, 0]) on the two patterns)"
                 + (f" — {hint}" if hint else ""))

    g = torch.Generator().manual_seed(6)
    X = torch.randn(4, 6, generator=g, dtype=d64)
    xi = torch.randn(4, generator=g, dtype=d64)
    got = _update(fn, X, xi, 0.0, "random X [4, 6] with β = 0")
    if not torch.allclose(got, X.mean(1), atol=1e-6):
        fail(f"with β = 0 every pattern gets the same weight 1/N, so the new state is the mean of the patterns "
             f"{[round(x, 4) for x in X.mean(1).tolist()]}; yours is {[round(x, 4) for x in got.tolist()]}")

    X = torch.sign(torch.randn(16, 5, generator=g, dtype=d64)) / 4  # ±1/4: unit-norm columns
    xi = X[:, 3] + 0.05 * torch.randn(16, generator=g, dtype=d64)
    got = _update(fn, X, xi, 50.0, "β = 50 and ξ a noisy copy of pattern 3 (d = 16, N = 5)")
    if not torch.allclose(got, X[:, 3], atol=1e-3):
        fail("with a large β (50) one update should retrieve the stored pattern nearest to ξ (pattern 3); your "
             f"state is {(got - X[:, 3]).norm().item():.3g} away from it")

    X32 = torch.randn(7, 11, generator=g)
    xi32 = torch.randn(7, generator=g)
    got = _update(fn, X32, xi32, 1.5, "random float32 X [7, 11], β = 1.5")
    want = X32.double() @ torch.softmax(1.5 * (X32.double().T @ xi32.double()), 0)
    if not torch.allclose(got, want, atol=1e-5):
        fail(f"on random float32 X [7, 11] (β = 1.5) your new state is {(got - want).norm().item():.3g} away from "
             f"X softmax(β Xᵀξ)")

    X = torch.randn(5, 7, generator=g, dtype=d64)
    xi = torch.randn(5, generator=g, dtype=d64)
    energies = [hopfield_energy(X, xi, 2.0)]
    for step in range(3):
        xi = _update(fn, X, xi, 2.0, f"update {step + 1} of random X [5, 7], β = 2")
        energies.append(hopfield_energy(X, xi, 2.0))
    if any(b > a + 1e-9 for a, b in zip(energies, energies[1:])):
        fail(f"the energy should never increase under the update, but along your updates it went "
             f"{' → '.join(f'{e:.4f}' for e in energies)}")
    return f"all 8 tests passed (energy {energies[0]:.2f} → {energies[-1]:.2f})."


# ---------------------------------------------------------------- 6.2 storage capacity


def _fields(X: torch.Tensor, keep_diagonal: bool = False) -> torch.Tensor:
    """The field W X of the classical network with Hebbian weights W = X Xᵀ / d (zero diagonal unless
    `keep_diagonal`), one column per stored pattern."""
    d = X.shape[0]
    W = X @ X.T / d
    if not keep_diagonal:
        W = W - torch.diag(torch.diag(W))
    return W @ X


def _stable_columns(X: torch.Tensor, keep_diagonal: bool = False) -> torch.Tensor:
    """[N] bool: which stored patterns are fixed points of x ← sign(W x)."""
    return (torch.sign(_fields(X, keep_diagonal)) == X).all(0)


def _hadamard(d: int) -> torch.Tensor:
    H = torch.ones(1, 1, dtype=torch.float64)
    while H.shape[0] < d:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H


def _find(d, n, want, seed):
    """A random ±1 set [d, n] with no zero field for which want(stable, stable_with_diagonal) holds."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(20000):
        X = torch.where(torch.rand(d, n, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
        if (_fields(X) == 0).any():
            continue
        if want(_stable_columns(X), _stable_columns(X, keep_diagonal=True)):
            return X
    raise RuntimeError(f"check bug: no pattern set found for d={d}, n={n}")


def _is_stored_cases():
    """(description, X [d, N], expected, the mistake it is built to catch) for is_stored."""
    H = _hadamard(16)
    return [
        ("5 orthogonal ±1 patterns in d = 16 (columns of a Hadamard matrix: no crosstalk at all)",
         H[:, [1, 3, 6, 10, 13]].clone(), True, None),
        ("3 random patterns in d = 32, all fixed points", _find(32, 3, lambda s, sd: bool(s.all()), 1), True, None),
        ("6 random patterns in d = 16 whose first pattern is a fixed point but another is not",
         _find(16, 6, lambda s, sd: bool(s[0]) and not bool(s.all()) and not bool(sd.all()), 2), False, "first"),
        ("5 random patterns in d = 16 that are all fixed points only if W keeps its diagonal",
         _find(16, 5, lambda s, sd: bool(sd.all()) and not bool(s.all()) and not bool(s[0]), 3), False, "diagonal"),
        ("9 random patterns in d = 16, a few of them fixed points (not the first)",
         _find(16, 9, lambda s, sd: bool(s.any()) and not bool(s[0]) and not bool(sd.all()), 4), False, "any"),
    ]


class _Sampler:
    """sample(n) -> [d, n] ±1 patterns chosen by the check: stable sets (orthogonal Hadamard columns with
    random sign flips of the rows, which keep them orthogonal) while n ≤ `top`, except the draws listed in
    `bad` ({n: [call numbers]}), and sets with an unstable pattern above `top`. It counts its calls per n, so
    the answer does not depend on the order of the student's loops."""

    def __init__(self, d, top, bad=None, seed=0):
        self.d, self.top, self.bad, self.calls = d, top, bad or {}, {}
        self.g = torch.Generator().manual_seed(seed)
        self.H = _hadamard(d)
        self.unstable = {}

    def _unstable(self, n):
        if n not in self.unstable:
            if n == 1:
                raise RuntimeError("check bug: one pattern is always stable")
            self.unstable[n] = _find(self.d, n, lambda s, sd: not bool(s.all()), 100 + n)
        return self.unstable[n].clone()

    def __call__(self, n):
        n = int(n)
        k = self.calls[n] = self.calls.get(n, 0) + 1
        if n > self.top or k in self.bad.get(n, ()):
            X = self._unstable(n)
        else:
            if n > self.d:
                raise RuntimeError("check bug")
            cols = torch.randperm(self.d, generator=self.g)[:n]
            flips = torch.where(torch.rand(self.d, 1, generator=self.g) < 0.5, -1.0, 1.0).double()
            X = self.H[:, cols] * flips
        return X.float()


def _as_bool(out, what):
    __tracebackhide__ = True
    if hasattr(out, "shape") and hasattr(out, "item"):
        if math.prod(out.shape) != 1:
            fail(f"{what} should be one True/False for the whole set (every pattern a fixed point?), got shape "
                 f"{shape_of(out)} — reduce with .all()")
        out = out.item()
    if not isinstance(out, (bool, int)) or isinstance(out, int) and out not in (0, 1):
        fail(f"{what} should be True or False, got {type(out).__name__} {out!r:.40}")
    return bool(out)


@exercise("capacity")
def capacity(is_stored, classical_capacity=None) -> str:
    """is_stored(X [d, N] ±1) -> True if EVERY column of X is a fixed point of the classical network,
    x = sign(W x), with Hebbian weights W = X Xᵀ / d and a zero diagonal. classical_capacity(sample,
    trials=3) -> the largest N such that N' patterns are stored (is_stored) in each of `trials` draws
    sample(N'), for every N' = 1 … N; sample(n) returns a fresh [d, n] ±1 tensor at each call.

    Both are run on the check's own patterns (no typed-in number can pass): is_stored on five sets (see
    _is_stored_cases: orthogonal patterns, a set whose first pattern only is stable, a set stable only with
    the diagonal kept, a mostly unstable set), classical_capacity with samplers whose answer is known by
    construction (_Sampler: 5; and 3, with one bad draw out of three at N = 4). Rejects: testing only the
    first pattern, "any pattern" instead of every pattern, keeping the diagonal, off-by-one (the first N that
    fails), "any trial" instead of every trial, the first trial only, ignoring `sample`."""
    __tracebackhide__ = True
    if not callable(is_stored):
        given(is_stored)
        fail(f"is_stored should be a function is_stored(X) -> bool; got {type(is_stored).__name__} — the check "
             f"runs it on its own patterns (a number cannot be checked)")
    hints = {
        "first": "the first pattern is a fixed point, but not every pattern is: compare every column of sign(W X) "
                 "with X and require all of them (.all() over the whole tensor — not only the first column, and "
                 "not .any())",
        "diagonal": "with the diagonal kept, W_ii = N/d adds N/d · x_i to every field and makes patterns look "
                    "stable; Hebb's rule here has W_ii = 0 (fill_diagonal_(0), or hf.hebbian_weights)",
        "any": "some patterns are fixed points, but not all; 'stored' means EVERY pattern (.all(), not .any())",
        None: "every pattern here is a fixed point; compare sign(W X) with X entry by entry (W is [d, d], X [d, N]: "
              "one column per pattern; a field of exactly 0 gives sign 0)",
    }
    for name, X, want, mistake in _is_stored_cases():
        X0 = X.clone()
        got = _as_bool(call(is_stored, X.float(), case=name), f"on {name} your is_stored")
        if not torch.equal(X, X0):
            fail(f"on {name} your is_stored changed X in place")
        if got != want:
            fail(f"on {name} your is_stored returned {got}, expected {want} — {hints[mistake]}")
    if classical_capacity is None:
        return "is_stored passed on all 5 sets."
    if not callable(classical_capacity):
        given(classical_capacity)
        fail(f"classical_capacity should be a function classical_capacity(sample, trials=3); got "
             f"{type(classical_capacity).__name__} {classical_capacity!r:.40}")
    cases = [("a sampler whose sets are stored up to N = 5 (d = 16)", _Sampler(16, 5, seed=1), 5),
             ("a sampler whose sets are stored up to N = 3, and at N = 4 in 2 of 3 draws (d = 16)",
              _Sampler(16, 4, bad={4: (2,)}, seed=2), 3),
             ("a sampler whose sets are stored up to N = 7, and at N = 8 only in the first draw (d = 32)",
              _Sampler(32, 8, bad={8: (2, 3)}, seed=3), 7)]
    for name, sample, want in cases:
        out = call(classical_capacity, sample, 3, case=name)
        if out is None:
            fail(f"on {name} your classical_capacity returned None; return the number of patterns")
        got = as_float(out, f"your capacity on {name}")
        if got == want:
            continue
        if not sample.calls:
            hint = "your function never called `sample`: draw the patterns with sample(n)"
        elif got > want and sample.bad:   # an off-by-one would have failed the first sampler already
            hint = (f"at N = {want + 1} one of the 3 draws has a pattern that is not stored; the capacity needs "
                    f"EVERY draw (trial) to succeed — did you stop only when all trials fail, or test only the "
                    f"first trial?")
        elif got == want + 1:
            hint = (f"{want + 1} is the first N that is NOT stored in every draw; the capacity is the last N that "
                    f"is (one less)")
        elif got == want - 1:
            hint = f"{want} patterns are stored in every draw; you stopped one too early"
        else:
            hint = ""
        fail(f"on {name} your capacity is {fmt(got)}, expected {want}" + (f" — {hint}" if hint else ""))
    return "is_stored on 5 sets and classical_capacity on 3 samplers passed."


# ---------------------------------------------------------------- 6.3, 6.4 predict the split


def _tolerance(right, wrongs):
    """A tolerance for a prediction computed from first principles: a quarter of the smallest gap between the
    right value and the known wrong ones (in the max-abs distance), capped at 1e-3 and at least 1e-5 (float32
    rounding of these means is ~1e-7). A "wrong" answer that, on these data, coincides with the right one
    (within 4e-5) is not wrong here and does not count. Returns (tolerance, the wrong answers that count)."""
    wrongs = [(w, h) for w, h in wrongs if float((right - w).abs().max()) >= 4e-5]
    gap = min((float((right - w).abs().max()) for w, _ in wrongs), default=4e-3)
    return max(1e-5, min(1e-3, gap / 4)), wrongs


def _share_wrongs(score_b, score_c, extra=()):
    """(wrong [T] share function output or mean, diagnosis) for the two-memory share."""
    d = score_b - score_c
    return [
        (torch.sigmoid(d.mean()), "that is σ of the mean score difference; the prediction is the mean over the "
         "sequences of σ(s_B − s_C) — the mean goes outside the sigmoid, not inside (σ is not linear: Jensen)"),
        ((d > 0).double().mean(), "that is the share of sequences in which B has the higher score: a hard argmax. "
         "A Hopfield update weighs both memories, softly: σ(s_B − s_C)"),
        (torch.sigmoid(-d).mean(), "that is the weight on C; the share of B is σ(s_B − s_C)"),
        *extra,
    ]


@exercise("hopfield_split")
def hopfield_split(fn, predicted, split) -> str:
    """fn(score_b [T], score_c [T]) -> [T], the weight on B of a Hopfield update restricted to the two
    memories, softmax([s_B, s_C])[0] = σ(s_B − s_C); predicted: the mean of it over the sequences of `split`
    (split.score_b, split.score_c). The function is run on the check's own scores (float64 and float32,
    differences up to ±20, a tie); the prediction is compared with the mean of σ(s_B − s_C) computed here,
    with the tolerance of _tolerance (a quarter of the gap to the nearest wrong answer, at most 1e-3).
    Rejects: the mean inside the sigmoid (Jensen), a hard argmax, B and C swapped, a softmax over the
    sequences, the attention of B alone, the ratio of the mean attentions, the model's measured split."""
    __tracebackhide__ = True
    if not callable(fn):
        given(fn)
        fail(f"hopfield_share should be a function of (score_b, score_c); got {type(fn).__name__}")
    g = torch.Generator().manual_seed(23)
    cases = [("7 random score pairs (float64)", torch.randn(7, generator=g, dtype=torch.float64) * 3,
              torch.randn(7, generator=g, dtype=torch.float64) * 3),
             ("5 score pairs in float32 with differences up to ±20 and a tie",
              torch.tensor([10.0, -5.0, 3.0, 0.5, 2.0]), torch.tensor([-10.0, 5.0, 3.0, 0.0, 1.0]))]
    for name, sb, sc in cases:
        b0, c0 = sb.clone(), sc.clone()
        out = call(fn, sb, sc, case=name)
        if not (torch.equal(sb, b0) and torch.equal(sc, c0)):
            fail(f"on {name} your function changed the scores in place")
        if out is None:
            fail(f"on {name} your function returned None; did you forget `return`?")
        got = as_tensor(out, f"on {name} your weights")
        expect_shape(got, tuple(sb.shape), f"on {name} your weights",
                     {(): "that is one number; return one weight per sequence (no mean inside the function)"})
        want = torch.sigmoid(sb.double() - sc.double())
        if torch.allclose(got, want, atol=1e-5):
            continue
        d = sb.double() - sc.double()
        wrong = [((d > 0).double(), "a hard argmax (1 where B's score is higher): a Hopfield update weighs both "
                  "memories softly, softmax([s_B, s_C])"),
                 (torch.sigmoid(-d), "that is the weight on C; B's weight is e^{s_B} / (e^{s_B} + e^{s_C})"),
                 (torch.softmax(sb.double(), 0), "a softmax over the sequences (axis 0 of [T]); the softmax runs "
                  "over the two memories of each sequence"),
                 (torch.sigmoid(sb.double()), "σ(s_B) ignores C; the two memories compete: σ(s_B − s_C)"),
                 (torch.sigmoid(d / math.sqrt(32)), "the scores already include 1/√d_head; do not scale again")]
        hint = next((h for w, h in wrong if torch.allclose(got, w, atol=1e-5)), "")
        fail(f"on {name} your weights {[round(x, 4) for x in got.tolist()]} should be "
             f"{[round(x, 4) for x in want.tolist()]}" + (f" — {hint}" if hint else ""))
    given(predicted)
    p = as_float(predicted, "your predicted share")
    sb, sc = split.score_b.double(), split.score_c.double()
    right = torch.sigmoid(sb - sc).mean()
    extra = []
    for attr, hint in (("prob_share_b", "that is the model's MEASURED split; predict it from the scores alone"),):
        if hasattr(split, attr):
            extra.append((getattr(split, attr).double().mean(), hint))
    if hasattr(split, "attn_b") and hasattr(split, "attn_c"):
        ab, ac = split.attn_b.double(), split.attn_c.double()
        extra += [(ab.mean() / (ab.mean() + ac.mean()), "that is the ratio of the MEAN attentions; renormalise per "
                   "sequence, then average (σ(s_B − s_C) per sequence)"),
                  (ab.mean(), "that is the head's attention on B, not renormalised over the two memories")]
    tol, wrongs = _tolerance(right, _share_wrongs(sb, sc, extra))
    if abs(p - right.item()) <= tol:
        return f"predicted mean share of B {p:.3f} (± {tol:.1g})."
    hint = next((h for w, h in wrongs if abs(p - float(w)) <= tol), "")
    fail(f"your predicted share {p:.4f} is not the mean Hopfield weight on B ({right.item():.4f} ± {tol:.1g})"
         + (f" — {hint}" if hint else " — average σ(s_B − s_C) over the sequences"))


@exercise("three_way_split")
def three_way_split(predicted, three) -> str:
    """predicted: [k] the mean over the sequences of the Hopfield weights softmax(three.scores[t]) of the k
    memories (three.scores: [T, k] attention scores). Compared with that mean, computed here, with the
    tolerance of _tolerance (a quarter of the gap to the nearest wrong answer, at most 1e-3 per entry).
    Rejects: the softmax of the mean scores (Jensen), a hard argmax, a softmax over the sequences, the raw
    mean attention, the ratio of the mean attentions, the model's measured shares, the wrong shape."""
    __tracebackhide__ = True
    given(predicted)
    s = three.scores.double()
    T, k = s.shape
    p = as_tensor(predicted, "your prediction").flatten()
    if p.numel() != k:
        fail(f"give one share per memory ({k} numbers, mean over the {T} sequences); got {p.numel()}"
             + (" — average over the sequences (axis 0)" if p.numel() == T * k or p.numel() == T else ""))
    right = s.softmax(-1).mean(0)
    wrongs = [
        (s.mean(0).softmax(-1), "that is the softmax of the MEAN scores; take the softmax per sequence, then "
         "average (the mean goes outside the softmax: Jensen)"),
        (torch.nn.functional.one_hot(s.argmax(-1), k).double().mean(0), "that is a hard argmax (the share of "
         "sequences in which each memory scores highest); a Hopfield update weighs all the memories softly"),
        (s.softmax(0).mean(0), "that is a softmax over the sequences (axis 0); the softmax runs over the memories "
         "of each sequence (axis -1)"),
    ]
    if hasattr(three, "attn"):
        a = three.attn.double()
        wrongs += [(a.mean(0), "that is the head's raw attention on each memory; renormalise it over the memories"),
                   (a.mean(0) / a.mean(0).sum(), "that is the ratio of the mean attentions; renormalise per "
                    "sequence, then average")]
    if hasattr(three, "prob_share"):
        wrongs.append((three.prob_share.double().mean(0), "that is the model's MEASURED shares; predict them from "
                       "the scores alone"))
    tol, wrongs = _tolerance(right, wrongs)
    err = (p - right).abs().max().item()
    if err <= tol:
        return f"predicted shares {[round(x, 3) for x in p.tolist()]} (± {tol:.1g})."
    hint = next((h for w, h in wrongs if (p - w).abs().max().item() <= tol), "")
    fail(f"your prediction {[round(x, 4) for x in p.tolist()]} is not the mean Hopfield weights "
         f"{[round(x, 4) for x in right.tolist()]} (± {tol:.1g} per entry)"
         + (f" — {hint}" if hint else " — softmax the scores of each sequence over the memories, then average"))


@exercise("split_prediction")
def split_prediction(pred, measured, rtol: float = 0.1, atol: float = 0.02) -> str:
    """pred and measured: a number (or a tensor of numbers) you predicted on paper and the same
    quantity measured in the model or the network (e.g. how the attention of a query splits
    between two keys, or the β at which a metastable state splits). Passes when every entry agrees
    within atol + rtol·|measured|."""
    __tracebackhide__ = True
    given(pred)
    given(measured)
    p, m = as_tensor(pred, "your prediction"), as_tensor(measured, "the measurement")
    if p.shape != m.shape:
        if p.numel() == m.numel():
            p = p.reshape(m.shape)
        else:
            fail(f"your prediction has shape {shape_of(p)} but the measurement {shape_of(m)}; predict every entry")
    if not torch.isfinite(p).all():
        fail(f"your prediction contains {p[~torch.isfinite(p)][0].item()}; it must be finite")
    err = (p - m).abs()
    allowed = atol + rtol * m.abs()
    if (err > allowed).any():
        i = int((err - allowed).argmax())
        pf, mf = p.flatten()[i].item(), m.flatten()[i].item()
        where = f" (entry {i})" if p.numel() > 1 else ""
        fail(f"your prediction{where} is {fmt(pf)} but the measurement is {fmt(mf)}: off by {fmt(abs(pf - mf))}, "
             f"more than the tolerance {fmt(allowed.flatten()[i].item())} "
             f"(atol {atol:g} + rtol {rtol:g} × |measured|)")
    worst = err.max().item()
    return f"agrees with the measurement (off by {worst:.3g})."


# ---------------------------------------------------------------- 8.3 the energy of every query


def _causal_reference(q: torch.Tensor, k: torch.Tensor, beta: float) -> torch.Tensor:
    """First principles, one query at a time: E_i = hopfield_energy(X = K[:i+1]ᵀ, ξ = q_i, β), [b, pos]."""
    q, k = q.double(), k.double()
    b, n, _ = q.shape
    return torch.tensor([[hopfield_energy(k[s, : i + 1].T, q[s, i], beta) for i in range(n)] for s in range(b)],
                        dtype=torch.float64)


def _energy_variant(q, k, beta, mask="causal", n_keys="causal", m_from="causal", lse_form="right",
                    halves=(0.5, 0.5), log_n=True, transposed=False, extra_scale=1.0):
    """The energy with one convention changed (for naming a wrong answer); the defaults give the right one."""
    q, k = q.double(), k.double()
    pos = q.shape[-2]
    s = q @ k.transpose(-1, -2) * extra_scale
    if transposed:
        s = s.transpose(-1, -2)
    ones = torch.ones(pos, pos, dtype=torch.bool)
    allowed = {"causal": ones.tril(), "none": ones, "future": ones.triu()}[mask]
    if lse_form == "right":
        lse = (beta * s).masked_fill(~allowed, float("-inf")).logsumexp(-1) / beta
    elif lse_form == "no 1/beta":
        lse = (beta * s).masked_fill(~allowed, float("-inf")).logsumexp(-1)
    elif lse_form == "plus":
        lse = -(beta * s).masked_fill(~allowed, float("-inf")).logsumexp(-1) / beta
    else:  # "beta outside": β log Σ exp(x·ξ / β)
        lse = (s / beta).masked_fill(~allowed, float("-inf")).logsumexp(-1) * beta
    n = torch.arange(1, pos + 1, dtype=torch.float64) if n_keys == "causal" else torch.full((pos,), float(pos),
                                                                                            dtype=torch.float64)
    norms = k.norm(dim=-1)
    m = {"causal": norms.cummax(-1).values, "all": norms.max(-1, keepdim=True).values.expand_as(norms),
         "query": q.norm(dim=-1)}[m_from]
    hq, hm = halves
    e = -lse + hq * (q * q).sum(-1) + hm * m ** 2
    return e + n.log() / beta if log_n else e


def _energy_wrongs(q, k, beta):
    """(energies [b, pos], diagnosis) of the known wrong conventions."""
    v = lambda **kw: _energy_variant(q, k, beta, **kw)  # noqa: E731
    return [
        (v(mask="none", n_keys="all", m_from="all"), "no causal mask: the query at position i may only see the "
         "keys 0 … i (mask the scores with a lower-triangular mask before the log-sum-exp; N and M come from "
         "those keys too)"),
        (v(mask="none"), "no causal mask in the log-sum-exp: the query at position i sees only the keys 0 … i"),
        (v(mask="future"), "your mask keeps the keys j ≥ i (upper triangle); a causal query sees j ≤ i (tril)"),
        (v(transposed=True), "your score matrix is transposed: rows must be queries, q kᵀ (entry [i, j] = "
         "q_i · k_j), before the causal mask"),
        (v(n_keys="all"), "N is the number of stored patterns the query sees, i + 1 at position i, not the "
         "number of positions"),
        (v(m_from="all"), "M is the largest norm among the keys this query sees (0 … i: a running maximum, e.g. "
         "cummax), not among all the keys of the sequence"),
        (v(m_from="query"), "M is the largest norm of the stored patterns (the keys), not of the query"),
        (v(lse_form="no 1/beta"), "the log-sum-exp term is β⁻¹ log Σ exp(β x_jᵀξ): you left out the β⁻¹"),
        (v(lse_form="beta outside"), "β multiplies the scores inside the exponential and β⁻¹ the log, not the "
         "other way round"),
        (v(lse_form="plus"), "the log-sum-exp enters with a minus sign: E = −β⁻¹ log Σ exp(β x_jᵀξ) + …"),
        (v(halves=(0.0, 0.5)), "the ½ ξᵀξ term is missing"),
        (v(halves=(0.5, 0.0)), "the ½ M² term is missing"),
        (v(log_n=False), "the β⁻¹ log N term is missing (N = i + 1 keys at position i)"),
        (v(halves=(0.5, 0.0), log_n=False), "the constants β⁻¹ log N + ½ M² are missing; they do not change "
         "the descent of one query, but they are part of E (they make E ≥ 0) and they differ between positions"),
        (v(halves=(1.0, 0.5)), "ξᵀξ needs its factor ½"),
        (v(halves=(0.5, 1.0)), "M² needs its factor ½"),
        (v(extra_scale=1 / math.sqrt(q.shape[-1])), "β is given: multiply the scores q·k by β only (do not "
         "divide by √d again)"),
    ]


def _holds(fn, *library_fns) -> str | None:
    """The name of the library function that `fn` is, or reaches through a global or closure variable of
    its code or of a function or comprehension nested in it (by identity, not by name: a student's own
    helper called `energy` is not the library's). Calls through the module (`hf.energy(...)`) are seen by
    _watch_library while the function runs."""
    if any(fn is f for f in library_fns):
        return fn.__name__
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    names, stack = set(), [code]
    while stack:
        c = stack.pop()
        names |= set(c.co_names)
        stack += [k for k in c.co_consts if hasattr(k, "co_names")]
    scope = getattr(fn, "__globals__", {})
    values = [scope.get(n) for n in names]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:          # an empty cell
            pass
    found = {f.__name__ for f in library_fns for v in values if v is f}
    return min(found) if found else None


class _watch_library:
    """Context manager: record calls of hf.energy and hf.lse made through the module while the student's
    function runs (`hf.energy(...)`, which _holds cannot tell from a helper of the same name); restores
    both on exit."""

    def __enter__(self):
        from .. import hopfield as hf

        self.hf, self.used, self.saved = hf, [], {name: getattr(hf, name) for name in ("energy", "lse")}
        for name, original in self.saved.items():
            def spy(*args, _name=name, _original=original, **kwargs):
                self.used.append(_name)
                return _original(*args, **kwargs)
            setattr(hf, name, spy)
        return self

    def __exit__(self, *exc):
        for name, original in self.saved.items():
            setattr(self.hf, name, original)
        return False


def _energy_answer(fn, q, k, beta, case):
    __tracebackhide__ = True
    q0, k0 = q.clone(), k.clone()
    with _watch_library() as watch:
        out = call(fn, q, k, beta, case=case)
    if watch.used:
        fail(f"your function called hf.{watch.used[0]}, the library's energy; write the formula yourself: a "
             f"causal log-sum-exp of the scores, ½ qᵀq, β⁻¹ log N and ½ M², with N and M from the keys each "
             f"query sees")
    if not (torch.equal(q, q0) and torch.equal(k, k0)):
        fail(f"on {case} your function changed q or k in place; build new tensors")
    if out is None:
        fail(f"on {case} your function returned None; did you forget `return`?")
    t = as_tensor(out, f"on {case} your result")
    b, n, _ = q.shape
    hints = {(b, n, n): "that is one number per (query, key) pair; the energy of a query sums over its keys "
                        "(a log-sum-exp over the last axis)",
             (n,): "that is one energy per position; keep one per sequence too (no mean over the batch)",
             (b,): "that is one energy per sequence; return one per position",
             (n, b): "the axes are swapped: [batch, pos]"}
    expect_shape(t, (b, n), f"on {case} your result", hints)
    return t


@exercise("causal_energy")
def causal_energy(fn, model=None) -> str:
    """fn(q [b, pos, d], k [b, pos, d], beta) -> [b, pos]: Ramsauer et al.'s energy of each query as the
    state of a Hopfield network whose stored patterns are the keys it may see, k_0 … k_i:
    E_i = −β⁻¹ log Σ_{j≤i} exp(β k_j·q_i) + ½ q_i·q_i + β⁻¹ log(i + 1) + ½ max_{j≤i} |k_j|².

    Compared entry by entry with the formula evaluated one query at a time (hopfield_energy, float64) on:
    hand-built numbers (β = 2); random float64 keys whose norms grow along the sequence (so the largest
    norm seen so far is not the largest of all; β = 0.7); random float32 (β = 0.5); float32 with scores
    up to ~200 (β = 1.5: exp overflows in float32, the log-sum-exp must not); with `model`, every head of
    it on held-out sequences and of an untrained 2-layer × 3-head model with d_head = 5 (β = 1/√d_head).
    Tolerance 3e-5 · (1 + |terms|), float32 rounding; every named wrong answer is far outside it. On the
    models the check also applies one attention step (computed here) and reports the smallest fall of the
    student's energy. Rejects (named): no causal mask, the upper triangle, transposed scores, N = number
    of positions, M over all keys or from the query, the β⁻¹ left out, β outside the exponential, the
    sign of the log-sum-exp, each term missing, the constants missing, ½ forgotten, 1/√d applied again,
    an overflowing exp, position 0 off (N = i, or the own key masked), the wrong shape, inputs changed in
    place, calling hf.energy / hf.lse."""
    __tracebackhide__ = True
    from .. import hopfield as hf

    lib = _holds(fn, hf.energy, hf.lse)
    if lib:
        fail(f"your function calls hf.{lib}, the library's energy; write the formula yourself: a causal "
             f"log-sum-exp of the scores, ½ qᵀq, β⁻¹ log N and ½ M², with N and M from the keys each query sees")
    d64 = torch.float64
    g = torch.Generator().manual_seed(8)
    cases = []
    q = torch.tensor([[[1.0, 1.0], [0.5, -1.0], [2.0, 0.0]]], dtype=d64)
    k = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]]], dtype=d64)
    cases.append(("hand-built q, k [1, 3, 2] (β = 2)", q, k, 2.0))
    grow = torch.linspace(0.5, 2.5, 6, dtype=d64)[None, :, None]
    cases.append(("random float64 q, k [2, 6, 3] whose key norms grow along the sequence (β = 0.7)",
                  torch.randn(2, 6, 3, generator=g, dtype=d64), torch.randn(2, 6, 3, generator=g, dtype=d64) * grow,
                  0.7))
    cases.append(("random float32 q, k [3, 9, 4] (β = 0.5)", torch.randn(3, 9, 4, generator=g),
                  torch.randn(3, 9, 4, generator=g), 0.5))
    big_q, big_k = torch.randn(2, 5, 6, generator=g) * 5, torch.randn(2, 5, 6, generator=g) * 5
    big_k[:, :, 0], big_q[:, :, 0] = 8.0, 8.0        # every score ≥ 64 before β: exp(β · score) overflows
    cases.append(("float32 q, k [2, 5, 6] with scores up to ~200 (β = 1.5)", big_q, big_k, 1.5))
    n_checked = 0
    for name, q, k, beta in cases:
        _energy_check(fn, q, k, beta, name)
        n_checked += q.shape[0] * q.shape[1]
    if model is None:
        return f"{n_checked} states in {len(cases)} cases passed."
    from ..model import ModelConfig, Transformer
    from ..scores import eval_tokens

    with torch.random.fork_rng(devices=[]):          # the student's global random state stays as it was
        torch.manual_seed(5)
        untrained = Transformer(ModelConfig(d_vocab=16, n_ctx=20, d_model=24, n_layers=2, n_heads=3,
                                            d_head=5)).eval()
    untrained_tokens = torch.randint(1, 16, (3, 20), generator=g)
    untrained_tokens[:, 0] = 0
    smallest = {}
    for label, m, tokens in (("your model", model, eval_tokens(model)[:4]),
                             ("an untrained 2-layer × 3-head model (d_head = 5)", untrained, untrained_tokens)):
        beta = 1.0 / math.sqrt(m.cfg.d_head)
        falls = []
        for layer in range(m.cfg.n_layers):
            for head in range(m.cfg.n_heads):
                with torch.no_grad():
                    _, q, k, _ = hf._head_cache(m, tokens, layer, head)
                case = f"head {layer}.{head} of {label} (β = 1/√{m.cfg.d_head})"
                before = _energy_check(fn, q, k, beta, case)
                pos = q.shape[1]
                causal = torch.ones(pos, pos, dtype=torch.bool).tril()
                w = (beta * q @ k.transpose(-1, -2)).masked_fill(~causal, float("-inf")).softmax(-1)
                after = _energy_check(fn, w @ k, k, beta, case + ", the retrieved states")
                falls.append((before - after).min().item())
                n_checked += 2 * q.shape[0] * pos
        smallest[label] = min(falls)
    worst = min(smallest.values())
    if worst < -1e-3:
        raise RuntimeError(f"check bug: an attention step raised the energy by {-worst:.3g}")
    return (f"{n_checked} states passed, on every head of your model and of an untrained one too; one "
            f"attention step lowered your energy at every query (smallest fall "
            f"{smallest['your model']:.3g} in your model).")


def _energy_check(fn, q, k, beta, case):
    __tracebackhide__ = True
    got = _energy_answer(fn, q, k, beta, case)
    want = _causal_reference(q, k, beta)
    qd, kd = q.double(), k.double()
    scale = 1 + (qd * qd).sum(-1) + kd.norm(dim=-1).cummax(-1).values ** 2 + want.abs()
    tol = 3e-5 * scale
    bad = ~((got - want).abs() <= tol)
    if not bad.any():
        return got
    s, i = (int(x) for x in bad.nonzero()[0])
    where = f"at sequence {s}, position {i}"
    if not torch.isfinite(got).all():
        first = (~torch.isfinite(got)).nonzero()[0]
        if not torch.isfinite(got[:, 1:]).all():
            hint = ("the exponentials overflowed: exp(β·score) is inf in float32 beyond a score of ~88 (and in "
                    "float64 beyond ~709); use torch.logsumexp, which subtracts the largest score first")
        else:
            hint = ("at position 0 the query sees one key, its own: N = i + 1 = 1 and the mask keeps j ≤ i (then "
                    "E = ½ |q_0 − k_0|²)")
        fail(f"on {case} your energy at sequence {int(first[0])}, position {int(first[1])} is "
             f"{got[tuple(first)].item()} — {hint}")
    hint = next((h for w, h in _energy_wrongs(q, k, beta)
                 if torch.isfinite(w).all() and ((got - w).abs() <= tol).all()), "")
    if not hint and i == 0:
        hint = "at position 0 the query sees one key, its own, and E = ½ |q_0 − k_0|²"
    fail(f"on {case} your energy {where} is {got[s, i].item():.6g}, expected {want[s, i].item():.6g}"
         + (f" — {hint}" if hint else ""))
