"""scikit-learn estimators for every BERT task."""

from ._base import BertEstimatorBase, load
from ._classifier import BertClassifier
from ._embedder import BertEmbedder
from ._regressor import BertRegressor

__all__ = ["BertClassifier", "BertEmbedder", "BertEstimatorBase", "BertRegressor", "load"]
