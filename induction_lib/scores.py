"""Head scores: how much each head behaves like a previous-token head, an induction head, a copier.

Every model-level score returns a [n_layers, n_heads] tensor. They are measured on fresh random
draws (their own seeds), and the default repeat lengths are ones the training distribution never
uses, so a score says what a head does on inputs it never trained on.

Three induction scores, side by side (each is 1 for a perfect induction head):
- prefix matching (Olsson et al. 2022): BOS + a random block repeated 4 times; the attention each token
  of copies 2-4 pays to the tokens right after its earlier occurrences. Sees several earlier copies.
- diagonal (TransformerLens demos, ARENA): BOS + r + r; the mean of the pattern's diagonal that points at
  the token after the single earlier copy. Needs the fixed layout; cheap and easy to read off a plot.
- pattern overlap (TransformerLens head_detector): the share of all attention mass (BOS excluded) that
  lands on the induction positions, computed from the tokens alone, so it works on any input.
"""
from __future__ import annotations

import torch

from . import circuits
from .data import BOS, random_tokens, repeated_blocks, repeated_tokens
# The held-out layout and the measurements training records live one layer down (training uses them);
# they are part of this module's interface too.
from .metrics import (EVAL_HALF_LEN, EVAL_PREFIX, EVAL_SEED, _cfg, _check_pattern,  # noqa: F401
                      diagonal_induction_score_from_pattern, eval_layout, eval_regions, eval_tokens,
                      icl_score, per_position_loss, previous_token_score_from_pattern)


@torch.no_grad()
def _patterns(model, tokens: torch.Tensor) -> torch.Tensor:
    """All attention patterns, [n_layers, batch, head, q, k]."""
    _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    return torch.stack([cache.pattern(layer) for layer in range(model.cfg.n_layers)])


