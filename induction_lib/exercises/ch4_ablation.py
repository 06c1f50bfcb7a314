"""Checks for chapter 4, "Proving it": ablation with hooks, path ablation, activation patching, and
predictions about which path and which patch carry the effect.

The instrument checks (zero_ablation_hook, k_path_ablation, patch_head) run the student's code on the
book's model and on models of other geometries built here (3 layers x 3 heads, so a layer index is never
a head index), through the model's hook API; they restore a model the student's code left changed and
say so. Where the library has the instrument (il.interventions), a function that calls it is refused by
name, and the library is used here only as an independent, tested oracle.
"""
from __future__ import annotations

import inspect

import torch

from ._core import (
    ExerciseError,
    as_tensor,
    call,
    delegates_to,
    exercise,
    expect_shape,
    fail,
    fmt,
    given,
    model_with_heads,
    shape_of,
)

# ---------------------------------------------------------------- models and a guard


def _base():
    from ..zoo import load

    return load("induction-2l", progress=False)


def _circuit_3x3(base):
    """The book's circuit in a 3-layer x 3-head model: previous-token head at 0.2 (book 0.0), two-back head
    at 0.0 (book 0.1), layer 1 empty (it writes nothing), induction heads at 2.1 and 2.2 (book 1.0, 1.1).
    The model has no LayerNorm, so layer 2 reads exactly what the book's layer 1 reads."""
    return model_with_heads(base, 3, 3, {(0, 2): (0, 0), (0, 0): (0, 1), (2, 1): (1, 0), (2, 2): (1, 1)},
                            write=True)


def _random_3x3(base, seed=5):
    """The same heads with random weights in every other head, so every path of every head matters."""
    with torch.random.fork_rng():
        return model_with_heads(base, 3, 3, {(0, 2): (0, 0), (0, 0): (0, 1), (2, 1): (1, 0), (2, 2): (1, 1)},
                                seed=seed, write=True)


class _guard:
    """Fail, after restoring them, if the student's code changed any of `models` (weights, hooks, train/eval
    mode). The diagnosis takes precedence over a wrong-answer message raised inside the block, since a changed
    model explains every later symptom."""

    def __init__(self, models, who: str):
        self.models, self.who = [m for m in models if m is not None], who

    @staticmethod
    def _hooks(model):
        return {(id(m), k) for m in model.modules() for d in (m._forward_hooks, m._forward_pre_hooks) for k in d}

    def __enter__(self):
        self.saved = [({k: v.detach().clone() for k, v in m.state_dict().items()}, m.training, self._hooks(m))
                      for m in self.models]
        return self

    def __exit__(self, kind, err, tb):
        __tracebackhide__ = True
        problems = []
        for m, (state, training, hooks) in zip(self.models, self.saved):
            changed = [k for k, v in m.state_dict().items() if not torch.equal(v, state[k])]
            if changed:
                m.load_state_dict(state)
                problems.append(f"changed the model's weights ({', '.join(changed[:3])}"
                                f"{' …' if len(changed) > 3 else ''})")
            new = self._hooks(m) - hooks
            if new:
                for mod in m.modules():
                    for d in (mod._forward_hooks, mod._forward_pre_hooks):
                        for k in list(d):
                            if (id(mod), k) in new:
                                d.pop(k)
                problems.append(f"left {len(new)} hook(s) registered on the model")
            if m.training != training:
                m.train(training)
                problems.append("switched the model's train/eval mode")
        if problems and (kind is None or issubclass(kind, ExerciseError)):
            fail(f"{self.who} {'; '.join(dict.fromkeys(problems))}. The check restored the model. "
                 f"Intervene only through what a hook returns (a new activation), never by editing weights in "
                 f"place (e.g. W_O[...] = 0 or .zero_()), and register hooks only inside model.run_with_hooks "
                 f"or a `with model.hooks(...)` block, which removes them afterwards")
        return False


def _eval(model, batch=8, seed=21):
    from ..scores import eval_layout, eval_tokens

    L, prefix = eval_layout(model)
    return eval_tokens(model, batch=batch, half_len=L, prefix_len=prefix, seed=seed), L, 1 + prefix


