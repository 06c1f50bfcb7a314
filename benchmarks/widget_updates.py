"""Time the widgets' Python side on one CPU thread:  python benchmarks/widget_updates.py

The widgets draw in the browser (induction_lib/widgets/*.js) from data computed in Python, so what costs
time here is (1) building each widget, which precomputes everything the static web book offers (every
head on every sequence, every snapshot, every ablation), and (2) the updates a live kernel computes on
request (a typed sequence, an ablation that was not precomputed). Also printed: the state each widget
embeds in a page (the budget is 2 MB per page). Wall-clock time depends on what else the machine is doing
(the load average is printed); CPU time is what the work itself costs.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import torch

GOAL_MS = 200.0     # a live update


def _time(fn, repeats: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(1e3 * (time.perf_counter() - w0))
        cpu.append(1e3 * (time.process_time() - c0))
    return wall, cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6, help="updates timed per action")
    parser.add_argument("--model", default="induction-2l", help="the zoo recipe to load")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from induction_lib import widgets as wd
    from induction_lib.zoo import load_with_history
    model, history = load_with_history(args.model, progress=False)
    print(f"widget timings, torch threads = {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'widget':22s} {'build wall':>10s} {'build cpu':>10s} {'embedded state':>15s}")
    apps = {}
    for name, build in [("attention explorer", lambda: wd.attention_explorer(model)),
                        ("checkpoint scrubber", lambda: wd.checkpoint_scrubber(model, history)),
                        ("ablation board", lambda: wd.ablation_board(model)),
                        ("Hopfield playground", lambda: wd.hopfield_playground()),
                        ("repeat demo", lambda: wd.repeat_demo())]:
        w0, c0 = time.perf_counter(), time.process_time()
        apps[name] = build()
        wall, cpu = 1e3 * (time.perf_counter() - w0), 1e3 * (time.process_time() - c0)
        print(f"{name:22s} {wall:8.0f}ms {cpu:8.0f}ms {apps[name].state_bytes():13,d} B")
    explorer = apps["attention explorer"]
    texts = itertools.cycle(["3 9 4 7 3 9 4 7 3", "5 6 7 8 9 10 5 6 7 8 9"])
    big = wd.ablation_board(model, max_toggles=4)          # only head subsets precomputed: paths are live
    paths = itertools.cycle(list(big.path_boxes.values()))

    def typed():
        explorer.text = next(texts)

    def path_toggle():
        box = next(paths)
        box.value = not box.value
    print(f"\nlive updates (kernel side)  {'wall median':>11s} {'cpu median':>11s} {'cpu max':>8s}  goal")
    worst = 0.0
    for action, fn in [("explorer: typed sequence", typed), ("ablation: path not precomputed", path_toggle)]:
        wall, cpu = _time(fn, args.repeats)
        worst = max(worst, statistics.median(cpu))
        print(f"{action:30s} {statistics.median(wall):7.0f}ms {statistics.median(cpu):9.0f}ms {max(cpu):6.0f}ms  "
              f"{'ok' if max(cpu) < GOAL_MS else 'SLOW'}")
    failed = [name for name, app in apps.items() if app.error]
    print(f"worst median CPU time per live update: {worst:.0f} ms (goal < {GOAL_MS:.0f} ms)"
          + (f"; widgets showing an error: {failed}" if failed else ""))


if __name__ == "__main__":
    main()
