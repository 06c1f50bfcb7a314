"""The exercise checks (induction_lib.exercises.check).

For every check: the reference solution passes, at least two plausible wrong answers (real
mistakes, written out below) are rejected with an ExerciseError whose message points at the
mistake, and a stub prints "not implemented yet" and raises NotImplementedError.

The reference solutions live here (and in the chapter notebooks), never in the check module: the
checks compare with properties and fixed numbers.
"""
from __future__ import annotations

import math

import pytest
import torch

from induction_lib import ModelConfig, Transformer
from induction_lib.exercises import ExerciseError, check


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 9.9 (ex-test): not implemented yet")


def passes(check_fn, *args, capsys=None, **kwargs):
    check_fn(*args, **kwargs)
    if capsys is not None:
        out = capsys.readouterr().out
        assert out.startswith("✓"), out


def rejects(check_fn, *args, match: str, **kwargs):
    with pytest.raises(ExerciseError, match=match):
        check_fn(*args, **kwargs)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(ModelConfig(d_vocab=16, n_ctx=32, d_model=16, n_layers=2, n_heads=3, d_head=4)).eval()


# ================================================================ chapter 1


def repeated_tokens_ref(batch, half_len, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(1, vocab, (batch, half_len), generator=g)
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), r, r], dim=1)


def repeated_tokens_no_bos(batch, half_len, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(1, vocab, (batch, half_len), generator=g)
    return torch.cat([r, r], dim=1)


def repeated_tokens_bos_last(batch, half_len, vocab, seed=0):
    return repeated_tokens_ref(batch, half_len, vocab, seed).roll(-1, dims=1)


def repeated_tokens_bos_in_body(batch, half_len, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(0, vocab, (batch, half_len), generator=g)
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), r, r], dim=1)


def repeated_tokens_misses_top(batch, half_len, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(1, vocab - 1, (batch, half_len), generator=g)
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), r, r], dim=1)


def repeated_tokens_two_draws(batch, half_len, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    r1 = torch.randint(1, vocab, (batch, half_len), generator=g)
    r2 = torch.randint(1, vocab, (batch, half_len), generator=g)
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), r1, r2], dim=1)


def repeated_tokens_same_row(batch, half_len, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(1, vocab, (1, half_len), generator=g).expand(batch, half_len)
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), r, r], dim=1)


def repeated_tokens_unseeded(batch, half_len, vocab, seed=0):
    r = torch.randint(1, vocab, (batch, half_len))
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), r, r], dim=1)


def repeated_tokens_float(batch, half_len, vocab, seed=0):
    return repeated_tokens_ref(batch, half_len, vocab, seed).float()


def test_repeated_tokens(capsys):
    passes(check.repeated_tokens, repeated_tokens_ref, capsys=capsys)
    rejects(check.repeated_tokens, repeated_tokens_no_bos, match="forget the BOS")
    rejects(check.repeated_tokens, repeated_tokens_bos_last, match="first column")
    rejects(check.repeated_tokens, repeated_tokens_bos_in_body, match="BOS .* inside")
    rejects(check.repeated_tokens, repeated_tokens_misses_top, match="never appear")
    rejects(check.repeated_tokens, repeated_tokens_two_draws, match="second copy differs")
    rejects(check.repeated_tokens, repeated_tokens_same_row, match="every row holds the same")
    rejects(check.repeated_tokens, repeated_tokens_unseeded, match="seed")
    rejects(check.repeated_tokens, repeated_tokens_float, match="integers")


def test_chance_loss(capsys):
    passes(check.chance_loss, math.log(63), 64, capsys=capsys)
    passes(check.chance_loss, torch.tensor(math.log(63)), 64)
    rejects(check.chance_loss, math.log(64), 64, match="BOS is never a target")
    rejects(check.chance_loss, math.log2(63), 64, match="bits")
    rejects(check.chance_loss, 1 / 63, 64, match="probability")
    rejects(check.chance_loss, -math.log(63), 64, match="sign")