def _logits(out, case, shape):
    __tracebackhide__ = True
    if out is None:
        fail(f"on {case} your function returned None; return the logits")
    if isinstance(out, tuple):
        fail(f"on {case} your function returned a tuple ({len(out)} items); return only the logits "
             f"[batch, pos, d_vocab] (run_with_hooks returns just them, run_with_cache returns (logits, cache))")
    t = as_tensor(out, f"on {case} your logits")
    expect_shape(t, shape, f"on {case} your logits",
                 {shape[:2]: "that is one number per position (a loss?); return the logits [batch, pos, d_vocab]"})
    return t


def _close(a, b, rel=1e-4):
    return bool(((a - b).abs().max() <= rel * (1.0 + b.abs().max())).item())


# ---------------------------------------------------------------- 4.1 the zero-ablation hook


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


def _zeroed_heads(out):
    return [h for h in range(out.shape[2]) if (out[:, :, h] == 0).all()]


def _check_zeroed(out, result, head, case, fixed=None):
    __tracebackhide__ = True
    n_heads = result.shape[2]
    if not (out[:, :, head] == 0).all():
        zero_pos = [p for p in range(result.shape[1]) if (out[:, p] == 0).all()]
        if zero_pos == [head] and result.shape[1] > head:
            fail(f"on {case} you zeroed position {head} (axis 1); the heads are axis 2 of "
                 f"[batch, pos, head, d_model]: zero result[:, :, {head}]")
        zeroed = _zeroed_heads(out)
        if fixed is not None and zeroed == [fixed]:
            fail(f"on {case} you zeroed head {fixed}, the same head whatever `head` was — did you use the layer "
                 f"index (or a fixed number) instead of the `head` argument? Zero result[:, :, head]")
        fail(f"on {case} head {head}'s output is not zero; zero result[:, :, {head}, :] "
             f"(axes [batch, pos, head, d_model])")
    for h in range(n_heads):
        if h != head and not torch.equal(out[:, :, h], result[:, :, h]):
            what = "zeroed too" if (out[:, :, h] == 0).all() else "changed"
            fail(f"on {case} head {h}'s output was {what}; only head {head} should be zeroed, the others "
                 f"left exactly as they were")


def _repeat_loss(logits, tokens, L, start):
    from ..scores import per_position_loss

    # positions start+L … start+2L-2 predict the second copy's tokens 2 … L (the ones induction can predict)
    return per_position_loss(logits, tokens)[:, start + L:start + 2 * L - 1].mean().item()


