"""Head scores: known answers on hand-built patterns and weights, then the default trained model."""
from __future__ import annotations

import math

import pytest
import torch

import induction_lib as il
from induction_lib import scores
from _fixtures import induction_head, prev_token_head, tiny_model, trained  # noqa: F401

L = 6  # block length of the hand-built inputs


def two_copies(batch: int = 2, half: int = L) -> torch.Tensor:
    """BOS + r + r with distinct tokens in r."""
    return il.repeated_tokens(batch, half, 32, seed=1, distinct=True)


def four_copies(batch: int = 2, block: int = L) -> torch.Tensor:
    """BOS + a block of distinct tokens, 4 times (Olsson's prefix-matching layout)."""
    r = torch.stack([1 + torch.randperm(31, generator=torch.Generator().manual_seed(b))[:block] for b in range(batch)])
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), r.repeat(1, 4)], dim=1)


def as_pattern(rows: torch.Tensor) -> torch.Tensor:
    """[batch, q, k] -> [batch, head=1, q, k]."""
    return rows[:, None]


def previous_token_pattern(tokens):
    b, n = tokens.shape
    a = torch.zeros(b, n, n)
    a[:, 0, 0] = 1
    a[:, torch.arange(1, n), torch.arange(n - 1)] = 1
    return as_pattern(a)


def exact_induction_pattern(tokens):
    """Spread over the tokens after earlier occurrences; BOS when there is none."""
    d = scores.induction_mask(tokens)
    none = d.sum(-1, keepdim=True) == 0
    bos = torch.zeros_like(d)
    bos[..., 0] = 1
    return as_pattern(torch.where(none, bos, d / d.sum(-1, keepdim=True).clamp(min=1)))


def uniform_pattern(tokens):
    b, n = tokens.shape
    return as_pattern(torch.ones(n, n).tril().div(torch.arange(1, n + 1)[:, None]).expand(b, n, n))


# ---------------------------------------------------------------- hand-built patterns


def test_previous_token_pattern_scores_1_on_prev_and_0_on_induction():
    t2, t4 = two_copies(), four_copies()
    p2, p4 = previous_token_pattern(t2), previous_token_pattern(t4)
    assert scores.previous_token_score_from_pattern(p2).item() == pytest.approx(1.0)
    assert scores.diagonal_induction_score_from_pattern(p2, L, 1).item() == pytest.approx(0.0)
    assert scores.prefix_matching_score_from_pattern(p4, t4, 1 + L).item() == pytest.approx(0.0)
    assert scores.pattern_overlap_score_from_pattern(p2, scores.induction_mask(t2)).item() == pytest.approx(0.0)


def test_exact_induction_pattern_scores_1_on_all_three_induction_scores():
    t2, t4 = two_copies(), four_copies()
    p2, p4 = exact_induction_pattern(t2), exact_induction_pattern(t4)
    assert scores.diagonal_induction_score_from_pattern(p2, L, 1).item() == pytest.approx(1.0)
    assert scores.prefix_matching_score_from_pattern(p4, t4, 1 + L).item() == pytest.approx(1.0)
    assert scores.pattern_overlap_score_from_pattern(p2, scores.induction_mask(t2)).item() == pytest.approx(1.0)
    assert scores.pattern_overlap_score_from_pattern(p4, scores.induction_mask(t4)).item() == pytest.approx(1.0)
    # TransformerLens's default keeps BOS in the denominator: then the first copy's BOS rows count against it
    kept = scores.pattern_overlap_score_from_pattern(p2, scores.induction_mask(t2), exclude_bos=False).item()
    assert kept == pytest.approx(L / (1 + 2 * L))
    assert scores.previous_token_score_from_pattern(p2).item() < 0.2


