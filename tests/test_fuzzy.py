"""induction_lib.fuzzy: synonym pairs, the fuzzy training data and evaluation layout, the recipe,
the circuit helpers, and the repeated-identifier measurement on text."""
import math

import pytest
import torch

import induction_lib as il
from induction_lib import fuzzy, scores, zoo
from induction_lib.config import ModelConfig


# ---------------------------------------------------------------- synonyms


@pytest.mark.parametrize("vocab", [3, 5, 64, 65])
def test_synonyms_are_a_pairing(vocab):
    s = fuzzy.synonyms(vocab, seed=0)
    assert s.shape == (vocab,) and s.dtype == torch.long
    assert torch.equal(s[s], torch.arange(vocab)), "the pairing must be its own inverse"
    assert s[0] == 0, "BOS has no synonym"
    fixed = [t for t in range(1, vocab) if s[t] == t]
    assert len(fixed) == (vocab - 1) % 2, "every ordinary token is paired, except one when their number is odd"


def test_synonyms_depend_on_the_seed_only():
    assert torch.equal(fuzzy.synonyms(64, 3), fuzzy.synonyms(64, 3))
    assert not torch.equal(fuzzy.synonyms(64, 3), fuzzy.synonyms(64, 4))
    with pytest.raises(ValueError, match="vocab"):
        fuzzy.synonyms(2)


def test_canonical_is_shared_by_synonyms_only():
    s = fuzzy.synonyms(64)
    t = torch.arange(64)
    c = fuzzy.canonical(t, s)
    assert torch.equal(c, fuzzy.canonical(s, s))
    assert len(torch.unique(c)) == 1 + 32      # BOS, 31 pairs, one token left alone


# ---------------------------------------------------------------- training data


def _sample(p_swap, seed=0, batch=64):
    data = fuzzy.FuzzySegments(64, 64, 4, 24, p_swap=p_swap)
    return data.sample(batch, torch.Generator().manual_seed(seed))


def test_p_swap_zero_is_the_exact_training_data():
    tokens, mask = _sample(0.0)
    # FuzzySegments keeps the three placement rules of the fuzzy recipe (RepeatedSegments' default is four)
    exact, exact_mask = il.RepeatedSegments(64, 64, 4, 24, rules=3).sample(64, torch.Generator().manual_seed(0))
    assert torch.equal(tokens, exact) and torch.equal(mask, exact_mask)


def test_p_swap_one_swaps_exactly_the_copy():
    syn = fuzzy.synonyms(64)
    plain, mask = _sample(0.0)
    swapped, mask1 = _sample(1.0)
    assert torch.equal(mask, mask1)
    for row in range(plain.shape[0]):
        m = mask[row].nonzero().flatten()
        dst, last = int(m[0]), int(m[-1]) + 1          # the copy: token positions dst .. last
        inside = torch.zeros(64, dtype=torch.bool)
        inside[dst:last + 1] = True
        assert torch.equal(swapped[row, inside], syn[plain[row, inside]]), row
        assert torch.equal(swapped[row, ~inside], plain[row, ~inside]), row


def test_p_swap_half_swaps_about_half():
    syn = fuzzy.synonyms(64)
    plain, mask = _sample(0.0, batch=256)
    half, _ = _sample(0.5, batch=256)
    pad = torch.zeros(256, 1, dtype=torch.bool)
    inside = torch.cat([mask, pad], 1) | torch.cat([pad, mask], 1)
    changeable = inside & (syn[plain] != plain)
    share = (half != plain)[changeable].float().mean().item()
    assert 0.45 < share < 0.55
    assert torch.equal(half[~inside], plain[~inside])


def test_fuzzy_segments_validate():
    with pytest.raises(ValueError, match="p_swap"):
        fuzzy.FuzzySegments(64, 64, p_swap=1.5)
    with pytest.raises(ValueError, match="n_ctx"):
        fuzzy.FuzzySegments(64, 20, 4, 24)


# ---------------------------------------------------------------- the recipe and its cache

def test_fuzzy_is_a_zoo_recipe_with_its_own_data_kind():
    recipe = zoo.RECIPES["fuzzy-2l"]
    assert fuzzy.RECIPE is recipe and recipe.data["kind"] == "fuzzy_segments"
    assert recipe.hash() != zoo.RECIPES["induction-2l"].hash()
    data = zoo.make_data(recipe.data, recipe.model)
    assert isinstance(data, fuzzy.FuzzySegments) and (data.vocab, data.n_ctx, data.p_swap) == (64, 64, 0.5)


# ---------------------------------------------------------------- evaluation layout and scores


class _Shape:
    cfg = ModelConfig(n_heads=2, d_head=32)


def test_fuzzy_eval_tokens_layout():
    syn = fuzzy.synonyms(64)
    L, P = fuzzy.EVAL_HALF_LEN, fuzzy.EVAL_PREFIX
    t = fuzzy.fuzzy_eval_tokens(_Shape, batch=8)
    assert t.shape == (8, 1 + P + 2 * L) and (t[:, 0] == 0).all()
    first, second = t[:, 1 + P:1 + P + L], t[:, 1 + P + L:]
    assert torch.equal(second, syn[first])
    for row in t:
        before, copy = set(row[:1 + P + L].tolist()), set(row[1 + P + L:].tolist())
        assert not before & copy, "the synonym copy must share no token with what came before"
        classes = fuzzy.canonical(row[1:1 + P + L], syn)
        assert len(torch.unique(classes)) == P + L, "one token per synonym pair"
    exact = fuzzy.fuzzy_eval_tokens(_Shape, batch=8, swap=False)
    assert torch.equal(exact[:, :1 + P + L], t[:, :1 + P + L])
    assert torch.equal(exact[:, 1 + P + L:], first)
    assert L > fuzzy.RECIPE.data["max_len"], "the evaluation copy is longer than any training copy"
    with pytest.raises(ValueError, match="synonym pairs"):
        fuzzy.fuzzy_eval_tokens(_Shape, half_len=30, prefix_len=3)


