"""Time every kind of widget update on one CPU thread:  python benchmarks/widget_updates.py

Each action changes a control the way a reader would (a new head, the next training step, one more
ablated head...) and times the whole update: recomputation, drawing and PNG encoding. Wall-clock time
depends on what else the machine is doing (the load average is printed); CPU time is what the update
itself costs. The goal: every update under 200 ms.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import torch

GOAL_MS = 200.0


def _time(fn, repeats: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(1e3 * (time.perf_counter() - w0))
        cpu.append(1e3 * (time.process_time() - c0))
    return wall, cpu


def _cycler(control, values):
    """A function that sets `control` to the next of `values` (each call is a real change)."""
    it = itertools.cycle(values)

    def step():
        control.value = next(it)
    return step


def cases(model, history):
    """(widget, action, build function or None, update function) for every kind of update."""
    from induction_lib import widgets as wd
    out = []
    t0 = time.perf_counter()
    e = wd.attention_explorer(model)
    out.append(("attention explorer", "build (first draw)", 1e3 * (time.perf_counter() - t0)))
    n_heads, n_layers = model.cfg.n_heads, model.cfg.n_layers
    out += [("attention explorer", "head", _cycler(e.head_w, [(e.head_w.value + i) % n_heads for i in range(1, n_heads + 1)])),
            ("attention explorer", "layer", _cycler(e.layer_w, [(e.layer_w.value + i) % n_layers for i in range(1, n_layers + 1)])),
            ("attention explorer", "position", _cycler(e.position_w, list(range(1, e.position_w.max + 1, 3)))),
            ("attention explorer", "typed sequence", _cycler(e.text_w, ["3 9 4 7 3 9 4 7 3", "5 6 7 8 9 10 5 6 7 8 9"])),
            ("attention explorer", "random sequence", e.random_w.click)]
    t0 = time.perf_counter()
    s = wd.checkpoint_scrubber(model, history)
    out.append(("checkpoint scrubber", "build (first draw)", 1e3 * (time.perf_counter() - t0)))
    out.append(("checkpoint scrubber", "step (first visit)", _cycler(s.step_w, s.steps)))
    out.append(("checkpoint scrubber", "step (visited)", _cycler(s.step_w, s.steps)))
    t0 = time.perf_counter()
    a = wd.ablation_board(model)
    out.append(("ablation board", "build (first draw)", 1e3 * (time.perf_counter() - t0)))
    boxes = list(a.head_boxes.values())
    paths = list(a.path_boxes.values())

    def toggle(group):
        it = itertools.cycle(group)

        def step():
            box = next(it)
            box.value = not box.value
        return step
    out += [("ablation board", "head checkbox", toggle(boxes)), ("ablation board", "path checkbox", toggle(paths)),
            ("ablation board", "method", _cycler(a.method_w, list(a.method_w.options)[1:] + [a.method_w.options[0]]))]
    t0 = time.perf_counter()
    h = wd.hopfield_playground()
    out.append(("Hopfield playground", "build (first draw)", 1e3 * (time.perf_counter() - t0)))
    out += [("Hopfield playground", "beta", _cycler(h.beta_w, [0.3, 1.0, 3.0, 10.0, 30.0, 100.0])),
            ("Hopfield playground", "N", _cycler(h.n_w, [4, 8, 24, 48, 64, 16])),
            ("Hopfield playground", "noise", _cycler(h.noise_w, [0.2, 0.5, 1.0, 1.5, 0.8]))]
    return out, {"explorer": e, "scrubber": s, "ablation": a, "hopfield": h}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6, help="updates timed per action")
    parser.add_argument("--model", default="induction-2l", help="the zoo recipe to load")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import matplotlib
    matplotlib.use("Agg")
    from induction_lib.zoo import load_with_history
    model, history = load_with_history(args.model, progress=False)
    rows, apps = cases(model, history)
    print(f"widget update times, torch threads = {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, {args.repeats} updates per action")
    print(f"{'widget':22s} {'action':22s} {'wall median':>11s} {'wall max':>9s} {'cpu median':>11s} "
          f"{'cpu max':>8s}  goal")
    worst = 0.0
    for widget, action, fn in rows:
        if not callable(fn):  # a build time, measured once
            print(f"{widget:22s} {action:22s} {fn:9.0f}ms {'':>9s} {'':>11s} {'':>8s}  (once)")
            continue
        repeats = len(apps["scrubber"].steps) if action.startswith("step") else args.repeats
        wall, cpu = _time(fn, repeats)
        worst = max(worst, statistics.median(cpu))
        ok = "ok" if max(cpu) < GOAL_MS else "SLOW"
        print(f"{widget:22s} {action:22s} {statistics.median(wall):9.0f}ms {max(wall):7.0f}ms "
              f"{statistics.median(cpu):9.0f}ms {max(cpu):6.0f}ms  {ok}")
    failed = [name for name, app in apps.items() if app.message.value]
    print(f"worst median CPU time per update: {worst:.0f} ms (goal < {GOAL_MS:.0f} ms)"
          + (f"; apps showing a message: {failed}" if failed else ""))


if __name__ == "__main__":
    main()
