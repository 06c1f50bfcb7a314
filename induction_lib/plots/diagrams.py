"""Explanatory diagrams of the book: the induction circuit, chapter 4's corruption experiment, and
chapter 8's mapping between attention and a modern Hopfield network.

Each function returns a page-width `Figure` (10 inches wide, text of 11 points or more) whose axes use
inches as data units, so boxes and arrows are placed where they are drawn. Every labelled box is a
`FancyBboxPatch` with gid "box" and its text centred in it; `tools/make_diagrams.py` writes the figures
as SVG files into book/images/. Nothing here computes: the diagrams are schematic.
"""
from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from . import OKABE_ITO

BLUE, ORANGE, GREEN, VERMILION, PURPLE = OKABE_ITO[0], OKABE_ITO[1], OKABE_ITO[2], OKABE_ITO[3], OKABE_ITO[5]
INK = "#1a1a1a"          # text
GREY = "0.45"            # residual streams, secondary text
TINT = {BLUE: "#e3eef7", ORANGE: "#fdf0dc", GREEN: "#dff2ec", VERMILION: "#f9e3d6", PURPLE: "#f6e6ef",
        "grey": "#f0f0f0", "white": "white"}
SIZE = 13                # text in boxes
SMALL = 12               # annotations
MIN_FONT = 11            # the smallest text any diagram uses


class _Canvas:
    """An axes whose data units are inches (1 unit = 1 inch at the figure's own size)."""

    def __init__(self, width: float, height: float, ax: Axes | None = None):
        if ax is None:
            self.fig = Figure(figsize=(width, height))
            self.ax = self.fig.add_axes((0, 0, 1, 1))
        else:
            self.ax = ax
            try:
                self.fig = ax.get_figure(root=True)  # matplotlib >= 3.10
            except TypeError:
                self.fig = ax.figure
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_aspect("equal")
        self.ax.set_axis_off()

    def box(self, x, y, text, colour=INK, w=1.0, h=0.5, fill="white", size=SIZE, weight="normal",
            ls="-", lw=1.8, gid="box", text_colour=INK):
        """A rounded box centred at (x, y), w by h inches, with `text` centred in it."""
        pad = 0.06
        self.ax.add_patch(FancyBboxPatch((x - w / 2 + pad, y - h / 2 + pad), w - 2 * pad, h - 2 * pad,
                                         boxstyle=f"round,pad={pad}", fc=TINT.get(fill, fill), ec=colour,
                                         lw=lw, ls=ls, gid=gid, zorder=3))
        return self.ax.text(x, y, text, ha="center", va="center", fontsize=size, color=text_colour,
                            fontweight=weight, zorder=4)

    def text(self, x, y, text, size=SMALL, colour=INK, ha="center", va="center", **kw):
        return self.ax.text(x, y, text, ha=ha, va=va, fontsize=size, color=colour, zorder=4, **kw)

    def arrow(self, start, end, colour=INK, rad=0.0, lw=2.0, ls="-", style="-|>", connection=None,
              head=16, gid="arrow"):
        patch = FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=head, color=colour, lw=lw,
                                linestyle=ls, connectionstyle=connection or f"arc3,rad={rad}",
                                shrinkA=0, shrinkB=0, zorder=2, gid=gid, capstyle="round")
        self.ax.add_patch(patch)
        return patch

    def line(self, xs, ys, colour=GREY, lw=1.2, ls="-", zorder=1, gid=None):
        (ln,) = self.ax.plot(xs, ys, color=colour, lw=lw, ls=ls, zorder=zorder, solid_capstyle="butt")
        ln.set_gid(gid)
        return ln

    def band(self, x0, y0, x1, y1, colour, gid="band"):
        """A tinted rectangle behind one layer."""
        self.ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fc=TINT[colour], ec="none", zorder=0, gid=gid))


