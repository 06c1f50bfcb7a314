"""Plots: each returns a Figure with labelled axes, draws into a given ax, leaks nothing into pyplot."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from induction_lib import plots  # noqa: E402


@pytest.fixture(autouse=True)
def no_pyplot_leaks():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a plot function left a pyplot figure open"


def render(fig: Figure) -> None:
    fig.canvas.draw()  # layout and text actually render


def causal(n, seed=0):
    a = torch.rand(n, n, generator=torch.Generator().manual_seed(seed)).tril()
    return a / a.sum(-1, keepdim=True)


def test_attention_pattern_labels_every_token_when_short():
    labels = [f"t{i}" for i in range(12)]
    fig = plots.attention_pattern(causal(12), labels=labels, title="0.0")
    ax = fig.axes[0]
    render(fig)
    assert isinstance(fig, Figure)
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() == "0.0"
    assert ax.images[0].get_cmap().name == "viridis"
    assert ax.images[0].get_clim() == (0, 1)


def test_attention_pattern_thins_labels_beyond_40_tokens():
    fig = plots.attention_pattern(causal(64), labels=torch.arange(64))
    render(fig)
    ticks = fig.axes[0].get_xticklabels()
    assert 10 <= len(ticks) <= 40 and ticks[1].get_text() == "2"


def test_attention_pattern_draws_into_a_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.attention_pattern(causal(5), ax=ax) is fig
    assert len(ax.images) == 1


def test_attention_patterns_grid():
    fig = plots.attention_patterns(torch.stack([causal(10, s) for s in range(6)]), titles=list("abcdef"), ncols=4)
    render(fig)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6 and [ax.get_title() for ax in panels] == list("abcdef")
    assert fig.get_figwidth() <= 7


def test_head_scores_annotates_layer_dot_head():
    s = torch.tensor([[0.1, 0.9], [0.5, 0.3]])
    fig = plots.head_scores(s, title="induction")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.0\n0.10", "0.1\n0.90", "1.0\n0.50", "1.1\n0.30"]
    signed = plots.head_scores(s - 0.5, vmin=-1, vmax=1, annotate=False)
    assert signed.axes[0].images[0].get_cmap().name == plots.DIVERGING and not signed.axes[0].texts


def test_loss_per_position_marks_repeat_and_chance_and_overlays():
    losses = torch.rand(4, 63) * 5
    fig = plots.loss_per_position(losses, repeat_start=36, repeat_end=63, label="clean", chance=math.log(64))
    ax = fig.axes[0]
    plots.loss_per_position(losses * 2, 36, 63, ax=ax, label="ablated", chance=math.log(64))
    curves = [ln for ln in ax.get_lines() if ln.get_gid() == "loss_curve"]
    assert len(curves) == 2 and curves[0].get_color() != curves[1].get_color()
    assert [p.get_gid() for p in ax.patches].count("repeat_region") == 1
    assert [ln.get_gid() for ln in ax.get_lines()].count("chance") == 1
    assert ax.get_ylim()[1] >= (losses * 2).mean(0).max().item()  # the second curve is not clipped
    assert "chance" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    with pytest.raises(ValueError, match="repeat_start < repeat_end <= 63"):
        plots.loss_per_position(losses, 40, 70)


def test_composition_scores_reports_baseline_and_z():
    fig = plots.composition_scores(torch.tensor([[0.3, 0.1], [0.12, 0.13]]), 0.125, 0.0065, kind="K")
    ax = fig.axes[0]
    assert "K-composition" in ax.get_title() and "0.125" in ax.get_title()
    assert "z=26.9" in ax.texts[0].get_text()
    with pytest.raises(ValueError, match="'Q', 'K', 'V'"):
        plots.composition_scores(torch.zeros(2, 2), 0.1, 0.01, kind="O")


def test_circuit_matrix_is_centred_at_zero():
    m = torch.randn(8, 8)
    fig = plots.circuit_matrix(m, title="OV", xlabel="output logit", ylabel="attended token")
    lo, hi = fig.axes[0].images[0].get_clim()
    assert lo == -hi == -m.abs().max().item()
    assert fig.axes[0].get_xlabel() == "output logit"


def test_ablation_effects_single_and_grouped():
    fig = plots.ablation_effects(torch.tensor([[0.1, 2.0], [0.3, 0.0]]))
    ax = fig.axes[0]
    assert len(ax.patches) == 4 and [t.get_text() for t in ax.get_xticklabels()] == ["0.0", "0.1", "1.0", "1.1"]
    grouped = plots.ablation_effects({"repeated half": torch.rand(2, 2), "first half": torch.rand(2, 2)})
    assert len(grouped.axes[0].patches) == 8 and grouped.axes[0].get_legend() is not None
    named = plots.ablation_effects({"full": 4.1, "K path": 3.9, "Q path": 0.0})
    assert [p.get_height() for p in named.axes[0].patches] == pytest.approx([4.1, 3.9, 0.0])


def test_wrong_shapes_raise_value_errors():
    with pytest.raises(ValueError, match="2 dimensions"):
        plots.attention_pattern(torch.zeros(3))
    with pytest.raises(ValueError, match="3 dimensions"):
        plots.attention_patterns(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="labels has 2 entries but the pattern has 3"):
        plots.attention_pattern(causal(3), labels=["a", "b"])


def test_induction_circuit_diagram_names_the_heads():
    fig = plots.induction_circuit((0, 1), (1, 0))
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "head 0.1" in texts and "head 1.0" in texts and "K-composition" in texts
    assert not fig.axes[0].axison


def test_attention_by_position_one_line_per_head_and_copy_marks():
    curves = {"head 1.0": torch.rand(45), "head 1.1": torch.rand(45)}
    fig = plots.attention_by_position(curves, torch.arange(16, 61), starts=[16, 31, 46])
    render(fig)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_marker() == "."]
    assert [ln.get_label() for ln in lines] == ["head 1.0", "head 1.1"]
    assert lines[0].get_color() != lines[1].get_color() and lines[0].get_xdata()[0] == 16
    marks = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert marks == [15.5, 30.5, 45.5] and ax.get_ylim() == (0, 1.05)
    assert ax.get_ylabel() == "attention on the target"
    with pytest.raises(ValueError, match="has 45 values but positions has 3"):
        plots.attention_by_position(curves, torch.arange(3))
    with pytest.raises(ValueError, match="empty"):
        plots.attention_by_position({})
