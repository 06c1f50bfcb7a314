"""The exercise checks of chapters 4-6 (induction_lib.exercises.check), and split_prediction.

For every check: the reference solution passes, unconventional right answers pass (float32, numpy,
loops, einsum, other hook styles, a least-squares fit instead of a crossing, ...), and at least five
realistic wrong answers of different kinds are rejected with an ExerciseError whose message names the
mistake. The stub test ("not implemented yet") for every check is in tests/test_exercises.py (STUB_CALLS).

The reference solutions live here (and in the chapter notebooks), never in the check modules.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import induction_lib as il
from induction_lib import hopfield as hf
from induction_lib.exercises import ExerciseError, check
from _fixtures import passes, patch_by_hand, rejects, book_model, small_model  # noqa: F401


# ================================================================ 4.1 zero_ablation_hook


def zero_head_ref(result, head):
    result = result.clone()
    result[:, :, head] = 0.0
    return result


def zero_head_mask(result, head):
    """Right: a multiplicative mask, no assignment at all."""
    mask = torch.ones(result.shape[2], 1, dtype=result.dtype)
    mask[head] = 0
    return result * mask


def zero_head_where(result, head):
    """Right: torch.where over a head-index grid (float32 in, float32 out)."""
    idx = torch.arange(result.shape[2]).view(1, 1, -1, 1)
    return torch.where(idx == head, torch.zeros((), dtype=result.dtype), result)


def zero_head_in_place(result, head):
    result[:, :, head] = 0
    return result


def zero_head_position_axis(result, head):
    result = result.clone()
    result[:, head] = 0
    return result


def zero_head_returns_none(result, head):
    result[:, :, head] = 0


def zero_head_all_heads(result, head):
    return torch.zeros_like(result)


def zero_head_layer_index(result, head, layer=1):
    """Wrong: zeroes the head numbered like the layer, whatever `head` is."""
    return zero_head_ref(result, layer)


def test_zero_ablation_hook_right(book_model, small_model, capsys):
    passes(check.zero_ablation_hook, zero_head_ref, book_model, capsys=capsys)
    passes(check.zero_ablation_hook, zero_head_mask, book_model, capsys=capsys)
    passes(check.zero_ablation_hook, zero_head_where, small_model, capsys=capsys)
    passes(check.zero_ablation_hook, lambda r: zero_head_ref(r, 1), book_model, head=1)


def test_zero_ablation_hook_wrong(book_model):
    rejects(check.zero_ablation_hook, zero_head_in_place, book_model, match="in place")
    rejects(check.zero_ablation_hook, zero_head_position_axis, book_model, match="zeroed position")
    rejects(check.zero_ablation_hook, zero_head_returns_none, book_model, match="returned None")
    rejects(check.zero_ablation_hook, zero_head_all_heads, book_model, match="zeroed too")
    rejects(check.zero_ablation_hook, zero_head_layer_index, book_model, match="did you use the layer index")


def test_zero_ablation_hook_restores_a_changed_model(book_model):
    """A hook that also zeroes W_O (or leaves a hook behind) is reported as such, and the model restored."""
    before = {k: v.clone() for k, v in book_model.state_dict().items()}

    def zero_and_break(result, head):
        with torch.no_grad():
            book_model.blocks[1].attn.W_O[min(head, 1)].zero_()
        return zero_head_ref(result, head)

    rejects(check.zero_ablation_hook, zero_and_break, book_model, match="your hook changed the model's weights")
    assert all(torch.equal(v, before[k]) for k, v in book_model.state_dict().items())

    def zero_and_register(result, head):
        point = book_model.blocks[0].attn.hook_result
        if not point._forward_hooks:
            point.register_forward_hook(lambda m, i, o: None)
        return zero_head_ref(result, head)

    rejects(check.zero_ablation_hook, zero_and_register, book_model, match="left 1 hook")
    assert not book_model.blocks[0].attn.hook_result._forward_hooks


# ================================================================ 4.2 path_prediction


def test_path_prediction(capsys):
    passes(check.path_prediction, "k", capsys=capsys)
    passes(check.path_prediction, "Keys")
    passes(check.path_prediction, " KEY ")
    rejects(check.path_prediction, "q", match="queries carry only part")
    rejects(check.path_prediction, "v", match="values decide")
    rejects(check.path_prediction, "direct", match="straight into the logits")
    rejects(check.path_prediction, "q and k", match="not symmetric")
    rejects(check.path_prediction, "spread", match="particular paths")
    rejects(check.path_prediction, "x", match="one of")
    rejects(check.path_prediction, 1, match="one of the strings")


# ================================================================ 4.3 k_path_ablation


def _k_path(model, tokens, layer, head, layers=None, path="k", heads=None):
    store = {}
    heads = [head] if heads is None else heads

    def record(act, hook):
        store["out"] = act[:, :, heads].sum(2)

    def remove(act, hook):
        return act - store["out"]

    later = range(layer + 1, model.cfg.n_layers) if layers is None else layers
    hooks = [(f"blocks.{layer}.attn.hook_result", record)]
    hooks += [(f"blocks.{l}.attn.hook_{path}_input", remove) for l in later]
    return model.run_with_hooks(tokens, fwd_hooks=hooks)


def k_path_ref(model, tokens, layer, head):
    return _k_path(model, tokens, layer, head)


def k_path_context_managers(model, tokens, layer, head):
    """Right: the library-convention `model.hooks` (fn(act)), a closure list, float64 logits."""
    out = []
    hooks = [(f"blocks.{layer}.attn.hook_result", lambda act: out.append(act[:, :, head]))]
    hooks += [(f"blocks.{l}.attn.hook_k_input", lambda act: act - out[-1])
              for l in range(layer + 1, model.cfg.n_layers)]
    with torch.no_grad(), model.hooks(hooks):
        return model(tokens).double()


def k_path_pre_projection(model, tokens, layer, head):
    """Right: recomputes the head's output from hook_z and W_O (einsum) instead of reading hook_result."""
    store = {}
    W_O = model.blocks[layer].attn.W_O[head]

    def record(act, hook):
        store["out"] = torch.einsum("bpd,dm->bpm", act[:, :, head], W_O)

    hooks = [(f"blocks.{layer}.attn.hook_z", record)]
    hooks += [(f"blocks.{l}.attn.hook_k_input", lambda act, hook: act - store["out"])
              for l in range(layer + 1, model.cfg.n_layers)]
    return model.run_with_hooks(tokens, fwd_hooks=hooks)


