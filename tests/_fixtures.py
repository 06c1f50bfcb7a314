"""Shared helpers for the toolkit tests (scores, circuits, interventions, plots).

`trained` loads the library's default model once per test module: from the cache
($INDUCTION_LIB_CACHE or ~/.cache/induction_lib), or trained there on first use (~20 s).
The named heads are found by their scores (`induction_lib.heads`), never hard-coded.
"""
from __future__ import annotations

import pytest
import torch

import induction_lib as il


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    return il.load("induction-2l", progress=False)


prev_token_head = il.heads.previous_token_head
induction_head = il.heads.induction_head


def tiny_model(**cfg) -> il.Transformer:
    """A small untrained model (fixed seed) for exact, weight-level checks."""
    torch.manual_seed(0)
    base = dict(d_vocab=16, n_ctx=16, d_model=16, n_layers=2, n_heads=2, d_head=4)
    return il.Transformer(il.ModelConfig(**{**base, **cfg})).eval()
