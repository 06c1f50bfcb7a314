"""Interventions: ablate heads, ablate one path of a head, patch activations between two runs.

All of them work through the model's hook points (`model.hooks`), so the weights are never touched and
the model is exactly itself again when a `with` block ends, also when it ends with an exception.

    with il.ablate(model, heads=[(1, 2)], method="zero"):
        logits = model(tokens)

Ablation methods (what replaces a head's output, [batch, pos, d_model]):
- "zero": nothing (the head is removed);
- "mean": its mean over a reference batch, at each position (keeps what the head always writes, removes
  what depends on the input; Olsson et al. 2022 and Wang et al. 2022 prefer it to zero);
- "resample": its output on another input, the reference batch (same shape as the input), position by
  position (Chan et al. 2022's causal scrubbing).

Path ablation (Elhage et al. 2021's composition, tested causally) removes a head's output from only one
input of the later heads: "k" (their keys: K-composition), "q" (queries) or "v" (values), leaving the other
paths and the direct path to the logits alone.
"""
from __future__ import annotations

import contextlib

import torch

from . import scores
from .circuits import check_head

ABLATION_METHODS = ("zero", "mean", "resample")
PATHS = ("q", "k", "v")


def check_heads(model, heads) -> list[tuple[int, int]]:
    """A list of (layer, head) pairs (one pair is accepted too), each checked by `circuits.check_head`."""
    if isinstance(heads, tuple) and len(heads) == 2 and not isinstance(heads[0], (tuple, list)):
        heads = [heads]
    try:
        pairs = [tuple(pair) for pair in heads]
    except TypeError:
        raise ValueError(f"heads must be a list of (layer, head) pairs, got {heads!r}") from None
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"heads must be a list of (layer, head) pairs, got {heads!r}")
    return [check_head(model, layer, head) for layer, head in pairs]


