"""The WordPiece BERT tokenizer, on the Rust ``tokenizers`` library.

:class:`BertTokenizer` gives the same ids, masks, offsets and overflow windows as
``transformers.BertTokenizerFast`` (it drives the same Rust code with the same
settings), takes the same keyword arguments, and reads and writes the same
folders (``vocab.txt``, ``tokenizer.json``, ``tokenizer_config.json``,
``special_tokens_map.json``). :func:`load_tokenizer` loads the tokenizer of any
model source through the ``bertkit_register_tokenizers`` plugin table.

Truncation and padding are chosen per call, never stored: each distinct setting
runs on its own cached copy of the Rust tokenizer, so calls from several threads
never see each other's settings.

Examples
--------
>>> from bertkit.tokenizer import BertTokenizer
>>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
...                                 "hello", "world", "##s", ","])
>>> enc = tok("Hello, worlds")
>>> enc["input_ids"]
[2, 5, 8, 6, 7, 3]
>>> enc.tokens()
['[CLS]', 'hello', ',', 'world', '##s', '[SEP]']
>>> batch = tok(["hello", "hello world"], padding=True, return_tensors="pt")
>>> batch["attention_mask"].tolist()
[[1, 1, 1, 0], [1, 1, 1, 1]]
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from . import plugins
from ._attrdict import AttrDict
from ._errors import ConfigError, InputError, ModelNotFoundError
from .sources import resolve_model

__all__ = ["BertTokenizer", "BatchEncoding", "load_tokenizer"]

logger = logging.getLogger(__name__)

#: The special-token attributes, in the order transformers lists them.
SPECIAL_TOKEN_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

_PADDING = {
    True: "longest",
    "longest": "longest",
    "max_length": "max_length",
    False: None,
    "do_not_pad": None,
}
_TRUNCATION = {
    True: "longest_first",
    "longest_first": "longest_first",
    "only_first": "only_first",
    "only_second": "only_second",
    False: None,
    "do_not_truncate": None,
}
_RETURN_TENSORS = (None, "pt", "np")
#: transformers' marker for "no known maximum length" (model_max_length above it).
_LARGE_INTEGER = int(1e20)
#: How many differently configured copies of the Rust tokenizer one instance keeps.
_CACHE_SIZE = 16


def _allowed(values: Iterable[Any]) -> str:
    return "{" + ", ".join(repr(v) for v in values) + "}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class BatchEncoding(AttrDict):
    """What :class:`BertTokenizer` returns: a dict of model inputs plus the raw encodings.

    Keys are ``input_ids``, ``token_type_ids`` and ``attention_mask`` (and
    ``offset_mapping``, ``special_tokens_mask``, ``length``,
    ``overflow_to_sample_mapping`` when asked for). Keys can also be read as
    attributes (``enc.input_ids``). ``encodings`` holds one
    :class:`tokenizers.Encoding` per returned row.

    Parameters
    ----------
    data : mapping, optional
        The model inputs.
    encodings : list of tokenizers.Encoding, optional
        The encodings the inputs were made from, one per row.

    Examples
    --------
    >>> from bertkit.tokenizer import BertTokenizer
    >>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    ...                                 "new", "york", "##er"])
    >>> enc = tok(["new", "yorker"], is_split_into_words=True)
    >>> enc.word_ids()
    [None, 0, 1, 1, None]
    >>> enc.sequence_ids()
    [None, 0, 0, 0, None]
    >>> enc.input_ids
    [2, 5, 6, 7, 3]
    """

    def __init__(self, data: Mapping[str, Any] | None = None, encodings: list | None = None):
        super().__init__(data or {})
        self.encodings = encodings

    def _encoding(self, batch_index: int):
        if not self.encodings:
            raise InputError("This BatchEncoding holds no tokenizers encodings.")
        if not _is_int(batch_index) or not -len(self.encodings) <= batch_index < len(
            self.encodings
        ):
            raise InputError(
                f"The 'batch_index' parameter of BatchEncoding must be an int in "
                f"[0, {len(self.encodings)}). Got {batch_index!r}."
            )
        return self.encodings[batch_index]

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of row ``batch_index`` (special and padding tokens included)."""
        return self._encoding(batch_index).tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token of row ``batch_index``, the index of its word (``None`` for special tokens)."""
        return self._encoding(batch_index).word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token of row ``batch_index``, 0 (first text), 1 (pair) or ``None`` (special)."""
        return self._encoding(batch_index).sequence_ids

    def to(self, device: Any) -> BatchEncoding:
        """Move every torch tensor value to ``device`` (in place); return ``self``."""
        for key, value in self.items():
            if hasattr(value, "to") and hasattr(value, "device"):
                self[key] = value.to(device)
        return self


def _to_tensors(data: dict[str, Any], return_tensors: str) -> dict[str, Any]:
    for key, value in data.items():
        if value and isinstance(value[0], (list, tuple)):
            lengths = {len(row) for row in value}
            if len(lengths) > 1:
                raise InputError(
                    f"return_tensors={return_tensors!r} needs rows of equal length, but "
                    f"{key!r} has rows of {min(lengths)} to {max(lengths)} tokens. Pass "
                    f"padding=True (or padding='max_length' with max_length) to pad them, "
                    f"or return_tensors=None for lists."
                )
    if return_tensors == "pt":
        import torch

        def convert(value):
            if not value:
                return torch.zeros((0, 0), dtype=torch.long)
            return torch.tensor(value, dtype=torch.long)
    else:
        import numpy as np

        def convert(value):
            if not value:
                return np.zeros((0, 0), dtype=np.int64)
            return np.asarray(value, dtype=np.int64)

    return {key: convert(value) for key, value in data.items()}