@exercise("zero_ablation_hook")
def zero_ablation_hook(hook_fn, model, head: int | None = None, layer: int = 1) -> str:
    """hook_fn(result, head) -> result with that head's output zeroed (result: [batch, pos, head,
    d_model], the activation at `blocks.{layer}.attn.hook_result`). A one-argument hook_fn(result)
    that zeroes a fixed head is accepted too; then pass that head as `head=`.

    Cases: random activations of the model's geometry and of a 3-head geometry (every head, when the
    hook takes the head; a hook that ignores `head` and zeroes a fixed one, e.g. the layer index, fails
    there); the student's model (through `model.hooks`, the strongest induction head of `layer` by
    default: its output must be zero, the others unchanged, the repeated-half loss must rise); a 3-layer x
    3-head model built from the book's heads (through `model.run_with_hooks` with fn(act, hook), head 2.2,
    an induction head). Rejects: zeroing position h (axis 1) instead of head h, zeroing every head, a fixed
    head, editing in place, returning None, a hook that changes the model's weights or leaves a hook
    registered (the check restores the model, then says so)."""
    __tracebackhide__ = True
    from ..scores import diagonal_induction_score_from_pattern

    arity = _hook_arity(hook_fn)
    cfg = model.cfg
    if not 0 <= layer < cfg.n_layers:
        fail(f"layer must be between 0 and {cfg.n_layers - 1}, got {layer!r}")
    if arity == 1:
        given(head)
        if not (isinstance(head, int) and 0 <= head < cfg.n_heads):
            fail(f"your hook takes only the activation; pass the head it zeroes as head=… (0 … {cfg.n_heads - 1})")
    base = _base()
    m3 = _circuit_3x3(base) if arity == 2 else None
    with _guard([model, m3, base], "your hook"):
        g = torch.Generator().manual_seed(4)
        geometries = [(cfg.n_heads, cfg.d_model)] + ([(3, 8)] if arity == 2 else [])
        for n_heads, d_model in geometries:
            result = torch.randn(2, 5, n_heads, d_model, generator=g)
            heads = [head] if arity == 1 else list(range(n_heads))
            outs = {}
            for h in heads:
                case = f"a random [2, 5, {n_heads}, {d_model}] activation (head {h})"
                outs[h] = _apply(hook_fn, result, h, arity, case)
            fixed = None
            if len(outs) > 1 and len({tuple(_zeroed_heads(o)) for o in outs.values()}) == 1:
                z = _zeroed_heads(next(iter(outs.values())))
                fixed = z[0] if len(z) == 1 else None
            for h, out in outs.items():
                _check_zeroed(out, result, h, f"a random [2, 5, {n_heads}, {d_model}] activation (head {h})", fixed)

        # the student's model, through model.hooks (fn(activation))
        tokens, L, start = _eval(model)
        name = f"blocks.{layer}.attn.hook_result"
        keep = lambda n: n in (name, f"blocks.{layer}.attn.hook_pattern")  # noqa: E731
        logits, clean = model.run_with_cache(tokens, names=keep)
        scores = diagonal_induction_score_from_pattern(clean.pattern(layer), L, start)
        target = int(scores.argmax()) if head is None else head  # the strongest induction head, by default
        hook = (lambda r: hook_fn(r, target)) if arity == 2 else hook_fn
        ablated_logits, ablated = model.run_with_cache(tokens, names=keep, fwd_hooks=[(name, hook)])
        case = f"your model ({name}, head {target})"
        _check_zeroed(ablated[name], clean[name], target, case)
        loss, loss_ablated = _repeat_loss(logits, tokens, L, start), _repeat_loss(ablated_logits, tokens, L, start)
        score = scores[target].item()
        if score > 0.3 and not loss_ablated > loss + 0.05:
            fail(f"head {layer}.{target} is an induction head (diagonal score {score:.2f}), but zeroing it with "
                 f"your hook left the loss on the repeated half at {loss_ablated:.3f} (clean {loss:.3f}); the "
                 f"ablation did not reach the model — return the edited tensor from the hook")
        summary = f"head {layer}.{target} zeroed; loss on the repeat {loss:.2f} → {loss_ablated:.2f}"

        if m3 is not None:  # 3 layers x 3 heads, TransformerLens-style hooks fn(act, hook)
            tokens3, L3, start3 = _eval(m3)
            name3, seen = "blocks.2.attn.hook_result", {}

            def hook3(act, hook):
                seen["before"] = act.clone()
                out = hook_fn(act, 2)
                seen["after"] = out
                return out

            clean3 = m3.run_with_hooks(tokens3)
            out3 = m3.run_with_hooks(tokens3, fwd_hooks=[(name3, hook3)])
            case = "a 3-layer x 3-head model (blocks.2.attn.hook_result, head 2, an induction head)"
            if "after" not in seen:
                fail(f"on {case} your hook was never called")
            if isinstance(seen["after"], torch.Tensor):
                _check_zeroed(seen["after"], seen["before"], 2, case)
            l0, l1 = _repeat_loss(clean3, tokens3, L3, start3), _repeat_loss(out3, tokens3, L3, start3)
            if not l1 > l0 + 0.05:
                fail(f"on {case} zeroing head 2.2 left the repeated-half loss at {l1:.3f} (clean {l0:.3f}); "
                     f"return the edited tensor from the hook")
            summary += "; 3×3 model too"
    return summary + "."


# ---------------------------------------------------------------- 4.2 predict the path

