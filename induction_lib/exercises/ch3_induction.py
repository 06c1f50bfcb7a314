"""Checks for chapter 3, the induction head: the diagonal score, the OV eigenvalue statistic,
K-composition."""
from __future__ import annotations

import math

import torch

from ._core import (
    as_float,
    as_tensor,
    call,
    close,
    delegates_to,
    exercise,
    expect_shape,
    fail,
    fmt,
    intact,
    per_head_score,
    unchanged,
)
from .ch2_previous_token import random_causal_pattern, uniform_causal_pattern

# ---------------------------------------------------------------- hand-built patterns on BOS + r + r


def _attend(n: int, targets: dict[int, int]) -> torch.Tensor:
    """Query i attends to targets[i]; every other query attends to BOS."""
    p = torch.zeros(n, n, dtype=torch.float64)
    p[:, 0] = 1.0
    for i, j in targets.items():
        p[i] = 0.0
        p[i, j] = 1.0
    return p


def induction_pattern(L: int) -> torch.Tensor:
    """Second copy (queries L+1 … 2L) attends to the token after the earlier occurrence, i - L + 1."""
    return _attend(1 + 2 * L, {i: i - L + 1 for i in range(L + 1, 2 * L + 1)})


def duplicate_token_pattern(L: int) -> torch.Tensor:
    """Second copy attends to the earlier occurrence of the same token, i - L."""
    return _attend(1 + 2 * L, {i: i - L for i in range(L + 1, 2 * L + 1)})


def first_copy_diagonal_pattern(L: int) -> torch.Tensor:
    """The induction diagonal filled only before the second copy (queries L-1 and L); the second
    copy attends to BOS. Its score is 0."""
    return _attend(1 + 2 * L, {i: i - L + 1 for i in range(max(L - 1, 1), L + 1)})


def _induction(fn, pattern, L, case, heads):
    __tracebackhide__ = True
    b = pattern.shape[0]
    return per_head_score(fn, pattern, L, case=case, heads=heads, hints={
        (b,): "one number per batch element: average over the batch axis, keep the head axis",
        (b, heads): "average over the batch axis (dim 0) too: one score per head",
        (): "one score per head, not one number",
    })


