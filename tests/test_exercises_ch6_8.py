"""The exercise checks added to chapters 6 and 8: scaling_exponent (6.1) and causal_energy (8.3).

For each check: the reference solution passes, unconventional right answers pass (float32, numpy,
tensors, loops, another logarithm), and realistic wrong answers of different kinds are rejected with
an ExerciseError whose message names the mistake. The stub test ("not implemented yet") is in
tests/test_exercises.py (STUB_CALLS).

The reference solutions live here (and in the chapter notebooks), never in the check modules.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import induction_lib as il
from induction_lib import hopfield as hf
from induction_lib.exercises import ExerciseError, check
from induction_lib.exercises.ch5_phase_transition import _exponent_cases
from _fixtures import passes, rejects, book_model, small_model  # noqa: F401


# ================================================================ 6.1 scaling_exponent


def _points(runs, setting, step=lambda tr: tr.mid, missing=None):
    """(value, step) of the runs of `setting`; runs without a transition get `missing(run)` or are left out."""
    out = []
    for run in runs:
        if setting is not None and run["setting"] != setting:
            continue
        tr = il.phase.summary_transition(run)
        if tr is not None:
            out.append((float(run["value"]), step(tr)))
        elif missing is not None:
            out.append((float(run["value"]), missing(run)))
    return out


def exponent_ref(runs, setting):
    x, y = [], []
    for run in runs:
        if run["setting"] != setting:
            continue
        tr = il.phase.summary_transition(run)
        if tr is not None:
            x.append(math.log(run["value"]))
            y.append(math.log(tr.mid))
    if len(set(x)) < 2:
        return None
    return float(np.polyfit(x, y, 1)[0])


def exponent_torch_closed_form(runs, setting):
    """Right: the slope by hand in float32 torch, returned as a 0-d tensor."""
    pts = _points(runs, setting)
    if len({v for v, _ in pts}) < 2:
        return None
    x = torch.tensor([math.log(v) for v, _ in pts], dtype=torch.float32)
    y = torch.tensor([math.log(t) for _, t in pts], dtype=torch.float32)
    xc = x - x.mean()
    return (xc * (y - y.mean())).sum() / (xc * xc).sum()


def exponent_log10_detect(runs, setting):
    """Right: log10 on both axes (the slope is the same), il.phase.detect called directly, numpy float32."""
    x, y = [], []
    for run in (r for r in runs if r["setting"] == setting):
        tr = il.phase.detect(run["steps"], run["repeat_loss"], direction="fall")
        if tr is not None:
            x.append(np.log10(run["value"]))
            y.append(np.log10(tr.mid))
    if len(np.unique(x)) < 2:
        return None
    return np.float32(np.polyfit(x, y, 1)[0])


def _fit(pts, fx=math.log, fy=math.log, intercept=True):
    x = np.array([fx(v) for v, _ in pts])
    y = np.array([fy(t) for _, t in pts])
    if not intercept:
        return float((x * y).sum() / (x * x).sum())
    return float(np.polyfit(x, y, 1)[0])


def _guard(fn):
    """A wrong answer that still returns None when no slope can be fitted (so that it fails on its mistake)."""
    def wrapped(runs, setting):
        if len({v for v, _ in _points(runs, setting)}) < 2:
            return None
        return fn(runs, setting)
    return wrapped


exponent_reversed = _guard(lambda runs, s: _fit([(t, v) for v, t in _points(runs, s)]))
exponent_no_logs = _guard(lambda runs, s: _fit(_points(runs, s), fx=float, fy=float))
exponent_mixed_logs = _guard(lambda runs, s: _fit(_points(runs, s), fx=math.log10))
exponent_sign = _guard(lambda runs, s: -exponent_ref(runs, s))
exponent_no_intercept = _guard(lambda runs, s: _fit(_points(runs, s), intercept=False))
exponent_window_start = _guard(lambda runs, s: _fit(_points(runs, s, step=lambda tr: tr.start)))
exponent_last_step = _guard(lambda runs, s: _fit(_points(runs, s, missing=lambda r: float(r["steps"][-1]))))
exponent_no_filter = _guard(lambda runs, s: _fit(_points(runs, None)))


def exponent_index(runs, setting):
    """Wrong: the index of the record nearest the midpoint instead of the step."""
    pts = []
    for run in runs:
        tr = il.phase.summary_transition(run) if run["setting"] == setting else None
        if tr is not None:
            pts.append((float(run["value"]), float(np.abs(np.asarray(run["steps"], float) - tr.mid).argmin())))
    return None if len({v for v, _ in pts}) < 2 else _fit(pts)


def exponent_value_means(runs, setting):
    """Wrong: the seeds of each value averaged first, then a line through the means."""
    groups = {}
    for v, t in _points(runs, setting):
        groups.setdefault(v, []).append(math.log(t))
    if len(groups) < 2:
        return None
    return float(np.polyfit(np.log(list(groups)), [np.mean(g) for g in groups.values()], 1)[0])


def exponent_hard_coded(runs, setting):
    return -0.39


def exponent_nan_for_one_value(runs, setting):
    """Wrong: np.polyfit on one distinct x (a warning and a meaningless slope) instead of None."""
    pts = _points(runs, setting)
    if len({v for v, _ in pts}) < 2:
        return float("nan")
    return exponent_ref(runs, setting)


def exponent_sorts_in_place(runs, setting):
    runs.sort(key=lambda r: str(r["setting"]))
    return exponent_ref(runs, setting)


def exponent_polyfit_both(runs, setting):
    slope = exponent_ref(runs, setting)
    return None if slope is None else (slope, 5.0)


def test_exponent_cases_are_what_they_say():
    """The premise of the check: the chapter's rule finds every designed midpoint, and no transition where
    there is none."""
    for name, runs, setting, mids, _ in _exponent_cases():
        for run, mid in zip(runs, mids):
            tr = il.phase.summary_transition(run)
            assert (tr is None) == (mid is None), (name, run["setting"], run["value"])
            if mid is not None:
                assert tr.mid == pytest.approx(mid), (name, run["value"])


def test_scaling_exponent_right(capsys):
    sweep = il.phase.load_sweep()
    passes(check.scaling_exponent, exponent_ref, capsys=capsys)
    passes(check.scaling_exponent, exponent_ref, sweep, capsys=capsys)
    passes(check.scaling_exponent, exponent_torch_closed_form, sweep, capsys=capsys)
    passes(check.scaling_exponent, exponent_log10_detect, capsys=capsys)


def test_scaling_exponent_leaves_the_sweep_alone():
    sweep = il.phase.load_sweep()
    before = [dict(r) for r in sweep["runs"]]
    with pytest.raises(ExerciseError, match="changed the runs"):
        check.scaling_exponent(exponent_sorts_in_place, sweep)
    assert sweep["runs"] == before


def test_scaling_exponent_wrong():
    rejects(check.scaling_exponent, exponent_reversed, match="wrong way round")
    rejects(check.scaling_exponent, exponent_no_logs, match="log-log fit")
    rejects(check.scaling_exponent, exponent_mixed_logs, match="same logarithm on both axes")
    rejects(check.scaling_exponent, exponent_sign, match="sign is flipped")
    rejects(check.scaling_exponent, exponent_index, match="index of the record")
    rejects(check.scaling_exponent, exponent_no_intercept, match="subtract the means")
    rejects(check.scaling_exponent, exponent_window_start, match="window's start")
    rejects(check.scaling_exponent, exponent_value_means, match="mean of each value's runs")
    rejects(check.scaling_exponent, exponent_last_step, match="the last step; leave them out")
    rejects(check.scaling_exponent, exponent_no_filter, match="runs of every setting")
    rejects(check.scaling_exponent, exponent_hard_coded, match="same number on every sweep")
    rejects(check.scaling_exponent, exponent_nan_for_one_value, match="return None")
    rejects(check.scaling_exponent, exponent_sorts_in_place, match="changed the runs")
    rejects(check.scaling_exponent, exponent_polyfit_both, match="two numbers")
    rejects(check.scaling_exponent, lambda runs, setting: None, match="returned None, but runs")
    rejects(check.scaling_exponent, -0.39, match="write a function")


# ================================================================ 8.3 causal_energy


def energy_ref(q, k, beta):
    pos = q.shape[-2]
    scores = beta * q @ k.transpose(-1, -2)
    sees = torch.ones(pos, pos, dtype=torch.bool).tril()
    lse = scores.masked_fill(~sees, float("-inf")).logsumexp(-1) / beta
    n_keys = torch.arange(1, pos + 1, dtype=q.dtype)
    m = k.norm(dim=-1).cummax(-1).values
    return -lse + 0.5 * (q * q).sum(-1) + n_keys.log() / beta + 0.5 * m**2


def energy_numpy_loop(q, k, beta):
    """Right: a loop over sequences and queries in float32 numpy, a stable log-sum-exp by hand."""
    qn, kn = q.numpy().astype(np.float32), k.numpy().astype(np.float32)
    b, n, _ = qn.shape
    out = np.zeros((b, n), dtype=np.float32)
    for s in range(b):
        for i in range(n):
            z = beta * kn[s, : i + 1] @ qn[s, i]
            lse = (z.max() + np.log(np.exp(z - z.max()).sum())) / beta
            big = np.linalg.norm(kn[s, : i + 1], axis=-1).max()
            out[s, i] = -lse + 0.5 * qn[s, i] @ qn[s, i] + np.log(i + 1) / beta + 0.5 * big**2
    return out


def energy_einsum_list(q, k, beta):
    """Right: einsum and torch.where in float32, returned as nested lists."""
    q, k = q.float(), k.float()
    pos = q.shape[1]
    s = beta * torch.einsum("bid,bjd->bij", q, k)
    s = torch.where(torch.arange(pos)[None, :] <= torch.arange(pos)[:, None], s, torch.tensor(-float("inf")))
    m = torch.stack([k[:, : i + 1].norm(dim=-1).max(-1).values for i in range(pos)], -1)
    e = -torch.logsumexp(s, -1) / beta + 0.5 * torch.einsum("bid,bid->bi", q, q) \
        + torch.log(torch.arange(1.0, pos + 1)) / beta + 0.5 * m**2
    return e.tolist()


def energy(X, xi, beta):
    """A student's own one-query energy, named like the library's (X [d, N], xi [d])."""
    z = beta * (X.T @ xi)
    return -torch.logsumexp(z, 0) / beta + 0.5 * xi @ xi + math.log(X.shape[1]) / beta \
        + 0.5 * X.norm(dim=0).max() ** 2


def energy_own_helper(q, k, beta):
    """Right: a loop over the student's own helper `energy` (not the library's, though it has its name)."""
    return torch.stack([torch.stack([energy(k[s, : i + 1].T, q[s, i], beta) for i in range(q.shape[1])])
                        for s in range(q.shape[0])])


def _energy(q, k, beta, mask="tril", n="right", m="prefix", inv=True, sign=-1, half_q=0.5, half_m=0.5,
            log_n=True, sqrt_d=False, naive=False, transposed=False, beta_outside=False):
    pos = q.shape[-2]
    s = (k @ q.transpose(-1, -2) if transposed else q @ k.transpose(-1, -2))
    s = s / beta if beta_outside else beta * s
    if sqrt_d:
        s = s / math.sqrt(q.shape[-1])
    ones = torch.ones(pos, pos, dtype=torch.bool)
    allowed = {"tril": ones.tril(), "none": ones, "triu": ones.triu(), "strict": ones.tril(-1)}[mask]
    if naive:
        lse = torch.log(torch.where(allowed, torch.exp(s), torch.zeros_like(s)).sum(-1))
    else:
        lse = s.masked_fill(~allowed, float("-inf")).logsumexp(-1)
    if beta_outside:
        lse = lse * beta
    elif inv:
        lse = lse / beta
    N = {"right": torch.arange(1, pos + 1), "all": torch.full((pos,), pos), "i": torch.arange(pos)}[n].to(q.dtype)
    norms = k.norm(dim=-1)
    M = {"prefix": norms.cummax(-1).values, "all": norms.max(-1, keepdim=True).values, "query": q.norm(dim=-1)}[m]
    e = sign * lse + half_q * (q * q).sum(-1) + half_m * M**2
    return e + N.log() / beta if log_n else e


def _wrong(**kw):
    return lambda q, k, beta: _energy(q, k, beta, **kw)


def energy_library_loop(q, k, beta):
    """Wrong (delegation): the chapter's loop with hf.energy, inside a comprehension."""
    return torch.stack([torch.stack([hf.energy(k[s, : i + 1].T, q[s, i], beta) for i in range(q.shape[1])])
                        for s in range(q.shape[0])])


