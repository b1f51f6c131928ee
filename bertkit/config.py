"""BERT configuration: every field of Hugging Face's ``config.json`` for BERT.

``BertConfig`` reads and writes the same ``config.json`` as Hugging Face's
``BertConfig``. Keys it does not model (``id2label``, ``architectures``,
``problem_type``...) are kept in :attr:`BertConfig.extras` and written back
unchanged, so a folder survives a round trip through bertkit.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ConfigError

__all__ = ["BertConfig", "ACTIVATIONS", "POSITION_EMBEDDING_TYPES"]

#: Activation names accepted in ``hidden_act`` (the ones BERT checkpoints use).
ACTIVATIONS = (
    "gelu",
    "gelu_new",
    "gelu_pytorch_tanh",
    "gelu_fast",
    "quick_gelu",
    "relu",
    "silu",
    "swish",
    "tanh",
    "mish",
)

#: Values accepted in ``position_embedding_type``.
POSITION_EMBEDDING_TYPES = ("absolute", "relative_key", "relative_key_query")

CONFIG_NAME = "config.json"


@dataclass
class BertConfig:
    """The hyperparameters of a BERT encoder.

    Field names and defaults are those of Hugging Face's ``BertConfig`` (the
    BERT-base architecture), so any BERT ``config.json`` reads as is.

    Parameters
    ----------
    vocab_size : int, default=30522
        Number of WordPiece tokens.
    hidden_size : int, default=768
        Width of every hidden state; must be divisible by ``num_attention_heads``.
    num_hidden_layers : int, default=12
        Number of transformer layers.
    num_attention_heads : int, default=12
        Attention heads per layer.
    intermediate_size : int, default=3072
        Width of the feed-forward layer.
    hidden_act : str, default="gelu"
        One of :data:`ACTIVATIONS`.
    hidden_dropout_prob, attention_probs_dropout_prob : float, default=0.1
        Dropout on hidden states and on attention probabilities (training only).
    max_position_embeddings : int, default=512
        Longest sequence the model accepts.
    type_vocab_size : int, default=2
        Number of token types (segments).
    initializer_range : float, default=0.02
        Standard deviation of the normal initialiser of new weights.
    layer_norm_eps : float, default=1e-12
        Epsilon of every LayerNorm.
    pad_token_id : int, default=0
        Id of the padding token.
    position_embedding_type : str, default="absolute"
        One of :data:`POSITION_EMBEDDING_TYPES`.
    is_decoder : bool, default=False
        Causal self-attention (for the causal-LM head) and a key/value cache.
    add_cross_attention : bool, default=False
        Add cross-attention to ``encoder_hidden_states`` in every layer (decoder only).
    use_cache : bool, default=True
        Whether a decoder returns its key/value cache by default.
    classifier_dropout : float or None, default=None
        Dropout of classification heads; ``None`` uses ``hidden_dropout_prob``.
    tie_word_embeddings : bool, default=True
        Share the masked-LM decoder weight with the word embeddings.
    extras : dict
        Every other key of ``config.json``, kept and written back unchanged.

    Examples
    --------
    >>> from bertkit import BertConfig
    >>> config = BertConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=2)
    >>> config.head_dim
    16
    >>> BertConfig.from_dict({"hidden_size": 64, "num_attention_heads": 4,
    ...                       "id2label": {"0": "neg", "1": "pos"}}).num_labels
    2
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    position_embedding_type: str = "absolute"
    is_decoder: bool = False
    add_cross_attention: bool = False
    use_cache: bool = True
    classifier_dropout: float | None = None
    tie_word_embeddings: bool = True
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`~bertkit.ConfigError` on any impossible value."""
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"BertConfig.{name} must be a positive integer. Got {value!r}."
                )
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"BertConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads}); choose a head count "
                f"that divides it, e.g. {_divisors_hint(self.hidden_size)}."
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(
                f"BertConfig.hidden_act must be one of {sorted(ACTIVATIONS)}. "
                f"Got {self.hidden_act!r}."
            )
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ConfigError(
                f"BertConfig.position_embedding_type must be one of "
                f"{list(POSITION_EMBEDDING_TYPES)}. Got {self.position_embedding_type!r}."
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"BertConfig.{name} must be a float in [0, 1). Got {value!r}.")
        for name in ("initializer_range", "layer_norm_eps"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                raise ConfigError(f"BertConfig.{name} must be a positive number. Got {value!r}.")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"BertConfig.pad_token_id must be in [0, vocab_size={self.vocab_size}) or None. "
                f"Got {self.pad_token_id!r}."
            )
        if self.add_cross_attention and not self.is_decoder:
            raise ConfigError(
                "BertConfig.add_cross_attention=True needs is_decoder=True: cross-attention "
                "layers only exist in a decoder. Set is_decoder=True or drop add_cross_attention."
            )

    # ------------------------------------------------------------- derived
    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @property
    def id2label(self) -> dict[int, str] | None:
        """Label names by class index, from ``extras['id2label']`` (``None`` if absent)."""
        raw = self.extras.get("id2label")
        if raw is None:
            return None
        return {int(k): v for k, v in raw.items()}

    @property
    def num_labels(self) -> int:
        """Number of output labels of a classification head (2 if the config names none)."""
        id2label = self.id2label
        if id2label:
            return len(id2label)
        return int(self.extras.get("num_labels", 2))

    @property
    def label_names(self) -> list[str]:
        """The names of a classification head's outputs, by index (``LABEL_i`` for those
        ``id2label`` does not name, as transformers writes them)."""
        names = self.id2label or {}
        return [str(names.get(i, f"LABEL_{i}")) for i in range(self.num_labels)]

    def set_labels(self, labels) -> None:
        """Record label names (a list indexed by class, or an int count) in ``extras``."""
        if isinstance(labels, int):
            labels = [f"LABEL_{i}" for i in range(labels)]
        labels = [str(label) for label in labels]
        self.extras["id2label"] = {str(i): label for i, label in enumerate(labels)}
        self.extras["label2id"] = {label: i for i, label in enumerate(labels)}
        self.extras.pop("num_labels", None)

    # ------------------------------------------------------------- io
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BertConfig:
        """Build a config from a ``config.json`` dictionary; unknown keys go to ``extras``."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extras"}
        kwargs = {k: v for k, v in data.items() if k in known}
        # model_type is always "bert" here: written by to_dict, never kept as an extra.
        extras = {k: v for k, v in data.items() if k not in known and k != "model_type"}
        return cls(**kwargs, extras=extras)

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` dictionary: every field, then every extra key."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extras"}
        data.update(self.extras)
        data["model_type"] = "bert"
        return data

    @classmethod
    def from_json_file(cls, path: str | Path) -> BertConfig:
        """Read ``config.json`` (a file, or a folder that holds one)."""
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"No {CONFIG_NAME} at {path}. A model folder needs config.json next to its "
                f"weights (Hugging Face format); save one with BertConfig.save(folder)."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}.") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object. Got {type(data).__name__}.")
        if data.get("model_type", "bert") != "bert":
            raise ConfigError(
                f"{path} describes a {data['model_type']!r} model; bertkit reads BERT checkpoints "
                f"(model_type 'bert')."
            )
        return cls.from_dict(data)

    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` into ``folder`` (created if needed); return its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path


def _divisors_hint(n: int) -> str:
    return ", ".join(str(d) for d in range(1, min(n, 64) + 1) if n % d == 0 and d > 1)
