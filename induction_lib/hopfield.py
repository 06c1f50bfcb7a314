"""Hopfield networks, and attention read as one Hopfield update.

Three parts, read in order:

1. The modern (continuous) Hopfield network of Ramsauer et al. (2020): stored patterns X = (x_1 ... x_N),
   a d x N matrix (one pattern per column, as in the paper), a state xi in R^d, the energy
   `E(xi) = -lse(beta, X^T xi) + 1/2 xi^T xi + beta^-1 log N + 1/2 M^2` and the update
   `xi <- X softmax(beta X^T xi)`, which never increases the energy. Retrieval experiments return
   plain numbers (one-step error against beta and N, storage capacity, metastable states).
2. The classical binary Hopfield network (Hopfield 1982), for comparison: Hebbian weights, sign
   updates one unit at a time, the energy -1/2 s^T W s; it stores about 0.14 d patterns.
3. The trained transformer through this lens: one attention head is one Hopfield update with
   beta = 1/sqrt(d_head), the keys as stored patterns and the query as the state; the induction head is
   an associative memory whose keys say "the previous token was A"; when A occurred twice, its state is
   a metastable mixture of two memories and the prediction splits.

Arguments come in the order (X, xi, beta), as in the chapter's exercises. States may carry leading batch
axes: `xi` is [..., d] and the functions work on the last axis.
The figures of these experiments are drawn by `induction_lib.plots.hopfield`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from . import heads
from .data import repeated_tokens

# ---------------------------------------------------------------- 1. the modern Hopfield network


def _check_patterns(X: torch.Tensor) -> torch.Tensor:
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or X.shape[1] < 1:
        raise ValueError(f"stored patterns X must be a [d, N] tensor (one pattern per column, N >= 1), "
                         f"got {getattr(X, 'shape', type(X).__name__)}")
    if not X.dtype.is_floating_point:
        X = X.float()
    return X


def _check_state(xi: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    if not isinstance(xi, torch.Tensor) or xi.dim() < 1 or xi.shape[-1] != X.shape[0]:
        raise ValueError(f"the state xi must be [..., d] with d = {X.shape[0]} (the patterns' dimension), "
                         f"got {getattr(xi, 'shape', type(xi).__name__)}")
    return xi.to(X.dtype)


def _check_beta(beta, allow_zero: bool = False) -> float:
    ok = isinstance(beta, (int, float)) and not isinstance(beta, bool) and math.isfinite(beta)
    if not (ok and (beta > 0 or (allow_zero and beta == 0))):
        raise ValueError(f"beta must be a {'non-negative' if allow_zero else 'positive'} finite number, got {beta!r}")
    return float(beta)


def lse(beta: float, z: torch.Tensor) -> torch.Tensor:
    """The log-sum-exp at inverse temperature beta over the last axis: beta^-1 log sum_i exp(beta z_i)."""
    return torch.logsumexp(beta * z, dim=-1) / beta


def energy(X: torch.Tensor, xi: torch.Tensor, beta: float) -> torch.Tensor:
    """Ramsauer et al.'s energy of state xi [..., d] for patterns X [d, N]; returns [...].

    E(xi) = -beta^-1 log sum_i exp(beta x_i^T xi) + 1/2 xi^T xi + beta^-1 log N + 1/2 M^2,
    M = the largest pattern norm. The constants make E >= 0 (Ramsauer et al. 2020, Lemma A1)."""
    X = _check_patterns(X)
    xi, beta = _check_state(xi, X), _check_beta(beta)
    n = X.shape[1]
    m = X.norm(dim=0).max()
    return -lse(beta, xi @ X) + 0.5 * (xi * xi).sum(-1) + math.log(n) / beta + 0.5 * m ** 2


def weights(X: torch.Tensor, xi: torch.Tensor, beta: float) -> torch.Tensor:
    """How much the update takes from each stored pattern: softmax(beta X^T xi),
    [..., N]. (beta = 0 gives every pattern the same weight 1/N.)"""
    X = _check_patterns(X)
    overlaps = _check_state(xi, X) @ X                          # x_i^T xi, [..., N]
    return torch.softmax(_check_beta(beta, allow_zero=True) * overlaps, dim=-1)


def update(X: torch.Tensor, xi: torch.Tensor, beta: float) -> torch.Tensor:
    """One Hopfield update: xi <- X softmax(beta X^T xi). [..., d] -> [..., d]."""
    X = _check_patterns(X)
    return weights(X, xi, beta) @ X.T


@dataclass
class Retrieval:
    """The result of iterating the update from a start state.

    state: the last state [..., d]; weights: softmax(beta X^T state) [..., N] (what it averages);
    energies: [steps + 1, ...] the energy before the first update and after each one (never increasing);
    steps: updates done; converged: every state moved less than `tol` in the last update."""

    state: torch.Tensor
    weights: torch.Tensor
    energies: torch.Tensor
    steps: int
    converged: bool


def retrieve(X: torch.Tensor, xi: torch.Tensor, beta: float, max_steps: int = 100, tol: float = 1e-6) -> Retrieval:
    """Update until a fixed point (max change < tol) or max_steps updates, recording the energy."""
    X = _check_patterns(X)
    xi, beta = _check_state(xi, X), _check_beta(beta)
    energies = [energy(X, xi, beta)]
    converged, steps = False, 0
    for steps in range(1, max_steps + 1):
        new = update(X, xi, beta)
        change = (new - xi).abs().max().item() if new.numel() else 0.0
        xi = new
        energies.append(energy(X, xi, beta))
        if change < tol:
            converged = True
            break
    return Retrieval(xi, weights(X, xi, beta), torch.stack(energies), steps, converged)


def effective_count(w: torch.Tensor) -> torch.Tensor:
    """How many patterns a weight vector averages over: the participation ratio 1 / sum_i w_i^2
    (1 for a single pattern, N for the uniform average over N). [..., N] -> [...]."""
    return 1.0 / (w * w).sum(-1)


def separation(X: torch.Tensor) -> torch.Tensor:
    """Ramsauer et al.'s separation of each pattern, Delta_i = x_i^T x_i - max_{j != i} x_i^T x_j, [N].
    Retrieval in one step is exponentially accurate in beta * Delta_i."""
    X = _check_patterns(X)
    g = X.T @ X
    if X.shape[1] == 1:
        return torch.full((1,), float("inf"), dtype=X.dtype)
    off = g.clone()
    off.fill_diagonal_(float("-inf"))
    return g.diagonal() - off.max(dim=1).values


# -- experiments with random patterns --


def _generator(seed) -> torch.Generator:
    return seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))


def random_patterns(d: int, n: int, seed=0, binary: bool = False, batch: tuple = ()) -> torch.Tensor:
    """N random patterns as the columns of a [*batch, d, N] tensor: unit vectors uniform on the sphere,
    or (binary=True) independent +-1 entries."""
    if not (isinstance(d, int) and d >= 1 and isinstance(n, int) and n >= 1):
        raise ValueError(f"need integers d >= 1 and n >= 1, got d={d!r}, n={n!r}")
    g = _generator(seed)
    if binary:
        return torch.where(torch.rand(*batch, d, n, generator=g) < 0.5, -1.0, 1.0)
    x = torch.randn(*batch, d, n, generator=g)
    return x / x.norm(dim=-2, keepdim=True)


def noisy_queries(X: torch.Tensor, noise: float, seed=0) -> torch.Tensor:
    """One query per stored pattern, [..., N, d]: x_i plus Gaussian noise of norm about noise * |x_i|."""
    g = _generator(seed)
    q = X.transpose(-1, -2)
    eps = torch.randn(q.shape, generator=g) / math.sqrt(q.shape[-1])
    return q + noise * q.norm(dim=-1, keepdim=True) * eps


def flip_bits(X: torch.Tensor, n_flips: int, seed=0) -> torch.Tensor:
    """One query per +-1 pattern, [..., N, d]: x_i with exactly n_flips entries (chosen at random) negated."""
    g = _generator(seed)
    q = X.transpose(-1, -2).clone()
    if n_flips:
        idx = torch.rand(q.shape, generator=g).argsort(dim=-1)[..., :n_flips]
        q.scatter_(-1, idx, -q.gather(-1, idx))
    return q


def _one_step(X: torch.Tensor, beta: float, noise: float, seed) -> dict:
    """One update from a noisy copy of every pattern: mean relative error, mass on the target, accuracy."""
    q = noisy_queries(X, noise, seed)                    # [N, d]
    w = weights(X, q, beta)                              # [N, N]
    new = w @ X.T
    err = (new - X.T).norm(dim=-1) / X.norm(dim=0)
    target = torch.arange(X.shape[1])
    return {"error": err.mean().item(), "mass": w.diagonal().mean().item(),
            "accuracy": ((new @ X).argmax(-1) == target).float().mean().item()}


def retrieval_vs_beta(d: int = 64, n: int = 64, betas=None, noise: float = 0.3, seed: int = 0) -> dict:
    """One-step retrieval of N random unit patterns from noisy copies, for a range of beta.

    Returns lists over beta: "error" (mean |xi_new - x_i| / |x_i|), "mass" (mean weight on the right
    pattern), "accuracy" (share of queries whose retrieved state is closest to the right pattern), and
    "separation" (the patterns' mean Delta_i). Error falls like exp(-beta * Delta) once beta * Delta > log N."""
    betas = [0.5, 1, 2, 4, 8, 16, 32, 64, 128] if betas is None else list(betas)
    X = random_patterns(d, n, seed)
    rows = [_one_step(X, _check_beta(b), noise, seed + 1) for b in betas]
    out = {"beta": betas, "d": d, "n": n, "noise": noise, "separation": separation(X).mean().item()}
    out.update({k: [r[k] for r in rows] for k in ("error", "mass", "accuracy")})
    return out


def retrieval_vs_n(d: int = 64, ns=None, beta: float = 8.0, noise: float = 0.3, seed: int = 0) -> dict:
    """One-step retrieval at fixed beta as more random unit patterns are stored: lists over N of
    "error", "mass", "accuracy" and "separation" (more patterns crowd each other: Delta shrinks)."""
    ns = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] if ns is None else list(ns)
    rows, seps = [], []
    for n in ns:
        X = random_patterns(d, n, seed)
        seps.append(separation(X).mean().item())
        rows.append(_one_step(X, _check_beta(beta), noise, seed + 1))
    out = {"n": ns, "d": d, "beta": beta, "noise": noise, "separation": seps}
    out.update({k: [r[k] for r in rows] for k in ("error", "mass", "accuracy")})
    return out


