"""An attention-only transformer whose weights carry the papers' names.

Read it top to bottom: `HookPoint`, `Attention`, `Block`, `Transformer`. Every head has its own
`W_Q, W_K, W_V` (d_model -> d_head) and `W_O` (d_head -> d_model), stored as one tensor per layer
with the head as the first axis, so a head's QK circuit is `W_Q[h] @ W_K[h].T` and its OV circuit
`W_V[h] @ W_O[h]` (Elhage et al. 2021). Row-vector convention: x @ W.

Activations pass through named `HookPoint`s (plain `nn.Identity` modules), so torch's own forward
hooks can read or replace them; `run_with_cache` records them all. Attention has two paths: a fast
one (fused `scaled_dot_product_attention`) used for training, and an explicit one that forms the
attention pattern and each head's output; it is taken whenever a hook wants those.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig


class HookPoint(nn.Identity):
    """A named place in the forward pass. Register torch forward hooks on it to read or replace
    the activation (a hook that returns a tensor replaces it). `name` is its full name in the model
    (e.g. "blocks.1.attn.hook_pattern"), set by `Transformer`, as in TransformerLens."""

    name: str = ""


def _uniform(*shape: int, fan_in: int) -> nn.Parameter:
    """PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    (GPT-2's std 0.02 did not form induction heads in our measurements.)"""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


def sinusoids(n_ctx: int, d_model: int, base: float = 100.0) -> torch.Tensor:
    """Fixed position embedding (Vaswani et al. 2017): sin and cos of p / base^(2i/d), scaled by √2 so that
    each entry has variance 1, like the token embedding. [n_ctx, d_model].

    Moving one position back turns every (sin, cos) pair by a fixed angle, the same at every position, so
    a head that learns "one back" at the positions training uses does it at all of them. base = 100, not
    Vaswani's 10000: in a 64-token context the slow waves of base 10000 are almost linear in the position
    (absolute positions), and a head that leans on them fails at positions training never used as keys."""
    pos = torch.arange(n_ctx, dtype=torch.float32)[:, None]
    freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    pe = torch.zeros(n_ctx, d_model)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
    return math.sqrt(2) * pe


class Attention(nn.Module):
    """Multi-head causal self-attention with per-head weight tensors and no biases."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        h, m, d = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = _uniform(h, m, d, fan_in=m)
        self.W_K = _uniform(h, m, d, fan_in=m)
        self.W_V = _uniform(h, m, d, fan_in=m)
        self.W_O = _uniform(h, d, m, fan_in=h * d)
        # Smeared keys: k_j <- sigmoid(a) k_j + (1 - sigmoid(a)) k_{j-1}, one a per head.
        self.smear_alpha = nn.Parameter(torch.zeros(h)) if cfg.smeared_keys else None
        # Inputs of the three paths (the residual stream before LayerNorm and positions); a hook on
        # one of them changes only that path, e.g. what layer-1 keys see of a layer-0 head.
        self.hook_q_input, self.hook_k_input, self.hook_v_input = HookPoint(), HookPoint(), HookPoint()
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()  # [b, pos, head, d_head]
        self.hook_attn_scores = HookPoint()  # [b, head, query, key], scaled, masked (-inf), before softmax
        self.hook_pattern = HookPoint()  # [b, head, query, key]
        self.hook_z = HookPoint()        # [b, pos, head, d_head], pattern-weighted values
        self.hook_result = HookPoint()   # [b, pos, head, d_model], each head's output

    def _needs_explicit(self) -> bool:
        return any(hp._forward_hooks for hp in (self.hook_attn_scores, self.hook_pattern, self.hook_z,
                                                 self.hook_result))

    def _can_fuse(self) -> bool:
        """The fused path (training): no hook anywhere in this layer and no smeared keys."""
        return self.smear_alpha is None and not any(
            m._forward_hooks for m in self.modules() if isinstance(m, HookPoint))

    def smear(self, k: torch.Tensor) -> torch.Tensor:
        """Mix each key [b, pos, head, d] with the previous position's key (first position: itself)."""
        w = torch.sigmoid(self.smear_alpha)[:, None]
        prev = torch.cat([k[:, :1], k[:, :-1]], dim=1)
        return w * k + (1 - w) * prev

    def fused(self, resid: torch.Tensor, pos: torch.Tensor | None, ln: nn.Module) -> torch.Tensor:
        """The same computation as `forward`, fast: one QKV matmul, fused causal attention, one output matmul."""
        h, m, d = self.W_Q.shape
        w_qkv = torch.cat([self.W_Q, self.W_K, self.W_V]).permute(1, 0, 2).reshape(m, 3 * h * d)
        qkv = ln(resid) @ w_qkv                                      # [b, p, 3 * h * d]
        if pos is not None:  # shortformer: positions enter queries and keys only
            qkv = qkv + F.pad(pos @ w_qkv[:, :2 * h * d], (0, h * d))
        b, p, _ = qkv.shape
        q, k, v = qkv.view(b, p, 3, h, d).permute(2, 0, 3, 1, 4)     # each [b, head, pos, d_head]
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return z.transpose(1, 2).reshape(b, p, h * d) @ self.W_O.reshape(h * d, m)

    def forward(self, resid: torch.Tensor, pos: torch.Tensor | None,
                ln: nn.Module) -> torch.Tensor:
        if self._can_fuse():
            return self.fused(resid, pos, ln)
        q_in = self.hook_q_input(resid)
        k_in = self.hook_k_input(resid)
        v_in = self.hook_v_input(resid)
        q_in, k_in, v_in = ln(q_in), ln(k_in), ln(v_in)
        if pos is not None:  # shortformer: positions enter queries and keys only
            q_in, k_in = q_in + pos, k_in + pos
        q = self.hook_q(torch.einsum("bpm,hmd->bphd", q_in, self.W_Q))
        k = torch.einsum("bpm,hmd->bphd", k_in, self.W_K)
        if self.smear_alpha is not None:
            k = self.smear(k)
        k = self.hook_k(k)
        v = self.hook_v(torch.einsum("bpm,hmd->bphd", v_in, self.W_V))

        if not self._needs_explicit():  # fused attention, heads summed in one matmul
            z = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                               v.transpose(1, 2), is_causal=True)
            b, h, p, d = z.shape
            return z.transpose(1, 2).reshape(b, p, h * d) @ self.W_O.reshape(h * d, -1)

        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.cfg.d_head)
        n = scores.shape[-1]
        causal = torch.ones(n, n, dtype=torch.bool, device=scores.device).tril()
        scores = self.hook_attn_scores(scores.masked_fill(~causal, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhd->bqhd", pattern, v))
        result = self.hook_result(torch.einsum("bqhd,hdm->bqhm", z, self.W_O))
        return result.sum(dim=2)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc_in = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.fc_out = nn.Linear(cfg.d_mlp, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(F.gelu(self.fc_in(x)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model) if cfg.layernorm else nn.Identity()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg) if cfg.d_mlp > 0 else None
        self.ln2 = nn.LayerNorm(cfg.d_model) if (cfg.layernorm and self.mlp is not None) else nn.Identity()
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        resid = self.hook_resid_pre(resid)
        resid = resid + self.hook_attn_out(self.attn(resid, pos, self.ln1))
        if self.mlp is not None:
            resid = resid + self.hook_mlp_out(self.mlp(self.ln2(resid)))
        return self.hook_resid_post(resid)


class Transformer(nn.Module):
    """tokens [batch, pos] (or [pos]) -> logits [batch, pos, d_vocab]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if not isinstance(cfg, ModelConfig):
            raise TypeError(f"Transformer needs a ModelConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.randn(cfg.d_vocab, cfg.d_model))  # nn.Embedding's default init
        if cfg.pos_embed == "sinusoidal":
            self.register_buffer("W_pos", sinusoids(cfg.n_ctx, cfg.d_model))
        else:
            self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = nn.LayerNorm(cfg.d_model) if cfg.layernorm else nn.Identity()
        self.W_U = _uniform(cfg.d_model, cfg.d_vocab, fan_in=cfg.d_model)
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        for name, point in self.hook_points().items():
            point.name = name

    # -- stacked per-head weights, [n_layers, n_heads, ...], as TransformerLens names them --
    @property
    def W_Q(self) -> torch.Tensor:
        return torch.stack([b.attn.W_Q for b in self.blocks])

    @property
    def W_K(self) -> torch.Tensor:
        return torch.stack([b.attn.W_K for b in self.blocks])

    @property
    def W_V(self) -> torch.Tensor:
        return torch.stack([b.attn.W_V for b in self.blocks])

    @property
    def W_O(self) -> torch.Tensor:
        return torch.stack([b.attn.W_O for b in self.blocks])

    def check_tokens(self, tokens) -> torch.Tensor:
        """Return tokens as a [batch, pos] long tensor, or raise ValueError saying what is wrong."""
        if not isinstance(tokens, torch.Tensor):
            raise ValueError(f"tokens must be a torch.Tensor of integer ids, got {type(tokens).__name__}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise ValueError(f"tokens must have an integer dtype (e.g. torch.long), got {tokens.dtype}")
        if tokens.dim() not in (1, 2):
            raise ValueError(f"tokens must be 1-D [pos] or 2-D [batch, pos], got shape {tuple(tokens.shape)}")
        if tokens.dim() == 1:
            tokens = tokens[None]
        n = tokens.shape[1]
        if not 1 <= n <= self.cfg.n_ctx:
            raise ValueError(f"sequence length must be between 1 and n_ctx={self.cfg.n_ctx}, got {n}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.cfg.d_vocab):
            bad = tokens[(tokens < 0) | (tokens >= self.cfg.d_vocab)][0].item()
            raise ValueError(f"token id {bad} is out of range: ids must be in [0, {self.cfg.d_vocab})")
        return tokens.long()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = self.check_tokens(tokens)
        n = tokens.shape[1]
        resid = self.hook_embed(self.W_E[tokens])
        pos = self.hook_pos_embed(self.W_pos[:n])[None]
        if self.cfg.positional == "standard":
            resid, pos = resid + pos, None
        for block in self.blocks:
            resid = block(resid, pos)
        return self.ln_final(resid) @ self.W_U

    # -- hooks and the activation cache --
    def hook_points(self) -> dict[str, HookPoint]:
        return {name: m for name, m in self.named_modules() if isinstance(m, HookPoint)}

    def check_hook_name(self, name: str) -> HookPoint:
        points = self.hook_points()
        if name not in points:
            raise ValueError(f"no hook point named {name!r}; valid names: {', '.join(points)}")
        return points[name]

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[str, Callable]]):
        """Run the model with hooks: each (name, fn) calls fn(activation) at that hook point; if fn
        returns a tensor it replaces the activation. Hooks are removed on exit, also on errors."""
        handles = []
        try:
            for name, fn in fwd_hooks:
                point = self.check_hook_name(name)
                handles.append(point.register_forward_hook(lambda mod, inp, out, fn=fn: fn(out)))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _filter(self, names_filter) -> Callable[[str], bool]:
        """A hook-name filter from None (all), a name, a list of names, or a predicate (as TransformerLens)."""
        if names_filter is None:
            return lambda name: True
        if isinstance(names_filter, str):
            self.check_hook_name(names_filter)
            return lambda name: name == names_filter
        if callable(names_filter):
            return names_filter
        wanted = set(names_filter)
        for name in wanted:
            self.check_hook_name(name)
        return lambda name: name in wanted

    def run_with_cache(self, tokens: torch.Tensor, names: Callable[[str], bool] | None = None,
                       fwd_hooks: Iterable[tuple[str, Callable]] = (), names_filter=None):
        """Run the model and record every hook point's activation (or those `names(name)` keeps;
        `names_filter` as in TransformerLens: a name, a list of names or a predicate). Returns (logits,
        ActivationCache). Extra `fwd_hooks` (our convention, fn(activation)) run too; values are recorded
        after them."""
        keep = self._filter(names_filter if names is None else names)
        store: dict[str, torch.Tensor] = {}

        def saver(name):
            def save(act):
                store[name] = act.detach()
            return save

        record = [(n, saver(n)) for n in self.hook_points() if keep(n)]
        with torch.no_grad(), self.hooks(list(fwd_hooks) + record):
            logits = self(tokens)
        return logits, ActivationCache(store, self.cfg)

    def run_with_hooks(self, tokens: torch.Tensor, fwd_hooks: Iterable[tuple] = ()) -> torch.Tensor:
        """Run the model with TransformerLens-style hooks: each (name or predicate, fn) calls
        fn(activation, hook=the HookPoint) at every matching hook point; a returned tensor replaces the
        activation. Hooks are removed afterwards. Returns the logits."""
        pairs = []
        for name_or_filter, fn in fwd_hooks:
            keep = self._filter(name_or_filter)
            for name, point in self.hook_points().items():
                if keep(name):
                    pairs.append((name, lambda act, fn=fn, point=point: fn(act, hook=point)))
        with self.hooks(pairs):
            return self(tokens)


class ActivationCache:
    """Activations recorded by `Transformer.run_with_cache`, by hook name, with short accessors."""

    def __init__(self, store: dict[str, torch.Tensor], cfg: ModelConfig):
        self.store, self.cfg = store, cfg

    def __getitem__(self, name) -> torch.Tensor:
        if isinstance(name, tuple):  # TransformerLens style: cache["pattern", 0]
            name = get_act_name(*name)
        if name not in self.store:
            raise KeyError(f"{name!r} was not recorded; recorded: {', '.join(self.store)}")
        return self.store[name]

    def __contains__(self, name: str) -> bool:
        return name in self.store

    def keys(self):
        return self.store.keys()

    def _layer(self, layer: int) -> int:
        if not (isinstance(layer, int) and 0 <= layer < self.cfg.n_layers):
            raise ValueError(f"layer must be an integer in [0, {self.cfg.n_layers}), got {layer!r}")
        return layer

    def pattern(self, layer: int) -> torch.Tensor:
        """Attention pattern of every head in `layer`: [batch, head, query, key]."""
        return self[f"blocks.{self._layer(layer)}.attn.hook_pattern"]

    def result(self, layer: int) -> torch.Tensor:
        """Each head's output written to the residual stream: [batch, pos, head, d_model]."""
        return self[f"blocks.{self._layer(layer)}.attn.hook_result"]

    def resid_pre(self, layer: int) -> torch.Tensor:
        """Residual stream entering `layer`: [batch, pos, d_model]."""
        return self[f"blocks.{self._layer(layer)}.hook_resid_pre"]

    def resid_post(self, layer: int) -> torch.Tensor:
        """Residual stream leaving `layer`: [batch, pos, d_model]."""
        return self[f"blocks.{self._layer(layer)}.hook_resid_post"]

    def q(self, layer: int) -> torch.Tensor:
        return self[f"blocks.{self._layer(layer)}.attn.hook_q"]

    def k(self, layer: int) -> torch.Tensor:
        return self[f"blocks.{self._layer(layer)}.attn.hook_k"]

    def v(self, layer: int) -> torch.Tensor:
        return self[f"blocks.{self._layer(layer)}.attn.hook_v"]


_ATTN_ACTS = ("q", "k", "v", "z", "result", "pattern", "attn_scores", "q_input", "k_input", "v_input")
_BLOCK_ACTS = ("resid_pre", "resid_post", "attn_out", "mlp_out")


def get_act_name(name: str, layer: int | None = None) -> str:
    """The full hook name of an activation, as TransformerLens's `utils.get_act_name`:
    get_act_name("pattern", 1) = "blocks.1.attn.hook_pattern"; "scores" is an alias of "attn_scores";
    "embed" and "pos_embed" take no layer."""
    name = {"scores": "attn_scores", "attn": "pattern"}.get(name, name)
    if name in ("embed", "pos_embed"):
        return f"hook_{name}"
    if layer is None:
        raise ValueError(f"activation {name!r} needs a layer: get_act_name({name!r}, layer)")
    if name in _ATTN_ACTS:
        return f"blocks.{layer}.attn.hook_{name}"
    if name in _BLOCK_ACTS:
        return f"blocks.{layer}.hook_{name}"
    raise ValueError(f"unknown activation {name!r}; known: {', '.join(_ATTN_ACTS + _BLOCK_ACTS)}, embed, pos_embed")
