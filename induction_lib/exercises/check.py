"""Every exercise check, under one name: `from induction_lib.exercises import check`.

Each check runs your answer on hand-built cases with known numbers and on fresh random inputs,
and compares with properties and fixed numbers (never with a hidden solution). It prints one line:

    ✓ check.name: …                  passed
    ✗ check.name: what is wrong …    and raises ExerciseError (an AssertionError)
    ⏳ check.name: not implemented yet  and raises NotImplementedError (your stub's, naming the exercise)

Chapter 1  repeated_tokens(fn), chance_loss(value, vocab)
Chapter 2  previous_token_score(fn), find_previous_token_head(answer, model),
           positional_qk_reading(answer, model=None, head=None)
Chapter 3  induction_score(fn), ov_eigen_stat(fn), k_composition(fn)
Chapter 4  zero_ablation_hook(hook_fn, model, head=None, layer=1), path_prediction(answer)
Chapter 5  transition_window(fn), first_induction_step(step, history, level=0.5)
Chapter 6  hopfield_update(fn), capacity(n_classical, d, n_modern=None),
           split_prediction(pred, measured, rtol=0.1, atol=0.02)
"""
from ._core import ExerciseError
from .ch1_setting import chance_loss, repeated_tokens
from .ch2_previous_token import find_previous_token_head, positional_qk_reading, previous_token_score
from .ch3_induction import induction_score, k_composition, ov_eigen_stat
from .ch4_ablation import path_prediction, zero_ablation_hook
from .ch5_phase_transition import first_induction_step, transition_window
from .ch6_hopfield import capacity, hopfield_update, split_prediction

__all__ = [
    "ExerciseError",
    "repeated_tokens", "chance_loss",
    "previous_token_score", "find_previous_token_head", "positional_qk_reading",
    "induction_score", "ov_eigen_stat", "k_composition",
    "zero_ablation_hook", "path_prediction",
    "transition_window", "first_induction_step",
    "hopfield_update", "capacity", "split_prediction",
]

CHECKS = {name: globals()[name] for name in __all__ if name != "ExerciseError"}
