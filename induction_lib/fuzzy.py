"""Fuzzy induction: a copy that comes back with some tokens swapped for their "synonyms".

Exact-match induction ([A][B] … [A] → [B]) fails as soon as the second A is spelled differently. Here
every ordinary token has one synonym (a fixed random pairing, `synonyms`), and the training data copy a
segment with each token replaced by its synonym with probability `p_swap` (`FuzzySegments`). To predict
such a copy a head must match a query token with the token *or* its synonym: approximately.

    model = il.load("fuzzy-2l")                  # the zoo's fuzzy recipe, shipped with the book
    tokens = il.fuzzy.fuzzy_eval_tokens(model)   # BOS + prefix + r + synonyms(r)

The data (`data.FuzzySegments`, `data.synonyms`) and the recipe ("fuzzy-2l" in `zoo.RECIPES`) live where
every other data kind and recipe does; this module holds the analysis.
"""
from __future__ import annotations

import re

import torch

from . import scores, zoo
from .data import BOS, FuzzySegments, canonical, synonyms  # noqa: F401 (the data, re-exported here)

RECIPE = zoo.RECIPES["fuzzy-2l"]


# ---------------------------------------------------------------- held-out evaluation

# BOS + 3 tokens + a 28-token block + the block again (in synonyms). Training copies 4..24 tokens, so the
# block is longer than any copy the model saw; prefix and block take 31 distinct synonym pairs, all there
# are in a 64-token vocabulary (63 ordinary tokens: 31 pairs and one left over).
EVAL_HALF_LEN = 28
EVAL_PREFIX = 3


def fuzzy_eval_tokens(model, batch: int = 16, half_len: int = EVAL_HALF_LEN, prefix_len: int = EVAL_PREFIX,
                      seed: int = scores.EVAL_SEED,
                      swap: bool = True, pairing_seed: int = 0) -> torch.Tensor:
    """BOS + prefix + r + r', r' = every token of r replaced by its synonym (swap=True) or r itself.

    The prefix and r come from distinct synonym pairs, so r' shares no token with anything before it:
    only a head that matches synonyms can find the earlier occurrence. In training every token of a copy
    was swapped with probability p_swap and copies had at most 24 tokens: a 28-token copy made of
    synonyms only is new to the model."""
    vocab = model.cfg.d_vocab
    syn = synonyms(vocab, pairing_seed)
    ordinary = torch.arange(1, vocab)
    classes = torch.unique(canonical(ordinary[syn[ordinary] != ordinary], syn))   # the synonym pairs
    n = prefix_len + half_len
    if n > len(classes) or 1 + prefix_len + 2 * half_len > model.cfg.n_ctx:
        raise ValueError(f"prefix_len + half_len = {n} needs at most {len(classes)} synonym pairs and "
                         f"1 + prefix + 2 * half <= n_ctx = {model.cfg.n_ctx}")
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(batch):
        pick = classes[torch.randperm(len(classes), generator=g)[:n]]
        pick = torch.where(torch.rand(n, generator=g) < 0.5, pick, syn[pick])  # either member of each pair
        r = pick[prefix_len:]
        rows.append(torch.cat([torch.tensor([BOS]), pick, syn[r] if swap else r]))
    return torch.stack(rows)


def fuzzy_induction_scores(model, half_len: int = EVAL_HALF_LEN, prefix_len: int = EVAL_PREFIX, batch: int = 16,
                           seed: int = scores.EVAL_SEED, swap: bool = True) -> torch.Tensor:
    """The diagonal induction score of every head on `fuzzy_eval_tokens` ([n_layers, n_heads]): with
    swap=True the second copy is all synonyms, so an exact-match induction head scores ~0 and a head
    that matches synonyms scores as on an exact repeat."""
    tokens = fuzzy_eval_tokens(model, batch, half_len, prefix_len, seed, swap)
    _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    return torch.stack([scores.diagonal_induction_score_from_pattern(cache.pattern(l), half_len, 1 + prefix_len)
                        for l in range(model.cfg.n_layers)])


def eval_regions(half_len: int = EVAL_HALF_LEN, prefix_len: int = EVAL_PREFIX) -> dict[str, slice]:
    """The two copies of `fuzzy_eval_tokens` in the indices of `scores.per_position_loss` (see
    `scores.eval_regions`)."""
    s = 1 + prefix_len
    return {"first half": slice(s, s + half_len - 1), "repeated half": slice(s + half_len, s + 2 * half_len - 1)}


