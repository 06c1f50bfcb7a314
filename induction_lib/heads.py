"""Which heads are the previous-token head and the induction head: found by measurement, never hard-coded.

One definition for the whole book (chapters, widgets, Hopfield and phase-change analyses, tests):

- the **previous-token head** is the layer-0 head with the best previous-token score (Olsson et al. 2022)
  on held-out random tokens;
- the **induction head** is the head with the best diagonal induction score on held-out repeats
  (`scores.diagonal_induction_scores`: a layout the training data never has), in layers 1 and up; in a
  one-layer model (where only smeared keys can make one) in layer 0.

`key_heads` reads both off a model, or off a training `History` (its last record), with the same rules.
"""
from __future__ import annotations

import torch

from . import scores


def _best(score: torch.Tensor, first_layer: int) -> tuple[int, int]:
    """(layer, head) of the largest entry of a [n_layers, n_heads] score from `first_layer` on."""
    flat = int(score[first_layer:].argmax())
    return first_layer + flat // score.shape[1], flat % score.shape[1]


def _first_induction_layer(n_layers: int) -> int:
    return 1 if n_layers > 1 else 0


def previous_token_head(model) -> tuple[int, int]:
    """The layer-0 head with the best previous-token score on held-out random tokens."""
    return _best(scores.previous_token_scores(model)[:1], 0)


def induction_head(model) -> tuple[int, int]:
    """The head with the best diagonal induction score on held-out repeats, in layers >= 1 (layer 0 in a
    one-layer model)."""
    return _best(scores.diagonal_induction_scores(model), _first_induction_layer(model.cfg.n_layers))


def key_heads(model_or_history) -> tuple[tuple[int, int], tuple[int, int]]:
    """(previous-token head, induction head) of a model, or of a training History at its last record."""
    if hasattr(model_or_history, "prev_token"):
        prev, ind = model_or_history.prev_token[-1], model_or_history.induction[-1]
        return _best(prev[:1], 0), _best(ind, _first_induction_layer(ind.shape[0]))
    return previous_token_head(model_or_history), induction_head(model_or_history)


def head_name(head: tuple[int, int]) -> str:
    """The book's name for a head: "layer.head", e.g. "1.0"."""
    layer, h = head
    return f"{int(layer)}.{int(h)}"
