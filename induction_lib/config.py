"""Configuration dataclasses for the model and for training.

Both are frozen and validated on construction, so a bad value fails where it is written,
with a message that names the field, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

POSITIONAL_SCHEMES = ("shortformer", "standard")
POS_EMBEDS = ("learned", "sinusoidal")
LOSS_ON = ("all", "induction", "balanced")
SCHEDULES = ("constant", "cosine", "cooldown")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _positive_int(obj, name: str) -> None:
    value = getattr(obj, name)
    _check(isinstance(value, int) and not isinstance(value, bool) and value > 0,
           f"{type(obj).__name__}.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of an attention-only transformer (optionally with MLPs). The defaults are the book's model.

    positional: "shortformer" adds the position embedding only to the inputs of the queries and
    keys (Press et al. 2021; Olsson et al. 2022's toy models), "standard" adds it to the residual
    stream once, as GPT-2 does. pos_embed: "learned" (a trained W_pos) or "sinusoidal" (fixed sines and
    cosines, Vaswani et al. 2017: "one position back" is the same rotation at every position, so a
    previous-token head works even at positions that training never uses as keys). smeared_keys: every key mixes in the previous position's key with a
    learned per-head weight (Olsson et al. 2022, argument 2). d_mlp = 0 means attention-only.
    """

    d_vocab: int = 64
    n_ctx: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    d_head: int = 32
    positional: str = "shortformer"
    pos_embed: str = "sinusoidal"
    layernorm: bool = False
    smeared_keys: bool = False
    d_mlp: int = 0

    def __post_init__(self):
        for name in ("d_vocab", "n_ctx", "d_model", "n_layers", "n_heads", "d_head"):
            _positive_int(self, name)
        _check(self.d_vocab >= 2, f"ModelConfig.d_vocab must be at least 2 (BOS + one token), got {self.d_vocab}")
        _check(self.positional in POSITIONAL_SCHEMES,
               f"ModelConfig.positional must be one of {POSITIONAL_SCHEMES}, got {self.positional!r}")
        _check(self.pos_embed in POS_EMBEDS,
               f"ModelConfig.pos_embed must be one of {POS_EMBEDS}, got {self.pos_embed!r}")
        _check(isinstance(self.d_mlp, int) and self.d_mlp >= 0,
               f"ModelConfig.d_mlp must be an integer >= 0 (0 = attention-only), got {self.d_mlp!r}")
        for name in ("layernorm", "smeared_keys"):
            _check(isinstance(getattr(self, name), bool),
                   f"ModelConfig.{name} must be True or False, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser settings, length, what the loss is taken on, what is recorded.

    loss_on: "all" = next-token loss on every position (the honest language-model loss, whose curve
    shows the plateau and the drop); "induction" = only on the positions that copying can predict
    (the heads form about ten times sooner, but the other positions are never trained and their
    predictions are arbitrary); "balanced" = copy_weight x the mean over copy-predictable positions +
    (1 - copy_weight) x the mean over the rest (heads form almost as soon, and the rest learns the
    chance prediction). eval_every: steps between history records.
    snapshot_steps: steps at which a copy of the weights is kept (for scrubbing through training).
    threads: torch threads while training (None = leave torch's setting alone).
    The defaults are the book's recipe (zoo "induction-2l", which adds its snapshot steps and one thread).
    schedule: learning rate after a linear warm-up: "constant"; "cosine" decay to 10% at the end; or
    "cooldown": constant, then a linear decay to zero over the last fifth of the steps (the first
    four fifths do not depend on the run's length, so a longer run continues a shorter one).
    """

    steps: int = 2500
    batch_size: int = 32
    lr: float = 1e-2
    weight_decay: float = 0.01
    warmup_steps: int = 50
    schedule: str = "cosine"
    loss_on: str = "balanced"
    copy_weight: float = 0.725
    seed: int = 0
    eval_every: int = 25
    eval_batch: int = 32
    snapshot_steps: tuple = ()
    threads: int | None = None
    stop_when_formed: bool = False

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "eval_batch"):
            _positive_int(self, name)
        _check(isinstance(self.warmup_steps, int) and self.warmup_steps >= 0,
               f"TrainConfig.warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        _check(isinstance(self.lr, (int, float)) and self.lr > 0, f"TrainConfig.lr must be > 0, got {self.lr!r}")
        _check(isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0,
               f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        _check(self.schedule in SCHEDULES,
               f"TrainConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _check(isinstance(self.copy_weight, (int, float)) and 0 < self.copy_weight < 1,
               f"TrainConfig.copy_weight must be in (0, 1), got {self.copy_weight!r}")
        _check(self.loss_on in LOSS_ON, f"TrainConfig.loss_on must be one of {LOSS_ON}, got {self.loss_on!r}")
        _check(isinstance(self.seed, int), f"TrainConfig.seed must be an integer, got {self.seed!r}")
        _check(self.threads is None or (isinstance(self.threads, int) and self.threads > 0),
               f"TrainConfig.threads must be None or a positive integer, got {self.threads!r}")
        steps = tuple(self.snapshot_steps)
        _check(all(isinstance(s, int) and 0 <= s <= self.steps for s in steps),
               f"TrainConfig.snapshot_steps must be integers in [0, steps={self.steps}], got {steps!r}")
        object.__setattr__(self, "snapshot_steps", tuple(sorted(set(steps))))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["snapshot_steps"] = list(self.snapshot_steps)
        return d


def stable_hash(obj) -> str:
    """A short hash of a JSON-able object, stable across runs and machines."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
