"""Checks for chapter 1, "A tiny transformer and a copying task"."""
from __future__ import annotations

import math

import torch

from ..data import BOS
from ._core import (
    as_float,
    as_int,
    as_tensor,
    call,
    close,
    delegates_to,
    exercise,
    fail,
    fmt,
    given,
    intact,
    shape_of,
)


def _tokens(fn, batch, half_len, vocab, seed, case):
    __tracebackhide__ = True
    out = call(fn, batch, half_len, vocab, seed, case=case)
    if out is None:
        fail(f"on {case} your function returned None; did you forget `return`?")
    if not isinstance(out, torch.Tensor):
        if not hasattr(out, "__array__"):
            fail(f"on {case} your function returned {type(out).__name__}, expected a torch.Tensor "
                 f"(a numpy array also works)")
        out = torch.as_tensor(out)
    if out.dtype.is_floating_point or out.dtype == torch.bool or out.dtype.is_complex:
        fail(f"on {case} the tokens have dtype {out.dtype}; token ids must be integers (torch.long): "
             f"the model indexes its embedding with them")
    n = 1 + 2 * half_len
    if tuple(out.shape) != (batch, n):
        hint = {(batch, 2 * half_len): "did you forget the BOS token at position 0?",
                (n, batch): "did you swap the batch and position axes?",
                (batch, 1 + half_len): "the block r must appear twice: BOS + r + r",
                (batch, 2 + 2 * half_len): "one BOS only, at position 0"}.get(tuple(out.shape), "")
        fail(f"on {case} the tokens have shape {shape_of(out)}, expected [batch, 1 + 2·half_len] = "
             f"[{batch}, {n}]" + (f" — {hint}" if hint else ""))
    return out.long()


@exercise("repeated_tokens")
def repeated_tokens(fn) -> str:
    """fn(batch, half_len, vocab, seed) -> BOS + r + r, [batch, 1 + 2·half_len], r uniform in [1, vocab).

    Rejects: no BOS, BOS at the end, BOS (0) drawn inside the block, ids ≥ vocab, a second copy
    that differs from the first, the same block in every row, ignoring the seed, and a range that
    misses the largest token (randint's upper bound is exclusive)."""
    __tracebackhide__ = True
    batch, L, vocab = 4, 5, 20
    case = f"repeated_tokens({batch}, {L}, {vocab}, seed=0)"
    t = _tokens(fn, batch, L, vocab, 0, case)
    if (t[:, 0] != BOS).any():
        where = "the last position" if (t[:, -1] == BOS).all() else "position 0"
        fail(f"on {case} the first column is {t[:, 0].tolist()}, expected BOS = {BOS} in every row "
             f"(found BOS at {where}; every sequence starts with BOS)")
    body = t[:, 1:]
    if (body == BOS).any():
        r, c = (body == BOS).nonzero()[0].tolist()
        fail(f"on {case} BOS (token 0) appears inside the sequence (row {r}, position {c + 1}); draw "
             f"the block from the ordinary tokens 1 … vocab-1, e.g. torch.randint(1, vocab, …)")
    if (body < 0).any() or (body >= vocab).any():
        fail(f"on {case} a token id is {int(body.max())} (or negative); ids must lie in [1, vocab) = "
             f"[1, {vocab}) — torch.randint's upper bound is exclusive")
    first, second = t[:, 1:1 + L], t[:, 1 + L:]
    if not torch.equal(first, second):
        r, c = (first != second).nonzero()[0].tolist()
        fail(f"on {case} the second copy differs from the first: row {r}, position {1 + L + c} holds "
             f"{int(second[r, c])} but position {1 + c} holds {int(first[r, c])}; the second half "
             f"must repeat the first exactly")
    if all(torch.equal(first[0], first[i]) for i in range(1, batch)):
        fail(f"on {case} every row holds the same block {first[0].tolist()}; draw a fresh random "
             f"block for each row (shape [batch, half_len])")
    again = _tokens(fn, batch, L, vocab, 0, case)
    if not torch.equal(t, again):
        fail("two calls with seed=0 gave different tokens; make the draw depend only on `seed`, "
             "e.g. g = torch.Generator().manual_seed(seed) and torch.randint(…, generator=g)")
    other = _tokens(fn, batch, L, vocab, 1, f"repeated_tokens({batch}, {L}, {vocab}, seed=1)")
    if torch.equal(t, other):
        fail("seed=0 and seed=1 gave the same tokens; the seed must change the draw")
    _uniform(fn)
    big = _tokens(fn, 64, 12, 7, 3, "repeated_tokens(64, 12, 7, seed=3)")
    seen = set(big[:, 1:].unique().tolist())
    missing = sorted(set(range(1, 7)) - seen)
    if missing:
        fail(f"on repeated_tokens(64, 12, vocab=7, seed=3) the tokens {missing} never appear in 768 "
             f"draws; every ordinary token 1 … vocab-1 should be possible (randint(low, high) "
             f"excludes high, so use randint(1, vocab, …))")
    one = _tokens(fn, 3, 1, 2, 0, "repeated_tokens(3, 1, vocab=2, seed=0)")
    if not torch.equal(one, torch.tensor([[0, 1, 1]] * 3)):
        fail(f"with half_len=1 and vocab=2 (one ordinary token) every row must be [0, 1, 1], got {one.tolist()}")
    return "all 13 tests passed."


