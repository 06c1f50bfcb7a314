"""induction_lib.bridge: our Transformer <-> TransformerLens's HookedTransformer.

TransformerLens is imported at the top on purpose: without it (pip install -r requirements-test.txt)
these tests fail rather than skip.
"""
import sys

import pytest
import torch
import transformer_lens  # noqa: F401  (a missing test dependency must fail, not skip)
from transformer_lens import HookedTransformer, HookedTransformerConfig

import induction_lib as il
from induction_lib.bridge import from_transformer_lens, to_transformer_lens

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")

SHAPE = dict(d_vocab=16, n_ctx=16, d_model=16, n_layers=2, n_heads=2, d_head=8)
VARIANTS = [  # (positional, layernorm, d_mlp)
    (positional, layernorm, d_mlp)
    for positional in ("shortformer", "standard") for layernorm in (False, True) for d_mlp in (0, 32)
]
IDS = [f"{p}-{'ln' if ln else 'noln'}-{'mlp' if m else 'attnonly'}" for p, ln, m in VARIANTS]


def make_model(seed=0, **overrides) -> il.Transformer:
    """A small random model; LayerNorm weights and biases are randomised too, so they are tested."""
    torch.manual_seed(seed)
    model = il.Transformer(il.ModelConfig(**{**SHAPE, **overrides}))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(1 + 0.3 * torch.randn_like(m.weight))
                m.bias.copy_(0.3 * torch.randn_like(m.bias))
    return model.eval()


def tokens(seed=1, batch=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, SHAPE["d_vocab"], (batch, SHAPE["n_ctx"]), generator=g)


def assert_same_weights(a: il.Transformer, b: il.Transformer):
    assert a.cfg == b.cfg
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def tl_config(**overrides) -> HookedTransformerConfig:
    base = dict(SHAPE, attn_only=True, normalization_type=None, positional_embedding_type="shortformer",
                default_prepend_bos=False, act_fn="gelu", seed=0, device="cpu")
    return HookedTransformerConfig(**{**base, **overrides})


@pytest.mark.parametrize("positional,layernorm,d_mlp", VARIANTS, ids=IDS)
def test_round_trip_gives_identical_weights(positional, layernorm, d_mlp):
    model = make_model(positional=positional, layernorm=layernorm, d_mlp=d_mlp)
    assert_same_weights(model, from_transformer_lens(to_transformer_lens(model)))


def test_round_trip_keeps_sinusoidal_positions():
    model = make_model(positional="standard", pos_embed="sinusoidal")
    back = from_transformer_lens(to_transformer_lens(model))
    assert back.cfg.pos_embed == "sinusoidal"
    assert_same_weights(model, back)


@pytest.mark.parametrize("positional,layernorm,d_mlp", VARIANTS, ids=IDS)
def test_logits_and_patterns_agree(positional, layernorm, d_mlp):
    model = make_model(positional=positional, layernorm=layernorm, d_mlp=d_mlp)
    tl_model = to_transformer_lens(model)
    cfg = tl_model.cfg
    assert cfg.attn_only == (d_mlp == 0) and cfg.positional_embedding_type == positional
    assert cfg.normalization_type == ("LN" if layernorm else None) and cfg.default_prepend_bos is False
    assert cfg.eps == 1e-5  # nn.LayerNorm's default
    for name, p in tl_model.named_parameters():
        if name.split(".")[-1] in ("b_Q", "b_K", "b_V", "b_O", "b_U"):
            assert not p.any(), name

    toks = tokens()
    ours, cache = model.run_with_cache(toks)
    with torch.no_grad():
        theirs, tl_cache = tl_model.run_with_cache(toks)
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)
    for layer in range(model.cfg.n_layers):
        torch.testing.assert_close(tl_cache["pattern", layer], cache.pattern(layer), atol=1e-5, rtol=0)


@pytest.mark.parametrize("positional", ["shortformer", "standard"])
@pytest.mark.parametrize("layernorm,d_mlp", [(False, 0), (True, 0), (True, 32)])
def test_from_a_model_built_in_transformer_lens(positional, layernorm, d_mlp):
    tl_model = HookedTransformer(tl_config(positional_embedding_type=positional, attn_only=d_mlp == 0,
                                           d_mlp=d_mlp or None, normalization_type="LN" if layernorm else None))
    torch.manual_seed(2)  # TL initialises LayerNorm to (1, 0) and MLP biases to 0: randomise them
    with torch.no_grad():
        for name, p in tl_model.named_parameters():
            if name.split(".")[-1] in ("w", "b", "b_in", "b_out"):
                p.add_(0.3 * torch.randn_like(p))
    tl_model.eval()
    model = from_transformer_lens(tl_model)
    assert model.cfg == il.ModelConfig(**SHAPE, positional=positional, layernorm=layernorm, d_mlp=d_mlp)
    toks = tokens(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(model(toks), tl_model(toks), atol=1e-4, rtol=0)


def test_smeared_keys_are_refused():
    with pytest.raises(ValueError, match="smeared_keys"):
        to_transformer_lens(make_model(smeared_keys=True))


def test_rotary_positions_are_refused():
    tl_model = HookedTransformer(tl_config(positional_embedding_type="rotary", rotary_dim=8))
    with pytest.raises(ValueError, match="positional_embedding_type='rotary'"):
        from_transformer_lens(tl_model)


def test_nonzero_biases_are_refused():
    tl_model = to_transformer_lens(make_model())
    with torch.no_grad():
        tl_model.blocks[1].attn.b_O.fill_(0.1)
    with pytest.raises(ValueError, match=r"nonzero biases.*blocks\.1\.attn\.b_O"):
        from_transformer_lens(tl_model)


@pytest.mark.parametrize("overrides,match", [
    (dict(normalization_type="RMS"), "normalization_type='RMS'"),
    (dict(normalization_type="LNPre"), "normalization_type='LNPre'"),
    (dict(attn_only=False, d_mlp=32, act_fn="relu"), "act_fn='relu'"),
    (dict(normalization_type="LN", eps=1e-6), "eps"),
    (dict(attention_dir="bidirectional"), "attention_dir='bidirectional'"),
    (dict(n_key_value_heads=1), "n_key_value_heads=1"),
    (dict(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx"),
])
def test_other_architectures_are_refused(overrides, match):
    tl_model = HookedTransformer(tl_config(**overrides))
    with pytest.raises(ValueError, match=match):
        from_transformer_lens(tl_model)


def test_missing_transformer_lens_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformer_lens", None)  # makes `import transformer_lens` fail
    with pytest.raises(ImportError, match="requirements-test.txt"):
        to_transformer_lens(make_model())
