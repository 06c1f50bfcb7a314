"""Interactive apps for the chapters (ipywidgets): the attention explorer, the training-checkpoint scrubber,
the ablation board and the Hopfield playground.

    explorer = il.widgets.attention_explorer(model)
    explorer            # a cell's last expression: the controls, then the figure

How an app shows itself. Displaying an app puts two outputs under the cell: the controls (an ipywidgets
box) and the figure of the app's default state as an ordinary PNG output. So the static book, read without
a kernel, shows the complete figure whatever happens to the widgets' JavaScript, and the controls next to
it. In a live kernel, the first time the reader moves a control the figure moves into the widget box (an
`ipywidgets.Image`, whose PNG bytes are swapped in place from then on: no flicker) and the static output is
emptied, so the figure is never shown twice.

Each app draws one `matplotlib.figure.Figure`, built once and updated in place (pyplot's global state is
never used, so no figure leaks), and re-renders it to PNG bytes on every change: `app.png`. Rendering is
blitted (see `App`): what never changes is drawn once, an update redraws only the changing artists. Input the app
cannot use (a token that is not in the vocabulary, a sequence longer than the context, garbage) is reported
in the app's message line (`app.message`), never as a traceback; the figure then keeps its last state.
`benchmarks/widget_updates.py` times every kind of update.
"""
from __future__ import annotations

import copy
import html
import io
import math
import re
import uuid

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib import transforms
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from . import hopfield as hf
from . import heads, interventions, scores
from .data import BOS, repeated_tokens
from .plots import OKABE_ITO, SEQUENTIAL

DPI = 100
ERROR_COLOUR = "#D55E00"   # Okabe-Ito vermillion


class InputError(ValueError):
    """Input from the reader that the app cannot use; its message is shown in the app."""


# ---------------------------------------------------------------- rendering


def encode_png(canvas: FigureCanvasAgg, compress_level: int = 3) -> bytes:
    """The canvas's pixels as PNG bytes (PIL at a low compression level: fast, a little larger)."""
    from PIL import Image
    width, height = canvas.get_width_height()
    img = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="png", compress_level=compress_level)
    return buf.getvalue()


def _token_ticks(ax, labels: list[str], max_labels: int = 32, fontsize: int = 7) -> None:
    n = len(labels)
    step = max(1, math.ceil(n / max_labels))
    idx = list(range(0, n, step))
    ax.set_xticks(idx, [labels[i] for i in idx], rotation=90, fontsize=fontsize)
    ax.set_yticks(idx, [labels[i] for i in idx], fontsize=fontsize)


def _set_image(im, data) -> None:
    """Replace an imshow's data, also when its shape changed."""
    data = np.asarray(data, dtype=float)
    im.set_data(data)
    h, w = data.shape[:2]
    im.set_extent((-0.5, w - 0.5, h - 0.5, -0.5))
    im.axes.set_xlim(-0.5, w - 0.5)
    im.axes.set_ylim(h - 0.5, -0.5)


# ---------------------------------------------------------------- the app base class