class BertTokenizer:
    """A WordPiece BERT tokenizer, numerically identical to transformers' ``BertTokenizerFast``.

    Usually built with :meth:`from_folder`, :meth:`from_vocab` or
    :func:`load_tokenizer`. Calling it tokenizes one text, a pair, or a batch,
    with the keyword arguments of transformers' tokenizers.

    Parameters
    ----------
    backend : tokenizers.Tokenizer
        The Rust tokenizer. It is copied; the copy's truncation and padding
        settings are cleared (they are chosen per call).
    unk_token, sep_token, pad_token, cls_token, mask_token : str
        The special tokens. Any not yet among the backend's added tokens is added
        as a special token, so it is never split or lowercased.
    additional_special_tokens : sequence of str, default=()
        More tokens to treat as special.
    model_max_length : int, default=512
        The longest input the model takes; ``truncation=True`` without
        ``max_length`` truncates to it.
    clean_up_tokenization_spaces : bool, default=True
        Default of :meth:`decode`'s option of the same name (removes spaces
        before punctuation and in English contractions).

    Attributes
    ----------
    backend : tokenizers.Tokenizer
        The Rust tokenizer, without truncation or padding. Treat it as read-only.
    do_lower_case, strip_accents, tokenize_chinese_chars : bool or None
        The normalizer's settings (``None`` when it is not a BERT normalizer).

    Examples
    --------
    >>> from bertkit.tokenizer import BertTokenizer
    >>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    ...                                 "the", "cat", "sat", "mat", "on"])
    >>> tok
    BertTokenizer(vocab_size=10, do_lower_case=True, model_max_length=512)
    >>> enc = tok("The cat", "sat on the [MASK]")
    >>> enc["input_ids"]
    [2, 5, 6, 3, 7, 9, 5, 4, 3]
    >>> enc["token_type_ids"]
    [0, 0, 0, 0, 1, 1, 1, 1, 1]
    >>> tok.decode(enc["input_ids"], skip_special_tokens=True)
    'the cat sat on the'
    >>> tok(["the cat sat on the mat"], truncation=True, max_length=5)["input_ids"]
    [[2, 5, 6, 7, 3]]
    """

    def __init__(
        self,
        backend: Tokenizer,
        *,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        additional_special_tokens: Sequence[str] = (),
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
    ):
        if not isinstance(backend, Tokenizer):
            raise ConfigError(
                f"The 'backend' parameter of BertTokenizer must be a tokenizers.Tokenizer. "
                f"Got {type(backend).__name__}. Use BertTokenizer.from_folder or "
                f"BertTokenizer.from_vocab to build one from files."
            )
        special = {
            "unk_token": unk_token,
            "sep_token": sep_token,
            "pad_token": pad_token,
            "cls_token": cls_token,
            "mask_token": mask_token,
        }
        for name, value in special.items():
            if not isinstance(value, str) or not value:
                raise ConfigError(
                    f"The '{name}' parameter of BertTokenizer must be a non-empty str. Got {value!r}."
                )
        if isinstance(additional_special_tokens, str) or not all(
            isinstance(t, str) and t for t in additional_special_tokens
        ):
            raise ConfigError(
                "The 'additional_special_tokens' parameter of BertTokenizer must be a sequence "
                f"of non-empty str. Got {additional_special_tokens!r}."
            )
        if not _is_int(model_max_length) or model_max_length < 1:
            raise ConfigError(
                "The 'model_max_length' parameter of BertTokenizer must be a positive int. "
                f"Got {model_max_length!r}."
            )
        self._special = special
        self._additional = list(dict.fromkeys(additional_special_tokens))
        self.model_max_length = model_max_length
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)

        tokenizer = Tokenizer.from_str(backend.to_str())
        tokenizer.no_truncation()
        tokenizer.no_padding()
        tokenizer.encode_special_tokens = False
        present = {t.content for t in tokenizer.get_added_tokens_decoder().values()}
        missing = [t for t in self.all_special_tokens if t not in present]
        if missing:
            tokenizer.add_special_tokens(
                [AddedToken(t, normalized=False, special=True) for t in missing]
            )
        self._setup(tokenizer)

    def _setup(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._json = tokenizer.to_str()
        normalizer = json.loads(self._json).get("normalizer") or {}
        self._normalizer_state = normalizer
        self._configured: OrderedDict[tuple, Tokenizer] = OrderedDict()
        self._lock = threading.Lock()
        self._warned_too_long = False

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_vocab(
        cls,
        vocab: str | os.PathLike | Mapping[str, int] | Sequence[str],
        *,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        additional_special_tokens: Sequence[str] = (),
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
    ) -> BertTokenizer:
        """Build a BERT tokenizer from a WordPiece vocabulary.

        The pipeline is the one transformers' ``BertTokenizerFast(vocab_file=...)``
        builds: BERT normalizer (text cleaning, optional lowercasing and accent
        stripping, spaces around CJK characters), BERT pre-tokenizer (whitespace
        and punctuation), WordPiece with ``##`` continuation pieces, and the
        ``[CLS] A [SEP] (B [SEP])`` template.

        Parameters
        ----------
        vocab : path-like, mapping or sequence of str
            A ``vocab.txt`` (one token per line; the line number is the id), a
            ``{token: id}`` mapping, or the tokens in id order.
        do_lower_case : bool, default=True
            Lowercase the text before splitting it.
        strip_accents : bool or None, default=None
            Remove accents; ``None`` follows ``do_lower_case`` (as BERT does).
        tokenize_chinese_chars : bool, default=True
            Put spaces around CJK characters so each is its own word.
        unk_token, sep_token, pad_token, cls_token, mask_token : str
            The special tokens; ``unk_token`` must be in the vocabulary.
        additional_special_tokens : sequence of str, default=()
            More tokens never to split.
        model_max_length : int, default=512
            The longest input the model takes.
        clean_up_tokenization_spaces : bool, default=True
            Default of :meth:`decode`'s option of the same name.

        Returns
        -------
        BertTokenizer

        Examples
        --------
        >>> from bertkit.tokenizer import BertTokenizer
        >>> tok = BertTokenizer.from_vocab({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3,
        ...                                 "[MASK]": 4, "cafe": 5, "Cafe": 6},
        ...                                do_lower_case=False, strip_accents=True)
        >>> tok.tokenize("Café café")
        ['Cafe', 'cafe']
        """
        vocab_map = _read_vocab(vocab)
        if unk_token not in vocab_map:
            raise ConfigError(
                f"The 'unk_token' of BertTokenizer.from_vocab, {unk_token!r}, is not in the "
                f"vocabulary ({len(vocab_map)} tokens). Pass the unk_token the vocabulary uses."
            )
        for name, value in (
            ("do_lower_case", do_lower_case),
            ("tokenize_chinese_chars", tokenize_chinese_chars),
        ):
            if not isinstance(value, bool):
                raise ConfigError(
                    f"The '{name}' parameter of BertTokenizer.from_vocab must be a bool. "
                    f"Got {value!r}."
                )
        if strip_accents is not None and not isinstance(strip_accents, bool):
            raise ConfigError(
                "The 'strip_accents' parameter of BertTokenizer.from_vocab must be True, False "
                f"or None. Got {strip_accents!r}."
            )
        backend = Tokenizer(WordPiece(vocab_map, unk_token=unk_token, max_input_chars_per_word=100))
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            lowercase=do_lower_case,
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")
        # Add the specials first so that any missing from the vocabulary get ids
        # (as transformers does) before the template refers to them.
        specials = [
            unk_token,
            sep_token,
            pad_token,
            cls_token,
            mask_token,
            *additional_special_tokens,
        ]
        backend.add_special_tokens(
            [AddedToken(t, normalized=False, special=True) for t in dict.fromkeys(specials)]
        )
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls_token}:0 $A:0 {sep_token}:0",
            pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
            special_tokens=[
                (cls_token, backend.token_to_id(cls_token)),
                (sep_token, backend.token_to_id(sep_token)),
            ],
        )
        return cls(
            backend,
            unk_token=unk_token,
            sep_token=sep_token,
            pad_token=pad_token,
            cls_token=cls_token,
            mask_token=mask_token,
            additional_special_tokens=additional_special_tokens,
            model_max_length=model_max_length,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
        )

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> BertTokenizer:
        """Load the tokenizer of a Hugging Face-format model folder.

        Reads ``tokenizer.json`` when present, else builds the tokenizer from
        ``vocab.txt``. ``tokenizer_config.json`` (``do_lower_case``,
        ``strip_accents``, ``tokenize_chinese_chars``, special tokens,
        ``model_max_length``, ``clean_up_tokenization_spaces``) and
        ``special_tokens_map.json`` are applied the way ``BertTokenizerFast``
        applies them: normalizer settings in ``tokenizer_config.json`` win over
        those in ``tokenizer.json``. Truncation and padding stored in
        ``tokenizer.json`` are dropped (they are chosen per call). Without a
        ``model_max_length`` in ``tokenizer_config.json`` (or with transformers'
        "unbounded" marker), ``config.json``'s ``max_position_embeddings`` is used,
        else 512.

        Parameters
        ----------
        folder : path-like
            The folder.

        Returns
        -------
        BertTokenizer

        Raises
        ------
        bertkit.ModelNotFoundError
            When the folder does not exist or holds neither ``tokenizer.json`` nor
            ``vocab.txt``.

        Examples
        --------
        >>> import tempfile
        >>> from bertkit.tokenizer import BertTokenizer
        >>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi"])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = tok.save(folder)
        ...     BertTokenizer.from_folder(folder).encode("hi")
        [2, 5, 3]
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelNotFoundError(
                f"The tokenizer folder {str(folder)!r} does not exist or is not a folder."
            )
        tokenizer_json = folder / "tokenizer.json"
        vocab_txt = folder / "vocab.txt"
        if not tokenizer_json.is_file() and not vocab_txt.is_file():
            found = sorted(p.name for p in folder.iterdir())[:20]
            raise ModelNotFoundError(
                f"No tokenizer in {str(folder)!r}: a BERT tokenizer folder needs tokenizer.json "
                f"or vocab.txt (plus, optionally, tokenizer_config.json and "
                f"special_tokens_map.json). Found: {found}."
            )
        config = _read_json(folder / "tokenizer_config.json")
        special_map = _read_json(folder / "special_tokens_map.json")

        specials = {}
        for name in SPECIAL_TOKEN_NAMES:
            value = _token_content(config.get(name))
            mapped = _token_content(special_map.get(name))
            specials[name] = mapped or value or f"[{name.split('_')[0].upper()}]"
        additional = [_token_content(t) for t in config.get("additional_special_tokens") or []]
        for token in special_map.get("additional_special_tokens") or []:
            token = _token_content(token)
            if token not in additional:
                additional.append(token)
        additional = [t for t in additional if t]

        do_lower_case = config.get("do_lower_case", True)
        strip_accents = config.get("strip_accents")
        tokenize_chinese_chars = config.get("tokenize_chinese_chars", True)
        model_max_length = config.get("model_max_length")
        if not _is_int(model_max_length) or not 0 < model_max_length <= _LARGE_INTEGER:
            model_max_length = _read_json(folder / "config.json").get("max_position_embeddings")
            if not _is_int(model_max_length) or model_max_length < 1:
                model_max_length = 512

        if tokenizer_json.is_file():
            try:
                backend = Tokenizer.from_file(str(tokenizer_json))
            except Exception as err:
                raise ConfigError(f"Could not read {str(tokenizer_json)!r}: {err}") from err
            _apply_normalizer_settings(
                backend, do_lower_case, strip_accents, tokenize_chinese_chars
            )
            clean_default = False
        else:
            clean_default = True
            backend = cls.from_vocab(
                vocab_txt,
                do_lower_case=do_lower_case,
                strip_accents=strip_accents,
                tokenize_chinese_chars=tokenize_chinese_chars,
                additional_special_tokens=additional,
                model_max_length=model_max_length,
                clean_up_tokenization_spaces=config.get("clean_up_tokenization_spaces", True),
                **specials,
            )._tokenizer

        _add_config_tokens(backend, config.get("added_tokens_decoder"))
        return cls(
            backend,
            additional_special_tokens=additional,
            model_max_length=model_max_length,
            clean_up_tokenization_spaces=config.get("clean_up_tokenization_spaces", clean_default),
            **specials,
        )

    # ------------------------------------------------------------------ properties

    @property
    def backend(self) -> Tokenizer:
        """The Rust :class:`tokenizers.Tokenizer` (no truncation, no padding); read-only."""
        return self._tokenizer

    @property
    def do_lower_case(self) -> bool | None:
        """Whether the normalizer lowercases (``None`` when it is not a BERT normalizer)."""
        return self._normalizer_state.get("lowercase")

    @property
    def strip_accents(self) -> bool | None:
        """The normalizer's ``strip_accents`` (``None``: follow ``do_lower_case``)."""
        return self._normalizer_state.get("strip_accents")

    @property
    def tokenize_chinese_chars(self) -> bool | None:
        """Whether CJK characters become words of their own."""
        return self._normalizer_state.get("handle_chinese_chars")

    @property
    def vocab_size(self) -> int:
        """Size of the WordPiece vocabulary, without added tokens."""
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        """The ``{token: id}`` mapping, added tokens included."""
        return self._tokenizer.get_vocab(with_added_tokens=True)

    unk_token = property(lambda self: self._special["unk_token"], doc="The unknown token.")
    sep_token = property(lambda self: self._special["sep_token"], doc="The separator token.")
    pad_token = property(lambda self: self._special["pad_token"], doc="The padding token.")
    cls_token = property(lambda self: self._special["cls_token"], doc="The classifier token.")
    mask_token = property(lambda self: self._special["mask_token"], doc="The mask token.")
    unk_token_id = property(
        lambda self: self._tokenizer.token_to_id(self.unk_token), doc="Id of the unknown token."
    )
    sep_token_id = property(
        lambda self: self._tokenizer.token_to_id(self.sep_token), doc="Id of the separator token."
    )
    pad_token_id = property(
        lambda self: self._tokenizer.token_to_id(self.pad_token), doc="Id of the padding token."
    )
    cls_token_id = property(
        lambda self: self._tokenizer.token_to_id(self.cls_token), doc="Id of the classifier token."
    )
    mask_token_id = property(
        lambda self: self._tokenizer.token_to_id(self.mask_token), doc="Id of the mask token."
    )
    #: Token type id of padding tokens.
    pad_token_type_id = 0

    @property
    def additional_special_tokens(self) -> list[str]:
        """Special tokens beyond the five BERT ones."""
        return list(self._additional)

    @property
    def special_tokens_map(self) -> dict[str, Any]:
        """``{"unk_token": "[UNK]", ...}``, as written to ``special_tokens_map.json``."""
        mapping: dict[str, Any] = dict(self._special)
        if self._additional:
            mapping["additional_special_tokens"] = list(self._additional)
        return mapping

    @property
    def all_special_tokens(self) -> list[str]:
        """Every special token, in transformers' order (unk, sep, pad, cls, mask, additional)."""
        return list(dict.fromkeys([*self._special.values(), *self._additional]))

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of :attr:`all_special_tokens`, in the same order."""
        return self.convert_tokens_to_ids(self.all_special_tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens a single text (or a pair, ``pair=True``) gets."""
        return self._tokenizer.num_special_tokens_to_add(bool(pair))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, "
            f"do_lower_case={self.do_lower_case}, model_max_length={self.model_max_length})"
        )

    # ------------------------------------------------------------------ pickling

    #: Attributes rebuilt from the JSON string on unpickling, never pickled themselves.
    _UNPICKLED = ("_tokenizer", "_normalizer_state", "_configured", "_lock", "_warned_too_long")

    def __getstate__(self) -> dict[str, Any]:
        # The Rust tokenizer travels as its JSON string; the lock and the cache of
        # configured copies are rebuilt.
        return {k: v for k, v in self.__dict__.items() if k not in self._UNPICKLED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup(Tokenizer.from_str(state["_json"]))

    # ------------------------------------------------------------------ encoding

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | Sequence[Sequence[str]] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
    ) -> BatchEncoding:
        """Tokenize one text, one pair, or a batch of texts or pairs.

        Arguments and results follow transformers' tokenizers.

        Parameters
        ----------
        text : str, list of str, or list of lists of str
            One text or a batch of texts. With ``is_split_into_words=True``, one
            list of words or a batch of such lists. Array-likes (a pandas Series,
            a NumPy array of str) count as lists.
        text_pair : same as ``text``, optional
            The second texts of pairs, one per ``text``. An empty single pair
            (``""``) counts as no pair, as in transformers.
        add_special_tokens : bool, default=True
            Add ``[CLS]`` and ``[SEP]``.
        padding : bool or {'longest', 'max_length', 'do_not_pad'}, default=False
            ``True``/``'longest'`` pads to the longest row, ``'max_length'`` to
            ``max_length`` (or ``model_max_length``).
        truncation : bool or {'longest_first', 'only_first', 'only_second', \
'do_not_truncate'}, optional
            ``True`` means ``'longest_first'``. Left as ``None`` with ``max_length``
            set and ``padding=False``, it means ``'longest_first'`` (as in
            transformers).
        max_length : int, optional
            Length to truncate or pad to; defaults to ``model_max_length`` when
            truncating or padding to max length.
        stride : int, default=0
            With ``return_overflowing_tokens``, how many tokens consecutive windows
            share.
        is_split_into_words : bool, default=False
            ``text`` holds words rather than strings to split on whitespace.
        pad_to_multiple_of : int, optional
            Round padded lengths up to a multiple of this.
        return_tensors : {None, 'pt', 'np'}, default=None
            Lists, torch tensors or NumPy arrays (int64). Tensors need equal
            lengths: pad ragged batches.
        return_token_type_ids, return_attention_mask : bool, default=True
            Include ``token_type_ids`` / ``attention_mask``.
        return_overflowing_tokens : bool, default=False
            Return what truncation cut off as further rows (windows), plus
            ``overflow_to_sample_mapping`` (the input each row came from).
        return_special_tokens_mask, return_offsets_mapping, return_length : bool
            Include ``special_tokens_mask`` (1 on special tokens),
            ``offset_mapping`` (``(start, end)`` character spans; ``(0, 0)`` for
            special tokens) and ``length`` (tokens per row).

        Returns
        -------
        BatchEncoding
            For a single text without ``return_tensors`` or overflow, flat lists;
            otherwise one row per text (or window).

        Examples
        --------
        >>> from bertkit.tokenizer import BertTokenizer
        >>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
        ...                                 "a", "b", "c", "d", "e"])
        >>> tok("a b c d e", truncation=True, max_length=5, stride=1,
        ...     return_overflowing_tokens=True)["input_ids"]
        [[2, 5, 6, 7, 3], [2, 7, 8, 9, 3]]
        >>> tok(["a b", "c"], padding="max_length", max_length=6)["input_ids"]
        [[2, 5, 6, 3, 0, 0], [2, 7, 3, 0, 0, 0]]
        >>> tok("a b", return_offsets_mapping=True)["offset_mapping"]
        [(0, 0), (0, 1), (2, 3), (0, 0)]
        """
        padding_strategy, truncation_strategy, max_length = self._strategies(
            padding, truncation, max_length, pad_to_multiple_of
        )
        if not _is_int(stride) or stride < 0:
            raise InputError(
                f"The 'stride' parameter of BertTokenizer must be a non-negative int. Got {stride!r}."
            )
        if return_tensors not in _RETURN_TENSORS:
            raise InputError(
                "The 'return_tensors' parameter of BertTokenizer must be one of "
                f"{_allowed(_RETURN_TENSORS)}. Got {return_tensors!r}."
            )
        batch, is_batched = self._batch_inputs(text, text_pair, is_split_into_words)

        backend = self._configured_backend(
            padding_strategy, truncation_strategy, max_length, stride, pad_to_multiple_of
        )
        try:
            encodings = backend.encode_batch(
                batch,
                add_special_tokens=bool(add_special_tokens),
                is_pretokenized=bool(is_split_into_words),
            )
        except BaseException as err:
            if isinstance(err, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)):
                raise
            raise InputError(
                f"The tokenizer could not encode the input with truncation="
                f"{truncation_strategy!r}, max_length={max_length!r}, stride={stride!r}: {err}. "
                f"Use a larger max_length, a smaller stride, or another truncation strategy."
            ) from err

        keys = ["input_ids"]
        if return_token_type_ids:
            keys.append("token_type_ids")
        if return_attention_mask:
            keys.append("attention_mask")
        if return_special_tokens_mask:
            keys.append("special_tokens_mask")
        if return_offsets_mapping:
            keys.append("offset_mapping")
        rows = []
        mapping = []
        for index, encoding in enumerate(encodings):
            rows.append(encoding)
            mapping.append(index)
            if return_overflowing_tokens:
                for extra in encoding.overflowing:
                    rows.append(extra)
                    mapping.append(index)
        getters = {
            "input_ids": lambda e: e.ids,
            "token_type_ids": lambda e: e.type_ids,
            "attention_mask": lambda e: e.attention_mask,
            "special_tokens_mask": lambda e: e.special_tokens_mask,
            "offset_mapping": lambda e: e.offsets,
        }
        data: dict[str, Any] = {key: [getters[key](e) for e in rows] for key in keys}
        if return_length:
            data["length"] = [len(e.ids) for e in rows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = mapping

        if max_length is None and not self._warned_too_long:
            longest = max((len(ids) for ids in data["input_ids"]), default=0)
            if longest > self.model_max_length:
                self._warned_too_long = True
                logger.warning(
                    "Token indices sequence length is longer than the specified maximum "
                    "sequence length for this model (%d > %d). Running this sequence through "
                    "the model will result in indexing errors; pass truncation=True.",
                    longest,
                    self.model_max_length,
                )

        if return_tensors is not None:
            data = _to_tensors(data, return_tensors)
        elif not is_batched and not return_overflowing_tokens:
            # transformers drops the batch axis of a single text's lists (not of `length`).
            data = {
                key: value[0] if value and isinstance(value[0], list) else value
                for key, value in data.items()
            }
        return BatchEncoding(data, rows)

    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of):
        if max_length is not None and (not _is_int(max_length) or max_length < 1):
            raise InputError(
                "The 'max_length' parameter of BertTokenizer must be a positive int or None. "
                f"Got {max_length!r}."
            )
        if pad_to_multiple_of is not None and (
            not _is_int(pad_to_multiple_of) or pad_to_multiple_of < 1
        ):
            raise InputError(
                "The 'pad_to_multiple_of' parameter of BertTokenizer must be a positive int or "
                f"None. Got {pad_to_multiple_of!r}."
            )
        if not _hashable_in(padding, _PADDING):
            raise InputError(
                "The 'padding' parameter of BertTokenizer must be one of "
                f"{_allowed(_PADDING)}. Got {padding!r}."
            )
        if truncation is not None and not _hashable_in(truncation, _TRUNCATION):
            raise InputError(
                "The 'truncation' parameter of BertTokenizer must be one of "
                f"{_allowed([None, *_TRUNCATION])}. Got {truncation!r}."
            )
        # transformers: max_length alone (no padding, truncation unset) truncates.
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"
        padding_strategy = _PADDING[padding]
        truncation_strategy = None if truncation is None else _TRUNCATION[truncation]
        if padding is True and max_length is not None and truncation_strategy is None:
            warnings.warn(
                "BertTokenizer: 'max_length' is ignored when padding=True and truncation is off. "
                "Use padding='max_length' to pad to max_length, or truncation=True to cut to it.",
                UserWarning,
                stacklevel=3,
            )
        if max_length is None and (
            padding_strategy == "max_length" or truncation_strategy is not None
        ):
            max_length = self.model_max_length
        if (
            truncation_strategy is not None
            and padding_strategy is not None
            and pad_to_multiple_of is not None
            and max_length % pad_to_multiple_of != 0
        ):
            raise InputError(
                f"Truncation and padding are both on, but the truncation length ({max_length}) "
                f"is not a multiple of pad_to_multiple_of ({pad_to_multiple_of}). Pick a "
                f"max_length that is a multiple of it."
            )
        return padding_strategy, truncation_strategy, max_length

    def _batch_inputs(self, text, text_pair, is_split_into_words):
        text = _as_list(text)
        text_pair = _as_list(text_pair)
        if is_split_into_words:
            is_batched = (
                isinstance(text, list) and bool(text) and isinstance(_as_list(text[0]), list)
            )
        else:
            is_batched = isinstance(text, list)
        kind = "a list of words" if is_split_into_words else "a str"
        if not is_batched:
            _check_sequence(text, "text", is_split_into_words)
            if text_pair is None:
                return [text], False
            _check_sequence(text_pair, "text_pair", is_split_into_words)
            if not text_pair:  # transformers: an empty single pair counts as no pair
                return [text], False
            return [(text, text_pair)], False
        for index, item in enumerate(text):
            _check_sequence(_as_list(item), f"text[{index}]", is_split_into_words, kind)
        if text_pair is None:
            return [_as_list(t) for t in text], True
        if not isinstance(text_pair, list):
            raise InputError(
                "When 'text' is a batch, 'text_pair' must be a list of the same length "
                f"({len(text)}). Got {type(text_pair).__name__}."
            )
        if len(text_pair) != len(text):
            raise InputError(
                f"'text' and 'text_pair' must be batches of the same length. Got {len(text)} "
                f"texts and {len(text_pair)} pairs."
            )
        for index, item in enumerate(text_pair):
            _check_sequence(_as_list(item), f"text_pair[{index}]", is_split_into_words, kind)
        return [(_as_list(a), _as_list(b)) for a, b in zip(text, text_pair, strict=True)], True

    def _configured_backend(self, padding, truncation, max_length, stride, pad_to_multiple_of):
        if padding is None and truncation is None:
            return self._tokenizer
        truncation_key = None if truncation is None else (max_length, stride, truncation)
        padding_key = None
        if padding is not None:
            padding_key = (max_length if padding == "max_length" else None, pad_to_multiple_of)
        key = (truncation_key, padding_key)
        with self._lock:
            tokenizer = self._configured.get(key)
            if tokenizer is not None:
                self._configured.move_to_end(key)
                return tokenizer
            tokenizer = Tokenizer.from_str(self._json)
            if truncation_key is not None:
                tokenizer.enable_truncation(
                    max_length=max_length, stride=stride, strategy=truncation, direction="right"
                )
            if padding_key is not None:
                tokenizer.enable_padding(
                    direction="right",
                    pad_id=self.pad_token_id,
                    pad_type_id=self.pad_token_type_id,
                    pad_token=self.pad_token,
                    length=padding_key[0],
                    pad_to_multiple_of=pad_to_multiple_of,
                )
            self._configured[key] = tokenizer
            while len(self._configured) > _CACHE_SIZE:
                self._configured.popitem(last=False)
            return tokenizer

    def tokenize(
        self, text: str, pair: str | None = None, add_special_tokens: bool = False
    ) -> list[str]:
        """Split one text (or pair) into WordPiece token strings.

        Examples
        --------
        >>> from bertkit.tokenizer import BertTokenizer
        >>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
        ...                                 "play", "##ing"])
        >>> tok.tokenize("Playing [MASK] jazz")
        ['play', '##ing', '[MASK]', '[UNK]']
        """
        if not isinstance(text, str) or not (pair is None or isinstance(pair, str)):
            raise InputError(
                "BertTokenizer.tokenize takes one str (and optionally one str pair). Got "
                f"{type(text).__name__}; call the tokenizer itself for batches."
            )
        return self(text, pair, add_special_tokens=add_special_tokens).tokens()

    def encode(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> list[int]:
        """Token ids of one text (or pair); takes the keyword arguments of ``__call__``.

        Examples
        --------
        >>> from bertkit.tokenizer import BertTokenizer
        >>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi"])
        >>> tok.encode("hi", "hi")
        [2, 5, 3, 5, 3]
        """
        is_split = kwargs.get("is_split_into_words", False)
        listed = _as_list(text)
        if isinstance(listed, list) and (not is_split or (listed and isinstance(listed[0], list))):
            raise InputError(
                "BertTokenizer.encode takes one text (a str, or a list of words with "
                "is_split_into_words=True). Got a batch; call the tokenizer itself for batches."
            )
        return self(text, text_pair, **kwargs)["input_ids"]

    # ------------------------------------------------------------------ decoding

    def decode(
        self,
        token_ids: int | Sequence[int] | Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        """Turn token ids back into text.

        Parameters
        ----------
        token_ids : int, sequence of int, 1-D tensor or array
            The ids.
        skip_special_tokens : bool, default=False
            Leave out ``[CLS]``, ``[SEP]``, ``[PAD]``...
        clean_up_tokenization_spaces : bool, optional
            Remove spaces before punctuation and in contractions; defaults to the
            tokenizer's setting.

        Returns
        -------
        str

        Examples
        --------
        >>> from bertkit.tokenizer import BertTokenizer
        >>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
        ...                                 "play", "##ing", "!"])
        >>> tok.decode([2, 5, 6, 7, 3])
        '[CLS] playing! [SEP]'
        >>> tok.decode([2, 5, 6, 7, 3], skip_special_tokens=True)
        'playing!'
        """
        ids = _as_ids(token_ids, "token_ids")
        text = self._tokenizer.decode(ids, skip_special_tokens=bool(skip_special_tokens))
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces:
            text = _clean_up_tokenization(text)
        return text

    def batch_decode(
        self,
        sequences: Iterable[Sequence[int]] | Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[str]:
        """:meth:`decode` each row of ``sequences`` (a list of id lists or a 2-D tensor)."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [
            self.decode(ids, skip_special_tokens, clean_up_tokenization_spaces) for ids in sequences
        ]

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Id of a token (or ids of tokens); unknown tokens map to ``unk_token_id``."""
        if isinstance(tokens, str):
            index = self._tokenizer.token_to_id(tokens)
            return self.unk_token_id if index is None else index
        return [self.convert_tokens_to_ids(token) for token in tokens]

    def convert_ids_to_tokens(
        self, ids: int | Iterable[int], skip_special_tokens: bool = False
    ) -> str | None | list[str | None]:
        """Token of an id (or tokens of ids); ids outside the vocabulary give ``None``."""
        if _is_int(ids) or (hasattr(ids, "ndim") and ids.ndim == 0):
            return self._tokenizer.id_to_token(int(ids))
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._tokenizer.id_to_token(int(i)) for i in _as_ids(ids, "ids") if i not in skip]

    # ------------------------------------------------------------------ saving

    def save(self, folder: str | os.PathLike) -> tuple[Path, ...]:
        """Write the tokenizer in the Hugging Face folder format.

        Writes ``vocab.txt``, ``tokenizer.json``, ``tokenizer_config.json`` and
        ``special_tokens_map.json``; bertkit's :meth:`from_folder` and transformers'
        ``AutoTokenizer.from_pretrained`` load the folder back identically.

        Parameters
        ----------
        folder : path-like
            Created if missing; existing files of those names are replaced.

        Returns
        -------
        tuple of pathlib.Path
            The files written.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> from bertkit.tokenizer import BertTokenizer
        >>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi"])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     sorted(p.name for p in tok.save(folder))
        ['special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vocab = self._tokenizer.get_vocab(with_added_tokens=False)
        vocab_path = folder / "vocab.txt"
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as handle:
            for token, _ in sorted(vocab.items(), key=lambda item: item[1]):
                handle.write(token + "\n")
        json_path = folder / "tokenizer.json"
        self._tokenizer.save(str(json_path))

        added = {
            str(index): {
                "content": token.content,
                "lstrip": token.lstrip,
                "normalized": token.normalized,
                "rstrip": token.rstrip,
                "single_word": token.single_word,
                "special": token.special,
            }
            for index, token in sorted(self._tokenizer.get_added_tokens_decoder().items())
        }
        config: dict[str, Any] = {"added_tokens_decoder": added}
        if self._additional:
            config["additional_special_tokens"] = list(self._additional)
        config["clean_up_tokenization_spaces"] = self.clean_up_tokenization_spaces
        config["cls_token"] = self.cls_token
        if self.do_lower_case is not None:
            config["do_lower_case"] = self.do_lower_case
        config.update(
            mask_token=self.mask_token,
            model_max_length=self.model_max_length,
            pad_token=self.pad_token,
            sep_token=self.sep_token,
        )
        if "strip_accents" in self._normalizer_state:
            config["strip_accents"] = self.strip_accents
        if self.tokenize_chinese_chars is not None:
            config["tokenize_chinese_chars"] = self.tokenize_chinese_chars
        config.update(tokenizer_class="BertTokenizer", unk_token=self.unk_token)
        config_path = folder / "tokenizer_config.json"
        config_path.write_text(
            json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        map_path = folder / "special_tokens_map.json"
        map_path.write_text(
            json.dumps(self.special_tokens_map, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        return (vocab_path, json_path, config_path, map_path)

    save_pretrained = save


def load_tokenizer(source: str | os.PathLike = "default", *, kind: str = "wordpiece") -> Any:
    """Load the tokenizer of a model source.

    Parameters
    ----------
    source : str or path-like, default="default"
        ``"default"`` (the all-MiniLM-L6-v2 model package), a model folder, or
        anything a model-source plugin resolves (see :func:`bertkit.resolve_model`).
    kind : str, default="wordpiece"
        A name from the ``bertkit_register_tokenizers`` plugin table.

    Returns
    -------
    BertTokenizer
        Or whatever the ``kind`` plugin's loader returns.

    Raises
    ------
    bertkit.ModelNotFoundError
        When ``source`` resolves to no folder.
    bertkit.UnknownNameError
        When no plugin registered ``kind``; the message lists the known kinds.

    Examples
    --------
    >>> import tempfile
    >>> from bertkit.tokenizer import BertTokenizer, load_tokenizer
    >>> tok = BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi"])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = tok.save(folder)
    ...     load_tokenizer(folder)("hi")["input_ids"]
    [2, 5, 3]
    """
    folder = resolve_model(source)
    loader = plugins.get("tokenizer", kind)
    return loader(folder)


# ---------------------------------------------------------------------- helpers


def _hashable_in(value: Any, table: Mapping) -> bool:
    try:
        return value in table and (isinstance(value, bool) or isinstance(value, str))
    except TypeError:
        return False


def _as_list(value: Any) -> Any:
    """Tuples, NumPy arrays and pandas Series become lists; anything else is unchanged."""
    if isinstance(value, (str, bytes)) or value is None:
        return value
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "tolist") and getattr(value, "ndim", 1) >= 1:
        return value.tolist()
    return value


def _check_sequence(value: Any, name: str, is_split_into_words: bool, kind: str | None = None):
    if is_split_into_words:
        if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
            bad = (
                value
                if not isinstance(value, list)
                else next(w for w in value if not isinstance(w, str))
            )
            raise InputError(
                f"With is_split_into_words=True, {name!r} must be a list of str words "
                f"(or a batch of such lists). Got {type(bad).__name__}: {bad!r:.60}."
            )
        return
    if not isinstance(value, str):
        where = "each item of a batch" if kind else "a text"
        raise InputError(
            f"{name!r} must be a str ({where}), a list of str, or, with "
            f"is_split_into_words=True, lists of words. Got {type(value).__name__}: "
            f"{value!r:.60}."
        )


def _as_ids(token_ids: Any, name: str) -> list[int]:
    if hasattr(token_ids, "tolist"):
        token_ids = token_ids.tolist()
    if _is_int(token_ids):
        token_ids = [token_ids]
    try:
        ids = [int(i) for i in token_ids]
    except (TypeError, ValueError) as err:
        raise InputError(
            f"The {name!r} parameter must be an int, a sequence of ints, or a 1-D tensor/array. "
            f"Got {type(token_ids).__name__}."
        ) from err
    negative = [i for i in ids if i < 0]
    if negative:
        raise InputError(
            f"The {name!r} parameter holds negative ids ({negative[0]}); token ids are >= 0. "
            f"Drop label padding such as -100 before decoding."
        )
    return ids


def _clean_up_tokenization(text: str) -> str:
    """transformers' ``clean_up_tokenization``: spaces before punctuation and contractions."""
    return (
        text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
    )


def _read_vocab(vocab: Any) -> dict[str, int]:
    if isinstance(vocab, (str, os.PathLike)):
        path = Path(vocab)
        if not path.is_file():
            raise ModelNotFoundError(
                f"The vocabulary file {str(path)!r} does not exist. Pass the path of a vocab.txt "
                f"(one token per line), a {{token: id}} dict, or a list of tokens."
            )
        mapping: dict[str, int] = {}
        # As transformers' load_vocab: the line number is the id, a repeated token keeps its last.
        with open(path, encoding="utf-8") as handle:
            for index, line in enumerate(handle.readlines()):
                mapping[line.rstrip("\n")] = index
    elif isinstance(vocab, Mapping):
        mapping = dict(vocab)
    elif isinstance(vocab, Sequence):
        mapping = {}
        for index, token in enumerate(vocab):
            mapping[token] = index
    else:
        raise ConfigError(
            "The 'vocab' parameter of BertTokenizer.from_vocab must be a path to vocab.txt, "
            f"a {{token: id}} dict or a list of tokens. Got {type(vocab).__name__}."
        )
    if not mapping:
        raise ConfigError("The 'vocab' parameter of BertTokenizer.from_vocab is empty.")
    bad = [(t, i) for t, i in mapping.items() if not isinstance(t, str) or not _is_int(i) or i < 0]
    if bad:
        raise ConfigError(
            "The 'vocab' parameter of BertTokenizer.from_vocab must map str tokens to "
            f"non-negative int ids. Got {bad[0]!r}."
        )
    return mapping


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"Could not read {str(path)!r} as JSON: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{str(path)!r} must hold a JSON object. Got {type(data).__name__}.")
    return data


def _token_content(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _apply_normalizer_settings(backend: Tokenizer, lowercase, strip_accents, chinese) -> None:
    """Override a tokenizer.json normalizer the way BertTokenizerFast does."""
    if backend.normalizer is None:
        return
    state = json.loads(backend.normalizer.__getstate__())
    if (
        state.get("lowercase", lowercase) != lowercase
        or state.get("strip_accents", strip_accents) != strip_accents
        or state.get("handle_chinese_chars", chinese) != chinese
    ):
        normalizer_class = getattr(normalizers, state.pop("type"))
        state["lowercase"] = lowercase
        state["strip_accents"] = strip_accents
        state["handle_chinese_chars"] = chinese
        backend.normalizer = normalizer_class(**state)


def _add_config_tokens(backend: Tokenizer, added_tokens_decoder: Any) -> None:
    """Add tokens listed in tokenizer_config.json's ``added_tokens_decoder`` but missing."""
    if not isinstance(added_tokens_decoder, dict):
        return
    present = {t.content for t in backend.get_added_tokens_decoder().values()}
    entries = []
    for index, entry in added_tokens_decoder.items():
        if isinstance(entry, dict) and entry.get("content") and entry["content"] not in present:
            try:
                entries.append((int(index), entry))
            except ValueError:
                continue
    for _, entry in sorted(entries, key=lambda item: item[0]):
        special = bool(entry.get("special", False))
        token = AddedToken(
            entry["content"],
            single_word=bool(entry.get("single_word", False)),
            lstrip=bool(entry.get("lstrip", False)),
            rstrip=bool(entry.get("rstrip", False)),
            normalized=bool(entry.get("normalized", not special)),
            special=special,
        )
        if special:
            backend.add_special_tokens([token])
        else:
            backend.add_tokens([token])
