"""The exercise checks (induction_lib.exercises.check).

For every check: the reference solution passes, at least two plausible wrong answers (real
mistakes, written out below) are rejected with an ExerciseError whose message points at the
mistake, and a stub prints "not implemented yet" and raises NotImplementedError.

The reference solutions live here (and in the chapter notebooks), never in the check module: the
checks compare with properties and fixed numbers.
"""
from __future__ import annotations

import pytest
import torch

from induction_lib.exercises import ExerciseError, check
from _fixtures import passes, rejects, tiny_model  # noqa: F401


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 9.9 (ex-test): not implemented yet")


@pytest.fixture(scope="module")
def model():
    return tiny_model(n_ctx=32, n_heads=3)


# Chapters 1-3: tests/test_exercises_ch1_3.py (the stub tests of their checks stay below).


# Chapters 4-6 and split_prediction: tests/test_exercises_ch4_6.py (the stub tests of their checks stay
# below).


# ================================================================ stubs: "not implemented yet"

STUB_CALLS = {
    "repeated_tokens": lambda: check.repeated_tokens(stub),
    "chance_loss": lambda: check.chance_loss(None, 64),
    "predict_next": lambda m: check.predict_next(None, m, torch.zeros(1, 64, dtype=torch.long)),
    "repeated_half_loss": lambda: check.repeated_half_loss(stub),
    "previous_token_score": lambda: check.previous_token_score(stub),
    "find_previous_token_head": lambda m: check.find_previous_token_head(stub, m),
    "positional_qk_reading": lambda: check.positional_qk_reading(...),
    "induction_score": lambda: check.induction_score(stub),
    "ov_eigen_stat": lambda: check.ov_eigen_stat(stub),
    "k_circuit": lambda: check.k_circuit(stub),
    "k_composition": lambda: check.k_composition(stub),
    "zero_ablation_hook": lambda m: check.zero_ablation_hook(stub, m),
    "path_prediction": lambda: check.path_prediction(None),
    "k_path_ablation": lambda m: check.k_path_ablation(stub, m),
    "patch_head": lambda m: check.patch_head(stub, m),
    "repair_prediction": lambda: check.repair_prediction(None),
    "transition_window": lambda: check.transition_window(stub),
    "find_transition": lambda: check.find_transition(stub),
    "first_induction_step": lambda: check.first_induction_step(stub),
    "even_guess_loss": lambda: check.even_guess_loss(stub),
    "smear_prediction": lambda: check.smear_prediction(None),
    "scaling_exponent": lambda: check.scaling_exponent(stub),
    "hopfield_update": lambda: check.hopfield_update(stub),
    "capacity": lambda: check.capacity(stub, stub),
    "hopfield_split": lambda: check.hopfield_split(stub, None, None),
    "three_way_split": lambda: check.three_way_split(None, None),
    "causal_energy": lambda m: check.causal_energy(stub, m),
    "split_prediction": lambda: check.split_prediction(..., 0.5),
    "copyable": lambda: check.copyable(stub),
    "key_source": lambda m: check.key_source(stub, m),
    "resample_ablation": lambda m: check.resample_ablation(stub, m),
}


def test_every_check_has_a_stub_test():
    assert set(STUB_CALLS) == set(check.CHECKS)


@pytest.mark.parametrize("name", sorted(STUB_CALLS))
def test_stub_says_not_implemented(name, model, capsys):
    fn = STUB_CALLS[name]
    with pytest.raises(NotImplementedError) as info:
        fn(model) if fn.__code__.co_argcount else fn()
    out = capsys.readouterr().out
    assert "not implemented yet" in out, out
    assert f"check.{name}" in out
    if "stub" in fn.__code__.co_names:
        assert "Exercise 9.9" in str(info.value), "the stub's own message (naming the exercise) must survive"


def test_wrong_answer_is_an_assertion_error():
    """nbval and nbgrader treat any exception as failure; pytest-style tools expect AssertionError."""
    assert issubclass(ExerciseError, AssertionError)


def test_other_errors_propagate_with_context(capsys):
    def broken(pattern):
        return pattern[0, 0, 0, 0, 0]

    with pytest.raises(IndexError):
        check.previous_token_score(broken)
    assert "raised IndexError" in capsys.readouterr().out

