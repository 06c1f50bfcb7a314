"""The model: shapes, causality, fast path = explicit path, hooks, the cache, input checks, configs."""
import dataclasses

import pytest
import torch

import induction_lib as il
from induction_lib.config import ModelConfig, TrainConfig

CONFIGS = {
    "default": ModelConfig(),
    "standard": ModelConfig(positional="standard"),
    "layernorm": ModelConfig(layernorm=True),
    "smeared": ModelConfig(n_layers=1, smeared_keys=True),
    "mlp": ModelConfig(d_mlp=32, layernorm=True),
    "sinusoidal": ModelConfig(pos_embed="sinusoidal"),
}


def make(cfg, seed=0):
    torch.manual_seed(seed)
    return il.Transformer(cfg).eval()


@pytest.mark.parametrize("name", CONFIGS)
def test_shapes_and_dtype(name):
    cfg = CONFIGS[name]
    model = make(cfg)
    tokens = il.repeated_tokens(3, 10, cfg.d_vocab, seed=1)
    logits = model(tokens)
    assert logits.shape == (3, 21, cfg.d_vocab) and logits.dtype == torch.float32
    assert model(tokens[0]).shape == (1, 21, cfg.d_vocab)  # 1-D input = a batch of one


@pytest.mark.parametrize("name", CONFIGS)
def test_causal(name):
    model = make(CONFIGS[name])
    tokens = il.random_tokens(2, 30, model.cfg.d_vocab, seed=2)
    changed = tokens.clone()
    changed[:, 20:] = tokens[:, 20:] % (model.cfg.d_vocab - 1) + 1  # every token from position 20 on changes
    assert (changed[:, 20:] != tokens[:, 20:]).all()
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :20], b[:, :20], rtol=0, atol=1e-5)
    assert (a[:, 20:] - b[:, 20:]).abs().max() > 1e-3


@pytest.mark.parametrize("name", CONFIGS)
def test_fast_path_equals_explicit_path(name):
    model = make(CONFIGS[name])
    tokens = il.random_tokens(4, 40, model.cfg.d_vocab, seed=3)
    fast = model(tokens)
    assert not any(b.attn._needs_explicit() for b in model.blocks)
    assert all(b.attn._can_fuse() for b in model.blocks) == (not model.cfg.smeared_keys)
    explicit, cache = model.run_with_cache(tokens)  # caching the pattern forces the explicit path
    torch.testing.assert_close(fast, explicit, rtol=1e-5, atol=1e-5)


def test_sinusoidal_positions_are_fixed_and_one_step_is_one_rotation():
    model = make(CONFIGS["sinusoidal"])
    assert "W_pos" not in dict(model.named_parameters()) and "W_pos" in model.state_dict()
    W = model.W_pos
    assert W.shape == (64, 64) and torch.allclose(W.pow(2).mean(), torch.tensor(1.0), atol=0.05)
    # each (sin, cos) pair turns by a fixed angle per position: <p_i, p_(i-1)> is the same for every i
    dots = (W[1:] * W[:-1]).sum(dim=1)
    torch.testing.assert_close(dots, dots[:1].expand_as(dots), rtol=1e-4, atol=1e-4)


def test_cache_contents_and_accessors():
    cfg = CONFIGS["default"]
    model = make(cfg)
    tokens = il.repeated_tokens(2, 8, cfg.d_vocab, seed=4)
    logits, cache = model.run_with_cache(tokens)
    b, n = tokens.shape
    for layer in range(cfg.n_layers):
        pattern = cache.pattern(layer)
        assert pattern.shape == (b, cfg.n_heads, n, n)
        torch.testing.assert_close(pattern.sum(-1), torch.ones(b, cfg.n_heads, n))
        assert (pattern.triu(1) == 0).all(), "attention to future positions"
        assert cache.result(layer).shape == (b, n, cfg.n_heads, cfg.d_model)
        assert cache.resid_pre(layer).shape == cache.resid_post(layer).shape == (b, n, cfg.d_model)
        # the residual stream is the sum of what was written into it
        torch.testing.assert_close(cache.resid_post(layer), cache.resid_pre(layer) + cache.result(layer).sum(2),
                                   rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cache.resid_post(cfg.n_layers - 1) @ model.W_U, logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"layer must be an integer in \[0, 2\)"):
        cache.pattern(2)
    with pytest.raises(KeyError, match="was not recorded"):
        cache["nope"]


def test_stacked_weights_and_names():
    model = make(CONFIGS["default"])
    cfg = model.cfg
    assert model.W_Q.shape == (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head)
    assert model.W_O.shape == (cfg.n_layers, cfg.n_heads, cfg.d_head, cfg.d_model)
    assert model.W_E.shape == (cfg.d_vocab, cfg.d_model) and model.W_U.shape == (cfg.d_model, cfg.d_vocab)
    assert model.W_pos.shape == (cfg.n_ctx, cfg.d_model)