class App:
    """Controls + a message line + a figure, kept in step.

    Subclasses build `self.figure` and its artists in `__init__`, mark the artists that change from one
    update to the next with `self.dynamic(...)`, implement `update()` (read the controls, recompute, change
    the artists; raise InputError for unusable input) and call `self.refresh()` at the end of `__init__`.

    Drawing is blitted: the first render lays the figure out (constrained layout) and then freezes the
    layout; everything that is not dynamic (axes, tick labels, legends...) is drawn once and kept as a
    bitmap, and an update restores that bitmap and draws only the dynamic artists, a few milliseconds
    instead of the ~100 ms a full draw of all the text costs. An update that changes something static
    (tick labels, axis limits) sets `self.full_redraw = True`."""

    name = "app"

    def __init__(self, controls: list, figsize: tuple[float, float]):
        self.message = W.HTML(value="")
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto"))
        self._children = (*controls, self.message)
        self.box = W.VBox(list(self._children))
        self.figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
        self.canvas = FigureCanvasAgg(self.figure)
        self.png = b""
        self.updates = 0            # successful redraws so far
        self.full_redraw = True
        self._dynamic: list = []
        self._background = None
        self._busy = False          # set while the app itself changes controls
        self._display_id = None     # the static PNG output, once displayed in a notebook
        self._live = False

    # -- controls --
    def watch(self, *controls) -> None:
        for control in controls:
            control.observe(self._changed, names="value")

    def _changed(self, change=None) -> None:
        if not self._busy:
            self.refresh()

    # -- messages --
    def show_message(self, text: str = "", error: bool = False) -> None:
        if not text:
            self.message.value = ""
            return
        style = f"color:{ERROR_COLOUR};font-weight:bold" if error else "color:#444"
        self.message.value = f'<span style="{style}">{html.escape(text)}</span>'

    # -- drawing --
    def dynamic(self, *artists) -> None:
        """Mark artists (lines, images, texts, whole Axes...) as redrawn at every update, in this order."""
        for a in artists:
            a.set_animated(True)
            self._dynamic.append(a)

    def render(self) -> bytes:
        """Draw the figure (blitted, see the class docstring) and return it as PNG bytes."""
        fig, canvas = self.figure, self.canvas
        if self.full_redraw or self._background is None:
            first = self._background is None
            canvas.draw()                                  # lays out (first time) and draws the static parts
            if first and fig.get_layout_engine() is not None:
                fig.set_layout_engine("none")              # freeze the layout just computed
            self._background = canvas.copy_from_bbox(fig.bbox)
            self.full_redraw = False
        else:
            canvas.restore_region(self._background)
        renderer = canvas.get_renderer()
        for a in self._dynamic:
            if a.get_visible():
                a.draw(renderer)
        return encode_png(canvas)

    def update(self) -> str | None:
        """Recompute and update the figure's artists; may return a note to show. Subclasses override."""
        raise NotImplementedError

    def refresh(self) -> bool:
        """Redraw from the controls. True if the figure was redrawn; on unusable input the message says
        why (the figure keeps its last state) and the result is False. Never raises."""
        try:
            note = self.update()
            png = self.render()
        except InputError as e:
            self.show_message(str(e), error=True)
            return False
        except Exception as e:  # a bug or an unforeseen input: say so in the app, not as a traceback
            self.full_redraw = True
            self.show_message(f"Could not update the figure ({type(e).__name__}: {e}).", error=True)
            return False
        self.png = png
        self.updates += 1
        self.show_message(note or "")
        if self.updates > 1:
            self._go_live()
        if self._live:
            self.image.value = png
        return True

    def _go_live(self) -> None:
        """After the first change in a notebook: show the figure inside the widget box, empty the static one."""
        if self._live or self._display_id is None:
            return
        from IPython.display import update_display
        self.image.value = self.png
        self.box.children = (*self._children, self.image)
        update_display({"text/plain": ""}, raw=True, display_id=self._display_id)
        self._live = True

    # -- display --
    def static_bundle(self) -> dict:
        """The current figure as a display bundle (PNG + a text fallback)."""
        import base64
        return {"image/png": base64.b64encode(self.png).decode("ascii"),
                "text/plain": f"<{self.name}: figure>"}

    def _ipython_display_(self):
        from IPython.display import display
        self._live = False
        self.box.children = self._children
        self._display_id = uuid.uuid4().hex
        display(self.box)
        display(self.static_bundle(), raw=True, display_id=self._display_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.updates} redraws; display it in a notebook>"


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


# ---------------------------------------------------------------- 1. attention explorer