@torch.no_grad()
def copy_probabilities(model, tokens: torch.Tensor, half_len: int = EVAL_HALF_LEN, prefix_len: int = EVAL_PREFIX,
                       pairing_seed: int = 0) -> dict[str, torch.Tensor]:
    """On `fuzzy_eval_tokens` (second copy = synonyms of the first): at each position of the second copy,
    the probability of the token that came next in the FIRST copy ("original", b) and of its synonym
    ("synonym", the token that actually comes). Each [batch, half_len - 1]."""
    syn = synonyms(model.cfg.d_vocab, pairing_seed)
    rep = eval_regions(half_len, prefix_len)["repeated half"]
    q = torch.arange(rep.start, rep.stop)
    probs = model(tokens).softmax(-1)[:, q]                          # [batch, n, vocab]
    nxt = tokens[:, q + 1]
    return {"original": probs.gather(-1, syn[nxt][..., None])[..., 0],
            "synonym": probs.gather(-1, nxt[..., None])[..., 0]}


# ---------------------------------------------------------------- natural text: repeated identifiers

IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


def repeated_identifiers(text: str, window: int, min_len: int = 6) -> list[tuple[int, int, str]]:
    """Identifiers of at least `min_len` characters that occur again so soon that both occurrences fit in
    `window` characters, with at least `window` characters of text before the second one ends:
    [(first start, second start, name)], each identifier paired with its next occurrence."""
    found = []
    for m in IDENTIFIER.finditer(text):
        name = m.group()
        if len(name) < min_len:
            continue
        nxt = re.compile(rf"\b{re.escape(name)}\b").search(text, m.end(), m.start() + window)
        if nxt and nxt.end() >= window:
            found.append((m.start(), nxt.start(), name))
    return found


@torch.no_grad()
def identifier_losses(model, text: str, tokenizer, repeats, seed: int = 0) -> dict[str, torch.Tensor]:
    """Loss (nats per character) on characters 2 … of repeated identifiers, each read in the window of
    n_ctx - 1 characters that ends with its second occurrence: "second" = the second occurrence as it
    is, "second, first replaced" = the same after the first occurrence was replaced by random lower-case
    letters (nothing to copy from), "first" = the first occurrence. Each: [len(repeats)].
    repeats: from `repeated_identifiers(text, model.cfg.n_ctx - 1)`."""
    g = torch.Generator().manual_seed(seed)
    n = model.cfg.n_ctx - 1
    windows, replaced = [], []
    for first, second, name in repeats:
        start = second + len(name) - n
        clean = text[start:start + n]
        other = "".join(chr(97 + i) for i in torch.randint(0, 26, (len(name),), generator=g).tolist())
        a = first - start
        windows.append(clean)
        replaced.append(clean[:a] + other + clean[a + len(name):])
    bos = torch.full((len(windows), 1), BOS)
    out = {}
    for key, texts in (("second", windows), ("second, first replaced", replaced)):
        ids = torch.cat([bos, torch.stack([tokenizer.encode(t) for t in texts])], dim=1)
        loss = scores.per_position_loss(model(ids), ids)      # index k predicts character k of the window
        spans = {"second": [(s - (s + len(w) - n), len(w)) for _, s, w in repeats]}
        if key == "second":
            spans["first"] = [(f - (s + len(w) - n), len(w)) for f, s, w in repeats]
        for name, where in spans.items():
            out[key if name == "second" else "first"] = torch.stack(
                [loss[i, a + 1:a + k].mean() for i, (a, k) in enumerate(where)])
    return {k: out[k] for k in ("first", "second", "second, first replaced")}


def pair_accuracy(matrix: torch.Tensor, syn: torch.Tensor, tokens: torch.Tensor | None = None) -> float:
    """Share of rows t (default: every ordinary token with a synonym) whose two largest entries are in
    the columns t and syn[t]: a circuit matrix [vocab, vocab] that treats synonyms alike scores 1."""
    if tokens is None:
        tokens = torch.arange(1, len(syn))
        tokens = tokens[syn[tokens] != tokens]
    top2 = matrix[tokens].topk(2, dim=-1).indices                           # [n, 2]
    pair = torch.stack([tokens, syn[tokens]], dim=-1)
    return (top2.sort(-1).values == pair.sort(-1).values).all(-1).float().mean().item()


def pair_order(syn: torch.Tensor) -> torch.Tensor:
    """Token ids ordered so that synonyms sit next to each other (BOS first, unpaired tokens last), for
    plotting a circuit matrix in which synonyms form 2 x 2 blocks on the diagonal."""
    first = [t for t in range(1, len(syn)) if t < syn[t]]
    lone = [t for t in range(1, len(syn)) if syn[t] == t]
    return torch.tensor([0] + [x for t in first for x in (t, int(syn[t]))] + lone)


@torch.no_grad()
def char_probabilities(model, tokenizer, text: str) -> torch.Tensor:
    """The probability the model gives each character of `text`, read after BOS: [len(text)]."""
    ids = torch.cat([torch.tensor([BOS]), tokenizer.encode(text)])
    probs = model(ids).softmax(-1)[0, :-1]
    return probs.gather(-1, ids[1:, None])[:, 0]