def test_hook_replaces_activation_and_is_removed():
    model = make(CONFIGS["default"])
    tokens = il.repeated_tokens(2, 8, model.cfg.d_vocab, seed=5)
    before = model(tokens)

    def zero_head(result):
        result = result.clone()
        result[:, :, 1] = 0
        return result

    with model.hooks([("blocks.1.attn.hook_result", zero_head)]):
        _, cache = model.run_with_cache(tokens)
        assert cache.result(1)[:, :, 1].abs().max() == 0
        changed = model(tokens)
    assert (changed - before).abs().max() > 1e-4
    torch.testing.assert_close(model(tokens), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="no hook point named 'blocks.9.attn.hook_result'"):
        with model.hooks([("blocks.9.attn.hook_result", zero_head)]):
            pass


def test_hooks_removed_on_exception():
    model = make(CONFIGS["default"])
    tokens = il.repeated_tokens(1, 8, model.cfg.d_vocab, seed=6)
    before = model(tokens)
    with pytest.raises(RuntimeError):
        with model.hooks([("blocks.0.attn.hook_result", lambda r: r * 0)]):
            raise RuntimeError("boom")
    assert not any(hp._forward_hooks for hp in model.hook_points().values())
    torch.testing.assert_close(model(tokens), before, rtol=0, atol=0)


def test_k_input_hook_changes_only_the_key_path():
    model = make(CONFIGS["default"])
    tokens = il.repeated_tokens(2, 8, model.cfg.d_vocab, seed=7)
    _, clean = model.run_with_cache(tokens)
    _, hooked = model.run_with_cache(tokens, fwd_hooks=[("blocks.1.attn.hook_k_input", lambda x: x * 0)])
    torch.testing.assert_close(hooked.q(1), clean.q(1))
    torch.testing.assert_close(hooked.v(1), clean.v(1))
    assert (hooked.k(1) - clean.k(1)).abs().max() > 1e-3


@pytest.mark.parametrize("bad, message", [
    ([1, 2, 3], "must be a torch.Tensor"),
    (torch.tensor([1.0, 2.0]), "integer dtype"),
    (torch.zeros(1, 2, 3, dtype=torch.long), "1-D .* or 2-D"),
    (torch.tensor([0, 64]), r"token id 64 is out of range: ids must be in \[0, 64\)"),
    (torch.tensor([0, -1]), r"token id -1 is out of range"),
    (torch.zeros(1, 65, dtype=torch.long), "between 1 and n_ctx=64, got 65"),
    (torch.zeros(1, 0, dtype=torch.long), "between 1 and n_ctx=64, got 0"),
])
def test_bad_tokens_are_value_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        make(CONFIGS["default"])(bad)


@pytest.mark.parametrize("kwargs, message", [
    ({"d_vocab": 0}, "d_vocab must be a positive integer"),
    ({"n_heads": 2.5}, "n_heads must be a positive integer"),
    ({"positional": "rotary"}, "positional must be one of"),
    ({"d_mlp": -1}, "d_mlp must be an integer >= 0"),
    ({"layernorm": "yes"}, "layernorm must be True or False"),
])
def test_model_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps must be a positive integer"),
    ({"lr": -1.0}, "lr must be > 0"),
    ({"loss_on": "some"}, "loss_on must be one of"),
    ({"schedule": "linear"}, "schedule must be one of"),
    ({"snapshot_steps": (5, 10_000)}, r"snapshot_steps must be integers in \[0, steps=2500\]"),
    ({"threads": 0}, "threads must be None or a positive integer"),
])
def test_train_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelConfig().d_model = 3


def test_transformer_lens_conventions():
    """names_filter, cache["pattern", layer], get_act_name, hook_attn_scores, run_with_hooks(fn(act, hook))."""
    from induction_lib.model import get_act_name
    model = make(ModelConfig())
    tokens = il.repeated_tokens(2, 10, 64, seed=0)
    assert get_act_name("pattern", 1) == "blocks.1.attn.hook_pattern"
    assert get_act_name("resid_pre", 0) == "blocks.0.hook_resid_pre" and get_act_name("embed") == "hook_embed"
    with pytest.raises(ValueError, match="needs a layer"):
        get_act_name("pattern")
    with pytest.raises(ValueError, match="unknown activation 'patern'"):
        get_act_name("patern", 0)
    _, cache = model.run_with_cache(tokens, names_filter=[get_act_name("attn_scores", 1), "blocks.1.attn.hook_pattern"])
    assert sorted(cache.keys()) == ["blocks.1.attn.hook_attn_scores", "blocks.1.attn.hook_pattern"]
    torch.testing.assert_close(cache["scores", 1].softmax(dim=-1), cache["pattern", 1])
    assert torch.isinf(cache["attn_scores", 1][0, 0, 0, 1])           # masked: the future is -inf
    with pytest.raises(ValueError, match="no hook point named 'nope'"):
        model.run_with_cache(tokens, names_filter="nope")
    seen = []

    def zero_head_0(pattern, hook):
        seen.append(hook.name)
        pattern = pattern.clone()
        pattern[:, 0] = 0
        return pattern
    logits = model.run_with_hooks(tokens, fwd_hooks=[(lambda n: n.endswith("hook_pattern"), zero_head_0)])
    assert seen == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    assert not torch.allclose(logits, model(tokens))                     # the hooks changed the output ...
    assert all(not p._forward_hooks for p in model.hook_points().values())   # ... and are gone
