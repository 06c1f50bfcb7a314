"""Transition detection (induction_lib.phase) on hand-built curves with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import induction_lib as il
from induction_lib import phase, plots


def logistic(steps, at, width, high=4.0, low=0.2):
    """A curve that falls from `high` to `low` around step `at`."""
    t = np.asarray(steps, dtype=float)
    return low + (high - low) / (1 + np.exp((t - at) / width))


def noisy(y, sigma, seed=0):
    return y + sigma * np.random.default_rng(seed).standard_normal(len(y))


# ---------------------------------------------------------------- detection on hand-built curves


@pytest.mark.parametrize("at, width", [(400, 10), (900, 30), (250, 3)])
def test_sigmoid_drop_is_found_at_its_step(at, width):
    steps = np.arange(0, 1501, 5)
    tr = phase.detect(steps, logistic(steps, at, width))
    assert tr is not None
    assert abs(tr.mid - at) <= 5                      # within one record
    assert tr.start < at < tr.end
    assert tr.end - tr.start == pytest.approx(2 * math.log(9) * width, rel=0.25, abs=5)  # 10-90 % window
    assert tr.before == pytest.approx(4.0, abs=0.05) and tr.after == pytest.approx(0.2, abs=0.05)
    assert tr.change < 0 and tr.r2 > 0.99


def test_noisy_drop_on_an_irregular_grid():
    steps = np.concatenate([np.arange(50, 600, 25), np.arange(600, 3001, 50)])
    y = noisy(logistic(steps, 1800, 60), 0.05, seed=1)
    tr = phase.detect(steps, y, direction="fall")
    assert tr is not None and abs(tr.mid - 1800) <= 50


def test_tensors_are_accepted():
    steps = torch.arange(0, 1000, 10)
    tr = phase.detect(steps, torch.tensor(logistic(steps.numpy(), 500, 20)))
    assert tr is not None and abs(tr.mid - 500) <= 10


def test_rising_score_and_direction():
    steps = np.arange(0, 1000, 10)
    score = 1.0 - logistic(steps, 300, 15, high=0.95, low=0.05)       # rises from 0.05 to 0.95
    up = phase.detect(steps, score, direction="rise")
    assert up is not None and abs(up.mid - 300) <= 10 and up.change > 0
    assert phase.detect(steps, score, direction="fall") is None
    with pytest.raises(ValueError, match="direction"):
        phase.detect(steps, score, direction="down")


def test_flat_curve_has_no_transition():
    steps = np.arange(0, 1500, 25)
    assert phase.detect(steps, np.full(len(steps), 4.1)) is None
    assert phase.detect(steps, noisy(np.full(len(steps), 4.1), 0.05)) is None


def test_slow_steady_decline_is_not_a_transition():
    steps = np.arange(0, 1501, 25)
    assert phase.detect(steps, np.linspace(4.3, 3.8, len(steps))) is None          # the 1-layer control
    assert phase.detect(steps, 4.3 - 2.0 * steps / steps[-1]) is None               # large but gradual


def test_small_step_is_not_a_transition():
    steps = np.arange(0, 1000, 10)
    assert phase.detect(steps, logistic(steps, 500, 10, high=4.1, low=4.0)) is None


def test_drop_without_a_plateau_before_it_is_not_a_transition():
    steps = np.arange(0, 1500, 25)
    assert phase.detect(steps, logistic(steps, 0, 40)) is None      # already falling at the first record


def test_a_bump_before_the_drop_does_not_move_it():
    steps = np.arange(0, 1500, 10)
    y = logistic(steps, 900, 25) + 0.3 * np.exp(-((steps - 300) / 40) ** 2)
    tr = phase.detect(steps, y, direction="fall")
    assert tr is not None and abs(tr.mid - 900) <= 10


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="same length"):
        phase.detect([0, 1, 2, 3], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="increasing"):
        phase.detect([0, 2, 1, 3], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="finite"):
        phase.detect([0, 1, 2, 3], [1.0, float("nan"), 3.0, 4.0])


# ---------------------------------------------------------------- runs, crossings, figures


def fake_history(at=400, n_layers=2, n_heads=2, steps=1000, every=10, form=True):
    """A History whose curves are logistic steps at `at` (or flat when form=False)."""
    t = np.arange(0, steps + 1, every)
    frac = 1 - logistic(t, at, 10, high=1.0, low=0.0) if form else np.zeros(len(t))
    h = il.History()
    h.steps = [int(s) for s in t]
    h.repeat_loss = list(4.15 - 3.9 * frac)
    h.first_half_loss = list(4.2 + 0.2 * np.exp(-((t - at) / 20) ** 2) * form)
    h.train_loss = list(4.15 - 1.5 * frac)
    h.icl = [0.0] * len(t)
    h.every_step_loss = list(np.interp(np.arange(steps + 1), t, h.train_loss))
    for f in frac:
        prev = torch.full((n_layers, n_heads), 0.05)
        ind = torch.full((n_layers, n_heads), 0.03)
        prev[0, 0] = 0.05 + 0.7 * f
        ind[-1, -1] = 0.03 + 0.85 * f
        h.prev_token.append(prev)
        h.induction.append(ind)
    return h


def test_transitions_of_a_run_and_the_bump():
    h = fake_history(at=400)
    found = phase.transitions(h)
    for name in ("repeat loss", "previous-token score", "induction score", "ICL score"):
        assert found[name] is not None and abs(found[name].mid - 400) <= 10, name
    assert phase.transition_step(h) == pytest.approx(400, abs=10)
    peak, rise = phase.bump(h, found["repeat loss"])
    assert abs(peak - 400) <= 10 and rise == pytest.approx(0.2, abs=0.02)
    flat = phase.transitions(fake_history(form=False))
    assert all(v is None for v in flat.values())
    assert phase.transition_step(fake_history(form=False)) is None


def test_crossing_steps():
    steps = np.arange(0, 1000, 5)
    y = logistic(steps, 500, 20)
    tr = phase.detect(steps, y)
    half = phase.crossing(steps, y, tr, 0.5)
    assert abs(half - 500) <= 5
    assert phase.crossing(steps, y, tr, 0.1) < half < phase.crossing(steps, y, tr, 0.9)
    with pytest.raises(ValueError, match="frac"):
        phase.crossing(steps, y, tr, 1.5)


def test_first_below_and_value_at():
    steps = [0, 10, 20, 30, 40]
    loss = [4.0, 3.0, 1.2, 1.1, 0.4]               # two stages: a drop to ~1, then a second drop
    assert phase.first_below(steps, loss, 1.5) == 20
    assert phase.first_below(steps, loss, 0.5) == 40
    assert phase.first_below(steps, loss, 0.1) is None
    assert phase.value_at(steps, loss, 15) == pytest.approx(2.1)
    assert phase.value_at(steps, loss, 40) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="outside the recorded steps"):
        phase.value_at(steps, loss, 41)
    with pytest.raises(ValueError, match="same length"):
        phase.first_below(steps, loss[:3], 1.0)


def test_summary_round_trip_and_sweep_figure():
    runs = []
    for value, at in ((1, 300), (2, 500)):
        s = phase.summary(fake_history(at=at))
        assert phase.summary_transition(s).mid == pytest.approx(at, abs=10)
        runs.append({"setting": "lr", "value": value, "seed": 0, **s})
    runs.append({"setting": "lr", "value": 3, "seed": 0, **phase.summary(fake_history(form=False))})
    fig = plots.phase.sweep_figure({"settings": {"lr": [1, 2, 3]}, "runs": runs})
    ax = fig.axes[0]
    dots = [(line.get_xdata()[0], line.get_ydata()[0], line.get_marker()) for line in ax.lines]
    # one mark per run at its value's tick: a dot at the transition step, a cross at the top for none
    assert [d[2] for d in dots] == ["o", "o", "x"]
    assert abs(dots[0][1] - 300) <= 10 and abs(dots[1][1] - 500) <= 10 and dots[2][1] == max(runs[0]["steps"])
    assert [round(d[0]) for d in dots] == [0, 1, 2]


def test_figures_draw_the_history_and_its_transition():
    h = fake_history(at=400)
    fig = plots.phase.dynamics_figure(h)
    loss_ax, icl_ax, prev_ax, ind_ax = fig.axes[:4]
    repeat = [line for line in loss_ax.lines if line.get_label() == "held-out loss, repeated copy"][0]
    assert list(repeat.get_ydata()) == pytest.approx(h.repeat_loss)
    window = phase.transitions(h)["repeat loss"]
    band = loss_ax.patches[0]                              # the shaded 10-90 % window
    assert band.get_x() == pytest.approx(window.start)
    assert band.get_x() + band.get_width() == pytest.approx(window.end)
    assert len(ind_ax.get_legend().get_texts()) == h.induction[0].shape[1]   # one line per head
    one = fake_history(at=400, n_layers=1, form=False)
    fig = plots.phase.side_by_side({"2 layers": h, "1 layer": one})
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert titles == ["2 layers", "1 layer"]
    notes = [t.get_text() for ax in fig.axes[:2] for t in ax.texts]
    assert notes[0].startswith("transition at step") and notes[1] == "no transition detected"


def test_formation_order_from_history_and_from_summary():
    h = fake_history(at=400)
    for run in (h, phase.summary(h)):
        order = phase.formation_order(run)
        assert set(order) == {"previous-token score", "induction score", "repeat loss"}
        for name, at in order.items():
            assert at[0.1] < at[0.5] < at[0.9], name
            assert abs(at[0.5] - 400) <= 10, name
    flat = phase.formation_order(fake_history(form=False))
    assert all(v is None for at in flat.values() for v in at.values())
    fig = plots.phase.side_by_side({"summary": phase.summary(h), "history": h})
    assert [t.get_text() for ax in fig.axes[:2] for t in ax.texts][0] == [t.get_text() for ax in fig.axes[:2] for t in ax.texts][1]


def test_progress_crossing_reads_slow_and_falling_curves():
    steps = list(range(0, 200, 10))
    slow = [min(1.0, s / 150) for s in steps]            # a slow linear rise, no step to fit
    # the levels are the medians of the first and last five records: 2/15 and 1; half-way is 17/30,
    # first reached at step 90 (0.6); 90 % of the way is 0.913, first reached at step 140 (0.933)
    assert phase.progress_crossing(steps, slow, 0.5) == 90
    assert phase.progress_crossing(steps, slow, 0.9) == 140
    falling = [4.0 - 3.0 * v for v in slow]              # the same, as a falling loss
    assert phase.progress_crossing(steps, falling, 0.5) == 90
    assert phase.progress_crossing(steps, [2.0] * len(steps), 0.5) is None   # flat: no way to cover
    with pytest.raises(ValueError, match="frac must be in"):
        phase.progress_crossing(steps, slow, 1.0)
    order = phase.progress_order(fake_history(at=400))
    assert order["induction score"][0.5] <= order["previous-token score"][0.5] + 50


def test_format_order_and_order_lags():
    h = fake_history(at=400)
    order = phase.progress_order(h)
    text = phase.format_order(order, "seed 0")
    lines = text.splitlines()
    assert lines[0].split() == ["seed", "0", "10%", "50%", "90%"]
    assert [line.split()[-3] for line in lines[1:]] == [f"{at[0.1]:.0f}" for at in order.values()]
    assert all(len(line) <= 88 for line in lines)
    never = {name: {0.1: 5.0, 0.5: None, 0.9: None} for name in phase.ORDER_CURVES}
    assert phase.format_order(never).splitlines()[1].split()[-3:] == ["5", "-", "-"]
    lags = phase.order_lags(h)
    assert lags == phase.order_lags(h, order)                   # computed from the same order
    o = {name: order[name] for name in phase.ORDER_CURVES}
    prev, ind, loss = o.values()
    onsets = [at[0.1] for at in o.values()]
    assert lags["onset spread"] == max(onsets) - min(onsets)
    assert lags["loss half lag"] == loss[0.5] - ind[0.5]
    assert lags["prev half lag"] == prev[0.5] - ind[0.5]
    assert lags["prev 90 lag"] == prev[0.9] - ind[0.9]
    assert lags["prev after loss 90"] == prev[0.9] - loss[0.9]
    t, y = phase.curves(h)["previous-token score"]
    assert lags["prev at induction 90"] == pytest.approx(phase.value_at(t, y, ind[0.9]))
    # a sweep summary too (its curves are rounded to 4 decimals)
    assert phase.order_lags(phase.summary(h)) == pytest.approx(lags, abs=1e-4)
    flat = phase.order_lags(fake_history(form=False), never)
    assert flat["loss half lag"] is None and flat["prev at induction 90"] is None
    assert flat["onset spread"] == 0


def test_load_sweep(tmp_path, monkeypatch):
    sweep = phase.load_sweep()                          # the book's, found from anywhere
    assert {"runs", "settings", "base_recipe_hash"} <= set(sweep)
    assert any(r["setting"] == "seed" for r in sweep["runs"])
    (tmp_path / "mine.json").write_text('{"runs": []}')
    assert phase.load_sweep(tmp_path / "mine.json") == {"runs": []}
    monkeypatch.chdir(tmp_path)
    assert phase.load_sweep()["runs"] == sweep["runs"]  # no data/ here: the package's copy
    with pytest.raises(FileNotFoundError):
        phase.load_sweep(tmp_path / "missing.json")
