"""Checks for chapter 9, beyond the toy model (natural text)."""
from __future__ import annotations

import torch

from ..data import BOS
from ._core import as_tensor, call, exercise, fail, shape_of


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


# ---------------------------------------------------------------- 7.x: which layer-0 head feeds the keys?


def _key_loss_rise(model, tokens, region) -> torch.Tensor:
    """For every layer-0 head: the rise in loss on `region` when its output is removed from the keys of
    layer 1 only (the library's path ablation, here the check's measuring instrument), [n_heads]."""
    from ..interventions import per_position_loss_with

    clean = per_position_loss_with(model, tokens)[:, region].mean()
    return torch.stack([per_position_loss_with(model, tokens, heads=[(0, h)], path="k")[:, region].mean() - clean
                        for h in range(model.cfg.n_heads)])


def _decoy_model(base):
    """`base` (2 layers) with a third head per layer: a layer-0 decoy that attends exactly like base's
    previous-token head, only more sharply, and writes nothing; the other heads keep their places, so the
    decoy has the best previous-token score but no effect on anything. Layer 1's third head is silent."""
    import dataclasses

    from ..heads import previous_token_head
    from ..model import Transformer

    prev = previous_token_head(base)
    cfg = dataclasses.replace(base.cfg, n_heads=base.cfg.n_heads + 1)
    model = Transformer(cfg).eval()
    with torch.no_grad():
        model.load_state_dict({k: v for k, v in base.state_dict().items() if not k.startswith("blocks.")},
                              strict=False)
        for layer, block in enumerate(model.blocks):
            src = base.blocks[layer].attn
            for name in ("W_Q", "W_K", "W_V", "W_O"):
                w = getattr(block.attn, name)
                w.zero_()
                w[:base.cfg.n_heads].copy_(getattr(src, name))
        decoy = base.cfg.n_heads
        model.blocks[0].attn.W_Q[decoy].copy_(3 * base.blocks[0].attn.W_Q[prev[1]])
        model.blocks[0].attn.W_K[decoy].copy_(base.blocks[0].attn.W_K[prev[1]])
    return model, (0, decoy), prev


@exercise("key_source")
def key_source(fn, model) -> str:
    """fn(model, tokens, region) -> [n_heads]: for every layer-0 head, the rise in mean loss on `region` (a
    slice of `per_position_loss`'s positions) when that head's output is zero-ablated from layer 1's keys
    only. The largest rise names the head whose output the keys read.

    Runs on `model` (the book's toy or text model), on the toy model, and on the toy model with a decoy
    added: a layer-0 head that attends to the previous token more sharply than the real one but writes
    nothing, so its rise is zero. The truth is measured here with the library's path ablation; agreement
    within 0.02 nats + 2%. Names the mistake when the answer matches a known one."""
    __tracebackhide__ = True
    from ..interventions import per_position_loss_with
    from ..heads import previous_token_head
    from ..metrics import eval_regions, eval_tokens
    from ..zoo import load

    toy = load("induction-2l", progress=False)
    decoy_model, decoy, real = _decoy_model(toy)
    if previous_token_head(decoy_model) != decoy:               # the decoy must win the previous-token score
        raise RuntimeError("check.key_source: the decoy head does not have the best previous-token score")
    cases = [("the model you passed", model), ("the book's toy model", toy),
             (f"the toy model with a decoy layer-0 head {decoy[0]}.{decoy[1]} that attends to the previous "
              f"token more sharply than {real[0]}.{real[1]} but writes nothing", decoy_model)]
    for case, m in cases:
        tokens = eval_tokens(m)
        regions = eval_regions(m)
        region = regions["repeated half"]
        want = _key_loss_rise(m, tokens, region)
        got = call(fn, m, tokens, region, case=case)
        if got is None:
            fail(f"on {case} your function returned None; did you forget `return`?")
        got = as_tensor(got, "your loss rises")
        n = m.cfg.n_heads
        if tuple(got.shape) != (n,):
            fail(f"on {case} your result has shape {shape_of(got)}, expected [{n}]: one loss rise per layer-0 head")
        if torch.allclose(got, want.double(), atol=0.02, rtol=0.02):
            continue

        def rises(**kw):
            clean = per_position_loss_with(m, tokens)[:, kw.pop("region", region)].mean()
            reg = kw.pop("reg", region)
            return torch.stack([per_position_loss_with(m, tokens, heads=[(0, h)], **kw)[:, reg].mean() - clean
                                for h in range(n)]).double()

        if got.abs().max() < 0.02:
            fail(f"on {case} every rise you found is near zero; measured on the repeated half with the heads "
                 f"removed from layer 1's keys (path='k') they are {[round(x, 3) for x in want.tolist()]}. "
                 f"Removing them from the values (path='v'), or measuring on the first copy, gives zeros")
        first = regions["first half"]
        known = [
            (rises(path="q"), "you removed the heads from layer 1's QUERIES (path='q'); the keys are path='k'"),
            (rises(path="v"), "you removed the heads from layer 1's VALUES (path='v'); the keys are path='k'"),
            (rises(), "you removed each head's whole output (from every path and the logits); remove it from "
                      "layer 1's keys only (path='k')"),
            (-want.double(), "the sign is flipped: the rise is ablated loss minus clean loss"),
            (want.double() * tokens.shape[0] * len(range(*region.indices(tokens.shape[1] - 1))),
             "you summed the loss over the batch and the region; take the mean"),
            (rises(path="k", region=first, reg=first), "you measured on the first copy; use the `region` you are "
                                                       "given (the repeated half)"),
        ]
        for bad, hint in known:
            if torch.allclose(got, bad, atol=0.02, rtol=0.02):
                fail(f"on {case}: {hint}")
        i = int((got - want).abs().argmax())
        fail(f"on {case} your rise for head 0.{i} is {got[i]:.3f} nats, the measured one {want[i]:.3f} "
             f"(all heads: yours {[round(x, 3) for x in got.tolist()]}, measured "
             f"{[round(x, 3) for x in want.tolist()]})")
    return "your path ablation agrees with the measurement on all three models, the decoy included."


