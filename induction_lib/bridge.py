"""A bridge to TransformerLens: move weights between our `Transformer` and a `HookedTransformer`.

    tl_model = to_transformer_lens(model)      # same logits, TransformerLens hooks and tools
    model = from_transformer_lens(tl_model)    # back again (only for models our architecture can express)

The two architectures line up one to one: the same per-head `W_Q, W_K, W_V` [head, d_model, d_head]
and `W_O` [head, d_head, d_model], the same `W_E, W_pos, W_U`, pre-LayerNorm blocks with the same
LayerNorm (eps 1e-5, biased variance), exact GELU in the MLP, and, for "shortformer" positions, the
position embedding added to the query and key inputs *after* LayerNorm in both. Our attention and
unembedding have no biases, so TransformerLens's `b_Q, b_K, b_V, b_O, b_U` are zero.

TransformerLens is a test dependency (requirements-test.txt), imported only when a function here runs.
"""
from __future__ import annotations

import warnings

import torch

from .config import ModelConfig
from .model import Transformer, sinusoids

INSTALL_HINT = ("pip install -r requirements-test.txt  "
                "(i.e. pip install 'transformer-lens==3.9.0' 'torch==2.13.0', so torch stays the CPU build)")
ZERO_BIASES = ("attn.b_Q", "attn.b_K", "attn.b_V", "attn.b_O")  # per block; plus unembed.b_U

# TransformerLens config fields that do not change what the model computes (names, init, device,
# optional hooks, tokenizer), or only matter for rotary positions, which are refused first.
_IGNORED_FIELDS = {
    "model_name", "seed", "device", "n_devices", "dtype", "init_mode", "initializer_range",
    "init_weights", "n_params", "default_prepend_bos", "use_attn_result", "use_split_qkv_input",
    "use_hook_mlp_in", "use_attn_in", "use_hook_tokens", "tie_word_embeddings", "trust_remote_code",
    "from_checkpoint", "checkpoint_index", "checkpoint_label_type", "checkpoint_value",
    "tokenizer_name", "tokenizer_prepends_bos", "decoder_start_token_id", "original_architecture",
    "train_seq_length", "rotary_dim", "rotary_base", "rotary_base_local", "rotary_scaling_factor",
    "rotary_adjacent_pairs",
}
_IGNORED_PREFIXES = ("NTK_", "use_NTK", "yarn_", "use_yarn", "use_dynamic_ntk", "relative_attention_")


def _import_transformer_lens():
    try:
        import transformer_lens
    except ImportError as err:
        raise ImportError(f"induction_lib.bridge needs TransformerLens 3.x, which is not installed: "
                          f"{INSTALL_HINT}") from err
    return transformer_lens


def _tl_config(cfg: ModelConfig, eps: float = 1e-5, device: str = "cpu"):
    """The HookedTransformerConfig with the same shape and architecture as `cfg`."""
    from transformer_lens import HookedTransformerConfig
    return HookedTransformerConfig(
        d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx, d_model=cfg.d_model, d_head=cfg.d_head,
        n_heads=cfg.n_heads, n_layers=cfg.n_layers,
        attn_only=cfg.d_mlp == 0, d_mlp=cfg.d_mlp or None, act_fn="gelu",  # exact GELU, as F.gelu
        normalization_type="LN" if cfg.layernorm else None, eps=eps,
        positional_embedding_type=cfg.positional,  # "shortformer" or "standard": same names in TL
        default_prepend_bos=False, device=device,
        init_weights=False,  # every weight is overwritten
    )


