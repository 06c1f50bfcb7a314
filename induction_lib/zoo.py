"""Named training recipes, the reference checkpoints that ship with the book, and a checkpoint cache.

`load("induction-2l")` returns the reference model of a named recipe: the checkpoint that ships in
`induction_lib/models/` (written by `make models`, listed with its sha256 in `models/manifest.json`), the
same bytes on every machine, so every reader sees the same model and no one waits for training. A recipe
that is not shipped (`Recipe.with_changes(...)`), or `retrain=True`, trains here (with a progress bar) and
caches the result in $INDUCTION_LIB_CACHE (default ~/.cache/induction_lib) under a hash of the recipe, so
a changed recipe never loads a stale model. Files are written atomically (temporary file + os.replace)
and read with `torch.load(weights_only=True)`. A shipped file that does not match its manifest is an
error naming the file; a corrupt cached file is reported in one line and retrained.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import platform
import sys
import time
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import ModelConfig, TrainConfig, stable_hash
from .data import BPETokenizer, FuzzySegments, RepeatedSegments, TextData, split_files, stdlib_files
from .model import Transformer
from .train import History, train

FORMAT_VERSION = 4  # bumped when the data or training code changes what a recipe produces


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained model: architecture, training, and data.

    data: {"kind": "repeated_segments", "min_len": .., "max_len": .., "rules": ..},
          {"kind": "fuzzy_segments", ..} (copies with synonyms swapped in, see `data.FuzzySegments`), or
          {"kind": "stdlib_bpe", "vocab": .., "holdout_every": ..} (Python's own standard library, in a
          byte-level BPE of `vocab` tokens trained on the training files; every holdout_every-th file is
          held out from both).
    """

    name: str
    description: str
    model: ModelConfig
    train: TrainConfig
    data: dict = field(default_factory=lambda: {"kind": "repeated_segments", "min_len": 4, "max_len": 24})

    def key(self) -> dict:
        """What the cache key is computed from (the description is not part of it)."""
        return {"format": FORMAT_VERSION, "model": self.model.to_dict(), "train": self.train.to_dict(),
                "data": self.data}

    def hash(self) -> str:
        return stable_hash(self.key())

    def with_changes(self, name: str | None = None, model: dict | None = None, train: dict | None = None,
                     data: dict | None = None) -> "Recipe":
        """A variant of this recipe, e.g. another seed: `recipe.with_changes(train={"seed": 3})`."""
        return Recipe(name=name or self.name, description=self.description,
                      model=dataclasses.replace(self.model, **(model or {})),
                      train=dataclasses.replace(self.train, **(train or {})),
                      data={**self.data, **(data or {})})


def make_data(spec: dict, model_cfg: ModelConfig):
    """The data source a recipe's `data` spec describes."""
    kind = spec.get("kind")
    if kind == "repeated_segments":
        return RepeatedSegments(model_cfg.d_vocab, model_cfg.n_ctx, spec.get("min_len", 4), spec.get("max_len", 24),
                                spec.get("rules", 4))
    if kind == "fuzzy_segments":
        return FuzzySegments(model_cfg.d_vocab, model_cfg.n_ctx, spec["min_len"], spec["max_len"],
                             spec["p_swap"], spec["pairing_seed"])
    if kind == "stdlib_bpe":
        train_files, held_out = split_files(stdlib_files(), spec["holdout_every"])
        tok = BPETokenizer.train([text for _, text in train_files], spec["vocab"])
        if model_cfg.d_vocab != tok.vocab_size:
            raise ValueError(f"stdlib_bpe with vocab {spec['vocab']} needs d_vocab = {tok.vocab_size} "
                             f"(the tokenizer's ids + BOS), got {model_cfg.d_vocab}")
        ids = torch.cat([tok.encode(text) for _, text in train_files])
        return TextData(ids, model_cfg.n_ctx, tokenizer=tok, held_out=held_out)
    raise ValueError(f"unknown data kind {kind!r}; known: 'repeated_segments', 'fuzzy_segments', 'stdlib_bpe'")


