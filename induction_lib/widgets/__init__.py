"""Interactive apps for the chapters: the attention explorer, the checkpoint scrubber, the ablation board and
the Hopfield playground.

    explorer = il.widgets.attention_explorer(model)
    explorer            # a cell's last expression: the app

Each app is an `anywidget.AnyWidget`, so the *same* object works in three places:

- **the static web book** (no kernel, no network): the app's front end, a small ES module next to this file
  (`attention_explorer.js`, ...), runs in the page and draws, on canvas and SVG, from data the Python side
  precomputed and stored in synced traits (the `data` trait). Everything a reader can select on the static
  page is in that data: every head of every layer on a few sequences, every training snapshot, every subset
  of ablated heads; the Hopfield update is cheap enough to be computed in JavaScript, live.
- **JupyterLab / Notebook 7 / VS Code / Binder** and **Colab**: the same front end, plus a kernel. What was
  not precomputed (a sequence the reader types, another model) is computed in Python when the front end
  asks for it (it sets a trait; an observer here recomputes and sends the new data).

Embedded data is compact: attention weights and probabilities are stored as uint8 (value * 255; the
colour maps have 256 levels and the read-outs show two decimals, so a step of 1/255 = 0.004 is below what the
reader can see), losses as uint16 milli-nats. Arrays travel as base64 strings in `data` (see `pack`).

Input the app cannot use (a token that is not in the vocabulary, a sequence longer than the context, a head
that does not exist) is reported in the app's message line (`app.message`, shown inside the widget), never as
a traceback. `benchmarks/widget_updates.py` times the Python side of every update.
"""
from __future__ import annotations

import base64
import contextlib
import math
import re
from pathlib import Path

import anywidget
import numpy as np
import torch
import traitlets as T

from .. import heads, interventions, phase, scores
from .. import hopfield as hf
from ..data import BOS, repeated_tokens
from ..train import torch_threads
from .tokens import colored_tokens  # noqa: F401  (static HTML: text shaded by a value per token)

HERE = Path(__file__).parent
MAX_STATE_BYTES = 2_000_000   # the budget for one page's embedded widget state


class InputError(ValueError):
    """Input from the reader that the app cannot use; its message is shown in the app."""


# ---------------------------------------------------------------- data packing


