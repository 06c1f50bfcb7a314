"""Train a small attention-only transformer on Python stdlib source (BPE) until an induction head forms.

One command, from scratch (defaults = the final recipe):
    /work/main/.venv/bin/python train_text.py --out runs/final
Writes <out>/tokenizer.json, <out>/model.pt = {"model_cfg", "state_dict", "history", "train_cfg", "meta"},
<out>/log.txt (step, seconds, train loss, repeat/first-copy loss, icl, best layer-1 induction, best prev-token),
and <out>/latest.pt (weights at the last evaluation, so a killed run can still be measured).
One thread only (torch.set_num_threads(1)).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # the tokenizers library: one thread too
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import importlib  # noqa: E402
T = importlib.import_module("induction_lib.train")  # the module (the package re-exports the function)
from induction_lib.config import ModelConfig, TrainConfig  # noqa: E402
from induction_lib.data import TextData  # noqa: E402
from textdata import BPE, encode_files, split_files, train_bpe  # noqa: E402


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="runs/final")
    p.add_argument("--vocab", type=int, default=2048, help="BPE vocabulary (model d_vocab = vocab + 1 for BOS)")
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--d_model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d_head", type=int, default=32)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--positional", default="shortformer")
    p.add_argument("--pos_embed", default="sinusoidal", help="learned | sinusoidal")
    p.add_argument("--no_ln", action="store_true")
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--wd", type=float, default=0.01)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--schedule", default="constant")
    p.add_argument("--eval_every", type=int, default=100)
    p.add_argument("--eval_batch", type=int, default=16)
    p.add_argument("--snapshots", default="0:12000:200",
                   help="snapshot steps: comma list and/or start:stop:step ranges, e.g. '0:1000:250,1000:2000:50'")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def parse_steps(spec: str, max_step: int) -> tuple:
    out = set()
    for part in filter(None, spec.split(",")):
        if ":" in part:
            a, b, c = (int(x) for x in part.split(":"))
            out.update(range(a, b + 1, c))
        else:
            out.add(int(part))
    return tuple(sorted(s for s in out if 0 <= s <= max_step))


def main():
    a = parse()
    os.makedirs(a.out, exist_ok=True)
    log = open(os.path.join(a.out, "log.txt"), "a", buffering=1)

    def say(msg):
        print(msg, file=log)
        print(msg, flush=True)

    t0 = time.perf_counter()
    train_files, held_files = split_files()
    tok_path = os.path.join(a.out, "tokenizer.json")
    train_bpe([t for _, t in train_files], a.vocab, tok_path)
    bpe = BPE(tok_path)
    ids = encode_files(bpe, train_files)
    say(f"# args {json.dumps(vars(a))}")
    say(f"# files train={len(train_files)} held_out={len(held_files)}; train tokens={len(ids)}; "
        f"d_vocab={bpe.vocab_size}; chars/token={sum(len(t) for _, t in train_files) / len(ids):.2f}; "
        f"prep {time.perf_counter() - t0:.1f}s")

    model_cfg = ModelConfig(d_vocab=bpe.vocab_size, n_ctx=a.ctx, d_model=a.d_model, n_layers=a.layers,
                            n_heads=a.heads, d_head=a.d_head, positional=a.positional, pos_embed=a.pos_embed, layernorm=not a.no_ln,
                            d_mlp=0)
    train_cfg = TrainConfig(steps=a.steps, batch_size=a.batch, lr=a.lr, weight_decay=a.wd, warmup_steps=a.warmup,
                            schedule=a.schedule, loss_on="all", eval_every=a.eval_every, eval_batch=a.eval_batch,
                            snapshot_steps=parse_steps(a.snapshots, a.steps), threads=1, seed=a.seed)
    data = TextData(ids, a.ctx)
    tokens_per_step = a.batch * (a.ctx - 1)

    # Log every evaluation: wrap the library's Evaluator (no library change).
    base = T.Evaluator
    state = {"n": 0, "t": time.perf_counter(), "c": time.process_time()}

    class LoggingEvaluator(base):
        def __call__(self, model):
            m = super().__call__(model)
            step = state["n"] * a.eval_every
            state["n"] += 1
            ind, prev = m["induction"], m["prev_token"]
            with torch.no_grad():
                from induction_lib.scores import per_position_loss
                text_loss = per_position_loss(model(self.icl_tokens), self.icl_tokens).mean().item()
            best_h = int(ind[-1].argmax())
            say(f"step {step:6d}  t {time.perf_counter() - state['t']:7.1f}s  cpu {(time.process_time() - state['c']) / 60:5.1f}min  tokens {step * tokens_per_step / 1e6:6.1f}M  text {text_loss:.3f}  "
                f"repeat {m['repeat_loss']:.3f} first {m['first_half_loss']:.3f}  icl {m['icl']:+.3f}  "
                f"ind L1 {ind[-1].max():.3f} (h{best_h})  ind L1 all {[round(x, 2) for x in ind[-1].tolist()]}  "
                f"prev L0 max {prev[0].max():.3f}")
            torch.save({"model_cfg": model_cfg.to_dict(), "state_dict": model.state_dict(), "step": step},
                       os.path.join(a.out, "latest.pt"))
            if step in train_cfg.snapshot_steps:  # also on disk, so a killed run keeps its snapshots
                os.makedirs(os.path.join(a.out, "snaps"), exist_ok=True)
                torch.save(model.state_dict(), os.path.join(a.out, "snaps", f"{step}.pt"))
            model.train()
            return m

    T.Evaluator = LoggingEvaluator
    # the library logs training loss only in history; also print it at each eval via every_step_loss
    model, hist = T.train(model_cfg, train_cfg, data, progress=False)
    T.Evaluator = base
    say("# train loss by eval step: " + " ".join(f"{s}:{l:.3f}" for s, l in zip(hist.steps, hist.train_loss)))
    say(f"# done: wall {hist.seconds / 60:.1f} min, cpu {(time.process_time() - state['c']) / 60:.1f} min, {a.steps * tokens_per_step / 1e6:.1f}M tokens, "
        f"formed_step={hist.formed_step}")
    torch.save({"model_cfg": model_cfg.to_dict(), "state_dict": model.state_dict(), "history": hist.to_dict(),
                "train_cfg": train_cfg.to_dict(),
                "meta": {"held_out_rule": "sorted stdlib .py files (stdlib_corpus filter), index % 20 == 0",
                         "tokenizer": "tokenizer.json (model id = tokenizer id + 1; 0 = BOS)",
                         "train_tokens": len(ids), "seconds": hist.seconds}},
               os.path.join(a.out, "model.pt"))


if __name__ == "__main__":
    main()
