"""Every exercise check, under one name: `from induction_lib.exercises import check`.

Each check runs your answer on hand-built cases with known numbers and on fresh random inputs,
and compares with properties and fixed numbers (never with a hidden solution). It prints one line:

    ✓ check.name: …                  passed
    ✗ check.name: what is wrong …    and raises ExerciseError (an AssertionError)
    ⏳ check.name: not implemented yet  and raises NotImplementedError (your stub's, naming the exercise)

Chapter 1  repeated_tokens(fn), chance_loss(value, vocab), predict_next(predicted, model, tokens),
           repeated_half_loss(fn)
Chapter 2  previous_token_score(fn), find_previous_token_head(fn, model=None),
           positional_qk_reading(answer, model=None, head=None)
Chapter 3  induction_score(fn), ov_eigen_stat(fn), k_circuit(fn), k_composition(fn)
Chapter 4  zero_ablation_hook(hook_fn, model, head=None, layer=1), path_prediction(answer),
           k_path_ablation(fn, model), patch_head(fn, model), repair_prediction(predicted)
Chapter 5  transition_window(fn), find_transition(fn, history=None), first_induction_step(fn, history),
           even_guess_loss(fn, model=None), smear_prediction(predicted, model=None)
Chapter 6  scaling_exponent(fn, sweep=None)
Ch. 7, 8   hopfield_update(fn), capacity(is_stored, classical_capacity),
           hopfield_split(fn, predicted, split), three_way_split(predicted, three),
           causal_energy(fn, model=None), split_prediction(pred, measured, rtol=0.1, atol=0.02)
Chapter 9  copyable(fn), key_source(fn, model), resample_ablation(fn, model)
"""
from ._core import ExerciseError
from .ch1_setting import chance_loss, predict_next, repeated_half_loss, repeated_tokens
from .ch2_previous_token import find_previous_token_head, positional_qk_reading, previous_token_score
from .ch3_induction import induction_score, k_circuit, k_composition, ov_eigen_stat
from .ch4_ablation import k_path_ablation, patch_head, path_prediction, repair_prediction, zero_ablation_hook
from .ch5_phase_transition import (even_guess_loss, find_transition, first_induction_step, scaling_exponent,
                                   smear_prediction, transition_window)
from .ch6_hopfield import (capacity, causal_energy, hopfield_split, hopfield_update, split_prediction,
                           three_way_split)
from .ch7_beyond import copyable, key_source, resample_ablation

__all__ = [
    "ExerciseError",
    "repeated_tokens", "chance_loss", "predict_next", "repeated_half_loss",
    "previous_token_score", "find_previous_token_head", "positional_qk_reading",
    "induction_score", "ov_eigen_stat", "k_circuit", "k_composition",
    "zero_ablation_hook", "path_prediction", "k_path_ablation", "patch_head", "repair_prediction",
    "transition_window", "find_transition", "first_induction_step", "even_guess_loss", "smear_prediction",
    "scaling_exponent",
    "hopfield_update", "capacity", "hopfield_split", "three_way_split", "causal_energy", "split_prediction",
    "copyable", "key_source", "resample_ablation",
]

CHECKS = {name: globals()[name] for name in __all__ if name != "ExerciseError"}