PATH_OPTIONS = {
    "q": "the layer-1 heads' queries",
    "k": "the layer-1 heads' keys",
    "v": "the layer-1 heads' values",
    "direct": "the direct path to the logits",
    "q+k": "queries and keys, about equally",
    "spread": "spread over all paths, none dominant",
}
_SYNONYMS = {"query": "q", "queries": "q", "key": "k", "keys": "k", "value": "v", "values": "v",
             "logits": "direct", "direct path": "direct", "unembed": "direct", "residual": "direct",
             "qk": "q+k", "q and k": "q+k", "k+q": "q+k", "q,k": "q+k", "queries and keys": "q+k",
             "keys and queries": "q+k", "both": "q+k", "all": "spread", "everywhere": "spread", "every path": "spread",
             "equally": "spread"}


@exercise("path_prediction")
def path_prediction(answer) -> str:
    """answer: through which path does most of the previous-token head's effect on the repeated-half loss
    pass? One of PATH_OPTIONS' keys ("q", "k", "v", "direct", "q+k", "spread"; common synonyms accepted).
    Expected "k" from the circuit: both induction heads need the key at B's position to say "the token
    before me was A"; only the two-token head's query reads the previous token too. Every wrong option
    gets its own explanation, none of which quotes the measurement."""
    __tracebackhide__ = True
    given(answer)
    if not isinstance(answer, str):
        fail(f"answer with one of the strings {', '.join(repr(k) for k in PATH_OPTIONS)}; got {answer!r}")
    a = " ".join(answer.strip().lower().split())
    a = _SYNONYMS.get(a, a)
    if a not in PATH_OPTIONS:
        fail(f"answer with one of {', '.join(repr(k) for k in PATH_OPTIONS)}; got {answer!r}")
    if a == "k":
        return "the keys."
    reasons = {
        "q": "the queries carry only part of it. The query sits at the second A and is built from A itself, "
             "which is in the residual stream without any layer-0 head; only a head that also matches the "
             "token *before* A needs more in its query. Ask what the *other* side of the match needs",
        "v": "the values decide what is copied once a position is chosen (the token that stands there, "
             "already in the residual stream); the previous-token information is needed to *choose* the "
             "position",
        "direct": "written straight into the logits, the previous-token head's output would raise the token "
                  "*before* the current one, which is not the next token; its use is to inform a later head",
        "q+k": "the two paths are not symmetric: one of them every induction head needs, the other only the "
               "head that matches two tokens. Which side of the match, for a one-token induction head, cannot "
               "work without the previous-token head?",
        "spread": "a circuit moves information along particular paths; chapter 3's composition scores put "
                  "the previous-token head's output into some inputs of layer 1 and nearly nothing into others",
    }
    fail(f"'{a}' ({PATH_OPTIONS[a]}) is not the path — {reasons[a]}")


# ---------------------------------------------------------------- 4.3 path ablation (K path)


def _library_instruments():
    from .. import interventions as iv

    return (iv.ablate_path, iv.ablated, iv.per_position_loss_with, iv.induction_attention_with,
            iv.head_ablation_effects, iv.ablate)


def _lib_logits(model, tokens, heads, path=None, layers=None):
    from ..interventions import ablate, ablate_path

    with torch.no_grad():
        if path is None:
            with ablate(model, heads):
                return model(tokens).double()
        with ablate_path(model, heads, path, layers=layers):
            return model(tokens).double()


def _random_tokens(model, batch, n, seed):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(1, model.cfg.d_vocab, (batch, n), generator=g)
    t[:, 0] = 0
    return t


