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


# ---- the explanatory diagrams (plots.diagrams): page-wide, readable, nothing overlapping ----

def layout(fig: Figure):
    """Draw with Agg; return (renderer, texts [(text, bbox)], boxes [bbox], figure bbox) in pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [(t, t.get_window_extent(renderer)) for ax in fig.axes for t in ax.texts if t.get_text().strip()]
    boxes = [p.get_window_extent(renderer) for ax in fig.axes for p in ax.patches if p.get_gid() == "box"]
    return renderer, texts, boxes, fig.bbox


def shrunk(b, px=1.0):
    from matplotlib.transforms import Bbox
    return Bbox.from_extents(b.x0 + px, b.y0 + px, b.x1 - px, b.y1 - px)


def inside(inner, outer, px=0.5):
    return (inner.x0 >= outer.x0 - px and inner.y0 >= outer.y0 - px and inner.x1 <= outer.x1 + px
            and inner.y1 <= outer.y1 + px)


def curve_points(fig: Figure):
    """Points along every arrow and line of the diagram, in pixels (curves sampled, not their control points)."""
    import numpy as np
    from matplotlib.patches import FancyArrowPatch

    for ax in fig.axes:
        for patch in ax.patches:
            if isinstance(patch, FancyArrowPatch):
                path = patch.get_transform().transform_path(patch.get_path())
                for bezier, _ in path.iter_bezier():
                    yield patch, bezier(np.linspace(0, 1, 25))
        for line in ax.get_lines():
            xy = line.get_transform().transform(line.get_xydata())
            for a, b in zip(xy[:-1], xy[1:]):
                yield line, a + np.linspace(0, 1, 25)[:, None] * (b - a)


def assert_clean_diagram(fig: Figure, min_font: float = 11):
    _, texts, boxes, page = layout(fig)
    assert 9 <= fig.get_figwidth() <= 10.5
    for t, b in texts:
        assert t.get_fontsize() >= min_font, f"{t.get_text()!r} is set in {t.get_fontsize()} pt"
        assert inside(b, page), f"{t.get_text()!r} runs off the figure"
    for i, (t1, b1) in enumerate(texts):
        for t2, b2 in texts[i + 1:]:
            assert not shrunk(b1).overlaps(shrunk(b2)), f"{t1.get_text()!r} overlaps {t2.get_text()!r}"
    for i, b1 in enumerate(boxes):
        for b2 in boxes[i + 1:]:
            assert not shrunk(b1).overlaps(shrunk(b2)), "two boxes overlap"
    for t, b in texts:  # a text sits inside a box or clear of every box
        hits = [box for box in boxes if shrunk(b).overlaps(box)]
        assert len(hits) == 0 or (len(hits) == 1 and inside(b, hits[0])), f"{t.get_text()!r} straddles a box"
    for artist, points in curve_points(fig):  # no arrow or line runs through a text
        for t, b in texts:
            box = shrunk(b, 2.0)
            hit = (points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)
            assert not hit.any(), f"an arrow or line crosses {t.get_text()!r}"


def all_text(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_induction_circuit_is_a_clean_page_wide_diagram():
    fig = plots.induction_circuit((0, 1), (1, 0))
    assert isinstance(fig, Figure)
    text = all_text(fig)
    for label in ("head 0.1", "head 1.0", "previous-token head", "induction head", "K-composition",
                  "previous token was A", "key", "query: A", "value: B", "OV", "logit of B", "match",
                  "position j − 1", "position i", "?"):
        assert label in text, label
    assert_clean_diagram(fig)


def test_induction_circuit_keeps_its_signature():
    import inspect
    from induction_lib.plots import diagrams

    assert plots.induction_circuit is diagrams.induction_circuit
    assert list(inspect.signature(plots.induction_circuit).parameters) == ["prev_head", "ind_head", "ax"]
    assert "head 0.0" in all_text(plots.induction_circuit())          # the defaults
    fig = Figure(figsize=(10, 5.9))
    ax = fig.add_subplot()
    assert plots.induction_circuit(prev_head=(0, 2), ind_head=(1, 3), ax=ax) is fig
    assert "head 0.2" in all_text(fig) and "head 1.3" in all_text(fig)


def test_corruption_positions_marks_the_chapter_4_positions():
    fig = plots.corruption_positions(L=7, c=3)
    assert isinstance(fig, Figure)
    text = all_text(fig)
    for label in ("$c$", "$c{+}1$", "$c{+}2$", "$c{+}L{-}1$", "$c{+}L$", "$c{+}L{+}1$", "BOS", "first copy",
                  "second copy", "B is replaced by X", "previous token was X", "Broken"):
        assert label in text, label
    tokens = [t.get_text() for t in fig.axes[0].texts if t.get_position()[1] == fig.axes[0].texts[0].get_position()[1]]
    assert tokens[0] == "BOS" and len(tokens) == 1 + 2 * 7
    assert tokens[3] == "X" and tokens[3 + 7] == "B"                # c corrupted; its clean token returns at c + L
    assert tokens[2] == tokens[2 + 7] == "A"                        # the query at c + L - 1 is the token of c - 1
    assert_clean_diagram(fig)
    assert "$c{+}2$" not in all_text(plots.corruption_positions(L=5, c=2, two_token=False))
    for L in (4, 6, 10):
        assert_clean_diagram(plots.corruption_positions(L=L, c=2))
    with pytest.raises(ValueError, match="2 <= c <= L - 2"):
        plots.corruption_positions(L=7, c=6)
    with pytest.raises(ValueError, match="from 4 to 10"):
        plots.corruption_positions(L=28, c=11)


def test_hopfield_mapping_pairs_attention_with_the_hopfield_network():
    fig = plots.hopfield_mapping()
    assert isinstance(fig, Figure)
    text = all_text(fig)
    for label in ("keys", "query", "values", "stored patterns", "state", "readout", r"\xi", r"\beta",
                  r"\mathrm{softmax}(QK^\top / \sqrt{d_\mathrm{head}})\,V", r"X\,\mathrm{softmax}(\beta\, X^\top \xi)",
                  r"\beta = 1/\sqrt{d_\mathrm{head}}", "attention", "modern Hopfield network"):
        assert label in text, label
    from matplotlib.patches import FancyArrowPatch
    arrows = [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 4                                          # one pairing per row
    assert_clean_diagram(fig)


def test_the_diagram_checker_catches_an_overlap():
    fig = plots.hopfield_mapping()
    fig.axes[0].text(2.2, 4.15, "a label on top of a box label", fontsize=12)
    with pytest.raises(AssertionError):
        assert_clean_diagram(fig)


def test_make_diagrams_writes_reproducible_svgs(tmp_path):
    import importlib.util
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_diagrams", root / "tools" / "make_diagrams.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    first = {p.name: p.read_bytes() for p in tool.write(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in tool.write(tmp_path / "b")}
    assert sorted(first) == ["corruption_positions.svg", "hopfield_mapping.svg", "induction_circuit.svg"]
    assert first == second, "the SVG files differ between two runs"
    for name, data in first.items():
        assert b"<dc:date>" not in data and b"<text" not in data   # no date; text drawn as paths
        committed = root / "book" / "images" / name
        assert committed.exists(), f"book/images/{name} is missing: run tools/make_diagrams.py"
        version = re.search(rb"Matplotlib v[\w.+-]+", data).group()
        if version in committed.read_bytes():   # same matplotlib: the committed file must be up to date
            assert committed.read_bytes() == data, f"book/images/{name} is stale: run tools/make_diagrams.py"


def test_source_shows_the_library_code_highlighted():
    from induction_lib import scores
    code = plots.source(scores.induction_mask, plots.source)
    text = code.data
    assert text.startswith("def induction_mask(") and "\n\ndef source(*objects)" in text
    assert "highlight" in code._repr_html_()                     # pygments markup: the page shows colours
    with pytest.raises(ValueError, match="at least one"):
        plots.source()
    with pytest.raises(TypeError, match="got 3"):
        plots.source(scores.induction_mask, 3)