@exercise("induction_score")
def induction_score(fn) -> str:
    """fn(pattern [batch, head, q, k], half_len) -> [head]: on BOS + r + r with |r| = half_len = L,
    the mean over the second copy (queries L+1 … 2L) of pattern[..., i, i - L + 1], the diagonal at
    offset -(L-1), averaged over the batch.

    Cases for L = 4 and L = 7: a perfect induction head (1), a duplicate-token head (0), a head
    that fills the diagonal only before the second copy (0), a previous-token head (0), a uniform
    causal head (mean of 1/(i+1) over the second copy); a batch mean; random patterns.
    Rejects: offset -L (the same token: scores 0 on the induction head, 1 on the duplicate head),
    forgetting BOS (queries L … 2L-1: (L-1)/L), the whole diagonal instead of the second copy
    ((L+1)/(L+2): its first entry is query L-1's attention to BOS), the transposed pattern."""
    __tracebackhide__ = True
    from .. import metrics, scores

    lib = delegates_to(fn, metrics.diagonal_induction_score_from_pattern, scores.diagonal_induction_scores)
    if lib:
        fail(f"your function calls the library's {lib}; the exercise is to read the stripe off the "
             f"pattern yourself (the library's version is there to compare with afterwards)")
    n_cases = 0
    for L in (4, 7):
        n = 1 + 2 * L
        heads = [induction_pattern(L), duplicate_token_pattern(L), first_copy_diagonal_pattern(L),
                 _attend(n, {i: i - 1 for i in range(1, n)}), uniform_causal_pattern(n)]
        pattern = torch.stack(heads)[None].repeat(2, 1, 1, 1)
        case = (f"BOS + r + r with half_len={L} ({n} positions), heads (induction, duplicate-token, "
                f"diagonal before the second copy, previous-token, uniform)")
        got = _induction(fn, pattern, L, case, 5).tolist()
        uniform = sum(1 / (i + 1) for i in range(L + 1, 2 * L + 1)) / L
        if not close(got[0], 1.0):
            hint = {
                0.0: "on a perfect induction pattern you get 0: did you read the diagonal at offset -L? That is the "
                     "earlier occurrence of the same token (a duplicate-token head); the induction head attends to "
                     "the token AFTER it, at offset -(L-1) — or the pattern is read transposed ([query, key])",
                (L - 1) / L: "did you forget the BOS token? With BOS at position 0 the second copy is positions "
                             "L+1 … 2L, not L … 2L-1",
                (L + 1) / (L + 2): "you averaged the whole diagonal (it starts at query L-1, whose entry is BOS here); "
                                   "average only over the second copy (queries L+1 … 2L)",
            }
            msg = next((h for v, h in hint.items() if close(got[0], v)), "")
            fail(f"your score for a perfect induction pattern (half_len={L}) is {fmt(got[0])}, expected 1.0"
                 + (f" — {msg}" if msg else ""))
        if not close(got[1], 0.0):
            fail(f"your score for a duplicate-token head (the second copy attends to the same token, offset -L) is "
                 f"{fmt(got[1])}, expected 0 — the induction diagonal is offset -(L-1) = {-(L - 1)}")
        if not close(got[2], 0.0):
            hint = ("you counted queries before the second copy: average over queries L+1 … 2L only"
                    if close(got[2], 2 / (L + 2)) or close(got[2], 1 / L) else "")
            fail(f"your score for a head that fills the induction diagonal only before the second copy is "
                 f"{fmt(got[2])}, expected 0" + (f" — {hint}" if hint else ""))
        if not close(got[3], 0.0):
            fail(f"your score for a previous-token head is {fmt(got[3])}, expected 0 (half_len={L}); the induction "
                 f"diagonal is offset -(half_len-1) = {-(L - 1)}, not -1")
        if not close(got[4], uniform):
            fail(f"your score for a uniform causal head (half_len={L}) is {fmt(got[4])}, expected the mean over "
                 f"queries i = {L + 1} … {2 * L} of 1/(i+1) = {fmt(uniform)}")
        n_cases += 5

    L = 5
    mixed = torch.stack([induction_pattern(L), duplicate_token_pattern(L)])[:, None]  # [2, 1, n, n]
    got = _induction(fn, mixed, L, "a [2, 1, 11, 11] pattern: batch 0 an induction head, batch 1 a duplicate head", 1)
    if not close(got[0].item(), 0.5):
        fail(f"with batch element 0 a perfect induction head and element 1 a duplicate-token head your score is "
             f"{fmt(got[0].item())}, expected their mean 0.5 — average over the batch axis")
    rand = random_causal_pattern(2, 3, 13, seed=5)
    got = _induction(fn, rand, 6, "random causal patterns [2, 3, 13, 13] with half_len=6", 3)
    if (got < -1e-9).any() or (got > 1 + 1e-9).any():
        fail(f"on random causal patterns your scores are {got.tolist()}; an average of attention weights is in [0, 1]")
    got_p = _induction(fn, rand[:, [2, 0, 1]], 6, "random patterns with the heads reordered", 3)
    if not torch.allclose(got_p, got[[2, 0, 1]], atol=1e-6):
        fail("reordering the heads should reorder your scores the same way; each head's score must use only "
             "its own pattern")
    n_cases += 3
    return f"all {n_cases} tests passed."


# ---------------------------------------------------------------- OV eigenvalue statistic


def _rotation(theta: float) -> torch.Tensor:
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


