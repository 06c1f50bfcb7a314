"""Hopfield networks: the energy and update of Ramsauer et al. (2020), the classical binary network,
the retrieval experiments, and attention on the trained model read as one Hopfield update."""
from __future__ import annotations

import math

import pytest
import torch

import induction_lib as il
from induction_lib import hopfield as hf
from _fixtures import trained  # noqa: F401


def random_case(g: torch.Generator, dtype=torch.float64):
    """A random memory: d in [2, 40], N in [1, 60], pattern scale and beta spread over decades."""
    d = int(torch.randint(2, 41, (1,), generator=g))
    n = int(torch.randint(1, 61, (1,), generator=g))
    scale = 10 ** (torch.rand(1, generator=g).item() * 2 - 1)          # 0.1 .. 10
    beta = 10 ** (torch.rand(1, generator=g).item() * 4 - 2)           # 0.01 .. 100
    X = torch.randn(d, n, generator=g, dtype=dtype) * scale
    xi = torch.randn(d, generator=g, dtype=dtype) * scale * (0.2 + 2 * torch.rand(1, generator=g).item())
    return X, xi, beta


# ---------------------------------------------------------------- energy and update


def test_energy_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 7, generator=g, dtype=torch.float64)
    xi = torch.randn(5, generator=g, dtype=torch.float64)
    beta = 1.7
    lse = math.log(sum(math.exp(beta * float(X[:, i] @ xi)) for i in range(7))) / beta
    M = max(float(X[:, i].norm()) for i in range(7))
    want = -lse + 0.5 * float(xi @ xi) + math.log(7) / beta + 0.5 * M ** 2
    assert hf.energy(X, xi, beta).item() == pytest.approx(want, rel=1e-12)


def test_update_is_X_softmax_beta_XT_xi_and_batches():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(6, 9, generator=g, dtype=torch.float64)
    xis = torch.randn(4, 6, generator=g, dtype=torch.float64)
    out = hf.update(X, xis, 0.8)
    for b in range(4):
        assert torch.allclose(out[b], X @ torch.softmax(0.8 * X.T @ xis[b], 0))
    assert torch.allclose(hf.update(X, xis[0], 0.0), X.mean(1))      # beta = 0: the mean of the patterns


def test_energy_is_bounded_below_by_zero():
    g = torch.Generator().manual_seed(2)
    for _ in range(200):
        X, xi, beta = random_case(g)
        assert hf.energy(X, xi, beta).item() >= -1e-9


def test_energy_never_increases_float64():
    """Many random draws, every update: E(xi_{t+1}) <= E(xi_t) (Ramsauer et al. 2020, Theorem 1)."""
    g = torch.Generator().manual_seed(3)
    for _ in range(300):
        X, xi, beta = random_case(g)
        r = hf.retrieve(X, xi, beta, max_steps=20, tol=0.0)
        e = r.energies
        scale = 1.0 + e.abs().max().item()
        assert (e[1:] - e[:-1]).max().item() <= 1e-10 * scale, (X.shape, beta, e.tolist())


def test_energy_never_increases_float32_within_tolerance():
    g = torch.Generator().manual_seed(4)
    for _ in range(200):
        X, xi, beta = random_case(g, torch.float32)
        e = hf.retrieve(X, xi, beta, max_steps=10, tol=0.0).energies
        scale = 1.0 + e.abs().max().item()
        assert (e[1:] - e[:-1]).max().item() <= 1e-5 * scale


def test_batched_states_each_never_increase():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(16, 30, generator=g, dtype=torch.float64)
    xis = 2 * torch.randn(50, 16, generator=g, dtype=torch.float64)
    r = hf.retrieve(X, xis, 3.0, max_steps=30)
    assert r.energies.shape == (r.steps + 1, 50)
    assert (r.energies[1:] - r.energies[:-1]).max().item() <= 1e-10 * (1 + r.energies.abs().max().item())


def test_retrieve_reaches_a_fixed_point():
    X = hf.random_patterns(32, 10, seed=0).double()
    r = hf.retrieve(X, X[:, 3] + 0.05, 50.0, max_steps=100, tol=1e-9)
    assert r.converged
    assert torch.allclose(hf.update(X, r.state, 50.0), r.state, atol=1e-8)
    assert (r.state - X[:, 3]).norm() < 1e-3


def test_bad_arguments_are_reported():
    X = torch.randn(4, 3)
    with pytest.raises(ValueError, match="beta"):
        hf.energy(X, torch.randn(4), 0.0)
    with pytest.raises(ValueError, match="beta"):
        hf.update(X, torch.randn(4), -1.0)
    with pytest.raises(ValueError, match="d = 4"):
        hf.update(X, torch.randn(5), 1.0)
    with pytest.raises(ValueError, match=r"\[d, N\]"):
        hf.energy(torch.randn(4), torch.randn(4), 1.0)


