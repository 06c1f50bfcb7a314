"""What training records, and the held-out layout it is measured on (used by `train` and by `scores`).

The held-out layout is BOS + EVAL_PREFIX random tokens + r + r with |r| = EVAL_HALF_LEN, all distinct (one
earlier occurrence each). The training distribution (`data.RepeatedSegments`) copies segments of 4..24 tokens
at random places: a 28-token block after a 7-token shift is never seen. `scores` re-exports all of this.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import repeated_tokens

EVAL_HALF_LEN = 28
EVAL_PREFIX = 7
EVAL_SEED = 12345


def _check_pattern(pattern: torch.Tensor) -> None:
    if pattern.dim() < 2 or pattern.shape[-1] != pattern.shape[-2]:
        raise ValueError(f"pattern must be [..., query, key] with query == key, got shape {tuple(pattern.shape)}")


def previous_token_score_from_pattern(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from position i to i - 1 over i >= 1 (Olsson et al. 2022).

    pattern: [batch, head, query, key] (or any [..., query, key]); returns the mean over the
    batch axis and positions: [head] for a [batch, head, q, k] pattern.
    """
    _check_pattern(pattern)
    scores = pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=-1)
    return scores.mean(dim=0) if pattern.dim() == 4 else scores


def diagonal_induction_score_from_pattern(pattern: torch.Tensor, half_len: int, start: int = 1) -> torch.Tensor:
    """Mean attention on the induction diagonal over the second copy of a repeated block.

    For tokens [... , r (at `start`), r (at `start + half_len`)], query i in the second copy has its
    earlier occurrence at i - half_len, and the token after it at i - half_len + 1: the diagonal at
    offset -(half_len - 1) (TransformerLens demos, ARENA). pattern: [batch, head, q, k] -> [head].
    """
    _check_pattern(pattern)
    n = pattern.shape[-1]
    if start + 2 * half_len > n:
        raise ValueError(f"start={start} + 2 * half_len={half_len} exceeds the sequence length {n}")
    diag = pattern.diagonal(offset=-(half_len - 1), dim1=-2, dim2=-1)  # entry j is query j + half_len - 1
    first = start + half_len - (half_len - 1)                          # query start + half_len
    scores = diag[..., first:first + half_len].mean(dim=-1)
    return scores.mean(dim=0) if pattern.dim() == 4 else scores


def _cfg(model_or_cfg):
    """The ModelConfig of a model, or the config itself (training builds its inputs before the model)."""
    return getattr(model_or_cfg, "cfg", model_or_cfg)


def eval_layout(model, half_len: int = EVAL_HALF_LEN, prefix_len: int = EVAL_PREFIX) -> tuple[int, int]:
    """(half_len, prefix_len) of the held-out layout, shrunk to fit the context of `model` (a model
    or its ModelConfig) if needed."""
    n_ctx = _cfg(model).n_ctx
    if 1 + prefix_len + 2 * half_len > n_ctx:
        half_len = min(half_len, (n_ctx - 1) // 2)
        prefix_len = max(0, min(prefix_len, n_ctx - 1 - 2 * half_len))
    return half_len, prefix_len


def eval_tokens(model, batch: int = 16, half_len: int = EVAL_HALF_LEN, prefix_len: int = EVAL_PREFIX,
                seed: int = EVAL_SEED) -> torch.Tensor:
    """The held-out layout BOS + prefix + r + r (see `eval_layout`), [batch, 1 + prefix + 2 * half]."""
    half_len, prefix_len = eval_layout(model, half_len, prefix_len)
    vocab = _cfg(model).d_vocab
    return repeated_tokens(batch, half_len, vocab, seed=seed, prefix_len=prefix_len,
                           distinct=prefix_len + half_len < vocab)


def per_position_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy at each position: [batch, pos - 1] (position p predicts token p + 1)."""
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")


def icl_score(losses: torch.Tensor, early: int, late: int) -> float:
    """In-context-learning score: loss at a late position minus loss at an early one (Olsson et al. 2022,
    token 500 minus token 50 of 512; here the positions are arguments, scaled to our context).
    losses: [batch, pos] per-position loss. Negative = later tokens are predicted better."""
    if not (0 <= early < late < losses.shape[-1]):
        raise ValueError(f"need 0 <= early < late < {losses.shape[-1]}, got early={early}, late={late}")
    return (losses[:, late] - losses[:, early]).mean().item()


def eval_regions(model, half_len: int = EVAL_HALF_LEN, prefix_len: int = EVAL_PREFIX) -> dict[str, slice]:
    """Where the two copies of the held-out layout are, in the indices of `per_position_loss`:
    "first half" predicts tokens 2..L of the first copy, "repeated half" tokens 2..L of the second (the
    ones induction can predict). The first token of each copy is unpredictable and left out."""
    half_len, prefix_len = eval_layout(model, half_len, prefix_len)
    s = 1 + prefix_len
    return {"first half": slice(s, s + half_len - 1), "repeated half": slice(s + half_len, s + 2 * half_len - 1)}
