"""BertMaskedLM: fill-mask, masked-LM scoring and continued MLM pretraining on the user's text.

The masking and scoring here are shared with :class:`BertPretrainer` (``_pretrainer.py``):
:class:`_Masker` (dynamic 80/10/10 masking per batch), :func:`mask_for_scoring` and
:func:`masked_lm_accuracy`. Vocabulary logits are computed only where they are needed:
every model call passes the ``masked_positions`` input of the ``masked_lm`` /
``pretraining`` heads, which then return ``(n_positions, vocab)`` logits.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .._errors import InputError
from ..checkpoint import read_state_dict
from ..datasets import mask_tokens
from ..training import Encoded
from ._base import COMMON_CONSTRAINTS, BertEstimatorBase
from ._fitting import start_fit, train_model
from ._input import TextColumns
from ._pretrained import FromPretrained

__all__ = ["BertMaskedLM", "mask_for_scoring", "masked_lm_accuracy"]

#: Label of the positions that are not predicted.
IGNORE = -100
#: Seed of the masking that ``score`` uses (fixed, so that scores compare across models).
SCORE_SEED = 0

_MODEL_PARAMS = (
    "model", "max_length", "batch_size", "learning_rate", "n_epochs", "weight_decay",
    "warmup_ratio", "max_grad_norm", "gradient_accumulation_steps", "layer_lr_decay",
    "freeze_embeddings", "freeze_layers", "attention", "device", "precision", "random_state",
    "verbose",
)

#: Checkpoint tensors a trained masked-LM head has (the decoder itself is tied to the embeddings).
_MLM_HEAD_KEYS = ("cls.predictions.transform.dense.weight", "cls.predictions.bias")


# --------------------------------------------------------------------- shared pieces
_NOT_FITTED = (
    "This %(name)s instance is not fitted yet. Call fit() without arguments to use the "
    "checkpoint as it is (fill-mask and scoring), or fit(texts) to continue masked-LM "
    "training on your own text first."
)


class _Masker:
    """BERT's dynamic masking of padded batches (``mask_tokens``), from one seeded generator.

    Special tokens ([CLS], [SEP], [PAD], [MASK], [UNK]) and padding are never chosen.
    With ``whole_word``, a word is a token and the ``##`` pieces that follow it.
    """

    def __init__(self, tokenizer, *, probability: float, whole_word: bool, rng: np.random.Generator):
        self.vocab_size = len(tokenizer)
        self.mask_id = tokenizer.mask_token_id
        self.probability = probability
        self.whole_word = whole_word
        self.rng = rng
        self.special = torch.tensor(sorted({i for i in tokenizer.all_special_ids if i is not None}))
        self.continuation = None
        if whole_word:
            table = torch.zeros(self.vocab_size, dtype=torch.bool)
            for token, index in tokenizer.get_vocab().items():
                if token.startswith("##") and index < self.vocab_size:
                    table[index] = True
            self.continuation = table

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids = input_ids.to("cpu")
        special = torch.isin(ids, self.special) | (attention_mask.to("cpu") == 0)
        word_ids = None
        if self.continuation is not None:
            starts = ~self.continuation[ids] & ~special
            word_ids = torch.cumsum(starts.long(), dim=1) - 1  # a word: a start and its ## pieces
            word_ids[special] = -1
        return mask_tokens(
            input_ids, vocab_size=self.vocab_size, mask_token_id=self.mask_id,
            special_tokens_mask=special, mlm_probability=self.probability,
            word_ids=word_ids, whole_word=self.whole_word, generator=self.rng, ignore_index=IGNORE,
        )


def _check_mask_token(est, tokenizer) -> int:
    mask_id = tokenizer.mask_token_id
    if mask_id is None:
        raise InputError(
            f"{type(est).__name__}: the tokenizer of {est.model!r} has no {tokenizer.mask_token!r} "
            f"token, so nothing can be masked. Use a BERT checkpoint whose vocabulary has [MASK]."
        )
    return mask_id


def _pad(encoded: Encoded, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All rows of ``encoded`` as one padded ``(rows, longest)`` matrix and its attention mask."""
    batch = encoded.collate(np.arange(len(encoded.input_ids)), pad_id, "cpu")
    return batch["input_ids"], batch["attention_mask"]