def _weight_pairs(cfg: ModelConfig):
    """(our state_dict name, TransformerLens state_dict name, transposed?) for every weight."""
    pairs = [("W_E", "embed.W_E", False), ("W_pos", "pos_embed.W_pos", False), ("W_U", "unembed.W_U", False)]
    for i in range(cfg.n_layers):
        pairs += [(f"blocks.{i}.attn.{w}", f"blocks.{i}.attn.{w}", False) for w in ("W_Q", "W_K", "W_V", "W_O")]
        if cfg.layernorm:
            lns = ("ln1", "ln2") if cfg.d_mlp else ("ln1",)
            pairs += [(f"blocks.{i}.{ln}.{ours}", f"blocks.{i}.{ln}.{theirs}", False)
                      for ln in lns for ours, theirs in (("weight", "w"), ("bias", "b"))]
        if cfg.d_mlp:  # nn.Linear stores [out, in]; TransformerLens stores W_in [d_model, d_mlp]
            pairs += [(f"blocks.{i}.mlp.fc_in.weight", f"blocks.{i}.mlp.W_in", True),
                      (f"blocks.{i}.mlp.fc_in.bias", f"blocks.{i}.mlp.b_in", False),
                      (f"blocks.{i}.mlp.fc_out.weight", f"blocks.{i}.mlp.W_out", True),
                      (f"blocks.{i}.mlp.fc_out.bias", f"blocks.{i}.mlp.b_out", False)]
    if cfg.layernorm:
        pairs += [("ln_final.weight", "ln_final.w", False), ("ln_final.bias", "ln_final.b", False)]
    return pairs


def _zero_bias_names(n_layers: int) -> list[str]:
    return [f"blocks.{i}.{b}" for i in range(n_layers) for b in ZERO_BIASES] + ["unembed.b_U"]