# A uniform sampler never fails these tests in practice: the per-token count of N draws over k
# ordinary tokens (N = 16,000, k = 49) is Binomial(N, 1/k), so its z-score exceeds 5.5 with
# probability ~4e-8 per token# (~2e-6 for all 49), and the chi-square statistic (k - 1 = 48 degrees of freedom, mean 48, sd 9.8)
# exceeds 110 with probability ~1e-6 (Wilson-Hilferty). The seeds are fixed, so a given right answer
# passes or fails deterministically. The samplers this catches are far outside: doubling one
# token's weight (clamping randint(0, vocab) to 1, or `% (vocab - 1) + 1`) gives z ~ 18;
# rounding a uniform float gives its end tokens half weight, z ~ -9.
_Z_MAX, _CHI2_MAX = 5.5, 110.0


def _uniform(fn) -> None:
    """The vocab argument is respected and the draw is uniform over 1 … vocab - 1, checked on 16,000
    draws of the first copy (vocab = 50, so a sampler that hard-codes the book's 64 is caught too)."""
    __tracebackhide__ = True
    batch, L, vocab = 400, 40, 50
    case = f"repeated_tokens({batch}, {L}, vocab={vocab}, seed=11)"
    t = _tokens(fn, batch, L, vocab, 11, case)
    body = t[:, 1:1 + L]
    if (body >= vocab).any() or (body < 1).any():
        fail(f"on {case} a token id is {int(body.max())} (or below 1); ids must lie in 1 … vocab-1 = "
             f"1 … {vocab - 1} — use the `vocab` argument, not a fixed vocabulary size")
    k = vocab - 1
    counts = torch.bincount(body.flatten(), minlength=vocab)[1:].double()
    n = counts.sum().item()
    expected = n / k
    z = (counts - expected) / math.sqrt(n * (1 / k) * (1 - 1 / k))
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    worst = int(z.abs().argmax())
    missing = [i + 1 for i in range(k) if counts[i] == 0]
    if missing:
        fail(f"on {case} the tokens {missing} never appear in {int(n)} draws; every ordinary token 1 … "
             f"vocab-1 should be possible (randint(low, high) excludes high, so use randint(1, vocab, …))")
    if z.abs().max() > _Z_MAX or chi2 > _CHI2_MAX:
        fail(f"on {case} the {int(n)} tokens of the first copies are not uniform over 1 … {k}: token "
             f"{worst + 1} appears {int(counts[worst])} times where a uniform draw gives {expected:.0f} ± "
             f"{math.sqrt(expected):.0f} (chi-square {chi2:.0f} over {k - 1} degrees of freedom, a uniform "
             f"sampler stays below {_CHI2_MAX:.0f}) — draw with torch.randint(1, vocab, …), not by "
             f"clamping, wrapping (%) or rounding another draw")
    # 20 independent draws from 49 tokens repeat one with probability 1 - Π(1 - i/49) ≈ 0.99;
    # without replacement (randperm, distinct=True) never. Fail below half the rows.
    share = sum(len(set(row.tolist())) < 20 for row in body[:, :20]) / batch
    if share < 0.5:
        fail(f"on {case} only {share:.0%} of the rows repeat a token among their first 20, where "
             f"independent draws from {k} tokens do in about 99%: draw with replacement (torch.randint), "
             f"not a permutation — the book's distinct=True sequences are a separate choice")