def _result_name(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_result"


@torch.no_grad()
def head_outputs(model, tokens: torch.Tensor, heads) -> dict[tuple[int, int], torch.Tensor]:
    """Each head's output on `tokens`: (layer, head) -> [batch, pos, d_model]."""
    heads = check_heads(model, heads)
    layers = {_result_name(layer) for layer, _ in heads}
    _, cache = model.run_with_cache(tokens, names=lambda n: n in layers)
    return {(layer, head): cache.result(layer)[:, :, head] for layer, head in heads}


@torch.no_grad()
def head_activity(model, tokens: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """How active each head is on `tokens` [batch, pos] (BOS at position 0; default: the held-out layout),
    measured over the positions after BOS: name -> [n_layers, n_heads].

        "output norm": the mean norm of the head's output (what it writes into the residual stream);
        "attention on BOS": the mean attention its queries put on BOS.

    What a control for ablation is worth: a head that parks its attention on BOS and writes next to
    nothing changes nothing when removed, whatever the hypothesis says about it.
    """
    tokens = scores.eval_tokens(model) if tokens is None else model.check_tokens(tokens)
    if tokens.shape[1] < 2:
        raise ValueError(f"need at least 2 positions (BOS and one after it), got {tokens.shape[1]}")
    _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith(("hook_result", "hook_pattern")))
    layers = range(model.cfg.n_layers)
    return {"output norm": torch.stack([cache.result(l)[:, 1:].norm(dim=-1).mean((0, 1)) for l in layers]),
            "attention on BOS": torch.stack([cache.pattern(l)[:, :, 1:, 0].mean((0, 2)) for l in layers])}


class _Replacement:
    """What stands in for a head's output under one ablation method."""

    def __init__(self, model, heads, method: str, reference):
        if method not in ABLATION_METHODS:
            raise ValueError(f"method must be one of {ABLATION_METHODS}, got {method!r}")
        self.method = method
        if method == "zero":
            self.values = {}
            return
        if reference is None:
            raise ValueError(f"method={method!r} needs reference tokens [batch, pos], e.g. "
                             f"reference=il.scores.eval_tokens(model, seed=1)")
        reference = model.check_tokens(reference)
        outputs = head_outputs(model, reference, heads)
        self.values = {k: (v.mean(dim=0) if method == "mean" else v) for k, v in outputs.items()}

    def __call__(self, key, current: torch.Tensor) -> torch.Tensor:
        """The replacement for `current` [batch, pos, d_model], the output of head `key`."""
        if self.method == "zero":
            return torch.zeros_like(current)
        value = self.values[key]
        if self.method == "mean":
            if current.shape[1] > value.shape[0]:
                raise ValueError(f"mean ablation: the input has {current.shape[1]} positions but the reference "
                                 f"only {value.shape[0]}; use a reference at least as long")
            return value[:current.shape[1]].expand_as(current)
        if value.shape != current.shape:
            raise ValueError(f"resample ablation: the reference must have the input's shape [batch, pos] = "
                             f"{list(current.shape[:2])}, got {list(value.shape[:2])}")
        return value


@contextlib.contextmanager
def ablate(model, heads, method: str = "zero", reference: torch.Tensor | None = None):
    """Run the block with `heads` [(layer, head), ...] ablated: each head's output
    (hook_result) is replaced by zero, its mean over `reference` at each position,
    or its output on `reference`."""
    heads = check_heads(model, heads)
    replace = _Replacement(model, heads, method, reference)

    def hook(layer):
        def fn(result):  # [batch, pos, head, d_model]
            result = result.clone()
            for l, h in heads:
                if l == layer:
                    result[:, :, h] = replace((l, h), result[:, :, h])
            return result
        return fn

    layers = sorted({l for l, _ in heads})
    with model.hooks([(_result_name(layer), hook(layer)) for layer in layers]):
        yield model


@contextlib.contextmanager
def ablate_path(model, heads, path: str = "k", method: str = "zero", reference: torch.Tensor | None = None,
                layers=None):
    """Run the block with `heads`' outputs removed from one input path of later layers' attention only.

    path: "k" (keys: K-composition), "q" (queries) or "v" (values). In each receiving layer (default:
    every layer after the head's own) the `hook_{path}_input` residual gets the head's output subtracted
    and the replacement (zero, mean or resample, as in `ablate`) added. The head's other paths, its
    direct effect on the logits, and the receiving heads' other inputs are untouched.
    """
    heads = check_heads(model, heads)
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    n_layers = model.cfg.n_layers
    for layer, head in heads:
        if layer == n_layers - 1:
            raise ValueError(f"head ({layer}, {head}) is in the last layer (layers are 0..{n_layers - 1}): "
                             f"no later attention reads it")
    lowest = min(layer for layer, _ in heads)
    receivers = list(range(lowest + 1, n_layers)) if layers is None else list(layers)
    for r in receivers:
        if not (isinstance(r, int) and lowest < r < n_layers):
            raise ValueError(f"receiving layers must be integers in ({lowest}, {n_layers}), got {r!r}")
    replace = _Replacement(model, heads, method, reference)
    outputs: dict[tuple[int, int], torch.Tensor] = {}

    def record(layer):
        def fn(result):  # read only: returns None, so the forward pass goes on unchanged
            for l, h in heads:
                if l == layer:
                    outputs[(l, h)] = result[:, :, h]
        return fn

    def remove(receiver):
        def fn(resid):  # [batch, pos, d_model]
            for key in heads:
                if key[0] < receiver:
                    resid = resid - outputs[key] + replace(key, outputs[key])
            return resid
        return fn

    hooks = [(_result_name(layer), record(layer)) for layer in sorted({l for l, _ in heads})]
    hooks += [(f"blocks.{r}.attn.hook_{path}_input", remove(r)) for r in receivers]
    with model.hooks(hooks):
        yield model


def ablated(model, heads=(), method: str = "zero", reference: torch.Tensor | None = None,
            path: str | None = None):
    """The context in which `heads` are ablated: their whole output (path=None, `ablate`) or only their
    `path` ("q", "k", "v") into later layers (`ablate_path`); no heads: the clean model."""
    heads = check_heads(model, heads) if len(heads) else []
    if not heads:
        return contextlib.nullcontext()
    if path is None:
        return ablate(model, heads, method, reference)
    return ablate_path(model, heads, path, method, reference)


@torch.no_grad()
def per_position_loss_with(model, tokens: torch.Tensor, heads=(), method: str = "zero",
                           reference: torch.Tensor | None = None, path: str | None = None) -> torch.Tensor:
    """Per-position loss [batch, pos - 1] (see `scores.per_position_loss`) with `heads` ablated:
    their whole output (path=None) or only their `path` ("q", "k", "v") into later layers.
    With heads=() it is the clean model's loss."""
    tokens = model.check_tokens(tokens)
    with ablated(model, heads, method, reference, path):
        logits = model(tokens)
    return scores.per_position_loss(logits, tokens)


@torch.no_grad()
def induction_attention_with(model, tokens: torch.Tensor, heads=(), method: str = "zero",
                             reference: torch.Tensor | None = None, path: str | None = None,
                             layer: int = 1) -> torch.Tensor:
    """`scores.induction_attention` (every head of `layer`: attention from each query to the positions
    right after the earlier occurrences of its token, [batch, head, query]) with `heads` ablated as in
    `per_position_loss_with`: their whole output (path=None) or only their `path` into later layers.
    It says which later head lost its match when a head or a path is removed."""
    tokens = model.check_tokens(tokens)
    with ablated(model, heads, method, reference, path):
        return scores.induction_attention(model, tokens, layer=layer)


@torch.no_grad()
def head_ablation_effects(model, tokens: torch.Tensor | None = None, method: str = "zero",
                          reference: torch.Tensor | None = None, path: str | None = None,
                          regions: dict[str, slice] | None = None) -> dict[str, torch.Tensor]:
    """Ablate each head alone; the change in mean loss on each region: name -> [n_layers, n_heads] (nats).

    Default: the held-out layout (`scores.eval_tokens`) and its regions ("first half", "repeated half",
    `scores.eval_regions`). With `path`, heads of the last layer (which have no such path) get NaN."""
    tokens = scores.eval_tokens(model) if tokens is None else model.check_tokens(tokens)
    regions = scores.eval_regions(model) if regions is None else regions
    clean = per_position_loss_with(model, tokens)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    effects = {name: torch.full((n_layers, n_heads), float("nan")) for name in regions}
    for layer in range(n_layers - (path is not None)):
        for head in range(n_heads):
            loss = per_position_loss_with(model, tokens, [(layer, head)], method, reference, path)
            for name, where in regions.items():
                effects[name][layer, head] = (loss[:, where].mean() - clean[:, where].mean()).item()
    return effects


# ---------------------------------------------------------------- activation patching


def corrupt_earlier_copy(tokens: torch.Tensor, start: int, length: int, vocab: int, seed: int = 0) -> torch.Tensor:
    """A copy of `tokens` with positions [start, start + length) replaced by other random ordinary tokens
    (each differs from the one it replaces): corrupt the first copy of BOS + prefix + r + r and the second
    copy has nothing to match."""
    n = tokens.shape[-1]
    if not (isinstance(start, int) and isinstance(length, int) and 0 <= start and length >= 1 and start + length <= n):
        raise ValueError(f"need 0 <= start and start + length <= {n} (the sequence length), "
                         f"got start={start}, length={length}")
    g = torch.Generator().manual_seed(seed)
    out = tokens.clone()
    old = tokens[..., start:start + length]
    shift = torch.randint(1, vocab - 1, old.shape, generator=g)      # a nonzero step around 1..vocab-1
    out[..., start:start + length] = (old - 1 + shift) % (vocab - 1) + 1
    return out


@torch.no_grad()
def corruption_damage(model, clean: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """How much the loss rises when the model reads `corrupted` instead of `clean`: [batch, pos - 1] in nats
    (entry p: predicting token p + 1, as `scores.per_position_loss`). Where the corruption changed the
    target itself the two losses are about different tokens and cannot be compared: NaN there."""
    clean, corrupted = model.check_tokens(clean), model.check_tokens(corrupted)
    if clean.shape != corrupted.shape:
        raise ValueError(f"clean and corrupted must have the same shape, got {tuple(clean.shape)} and "
                         f"{tuple(corrupted.shape)}")
    damage = per_position_loss_with(model, corrupted) - per_position_loss_with(model, clean)
    return damage.masked_fill(clean[:, 1:] != corrupted[:, 1:], float("nan"))


def corruption_masks(corrupted: torch.Tensor, position: int, half_len: int,
                     prefix_len: int) -> dict[str, torch.Tensor]:
    """Where the induction circuit says the loss rises when the token at `position` (c) of the first copy of
    BOS + prefix + r + r (|r| = half_len = L) is corrupted, and where it says nothing moves: name ->
    [batch, pos - 1] boolean mask, indexed like `scores.per_position_loss` (entry p predicts token p + 1).

        "predicted": c + L - 1 (its induction head copies the corrupted token from c) and c + L (its
            query finds no key: the one at c + 1 now has the corrupted token as its previous token);
        "chance repeats": queries of the repeated half (p >= 1 + prefix + L) that hold the new token of
            c by chance: they match the key at c + 1 as well as their own;
        "elsewhere": the rest of the repeated half.
    """
    n = 1 + prefix_len + 2 * half_len
    if corrupted.dim() != 2 or corrupted.shape[1] != n:
        raise ValueError(f"corrupted must be [batch, 1 + prefix_len + 2 * half_len] = [batch, {n}], "
                         f"got shape {tuple(corrupted.shape)}")
    first, second = 1 + prefix_len, 1 + prefix_len + half_len
    if not (isinstance(position, int) and first <= position < second - 1):
        raise ValueError(f"position must be an integer in [{first}, {second - 1}) (the first copy but its last "
                         f"token, so that c + L is still predicted), got {position!r}")
    p = torch.arange(n - 1).repeat(corrupted.shape[0], 1)
    repeated = p >= second
    predicted = (p == position + half_len - 1) | (p == position + half_len)
    repeats = repeated & (corrupted[:, :-1] == corrupted[:, position, None])
    return {"predicted": predicted, "chance repeats": repeats, "elsewhere": repeated & ~predicted & ~repeats}


@torch.no_grad()
def patch_heads(model, clean: torch.Tensor, corrupted: torch.Tensor, metric=None,
                positions=None, chunk: int = 16) -> torch.Tensor:
    """Activation patching, per head and per position: run `corrupted` with one head's output at one
    position taken from the `clean` run, and report how much of the clean behaviour comes back:

        (metric(patched) - metric(corrupted)) / (metric(clean) - metric(corrupted))

    -> [n_layers, n_heads, pos] (1 = fully restored, 0 = no effect; positions not tried are NaN).
    metric(logits) -> float; default: minus the mean loss of predicting the clean tokens at the positions
    whose target is the same in both inputs (for a corrupted first copy: everything after it).
    `chunk` positions are patched in one batched forward pass (one copy of the input each).
    """
    clean, corrupted = model.check_tokens(clean), model.check_tokens(corrupted)
    if clean.shape != corrupted.shape:
        raise ValueError(f"clean and corrupted must have the same shape, got {tuple(clean.shape)} and "
                         f"{tuple(corrupted.shape)}")
    n_layers, n_heads, n = model.cfg.n_layers, model.cfg.n_heads, clean.shape[1]
    if metric is None:
        same = clean[:, 1:] == corrupted[:, 1:]

        def metric(logits):
            return -scores.per_position_loss(logits, clean)[same].mean().item()

    positions = range(n) if positions is None else positions
    for p in positions:
        if not (isinstance(p, int) and 0 <= p < n):
            raise ValueError(f"positions must be integers in [0, {n}) (the sequence length), got {p!r}")
    clean_outputs = head_outputs(model, clean, [(l, h) for l in range(n_layers) for h in range(n_heads)])
    m_clean, m_corrupt = metric(model(clean)), metric(model(corrupted))
    if abs(m_clean - m_corrupt) < 1e-9:
        raise ValueError("the metric is the same on the clean and the corrupted input: nothing to restore")
    out = torch.full((n_layers, n_heads, n), float("nan"))
    positions, b = list(positions), clean.shape[0]
    for layer in range(n_layers):
        for head in range(n_heads):
            value = clean_outputs[(layer, head)]
            for i in range(0, len(positions), chunk):  # one forward pass patches `chunk` positions, one per copy
                where = positions[i:i + chunk]
                rows = torch.arange(len(where) * b)
                cols = torch.tensor(where).repeat_interleave(b)

                def patch(result, head=head, rows=rows, cols=cols, value=value.repeat(len(where), 1, 1)):
                    result = result.clone()
                    result[rows, cols, head] = value[rows, cols]
                    return result
                with model.hooks([(_result_name(layer), patch)]):
                    logits = model(corrupted.repeat(len(where), 1))
                for k, p in enumerate(where):
                    out[layer, head, p] = (metric(logits[k * b:(k + 1) * b]) - m_corrupt) / (m_clean - m_corrupt)
    return out


def prediction_metric(clean: torch.Tensor, position: int):
    """A metric for `patch_heads`: minus the mean loss (nats) of predicting clean token position + 1 at
    `position` alone. The default metric pools every prediction; this one asks which activation a single
    prediction needs, so that two broken predictions can be told apart."""
    n = clean.shape[-1]
    if not (isinstance(position, int) and 0 <= position < n - 1):
        raise ValueError(f"position must be an integer in [0, {n - 1}) (a prediction of the next token), "
                         f"got {position!r}")

    def metric(logits):
        return -scores.per_position_loss(logits, clean)[:, position].mean().item()
    return metric


@torch.no_grad()
def repaired_share(model, clean: torch.Tensor, corrupted: torch.Tensor, patched_logits: torch.Tensor,
                   position: int) -> float:
    """The share of the damage at one prediction that a patched run repairs, from its logits:

        (loss(corrupted) - loss(patched)) / (loss(corrupted) - loss(clean))

    at `position` (predicting clean token position + 1, mean over the batch): 1 = the clean prediction is
    back, 0 = the patch changed nothing. For a patch made by hand (`run_with_hooks`); `repair_at` makes
    the patch for one head and position itself."""
    clean, corrupted = model.check_tokens(clean), model.check_tokens(corrupted)
    minus_loss = prediction_metric(clean, position)
    patched = -minus_loss(patched_logits)
    l_clean, l_corrupt = -minus_loss(model(clean)), -minus_loss(model(corrupted))
    if abs(l_corrupt - l_clean) < 1e-9:
        raise ValueError(f"the loss at position {position} is the same on the clean and the corrupted input: "
                         f"nothing to repair")
    return (l_corrupt - patched) / (l_corrupt - l_clean)


def repair_at(model, clean: torch.Tensor, corrupted: torch.Tensor, prediction: int, head,
              position: int) -> float:
    """The share of the damage at the prediction made at `prediction` that `head`'s clean output at
    `position` repairs (`patch_heads` with `prediction_metric`, at that one position). It says which
    activation carried the information a single broken prediction lost."""
    layer, h = check_head(model, *head)
    restored = patch_heads(model, clean, corrupted, metric=prediction_metric(clean, prediction),
                           positions=[position])
    return restored[layer, h, position].item()


def patching_peaks(restored: torch.Tensor) -> dict[tuple[int, int], tuple[int, float]]:
    """Where each head's patch repairs most, from `patch_heads`' result [n_layers, n_heads, pos]:
    (layer, head) -> (position, share) of its largest share in absolute value (positions not tried, NaN,
    count as 0). One line per head instead of a whole row of shares."""
    if restored.dim() != 3:
        raise ValueError(f"restored must be [n_layers, n_heads, pos] (patch_heads' result), "
                         f"got shape {tuple(restored.shape)}")
    peaks = {}
    for layer in range(restored.shape[0]):
        for head in range(restored.shape[1]):
            row = restored[layer, head].nan_to_num()
            p = int(row.abs().argmax())
            peaks[layer, head] = (p, row[p].item())
    return peaks