# The default recipe, and why (measured on held-out layouts, one thread, seeds 0-4; tests/test_recipe.py
# asserts the targets for all five):
# - fixed sinusoidal positions (base 100): with a learned W_pos the previous-token head failed at the last
#   position (attention 0.00 at query 63: the last position is never a key, so nothing trains it there);
# - a fourth placement rule, the copy right after the original: short adjacent repeats were copied badly
#   (8 tokens: 1.6 nats against the Bayes copy oracle's 0.1);
# - copy_weight 0.725 on the balanced loss, cosine decay, weight decay 0.01, 2500 steps: a model that trusts
#   a single matching token enough to start copying a short repeat at once, but not so much that it is
#   confidently wrong on random tokens that happen to repeat (0.7 missed the oracle by 0.18 on seed 0;
#   0.75 put the unpredictable first copy 11% above chance on seed 1).
_SNAPSHOTS = tuple(range(0, 201, 50)) + tuple(range(225, 801, 25)) + (900, 1000, 1250, 1500, 2000, 2500)
_FAST = TrainConfig(snapshot_steps=_SNAPSHOTS, threads=1)
_CONTROL = TrainConfig(threads=1)       # the controls: the same recipe, no snapshots (the zoo stays small)
_DATA = {"kind": "repeated_segments", "min_len": 4, "max_len": 24, "rules": 4}

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("induction-2l",
           "The default: 2 layers x 2 heads (d_head 32), attention-only, fixed sinusoidal shortformer "
           "positions, trained on random tokens with a segment of 4-24 tokens copied to a later place (four "
           "placement rules: originals early and late, copies far and adjacent); the loss weighs the "
           "copy-predictable positions 0.725 and the rest 0.275; 2500 steps with cosine decay. (With 4 heads "
           "per layer, all four layer-1 heads became redundant induction heads: ablating one cost < 0.6 nats.)",
           ModelConfig(), _FAST, _DATA),
    Recipe("attn-only-1l",
           "Control: the same recipe with one layer. A single layer cannot compose a previous-token head "
           "with an induction head, so no induction head forms (Olsson et al. 2022, argument 1).",
           ModelConfig(n_layers=1), _CONTROL, _DATA),
    Recipe("smeared-1l",
           "One layer with smeared keys: each key mixes in the previous position's key, which gives a "
           "single layer the previous-token information induction needs (Olsson et al. 2022, argument 2).",
           ModelConfig(n_layers=1, smeared_keys=True), _CONTROL, _DATA),
    Recipe("smeared-2l",
           "The default two layers with smeared keys: does a second layer still matter once every key "
           "already carries the previous position's (Olsson et al. 2022 compare both depths).",
           ModelConfig(smeared_keys=True), _CONTROL, _DATA),
    Recipe("standard-pos-2l",
           "The default with GPT-2-style positions added once to the residual stream instead of shortformer.",
           ModelConfig(positional="standard"), _CONTROL, _DATA),
    Recipe("text-2l",
           "2 layers x 4 heads (d_model 128, d_head 32, LayerNorm), attention-only, trained on Python's own "
           "standard library in a byte-level BPE of 1024 tokens learned from the same files (every 20th file "
           "held out from both), context 256, the plain next-token loss on every position; 10000 steps at "
           "lr 1e-2.",
           ModelConfig(d_vocab=1025, n_ctx=256, d_model=128, n_heads=4, layernorm=True),
           # Held-out induction score (4 x 64 rows) 0.55-0.59 from step 7000 on, 0.59 at 10000; the heads form
           # between steps 1000 and 1700. With 2048 BPE tokens (lr 6e-3 or 1e-2) it stayed at 0.40-0.52:
           # rare tokens are copied worse. benchmarks/text_exploration/README.md has every run.
           TrainConfig(steps=10000, batch_size=16, lr=1e-2, weight_decay=0.01, warmup_steps=300,
                       schedule="constant", loss_on="all", eval_every=100, eval_batch=16, threads=1,
                       snapshot_steps=(0, 500, *range(1000, 2001, 100), 2500, 3000, 4000,
                                       *range(5000, 10001, 1000))),
           {"kind": "stdlib_bpe", "vocab": 1024, "holdout_every": 20}),
    Recipe("fuzzy-2l",
           "2 layers x 2 heads (d_head 32) with learned shortformer positions, trained on random tokens with "
           "a segment copied later (three placement rules), each token of the copy swapped for its synonym "
           "(a fixed random pairing) with probability 0.5; 2000 steps at lr 3e-3.",
           ModelConfig(pos_embed="learned"),
           # lr 3e-3 for 2000 steps: a fuzzy copy forms in each of seeds 0-4 (loss on all-synonym repeats
           # 0.82-0.98 nats, one thread). lr 1e-2 for 1000 steps formed it in 4 of 5 seeds.
           TrainConfig(steps=2000, lr=3e-3, warmup_steps=50, loss_on="balanced", copy_weight=0.5,
                       schedule="constant", eval_every=50, threads=1),
           {"kind": "fuzzy_segments", "min_len": 4, "max_len": 24, "p_swap": 0.5, "pairing_seed": 0}),
]}