@exercise("k_path_ablation")
def k_path_ablation(fn, model) -> str:
    """fn(model, tokens, layer, head) -> logits [batch, pos, d_vocab] of `model` on `tokens` with head
    (layer, head)'s output removed (zero ablation) from the KEYS of every later layer only: in each later
    layer's `blocks.{l}.attn.hook_k_input` the head's output (recorded at `blocks.{layer}.attn.hook_result`
    in the same forward pass) is subtracted; queries, values and the direct path still see it.

    Cases: the book's model (its previous-token head); a 3-layer x 3-head model with random weights in
    every head but the copied ones, for heads 0.2 (two receiving layers) and 1.0 (one). Expected logits
    from il.interventions.ablate_path (the library's tested instrument, used as an oracle). Rejects
    (named): calling the library, removing the whole head, the Q or V path, only the next layer, the head
    given as (head, layer), the whole layer's output, nothing removed; a model left changed."""
    __tracebackhide__ = True
    lib = delegates_to(fn, *_library_instruments())
    if lib:
        fail(f"your function calls il.interventions.{lib}; the point is to build the instrument: record the "
             f"head's output at blocks.{{layer}}.attn.hook_result and subtract it at the later layers' "
             f"hook_k_input, with model.run_with_hooks")
    from ..scores import previous_token_scores

    base = _base()
    r3 = _random_3x3(base)
    prev = int(previous_token_scores(model)[0].argmax())
    cases = [(f"your model, head 0.{prev}", model, _eval(model, batch=4)[0], 0, prev),
             ("a 3-layer x 3-head model with random weights, head 0.2 (read by layers 1 and 2)",
              r3, _random_tokens(r3, 3, 24, 1), 0, 2),
             ("a 3-layer x 3-head model with random weights, head 1.0 (read by layer 2)",
              r3, _random_tokens(r3, 3, 24, 2), 1, 0)]
    for case, m, tokens, layer, head in cases:
        expected = _lib_logits(m, tokens, [(layer, head)], "k")
        before = tokens.clone()
        with _guard([m], f"on {case} your function"):
            out = call(fn, m, tokens, layer, head, case=case)
        if not torch.equal(tokens, before):
            fail(f"on {case} your function changed the tokens in place")
        got = _logits(out, case, tuple(expected.shape))
        if _close(got, expected):
            continue
        n_layers, n_heads = m.cfg.n_layers, m.cfg.n_heads
        alternatives = [
            (lambda: m(tokens).double(), "nothing was removed: the logits are the clean model's. Return the "
             "logits of the run with your hooks (model.run_with_hooks returns them)"),
            (lambda: _lib_logits(m, tokens, [(layer, head)]), "that removes the whole head (all its paths, and "
             "the direct path too); subtract its output only where the keys are computed, at hook_k_input"),
            (lambda: _lib_logits(m, tokens, [(layer, head)], "q"), "that is the Q path (hook_q_input); the keys "
             "read hook_k_input"),
            (lambda: _lib_logits(m, tokens, [(layer, head)], "v"), "that is the V path (hook_v_input); the keys "
             "read hook_k_input"),
        ]
        if n_layers - layer > 2:
            alternatives.append((lambda: _lib_logits(m, tokens, [(layer, head)], "k", layers=[layer + 1]),
                                 f"you removed it from layer {layer + 1}'s keys only; every later layer "
                                 f"({', '.join(map(str, range(layer + 1, n_layers)))}) reads it"))
        if (head, layer) != (layer, head) and head < n_layers - 1 and layer < n_heads:
            alternatives.append((lambda: _lib_logits(m, tokens, [(head, layer)], "k"),
                                 f"you removed head {head}.{layer}: layer and head swapped"))
        alternatives.append((lambda: _lib_logits(m, tokens, [(layer, h) for h in range(n_heads)], "k"),
                             f"you subtracted every head of layer {layer} (the layer's whole attention output); "
                             f"take only result[:, :, head]"))
        hint = next((h for make, h in alternatives if _close(got, make())), "")
        err = (got - expected).abs().max().item()
        fail(f"on {case} your logits differ from the K-path ablation by up to {fmt(err)}"
             + (f" — {hint}" if hint else " — subtract the head's output (recorded in the same forward pass at "
                "hook_result) from hook_k_input of every later layer, and nothing else"))
    return f"all {len(cases)} cases passed (3 heads, 3 layers too)."


# ---------------------------------------------------------------- 4.4 activation patching


