"""Training: determinism, history, snapshots, and the central claim (induction heads form)."""
import math

import pytest
import torch

import induction_lib as il
from induction_lib import scores
from induction_lib.config import ModelConfig, TrainConfig
from induction_lib.train import lr_factor, train
from induction_lib.zoo import RECIPES, make_data

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
    assert lr_factor(TrainConfig(steps=100, warmup_steps=10), 70) == 1.0


def test_formed_definition():
    ind = torch.tensor([[0.9, 0.0], [0.4, 0.6]])
    assert il.formed(ind, 0.1 * math.log(64) - 1e-6, 64)
    assert not il.formed(ind, 0.1 * math.log(64) + 1e-3, 64)           # loss too high
    assert not il.formed(torch.tensor([[0.9, 0.9], [0.4, 0.49]]), 0.0, 64)  # layer 0 does not count


def test_default_recipe_forms_induction_heads():
    """The central claim: training the default recipe from scratch forms a previous-token head in
    layer 0 and an induction head in layer 1, measured on held-out repeats (a block length and an
    offset the training data never has) — not a positional shortcut."""
    recipe = RECIPES["induction-2l"]
    model, hist = train(recipe.model, recipe.train, make_data(recipe.data, recipe.model), progress=False)
    assert hist.formed_step is not None and hist.formed_step < recipe.train.steps
    ind = scores.diagonal_induction_scores(model)
    prev = scores.previous_token_scores(model)
    assert ind[1].max() >= 0.8, ind
    assert prev[0].max() >= 0.8, prev  # measured 0.88 (seed 0; 0.85-0.88 over seeds 0-4)
    # before the transition there is no induction head: the drop is a phase change, not a slope
    assert hist.induction[0][1].max() < 0.1

    def copy_and_first_loss(prefix, half):
        tokens = il.repeated_tokens(64, half, model.cfg.d_vocab, seed=99, prefix_len=prefix, distinct=True)
        loss = scores.per_position_loss(model(tokens), tokens)
        start = 1 + prefix
        return (loss[:, start + half: start + 2 * half - 1].mean().item(),
                loss[:, start: start + half - 1].mean().item())

    # The shortcut test: other offsets and lengths than training or the held-out layout. Repeats of
    # 20+ tokens are copied at every offset tried (measured copy loss 0.13-0.32 nats, seed 0, 64 rows).
    for prefix, half in [(0, 20), (3, 25), (10, 20), (20, 20), (0, 30), (15, 24)]:
        copy, first = copy_and_first_loss(prefix, half)
        assert copy < 0.1 * math.log(64), (prefix, half, copy)
        assert first > 0.95 * math.log(63), (prefix, half, first)  # the first copy stays at chance
    # Shorter repeats are copied worse (measured 0.49-0.72 nats for 12-16 tokens): short distances between
    # the copies are rare in training. Still far better than chance, and late in the context too
    # (prefix 40-50: measured 0.30-0.41 nats; the previous-token head works up to position 57):
    for prefix, half in [(5, 12), (0, 16), (30, 16), (40, 10), (45, 8), (50, 6)]:
        copy, _ = copy_and_first_loss(prefix, half)
        assert copy < 0.3 * math.log(63), (prefix, half, copy)
    # Known weakness, not asserted: repeats of 8 tokens are copied at 1.6-1.7 nats (prefix 0 and 20).
