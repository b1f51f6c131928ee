"""bertkit: every BERT task as a scikit-learn estimator, on one PyTorch encoder core.

The core (this package's top level) knows nothing of scikit-learn: use
:func:`load_pretrained` / :func:`load_encoder` for plain ``torch.nn.Module`` s and
:func:`load_tokenizer` for the WordPiece tokenizer.
"""

from __future__ import annotations

from ._errors import (
    BertkitError,
    CheckpointError,
    ConfigError,
    InputError,
    ModelNotFoundError,
    PluginError,
    UnknownNameError,
    UnsupportedOptionError,
)
from .checkpoint import load_encoder, load_pretrained, read_state_dict, save_pretrained
from .config import BertConfig
from .estimators import (
    BertCausalLM,
    BertClassifier,
    BertEmbedder,
    BertMaskedLM,
    BertMultipleChoice,
    BertNextSentencePredictor,
    BertPretrainer,
    BertQuestionAnswerer,
    BertRegressor,
    BertTokenClassifier,
    load,
)
from .heads import BertTaskModel, Head
from .hookspecs import hookimpl
from .modeling import BertModel, Output
from .sources import resolve_model
from .tokenizer import BertTokenizer, load_tokenizer

__version__ = "0.1.0"

__all__ = [
    "BertCausalLM",
    "BertClassifier",
    "BertConfig",
    "BertEmbedder",
    "BertMaskedLM",
    "BertMultipleChoice",
    "BertNextSentencePredictor",
    "BertPretrainer",
    "BertQuestionAnswerer",
    "BertRegressor",
    "BertTokenClassifier",
    "BertModel",
    "BertTaskModel",
    "BertTokenizer",
    "Head",
    "Output",
    "hookimpl",
    "load",
    "load_encoder",
    "load_pretrained",
    "load_tokenizer",
    "read_state_dict",
    "resolve_model",
    "save_pretrained",
    "BertkitError",
    "CheckpointError",
    "ConfigError",
    "InputError",
    "ModelNotFoundError",
    "PluginError",
    "UnknownNameError",
    "UnsupportedOptionError",
    "__version__",
]
