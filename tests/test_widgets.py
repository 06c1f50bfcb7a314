"""The widgets' Python side (no browser): the data each front end draws from (shapes, and values against the
library's own scores), live recomputation, and bad input, which must give a clear message inside the widget
and never a traceback. tests/test_browser.py works the front ends in the built book."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures import trained  # noqa: F401

import induction_lib as il
from induction_lib import widgets as wd

BUDGET = wd.MAX_STATE_BYTES


@pytest.fixture(scope="module")
def trained_with_history():
    torch.set_num_threads(1)
    return il.load_with_history("induction-2l", progress=False)


@pytest.fixture(scope="module")
def board(trained):
    return wd.ablation_board(trained)


def shows_error(app, *words) -> None:
    assert app.error and app.message and "Traceback" not in app.message
    for w in words:
        assert w.lower() in app.message.lower(), app.message


# ---------------------------------------------------------------- packing and front ends


def test_pack_roundtrip_and_quantization():
    p = torch.tensor([[0.0, 0.2, 0.8, 1.0]])
    q = wd.unpack(wd.pack(wd.to_uint8(p), "uint8"))
    assert q.dtype == np.uint8 and q.shape == (1, 4)
    assert np.abs(q / 255.0 - p.numpy()).max() <= 0.5 / 255 + 1e-7      # half a quantization step
    loss = np.array([0.0, 1.2345, 4.1589])
    assert np.abs(wd.unpack(wd.pack(wd.to_millinats(loss), "uint16")) / 1000 - loss).max() <= 5e-4


def test_every_widget_has_its_front_end_in_the_package():
    here = Path(wd.__file__).parent
    for cls, name in [(wd.AttentionExplorer, "attention_explorer"), (wd.CheckpointScrubber, "checkpoint_scrubber"),
                      (wd.AblationBoard, "ablation_board"), (wd.HopfieldPlayground, "hopfield_playground"),
                      (wd.RepeatDemo, "repeat_demo")]:
        esm = cls._esm if isinstance(cls._esm, str) else cls._esm.default_value
        assert (here / f"{name}.js").read_text() in esm
        assert "export default" in esm and "function render" in esm
        assert "http://" not in esm.replace("http://www.w3.org/2000/svg", "") and "https://" not in esm  # no CDN


# ---------------------------------------------------------------- token parsing


def test_parse_tokens():
    t, note = wd.parse_tokens("5, 6 7;8", vocab=64, n_ctx=64)
    assert t.tolist() == [0, 5, 6, 7, 8] and note is None
    assert wd.parse_tokens("0 5", 64, 64)[0].tolist() == [0, 5]            # BOS not doubled
    for text, words in [("", ["type token ids"]), ("5 x 7", ["'x'", "not a token id"]),
                        ("5 64", ["64", "not in the vocabulary", "0 to 63"]), ("1.5", ["not a token id"]),
                        ("-3", ["not in the vocabulary"]), (" ".join(["5"] * 64), ["65 tokens", "at most 64"])]:
        with pytest.raises(wd.InputError) as err:
            wd.parse_tokens(text, 64, 64)
        for w in words:
            assert w.lower() in str(err.value).lower()
    tok = il.CharTokenizer()
    t, note = wd.parse_tokens("ab\u00e9", tok.vocab_size, 64, tok)
    assert t.tolist()[0] == 0 and t.tolist()[-1] == tok.unk and "not in the model's vocabulary" in note


# ---------------------------------------------------------------- attention explorer


def test_attention_explorer_data(trained):
    app = wd.attention_explorer(trained)
    cfg = trained.cfg
    assert (app.layer, app.head) == il.heads.induction_head(trained) and app.message == ""
    seqs = app.data["sequences"]
    kinds = [s["kind"] for s in seqs]
    assert kinds.count("random") >= 2 and "ab" in kinds                  # random repeats and the A B ... A probe
    for s in seqs:
        n = len(s["ids"])
        assert s["ids"][0] == il.BOS and len(s["labels"]) == n
        pattern = wd.unpack(s["pattern"])
        assert pattern.shape == (cfg.n_layers, cfg.n_heads, n, n) and pattern.dtype == np.uint8
        assert np.triu(pattern.astype(int), 1).max() == 0                 # causal
        rows = pattern.sum(-1) / 255.0
        assert np.abs(rows - 1).max() <= n * 0.5 / 255 + 1e-6             # rows sum to 1, up to rounding
        assert wd.unpack(s["top_ids"]).shape == (n, app.top_k) == wd.unpack(s["top_p"]).shape
    # values against the library: the patterns are the model's, the default head's diagonal score is high
    s = seqs[0]
    _, cache = trained.run_with_cache(torch.tensor([s["ids"]]))
    for layer in range(cfg.n_layers):
        exact = cache.pattern(layer)[0].numpy()
        assert np.abs(wd.unpack(s["pattern"])[layer] / 255.0 - exact).max() <= 0.5 / 255 + 1e-6
    half = (len(s["ids"]) - 1) // 2
    diag = il.scores.diagonal_induction_score_from_pattern(cache.pattern(app.layer)[:, app.head], half)
    assert float(diag) > 0.8
    # the probe's last A predicts B (the token after the first A) in the precomputed top-k
    ab = next(s for s in seqs if s["kind"] == "ab")
    a_first, a_last = ab["marks"]["A"]
    assert ab["ids"][a_first] == ab["ids"][a_last]
    assert wd.unpack(ab["top_ids"])[a_last, 0] == ab["ids"][a_first + 1]
    assert app.state_bytes() < BUDGET


def test_attention_explorer_live_sequence_and_bad_input(trained):
    app = wd.attention_explorer(trained)
    n_before = len(app.data["sequences"])
    app.text = "5 9 2 7 5 9 2"                                          # what the front end sends in a kernel
    assert app.message == "" and len(app.data["sequences"]) == n_before + 1
    assert app.sequence == n_before and app.data["sequences"][-1]["ids"] == [0, 5, 9, 2, 7, 5, 9, 2]
    assert app.query == 7
    good = app.data
    for text, words in [("1 2 banana", ["banana", "not a token id"]), ("1 2 999", ["999", "vocabulary"]),
                        (" ".join(["3"] * 100), ["at most 64"]), ("   ", ["type token ids"])]:
        app.text = text                                                  # never raises
        shows_error(app, *words)
        assert app.data is good                                          # the figure keeps its data
    app.text = "1 2 3 1 2 3"
    assert app.message == "" and not app.error                          # good input clears the message
    assert len(app.data["sequences"]) == n_before + 1                    # the typed sequence is replaced


def test_attention_explorer_head_that_does_not_exist(trained):
    app = wd.attention_explorer(trained, layer=5, head=0)                # a message, not an exception
    shows_error(app, "no head 5.0", "layers 0–1", "heads 0–1")
    assert (app.layer, app.head) == il.heads.induction_head(trained)
    app = wd.attention_explorer(trained, layer=0, head=0)
    app.head = 7
    shows_error(app, "no head 0.7")
    assert app.head == 0
    app.head = 1
    assert app.message == ""


def test_attention_explorer_text_model():
    tok = il.CharTokenizer()
    torch.manual_seed(0)
    model = il.Transformer(il.ModelConfig(d_vocab=tok.vocab_size, n_ctx=32, d_model=32, d_head=8)).eval()
    app = wd.attention_explorer(model, tokenizer=tok, layer=1, head=0)
    kinds = [s["kind"] for s in app.data["sequences"]]
    assert "text" in kinds and app.data["text_input"] == "text" and len(app.data["vocab"]) == tok.vocab_size
    app.text = "def f(x):\n    return x"
    assert app.message == "" and app.data["sequences"][-1]["labels"][1] == "d"
    app.text = "caf\u00e9 caf\u00e9"                                     # unknown character: a note, still drawn
    assert "not in the model's vocabulary" in app.message and not app.error
    app.text = "x" * 40
    shows_error(app, "at most 32")


# ---------------------------------------------------------------- checkpoint scrubber


def test_checkpoint_scrubber_data(trained_with_history):
    model, history = trained_with_history
    app = wd.checkpoint_scrubber(model, history)
    steps = sorted(history.snapshots)
    d = app.data
    assert d["steps"] == steps and app.step == steps[-1]
    n = len(d["labels"])
    assert wd.unpack(d["patterns"]).shape == (len(steps), 2, n, n)
    L, H = model.cfg.n_layers, model.cfg.n_heads
    prev, ind = wd.unpack(d["prev_scores"]), wd.unpack(d["ind_scores"])
    assert prev.shape == ind.shape == (len(steps), L, H)
    # the heads are the library's; the scores at each snapshot are the history's
    assert (tuple(d["heads"]["prev"]), tuple(d["heads"]["ind"])) == il.heads.key_heads(history)
    for i, step in enumerate(steps):
        k = history.steps.index(d["record_loss"]["step"][i])
        assert abs(history.steps[k] - step) == min(abs(s - step) for s in history.steps)
        assert np.abs(ind[i] / 255 - history.induction[k].clamp(0, 1).numpy()).max() <= 0.5 / 255 + 1e-6
    # the last snapshot's patterns are the model's own (same weights): previous-token head, then induction head
    (l0, h0), (l1, h1) = app.prev_head, app.ind_head
    _, cache = model.run_with_cache(app.tokens)
    assert np.abs(wd.unpack(d["patterns"])[-1, 0] / 255 - cache.pattern(l0)[0, h0].numpy()).max() < 0.01
    assert np.abs(wd.unpack(d["patterns"])[-1, 1] / 255 - cache.pattern(l1)[0, h1].numpy()).max() < 0.01
    assert app.state_bytes() < BUDGET


def test_checkpoint_scrubber_bad_step(trained_with_history):
    model, history = trained_with_history
    app = wd.checkpoint_scrubber(model, history, step=sorted(history.snapshots)[2])
    before = app.step
    app.step = -5                                                        # no such snapshot: a message
    shows_error(app, "no snapshot")
    assert app.step == before
    with pytest.raises(ValueError, match="no snapshot"):
        wd.checkpoint_scrubber(model, history, step=-5)


# ---------------------------------------------------------------- ablation board


def test_ablation_board_table(trained, board):
    d = board.data
    n_toggles = len(d["toggles"])
    assert n_toggles == 4 + 6 and d["masks"] == "all"                    # 4 heads + K/Q/V of the 2 layer-0 heads
    table = wd.unpack(d["table"])
    P = trained.cfg.n_ctx - 1
    assert table.shape == (len(board.methods), 2 ** n_toggles, P)
    clean = interventions_loss(trained, board.tokens)
    assert np.abs(table[0, 0] / 1000 - clean).max() <= 6e-4            # mask 0: the clean model
    # every subset of whole heads against the library's ablation
    for mask in range(16):
        heads = [t for i, t in enumerate(board.toggles[:4]) if mask >> i & 1]
        want = il.per_position_loss_with(trained, board.tokens, [(l, h) for _, l, h, _ in heads]).mean(0).numpy()
        assert np.abs(table[0, mask] / 1000 - want).max() <= 6e-4, mask
    assert board.state_bytes() < BUDGET


def interventions_loss(model, tokens):
    return il.per_position_loss_with(model, tokens).mean(0).numpy()


def test_ablation_board_toggles_follow_the_chapter(trained, board):
    a, b = board.region
    layer, head = il.heads.induction_head(trained)
    prev = il.heads.previous_token_head(trained)
    board.mask = 0
    board.head_boxes[(layer, head)].value = True
    assert board.head_boxes[(layer, head)].value and board.mask == 1 << board.toggles.index(("head", layer, head, None))
    assert board.shown()[a:b].mean() > board.clean[a:b].mean()
    board.head_boxes[(layer, head)].value = False
    board.path_boxes[(*prev, "k")].value = True                          # chapter 4: the K-composition path
    assert board.shown()[a:b].mean() > board.clean[a:b].mean() + 0.5
    assert np.abs(board.shown() - board.ablated_loss()).max() <= 6e-4
    board.method = "mean"
    assert np.abs(board.shown() - board.ablated_loss()).max() <= 6e-4
    board.method = "nonsense"                                            # a message, the method kept
    shows_error(board, "unknown method")
    assert board.method == "mean"
    board.mask = 1 << 20                                                 # a checkbox that does not exist
    shows_error(board, "does not exist")
    board.method, board.mask = "zero", 0


def test_ablation_board_path_bits_of_removed_heads_change_nothing(trained, board):
    """The table is filled from canonical selections (a wholly removed head's path bits cleared): check."""
    bit_head = board.toggles.index(("head", 0, 0, None))
    bit_path = board.toggles.index(("path", 0, 0, "k"))
    both = 1 << bit_head | 1 << bit_path
    for method in board.methods:
        board._cache.clear()
        whole, _ = board.selection(both)
        ref = None if method == "zero" else board.reference
        with il.ablate(trained, whole, method, ref), il.ablate_path(trained, [(0, 0)], "k", method, ref):
            logits = trained(board.tokens)
        direct = il.scores.per_position_loss(logits, board.tokens).mean(0).detach().numpy()
        assert np.abs(board.ablated_loss(method, both) - direct).max() < 1e-4


def test_ablation_board_big_model_computes_live():
    """More checkboxes than precomputed: head subsets are in the table, the rest is computed on request."""
    torch.manual_seed(0)
    model = il.Transformer(il.ModelConfig(n_layers=2, n_heads=3, d_model=32, d_head=8)).eval()
    app = wd.ablation_board(model, batch=4, max_toggles=8)
    assert app.data["masks"] == list(range(2 ** 6))
    app.path_boxes[(0, 1, "v")].value = True                             # not precomputed: the kernel computes it
    key = f"zero:{app.mask}"
    assert key in app.extra and app.message == ""
    assert np.abs(app.shown() - app.ablated_loss()).max() <= 6e-4


# ---------------------------------------------------------------- Hopfield playground


def test_hopfield_playground_data_and_python_reference():
    app = wd.hopfield_playground()
    d = app.data
    signs = wd.unpack(d["signs"])
    assert signs.shape == (d["max_patterns"], d["d"]) and set(np.unique(signs)) <= {-1, 1}
    assert np.allclose(signs.T / d["side"], app.all_patterns.numpy())
    assert np.allclose(wd.unpack(d["noise_dir"]), app.noise_dir.numpy())
    ref = d["reference"]                                                 # what the page must reproduce
    c = app.compute()
    e = c["retrieval"].energies
    assert (e[1:] - e[:-1]).max() <= 1e-5 and ref["steps"] == c["retrieval"].steps
    app.beta = 0.2
    assert il.hopfield.effective_count(app.compute()["retrieval"].weights) > 0.5 * app.n
    app.beta = 200.0
    assert il.hopfield.effective_count(app.compute()["retrieval"].weights) < 1.1


def test_hopfield_playground_js_update_matches_python():
    """The JavaScript retrieval (hopfield_playground.js) against induction_lib.hopfield, run in node if present."""
    import shutil
    import subprocess
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the browser test compares the page with Python too)")
    app = wd.hopfield_playground(beta=3.0, n=24, noise=1.1)
    js = (Path(wd.__file__).parent / "hopfield_playground.js").read_text()
    fn = js[js.index("function retrieval"):js.index("function render")]
    X = app.all_patterns.T.contiguous().numpy().ravel().tolist()
    q = (app.all_patterns[:, 0] + app.noise * app.noise_dir).tolist()
    script = fn + f"""
const r = retrieval(Float64Array.from({json.dumps(X)}), {app.d}, {app.n}, Float64Array.from({json.dumps(q)}),
                    {app.beta}, {app.max_steps}, {app.tol});
console.log(JSON.stringify({{steps: r.steps, energies: r.energies, state: Array.from(r.state)}}));"""
    out = json.loads(subprocess.run([node, "-e", script], capture_output=True, text=True, check=True).stdout)
    r = app.compute()["retrieval"]
    assert out["steps"] == r.steps
    assert np.abs(np.array(out["energies"]) - r.energies.numpy()).max() < 1e-4
    assert np.abs(np.array(out["state"]) - r.state.numpy()).max() < 1e-4