def test_separation_and_effective_count():
    X = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(hf.separation(X), torch.ones(3, dtype=torch.float64))
    assert hf.effective_count(torch.tensor([1.0, 0, 0])).item() == pytest.approx(1.0)
    assert hf.effective_count(torch.full((8,), 1 / 8)).item() == pytest.approx(8.0)


# ---------------------------------------------------------------- classical network


def test_hebbian_weights_are_symmetric_with_zero_diagonal():
    X = hf.random_patterns(20, 3, seed=1, binary=True)
    W = hf.hebbian_weights(X)
    assert torch.allclose(W, W.T) and torch.all(W.diagonal() == 0)
    assert torch.allclose(W, (X @ X.T - 3 * torch.eye(20)) / 20)


def test_binary_energy_never_increases_and_few_patterns_are_fixed_points():
    g = torch.Generator().manual_seed(6)
    for _ in range(6):
        X = hf.random_patterns(40, 12, seed=g, binary=True)
        W = hf.hebbian_weights(X)
        s = torch.sign(torch.randn(8, 40, generator=g))
        r = hf.binary_retrieve(W, s, seed=g)
        assert (r.energies[1:] - r.energies[:-1]).max().item() <= 1e-5 * (1 + r.energies.abs().max().item())
    X = hf.random_patterns(100, 3, seed=7, binary=True)
    W = hf.hebbian_weights(X)
    for i in range(3):
        assert torch.equal(hf.binary_sweep(W, X[:, i]), X[:, i])


# ---------------------------------------------------------------- experiments


def test_retrieval_error_falls_with_beta_and_grows_with_n():
    b = hf.retrieval_vs_beta()
    assert b["error"][0] > 0.5 and b["error"][-1] < 1e-3
    assert all(x >= y - 1e-6 for x, y in zip(b["error"], b["error"][1:]))
    n = hf.retrieval_vs_n()
    assert n["error"][-1] > 10 * n["error"][0]
    assert n["separation"][-1] < n["separation"][0]


def test_capacity_modern_far_beyond_classical():
    c = hf.capacity(ds=(8, 16, 32), trials=12)
    for d, cl, mod in zip(c.ds, c.capacity_classical, c.capacity_modern):
        assert cl is not None and mod is not None
        assert mod > 2 * cl
    cl32, mod32 = c.capacity_classical[-1], c.capacity_modern[-1]
    assert 0.05 * 32 <= cl32 <= 0.35 * 32          # ~0.14 d, plus small-d effects
    assert mod32 >= 1000                            # exponential in d
    assert "classical" in c.table()


def test_metastable_states_shrink_from_all_to_one():
    m = hf.metastable_states()
    counts = m["count"]
    assert counts[0] > 0.9 * m["n"]                 # small beta: the global average
    assert counts[-1] < 1.05                        # large beta: single patterns
    assert any(2.5 < c < 6 for c in counts)         # in between: a cluster of 4 similar patterns


def test_figures_draw_the_numbers_they_are_given():
    from induction_lib.plots import hopfield as hplots
    vs_beta, vs_n = hf.retrieval_vs_beta(), hf.retrieval_vs_n()
    fig = hplots.plot_retrieval(vs_beta, vs_n)
    (beta_line,), (n_line,) = fig.axes[0].lines, fig.axes[1].lines
    assert list(beta_line.get_ydata()) == pytest.approx(list(vs_beta["error"]))
    assert list(n_line.get_xdata()) == pytest.approx(list(vs_n["n"]))
    cap = hf.capacity(ds=(8, 16), trials=4, ns=[1, 2, 4, 8, 16, 64])
    ax = hplots.plot_capacity(cap).axes[0]
    solid = [line for line in ax.lines if line.get_linestyle() == "-"]
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(solid) == len(dashed) == 2                   # modern and classical, one per d
    assert list(dashed[1].get_ydata()) == pytest.approx(torch.as_tensor(cap.classical[1]).tolist())
    limits = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":")
    assert limits == pytest.approx([0.14 * 8, 0.14 * 16])
    meta = hf.metastable_states()
    ax = hplots.plot_metastable(meta).axes[0]
    assert list(ax.lines[0].get_ydata()) == pytest.approx(list(meta["count"]))


# ---------------------------------------------------------------- the trained model


def test_attention_is_one_hopfield_update(trained):
    model = trained
    layer, head = il.heads.induction_head(model)
    assert layer >= 1
    a = hf.attention_as_hopfield(model, layer=layer, head=head)
    assert a.beta == pytest.approx(1 / math.sqrt(model.cfg.d_head))
    assert a.max_pattern_diff < 1e-5
    assert a.max_z_diff < 1e-4
    # one row by hand: softmax(beta K xi) and z = that times V
    tokens = il.repeated_tokens(1, 10, model.cfg.d_vocab, seed=5)
    _, cache = model.run_with_cache(tokens)
    i = 15
    q, k, v = (getattr(cache, n)(layer)[0, :, head] for n in "qkv")
    w = torch.softmax(a.beta * k[: i + 1] @ q[i], 0)
    assert torch.allclose(cache.pattern(layer)[0, head, i, : i + 1], w, atol=1e-6)
    z = cache[f"blocks.{layer}.attn.hook_z"][0, i, head]
    assert torch.allclose(z, v[: i + 1].T @ w, atol=1e-5)