def test_uniform_pattern_scores_the_closed_form_values():
    t2, t4 = two_copies(1), four_copies(1)
    n2, n4 = t2.shape[1], t4.shape[1]
    u2, u4 = uniform_pattern(t2), uniform_pattern(t4)
    # previous token: query i spreads 1/(i+1) over i+1 keys
    assert scores.previous_token_score_from_pattern(u2).item() == pytest.approx(
        sum(1 / (i + 1) for i in range(1, n2)) / (n2 - 1))
    # diagonal: queries 1+L .. 2L
    assert scores.diagonal_induction_score_from_pattern(u2, L, 1).item() == pytest.approx(
        sum(1 / (i + 1) for i in range(1 + L, 1 + 2 * L)) / L)
    # prefix matching: query i in copy c (c = 1, 2, 3 earlier copies) gets c / (i + 1)
    expected = sum((i - 1) // L / (i + 1) for i in range(1 + L, n4)) / (n4 - 1 - L)
    assert scores.prefix_matching_score_from_pattern(u4, t4, 1 + L).item() == pytest.approx(expected)
    # overlap, BOS excluded: the second copy's rows put 1/(i+1) on one key; each row i has i/(i+1) off BOS
    num = sum(1 / (i + 1) for i in range(1 + L, n2))
    den = sum(i / (i + 1) for i in range(n2))
    assert scores.pattern_overlap_score_from_pattern(u2, scores.induction_mask(t2)).item() == pytest.approx(num / den)


def test_duplicate_token_pattern_scores_on_duplicate_not_induction():
    t = two_copies()
    d = scores.duplicate_mask(t)
    none = d.sum(-1, keepdim=True) == 0
    bos = torch.zeros_like(d)
    bos[..., 0] = 1
    p = as_pattern(torch.where(none, bos, d))
    assert scores.pattern_overlap_score_from_pattern(p, d).item() == pytest.approx(1.0)
    assert scores.pattern_overlap_score_from_pattern(p, scores.induction_mask(t)).item() == pytest.approx(0.0)


def test_masks_mark_earlier_occurrences_and_the_token_after():
    t = torch.tensor([[0, 5, 7, 5, 7]])
    dup, ind = scores.duplicate_mask(t)[0], scores.induction_mask(t)[0]
    assert dup.nonzero().tolist() == [[3, 1], [4, 2]]
    assert ind.nonzero().tolist() == [[3, 2], [4, 3]]


def test_copying_score_identity_high_negated_zero_random_low():
    v = 32
    eye = torch.eye(v)
    assert scores.copying_score_from_ov(eye).item() == pytest.approx(1.0)
    assert scores.copying_score_from_ov(-eye).item() == pytest.approx(0.0)
    rand = torch.randn(v, v, generator=torch.Generator().manual_seed(0))
    assert scores.copying_score_from_ov(rand).item() < 0.1


def copy_model(sign: float) -> il.Transformer:
    """d_model = d_head = d_vocab and identity embeddings: every head's full OV circuit is sign * I."""
    m = tiny_model(d_vocab=8, d_model=8, d_head=8, n_heads=1, n_ctx=8)
    with torch.no_grad():
        m.W_E.copy_(torch.eye(8))
        m.W_U.copy_(torch.eye(8))
        for block in m.blocks:
            block.attn.W_V.copy_(torch.eye(8)[None])
            block.attn.W_O.copy_(sign * torch.eye(8)[None])
    return m


def test_ov_eigen_score_is_1_for_identity_and_minus_1_for_negated():
    assert torch.allclose(scores.ov_eigen_scores(copy_model(1.0)), torch.ones(2, 1))
    assert torch.allclose(scores.ov_eigen_scores(copy_model(-1.0)), -torch.ones(2, 1))
    assert torch.allclose(scores.copying_scores(copy_model(1.0)), torch.ones(2, 1))
    assert torch.allclose(scores.copying_scores(copy_model(-1.0)), torch.zeros(2, 1))


def test_icl_score_is_late_minus_early():
    losses = torch.tensor([[3.0, 2.0, 1.0], [5.0, 2.0, 3.0]])
    assert scores.icl_score(losses, 0, 2) == pytest.approx(-2.0)


def test_scores_have_shape_and_range_on_an_untrained_model():
    m = tiny_model()
    for s in (scores.previous_token_scores(m), scores.pattern_overlap_scores(m), scores.duplicate_token_scores(m),
              scores.prefix_matching_scores(m, block_len=3), scores.copying_scores(m)):
        assert s.shape == (2, 2) and (s >= 0).all() and (s <= 1 + 1e-6).all()
    e = scores.ov_eigen_scores(m)
    assert e.shape == (2, 2) and (e.abs() <= 1 + 1e-6).all()


def test_induction_attention_from_pattern_sums_over_every_earlier_occurrence():
    t = torch.tensor([[0, 5, 6, 5, 6, 5]])      # query 5 (token 5) has two earlier 5s, targets 2 and 4
    on = scores.induction_attention_from_pattern(uniform_pattern(t), t)
    assert on.shape == (1, 1, 6)
    assert on[0, 0].tolist() == pytest.approx([0, 0, 0, 1 / 4, 1 / 5, 2 / 6])
    exact = scores.induction_attention_from_pattern(exact_induction_pattern(two_copies(1)), two_copies(1))[0, 0]
    assert exact[1 + L:].tolist() == pytest.approx([1.0] * L) and exact[:1 + L].abs().max() == 0


def test_induction_attention_errors_name_the_shapes():
    t = two_copies(1)
    with pytest.raises(ValueError, match=r"tokens must be \[batch, pos\]"):
        scores.induction_attention_from_pattern(uniform_pattern(t), t[0])
    with pytest.raises(ValueError, match="need pattern"):
        scores.induction_attention_from_pattern(uniform_pattern(t)[:, :, :-1, :-1], t)
    with pytest.raises(ValueError, match=r"layer must be in \[0, 2\)"):
        scores.induction_attention(tiny_model(), torch.zeros(1, 4, dtype=torch.long), layer=2)


def test_switch_on_position_needs_a_full_run_above_threshold():
    positions = torch.arange(10, 20)
    curve = torch.tensor([0, .6, .6, 0, .6, .6, .6, .6, .6, 0])
    assert scores.switch_on_position(positions, curve, 0.5, run=5) == 14
    assert scores.switch_on_position(positions, curve, 0.5, run=2) == 11
    assert scores.switch_on_position(positions, curve, 0.7, run=1) is None
    # on only for the last 3 positions: not a run of 5
    assert scores.switch_on_position(range(5), [0, 0, 0.6, 0.6, 0.6], 0.5, run=5) is None
    with pytest.raises(ValueError, match="same length"):
        scores.switch_on_position(positions, curve[:-1])
    with pytest.raises(ValueError, match="run must be an integer >= 1"):
        scores.switch_on_position(positions, curve, run=0)


def test_attention_budget_closed_form_and_the_overlap_identity():
    t = two_copies(1)                              # BOS + r + r: first copy at 1, second at 1 + L
    n, second = t.shape[1], 1 + L
    b = scores.attention_budget(uniform_pattern(t), 1, second)   # query i spreads 1/(i+1)
    assert b["bos_first"].item() == pytest.approx(sum(1 / (i + 1) for i in range(1, second)) / L)
    assert b["bos_second"].item() == pytest.approx(sum(1 / (i + 1) for i in range(second, n)) / L)
    non_bos = [i / (i + 1) for i in range(1, n)]
    assert b["non_bos"].item() == pytest.approx(sum(non_bos))
    assert b["before_second"].item() == pytest.approx(sum(non_bos[:second - 1]) / sum(non_bos))
    # distinct tokens: overlap = L * diagonal / non_bos, for any pattern
    p = torch.cat([uniform_pattern(t), exact_induction_pattern(t), previous_token_pattern(t)], dim=1)
    b = scores.attention_budget(p, 1, second)
    diag = scores.diagonal_induction_score_from_pattern(p, L, 1)
    overlap = scores.pattern_overlap_score_from_pattern(p, scores.induction_mask(t))
    assert torch.allclose(L * diag / b["non_bos"], overlap)
    assert b["bos_first"].tolist() == pytest.approx([b["bos_first"][0].item(), 1.0, 1 / L])   # prev: query 1 on BOS
    with pytest.raises(ValueError, match="1 <= first < second < 13"):
        scores.attention_budget(p, second, second)


def test_ab_tokens_repeats_the_token_at_k_after_gap():
    t = torch.tensor([[0, 5, 6, 7, 8, 9], [0, 1, 2, 3, 4, 5]])
    assert scores.ab_tokens(t, 2, 3).tolist() == [[0, 5, 6, 7, 8, 6], [0, 1, 2, 3, 4, 2]]
    assert scores.ab_tokens(t, 1, 5).tolist() == [[0, 5, 6, 7, 8, 9, 5], [0, 1, 2, 3, 4, 5, 1]]
    for k, gap in ((0, 3), (2, 1), (2, 5)):
        with pytest.raises(ValueError, match="k >= 1.*gap >= 2.*k \\+ gap <= 6"):
            scores.ab_tokens(t, k, gap)
    # match=2: "C A B ... C A", the token before the first A placed before the last one too
    assert scores.ab_tokens(t, 2, 3, match=2).tolist() == [[0, 5, 6, 7, 5, 6], [0, 1, 2, 3, 1, 2]]
    assert scores.ab_tokens(t, 2, 4, match=2).tolist() == [[0, 5, 6, 7, 8, 5, 6], [0, 1, 2, 3, 4, 1, 2]]
    for k, gap in ((1, 4), (2, 2)):
        with pytest.raises(ValueError, match="k >= 2.*gap >= 3"):
            scores.ab_tokens(t, k, gap, match=2)
    with pytest.raises(ValueError, match="match must be"):
        scores.ab_tokens(t, 2, 3, match=0)


def test_match_follower_rates_by_hand():
    t = torch.tensor([[0, 5, 6, 7, 5, 6, 7, 9]])
    r = scores.match_follower_rates(t)
    # p = 4: token 5, j = 1, prev 7 vs 0: one token, next t[5] = 6 == t[2] = 6 (hit)
    # p = 5: token 6, j = 2, prev 5 vs 5: two tokens, next t[6] = 7 == t[3] = 7 (hit)
    # p = 6: token 7, j = 3, prev 6 vs 6: two tokens, next t[7] = 9 != t[4] = 5 (miss)
    assert r == {"one token": 1.0, "two tokens": 0.5, "n one token": 1, "n two tokens": 2}
    with pytest.raises(ValueError, match="pos >= 4"):
        scores.match_follower_rates(t[:, :3])


def test_attention_back_scores_one_back_is_the_previous_token_score():
    m = tiny_model()
    t = il.random_tokens(2, m.cfg.n_ctx, m.cfg.d_vocab, seed=0)
    torch.testing.assert_close(scores.attention_back_scores(m, 1, t), scores.previous_token_scores(m, t))
    with pytest.raises(ValueError, match="back must be"):
        scores.attention_back_scores(m, 0, t)
    with pytest.raises(ValueError, match="below the sequence length"):
        scores.attention_back_scores(m, m.cfg.n_ctx, t)


def test_copying_accuracies_identity_1_negated_0_unless_top_k_is_everything():
    assert torch.equal(scores.copying_accuracies(copy_model(1.0)), torch.ones(2, 1))
    assert torch.equal(scores.copying_accuracies(copy_model(-1.0)), torch.zeros(2, 1))
    assert torch.equal(scores.copying_accuracies(copy_model(-1.0), k=8), torch.ones(2, 1))


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_value_errors_naming_the_valid_range():
    m = tiny_model()
    with pytest.raises(ValueError, match="prefix.*diagonal.*overlap"):
        scores.induction_scores(m, method="nope")
    with pytest.raises(ValueError, match="n_ctx = 16"):
        scores.prefix_matching_scores(m, block_len=5)
    t = four_copies(1, 3)
    with pytest.raises(ValueError, match=r"\[0, 13\)"):
        scores.prefix_matching_score_from_pattern(uniform_pattern(t), t, 13)
    with pytest.raises(ValueError, match="0 <= early < late < 3"):
        scores.icl_score(torch.zeros(1, 3), 1, 3)
    with pytest.raises(ValueError, match="square"):
        scores.copying_score_from_ov(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="query == key"):
        scores.previous_token_score_from_pattern(torch.zeros(2, 3))


# ---------------------------------------------------------------- the default trained model
# Measured on induction-2l (seed 0, one thread): previous-token 0.88 for the best layer-0 head, 0.02 for
# the rest; layer-1 heads: diagonal 0.88 and 0.57, prefix matching 0.91 and 0.45, overlap 0.62 and 0.65.


def test_previous_token_head_top_by_margin_0_5(trained):
    s = scores.previous_token_scores(trained)[0].sort(descending=True).values
    assert s[0] > 0.8
    assert s[0] - s[1] > 0.5


def test_induction_heads_are_in_layer_1_by_all_three_definitions(trained):
    # Both layer-1 heads attend inductively (the second one mostly late in the context); what this
    # test asserts is a clear margin between the best layer-1 head and every layer-0 head, by every
    # definition. (The margin over the runner-up is the last test of this file.)
    for method, floor in (("prefix", 0.8), ("diagonal", 0.8), ("overlap", 0.3)):
        s = scores.induction_scores(trained, method)
        assert s[1].max() > floor, method
        assert s[1].max() - s[0].max() > floor - 0.1, method


def test_duplicate_token_scores_are_low(trained):
    assert scores.duplicate_token_scores(trained).max() < 0.1


def test_induction_head_copies_by_eigenvalues_and_copying_score(trained):
    head = induction_head(trained)
    assert scores.ov_eigen_scores(trained)[head] > 0.9                  # measured 0.99
    copying = scores.copying_scores(trained)
    assert copying[head] > 0.1                                           # measured 0.26 (chance ~1/63)
    assert copying[head] > 3 * copying[0].max()                          # layer 0: <= 0.023


def test_eval_regions_are_the_two_copies(trained):
    half, prefix = scores.eval_layout(trained)
    r = scores.eval_regions(trained)
    assert r["first half"] == slice(1 + prefix, prefix + half)
    assert r["repeated half"] == slice(1 + prefix + half, prefix + 2 * half)
    assert scores.prefix_block_len(trained) == 15


def test_both_layer1_heads_are_induction_heads_and_diagonal_and_prefix_rank_them_differently(trained):
    # The chapters name the layer-1 head with the best diagonal score. For the previous default model it won
    # by far (diagonal 0.88 vs 0.57, prefix 0.91 vs 0.45). The current model has two induction heads of
    # nearly equal score, and the two definitions rank them differently (chapter 3 explains why). Measured:
    # diagonal 0.92 vs 0.88, prefix matching 0.94 vs 0.96; every layer-0 head < 0.02.
    diag = scores.induction_scores(trained, "diagonal")
    prefix = scores.induction_scores(trained, "prefix")
    assert diag[1].min() > 0.8 and prefix[1].min() > 0.8
    assert diag[0].max() < 0.05 and prefix[0].max() < 0.05
    top, runner = diag[1].topk(2).values
    assert 0.02 < top - runner < 0.1
    assert prefix[1].argmax() != diag[1].argmax()


def test_induction_attention_per_copy_on_the_trained_model(trained):
    # Measured (chapter 3): the induction head 0.86, 0.97, 0.98 in copies 2-4, the other layer-1 head 0.92,
    # 0.98, 0.97; layer 0 ~0. (For the previous default model the other head switched on only around
    # position 38.) The induction head matches two tokens: it misses exactly the first query of copy 2,
    # whose token's earlier occurrence followed BOS (0.03), and finds the first queries of copies 3 and 4.
    block = scores.prefix_block_len(trained)
    t = il.repeated_blocks(10, block, 4, trained.cfg.d_vocab, seed=scores.EVAL_SEED)
    on = scores.induction_attention(trained, t, layer=1)                  # [batch, head, query]
    assert on.shape == (10, trained.cfg.n_heads, t.shape[1])
    new_token = scores.induction_mask(t).sum(-1) == 0                     # [batch, query]: nothing to find
    assert new_token[:, 1 + block:].sum() == 0 and (on * new_token[:, None]).abs().max() == 0
    head = induction_head(trained)[1]
    for h in range(trained.cfg.n_heads):
        assert on[:, h, 1 + block:].mean() > 0.8, h
    curve = on[:, head].mean(0)
    starts = [1 + k * block for k in (1, 2, 3)]
    assert curve[starts[0]] < 0.1 and min(curve[s] for s in starts[1:]) > 0.9
    assert curve[starts[0] + 1:].min() > 0.7                              # measured 0.75
    assert on[:, 1 - head, 1 + block:].mean(0).min() > 0.8                # the other head: everywhere
    assert scores.induction_attention(trained, t, layer=0)[:, :, 1 + block:].mean() < 0.1   # no layer-0 head


def test_ab_probe_the_circuit_works_apart_and_weakens_close_together(trained):
    # Measured (chapter 3, 128 rows), one matching token ("A B ... A"): k=10, g=24: p(B) 0.47, top 100%,
    # prev 1.00, the one-token induction head 0.92, the two-token one 0.02; k=20, g=8: p(B) 0.16, the
    # one-token head 0.53. Two matching tokens ("C A B ... C A"): p(B) 1.00 and 0.98, the two-token head
    # 0.96 and 0.88. (The previous default model gave p(B) 0.85 after one matching token; the current one
    # keeps its confidence for two, which its training data makes far stronger evidence.)
    rand = il.repeated_tokens(128, 62, trained.cfg.d_vocab, seed=5, distinct=True)[:, :63]
    prev, head = prev_token_head(trained), induction_head(trained)
    two = head[1]                        # the best induction head by diagonal score matches two tokens
    one = 1 - two
    mid = scores.ab_probe(trained, rand, 10, 24, prev)
    close = scores.ab_probe(trained, rand, 20, 8, prev)
    assert mid["ind"].shape == (trained.cfg.n_heads,)
    assert 0.3 < mid["p"] < 0.6 and mid["top"] > 0.95 and mid["prev"] > 0.9
    assert mid["ind"][one] > 0.8 and mid["ind"][two] < 0.05
    assert close["p"] < mid["p"] - 0.2 and close["ind"].max() < mid["ind"][one] - 0.3
    for k, g in ((10, 24), (20, 8)):
        r = scores.ab_probe(trained, rand, k, g, prev, match=2)
        assert r["p"] > 0.9 and r["top"] > 0.99 and r["ind"][two] > 0.8, (k, g)
    # one matching token is weak evidence in the training data, two are strong
    data = il.zoo.make_data(il.zoo.RECIPES["induction-2l"].data, trained.cfg)
    rates = scores.match_follower_rates(data.sample(500, torch.Generator().manual_seed(0))[0])
    assert rates["one token"] < 0.15 and rates["two tokens"] > 0.8        # measured 0.07 and 0.91
    # the other layer-0 head does not attend from B to A
    assert scores.ab_probe(trained, rand, 10, 24, (0, 1 - prev[1]))["prev"] < 0.1
    with pytest.raises(ValueError, match=r"head must be in \[0, 2\)"):
        scores.ab_probe(trained, rand, 10, 24, (0, 2))
    full = il.repeated_tokens(1, 63, trained.cfg.d_vocab, seed=5, distinct=True)   # 64 tokens + A: too long
    with pytest.raises(ValueError, match="n_ctx=64"):
        scores.ab_probe(trained, full, 50, 14, prev)


def test_copying_accuracies_on_the_trained_model(trained):
    acc = scores.copying_accuracies(trained)                              # measured: 1.00, 0.92; layer 0 <= 0.02
    assert acc.shape == (2, 2) and acc[1].min() > 0.8 and acc[0].max() < 0.2


def test_position_runs():
    pos = torch.arange(2, 12)
    mask = torch.tensor([True, True, False, True, False, False, True, True, True, False])
    assert scores.position_runs(pos, mask) == [(2, 3), (5, 5), (8, 10)]
    assert scores.position_runs(pos, torch.ones(10, dtype=torch.bool)) == [(2, 11)]
    assert scores.position_runs(pos, torch.zeros(10, dtype=torch.bool)) == []
    with pytest.raises(ValueError, match="mask boolean"):
        scores.position_runs(pos, mask.float())
    with pytest.raises(ValueError, match="same length"):
        scores.position_runs(pos, mask[:5])


def test_first_occurrence_order_puts_the_sequence_on_the_diagonal():
    t = torch.tensor([0, 5, 3, 5, 7, 3])
    order = scores.first_occurrence_order(t, 8)
    assert order.tolist() == [0, 5, 3, 7, 1, 2, 4, 6]          # seen in order, then the rest ascending
    assert sorted(order.tolist()) == list(range(8))            # a permutation
    column = order.argsort()                                   # token id -> column
    two = il.repeated_tokens(1, 6, 32, seed=1, distinct=True)[0]   # BOS + r + r
    col = scores.first_occurrence_order(two, 32).argsort()[two]
    assert col[:7].tolist() == list(range(7))                  # up to the repeat: position i in column i
    assert col[7:].tolist() == list(range(1, 7))               # the second copy: the first copy's columns
    assert column[t].tolist() == [0, 1, 2, 1, 3, 2]
    with pytest.raises(ValueError, match="one sequence"):
        scores.first_occurrence_order(t[None], 8)
    with pytest.raises(ValueError, match=r"ids in \[0, 4\)"):
        scores.first_occurrence_order(t, 4)