def k_path_library(model, tokens, layer, head):
    with il.interventions.ablate_path(model, [(layer, head)], "k"):
        return model(tokens)


def k_path_next_layer_only(model, tokens, layer, head):
    return _k_path(model, tokens, layer, head, layers=[layer + 1])


def k_path_q(model, tokens, layer, head):
    return _k_path(model, tokens, layer, head, path="q")


def k_path_v(model, tokens, layer, head):
    return _k_path(model, tokens, layer, head, path="v")


def k_path_whole_layer(model, tokens, layer, head):
    return _k_path(model, tokens, layer, head, heads=list(range(model.cfg.n_heads)))


def k_path_swapped(model, tokens, layer, head):
    return _k_path(model, tokens, head, layer) if head < model.cfg.n_layers - 1 else _k_path(model, tokens, layer, head)


def k_path_clean(model, tokens, layer, head):
    _k_path(model, tokens, layer, head)
    return model(tokens)


def k_path_whole_head(model, tokens, layer, head):
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_result",
                                                    lambda act, hook: zero_head_ref(act, head))])


def test_k_path_ablation_right(book_model, capsys):
    passes(check.k_path_ablation, k_path_ref, book_model, capsys=capsys)
    passes(check.k_path_ablation, k_path_context_managers, book_model, capsys=capsys)
    passes(check.k_path_ablation, k_path_pre_projection, book_model, capsys=capsys)


def test_k_path_ablation_wrong(book_model):
    rejects(check.k_path_ablation, k_path_library, book_model, match="calls il.interventions.ablate_path")
    rejects(check.k_path_ablation, k_path_next_layer_only, book_model, match="from layer 1's keys only")
    rejects(check.k_path_ablation, k_path_q, book_model, match="that is the Q path")
    rejects(check.k_path_ablation, k_path_v, book_model, match="that is the V path")
    rejects(check.k_path_ablation, k_path_whole_layer, book_model, match="every head of layer")
    rejects(check.k_path_ablation, k_path_clean, book_model, match="nothing was removed")
    rejects(check.k_path_ablation, k_path_whole_head, book_model, match="removes the whole head")
    rejects(check.k_path_ablation, k_path_swapped, book_model, match="layer and head swapped")


# ================================================================ 4.4 patch_head


patch_ref = patch_by_hand          # the reference solution: tests/_fixtures.py