@exercise("chance_loss")
def chance_loss(value, vocab: int) -> str:
    """value: the cross-entropy (in nats) of a model that guesses uniformly among the vocabulary's
    ordinary tokens (BOS is never a target), i.e. ln(vocab - 1)."""
    __tracebackhide__ = True
    given(value)
    if not (isinstance(vocab, int) and vocab >= 3):
        fail(f"vocab should be the model's vocabulary size (an integer ≥ 3), got {vocab!r}")
    v = as_float(value, "your chance loss")
    want = math.log(vocab - 1)
    if close(v, want, 1e-3):
        return f"ln({vocab} - 1) = {want:.4f} nats."
    hints = [
        (math.log(vocab), f"that is ln(vocab): a guess spread over all {vocab} ids, BOS included; BOS is "
                          f"never a target, so a sensible guesser spreads over the {vocab - 1} ordinary tokens"),
        (math.log2(vocab - 1), "that is in bits (log base 2); the loss is measured in nats (natural log)"),
        (math.log2(vocab), "that is log2(vocab): use the natural log, and only the ordinary tokens"),
        (-want, "wrong sign: the loss is −ln p, which is positive"),
        (1 / (vocab - 1), "that is the probability of the right token; the loss is −ln of it"),
        (1 / vocab, "that is a probability (and over all ids); the loss is −ln p over the ordinary tokens"),
        (math.log10(vocab - 1), "that is log base 10; use the natural log"),
    ]
    for bad, hint in hints:
        if close(v, bad, 1e-3):
            fail(f"your chance loss is {fmt(v)}, expected {want:.4f} — {hint}")
    fail(f"your chance loss is {fmt(v)}, expected ln(vocab - 1) = {want:.4f}: a uniform guess gives "
         f"the right token probability 1/(vocab - 1), and the loss is −ln of that probability")


# ---------------------------------------------------------------- predict, then see


def _token_list(pred, n: int, what: str) -> list[int]:
    __tracebackhide__ = True
    given(pred)
    if hasattr(pred, "tolist") and hasattr(pred, "shape"):
        pred = pred.reshape(-1).tolist() if math.prod(pred.shape) == n else pred.tolist()
    if isinstance(pred, (str, bytes)) or not hasattr(pred, "__len__") or len(pred) != n:
        fail(f"give {what} as a list of {n} token ids, position by position; got {pred!r:.80}")
    return [as_int(p, f"each of {what}") for p in pred]


@exercise("predict_next")
def predict_next(predicted, model, tokens, positions=(50, 40)) -> str:
    """predicted: the token id the model ranks first at each of `positions` of tokens[0] (the
    prediction of the token at position + 1), predicted by the student before seeing the model run.

    The check runs the model itself (so a value printed above cannot be copied: nothing prints it
    before this cell) and diagnoses the usual misreadings against the sequence: the current token,
    the token two ahead, the earlier occurrence itself, the two positions in swapped order."""
    __tracebackhide__ = True
    positions = [int(p) for p in positions]
    got = _token_list(predicted, len(positions), "your predictions")
    row = torch.as_tensor(tokens)[0].tolist()
    with intact(model, "the book's model"), torch.no_grad():
        top = model(torch.as_tensor(tokens)[:1]).argmax(dim=-1)[0, positions].tolist()
    if got == top:
        return "you read the induction rule as the model does."
    if got == top[::-1] and top[0] != top[1]:
        fail("you have the two predictions in swapped order: list position "
             f"{positions[0]} first, then {positions[1]}")
    for p, g, want in zip(positions, got, top):
        if g == want:
            continue
        misreadings = [
            (p, "the token AT that position (the current token): the model predicts the NEXT one — the "
                "token that followed the earlier occurrence of the current token"),
            (p - 1, "the token before the position: look forward, at what followed the earlier occurrence"),
            (p + 2, "the token two places ahead: position p predicts token p + 1, one place ahead"),
        ]
        why = next((w for q, w in misreadings if 0 <= q < len(row) and row[q] == g), None)
        if why is None:
            why = ("not a token the induction rule points to; find the earlier occurrence of the token at "
                   "that position and read the token right after it")
        fail(f"at position {p} you predicted token {g}: that is {why}")
    fail("your predictions differ from the model's")  # unreachable: some position differs