class AttentionExplorer(App):
    """One head's attention pattern on a sequence, with the model's top predictions at one position."""

    name = "attention explorer"

    def __init__(self, model, tokens=None, tokenizer=None, layer: int | None = None, head: int | None = None,
                 half_len: int = 12, top_k: int = 5, seed: int = 0):
        self.model, self.tokenizer, self.top_k, self.half_len, self.seed = model, tokenizer, top_k, half_len, seed
        cfg = model.cfg
        if layer is None or head is None:
            layer, head = heads.induction_head(model)
        if tokens is None:
            tokens = self._random_tokens()
        tokens = model.check_tokens(torch.as_tensor(tokens))[0]
        self.layer_w = W.Dropdown(options=list(range(cfg.n_layers)), value=layer, description="layer",
                                  layout=W.Layout(width="140px"))
        self.head_w = W.Dropdown(options=list(range(cfg.n_heads)), value=head, description="head",
                                 layout=W.Layout(width="140px"))
        self.position_w = W.IntSlider(value=len(tokens) - 1, min=0, max=len(tokens) - 1,
                                      description="predict at", continuous_update=False)
        hint = "text" if tokenizer is not None else "token ids, e.g. 0 5 17 9 5 17"
        self.text_w = W.Text(value=_format_ids(tokens.tolist(), tokenizer), description="sequence",
                             placeholder=hint, continuous_update=False, layout=W.Layout(width="95%"))
        self.random_w = W.Button(description="new random sequence", layout=W.Layout(width="190px"))
        self.random_w.on_click(self._new_random)
        super().__init__([W.HBox([self.layer_w, self.head_w, self.position_w]),
                          W.HBox([self.text_w]), self.random_w], figsize=(7.5, 3.9))
        self.watch(self.layer_w, self.head_w, self.position_w, self.text_w)
        self._cache_key, self._tokens = None, tokens
        self._build()
        self.refresh()

    def _random_tokens(self) -> torch.Tensor:
        cfg = self.model.cfg
        half = min(self.half_len, (cfg.n_ctx - 1) // 2)
        if self.tokenizer is not None:  # printable characters, no newline or unknown
            g = torch.Generator().manual_seed(self.seed)
            r = torch.randint(2, self.tokenizer.vocab_size - 1, (half,), generator=g)
            return torch.cat([torch.tensor([BOS]), r, r])
        return repeated_tokens(1, half, cfg.d_vocab, seed=self.seed, distinct=half < cfg.d_vocab - 1)[0]

    def _new_random(self, _button=None) -> None:
        self.seed += 1
        tokens = self._random_tokens()
        self._busy = True
        try:
            self.text_w.value = _format_ids(tokens.tolist(), self.tokenizer)
        finally:
            self._busy = False
        self.refresh()

    def _build(self) -> None:
        fig = self.figure
        gs = fig.add_gridspec(1, 2, width_ratios=[1.3, 1])
        self.ax_pat, self.ax_top = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        self.im = self.ax_pat.imshow(np.zeros((2, 2)), cmap=SEQUENTIAL, vmin=0, vmax=1, interpolation="nearest")
        cbar = fig.colorbar(self.im, ax=self.ax_pat, shrink=0.85)
        cbar.set_label("attention weight", fontsize=8)
        cbar.ax.tick_params(labelsize=7)
        self.ax_pat.set_xlabel("key position (attended to)", fontsize=8)
        self.ax_pat.set_ylabel("query position", fontsize=8)
        self.row = Rectangle((-0.5, -0.5), 1, 1, fill=False, ec=OKABE_ITO[3], lw=1.5)
        self.ax_pat.add_patch(self.row)
        ax = self.ax_top
        self.bars = ax.barh(range(self.top_k), np.zeros(self.top_k), color=OKABE_ITO[0])
        ax.set_xlim(0, 1)
        ax.set_ylim(self.top_k - 0.5, -0.5)
        ax.set_yticks([])
        ax.set_xlabel("probability of the next token", fontsize=8)
        ax.tick_params(labelsize=8)
        # token names and values as texts (cheaper to redraw than tick labels)
        left = transforms.blended_transform_factory(ax.transAxes, ax.transData)
        self.bar_names = [ax.text(-0.03, i, "'00'", transform=left, ha="right", va="center", fontsize=8)
                          for i in range(self.top_k)]
        self.bar_text = [ax.text(0, i, "", va="center", fontsize=8) for i in range(self.top_k)]
        self.dynamic(self.im, *self.ax_pat.spines.values(), self.row, self.ax_pat.title, *self.bars,
                     *self.bar_names, *self.bar_text, ax.title)

    def _run(self, tokens: torch.Tensor):
        key = tuple(tokens.tolist())
        if key != self._cache_key:
            logits, cache = self.model.run_with_cache(tokens[None], names=lambda n: n.endswith("hook_pattern"))
            self._probs = logits[0].softmax(-1)
            self._patterns = [cache.pattern(layer)[0] for layer in range(self.model.cfg.n_layers)]
            self._cache_key = key
            self.full_redraw = True  # new token labels on the axes
        return self._probs, self._patterns

    def update(self):
        tokens, note = parse_tokens(self.text_w.value, self.model.cfg.d_vocab, self.model.cfg.n_ctx,
                                    self.tokenizer)
        probs, patterns = self._run(tokens)
        n = len(tokens)
        if self.position_w.max != n - 1:
            self._busy = True
            try:
                moved = self.position_w.value == self.position_w.max or self.position_w.value > n - 1
                self.position_w.max = n - 1
                if moved:
                    self.position_w.value = n - 1
            finally:
                self._busy = False
        layer, head, pos = self.layer_w.value, self.head_w.value, self.position_w.value
        ids = tokens.tolist()
        labels = _labels(ids, self.tokenizer)
        _set_image(self.im, patterns[layer][head].numpy())
        if self.full_redraw:
            _token_ticks(self.ax_pat, labels)
        self.ax_pat.set_title(f"head {layer}.{head}", fontsize=9)
        self.row.set_xy((-0.5, pos - 0.5))
        self.row.set_width(pos + 1)
        p = probs[pos]
        top = p.topk(self.top_k)
        actual = ids[pos + 1] if pos + 1 < n else None
        names = _labels(top.indices.tolist(), self.tokenizer)
        for i, (bar, value, tok, name) in enumerate(zip(self.bars, top.values.tolist(), top.indices.tolist(), names)):
            bar.set_width(value)
            bar.set_color(OKABE_ITO[2] if tok == actual else OKABE_ITO[0])
            self.bar_text[i].set_text(f" {value:.2f}")
            self.bar_text[i].set_x(value)
        for text, name in zip(self.bar_names, names):
            text.set_text(f"'{name}'")
        after = f"after '{labels[pos]}' (position {pos})"
        truth = f"; actual next: '{_labels([actual], self.tokenizer)[0]}' (green)" if actual is not None else ""
        self.ax_top.set_title(f"top predictions {after}{truth}", fontsize=8)
        self._tokens = tokens
        return note


def attention_explorer(model, tokens=None, tokenizer=None, layer: int | None = None, head: int | None = None,
                       **kwargs) -> AttentionExplorer:
    """Explore one head's attention: choose the layer and head, type a sequence (token ids, or text for a
    model with a `CharTokenizer`), pick the position whose next-token prediction is shown.

    Default: a random block repeated once (BOS + r + r) and the induction head (highest diagonal
    induction score), so the default figure shows the induction stripe and a confident prediction."""
    return AttentionExplorer(model, tokens, tokenizer, layer, head, **kwargs)


# ---------------------------------------------------------------- 2. checkpoint scrubber


class CheckpointScrubber(App):
    """Training, step by step: the loss curve, the two key heads' patterns and all head scores."""

    name = "checkpoint scrubber"

    def __init__(self, model, history, step: int | None = None, half_len: int = 14, seed: int = 3):
        if not history.snapshots:
            raise ValueError("this history has no snapshots: train with TrainConfig(snapshot_steps=...)")
        self.model, self.history = model, history
        self.steps = sorted(history.snapshots)
        self._scratch = copy.deepcopy(model)
        prev = torch.stack(list(history.prev_token))        # [records, layers, heads]
        ind = torch.stack(list(history.induction))
        self.prev_scores, self.ind_scores = prev, ind
        self.prev_head, self.ind_head = heads.key_heads(history)
        cfg = model.cfg
        half = min(half_len, (cfg.n_ctx - 1) // 2)
        self.tokens = repeated_tokens(1, half, cfg.d_vocab, seed=seed, distinct=half < cfg.d_vocab - 1)
        self._patterns: dict[int, tuple] = {}
        value = self.steps[-1] if step is None else step
        if value not in self.steps:
            raise ValueError(f"step {value} has no snapshot; snapshots: {self.steps}")
        self.step_w = W.SelectionSlider(options=self.steps, value=value, description="step",
                                        continuous_update=False, layout=W.Layout(width="95%"))
        super().__init__([self.step_w], figsize=(7.5, 5.2))
        self.watch(self.step_w)
        self._build()
        self.refresh()

    def _record(self, step: int) -> int:
        """Index of the history record at `step` (the nearest recorded step)."""
        recorded = self.history.steps
        return min(range(len(recorded)), key=lambda i: abs(recorded[i] - step))

    def _snapshot_patterns(self, step: int):
        if step not in self._patterns:
            self._scratch.load_state_dict(self.history.snapshots[step])
            _, cache = self._scratch.run_with_cache(self.tokens, names=lambda n: n.endswith("hook_pattern"))
            (l0, h0), (l1, h1) = self.prev_head, self.ind_head
            self._patterns[step] = (cache.pattern(l0)[0, h0].numpy(), cache.pattern(l1)[0, h1].numpy())
        return self._patterns[step]

    def _build(self) -> None:
        fig, h = self.figure, self.history
        gs = fig.add_gridspec(2, 4, height_ratios=[1, 1.15])
        ax = self.ax_loss = fig.add_subplot(gs[0, :])
        ax.plot(h.steps, h.train_loss, color=OKABE_ITO[0], lw=1.4, label="training loss")
        ax.plot(h.steps, h.repeat_loss, color=OKABE_ITO[1], lw=1.4, label="loss on held-out repeats")
        ax.set_yscale("log")
        ax.set_xlabel("training step", fontsize=8)
        ax.set_ylabel("loss (nats)", fontsize=8)
        ax.tick_params(labelsize=7)
        if h.formed_step is not None:
            ax.axvline(h.formed_step, color="0.6", ls=":", lw=1, label=f"induction head formed ({h.formed_step})")
        self.marker = ax.axvline(0, color=OKABE_ITO[3], lw=1.5)
        self.dots = ax.plot([0, 0], [1, 1], "o", color=OKABE_ITO[3], ms=4)[0]
        ax.legend(fontsize=7, loc="upper right")
        (l0, h0), (l1, h1) = self.prev_head, self.ind_head
        self.ax_prev, self.ax_ind = fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[1, 1])
        n = self.tokens.shape[1]
        self.im_prev = self.ax_prev.imshow(np.zeros((n, n)), cmap=SEQUENTIAL, vmin=0, vmax=1, interpolation="nearest")
        self.im_ind = self.ax_ind.imshow(np.zeros((n, n)), cmap=SEQUENTIAL, vmin=0, vmax=1, interpolation="nearest")
        self.ax_prev.set_title(f"previous-token head {l0}.{h0}", fontsize=8)
        self.ax_ind.set_title(f"induction head {l1}.{h1}", fontsize=8)
        for a in (self.ax_prev, self.ax_ind):
            a.set_xticks([])
            a.set_yticks([])
            a.set_xlabel("key", fontsize=7)
        self.ax_prev.set_ylabel("query (BOS + r + r)", fontsize=7)
        self.ax_sprev, self.ax_sind = fig.add_subplot(gs[1, 2]), fig.add_subplot(gs[1, 3])
        self.score_ims, self.score_texts = [], []
        for a, title in ((self.ax_sprev, "previous-token score"), (self.ax_sind, "induction score")):
            L, H = self.prev_scores.shape[1:]
            im = a.imshow(np.zeros((L, H)), cmap=SEQUENTIAL, vmin=0, vmax=1, aspect="auto")
            a.set_xticks(range(H), [str(i) for i in range(H)], fontsize=7)
            a.set_yticks(range(L), [f"L{i}" for i in range(L)], fontsize=7)
            a.set_xlabel("head", fontsize=7)
            a.set_title(title, fontsize=8)
            self.score_ims.append(im)
            self.score_texts.append([[a.text(j, i, "", ha="center", va="center", fontsize=7)
                                      for j in range(H)] for i in range(L)])
        spines = [sp for a in (self.ax_prev, self.ax_ind, self.ax_sprev, self.ax_sind) for sp in a.spines.values()]
        texts = [t for block in self.score_texts for row in block for t in row]
        self.dynamic(self.im_prev, self.im_ind, *self.score_ims, *texts, *spines, self.marker, self.dots,
                     self.ax_loss.get_legend(), self.ax_loss.title)

    def update(self):
        step = self.step_w.value
        k = self._record(step)
        self.marker.set_xdata([step, step])
        self.dots.set_data([self.history.steps[k]] * 2, [self.history.train_loss[k], self.history.repeat_loss[k]])
        prev_pat, ind_pat = self._snapshot_patterns(step)
        self.im_prev.set_data(prev_pat)
        self.im_ind.set_data(ind_pat)
        for im, texts, s in zip(self.score_ims, self.score_texts, (self.prev_scores[k], self.ind_scores[k])):
            im.set_data(s.numpy())
            for i, row in enumerate(texts):
                for j, t in enumerate(row):
                    v = float(s[i, j])
                    t.set_text(f"{v:.2f}")
                    t.set_color("black" if v > 0.6 else "white")
        self.ax_loss.set_title(f"step {step}: training loss {self.history.train_loss[k]:.3f}, "
                               f"repeat loss {self.history.repeat_loss[k]:.3f}", fontsize=9)
        return None


def checkpoint_scrubber(model, history, step: int | None = None, **kwargs) -> CheckpointScrubber:
    """Scrub through training: a slider over the saved snapshots (`history.snapshots`) shows the loss curves
    with a marker at that step, the attention patterns of the previous-token head and of the induction head
    (the heads that score highest at the end of training) on BOS + r + r, and every head's previous-token
    and induction score at that step. Default: the last snapshot."""
    return CheckpointScrubber(model, history, step, **kwargs)


# ---------------------------------------------------------------- 3. ablation board


class AblationBoard(App):
    """Checkboxes remove heads (or one path of a head into later layers); the per-position loss follows."""

    name = "ablation board"

    def __init__(self, model, tokens=None, method: str = "zero", batch: int = 16):
        self.model = model
        cfg = model.cfg
        self.tokens = scores.eval_tokens(model, batch=batch) if tokens is None else model.check_tokens(tokens)
        self.reference = scores.eval_tokens(model, batch=self.tokens.shape[0], seed=scores.EVAL_SEED + 1)
        if self.reference.shape != self.tokens.shape:
            self.reference = None
        half, prefix = scores.eval_layout(model)
        self.region = (1 + prefix + half, 1 + prefix + 2 * half - 1) if tokens is None else None
        self.head_boxes = {(l, h): W.Checkbox(value=False, description=f"{l}.{h}", indent=False,
                                              layout=W.Layout(width="70px"))
                           for l in range(cfg.n_layers) for h in range(cfg.n_heads)}
        self.path_boxes = {(l, h, p): W.Checkbox(value=False, description=p.upper(), indent=False,
                                                 layout=W.Layout(width="42px"))
                           for l in range(cfg.n_layers - 1) for h in range(cfg.n_heads) for p in ("k", "q", "v")}
        methods = ["zero"] + (["mean", "resample"] if self.reference is not None else [])
        self.method_w = W.Dropdown(options=methods, value=method, description="replace by",
                                   layout=W.Layout(width="200px"))
        rows = [W.HTML("<b>Remove whole heads</b>")]
        rows += [W.HBox([W.Label(f"layer {l}:", layout=W.Layout(width="60px"))] +
                        [self.head_boxes[(l, h)] for h in range(cfg.n_heads)]) for l in range(cfg.n_layers)]
        if cfg.n_layers > 1:
            rows.append(W.HTML("<b>Remove one path only</b>: a head's output as seen by the keys (K), queries (Q) "
                               "or values (V) of later layers"))
            for l in range(cfg.n_layers - 1):
                rows.append(W.HBox([W.HBox([W.Label(f"{l}.{h}", layout=W.Layout(width="30px"))] +
                                           [self.path_boxes[(l, h, p)] for p in ("k", "q", "v")],
                                           layout=W.Layout(margin="0 18px 0 0"))
                                    for h in range(cfg.n_heads)]))
        rows.append(self.method_w)
        super().__init__(rows, figsize=(7.5, 3.2))
        self.watch(self.method_w, *self.head_boxes.values(), *self.path_boxes.values())
        self.clean = interventions.per_position_loss_with(model, self.tokens).mean(0).numpy()
        self._build()
        self.refresh()

    def selection(self) -> tuple[list, dict]:
        heads = [k for k, box in self.head_boxes.items() if box.value]
        paths = {p: [(l, h) for (l, h, q), box in self.path_boxes.items() if box.value and q == p]
                 for p in ("k", "q", "v")}
        return heads, paths

    @torch.no_grad()
    def ablated_loss(self) -> np.ndarray:
        """Mean per-position loss [pos - 1] with the ticked heads and paths removed."""
        import contextlib
        heads, paths = self.selection()
        method = self.method_w.value
        ref = None if method == "zero" else self.reference
        with contextlib.ExitStack() as stack:
            if heads:
                stack.enter_context(interventions.ablate(self.model, heads, method, ref))
            for path, which in paths.items():
                if which:
                    stack.enter_context(interventions.ablate_path(self.model, which, path, method, ref))
            logits = self.model(self.tokens)
        return scores.per_position_loss(logits, self.tokens).mean(0).numpy()

    def _build(self) -> None:
        ax = self.ax = self.figure.add_subplot()
        x = np.arange(len(self.clean))
        if self.region is not None:
            ax.axvspan(self.region[0] - 0.5, self.region[1] - 0.5, color="0.88", zorder=0,
                       label="repeated half (predictable)")
        ax.axhline(math.log(self.model.cfg.d_vocab), color="0.4", ls="--", lw=1, label="chance, ln(vocab)")
        ax.plot(x, self.clean, color=OKABE_ITO[0], lw=1.5, label="clean model")
        self.line = ax.plot(x, self.clean, color=OKABE_ITO[3], lw=1.5, label="with ablations")[0]
        ax.set_xlim(-0.5, len(x) - 0.5)
        ax.set_ylim(0, 1.15 * max(math.log(self.model.cfg.d_vocab), float(self.clean.max())))
        ax.set_xlabel("position p (loss of predicting token p + 1)", fontsize=8)
        ax.set_ylabel("loss (nats)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper left")
        self.dynamic(self.line, ax.get_legend(), ax.title)

    def update(self):
        loss = self.ablated_loss()
        self.line.set_ydata(loss)
        if float(loss.max()) > self.ax.get_ylim()[1]:  # rescale (a full redraw: new tick labels)
            self.ax.set_ylim(0, 1.15 * float(loss.max()))
            self.full_redraw = True
        heads, paths = self.selection()
        names = [f"{l}.{h}" for l, h in heads] + [f"{l}.{h}→{p.upper()}" for p, hs in paths.items() for l, h in hs]
        if self.region is not None:
            a, b = self.region
            what = f"repeat: clean {self.clean[a:b].mean():.2f} → {loss[a:b].mean():.2f} nats"
        else:
            what = f"mean loss: clean {self.clean.mean():.2f} → {loss.mean():.2f} nats"
        removed = ", ".join(names) if names else "nothing"
        self.ax.set_title(f"removed: {removed} ({self.method_w.value}); {what}", fontsize=8)
        return None


def ablation_board(model, tokens=None, method: str = "zero", **kwargs) -> AblationBoard:
    """Remove heads and watch the loss: a checkbox per head (its whole output) and, for heads that later
    layers read, per path (K, Q or V: the head's output removed from only that input of later layers'
    attention). Shows the per-position loss, clean and ablated, averaged over held-out BOS + prefix + r + r
    (`scores.eval_tokens`), with the predictable repeated half shaded. `method`: "zero", "mean" or
    "resample" (the latter two take their reference from another held-out batch)."""
    return AblationBoard(model, tokens, method, **kwargs)


# ---------------------------------------------------------------- 4. Hopfield playground


class HopfieldPlayground(App):
    """A modern Hopfield network of random +-1 images: retrieve one from a noisy copy and watch the energy."""

    name = "Hopfield playground"

    def __init__(self, side: int = 8, max_patterns: int = 64, beta: float = 8.0, n: int = 16, noise: float = 0.8,
                 seed: int = 0, grid: int = 61):
        self.side, self.d, self.grid = side, side * side, grid
        # all patterns drawn once, so moving N adds or removes patterns without reshuffling the others
        self.all_patterns = hf.random_patterns(self.d, max_patterns, seed, binary=True) / side   # unit norm
        self.noise_dir = torch.randn(self.d, generator=torch.Generator().manual_seed(seed + 1))
        self.noise_dir = self.noise_dir / self.noise_dir.norm()
        self.beta_w = W.FloatLogSlider(value=beta, base=10, min=-1, max=3, step=0.05, description="β",
                                       continuous_update=False, readout_format=".3g")
        self.n_w = W.IntSlider(value=n, min=2, max=max_patterns, description="N patterns", continuous_update=False)
        self.noise_w = W.FloatSlider(value=noise, min=0, max=2, step=0.05, description="query noise",
                                     continuous_update=False)
        super().__init__([W.HBox([self.beta_w, self.n_w]), self.noise_w], figsize=(7.5, 3.8))
        self.watch(self.beta_w, self.n_w, self.noise_w)
        self._build()
        self.refresh()

    def _build(self) -> None:
        fig = self.figure
        gs = fig.add_gridspec(3, 3, width_ratios=[1.35, 1.1, 0.55])
        self.ax_land = fig.add_subplot(gs[:, 0])
        g = self.grid
        self.im_land = self.ax_land.imshow(np.zeros((g, g)), origin="lower", cmap="viridis",
                                           extent=(-0.5, 1.5, -0.5, 1.5), aspect="auto", interpolation="bilinear")
        self.cbar = fig.colorbar(self.im_land, ax=self.ax_land, shrink=0.8, location="bottom", pad=0.02)
        self.cbar.set_label("energy E on this plane", fontsize=7)
        self.cbar.ax.tick_params(labelsize=6)
        self.pat_pts = self.ax_land.plot([], [], "o", ms=3, color="white", mec="black", mew=0.5,
                                         label="stored patterns")[0]
        self.traj = self.ax_land.plot([], [], "-o", ms=2.5, lw=1, color=OKABE_ITO[3], label="updates")[0]
        self.start_pt = self.ax_land.plot([], [], "x", ms=7, mew=2, color=OKABE_ITO[1], label="query")[0]
        self.ax_land.set_xlim(-0.5, 1.5)
        self.ax_land.set_ylim(-0.5, 1.5)
        self.ax_land.tick_params(labelsize=7)
        self.ax_land.set_xlabel("along the target pattern", fontsize=7)
        self.ax_land.set_ylabel("along the runner-up", fontsize=7)
        self.ax_land.legend(fontsize=6, loc="upper right", framealpha=0.7)
        self.ax_energy = fig.add_subplot(gs[0:2, 1])
        self.energy_line = self.ax_energy.plot([], [], "o-", ms=3, color=OKABE_ITO[0])[0]
        self.ax_energy.yaxis.set_major_locator(MaxNLocator(4))
        self.ax_energy.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        self.cbar.ax.xaxis.set_major_locator(MaxNLocator(4))
        self.ax_energy.set_xlabel("update", fontsize=7)
        self.ax_energy.set_ylabel("energy", fontsize=7)
        self.ax_energy.tick_params(labelsize=7)
        self.ax_w = fig.add_subplot(gs[2, 1])
        self.ax_w.set_xlabel("stored pattern", fontsize=7)
        self.ax_w.set_ylabel("weight", fontsize=7)
        self.ax_w.tick_params(labelsize=6)
        self.ax_w.set_ylim(0, 1.02)
        self.ax_w.xaxis.set_major_locator(MaxNLocator(8, integer=True))
        n_max = self.all_patterns.shape[1]
        self.w_bars = list(self.ax_w.bar(np.arange(n_max), np.zeros(n_max), width=0.8, color=OKABE_ITO[0]))
        self.w_bars[0].set_color(OKABE_ITO[2])
        self.img_axes, self.img_ims = [], []
        for i, title in enumerate(("query", "retrieved", "target")):
            a = fig.add_subplot(gs[i, 2])
            im = a.imshow(np.zeros((self.side, self.side)), cmap="gray", vmin=-1.2, vmax=1.2, interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            a.set_title(title, fontsize=7)
            self.img_axes.append(a)
            self.img_ims.append(im)
        self.dynamic(self.im_land, self.pat_pts, self.traj, self.start_pt, self.ax_land.get_legend(),
                     *self.ax_land.spines.values(), self.cbar.ax, self.ax_energy, self.ax_w, *self.img_ims,
                     self.img_axes[1].title)

    def compute(self) -> dict:
        """Everything the figure shows, for the current sliders (also handy in tests and exercises)."""
        beta, n, noise = float(self.beta_w.value), int(self.n_w.value), float(self.noise_w.value)
        X = self.all_patterns[:, :n]                                  # [d, N]
        target = X[:, 0]
        query = target + noise * self.noise_dir                       # |noise part| = noise * |target|
        r = hf.retrieve(X, query, beta, max_steps=60, tol=1e-5)
        path = [query]
        for _ in range(r.steps):
            path.append(hf.update(X, path[-1], beta))
        path = torch.stack(path)
        # the plane through the origin spanned by the target and the other pattern closest to the query
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

    def update(self):
        c = self.compute()
        u1, u2 = c["plane"]
        X, r = c["X"], c["retrieval"]
        land = c["landscape"].numpy()
        self.im_land.set_data(land)
        self.im_land.set_clim(float(land.min()), float(land.max()))
        self.pat_pts.set_data((u1 @ X).numpy(), (u2 @ X).numpy())
        path = c["path"]
        self.traj.set_data((path @ u1).numpy(), (path @ u2).numpy())
        self.start_pt.set_data([float(c["query"] @ u1)], [float(c["query"] @ u2)])
        e = r.energies.numpy()
        self.energy_line.set_data(np.arange(len(e)), e)
        self.ax_energy.set_xlim(-0.3, max(1, len(e) - 1) + 0.3)
        lo, hi = float(e.min()), float(e.max())
        pad = max(1e-3, 0.1 * (hi - lo))
        self.ax_energy.set_ylim(lo - pad, hi + pad)
        count = hf.effective_count(r.weights).item()
        self.ax_energy.set_title(f"{r.steps} update{'s' if r.steps != 1 else ''} to a fixed point; "
                                 f"it averages ≈{count:.1f} pattern{'s' if count >= 1.5 else ''}", fontsize=7)
        w = r.weights.numpy()
        self.ax_w.set_xlim(-0.7, len(w) - 0.3)
        for i, bar in enumerate(self.w_bars):
            bar.set_visible(i < len(w))
            bar.set_height(w[i] if i < len(w) else 0.0)
        s = self.side
        for im, vec in zip(self.img_ims, (c["query"], r.state, X[:, 0])):
            im.set_data((vec * s).reshape(s, s).numpy())
        err = (r.state - X[:, 0]).norm().item()
        self.img_axes[1].set_title(f"retrieved (error {err:.2f})", fontsize=7)
        return None


def hopfield_playground(beta: float = 8.0, n: int = 16, noise: float = 0.8, **kwargs) -> HopfieldPlayground:
    """A modern Hopfield network to play with: N random +-1 images (8 x 8, scaled to unit norm) are stored;
    the query is the first of them (the target, green in the weights) plus noise; sliders set beta, N and
    the noise. Shown: the energy on the plane spanned by the target and the stored pattern most similar to
    the query (the states a*target + b*runner-up direction; the iterates, which leave the plane a little,
    are projected onto it), the energy after each update (never increasing), the weights softmax(beta X^T xi)
    at the fixed point, and the query, retrieved and target images. Small beta: the fixed point is an
    average of many patterns (a grey image); large beta: the target itself."""
    return HopfieldPlayground(beta=beta, n=n, noise=noise, **kwargs)