def pack(array, dtype: str) -> dict:
    """A numeric array as {"dtype", "shape", "b64"}: little-endian bytes of `dtype`, base64 encoded.
    The front ends decode it with `unpack` (common.js) into a typed array."""
    a = np.ascontiguousarray(np.asarray(array), dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def unpack(packed: dict) -> np.ndarray:
    """The inverse of `pack` (for tests)."""
    raw = base64.b64decode(packed["b64"])
    return np.frombuffer(raw, dtype=np.dtype(packed["dtype"]).newbyteorder("<")).reshape(packed["shape"])


def to_uint8(p) -> np.ndarray:
    """Values in [0, 1] (attention weights, probabilities) as uint8: round(255 p)."""
    p = np.asarray(torch.as_tensor(p, dtype=torch.float32))
    return np.clip(np.rint(p * 255.0), 0, 255).astype(np.uint8)


def to_millinats(x) -> np.ndarray:
    """Losses (nats, >= 0) as uint16 thousandths of a nat (up to 65.5 nats)."""
    x = np.asarray(torch.as_tensor(x, dtype=torch.float32))
    return np.clip(np.rint(x * 1000.0), 0, 65535).astype(np.uint16)


def _esm(name: str) -> str:
    """A front end: common.js (shared helpers) followed by the widget's own module."""
    return (HERE / "common.js").read_text() + "\n" + (HERE / f"{name}.js").read_text()


# ---------------------------------------------------------------- the base class


class App(anywidget.AnyWidget):
    """What every app has: `data` (everything the front end draws from), a message line and a way for the
    front end to ask the kernel for what was not precomputed.

    `message` is shown inside the widget; `error` colours it as an error. Python-side handlers run through
    `guard`, which turns any exception into a message (never a traceback under the cell)."""

    _css = (HERE / "common.css").read_text()
    data = T.Dict().tag(sync=True)
    message = T.Unicode("").tag(sync=True)
    error = T.Bool(False).tag(sync=True)
    name = "app"

    def show_message(self, text: str = "", error: bool = False) -> None:
        self.message, self.error = text, bool(error and text)

    @contextlib.contextmanager
    def guard(self):
        """Run a reader-triggered update: InputError -> its message; anything else -> a short message."""
        try:
            yield
        except InputError as e:
            self.show_message(str(e), error=True)
        except Exception as e:  # noqa: BLE001  (a bug or an unforeseen input: a message, not a traceback)
            self.show_message(f"Could not update the figure ({type(e).__name__}: {e}).", error=True)

    def state_bytes(self) -> int:
        """Size of the state this app embeds in a page (JSON of its synced traits), in bytes."""
        import json
        state = self.get_state()
        return len(json.dumps({k: v for k, v in state.items() if not isinstance(v, (bytes, memoryview))}))

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: display it in a notebook>"


# ---------------------------------------------------------------- token input


def parse_tokens(text: str, vocab: int, n_ctx: int, tokenizer=None) -> tuple[torch.Tensor, str | None]:
    """The reader's sequence as a 1-D tensor starting with BOS, and a note (or None).

    Without a tokenizer: token ids separated by spaces or commas (BOS = 0 is put in front if missing).
    With a tokenizer (e.g. `CharTokenizer`): the text itself. Raises InputError with a readable message."""
    if not isinstance(text, str):
        raise InputError(f"Expected text, got {type(text).__name__}.")
    note = None
    if tokenizer is not None:
        if not text:
            raise InputError("Type some text to run the model on.")
        ids = tokenizer.encode(text).tolist()
        unknown = sum(i == getattr(tokenizer, "unk", -1) for i in ids)
        if unknown:
            note = (f"{unknown} character{'s are' if unknown > 1 else ' is'} not in the model's vocabulary "
                    f"and {'are' if unknown > 1 else 'is'} shown as �.")
        seq = [BOS] + ids
    else:
        parts = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
        if not parts:
            raise InputError(f"Type token ids separated by spaces or commas, e.g. 0 5 17 9 5 17 "
                             f"(ids 0..{vocab - 1}; 0 is BOS).")
        ids = []
        for p in parts:
            if not re.fullmatch(r"[+-]?\d+", p):
                raise InputError(f"'{p[:20]}' is not a token id: type whole numbers from 0 to {vocab - 1}, "
                                 f"separated by spaces or commas.")
            i = int(p)
            if not 0 <= i < vocab:
                raise InputError(f"Token id {p[:20]} is not in the vocabulary: ids go from 0 to {vocab - 1}.")
            ids.append(i)
        seq = ids if ids[0] == BOS else [BOS] + ids
    if len(seq) > n_ctx:
        raise InputError(f"The sequence is {len(seq)} tokens long (with BOS) but the model reads at most "
                         f"{n_ctx}: shorten it by {len(seq) - n_ctx}.")
    return torch.tensor(seq, dtype=torch.long), note


def _labels(ids: list[int], tokenizer=None) -> list[str]:
    if tokenizer is not None:
        return ["BOS" if i == BOS else lab for i, lab in zip(ids, tokenizer.labels(ids))]
    return ["BOS" if i == BOS else str(i) for i in ids]


def _format_ids(ids: list[int], tokenizer=None) -> str:
    """The text box's spelling of a sequence (without the leading BOS)."""
    body = ids[1:] if ids and ids[0] == BOS else ids
    return tokenizer.decode(body) if tokenizer is not None else " ".join(map(str, body))


def _check_head(model, layer, head) -> str | None:
    """None if (layer, head) is a head of `model`, else a sentence saying what exists."""
    L, H = model.cfg.n_layers, model.cfg.n_heads
    ok = isinstance(layer, (int, np.integer)) and isinstance(head, (int, np.integer))
    if ok and 0 <= layer < L and 0 <= head < H:
        return None
    return (f"There is no head {layer}.{head}: this model has layers 0–{L - 1} and heads 0–{H - 1} "
            f"in each layer.")


# ---------------------------------------------------------------- 1. attention explorer


class AttentionExplorer(App):
    """Every head's attention on a few sequences; hover a token to see where it attends and what comes next.

    `data["sequences"]`: one entry per sequence, each with its token ids and labels, the attention pattern of
    every head ([layer, head, query, key], uint8) and the model's top-k next-token predictions at every
    position (ids, and probabilities as uint8). Synced selection: `layer`, `head`, `sequence` (index) and
    `query` (the hovered position). `text`: a sequence the reader typed (a live kernel computes it)."""

    _esm = _esm("attention_explorer")
    layer = T.Int(0).tag(sync=True)
    head = T.Int(0).tag(sync=True)
    sequence = T.Int(0).tag(sync=True)
    query = T.Int(-1).tag(sync=True)
    text = T.Unicode("").tag(sync=True)
    name = "attention explorer"

    def __init__(self, model, tokens=None, tokenizer=None, layer: int | None = None, head: int | None = None,
                 half_len: int = 12, top_k: int = 5, seed: int = 0, n_random: int = 3):
        super().__init__()
        self.model, self.tokenizer, self.top_k = model, tokenizer, top_k
        cfg = model.cfg
        default = heads.induction_head(model)
        note = None
        if layer is None and head is None:
            layer, head = default
        elif layer is None or head is None or _check_head(model, layer, head):
            asked = f"{layer}.{head}" if layer is not None and head is not None else "that head"
            problem = _check_head(model, layer if layer is not None else -1, head if head is not None else -1)
            note = (f"{problem if asked != 'that head' else 'Give both layer and head.'} Showing the induction "
                    f"head {default[0]}.{default[1]} instead.")
            layer, head = default
        seqs = []
        if tokens is not None:
            t = model.check_tokens(torch.as_tensor(tokens))[0]
            seqs.append(self._entry("the chapter's sequence", "given", t))
        half = max(2, min(half_len, (cfg.n_ctx - 1) // 2))
        for i in range(n_random):
            t = repeated_tokens(1, half, cfg.d_vocab, seed=seed + i, distinct=half < cfg.d_vocab - 1)[0]
            seqs.append(self._entry(f"random repeat #{i + 1} (BOS + r + r)", "random", t))
        seqs.append(self._ab_entry(seed))
        if tokenizer is not None and tokens is None:
            seqs.append(self._text_entry())
        self._n_fixed = len(seqs)
        vocab_labels = _labels(list(range(cfg.d_vocab)), tokenizer)
        self.data = {"n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "vocab": vocab_labels, "top_k": top_k,
                     "text_input": "text" if tokenizer is not None else "ids",
                     "default_head": list(default), "sequences": seqs}
        self.layer, self.head = int(layer), int(head)
        self.sequence, self.query = 0, len(seqs[0]["ids"]) - 1
        if note:
            self.show_message(note, error=True)
        self.observe(self._on_text, names="text")
        self.observe(self._on_head, names=["layer", "head"])

    # -- data --
    @torch.no_grad()
    def compute(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(patterns [layer, head, query, key], next-token probabilities [pos, vocab]) for a 1-D sequence."""
        logits, cache = self.model.run_with_cache(tokens[None], names=lambda n: n.endswith("hook_pattern"))
        patterns = torch.stack([cache.pattern(layer)[0] for layer in range(self.model.cfg.n_layers)])
        return patterns, logits[0].softmax(-1)

    def _entry(self, name: str, kind: str, tokens: torch.Tensor) -> dict:
        patterns, probs = self.compute(tokens)
        top = probs.topk(min(self.top_k, probs.shape[-1]), dim=-1)
        ids = tokens.tolist()
        nxt = torch.tensor(ids[1:] + [ids[-1]])
        p_next = probs.gather(-1, nxt[:, None])[:, 0]
        return {"name": name, "kind": kind, "ids": ids, "labels": _labels(ids, self.tokenizer),
                "pattern": pack(to_uint8(patterns), "uint8"),
                "top_ids": pack(top.indices.numpy(), "uint16"), "top_p": pack(to_uint8(top.values), "uint8"),
                "next_p": pack(to_uint8(p_next), "uint8")}

    def _ab_entry(self, seed: int) -> dict:
        """The "A B ... A" probe: distinct random tokens with A repeated at the end."""
        cfg = self.model.cfg
        n = min(cfg.n_ctx - 1, cfg.d_vocab - 1, 24)
        base = repeated_tokens(1, n, cfg.d_vocab, seed=seed + 100, distinct=True)[:, :1 + n]
        k, gap = 3, max(3, n - 3)
        t = scores.ab_tokens(base, k=k, gap=gap)[0]
        entry = self._entry("'A B … A' probe (A at 3 and at the end)", "ab", t)
        entry["marks"] = {"A": [k, len(t) - 1], "B": [k + 1]}
        return entry

    def _text_entry(self) -> dict:
        from ..data import stdlib_corpus
        text = stdlib_corpus(max_chars=4000)
        start = text.find("def ")
        snippet = text[max(0, start):][:self.model.cfg.n_ctx - 1]
        t, _ = parse_tokens(snippet, self.model.cfg.d_vocab, self.model.cfg.n_ctx, self.tokenizer)
        return self._entry("natural text (Python standard library)", "text", t)

    # -- live updates --
    def _on_head(self, change) -> None:
        problem = _check_head(self.model, self.layer, self.head)
        if problem:
            self.set_trait(change["name"], change["old"])
            self.show_message(problem, error=True)
        elif self.error:
            self.show_message("")

    def _on_text(self, change) -> None:
        """A sequence the reader typed (set by the front end in a live kernel): compute it and show it."""
        with self.guard():
            tokens, note = parse_tokens(change["new"], self.model.cfg.d_vocab, self.model.cfg.n_ctx,
                                        self.tokenizer)
            entry = self._entry("your sequence", "typed", tokens)
            seqs = list(self.data["sequences"][:self._n_fixed]) + [entry]
            self.data = {**self.data, "sequences": seqs}
            self.sequence, self.query = len(seqs) - 1, len(tokens) - 1
            self.show_message(note or "")

    # -- for tests and the chapters --
    def shown(self) -> dict:
        """What the figure shows now: the head's pattern [query, key] (dequantized) and the sequence."""
        seq = self.data["sequences"][self.sequence]
        pattern = unpack(seq["pattern"])[self.layer, self.head] / 255.0
        return {"ids": seq["ids"], "labels": seq["labels"], "pattern": pattern, "query": self.query}


def attention_explorer(model, tokens=None, tokenizer=None, layer: int | None = None, head: int | None = None,
                       **kwargs) -> AttentionExplorer:
    """Explore every head's attention: choose the layer, head and sequence, hover a token to see where it
    attends (the other tokens are coloured by its attention) and the model's top predictions for the next
    token. Precomputed (so it works in the static book): the sequence given (`tokens`), random repeated
    blocks (BOS + r + r), an "A B ... A" probe and, with a `tokenizer` and no tokens, a natural-text sample.
    In a live kernel the reader can also type a sequence (token ids, or text with a `CharTokenizer`).

    Default head: the induction head (`heads.induction_head`)."""
    return AttentionExplorer(model, tokens, tokenizer, layer, head, **kwargs)


# ---------------------------------------------------------------- 2. checkpoint scrubber


class CheckpointScrubber(App):
    """Training, snapshot by snapshot: loss curves with a marker, the two key heads' patterns and all scores.

    `data`: the snapshot steps, the loss curves, and for every snapshot the patterns of the previous-token
    and the induction head on BOS + r + r (uint8) and every head's scores at that step. Synced: `step`."""

    _esm = _esm("checkpoint_scrubber")
    step = T.Int(0).tag(sync=True)
    name = "checkpoint scrubber"

    def __init__(self, model, history, step: int | None = None, half_len: int = 14, seed: int = 3):
        super().__init__()
        if not history.snapshots:
            raise ValueError("this history has no snapshots: train with TrainConfig(snapshot_steps=...)")
        self.model, self.history = model, history
        self.steps = sorted(history.snapshots)
        value = self.steps[-1] if step is None else step
        if value not in self.steps:
            raise ValueError(f"step {value} has no snapshot; snapshots: {self.steps}")
        self.prev_head, self.ind_head = heads.key_heads(history)
        cfg = model.cfg
        half = min(half_len, (cfg.n_ctx - 1) // 2)
        self.tokens = repeated_tokens(1, half, cfg.d_vocab, seed=seed, distinct=half < cfg.d_vocab - 1)
        records = [self._record(s) for s in self.steps]
        prev = torch.stack(list(history.prev_token))[records]        # [snapshots, layers, heads]
        ind = torch.stack(list(history.induction))[records]
        self.patterns = self._all_patterns()                           # [snapshots, 2, n, n]
        r3 = lambda xs: [round(float(x), 4) for x in xs]
        self.data = {
            "steps": self.steps,
            "curves": {"steps": list(map(int, history.steps)), "train": r3(history.train_loss),
                       "repeat": r3(history.repeat_loss)},
            "formed_step": history.formed_step,
            "heads": {"prev": list(self.prev_head), "ind": list(self.ind_head)},
            "labels": _labels(self.tokens[0].tolist()),
            "patterns": pack(to_uint8(self.patterns), "uint8"),
            "prev_scores": pack(to_uint8(prev.clamp(0, 1)), "uint8"),
            "ind_scores": pack(to_uint8(ind.clamp(0, 1)), "uint8"),
            "record_loss": {"train": r3(history.train_loss[i] for i in records),
                            "repeat": r3(history.repeat_loss[i] for i in records),
                            "step": [int(history.steps[i]) for i in records]},
        }
        self.step = int(value)
        self.observe(self._on_step, names="step")

    def _record(self, step: int) -> int:
        """Index of the history record at `step` (the nearest recorded step)."""
        recorded = self.history.steps
        return min(range(len(recorded)), key=lambda i: abs(recorded[i] - step))

    def _all_patterns(self) -> torch.Tensor:
        """[snapshot, 2, q, k]: the previous-token and induction heads' patterns at every snapshot."""
        panels, _ = phase.snapshot_patterns(self.model, self.history, self.steps, [self.prev_head, self.ind_head],
                                            tokens=self.tokens)
        return panels.view(2, len(self.steps), *panels.shape[1:]).transpose(0, 1)

    def _on_step(self, change) -> None:
        if change["new"] not in self.steps:
            self.set_trait("step", change["old"])
            self.show_message(f"Step {change['new']} has no snapshot; snapshots: {self.steps[0]}, "
                              f"{self.steps[1]}, ... {self.steps[-1]}.", error=True)
        elif self.error:
            self.show_message("")


def checkpoint_scrubber(model, history, step: int | None = None, **kwargs) -> CheckpointScrubber:
    """Scrub through training: a slider over the saved snapshots (`history.snapshots`) moves a marker on the
    loss curves and shows, at that step, the attention patterns of the previous-token head and of the
    induction head (`heads.key_heads(history)`) on BOS + r + r, and every head's previous-token and induction
    score. Every snapshot is precomputed. Default: the last snapshot."""
    return CheckpointScrubber(model, history, step, **kwargs)


# ---------------------------------------------------------------- 3. ablation board


class _Toggle:
    """One checkbox of the ablation board, for Python: `board.head_boxes[(1, 0)].value = True`."""

    def __init__(self, board: AblationBoard, bit: int):
        self._board, self._bit = board, bit

    @property
    def value(self) -> bool:
        return bool(self._board.mask >> self._bit & 1)

    @value.setter
    def value(self, on: bool) -> None:
        self._board.mask = (self._board.mask | 1 << self._bit) if on else (self._board.mask & ~(1 << self._bit))


class AblationBoard(App):
    """Checkboxes remove heads (or one path of a head into later layers); the per-position loss follows.

    Every combination of the checkboxes (for each replacement method) is precomputed when there are at most
    `max_toggles` of them (2^4 head subsets x 2^6 path subsets = 1024 for the 2 x 2 model); otherwise every
    subset of whole heads is, and other combinations are computed by a live kernel on request.
    Synced: `mask` (bit i = toggle i of `data["toggles"]`), `method`."""

    _esm = _esm("ablation_board")
    mask = T.Int(0).tag(sync=True)
    method = T.Unicode("zero").tag(sync=True)
    extra = T.Dict().tag(sync=True)     # {"method:mask": packed loss} computed live on request
    name = "ablation board"

    def __init__(self, model, tokens=None, method: str = "zero", batch: int = 16, max_toggles: int = 10):
        super().__init__()
        self.model = model
        cfg = model.cfg
        self.tokens = scores.eval_tokens(model, batch=batch) if tokens is None else model.check_tokens(tokens)
        self.reference = scores.eval_tokens(model, batch=self.tokens.shape[0], seed=scores.EVAL_SEED + 1)
        if self.reference.shape != self.tokens.shape:
            self.reference = None
        half, prefix = scores.eval_layout(model)
        self.region = (1 + prefix + half, 1 + prefix + 2 * half - 1) if tokens is None else None
        self.toggles = [("head", l, h, None) for l in range(cfg.n_layers) for h in range(cfg.n_heads)]
        self.toggles += [("path", l, h, p) for l in range(cfg.n_layers - 1) for h in range(cfg.n_heads)
                         for p in ("k", "q", "v")]
        self.head_boxes = {(l, h): _Toggle(self, i) for i, (kind, l, h, p) in enumerate(self.toggles)
                           if kind == "head"}
        self.path_boxes = {(l, h, p): _Toggle(self, i) for i, (kind, l, h, p) in enumerate(self.toggles)
                           if kind == "path"}
        self.methods = ["zero"] + (["mean", "resample"] if self.reference is not None else [])
        if method not in self.methods:
            raise ValueError(f"method must be one of {self.methods}, got {method!r}")
        self.clean = interventions.per_position_loss_with(model, self.tokens).mean(0).numpy()
        n_heads = cfg.n_layers * cfg.n_heads
        if len(self.toggles) <= max_toggles:
            masks = list(range(1 << len(self.toggles)))
        else:
            masks = list(range(1 << n_heads))                  # whole-head subsets only (head bits come first)
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        # thousands of forward passes of a tiny model: one thread is fastest, and on a busy machine two
        # threads that wait for each other made this 70 times slower (8 s -> over 10 min, measured)
        with torch_threads(1):
            table = np.stack([np.stack([self.ablated_loss(m, k) for k in masks]) for m in self.methods])
        self.data = {
            "toggles": [{"kind": kind, "layer": l, "head": h, "path": p,
                         "name": f"{l}.{h}" + (f"→{p.upper()}" if p else "")}
                        for kind, l, h, p in self.toggles],
            "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "methods": self.methods,
            "masks": masks if len(masks) != 1 << len(self.toggles) else "all",
            "table": pack(to_millinats(table), "uint16"),           # [method, mask, position]
            "clean": pack(to_millinats(self.clean), "uint16"),
            "chance": math.log(cfg.d_vocab), "region": list(self.region) if self.region else None,
        }
        self.method = method
        self.observe(self._on_method, names="method")
        self.observe(self._on_mask, names="mask")

    def selection(self, mask: int | None = None) -> tuple[list, dict]:
        """(whole heads, {path: heads}) removed by `mask` (default: the current one)."""
        mask = self.mask if mask is None else mask
        on = [t for i, t in enumerate(self.toggles) if mask >> i & 1]
        whole = [(l, h) for kind, l, h, _ in on if kind == "head"]
        paths = {p: [(l, h) for kind, l, h, q in on if kind == "path" and q == p] for p in ("k", "q", "v")}
        return whole, paths

    def _canonical(self, mask: int) -> int:
        """The same ablation with the path bits of wholly removed heads cleared (they change nothing)."""
        whole, _ = self.selection(mask)
        for i, (kind, l, h, _) in enumerate(self.toggles):
            if kind == "path" and (l, h) in whole:
                mask &= ~(1 << i)
        return mask

    @torch.no_grad()
    def ablated_loss(self, method: str | None = None, mask: int | None = None) -> np.ndarray:
        """Mean per-position loss [pos - 1] with the heads and paths of `mask` removed by `method`
        (defaults: the board's current selection)."""
        method = self.method if method is None else method
        mask = self._canonical(self.mask if mask is None else mask)
        key = (method, mask)
        if key not in self._cache:
            whole, paths = self.selection(mask)
            ref = None if method == "zero" else self.reference
            with contextlib.ExitStack() as stack:
                if whole:
                    stack.enter_context(interventions.ablate(self.model, whole, method, ref))
                for path, which in paths.items():
                    if which:
                        stack.enter_context(interventions.ablate_path(self.model, which, path, method, ref))
                logits = self.model(self.tokens)
            self._cache[key] = scores.per_position_loss(logits, self.tokens).mean(0).numpy()
        return self._cache[key]

    def shown(self) -> np.ndarray:
        """The ablated curve the front end draws now (dequantized from the data it has)."""
        masks = self.data["masks"]
        key = f"{self.method}:{self.mask}"
        if key in self.extra:
            return unpack(self.extra[key]) / 1000.0
        index = self.mask if masks == "all" else masks.index(self.mask)
        return unpack(self.data["table"])[self.methods.index(self.method), index] / 1000.0

    def _on_method(self, change) -> None:
        if change["new"] not in self.methods:
            self.set_trait("method", change["old"])
            self.show_message(f"Unknown method {change['new']!r}: choose one of {', '.join(self.methods)}.",
                              error=True)
            return
        self._on_mask(None)

    def _on_mask(self, change) -> None:
        """A combination that was not precomputed (only for big models): compute it here, live."""
        with self.guard():
            if self.mask < 0 or self.mask >= 1 << len(self.toggles):
                bad = self.mask
                self.set_trait("mask", change["old"] if change else 0)
                raise InputError(f"Selection {bad} does not exist: there are {len(self.toggles)} checkboxes.")
            masks = self.data["masks"]
            if masks != "all" and self.mask not in masks and f"{self.method}:{self.mask}" not in self.extra:
                loss = self.ablated_loss()
                self.extra = {**self.extra, f"{self.method}:{self.mask}": pack(to_millinats(loss), "uint16")}
            self.show_message("")


def ablation_board(model, tokens=None, method: str = "zero", **kwargs) -> AblationBoard:
    """Remove heads and watch the loss: a checkbox per head (its whole output) and, for heads that later
    layers read, per path (K, Q or V: the head's output removed from only that input of later layers'
    attention). Shows the per-position loss, clean and ablated, averaged over held-out BOS + prefix + r + r
    (`scores.eval_tokens`), with the predictable repeated half shaded. `method`: "zero", "mean" or
    "resample" (the latter two take their reference from another held-out batch). Every combination is
    precomputed, so the board works in the static book. `board.head_boxes[(l, h)].value = True` and
    `board.path_boxes[(l, h, "k")].value = True` tick boxes from Python."""
    return AblationBoard(model, tokens, method, **kwargs)


# ---------------------------------------------------------------- 4. Hopfield playground


class HopfieldPlayground(App):
    """A modern Hopfield network of random +-1 images: retrieve one from a noisy copy and watch the energy.

    The update xi <- X softmax(beta X^T xi) is cheap, so the front end computes it itself, live, for the
    reader's beta, N and noise (`hopfield_playground.js`); `data` holds the stored patterns and the noise
    direction, and `compute()` is the same computation in Python (with `induction_lib.hopfield`), for tests
    and for readers who want the numbers. Synced: `beta`, `n`, `noise`."""

    _esm = _esm("hopfield_playground")
    beta = T.Float(8.0).tag(sync=True)
    n = T.Int(16).tag(sync=True)
    noise = T.Float(0.8).tag(sync=True)
    name = "Hopfield playground"

    def __init__(self, side: int = 8, max_patterns: int = 64, beta: float = 8.0, n: int = 16, noise: float = 0.8,
                 seed: int = 0, grid: int = 61, max_steps: int = 60, tol: float = 1e-5):
        super().__init__()
        self.side, self.d, self.grid, self.max_steps, self.tol = side, side * side, grid, max_steps, tol
        # all patterns drawn once, so moving N adds or removes patterns without reshuffling the others
        signs = hf.random_patterns(self.d, max_patterns, seed, binary=True)          # [d, N] of +-1
        self.all_patterns = signs / side                                             # unit norm
        g = torch.Generator().manual_seed(seed + 1)
        noise_dir = torch.randn(self.d, generator=g)
        self.noise_dir = noise_dir / noise_dir.norm()
        self.data = {"side": side, "d": self.d, "max_patterns": max_patterns, "grid": grid,
                     "max_steps": max_steps, "tol": tol,
                     "signs": pack(signs.T.numpy(), "int8"),                        # [N, d]
                     "noise_dir": pack(self.noise_dir.numpy(), "float32"),
                     "beta_range": [0.1, 1000.0], "noise_range": [0.0, 2.0]}
        self.beta, self.n, self.noise = float(beta), int(n), float(noise)
        self.data = {**self.data, "reference": self.summary()}
        self.observe(self._on_change, names=["beta", "n", "noise"])

    def _on_change(self, change) -> None:
        lo_b, hi_b = self.data["beta_range"]
        ok = {"beta": lo_b <= self.beta <= hi_b, "n": 2 <= self.n <= self.data["max_patterns"],
              "noise": 0 <= self.noise <= self.data["noise_range"][1]}[change["name"]]
        if not ok:
            self.set_trait(change["name"], change["old"])
            limits = {"beta": f"{lo_b:g} to {hi_b:g}", "n": f"2 to {self.data['max_patterns']}",
                      "noise": f"0 to {self.data['noise_range'][1]:g}"}[change["name"]]
            self.show_message(f"{change['name']} = {change['new']!r} is out of range ({limits}).", error=True)
        elif self.error:
            self.show_message("")

    def compute(self) -> dict:
        """Everything the figure shows, for the current beta, N and noise (the front end computes the same)."""
        beta, n, noise = float(self.beta), int(self.n), float(self.noise)
        X = self.all_patterns[:, :n]                                  # [d, N]
        target = X[:, 0]
        query = target + noise * self.noise_dir                       # |noise part| = noise * |target|
        r = hf.retrieve(X, query, beta, max_steps=self.max_steps, tol=self.tol)
        path = [query]
        for _ in range(r.steps):
            path.append(hf.update(X, path[-1], beta))
        path = torch.stack(path)
        sims = query @ X
        sims[0] = -float("inf")
        other = int(sims.argmax())
        u1 = target / target.norm()
        v = X[:, other] - (X[:, other] @ u1) * u1
        u2 = v / v.norm()
        a = torch.linspace(-0.5, 1.5, self.grid)
        A, B = torch.meshgrid(a, a, indexing="xy")
        states = A[..., None] * u1 + B[..., None] * u2               # [g, g, d]
        land = hf.energy(X, states, beta)
        return {"beta": beta, "n": n, "noise": noise, "X": X, "query": query, "retrieval": r, "path": path,
                "plane": (u1, u2), "other": other, "landscape": land}

    def summary(self) -> dict:
        """The numbers the front end prints for the current settings: updates, error, effective count."""
        c = self.compute()
        r = c["retrieval"]
        return {"beta": c["beta"], "n": c["n"], "noise": c["noise"], "steps": r.steps,
                "error": round((r.state - c["X"][:, 0]).norm().item(), 4),
                "count": round(hf.effective_count(r.weights).item(), 4),
                "energy": [round(float(e), 5) for e in r.energies]}


def hopfield_playground(beta: float = 8.0, n: int = 16, noise: float = 0.8, **kwargs) -> HopfieldPlayground:
    """A modern Hopfield network to play with: N random +-1 images (8 x 8, scaled to unit norm) are stored;
    the query is the first of them (the target, green in the weights) plus noise; sliders set beta, N and
    the noise, and the page recomputes the retrieval live (in JavaScript, also in the static book). Shown:
    the energy on the plane spanned by the target and the stored pattern most similar to the query (the
    iterates, which leave the plane a little, are projected onto it), the energy after each update (never
    increasing), the weights softmax(beta X^T xi) at the fixed point, and the query, retrieved and target
    images. Small beta: the fixed point is an average of many patterns (a grey image); large beta: the target."""
    return HopfieldPlayground(beta=beta, n=n, noise=noise, **kwargs)


# ---------------------------------------------------------------- 5. the task, for the setup page


class RepeatDemo(App):
    """The training task at a glance: BOS + r + r for every length of r on a slider (all precomputed)."""

    _esm = _esm("repeat_demo")
    half_len = T.Int(5).tag(sync=True)
    name = "repeat demo"

    def __init__(self, half_len: int = 5, max_half_len: int = 12, vocab: int = 50, seed: int = 0):
        super().__init__()
        if not 1 <= half_len <= max_half_len:
            raise ValueError(f"half_len must be in 1..{max_half_len}, got {half_len}")
        rows = {str(n): repeated_tokens(1, n, vocab, seed=seed)[0].tolist() for n in range(1, max_half_len + 1)}
        self.data = {"sequences": rows, "max_half_len": max_half_len}
        self.half_len = half_len
        self.observe(self._on_len, names="half_len")

    def _on_len(self, change) -> None:
        if str(change["new"]) not in self.data["sequences"]:
            self.set_trait("half_len", change["old"])
            self.show_message(f"half_len must be between 1 and {self.data['max_half_len']}.", error=True)
        elif self.error:
            self.show_message("")


def repeat_demo(half_len: int = 5, **kwargs) -> RepeatDemo:
    """A slider over |r| showing the task the book's models learn: BOS, a random block r, and r again
    (`repeated_tokens`); the second copy is coloured like the first, since it can only be predicted from it."""
    return RepeatDemo(half_len, **kwargs)
