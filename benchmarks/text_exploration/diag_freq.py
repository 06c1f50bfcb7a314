import os, sys, torch
os.environ["RAYON_NUM_THREADS"]="1"; torch.set_num_threads(1)
from induction_lib.config import ModelConfig
from induction_lib.model import Transformer
from induction_lib import scores
from induction_lib.data import BOS
from textdata import BPE, encode_files, split_files
run=sys.argv[1]
d=torch.load(f"{run}/latest.pt", weights_only=False); m=Transformer(ModelConfig(**d["model_cfg"])); m.load_state_dict(d["state_dict"]); m.eval()
print("step", d["step"])
bpe=BPE(f"{run}/tokenizer.json"); tr,_=split_files()
ids=encode_files(bpe, tr[::10]); cnt=torch.bincount(ids, minlength=m.cfg.d_vocab); order=cnt[1:].argsort(descending=True)+1
V=m.cfg.d_vocab
for name, pool in [("top25%",order[:V//4]),("25-50%",order[V//4:V//2]),("50-75%",order[V//2:3*V//4]),("bottom25%",order[3*V//4:]),("all",order)]:
    g=torch.Generator().manual_seed(1)
    r=pool[torch.stack([torch.randperm(len(pool),generator=g)[:35] for _ in range(16)])]
    toks=torch.cat([torch.zeros(16,1,dtype=torch.long), r[:,:7], r[:,7:], r[:,7:]],1)
    _,c=m.run_with_cache(toks, names=lambda n:n.endswith("hook_pattern"))
    ind=scores.diagonal_induction_score_from_pattern(c.pattern(1),28,8)
    with torch.no_grad(): pl=scores.per_position_loss(m(toks),toks)
    print(name, "ind", [round(x,2) for x in ind.tolist()], "first %.2f second %.2f"%(pl[:,8:35].mean(), pl[:,36:63].mean()))
