"""Training from scratch on the CPU: AdamW, a progress bar, a history of what the heads do.

`train(model_cfg, train_cfg, data)` returns the trained model and a `History`. With the same seed
on the same machine and thread count, the history is the same, number for number.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import ModelConfig, TrainConfig
from .data import RepeatedSegments
from .model import Transformer
from . import metrics


@dataclass
class History:
    """What was recorded during training, one entry per evaluation step.

    train_loss: the training objective at that step (mean over the batch).
    repeat_loss / first_half_loss: loss on the predictable part of the held-out repeat (the second
    copy, after its first token) and on the first copy. icl: in-context-learning score on held-out
    draws from the training distribution (loss at late minus early position, see `icl_positions`).
    prev_token / induction: [n_records, n_layers, n_heads] head scores on held-out repeats.
    snapshots: {step: state_dict} for the steps asked for. formed_step: first step that met `formed`.
    """

    steps: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    repeat_loss: list = field(default_factory=list)
    first_half_loss: list = field(default_factory=list)
    icl: list = field(default_factory=list)
    prev_token: list = field(default_factory=list)
    induction: list = field(default_factory=list)
    every_step_loss: list = field(default_factory=list)
    snapshots: dict = field(default_factory=dict)
    formed_step: int | None = None
    formed_seconds: float | None = None
    seconds: float = 0.0
    icl_positions: tuple = (0, 0)

    def tensors(self) -> dict:
        """The per-record series as tensors (steps, losses, [n, layers, heads] scores)."""
        return {"steps": torch.tensor(self.steps), "train_loss": torch.tensor(self.train_loss),
                "repeat_loss": torch.tensor(self.repeat_loss), "first_half_loss": torch.tensor(self.first_half_loss),
                "icl": torch.tensor(self.icl), "prev_token": torch.stack(self.prev_token),
                "induction": torch.stack(self.induction), "every_step_loss": torch.tensor(self.every_step_loss)}

    def to_dict(self) -> dict:
        """Plain tensors and numbers only (safe for `torch.load(weights_only=True)`)."""
        d = self.tensors()
        d.update(snapshots=self.snapshots, formed_step=self.formed_step, formed_seconds=self.formed_seconds,
                 seconds=self.seconds, icl_positions=list(self.icl_positions))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        h = cls(steps=d["steps"].tolist(), train_loss=d["train_loss"].tolist(), repeat_loss=d["repeat_loss"].tolist(),
                first_half_loss=d["first_half_loss"].tolist(), icl=d["icl"].tolist(),
                prev_token=list(d["prev_token"]), induction=list(d["induction"]),
                every_step_loss=d["every_step_loss"].tolist(), snapshots={step: {k: v.float() for k, v in sd.items()}
                                                                        for step, sd in d["snapshots"].items()},
                formed_step=d["formed_step"], formed_seconds=d["formed_seconds"], seconds=d["seconds"],
                icl_positions=tuple(d["icl_positions"]))
        return h


def formed(induction: torch.Tensor, repeat_loss: float, d_vocab: int) -> bool:
    """Has an induction head formed? The definition used everywhere in the book and the benchmark:
    the best induction score in the last layer >= 0.5 on held-out repeats (a length and offset the
    model never trained on), AND the loss on the repeated half <= 10% of the chance loss ln(d_vocab - 1)
    (a uniform guess over the ordinary tokens: BOS is never a target).
    """
    return bool(induction[-1].max() >= 0.5 and repeat_loss <= 0.1 * math.log(d_vocab - 1))


def objective(losses: torch.Tensor, mask: torch.Tensor, loss_on: str,
              copy_weight: float = 0.5) -> torch.Tensor:
    """The training loss from per-target losses [batch, pos-1] and the copy-predictable
    mask."""
    if loss_on == "all":
        return losses.mean()
    if loss_on == "induction":
        return losses[mask].mean()
    return copy_weight * losses[mask].mean() + (1 - copy_weight) * losses[~mask].mean()


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Learning-rate multiplier at `step`: linear warm-up, then constant, cosine decay to 0.1, or a
    linear cool-down to 0 over the last fifth of the steps."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cooldown":
        cooldown = max(1, cfg.steps // 5)
        return min(1.0, (cfg.steps - step) / cooldown)
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with n torch threads (None: leave the setting alone)."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Evaluator:
    """Fixed held-out inputs and the measurements taken on them during training."""

    def __init__(self, model_cfg: ModelConfig, data, batch: int, seed: int):
        half, prefix = metrics.eval_layout(model_cfg)
        self.start, self.half = 1 + prefix, half
        self.repeats = metrics.eval_tokens(model_cfg, batch, half, prefix, seed=metrics.EVAL_SEED + seed)
        g = torch.Generator().manual_seed(metrics.EVAL_SEED + 1 + seed)
        self.icl_tokens, _ = data.sample(batch, g)
        n = model_cfg.n_ctx - 1
        self.icl_positions = (max(0, n // 10), n - 1)  # early and late target positions (10% and the last)

    @torch.no_grad()
    def __call__(self, model) -> dict:
        logits, cache = model.run_with_cache(self.repeats, names=lambda n: n.endswith("hook_pattern"))
        loss = metrics.per_position_loss(logits, self.repeats)
        s, L = self.start, self.half
        patterns = [cache.pattern(layer) for layer in range(model.cfg.n_layers)]
        icl_loss = metrics.per_position_loss(model(self.icl_tokens), self.icl_tokens)
        return {"repeat_loss": loss[:, s + L: s + 2 * L - 1].mean().item(),
                "first_half_loss": loss[:, s: s + L - 1].mean().item(),
                "icl": metrics.icl_score(icl_loss, *self.icl_positions),
                "prev_token": torch.stack([metrics.previous_token_score_from_pattern(p) for p in patterns]),
                "induction": torch.stack([metrics.diagonal_induction_score_from_pattern(p, L, s) for p in patterns])}


def default_data(model_cfg: ModelConfig) -> RepeatedSegments:
    return RepeatedSegments(vocab=model_cfg.d_vocab, n_ctx=model_cfg.n_ctx)


def train(model_cfg: ModelConfig, train_cfg: TrainConfig, data=None, progress: bool = True,
          desc: str = "training") -> tuple[Transformer, History]:
    """Train a fresh model; return (model, history). `data` has .sample(batch, generator) ->
    (tokens, mask); default: `RepeatedSegments` for the model's vocabulary and context."""
    data = default_data(model_cfg) if data is None else data
    with torch_threads(train_cfg.threads):
        torch.manual_seed(train_cfg.seed)
        model = Transformer(model_cfg)
        gen = torch.Generator().manual_seed(train_cfg.seed)
        evaluator = Evaluator(model_cfg, data, train_cfg.eval_batch, train_cfg.seed)
        opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay,
                                betas=(0.9, 0.99))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(train_cfg, s))
        hist = History(icl_positions=evaluator.icl_positions)
        start = time.perf_counter()
        bar = tqdm(total=train_cfg.steps, desc=desc, unit="step", disable=not progress, mininterval=0.5)
        for step in range(train_cfg.steps + 1):
            # the loss at step s is measured on batch s before update s, so step 0 is the untrained model
            tokens, mask = data.sample(train_cfg.batch_size, gen)
            logits = model(tokens)[:, :-1]
            loss_all = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
            loss = objective(loss_all, mask, train_cfg.loss_on, train_cfg.copy_weight)
            hist.every_step_loss.append(loss.item())
            if step % train_cfg.eval_every == 0 or step == train_cfg.steps:
                m = evaluator(model)
                hist.steps.append(step)
                hist.train_loss.append(hist.every_step_loss[-1])
                for key in ("repeat_loss", "first_half_loss", "icl", "prev_token", "induction"):
                    getattr(hist, key).append(m[key])
                best = m["induction"][-1].max().item()
                bar.set_postfix(loss=f"{hist.train_loss[-1]:.3f}", induction=f"{best:.2f}", refresh=False)
                if hist.formed_step is None and formed(m["induction"], m["repeat_loss"], model_cfg.d_vocab):
                    hist.formed_step, hist.formed_seconds = step, time.perf_counter() - start
                    if train_cfg.stop_when_formed:
                        break
            if step in train_cfg.snapshot_steps:
                hist.snapshots[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if step == train_cfg.steps:
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
        if bar.n < train_cfg.steps:  # an early stop (stop_when_formed) is a success: show a full bar
            bar.total = bar.n
            if hasattr(bar, "container"):  # tqdm.notebook draws an ipywidgets bar whose max is set apart
                bar.container.children[1].max = max(bar.n, 1)
        bar.close()
        hist.seconds = time.perf_counter() - start
    model.eval()
    return model, hist
