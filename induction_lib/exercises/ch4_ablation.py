"""Checks for chapter 4, "Proving it": ablation with hooks, and which path carries the effect."""
from __future__ import annotations

import inspect

import torch

from ._core import call, exercise, fail, given, shape_of


def _hook_arity(hook_fn) -> int:
    try:
        params = list(inspect.signature(hook_fn).parameters.values())
    except (TypeError, ValueError):
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    params = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return 2 if len(params) >= 2 else 1


def _apply(hook_fn, result, head, arity, case):
    __tracebackhide__ = True
    before = result.clone()
    out = call(hook_fn, result, head, case=case) if arity == 2 else call(hook_fn, result, case=case)
    if out is None:
        if not torch.equal(result, before):
            fail(f"on {case} your hook changed the activation in place and returned None. Return a new tensor "
                 f"instead (a hook replaces the activation with what it returns), and leave its input alone: "
                 f"the same tensor may be a cached activation you still need")
        fail(f"on {case} your hook returned None; a hook replaces the activation only if it returns a tensor")
    if not isinstance(out, torch.Tensor):
        fail(f"on {case} your hook returned {type(out).__name__}, expected a tensor shaped like its input")
    if not torch.equal(result, before):
        fail(f"on {case} your hook changed its input tensor in place (e.g. `result[:, :, h] = 0`). Work on a copy "
             f"(`result = result.clone()` first) or build a new tensor: the input may be a cached activation "
             f"that later cells still need, and an in-place edit silently changes it")
    if out.shape != result.shape:
        fail(f"on {case} your hook returned shape {shape_of(out)}, expected the input's shape {shape_of(result)}")
    return out


def _check_zeroed(out, result, head, case):
    __tracebackhide__ = True
    n_heads = result.shape[2]
    if not (out[:, :, head] == 0).all():
        zero_pos = [p for p in range(result.shape[1]) if (out[:, p] == 0).all()]
        if zero_pos == [head] and result.shape[1] > head:
            fail(f"on {case} you zeroed position {head} (axis 1); the heads are axis 2 of "
                 f"[batch, pos, head, d_model]: zero result[:, :, {head}]")
        fail(f"on {case} head {head}'s output is not zero; zero result[:, :, {head}, :] "
             f"(axes [batch, pos, head, d_model])")
    for h in range(n_heads):
        if h != head and not torch.equal(out[:, :, h], result[:, :, h]):
            what = "zeroed too" if (out[:, :, h] == 0).all() else "changed"
            fail(f"on {case} head {h}'s output was {what}; only head {head} should be zeroed, the others "
                 f"left exactly as they were")