@exercise("ov_eigen_stat")
def ov_eigen_stat(fn) -> str:
    """fn(M [d, d]) -> Σλ / Σ|λ| over the (complex) eigenvalues λ of the square matrix M, e.g. the full
    OV circuit W_E W_OV W_U (Elhage et al. 2021): +1 for a pure copying matrix, -1 for anti-copying.

    Cases: identity (1), -identity (-1), a 90° rotation (eigenvalues ±i: 0), diag(2, -1) (1/3),
    [[1, -2], [2, 1]] (eigenvalues 1 ± 2i: 1/√5), a similar matrix P D P⁻¹ (same as D), random
    matrices (real, in [-1, 1], unchanged by scaling, sign flips with M).
    Rejects: singular values instead of eigenvalues (identity and -identity both 1), the trace over
    Σ|diagonal| (1 on [[1, -2], [2, 1]]), no normalisation, eigvalsh (assumes a symmetric M)."""
    __tracebackhide__ = True
    from .. import circuits

    lib = delegates_to(fn, circuits.eigenvalue_stat, circuits.ov_eigenvalue_stat)
    if lib:
        fail(f"your function calls the library's {lib}; compute the eigenvalues and the statistic yourself")
    cases = [
        ("the 5×5 identity", torch.eye(5, dtype=torch.float64), 1.0),
        ("minus the 5×5 identity", -torch.eye(5, dtype=torch.float64), -1.0),
        ("a 90° rotation [[0, -1], [1, 0]] (eigenvalues ±i)", _rotation(math.pi / 2), 0.0),
        ("diag(2, -1)", torch.diag(torch.tensor([2.0, -1.0], dtype=torch.float64)), 1 / 3),
        ("[[1, -2], [2, 1]] (eigenvalues 1 ± 2i)", torch.tensor([[1.0, -2.0], [2.0, 1.0]], dtype=torch.float64),
         1 / math.sqrt(5)),
    ]
    g = torch.Generator().manual_seed(7)
    # P = Q1 · diag(1, 1.5, 2, 2.5) · Q2 with Q1, Q2 random orthogonal: cond(P) = 2.5 exactly, and the
    # eigenvalues of P D P⁻¹ (cond(D) = 6) are well separated, so float32 gets them to ~1e-6. (The old
    # P = randn + 2I had cond ≈ 3300 and failed a right float32 answer.)
    Q1 = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
    Q2 = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
    P = Q1 @ torch.diag(torch.tensor([1.0, 1.5, 2.0, 2.5], dtype=torch.float64)) @ Q2
    D = torch.diag(torch.tensor([3.0, 1.0, -1.0, -0.5], dtype=torch.float64))
    cases.append(("P·diag(3, 1, -1, -0.5)·P⁻¹ (a non-symmetric matrix with eigenvalues 3, 1, -1, -0.5)",
                  P @ D @ torch.linalg.inv(P), 2.5 / 5.5))
    # Tolerance 1e-4: a float32 answer is off by ~1e-6 on these matrices (all with condition number
    # ≤ 15), every wrong answer below by ≥ 0.05.
    tol = 1e-4
    for name, M, want in cases:
        before = M.clone()
        v = as_float(call(fn, M, case=name), f"your statistic for {name}")
        unchanged(before, M, "matrix")
        if not close(v, want, tol):
            hint = ""
            if want == -1.0 and close(v, 1.0):
                hint = ("singular values are never negative: use the eigenvalues (torch.linalg.eigvals), which are "
                        "-1 here")
            elif close(v, M.trace().item()) and not close(want, M.trace().item()):
                hint = "normalise: divide the sum of the eigenvalues by the sum of their absolute values"
            elif "±" in name:
                hint = ("this matrix has complex eigenvalues (they come in conjugate pairs); use torch.linalg.eigvals, "
                        "which returns them, and their complex moduli |λ|; the diagonal and eigvalsh assume a "
                        "symmetric matrix")
            elif "P·diag" in name:
                hint = ("M is not symmetric: eigvalsh (and anything that assumes symmetry) gives wrong eigenvalues; "
                        "use torch.linalg.eigvals")
            fail(f"your statistic for {name} is {fmt(v)}, expected {fmt(want)}" + (f" — {hint}" if hint else ""))
    # a random 6×6 matrix made well conditioned the same way (cond = 4)
    M = (torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0]
         @ torch.diag(torch.linspace(1.0, 4.0, 6, dtype=torch.float64))
         @ torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0])
    v = as_float(call(fn, M, case="a random 6×6 matrix"), "your statistic for a random 6×6 matrix")
    if not -1 - 1e-9 <= v <= 1 + 1e-9:
        fail(f"your statistic for a random 6×6 matrix is {fmt(v)}; |Σλ| ≤ Σ|λ|, so it lies in [-1, 1]")
    v3 = as_float(call(fn, 3 * M, case="3 × a random matrix"), "your statistic for 3·M")
    vneg = as_float(call(fn, -M, case="minus a random matrix"), "your statistic for -M")
    if not close(v3, v, tol):
        fail(f"scaling the matrix by 3 changed your statistic from {fmt(v)} to {fmt(v3)}; it should not "
             f"(divide by Σ|λ|)")
    if not close(vneg, -v, tol):
        fail(f"negating the matrix should negate the statistic: got {fmt(v)} for M and {fmt(vneg)} for -M")
    return f"all {len(cases) + 3} tests passed."