# ================================================================ chapter 2


def previous_token_score_ref(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=-1).mean(dim=0)


def previous_token_score_with_position_0(pattern):
    n = pattern.shape[-1]
    prev = torch.stack([pattern[..., i, i - 1] if i > 0 else torch.zeros_like(pattern[..., 0, 0])
                        for i in range(n)], dim=-1)
    return prev.mean(dim=-1).mean(dim=0)


def previous_token_score_transposed(pattern):
    return pattern.diagonal(offset=1, dim1=-2, dim2=-1).mean(dim=-1).mean(dim=0)


def previous_token_score_skips_bos_query(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1)[..., 1:].mean(dim=-1).mean(dim=0)


def previous_token_score_head_axis(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=-1).mean(dim=1)


def previous_token_score_first_batch(pattern):
    return pattern[0].diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=-1)


def test_previous_token_score(capsys):
    passes(check.previous_token_score, previous_token_score_ref, capsys=capsys)
    rejects(check.previous_token_score, previous_token_score_with_position_0, match="include position 0")
    rejects(check.previous_token_score, previous_token_score_transposed, match="not offset \\+1")
    rejects(check.previous_token_score, previous_token_score_skips_bos_query, match="IS the BOS token")
    rejects(check.previous_token_score, previous_token_score_head_axis, match="head axis instead of the batch")
    rejects(check.previous_token_score, previous_token_score_first_batch, match="only one batch element")


def test_find_previous_token_head(model, capsys):
    from induction_lib.scores import previous_token_scores

    scores = previous_token_scores(model)
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    passes(check.find_previous_token_head, (layer, head), model, capsys=capsys)
    passes(check.find_previous_token_head, torch.tensor([layer, head]), model)
    wrong = (layer, (head + 1) % model.cfg.n_heads)
    rejects(check.find_previous_token_head, wrong, model, match="another head scores")
    rejects(check.find_previous_token_head, layer * model.cfg.n_heads + head, model, match="pair")
    rejects(check.find_previous_token_head, (5, 0), model, match="not a head")


def test_positional_qk_reading(model, capsys):
    passes(check.positional_qk_reading, -1, capsys=capsys)
    rejects(check.positional_qk_reading, 1, match="sign is flipped")
    rejects(check.positional_qk_reading, 0, match="own position")
    # with a model: a head whose positional QK matrix is made to favour offset -1
    m = Transformer(ModelConfig(d_vocab=16, n_ctx=12, d_model=12, n_layers=1, n_heads=1, d_head=12))
    with torch.no_grad():
        m.W_pos.copy_(torch.eye(12) * 3)
        m.blocks[0].attn.W_Q[0].copy_(torch.eye(12))
        m.blocks[0].attn.W_K[0].copy_(torch.eye(12).roll(-1, dims=0))  # key j matches query j + 1
    passes(check.positional_qk_reading, -1, model=m, head=(0, 0))
    rejects(check.positional_qk_reading, 0, model=m, head=(0, 0), match="attends most to offset -1")


# ================================================================ chapter 3


def induction_score_ref(pattern, half_len):
    L = half_len
    diag = pattern.diagonal(offset=-(L - 1), dim1=-2, dim2=-1)  # entry m: query m + L - 1
    return diag[..., 2:2 + L].mean(dim=-1).mean(dim=0)         # queries L+1 … 2L


def induction_score_offset_L(pattern, half_len):
    L = half_len
    diag = pattern.diagonal(offset=-L, dim1=-2, dim2=-1)        # entry m: query m + L
    return diag[..., 1:1 + L].mean(dim=-1).mean(dim=0)


def induction_score_no_bos(pattern, half_len):
    L = half_len
    diag = pattern.diagonal(offset=-(L - 1), dim1=-2, dim2=-1)
    return diag[..., 1:1 + L].mean(dim=-1).mean(dim=0)          # queries L … 2L-1


