"""BertEmbedder: texts in, fixed-size vectors out (a scikit-learn transformer)."""

from __future__ import annotations

import json
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._errors import InputError
from ._base import COMMON_CONSTRAINTS, BertEstimatorBase

__all__ = ["BertEmbedder"]

_INFERENCE_PARAMS = (
    "model", "max_length", "batch_size", "long_text", "stride", "window_pooling",
    "attention", "device", "precision", "verbose",
)


class BertEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BertEstimatorBase):
    """Encode texts (or text pairs) into vectors with a pretrained BERT.

    ``fit`` loads the model (no training); ``transform`` returns one row per text.
    Identical texts are encoded once.

    Parameters
    ----------
    model : str or path, default="default"
    pooling : {"auto", "mean", "cls", "max", "pooler"}, default="auto"
        Masked mean or max over tokens, the first token's state, or BERT's pooler
        (tanh layer on the first token; needs a checkpoint that has one). ``"auto"``
        takes the pooling a sentence-transformers folder was trained with (its
        ``modules.json`` and pooling ``config.json``: CLS for BGE-style models, mean for
        all-MiniLM-L6-v2), and ``"mean"`` for any other checkpoint.
    normalize : bool, default=True
        L2-normalise each vector (cosine similarity becomes a dot product).
    layers : int, default=1
        Average the last ``layers`` hidden layers before pooling.
    max_length : int, default=256
    batch_size : int, default=32
        Inference batches hold up to ``batch_size * max_length`` tokens.
    long_text : {"truncate", "window"}, default="truncate"
    stride : int or None, default=None
        Tokens shared by consecutive windows; None takes a quarter of ``max_length``,
        at most 32.
    window_pooling : {"mean", "max"}, default="mean"
        How the vectors of one text's windows combine.
    attention, device, precision, verbose
        As in :class:`BertClassifier`.

    Attributes
    ----------
    model_ : BertModel
    tokenizer_ : BertTokenizer
    embedding_dim_ : int
    pooling_ : str
        The pooling in use: ``pooling``, or what ``"auto"`` found.

    Examples
    --------
    >>> from bertkit import BertEmbedder
    >>> emb = BertEmbedder().fit(["a"])  # doctest: +SKIP
    >>> emb.transform(["A man plays guitar.", "Someone makes music."]).shape  # doctest: +SKIP
    (2, 384)
    """

    _head = None
    _parameter_constraints = {
        **{k: COMMON_CONSTRAINTS[k] for k in _INFERENCE_PARAMS},
        "pooling": [StrOptions({"auto", "mean", "cls", "max", "pooler"})],
        "normalize": ["boolean"],
        "layers": [Interval(Integral, 1, None, closed="left")],
    }
    _fitted_json = ("embedding_dim_", "_n_features_out", "pooling_")

    def __init__(
        self,
        *,
        model="default",
        pooling="auto",
        normalize=True,
        layers=1,
        max_length=256,
        batch_size=32,
        long_text="truncate",
        stride=None,
        window_pooling="mean",
        attention="sdpa",
        device="auto",
        precision="auto",
        verbose=False,
    ):
        self.model = model
        self.pooling = pooling
        self.normalize = normalize
        self.layers = layers
        self.max_length = max_length
        self.batch_size = batch_size
        self.long_text = long_text
        self.stride = stride
        self.window_pooling = window_pooling
        self.attention = attention
        self.device = device
        self.precision = precision
        self.verbose = verbose

    def fit(self, X=None, y=None):
        """Load the model and tokenizer (nothing is trained); returns self."""
        self._validate_params()
        if X is not None:
            self._check_X(X, fit=True)
        else:
            self.n_text_columns_ = 1
        folder = self._resolve_source()
        self.tokenizer_ = self._load_tokenizer(folder)
        self.model_ = self._new_model(folder).eval()
        config = self.model_.config
        if self.layers > config.num_hidden_layers:
            raise InputError(
                f"The 'layers' parameter of BertEmbedder ({self.layers}) exceeds the model's "
                f"{config.num_hidden_layers} layers."
            )
        self.pooling_ = self.pooling if self.pooling != "auto" else sentence_transformers_pooling(folder)
        if self.pooling_ == "pooler" and self.model_.pooler is None:
            raise InputError("pooling='pooler' needs a model with a pooler layer; use 'cls' or 'mean'.")
        self.embedding_dim_ = config.hidden_size
        self._n_features_out = config.hidden_size
        return self

    def transform(self, X) -> np.ndarray:
        """One vector per text: array of shape ``(n_texts, embedding_dim_)``."""
        check_is_fitted(self, "model_")
        texts = self._check_X(X, fit=False)
        keys = texts.keys()
        unique = {}
        inverse = np.fromiter((unique.setdefault(k, len(unique)) for k in keys), dtype=np.int64, count=len(keys))
        if len(unique) < len(keys):
            where = np.empty(len(unique), dtype=np.int64)
            where[inverse] = np.arange(len(keys))  # a row of each distinct text (not keys.index: O(n^2))
            texts = texts.take(where)
        if self.layers > 1:
            extra = {"output_hidden_states": True}
        else:  # cls and pooler read the first position only: skip the rest of the last layer
            extra = {"first_token_only": self._pooling() in ("cls", "pooler")}
        vectors = self._run(texts, self._pool, "transform", forward_kwargs=extra)
        if self.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors[inverse]

    def _pooling(self) -> str:
        return getattr(self, "pooling_", self.pooling)  # folders saved before pooling_ existed

    def _pool(self, out, inputs) -> torch.Tensor:
        pooling = self._pooling()
        if pooling == "pooler":
            return out["pooler_output"]
        hidden = out["last_hidden_state"] if self.layers == 1 else torch.stack(out["hidden_states"][-self.layers:]).mean(0)
        if pooling == "cls":
            return hidden[:, 0]
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, s, 1)
        if pooling == "mean":
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(dim=1)


#: sentence-transformers' pooling flags that bertkit computes, by mode.
_ST_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max"}


def sentence_transformers_pooling(folder: Path) -> str:
    """The pooling of a sentence-transformers folder (``modules.json`` names a Pooling
    module whose ``config.json`` sets one mode); ``"mean"`` for any other folder."""
    try:
        modules = json.loads((Path(folder) / "modules.json").read_text(encoding="utf-8"))
        path = next(m.get("path", "") for m in modules if str(m.get("type", "")).endswith("Pooling"))
        config = json.loads((Path(folder) / path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, StopIteration, TypeError, AttributeError):
        return "mean"
    chosen = [mode for key, mode in _ST_MODES.items() if config.get(key)]
    others = [key for key, value in config.items()
              if key.startswith("pooling_mode_") and value is True and key not in _ST_MODES]
    if len(chosen) == 1 and not others:
        return chosen[0]
    warnings.warn(
        f"BertEmbedder(pooling='auto'): {folder} was trained with sentence-transformers pooling "
        f"{sorted(k for k, v in config.items() if k.startswith('pooling_mode_') and v is True)}, "
        f"which bertkit does not compute; using 'mean'. Pass pooling='mean', 'cls' or 'max' to "
        f"choose one and silence this warning.",
        UserWarning, stacklevel=3,
    )
    return "mean"