# ---------------------------------------------------------------- resample ablation


@exercise("resample_ablation")
def resample_ablation(fn, model) -> str:
    """fn(model, tokens, reference, layer, head) -> per-position loss [batch, n - 1] of `tokens` with head
    (layer, head)'s output (hook_result) replaced, row by row and position by position, by its output on
    `reference` (same shape: another batch of inputs).

    Runs on `model`, and on a 3-layer x 3-head model with random weights (heads where layer != head); compares
    with the library's resample ablation, which the function must not call (the point is to build it with a
    hook). Names zero and mean ablation, the reference's own loss, a swapped layer and head, one reference
    row for every row, and a model left changed."""
    __tracebackhide__ = True
    import dataclasses

    from ..interventions import ablate, ablated, per_position_loss_with
    from ..metrics import per_position_loss
    from ..model import Transformer
    from ._core import delegates_to, intact

    used = delegates_to(fn, per_position_loss_with, ablate, ablated)
    if used:
        fail(f"your function calls the library's {used}; the point is to build resample ablation yourself: "
             f"run the model on `reference` with a cache, then replace the head's hook_result with a hook")
    torch.manual_seed(0)
    deep = Transformer(dataclasses.replace(model.cfg, n_layers=3, n_heads=3)).eval()
    cases = []
    for m, heads, name in ((model, [(m_l, m_h) for m_l in range(model.cfg.n_layers) for m_h in
                                    range(model.cfg.n_heads)][-2:], "the model you passed"),
                           (deep, [(1, 2), (2, 0)], "a 3-layer x 3-head model with random weights")):
        g = torch.Generator().manual_seed(3)
        n = min(48, m.cfg.n_ctx)
        tokens = torch.randint(1, m.cfg.d_vocab, (3, n), generator=g)
        reference = torch.randint(1, m.cfg.d_vocab, (3, n), generator=g)
        tokens[:, 0] = reference[:, 0] = BOS
        half = (n - 1) // 2
        tokens[:, 1 + half:1 + 2 * half] = tokens[:, 1:1 + half]       # a repeat, so heads matter
        reference[:, 1 + half:1 + 2 * half] = reference[:, 1:1 + half]
        for layer, head in heads:
            cases.append((m, tokens, reference, layer, head, f"{name}, head {layer}.{head}"))
    for m, tokens, reference, layer, head, case in cases:
        with intact(m, case):
            got = call(fn, m, tokens.clone(), reference.clone(), layer, head, case=case)
        if got is None:
            fail(f"on {case} your function returned None; did you forget `return`?")
        got = as_tensor(got, "your loss")
        want = per_position_loss_with(m, tokens, heads=[(layer, head)], method="resample", reference=reference)
        if tuple(got.shape) != tuple(want.shape):
            fail(f"on {case} your loss has shape {shape_of(got)}, expected {shape_of(want)} = [batch, n - 1]: the "
                 f"per-position loss (il.scores.per_position_loss)")
        if torch.allclose(got, want.double(), atol=1e-4):
            continue
        with torch.no_grad():
            known = [
                (per_position_loss_with(m, tokens, heads=[(layer, head)]), "that is zero ablation: the head's output "
                 "must be replaced by its output on `reference`, not by zeros"),
                (per_position_loss_with(m, tokens, heads=[(layer, head)], method="mean", reference=reference),
                 "that is mean ablation (the reference's mean over the batch); resample keeps each row's own value"),
                (per_position_loss(m(reference), reference), "that is the loss of the reference itself: run the "
                 "model on `tokens`, with only this head's output taken from the reference run"),
                (per_position_loss(m(tokens), tokens), "that is the clean loss: your replacement did not take "
                 "effect (a hook must return the edited tensor, on the right hook name)"),
            ]
            if layer < m.cfg.n_heads and head < m.cfg.n_layers and (head, layer) != (layer, head):
                known.append((per_position_loss_with(m, tokens, heads=[(head, layer)], method="resample",
                                                     reference=reference),
                              "you ablated head (head, layer): layer and head are swapped"))
            one_row = reference[:1].expand_as(reference)
            known.append((per_position_loss_with(m, tokens, heads=[(layer, head)], method="resample",
                                                 reference=one_row),
                          "every row got the first reference row's output; pair row i with reference row i"))
        for bad, hint in known:
            if torch.allclose(got, bad.double(), atol=1e-4):
                fail(f"on {case}: {hint}")
        fail(f"on {case} your loss differs from resample ablation by up to "
             f"{(got - want.double()).abs().max():.3g} nats")
    return f"resample ablation matches on all {len(cases)} heads, in both models."
