"""induction_lib.heads: the one definition of the previous-token and induction heads."""
import copy

import torch

import induction_lib as il
from induction_lib import heads
from _fixtures import trained  # noqa: F401


def test_the_induction_head_follows_the_scores_not_its_index(trained):
    layer, head = heads.induction_head(trained)
    s = il.scores.diagonal_induction_scores(trained)
    assert s[layer, head] == s[1:].max()
    other = (head + 1) % trained.cfg.n_heads
    swapped = copy.deepcopy(trained)
    attn = swapped.blocks[layer].attn
    with torch.no_grad():
        for name in ("W_Q", "W_K", "W_V", "W_O"):
            w = getattr(attn, name)
            w[[head, other]] = w[[other, head]].clone()
    assert heads.induction_head(swapped) == (layer, other)


def test_key_heads_of_a_model_and_of_its_history_agree(trained):
    model, history = il.load_with_history("induction-2l", progress=False)
    prev, ind = heads.key_heads(model)
    assert prev == heads.previous_token_head(model) and prev[0] == 0
    s = il.scores.previous_token_scores(model)
    assert s[prev] == s[0].max()
    assert heads.key_heads(history)[0] == prev          # the history's last record names the same head
    assert heads.head_name(ind) == f"{ind[0]}.{ind[1]}"


def test_a_one_layer_model_looks_for_induction_in_layer_0():
    smeared = il.load("smeared-1l", progress=False)
    assert heads.induction_head(smeared)[0] == 0