def patch_additive(model, clean, corrupted, layer, head, pos):
    """Right: records both runs' outputs and adds the difference at one position with a one-hot mask;
    returns numpy float32 logits."""
    name = f"blocks.{layer}.attn.hook_result"
    _, c = model.run_with_cache(clean, names=[name])
    mask = torch.zeros(clean.shape[1], model.cfg.n_heads, 1)
    mask[pos, head] = 1

    def patch(act, hook):
        return act + mask * (c[name] - act)

    with torch.no_grad():
        return model.run_with_hooks(corrupted, fwd_hooks=[(name, patch)]).numpy()


def _patch(model, clean, corrupted, layer, head, where, src="clean", on=None):
    name = f"blocks.{layer}.attn.hook_result"
    _, cache = model.run_with_cache(clean if src == "clean" else corrupted, names=[name])

    def patch(act, hook):
        act = act.clone()
        act[:, where, head] = cache[name][:, where, head]
        return act

    return model.run_with_hooks(corrupted if on is None else on, fwd_hooks=[(name, patch)])


def patch_all_positions(model, clean, corrupted, layer, head, pos):
    return _patch(model, clean, corrupted, layer, head, slice(None))


def patch_off_by_one(model, clean, corrupted, layer, head, pos):
    return _patch(model, clean, corrupted, layer, head, pos + 1)


def patch_layer_as_head(model, clean, corrupted, layer, head, pos):
    name = f"blocks.{layer}.attn.hook_result"
    _, cache = model.run_with_cache(clean, names=[name])

    def patch(act, hook):
        act = act.clone()
        act[:, pos, layer] = cache[name][:, pos, layer]
        return act

    return model.run_with_hooks(corrupted, fwd_hooks=[(name, patch)])


def patch_reversed(model, clean, corrupted, layer, head, pos):
    return _patch(model, corrupted, clean, layer, head, pos, on=clean)


def patch_forgot_return(model, clean, corrupted, layer, head, pos):
    name = f"blocks.{layer}.attn.hook_result"
    _, cache = model.run_with_cache(clean, names=[name])

    def patch(act, hook):
        act = act.clone()
        act[:, pos, head] = cache[name][:, pos, head]

    return model.run_with_hooks(corrupted, fwd_hooks=[(name, patch)])


def patch_up_to(model, clean, corrupted, layer, head, pos):
    return _patch(model, clean, corrupted, layer, head, slice(0, pos + 1))


def patch_library(model, clean, corrupted, layer, head, pos):
    il.interventions.patch_heads(model, clean, corrupted, positions=[pos])
    return patch_ref(model, clean, corrupted, layer, head, pos)


def test_patch_head_right(book_model, capsys):
    passes(check.patch_head, patch_ref, book_model, capsys=capsys)
    passes(check.patch_head, patch_additive, book_model, capsys=capsys)


def test_patch_head_wrong(book_model):
    rejects(check.patch_head, patch_all_positions, book_model, match="patched every position")
    rejects(check.patch_head, patch_off_by_one, book_model, match="you patched position 42")
    rejects(check.patch_head, patch_layer_as_head, book_model, match="did you use the layer index")
    rejects(check.patch_head, patch_reversed, book_model, match="clean run's logits")
    rejects(check.patch_head, patch_forgot_return, book_model, match="nothing changed")
    rejects(check.patch_head, patch_up_to, book_model, match="you patched positions")
    rejects(check.patch_head, patch_library, book_model, match="calls il.interventions.patch_heads")


# ================================================================ 4.5 repair_prediction


def test_repair_prediction(capsys):
    passes(check.repair_prediction, [0.0, 1.0], capsys=capsys)
    passes(check.repair_prediction, np.array([0.05, 0.9], dtype=np.float32))
    passes(check.repair_prediction, (torch.tensor(0), torch.tensor(1)))
    rejects(check.repair_prediction, [1.0, 0.0], match="swapped")
    rejects(check.repair_prediction, [1.0, 1.0], match="at c \\+ L − 1 you predict 1")
    rejects(check.repair_prediction, [0.0, 0.0], match="at c \\+ L you predict 0")
    rejects(check.repair_prediction, [0.5, 0.5], match="at c \\+ L − 1 you predict 0.5")
    rejects(check.repair_prediction, [0.0, 0.7], match="at c \\+ L you predict 0.7")
    rejects(check.repair_prediction, [0.0, 100.0], match="between 0")
    rejects(check.repair_prediction, 1.0, match="two numbers")