def mask_for_scoring(encoded: Encoded, tokenizer, *, probability: float = 0.15,
                     seed: int = SCORE_SEED) -> tuple[Encoded, list[np.ndarray]]:
    """The seeded masking that ``score`` uses: every chosen token becomes ``[MASK]``.

    ``round(probability * n)`` (at least one) of each row's ``n`` maskable tokens are
    chosen by :func:`bertkit.datasets.mask_tokens` with ``numpy.random.default_rng(seed)``
    over the padded matrix of all rows, so the same list of texts always gets the same
    masks, whatever the model.
    Unlike training, all chosen tokens become ``[MASK]`` (no 10% random / 10% kept).

    Returns the masked rows and, per row, the labels (original id at chosen
    positions, -100 elsewhere).
    """
    ids, attention = _pad(encoded, tokenizer.pad_token_id or 0)
    masker = _Masker(tokenizer, probability=probability, whole_word=False, rng=np.random.default_rng(seed))
    _, labels = masker(ids, attention)
    masked = ids.masked_fill(labels != IGNORE, tokenizer.mask_token_id)
    lengths = encoded.lengths
    rows = [masked[i, :n].numpy().astype(np.int32) for i, n in enumerate(lengths)]
    row_labels = [labels[i, :n].numpy() for i, n in enumerate(lengths)]
    return Encoded(rows, None, np.arange(len(rows)), len(rows)), row_labels


def _mask_positions(mask_id: int) -> Callable[[dict, np.ndarray], dict]:
    """``prepare_inputs`` for ``predict_rows``: the head's ``masked_positions`` are the ``[MASK]`` tokens."""
    def prepare_inputs(inputs, rows):
        inputs["masked_positions"] = inputs["input_ids"] == mask_id
        return inputs

    return prepare_inputs


def _vocab_logits(est, out) -> torch.Tensor:
    """The vocabulary logits of either LM head (``masked_lm``: ``logits``; ``pretraining``:
    ``prediction_logits``); ``(n_positions, vocab)`` when ``masked_positions`` was passed."""
    return out["prediction_logits" if est._head == "pretraining" else "logits"]



def masked_lm_accuracy(est, texts: TextColumns, probability: float) -> float:
    """Share of the tokens masked by :func:`mask_for_scoring` that ``est.model_`` predicts exactly."""
    mask_id = _check_mask_token(est, est.tokenizer_)
    masked, labels = mask_for_scoring(est._encode(texts), est.tokenizer_, probability=probability)
    if not any((row != IGNORE).any() for row in labels):
        raise InputError(
            f"{type(est).__name__}.score: the {len(texts)} texts have no token to mask (only "
            f"special tokens). Pass texts with words in them."
        )

    def output_fn(out, inputs):
        where = inputs["masked_positions"]
        guess = torch.full(where.shape, -1.0, device=where.device)
        guess[where] = _vocab_logits(est, out).argmax(-1).float()  # logits at the masks only
        return guess

    guesses = est._predict(masked, output_fn, "score", ragged=True,
                     prepare_inputs=_mask_positions(mask_id))
    hits = total = 0
    for guess, label in zip(guesses, labels, strict=True):
        chosen = label != IGNORE
        hits += int((guess[chosen].astype(np.int64) == label[chosen]).sum())
        total += int(chosen.sum())
    return hits / total


def _mlm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if targets.numel() == 0:  # a batch of texts without maskable tokens
        return logits.sum() * 0.0
    return F.cross_entropy(logits, targets)


def has_trained_mlm_head(folder: Path) -> bool:
    """Whether the checkpoint in ``folder`` stores a masked-LM head (transform and bias)."""
    keys = set(read_state_dict(folder))
    return all(any(k.endswith(name) for k in keys) for name in _MLM_HEAD_KEYS)