# ---------------------------------------------------------------- K-composition


def _e(i: int, d: int = 4) -> torch.Tensor:
    v = torch.zeros(d, dtype=torch.float64)
    v[i] = 1.0
    return v


@exercise("k_composition")
def k_composition(fn) -> str:
    """fn(W_OV_A [d_model, d_model], W_QK_B [d_model, d_model]) -> the K-composition score of head A
    (layer 0) into head B (layer 1), row-vector convention (Elhage et al. 2021; TransformerLens):
    ‖W_OV^A · W_QK^Bᵀ‖_F / (‖W_OV^A‖_F · ‖W_QK^B‖_F).

    Cases (d_model = 4, eᵢ the unit vectors): A = e₀e₁ᵀ with B = e₂e₁ᵀ (1: A writes e₁, which B's
    keys read) and B = e₁e₂ᵀ (0: that is Q-composition); 2A, 3B (still 1); A = B = I (1/2);
    A = diag(1, 1, 0, 0), B = diag(1, 0, 0, 0) (1/√2); random low-rank matrices (in [0, 1],
    scale-invariant). Rejects: the Q-composition order W_OV^A·W_QK^B, Bᵀ·A and Aᵀ·B orders,
    no normalisation (6 for 2A, 3B), the spectral norm instead of Frobenius (1 for A = B = I)."""
    __tracebackhide__ = True
    from .. import circuits

    lib = delegates_to(fn, circuits.composition_score, circuits.composition_scores)
    if lib:
        fail(f"your function calls the library's {lib}; write the product and the norms yourself")
    outer = torch.outer
    I4 = torch.eye(4, dtype=torch.float64)
    cases = [
        ("W_OV^A = e0 e1ᵀ, W_QK^B = e2 e1ᵀ (A writes e1; B's keys read e1)",
         outer(_e(0), _e(1)), outer(_e(2), _e(1)), 1.0,
         {0.0: "you computed another product: for K-composition A's output feeds B's keys, so the product is "
               "W_OV^A @ W_QK^B.T (W_OV^A @ W_QK^B is Q-composition)"}),
        ("W_OV^A = e0 e1ᵀ, W_QK^B = e1 e2ᵀ (A writes e1; B's queries read e1, its keys read e2)",
         outer(_e(0), _e(1)), outer(_e(1), _e(2)), 0.0,
         {1.0: "that is Q-composition (A's output feeding B's queries: W_OV^A @ W_QK^B); K-composition is "
               "W_OV^A @ W_QK^B.T"}),
        ("W_OV^A = 2·e0 e1ᵀ, W_QK^B = 3·e2 e1ᵀ", 2 * outer(_e(0), _e(1)), 3 * outer(_e(2), _e(1)), 1.0,
         {6.0: "normalise: divide by ‖W_OV^A‖_F · ‖W_QK^B‖_F",
          3.0: "divide by both norms, ‖W_OV^A‖_F and ‖W_QK^B‖_F", 2.0: "divide by both norms"}),
        ("W_OV^A = W_QK^B = the 4×4 identity", I4, I4, 0.5,
         {1.0: "use the Frobenius norm (torch.linalg.matrix_norm's default, or .norm()), not the spectral norm "
               "(ord=2)", 2.0: "normalise: divide by ‖W_OV^A‖_F · ‖W_QK^B‖_F"}),
        ("W_OV^A = diag(1, 1, 0, 0), W_QK^B = diag(1, 0, 0, 0)", torch.diag(torch.tensor([1.0, 1, 0, 0])).double(),
         torch.diag(torch.tensor([1.0, 0, 0, 0])).double(), 1 / math.sqrt(2), {}),
    ]
    for name, A, B, want, hints in cases:
        a0, b0 = A.clone(), B.clone()
        v = as_float(call(fn, A, B, case=name), f"your score for {name}")
        unchanged(a0, A, "W_OV_A")
        unchanged(b0, B, "W_QK_B")
        # 1e-5: float32 is off by ~1e-7 here; the nearest wrong answer by ≥ 0.2
        if not close(v, want, 1e-5):
            msg = next((h for bad, h in hints.items() if close(v, bad, 1e-5)), "")
            fail(f"your K-composition score for {name} is {fmt(v)}, expected {fmt(want)}"
                 + (f" — {msg}" if msg else ""))
    g = torch.Generator().manual_seed(11)
    A = torch.randn(8, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 8, generator=g, dtype=torch.float64)
    B = torch.randn(8, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 8, generator=g, dtype=torch.float64)
    v = as_float(call(fn, A, B, case="random rank-2 matrices"), "your score for random rank-2 matrices")
    if not 0 <= v <= 1 + 1e-9:
        fail(f"your score for random rank-2 matrices is {fmt(v)}; ‖XY‖_F ≤ ‖X‖_F‖Y‖_F, so it lies in "
             f"[0, 1]")
    v2 = as_float(call(fn, 5 * A, 0.1 * B, case="rescaled random matrices"), "your score for rescaled matrices")
    if not close(v2, v, 1e-5):
        fail(f"rescaling the matrices changed your score from {fmt(v)} to {fmt(v2)}; the normalisation should "
             f"make it scale-free")
    return f"all {len(cases) + 2} tests passed."