def cache_dir() -> Path:
    return Path(os.environ.get("INDUCTION_LIB_CACHE") or Path.home() / ".cache" / "induction_lib")


def checkpoint_path(recipe: Recipe) -> Path:
    return cache_dir() / f"{recipe.name}-{recipe.hash()}.pt"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a file atomically: a temporary file in the same directory, fsync, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def text_extras(data) -> dict:
    """What a text model needs besides its weights: its tokenizer and the files held out from training
    (so that every reader measures it on the same unseen text, whatever their Python version)."""
    if getattr(data, "tokenizer", None) is None:
        return {}
    return {"tokenizer": data.tokenizer.to_json(), "held_out": [[p, t] for p, t in data.held_out]}


def save_checkpoint(path: Path, recipe: Recipe, model: Transformer, history: History,
                    snapshot_dtype: torch.dtype = torch.float32, extras: dict | None = None) -> None:
    """Write model, history, recipe hash and `extras` (e.g. a tokenizer) atomically; snapshots may be
    stored in float16."""
    hist = history.to_dict()
    hist["snapshots"] = {step: {k: v.to(snapshot_dtype) for k, v in sd.items()}
                         for step, sd in hist["snapshots"].items()}
    payload = {"format": FORMAT_VERSION, "recipe_hash": recipe.hash(), "name": recipe.name,
               "model_cfg": model.cfg.to_dict(), "state_dict": model.state_dict(), "history": hist,
               "extras": extras or {}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    _write_atomic(path, buf.getvalue())


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, truncated, or for another recipe."""


def load_checkpoint(path: Path, recipe: Recipe | None = None) -> tuple[Transformer, History]:
    """Read a checkpoint (weights_only) and rebuild the model; CheckpointError says what is wrong."""
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of garbage files
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, garbage bytes, unpickling refused...
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not an induction_lib checkpoint of format {FORMAT_VERSION}")
    if recipe is not None and payload.get("recipe_hash") != recipe.hash():
        raise CheckpointError(f"{path} was trained from another recipe (hash {payload.get('recipe_hash')}, "
                              f"expected {recipe.hash()})")
    try:
        model = Transformer(ModelConfig(**payload["model_cfg"]))
        model.load_state_dict(payload["state_dict"])
        history = History.from_dict(payload["history"])
        extras = payload.get("extras", {})
        if "tokenizer" in extras:  # a text model carries its tokenizer, as a TransformerLens model does
            model.tokenizer = BPETokenizer.from_json(extras["tokenizer"])
            model.held_out = [tuple(f) for f in extras["held_out"]]
    except Exception as e:
        raise CheckpointError(f"{path} has missing or mismatched contents ({type(e).__name__}: "
                              f"{str(e).splitlines()[0]})") from None
    model.eval()
    return model, history


def _recipe(name_or_recipe) -> Recipe:
    if isinstance(name_or_recipe, Recipe):
        return name_or_recipe
    if name_or_recipe not in RECIPES:
        raise ValueError(f"unknown model {name_or_recipe!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name_or_recipe]


# ---------------------------------------------------------------- the reference checkpoints

SHIPPED_DIR = Path(__file__).resolve().parent / "models"
MANIFEST = SHIPPED_DIR / "manifest.json"


def manifest() -> dict:
    """{name: {"recipe_hash", "sha256", "bytes", "torch", "cpu", "seconds"}} of the shipped checkpoints."""
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shipped_path(recipe: Recipe) -> Path | None:
    """The shipped checkpoint of exactly this recipe (name and hash), checked against its manifest entry;
    None if the recipe is not shipped. A file whose sha256 differs from the manifest is a CheckpointError."""
    entry = manifest().get(recipe.name)
    if entry is None or entry["recipe_hash"] != recipe.hash():
        return None
    path = SHIPPED_DIR / f"{recipe.name}.pt"
    if not path.exists():
        raise CheckpointError(f"{path} is listed in {MANIFEST.name} but missing: reinstall induction_lib "
                              f"or run `make models`")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise CheckpointError(f"{path} does not match {MANIFEST.name} (sha256 {digest[:12]}..., expected "
                              f"{entry['sha256'][:12]}...): the file is damaged; restore it from the "
                              f"repository (git checkout -- {path.name}) or run `make models`")
    return path


def load_with_history(name_or_recipe="induction-2l", progress: bool = True,
                      retrain: bool = False) -> tuple[Transformer, History]:
    """(model, training history) for a named recipe or a Recipe: the shipped reference checkpoint if there
    is one for exactly this recipe, else the cached one, else trained now (and cached)."""
    recipe = _recipe(name_or_recipe)
    if not retrain:
        shipped = shipped_path(recipe)
        if shipped is not None:
            return load_checkpoint(shipped, recipe)
        path = checkpoint_path(recipe)
        if path.exists():
            try:
                return load_checkpoint(path, recipe)
            except CheckpointError as e:
                print(f"induction_lib: {e}; retraining.", file=sys.stderr)
    data = make_data(recipe.data, recipe.model)
    model, history = train(recipe.model, recipe.train, data, progress=progress, desc=f"training {recipe.name}")
    save_checkpoint(checkpoint_path(recipe), recipe, model, history, extras=text_extras(data))
    return load_checkpoint(checkpoint_path(recipe), recipe)  # as a reader gets it (tokenizer attached)


def load(name_or_recipe="induction-2l", progress: bool = True, retrain: bool = False) -> Transformer:
    """The trained model for a named recipe (see RECIPES) or a Recipe: shipped, cached, or trained now."""
    return load_with_history(name_or_recipe, progress, retrain)[0]


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_reference(names=None, progress: bool = True) -> dict:
    """Train every named recipe (or `names`) from scratch and write its reference checkpoint and manifest
    entry into `induction_lib/models/` (snapshots stored in float16 to keep the package small)."""
    SHIPPED_DIR.mkdir(exist_ok=True)
    entries = manifest()
    for name in names or RECIPES:
        recipe = _recipe(name)
        start = time.perf_counter()
        data = make_data(recipe.data, recipe.model)
        model, history = train(recipe.model, recipe.train, data, progress=progress, desc=f"training {recipe.name}")
        seconds = time.perf_counter() - start
        path = SHIPPED_DIR / f"{recipe.name}.pt"
        save_checkpoint(path, recipe, model, history, snapshot_dtype=torch.float16, extras=text_extras(data))
        entries[recipe.name] = {"recipe_hash": recipe.hash(), "sha256": sha256(path), "bytes": path.stat().st_size,
                                "torch": torch.__version__, "cpu": cpu_name(), "threads": recipe.train.threads,
                                "seconds": round(seconds, 1)}
        _write_atomic(MANIFEST, (json.dumps(entries, indent=1, sort_keys=True) + "\n").encode())
        print(f"{recipe.name}: {entries[recipe.name]['bytes'] / 1e6:.2f} MB, {seconds:.0f} s")
    return entries



def describe(name_or_recipe) -> str:
    """A few lines on a recipe's model, data and training (with the shipped checkpoint's training time)."""
    recipe = _recipe(name_or_recipe)
    m, t = recipe.model, recipe.train
    tokens = t.steps * t.batch_size * (m.n_ctx - 1)
    lines = [f"{m.n_layers} layers x {m.n_heads} heads, d_model {m.d_model}, d_head {m.d_head}"
             + (", LayerNorm" if m.layernorm else "") + (f", MLP {m.d_mlp}" if m.d_mlp else ", attention only"),
             f"vocabulary {m.d_vocab:,} tokens (BOS included), context {m.n_ctx} tokens",
             f"{t.steps:,} steps x {t.batch_size} sequences = {tokens / 1e6:.1f} M training tokens"]
    entry = manifest().get(recipe.name)
    if entry is not None and entry["recipe_hash"] == recipe.hash():
        sec = entry["seconds"]
        took = f"{sec:.0f} s" if sec < 120 else f"{sec / 60:.0f} min"
        threads = "one CPU thread" if entry["threads"] == 1 else f"{entry['threads']} CPU threads"
        lines[-1] += f", trained in {took} on {threads}"
    return "\n".join(lines)
