"""Checks for chapter 2, the previous-token head."""
from __future__ import annotations

import math

import torch

from ._core import (
    as_int,
    call,
    close,
    delegates_to,
    exercise,
    fail,
    fmt,
    given,
    intact,
    model_with_heads,
    per_head_score,
)

# ---------------------------------------------------------------- hand-built patterns [query, key]


def previous_token_pattern(n: int) -> torch.Tensor:
    """Every query i >= 1 attends to i - 1; query 0 (no previous token) attends to itself."""
    p = torch.zeros(n, n, dtype=torch.float64)
    p[0, 0] = 1.0
    p[torch.arange(1, n), torch.arange(n - 1)] = 1.0
    return p


def bos_pattern(n: int) -> torch.Tensor:
    """Every query attends to position 0 (BOS)."""
    p = torch.zeros(n, n, dtype=torch.float64)
    p[:, 0] = 1.0
    return p


def uniform_causal_pattern(n: int) -> torch.Tensor:
    """Query i spreads its attention evenly over keys 0 … i."""
    return torch.ones(n, n, dtype=torch.float64).tril() / torch.arange(1, n + 1, dtype=torch.float64)[:, None]


def random_causal_pattern(batch: int, heads: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, heads, n, n, generator=g, dtype=torch.float64) * 2
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)


# ---------------------------------------------------------------- previous-token score


def _score(fn, pattern, case, heads):
    __tracebackhide__ = True
    b = pattern.shape[0]
    return per_head_score(fn, pattern, case=case, heads=heads, hints={
        (b,): "one number per batch element: did you average over the head axis instead of the batch axis?",
        (b, heads): "average over the batch axis (dim 0) too: one score per head",
        (): "one score per head, not one number: average over batch and positions only",
        (heads, b): "average over the batch axis: one score per head",
    })


