"""Benchmark of the default recipe: time to a formed induction head, speed, FLOP/s, memory.

    python benchmarks/train_speed.py [--seeds 5] [--threads 2 1] [--full-loss-steps 3000]

Prints a table. "Formed" is `induction_lib.train.formed`: the best last-layer induction score >= 0.5
on held-out repeats (block 28 after a 7-token shift; training copies 4-24 tokens) and the loss on
the repeated half <= 10% of ln(d_vocab - 1). Each thread count runs in its own process, so the peak
memory is that process's and torch's thread setting is clean. Not a test: numbers vary by machine.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

import torch


def matmul_flops(threads: int, n: int = 1024, repeats: int = 10) -> float:
    """float32 FLOP/s of a large square matmul on `threads` threads: the machine's practical peak."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - t)


def train_flops_per_step(model_cfg, batch: int) -> float:
    """Forward + backward (3x forward) FLOPs of one training step, counted from the shapes."""
    c, p = model_cfg, model_cfg.n_ctx
    per_token = 2 * c.n_layers * (4 * c.d_model * c.n_heads * c.d_head) + 2 * c.d_model * c.d_vocab
    attention = c.n_layers * 2 * 2 * c.n_heads * c.d_head * p * p  # scores and weighted sum, full square
    return 3 * batch * (per_token * p + attention)


def drop_step(history) -> int:
    """The step where the recorded repeat loss falls fastest (the abrupt drop after the plateau)."""
    losses = history.repeat_loss
    falls = [losses[i] - losses[i + 1] for i in range(len(losses) - 1)]
    return history.steps[falls.index(max(falls)) + 1]


def worker(threads: int, seeds: int, full_loss_steps: int) -> dict:
    from induction_lib.train import train
    from induction_lib.zoo import RECIPES, make_data

    torch.set_num_threads(threads)
    recipe = RECIPES["induction-2l"]
    data = make_data(recipe.data, recipe.model)
    peak = matmul_flops(threads)
    rows = []
    for seed in range(seeds):
        cfg = dataclasses.replace(recipe.train, seed=seed, threads=threads, stop_when_formed=True, snapshot_steps=())
        _, h = train(recipe.model, cfg, data, progress=False)
        steps = len(h.every_step_loss)
        rows.append({"seed": seed, "formed_step": h.formed_step, "formed_s": h.formed_seconds,
                     "steps_per_s": steps / h.seconds, "drop_step": drop_step(h)})
    flops = train_flops_per_step(recipe.model, recipe.train.batch_size)
    out = {"threads": threads, "peak_flops": peak, "rows": rows, "step_flops": flops}
    if full_loss_steps:
        cfg = dataclasses.replace(recipe.train, loss_on="all", steps=full_loss_steps, threads=threads,
                                  stop_when_formed=True, snapshot_steps=())
        _, h = train(recipe.model, cfg, data, progress=False)
        out["full_loss"] = {"formed_step": h.formed_step, "formed_s": h.formed_seconds, "steps": full_loss_steps,
                            "seconds": h.seconds, "final_repeat_loss": h.repeat_loss[-1],
                            "final_induction": h.induction[-1][-1].max().item()}
    import resource  # Unix only: the benchmark is a developer's tool, not part of the package
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def versus_transformer_lens(steps: int = 100, rounds: int = 5) -> str:
    """Training steps per second of our model and of TransformerLens's HookedTransformer with the same
    config and weights (`induction_lib.bridge`), one thread, the same batches and AdamW, interleaved
    rounds in one process; the median round of each, and where a step's time goes. A third row runs our
    model through `torch.compile` (inductor's fused kernels), as a ceiling for what rewriting the
    eager code could still gain."""
    import torch.nn.functional as F
    from induction_lib import Transformer
    from induction_lib.bridge import to_transformer_lens
    from induction_lib.zoo import RECIPES, make_data

    torch.set_num_threads(1)
    recipe = RECIPES["induction-2l"]
    torch.manual_seed(0)
    ours = Transformer(recipe.model)
    models = {"induction_lib `Transformer`": ours, "TransformerLens `HookedTransformer`": to_transformer_lens(ours)}
    data = make_data(recipe.data, recipe.model)
    g = torch.Generator().manual_seed(0)
    batches = [data.sample(recipe.train.batch_size, g)[0] for _ in range(steps)]
    try:
        compiled = torch.compile(copy.deepcopy(ours))
        compiled(batches[0]).sum().backward()  # compile now (for this batch shape), not while timing
        models["induction_lib, `torch.compile`d"] = compiled
        compile_error = None
    except Exception as err:  # no C++ compiler, or an unsupported platform: say so and go on
        compile_error = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"

    def run(model) -> dict:
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
        start = time.perf_counter()
        for tokens in batches:
            t0 = time.perf_counter()
            logits = model(tokens)[:, :-1]
            loss = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:])
            t1 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            for key, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2)):
                phases[key] += dt * 1e3 / steps
        return {"steps/s": steps / (time.perf_counter() - start), **phases}

    results = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            results[name].append(run(model))
    median = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in results.items()}
    tl = median["TransformerLens `HookedTransformer`"]["steps/s"]
    lines = ["| model | steps/s | x TransformerLens | forward ms | backward ms | AdamW ms |", "|---|---|---|---|---|---|"]
    for name, m in median.items():
        lines.append(f"| {name} | {m['steps/s']:.0f} | {m['steps/s'] / tl:.2f} | {m['forward']:.1f} | "
                     f"{m['backward']:.1f} | {m['optimizer']:.1f} |")
    if compile_error:
        lines.append(f"| induction_lib, `torch.compile`d | unavailable: {compile_error} | | | | |")
    lines.append(f"\nOne thread, batch {recipe.train.batch_size}, {steps} steps x {rounds} interleaved rounds, "
                 "same config and initial weights; medians of the rounds.")
    return "\n".join(lines)