def induction_score_whole_diagonal(pattern, half_len):
    return pattern.diagonal(offset=-(half_len - 1), dim1=-2, dim2=-1).mean(dim=-1).mean(dim=0)


def induction_score_transposed(pattern, half_len):
    return induction_score_ref(pattern.transpose(-1, -2), half_len)


def test_induction_score(capsys):
    passes(check.induction_score, induction_score_ref, capsys=capsys)
    rejects(check.induction_score, induction_score_offset_L, match="offset -L")
    rejects(check.induction_score, induction_score_no_bos, match="forget the BOS")
    rejects(check.induction_score, induction_score_whole_diagonal, match="whole diagonal")
    rejects(check.induction_score, induction_score_transposed, match="transposed")


def ov_eigen_stat_ref(M):
    lam = torch.linalg.eigvals(M)
    return (lam.sum() / lam.abs().sum()).real


def ov_eigen_stat_singular(M):
    s = torch.linalg.svdvals(M)
    return s.sum() / s.abs().sum()


def ov_eigen_stat_unnormalised(M):
    return torch.linalg.eigvals(M).sum().real


def ov_eigen_stat_diagonal(M):
    return M.diagonal().sum() / M.diagonal().abs().sum()


def ov_eigen_stat_eigvalsh(M):
    lam = torch.linalg.eigvalsh(M)
    return lam.sum() / lam.abs().sum()


def test_ov_eigen_stat(capsys):
    passes(check.ov_eigen_stat, ov_eigen_stat_ref, capsys=capsys)
    passes(check.ov_eigen_stat, lambda M: ov_eigen_stat_ref(M).item())
    rejects(check.ov_eigen_stat, ov_eigen_stat_singular, match="singular values")
    rejects(check.ov_eigen_stat, ov_eigen_stat_unnormalised, match="normalise")
    rejects(check.ov_eigen_stat, ov_eigen_stat_diagonal, match="complex eigenvalues")
    rejects(check.ov_eigen_stat, ov_eigen_stat_eigvalsh, match="complex eigenvalues")


def k_composition_ref(W_OV_A, W_QK_B):
    return (W_OV_A @ W_QK_B.T).norm() / (W_OV_A.norm() * W_QK_B.norm())


def k_composition_q_order(W_OV_A, W_QK_B):
    return (W_OV_A @ W_QK_B).norm() / (W_OV_A.norm() * W_QK_B.norm())


def k_composition_unnormalised(W_OV_A, W_QK_B):
    return (W_OV_A @ W_QK_B.T).norm()


def k_composition_spectral(W_OV_A, W_QK_B):
    n = lambda M: torch.linalg.matrix_norm(M, ord=2)  # noqa: E731
    return n(W_OV_A @ W_QK_B.T) / (n(W_OV_A) * n(W_QK_B))


def k_composition_b_first(W_OV_A, W_QK_B):
    return (W_QK_B.T @ W_OV_A).norm() / (W_OV_A.norm() * W_QK_B.norm())


def test_k_composition(capsys):
    passes(check.k_composition, k_composition_ref, capsys=capsys)
    rejects(check.k_composition, k_composition_q_order, match="Q-composition")
    rejects(check.k_composition, k_composition_unnormalised, match="normalise")
    rejects(check.k_composition, k_composition_spectral, match="Frobenius")
    rejects(check.k_composition, k_composition_b_first, match="another product")


# ================================================================ chapter 4


def zero_head_ref(result, head):
    mask = torch.ones(result.shape[2], 1, dtype=result.dtype)
    mask[head] = 0
    return result * mask


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


def test_zero_ablation_hook(model, capsys):
    passes(check.zero_ablation_hook, zero_head_ref, model, capsys=capsys)
    passes(check.zero_ablation_hook, lambda r: zero_head_ref(r, 1), model, head=1)
    rejects(check.zero_ablation_hook, zero_head_in_place, model, match="in place")
    rejects(check.zero_ablation_hook, zero_head_position_axis, model, match="zeroed position")
    rejects(check.zero_ablation_hook, zero_head_returns_none, model, match="returned None")
    rejects(check.zero_ablation_hook, zero_head_all_heads, model, match="zeroed too")