@exercise("previous_token_score")
def previous_token_score(fn) -> str:
    """fn(pattern [batch, head, query, key]) -> [head]: mean over batch and over queries i ≥ 1 of
    pattern[..., i, i-1] (Olsson et al. 2022).

    Cases (fixed numbers): a perfect previous-token head (1), a head that always attends to BOS
    (1/(n-1): only query 1, whose previous token is BOS), a uniform causal head (mean over i ≥ 1
    of 1/(i+1)); batch elements that differ; random patterns (range, head order, linearity).
    Rejects: including position 0 ((n-1)/n on the perfect head), reading A[i, i+1] or the
    transposed pattern, averaging over heads instead of the batch, using only one batch element."""
    __tracebackhide__ = True
    from .. import metrics, scores

    lib = delegates_to(fn, metrics.previous_token_score_from_pattern, scores.previous_token_scores)
    if lib:
        fail(f"your function calls the library's {lib}; the exercise is to compute the score yourself "
             f"from the pattern (the library's version is there to compare with afterwards)")
    n_cases = 0
    for n in (6, 9):
        perfect, bos, unif = previous_token_pattern(n), bos_pattern(n), uniform_causal_pattern(n)
        pattern = torch.stack([perfect, bos, unif])[None].repeat(2, 1, 1, 1)  # [2, 3, n, n]
        case = f"a [2, 3, {n}, {n}] pattern whose heads are (perfect previous-token, always-BOS, uniform causal)"
        got = _score(fn, pattern, case, 3)
        want = [1.0, 1 / (n - 1), sum(1 / (i + 1) for i in range(1, n)) / (n - 1)]
        g0, g1, g2 = got.tolist()
        if not close(g0, 1.0):
            hint = {
                (n - 1) / n: "did you include position 0? it has no previous token: average over i ≥ 1 only",
                0.0: "you read zeros: the pattern is [query, key], so query i's previous token is key i-1, "
                     "i.e. pattern.diagonal(offset=-1, dim1=-2, dim2=-1) — not offset +1, not the transpose",
                2 / n: "that is the attention to position 0 (BOS) — queries 0 and 1 give it all their "
                       "attention here — not to the previous token",
            }
            msg = next((h for v, h in hint.items() if close(g0, v)), "")
            fail(f"your score for a perfect previous-token pattern ({n} positions) is {fmt(g0)}, expected 1.0"
                 + (f" — {msg}" if msg else ""))
        if not close(g1, want[1]):
            hint = {
                0.0: "query 1's previous token IS the BOS token at position 0; its attention to it counts",
                1.0: "that is the attention to BOS; the score reads pattern[i, i-1], not pattern[i, 0]",
                1 / n: "average over the n - 1 queries i ≥ 1, not over all n positions",
            }
            msg = next((h for v, h in hint.items() if close(g1, v)), "")
            fail(f"your score for a head that always attends to BOS ({n} positions) is {fmt(g1)}, expected "
                 f"1/(n-1) = {fmt(want[1])}" + (f" — {msg}" if msg else ""))
        if not close(g2, want[2]):
            fail(f"your score for a uniform causal head (query i gives 1/(i+1) to each key ≤ i; {n} positions) "
                 f"is {fmt(g2)}, expected the mean over i = 1 … {n - 1} of 1/(i+1) = {fmt(want[2])}")
        n_cases += 3

    n = 7
    mixed = torch.stack([previous_token_pattern(n), bos_pattern(n)])[:, None]  # batch 0 perfect, batch 1 BOS
    mixed = torch.cat([mixed, mixed.flip(0)], dim=1)                          # head 1: the other way round
    got = _score(fn, mixed, "a [2, 2, 7, 7] pattern whose two batch elements differ", 2)
    want = (1 + 1 / (n - 1)) / 2
    for h in range(2):
        if not close(got[h].item(), want):
            if close(got[h].item(), 1.0) or close(got[h].item(), 1 / (n - 1)):
                fail(f"with batch element 0 a perfect previous-token head and element 1 a BOS head, your score is "
                     f"{fmt(got[h].item())}, expected their mean {fmt(want)} — you used only one batch element; "
                     f"average over the batch axis (dim 0)")
            fail(f"with batch elements that differ your score for head {h} is {fmt(got[h].item())}, expected "
                 f"the mean over the batch {fmt(want)}")
    n_cases += 1

    rand = random_causal_pattern(3, 4, 10, seed=2)
    got = _score(fn, rand, "random causal patterns [3, 4, 10, 10]", 4)
    if (got < -1e-9).any() or (got > 1 + 1e-9).any():
        fail(f"on random causal patterns your scores are {got.tolist()}; an average of attention weights "
             f"lies in [0, 1]")
    perm = torch.tensor([2, 0, 3, 1])
    got_p = _score(fn, rand[:, perm], "random causal patterns with the heads reordered", 4)
    if not torch.allclose(got_p, got[perm], atol=1e-6):
        fail("reordering the heads of the pattern should reorder your scores the same way; it did not — "
             "each head's score must come from that head's pattern only")
    got_b = _score(fn, rand.flip(0), "random causal patterns with the batch reversed", 4)
    if not torch.allclose(got_b, got, atol=1e-6):
        fail("reversing the batch changed your scores; the score is a mean over the batch")
    perfect = previous_token_pattern(10)[None, None].expand(3, 4, 10, 10).clone()
    got_mix = _score(fn, (rand + perfect) / 2, "an even mix of random patterns and a previous-token pattern", 4)
    if not torch.allclose(got_mix, (got + 1) / 2, atol=1e-6):
        fail("the score should be linear in the pattern (an average of pattern entries); for an even mix of "
             "two patterns it should be the mean of their scores, and yours is not")
    n_cases += 4
    return f"all {n_cases} tests passed."


# ---------------------------------------------------------------- reading the model


def _layer_head(answer, model, what: str = "the head") -> tuple[int, int]:
    """(layer, head) from a tuple, list, tensor or numpy array of two integers (numpy / torch integer
    scalars too), or fail saying what the answer looks like."""
    __tracebackhide__ = True
    given(answer)
    if hasattr(answer, "tolist") and hasattr(answer, "shape"):      # tensor or numpy array
        if tuple(answer.shape) != (2,):
            fail(f"give {what} as a pair (layer, head), e.g. (0, 1); got {type(answer).__name__} of shape "
                 f"{list(answer.shape)} — " + ("a single index into the flattened [layer, head] table is not "
                                              "a head: convert it with divmod(index, n_heads)"
                                              if math.prod(answer.shape) == 1 else "two numbers, no more"))
        answer = answer.tolist()
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__len__") or len(answer) != 2:
        hint = (" — a single index into the flattened [layer, head] table is not a head: convert it with "
                "divmod(index, n_heads)" if isinstance(answer, int) or hasattr(answer, "item") else "")
        fail(f"give {what} as a pair (layer, head), e.g. (0, 1); got {answer!r}" + hint)
    layer, head = (as_int(a, f"{what}'s {name}") for a, name in zip(answer, ("layer", "head")))
    return layer, head


