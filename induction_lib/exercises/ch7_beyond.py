"""Checks for chapter 7, beyond the toy model (natural text)."""
from __future__ import annotations

import torch

from ..data import BOS
from ._core import call, exercise, fail, shape_of


def copyable_by_definition(tokens: torch.Tensor) -> torch.Tensor:
    """The definition, one position at a time (slow and obvious, for checking): token i is copyable iff the
    token before it occurred at some j < i - 1 (not as BOS) and was followed there by token i."""
    batch, n = tokens.shape
    out = torch.zeros(batch, n, dtype=torch.bool)
    for b in range(batch):
        t = tokens[b].tolist()
        for i in range(2, n):
            out[b, i] = t[i - 1] != BOS and any(t[j] == t[i - 1] and t[j + 1] == t[i] for j in range(i - 1))
    return out


def _mistakes(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plausible wrong versions of the mask, each with what it means."""
    batch, n = tokens.shape
    seen = torch.zeros(batch, n, dtype=torch.bool)        # the previous token occurred before (any follower)
    dup = torch.zeros(batch, n, dtype=torch.bool)         # the token itself occurred before
    self_incl = torch.zeros(batch, n, dtype=torch.bool)   # j ≤ i - 1: the previous token matches itself
    with_bos = torch.zeros(batch, n, dtype=torch.bool)    # BOS counted as an occurrence
    for b in range(batch):
        t = tokens[b].tolist()
        for i in range(1, n):
            dup[b, i] = t[i] != BOS and t[i] in t[:i]
            if i >= 2:
                seen[b, i] = t[i - 1] != BOS and t[i - 1] in t[:i - 1]
                with_bos[b, i] = any(t[j] == t[i - 1] and t[j + 1] == t[i] for j in range(i - 1))
            self_incl[b, i] = t[i - 1] != BOS and any(t[j] == t[i - 1] and t[j + 1] == t[i] for j in range(i))
    right = copyable_by_definition(tokens)
    return {
        "marks the position before (index i - 1) instead of the copied token i: put the mask on the token "
        "being predicted": torch.cat([right[:, 1:], torch.zeros(batch, 1, dtype=torch.bool)], dim=1),
        "marks every token whose previous token occurred before, whatever followed it: the earlier "
        "occurrence must have been followed by the same token as now": seen,
        "marks tokens that occurred before themselves (the duplicate-token pattern); what matters is the "
        "token BEFORE position i and what followed its earlier occurrence": dup,
        "lets j reach i - 1, so the previous token 'occurred earlier' at its own position; only j < i - 1 "
        "counts": self_incl,
        "counts BOS as an occurrence: after a BOS in the middle of a window nothing can be copied from an "
        "earlier BOS": with_bos,
    }


def _mask(fn, tokens, case):
    __tracebackhide__ = True
    before = tokens.clone()
    out = call(fn, tokens, case=case)
    if not torch.equal(before, tokens):
        fail(f"on {case} your function changed the tokens in place; build a new tensor")
    if out is None:
        fail(f"on {case} your function returned None; did you forget `return`?")
    t = torch.as_tensor(out) if not isinstance(out, torch.Tensor) else out.detach()
    batch, n = tokens.shape
    if tuple(t.shape) != (batch, n):
        hint = {(batch, n - 1): "one entry per token, position 0 included (it is never copyable): put a False "
                                "column in front",
                (n, batch): "the batch axis comes first"}.get(tuple(t.shape), "")
        fail(f"on {case} your mask has shape {shape_of(t)}, expected [{batch}, {n}]" + (f" — {hint}" if hint else ""))
    if t.dtype.is_floating_point and not ((t == 0) | (t == 1)).all():
        fail(f"on {case} your mask has values other than 0 and 1; return booleans")
    return t.bool()


@exercise("copyable")
def copyable(fn) -> str:
    """fn(tokens [batch, n]) -> bool [batch, n]: token i is copyable iff the token before it occurred at some
    j < i - 1 (BOS is no occurrence) and was followed there by token i.

    Cases: a hand-built sequence with every kind of position; BOS in the middle of a window; random
    windows of several sizes over small vocabularies (many repeats), compared entry by entry with the
    definition evaluated one position at a time. Names the mistake when the answer matches a known one."""
    __tracebackhide__ = True
    a, b, c, d = 3, 4, 5, 6
    hand = torch.tensor([[BOS, a, b, c, a, b, a, c, a, b]])
    cases = [("the window BOS a b c a b a c a b", hand),
             ("a window with a BOS in the middle: BOS a b BOS a b c BOS c d",
              torch.tensor([[BOS, a, b, BOS, a, b, c, BOS, c, d]]))]
    g = torch.Generator().manual_seed(7)
    for batch, n, vocab in ((3, 17, 5), (2, 40, 9), (5, 9, 3), (1, 64, 20)):
        t = torch.randint(1, vocab, (batch, n), generator=g)
        t[:, 0] = BOS
        cases.append((f"random windows [{batch}, {n}] over {vocab - 1} token kinds", t))
    for case, tokens in cases:
        got = _mask(fn, tokens, case)
        want = copyable_by_definition(tokens)
        if torch.equal(got, want):
            continue
        for meaning, wrong in _mistakes(tokens).items():
            if torch.equal(got, wrong):
                fail(f"on {case} your mask {meaning}")
        bad = (got != want).nonzero()[0].tolist()
        row, i = bad
        seq = tokens[row].tolist()
        fail(f"on {case}, row {row}, token {i} (id {seq[i]}, after id {seq[i - 1] if i else '—'}): your mask says "
             f"{bool(got[row, i])}, the definition says {bool(want[row, i])}; tokens so far: {seq[:i + 1]}")
    return f"all {len(cases)} cases agree with the definition."
