"""What every bertkit estimator shares: parameters, model loading, tokenisation, persistence.

Estimators stay thin: they validate input, pick a head, call the shared fit loop
(:mod:`bertkit.training`) and decode outputs into scikit-learn shapes. The
pieces here are deliberately separate: parameter checks, the process-wide caches
that make grid searches cheap, and persistence (pickle and ``save``/``load``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
import warnings
from collections import OrderedDict
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .. import plugins
from .._errors import InputError
from ..checkpoint import load_pretrained, load_state, read_state_dict, state_to_save, without_head
from ..config import BertConfig
from ..heads import BertTaskModel
from ..modeling import BertModel
from ..sources import resolve_model
from ..tokenizer import load_tokenizer
from ..training import Encoded, TrainSettings, _loop, predict_rows
from ..training._loop import progress_bar
from ._input import TextColumns, check_texts

__all__ = ["BertEstimatorBase", "COMMON_CONSTRAINTS", "ESTIMATORS", "load"]

META_FILE = "bertkit.json"
#: ``transform``/``predict`` tokenise and run this many texts at a time.
STREAM_TEXTS = 8192
#: The most tokens consecutive windows share when ``stride=None`` (a quarter of max_length below 128).
DEFAULT_STRIDE = 32

#: Estimator classes by name, for :func:`bertkit.load` (filled by ``__init_subclass__``).
ESTIMATORS: dict[str, type] = {}

COMMON_CONSTRAINTS: dict[str, list] = {
    "model": [str, os.PathLike],
    "max_length": [Interval(Integral, 8, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "n_epochs": [Interval(Integral, 1, None, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "warmup_ratio": [Interval(Real, 0, 1, closed="both")],
    "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
    "gradient_accumulation_steps": [Interval(Integral, 1, None, closed="left")],
    "layer_lr_decay": [Interval(Real, 0, 1, closed="right")],
    "freeze_embeddings": ["boolean"],
    "freeze_layers": [Interval(Integral, 0, None, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
    "long_text": [StrOptions({"truncate", "window"})],
    "stride": [Interval(Integral, 0, None, closed="left"), None],
    "window_pooling": [StrOptions({"mean", "max"})],
    "attention": [str],
    "device": [str],
    "precision": [StrOptions({"auto", "fp32", "bf16", "fp16", "int8"})],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


# --------------------------------------------------------------------- process-wide caches
class _Caches:
    """Shared by every estimator (and every clone in a grid search) in this process.

    ``texts`` maps ``(settings, key)`` to what tokenising ``key`` under ``settings`` gave,
    least recently used first; it holds at most ``max_texts`` entries and about
    ``max_bytes`` of arrays, so a long-running process that sees ever new texts keeps a
    bounded cache.
    """

    def __init__(self, max_texts: int = 500_000, max_bytes: int = 256 * 2**20):
        self.lock = threading.RLock()
        self.tokenizers: dict[str, Any] = {}
        self.texts: OrderedDict[tuple, Any] = OrderedDict()
        self.max_texts = max_texts
        self.max_bytes = max_bytes
        self.n_bytes = 0

    def tokenizer(self, folder: Path):
        key = _folder_key(folder)
        with self.lock:
            if key not in self.tokenizers:
                tokenizer = load_tokenizer(folder)
                tokenizer._bertkit_fingerprint = _fingerprint(tokenizer)
                self.tokenizers[key] = tokenizer
            return self.tokenizers[key]

    def tokenised(self, settings: tuple, keys: list, encode, chunk: int = 4096) -> list:
        """What tokenising each of ``keys`` under ``settings`` gives, in order.

        ``encode(keys) -> {key: value}`` tokenises what the cache lacks, ``chunk`` keys
        at a time. Every value of this call is returned even when the cache's bounds
        evict it at once (an input larger than the cache).
        """
        unique = list(dict.fromkeys(keys))
        found: dict = {}
        with self.lock:
            for key in unique:
                value = self.texts.get((settings, key))
                if value is not None:
                    self.texts.move_to_end((settings, key))
                    found[key] = value
        todo = [key for key in unique if key not in found]
        for begin in range(0, len(todo), chunk):
            fresh = encode(todo[begin:begin + chunk])
            found.update(fresh)
            with self.lock:
                for key, value in fresh.items():
                    old = self.texts.pop((settings, key), None)
                    if old is not None:
                        self.n_bytes -= _nbytes(old)
                    self.texts[(settings, key)] = value
                    self.n_bytes += _nbytes(value)
                while self.texts and (len(self.texts) > self.max_texts or self.n_bytes > self.max_bytes):
                    self.n_bytes -= _nbytes(self.texts.popitem(last=False)[1])
        return [found[key] for key in keys]

    def clear(self) -> None:
        with self.lock:
            self.tokenizers.clear()
            self.texts.clear()
            self.n_bytes = 0


def _nbytes(value) -> int:
    """About how much memory a cached value holds (arrays, in tuples and lists)."""
    if isinstance(value, np.ndarray):
        return value.nbytes + 112
    if isinstance(value, (tuple, list)):
        return 56 + 8 * len(value) + sum(_nbytes(v) for v in value)
    return 32


CACHES = _Caches()


def _folder_key(folder: Path) -> str:
    stats = [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(Path(folder).iterdir()) if p.is_file()]
    return f"{Path(folder).resolve()}|{hash(tuple(stats))}"


def _fingerprint(tokenizer) -> str:
    cached = getattr(tokenizer, "_bertkit_fingerprint", None)
    if cached is None:
        cached = hashlib.sha1(tokenizer.backend.to_str().encode("utf-8")).hexdigest()
        tokenizer._bertkit_fingerprint = cached
    return cached


logger = logging.getLogger(__name__)


# --------------------------------------------------------------------- the base class
class BertEstimatorBase(BaseEstimator):
    """Shared machinery of bertkit estimators. Not for direct use.

    Subclasses set ``_head`` (a registered head name, or None for the bare encoder),
    ``_fitted_json`` (fitted attributes that ``save`` writes to bertkit.json) and
    optionally ``_forward_kwargs``.
    """

    _parameter_constraints: ClassVar[dict] = dict(COMMON_CONSTRAINTS)
    _head: ClassVar[str | None] = None
    _fitted_json: ClassVar[tuple[str, ...]] = ()
    #: Passed to every model call in fit and predict; heads that read only the pooled
    #: first token set ``{"first_token_only": True}`` (a cheaper last layer).
    _forward_kwargs: ClassVar[dict] = {}
    #: What ``fit`` passes instead, where it differs (None: ``_forward_kwargs``).
    _fit_forward_kwargs: ClassVar[dict | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            ESTIMATORS[cls.__name__] = cls

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.non_deterministic = getattr(self, "random_state", 0) is None
        return tags

    # ----------------------------------------------------------------- input
    def _check_X(self, X, *, fit: bool, allow_pairs: bool = True) -> TextColumns:
        texts = check_texts(
            X, type(self).__name__,
            n_columns=None if fit else getattr(self, "n_text_columns_", None),
            allow_pairs=allow_pairs,
        )
        if fit:
            self.n_text_columns_ = texts.n_columns
            if texts.names is not None:
                self.feature_names_in_ = np.asarray(texts.names, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        return texts

    def _check_lengths(self, texts: TextColumns, y) -> None:
        n_y = len(y) if hasattr(y, "__len__") else None
        if n_y != len(texts):
            raise InputError(
                f"{type(self).__name__}: X and y have different lengths ({len(texts)} texts, "
                f"{n_y} targets). Pass one target per text."
            )

    # ----------------------------------------------------------------- backbone
    def _resolve_source(self) -> Path:
        return resolve_model(self.model)

    def _load_tokenizer(self, folder: Path) -> Any:
        return CACHES.tokenizer(folder)

    def _new_model(self, folder: Path, **head_options) -> torch.nn.Module:
        """A fresh model from the checkpoint in ``folder``; weights come from the shared cache.

        A task head the checkpoint already has is kept (fine-tuning goes on from it) when
        it fits: the same shapes and, where ``labels`` are given, the same label names in
        the same order. Otherwise the head starts anew, as it does from a bare encoder.
        """
        config = BertConfig.from_json_file(folder)
        state = read_state_dict(folder)
        if self._head is None:
            model = BertModel(config, attention=self.attention)
        else:
            saved_labels = config.label_names
            head_class = plugins.get("head", self._head)
            model = BertTaskModel(config, head_class, self._head, attention=self.attention, **head_options)
            labels = head_options.get("labels")
            state, dropped = without_head(
                model, state, whole=labels is not None and saved_labels != [str(x) for x in labels]
            )
            if dropped:
                logger.info("%s starts a new %s head: the one in %s is for other labels (%s)",
                            type(self).__name__, self._head, folder, ", ".join(dropped))
        with warnings.catch_warnings():
            # A newly initialised head is the point of fine-tuning; don't warn about it.
            warnings.filterwarnings("ignore", message=".*head of this model is newly initialised")
            load_state(model, state, source=folder)
        return model

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.SeedSequence().generate_state(1)[0])
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(0, 2**31 - 1))
        return int(self.random_state)

    def _settings(self, seed: int) -> TrainSettings:
        return TrainSettings(
            learning_rate=self.learning_rate,
            n_epochs=self.n_epochs,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
            warmup_ratio=self.warmup_ratio,
            max_grad_norm=self.max_grad_norm,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            layer_lr_decay=self.layer_lr_decay,
            freeze_embeddings=self.freeze_embeddings,
            freeze_layers=self.freeze_layers,
            n_iter_no_change=getattr(self, "n_iter_no_change", None),
            device=self.device,
            precision=self.precision,
            verbose=bool(self.verbose),
            random_state=seed,
            window_pooling=getattr(self, "window_pooling", "mean"),
        )

    # ----------------------------------------------------------------- tokenisation
    def _encode(self, texts: TextColumns, tokenizer=None) -> Encoded:
        """Tokenise (with the process-wide cache): one row per text, or per window."""
        tokenizer = tokenizer if tokenizer is not None else self.tokenizer_
        # Estimators without these parameters (multiple choice, NSP) truncate.
        window = getattr(self, "long_text", "truncate") == "window"
        stride = self._window_stride() if window else 0
        if window:
            self._check_stride(tokenizer.num_special_tokens_to_add(texts.second is not None))
        settings = (_fingerprint(tokenizer), self.max_length, window, stride)
        keys = texts.keys()
        pairs = texts.second is not None
        cached = CACHES.tokenised(
            settings, keys, lambda chunk: self._tokenise_texts(tokenizer, chunk, pairs=pairs, window=window, stride=stride))
        input_ids, token_types, owner = [], [], []
        for i, rows in enumerate(cached):
            for ids, types in rows:
                input_ids.append(ids)
                token_types.append(types)
                owner.append(i)
        return Encoded(
            input_ids=input_ids,
            token_type_ids=token_types if texts.second is not None else None,
            owner=np.asarray(owner, dtype=np.int64),
            n_examples=len(keys),
        )

    def _window_stride(self) -> int:
        """Tokens shared by consecutive windows: ``stride``, or for None a quarter of ``max_length``, at most 32."""
        stride = getattr(self, "stride", 0)
        return min(DEFAULT_STRIDE, self.max_length // 4) if stride is None else int(stride)

    def _check_stride(self, n_special: int) -> None:
        """Refuse a stride with which windows of ``max_length`` (``n_special`` of them special) would not advance."""
        stride = self._window_stride()  # None always passes: max_length >= 8
        if stride >= self.max_length - n_special:
            raise InputError(
                f"The 'stride' parameter of {type(self).__name__} ({stride}) must be smaller than "
                f"max_length ({self.max_length}) minus the {n_special} special tokens; windows would "
                f"not advance. Lower stride or raise max_length."
            )

    def _tokenise_texts(self, tokenizer, keys, *, pairs: bool, window: bool, stride: int) -> dict:
        """Per key (a text, or a pair), its rows: ``(input_ids, token_type_ids or None)`` per window."""
        first = [k[0] for k in keys] if pairs else list(keys)
        second = [k[1] for k in keys] if pairs else None
        try:
            enc = tokenizer(
                first, second,
                truncation=("only_second" if pairs else "longest_first") if window else "longest_first",
                max_length=self.max_length,
                stride=stride,
                return_overflowing_tokens=window,
                return_attention_mask=False,
            )
        except Exception as err:  # the Rust tokenizer refuses impossible windows
            raise InputError(
                f"{type(self).__name__} could not split the input into windows of max_length="
                f"{self.max_length}: {err}. With text pairs, windows slide over the second text; "
                f"the first must fit in max_length with room to spare."
            ) from err
        mapping = enc.get("overflow_to_sample_mapping", range(len(keys)))
        entries: dict[Any, list] = {k: [] for k in keys}
        for row, sample in enumerate(mapping):
            ids = np.asarray(enc["input_ids"][row], dtype=np.int32)
            types = np.asarray(enc["token_type_ids"][row], dtype=np.int8) if pairs else None
            entries[keys[sample]].append((ids, types))
        return entries

    # ----------------------------------------------------------------- inference
    def _run(self, texts: TextColumns, output_fn, desc: str, forward_kwargs: dict | None = None) -> np.ndarray:
        """``output_fn`` per text (windows pooled), for validated ``texts``.

        Streams: ``STREAM_TEXTS`` texts at a time are tokenised and run into one
        preallocated array, so the token ids held at once do not grow with the input.
        """
        forward_kwargs = {**self._forward_kwargs, **(forward_kwargs or {})}
        n = len(texts)
        if n <= STREAM_TEXTS:
            return self._predict(self._encode(texts), output_fn, desc, forward_kwargs=forward_kwargs)
        out = None
        with progress_bar(n, f"{type(self).__name__}.{desc}", bool(self.verbose), unit="text") as bar:
            for begin in range(0, n, STREAM_TEXTS):
                index = np.arange(begin, min(begin + STREAM_TEXTS, n))
                values = self._predict(self._encode(texts.take(index)), output_fn, desc,
                                       forward_kwargs=forward_kwargs, verbose=False)
                if out is None:
                    out = np.empty((n, *values.shape[1:]), dtype=values.dtype)
                out[index] = values
                bar.update(len(index))
        _loop.release_memory()  # the last chunk may be too short to trim on its own
        return out

    def _predict(self, encoded: Encoded, output_fn, desc: str, *, model=None, tokenizer=None, **options):
        """:func:`~bertkit.training.predict_rows` with this estimator's settings (device,
        precision, a token budget of ``batch_size * max_length``, progress bar, forward
        kwargs). ``model`` and ``tokenizer`` (or a ``pad_id``) default to the fitted ones (pass
        others during fit); ``options`` add to or override the settings (``ragged``,
        ``prepare_inputs``...)."""
        if "pad_id" not in options:  # during fit there is no tokenizer_ yet: callers pass one
            tokenizer = tokenizer if tokenizer is not None else self.tokenizer_
            options["pad_id"] = tokenizer.pad_token_id or 0
        settings = dict(
            device=self.device,
            precision=self.precision,
            max_tokens=self.batch_size * self.max_length,
            window_pooling=getattr(self, "window_pooling", "mean"),
            verbose=bool(self.verbose),
            desc=f"{type(self).__name__}.{desc}",
            forward_kwargs=self._forward_kwargs,
        )
        settings.update(options)
        return predict_rows(model if model is not None else self.model_, encoded, output_fn, **settings)

    # ----------------------------------------------------------------- persistence
    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ returns the live __dict__
        model = state.get("model_")
        if isinstance(model, torch.nn.Module):
            state["model_"] = _module_to_bytes(model)
        return state

    def __setstate__(self, state):
        model = state.get("model_")
        if isinstance(model, dict) and "safetensors" in model:
            state = dict(state)
            state["model_"] = _module_from_bytes(model)
        super().__setstate__(state)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the fitted estimator as a Hugging Face-compatible folder.

        The folder holds ``config.json`` (with ``id2label`` for classifiers),
        ``model.safetensors``, the tokenizer files and ``bertkit.json`` (this
        estimator's parameters and fitted attributes). No pickle is involved;
        :func:`bertkit.load` reads it back.
        """
        check_is_fitted(self, "model_")
        folder = Path(folder)
        self.model_.save_pretrained(folder)
        self.tokenizer_.save(folder)
        params = {k: _to_json(v) for k, v in self.get_params(deep=False).items()}
        fitted = {k: _to_json(getattr(self, k)) for k in self._fitted_json + ("n_text_columns_",)
                  if hasattr(self, k)}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = _to_json(self.feature_names_in_)
        meta = {
            "format": 1,
            "estimator": type(self).__name__,
            "bertkit_version": _version(),
            "head": self._head,
            "params": params,
            "fitted": fitted,
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return folder


def load(folder: str | os.PathLike) -> BertEstimatorBase:
    """Load an estimator written by ``estimator.save(folder)``.

    Examples
    --------
    >>> import bertkit
    >>> clf = bertkit.load("my-classifier")  # doctest: +SKIP
    >>> clf.predict(["a fine film"])  # doctest: +SKIP
    """
    folder = Path(folder)
    path = folder / META_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No {META_FILE} in {folder}: this is not a folder written by a bertkit estimator's "
            f"save(). To load a plain checkpoint use bertkit.load_pretrained(folder)."
        )
    meta = json.loads(path.read_text(encoding="utf-8"))
    name = meta.get("estimator")
    if name not in ESTIMATORS:
        raise InputError(f"{path} names estimator {name!r}; known estimators: {sorted(ESTIMATORS)}.")
    cls = ESTIMATORS[name]
    params = {k: _from_json(v) for k, v in meta["params"].items()}
    estimator = cls(**params)
    for key, value in meta.get("fitted", {}).items():
        setattr(estimator, key, _from_json(value))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.model_ = load_pretrained(folder, meta.get("head"), attention=estimator.attention)
    estimator.tokenizer_ = load_tokenizer(folder)
    return estimator