# ================================================================ 5.1 transition_window


def transition_ref(steps, losses):
    drops = losses[1:] - losses[:-1]
    i = int(drops.argmin())
    return (steps[i] + steps[i + 1]).item() / 2


def transition_numpy_loop(steps, losses):
    """Right: a Python loop over numpy arrays, returning a numpy int64 (the later record)."""
    s, y = np.asarray(steps), np.asarray(losses)
    best, at = 0.0, s[0]
    for i in range(len(y) - 1):
        if y[i + 1] - y[i] < best:
            best, at = y[i + 1] - y[i], s[i + 1]
    return at


def transition_index(steps, losses):
    return int((losses[1:] - losses[:-1]).argmin())


def transition_sign_error(steps, losses):
    return steps[int((losses[1:] - losses[:-1]).argmax())].item()


def transition_abs(steps, losses):
    return steps[int((losses[1:] - losses[:-1]).abs().argmax())].item()


def transition_lowest_loss(steps, losses):
    return steps[int(losses.argmin())].item()


def transition_library(steps, losses):
    return il.phase.detect(steps, losses).mid


def transition_in_place(steps, losses):
    losses.sub_(losses[0].item())
    return transition_ref(steps, losses)


def test_transition_window(capsys):
    passes(check.transition_window, transition_ref, capsys=capsys)
    passes(check.transition_window, transition_numpy_loop, capsys=capsys)
    passes(check.transition_window, lambda s, l: s[int(torch.diff(l).argmin())])
    rejects(check.transition_window, transition_index, match="index")
    rejects(check.transition_window, transition_sign_error, match="RISES fastest")
    rejects(check.transition_window, transition_abs, match="largest \\|change\\|")
    rejects(check.transition_window, transition_lowest_loss, match="lowest")
    rejects(check.transition_window, transition_library, match="calls il.phase.detect")
    rejects(check.transition_window, transition_in_place, match="in place")


# ================================================================ 5.2 find_transition


