"""scikit-learn estimators for every BERT task."""

from ._base import BertEstimatorBase, load
from ._causal_lm import BertCausalLM
from ._choice import BertMultipleChoice
from ._classifier import BertClassifier
from ._embedder import BertEmbedder
from ._masked_lm import BertMaskedLM
from ._next_sentence import BertNextSentencePredictor
from ._pretrainer import BertPretrainer
from ._qa import BertQuestionAnswerer
from ._regressor import BertRegressor
from ._token import BertTokenClassifier

__all__ = [
    "BertCausalLM",
    "BertClassifier",
    "BertEmbedder",
    "BertEstimatorBase",
    "BertMaskedLM",
    "BertMultipleChoice",
    "BertNextSentencePredictor",
    "BertPretrainer",
    "BertQuestionAnswerer",
    "BertRegressor",
    "BertTokenClassifier",
    "load",
]
