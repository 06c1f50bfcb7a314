"""Natural text: the BPE tokenizer, the held-out split, the target classes and the text measurements."""
import pytest
import torch

from induction_lib import ModelConfig, Transformer, text
from induction_lib.data import BOS, BPETokenizer, split_files, stdlib_files


@pytest.fixture(scope="module")
def tok():
    files = stdlib_files()[:40]
    return BPETokenizer.train([t for _, t in files], 300)


def test_bpe_round_trip_and_bos(tok):
    s = "def f(x):\n    return x + 1  # é ∑\n"
    ids = tok.encode(s)
    assert ids.min() >= 1 and ids.max() < tok.vocab_size      # 0 stays BOS
    assert tok.decode(ids) == s                               # byte-level: every string round-trips
    assert tok.decode(torch.cat([torch.tensor([BOS]), ids])) == "⟨bos⟩" + s
    ascii_ids = tok.encode("def f(x):\n    return x\n")
    assert "".join(tok.pieces(ascii_ids)) == "def f(x):\n    return x\n"  # a piece of a multi-byte character
    assert tok.labels(tok.encode("a b\n"))[-1].endswith("⏎")
    again = BPETokenizer.from_json(tok.to_json())
    assert torch.equal(again.encode(s), ids)
    with pytest.raises(ValueError, match=r"out of range.*\[0, "):
        tok.decode([tok.vocab_size])


def test_bpe_training_is_deterministic(tok):
    files = stdlib_files()[:40]
    assert BPETokenizer.train([t for _, t in files], 300).to_json() == tok.to_json()


def test_split_holds_out_every_nth_file():
    files = [(str(i), "x") for i in range(45)]
    train, held = split_files(files, 20)
    assert [p for p, _ in held] == ["0", "20", "40"] and len(train) == 42
    assert not {p for p, _ in held} & {p for p, _ in train}
    with pytest.raises(ValueError, match="at least 2"):
        split_files(files, 1)


def test_target_classes_by_hand():
    # BOS a b c a b a c  -> targets of positions 0..6: a b c a b a c
    a, b, c = 1, 2, 3
    tokens = torch.tensor([[BOS, a, b, c, a, b, a, c]])
    cls = text.target_classes(tokens)
    # position 4 (the second a) -> b: a was followed by b before: copyable
    # position 5 (b) -> a: b was followed by c before: seen, other follower
    # position 6 (a) -> c: a was followed by b before (not c): seen, other follower
    assert cls["copyable"][0].tolist() == [False, False, False, False, True, False, False]
    assert cls["seen, other follower"][0].tolist() == [False, False, False, False, False, True, True]
    assert cls["first occurrence"][0].tolist() == [False, True, True, True, False, False, False]
    # every target but BOS's is in exactly one class
    total = sum(m.long() for m in cls.values())
    assert total[0, 1:].eq(1).all() and total[0, 0] == 0


def test_target_classes_ignore_bos_as_an_occurrence():
    tokens = torch.tensor([[BOS, 5, BOS, 5]])   # BOS twice: not a token occurrence
    assert not text.target_classes(tokens)["copyable"].any()


@pytest.fixture(scope="module")
def tiny_text_model(tok):
    torch.manual_seed(0)
    model = Transformer(ModelConfig(d_vocab=tok.vocab_size, n_ctx=32, n_heads=2, d_head=8, d_model=16)).eval()
    model.tokenizer = tok
    model.held_out = split_files(stdlib_files()[:40], 20)[1]
    return model


def test_measurements_run_on_a_text_model(tiny_text_model):
    m = tiny_text_model
    w = text.held_out_windows(m, n=8, seed=1)
    assert w.shape == (8, 32) and (w[:, 0] == BOS).all() and torch.equal(w, text.held_out_windows(m, 8, 1))
    losses = text.loss_by_class(m, w)
    assert set(losses) == {"copyable", "seen, other follower", "first occurrence"}
    ablated = text.loss_by_class(m, w, heads=[(1, 0)])
    assert ablated != losses
    rp = text.repeated_passage(m)
    assert len(rp["first"]) == len(rp["second"]) == len(rp["pieces"]) - 1
    window = text.file_window(m, m.held_out[0][0])
    assert window.shape == (1, 32)
    with pytest.raises(ValueError, match="not a held-out file"):
        text.file_window(m, "nope.py")


def test_a_model_without_text_is_refused():
    model = Transformer(ModelConfig())
    with pytest.raises(ValueError, match="no tokenizer"):
        text.held_out_windows(model)