def find_transition_ref(steps, values):
    t = torch.as_tensor(steps, dtype=torch.float64)
    y = torch.as_tensor(values, dtype=torch.float64)
    k = max(3, len(y) // 10)
    before, after = y[:k].median(), y[-k:].median()
    padded = torch.cat([y[:1].repeat(2), y, y[-1:].repeat(2)])
    smooth = padded.unfold(0, 5, 1).median(dim=1).values
    progress = (smooth - before) / (after - before)
    i = int((progress < 0.5).nonzero().max()) + 1
    frac = (0.5 - progress[i - 1]) / (progress[i] - progress[i - 1])
    return (t[i - 1] + frac * (t[i] - t[i - 1])).item()


def find_transition_fit(steps, values):
    """Right: a least-squares logistic fit by grid search, in numpy, returning a numpy float."""
    t, y = np.asarray(steps, float), np.asarray(values, float)
    best = (np.inf, None)
    for w in np.geomspace(np.diff(t).min(), t[-1] - t[0], 30):
        for m in t:
            s = 1 / (1 + np.exp(np.clip((t - m) / w, -50, 50)))
            A = np.stack([np.ones_like(s), s], 1)
            coef = np.linalg.lstsq(A, y, rcond=None)[0]
            r = ((A @ coef - y) ** 2).sum()
            if r < best[0]:
                best = (r, m)
    return best[1]


def find_transition_steepest(steps, values):
    d = values[1:] - values[:-1]
    rise = values[-10:].median() > values[:10].median()
    i = int(d.argmax() if rise else d.argmin())
    return (steps[i] + steps[i + 1]).item() / 2


def find_transition_first_last(steps, values):
    y = values.double()
    progress = (y - y[0]) / (y[-1] - y[0])
    return steps[int((progress < 0.5).nonzero().max()) + 1].item()


def find_transition_mean_level(steps, values):
    y = values.double()
    fall = y[-10:].median() < y[:10].median()
    past = (y < y.mean()) if fall else (y > y.mean())
    return steps[int((~past).nonzero().max()) + 1].item()


def find_transition_falls_only(steps, values):
    y = values.double()
    half = (y[:10].median() + y[-10:].median()) / 2
    above = (y > half).nonzero()
    i = int(above.max()) + 1 if len(above) else len(y) - 1
    return steps[min(i, len(y) - 1)].item()


def find_transition_library(steps, values):
    return il.phase.detect(steps, values).mid


def find_transition_index(steps, values):
    return find_transition_ref(torch.arange(len(values)), values)


def test_find_transition_right(capsys):
    passes(check.find_transition, find_transition_ref, capsys=capsys)
    passes(check.find_transition, find_transition_fit, capsys=capsys)


def test_find_transition_wrong():
    rejects(check.find_transition, find_transition_steepest, match="steepest single change")
    rejects(check.find_transition, find_transition_first_last, match="outlier record moved your levels")
    rejects(check.find_transition, find_transition_mean_level, match="not the mean of the curve")
    rejects(check.find_transition, find_transition_falls_only, match="handle only falls")
    rejects(check.find_transition, find_transition_library, match="calls il.phase.detect")
    rejects(check.find_transition, find_transition_index, match="index")


# ================================================================ 5.3 first_induction_step


def first_step_ref(history, level=0.5):
    return next((s for s, sc in zip(history.steps, history.induction) if sc[-1].max() >= level), None)


def first_step_loop(history, level=0.5):
    """Right: a loop over a stacked tensor, returning a tensor step."""
    scores = torch.stack([torch.as_tensor(s) for s in history.induction])[:, -1].amax(-1)
    for i in range(len(scores)):
        if scores[i] >= level:
            return torch.tensor(history.steps[i])
    return None


def test_first_induction_step(capsys):
    passes(check.first_induction_step, first_step_ref, capsys=capsys)
    passes(check.first_induction_step, first_step_loop, capsys=capsys)
    rejects(check.first_induction_step, 150, match="write a function")
    rejects(check.first_induction_step,
            lambda h, level=0.5: next(i for i, sc in enumerate(h.induction) if sc[-1].max() >= level),
            match="index of the record")
    rejects(check.first_induction_step,
            lambda h, level=0.5: next((s for s, sc in zip(h.steps, h.induction) if sc.max() >= level), None),
            match="ANY layer")
    rejects(check.first_induction_step,
            lambda h, level=0.5: next((s for s, sc in zip(h.steps, h.induction) if sc[1].max() >= level), None),
            match="layer 1's score")
    rejects(check.first_induction_step,
            lambda h, level=0.5: next((s for s, sc in zip(h.steps, h.induction) if sc[-1].max() > level), None),
            match="'at least' means ≥")
    rejects(check.first_induction_step,
            lambda h, level=0.5: next(s for s, sc in zip(h.steps, h.induction) if sc[-1].max() >= level),
            match="StopIteration")
    rejects(check.first_induction_step,
            lambda h, level=0.5: first_step_ref(h, level) or h.steps[-1], match="return None")


def test_first_induction_step_on_a_real_history(capsys):
    history = il.load_with_history("induction-2l", progress=False)[1]
    passes(check.first_induction_step, first_step_ref, history, capsys=capsys)


# ================================================================ 5.4 even_guess_loss


def even_ref(tokens, region):
    seen = [[len(set(tokens[b, 1:p + 1].tolist())) for p in range(region.start, region.stop)]
            for b in range(tokens.shape[0])]
    return float(np.log(np.array(seen, dtype=float)).mean())


def even_unique(tokens, region):
    """Right: torch.unique per position, float32 logs, a 0-d tensor."""
    logs = [torch.log(torch.tensor(float(len(torch.unique(row[1:p + 1])))))
            for row in tokens for p in range(region.start, region.stop)]
    return torch.stack(logs).mean()


def even_jensen(tokens, region):
    counts = [len(set(tokens[b, 1:p + 1].tolist())) for b in range(len(tokens)) for p in range(region.start, region.stop)]
    return math.log(sum(counts) / len(counts))


def even_with_bos(tokens, region):
    return float(np.mean([math.log(len(set(tokens[b, :p + 1].tolist())))
                          for b in range(len(tokens)) for p in range(region.start, region.stop)]))


def even_positions(tokens, region):
    return float(np.mean([math.log(p) for p in range(region.start, region.stop)]))


def even_only_r(tokens, region):
    L = region.stop - region.start
    return float(np.mean([math.log(len(set(tokens[b, region.start - L:p + 1].tolist())))
                          for b in range(len(tokens)) for p in range(region.start, region.stop)]))


def test_even_guess_loss(book_model, capsys):
    passes(check.even_guess_loss, even_ref, book_model, capsys=capsys)
    passes(check.even_guess_loss, even_unique, book_model, capsys=capsys)
    passes(check.even_guess_loss, even_ref)
    rejects(check.even_guess_loss, lambda t, r: math.log(63), book_model, match="ln\\(63\\), the chance loss")
    rejects(check.even_guess_loss, lambda t, r: math.log(64), book_model, match="whole vocabulary")
    rejects(check.even_guess_loss, lambda t, r: 3.95, book_model, match="expected 3.5553")
    rejects(check.even_guess_loss, lambda t, r: math.log(35), book_model, match="same number")
    rejects(check.even_guess_loss, even_jensen, book_model, match="ln of the mean count")
    rejects(check.even_guess_loss, even_with_bos, book_model, match="counted BOS")
    rejects(check.even_guess_loss, even_positions, book_model, match="counted positions")
    rejects(check.even_guess_loss, even_only_r, book_model, match="only the tokens of r")
    rejects(check.even_guess_loss, math.log(35), book_model, match="write a function")


# ================================================================ 5.5 smear_prediction


def test_smear_prediction(capsys):
    smeared = il.load("smeared-1l", progress=False)
    passes(check.smear_prediction, 0.0, smeared, capsys=capsys)
    passes(check.smear_prediction, np.float32(0.1))
    passes(check.smear_prediction, torch.tensor([0.05]))
    rejects(check.smear_prediction, 0.5, match="where every head started")
    rejects(check.smear_prediction, 1.0, match="finds the earlier A")
    rejects(check.smear_prediction, 0.9, match="finds the earlier A")
    rejects(check.smear_prediction, 0.35, match="how much\\s+of B's own key")
    rejects(check.smear_prediction, -0.2, match="between 0 and 1")
    rejects(check.smear_prediction, [0.0, 0.1], match="single number")


# ================================================================ 6.1 hopfield_update


def hopfield_ref(X, xi, beta):
    return X @ torch.softmax(beta * (X.T @ xi), dim=0)


def hopfield_einsum_numpy(X, xi, beta):
    """Right: numpy, an explicit stable softmax, einsum; returns a numpy array."""
    Xn, xn = X.numpy(), xi.numpy()
    s = beta * np.einsum("dn,d->n", Xn, xn)
    w = np.exp(s - s.max())
    return np.einsum("dn,n->d", Xn, w / w.sum())


def hopfield_loop(X, xi, beta):
    """Right: a loop over the patterns, float32 arithmetic whatever comes in."""
    X, xi = X.float(), xi.float()
    scores = torch.stack([beta * (X[:, i] @ xi) for i in range(X.shape[1])])
    w = torch.exp(scores - scores.max())
    return sum(w[i] * X[:, i] for i in range(X.shape[1])) / w.sum()


def hopfield_no_beta(X, xi, beta):
    return X @ torch.softmax(X.T @ xi, dim=0)


def hopfield_inverse_beta(X, xi, beta):
    return X @ torch.softmax((X.T @ xi) / beta, dim=0)


def hopfield_wrong_axis(X, xi, beta):
    return (X @ torch.softmax(beta * (X.T @ xi[:, None]), dim=-1))[:, 0]


def hopfield_X_not_transposed(X, xi, beta):
    return X @ torch.softmax(beta * (X @ xi), dim=0)


def hopfield_weights_only(X, xi, beta):
    return torch.softmax(beta * (X.T @ xi), dim=0)


def hopfield_library(X, xi, beta):
    return hf.update(X, xi, beta)


def test_hopfield_update(capsys):
    passes(check.hopfield_update, hopfield_ref, capsys=capsys)
    passes(check.hopfield_update, hopfield_einsum_numpy, capsys=capsys)
    passes(check.hopfield_update, hopfield_loop, capsys=capsys)
    rejects(check.hopfield_update, hopfield_no_beta, match="multiply the dot products by β")
    rejects(check.hopfield_update, hopfield_inverse_beta, match="divided by β")
    rejects(check.hopfield_update, hopfield_wrong_axis, match="axis of size 1")
    rejects(check.hopfield_update, hopfield_X_not_transposed, match="you used X ξ")
    rejects(check.hopfield_update, hopfield_weights_only, match="softmax weights")
    rejects(check.hopfield_update, hopfield_library, match="calls hf.update")


# ================================================================ 6.2 capacity


def is_stored_ref(X):
    return torch.equal(torch.sign(hf.hebbian_weights(X) @ X), X)


def is_stored_loop(X):
    """Right: unit by unit, pattern by pattern, in numpy, returning numpy.bool_."""
    Xn = X.numpy().astype(np.float64)
    d, N = Xn.shape
    W = Xn @ Xn.T / d
    np.fill_diagonal(W, 0)
    ok = True
    for mu in range(N):
        for i in range(d):
            ok &= np.sign(W[i] @ Xn[:, mu]) == Xn[i, mu]
    return np.bool_(ok)


def is_stored_tensor(X):
    """Right: returns a 0-d bool tensor."""
    W = X @ X.T / X.shape[0]
    W = W - torch.diag(torch.diag(W))
    return (torch.sign(W @ X) == X).all()


def is_stored_diagonal(X):
    return torch.equal(torch.sign(X @ X.T / X.shape[0] @ X), X)


def is_stored_first(X):
    return torch.equal(torch.sign(hf.hebbian_weights(X) @ X[:, 0]), X[:, 0])


def is_stored_any(X):
    return bool((torch.sign(hf.hebbian_weights(X) @ X) == X).all(0).any())


def is_stored_per_pattern(X):
    return (torch.sign(hf.hebbian_weights(X) @ X) == X).all(0)


def capacity_ref(sample, trials=3):
    n = 0
    while all(is_stored_ref(sample(n + 1)) for _ in range(trials)):
        n += 1
    return n


def capacity_trials_outer(sample, trials=3):
    """Right: the trials in the outer loop, the minimum over trials at the end (numpy int)."""
    best = []
    for _ in range(trials):
        n = 0
        while is_stored_ref(sample(n + 1)):
            n += 1
        best.append(n)
    return np.int64(min(best))


def capacity_off_by_one(sample, trials=3):
    n = 1
    while all(is_stored_ref(sample(n)) for _ in range(trials)):
        n += 1
    return n


def capacity_any_trial(sample, trials=3):
    n = 0
    while any(is_stored_ref(sample(n + 1)) for _ in range(trials)):
        n += 1
    return n


def capacity_first_trial(sample, trials=3):
    n = 0
    while is_stored_ref(sample(n + 1)):
        n += 1
    return n


def capacity_ignores_sample(sample, trials=3):
    g = torch.Generator().manual_seed(0)
    return capacity_ref(lambda n: hf.random_patterns(64, n, g, binary=True), trials)


def test_capacity_right(capsys):
    passes(check.capacity, is_stored_ref, capacity_ref, capsys=capsys)
    passes(check.capacity, is_stored_loop, capacity_trials_outer, capsys=capsys)
    passes(check.capacity, is_stored_tensor, capsys=capsys)


def test_capacity_wrong():
    rejects(check.capacity, is_stored_diagonal, capacity_ref, match="diagonal kept")
    rejects(check.capacity, is_stored_first, capacity_ref, match="not only the first")
    rejects(check.capacity, is_stored_any, capacity_ref, match="not .any\\(\\)")
    rejects(check.capacity, is_stored_per_pattern, capacity_ref, match="one True/False")
    rejects(check.capacity, is_stored_ref, capacity_off_by_one, match="first N that is NOT stored")
    rejects(check.capacity, is_stored_ref, capacity_any_trial, match="EVERY draw")
    rejects(check.capacity, is_stored_ref, capacity_first_trial, match="EVERY draw")
    rejects(check.capacity, is_stored_ref, capacity_ignores_sample, match="never called `sample`")
    rejects(check.capacity, 9, match="a number cannot be checked")
    rejects(check.capacity, is_stored_ref, 4096, match="should be a function")


# ================================================================ 6.3 hopfield_split


@pytest.fixture(scope="module")
def split():
    """A two-occurrence split with realistic, uneven attention (B and C do not share a fixed total)."""
    g = torch.Generator().manual_seed(1)
    sb, sc = torch.randn(64, generator=g) * 2 + 1.0, torch.randn(64, generator=g) * 2
    total = torch.rand(64, generator=g) * 0.6 + 0.3
    share = torch.sigmoid(sb - sc)
    return SimpleNamespace(score_b=sb, score_c=sc, attn_b=total * share, attn_c=total * (1 - share),
                           prob_share_b=torch.sigmoid(2 * (sb - sc)), hopfield_b=share)


def share_ref(score_b, score_c):
    return torch.sigmoid(score_b - score_c)


def share_softmax_stack(score_b, score_c):
    """Right: a softmax over a stacked [T, 2] tensor, in float32."""
    return torch.softmax(torch.stack([score_b, score_c], -1).float(), -1)[:, 0]


def share_exp_numpy(score_b, score_c):
    """Right: explicit exponentials in numpy."""
    b, c = np.exp(score_b.numpy()), np.exp(score_c.numpy())
    return b / (b + c)


def test_hopfield_split_right(split, capsys):
    right = share_ref(split.score_b, split.score_c).mean().item()
    passes(check.hopfield_split, share_ref, right, split, capsys=capsys)
    passes(check.hopfield_split, share_softmax_stack, np.float32(right), split, capsys=capsys)
    passes(check.hopfield_split, share_exp_numpy, torch.tensor(right), split, capsys=capsys)
    passes(check.hopfield_split, share_ref, (split.attn_b / (split.attn_b + split.attn_c)).mean(), split)


def test_hopfield_split_wrong(split):
    right = share_ref(split.score_b, split.score_c).mean().item()
    d = split.score_b - split.score_c
    rejects(check.hopfield_split, share_ref, torch.sigmoid(d.mean()).item(), split, match="Jensen")
    rejects(check.hopfield_split, share_ref, (d > 0).float().mean().item(), split, match="hard argmax")
    rejects(check.hopfield_split, share_ref, split.prob_share_b.mean().item(), split, match="MEASURED split")
    rejects(check.hopfield_split, share_ref, (split.attn_b.mean() / (split.attn_b.mean() + split.attn_c.mean())),
            split, match="ratio of the MEAN attentions")
    rejects(check.hopfield_split, share_ref, 1 - right, split, match="weight on C")
    rejects(check.hopfield_split, lambda b, c: (b > c).float(), right, split, match="hard argmax")
    rejects(check.hopfield_split, lambda b, c: torch.sigmoid(c - b), right, split, match="weight on C")
    rejects(check.hopfield_split, lambda b, c: torch.softmax(b, 0), right, split, match="over the sequences")
    rejects(check.hopfield_split, lambda b, c: torch.sigmoid(b - c).mean(), right, split, match="one number")
    rejects(check.hopfield_split, lambda b, c: torch.sigmoid((b - c) / math.sqrt(32)), right, split,
            match="already include")


# ================================================================ 6.4 three_way_split


@pytest.fixture(scope="module")
def three():
    g = torch.Generator().manual_seed(2)
    scores = torch.randn(80, 3, generator=g) * 1.5 + torch.tensor([-1.0, 0.5, 0.5])
    total = torch.rand(80, 1, generator=g) * 0.5 + 0.4
    attn = total * scores.softmax(-1)
    return SimpleNamespace(scores=scores, attn=attn, prob_share=(2 * scores).softmax(-1))


def test_three_way_split(three, capsys):
    right = three.scores.softmax(-1).mean(0)
    passes(check.three_way_split, right, three, capsys=capsys)
    passes(check.three_way_split, right.numpy().astype(np.float32).tolist(), three)
    passes(check.three_way_split, (three.attn / three.attn.sum(-1, keepdim=True)).mean(0), three)
    rejects(check.three_way_split, three.scores.mean(0).softmax(-1), three, match="Jensen")
    rejects(check.three_way_split, torch.nn.functional.one_hot(three.scores.argmax(-1), 3).float().mean(0), three,
            match="hard argmax")
    rejects(check.three_way_split, three.scores.softmax(0).mean(0), three, match="softmax over the sequences")
    rejects(check.three_way_split, three.attn.mean(0), three, match="raw attention")
    rejects(check.three_way_split, three.attn.mean(0) / three.attn.mean(0).sum(), three, match="ratio of the mean")
    rejects(check.three_way_split, three.prob_share.mean(0), three, match="MEASURED")
    rejects(check.three_way_split, three.scores.softmax(-1), three, match="average over the sequences")


# ================================================================ split_prediction (chapters 1, 7)


def test_split_prediction(capsys):
    passes(check.split_prediction, 0.5, 0.52, capsys=capsys)
    passes(check.split_prediction, torch.tensor([0.25, 0.75]), [0.26, 0.74])
    passes(check.split_prediction, np.float32(0.3), torch.tensor(0.3, dtype=torch.float64))
    rejects(check.split_prediction, 0.5, 0.8, match="off by")
    rejects(check.split_prediction, [0.5, 0.5], [0.5, 0.5, 0.0], match="shape")
    rejects(check.split_prediction, float("nan"), 0.5, match="finite")
    rejects(check.split_prediction, [0.5, 0.1], [0.5, 0.5], match="entry 1")