def test_hopfield_playground_out_of_range_is_a_message():
    app = wd.hopfield_playground()
    app.n = 1000
    shows_error(app, "out of range", "2 to 64")
    assert app.n == 16
    app.beta = -1.0
    shows_error(app, "beta")
    assert app.beta == 8.0
    app.noise = 0.5
    assert app.message == ""


# ---------------------------------------------------------------- repeat demo (setup page)


def test_repeat_demo():
    app = wd.repeat_demo()
    for n in range(1, 13):
        ids = app.data["sequences"][str(n)]
        assert ids[0] == il.BOS and len(ids) == 2 * n + 1 and ids[1:n + 1] == ids[n + 1:]
    app.half_len = 99
    shows_error(app, "between 1 and 12")
    assert app.half_len == 5


# ---------------------------------------------------------------- common behaviour


def test_errors_inside_an_update_are_messages_not_exceptions(trained):
    app = wd.attention_explorer(trained)

    def broken(tokens):
        raise RuntimeError("boom")
    app.compute = broken
    app.text = "1 2 3"                                                   # must not raise
    assert "boom" in app.message and app.error


def test_display_is_the_widget_alone(trained):
    """No static figure beside the widget: the display bundle is the widget view (and a text fallback)."""
    app = wd.hopfield_playground()
    bundle = app._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data and "image/png" not in data


def test_embedded_state_budget(trained, trained_with_history):
    """Each chapter page embeds at most one or two widgets; every widget alone is well under the page budget."""
    model, history = trained_with_history
    sizes = {"explorer": wd.attention_explorer(trained).state_bytes(),
             "scrubber": wd.checkpoint_scrubber(model, history).state_bytes(),
             "hopfield": wd.hopfield_playground().state_bytes()}
    assert all(size < BUDGET / 2 for size in sizes.values()), sizes
    assert math.isfinite(sum(sizes.values()))