def _prev_token_models(model):
    """(description, model, intended (layer, head) or None) for the check of find_previous_token_head.

    Besides the student's own model: the book's model with its two layer-0 heads swapped (same
    function; the answer is 0.1), and two models of other geometries built from its heads (none of
    them writes, so a copied head attends as it does in layer 0 of the book's model): 3 layers x 2
    heads with the previous-token head at 2.1, and 2 layers x 3 heads with it at 0.2. Layer != head in
    every answer, and n_layers != n_heads in the last two, so swapped pairs and a flat index divided
    by the wrong size are caught; the library's heads.previous_token_head (layer 0 only) fails the
    3-layer model."""
    from ..zoo import load

    base = load("induction-2l", progress=False)
    out = [("your model (the `model` you passed)", model, None)] if model is not None else []
    out += [
        ("the book's model with its two layer-0 heads swapped (a 2-layer x 2-head model)",
         model_with_heads(base, 2, 2, {(0, 0): (0, 1), (0, 1): (0, 0), (1, 0): (1, 0), (1, 1): (1, 1)},
                          write=True), (0, 1)),
        ("a 3-layer x 2-head model made of the book's heads, rearranged",
         model_with_heads(base, 3, 2, {(2, 1): (0, 0), (0, 0): (0, 1), (1, 0): (1, 0), (2, 0): (1, 1)}),
         (2, 1)),
        ("a 2-layer x 3-head model made of the book's heads, rearranged",
         model_with_heads(base, 2, 3, {(0, 2): (0, 0), (0, 0): (0, 1), (1, 1): (1, 0)}), (0, 2)),
    ]
    return out


@exercise("find_previous_token_head")
def find_previous_token_head(fn, model=None) -> str:
    """fn(model) -> (layer, head) of the head with the highest previous-token score, searched over
    every layer and head. Run on `model` and on three models built from the book's heads in which
    the answer is 0.1, 2.1 and 0.2 (see _prev_token_models); the expected head is found by the
    check from induction_lib.scores.previous_token_scores (a margin of > 0.5 over the runner-up).

    Rejects: a number instead of a pair, (head, layer), a flat argmax divided by n_layers, the
    best layer-0 head only (heads.previous_token_head), the induction head, a hard-coded head;
    a model left changed (restored, then reported)."""
    __tracebackhide__ = True
    from ..heads import induction_head, previous_token_head
    from ..scores import previous_token_scores

    if not callable(fn):
        given(fn)
        fail(f"write a function find_previous_token_head(model) that returns (layer, head); got "
             f"{type(fn).__name__} {fn!r:.60} — the check runs it on several models")
    results = []
    for what, m, intended in _prev_token_models(model):
        scores = previous_token_scores(m)
        n_layers, n_heads = scores.shape
        flat = int(scores.argmax())
        best = divmod(flat, n_heads)
        top2 = scores.flatten().topk(2).values
        if intended is not None and (best != intended or top2[0] - top2[1] < 0.5):
            raise RuntimeError(f"check bug: on {what} the best head is {best} (scores {scores.tolist()})")
        with intact(m, what):
            out = call(fn, m, case=what)
        if out is None:
            fail(f"on {what} your function returned None; did you forget `return`?")
        if isinstance(out, int) or (hasattr(out, "shape") and math.prod(out.shape) == 1):
            flat_out = as_int(out, "your answer")
            fail(f"on {what} your function returned the single number {flat_out}: an index into the "
                 f"flattened [layer, head] table, not a head; return (layer, head) = divmod(index, n_heads)")
        layer, head = _layer_head(out, m, "your head")
        geometry = f"{n_layers} layers x {n_heads} heads"
        if (layer, head) == best:
            results.append(f"{layer}.{head}")
            continue
        if (layer, head) == divmod(flat, n_layers) and n_layers != n_heads:
            fail(f"on {what} ({geometry}) you returned ({layer}, {head}), the flat argmax {flat} divided by "
                 f"the number of layers; a [layer, head] table is flattened row by row, so "
                 f"(layer, head) = divmod(index, n_heads)")
        if (layer, head) == (0, flat) and flat >= n_heads:
            fail(f"on {what} ({geometry}) you returned (0, {flat}): {flat} is the index into the flattened "
                 f"[layer, head] table; convert it with divmod(index, n_heads)")
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            fail(f"on {what} you returned ({layer}, {head}), which is not a head of this model "
                 f"(layers 0 … {n_layers - 1}, heads 0 … {n_heads - 1})")
        s = scores[layer, head].item()
        if (head, layer) == best:
            fail(f"on {what} ({geometry}) you returned ({layer}, {head}): the right head with layer and "
                 f"head swapped; return (layer, head) — a [layer, head] table's rows are layers")
        if (layer, head) == previous_token_head(m) and best[0] != 0:
            fail(f"on {what} ({geometry}) you returned the best layer-0 head {layer}.{head} "
                 f"(score {s:.3f}), but "
                 f"head {best[0]}.{best[1]} scores {top2[0]:.3f}: search every layer "
                 f"(heads.previous_token_head only looks at layer 0)")
        if (layer, head) == induction_head(m) and m.cfg.n_layers > 1:
            fail(f"on {what} you returned ({layer}, {head}), the induction head (chapter 3; previous-token "
                 f"score {s:.3f}); the previous-token head is the one with the highest previous-token score")
        fail(f"on {what} ({geometry}) you returned head {layer}.{head}, whose previous-token score is "
             f"{s:.3f}, but head {best[0]}.{best[1]} scores {top2[0]:.3f}; compute every head's score "
             f"(scores.previous_token_scores(model)) and take the largest")
    return f"found {', '.join(results)} on {len(results)} models."


