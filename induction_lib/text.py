"""Natural text: a text model measured on files it never trained on.

A text model from the zoo carries its tokenizer (`model.tokenizer`) and the standard-library files that
were held out from training (`model.held_out`), so these numbers are the same on every machine, whatever
its Python version. Numbers only; the figures are in `plots.natural_text`.
"""
from __future__ import annotations

import copy

import torch

from . import metrics
from .data import BOS
from .interventions import per_position_loss_with
from .scores import diagonal_induction_scores

# A paragraph written for this book, so that it is in no training corpus; repeated, it tests copying
# of ordinary English (the model trained on Python source).
PASSAGE = (
    "On the morning the river froze, my grandmother walked down to the mill with a lantern and a basket "
    "of bread. She told the miller that the wheel would crack if he let it turn through the night, and "
    "he laughed at her."
)


def _text_model(model):
    if getattr(model, "tokenizer", None) is None or not getattr(model, "held_out", None):
        raise ValueError("this model has no tokenizer or held-out files: load a text model from the zoo, "
                         "e.g. il.load('text-2l')")
    return model.tokenizer


def held_out_ids(model) -> torch.Tensor:
    """The held-out files, each tokenised on its own, concatenated: a 1-D tensor of ids (no BOS)."""
    tok = _text_model(model)
    return torch.cat([tok.encode(text) for _, text in model.held_out])


def held_out_windows(model, n: int = 200, seed: int = 0) -> torch.Tensor:
    """`n` random windows BOS + n_ctx − 1 tokens of held-out text, [n, n_ctx] (fixed by `seed`)."""
    ids = held_out_ids(model)
    n_ctx = model.cfg.n_ctx
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - n_ctx + 1, (n,), generator=g)
    body = ids[starts[:, None] + torch.arange(n_ctx - 1)[None]]
    return torch.cat([torch.full((n, 1), BOS, dtype=torch.long), body], dim=1)


def file_window(model, path: str, start_text: str | None = None) -> torch.Tensor:
    """BOS + the first n_ctx − 1 tokens of a held-out file (from `start_text` on, if given): [1, n_ctx]."""
    tok = _text_model(model)
    files = dict(model.held_out)
    if path not in files:
        raise ValueError(f"{path!r} is not a held-out file; held out: {', '.join(sorted(files))}")
    text = files[path]
    if start_text is not None:
        at = text.find(start_text)
        if at < 0:
            raise ValueError(f"{start_text!r} does not occur in {path}")
        text = text[at:]
    ids = tok.encode(text)[:model.cfg.n_ctx - 1]
    return torch.cat([torch.tensor([BOS]), ids])[None]


def target_classes(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean masks [batch, n − 1] over the targets (the target of position p is token p + 1):

    * "copyable": the token at p occurred earlier in the window and was followed then by the same token as
      now, so an induction head could predict the target by copying;
    * "seen, other follower": the token at p occurred earlier, but never followed by this target;
    * "first occurrence": the token at p did not occur earlier (only the model's knowledge of the language
      can help).
    BOS is not an occurrence of anything."""
    cur, tgt = tokens[:, :-1], tokens[:, 1:]
    n = cur.shape[1]
    earlier = (cur[:, :, None] == cur[:, None, :]) & torch.ones(n, n, dtype=torch.bool).tril(-1)
    earlier[..., 0] = False
    same_follower = tgt[:, :, None] == tgt[:, None, :]
    copyable = (earlier & same_follower).any(-1)
    seen = earlier.any(-1)
    first = ~seen
    first[:, 0] = False                     # the target of BOS
    return {"copyable": copyable, "seen, other follower": seen & ~copyable, "first occurrence": first}


def loss_by_class(model, tokens: torch.Tensor, heads=(), method: str = "zero",
                  reference: torch.Tensor | None = None) -> dict[str, float]:
    """Mean loss (nats per token) on each class of `target_classes`, with `heads` ablated (none: clean) by
    `method` ("zero", or "mean" / "resample" over `reference`, other windows of the same shape)."""
    loss = per_position_loss_with(model, tokens, heads=heads, method=method, reference=reference)
    return {name: loss[mask].mean().item() for name, mask in target_classes(tokens).items()}


@torch.no_grad()
def repeated_passage(model, text: str = PASSAGE) -> dict[str, object]:
    """The passage twice, BOS + P + P (cut to fit the context): the loss on each token of each copy.

    Returns {"pieces": the passage's tokens, "first": loss [P − 1], "second": loss [P − 1]} for tokens
    2 … P of each copy (the first token of a copy cannot be predicted from the copy)."""
    tok = _text_model(model)
    p = tok.encode(text)[:(model.cfg.n_ctx - 1) // 2]
    P = len(p)
    x = torch.cat([torch.tensor([BOS]), p, p])[None]
    loss = metrics.per_position_loss(model(x), x)[0]
    return {"pieces": tok.pieces(p), "first": loss[1:P], "second": loss[P + 1:2 * P]}


def icl_from_losses(loss: torch.Tensor, early: float = 0.1, late: float = 0.9, width: float = 0.1) -> float:
    """Olsson et al.'s in-context-learning score from per-position losses [batch, n]: the mean loss over the
    targets within ±width/2 of `late` (as a fraction of the context) minus the same around `early`. Their
    score is the loss at token 500 minus token 50 of 512; averaging over neighbouring positions keeps its
    meaning and cuts the noise of a single position (width=0: their single positions)."""
    n = loss.shape[1]

    def band(centre):
        lo = max(0, round((centre - width / 2) * (n - 1)))
        hi = min(n, round((centre + width / 2) * (n - 1)) + 1)
        return loss[:, lo:hi].mean()

    return (band(late) - band(early)).item()


def icl_score(model, tokens: torch.Tensor, early: float = 0.1, late: float = 0.9, width: float = 0.1) -> float:
    """`icl_from_losses` of the model's per-position loss on `tokens` (e.g. held-out windows)."""
    with torch.no_grad():
        loss = metrics.per_position_loss(model(tokens), tokens)
    return icl_from_losses(loss, early, late, width)


@torch.no_grad()
def snapshot_curves(model, history, tokens: torch.Tensor, early: float = 0.1, late: float = 0.9,
                    width: float = 0.1) -> dict:
    """At every snapshot of `history`, on held-out `tokens`: the mean loss on each class of `target_classes`,
    Olsson's ICL score (`icl_from_losses`), and the best last-layer diagonal induction score on random repeats.

    Returns {"steps": [...], "icl": [...], "induction": [...], "loss": {class: [...]}} (lists, one entry per
    snapshot, in step order)."""
    if not history.snapshots:
        raise ValueError("this history has no snapshots: train with TrainConfig(snapshot_steps=...)")
    classes = target_classes(tokens)
    scratch = copy.deepcopy(model)
    out = {"steps": [], "icl": [], "induction": [], "loss": {name: [] for name in classes}}
    for step in sorted(history.snapshots):
        scratch.load_state_dict({k: v.float() for k, v in history.snapshots[step].items()})
        loss = metrics.per_position_loss(scratch(tokens), tokens)
        out["steps"].append(step)
        out["icl"].append(icl_from_losses(loss, early, late, width))
        out["induction"].append(diagonal_induction_scores(scratch)[-1].max().item())
        for name, mask in classes.items():
            out["loss"][name].append(loss[mask].mean().item())
    return out