@exercise("patch_head")
def patch_head(fn, model) -> str:
    """fn(model, clean, corrupted, layer, head, pos) -> logits [batch, pos, d_vocab] of `model` run on
    `corrupted`, with head (layer, head)'s output at position `pos` (and only there) replaced by its
    output on `clean` (hook point blocks.{layer}.attn.hook_result).

    Cases: a last-layer head of the book's model, where the answer follows from the residual stream being
    a sum: only position `pos` changes, by (clean output − corrupted output) @ W_U; a layer-0 head of a
    3-layer x 3-head model with random weights (positions before `pos` must be unchanged, and a random
    projection of the logits must match il.interventions.patch_heads, used as an oracle). Rejects (named):
    patching every position, the wrong position (off by one), the wrong head (e.g. the layer index), the
    clean run with a corrupted patch (reversed), returning the corrupted run unchanged, calling the library;
    a model left changed."""
    __tracebackhide__ = True
    from ..interventions import corrupt_earlier_copy, patch_heads

    lib = delegates_to(fn, patch_heads, *_library_instruments())
    if lib:
        fail(f"your function calls il.interventions.{lib}; build the patch yourself: cache the clean run, then "
             f"run the corrupted input with a hook at blocks.{{layer}}.attn.hook_result")

    def run(case, m, clean, corrupted, layer, head, pos):
        __tracebackhide__ = True
        c0, k0 = clean.clone(), corrupted.clone()
        with _guard([m], f"on {case} your function"):
            out = call(fn, m, clean, corrupted, layer, head, pos, case=case)
        if not (torch.equal(clean, c0) and torch.equal(corrupted, k0)):
            fail(f"on {case} your function changed its token inputs in place")
        return _logits(out, case, (*clean.shape, m.cfg.d_vocab))

    # 1. the book's model, a head of the last layer: a first-principles answer
    cfg = model.cfg
    tokens, L, start = _eval(model, batch=4, seed=8)
    c = start + 5
    corrupted = corrupt_earlier_copy(tokens, c, 1, cfg.d_vocab, seed=3)
    last, pos = cfg.n_layers - 1, c + L
    head = (last + 1) % cfg.n_heads          # a head index that is not the layer index
    name = f"blocks.{last}.attn.hook_result"
    with torch.no_grad():
        _, cc = model.run_with_cache(tokens, names=[name])
        lk, ck = model.run_with_cache(corrupted, names=[name])
        clean_logits = model(tokens).double()
    lk, W_U = lk.double(), model.W_U.detach().double()
    delta = (cc[name] - ck[name]).double() @ W_U                      # [batch, pos, head, vocab]

    def expect(p, h):
        e = lk.clone()
        e[:, p] += delta[:, p, h]
        return e

    case = f"your model, head {last}.{head} (the last layer), position {pos}"
    got = run(case, model, tokens, corrupted, last, head, pos)
    if not _close(got, expect(pos, head)):
        changed = [p for p in range(got.shape[1]) if not _close(got[:, p], lk[:, p])]
        hints = []
        if not changed:
            hints.append("nothing changed: these are the corrupted run's logits. Return the logits of the run "
                         "with your hook, and make the hook return the patched activation")
        elif _close(torch.cat([got[:, :pos], got[:, pos + 1:]], 1),
                    torch.cat([clean_logits[:, :pos], clean_logits[:, pos + 1:]], 1)):
            hints.append("these are the clean run's logits: run the CORRUPTED input and patch in the clean output")
        elif _close(got, lk + delta[:, :, head]):
            hints.append(f"you patched every position; patch only result[:, pos, head] (pos = {pos})")
        elif len(changed) > 1 and _close(got[:, pos], expect(pos, head)[:, pos]):
            hints.append(f"you patched positions {changed[:6]}{' …' if len(changed) > 6 else ''}; patch only "
                         f"result[:, {pos}, {head}]")
        for p in (pos - 1, pos + 1):
            if _close(got, expect(p, head)):
                hints.append(f"you patched position {p}; the position is `pos` = {pos} (axis 1)")
        for h in range(cfg.n_heads):
            if h != head and _close(got, expect(pos, h)):
                hints.append(f"you patched head {h} (did you use the layer index {last}?); the head is axis 2")
        fail(f"on {case} your logits are not the corrupted run with that one activation patched"
             + (f" — {hints[0]}" if hints else " — only position pos should change, by the difference of the "
                "head's clean and corrupted outputs times W_U"))

    # 2. a layer-0 head of a 3-layer x 3-head random model: causality, and the library as an oracle
    r3 = _random_3x3(_base())
    clean3 = _random_tokens(r3, 3, 20, 5)
    corrupted3 = clean3.clone()
    corrupted3[:, 6] = (clean3[:, 6] % (r3.cfg.d_vocab - 1)) + 1
    layer, head, pos = 0, 2, 9
    case = f"a 3-layer x 3-head model with random weights, head {layer}.{head}, position {pos}"
    got = run(case, r3, clean3, corrupted3, layer, head, pos)
    with torch.no_grad():
        base_logits = r3(corrupted3).double()
    if not _close(got[:, :pos], base_logits[:, :pos]):
        fail(f"on {case} the logits before position {pos} changed; a patch at {pos} cannot reach earlier "
             f"positions (attention is causal) — patch only position {pos}, not a range")
    R = torch.randn(got.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    metric = lambda logits: (logits.double() * R).sum().item()  # noqa: E731
    share = patch_heads(r3, clean3, corrupted3, metric=metric, positions=[pos])[layer, head, pos].item()
    with torch.no_grad():
        m_clean, m_corr = metric(r3(clean3)), metric(base_logits)
    want = m_corr + share * (m_clean - m_corr)
    if abs(metric(got) - want) > 1e-4 * (1 + abs(want)):
        shares = patch_heads(r3, clean3, corrupted3, metric=metric, positions=[pos])[layer, :, pos]
        for h in range(r3.cfg.n_heads):
            other = m_corr + shares[h].item() * (m_clean - m_corr)
            if h != head and abs(metric(got) - other) <= 1e-4 * (1 + abs(other)):
                fail(f"on {case} you patched head {layer}.{h}" + (" — the layer index, not the head" if h == layer
                     else "") + f"; patch head {head} (axis 2 of hook_result)")
        fail(f"on {case} your patched logits differ from the patched run (a random projection of them is "
             f"{fmt(metric(got))}, expected {fmt(want)}); patch result[:, pos, head] of layer {layer} only")
    return "both geometries passed."


# ---------------------------------------------------------------- 4.5 predict the repair


@exercise("repair_prediction")
def repair_prediction(predicted) -> str:
    """predicted: the share of the damage at positions c + L − 1 and c + L that the previous-token head's
    clean output at c + 1 repairs (two numbers, c + L − 1 first). From the circuit: 0 (the prediction at
    c + L − 1 copies the corrupted token from position c, which a layer-0 head at c + 1 does not touch) and
    1 (the prediction at c + L lost exactly the previous-token message in the key at c + 1).

    Tolerance 0.15 per entry: the answer is all-or-nothing, the nearest plausible wrong answer (a half
    repair, 0.5) is 0.5 away, and the model measures 0.0x and 0.9x (chapter 4's hidden asserts)."""
    __tracebackhide__ = True
    given(predicted)
    p = as_tensor(predicted, "your prediction").flatten()
    if p.numel() != 2:
        fail(f"give two numbers, the repaired share at c + L − 1 and at c + L; got {p.numel()}")
    if not torch.isfinite(p).all() or (p < -0.05).any() or (p > 1.05).any():
        fail(f"a share of the damage repaired is between 0 (nothing) and 1 (everything); got {p.tolist()}")
    a, b = p.tolist()
    ok_a, ok_b = abs(a) <= 0.15, abs(b - 1) <= 0.15
    if ok_a and ok_b:
        return "0 and 1, as the circuit says."
    if abs(a - 1) <= 0.15 and abs(b) <= 0.15:
        fail("you swapped the two positions: the list is [c + L − 1, c + L]")
    if not ok_a:
        fail(f"at c + L − 1 you predict {fmt(a)}: the induction heads there find their match at c (its previous "
             f"token, at c − 1, is clean) and copy what stands at c — the corrupted token. What does the "
             f"previous-token head's output at c + 1 change about that?")
    fail(f"at c + L you predict {fmt(b)}: the query holds the clean token of c and looks for a key whose "
         f"previous token is that token. What did the corruption take from the key at c + 1, and what does "
         f"patching the previous-token head's clean output there give back?")