@exercise("positional_qk_reading")
def positional_qk_reading(answer, model=None, head=None) -> str:
    """answer: the offset j - i of the key j that a query at position i attends to most, read off
    the positional QK matrix (rows = queries, columns = keys). For the previous-token head it is
    -1. With `model` and `head=(layer, head)` the check reads the offset off that head's positional
    QK matrix W_pos W_Q W_Kᵀ W_posᵀ itself (the most common argmax over keys j ≤ i, i ≥ 1)."""
    __tracebackhide__ = True
    given(answer)
    if isinstance(answer, (tuple, list)) or (hasattr(answer, "shape") and math.prod(answer.shape) != 1):
        fail(f"give one offset j - i, a single integer (e.g. 0 for the query's own position), not one per "
             f"row; got {type(answer).__name__} {answer!r:.60} — take the most common one")
    if isinstance(answer, float) and not answer.is_integer():
        fail(f"give the offset j - i as an integer; got {answer!r} — an offset counts positions")
    answer = as_int(answer, "your offset")
    want = -1
    source = "a previous-token head"
    if model is not None:
        if head is None:
            fail("pass head=(layer, head) along with the model")
        layer, h = _layer_head(head, model)
        with torch.no_grad():
            attn = model.blocks[layer].attn
            w_pos = model.W_pos
            qk = (w_pos @ attn.W_Q[h]) @ (w_pos @ attn.W_K[h]).T
            n = qk.shape[0]
            qk = qk.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
            offsets = qk[1:].argmax(-1) - torch.arange(1, n)
            want = int(offsets.mode().values)
        source = f"head {layer}.{h}'s positional QK matrix"
    if answer == want:
        return f"offset {answer}: query i attends most to key i{answer:+d}."
    hint = {
        -want: "the sign is flipped: rows are queries and columns keys, and a causal head only attends to keys "
               "j ≤ i, so the offset j - i is never positive",
        0: "offset 0 is the main diagonal: the query's own position",
    }.get(answer, "")
    if answer > 0 and not hint:
        hint = "a causal head cannot attend to later positions (j > i); the offset j - i is ≤ 0"
    fail(f"you read offset {answer}, but {source} attends most to offset {want}" + (f" — {hint}" if hint else ""))
