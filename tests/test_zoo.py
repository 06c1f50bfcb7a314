"""The checkpoint cache: round trip, atomic writes, corrupt and truncated files, the recipe-hash guard."""
import pytest
import torch

import induction_lib as il
from induction_lib import zoo
from induction_lib.config import ModelConfig, TrainConfig

TINY = zoo.Recipe("tiny", "a tiny test recipe",
                  ModelConfig(d_vocab=16, n_ctx=24, d_model=16, n_layers=2, n_heads=2, d_head=8),
                  TrainConfig(steps=20, batch_size=8, eval_every=10, eval_batch=4, snapshot_steps=(10,)),
                  {"kind": "repeated_segments", "min_len": 3, "max_len": 8})


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INDUCTION_LIB_CACHE", str(tmp_path))
    return tmp_path


def test_round_trip_uses_env_cache_dir(cache):
    model, hist = zoo.load_with_history(TINY, progress=False)
    files = list(cache.glob("*.pt"))
    assert files == [zoo.checkpoint_path(TINY)] and files[0].parent == cache
    assert not list(cache.glob("*.tmp")), "temporary file left behind"
    again, hist2 = zoo.load_with_history(TINY, progress=False)
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    assert hist2.steps == hist.steps and sorted(hist2.snapshots) == [10]
    tokens = il.repeated_tokens(2, 5, 16, seed=0)
    torch.testing.assert_close(model(tokens), again(tokens), rtol=0, atol=0)


def test_changed_recipe_never_loads_a_stale_model(cache):
    zoo.load(TINY, progress=False)
    other = TINY.with_changes(train={"seed": 1})
    assert other.hash() != TINY.hash()
    assert zoo.checkpoint_path(other) != zoo.checkpoint_path(TINY)
    # a file for one recipe put under another recipe's name is refused by the hash inside it
    zoo.checkpoint_path(TINY).rename(zoo.checkpoint_path(other))
    with pytest.raises(zoo.CheckpointError, match="trained from another recipe"):
        zoo.load_checkpoint(zoo.checkpoint_path(other), other)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "not_a_dict"])
def test_corrupt_checkpoint_is_reported_in_one_line_and_retrained(cache, capsys, damage):
    model = zoo.load(TINY, progress=False)
    path = zoo.checkpoint_path(TINY)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x80\x04garbage" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"hello": torch.zeros(2)}, path)
    with pytest.raises(zoo.CheckpointError):
        zoo.load_checkpoint(path, TINY)
    capsys.readouterr()
    retrained = zoo.load(TINY, progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "retraining" in err[0] and str(path) in err[0], err
    assert "Traceback" not in err[0]
    for k, v in model.state_dict().items():  # same seed, same machine: the same model again
        assert torch.equal(v, retrained.state_dict()[k])
    zoo.load_checkpoint(path, TINY)  # and the rewritten file is good


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'nope'; known: induction-2l, attn-only-1l"):
        zoo.load("nope")


def test_every_named_recipe_is_valid_and_documented():
    assert "induction-2l" in zoo.RECIPES
    for name, recipe in zoo.RECIPES.items():
        assert recipe.name == name and len(recipe.description) > 40
        data = zoo.make_data({**recipe.data, **({"max_chars": 20_000} if recipe.data["kind"] == "stdlib_text" else {})},
                             recipe.model)
        tokens, mask = data.sample(2, torch.Generator().manual_seed(0))
        assert tokens.shape == (2, recipe.model.n_ctx) and tokens.max() < recipe.model.d_vocab


# ---------------------------------------------------------------- the shipped reference checkpoints


def test_every_named_recipe_ships_a_checkpoint_of_exactly_that_recipe():
    entries = zoo.manifest()
    assert sorted(entries) == sorted(zoo.RECIPES), "run `make models` after changing RECIPES"
    total = 0
    for name, recipe in zoo.RECIPES.items():
        entry = entries[name]
        assert entry["recipe_hash"] == recipe.hash(), f"{name}: the shipped model is for an older recipe"
        path = zoo.shipped_path(recipe)
        assert path is not None and path.stat().st_size == entry["bytes"]
        assert {"sha256", "torch", "cpu", "seconds", "threads"} <= set(entry)
        total += entry["bytes"]
    # the text model (1,025-token embedding and unembedding, 22 float16 snapshots for the scrubber) is most of it
    assert total <= 30e6, f"the zoo is {total / 1e6:.1f} MB"


def test_load_is_training_free_from_an_empty_cache(cache, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a shipped model was trained instead of loaded")
    monkeypatch.setattr(zoo, "train", no_training)
    for name in zoo.RECIPES:
        model, hist = il.load_with_history(name, progress=False)
        assert model.cfg == zoo.RECIPES[name].model and hist.steps[-1] == zoo.RECIPES[name].train.steps
        assert not model.training
    assert not any(cache.iterdir()), "loading a shipped model wrote to the cache"


def test_snapshots_come_back_as_float32_and_close_to_the_final_weights():
    model, hist = il.load_with_history("induction-2l", progress=False)
    last = hist.snapshots[max(hist.snapshots)]
    for k, v in model.state_dict().items():
        assert last[k].dtype == torch.float32
        torch.testing.assert_close(last[k], v, rtol=1e-3, atol=1e-3)  # float16 storage


def test_a_damaged_shipped_file_is_an_error_naming_it(tmp_path, monkeypatch):
    import shutil
    shipped = tmp_path / "models"
    shutil.copytree(zoo.SHIPPED_DIR, shipped)
    monkeypatch.setattr(zoo, "SHIPPED_DIR", shipped)
    monkeypatch.setattr(zoo, "MANIFEST", shipped / "manifest.json")
    path = shipped / "induction-2l.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(zoo.CheckpointError, match=r"induction-2l\.pt does not match manifest\.json"):
        il.load("induction-2l", progress=False)
    path.unlink()
    with pytest.raises(zoo.CheckpointError, match=r"induction-2l\.pt is listed in manifest\.json but missing"):
        il.load("induction-2l", progress=False)


def test_a_changed_recipe_or_retrain_trains_and_caches(cache, monkeypatch):
    calls = []
    real_train = zoo.train

    def counting_train(*args, **kwargs):
        calls.append(1)
        return real_train(*args, **kwargs)
    monkeypatch.setattr(zoo, "train", counting_train)
    variant = zoo.RECIPES["induction-2l"].with_changes(
        model={"d_model": 16, "d_head": 8}, train={"steps": 10, "eval_every": 5, "snapshot_steps": ()})
    assert zoo.shipped_path(variant) is None
    zoo.load(variant, progress=False)
    assert calls == [1] and zoo.checkpoint_path(variant).exists()
    zoo.load(variant, progress=False)
    assert calls == [1]                                   # cached now
    zoo.load(variant, progress=False, retrain=True)
    assert calls == [1, 1]