def induction_circuit(prev_head: tuple[int, int] = (0, 0), ind_head: tuple[int, int] = (1, 0),
                      ax: Axes | None = None) -> Figure:
    """The two-head induction circuit on "... A B ... A ?", drawn page-wide (10 x 5.9 inches).

    Bottom: the tokens, A at position j-1, B at j and A again at i, and the token to predict. Layer 0:
    the previous-token head `prev_head` at position j attends to j-1 and writes "the previous token
    was A" into the residual stream at j. Layer 1: the induction head `ind_head` computes its key at j
    from what the previous-token head wrote there (K-composition), its query at i from A; query and key
    match, so the head attends to j and its OV circuit copies the value, B, to position i, where the
    unembedding raises the logit of B (Elhage et al. 2021; Olsson et al. 2022). `prev_head` and
    `ind_head` are (layer, head) names written on the diagram. Pass `ax` (about 10 x 5.9 inches) to
    draw into a figure of your own."""
    p_name, i_name = f"{prev_head[0]}.{prev_head[1]}", f"{ind_head[0]}.{ind_head[1]}"
    cv = _Canvas(10.0, 5.9, ax)
    x_a1, x_b, x_dots, x_a2, x_next = 1.3, 4.0, 5.75, 7.3, 9.15
    y_tok, y_l0, y_key, y_val, y_logit = 0.75, 2.0, 3.55, 4.4, 5.45
    half = 0.25                                   # half the height of a box
    stream = {"colour": "0.72", "lw": 3.0}

    # the layers, as tinted bands behind the residual streams
    cv.band(0.1, 1.2, 5.65, 2.75, BLUE)
    cv.text(0.25, 2.6, f"layer 0, head {p_name}\nprevious-token head", ha="left", va="top", colour=BLUE,
            weight="bold", linespacing=1.25)
    cv.band(0.1, 3.1, 8.35, 4.95, ORANGE)
    cv.text(0.25, 4.8, f"layer 1, head {i_name}\ninduction head", ha="left", va="top", colour="#9a5b00",
            weight="bold", linespacing=1.25)

    # residual streams (grey) from the tokens upwards
    cv.line([x_b, x_b], [y_tok + half, y_l0 - half], **stream)
    cv.line([x_a2, x_a2], [y_tok + half, y_logit - half], **stream)
    cv.text(x_a2 + 0.14, 2.2, "residual\nstream at i", ha="left", colour=GREY, size=MIN_FONT)

    # tokens along the bottom
    cv.text(0.4, y_tok, "…", size=SIZE + 4, colour=GREY)
    cv.box(x_a1, y_tok, "A", w=0.6, size=SIZE + 2, weight="bold")
    cv.box(x_b, y_tok, "B", w=0.6, size=SIZE + 2, weight="bold")
    cv.text(x_dots, y_tok, "…", size=SIZE + 4, colour=GREY)
    cv.box(x_a2, y_tok, "A", w=0.6, size=SIZE + 2, weight="bold")
    cv.box(x_next, y_tok, "?", w=0.6, size=SIZE + 2, weight="bold", ls="--", colour=GREY)
    for x, pos in ((x_a1, "j − 1"), (x_b, "j"), (x_a2, "i"), (x_next, "i + 1")):
        cv.text(x, 0.22, f"position {pos}", colour=GREY, size=MIN_FONT)

    # layer 0: the previous-token head at j reads A from j - 1 and writes it into j's stream
    w_l0 = 2.9
    cv.box(x_b, y_l0, "B  +  “previous token was A”", BLUE, w=w_l0)
    cv.arrow((x_a1, y_tok + half), (x_b - w_l0 / 2, y_l0), BLUE, lw=2.4,
             connection="angle,angleA=90,angleB=0,rad=0.25")
    cv.text(x_a1 + 0.15, 1.49, "head " + p_name + " at j attends\nto j − 1 and copies A", ha="left",
            colour=BLUE, size=SMALL)

    # K-composition: the key at j is computed from what the previous-token head wrote;
    # the value at j from B's embedding
    x_key, x_val, w_key, w_val = x_b + 0.75, x_b - 0.75, 1.75, 1.3
    cv.arrow((x_key, y_l0 + half), (x_key, y_key - half), PURPLE, lw=2.6)
    cv.text(x_key + 0.14, 2.93, "K-composition", ha="left", colour=PURPLE, weight="bold")
    cv.arrow((x_val, y_l0 + half), (x_val, y_val - half), GREEN, lw=2.2)

    # layer 1: the induction head's key and value at j, its query at i
    cv.box(x_key, y_key, "key: prev. = A", PURPLE, w=w_key, fill=PURPLE)
    cv.box(x_val, y_val, "value: B", GREEN, w=w_val, fill=GREEN)
    cv.box(x_a2, y_key, "query: A", ORANGE, w=1.3, fill=ORANGE)
    x_mid = (x_key + w_key / 2 + x_a2 - 0.65) / 2
    cv.arrow((x_a2 - 0.65, y_key), (x_key + w_key / 2, y_key), VERMILION, style="<|-|>", lw=2.2)
    cv.text(x_mid, y_key + 0.27, "match", colour=VERMILION, weight="bold")
    cv.text(x_mid, y_key - 0.3, "attend to j", colour=VERMILION, size=SMALL)
    # OV: the value read at j is added to the stream at i
    cv.arrow((x_val + w_val / 2, y_val), (x_a2 - 0.13, y_val), GREEN, lw=2.4)
    _plus(cv, x_a2, y_val)
    cv.text((x_val + w_val / 2 + x_a2) / 2, y_val + 0.27, "OV circuit copies B to position i", colour=GREEN,
            size=SMALL, weight="bold")

    # the logits at i, and the prediction
    cv.box(x_a2, y_logit, "logit of B  ↑", VERMILION, w=1.75, fill=VERMILION, weight="bold")
    cv.arrow((x_a2 + 0.875, y_logit), (x_next, y_tok + half + 0.02), GREY, lw=1.6, ls="--",
             connection="angle,angleA=0,angleB=90,rad=0.15")
    cv.text(x_next + 0.12, 2.2, "predict\nB next", ha="left", colour=INK, size=SMALL)
    return cv.fig