@exercise("zero_ablation_hook")
def zero_ablation_hook(hook_fn, model, head: int | None = None, layer: int = 1) -> str:
    """hook_fn(result, head) -> result with that head's output zeroed (result: [batch, pos, head,
    d_model], the activation at `blocks.{layer}.attn.hook_result`). A one-argument hook_fn(result)
    that zeroes a fixed head is accepted too; then pass that head as `head=`.

    The hook must return a new tensor and leave its input unchanged (an in-place edit would corrupt
    a cached activation). Cases: a random tensor (every head, when the hook takes the head), then the
    model itself via model.hooks: the head's output is zero, the other heads' outputs are unchanged,
    and the loss on the repeated half is reported (and must rise if the head is an induction head).
    Rejects: zeroing position h (axis 1) instead of head h, zeroing every head, editing in place,
    returning None."""
    __tracebackhide__ = True
    from ..scores import diagonal_induction_score_from_pattern, eval_layout, eval_tokens, per_position_loss

    arity = _hook_arity(hook_fn)
    cfg = model.cfg
    if not 0 <= layer < cfg.n_layers:
        fail(f"layer must be between 0 and {cfg.n_layers - 1}, got {layer!r}")
    if arity == 1:
        given(head)
        if not (isinstance(head, int) and 0 <= head < cfg.n_heads):
            fail(f"your hook takes only the activation; pass the head it zeroes as head=… (0 … {cfg.n_heads - 1})")
        heads = [head]
    else:
        heads = list(range(cfg.n_heads)) if head is None else [head]
    g = torch.Generator().manual_seed(4)
    result = torch.randn(2, 5, cfg.n_heads, cfg.d_model, generator=g)
    for h in heads:
        case = f"a random [2, 5, {cfg.n_heads}, {cfg.d_model}] activation (head {h})"
        _check_zeroed(_apply(hook_fn, result, h, arity, case), result, h, case)

    # the library's held-out layout, BOS + prefix + r + r, shrunk to fit the model's context
    L, prefix = eval_layout(model)
    start = 1 + prefix
    tokens = eval_tokens(model, batch=8, half_len=L, prefix_len=prefix, seed=21)
    name = f"blocks.{layer}.attn.hook_result"
    keep = lambda n: n in (name, f"blocks.{layer}.attn.hook_pattern")  # noqa: E731
    logits, clean = model.run_with_cache(tokens, names=keep)
    scores = diagonal_induction_score_from_pattern(clean.pattern(layer), L, start)
    target = int(scores.argmax()) if head is None else head  # the strongest induction head, by default
    hook = (lambda r: hook_fn(r, target)) if arity == 2 else hook_fn
    ablated_logits, ablated = model.run_with_cache(tokens, names=keep, fwd_hooks=[(name, hook)])
    case = f"the model ({name}, head {target})"
    _check_zeroed(ablated[name], clean[name], target, case)
    # positions start+L … start+2L-2 predict the second copy's tokens 2 … L (the ones induction can predict)
    repeat = slice(start + L, start + 2 * L - 1)
    loss = per_position_loss(logits, tokens)[:, repeat].mean().item()
    loss_ablated = per_position_loss(ablated_logits, tokens)[:, repeat].mean().item()
    score = scores[target].item()
    if score > 0.3 and not loss_ablated > loss + 0.05:
        fail(f"head {layer}.{target} is an induction head (diagonal score {score:.2f}), but zeroing it with your "
             f"hook left the loss on the repeated half at {loss_ablated:.3f} (clean {loss:.3f}); the ablation "
             f"did not reach the model — return the edited tensor from the hook")
    return f"head {layer}.{target} zeroed; loss on the repeat {loss:.2f} → {loss_ablated:.2f}."


@exercise("path_prediction")
def path_prediction(answer) -> str:
    """answer: which input of the layer-1 induction heads ("q", "k" or "v") carries most of the
    previous-token head's effect. Expected "k": the previous-token head writes "the token before me
    was X" into each position, and the induction heads' KEYS read it, so the query (the current
    token) finds the position just after the earlier X. (A head that matches two tokens also reads
    it in its query: "q" is told it carries only part of the effect.)"""
    __tracebackhide__ = True
    given(answer)
    if not isinstance(answer, str):
        fail(f"answer with one of the strings 'q', 'k' or 'v'; got {answer!r}")
    a = answer.strip().lower()
    a = {"query": "q", "queries": "q", "key": "k", "keys": "k", "value": "v", "values": "v"}.get(a, a)
    if a not in ("q", "k", "v"):
        fail(f"answer with one of 'q', 'k' or 'v'; got {answer!r}")
    if a == "k":
        return "the keys."
    if a == "q":
        fail("'q' carries only part of it — a query that matches two tokens (the current one and the one "
             "before) does read the previous-token head, but a one-token induction head's query only needs the "
             "current token, which is in the residual stream already. What every induction head needs is the "
             "other side saying 'the token before me was X'. Remove each path alone and compare the losses")
    fail("'v' is not the path — the values decide what is copied once a position is chosen (the token "
         "itself); the previous-token information is needed to choose the position. Try removing that path "
         "alone and see how little the loss moves")
