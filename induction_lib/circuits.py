"""Circuits read off the weights: QK and OV matrices, their full circuits, composition, logit attribution.

Elhage et al. (2021), "A Mathematical Framework for Transformer Circuits". Row-vector convention, as in
`model.py`: a head's QK circuit is `W_QK = W_Q W_Kᵀ` (query row on the left: score = x_q W_QK x_kᵀ) and its
OV circuit `W_OV = W_V W_O` (what it writes = x_src W_OV). Both are d_model × d_model of rank d_head, so
they are kept as their two factors (`FactoredMatrix`) and only the small d_head × d_head products are ever
formed for norms and eigenvalues.

LayerNorm: the weight-based circuits here are exact only for a model without LayerNorm (the default: every
recipe has `layernorm=False`); for a model with it they raise ValueError rather than silently ignore its
per-token scale. `direct_logit_attribution` is exact either way (it freezes the final LayerNorm's scale).
Smeared keys: the QK circuits ignore the smearing (a key also mixes in the previous position's key).
"""
from __future__ import annotations

import operator

import torch


# ---------------------------------------------------------------- checks


def check_head(model, layer, head) -> tuple[int, int]:
    """(layer, head) as ints, or ValueError naming the valid ranges."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    try:
        layer, head = operator.index(layer), operator.index(head)
    except TypeError:
        raise ValueError(f"layer and head must be integers, got layer={layer!r}, head={head!r}") from None
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer must be in [0, {n_layers}) (the model has {n_layers} layers), got {layer}")
    if not 0 <= head < n_heads:
        raise ValueError(f"head must be in [0, {n_heads}) (each layer has {n_heads} heads), got {head}")
    return layer, head


def _no_layernorm(model) -> None:
    if model.cfg.layernorm:
        raise ValueError("weight-based circuits assume a model without LayerNorm (its per-token scale does not "
                         "factor out of W_QK and W_OV); use a model with layernorm=False, like every recipe in the zoo")


# ---------------------------------------------------------------- factored matrices


class FactoredMatrix:
    """The product A @ B kept as its factors A [m, r] and B [r, n] (r small: d_head).

    `.AB` forms the product; `.norm()` and `.eigenvalues()` use only r × r matrices:
    ‖AB‖_F² = tr((AᵀA)(BBᵀ)), and AB and BA have the same nonzero eigenvalues (cyclic property).
    """

    def __init__(self, A: torch.Tensor, B: torch.Tensor):
        if A.dim() != 2 or B.dim() != 2 or A.shape[1] != B.shape[0]:
            raise ValueError(f"need A [m, r] and B [r, n], got {tuple(A.shape)} and {tuple(B.shape)}")
        self.A, self.B = A.detach(), B.detach()

    @property
    def shape(self) -> tuple[int, int]:
        return (self.A.shape[0], self.B.shape[1])

    @property
    def AB(self) -> torch.Tensor:
        return self.A @ self.B

    @property
    def T(self) -> "FactoredMatrix":
        return FactoredMatrix(self.B.T, self.A.T)

    def __matmul__(self, other) -> "FactoredMatrix":
        """self @ other, still factored (the inner product is folded into the right factor)."""
        if isinstance(other, FactoredMatrix):
            return FactoredMatrix(self.A, (self.B @ other.A) @ other.B)
        return FactoredMatrix(self.A, self.B @ other)

    def __rmatmul__(self, other: torch.Tensor) -> "FactoredMatrix":
        return FactoredMatrix(other @ self.A, self.B)

    def norm(self) -> torch.Tensor:
        """Frobenius norm ‖AB‖_F, from r × r matrices."""
        return torch.trace((self.A.T @ self.A) @ (self.B @ self.B.T)).clamp(min=0).sqrt()

    def eigenvalues(self) -> torch.Tensor:
        """Eigenvalues of AB (square) that can be nonzero: those of BA (complex, r of them)."""
        if self.shape[0] != self.shape[1]:
            raise ValueError(f"eigenvalues need a square matrix, this one is {self.shape}")
        small = self.B @ self.A if self.A.shape[1] <= self.A.shape[0] else self.A @ self.B
        return torch.linalg.eigvals(small.double())

    def __repr__(self) -> str:
        return f"FactoredMatrix(shape={self.shape}, inner={self.A.shape[1]})"


def eigenvalue_stat(matrix: FactoredMatrix) -> float:
    """Σλ / Σ|λ| over the eigenvalues λ of a square circuit (Elhage et al. 2021): +1 when every
    eigenvalue is positive (the circuit copies, e.g. the identity), -1 when all are negative."""
    lam = matrix.eigenvalues()
    total = lam.abs().sum()
    return (lam.sum().real / total).item() if total > 0 else 0.0


def qk_matrix(model, layer: int, head: int) -> FactoredMatrix:
    """W_QK = W_Q W_Kᵀ (d_model × d_model, rank d_head): attention score = x_query W_QK x_keyᵀ / √d_head."""
    layer, head = check_head(model, layer, head)
    attn = model.blocks[layer].attn
    return FactoredMatrix(attn.W_Q[head], attn.W_K[head].T)


def ov_matrix(model, layer: int, head: int) -> FactoredMatrix:
    """W_OV = W_V W_O (d_model × d_model, rank d_head): what the head writes = Σ attention · x_source W_OV."""
    layer, head = check_head(model, layer, head)
    attn = model.blocks[layer].attn
    return FactoredMatrix(attn.W_V[head], attn.W_O[head])


# ---------------------------------------------------------------- full circuits


def full_qk_circuit(model, layer: int, head: int) -> torch.Tensor:
    """Token-token QK circuit W_E W_QK W_Eᵀ: [query token, key token] (unscaled attention scores).

    This is the direct-path term. With shortformer positions the query and key inputs are
    (residual + W_pos), so a score has three more terms: token-position, position-token, and the
    position-position term of `positional_qk_circuit`. For a layer-1 head the residual also holds the
    layer-0 heads' outputs; the term that goes through a layer-0 head on the key side is
    `k_composition_circuit` (that is where an induction head's matching happens).
    """
    _no_layernorm(model)
    return (model.W_E.detach() @ qk_matrix(model, layer, head) @ model.W_E.detach().T).AB


def positional_qk_circuit(model, layer: int, head: int) -> torch.Tensor:
    """Position-position QK circuit W_pos W_QK W_posᵀ: [query position, key position].

    Exact for every layer with shortformer positions (added afresh to queries and keys
    at each layer); with standard positions, exact for layer 0 and the direct term only
    for later layers. Entries above the diagonal are masked in the model (a query never
    sees later keys). A previous-token head shows a bright sub-diagonal.
    """
    _no_layernorm(model)
    W_pos = model.W_pos.detach()
    return (W_pos @ qk_matrix(model, layer, head) @ W_pos.T).AB


def k_composition_circuit(model, src: tuple[int, int], dst: tuple[int, int]) -> torch.Tensor:
    """QK circuit of head `dst` whose key side goes through head `src`'s OV circuit:
    W_E W_QK^dst (W_E W_OV^src)ᵀ, [query token, token that src moved into the key position].

    For a previous-token head src and an induction head dst the key position holds the previous
    token, so a bright diagonal says: attend where the previous token equals the current token.
    """
    _no_layernorm(model)
    (l0, h0), (l1, h1) = check_head(model, *src), check_head(model, *dst)
    if l0 >= l1:
        raise ValueError(f"src must be in an earlier layer than dst, got src layer {l0}, dst layer {l1}")
    W_E = model.W_E.detach()
    return (W_E @ qk_matrix(model, l1, h1) @ (W_E @ ov_matrix(model, l0, h0)).T).AB


def full_ov_circuit(model, layer: int, head: int) -> torch.Tensor:
    """W_E W_OV W_U: [attended token, output logit], the direct effect on the logits of attending to a
    token. A copying head has its largest entry of row t at column t (a bright diagonal)."""
    _no_layernorm(model)
    return (model.W_E.detach() @ ov_matrix(model, layer, head) @ model.W_U.detach()).AB


def copying_accuracy(full_ov: torch.Tensor, k: int = 1, tokens: torch.Tensor | None = None) -> float:
    """Fraction of tokens t whose own logit is among the top k of row t of a full OV circuit.
    tokens: which rows (default every token but BOS = 0)."""
    if full_ov.dim() != 2 or full_ov.shape[0] != full_ov.shape[1]:
        raise ValueError(f"full_ov must be a square [vocab, vocab] matrix, got shape {tuple(full_ov.shape)}")
    n = full_ov.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    tokens = torch.arange(1, n) if tokens is None else tokens
    top = full_ov[tokens].topk(k, dim=-1).indices
    return (top == tokens[:, None]).any(dim=-1).float().mean().item()


def ov_eigenvalue_stat(model, layer: int, head: int) -> float:
    """Σλ/Σ|λ| of the full OV circuit W_E W_OV W_U, from the d_head × d_head matrix
    W_O W_U W_E W_V (same nonzero eigenvalues). Positive = copying (Elhage et al. 2021)."""
    _no_layernorm(model)
    return eigenvalue_stat(model.W_E.detach() @ ov_matrix(model, layer, head) @ model.W_U.detach())


# ---------------------------------------------------------------- composition


COMPOSITION_KINDS = ("Q", "K", "V")


def composition_score(W_A: FactoredMatrix, W_B: FactoredMatrix, kind: str) -> float:
    """How much head B reads what head A writes (Elhage et al. 2021), row-vector convention:

        Q: ‖W_OV^A W_QK^B‖_F,   K: ‖W_OV^A W_QK^Bᵀ‖_F,   V: ‖W_OV^A W_OV^B‖_F,

    each divided by ‖W_OV^A‖_F ‖W_B‖_F. (A's output y W_OV^A enters B's key, so the score is
    q W_QK^B (y W_OV^A)ᵀ = q W_QK^B W_OV^Aᵀ yᵀ: the same norm as W_OV^A W_QK^Bᵀ.) W_A is A's W_OV;
    W_B is B's W_QK for Q and K, its W_OV for V.
    """
    if kind not in COMPOSITION_KINDS:
        raise ValueError(f"kind must be one of {COMPOSITION_KINDS}, got {kind!r}")
    product = W_A @ (W_B.T if kind == "K" else W_B)
    return (product.norm() / (W_A.norm() * W_B.norm())).item()


def composition_scores(model, kind: str = "K", src_layer: int = 0, dst_layer: int = 1) -> torch.Tensor:
    """Composition score of every head in src_layer into every head in dst_layer: [src head, dst head]."""
    _no_layernorm(model)
    if kind not in COMPOSITION_KINDS:
        raise ValueError(f"kind must be one of {COMPOSITION_KINDS}, got {kind!r}")
    check_head(model, src_layer, 0), check_head(model, dst_layer, 0)
    if src_layer >= dst_layer:
        raise ValueError(f"src_layer must be below dst_layer, got {src_layer} and {dst_layer}")
    reader = ov_matrix if kind == "V" else qk_matrix
    n = model.cfg.n_heads
    return torch.tensor([[composition_score(ov_matrix(model, src_layer, a), reader(model, dst_layer, b), kind)
                          for b in range(n)] for a in range(n)])


def composition_baseline(d_model: int, d_head: int, kind: str = "K", n_draws: int = 500,
                         seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the composition score for random Gaussian factors of the same shapes and rank
    (d_model × d_head times d_head × d_model): what "no composition" looks like, so a head pair's
    score can be read as a number of standard deviations above chance."""
    if kind not in COMPOSITION_KINDS:
        raise ValueError(f"kind must be one of {COMPOSITION_KINDS}, got {kind!r}")
    g = torch.Generator().manual_seed(seed)

    def rand():
        return FactoredMatrix(torch.randn(d_model, d_head, generator=g), torch.randn(d_head, d_model, generator=g))

    draws = torch.tensor([composition_score(rand(), rand(), kind) for _ in range(n_draws)])
    return draws.mean().item(), draws.std().item()


def composition_z_scores(model, kind: str = "K", src_layer: int = 0, dst_layer: int = 1) -> torch.Tensor:
    """`composition_scores` in standard deviations above `composition_baseline` (random factors of the
    model's shapes): [src head, dst head]. About 0: no more composition than chance; 3 or more: significant."""
    mean, std = composition_baseline(model.cfg.d_model, model.cfg.d_head, kind)
    return (composition_scores(model, kind, src_layer, dst_layer) - mean) / std


# ---------------------------------------------------------------- direct logit attribution


@torch.no_grad()
def direct_logit_attribution(model, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split the logits [batch, pos, vocab] into the residual stream's parts, each times W_U:

        "embed" (W_E[tokens], the direct path), "pos" (W_pos, only with standard positions; shortformer
        positions never enter the residual stream), "L.H" (each head's output), "mlp L" (if d_mlp > 0),
        and with LayerNorm "ln_bias" (each part is centred and divided by the final LayerNorm's scale,
        frozen at its value on this input, so the parts still add up exactly).

    The values sum to the model's logits (up to float error).
    """
    tokens = model.check_tokens(tokens)
    logits, cache = model.run_with_cache(tokens, names=lambda n: n.endswith(("hook_result", "hook_mlp_out",
                                                                             "hook_embed", "hook_pos_embed"))
                                         or n == f"blocks.{model.cfg.n_layers - 1}.hook_resid_post")
    parts = {"embed": cache["hook_embed"]}
    if model.cfg.positional == "standard":
        parts["pos"] = cache["hook_pos_embed"].expand_as(parts["embed"])
    for layer in range(model.cfg.n_layers):
        result = cache.result(layer)
        for head in range(model.cfg.n_heads):
            parts[f"{layer}.{head}"] = result[:, :, head]
        if model.blocks[layer].mlp is not None:
            parts[f"mlp {layer}"] = cache[f"blocks.{layer}.hook_mlp_out"]
    if model.cfg.layernorm:
        ln = model.ln_final
        resid = cache.resid_post(model.cfg.n_layers - 1)
        scale = (resid.var(dim=-1, unbiased=False, keepdim=True) + ln.eps).sqrt()
        parts = {k: (v - v.mean(dim=-1, keepdim=True)) / scale * ln.weight for k, v in parts.items()}
        parts["ln_bias"] = ln.bias.expand_as(resid)
    return {name: part @ model.W_U for name, part in parts.items()}


def correct_token_attribution(parts: dict[str, torch.Tensor], tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each part's contribution to the logit of the actual next token: name -> [batch, pos - 1]
    (entry p is the logit given to token p + 1, as `scores.per_position_loss` indexes losses)."""
    target = tokens[:, 1:, None]
    return {name: part[:, :-1].gather(-1, target)[..., 0] for name, part in parts.items()}
