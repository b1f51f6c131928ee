"""BertPretrainer: BERT's own pretraining (masked LM + next-sentence prediction), from
scratch or from a checkpoint, optionally with a WordPiece vocabulary trained on the corpus."""

from __future__ import annotations

import dataclasses
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .. import plugins
from .._errors import InputError
from ..config import BertConfig
from ..datasets import make_nsp_pairs
from ..heads import BertTaskModel
from ..tokenizer import BertTokenizer
from ..training import Encoded
from ._base import COMMON_CONSTRAINTS, BertEstimatorBase
from ._fitting import FitStart, start_fit, train_model
from ._input import TextColumns
from ._masked_lm import (
    _MODEL_PARAMS,
    IGNORE,
    _check_mask_token,
    _Masker,
    _mlm_loss,
    masked_lm_accuracy,
)

__all__ = ["BertPretrainer", "CONFIG_PRESETS", "train_wordpiece"]

#: Model sizes for ``config=`` (the BERT miniatures of Turc et al., 2019, and BERT-base).
CONFIG_PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
    "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "small": dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048),
    "medium": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=2048),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}

_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(BertConfig) if f.name != "extras")


def train_wordpiece(texts, vocab_size: int, *, min_frequency: int = 2, model_max_length: int = 512) -> BertTokenizer:
    """Train a lowercase WordPiece vocabulary on ``texts`` and return its BERT tokenizer.

    Uses the ``tokenizers`` library's ``WordPieceTrainer`` with BERT's normalizer
    (lowercasing, accent stripping) and pre-tokenizer; the five BERT special tokens
    get ids 0-4 (``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``).

    Parameters
    ----------
    texts : iterable of str
    vocab_size : int
        Upper bound of the vocabulary size (special tokens and the alphabet included).
    min_frequency : int, default=2
        Merges seen fewer times are not made.
    model_max_length : int, default=512

    Returns
    -------
    BertTokenizer

    Examples
    --------
    >>> from bertkit.estimators._pretrainer import train_wordpiece
    >>> tok = train_wordpiece(["the cat sat on the mat"] * 5, vocab_size=60)
    >>> tok.tokenize("The cat")
    ['the', 'cat']
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
    from tokenizers.models import WordPiece

    backend = Tokenizer(WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=_SPECIALS,
        continuing_subword_prefix="##", show_progress=False,
    )
    backend.train_from_iterator(iter(texts), trainer=trainer)
    vocab = backend.get_vocab()
    return BertTokenizer.from_vocab(sorted(vocab, key=vocab.get), model_max_length=model_max_length)


class BertPretrainer(BertEstimatorBase):
    """Pretrain BERT with its own objective: masked LM plus next-sentence prediction.

    From scratch (``config``: a preset size or a dict of :class:`BertConfig` fields;
    random weights) or from a checkpoint (``model``, with ``config=None``). The
    corpus is a list of documents, each a list of sentences or longer segments
    (paragraphs), e.g. the ``sentences`` column of :func:`bertkit.datasets.read_text_documents`
    or :func:`bertkit.datasets.read_wikitext`. Every epoch pairs each segment with the
    next one of its document or, half the time, a random segment of another document
    (:func:`bertkit.datasets.make_nsp_pairs`, reseeded per epoch, handed to the training
    loop as each epoch's data); each batch is masked
    anew (BERT's 80/10/10). The loss is the masked-token cross-entropy plus the NSP
    cross-entropy. A pair longer than ``max_length`` is truncated (longest segment first).

    With ``train_tokenizer=True`` a lowercase WordPiece vocabulary of at most
    ``vocab_size`` tokens is first trained on the corpus (:func:`train_wordpiece`).

    ``save(folder)`` writes a plain checkpoint (config.json, model.safetensors,
    tokenizer files) that every estimator accepts as ``model=folder``; loaded by
    :class:`BertMaskedLM` it is a fill-mask model.

    Parameters
    ----------
    model : str or path, default="default"
        The checkpoint to continue from (``config=None``); with ``config`` set and
        ``train_tokenizer=False``, only its tokenizer is used.
    config : {"tiny", "mini", "small", "medium", "base"}, dict or None, default=None
        Train from scratch with this architecture: a preset of :data:`CONFIG_PRESETS`
        (tiny: 2 layers x 128, mini: 4 x 256, small: 4 x 512, medium: 8 x 512, base:
        12 x 768) or a dict of :class:`BertConfig` fields (missing ones take BERT-base
        defaults). ``vocab_size`` and ``pad_token_id`` always come from the tokenizer.
    train_tokenizer : bool, default=False
        Train a new WordPiece vocabulary on the corpus (needs ``config``: a checkpoint's
        embeddings belong to its own vocabulary).
    vocab_size : int, default=8000
        Size limit of the trained vocabulary.
    mlm_probability : float, default=0.15
    whole_word : bool, default=False
        Mask whole words (a word and its ``##`` pieces together).
    max_length : int, default=128
        Tokens per pair, special tokens included.
    batch_size : int, default=32
    learning_rate : float, default=1e-4
        BERT's pretraining rate; tiny models from scratch learn faster with ~1e-3.
    n_epochs : int, default=3
    weight_decay : float, default=0.01
    warmup_ratio : float, default=0.1
    max_grad_norm : float or None, default=1.0
    gradient_accumulation_steps : int, default=1
    layer_lr_decay : float, default=1.0
    freeze_embeddings : bool, default=False
    freeze_layers : int, default=0
    attention, device, precision, random_state, verbose
        As in :class:`BertClassifier`.

    Attributes
    ----------
    model_ : torch.nn.Module
        Encoder with the pretraining heads (``cls.predictions``, ``cls.seq_relationship``).
    tokenizer_ : BertTokenizer
        The trained one with ``train_tokenizer=True``, else the checkpoint's.
    history_ : list of dict
        Per epoch ``epoch``, ``train_loss`` (MLM + NSP cross-entropy), ``time_s``.
    best_epoch_ : None
    n_pairs_ : int
        Sentence pairs per epoch.

    Examples
    --------
    >>> from bertkit.datasets import read_wikitext
    >>> from bertkit import BertPretrainer
    >>> docs = read_wikitext("wiki.valid.raw")  # doctest: +SKIP
    >>> pre = BertPretrainer(config="mini", train_tokenizer=True, vocab_size=8000,
    ...                      learning_rate=1e-3, n_epochs=5).fit(docs)  # doctest: +SKIP
    >>> pre.score(read_wikitext("wiki.test.raw"))  # doctest: +SKIP
    0.2...
    >>> pre.save("my-bert")  # then BertClassifier(model="my-bert")  # doctest: +SKIP
    """

    _head = "pretraining"
    _parameter_constraints = {
        **{k: COMMON_CONSTRAINTS[k] for k in _MODEL_PARAMS},
        "config": [StrOptions(set(CONFIG_PRESETS)), dict, None],
        "train_tokenizer": ["boolean"],
        "vocab_size": [Interval(Integral, 16, None, closed="left")],
        "mlm_probability": [Interval(Real, 0, 1, closed="right")],
        "whole_word": ["boolean"],
    }
    _fitted_json = ("history_", "best_epoch_", "n_pairs_")

    long_text = "truncate"
    stride = 0
    window_pooling = "mean"
    n_iter_no_change = None
    validation_fraction = None

    def __init__(
        self,
        *,
        model="default",
        config=None,
        train_tokenizer=False,
        vocab_size=8000,
        mlm_probability=0.15,
        whole_word=False,
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
        attention="sdpa",
        device="auto",
        precision="auto",
        random_state=None,
        verbose=False,
    ):
        self.model = model
        self.config = config
        self.train_tokenizer = train_tokenizer
        self.vocab_size = vocab_size
        self.mlm_probability = mlm_probability
        self.whole_word = whole_word
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

    # ----------------------------------------------------------------- input
    def _documents(self, X, where: str) -> list[list[str]]:
        """``X`` as a list of documents, each a list of str."""
        owner = f"BertPretrainer.{where}"
        if isinstance(X, pd.DataFrame):
            if "sentences" not in X.columns:
                raise InputError(
                    f"{owner} takes a DataFrame with a 'sentences' column (a list of str per "
                    f"document), as read_text_documents and read_wikitext return. Got columns "
                    f"{[str(c) for c in X.columns]}."
                )
            X = X["sentences"].tolist()
        elif isinstance(X, pd.Series):
            X = X.tolist()
        if isinstance(X, str) or X is None or not hasattr(X, "__len__"):
            raise InputError(
                f"{owner} expects a list of documents, each a list of sentences (or a DataFrame "
                f"with a 'sentences' column). Got {type(X).__name__}."
            )
        documents = []
        for i, document in enumerate(X):
            if isinstance(document, str):
                raise InputError(
                    f"{owner} expects a list of documents, each a list of sentences; document {i} "
                    f"is a str ({document!r:.40}). Split documents into sentences (e.g. with "
                    f"bertkit.datasets.read_text_documents), or use BertMaskedLM for plain texts."
                )
            if not isinstance(document, list | tuple | np.ndarray):
                raise InputError(
                    f"{owner}: document {i} is a {type(document).__name__}, not a list of "
                    f"sentences (str)."
                )
            for j, sentence in enumerate(document):
                if not isinstance(sentence, str):
                    raise InputError(
                        f"{owner}: sentence {j} of document {i} is a {type(sentence).__name__} "
                        f"({sentence!r:.40}), not a str. Every sentence must be a str; drop or "
                        f"convert the others."
                    )
            documents.append([str(s) for s in document])
        if not documents:
            raise InputError(f"{owner} got no documents: it needs at least one.")
        return documents

    # ----------------------------------------------------------------- model
    def _architecture(self, tokenizer) -> BertConfig:
        """The config of a model trained from scratch (``self.config`` set)."""
        if isinstance(self.config, str):
            fields = dict(CONFIG_PRESETS[self.config])
        else:
            unknown = sorted(set(self.config) - set(_CONFIG_FIELDS))
            if unknown:
                raise InputError(
                    f"The 'config' parameter of BertPretrainer has unknown BertConfig fields "
                    f"{unknown}. Known fields: {list(_CONFIG_FIELDS)}."
                )
            fields = dict(self.config)
        fields.update(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id or 0)
        try:
            config = BertConfig(**fields)
        except (TypeError, ValueError) as err:
            raise InputError(f"The 'config' parameter of BertPretrainer is not a valid BertConfig: {err}") from err
        if config.max_position_embeddings < self.max_length:
            raise InputError(
                f"BertPretrainer: max_length={self.max_length} exceeds the config's "
                f"max_position_embeddings={config.max_position_embeddings}. Lower max_length or "
                f"raise max_position_embeddings in config."
            )
        return config

    def _new_model(self, folder, **head_options) -> torch.nn.Module:
        scratch = getattr(self, "_scratch_config", None)
        if scratch is None:
            return super()._new_model(folder, **head_options)
        return BertTaskModel(scratch, plugins.get("head", self._head), self._head, attention=self.attention)

    def _start(self, documents: list[list[str]]) -> FitStart:
        if self.config is None:
            if self.train_tokenizer:
                raise InputError(
                    "BertPretrainer: train_tokenizer=True makes a new vocabulary, which the "
                    "embeddings of a pretrained checkpoint do not match. Set config (e.g. "
                    "config='mini') to train from scratch, or leave train_tokenizer=False."
                )
            return start_fit(self)
        if not self.train_tokenizer:
            return start_fit(self)  # the checkpoint's tokenizer, fresh weights
        tokenizer = train_wordpiece((s for doc in documents for s in doc), self.vocab_size)
        return FitStart(None, tokenizer, self._seed(), tokenizer.pad_token_id or 0)

    # ----------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Pretrain on the documents ``X``.

        Parameters
        ----------
        X : list of lists of str, or DataFrame with a ``sentences`` column
            Documents, each a list of consecutive sentences or segments. At least two
            documents, one of them with two or more segments (NSP needs a next segment
            and a random one from another document).
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        documents = self._documents(X, "fit")
        sizes = [len(d) for d in documents]
        if sum(n > 0 for n in sizes) < 2 or max(sizes) < 2:
            raise InputError(
                f"BertPretrainer.fit needs at least 2 non-empty documents and one with 2 or more "
                f"sentences (next-sentence pairs need a following sentence and a random one from "
                f"another document). Got {len(documents)} documents with at most {max(sizes)} "
                f"sentences."
            )
        start = self._start(documents)
        tokenizer = start.tokenizer
        _check_mask_token(self, tokenizer)
        self._scratch_config = None if self.config is None else self._architecture(tokenizer)

        # Each sentence is tokenised once; every epoch's pairs are put together from the pieces.
        unique = list(dict.fromkeys(s for doc in documents for s in doc))
        encoded = tokenizer(unique, add_special_tokens=False, truncation=True, max_length=self.max_length,
                            return_token_type_ids=False, return_attention_mask=False)["input_ids"]
        pieces = {s: np.asarray(ids, dtype=np.int32) for s, ids in zip(unique, encoded, strict=True)}

        def epoch_pairs(epoch: int):
            pairs = make_nsp_pairs(documents, rng=np.random.default_rng([start.seed, epoch]))
            rows = _pair_rows(pairs["first"].tolist(), pairs["second"].tolist(), pieces, tokenizer, self.max_length)
            return rows, torch.tensor(pairs["label"].to_numpy())

        first, labels = epoch_pairs(0)
        masker = _Masker(tokenizer, probability=self.mlm_probability, whole_word=self.whole_word,
                         rng=np.random.default_rng(start.seed))
        state = {"labels": labels}  # the NSP labels of the current epoch's pairs

        def next_epoch(epoch: int):
            # New pairs every epoch: the pair at index i always starts with the same
            # sentence; its second sentence and label change.
            rows, state["labels"] = epoch_pairs(epoch)
            return rows, state["labels"]

        def prepare_batch(inputs, examples):
            masked, mlm_labels = masker(inputs["input_ids"], inputs["attention_mask"])
            selected = mlm_labels != IGNORE  # the head computes vocabulary logits here only
            nsp = state["labels"][torch.from_numpy(np.asarray(examples))].to(inputs["input_ids"].device)
            return ({**inputs, "input_ids": masked, "masked_positions": selected},
                    (mlm_labels[selected], nsp))

        def output_fn(out, inputs):
            return out["prediction_logits"], out["seq_relationship_logits"]  # (masked, vocab), (b, 2)

        def loss_fn(outputs, targets, weights):
            (mlm_logits, nsp_logits), (mlm_targets, nsp_targets) = outputs, targets
            return _mlm_loss(mlm_logits, mlm_targets) + F.cross_entropy(nsp_logits, nsp_targets)

        try:
            train_model(self, start, first, labels, loss_fn, output_fn=output_fn,
                        prepare_batch=prepare_batch, epoch_data=next_epoch)
        finally:
            del self._scratch_config
        self.n_pairs_ = first.n_examples
        return self

    # ----------------------------------------------------------------- score
    def score(self, X, y=None) -> float:
        """Masked-LM accuracy on the sentences of the documents ``X``.

        Every sentence is scored on its own, masked as :meth:`BertMaskedLM.score` does
        (a fixed seed; ``mlm_probability`` of the tokens, all replaced by ``[MASK]``).

        Parameters
        ----------
        X : list of lists of str, or DataFrame with a ``sentences`` column
        y : ignored

        Returns
        -------
        float
        """
        check_is_fitted(self, "model_")
        sentences = [s for doc in self._documents(X, "score") for s in doc]
        if not sentences:
            raise InputError("BertPretrainer.score got documents without sentences; pass some text.")
        return masked_lm_accuracy(self, TextColumns(sentences, None, None), self.mlm_probability)

    def save(self, folder) -> Path:
        """Write the model as a checkpoint folder that every estimator takes as ``model=``.

        ``config.json``, ``model.safetensors`` (``BertForPreTraining`` layout),
        the tokenizer files and ``bertkit.json`` (for :func:`bertkit.load`).

        Examples
        --------
        >>> pre.save("my-bert")  # doctest: +SKIP
        >>> BertClassifier(model="my-bert").fit(texts, labels)  # doctest: +SKIP
        """
        return super().save(folder)


def _pair_rows(firsts, seconds, pieces: dict, tokenizer, max_length: int) -> Encoded:
    """``[CLS] A [SEP] B [SEP]`` rows from the tokens of each sentence, cut to ``max_length``
    by trimming the end of the longer segment first (the tokenizer's ``longest_first``)."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    budget = max_length - 3
    ids, types = [], []
    for first, second in zip(firsts, seconds, strict=True):
        a, b = pieces[first], pieces[second]
        keep_a, keep_b = len(a), len(b)
        if keep_a + keep_b > budget:
            short = min(keep_a, keep_b, budget // 2)
            keep_a, keep_b = (budget - short, short) if keep_a > keep_b else (short, budget - short)
        ids.append(np.concatenate([[cls], a[:keep_a], [sep], b[:keep_b], [sep]]).astype(np.int32))
        types.append(np.repeat(np.array([0, 1], dtype=np.int8), [keep_a + 2, keep_b + 1]))
    return Encoded(ids, types, np.arange(len(ids)), len(ids))
