"""Corpus split and BPE tokenizer for natural-text (stdlib source) induction-head training.

Held-out rule: the standard library's .py files are listed exactly as `induction_lib.data.stdlib_corpus`
walks them (sorted path order; site-packages, test, tests, idlelib, lib2to3 skipped; files that do not
decode as UTF-8 skipped); file number i (0-based, in that sorted list) is HELD OUT iff i % 20 == 0
(every 20th file, 5%). The tokenizer and the model only ever see the other files.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from induction_lib.data import stdlib_dir

HOLDOUT_EVERY = 20
SKIP = ("site-packages", "test", "tests", "idlelib", "lib2to3")


def stdlib_files(root=None) -> list[tuple[str, str]]:
    """[(relative path, text)] in sorted path order, same filter as stdlib_corpus."""
    root = Path(root) if root is not None else stdlib_dir()
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(p in SKIP for p in rel):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append(("/".join(rel), text))
    return out


def split_files():
    files = stdlib_files()
    train = [f for i, f in enumerate(files) if i % HOLDOUT_EVERY != 0]
    held = [f for i, f in enumerate(files) if i % HOLDOUT_EVERY == 0]
    return train, held


def train_bpe(texts: list[str], vocab_size: int, path: str):
    """Byte-level BPE trained on `texts` only; saved as JSON at `path`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(path)
    return tok


class BPE:
    """Wraps a saved tokenizers JSON; model ids = tokenizer ids + 1 so that 0 stays BOS."""

    def __init__(self, path: str):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(path)
        self.vocab_size = self.tok.get_vocab_size() + 1  # + BOS

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tok.encode(text).ids, dtype=torch.long) + 1

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return self.tok.decode([i - 1 for i in ids if i > 0])

    def pieces(self, ids) -> list[str]:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return ["<bos>" if i == 0 else self.tok.decode([i - 1]) for i in ids]


def encode_files(bpe: BPE, files) -> torch.Tensor:
    """Concatenate the files' token ids (each file encoded separately) into one 1-D tensor."""
    return torch.cat([bpe.encode(text) for _, text in files])