def energy_pow_in_place(q, k, beta):
    """Wrong: right numbers, but q.pow_ squares the caller's queries in place."""
    pos = q.shape[-2]
    lse = (beta * q @ k.transpose(-1, -2)).masked_fill(~torch.ones(pos, pos, dtype=torch.bool).tril(),
                                                       float("-inf")).logsumexp(-1) / beta
    half_qq = q.pow_(2).sum(-1) / 2
    m = k.norm(dim=-1).cummax(-1).values
    return -lse + half_qq + torch.arange(1, pos + 1, dtype=q.dtype).log() / beta + m**2 / 2


def test_causal_energy_right(book_model, small_model, capsys):
    passes(check.causal_energy, energy_ref, capsys=capsys)
    passes(check.causal_energy, energy_ref, book_model, capsys=capsys)
    passes(check.causal_energy, energy_numpy_loop, small_model, capsys=capsys)
    passes(check.causal_energy, energy_einsum_list, capsys=capsys)
    passes(check.causal_energy, energy_own_helper, capsys=capsys)


def test_causal_energy_wrong():
    rejects(check.causal_energy, _wrong(mask="none"), match="no causal mask")
    rejects(check.causal_energy, _wrong(mask="triu"), match="upper triangle")
    rejects(check.causal_energy, _wrong(mask="strict"), match="its own")
    rejects(check.causal_energy, _wrong(transposed=True), match="score matrix is transposed")
    rejects(check.causal_energy, _wrong(beta_outside=True), match="not the\\s+other way round")
    rejects(check.causal_energy, _wrong(n="all"), match="not the\\s+number of positions")
    rejects(check.causal_energy, _wrong(n="i"), match="N = i \\+ 1 = 1")
    rejects(check.causal_energy, _wrong(m="all"), match="running maximum")
    rejects(check.causal_energy, _wrong(m="query"), match="not of the query")
    rejects(check.causal_energy, _wrong(inv=False), match="left out the β⁻¹")
    rejects(check.causal_energy, _wrong(sign=1), match="minus sign")
    rejects(check.causal_energy, _wrong(half_q=0.0), match="½ ξᵀξ term is missing")
    rejects(check.causal_energy, _wrong(half_m=0.0, log_n=False), match="constants")
    rejects(check.causal_energy, _wrong(half_m=1.0), match="M² needs its factor ½")
    rejects(check.causal_energy, _wrong(half_q=1.0), match="ξᵀξ needs its factor ½")
    rejects(check.causal_energy, _wrong(sqrt_d=True), match="do not\\s+divide by √d again")
    rejects(check.causal_energy, _wrong(naive=True), match="overflowed")
    rejects(check.causal_energy, lambda q, k, b: energy_ref(q, k, b).mean(0), match="no mean over the batch")
    rejects(check.causal_energy, lambda q, k, b: b * q @ k.transpose(-1, -2), match="one number per \\(query, key\\)")
    rejects(check.causal_energy, energy_pow_in_place, match="changed q or k in place")


def test_causal_energy_keeps_the_global_random_state(book_model):
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    check.causal_energy(energy_ref, book_model)
    assert torch.equal(torch.rand(3), want)


def test_causal_energy_refuses_the_library():
    original = hf.energy, hf.lse
    rejects(check.causal_energy, energy_library_loop, match="called hf.energy")
    assert (hf.energy, hf.lse) == original, "the check must restore the library functions it watches"
    rejects(check.causal_energy, lambda q, k, b: hf.energy(k[0].T, q, b), match="called hf.energy")
    from induction_lib.hopfield import lse
    rejects(check.causal_energy, lambda q, k, b: -lse(b, q @ k.transpose(-1, -2)), match="calls hf.lse")
    aliased = {"E": hf.energy}
    exec("def via_alias(q, k, b):\n    return [[E(k[s, :i + 1].T, q[s, i], b) for i in range(q.shape[1])]"
         " for s in range(q.shape[0])]", aliased)
    rejects(check.causal_energy, aliased["via_alias"], match="calls hf.energy")