# ---------------------------------------------------------------- the loss the book measures


def _hand_logits(tokens: torch.Tensor, vocab: int, a: torch.Tensor) -> torch.Tensor:
    """Logits [batch, n, vocab]: a[p] on the actual next token tokens[:, p + 1], 0 elsewhere (position
    n - 1 has no next token: all 0). The loss at p is then ln(1 + (vocab - 1) e^(-a[p])) exactly."""
    b, n = tokens.shape
    logits = torch.zeros(b, n, vocab, dtype=torch.float64)
    logits[:, :-1].scatter_(2, tokens[:, 1:, None], a[:n - 1][None, :, None].expand(b, n - 1, 1).clone())
    return logits


def _loss_call(fn, logits, tokens, half_len, prefix_len, case):
    __tracebackhide__ = True
    before = logits.clone(), tokens.clone()
    out = call(fn, logits, tokens, half_len, prefix_len, case=case)
    if not (torch.equal(before[0], logits) and torch.equal(before[1], tokens)):
        fail(f"on {case} your function changed its inputs in place; work on copies")
    if out is None:
        fail(f"on {case} your function returned None; did you forget `return`?")
    t = as_tensor(out, "your loss")
    if t.numel() != 1:
        fail(f"on {case} your loss has shape {shape_of(t)}, expected one number: the mean over the "
             f"batch and over the predictable targets" + (" — you kept the batch axis" if t.shape[0] ==
                                                          tokens.shape[0] else ""))
    return as_float(t, f"your loss on {case}")