def previous_token_scores(model, tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Previous-token score of every head, [n_layers, n_heads], on held-out random tokens."""
    tokens = eval_tokens(model) if tokens is None else tokens
    return torch.stack([previous_token_score_from_pattern(p) for p in _patterns(model, tokens)])


def attention_back_scores(model, back: int = 1, tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Mean attention from position i to i - back, over i >= back and the batch, of every head:
    [n_layers, n_heads], on held-out random tokens (`eval_tokens`). back=1 is the previous-token
    score; back=2 finds a head that looks two tokens back."""
    if not (isinstance(back, int) and back >= 1):
        raise ValueError(f"back must be an integer >= 1, got {back!r}")
    tokens = eval_tokens(model) if tokens is None else tokens
    if back >= tokens.shape[1]:
        raise ValueError(f"back={back} must be below the sequence length {tokens.shape[1]}")
    return torch.stack([p.diagonal(offset=-back, dim1=-2, dim2=-1).mean(dim=(0, -1))
                        for p in _patterns(model, tokens)])


def diagonal_induction_scores(model, half_len: int = EVAL_HALF_LEN, prefix_len: int = EVAL_PREFIX,
                              batch: int = 16, seed: int = EVAL_SEED) -> torch.Tensor:
    """Diagonal induction score of every head, [n_layers, n_heads], on BOS + prefix + r + r."""
    half_len, prefix_len = eval_layout(model, half_len, prefix_len)
    tokens = eval_tokens(model, batch, half_len, prefix_len, seed)
    return torch.stack([diagonal_induction_score_from_pattern(p, half_len, 1 + prefix_len)
                        for p in _patterns(model, tokens)])


# ---------------------------------------------------------------- token masks and pattern scores


def duplicate_mask(tokens: torch.Tensor) -> torch.Tensor:
    """D[b, i, j] = 1 where token j equals token i and j < i (earlier occurrences): [batch, q, k]."""
    same = tokens[:, :, None] == tokens[:, None, :]
    return same.tril(diagonal=-1).float()


def induction_mask(tokens: torch.Tensor) -> torch.Tensor:
    """D[b, i, j + 1] = 1 where token j equals token i and j < i (the token after
    each earlier occurrence): the duplicate mask shifted one key to the right.
    [batch, q, k]."""
    dup = duplicate_mask(tokens)
    return torch.cat([torch.zeros_like(dup[..., :1]), dup[..., :-1]], dim=-1)


def first_occurrence_order(tokens: torch.Tensor, vocab: int) -> torch.Tensor:
    """The token ids 0 .. vocab - 1 in the order in which they first occur in `tokens` [pos], then the
    ids that do not occur, ascending: [vocab]. Sort the token axis of a [position, token] matrix by it
    and the token at position i lands in column i until the first repeat, so "the token at position
    i - 1" becomes a diagonal instead of scattered cells."""
    tokens = torch.as_tensor(tokens)
    if tokens.dim() != 1:
        raise ValueError(f"tokens must be one sequence [pos], got shape {tuple(tokens.shape)}")
    if len(tokens) and not (0 <= int(tokens.min()) and int(tokens.max()) < vocab):
        raise ValueError(f"tokens must be ids in [0, {vocab}), got {int(tokens.min())} to {int(tokens.max())}")
    seen = list(dict.fromkeys(tokens.tolist()))
    rest = sorted(set(range(vocab)) - set(seen))
    return torch.tensor(seen + rest, dtype=torch.long)


def _check_mask(pattern: torch.Tensor, mask: torch.Tensor) -> None:
    _check_pattern(pattern)
    if pattern.dim() != 4 or mask.shape != (pattern.shape[0],) + pattern.shape[2:]:
        raise ValueError(f"need pattern [batch, head, q, k] and mask [batch, q, k], got {tuple(pattern.shape)} "
                         f"and {tuple(mask.shape)}")


def pattern_overlap_score_from_pattern(pattern: torch.Tensor, mask: torch.Tensor,
                                       exclude_bos: bool = True) -> torch.Tensor:
    """Σ(A ⊙ D) / Σ A per head (TransformerLens head_detector, "mul"): the share of attention that
    lands where the mask D says. pattern [batch, head, q, k], mask [batch, q, k] -> [head].

    exclude_bos: drop the attention to BOS first (TransformerLens's default keeps it). A head with
    nothing to do parks its attention on BOS, so with BOS excluded an exact induction head scores 1."""
    _check_mask(pattern, mask)
    a = pattern[..., 1:] if exclude_bos else pattern
    d = mask[:, None, :, 1:] if exclude_bos else mask[:, None]
    total = a.sum(dim=(0, 2, 3))
    return (a * d).sum(dim=(0, 2, 3)) / total.clamp(min=1e-12)


def induction_attention_from_pattern(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The attention each query pays to its induction target: the positions right after the earlier
    occurrences of its token, summed (0 for a token seen for the first time). Kept per query, not
    averaged, to show *where* in the context a head works. pattern [batch, head, q, k], tokens
    [batch, pos] -> [batch, head, q]."""
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be [batch, pos], got shape {tuple(tokens.shape)}")
    mask = induction_mask(tokens)
    _check_mask(pattern, mask)
    return (pattern * mask[:, None]).sum(dim=-1)


def prefix_matching_score_from_pattern(pattern: torch.Tensor, tokens: torch.Tensor,
                                       first_query: int) -> torch.Tensor:
    """Olsson et al.'s prefix-matching score: for each query from `first_query` on that has an earlier
    occurrence, the attention summed over the positions right after its earlier occurrences; mean over
    those queries and the batch. pattern [batch, head, q, k], tokens [batch, pos] -> [head]."""
    on_match = induction_attention_from_pattern(pattern, tokens)          # [batch, head, q]
    if not 0 <= first_query < pattern.shape[-1]:
        raise ValueError(f"first_query must be in [0, {pattern.shape[-1]}), got {first_query}")
    has_match = (induction_mask(tokens).sum(dim=-1) > 0)[:, None, first_query:].float()   # [batch, 1, q]
    return (on_match[..., first_query:] * has_match).sum(dim=(0, 2)) / has_match.sum().clamp(min=1)


def prefix_block_len(model) -> int:
    """Olsson et al. use 25-token blocks repeated 4 times; our context holds BOS + 4 blocks of at most
    (n_ctx - 1) // 4 tokens, so the block is min(25, (n_ctx - 1) // 4): 15 for n_ctx = 64."""
    return min(25, (model.cfg.n_ctx - 1) // 4)


def prefix_matching_scores(model, block_len: int | None = None, n_repeats: int = 4, batch: int = 10,
                           seed: int = EVAL_SEED) -> torch.Tensor:
    """Prefix-matching score of every head, [n_layers, n_heads], on BOS + a random block repeated
    n_repeats times (default block length: `prefix_block_len`; Olsson average over 10 examples).
    Four copies of one block never occur in training (it copies one segment once)."""
    block_len = prefix_block_len(model) if block_len is None else block_len
    if not (isinstance(block_len, int) and block_len >= 2 and n_repeats >= 2
            and 1 + block_len * n_repeats <= model.cfg.n_ctx):
        raise ValueError(f"need block_len >= 2, n_repeats >= 2 and 1 + block_len * n_repeats <= n_ctx = "
                         f"{model.cfg.n_ctx}, got block_len={block_len}, n_repeats={n_repeats}")
    tokens = repeated_blocks(batch, block_len, n_repeats, model.cfg.d_vocab, seed=seed)
    return torch.stack([prefix_matching_score_from_pattern(p, tokens, 1 + block_len)
                        for p in _patterns(model, tokens)])


def pattern_overlap_scores(model, tokens: torch.Tensor | None = None, exclude_bos: bool = True) -> torch.Tensor:
    """Pattern-overlap induction score of every head, [n_layers, n_heads] (default: held-out layout)."""
    tokens = eval_tokens(model) if tokens is None else model.check_tokens(tokens)
    mask = induction_mask(tokens)
    return torch.stack([pattern_overlap_score_from_pattern(p, mask, exclude_bos) for p in _patterns(model, tokens)])


def duplicate_token_scores(model, tokens: torch.Tensor | None = None, exclude_bos: bool = True) -> torch.Tensor:
    """Duplicate-token score of every head, [n_layers, n_heads]: the share of attention on earlier
    occurrences of the current token itself (the pattern-overlap measure with the duplicate mask)."""
    tokens = eval_tokens(model) if tokens is None else model.check_tokens(tokens)
    mask = duplicate_mask(tokens)
    return torch.stack([pattern_overlap_score_from_pattern(p, mask, exclude_bos) for p in _patterns(model, tokens)])


def induction_attention(model, tokens: torch.Tensor, layer: int = 1) -> torch.Tensor:
    """`induction_attention_from_pattern` for every head of one layer of `model` on `tokens`:
    [batch, head, q], the attention of each query on its induction target."""
    layer, _ = circuits.check_head(model, layer, 0)
    tokens = model.check_tokens(tokens)
    return induction_attention_from_pattern(_patterns(model, tokens)[layer], tokens)


def switch_on_position(positions, curve, threshold: float = 0.5, run: int = 5) -> int | None:
    """The first position from which a per-position curve (e.g. `induction_attention` averaged over
    the batch) stays above `threshold` for `run` positions in a row: where a head switches on.
    positions, curve: [n] (the positions need not start at 0). None if it never does."""
    positions, curve = torch.as_tensor(positions), torch.as_tensor(curve)
    if positions.dim() != 1 or positions.shape != curve.shape:
        raise ValueError(f"positions and curve must be 1-D of the same length, got shapes "
                         f"{tuple(positions.shape)} and {tuple(curve.shape)}")
    if not (isinstance(run, int) and 1 <= run):
        raise ValueError(f"run must be an integer >= 1, got {run!r}")
    if run > len(curve):
        return None
    stays = curve.unfold(0, run, 1).min(dim=-1).values > threshold    # [n - run + 1]: window from i on
    hits = stays.nonzero()
    return int(positions[hits[0, 0]]) if len(hits) else None


def position_runs(positions, mask) -> list[tuple[int, int]]:
    """The unbroken runs of positions where `mask` is True, as (first, last) pairs: e.g. where a head's
    per-position curve is above a threshold (`position_runs(pos, curve > 0.5)`). positions, mask: [n]."""
    positions, mask = torch.as_tensor(positions), torch.as_tensor(mask)
    if positions.dim() != 1 or positions.shape != mask.shape or mask.dtype != torch.bool:
        raise ValueError(f"positions and mask must be 1-D of the same length, mask boolean; got shapes "
                         f"{tuple(positions.shape)} and {tuple(mask.shape)}, mask dtype {mask.dtype}")
    edges = torch.diff(torch.cat([torch.tensor([False]), mask, torch.tensor([False])]).int())
    starts, ends = (edges == 1).nonzero().flatten(), (edges == -1).nonzero().flatten() - 1
    return [(int(positions[a]), int(positions[b])) for a, b in zip(starts, ends)]


def attention_budget(pattern: torch.Tensor, first: int, second: int) -> dict[str, torch.Tensor]:
    """Where each head spends its attention on BOS + prefix + r + r (first copy of r at `first`, second
    at `second`), to see where it parks the attention it does not need. pattern [batch, head, q, k];
    every entry is [head], a mean over the batch:

    - "bos_first", "bos_second": mean attention on BOS from the queries of the first copy, of the second;
    - "before_second": the share of all attention not on BOS that comes from queries before the second copy;
    - "non_bos": the attention not on BOS, summed over the queries of a sequence (the denominator of the
      pattern-overlap score: with distinct tokens, overlap = L * diagonal / non_bos).
    """
    _check_pattern(pattern)
    n = pattern.shape[-1]
    if pattern.dim() != 4 or not 1 <= first < second < n:
        raise ValueError(f"need a pattern [batch, head, q, k] and 1 <= first < second < {n}, got shape "
                         f"{tuple(pattern.shape)}, first={first}, second={second}")
    non_bos = 1 - pattern[:, :, 1:, 0]                                   # [batch, head, query 1 ...]
    return {"bos_first": pattern[:, :, first:second, 0].mean(dim=(0, 2)),
            "bos_second": pattern[:, :, second:, 0].mean(dim=(0, 2)),
            "before_second": non_bos[..., :second - 1].sum(dim=(0, 2)) / non_bos.sum(dim=(0, 2)),
            "non_bos": non_bos.sum(dim=-1).mean(dim=0)}


INDUCTION_METHODS = ("prefix", "diagonal", "overlap")


def induction_scores(model, method: str = "diagonal") -> torch.Tensor:
    """Induction score of every head, [n_layers, n_heads], by one of the three definitions
    (see the module docstring): "prefix", "diagonal" or "overlap"."""
    if method == "prefix":
        return prefix_matching_scores(model)
    if method == "diagonal":
        return diagonal_induction_scores(model)
    if method == "overlap":
        return pattern_overlap_scores(model)
    raise ValueError(f"method must be one of {INDUCTION_METHODS}, got {method!r}")


# ---------------------------------------------------------------- copying


def copying_score_from_ov(full_ov: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Olsson et al.'s copying score of a full OV circuit [attended token, logit]: for each attended
    token t, the logit effects minus their mean over the vocabulary, ReLU, and the share of that raise
    that goes to t itself; mean over tokens (default: every token but BOS). In [0, 1]: ~1 for a head
    that raises only the token it attends to, 0 for one that lowers it."""
    if full_ov.dim() != 2 or full_ov.shape[0] != full_ov.shape[1]:
        raise ValueError(f"full_ov must be a square [vocab, vocab] matrix, got shape {tuple(full_ov.shape)}")
    tokens = torch.arange(1, full_ov.shape[0]) if tokens is None else tokens
    raise_ = (full_ov[tokens] - full_ov[tokens].mean(dim=-1, keepdim=True)).relu()
    own = raise_.gather(-1, tokens[:, None])[:, 0]
    return (own / raise_.sum(dim=-1).clamp(min=1e-12)).mean()


def _per_head(model, fn) -> torch.Tensor:
    return torch.tensor([[float(fn(model, layer, head)) for head in range(model.cfg.n_heads)]
                         for layer in range(model.cfg.n_layers)])


def copying_accuracies(model, k: int = 1) -> torch.Tensor:
    """Top-k copying accuracy (`circuits.copying_accuracy`) of every head's full OV circuit
    W_E W_OV W_U, [n_layers, n_heads]: the share of tokens whose own logit is among the top k of their row."""
    return _per_head(model, lambda m, l, h: circuits.copying_accuracy(circuits.full_ov_circuit(m, l, h), k))


def copying_scores(model) -> torch.Tensor:
    """Copying score of every head's direct-path OV circuit W_E W_OV W_U, [n_layers, n_heads], in [0, 1].
    Every ordinary token is tried as the attended one (the vocabulary is small enough to try them all)."""
    return _per_head(model, lambda m, l, h: copying_score_from_ov(circuits.full_ov_circuit(m, l, h)))


def ov_eigen_scores(model) -> torch.Tensor:
    """Σλ/Σ|λ| of every head's full OV circuit W_E W_OV W_U, [n_layers, n_heads], in [-1, 1]
    (Elhage et al. 2021; positive = copying). Computed from d_head × d_head matrices."""
    return _per_head(model, circuits.ov_eigenvalue_stat)


# ---------------------------------------------------------------- the "A B ... A" probe


def ab_tokens(tokens: torch.Tensor, k: int, gap: int, match: int = 1) -> torch.Tensor:
    """The input of the "A B ... A" probe: the first k + gap tokens of each row, then the token at k (A)
    once more. A sits at k and k + gap, B = tokens[:, k + 1] right after the first A. tokens [batch, pos]
    (distinct tokens in a row, so that A occurs once before) -> [batch, k + gap + 1].

    match = m > 1 also repeats the m - 1 tokens before the first A right before the last one (m = 2:
    "C A B ... C A"), so that the last m tokens match the m tokens ending at k."""
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be [batch, pos], got shape {tuple(tokens.shape)}")
    if not (isinstance(match, int) and match >= 1):
        raise ValueError(f"match must be an integer >= 1, got {match!r}")
    if not (k >= match and gap >= match + 1 and k + gap <= tokens.shape[1]):
        raise ValueError(f"need k >= {match} (after BOS), gap >= {match + 1} (room for B) and "
                         f"k + gap <= {tokens.shape[1]} (the tokens given), got k={k}, gap={gap}")
    return torch.cat([tokens[:, :k + gap - match + 1], tokens[:, k - match + 1:k + 1]], dim=1)


@torch.no_grad()
def ab_probe(model, tokens: torch.Tensor, k: int, gap: int, prev_head: tuple[int, int],
             layer: int = 1, match: int = 1) -> dict[str, float | torch.Tensor]:
    """Run `model` on "A B ... A" (`ab_tokens`: A at k and k + gap; with match=2 "C A B ... C A") and
    measure, as means over the batch, whether it predicts B at the last A and where each step of the
    induction circuit stands:

    - "p": the probability of B; "top": the share of rows where B is the top prediction;
    - "prev": the attention of `prev_head` from B to A (step 1: A is moved into B's position);
    - "ind": [head] the attention of every head of `layer` from the last A to B (step 2).
    """
    tokens = model.check_tokens(tokens)
    prev_layer, prev = circuits.check_head(model, *prev_head)
    layer, _ = circuits.check_head(model, layer, 0)
    x = ab_tokens(tokens, k, gap, match)
    logits, cache = model.run_with_cache(x, names=lambda n: n.endswith("hook_pattern"))
    probs, b = logits[:, -1].softmax(dim=-1), tokens[:, k + 1]
    return {"p": probs.gather(-1, b[:, None]).mean().item(),
            "top": (probs.argmax(dim=-1) == b).float().mean().item(),
            "prev": cache.pattern(prev_layer)[:, prev, k + 1, k].mean().item(),
            "ind": cache.pattern(layer)[:, :, -1, k + 1].mean(dim=0)}


def match_follower_rates(tokens: torch.Tensor) -> dict[str, float]:
    """How reliable a one-token and a two-token match are as evidence for copying, in `tokens` [batch, pos]
    (e.g. a sample of the training data). Over the positions p whose token occurred exactly once before,
    at j >= 1: the share where the next token equals the one after that occurrence (t[p + 1] == t[j + 1]),
    "one token" where the tokens before them differ (t[p - 1] != t[j - 1]), "two tokens" where they are
    equal too; "n one token", "n two tokens" count those positions."""
    if tokens.dim() != 2 or tokens.shape[1] < 4:
        raise ValueError(f"tokens must be [batch, pos] with pos >= 4, got shape {tuple(tokens.shape)}")
    n = tokens.shape[1]
    earlier = duplicate_mask(tokens).bool()                  # [b, p, j]: token j == token p, j < p
    earlier[..., 0] = False                                  # BOS is not an occurrence of anything
    once = earlier.sum(-1) == 1                              # [b, p]
    j = earlier.float().argmax(-1)                           # the one earlier occurrence (where once)
    p = torch.arange(n).expand_as(j)
    valid = once & (p >= 2) & (p <= n - 2)
    jc, pc = j.clamp(1, n - 2), p.clamp(1, n - 2)
    same_next = tokens.gather(1, pc + 1) == tokens.gather(1, jc + 1)
    same_prev = tokens.gather(1, pc - 1) == tokens.gather(1, jc - 1)
    one, two = valid & ~same_prev, valid & same_prev
    return {"one token": same_next[one].float().mean().item(),
            "two tokens": same_next[two].float().mean().item(),
            "n one token": int(one.sum()), "n two tokens": int(two.sum())}


# ---------------------------------------------------------------- copying against the best possible


def copy_oracle_loss(tokens: torch.Tensor) -> torch.Tensor:
    """The Bayes copy oracle's next-token loss at each position, [batch, pos - 1] (like `per_position_loss`).

    The best any copy rule can do: at position p, spread the bet evenly over the tokens that followed
    the earlier occurrences of token p (BOS excluded); the loss is -log(share of those followers that
    equal the target). inf where the current token has no earlier occurrence (nothing to copy)."""
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be [batch, pos], got shape {tuple(tokens.shape)}")
    earlier = duplicate_mask(tokens)[:, :-1, :-1].bool()   # query p < n - 1, key j < p: token j == token p
    earlier[..., 0] = False                                 # BOS is not an occurrence of anything
    hit = tokens[:, 1:, None] == tokens[:, None, 1:]        # [b, p, j]: the follower of j equals p's target
    n_occ = earlier.sum(dim=-1).float()
    n_hit = (earlier & hit).sum(dim=-1).float()
    return -torch.log(n_hit / n_occ)


def copy_placements(n_ctx: int, half_len: int) -> dict[str, int]:
    """Prefix lengths that put BOS + prefix + r + r at the start and at the end of the context."""
    if 1 + 2 * half_len > n_ctx:
        raise ValueError(f"two copies of {half_len} tokens do not fit in n_ctx={n_ctx}")
    return {"start": 0, "end": n_ctx - 1 - 2 * half_len}


@torch.no_grad()
def copy_vs_oracle(model, half_lens=(8, 12, 20, 30), batch: int = 200, seed: int = 777) -> list[dict]:
    """Copying measured against the Bayes oracle on BOS + prefix + r + r, r's tokens drawn uniformly
    (repeats inside r allowed), the two copies placed at the start and at the end of the context.

    One row per (length, placement): "second" = the model's mean loss on tokens 2..L of the second copy,
    "oracle" = the copy oracle's loss there, "first" = the model's loss on tokens 2..L of the first copy
    (nothing can predict them: chance is ln(d_vocab - 1))."""
    rows = []
    for i, half in enumerate(half_lens):
        for name, prefix in copy_placements(model.cfg.n_ctx, half).items():
            tokens = repeated_tokens(batch, half, model.cfg.d_vocab, seed=seed + 10 * i + (name == "end"),
                                     prefix_len=prefix)
            loss = per_position_loss(model(tokens), tokens)
            oracle = copy_oracle_loss(tokens)
            s = 1 + prefix
            first, second = slice(s, s + half - 1), slice(s + half, s + 2 * half - 1)
            rows.append({"half_len": half, "placement": name, "second": loss[:, second].mean().item(),
                         "oracle": oracle[:, second].mean().item(), "first": loss[:, first].mean().item()})
    return rows


@torch.no_grad()
def previous_token_attention_by_position(model, head: tuple[int, int], batch: int = 64,
                                         seed: int = 4321) -> torch.Tensor:
    """Attention from every query position i = 1 .. n_ctx - 1 to i - 1, mean over a batch of full-context
    random sequences (BOS + n_ctx - 1 tokens): [n_ctx - 1]. The worst entry says where a
    previous-token head stops working."""
    layer, h = circuits.check_head(model, *head)
    tokens = torch.cat([torch.full((batch, 1), BOS, dtype=torch.long),
                        random_tokens(batch, model.cfg.n_ctx - 1, model.cfg.d_vocab, seed=seed)], dim=1)
    _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    return cache.pattern(layer)[:, h].diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=0)