class _Cache:
    def __init__(self, patterns):
        self.patterns = patterns

    def pattern(self, layer):
        return self.patterns[layer]


class _PerfectInduction:
    """Layer 1, head 0 attends from each query of the second copy to the token after its earlier
    occurrence; everything else attends to BOS."""

    cfg = ModelConfig(n_heads=2, d_head=32)

    def run_with_cache(self, tokens, names=None):
        b, n = tokens.shape
        L, s = fuzzy.EVAL_HALF_LEN, 1 + fuzzy.EVAL_PREFIX
        bos = torch.zeros(b, 2, n, n)
        bos[..., 0] = 1.0
        ind = bos.clone()
        for i in range(s + L, s + 2 * L):
            ind[:, 0, i] = 0.0
            ind[:, 0, i, i - L + 1] = 1.0
        return None, _Cache([bos, ind])


def test_fuzzy_induction_scores_read_the_stripe():
    s = fuzzy.fuzzy_induction_scores(_PerfectInduction())
    assert s.shape == (2, 2)
    assert s[1, 0] == pytest.approx(1.0) and s[0].abs().max() == 0 and s[1, 1] == 0


def test_eval_regions_match_the_layout():
    L, P = fuzzy.EVAL_HALF_LEN, fuzzy.EVAL_PREFIX
    r = fuzzy.eval_regions()
    # loss index p predicts token p + 1: tokens 2..L of each copy
    assert r == {"first half": slice(1 + P, P + L), "repeated half": slice(1 + P + L, P + 2 * L)}
    assert r == scores.eval_regions(_Shape, L, P)


class _Oracle:
    """Logits that put (almost) all probability on the token that really comes next."""

    cfg = ModelConfig(n_heads=2, d_head=32)

    def __call__(self, tokens):
        tokens = tokens if tokens.dim() == 2 else tokens[None]
        logits = torch.zeros(*tokens.shape, self.cfg.d_vocab)
        logits[:, :-1].scatter_(-1, tokens[:, 1:, None], 30.0)
        return logits


def test_copy_probabilities():
    t = fuzzy.fuzzy_eval_tokens(_Shape, batch=4)
    p = fuzzy.copy_probabilities(_Oracle(), t)
    assert p["synonym"].shape == p["original"].shape == (4, fuzzy.EVAL_HALF_LEN - 1)
    assert (p["synonym"] > 0.99).all() and (p["original"] < 0.01).all()


# ---------------------------------------------------------------- circuit helpers


def test_pair_accuracy_and_pair_order():
    syn = fuzzy.synonyms(64)
    both = torch.eye(64) + torch.eye(64)[syn]
    assert fuzzy.pair_accuracy(both, syn) == 1.0
    noise = torch.randn(64, 64, generator=torch.Generator().manual_seed(0)) * 0.01
    assert fuzzy.pair_accuracy(torch.eye(64) * 2 + noise, syn) < 0.2   # the token alone is not the pair
    order = fuzzy.pair_order(syn)
    assert sorted(order.tolist()) == list(range(64)) and order[0] == 0
    pairs = order[1:63].view(-1, 2)
    assert torch.equal(syn[pairs[:, 0]], pairs[:, 1])


# ---------------------------------------------------------------- natural text


def test_repeated_identifiers():
    text = "x = 1\nalpha_one = alpha_one + 1\nbeta = 2\nbeta_two(alpha_onex)\n"
    found = fuzzy.repeated_identifiers(text, window=25, min_len=6)
    assert found == [(6, 18, "alpha_one")]           # "alpha_onex" is another name; "beta" is too short
    assert fuzzy.repeated_identifiers(text, window=20, min_len=6) == [], "both occurrences must fit"
    assert fuzzy.repeated_identifiers("alpha_one alpha_one", window=30) == [], "needs a full window of text"


class _Uniform:
    cfg = ModelConfig(d_vocab=il.CharTokenizer().vocab_size, n_ctx=32, n_heads=2, d_head=32)

    def __call__(self, tokens):
        tokens = tokens if tokens.dim() == 2 else tokens[None]
        return torch.zeros(*tokens.shape, self.cfg.d_vocab)


def test_identifier_losses_and_char_probabilities():
    tok = il.CharTokenizer()
    text = "# some text before the names start here\nvalue_x = value_x * 2\n"
    model = _Uniform()
    repeats = fuzzy.repeated_identifiers(text, model.cfg.n_ctx - 1)
    assert [r[2] for r in repeats] == ["value_x"]
    losses = fuzzy.identifier_losses(model, text, tok, repeats)
    for key in ("first", "second", "second, first replaced"):
        assert losses[key].shape == (1,)
        assert losses[key].item() == pytest.approx(math.log(tok.vocab_size))
    probs = fuzzy.char_probabilities(model, tok, "abc")
    assert torch.allclose(probs, torch.full((3,), 1 / tok.vocab_size))
    ax = il.plots.natural_text.char_probability_figure(probs, "a c", [(0, 2)], title="t").axes[0]
    bars = [p for p in ax.patches if p.get_height() > 0 and p.get_width() == pytest.approx(0.8)]
    assert [b.get_height() for b in bars] == pytest.approx(probs.tolist())      # one bar per character
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "␣", "c"]      # space shown as ␣
    band = [p for p in ax.patches if p not in bars][0]                             # the shaded span
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((-0.5, 1.5))