def test_zero_ablation_hook_on_an_induction_head(capsys):
    """On the shipped model the default target is the strongest layer-1 induction head, and the
    check requires that zeroing it raises the loss on the repeated half."""
    import induction_lib as il

    passes(check.zero_ablation_hook, zero_head_ref, il.load("induction-2l"), capsys=capsys)


def test_path_prediction(capsys):
    passes(check.path_prediction, "k", capsys=capsys)
    passes(check.path_prediction, "Keys")
    rejects(check.path_prediction, "q", match="query only needs")
    rejects(check.path_prediction, "v", match="values decide")
    rejects(check.path_prediction, "x", match="one of")


# ================================================================ chapter 5


def transition_ref(steps, losses):
    drops = losses[1:] - losses[:-1]
    i = int(drops.argmin())
    return (steps[i] + steps[i + 1]).item() / 2


def transition_index(steps, losses):
    return int((losses[1:] - losses[:-1]).argmin())


def transition_sign_error(steps, losses):
    i = int((losses[1:] - losses[:-1]).argmax())
    return steps[i].item()


def transition_lowest_loss(steps, losses):
    return steps[int(losses.argmin())].item()


def test_transition_window(capsys):
    passes(check.transition_window, transition_ref, capsys=capsys)
    passes(check.transition_window, lambda s, l: s[int((l[1:] - l[:-1]).argmin()) + 1])
    rejects(check.transition_window, transition_index, match="index")
    rejects(check.transition_window, transition_sign_error, match="RISES fastest")
    rejects(check.transition_window, transition_lowest_loss, match="lowest")


# ================================================================ chapter 6


def hopfield_ref(X, xi, beta):
    return X @ torch.softmax(beta * (X.T @ xi), dim=0)


def hopfield_no_beta(X, xi, beta):
    return X @ torch.softmax(X.T @ xi, dim=0)


def hopfield_inverse_beta(X, xi, beta):
    return X @ torch.softmax((X.T @ xi) / beta, dim=0)


def hopfield_wrong_axis(X, xi, beta):
    scores = beta * (X.T @ xi[:, None])           # [N, 1]
    return (X @ torch.softmax(scores, dim=-1))[:, 0]  # softmax over the size-1 axis


def hopfield_X_not_transposed(X, xi, beta):
    return X @ torch.softmax(beta * (X @ xi), dim=0)


def hopfield_weights_only(X, xi, beta):
    return torch.softmax(beta * (X.T @ xi), dim=0)


def test_hopfield_update(capsys):
    passes(check.hopfield_update, hopfield_ref, capsys=capsys)
    rejects(check.hopfield_update, hopfield_no_beta, match="multiply the dot products by β")
    rejects(check.hopfield_update, hopfield_inverse_beta, match="divided by β")
    rejects(check.hopfield_update, hopfield_wrong_axis, match="axis of size 1")
    rejects(check.hopfield_update, hopfield_X_not_transposed, match="you used X ξ")
    rejects(check.hopfield_update, hopfield_weights_only, match="softmax weights")


def classical_capacity(d, trials=3, seed=0):
    """Largest N for which every stored ±1 pattern is a fixed point of x <- sign(W x)."""
    g = torch.Generator().manual_seed(seed)
    best = 0
    for N in range(1, d):
        ok = True
        for _ in range(trials):
            X = torch.randint(0, 2, (d, N), generator=g).double() * 2 - 1
            W = X @ X.T / d
            W.fill_diagonal_(0)
            if not torch.equal(torch.sign(W @ X), X):
                ok = False
                break
        if not ok:
            break
        best = N
    return best


def test_capacity(capsys):
    d = 64
    n = classical_capacity(d)
    passes(check.capacity, n, d, capsys=capsys)
    passes(check.capacity, n, d, n_modern=500)
    rejects(check.capacity, d, d, match="about d itself")               # Hebbian W with the diagonal kept
    rejects(check.capacity, 1, d, match="too strict")
    rejects(check.capacity, n, d, n_modern=n, match="exponentially")


