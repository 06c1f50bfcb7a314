"""Data: repeated random tokens, the training distribution, and natural text from Python's own source.

Every sampler is deterministic given a seed or a `torch.Generator`. Token 0 is BOS in every
vocabulary; the other ids are ordinary tokens.
"""
from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import torch

BOS = 0


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if seed is not None and not isinstance(seed, int):
        raise ValueError(f"seed must be an int, a torch.Generator or None, got {type(seed).__name__}")
    g = torch.Generator()
    g.manual_seed(0 if seed is None else seed)
    return g


def _check_positive(name: str, value) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def random_tokens(batch: int, length: int, vocab: int, seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """Uniform random ordinary tokens (never BOS): [batch, length] in [1, vocab)."""
    _check_positive("batch", batch)
    _check_positive("length", length)
    if not (isinstance(vocab, int) and vocab >= 2):
        raise ValueError(f"vocab must be an integer >= 2 (BOS + at least one token), got {vocab!r}")
    return torch.randint(1, vocab, (batch, length), generator=_generator(seed))


def repeated_tokens(batch: int, half_len: int, vocab: int, seed: int | torch.Generator | None = 0,
                    prefix_len: int = 0, distinct: bool = False) -> torch.Tensor:
    """BOS + r + r: a random block repeated once, [batch, 1 + prefix_len + 2 * half_len].

    On the second copy, only a model that copies from the first can beat chance. `prefix_len`
    puts that many unrelated random tokens between BOS and the first copy (a shifted layout, to
    expose a model that learned positions rather than induction). `distinct=True` draws the prefix
    and the block without repeats, so every token of the second copy has exactly one earlier
    occurrence and the induction target is unambiguous (needs prefix_len + half_len < vocab).
    """
    _check_positive("half_len", half_len)
    if not (isinstance(prefix_len, int) and prefix_len >= 0):
        raise ValueError(f"prefix_len must be an integer >= 0, got {prefix_len!r}")
    g = _generator(seed)
    if distinct:
        if prefix_len + half_len > vocab - 1:
            raise ValueError(f"distinct=True needs prefix_len + half_len <= vocab - 1 = {vocab - 1}, "
                             f"got {prefix_len} + {half_len}")
        _check_positive("batch", batch)
        draw = torch.stack([1 + torch.randperm(vocab - 1, generator=g)[:prefix_len + half_len] for _ in range(batch)])
        prefix, r = draw[:, :prefix_len], draw[:, prefix_len:]
    else:
        prefix = random_tokens(batch, prefix_len, vocab, g) if prefix_len else torch.zeros(batch, 0, dtype=torch.long)
        r = random_tokens(batch, half_len, vocab, g)
    bos = torch.full((batch, 1), BOS, dtype=torch.long)
    return torch.cat([bos, prefix, r, r], dim=1)


def repeated_blocks(batch: int, block_len: int, n_repeats: int, vocab: int,
                    seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """BOS + the same random block n_repeats times (Olsson et al.'s prefix-matching input)."""
    _check_positive("n_repeats", n_repeats)
    r = random_tokens(batch, block_len, vocab, seed)
    return torch.cat([torch.full((batch, 1), BOS, dtype=torch.long), r.repeat(1, n_repeats)], dim=1)


@dataclass(frozen=True)
class RepeatedSegments:
    """The training distribution: random tokens with a segment copied later, at random places.

    Each sequence is BOS + n_ctx - 1 random tokens; a segment of length in [min_len, max_len] starting
    at a random place is copied to a random later place (right after it or further on). The
    repeat's position and length vary, so the only way to predict the copy is induction, not position.
    `sample` returns (tokens, mask); mask marks the targets that copying can predict (the second and
    later tokens of the copy): a loss on those alone trains induction heads much sooner.
    """

    vocab: int
    n_ctx: int
    min_len: int = 4
    max_len: int = 24
    rules: int = 4

    def __post_init__(self):
        if not (2 <= self.min_len <= self.max_len):
            raise ValueError(f"need 2 <= min_len <= max_len, got min_len={self.min_len}, max_len={self.max_len}")
        if 1 + 2 * self.max_len + 1 > self.n_ctx:
            raise ValueError(f"n_ctx={self.n_ctx} is too short for two copies of max_len={self.max_len} "
                             f"(need at least {2 * self.max_len + 2})")

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        g = generator
        n = self.n_ctx
        tokens = torch.cat([torch.full((batch, 1), BOS, dtype=torch.long),
                            torch.randint(1, self.vocab, (batch, n - 1), generator=g)], dim=1)
        lengths = torch.randint(self.min_len, self.max_len + 1, (batch,), generator=g)
        u1, u2, u3 = (torch.rand(batch, generator=g) for _ in range(3))
        rule = torch.randint(0, self.rules, (batch,), generator=g)
        # Placement, so that every position is trained in both roles; rows are split evenly over the
        # first `rules` of these rules:
        # 0. the original starts uniformly in [1, n - 2L] and the copy somewhere after it;
        # 1. the copy starts uniformly in [1 + L, n - L] and the original somewhere before it;
        # 2. the original starts uniformly in [1, n - 2 min_len] and L is drawn from the lengths that
        #    still fit, so late originals (short ones) are as common as early ones;
        # 3. as rule 0, but the copy starts right after the original (short adjacent repeats were copied
        #    badly when only the first three rules made them, and rarely).
        # (Rule 1 alone: early copies were rare and the model failed on them. Rules 0 and 1 alone: an
        # original after position ~45 was rare, and the previous-token head, which is only trained
        # where an original's tokens serve as keys, stopped working there.)
        start_c = 1 + (u3 * (n - 2 * self.min_len)).long()
        fits = ((n - start_c) // 2).clamp(max=self.max_len)
        lengths = torch.where(rule == 2, self.min_len + (u1 * (fits - self.min_len + 1)).long(), lengths)
        src_a = torch.where(rule == 2, start_c, 1 + (u1 * (n - 2 * lengths)).long())
        dst_a = src_a + lengths + (u2 * (n - src_a - 2 * lengths + 1)).long()
        dst_b = 1 + lengths + (u1 * (n - 2 * lengths)).long()
        src_b = 1 + (u2 * (dst_b - lengths)).long()
        dst_a = torch.where(rule == 3, src_a + lengths, dst_a)     # 3. the copy right after the original
        src, dst = torch.where(rule == 1, src_b, src_a), torch.where(rule == 1, dst_b, dst_a)
        offsets = torch.arange(self.max_len)
        inside = offsets[None] < lengths[:, None]                    # [batch, max_len]
        src_idx = (src[:, None] + offsets[None]).clamp(max=n - 1)
        dst_idx = (dst[:, None] + offsets[None]).clamp(max=n - 1)
        rows = torch.arange(batch)[:, None].expand_as(src_idx)
        tokens[rows[inside], dst_idx[inside]] = tokens[rows[inside], src_idx[inside]]
        # targets: logits at position p predict token p + 1; predictable targets are dst+1 .. dst+L-1
        mask = torch.zeros(batch, n - 1, dtype=torch.bool)
        pred = inside & (offsets[None] >= 1)
        mask[rows[pred], (dst_idx - 1)[pred]] = True
        return tokens, mask


def induction_keys(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Which positions of a `RepeatedSegments` sample serve as induction keys, [batch, n_ctx] bool.

    The copy is read off the mask (targets dst+1 .. dst+L-1), the original found as the last earlier
    place holding the same L tokens; its tokens after the first are the keys an induction head attends
    to (the token after each earlier occurrence). The previous-token head is only trained at keys."""
    if tokens.dim() != 2 or mask.shape != (tokens.shape[0], tokens.shape[1] - 1):
        raise ValueError(f"need tokens [batch, n] and mask [batch, n - 1] as `RepeatedSegments.sample` returns, "
                         f"got {tuple(tokens.shape)} and {tuple(mask.shape)}")
    keys = torch.zeros(tokens.shape, dtype=torch.bool)
    for b, (row, m) in enumerate(zip(tokens, mask)):
        if not m.any():
            continue
        dst, length = int(m.float().argmax()), int(m.sum()) + 1
        same = (row.unfold(0, length, 1)[:dst - length + 1] == row[dst:dst + length]).all(dim=1)
        if not same.any():
            raise ValueError(f"row {b}: the copy at {dst} (length {length}) has no earlier occurrence")
        src = int(same.nonzero()[-1])
        keys[b, src + 1:src + length] = True
    return keys


# ---------------------------------------------------------------- fuzzy copies


def synonyms(vocab: int, seed: int = 0) -> torch.Tensor:
    """A fixed random pairing of the ordinary tokens: s [vocab] with s[s[t]] = t, s[BOS] = BOS and
    s[t] != t for every ordinary token (with an odd number of them, the last one left over is paired
    with nothing and maps to itself)."""
    if not (isinstance(vocab, int) and vocab >= 3):
        raise ValueError(f"vocab must be an integer >= 3 (BOS + two tokens to pair), got {vocab!r}")
    perm = 1 + torch.randperm(vocab - 1, generator=torch.Generator().manual_seed(seed))
    s = torch.arange(vocab)
    a, b = perm[0:len(perm) - 1:2], perm[1::2]
    s[a], s[b] = b, a
    return s


def canonical(tokens: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
    """Each token replaced by the smaller of itself and its synonym: equal for synonyms."""
    return torch.minimum(tokens, syn[tokens])


@dataclass(frozen=True)
class FuzzySegments:
    """`data.RepeatedSegments` (random tokens, a segment copied to a later place), with each token of the
    copy replaced by its synonym with probability p_swap. sample -> (tokens, mask), the mask as there."""

    vocab: int
    n_ctx: int
    min_len: int = 4
    max_len: int = 24
    p_swap: float = 0.5
    pairing_seed: int = 0

    def __post_init__(self):
        if not 0 <= self.p_swap <= 1:
            raise ValueError(f"p_swap must be in [0, 1], got {self.p_swap!r}")
        RepeatedSegments(self.vocab, self.n_ctx, self.min_len, self.max_len)  # validates the lengths

    def sample(self, batch: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        exact = RepeatedSegments(self.vocab, self.n_ctx, self.min_len, self.max_len,
                                 rules=3)
        tokens, mask = exact.sample(batch, generator)
        # The copy fills the token positions dst .. dst+L-1. The mask marks its targets
        # dst+1 .. dst+L-1 at loss indices dst .. dst+L-2 (index p predicts token p+1),
        # so token t is in the copy if mask[t] or mask[t-1].
        pad = torch.zeros(batch, 1, dtype=torch.bool)
        in_copy = torch.cat([mask, pad], 1) | torch.cat([pad, mask], 1)
        coin = torch.rand(tokens.shape, generator=generator) < self.p_swap
        syn = synonyms(self.vocab, self.pairing_seed)
        return torch.where(in_copy & coin, syn[tokens], tokens), mask


# ---------------------------------------------------------------- natural text


VISIBLE = {"\n": "⏎", " ": "␣"}  # how newline and space are shown on axes and in widgets


class CharTokenizer:
    """Characters <-> ids. 0 = BOS, 1 = newline, then printable ASCII (32..126), last = unknown."""

    def __init__(self):
        self.chars = ["\n"] + [chr(c) for c in range(32, 127)]
        self.stoi = {c: i + 1 for i, c in enumerate(self.chars)}
        self.unk = len(self.chars) + 1
        self.vocab_size = self.unk + 1

    def encode(self, text: str) -> torch.Tensor:
        """Text -> 1-D long tensor (tabs become four spaces; other unknown characters -> unk)."""
        text = text.replace("\t", "    ")
        return torch.tensor([self.stoi.get(c, self.unk) for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        """Ids -> text; BOS shows as '⟨bos⟩', unknown as '�'."""
        out = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == BOS:
                out.append("⟨bos⟩")
            elif 1 <= i <= len(self.chars):
                out.append(self.chars[i - 1])
            elif i == self.unk:
                out.append("�")
            else:
                raise ValueError(f"token id {i} is out of range: ids must be in [0, {self.vocab_size})")
        return "".join(out)

    def labels(self, ids) -> list[str]:
        """One printable label per id, for plot axes."""
        return [VISIBLE.get(c, c) for c in (self.decode([i]) for i in
                (ids.tolist() if isinstance(ids, torch.Tensor) else ids))]


def stdlib_dir() -> Path:
    """The installed Python standard library (present on every machine that runs the book)."""
    return Path(sysconfig.get_paths()["stdlib"])


SKIPPED_DIRS = ("site-packages", "test", "tests", "idlelib", "lib2to3")


def stdlib_files(root: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """[(path relative to the standard library, text)] of its own .py files, in sorted path order.

    Tests, site-packages, idlelib and lib2to3 are skipped, and so are files that are not UTF-8.
    Nothing is downloaded: the files ship with Python."""
    root = Path(root) if root is not None else stdlib_dir()
    if not root.is_dir():
        raise ValueError(f"no such directory for the corpus: {root}")
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(p in SKIPPED_DIRS for p in rel):
            continue
        try:
            out.append(("/".join(rel), path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError):
            continue
    if not out:
        raise ValueError(f"found no readable .py files under {root}")
    return out


def split_files(files: list, holdout_every: int = 20) -> tuple[list, list]:
    """(train, held out): file number i (in the given order) is held out iff i % holdout_every == 0."""
    if holdout_every < 2:
        raise ValueError(f"holdout_every must be at least 2, got {holdout_every}")
    return ([f for i, f in enumerate(files) if i % holdout_every],
            [f for i, f in enumerate(files) if i % holdout_every == 0])


def stdlib_corpus(max_chars: int = 2_000_000, root: str | os.PathLike | None = None) -> str:
    """Text of the standard library's own .py files (`stdlib_files`), concatenated, up to max_chars."""
    parts, total = [], 0
    for _, text in stdlib_files(root):
        parts.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return "".join(parts)[:max_chars]


class BPETokenizer:
    """Byte-level BPE (the `tokenizers` library), trained here on the corpus. Id 0 is BOS; the
    tokenizer's own ids are shifted up by one. Every string encodes (bytes are the fallback)."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size() + 1  # + BOS

    @classmethod
    def train(cls, texts: list[str], vocab_size: int) -> "BPETokenizer":
        """A tokenizer with `vocab_size` entries (BOS not counted) trained on `texts` only."""
        os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one thread: the same merges every time
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    @classmethod
    def from_json(cls, text: str) -> "BPETokenizer":
        from tokenizers import Tokenizer
        return cls(Tokenizer.from_str(text))

    def to_json(self) -> str:
        return self.tok.to_str()

    def encode(self, text: str) -> torch.Tensor:
        """Text -> 1-D long tensor of ids (no BOS)."""
        return torch.tensor(self.tok.encode(text).ids, dtype=torch.long) + 1

    def _ids(self, ids) -> list[int]:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is out of range: ids must be in [0, {self.vocab_size})")
        return ids

    def decode(self, ids) -> str:
        """Ids -> text; BOS shows as '⟨bos⟩'."""
        out, run = [], []
        for i in self._ids(ids):
            if i == BOS:
                out.append(self.tok.decode(run))
                out.append("⟨bos⟩")
                run = []
            else:
                run.append(i - 1)
        out.append(self.tok.decode(run))
        return "".join(out)

    def pieces(self, ids) -> list[str]:
        """The text of each token on its own."""
        return ["⟨bos⟩" if i == BOS else self.tok.decode([i - 1]) for i in self._ids(ids)]

    def labels(self, ids) -> list[str]:
        """One printable label per id, for plot axes (newline ⏎, space ␣)."""
        return ["".join(VISIBLE.get(c, c) for c in piece) for piece in self.pieces(ids)]


@dataclass
class TextData:
    """Random windows of a tokenised text: BOS + n_ctx - 1 tokens. Mask: every target.

    A corpus built by the zoo also carries its `tokenizer` and the files it `held_out` from training."""

    ids: torch.Tensor
    n_ctx: int
    tokenizer: object = field(default=None, repr=False)
    held_out: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        if self.ids.dim() != 1 or len(self.ids) < self.n_ctx:
            raise ValueError(f"text needs at least n_ctx={self.n_ctx} tokens as a 1-D tensor, "
                             f"got shape {tuple(self.ids.shape)}")

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(self.ids) - self.n_ctx + 1, (batch,), generator=generator)
        idx = starts[:, None] + torch.arange(self.n_ctx - 1)[None]
        tokens = torch.cat([torch.full((batch, 1), BOS, dtype=torch.long), self.ids[idx]], dim=1)
        return tokens, torch.ones(batch, self.n_ctx - 1, dtype=torch.bool)
