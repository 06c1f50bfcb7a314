"""Chapter 7's check (copyable tokens): right answers in several forms pass, realistic mistakes are named."""
import numpy as np
import pytest
import torch

from induction_lib import text
from induction_lib.exercises import ExerciseError, check

BOS = 0


def vectorised(tokens):
    prev, cur = tokens[:, :-1], tokens[:, 1:]
    m = prev.shape[1]
    earlier = torch.ones(m, m, dtype=torch.bool).tril(-1)
    same_prev = (prev[:, :, None] == prev[:, None, :]) & earlier & (prev[:, None, :] != BOS)
    found = (same_prev & (cur[:, :, None] == cur[:, None, :])).any(-1)
    return torch.cat([torch.zeros_like(found[:, :1]), found], dim=1)


def numpy_loops(tokens):
    """A right answer in another form: numpy, a dict of followers, int 0/1 output."""
    t = np.asarray(tokens)
    out = np.zeros(t.shape, dtype=np.int64)
    for b in range(t.shape[0]):
        followers = {}
        for i in range(1, t.shape[1]):
            if i >= 2 and int(t[b, i - 2]) != BOS:       # the pair (j, j+1) = (i-2, i-1): j < i-1
                followers.setdefault(int(t[b, i - 2]), set()).add(int(t[b, i - 1]))
            p = int(t[b, i - 1])
            out[b, i] = int(p != BOS and int(t[b, i]) in followers.get(p, set()))
    return out


def float_list(tokens):
    """Right answer as nested lists of floats."""
    return vectorised(tokens).float().tolist()


def via_library(tokens):
    """The library's classes, padded to the exercise's convention (accepted: the guide says so)."""
    return torch.cat([torch.zeros(len(tokens), 1, dtype=torch.bool), text.target_classes(tokens)["copyable"]], 1)


@pytest.mark.parametrize("fn", [vectorised, numpy_loops, float_list, via_library])
def test_right_answers_pass(fn, capsys):
    check.copyable(fn)
    assert capsys.readouterr().out.startswith("✓")


def library_unpadded(tokens):
    return text.target_classes(tokens)["copyable"]


def shifted(tokens):
    return torch.cat([vectorised(tokens)[:, 1:], torch.zeros(len(tokens), 1, dtype=torch.bool)], 1)


def any_follower(tokens):
    prev = tokens[:, :-1]
    m = prev.shape[1]
    seen = ((prev[:, :, None] == prev[:, None, :]) & torch.ones(m, m, dtype=torch.bool).tril(-1)
            & (prev[:, None, :] != BOS)).any(-1)
    return torch.cat([torch.zeros_like(seen[:, :1]), seen], 1)


def duplicate_token(tokens):
    n = tokens.shape[1]
    dup = ((tokens[:, :, None] == tokens[:, None, :]) & torch.ones(n, n, dtype=torch.bool).tril(-1)).any(-1)
    return dup & (tokens != BOS)


def includes_itself(tokens):
    prev, cur = tokens[:, :-1], tokens[:, 1:]
    m = prev.shape[1]
    same_prev = (prev[:, :, None] == prev[:, None, :]) & torch.ones(m, m, dtype=torch.bool).tril(0) \
        & (prev[:, None, :] != BOS)
    found = (same_prev & (cur[:, :, None] == cur[:, None, :])).any(-1)
    return torch.cat([torch.zeros_like(found[:, :1]), found], 1)


def bos_counts(tokens):
    prev, cur = tokens[:, :-1], tokens[:, 1:]
    m = prev.shape[1]
    same_prev = (prev[:, :, None] == prev[:, None, :]) & torch.ones(m, m, dtype=torch.bool).tril(-1)
    found = (same_prev & (cur[:, :, None] == cur[:, None, :])).any(-1)
    return torch.cat([torch.zeros_like(found[:, :1]), found], 1)


def transposed(tokens):
    return vectorised(tokens).T


def in_place(tokens):
    tokens[:, 0] = 1
    return vectorised(tokens)


def only_first_row(tokens):
    return vectorised(tokens)[:1].expand(len(tokens), -1)


@pytest.mark.parametrize("fn, match", [
    (library_unpadded, r"shape \[\d+, \d+\], expected .*put a False column in front"),
    (shifted, "instead of the copied token"),
    (any_follower, "whatever followed it"),
    (duplicate_token, "duplicate-token"),
    (includes_itself, "j reach i - 1"),
    (bos_counts, "counts BOS as an occurrence"),
    (transposed, "batch axis comes first|shape"),
    (in_place, "changed the tokens in place"),
    (only_first_row, "row 1"),
])
def test_mistakes_are_named(fn, match):
    with pytest.raises(ExerciseError, match=match):
        check.copyable(fn)


def test_stub_is_not_implemented():
    def stub(tokens):
        raise NotImplementedError("Exercise 7.1: not implemented yet")
    with pytest.raises(NotImplementedError):
        check.copyable(stub)


# ---------------------------------------------------------------- key_source

import induction_lib as il  # noqa: E402


@pytest.fixture(scope="module")
def toy():
    return il.load("induction-2l", progress=False)


def rises(path="k", method="zero", region_name=None, sign=1):
    def fn(model, tokens, region):
        if region_name is not None:
            region = il.scores.eval_regions(model)[region_name]
        ref = tokens if method != "zero" else None
        clean = il.per_position_loss_with(model, tokens)[:, region].mean()
        out = [il.per_position_loss_with(model, tokens, heads=[(0, h)], path=path, method=method,
                                         reference=ref)[:, region].mean() - clean
               for h in range(model.cfg.n_heads)]
        return sign * torch.stack(out)
    return fn


