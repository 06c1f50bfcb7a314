"""Training: determinism, history, snapshots, the schedule. (What the default recipe gives: test_recipe.py.)"""
import math

import pytest
import torch

import induction_lib as il
from induction_lib.config import ModelConfig, TrainConfig
from induction_lib.train import lr_factor, train

TINY = ModelConfig(d_vocab=16, n_ctx=24, d_model=16, n_layers=2, n_heads=2, d_head=8)


def tiny_run(seed=0, **kw):
    data = il.RepeatedSegments(TINY.d_vocab, TINY.n_ctx, min_len=3, max_len=8)
    cfg = TrainConfig(steps=30, batch_size=8, eval_every=10, eval_batch=4, seed=seed, snapshot_steps=(0, 20), **kw)
    return train(TINY, cfg, data, progress=False)


def test_same_seed_same_history_exactly():
    (m1, h1), (m2, h2) = tiny_run(seed=3), tiny_run(seed=3)
    assert h1.every_step_loss == h2.every_step_loss
    for a, b in zip(h1.induction + h1.prev_token, h2.induction + h2.prev_token):
        assert torch.equal(a, b)
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    _, h3 = tiny_run(seed=4)
    assert h3.every_step_loss != h1.every_step_loss


def test_history_records_and_snapshots():
    model, h = tiny_run()
    assert h.steps == [0, 10, 20, 30]
    assert len(h.every_step_loss) == 31 and len(h.train_loss) == len(h.repeat_loss) == len(h.icl) == 4
    assert h.prev_token[0].shape == h.induction[0].shape == (2, 2)
    assert sorted(h.snapshots) == [0, 20]
    restored = il.Transformer(TINY)
    restored.load_state_dict(h.snapshots[20])
    assert not torch.equal(restored.W_E, model.W_E)  # the snapshot is a copy, not the live weights
    restored.load_state_dict(h.snapshots[0])
    back = il.History.from_dict(h.to_dict())
    assert back.steps == h.steps and back.every_step_loss == h.every_step_loss


def test_lr_schedule():
    cfg = TrainConfig(steps=100, warmup_steps=10, schedule="cosine")
    assert lr_factor(cfg, 0) == pytest.approx(0.1) and lr_factor(cfg, 9) == pytest.approx(1.0)
    assert lr_factor(cfg, 10) == pytest.approx(1.0) and lr_factor(cfg, 100) == pytest.approx(0.1)
    assert lr_factor(TrainConfig(steps=100, warmup_steps=10, schedule="constant"), 70) == 1.0


def test_cooldown_schedule_continues_a_shorter_run():
    """"cooldown": flat until the last fifth, then linear to zero; its flat part ignores the length."""
    short, long = (TrainConfig(steps=n, warmup_steps=10, schedule="cooldown") for n in (100, 1000))
    assert [lr_factor(short, s) for s in (0, 9, 50, 80)] == pytest.approx([0.1, 1.0, 1.0, 1.0])
    assert [lr_factor(short, s) for s in (90, 99)] == pytest.approx([0.5, 0.05])
    assert all(lr_factor(short, s) == lr_factor(long, s) for s in range(80))
    assert all(lr_factor(short, s) > lr_factor(short, s + 1) for s in range(80, 99))


def test_formed_definition():
    ind = torch.tensor([[0.9, 0.0], [0.4, 0.6]])
    assert il.formed(ind, 0.1 * math.log(63) - 1e-6, 64)
    assert not il.formed(ind, 0.1 * math.log(63) + 1e-3, 64)           # loss too high
    assert not il.formed(torch.tensor([[0.9, 0.9], [0.4, 0.49]]), 0.0, 64)  # layer 0 does not count