def saved_fitted(folder: Path, estimator: str) -> dict[str, Any]:
    """The fitted attributes that ``estimator``'s ``save`` wrote into ``folder`` (empty
    when the folder has no bertkit.json, or one from another estimator)."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        return {}
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("estimator") != estimator:
        return {}
    return {k: _from_json(v) for k, v in meta.get("fitted", {}).items()}


# --------------------------------------------------------------------- helpers
def _module_to_bytes(model: torch.nn.Module) -> dict:
    """A fitted model as plain data: config, head name and safetensors bytes (no torch pickle)."""
    from safetensors.torch import save

    return {
        "safetensors": save(state_to_save(model)),
        "config": copy.deepcopy(model.config.to_dict()),
        "head": getattr(model, "head_name", None),
        "attention": model.bert.attention_name if isinstance(model, BertTaskModel) else model.attention_name,
    }


def _module_from_bytes(blob: dict) -> torch.nn.Module:
    from safetensors.torch import load

    config = BertConfig.from_dict(blob["config"])
    if blob["head"] is None:
        model = BertModel(config, attention=blob["attention"])
    else:
        model = BertTaskModel(config, plugins.get("head", blob["head"]), blob["head"], attention=blob["attention"])
    load_state(model, load(blob["safetensors"]), source="the pickled estimator")
    return model.eval()


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return {"__path__": os.fspath(value)}
    if isinstance(value, np.random.RandomState):
        return None
    if isinstance(value, dict):
        return {"__dict__": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and "__ndarray__" in value:
        dtype = value["dtype"]
        return np.asarray(value["__ndarray__"], dtype=object if dtype == "object" else dtype)
    if isinstance(value, dict) and "__path__" in value:
        return Path(value["__path__"])
    if isinstance(value, dict) and "__dict__" in value:
        return {_hashable(_from_json(k)): _from_json(v) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _version() -> str:
    from .. import __version__

    return __version__
