"""Turn a finished train_text.py run into the zoo checkpoint of a recipe, without training it again.

    python benchmarks/text_exploration/ship_run.py RUN_DIR RECIPE [--verify STEPS] [--more-snapshots RUN_DIR2] [--ship]

The recipe must be the run's configuration (same model, TrainConfig apart from snapshot_steps and steps, data
spec). A recipe with fewer steps than the run (constant schedule only) takes the run's weights at that step
(snaps/STEP.pt) and its history up to there: the training loop stops before the update at its last step, so
that is exactly what training the recipe gives. Its time is the run's CPU time at that step (log.txt).
To show that `make models` would produce the same weights, --verify N retrains the recipe for N steps (constant
or cooldown schedule: the first N steps do not depend on the total) and requires the weights to equal the run's
snapshot at step N bit for bit. The history keeps the recipe's snapshot steps only.
--more-snapshots takes snapshots from a shorter run of the same configuration (constant schedule: its first
steps are the long run's), after checking that the snapshots both runs have are equal bit for bit. Without --ship the
checkpoint goes to the cache ($INDUCTION_LIB_CACHE), with --ship into induction_lib/models/ + manifest.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")
import torch  # noqa: E402

from induction_lib import zoo  # noqa: E402
from induction_lib.train import History, train  # noqa: E402


def same_training(got: dict, want: dict, what: str) -> None:
    """Two TrainConfig dicts agree in everything but their length and snapshot steps."""
    for k in set(got) | set(want):
        if k not in ("snapshot_steps", "steps"):
            assert got.get(k) == want.get(k), f"{what}: train config differs in {k}: {got.get(k)} vs {want.get(k)}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("recipe")
    p.add_argument("--verify", type=int, default=0)
    p.add_argument("--more-snapshots", help="a shorter run of the same configuration, for denser snapshots")
    p.add_argument("--ship", action="store_true")
    a = p.parse_args()
    recipe = zoo.RECIPES[a.recipe]
    run = torch.load(os.path.join(a.run, "model.pt"), weights_only=False)
    model_cfg = recipe.model
    assert run["model_cfg"] == model_cfg.to_dict(), (run["model_cfg"], model_cfg.to_dict())
    run_train = dict(run["train_cfg"])
    same_training(run_train, recipe.train.to_dict(), "run vs recipe")
    data = zoo.make_data(recipe.data, model_cfg)
    tok_run = open(os.path.join(a.run, "tokenizer.json")).read()
    assert json.loads(tok_run) == json.loads(data.tokenizer.to_json()), "tokenizer differs from the run's"
    hist = History.from_dict(run["history"])
    n = recipe.train.steps
    seconds = run["meta"]["seconds"]
    state = run["state_dict"]
    if n != run_train["steps"]:
        assert n < run_train["steps"] and recipe.train.schedule == "constant", "only a constant schedule truncates"
        keep = [i for i, s in enumerate(hist.steps) if s <= n]
        for key in ("steps", "train_loss", "repeat_loss", "first_half_loss", "icl", "prev_token", "induction"):
            setattr(hist, key, [getattr(hist, key)[i] for i in keep])
        hist.every_step_loss = hist.every_step_loss[:n + 1]
        assert hist.steps[-1] == n
        if hist.formed_step is not None and hist.formed_step > n:
            hist.formed_step, hist.formed_seconds = None, None
        state = torch.load(os.path.join(a.run, "snaps", f"{n}.pt"), weights_only=True)
        line = next(l for l in open(os.path.join(a.run, "log.txt")) if l.startswith(f"step {n:6d}"))
        seconds = 60 * float(line.split("cpu")[1].split("min")[0])
        hist.seconds = seconds
        print(f"truncated to step {n}: cpu {seconds / 60:.1f} min")
    if a.more_snapshots:
        assert recipe.train.schedule == "constant", "a shorter run is the beginning of a longer one only at a constant rate"
        short = torch.load(os.path.join(a.more_snapshots, "model.pt"), weights_only=False)
        assert short["model_cfg"] == run["model_cfg"]
        same_training(short["train_cfg"], run_train, "shorter run vs run")
        extra = short["history"]["snapshots"]
        common = sorted(set(extra) & set(hist.snapshots))
        assert common, "the runs share no snapshot step to compare"
        for s in common:
            assert all(torch.equal(extra[s][k], hist.snapshots[s][k]) for k in extra[s]), f"snapshot {s} differs"
        hist.snapshots = {**extra, **hist.snapshots}
        print(f"snapshots {common} identical in both runs; added {sorted(set(extra) - set(common))}")
    missing = set(recipe.train.snapshot_steps) - set(hist.snapshots)
    assert not missing, f"the run has no snapshot at {sorted(missing)}"
    hist.snapshots = {s: hist.snapshots[s] for s in recipe.train.snapshot_steps}
    if a.verify:
        cfg = dataclasses.replace(recipe.train, steps=a.verify, snapshot_steps=())
        if recipe.train.schedule == "cooldown":  # flat until its last fifth: a constant run is its beginning
            assert a.verify <= recipe.train.steps - recipe.train.steps // 5, "verify within the flat part"
            cfg = dataclasses.replace(cfg, schedule="constant")
        m, _ = train(model_cfg, cfg, data, progress=True)
        ref = run["history"]["snapshots"][a.verify]
        same = all(torch.equal(m.state_dict()[k], ref[k]) for k in ref)
        print(f"retrained {a.verify} steps: weights {'identical' if same else 'DIFFERENT'} to the run's")
        assert same
    model = zoo.Transformer(model_cfg)
    model.load_state_dict(state)
    if a.ship:
        path = zoo.SHIPPED_DIR / f"{recipe.name}.pt"
        zoo.save_checkpoint(path, recipe, model, hist, snapshot_dtype=torch.float16, extras=zoo.text_extras(data))
        entries = zoo.manifest()
        entries[recipe.name] = {"recipe_hash": recipe.hash(), "sha256": zoo.sha256(path),
                                "bytes": path.stat().st_size, "torch": torch.__version__, "cpu": zoo.cpu_name(),
                                "threads": recipe.train.threads, "seconds": round(seconds, 1)}
        zoo._write_atomic(zoo.MANIFEST, (json.dumps(entries, indent=1, sort_keys=True) + "\n").encode())
    else:
        path = zoo.checkpoint_path(recipe)
        zoo.save_checkpoint(path, recipe, model, hist, extras=zoo.text_extras(data))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