def to_transformer_lens(model: Transformer):
    """A `transformer_lens.HookedTransformer` that computes exactly what `model` computes.

    Weights are copied (not shared); TransformerLens's attention and unembedding biases are zero.
    Raises ValueError for smeared keys, which TransformerLens has no equivalent of.
    (TransformerLens 3.x deprecates HookedTransformer in favour of TransformerBridge, which wraps
    Hugging Face models; its deprecation warning is silenced here.)
    """
    _import_transformer_lens()
    from transformer_lens import HookedTransformer

    if not isinstance(model, Transformer):
        raise TypeError(f"to_transformer_lens needs an induction_lib.Transformer, got {type(model).__name__}")
    cfg = model.cfg
    if cfg.smeared_keys:
        raise ValueError("smeared_keys=True has no TransformerLens equivalent (HookedTransformer has no "
                         "key smearing), so this model cannot be converted")
    eps = {m.eps for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
    if len(eps) > 1:
        raise ValueError(f"TransformerLens uses one LayerNorm eps for the whole model; this model has {sorted(eps)}")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HookedTransformer is deprecated", category=DeprecationWarning)
        tl_model = HookedTransformer(_tl_config(cfg, eps.pop() if eps else 1e-5, str(model.W_E.device)))
    ours, theirs = model.state_dict(), tl_model.state_dict()
    with torch.no_grad():
        for our_name, tl_name, transposed in _weight_pairs(cfg):
            w = ours[our_name]
            theirs[tl_name].copy_(w.T if transposed else w)
        for name in _zero_bias_names(cfg.n_layers):
            theirs[name].zero_()
    return tl_model.train(model.training)


def _model_config(tl_cfg) -> ModelConfig:
    """Our ModelConfig for a TransformerLens config, or ValueError naming what does not fit."""
    if tl_cfg.positional_embedding_type not in ("standard", "shortformer"):
        raise ValueError(f"positional_embedding_type={tl_cfg.positional_embedding_type!r} does not fit: "
                         "induction_lib only has absolute position embeddings ('standard' or 'shortformer')")
    if tl_cfg.normalization_type not in (None, "LN"):
        raise ValueError(f"normalization_type={tl_cfg.normalization_type!r} does not fit: induction_lib has "
                         "LayerNorm with weight and bias ('LN') or none (None); folded 'LNPre' and RMSNorm do not fit")
    if not tl_cfg.attn_only and tl_cfg.act_fn != "gelu":
        raise ValueError(f"act_fn={tl_cfg.act_fn!r} does not fit: induction_lib's MLP uses exact GELU ('gelu')")
    return ModelConfig(d_vocab=tl_cfg.d_vocab, n_ctx=tl_cfg.n_ctx, d_model=tl_cfg.d_model,
                       n_layers=tl_cfg.n_layers, n_heads=tl_cfg.n_heads, d_head=tl_cfg.d_head,
                       positional=tl_cfg.positional_embedding_type, layernorm=tl_cfg.normalization_type == "LN",
                       d_mlp=0 if tl_cfg.attn_only else tl_cfg.d_mlp)


def _check_same_config(tl_cfg, cfg: ModelConfig) -> None:
    """Every TransformerLens setting that changes the computation must be what `cfg` would give."""
    expected = _tl_config(cfg, eps=tl_cfg.eps).to_dict()
    ignored = set(_IGNORED_FIELDS)
    if cfg.d_mlp == 0:
        ignored |= {"d_mlp", "act_fn"}
    for field, value in tl_cfg.to_dict().items():
        if field in ignored or field.startswith(_IGNORED_PREFIXES):
            continue
        if field not in expected or value != expected[field]:
            raise ValueError(f"TransformerLens config {field}={value!r} does not fit induction_lib's "
                             f"architecture (it needs {expected.get(field)!r})")
    if tl_cfg.original_architecture in ("Olmo2ForCausalLM", "Olmo3ForCausalLM"):
        raise ValueError(f"original_architecture={tl_cfg.original_architecture!r} is post-norm; "
                         "induction_lib is pre-LayerNorm")
    if cfg.layernorm and tl_cfg.eps != 1e-5:
        raise ValueError(f"LayerNorm eps={tl_cfg.eps} does not fit: induction_lib's nn.LayerNorm uses 1e-5")


def from_transformer_lens(tl_model) -> Transformer:
    """An induction_lib `Transformer` that computes exactly what `tl_model` (a HookedTransformer) computes.

    Only models our architecture can express are accepted: absolute positions ("standard" or
    "shortformer"), LayerNorm or none, exact-GELU MLPs or none, plain causal multi-head attention,
    and zero attention and unembedding biases. Anything else raises ValueError naming it.
    Weights are copied as float32. A W_pos equal to our fixed sinusoids gives pos_embed="sinusoidal".
    """
    _import_transformer_lens()
    from transformer_lens import HookedTransformer

    if not isinstance(tl_model, HookedTransformer):
        raise TypeError(f"from_transformer_lens needs a transformer_lens.HookedTransformer, "
                        f"got {type(tl_model).__name__}")
    cfg = _model_config(tl_model.cfg)
    _check_same_config(tl_model.cfg, cfg)
    theirs = tl_model.state_dict()
    nonzero = [n for n in _zero_bias_names(cfg.n_layers) if torch.count_nonzero(theirs[n])]
    if nonzero:
        raise ValueError(f"nonzero biases do not fit (induction_lib's attention and unembedding have none): "
                         f"{', '.join(nonzero)}")
    pairs = _weight_pairs(cfg)
    extra = sorted({n for n, _ in tl_model.named_parameters()} - {p[1] for p in pairs} - set(_zero_bias_names(cfg.n_layers)))
    if extra:
        raise ValueError(f"parameters with no place in induction_lib's architecture: {', '.join(extra)}")

    if torch.equal(theirs["pos_embed.W_pos"].float().cpu(), sinusoids(cfg.n_ctx, cfg.d_model)):
        cfg = ModelConfig(**{**cfg.to_dict(), "pos_embed": "sinusoidal"})
    model = Transformer(cfg).to(theirs["embed.W_E"].device)
    ours = model.state_dict()
    with torch.no_grad():
        for our_name, tl_name, transposed in pairs:
            w = theirs[tl_name]
            ours[our_name].copy_(w.T if transposed else w)
    return model.train(tl_model.training)