# --------------------------------------------------------------------- the estimator
class BertMaskedLM(FromPretrained, BertEstimatorBase):
    """Fill in ``[MASK]`` tokens, score texts with the masked-LM objective, and continue
    BERT's masked-language-model pretraining on your own text.

    ``fit(X=None)`` only loads the checkpoint (like :class:`BertEmbedder`), which makes
    any checkpoint with a masked-LM head usable as a fill-mask at once.
    ``fit(texts)`` continues MLM training on ``texts`` (domain adaptation): each batch
    is masked anew with BERT's recipe (``mlm_probability`` of the tokens chosen; of
    those 80% become ``[MASK]``, 10% a random token, 10% stay) and the loss is the
    cross-entropy at the chosen positions. The decoder is tied to the word embeddings.

    A checkpoint without masked-LM head weights (such as the default all-MiniLM-L6-v2,
    a sentence-embedding model) gets a warning: its head starts untrained, so its
    fill-mask guesses are random until ``fit(texts)`` has trained it.

    Parameters
    ----------
    model : str or path, default="default"
        ``"default"`` (all-MiniLM-L6-v2) or a local Hugging Face-format folder, ideally
        one saved from ``BertForMaskedLM``/``BertForPreTraining`` (or by this estimator
        or :class:`BertPretrainer`).
    mlm_probability : float, default=0.15
        Fraction of the (non-special) tokens of each text chosen for prediction in
        ``fit`` and ``score``.
    whole_word : bool, default=False
        In ``fit``, choose whole words: a word's ``##`` pieces are masked together.
    top_k : int, default=5
        Fills returned per ``[MASK]`` by ``predict``.
    max_length : int, default=128
        Tokens per text (special tokens included); longer texts are truncated.
    batch_size : int, default=32
    learning_rate : float, default=5e-5
    n_epochs : int, default=3
    weight_decay : float, default=0.01
    warmup_ratio : float, default=0.1
    max_grad_norm : float or None, default=1.0
    gradient_accumulation_steps : int, default=1
    layer_lr_decay : float, default=1.0
    freeze_embeddings : bool, default=False
        Freezing them also freezes the tied decoder weight.
    freeze_layers : int, default=0
    attention, device, precision, random_state, verbose
        As in :class:`BertClassifier`.

    Attributes
    ----------
    model_ : torch.nn.Module
        Encoder and masked-LM head.
    tokenizer_ : BertTokenizer
    history_ : list of dict
        Per epoch ``epoch``, ``train_loss`` (masked-token cross-entropy), ``time_s``;
        empty after ``fit(X=None)``.
    best_epoch_ : None
    n_text_columns_ : int
        Always 1.

    Examples
    --------
    >>> from bertkit import BertMaskedLM
    >>> mlm = BertMaskedLM(model="bert-base-uncased-folder").fit()  # doctest: +SKIP
    >>> mlm.predict(["Paris is the [MASK] of France."])[0][0][:2]  # doctest: +SKIP
    [('capital', 0.99...), ('heart', 0.00...)]
    >>> mlm.fit(my_domain_texts).score(held_out_texts)  # doctest: +SKIP
    0.41...
    """

    _head = "masked_lm"
    _parameter_constraints = {
        **{k: COMMON_CONSTRAINTS[k] for k in _MODEL_PARAMS},
        "mlm_probability": [Interval(Real, 0, 1, closed="right")],
        "whole_word": ["boolean"],
        "top_k": [Interval(Integral, 1, None, closed="left")],
    }
    _fitted_json = ("history_", "best_epoch_")

    # Fixed settings the shared machinery reads: MLM texts are truncated, never windowed.
    long_text = "truncate"
    stride = 0
    window_pooling = "mean"
    n_iter_no_change = None
    validation_fraction = None

    def __init__(
        self,
        *,
        model="default",
        mlm_probability=0.15,
        whole_word=False,
        top_k=5,
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
        attention="sdpa",
        device="auto",
        precision="auto",
        random_state=None,
        verbose=False,
    ):
        self.model = model
        self.mlm_probability = mlm_probability
        self.whole_word = whole_word
        self.top_k = top_k
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
        self.attention = attention
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- fit
    def fit(self, X=None, y=None):
        """Load the checkpoint (``X=None``) or continue MLM training on the texts ``X``.

        Parameters
        ----------
        X : list, array or Series of str, or None
            Texts to train on. ``None`` loads the model without training (fill-mask
            and scoring with the checkpoint as it is).
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        texts = None if X is None else self._check_X(X, fit=True, allow_pairs=False)
        self.n_text_columns_ = 1
        start = start_fit(self)
        _check_mask_token(self, start.tokenizer)
        trained_head = has_trained_mlm_head(start.folder)
        if texts is None:
            if not trained_head:
                warnings.warn(
                    f"BertMaskedLM: {start.folder} has no trained masked-LM head (no "
                    f"{' / '.join(_MLM_HEAD_KEYS)}); the head starts untrained, so fill-mask "
                    f"predictions are random. Train it with fit(texts), or use a checkpoint saved "
                    f"from BertForMaskedLM / BertForPreTraining.",
                    UserWarning, stacklevel=2,
                )
            self.tokenizer_ = start.tokenizer
            self.model_ = self._new_model(start.folder).eval()
            self.history_, self.best_epoch_ = [], None
            return self
        if not trained_head:
            warnings.warn(
                f"BertMaskedLM: {start.folder} has no trained masked-LM head; the head starts "
                f"untrained and fit trains it from scratch (expect to need more data and epochs "
                f"than with a checkpoint that has one).",
                UserWarning, stacklevel=2,
            )
        encoded = self._encode(texts, start.tokenizer)
        if not (encoded.lengths > start.tokenizer.num_special_tokens_to_add(False)).any():
            raise InputError(
                f"BertMaskedLM.fit: none of the {len(texts)} texts has a token to mask (they "
                f"are empty after tokenisation). Pass texts with words in them."
            )
        masker = _Masker(start.tokenizer, probability=self.mlm_probability, whole_word=self.whole_word,
                         rng=np.random.default_rng(start.seed))

        def prepare_batch(inputs, examples):
            masked, labels = masker(inputs["input_ids"], inputs["attention_mask"])
            selected = labels != IGNORE  # the head computes logits at these positions only
            return {**inputs, "input_ids": masked, "masked_positions": selected}, labels[selected]

        train_model(
            self, start, encoded, None, lambda logits, targets, weights: _mlm_loss(logits, targets),
            output_fn=lambda out, inputs: out["logits"],  # (masked, vocab)
            prepare_batch=prepare_batch,
        )
        return self

    _fit_call = "fit(texts)"
    _trained_by = ("BertForMaskedLM", "BertForPreTraining")

    def _adopt_config(self, config) -> None:
        """Single texts with a ``[MASK]`` token; nothing learned from labels."""
        _check_mask_token(self, self.tokenizer_)
        self.n_text_columns_ = 1

    # ----------------------------------------------------------------- predict
    def predict(self, X) -> list[list[list[tuple[str, float]]]]:
        """The ``top_k`` most likely tokens for every ``[MASK]`` of every text.

        Parameters
        ----------
        X : list, array or Series of str
            Texts, each with one or more ``[MASK]`` tokens (the tokenizer's mask token,
            written exactly so).

        Returns
        -------
        list
            One entry per text; in it one list per ``[MASK]`` (left to right); in that
            the ``top_k`` pairs ``(token, probability)``, most likely first. Tokens are
            vocabulary entries (a ``##`` piece continues the word before it).

        Raises
        ------
        bertkit.InputError
            A text has no ``[MASK]``, or one falls beyond ``max_length``.

        Examples
        --------
        >>> mlm.predict(["the cat sat on the [MASK] ."])  # doctest: +SKIP
        [[[('mat', 0.92), ('floor', 0.03), ...]]]
        """
        check_is_fitted(self, "model_", msg=_NOT_FITTED)
        texts = self._check_X(X, fit=False, allow_pairs=False)
        tokenizer = self.tokenizer_
        mask_id = _check_mask_token(self, tokenizer)
        encoded = self._encode(texts)
        found = [int((ids == mask_id).sum()) for ids in encoded.input_ids]
        for i, text in enumerate(texts.first):
            written = text.count(tokenizer.mask_token)
            if found[i] == 0 and written == 0:
                raise InputError(
                    f"BertMaskedLM.predict fills {tokenizer.mask_token} tokens, but text {i} has "
                    f"none: {text!r:.60}. Write {tokenizer.mask_token} (exactly so) where a word "
                    f"is missing, e.g. 'Paris is the {tokenizer.mask_token} of France.'"
                )
            if found[i] < written:
                raise InputError(
                    f"BertMaskedLM.predict: text {i} has {written} {tokenizer.mask_token} but only "
                    f"{found[i]} fall within max_length={self.max_length} tokens. Shorten the "
                    f"text around the mask or raise max_length."
                )
        k = min(self.top_k, len(tokenizer))

        def output_fn(out, inputs):
            where = inputs["masked_positions"]
            probs = out["logits"].float().softmax(-1)  # (masks, vocab): logits at the masks only
            top = probs.topk(k, dim=-1)
            result = torch.full((*where.shape, 2 * k), float("nan"), device=where.device)
            result[where] = torch.cat([top.values, top.indices.float()], dim=-1)
            return result  # (b, s, 2k): k probabilities, then their token ids

        values = self._predict(encoded, output_fn, "predict", ragged=True,
                        prepare_inputs=_mask_positions(mask_id))
        out = []
        for ids, row in zip(encoded.input_ids, values, strict=True):
            fills = []
            for position in np.flatnonzero(ids == mask_id):
                tokens = tokenizer.convert_ids_to_tokens([int(i) for i in row[position, k:]])
                fills.append([(t, float(p)) for t, p in zip(tokens, row[position, :k], strict=True)])
            out.append(fills)
        return out

    def score(self, X, y=None) -> float:
        """Masked-token accuracy on a seeded random masking of ``X``.

        ``mlm_probability`` of each text's tokens (at least one) are replaced by
        ``[MASK]`` (all of them: no random or kept tokens, unlike training), chosen
        with a fixed seed so that the same texts get the same masks for every model;
        the score is the share of them whose original token is the top prediction.

        Parameters
        ----------
        X : list, array or Series of str
        y : ignored

        Returns
        -------
        float
        """
        check_is_fitted(self, "model_", msg=_NOT_FITTED)
        texts = self._check_X(X, fit=False, allow_pairs=False)
        return masked_lm_accuracy(self, texts, self.mlm_probability)

    def pseudo_perplexity(self, X, *, per_text: bool = False):
        """Pseudo-perplexity (Salazar et al., 2020): mask each token in turn.

        For a text of ``n`` tokens (special tokens excluded) the model runs on ``n``
        copies, each with one token replaced by ``[MASK]``, and reads the log-probability
        of the original token. The result is ``exp(-mean log p)`` over all tokens of all
        texts (or per text). Cost: ``n`` forward passes of length ``n`` per text, i.e.
        quadratic in the text length; copies are batched like any inference
        (``batch_size * max_length`` tokens per batch).

        Parameters
        ----------
        X : list, array or Series of str
        per_text : bool, default=False
            Return one value per text instead of one for the whole input.

        Returns
        -------
        float or ndarray of shape (n_texts,)

        Examples
        --------
        >>> mlm.pseudo_perplexity(["the cat sat on the mat ."])  # doctest: +SKIP
        3.1...
        """
        check_is_fitted(self, "model_", msg=_NOT_FITTED)
        texts = self._check_X(X, fit=False, allow_pairs=False)
        mask_id = _check_mask_token(self, self.tokenizer_)
        special = set(self.tokenizer_.all_special_ids)
        encoded = self._encode(texts)
        rows, masked_at, owner = [], [], []
        for i, ids in enumerate(encoded.input_ids):
            positions = [j for j, t in enumerate(ids) if int(t) not in special]
            if not positions:
                raise InputError(
                    f"BertMaskedLM.pseudo_perplexity: text {i} has no token to score "
                    f"({texts.first[i]!r:.60}). Drop empty texts first."
                )
            rows.extend([ids] * len(positions))
            masked_at.extend(positions)
            owner.extend([i] * len(positions))
        copies = Encoded(rows, None, np.arange(len(rows)), len(rows))
        masked_at = torch.as_tensor(masked_at, dtype=torch.long)  # per copy, the position to mask
        state: dict = {}

        def prepare_inputs(inputs, batch_rows):
            ids = inputs["input_ids"]
            where = torch.zeros_like(ids, dtype=torch.bool)  # (b, s), one True per row
            where[torch.arange(len(batch_rows)), masked_at[torch.as_tensor(batch_rows)].to(ids.device)] = True
            state["target"] = ids[where]  # (b,), in row order like the head's logits
            inputs["input_ids"] = ids.masked_fill(where, mask_id)
            inputs["masked_positions"] = where
            return inputs

        def output_fn(out, inputs):
            logits = out["logits"].float()  # (b, vocab): at the masked position of each row
            return logits.log_softmax(-1).gather(1, state["target"].unsqueeze(1)).squeeze(1)

        log_p = self._predict(copies, output_fn, "pseudo_perplexity", prepare_inputs=prepare_inputs)
        owner = np.asarray(owner)
        total = np.bincount(owner, weights=log_p.astype(np.float64), minlength=len(texts))
        count = np.bincount(owner, minlength=len(texts))
        if per_text:
            return np.exp(-total / count)
        return float(np.exp(-total.sum() / count.sum()))