def loop_numpy(model, tokens, region):
    """Right, in another form: float32 numpy, a Python loop, the ablation done with the context manager."""
    out = []
    with torch.no_grad():
        clean = float(il.scores.per_position_loss(model(tokens), tokens)[:, region].mean())
        for h in range(model.cfg.n_heads):
            with il.interventions.ablated(model, [(0, h)], path="k"):
                out.append(float(il.scores.per_position_loss(model(tokens), tokens)[:, region].mean()) - clean)
    return np.array(out, dtype=np.float32)


def whole_head(model, tokens, region):
    return rises(path=None)(model, tokens, region)


def previous_token_scores(model, tokens, region):
    return il.scores.previous_token_scores(model)[0]


@pytest.mark.parametrize("fn", [rises(), loop_numpy, lambda m, t, r: rises()(m, t, r).tolist()])
def test_key_source_right_answers(fn, toy, capsys):
    check.key_source(fn, toy)
    assert capsys.readouterr().out.startswith("✓")


@pytest.mark.parametrize("fn, match", [
    (rises(path="q"), "QUERIES"),
    (rises(path="v"), "near zero.*values"),
    (whole_head, "whole output"),
    (rises(sign=-1), "sign is flipped"),
    (lambda m, t, r: rises()(m, t, r) * t.shape[0] * len(range(*r.indices(t.shape[1] - 1))), "take the mean"),
    (rises(region_name="first half"), "near zero.*first copy"),
    (previous_token_scores, "your rise for head 0.0"),
    (lambda m, t, r: rises()(m, t, r)[:1], r"shape \[1\], expected \[2\]"),
])
def test_key_source_mistakes(fn, match, toy):
    with pytest.raises(ExerciseError, match=match):
        check.key_source(fn, toy)


def test_key_source_runs_on_a_three_head_model(toy):
    """A function written for two heads (the book's models) fails on the check's decoy model, which has three."""
    def two_heads(model, tokens, region):
        clean = il.per_position_loss_with(model, tokens)[:, region].mean()
        return torch.stack([il.per_position_loss_with(model, tokens, heads=[(0, h)], path="k")[:, region].mean()
                            - clean for h in range(2)])
    with pytest.raises(ExerciseError, match=r"decoy.*shape \[2\], expected \[3\]"):
        check.key_source(two_heads, toy)


# ---------------------------------------------------------------- resample_ablation

from induction_lib.scores import per_position_loss  # noqa: E402


def resample_result(model, tokens, reference, layer, head):
    name = f"blocks.{layer}.attn.hook_result"
    _, cache = model.run_with_cache(reference)
    ref = cache[name][:, :, head]

    def hook(act, hook):
        act = act.clone()
        act[:, :, head] = ref
        return act
    return per_position_loss(model.run_with_hooks(tokens, fwd_hooks=[(name, hook)]), tokens)


def resample_z(model, tokens, reference, layer, head):
    """Right, another way: patch hook_z (the head's output before W_O), return numpy float32."""
    name = f"blocks.{layer}.attn.hook_z"
    _, cache = model.run_with_cache(reference)
    ref = cache[name][:, :, head]

    def hook(act, hook):
        out = act.clone()
        out[:, :, head] = ref
        return out
    with torch.no_grad():
        return per_position_loss(model.run_with_hooks(tokens, fwd_hooks=[(name, hook)]), tokens).numpy()


def zero_own(model, tokens, reference, layer, head):
    name = f"blocks.{layer}.attn.hook_result"

    def hook(act, hook):
        act = act.clone()
        act[:, :, head] = 0
        return act
    return per_position_loss(model.run_with_hooks(tokens, fwd_hooks=[(name, hook)]), tokens)


def reference_loss(model, tokens, reference, layer, head):
    return per_position_loss(model(reference), reference)


def no_return(model, tokens, reference, layer, head):
    name = f"blocks.{layer}.attn.hook_result"
    _, cache = model.run_with_cache(reference)

    def hook(act, hook):
        act = act.clone()
        act[:, :, head] = cache[name][:, :, head]      # edits a copy and forgets to return it
    return per_position_loss(model.run_with_hooks(tokens, fwd_hooks=[(name, hook)]), tokens)


def swapped(model, tokens, reference, layer, head):
    return resample_result(model, tokens, reference, head, layer)


def first_row(model, tokens, reference, layer, head):
    return resample_result(model, tokens, reference[:1].expand_as(reference), layer, head)


def library(model, tokens, reference, layer, head):
    return il.per_position_loss_with(model, tokens, heads=[(layer, head)], method="resample", reference=reference)


def leaves_hook(model, tokens, reference, layer, head):
    out = resample_result(model, tokens, reference, layer, head)
    model.blocks[0].attn.hook_result.register_forward_hook(lambda m, i, o: None)
    return out


@pytest.mark.parametrize("fn", [resample_result, resample_z])
def test_resample_right_answers(fn, toy, capsys):
    check.resample_ablation(fn, toy)
    assert capsys.readouterr().out.startswith("✓")


@pytest.mark.parametrize("fn, match", [
    (zero_own, "zero ablation"),
    (reference_loss, "loss of the reference itself"),
    (no_return, "clean loss"),
    (swapped, "swapped|not a head|out of range|layer"),
    (first_row, "first reference row"),
    (library, "calls the library's per_position_loss_with"),
    (leaves_hook, "left a hook attached"),
])
def test_resample_mistakes(fn, match, toy):
    with pytest.raises((ExerciseError, ValueError), match=match):
        check.resample_ablation(fn, toy)
