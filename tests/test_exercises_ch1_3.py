"""The exercise checks of chapters 1-3 (induction_lib.exercises.check).

For every check: the reference solution passes, unconventional right answers pass (numpy, float32,
loops, einsum, tensors where a tuple is expected, ...), and at least five realistic wrong answers of
different kinds are rejected with an ExerciseError whose message names the mistake. The stub test
("not implemented yet") for every check is in tests/test_exercises.py (STUB_CALLS).

The reference solutions live here (and in the chapter notebooks), never in the check modules.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import induction_lib as il
from induction_lib import circuits, heads, metrics, scores
from induction_lib.exercises import ExerciseError, check
from _fixtures import passes, rejects, book_model  # noqa: F401


# ================================================================ 1.1 repeated_tokens


def _bos(batch):
    return torch.zeros(batch, 1, dtype=torch.long)


def repeated_tokens_ref(batch, half_len, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(1, vocab, (batch, half_len), generator=g)
    return torch.cat([_bos(batch), r, r], dim=1)


def repeated_tokens_numpy(batch, half_len, vocab, seed=0):
    """Right: numpy's generator, a numpy int64 array."""
    r = np.random.default_rng(seed).integers(1, vocab, size=(batch, half_len))
    return np.concatenate([np.zeros((batch, 1), dtype=np.int64), r, r], axis=1)


def repeated_tokens_global_seed(batch, half_len, vocab, seed=0):
    """Right: the global generator, seeded, and int32 ids built with repeat."""
    torch.manual_seed(seed)
    r = torch.randint(1, vocab, (batch, half_len), dtype=torch.int32)
    return torch.cat([torch.zeros(batch, 1, dtype=torch.int32), r.repeat(1, 2)], dim=1)


def _sampler(draw):
    def fn(batch, half_len, vocab, seed=0):
        g = torch.Generator().manual_seed(seed)
        r = draw(batch, half_len, vocab, g)
        return torch.cat([_bos(batch), r, r], dim=1)
    return fn


repeated_tokens_no_bos = lambda b, L, v, seed=0: repeated_tokens_ref(b, L, v, seed)[:, 1:]
repeated_tokens_bos_last = lambda b, L, v, seed=0: repeated_tokens_ref(b, L, v, seed).roll(-1, 1)
repeated_tokens_bos_in_body = _sampler(lambda b, L, v, g: torch.randint(0, v, (b, L), generator=g))
repeated_tokens_misses_top = _sampler(lambda b, L, v, g: torch.randint(1, v - 1, (b, L), generator=g))
repeated_tokens_vocab_64 = _sampler(lambda b, L, v, g: torch.randint(1, 64, (b, L), generator=g))
repeated_tokens_clamped = _sampler(lambda b, L, v, g: torch.randint(0, v, (b, L), generator=g).clamp(min=1))
repeated_tokens_wrapped = _sampler(lambda b, L, v, g: torch.randint(0, v, (b, L), generator=g) % (v - 1) + 1)
repeated_tokens_rounded = _sampler(
    lambda b, L, v, g: (torch.rand(b, L, generator=g) * (v - 2)).round().long() + 1)
repeated_tokens_permutation = _sampler(
    lambda b, L, v, g: torch.stack([torch.randperm(v - 1, generator=g)[torch.arange(L) % (v - 1)] + 1
                                    for _ in range(b)]))