@exercise("repeated_half_loss")
def repeated_half_loss(fn) -> str:
    """fn(logits [batch, n, vocab], tokens [batch, n], half_len, prefix_len) -> float: on BOS + prefix
    + r + r (|r| = half_len), the mean cross-entropy in nats of the predictions of the second copy's
    tokens 2 … half_len (the ones copying can predict), over the batch. Logits at position p predict
    the token at p + 1.

    Hand-built logits make the loss at every position a known number, ln(1 + (V-1) e^(-a_p)) with
    a_p depending on the position, so each wrong region or a missing shift gives its own value.
    Rejects (by name): no shift (logits p scored against token p), the second copy's first token
    included, the first copy instead, the prefix ignored, log base 2, the mean probability; then
    properties on random float32 logits of another shape (prefix 20, half_len 30: 81 positions, more
    than any book model's context): changing logits outside the region changes nothing, inside it
    changes the answer, a constant added to a position's logits changes nothing."""
    __tracebackhide__ = True
    from .. import metrics, scores

    lib = delegates_to(fn, metrics.eval_regions, scores.eval_regions)
    if lib:
        fail(f"your function calls the library's {lib}, which takes the layout of a model's held-out "
             f"sequences (and shrinks it to the model's context); work out the positions yourself")
    V, L, P, B = 9, 5, 3, 2
    g = torch.Generator().manual_seed(4)
    r = torch.randint(1, V, (B, L), generator=g)
    prefix = torch.randint(1, V, (B, P), generator=g)
    tokens = torch.cat([torch.zeros(B, 1, dtype=torch.long), prefix, r, r], 1)
    n = tokens.shape[1]                                   # 1 + P + 2L = 14
    a = torch.linspace(-2.0, 4.5, n, dtype=torch.float64)  # a different margin at every position
    logits = _hand_logits(tokens, V, a)
    loss_at = torch.log1p((V - 1) * torch.exp(-a))          # the loss of predicting token p + 1 at p
    s = 1 + P + L                                          # the second copy starts here
    want = loss_at[s:s + L - 1].mean().item()              # predictions made at s … s + L - 2
    case = f"hand-built logits on BOS + {P} prefix tokens + r + r, half_len={L} ({n} positions)"
    got = _loss_call(fn, logits, tokens, L, P, case)
    if not close(got, want, 1e-4):
        lsm = logits.log_softmax(-1)
        noshift = -lsm.gather(2, tokens[:, :, None])[..., 0].mean(0)   # logits p vs token p
        wrong = [
            (noshift[s + 1:s + L].mean(), "you scored the logits at position p against the token AT p; "
                                          "they predict the token at p + 1 (shift by one)"),
            (loss_at[s - 1:s + L - 1].mean(), "you included the prediction of the second copy's first "
                                              "token, which nothing before it can predict"),
            (loss_at[s - 1:s + L - 2].mean(), "your region starts one position early (it is shifted by one)"),
            (loss_at[1 + L:1 + 2 * L - 1].mean(), "you forgot the prefix: the second copy starts at "
                                                  "1 + prefix_len + half_len"),
            (loss_at[1 + P:1 + P + L - 1].mean(), "that is the first copy; the repeated half is the second"),
            (loss_at[s:s + L - 1].mean() / math.log(2), "that is in bits; use the natural log (nats)"),
            (torch.exp(-loss_at[s:s + L - 1]).mean(), "that is the mean probability of the right token, "
                                                      "not the mean of −ln p"),
            (loss_at[:n - 1].mean(), "that is the mean over every position, not only the repeated half"),
        ]
        hint = next((h for v, h in wrong if close(got, float(v), 1e-4)), "")
        fail(f"on {case} your loss is {fmt(got)}, expected {fmt(want)} (the mean over the predictions "
             f"made at positions {s} … {s + L - 2} of the tokens {s + 1} … {s + L - 1})"
             + (f" — {hint}" if hint else ""))

    # properties on random float32 logits: batch 3, vocab 11, prefix 20, half_len 30
    V, L, P, B = 11, 30, 20, 3
    tokens = torch.cat([torch.zeros(B, 1, dtype=torch.long), torch.randint(1, V, (B, P), generator=g)], 1)
    r = torch.randint(1, V, (B, L), generator=g)
    tokens = torch.cat([tokens, r, r], 1)
    n, s = tokens.shape[1], 1 + P + L
    logits = torch.randn(B, n, V, generator=g).float() * 2
    case = f"random float32 logits, batch {B}, vocab {V}, prefix_len={P}, half_len={L} ({n} positions)"
    base = _loss_call(fn, logits, tokens, L, P, case)
    outside = logits.clone()
    outside[:, :s] += torch.randn(B, s, V, generator=g).float() * 3   # up to the second copy's first token
    outside[:, s + L - 1:] += 5 * torch.randn(B, 1, V, generator=g).float()   # the last position
    got = _loss_call(fn, outside, tokens, L, P, case + ", logits changed outside the region")
    if not close(got, base, 1e-4):
        fail(f"changing the logits at positions 0 … {s - 1} and {s + L - 1} changed your loss from "
             f"{fmt(base)} to {fmt(got)}; only the predictions made at {s} … {s + L - 2} count (the "
             f"second copy from its second token on; position p predicts token p + 1)")
    inside = logits.clone()
    inside[:, s + L - 2] += 4 * torch.randn(B, V, generator=g).float()
    got = _loss_call(fn, inside, tokens, L, P, case + ", logits changed at the last predicting position")
    if close(got, base, 1e-4):
        fail(f"changing the logits at position {s + L - 2} (which predicts the second copy's last token, "
             f"at {s + L - 1}) did not change your loss; it belongs to the region")
    shifted = logits + torch.randn(B, n, 1, generator=g).float() * 10
    got = _loss_call(fn, shifted, tokens, L, P, case + ", a constant added to each position's logits")
    if not close(got, base, 1e-3):
        fail(f"adding a constant to all logits of a position changed your loss from {fmt(base)} to "
             f"{fmt(got)}; the softmax ignores it — use log_softmax (or cross_entropy) over the vocab axis")
    return "all 5 tests passed."
