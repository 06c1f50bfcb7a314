"""Measure the targets on a trained run, on data it never trained on.

    /work/main/.venv/bin/python measure.py runs/final            # uses runs/final/model.pt (or latest.pt)

1. layer-1 diagonal induction scores (scores.diagonal_induction_scores: BOS + 7 random distinct tokens +
   r + r, |r| = 28, 16 rows, seed EVAL_SEED) and the model's loss on the second copy vs the first copy
   (scores.eval_regions: tokens 2..28 of each copy).
2. a paragraph of English prose written for this test (in no corpus), BOS + P + P: nats/token on each copy
   (tokens 2.. of each copy).
3. Olsson ICL score on held-out stdlib files (every 20th file): loss at target index round(0.9*(n-1))
   minus loss at target index round(0.1*(n-1)) of per_position_loss, mean over N windows; also a band
   version (mean over targets in [85%,95%) minus [5%,15%)). For the final model and every snapshot.
4. ablation: zero the output (hook_z) of the induction head(s) and measure held-out loss change on
   "copyable" targets (the current token occurred earlier in the window and was followed then by the
   same token as the target now) vs "other" targets (the current token never occurred earlier).
"""
from __future__ import annotations

import json
import math
import os
import sys

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from induction_lib.config import ModelConfig  # noqa: E402
from induction_lib.model import Transformer  # noqa: E402
from induction_lib import scores  # noqa: E402
from induction_lib.data import BOS  # noqa: E402
from textdata import BPE, encode_files, split_files  # noqa: E402

PROSE = (
    "On the morning the river froze, my grandmother walked down to the mill with a lantern and a basket of "
    "bread. She told the miller that the wheel would crack if he let it turn through the night, and he "
    "laughed at her."
)


def load(run: str, which: str | None = None):
    path = os.path.join(run, which) if which else (
        os.path.join(run, "model.pt") if os.path.exists(os.path.join(run, "model.pt")) else os.path.join(run, "latest.pt"))
    d = torch.load(path, weights_only=False)
    model = Transformer(ModelConfig(**d["model_cfg"]))
    model.load_state_dict(d["state_dict"])
    model.eval()
    return model, d, path


def held_out_windows(bpe: BPE, n_ctx: int, n: int = 400, seed: int = 0) -> torch.Tensor:
    """n windows BOS + n_ctx-1 tokens from the held-out files (each file encoded separately, concatenated)."""
    _, held = split_files()
    ids = encode_files(bpe, held)
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - n_ctx + 1, (n,), generator=g)
    idx = starts[:, None] + torch.arange(n_ctx - 1)[None]
    return torch.cat([torch.full((n, 1), BOS, dtype=torch.long), ids[idx]], dim=1), len(ids), len(held)


@torch.no_grad()
def losses(model, tokens, hooks=(), bs: int = 50) -> torch.Tensor:
    out = []
    for i in range(0, len(tokens), bs):
        with model.hooks(list(hooks)):
            out.append(scores.per_position_loss(model(tokens[i:i + bs]), tokens[i:i + bs]))
    return torch.cat(out)


def icl(loss: torch.Tensor) -> dict:
    n = loss.shape[1]
    early, late = round(0.1 * (n - 1)), round(0.9 * (n - 1))
    b = lambda lo, hi: loss[:, int(lo * n):int(hi * n)].mean().item()  # noqa: E731
    return {"early_idx": early, "late_idx": late, "point": scores.icl_score(loss, early, late),
            "band": b(0.85, 0.95) - b(0.05, 0.15)}


def target_classes(tokens: torch.Tensor):
    """Per loss index p (predicting token p+1 from position p): copyable / other masks, [batch, n-1]."""
    cur = tokens[:, :-1]                       # token at position p
    tgt = tokens[:, 1:]                        # its target
    n = cur.shape[1]
    same = cur[:, :, None] == cur[:, None, :]  # [b, p, j]
    earlier = same & torch.ones(n, n, dtype=torch.bool).tril(-1)[None]
    earlier[..., 0] = False                    # BOS is not a token occurrence
    follow_ok = tgt[:, None, :] == tgt[:, :, None]   # target at j == target at p  (tgt[j] = token j+1)
    copyable = (earlier & follow_ok).any(-1)
    seen = earlier.any(-1)
    other = ~seen
    other[:, 0] = False                        # position 0 is BOS
    mismatch = seen & ~copyable
    return copyable, other, mismatch


def zero_heads_hook(layer: int, heads):
    def fn(z):
        z = z.clone()
        z[:, :, list(heads)] = 0
        return z
    return (f"blocks.{layer}.attn.hook_z", fn)