def test_induction_head_retrieves_the_matching_key(trained):
    m = hf.induction_memory(trained)
    s = m.summary()
    assert s["mass"] > 0.5 and s["top1"] > 0.7
    assert torch.all(m.bound <= m.mass + 1e-5)      # Hopfield's bound from the logit gap
    assert s["beta_eff"] > 0 and s["logit_gap"] > 0
    assert torch.allclose(m.logit_gap, m.beta_eff * m.key_separation)


def test_lookup_head_attends_to_a_lone_earlier_occurrence(trained):
    one, two = hf.match_attention(trained, 1, n_trials=64), hf.match_attention(trained, 2, n_trials=64)
    assert one.shape == two.shape == (trained.cfg.n_layers, trained.cfg.n_heads)
    layer, head = hf.find_lookup_head(trained, n_trials=64)
    assert layer == 1 and one[layer, head] == one[1:].max() > 0.5   # measured 0.85 (head 1.0)
    assert (two[1] > 0.5).all()           # a two-token repeat: every layer-1 head looks it up (0.92, 0.94)
    with pytest.raises(ValueError, match="match"):
        hf.match_attention(trained, 0)


def test_two_occurrences_split_the_prediction(trained):
    # the head that looks up a lone token (the best induction head may need two matching tokens)
    layer, head = hf.find_lookup_head(trained, n_trials=64)
    r = hf.two_occurrence_split(trained, n_trials=48, seed=0, layer=layer, head=head)
    s = r.summary()
    # the two-key Hopfield softmax is exactly the attention restricted to the two keys
    share = r.attn_b / (r.attn_b + r.attn_c)
    assert torch.allclose(share, r.hopfield_b, atol=1e-5)
    assert s["attn_both"] > 0.8                     # the head retrieves the two memories (measured 0.92) ...
    assert s["prob_b"] > 0.05 and s["prob_c"] > 0.05  # ... and the prediction is split between them
    # the model copies a lone token weakly: B and C together get 0.31 (0.30 with A seen once)
    assert s["prob_both"] > 0.2
    assert abs(s["hopfield_b"] - s["prob_share_b"]) < 0.1 and s["corr_hopfield_vs_prob_share"] > 0.8
    assert 0 <= s["mixed"] <= 1
    tokens, pb, pc, a, b, c = hf.two_occurrence_tokens(4, 40, trained.cfg.d_vocab, seed=1)
    for t in range(4):
        row = tokens[t].tolist()
        assert row[pb[t] - 1] == row[pc[t] - 1] == row[-1] == a[t]
        assert row[pb[t]] == b[t] and row[pc[t]] == c[t]
        assert row.count(int(a[t])) == 3 and len(set(row)) == len(row) - 2


def test_occurrence_tokens_layout():
    tokens, where, conts = hf.occurrence_tokens(32, 48, 64, k=3, seed=1)
    assert tokens.shape == (32, 48) and where.shape == conts.shape == (32, 3)
    a = tokens[:, -1]
    for t in range(32):
        assert (tokens[t, where[t] - 1] == a[t]).all() and torch.equal(tokens[t, where[t]], conts[t])
        assert (tokens[t] == a[t]).sum() == 4                       # k earlier occurrences + the query
        others = [x for i, x in enumerate(tokens[t, 1:].tolist()) if x != a[t].item()]
        assert len(set(others)) == len(others)                      # everything else distinct
        assert (where[t][1:] - where[t][:-1] >= 2).all()
    with pytest.raises(ValueError, match="need k >= 1"):
        hf.occurrence_tokens(1, 62, 64, k=3)


def test_k_occurrences_split_the_prediction_as_the_hopfield_softmax_predicts(trained):
    layer, head = hf.find_lookup_head(trained, n_trials=64)
    r = hf.occurrence_split(trained, k=3, n_trials=128, seed=0, layer=layer, head=head)
    assert r.attn.shape == r.probs.shape == r.hopfield.shape == (128, 3)
    torch.testing.assert_close(r.hopfield.sum(-1), torch.ones(128))
    assert r.attn.sum(-1).mean() > 0.7                              # the three memories hold the attention
    # measured (default model, lookup head 1.0): attention 0.96, correlation 0.94, mean absolute difference 0.08
    corr = torch.corrcoef(torch.stack([r.hopfield.flatten(), r.prob_share.flatten()]))[0, 1]
    assert corr > 0.75 and (r.hopfield - r.prob_share).abs().mean() < 0.2
    single = hf.occurrence_split(trained, k=1, n_trials=64, seed=0)
    assert torch.equal(single.hopfield, torch.ones(64, 1))