# ---------------------------------------------------------------- 2. the classical binary network


def hebbian_weights(X: torch.Tensor) -> torch.Tensor:
    """Hebb's rule for +-1 patterns X [..., d, N]: W = X X^T / d with a zero
    diagonal, [..., d, d]."""
    d = X.shape[-2]
    W = X @ X.transpose(-1, -2) / d
    return W - torch.diag_embed(W.diagonal(dim1=-2, dim2=-1))


def binary_energy(W: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """E(s) = -1/2 s^T W s for states s [..., d] and weights W [..., d, d] (broadcast)."""
    return -0.5 * ((s[..., None, :] @ W).squeeze(-2) * s).sum(-1)


def binary_sweep(W: torch.Tensor, s: torch.Tensor, seed=0) -> torch.Tensor:
    """One asynchronous sweep: every unit, in a random order, becomes sign(W s)
    (ties keep the unit).

    Updating one unit at a time never increases the energy (W symmetric, zero
    diagonal)."""
    g = _generator(seed)
    s = s.clone()
    for i in torch.randperm(s.shape[-1], generator=g).tolist():
        h = (W[..., i, :] * s).sum(-1)
        s[..., i] = torch.where(h == 0, s[..., i], torch.sign(h))
    return s


def binary_retrieve(W: torch.Tensor, s: torch.Tensor, max_sweeps: int = 30, seed=0) -> Retrieval:
    """Sweep until no unit changes (a fixed point) or max_sweeps; energies recorded after each sweep.
    (`weights` of the result is empty: the binary net has no softmax.)"""
    g = _generator(seed)
    energies = [binary_energy(W, s)]
    converged, steps = False, 0
    for steps in range(1, max_sweeps + 1):
        new = binary_sweep(W, s, g)
        energies.append(binary_energy(W, new))
        same = torch.equal(new, s)
        s = new
        if same:
            converged = True
            break
    return Retrieval(s, torch.empty(0), torch.stack(energies), steps, converged)


# ---------------------------------------------------------------- capacity and metastable states


def _default_ns(limit: int = 4096) -> list[int]:
    ns = sorted({round(2 ** (k / 2)) for k in range(0, 2 * int(math.log2(limit)) + 1)})
    return [n for n in ns if n <= limit]


@dataclass
class Capacity:
    """Success rates of both networks for +-1 patterns.

    modern / classical: [len(ds), len(ns)] share of trials in which the noisy query of a stored pattern
    was retrieved (overlap >= `threshold` with it); capacity_modern / capacity_classical: for each d,
    the largest N of the grid whose success rate is >= `level` (None: not even N = ns[0]; N = ns[-1]
    means at least that many, the grid ends there)."""

    ds: list
    ns: list
    modern: torch.Tensor
    classical: torch.Tensor
    capacity_modern: list
    capacity_classical: list
    beta: float
    n_flips: list
    threshold: float
    level: float
    trials: int

    def table(self) -> str:
        rows = [f"{'d':>4} {'flips':>5} {'classical N':>12} {'/d':>6} {'modern N':>10}"]
        for d, f, c, m in zip(self.ds, self.n_flips, self.capacity_classical, self.capacity_modern):
            mod = "-" if m is None else (f">={m}" if m == self.ns[-1] else str(m))
            cl = "-" if c is None else str(c)
            ratio = "-" if c is None else f"{c / d:.2f}"
            rows.append(f"{d:>4} {f:>5} {cl:>12} {ratio:>6} {mod:>10}")
        return "\n".join(rows)


def _capacity_of(rates: torch.Tensor, ns: list, level: float):
    # the largest N before the first failure (success rates fall with N, up to sampling noise)
    best = None
    for n, r in zip(ns, rates.tolist()):
        if r < level:
            break
        best = n
    return best


def capacity(ds=(8, 16, 32, 64), ns=None, trials: int = 24, noise: float = 0.1, beta: float = 1.0,
             threshold: float = 0.95, level: float = 0.5, seed: int = 0) -> Capacity:
    """Storage capacity of the modern and the classical network on the same task.

    For each d and N: `trials` times, draw N random +-1 patterns, flip round(noise * d) entries of one of
    them, and retrieve: the modern net by ONE update at inverse temperature beta, read out as sign(xi);
    the classical net (Hebbian weights) by asynchronous sign sweeps to a fixed point. Success = overlap
    s^T x / d >= threshold with the pattern. The classical net fails beyond about 0.14 d patterns
    (Amit, Gutfreund & Sompolinsky 1985); the modern one stores exponentially many in d."""
    ns = _default_ns() if ns is None else sorted(int(n) for n in ns)
    g = _generator(seed)
    modern = torch.zeros(len(ds), len(ns))
    classical = torch.zeros(len(ds), len(ns))
    flips = []
    for a, d in enumerate(ds):
        k = round(noise * d)
        flips.append(k)
        Ws, targets, starts = [], [], []
        for b, n in enumerate(ns):
            X = random_patterns(d, n, g, binary=True, batch=(trials,))    # [T, d, N]
            x0 = X[..., 0]                                               # the pattern to retrieve
            q = flip_bits(x0[..., None], k, g)[..., 0, :]                # [T, d]
            w = torch.softmax(beta * (q[:, None, :] @ X).squeeze(1), dim=-1)
            xi = (X @ w[..., None]).squeeze(-1)
            modern[a, b] = ((torch.sign(xi) * x0).sum(-1) / d >= threshold).float().mean()
            Ws.append(hebbian_weights(X))
            targets.append(x0)
            starts.append(q)
        # all N at once: the classical dynamics only needs the [d, d] weights
        W, x0, s = torch.cat(Ws), torch.cat(targets), torch.cat(starts)
        final = binary_retrieve(W, s, seed=g).state
        ok = ((final * x0).sum(-1) / d >= threshold).float().view(len(ns), trials)
        classical[a] = ok.mean(-1)
    return Capacity(list(ds), ns, modern, classical,
                    [_capacity_of(modern[a], ns, level) for a in range(len(ds))],
                    [_capacity_of(classical[a], ns, level) for a in range(len(ds))],
                    beta, flips, threshold, level, trials)


def clustered_patterns(d: int = 32, n_clusters: int = 4, cluster_size: int = 4, spread: float = 0.3,
                       seed=0) -> torch.Tensor:
    """Unit patterns in groups, [d, n_clusters * cluster_size] (a cluster's patterns are adjacent columns):
    each is a random cluster centre plus `spread` times a random direction, normalised."""
    g = _generator(seed)
    centres = torch.randn(d, n_clusters, generator=g)
    centres = centres / centres.norm(dim=0)
    offs = torch.randn(d, n_clusters, cluster_size, generator=g) / math.sqrt(d)
    X = (centres[:, :, None] + spread * offs).reshape(d, -1)
    return X / X.norm(dim=0)


def metastable_states(X: torch.Tensor | None = None, betas=None, n_starts: int = 32, noise: float = 0.3,
                      seed: int = 0, max_steps: int = 200) -> dict:
    """What the fixed point averages over, as beta grows.

    From noisy copies of stored patterns (default patterns: `clustered_patterns()`, 4 clusters of 4 similar
    patterns, cosine about 0.9 inside a cluster, about 0 between clusters),
    iterate to a fixed point and measure `effective_count` of its weights (1 = one pattern; N = the global
    average). Small beta: one global average; intermediate: metastable states averaging a cluster of
    similar patterns; large beta: single patterns. Returns lists over beta: "count" (mean effective
    count), "retrieved" (share of fixed points within 0.1 of the pattern they started from), "steps";
    and "cluster_size" (4 for the default patterns, None for yours)."""
    cluster_size = 4 if X is None else None
    X = clustered_patterns(seed=seed) if X is None else _check_patterns(X)
    betas = [round(2 ** (k / 2), 2) for k in range(-2, 17)] if betas is None else list(betas)
    g = _generator(seed + 1)
    idx = torch.randint(0, X.shape[1], (n_starts,), generator=g)
    starts = noisy_queries(X[:, idx], noise, g)
    counts, retrieved, steps = [], [], []
    for b in betas:
        r = retrieve(X, starts, _check_beta(b), max_steps=max_steps)
        counts.append(effective_count(r.weights).mean().item())
        retrieved.append(((r.state - X[:, idx].T).norm(dim=-1) < 0.1).float().mean().item())
        steps.append(r.steps)
    return {"beta": betas, "count": counts, "retrieved": retrieved, "steps": steps, "n": X.shape[1],
            "cluster_size": cluster_size}


# ---------------------------------------------------------------- 3. attention as a Hopfield update


def _head_cache(model, tokens, layer, head):
    _, cache = model.run_with_cache(tokens, names=lambda n: n.startswith(f"blocks.{layer}.attn."))
    q, k, v = (cache[f"blocks.{layer}.attn.hook_{n}"][:, :, head] for n in "qkv")   # [b, pos, d_head]
    return cache, q, k, v


@dataclass
class AttentionAsHopfield:
    """One head's attention recomputed as Hopfield updates, and how far it is from the model's own.

    pattern: the model's pattern [b, q, k]; hopfield_pattern: row i = softmax(beta K_{<=i} q_i);
    z: the model's pattern-weighted values [b, pos, d_head]; hopfield_z: V^T softmax(...);
    retrieved: the updated state in key space, K^T softmax(...) (the pattern that was recalled)."""

    layer: int
    head: int
    beta: float
    pattern: torch.Tensor
    hopfield_pattern: torch.Tensor
    z: torch.Tensor
    hopfield_z: torch.Tensor
    retrieved: torch.Tensor
    max_pattern_diff: float
    max_z_diff: float


@torch.no_grad()
def attention_as_hopfield(model, tokens: torch.Tensor | None = None, layer: int | None = None,
                          head: int | None = None) -> AttentionAsHopfield:
    """Recompute one head as Ramsauer et al.'s update, query by query, from the cached q, k, v.

    For query position i the stored patterns are the keys X = K[:i+1]^T (causal: only those exist),
    the state is xi = q_i, beta = 1/sqrt(d_head): the pattern row is `weights(X, q_i, beta)` and the
    head's z_i is the same weights applied to the values V[:i+1] (the retrieved pattern read out through
    W_V). Default: the induction head on BOS + r + r."""
    if layer is None or head is None:
        layer, head = heads.induction_head(model)
    tokens = repeated_tokens(4, 20, model.cfg.d_vocab, seed=1) if tokens is None else model.check_tokens(tokens)
    cache, q, k, v = _head_cache(model, tokens, layer, head)
    pattern = cache.pattern(layer)[:, head]
    z = cache[f"blocks.{layer}.attn.hook_z"][:, :, head]
    beta = 1.0 / math.sqrt(model.cfg.d_head)
    b, n, _ = q.shape
    hp = torch.zeros_like(pattern)
    hz, ret = torch.zeros_like(z), torch.zeros_like(k)
    for s in range(b):
        for i in range(n):
            X = k[s, : i + 1].T                        # stored patterns: the keys so far, [d_head, i+1]
            w = weights(X, q[s, i], beta)              # softmax(beta X^T xi)
            hp[s, i, : i + 1] = w
            ret[s, i] = X @ w                          # the Hopfield update of the state xi = q_i
            hz[s, i] = v[s, : i + 1].T @ w             # ... read out through the values
    return AttentionAsHopfield(layer, head, beta, pattern, hp, z, hz, ret,
                               (pattern - hp).abs().max().item(), (z - hz).abs().max().item())


@dataclass
class InductionMemory:
    """The induction head as an associative memory, measured on repeated random tokens.

    Per query of the second copy (flattened over sequences): n_keys (N, the stored patterns it sees),
    beta_eff, key_separation, logit_gap, mass (attention on the matching key), top1 (the matching key
    has the highest score), bound (Hopfield's lower bound on the mass, 1 / (1 + (N-1) exp(-logit_gap))).
    See `induction_memory` for the definitions."""

    layer: int
    head: int
    beta: float
    n_keys: torch.Tensor
    beta_eff: torch.Tensor
    key_separation: torch.Tensor
    logit_gap: torch.Tensor
    mass: torch.Tensor
    top1: torch.Tensor
    bound: torch.Tensor

    def summary(self) -> dict:
        """Medians of beta_eff, key_separation, logit_gap and log(N - 1); mean (and median) mass, the share
        of queries whose best key is the matching one (top1), and the mean bound."""
        med = lambda t: t.float().median().item()  # noqa: E731
        return {"layer": self.layer, "head": self.head, "beta": self.beta,
                "beta_eff": med(self.beta_eff), "key_separation": med(self.key_separation),
                "logit_gap": med(self.logit_gap), "log_n_minus_1": med(torch.log(self.n_keys.float() - 1)),
                "mass": self.mass.mean().item(), "mass_median": med(self.mass),
                "top1": self.top1.float().mean().item(), "bound": self.bound.mean().item()}


@torch.no_grad()
def induction_memory(model, layer: int | None = None, head: int | None = None, batch: int = 16,
                     half_len: int = 20, seed: int = 7) -> InductionMemory:
    """Measure retrieval by the induction head on BOS + r + r (r of distinct random tokens).

    At query i in the second copy (current token A = r_t), the matching key is j* = i - half_len + 1,
    the position right after A's first occurrence, whose key says "the previous token was A".
    Definitions, with q = q_i, k_j the head's keys for j <= i, d = d_head:
      beta_eff       = |q| / sqrt(d): the inverse temperature when the state is the unit query direction
                       q^ = q / |q| and the stored patterns are the raw keys (the logit is beta_eff q^.k_j);
      key_separation = q^.k_{j*} - max_{j != j*} q^.k_j: how far the matching key stands out along the
                       query direction (Ramsauer's separation Delta, measured from the query);
      logit_gap      = beta_eff * key_separation = the gap between the matching key's attention score
                       and the next best one;
      mass           = the attention weight on j*;
      bound          = 1 / (1 + (N - 1) exp(-logit_gap)) <= mass, with N = i + 1 keys.
    Retrieval is sharp when logit_gap >> log(N - 1)."""
    if layer is None or head is None:
        layer, head = heads.induction_head(model)
    if 1 + 2 * half_len > model.cfg.n_ctx:
        raise ValueError(f"half_len={half_len} does not fit the context n_ctx={model.cfg.n_ctx}")
    tokens = repeated_tokens(batch, half_len, model.cfg.d_vocab, seed=seed,
                             distinct=half_len < model.cfg.d_vocab)
    cache, q, k, _ = _head_cache(model, tokens, layer, head)
    pattern = cache.pattern(layer)[:, head]
    d = model.cfg.d_head
    rows = {key: [] for key in ("n", "beta_eff", "sep", "gap", "mass", "top1")}
    for i in range(1 + half_len, 1 + 2 * half_len):
        j = i - half_len + 1
        qi, keys = q[:, i], k[:, : i + 1]                          # [b, d], [b, i+1, d]
        norm = qi.norm(dim=-1)
        proj = (keys @ (qi / norm[:, None])[..., None]).squeeze(-1)  # q^.k_j, [b, i+1]
        others = proj.clone()
        others[:, j] = float("-inf")
        sep = proj[:, j] - others.max(-1).values
        rows["n"].append(torch.full((q.shape[0],), i + 1))
        rows["beta_eff"].append(norm / math.sqrt(d))
        rows["sep"].append(sep)
        rows["gap"].append(norm / math.sqrt(d) * sep)
        rows["mass"].append(pattern[:, i, j])
        rows["top1"].append(proj.argmax(-1) == j)
    cat = {key: torch.cat(v) for key, v in rows.items()}
    bound = 1.0 / (1.0 + (cat["n"] - 1) * torch.exp(-cat["gap"]))
    return InductionMemory(layer, head, 1.0 / math.sqrt(d), cat["n"], cat["beta_eff"], cat["sep"], cat["gap"],
                           cat["mass"], cat["top1"], bound)


@dataclass
class TwoOccurrenceSplit:
    """A token A seen twice before, followed first by B, then by C; the query is a third A.

    Per trial: attn_b, attn_c (the induction head's attention on the positions of B and C),
    score_b, score_c (its attention scores q.k / sqrt(d) there), prob_b, prob_c (the model's next-token
    probabilities), hopfield_b = softmax over the two keys' scores, its weight on B (the two-memory
    Hopfield prediction of the split); prob_share_b = prob_b / (prob_b + prob_c)."""

    layer: int
    head: int
    attn_b: torch.Tensor
    attn_c: torch.Tensor
    score_b: torch.Tensor
    score_c: torch.Tensor
    prob_b: torch.Tensor
    prob_c: torch.Tensor
    hopfield_b: torch.Tensor
    prob_share_b: torch.Tensor
    single_attn: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    single_prob: torch.Tensor = field(default_factory=lambda: torch.empty(0))

    def summary(self) -> dict:
        """Means over trials, and: attn_both (attention on the two memories together), prob_both,
        corr_hopfield_vs_prob_share and mean_abs_diff (how well the two-memory Hopfield split predicts the
        split of the model's probabilities between B and C), mixed (share of trials in which both memories
        get more than 0.2 of the attention: a metastable mixture, not a pick of one)."""
        both = self.attn_b + self.attn_c
        corr = torch.corrcoef(torch.stack([self.hopfield_b, self.prob_share_b]))[0, 1].item()
        return {"layer": self.layer, "head": self.head, "trials": len(self.attn_b),
                "attn_b": self.attn_b.mean().item(), "attn_c": self.attn_c.mean().item(),
                "attn_both": both.mean().item(),
                "prob_b": self.prob_b.mean().item(), "prob_c": self.prob_c.mean().item(),
                "prob_both": (self.prob_b + self.prob_c).mean().item(),
                "hopfield_b": self.hopfield_b.mean().item(), "prob_share_b": self.prob_share_b.mean().item(),
                "corr_hopfield_vs_prob_share": corr,
                "mean_abs_diff": (self.hopfield_b - self.prob_share_b).abs().mean().item(),
                "mixed": ((self.attn_b > 0.2) & (self.attn_c > 0.2)).float().mean().item(),
                "single_attn": self.single_attn.mean().item() if self.single_attn.numel() else float("nan"),
                "single_prob": self.single_prob.mean().item() if self.single_prob.numel() else float("nan")}


def two_occurrence_tokens(n_trials: int, length: int, vocab: int, seed: int = 0):
    """Sequences BOS ... A B ... A C ... A, all other tokens distinct and different from A, B, C.

    Returns (tokens [n_trials, length], pos_b, pos_c, a, b, c), each of the last five a [n_trials] tensor;
    the second pair (A C) is at a random place after the first (A B)."""
    if length < 8 or length - 1 > vocab - 1:
        raise ValueError(f"length must be in [8, vocab={vocab}]: {length - 1} distinct tokens are needed, got {length}")
    g = _generator(seed)
    rows, pb, pc, toks = [], [], [], []
    for _ in range(n_trials):
        perm = 1 + torch.randperm(vocab - 1, generator=g)
        a, b, c = perm[:3].tolist()
        fill = perm[3:].tolist()
        last = length - 1
        p1 = int(torch.randint(1, last - 4, (1,), generator=g))           # A at p1, B at p1 + 1
        p2 = int(torch.randint(p1 + 2, last - 1, (1,), generator=g))      # A at p2, C at p2 + 1
        seq, f = [0] * length, iter(fill)
        for p in range(1, length):
            seq[p] = next(f)
        seq[p1], seq[p1 + 1], seq[p2], seq[p2 + 1], seq[last] = a, b, a, c, a
        rows.append(seq)
        pb.append(p1 + 1)
        pc.append(p2 + 1)
        toks.append((a, b, c))
    t = torch.tensor(toks)
    return torch.tensor(rows), torch.tensor(pb), torch.tensor(pc), t[:, 0], t[:, 1], t[:, 2]


@torch.no_grad()
def _last_query(model, tokens: torch.Tensor, layer: int, head: int):
    """At the last position: the head's attention pattern [T, key], its attention scores q.k/sqrt(d)
    [T, key], and the model's next-token probabilities [T, vocab]."""
    logits, cache = model.run_with_cache(tokens, names=lambda n: n.startswith(f"blocks.{layer}.attn."))
    q = cache.q(layer)[:, -1, head]                                     # [T, d]
    k = cache.k(layer)[:, :, head]                                      # [T, pos, d]
    scores = (k @ q[..., None]).squeeze(-1) / math.sqrt(model.cfg.d_head)
    return cache.pattern(layer)[:, head, -1], scores, logits[:, -1].softmax(-1)


def occurrence_tokens(n_trials: int, length: int, vocab: int, k: int = 3, seed: int = 0):
    """Sequences BOS ... A F1 ... A F2 ... A Fk ... A: the current token A occurred k times before, each
    time followed by another continuation F1..Fk; all other tokens distinct. Returns (tokens [T, length],
    positions of F1..Fk [T, k], continuations F1..Fk [T, k])."""
    if not (isinstance(k, int) and k >= 1) or not 3 * k + 4 <= length <= vocab - 1 - k:
        raise ValueError(f"need k >= 1 and 3k + 4 <= length <= vocab - 1 - k (all other tokens distinct); "
                         f"got k={k}, length={length}, vocab={vocab}")
    g = _generator(seed)
    rows, where, conts = [], [], []
    last = length - 1
    for _ in range(n_trials):
        perm = (1 + torch.randperm(vocab - 1, generator=g)).tolist()
        a, fs, fill = perm[0], perm[1:k + 1], iter(perm[k + 1:])
        # k starts for the pairs "A F", at least 2 apart, inside [1, last - 2]
        starts = sorted(torch.randperm(last - 2 - k, generator=g)[:k].tolist())
        starts = [1 + s + i for i, s in enumerate(starts)]               # spread: pairs never overlap
        seq = [0] + [next(fill) for _ in range(1, length)]
        for p, f in zip(starts, fs):
            seq[p], seq[p + 1] = a, f
        seq[last] = a
        rows.append(seq)
        where.append([p + 1 for p in starts])
        conts.append(fs)
    return torch.tensor(rows), torch.tensor(where), torch.tensor(conts)


@torch.no_grad()
def match_attention(model, match: int = 1, n_trials: int = 256, seed: int = 0, length: int = 40) -> torch.Tensor:
    """How much each head looks up a repeat of `match` tokens, [n_layers, n_heads].

    Sequences of `length` distinct random tokens after BOS, whose last `match` tokens copy `match` tokens
    from a random earlier place (match = 1: BOS ... A C ... A, the current token seen once before). Returns
    the mean attention from the last position to the key right after the earlier occurrence (C's
    position), the key an induction head should find. With match = 1 only the current token matches; with
    match = 2 the token before it matches too."""
    if not (isinstance(match, int) and match >= 1) or length > model.cfg.d_vocab or length < 2 * match + 3:
        raise ValueError(f"need match >= 1 and 2 match + 3 <= length <= d_vocab; got match={match}, "
                         f"length={length}, d_vocab={model.cfg.d_vocab}")
    g = _generator(seed)
    rows, keys = [], []
    for _ in range(n_trials):
        seq = [0] + (1 + torch.randperm(model.cfg.d_vocab - 1, generator=g))[: length - 1].tolist()
        s = int(torch.randint(1, length - 2 * match, (1,), generator=g))   # the original: s .. s + match - 1
        seq[length - match:] = seq[s:s + match]                             # the copy ends at the query
        rows.append(seq)
        keys.append(s + match)
    _, cache = model.run_with_cache(torch.tensor(rows), names=lambda n: n.endswith("hook_pattern"))
    r = torch.arange(n_trials)
    return torch.stack([cache.pattern(layer)[r, :, -1, torch.tensor(keys)].mean(0)
                        for layer in range(model.cfg.n_layers)])


def find_lookup_head(model, n_trials: int = 256, seed: int = 0, length: int = 40) -> tuple[int, int]:
    """(layer, head) in layers >= 1 (layer 0 in a one-layer model) that attends most to the token after
    a lone earlier occurrence of the current token (`match_attention` with match = 1): the head that looks
    up a single repeated token. In a model with several induction heads it need not be
    `heads.induction_head`'s: a head can attend only when the token before the query matches as well."""
    a = match_attention(model, 1, n_trials, seed, length)
    first = 1 if a.shape[0] > 1 else 0
    flat = int(a[first:].argmax())
    return first + flat // a.shape[1], flat % a.shape[1]


@dataclass
class OccurrenceSplit:
    """The current token A seen k times before, followed by F1..Fk. Per trial and continuation [T, k]:
    attention of the induction head on each continuation's position, its attention scores there, the
    model's probability of each continuation, the k-memory Hopfield prediction softmax(scores), and the
    model's probability shares (probabilities renormalised over the k continuations)."""

    layer: int
    head: int
    attn: torch.Tensor
    scores: torch.Tensor
    probs: torch.Tensor
    hopfield: torch.Tensor
    prob_share: torch.Tensor

    def summary(self) -> dict:
        """Means over trials, per continuation (earliest first)."""
        return {"layer": self.layer, "head": self.head, "trials": self.attn.shape[0],
                "attn": self.attn.mean(0).tolist(), "prob": self.probs.mean(0).tolist(),
                "hopfield": self.hopfield.mean(0).tolist(), "prob_share": self.prob_share.mean(0).tolist()}


@torch.no_grad()
def occurrence_split(model, k: int = 3, n_trials: int = 64, seed: int = 0,
                     length: int = 48, layer: int | None = None,
                     head: int | None = None) -> OccurrenceSplit:
    """How the prediction splits between k earlier continuations of the current
    token (a k-memory metastable state), measured on the model, with the Hopfield
    prediction softmax over the k keys' attention scores. `two_occurrence_split` is
    the k = 2 case with a single-occurrence control."""
    if layer is None or head is None:
        layer, head = heads.induction_head(model)
    vocab = model.cfg.d_vocab
    tokens, where, conts = occurrence_tokens(n_trials, length, vocab, k, seed)
    pattern, scores, probs = _last_query(model, tokens, layer, head)
    attn, s = pattern.gather(1, where), scores.gather(1, where)   # [T, k]
    p = probs.gather(1, conts)                                     # [T, k]
    share = p / p.sum(-1, keepdim=True)
    return OccurrenceSplit(layer, head, attn, s, p, s.softmax(-1), share)


@torch.no_grad()
def two_occurrence_split(model, n_trials: int = 64, seed: int = 0, length: int = 40,
                         layer: int | None = None, head: int | None = None) -> TwoOccurrenceSplit:
    """Measure how the prediction splits when the current token A occurred twice before (A B ... A C ... A).

    The induction head's state is then a mixture of two memories (a metastable state of the Hopfield
    picture). Measured on the trained model: the head's attention on B's and C's positions, the model's
    probabilities of B and C, and the two-memory Hopfield prediction softmax([s_B, s_C]) from the head's
    attention scores. A control with the first A replaced by an unrelated token (A occurred once,
    followed by C) gives `single_attn` (attention on C) and `single_prob` (probability of C)."""
    if layer is None or head is None:
        layer, head = heads.induction_head(model)
    tokens, pb, pc, _, b, c = two_occurrence_tokens(n_trials, length, model.cfg.d_vocab, seed)
    rows = torch.arange(n_trials)
    last = length - 1
    pattern, scores, probs = _last_query(model, tokens, layer, head)
    s_b, s_c = scores[rows, pb], scores[rows, pc]
    p_b, p_c = probs[rows, b], probs[rows, c]
    hop_b = torch.softmax(torch.stack([s_b, s_c], -1), -1)[:, 0]
    # control: the first A replaced by a token that occurs nowhere in the sequence
    control = tokens.clone()
    for t in range(n_trials):
        used = set(control[t].tolist())
        fresh = next(x for x in range(1, model.cfg.d_vocab) if x not in used)
        control[t, pb[t] - 1] = fresh
    logits1, cache1 = model.run_with_cache(control, names=lambda n: n == f"blocks.{layer}.attn.hook_pattern")
    single_attn = cache1.pattern(layer)[rows, head, last, pc]
    single_prob = logits1[:, last].softmax(-1)[rows, c]
    return TwoOccurrenceSplit(layer, head, pattern[rows, pb], pattern[rows, pc], s_b, s_c, p_b, p_c, hop_b,
                              p_b / (p_b + p_c), single_attn, single_prob)