def _plus(cv: _Canvas, x, y, r=0.13, colour=GREEN):
    """The ⊕ where a head adds its output to a residual stream."""
    from matplotlib.patches import Circle
    cv.ax.add_patch(Circle((x, y), r, fc="white", ec=colour, lw=2.0, zorder=3, gid="add"))
    cv.line([x - r * 0.6, x + r * 0.6], [y, y], colour=colour, lw=2.0, zorder=4)
    cv.line([x, x], [y - r * 0.6, y + r * 0.6], colour=colour, lw=2.0, zorder=4)


def _check_layout(L, c):
    if not (isinstance(L, int) and 4 <= L <= 10):
        raise ValueError(f"L (the length of r) must be an integer from 4 to 10 for the schematic, got {L!r}")
    if not (isinstance(c, int) and 2 <= c <= L - 2):
        raise ValueError(f"c must lie in the first copy with a token before it and two after it: "
                         f"2 <= c <= L - 2 = {L - 2}, got {c!r}")


def corruption_positions(L: int = 7, c: int = 3, two_token: bool = True, ax: Axes | None = None) -> Figure:
    """Chapter 4's corruption experiment as a schematic (10 x 5.45 inches), on BOS + r + r with |r| = L.

    One token of the first copy, at position c, is replaced (B -> X). Position p predicts token p + 1.
    The token at c comes back at c + L, and three predictions of the second copy break:
    * c + L - 1 (token A, should predict B): the induction heads attend to c and copy the wrong token;
      no layer-0 head can repair it, the wrong token itself sits at c;
    * c + L (token B): its query looks for a key whose previous token is B, which was position c + 1;
      the previous-token head at c + 1 now writes X, so no key matches. The clean output of the
      previous-token head at c + 1 repairs it;
    * c + L + 1 (with `two_token`): the one-token head still finds c + 2, but the two-token head also
      checks the token two back, which the two-back head at c + 2 now reports as X: hurt less.
    The chapter's input also has a short prefix of random tokens before r; the schematic leaves it out
    (it shifts every position by the same amount). Needs 4 <= L <= 10 and 2 <= c <= L - 2."""
    _check_layout(L, c)
    cv = _Canvas(10.0, 5.45, ax)
    n = 1 + 2 * L
    step = min(0.72, 9.4 / n)
    x0 = (10.0 - step * (n - 1)) / 2
    xs = [x0 + k * step for k in range(n)]
    w = step * 0.82
    y_row = 3.7
    fillers = iter("GHJKMNPQRSTUVWYZ")
    r = [next(fillers) if k not in (c - 1, c, c + 1, c + 2) else "ABCD"[k - c + 1] for k in range(1, L + 1)]
    pairs = [(c, c + L - 1, VERMILION), (c + 1, c + L, PURPLE)] + ([(c + 2, c + L + 1, BLUE)] if two_token else [])
    colour_of = {p: col for a, b, col in pairs for p in (a, b)}

    # the tokens: BOS, the first copy (position c corrupted), the second copy
    for p in range(n):
        token = "BOS" if p == 0 else r[(p - 1) % L]
        if p == c:
            token = "X"
        col = colour_of.get(p, "0.35")
        fill = col if p == c else "white"
        cv.box(xs[p], y_row, token, col, w=w if p else w * 1.25, h=0.52, fill=fill,
               size=SIZE if p else MIN_FONT, weight="bold" if p in colour_of else "normal",
               lw=2.4 if p in colour_of else 1.2, text_colour=INK if p in colour_of or p == 0 else "0.3")
    # the position of each marked token, below it
    names = {c: "$c$", c + 1: "$c{+}1$", c + 2: "$c{+}2$", c + L - 1: "$c{+}L{-}1$", c + L: "$c{+}L$",
             c + L + 1: "$c{+}L{+}1$"}
    for p, col in colour_of.items():
        cv.text(xs[p], y_row - 0.45, names[p], colour=col, size=MIN_FONT, weight="bold")
    # attention from the broken predictions back to the first copy
    styles = {VERMILION: "-", PURPLE: "--", BLUE: ":"}
    span = (L - 1) * step
    for k, (first, second, col) in enumerate(pairs):
        cv.arrow((xs[second], y_row + 0.3), (xs[first], y_row + 0.3), col, rad=0.2 + 0.13 * k, lw=2.2,
                 ls=styles[col])
    top = y_row + 0.3 + (0.2 + 0.13 * (len(pairs) - 1)) * span / 2
    cv.text((xs[c] + xs[c + L - 1]) / 2 + step, top + 0.22, "where the induction heads in the second copy look",
            colour=GREY, size=SMALL)

    # the copies, bracketed below the positions
    y_br = y_row - 0.82
    for lo, hi, label in ((1, L, f"first copy of r\npositions 1 … $L$  (here $L = {L}$)"),
                          (L + 1, 2 * L, "second copy of r\npositions $L + 1$ … $2L$")):
        a, b = xs[lo] - w / 2, xs[hi] + w / 2
        cv.line([a, a, b, b], [y_br + 0.12, y_br, y_br, y_br + 0.12], colour="0.35", lw=1.4)
        cv.text((a + b) / 2, y_br - 0.1, label, colour="0.3", size=MIN_FONT, va="top")

    # what each corrupted position does, and which prediction it breaks
    rows = [
        ("$c$: B is replaced by X",
         "At $c{+}L{-}1$ (token A, next B) the induction heads attend to $c$ and copy X.\n"
         + "Broken; no layer-0 head can repair it: the wrong token sits at $c$."),
        ("$c{+}1$: its key now says\n“previous token was X”",
         "At $c{+}L$ (token B) the query finds no key whose previous token is B.\n"
         + "Broken; the previous-token head’s clean output at $c{+}1$ repairs it."),
        ("$c{+}2$: its two-back key\nnow says X",
         "At $c{+}L{+}1$ the one-token head still finds $c{+}2$; the two-token head, which\n"
         + "also checks the token two back, loses its match. Damaged, but less."),
    ][:len(pairs)]
    cv.text(0.35, 2.15, "in the first copy", ha="left", colour="0.3", size=SMALL, weight="bold")
    cv.text(3.45, 2.15, "in the second copy: the prediction that breaks", ha="left", colour="0.3", size=SMALL,
            weight="bold")
    for k, ((left, right), (_, _, col)) in enumerate(zip(rows, pairs)):
        y = 1.68 - 0.62 * k
        cv.ax.add_patch(Rectangle((0.12, y - 0.25), 0.1, 0.5, fc=col, ec="none", gid="swatch"))
        cv.text(0.35, y, left, ha="left", size=SMALL, colour=INK)
        cv.text(3.45, y, right, ha="left", size=SMALL, colour=INK)
    return cv.fig


