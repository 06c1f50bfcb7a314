"""induction_lib: induction heads from scratch, on a CPU.

    import induction_lib as il
    model = il.load("induction-2l")
    logits, cache = model.run_with_cache(il.repeated_tokens(8, 20, model.cfg.d_vocab))
"""
from .config import ModelConfig, TrainConfig
from .data import BOS, CharTokenizer, RepeatedSegments, TextData, random_tokens, repeated_blocks, repeated_tokens, stdlib_corpus
from .model import ActivationCache, HookPoint, Transformer
from .train import History, formed, train
from .zoo import RECIPES, load, load_with_history
from . import heads, scores

# -- toolkit, Hopfield and widgets exports (appended by their modules' authors) --
from . import plots
from . import circuits, interventions
from .circuits import FactoredMatrix, direct_logit_attribution
from .interventions import ablate, ablate_path, patch_heads, per_position_loss_with
from . import hopfield, widgets
from .widgets import ablation_board, attention_explorer, checkpoint_scrubber, hopfield_playground
from . import fuzzy, phase, text
from .bridge import from_transformer_lens, to_transformer_lens