def test_split_prediction(capsys):
    passes(check.split_prediction, 0.5, 0.52, capsys=capsys)
    passes(check.split_prediction, torch.tensor([0.25, 0.75]), [0.26, 0.74])
    rejects(check.split_prediction, 0.5, 0.8, match="off by")
    rejects(check.split_prediction, [0.5, 0.5], [0.5, 0.5, 0.0], match="shape")


def toy_history(best_layer1=(0.0, 0.1, 0.3, 0.6, 0.8), steps=(0, 25, 50, 75, 100)):
    """A History-like record: the best layer-1 score per record (layer 0 scores high, to catch a
    check that reads the wrong layer)."""
    from types import SimpleNamespace
    induction = [torch.tensor([[0.9, 0.0], [b, b / 2]]) for b in best_layer1]
    return SimpleNamespace(steps=list(steps), induction=induction)


def test_first_induction_step(capsys):
    h = toy_history()
    passes(check.first_induction_step, 75, h, capsys=capsys)
    passes(check.first_induction_step, torch.tensor(75), h)
    rejects(check.first_induction_step, 50, h, match="still below 0.5: look later")
    rejects(check.first_induction_step, 100, h, match="already 0.60 at step 75")
    rejects(check.first_induction_step, 3, h, match="index of a record")
    rejects(check.first_induction_step, 80, h, match="not a recorded step")
    passes(check.first_induction_step, 100, h, level=0.7)
    rejects(check.first_induction_step, 75, toy_history(best_layer1=(0.0, 0.1, 0.2, 0.3, 0.4)),
            match="never reaches")


# ================================================================ stubs: "not implemented yet"

STUB_CALLS = {
    "repeated_tokens": lambda: check.repeated_tokens(stub),
    "chance_loss": lambda: check.chance_loss(None, 64),
    "previous_token_score": lambda: check.previous_token_score(stub),
    "find_previous_token_head": lambda m: check.find_previous_token_head(None, m),
    "positional_qk_reading": lambda: check.positional_qk_reading(...),
    "induction_score": lambda: check.induction_score(stub),
    "ov_eigen_stat": lambda: check.ov_eigen_stat(stub),
    "k_composition": lambda: check.k_composition(stub),
    "zero_ablation_hook": lambda m: check.zero_ablation_hook(stub, m),
    "path_prediction": lambda: check.path_prediction(None),
    "transition_window": lambda: check.transition_window(stub),
    "first_induction_step": lambda: check.first_induction_step(None, toy_history()),
    "hopfield_update": lambda: check.hopfield_update(stub),
    "capacity": lambda: check.capacity(None, 64),
    "split_prediction": lambda: check.split_prediction(..., 0.5),
}


def test_every_check_has_a_stub_test():
    assert set(STUB_CALLS) == set(check.CHECKS)


@pytest.mark.parametrize("name", sorted(STUB_CALLS))
def test_stub_says_not_implemented(name, model, capsys):
    fn = STUB_CALLS[name]
    with pytest.raises(NotImplementedError) as info:
        fn(model) if fn.__code__.co_argcount else fn()
    out = capsys.readouterr().out
    assert "not implemented yet" in out, out
    assert f"check.{name}" in out
    if "stub" in fn.__code__.co_names:
        assert "Exercise 9.9" in str(info.value), "the stub's own message (naming the exercise) must survive"


def test_wrong_answer_is_an_assertion_error():
    """nbval and nbgrader treat any exception as failure; pytest-style tools expect AssertionError."""
    assert issubclass(ExerciseError, AssertionError)


def test_other_errors_propagate_with_context(capsys):
    def broken(pattern):
        return pattern[0, 0, 0, 0, 0]

    with pytest.raises(IndexError):
        check.previous_token_score(broken)
    assert "raised IndexError" in capsys.readouterr().out

