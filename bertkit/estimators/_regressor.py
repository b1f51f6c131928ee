"""BertRegressor: single- and multi-output regression on texts or text pairs."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.base import RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .._errors import InputError
from ._base import COMMON_CONSTRAINTS, BertEstimatorBase
from ._fitting import fit_head, weighted_mean
from ._pretrained import FromPretrained, head_problem

__all__ = ["BertRegressor"]


class BertRegressor(FromPretrained, RegressorMixin, BertEstimatorBase):
    """Fine-tune BERT to predict numbers from texts or text pairs (e.g. STS similarity).

    Targets are standardised inside (zero mean, unit variance per output) and
    predictions come back in the original units. ``y`` may be 1-D or 2-D
    (multi-output). Parameters are those of :class:`BertClassifier` without
    ``class_weight`` and ``threshold``; the validation score is the mean Spearman
    correlation over outputs.

    Attributes
    ----------
    n_outputs_ : int
    y_ndim_ : int
        1 or 2: the shape ``predict`` returns follows ``y``.
    y_mean_, y_scale_ : ndarray of shape (n_outputs,)
        Target standardisation.
    model_, tokenizer_, history_, best_epoch_, n_text_columns_, feature_names_in_
        As in :class:`BertClassifier`.

    Examples
    --------
    >>> from bertkit import BertRegressor
    >>> reg = BertRegressor(n_epochs=1, random_state=0)  # doctest: +SKIP
    >>> reg.fit([["a cat", "a kitten"], ["a cat", "the stock market"]], [4.5, 0.2])  # doctest: +SKIP
    """

    _head = "sequence_classification"
    _forward_kwargs = {"first_token_only": True}  # the head reads the pooled first token only
    _parameter_constraints = dict(COMMON_CONSTRAINTS)
    _fitted_json = ("n_outputs_", "y_mean_", "y_scale_", "y_ndim_", "history_", "best_epoch_")

    def __init__(
        self,
        *,
        model="default",
        max_length=128,
        batch_size=32,
        learning_rate=1e-4,
        n_epochs=3,
        weight_decay=0.01,
        warmup_ratio=0.1,
        max_grad_norm=1.0,
        gradient_accumulation_steps=1,
        layer_lr_decay=1.0,
        freeze_embeddings=False,
        freeze_layers=0,
        validation_fraction=None,
        n_iter_no_change=None,
        long_text="truncate",
        stride=None,
        window_pooling="mean",
        attention="sdpa",
        device="auto",
        precision="auto",
        random_state=None,
        verbose=False,
    ):
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_epochs = n_epochs
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.max_grad_norm = max_grad_norm
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.layer_lr_decay = layer_lr_decay
        self.freeze_embeddings = freeze_embeddings
        self.freeze_layers = freeze_layers
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.long_text = long_text
        self.stride = stride
        self.window_pooling = window_pooling
        self.attention = attention
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fine-tune on texts ``X`` (or text pairs) and numeric targets ``y``; returns self."""
        self._validate_params()
        texts = self._check_X(X, fit=True)
        self._check_lengths(texts, y)
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InputError(
                f"{type(self).__name__} needs numeric targets; y could not be read as numbers "
                f"({err}). For class labels use BertClassifier."
            ) from err
        if y.ndim not in (1, 2):
            raise InputError(f"{type(self).__name__} takes a 1-D or 2-D y. Got {y.ndim} dimensions.")
        if not np.isfinite(y).all():
            raise InputError(f"{type(self).__name__}: y contains NaN or infinite values.")
        self.y_ndim_ = y.ndim
        y2 = y.reshape(len(y), -1)
        self.n_outputs_ = y2.shape[1]
        self.y_mean_ = y2.mean(axis=0)
        scale = y2.std(axis=0)
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        targets = ((y2 - self.y_mean_) / self.y_scale_).astype(np.float32)
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, np.empty((len(y), 1)))

        def loss_fn(pred, target, weight):
            losses = ((pred.float() - target) ** 2).mean(dim=1)
            return weighted_mean(losses, weight)

        def score_fn(pred: np.ndarray, target: np.ndarray) -> float:
            if len(target) < 2:
                return 0.0
            rhos = [spearmanr(pred[:, j], target[:, j]).statistic for j in range(target.shape[1])]
            return float(np.nan_to_num(np.mean(rhos)))

        fit_head(
            self, texts, targets, weights,
            head_options={"num_labels": self.n_outputs_},
            problem_type="regression",
            loss_fn=loss_fn,
            score_fn=score_fn,
            target_dtype=torch.float32,
        )
        return self

    def _adopt_config(self, config) -> None:
        """The head's outputs as they are (no target scaling): 1-D for one output."""
        problem = head_problem(config)
        if problem != "regression":
            raise InputError(
                f"{type(self).__name__}.from_pretrained: this checkpoint's head is a classifier "
                f"({problem}, {config.num_labels} labels); load it with "
                f"BertClassifier.from_pretrained. A multi-output regression checkpoint says "
                f'"problem_type": "regression" in its config.json.'
            )
        n = config.num_labels
        self.n_outputs_, self.y_ndim_ = n, 1 if n == 1 else 2
        self.y_mean_, self.y_scale_ = np.zeros(n), np.ones(n)

    def predict(self, X) -> np.ndarray:
        """Predictions in the units of ``y`` (1-D if ``y`` was 1-D)."""
        check_is_fitted(self, "model_")
        texts = self._check_X(X, fit=False)
        out = self._run(texts, lambda o, inputs: o["logits"], "predict") * self.y_scale_ + self.y_mean_
        return out.ravel() if self.y_ndim_ == 1 else out
