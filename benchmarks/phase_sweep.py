"""The phase-change sweep of chapter 6: the default recipe over seeds, learning rates, vocabularies
and context lengths, and with the full next-token loss. Writes each run's curves (not only its
transition step) to book/data/phase_sweep.json, so the chapter runs the detection on the stored curves.

    python benchmarks/phase_sweep.py [--out book/data/phase_sweep.json] [--threads 1] [--only SETTING ...]

Every run trains from scratch with `induction_lib.train` on one torch thread (the thread count changes
the floating-point sums, hence the exact curves, so it is recorded). The JSON is rewritten after every
run; `--only` reruns some settings and keeps the others' runs (and the commands that made them)
from an existing file.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

import induction_lib as il
from induction_lib import phase, zoo

BASE = "induction-2l"
LONG_COPIES = {"min_len": 16, "max_len": 31}
FULL_LOSS = {  # the full next-token loss on every position: the default settings, and one that forms
    "default settings": {"train": {"loss_on": "all"}},
    "copies of 16-31 tokens, lr 0.003": {"train": {"loss_on": "all", "lr": 3e-3}, "data": LONG_COPIES},
}
# setting -> values, how a value changes the recipe, seeds, steps, steps between history records
SETTINGS = {
    "seed": ([0, 1, 2, 3, 4], lambda v: {"train": {"seed": v}}, None, None, 5),
    "learning rate": ([3e-3, 1e-2, 3e-2], lambda v: {"train": {"lr": v}}, (0, 1), 2000, 25),
    "vocabulary": ([32, 64, 128], lambda v: {"model": {"d_vocab": v}}, (0, 1), 2000, 25),
    "context": ([64, 96], lambda v: {"model": {"n_ctx": v}}, (0, 1), 2000, 25),
    "full loss": (list(FULL_LOSS), lambda v: FULL_LOSS[v], (0, 1), 3000, 25),
}


def recipe_for(setting: str, value, seed: int | None) -> zoo.Recipe:
    """The default recipe with one setting changed (seed None: the value is the seed)."""
    _, change_of, _, steps, eval_every = SETTINGS[setting]
    change = change_of(value)
    train = {"eval_every": eval_every, "snapshot_steps": ()}
    if seed is not None:
        train["seed"] = seed
    if steps is not None:
        train["steps"] = steps
    train.update(change.get("train", {}))
    return zoo.RECIPES[BASE].with_changes(model=change.get("model"), train=train, data=change.get("data"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="book/data/phase_sweep.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", choices=list(SETTINGS), help="settings to (re)run")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    only = args.only or list(SETTINGS)
    kept, commands = [], []
    if args.only and out.exists():
        old = json.loads(out.read_text())
        kept = [r for r in old["runs"] if r["setting"] not in only]
        commands = old.get("commands") or ([old["command"]] if "command" in old else [])
    commands.append(shlex.join(["python", Path(sys.argv[0]).as_posix()] + sys.argv[1:]))
    result = {
        "description": "Transition step of the default recipe over seeds and settings (chapter 6).",
        "commands": commands,
        "threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "base_recipe": BASE, "base_recipe_hash": zoo.RECIPES[BASE].hash(),
        "seeds": {name: (values if seeds is None else list(seeds))
                  for name, (values, _, seeds, _, _) in SETTINGS.items()},
        "settings": {name: spec[0] for name, spec in SETTINGS.items()},
        "runs": kept,
    }
    started = time.perf_counter()
    for setting in only:
        values, _, seeds, _, _ = SETTINGS[setting]
        for value in values:
            for seed in ([None] if seeds is None else seeds):
                recipe = recipe_for(setting, value, seed)
                _, history = il.train(recipe.model, recipe.train, zoo.make_data(recipe.data, recipe.model),
                                      progress=False)
                run = {"setting": setting, "value": value, "seed": recipe.train.seed, "recipe_hash": recipe.hash(),
                       "eval_every": recipe.train.eval_every, **phase.summary(history)}
                tr = phase.summary_transition(run)
                print(f"{setting} = {value}, seed {recipe.train.seed}: transition "
                      f"{'none' if tr is None else f'{tr.mid:.0f}'}, {history.seconds:.0f} s", flush=True)
                result["runs"].append(run)
                result["seconds"] = round(sum(r["seconds"] for r in result["runs"]), 1)  # training time, all runs
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(result, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} kB) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