def main():
    run = sys.argv[1]
    which = sys.argv[2] if len(sys.argv) > 2 else None
    model, d, path = load(run, which)
    cfg = model.cfg
    bpe = BPE(os.path.join(run, "tokenizer.json"))
    res = {"checkpoint": path, "model_cfg": d["model_cfg"]}
    L = cfg.n_layers - 1

    # 1. random repeats
    ind = scores.diagonal_induction_scores(model)
    prev = scores.previous_token_scores(model)
    toks = scores.eval_tokens(model)
    reg = scores.eval_regions(model)
    with torch.no_grad():
        pl = scores.per_position_loss(model(toks), toks)
    res["1_induction_scores_L1"] = [round(x, 3) for x in ind[L].tolist()]
    res["1_best_L1"] = round(ind[L].max().item(), 3)
    res["1_prev_token_L0"] = [round(x, 3) for x in prev[0].tolist()]
    res["1_first_copy_loss"] = round(pl[:, reg["first half"]].mean().item(), 3)
    res["1_second_copy_loss"] = round(pl[:, reg["repeated half"]].mean().item(), 3)
    res["1_gap_nats"] = round(res["1_first_copy_loss"] - res["1_second_copy_loss"], 3)
    res["1_chance"] = round(math.log(cfg.d_vocab - 1), 3)

    # 2. English prose repeated
    p = bpe.encode(PROSE)[:(cfg.n_ctx - 1) // 2]  # the whole paragraph fits twice in 256 tokens
    x = torch.cat([torch.tensor([BOS]), p, p])[None]
    with torch.no_grad():
        lp = scores.per_position_loss(model(x), x)[0]
    P = len(p)
    res["2_prose_tokens_per_copy"] = P
    res["2_prose_first_copy"] = round(lp[1:P].mean().item(), 3)        # predicts tokens 2..P of copy 1
    res["2_prose_second_copy"] = round(lp[P + 1:2 * P].mean().item(), 3)  # tokens 2..P of copy 2
    res["2_prose_second_copy_top1"] = round((model(x)[0, P + 1:2 * P].argmax(-1) == x[0, P + 2:2 * P + 1]).float()
                                            .mean().item(), 3)

    # 3. ICL on held-out stdlib
    w, n_held_tokens, n_held_files = held_out_windows(bpe, cfg.n_ctx)
    base = losses(model, w)
    res["3_held_out"] = {"files": n_held_files, "tokens": n_held_tokens, "windows": len(w)}
    res["3_held_out_loss"] = round(base.mean().item(), 3)
    res["3_icl_final"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in icl(base).items()}
    hist = d.get("history")
    snaps = dict(hist["snapshots"]) if hist is not None and hist.get("snapshots") else {}
    snap_dir = os.path.join(run, "snaps")
    if not snaps and os.path.isdir(snap_dir):
        snaps = {int(f[:-3]): os.path.join(snap_dir, f) for f in os.listdir(snap_dir) if f.endswith(".pt")}
    if snaps:
        sub = w[:150]
        curve = []
        for step in sorted(snaps):
            m = Transformer(cfg)
            sd = snaps[step]
            m.load_state_dict(torch.load(sd) if isinstance(sd, str) else sd)
            m.eval()
            ls = losses(m, sub)
            c = icl(ls)
            ii = scores.diagonal_induction_scores(m)[L].max().item()
            curve.append((step, round(ii, 3), round(c["point"], 3), round(c["band"], 3), round(ls.mean().item(), 3)))
        res["3_snapshot_curve(step, ind_L1, icl_point, icl_band, heldout_loss)[150 windows]"] = curve

    # 4. ablation
    copyable, other, mismatch = target_classes(w)
    heads_sorted = ind[L].argsort(descending=True).tolist()
    ind_heads = [h for h in heads_sorted if ind[L, h] >= 0.3] or heads_sorted[:1]
    res["4_classes_share"] = {"copyable": round(copyable.float().mean().item(), 3),
                              "other(first occurrence)": round(other.float().mean().item(), 3),
                              "seen-but-different-follower": round(mismatch.float().mean().item(), 3)}
    abl = {}
    for name, heads in [("induction heads " + str(ind_heads), ind_heads), ("best head only", heads_sorted[:1]),
                        ("control: worst L1 head", heads_sorted[-1:])]:
        a = losses(model, w, [zero_heads_hook(L, heads)])
        abl[name] = {cls: {"base": round(base[m].mean().item(), 3), "ablated": round(a[m].mean().item(), 3),
                           "delta": round((a[m] - base[m]).mean().item(), 3)}
                     for cls, m in [("copyable", copyable), ("other", other), ("mismatch", mismatch),
                                    ("all", torch.ones_like(copyable))]}
    res["4_ablation"] = abl
    print(json.dumps(res, indent=1))
    out = os.path.join(run, "measure_" + os.path.basename(path).replace(".pt", "") + ".json")
    json.dump(res, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