def repeated_tokens_two_draws(batch, half_len, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    r1 = torch.randint(1, vocab, (batch, half_len), generator=g)
    r2 = torch.randint(1, vocab, (batch, half_len), generator=g)
    return torch.cat([_bos(batch), r1, r2], dim=1)


repeated_tokens_same_row = _sampler(lambda b, L, v, g: torch.randint(1, v, (1, L), generator=g).expand(b, L))


def repeated_tokens_unseeded(batch, half_len, vocab, seed=0):
    r = torch.randint(1, vocab, (batch, half_len))
    return torch.cat([_bos(batch), r, r], dim=1)


def test_repeated_tokens(capsys):
    passes(check.repeated_tokens, repeated_tokens_ref, capsys=capsys)
    passes(check.repeated_tokens, repeated_tokens_numpy, capsys=capsys)
    passes(check.repeated_tokens, repeated_tokens_global_seed, capsys=capsys)
    rejects(check.repeated_tokens, repeated_tokens_no_bos, match="forget the BOS")
    rejects(check.repeated_tokens, repeated_tokens_bos_last, match="first column")
    rejects(check.repeated_tokens, repeated_tokens_bos_in_body, match="BOS .* inside")
    rejects(check.repeated_tokens, repeated_tokens_misses_top, match="never appear")
    rejects(check.repeated_tokens, repeated_tokens_vocab_64, match="use the `vocab` argument|ids must lie")
    rejects(check.repeated_tokens, repeated_tokens_clamped, match="not uniform.*token 1 appears")
    rejects(check.repeated_tokens, repeated_tokens_wrapped, match="not uniform.*token 1 appears")
    rejects(check.repeated_tokens, repeated_tokens_rounded, match="not uniform")
    rejects(check.repeated_tokens, repeated_tokens_permutation, match="not a permutation")
    rejects(check.repeated_tokens, repeated_tokens_two_draws, match="second copy differs")
    rejects(check.repeated_tokens, repeated_tokens_same_row, match="every row holds the same")
    rejects(check.repeated_tokens, repeated_tokens_unseeded, match="seed")
    rejects(check.repeated_tokens, lambda *a: repeated_tokens_ref(*a).float(), match="integers")


def test_uniformity_test_does_not_flake():
    """The uniformity thresholds leave a right sampler far inside them, whatever its seed."""
    from induction_lib.exercises import ch1_setting as c1

    worst_z, worst_chi2 = 0.0, 0.0
    for seed in range(30):
        g = torch.Generator().manual_seed(1000 + seed)
        body = torch.randint(1, 50, (400, 40), generator=g)
        counts = torch.bincount(body.flatten(), minlength=50)[1:].double()
        e = counts.sum() / 49
        worst_z = max(worst_z, ((counts - e).abs() / math.sqrt(16000 / 49 * 48 / 49)).max().item())
        worst_chi2 = max(worst_chi2, ((counts - e) ** 2 / e).sum().item())
    assert worst_z < c1._Z_MAX - 1.5 and worst_chi2 < c1._CHI2_MAX - 20, (worst_z, worst_chi2)


# ================================================================ 1.2 chance_loss


def test_chance_loss(capsys):
    passes(check.chance_loss, math.log(63), 64, capsys=capsys)
    passes(check.chance_loss, np.float32(math.log(63)), 64)
    passes(check.chance_loss, torch.tensor(math.log(63), dtype=torch.float32), 64)
    passes(check.chance_loss, np.log(np.array(63.0)), 64)
    rejects(check.chance_loss, math.log(64), 64, match="BOS is never a target")
    rejects(check.chance_loss, math.log2(63), 64, match="bits")
    rejects(check.chance_loss, 1 / 63, 64, match="probability")
    rejects(check.chance_loss, -math.log(63), 64, match="sign")
    rejects(check.chance_loss, math.log10(63), 64, match="base 10")
    rejects(check.chance_loss, 63, 64, match="expected ln\\(vocab - 1\\)")
    rejects(check.chance_loss, [math.log(63)] * 2, 64, match="single number")


# ================================================================ 1.3 predict_next


@pytest.fixture(scope="module")
def held_out(book_model):
    tokens = scores.eval_tokens(book_model)
    return tokens, tokens[0].tolist()


def test_predict_next(book_model, held_out, capsys):
    tokens, row = held_out
    right = [row[51 - 28], row[41 - 28]]
    passes(check.predict_next, right, book_model, tokens, capsys=capsys)
    passes(check.predict_next, torch.tensor(right), book_model, tokens)
    passes(check.predict_next, tuple(np.array(right)), book_model, tokens)     # numpy int64 entries
    passes(check.predict_next, [row[51], row[41]], book_model, tokens)       # read off the second copy
    rejects(check.predict_next, right[::-1], book_model, tokens, match="swapped order")
    rejects(check.predict_next, [row[50], row[40]], book_model, tokens, match="current token")
    rejects(check.predict_next, [row[50 - 28], row[40 - 28]], book_model, tokens, match="current token")
    rejects(check.predict_next, [row[52], row[42]], book_model, tokens, match="two places ahead")
    rejects(check.predict_next, [row[49], row[39]], book_model, tokens, match="token before")
    rejects(check.predict_next, [right[0], 0], book_model, tokens, match="position 40 .* not a token")
    rejects(check.predict_next, right[0], book_model, tokens, match="list of 2")


def test_predict_next_leaves_the_model_alone(book_model, held_out):
    """The check runs the model under `intact`: it never changes it."""
    before = {k: v.clone() for k, v in book_model.state_dict().items()}
    check.predict_next([held_out[1][23], held_out[1][13]], book_model, held_out[0])
    assert all(torch.equal(v, before[k]) for k, v in book_model.state_dict().items())


# ================================================================ 1.4 repeated_half_loss


def repeated_half_loss_ref(logits, tokens, half_len, prefix_len=0):
    logp = logits.log_softmax(-1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]   # [batch, n - 1]
    s = 1 + prefix_len + half_len
    return -logp[:, s:s + half_len - 1].mean().item()


def repeated_half_loss_loop(logits, tokens, half_len, prefix_len=0):
    """Right: a loop over target positions with cross_entropy, numpy float out."""
    s = 1 + prefix_len + half_len
    losses = [F.cross_entropy(logits[:, t - 1].double(), tokens[:, t], reduction="none")
              for t in range(s + 1, s + half_len)]
    return np.float64(torch.stack(losses).mean().item())


def repeated_half_loss_library(logits, tokens, half_len, prefix_len=0):
    """Right (accepted): the library's per-position loss, the region by hand, float32 tensor out."""
    s = 1 + prefix_len + half_len
    return scores.per_position_loss(logits.float(), tokens)[:, s:s + half_len - 1].mean()


def _region_loss(start_shift=0, stop_shift=0, shift=True, log=torch.log, agg="mean"):
    def fn(logits, tokens, half_len, prefix_len=0):
        probs = logits.double().softmax(-1)
        if shift:
            p = probs[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
        else:
            p = probs.gather(-1, tokens[..., None])[..., 0][:, 1:]
        s = 1 + prefix_len + half_len
        region = p[:, s + start_shift:s + half_len - 1 + stop_shift]
        return region.mean().item() if agg == "prob" else (-log(region)).mean().item()
    return fn


def repeated_half_loss_per_batch(logits, tokens, half_len, prefix_len=0):
    logp = logits.log_softmax(-1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
    s = 1 + prefix_len + half_len
    return -logp[:, s:s + half_len - 1].mean(dim=1)


def repeated_half_loss_no_prefix(logits, tokens, half_len, prefix_len=0):
    return repeated_half_loss_ref(logits, tokens, half_len, 0)


def repeated_half_loss_first_copy(logits, tokens, half_len, prefix_len=0):
    return _region_loss(start_shift=-half_len, stop_shift=-half_len)(logits, tokens, half_len, prefix_len)


def repeated_half_loss_eval_regions(logits, tokens, half_len, prefix_len=0):
    m = il.load("induction-2l", progress=False)
    rep = scores.eval_regions(m, half_len, prefix_len)["repeated half"]
    return scores.per_position_loss(logits, tokens)[:, rep].mean().item()


def test_repeated_half_loss(capsys):
    passes(check.repeated_half_loss, repeated_half_loss_ref, capsys=capsys)
    passes(check.repeated_half_loss, repeated_half_loss_loop)
    passes(check.repeated_half_loss, repeated_half_loss_library)
    rejects(check.repeated_half_loss, _region_loss(shift=False), match="token AT p")
    rejects(check.repeated_half_loss, _region_loss(start_shift=-1), match="second copy's first token")
    rejects(check.repeated_half_loss, _region_loss(start_shift=-1, stop_shift=-1), match="one position early")
    rejects(check.repeated_half_loss, repeated_half_loss_no_prefix, match="forgot the prefix")
    rejects(check.repeated_half_loss, repeated_half_loss_first_copy, match="first copy")
    rejects(check.repeated_half_loss, _region_loss(log=torch.log2), match="bits")
    rejects(check.repeated_half_loss, _region_loss(agg="prob"), match="mean probability")
    rejects(check.repeated_half_loss, repeated_half_loss_per_batch, match="kept the batch axis")
    rejects(check.repeated_half_loss, repeated_half_loss_eval_regions, match="eval_regions")


# ================================================================ 2.1 previous_token_score


def previous_token_score_ref(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=-1).mean(dim=0)


def previous_token_score_loop(pattern):
    """Right: explicit loops, a list of Python floats."""
    b, h, n, _ = pattern.shape
    return [sum(pattern[i, k, q, q - 1].item() for i in range(b) for q in range(1, n)) / (b * (n - 1))
            for k in range(h)]


def previous_token_score_einsum(pattern):
    """Right: a mask and einsum, in float32 numpy."""
    n = pattern.shape[-1]
    mask = torch.eye(n, dtype=pattern.dtype).roll(-1, dims=1).tril()   # ones at (i, i - 1)
    return (torch.einsum("bhqk,qk->h", pattern, mask) / (pattern.shape[0] * (n - 1))).float().numpy()


def previous_token_score_with_position_0(pattern):
    n = pattern.shape[-1]
    prev = torch.stack([pattern[..., i, i - 1] if i > 0 else torch.zeros_like(pattern[..., 0, 0])
                        for i in range(n)], dim=-1)
    return prev.mean(dim=-1).mean(dim=0)


def test_previous_token_score(capsys):
    passes(check.previous_token_score, previous_token_score_ref, capsys=capsys)
    passes(check.previous_token_score, previous_token_score_loop)
    passes(check.previous_token_score, previous_token_score_einsum)
    rejects(check.previous_token_score, previous_token_score_with_position_0, match="include position 0")
    rejects(check.previous_token_score, lambda p: p.diagonal(1, -2, -1).mean(-1).mean(0),
            match="not offset \\+1")
    rejects(check.previous_token_score, lambda p: p.diagonal(-1, -2, -1)[..., 1:].mean(-1).mean(0),
            match="IS the BOS token")
    rejects(check.previous_token_score, lambda p: p.diagonal(-1, -2, -1).mean(-1).mean(1),
            match="head axis instead of the batch")
    rejects(check.previous_token_score, lambda p: p[0].diagonal(-1, -2, -1).mean(-1),
            match="only one batch element")
    rejects(check.previous_token_score, lambda p: p[..., :, 0].mean(-1).mean(0),
            match="attention to position 0")
    rejects(check.previous_token_score, scores.previous_token_score_from_pattern, match="library's")
    rejects(check.previous_token_score, lambda p: metrics.previous_token_score_from_pattern(p),
            match="library's")


# ================================================================ 2.2 find_previous_token_head


def find_prev_ref(model):
    s = scores.previous_token_scores(model)
    return divmod(int(s.argmax()), s.shape[1])


def find_prev_unravel(model):
    """Right: torch.unravel_index, a tuple of 0-d tensors."""
    s = scores.previous_token_scores(model)
    return torch.unravel_index(s.argmax(), s.shape)


def find_prev_numpy(model):
    """Right: numpy, a list of numpy int64, scores from the student's own function on the patterns."""
    tokens = scores.eval_tokens(model)
    _, cache = model.run_with_cache(tokens)
    table = np.array([previous_token_score_ref(cache.pattern(layer)).numpy()
                      for layer in range(model.cfg.n_layers)])
    return list(np.unravel_index(table.argmax(), table.shape))


def find_prev_tensor(model):
    """Right: a tensor [2]."""
    s = scores.previous_token_scores(model)
    return torch.tensor(find_prev_ref(model)) if s.numel() else None


def find_prev_swapped(model):
    return find_prev_ref(model)[::-1]


def find_prev_by_layers(model):
    s = scores.previous_token_scores(model)
    return divmod(int(s.argmax()), s.shape[0])


def find_prev_flat(model):
    return int(scores.previous_token_scores(model).argmax())


def find_prev_zero_flat(model):
    return (0, int(scores.previous_token_scores(model).argmax()))


def find_prev_breaks_model(model):
    with torch.no_grad():
        model.blocks[0].attn.W_O.zero_()          # "to see what layer 0 does without its output"
    return find_prev_ref(model)


def test_find_previous_token_head(book_model, capsys):
    passes(check.find_previous_token_head, find_prev_ref, book_model, capsys=capsys)
    passes(check.find_previous_token_head, find_prev_unravel, book_model)
    passes(check.find_previous_token_head, find_prev_numpy, book_model)
    passes(check.find_previous_token_head, find_prev_tensor)
    rejects(check.find_previous_token_head, find_prev_swapped, book_model, match="layer and head swapped")
    rejects(check.find_previous_token_head, lambda m: heads.induction_head(m), book_model,
            match="the induction head")
    rejects(check.find_previous_token_head, find_prev_flat, book_model, match="single number .* divmod")
    rejects(check.find_previous_token_head, find_prev_by_layers, book_model,
            match="divided by the number of layers")
    rejects(check.find_previous_token_head, find_prev_zero_flat, book_model, match="\\(0, 5\\).* divmod")
    rejects(check.find_previous_token_head, lambda m: (0, 0), book_model, match="but head 0.1 scores")
    rejects(check.find_previous_token_head, heads.previous_token_head, book_model, match="search every layer")
    rejects(check.find_previous_token_head, lambda m: None, book_model, match="returned None")
    rejects(check.find_previous_token_head, (0, 0), book_model, match="write a function")


def test_find_previous_token_head_restores_the_model(book_model, capsys):
    before = {k: v.clone() for k, v in book_model.state_dict().items()}
    rejects(check.find_previous_token_head, find_prev_breaks_model, book_model, match="restored the model")
    assert all(torch.equal(v, before[k]) for k, v in book_model.state_dict().items())


def test_prev_token_models_have_the_intended_heads():
    """The models the check builds: the intended head is the previous-token head by its score."""
    from induction_lib.exercises.ch2_previous_token import _prev_token_models

    for what, m, intended in _prev_token_models(None):
        s = scores.previous_token_scores(m)
        assert find_prev_ref(m) == intended, (what, s)
        assert s[intended] > 0.95 and s.flatten().topk(2).values[1] < 0.1, (what, s)
        assert intended[0] != intended[1], what


# ================================================================ 2.3 positional_qk_reading


def _positional_model():
    """A head whose positional QK matrix favours offset -1 (and the same with -2)."""
    m = il.Transformer(il.ModelConfig(d_vocab=16, n_ctx=12, d_model=12, n_layers=1, n_heads=1, d_head=12))
    with torch.no_grad():
        m.W_pos.copy_(torch.eye(12) * 3)
        m.blocks[0].attn.W_Q[0].copy_(torch.eye(12))
        m.blocks[0].attn.W_K[0].copy_(torch.eye(12).roll(-1, dims=0))  # key j matches query j + 1
    return m


def test_positional_qk_reading(capsys):
    passes(check.positional_qk_reading, -1, capsys=capsys)
    passes(check.positional_qk_reading, np.int64(-1))
    passes(check.positional_qk_reading, torch.tensor(-1))
    passes(check.positional_qk_reading, np.array(-1))
    passes(check.positional_qk_reading, -1.0)
    rejects(check.positional_qk_reading, 1, match="sign is flipped")
    rejects(check.positional_qk_reading, 0, match="own position")
    rejects(check.positional_qk_reading, -2, match="attends most to offset -1")
    rejects(check.positional_qk_reading, [-1, -1, -1], match="not one per row")
    rejects(check.positional_qk_reading, torch.full((11,), -1), match="not one per row")
    rejects(check.positional_qk_reading, -0.5, match="as an integer")
    rejects(check.positional_qk_reading, True, match="boolean")
    rejects(check.positional_qk_reading, "-1", match="integer")
    m = _positional_model()
    passes(check.positional_qk_reading, np.int32(-1), model=m, head=(0, 0))
    passes(check.positional_qk_reading, -1, model=m, head=torch.tensor([0, 0]))
    rejects(check.positional_qk_reading, 0, model=m, head=(0, 0), match="attends most to offset -1")


# ================================================================ 3.1 induction_score


def induction_score_ref(pattern, half_len):
    L = half_len
    diag = pattern.diagonal(offset=-(L - 1), dim1=-2, dim2=-1)  # entry m: query m + L - 1
    return diag[..., 2:2 + L].mean(dim=-1).mean(dim=0)         # queries L+1 … 2L


def induction_score_loop(pattern, half_len):
    """Right: loops over the queries of the second copy, in float32."""
    L, p = half_len, pattern.float()
    return torch.stack([p[:, :, i, i - L + 1] for i in range(L + 1, 2 * L + 1)], -1).mean((0, -1))


def induction_score_gather(pattern, half_len):
    """Right: gather the key index of every query, numpy out."""
    L = half_len
    q = torch.arange(L + 1, 2 * L + 1)
    rows = pattern[:, :, q]                                              # [b, h, L, k]
    keys = (q - L + 1).expand(*rows.shape[:2], L)[..., None]
    return rows.gather(-1, keys)[..., 0].mean((0, -1)).numpy()


def induction_score_offset_L(pattern, half_len):
    L = half_len
    return pattern.diagonal(offset=-L, dim1=-2, dim2=-1)[..., 1:1 + L].mean(dim=-1).mean(dim=0)


def test_induction_score(capsys):
    passes(check.induction_score, induction_score_ref, capsys=capsys)
    passes(check.induction_score, induction_score_loop)
    passes(check.induction_score, induction_score_gather)
    rejects(check.induction_score, induction_score_offset_L, match="offset -L")
    rejects(check.induction_score, lambda p, L: p.diagonal(-(L - 1), -2, -1)[..., 1:1 + L].mean(-1).mean(0),
            match="forget the BOS")
    rejects(check.induction_score, lambda p, L: p.diagonal(-(L - 1), -2, -1).mean(-1).mean(0),
            match="whole diagonal")
    rejects(check.induction_score, lambda p, L: induction_score_ref(p.transpose(-1, -2), L),
            match="transposed")
    rejects(check.induction_score, lambda p, L: p.diagonal(-1, -2, -1)[..., L:2 * L].mean(-1).mean(0),
            match="previous-token head|expected 1.0")
    rejects(check.induction_score, lambda p, L: induction_score_ref(p, L).mean(), match="one score per head")
    rejects(check.induction_score, lambda p, L: metrics.diagonal_induction_score_from_pattern(p, L),
            match="library's")


# ================================================================ 3.2 ov_eigen_stat


def ov_eigen_stat_ref(M):
    lam = torch.linalg.eigvals(M)
    return (lam.sum() / lam.abs().sum()).real


def ov_eigen_stat_float32(M):
    """Right: float32 throughout (the old check refused it)."""
    lam = torch.linalg.eigvals(M.float())
    return (lam.real.sum() / lam.abs().sum()).item()


def ov_eigen_stat_numpy(M):
    """Right: numpy."""
    lam = np.linalg.eigvals(np.asarray(M))
    return float(np.real(lam.sum()) / np.abs(lam).sum())


def test_ov_eigen_stat(capsys):
    passes(check.ov_eigen_stat, ov_eigen_stat_ref, capsys=capsys)
    passes(check.ov_eigen_stat, ov_eigen_stat_float32)
    passes(check.ov_eigen_stat, ov_eigen_stat_numpy)
    rejects(check.ov_eigen_stat, lambda M: torch.linalg.svdvals(M).sum() / torch.linalg.svdvals(M).sum(),
            match="singular values")
    rejects(check.ov_eigen_stat, lambda M: torch.linalg.eigvals(M).sum().real, match="normalise")
    rejects(check.ov_eigen_stat, lambda M: M.diagonal().sum() / M.diagonal().abs().sum(),
            match="complex eigenvalues")
    rejects(check.ov_eigen_stat, lambda M: (torch.linalg.eigvalsh(M).sum()
                                            / torch.linalg.eigvalsh(M).abs().sum()), match="complex eigenvalues")
    rejects(check.ov_eigen_stat, lambda M: (torch.linalg.eigvals(M).abs().sum() /
                                            torch.linalg.eigvals(M).abs().sum()), match="-1")
    rejects(check.ov_eigen_stat, lambda M: circuits.eigenvalue_stat(
        circuits.FactoredMatrix(M, torch.eye(len(M), dtype=M.dtype))), match="library's")


# ================================================================ 3.3 k_circuit


def k_circuit_ref(model, src, dst):
    W_E = model.W_E.detach()
    W_QK = model.W_Q[dst] @ model.W_K[dst].T
    W_OV = model.W_V[src] @ model.W_O[src]
    return (W_E @ W_QK @ (W_E @ W_OV).T).detach()


def k_circuit_factored(model, src, dst):
    """Right: the library's factored QK and OV matrices, multiplied out."""
    W_E = model.W_E.detach()
    return (W_E @ circuits.qk_matrix(model, *dst) @ (W_E @ circuits.ov_matrix(model, *src)).T).AB


def k_circuit_numpy(model, src, dst):
    """Right: per-block weights and einsum, numpy float64."""
    (l0, h0), (l1, h1) = src, dst
    a0, a1 = model.blocks[l0].attn, model.blocks[l1].attn
    W_E = model.W_E.detach().double().numpy()
    q = np.einsum("vm,md->vd", W_E, a1.W_Q[h1].detach().double().numpy())
    k = W_E @ a0.W_V[h0].detach().double().numpy() @ a0.W_O[h0].detach().double().numpy() \
        @ a1.W_K[h1].detach().double().numpy()
    return np.einsum("ad,bd->ab", q, k)


def _k(fn):
    return lambda model, src, dst: fn(model.W_E.detach(), model.W_Q[dst] @ model.W_K[dst].T,
                                      model.W_V[src] @ model.W_O[src], model)


def test_k_circuit(capsys):
    passes(check.k_circuit, k_circuit_ref, capsys=capsys)
    passes(check.k_circuit, k_circuit_factored)
    passes(check.k_circuit, k_circuit_numpy)
    rejects(check.k_circuit, lambda m, s, d: k_circuit_ref(m, s, d).T, match="transpose")
    rejects(check.k_circuit, lambda m, s, d: (m.W_E @ m.W_K[d] @ m.W_Q[d].T
                                              @ (m.W_E @ m.W_V[s] @ m.W_O[s]).T), match="W_K W_Qᵀ")
    rejects(check.k_circuit, _k(lambda E, QK, OV, m: E @ OV @ QK @ E.T), match="Q-composition")
    rejects(check.k_circuit, lambda m, s, d: k_circuit_ref(m, s, d) / math.sqrt(m.cfg.d_head),
            match="√d_head")
    rejects(check.k_circuit, _k(lambda E, QK, OV, m: E @ QK @ OV @ m.W_U), match="unembedding")
    rejects(check.k_circuit, lambda m, s, d: k_circuit_ref(m, s[::-1], d[::-1]), match="\\[head, layer\\]")
    rejects(check.k_circuit, lambda m, s, d: k_circuit_ref(m, d, s), match="swapped src and dst")
    rejects(check.k_circuit, _k(lambda E, QK, OV, m: E @ QK @ OV.T), match="key side needs W_E")
    rejects(check.k_circuit, circuits.k_composition_circuit, match="library's")
    rejects(check.k_circuit, lambda m, s, d: il.circuits.k_composition_circuit(m, s, d), match="library's")
    alias = circuits.k_composition_circuit
    rejects(check.k_circuit, lambda m, s, d: alias(m, s, d), match="library's")      # an alias, in a closure
    rejects(check.k_circuit, lambda m, s, d: getattr(circuits, "k_composition_" + "circuit")(m, s, d),
            match="called circuits.k_composition_circuit")                       # hidden from a static look
    rejects(check.k_circuit, lambda m, s, d: circuits.qk_matrix(m, *d) @ circuits.ov_matrix(m, *s).T,
            match="FactoredMatrix")


def test_k_circuit_on_the_book_model(book_model):
    """The instrument of the chapter: on the book's model the diagonal stands out, and the reference
    matches the library's helper."""
    prev, ind = heads.previous_token_head(book_model), heads.induction_head(book_model)
    mine = k_circuit_ref(book_model, prev, ind)
    assert torch.allclose(mine, circuits.k_composition_circuit(book_model, prev, ind), rtol=1e-4, atol=1e-3)
    assert circuits.copying_accuracy(mine) > 0.9


# ================================================================ 3.4 k_composition


def k_composition_ref(W_OV_A, W_QK_B):
    return (W_OV_A @ W_QK_B.T).norm() / (W_OV_A.norm() * W_QK_B.norm())


def k_composition_trace(W_OV_A, W_QK_B):
    """Right: ‖XY‖_F² = tr(XᵀX YYᵀ), in float32 numpy."""
    A, B = np.asarray(W_OV_A, dtype=np.float32), np.asarray(W_QK_B, dtype=np.float32)
    num = np.sqrt(np.trace(A.T @ A @ B.T @ B))
    return num / (np.linalg.norm(A) * np.linalg.norm(B))


def test_k_composition(capsys):
    passes(check.k_composition, k_composition_ref, capsys=capsys)
    passes(check.k_composition, k_composition_trace)
    passes(check.k_composition, lambda A, B: k_composition_ref(A.float(), B.float()).item())
    rejects(check.k_composition, lambda A, B: (A @ B).norm() / (A.norm() * B.norm()), match="Q-composition")
    rejects(check.k_composition, lambda A, B: (A @ B.T).norm(), match="normalise")
    n2 = lambda M: torch.linalg.matrix_norm(M, ord=2)
    rejects(check.k_composition, lambda A, B: n2(A @ B.T) / (n2(A) * n2(B)), match="Frobenius")
    rejects(check.k_composition, lambda A, B: (B.T @ A).norm() / (A.norm() * B.norm()),
            match="another product")
    rejects(check.k_composition, lambda A, B: (A @ B.T).norm() / A.norm(), match="divide by both norms")
    rejects(check.k_composition, lambda A, B: circuits.composition_score(
        circuits.FactoredMatrix(A, torch.eye(len(A), dtype=A.dtype)),
        circuits.FactoredMatrix(B, torch.eye(len(B), dtype=B.dtype)), "K"), match="library's")
