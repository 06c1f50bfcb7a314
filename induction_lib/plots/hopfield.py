"""Figures of the Hopfield chapter: retrieval error, storage capacity, metastable states.

The numbers come from `induction_lib.hopfield` (computed with its defaults when not given); this module only draws.
"""
from __future__ import annotations

from matplotlib.figure import Figure

from .. import hopfield
from . import OKABE_ITO


def _figure(w=6.0, h=3.2, ncols=1):
    fig = Figure(figsize=(w, h), layout="constrained")
    return fig, fig.subplots(1, ncols)


def plot_retrieval(vs_beta: dict | None = None, vs_n: dict | None = None):
    """One-step retrieval error against beta and against N (the outputs of `retrieval_vs_beta` and
    `retrieval_vs_n`; computed with defaults when omitted)."""
    vs_beta = hopfield.retrieval_vs_beta() if vs_beta is None else vs_beta
    vs_n = hopfield.retrieval_vs_n() if vs_n is None else vs_n
    fig, (a, b) = _figure(6.0, 2.8, 2)
    a.loglog(vs_beta["beta"], vs_beta["error"], "o-", color=OKABE_ITO[0])
    a.set_xlabel(r"$\beta$")
    a.set_ylabel(r"error $|\xi^{new} - x_i| / |x_i|$")
    a.set_title(f"N = {vs_beta['n']}, d = {vs_beta['d']}", fontsize=9)
    b.semilogx(vs_n["n"], vs_n["error"], "o-", color=OKABE_ITO[1])
    b.set_xlabel("N (stored patterns)")
    b.set_title(rf"$\beta$ = {vs_n['beta']:g}, d = {vs_n['d']}", fontsize=9)
    return fig


def plot_capacity(result: hopfield.Capacity | None = None):
    """Success rate against N: the modern net (solid) and the classical one (dashed), one colour per d;
    the classical limit 0.14 d marked with a dotted line per d."""
    result = hopfield.capacity() if result is None else result
    fig, ax = _figure(6.0, 3.8)
    for a, d in enumerate(result.ds):
        col = OKABE_ITO[a % len(OKABE_ITO)]
        ax.semilogx(result.ns, result.modern[a], "-", color=col, label=f"modern, d = {d}")
        ax.semilogx(result.ns, result.classical[a], "--", color=col, label=f"classical, d = {d}")
        ax.axvline(0.14 * d, color=col, ls=":", lw=1)
    ax.set_xlabel("N (stored patterns)")
    ax.set_ylabel("share retrieved")
    ax.set_ylim(-0.03, 1.03)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, ncols=len(result.ds), loc="outside lower center")
    ax.set_title(f"one update (modern, β = {result.beta:g}) vs sign sweeps (classical)", fontsize=9)
    return fig


def plot_metastable(result: dict | None = None):
    """Effective number of patterns the fixed point averages over, against beta."""
    result = hopfield.metastable_states() if result is None else result
    fig, ax = _figure(6.0, 3.0)
    ax.semilogx(result["beta"], result["count"], "o-", color=OKABE_ITO[2])
    ax.axhline(1, color="grey", lw=0.8, ls=":")
    ax.axhline(result["n"], color="grey", lw=0.8, ls=":")
    ax.text(result["beta"][-1], result["n"], "all N patterns (global average)", ha="right", va="bottom", fontsize=7)
    ax.text(result["beta"][-1], 1, "one pattern", ha="right", va="bottom", fontsize=7)
    if result.get("cluster_size"):
        ax.axhline(result["cluster_size"], color=OKABE_ITO[1], lw=0.8, ls="--")
        ax.text(result["beta"][0], result["cluster_size"], "one cluster (metastable)", va="bottom", fontsize=7,
                color=OKABE_ITO[1])
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel("patterns averaged (1/Σp²)")
    return fig