def hopfield_mapping(ax: Axes | None = None) -> Figure:
    """Chapter 8's dictionary between one attention head and a modern Hopfield network (10 x 5.2 inches).

    Keys <-> stored patterns X, query <-> state xi, values <-> readout, and the attention step
    softmax(Q K^T / sqrt(d_head)) V <-> the update X softmax(beta X^T xi) with beta = 1 / sqrt(d_head)
    (Ramsauer et al. 2020). Each left box also says what the induction head keeps there."""
    cv = _Canvas(10.0, 5.2, ax)
    x_l, x_r, w, h = 2.2, 7.8, 4.0, 0.82
    left_col, right_col = ORANGE, GREEN
    cv.text(x_l, 4.95, "attention: one head, query at position i", colour="#9a5b00", size=SIZE, weight="bold")
    cv.text(x_r, 4.95, "modern Hopfield network", colour="#00704f", size=SIZE, weight="bold")
    rows = [
        ("keys  $k_j$, one per position $j \\leq i$", "induction head: “the token before me was A”",
         "stored patterns  $X = (k_0^\\top, \\dots, k_i^\\top)$", "the memory: one pattern per position", None),
        ("query  $q_i$", "induction head: “I am A”",
         "state  $\\xi = q_i^\\top$", "the cue the memory is searched with", None),
        ("values  $v_j$", "induction head: the token B, copied by OV",
         "readout", "the content stored with each pattern", None),
        ("$\\mathrm{softmax}(QK^\\top / \\sqrt{d_\\mathrm{head}})\\,V$", "the weights, applied to the values",
         "$X\\,\\mathrm{softmax}(\\beta\\, X^\\top \\xi)$", "the same weights, applied to the patterns",
         "$\\beta = 1/\\sqrt{d_\\mathrm{head}}$"),
    ]
    for k, (lm, ls, rm, rs, label) in enumerate(rows):
        y = 4.15 - 1.0 * k
        for x, main, sub, col in ((x_l, lm, ls, left_col), (x_r, rm, rs, right_col)):
            cv.box(x, y, "", col, w=w, h=h, fill=col)
            cv.text(x, y + 0.15, main, size=SIZE, colour=INK)
            cv.text(x, y - 0.2, sub, size=MIN_FONT, colour="0.3")
        cv.arrow((x_l + w / 2 + 0.08, y), (x_r - w / 2 - 0.08, y), GREY, style="<|-|>", lw=2.0)
        if label:
            cv.text(5.0, y + 0.27, label, size=SMALL, colour=INK)
    cv.text(5.0, 0.3, "One attention step is one Hopfield update: the weights agree term by term "
            "(Ramsauer et al. 2020).", size=MIN_FONT, colour="0.3")
    return cv.fig