# ---------------------------------------------------------------- the K-circuit, built by hand


def _k_circuit_models():
    """(description, model, src, dst): random attention-only models whose layer and head counts differ
    from each other and from the book's, vocab ≠ d_model ≠ d_head, so a transposed factor or an index
    in the wrong place gives a wrong shape or wrong numbers."""
    from ..config import ModelConfig
    from ..model import Transformer

    out = []
    for seed, (n_layers, n_heads, vocab, d_model, d_head), src, dst in (
            (1, (3, 3, 11, 8, 3), (0, 1), (2, 1)),     # (head, layer) swapped is a valid, wrong head
            (2, (3, 2, 13, 10, 4), (1, 0), (2, 1)),
            (3, (2, 3, 9, 12, 5), (0, 2), (1, 0))):
        torch.manual_seed(seed)
        cfg = ModelConfig(d_vocab=vocab, n_ctx=16, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                          d_head=d_head)
        out.append((f"a random {n_layers}-layer x {n_heads}-head model (d_vocab {vocab}, d_model {d_model}, "
                    f"d_head {d_head}), src = {src[0]}.{src[1]}, dst = {dst[0]}.{dst[1]}",
                    Transformer(cfg).eval(), src, dst))
    return out


@exercise("k_circuit")
def k_circuit(fn) -> str:
    """fn(model, src, dst) -> [d_vocab, d_vocab]: the QK circuit of head dst whose key side goes
    through head src's OV circuit, W_E W_QK^dst (W_E W_OV^src)ᵀ with W_QK = W_Q W_Kᵀ, W_OV = W_V W_O
    (row-vector convention), unscaled. Entry [a, b] is the attention score (before the 1/√d_head) that
    dst's query for token a gives to a key holding what src writes when it attends to token b.

    The expected matrix is built from that definition, one token's query and one token's key vector
    at a time (q_a = W_E[a] W_Q^dst, k_b = (W_E[b] W_V^src W_O^src) W_K^dst, entry q_a · k_b), on
    three random models of other geometries. Rejects, by name: the transpose, W_K W_Qᵀ (query and key
    swapped), the Q-composition order (src's output on the query side), [head, layer] indexing, the
    1/√d_head scale, W_U in place of W_E on the key side, src and dst swapped; delegation to
    circuits.k_composition_circuit (detected by name, and by a call during the check); a model left
    changed."""
    __tracebackhide__ = True
    from .. import circuits

    lib = delegates_to(fn, circuits.k_composition_circuit)
    if lib:
        fail(f"your function calls the library's {lib}; the exercise is to build the circuit from the "
             f"weights (the library's version is there to compare with afterwards)")
    original = circuits.k_composition_circuit
    used = []

    def spy(*args, **kwargs):
        used.append(True)
        return original(*args, **kwargs)

    n = 0
    for what, m, src, dst in _k_circuit_models():
        (l0, h0), (l1, h1) = src, dst
        with torch.no_grad():
            W_E, W_U = m.W_E.double(), m.W_U.double()
            A0, A1 = m.blocks[l0].attn, m.blocks[l1].attn
            q = W_E @ A1.W_Q[h1].double()                                        # [vocab, d_head]
            written = W_E @ A0.W_V[h0].double() @ A0.W_O[h0].double()             # [vocab, d_model]
            k = written @ A1.W_K[h1].double()
            want = q @ k.T
            qk = A1.W_Q[h1].double() @ A1.W_K[h1].double().T
            ov = A0.W_V[h0].double() @ A0.W_O[h0].double()
        circuits.k_composition_circuit = spy
        try:
            with intact(m, what):
                out = call(fn, m, src, dst, case=what)
        finally:
            circuits.k_composition_circuit = original
        if used:
            fail("your function called circuits.k_composition_circuit; build the circuit from the weights "
                 "yourself (model.W_E, model.W_Q, … indexed [layer, head])")
        if out is None:
            fail(f"on {what} your function returned None; did you forget `return`?")
        if isinstance(out, circuits.FactoredMatrix):
            fail(f"on {what} you returned a FactoredMatrix; return the [d_vocab, d_vocab] tensor (its .AB)")
        got = as_tensor(out, "your K-circuit")
        V, d = m.cfg.d_vocab, m.cfg.d_model
        expect_shape(got, (V, V), f"on {what} your K-circuit", {
            (V, d): "the key side needs W_E too: (W_E W_OV^src)ᵀ is [d_model, d_vocab]",
            (d, V): "the query side needs W_E too: W_E W_QK^dst is [d_vocab, d_model]",
            (d, d): "multiply by W_E on both sides: rows are query tokens, columns key-side tokens"})

        def off(x, got=got):
            return ((got - x).abs().max() / x.abs().max()).item()

        # float32 weights give a relative error ~1e-6; every wrong answer below is off by O(1)
        if off(want) <= 1e-4:
            n += 1
            continue
        wrong = [
            (want.T, "you returned the transpose: rows are the query's token (W_E W_QK^dst), columns the "
                     "token the src head moved into the key position ((W_E W_OV^src)ᵀ)"),
            (W_E @ qk.T @ written.T, "you used W_K W_Qᵀ: the QK matrix is W_Q W_Kᵀ, query on the left"),
            (W_E @ ov @ qk @ W_E.T, "that is the Q-composition circuit (src's output on the query side); "
                                    "for K-composition src's output enters dst's key: W_E W_QK (W_E W_OV)ᵀ"),
            (want / math.sqrt(m.cfg.d_head), "you divided by √d_head; the circuit is the unscaled score, "
                                             "like circuits.full_qk_circuit"),
            (W_E @ qk @ ov @ W_U, "that is W_E W_QK W_OV W_U: the key side is (W_E W_OV)ᵀ, the embedding "
                                  "of the token src attends to, not the unembedding"),
        ]
        if l1 < m.cfg.n_heads and h1 < m.cfg.n_layers and l0 < m.cfg.n_heads and h0 < m.cfg.n_layers:
            B0, B1 = m.blocks[h0].attn, m.blocks[h1].attn
            with torch.no_grad():
                swapped = ((W_E @ B1.W_Q[l1].double()) @ (W_E @ B0.W_V[l0].double() @ B0.W_O[l0].double()
                                                          @ B1.W_K[l1].double()).T)
            wrong.append((swapped, "you indexed the weights [head, layer]; model.W_Q and friends are indexed "
                                   "[layer, head]"))
        with torch.no_grad():
            roles = (W_E @ A0.W_Q[h0].double()) @ (W_E @ A1.W_V[h1].double() @ A1.W_O[h1].double()
                                                    @ A0.W_K[h0].double()).T
        wrong.append((roles, "you swapped src and dst: dst (the later head) supplies W_QK, src (the "
                             "earlier one) W_OV"))
        hint = next((h for x, h in wrong if x.shape == got.shape and off(x) <= 1e-4), "")
        fail(f"on {what} your K-circuit is off by {off(want):.3g} (largest error relative to the largest "
             f"entry)" + (f" — {hint}" if hint else ": entry [a, b] should be the score dst's query "
                                                    "for token a gives a key holding src's output for "
                                                    "token b"))
    return f"all {n} models passed."