def report(results: list[dict], batch: int, n_ctx: int) -> str:
    lines = ["| threads | formed | median s to formed | max s | median step formed | plateau->drop at step "
             "| steps/s | tokens/s | achieved GFLOP/s | matmul GFLOP/s | % of matmul | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ok = [row for row in r["rows"] if row["formed_s"] is not None]
        sps = statistics.median(row["steps_per_s"] for row in r["rows"])
        achieved = sps * r["step_flops"]
        med = lambda key: statistics.median(row[key] for row in ok) if ok else float("nan")
        lines.append(f"| {r['threads']} | {len(ok)}/{len(r['rows'])} | {med('formed_s'):.1f} | "
                     f"{max((row['formed_s'] for row in ok), default=float('nan')):.1f} | {med('formed_step'):.0f} | "
                     f"{statistics.median(row['drop_step'] for row in r['rows']):.0f} | {sps:.0f} | "
                     f"{sps * batch * n_ctx:,.0f} | {achieved / 1e9:.1f} | {r['peak_flops'] / 1e9:.1f} | "
                     f"{100 * achieved / r['peak_flops']:.0f}% | {r['peak_rss_mb']:.0f} |")
    for r in results:
        if "full_loss" in r:
            f = r["full_loss"]
            status = (f"formed at step {f['formed_step']} ({f['formed_s']:.1f} s)" if f["formed_step"] is not None
                      else f"not formed within {f['steps']} steps ({f['seconds']:.0f} s); final repeat loss "
                           f"{f['final_repeat_loss']:.2f}, best induction score {f['final_induction']:.2f}")
        else:
            continue
        lines.append(f"\nFull loss (every position), {r['threads']} thread(s), seed 0: {status}")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--full-loss-steps", type=int, default=3000, help="0 to skip the full-loss run")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.seeds, args.full_loss_steps)))
        return
    from induction_lib.zoo import RECIPES
    recipe = RECIPES["induction-2l"]
    results = []
    for t in args.threads:
        print(f"running {args.seeds} seeds on {t} thread(s)...", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--worker", str(t), "--seeds",
                              str(args.seeds), "--full-loss-steps", str(args.full_loss_steps)],
                             check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"Default recipe 'induction-2l': {recipe.model}\n{recipe.train}\n")
    print(f"Machine: {os.cpu_count()} cores; load average at the end {os.getloadavg()[0]:.1f} "
          "(a busy machine slows 2 threads far more than 1)\n")
    print(report(results, recipe.train.batch_size, recipe.model.n_ctx))
    print("\nA training step against TransformerLens:\n")
    print(versus_transformer_lens())


if __name__ == "__main__":
    main()
