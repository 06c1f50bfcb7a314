"""Shared helpers for the toolkit and exercise tests.

`trained` loads the library's default model once per test module: from the cache
($INDUCTION_LIB_CACHE or ~/.cache/induction_lib), or trained there on first use (~20 s).
The named heads are found by their scores (`induction_lib.heads`), never hard-coded.
"""
from __future__ import annotations

import pytest
import torch

import induction_lib as il
from induction_lib.exercises import ExerciseError


def _book_model() -> il.Transformer:
    torch.set_num_threads(1)
    return il.load("induction-2l", progress=False)


@pytest.fixture(scope="module")
def trained():
    return _book_model()


@pytest.fixture(scope="module")
def book_model():
    """The same model, under the name the exercise tests use."""
    return _book_model()


prev_token_head = il.heads.previous_token_head
induction_head = il.heads.induction_head


def tiny_model(**cfg) -> il.Transformer:
    """A small untrained model (fixed seed) for exact, weight-level checks."""
    torch.manual_seed(0)
    base = dict(d_vocab=16, n_ctx=16, d_model=16, n_layers=2, n_heads=2, d_head=4)
    return il.Transformer(il.ModelConfig(**{**base, **cfg})).eval()


@pytest.fixture(scope="module")
def small_model():
    """An untrained 2-layer x 3-head model: a geometry where a layer index is not a head index."""
    return tiny_model(n_ctx=32, n_heads=3)


def passes(check_fn, *args, capsys=None, **kwargs):
    """Run an exercise check; with capsys, require its success line."""
    check_fn(*args, **kwargs)
    if capsys is not None:
        out = capsys.readouterr().out
        assert out.startswith("✓"), out


def rejects(check_fn, *args, match: str, **kwargs):
    """The check must fail with an ExerciseError whose message matches `match`."""
    with pytest.raises(ExerciseError, match=match):
        check_fn(*args, **kwargs)


def patch_by_hand(model, clean, corrupted, layer, head, pos):
    """Logits of `corrupted` with one head's output at `pos` taken from a run on `clean`, built with
    run_with_cache + run_with_hooks only: the ground truth for patching (and exercise 4.4's solution)."""
    name = f"blocks.{layer}.attn.hook_result"
    _, cache = model.run_with_cache(clean, names=[name])

    def patch(act, hook):
        act = act.clone()
        act[:, pos, head] = cache[name][:, pos, head]
        return act

    return model.run_with_hooks(corrupted, fwd_hooks=[(name, patch)])
