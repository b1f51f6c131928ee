"""CoNLL column files and the IOB1 / IOB2 / IOBES / BILOU tagging schemes.

A tag is ``O`` (outside any entity) or ``<prefix>-<type>`` such as ``B-PER``. The
schemes differ in which prefixes start, continue and end an entity:

======  ==========================================================================
IOB1    ``I-`` everywhere; ``B-`` only starts an entity that directly follows
        another of the same type (the original CoNLL-2003 files).
IOB2    ``B-`` starts every entity, ``I-`` continues it (also called BIO).
IOBES   ``S-`` single-token entity; ``B-`` begin, ``I-`` inside, ``E-`` end (BIOES).
BILOU   IOBES with ``U-`` (unit) for ``S-`` and ``L-`` (last) for ``E-``.
======  ==========================================================================

Scheme names are case-insensitive, and ``"BIO"`` / ``"BIOES"`` name IOB2 / IOBES.
Tags are decoded into entity spans by :func:`bertkit.metrics.get_entities`, the one
decoder bertkit has; this module only renders spans back into tags and reads files.
(``get_entities`` also decodes the IO scheme, which is not offered here: it cannot
write two adjacent entities of one type.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from .._errors import InputError
from ..metrics import _ForeignTagError, _normalize_scheme, get_entities
from ._common import PathLike, check_file, input_error, iter_lines, shorten

__all__ = ["convert_tags", "read_conll", "write_conll"]

_CONLL = "CoNLL"
_DOCSTART = "-DOCSTART-"
#: The schemes this module reads and writes, by their canonical bertkit.metrics names
#: (upper-cased in messages and in ``read_conll``'s ``attrs["scheme"]``).
_SCHEMES = ("iob1", "iob2", "iobes", "bilou")

Span = tuple[str, int, int]


def _scheme(name: object, parameter: str, owner: str) -> str:
    """The canonical lower-case name of a scheme name (any case, or an alias)."""
    return _normalize_scheme(name, owner, parameter, _SCHEMES)


def _split_tag(tag: str) -> tuple[str, str] | None:
    """``('O', '')``, ``(prefix, type)`` for ``B-PER``, or None when the tag is not of that form."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIESLU":
        return tag[0], tag[2:]
    return None


def _ill_formed(tags: Sequence[str], scheme: str, lenient: list[Span]) -> tuple[int, str] | None:
    """Where ``tags`` break ``scheme``, or None when they are well formed.

    ``lenient`` is their conlleval reading. The sequence is well formed when the strict
    reading (which drops every ill-formed span) gives the same entities; otherwise this
    returns the start of the first entity that only one reading has, and a reason.
    """
    strict = get_entities(tags, scheme, mode="strict")
    if strict == lenient:
        return None
    entity = min(set(lenient) ^ set(strict), key=lambda span: (span[1], span[2]))
    if entity in lenient:
        reason = f"conlleval's reading has the entity {entity}, which the strict reading drops"
    else:
        reason = f"the strict reading has the entity {entity}, which conlleval's reading lacks"
    return entity[1], reason


def _render(spans: Iterable[Span], length: int, scheme: str) -> list[str]:
    """Tags in ``scheme`` (a canonical name) for entity spans over ``length`` tokens."""
    tags = ["O"] * length
    previous: Span | None = None
    single, last = ("U", "L") if scheme == "bilou" else ("S", "E")
    for kind, start, end in spans:
        if scheme == "iob1":
            touches = previous is not None and previous[0] == kind and previous[2] == start
            tags[start:end] = [f"I-{kind}"] * (end - start)
            if touches:
                tags[start] = f"B-{kind}"
        elif scheme == "iob2":
            tags[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
        elif end - start == 1:
            tags[start] = f"{single}-{kind}"
        else:
            tags[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 2) + [f"{last}-{kind}"]
        previous = (kind, start, end)
    return tags


def _tag_list(tags: Sequence[str], owner: str) -> list[str]:
    if isinstance(tags, str):
        raise InputError(
            f"The 'tags' parameter of {owner} must be the tags of one sentence, a sequence of "
            f"str such as ['B-PER', 'I-PER', 'O']. Got the string {shorten(tags)}."
        )
    return list(tags)


def convert_tags(
    tags: Sequence[str], from_scheme: str, to_scheme: str, *, strict: bool = True
) -> list[str]:
    """Convert the tags of one sentence from one tagging scheme to another.

    The entities are read with :func:`bertkit.metrics.get_entities` (its default,
    conlleval reading) and written back in ``to_scheme``, so converting to the same
    scheme normalises the tags.

    Parameters
    ----------
    tags : sequence of str
        One tag per token.
    from_scheme, to_scheme : {"IOB1", "IOB2", "BIO", "IOBES", "BIOES", "BILOU"}
        The scheme of ``tags`` and the one wanted, in any case. IOBES tags use
        ``E-``/``S-`` and BILOU tags ``L-``/``U-``, never a mix.
    strict : bool, default=True
        Raise on a sequence that breaks ``from_scheme``: one whose strict reading
        (``get_entities(..., mode="strict")``) differs from its conlleval reading, such
        as an IOB2 ``I-`` that continues no entity, an IOBES entity without its ``E-``,
        or an IOB1 ``B-`` that does not follow an entity of its type. With ``False``,
        read it as conlleval does: a tag that cannot continue the open entity starts a
        new one.

    Returns
    -------
    list of str
        The tags in ``to_scheme``, one per token.

    Raises
    ------
    bertkit.InputError
        For an unknown scheme name, a tag that is not ``O`` or ``<prefix>-<type>`` with
        a prefix of ``from_scheme``, or (with ``strict``) a sequence that breaks it; the
        message names the token position (for a broken sequence, the start of the first
        entity on which the two readings disagree).

    Examples
    --------
    >>> from bertkit.datasets import convert_tags
    >>> convert_tags(["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "IOB1", "IOB2")
    ['B-PER', 'I-PER', 'B-PER', 'O', 'B-LOC']
    >>> convert_tags(["B-PER", "I-PER", "O", "B-LOC"], "bio", "iobes")
    ['B-PER', 'E-PER', 'O', 'S-LOC']
    >>> convert_tags(["B-PER", "L-PER", "U-LOC"], "BILOU", "IOB1")
    ['I-PER', 'I-PER', 'I-LOC']
    >>> convert_tags(["O", "I-PER"], "IOB2", "IOB2", strict=False)
    ['O', 'B-PER']
    """
    tags = _tag_list(tags, "convert_tags")
    source = _scheme(from_scheme, "from_scheme", "convert_tags")
    target = _scheme(to_scheme, "to_scheme", "convert_tags")
    try:
        spans = get_entities(tags, source)
    except _ForeignTagError as err:
        raise InputError(
            f"convert_tags: the tag at position {err.position}, {err.tag!r}, is not a tag of "
            f"{source.upper()}. {err.rule} Pick the 'from_scheme' the tags are written in."
        ) from None
    if strict:
        broken = _ill_formed(tags, source, spans)
        if broken is not None:
            position, reason = broken
            raise InputError(
                f"convert_tags: the tags break {source.upper()} at position {position} "
                f"({tags[position]!r}): {reason}. Pass strict=False to read it as conlleval does."
            )
    return _render(spans, len(tags), target)


def _detect_scheme(sentences: Sequence[Sequence[str]]) -> str | None:
    """The canonical name of the scheme the tags are written in, or None when they are not
    entity tags at all."""
    prefixes: set[str] = set()
    iob1 = False
    for tags in sentences:
        previous = ""
        for tag in tags:
            parts = _split_tag(tag)
            if parts is None:
                return None
            prefix, kind = parts
            prefixes.add(prefix)
            if prefix == "I" and previous != kind:
                iob1 = True
            previous = kind
    if prefixes & set("ESLU"):
        # A file mixing E-/S- with L-/U- is read as IOBES, and its first L-/U- tag reported.
        return "bilou" if prefixes & set("LU") and not prefixes & set("ES") else "iobes"
    return "iob1" if iob1 else "iob2"


def read_conll(
    path: PathLike,
    *,
    tag_column: int = -1,
    token_column: int = 0,
    scheme: str | None = "auto",
    to_scheme: str | None = None,
    sep: str | None = None,
) -> pd.DataFrame:
    """Read a CoNLL column file (CoNLL-2003 NER and the like) into one row per sentence.

    Each non-blank line holds one token and its columns (``EU NNP B-NP B-ORG``); a
    blank (or whitespace-only) line ends a sentence. A line whose first column is
    ``-DOCSTART-`` is not a token: it starts a new document.

    Parameters
    ----------
    path : str or os.PathLike
        The file (UTF-8).
    tag_column : int, default=-1
        Column of the tag to return; negative counts from the end (``-1`` is the NER
        column of CoNLL-2003, ``1`` its part-of-speech column).
    token_column : int, default=0
        Column of the token.
    scheme : {"auto", "IOB1", "IOB2", "BIO", "IOBES", "BIOES", "BILOU"} or None, default="auto"
        Tagging scheme of the tag column, in any case. ``"auto"`` detects it: BILOU
        when tags have ``L-`` or ``U-`` prefixes and none ``E-`` or ``S-``, IOBES when
        any has ``E-``, ``S-`` (or a mix), IOB1 when any ``I-`` tag does not continue
        an entity of its type, else IOB2; a column whose tags are not all ``O`` or
        ``<prefix>-<type>`` (POS tags) is read as plain labels. The tags are then
        checked strictly, as by ``convert_tags(..., strict=True)``: every tag must
        belong to the scheme and every sentence be well formed. ``None`` reads plain
        labels without any check.
    to_scheme : str or None, default=None
        Convert the tags to this scheme, named as ``scheme`` is (``"IOB2"`` for the
        IOB1 files of the original CoNLL-2003 release). ``None`` keeps them as written.
    sep : str or None, default=None
        Column separator; ``None`` splits on runs of whitespace (spaces or tabs).

    Returns
    -------
    pandas.DataFrame
        One row per sentence, in file order, with the columns ``tokens`` (list of
        str), ``tags`` (list of str, one per token) and ``document`` (int64: 0 for
        the sentences before the second ``-DOCSTART-``, then 1, 2...; 0 for every
        sentence of a file without ``-DOCSTART-`` lines; documents without
        sentences are not counted). ``frame.attrs["scheme"]`` is the scheme of the
        returned tags by its upper-case canonical name, ``"IOB1"``, ``"IOB2"``,
        ``"IOBES"`` or ``"BILOU"`` however it was named (``to_scheme="bio"`` gives
        ``"IOB2"``), or ``None`` for plain labels.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    bertkit.InputError
        For an unknown scheme name, or if a token line has a different number of
        columns than the first one, a column index is out of range, or the tags break
        their scheme; the message then names the line.

    Examples
    --------
    >>> import os, tempfile
    >>> from bertkit.datasets import read_conll
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "eng.testa")
    >>> with open(path, "w") as f:
    ...     _ = f.write("-DOCSTART- -X- O O\\n\\nPeter NNP I-NP I-PER\\nBlackburn NNP I-NP I-PER\\n"
    ...                 "\\nEU NNP I-NP I-ORG\\nrejects VBZ I-VP O\\n")
    >>> frame = read_conll(path, to_scheme="IOB2")
    >>> frame.attrs["scheme"], frame["tags"].tolist()
    ('IOB2', [['B-PER', 'I-PER'], ['B-ORG', 'O']])
    >>> frame["tokens"].tolist(), frame["document"].tolist()
    ([['Peter', 'Blackburn'], ['EU', 'rejects']], [0, 0])
    >>> read_conll(path, tag_column=1)["tags"].tolist()
    [['NNP', 'NNP'], ['NNP', 'VBZ']]
    >>> tmp.cleanup()
    """
    path = check_file(path, _CONLL)
    if isinstance(scheme, str) and scheme.lower() == "auto":
        scheme = "auto"
    elif scheme is not None:
        scheme = _scheme(scheme, "scheme", "read_conll")
    if to_scheme is not None:
        to_scheme = _scheme(to_scheme, "to_scheme", "read_conll")
    for name, value in (("tag_column", tag_column), ("token_column", token_column)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(
                f"The {name!r} parameter of read_conll must be an int column index. Got {value!r}."
            )
    if sep == "":
        raise InputError("The 'sep' parameter of read_conll must be a non-empty string or None.")

    sentences: list[list[str]] = []
    sentence_tags: list[list[str]] = []
    first_lines: list[int] = []
    documents: list[int] = []
    n_columns = 0
    columns_line = 0
    document, document_used = 0, False
    tokens: list[str] = []
    tags: list[str] = []
    start = 0

    def end_sentence() -> None:
        nonlocal tokens, tags, document_used
        if tokens:
            sentences.append(tokens)
            sentence_tags.append(tags)
            first_lines.append(start)
            documents.append(document)
            document_used = True
            tokens, tags = [], []

    for number, line in iter_lines(path, _CONLL):
        fields = line.split(sep) if sep is not None else line.split()
        if not fields or (sep is not None and not line.strip()):
            end_sentence()
            continue
        if fields[0].startswith(_DOCSTART) and fields[0].split(maxsplit=1)[0] == _DOCSTART:
            end_sentence()
            if document_used:
                document, document_used = document + 1, False
            continue
        if not n_columns:
            n_columns, columns_line = len(fields), number
            for name, value in (("tag_column", tag_column), ("token_column", token_column)):
                if not -n_columns <= value < n_columns:
                    raise input_error(
                        path, number, _CONLL,
                        f"the {name!r} parameter of read_conll is {value}, but the first token "
                        f"line has {n_columns} columns (so it must be in "
                        f"[{-n_columns}, {n_columns - 1}]): {shorten(line)}.",
                    )
        elif len(fields) != n_columns:
            split = "runs of whitespace" if sep is None else repr(sep)
            raise input_error(
                path, number, _CONLL,
                f"expected {n_columns} columns (split on {split}) like the first token line "
                f"(line {columns_line}), got {len(fields)}: {shorten(line)}.",
            )
        if not tokens:
            start = number
        tokens.append(fields[token_column])
        tags.append(fields[tag_column])
    end_sentence()

    found = _detect_scheme(sentence_tags) if scheme == "auto" else scheme
    if found is not None and scheme is not None:
        detected = " (detected)" if scheme == "auto" else ""
        hint = (
            "Fix the file, pass the scheme it is written in, or pass scheme=None to read the "
            "tags unchecked."
        )
        converted = []
        for tags, first in zip(sentence_tags, first_lines, strict=True):
            try:
                spans = get_entities(tags, found)
            except _ForeignTagError as err:
                raise input_error(
                    path, first + err.position, _CONLL,
                    f"the tag {err.tag!r} is not a tag of {found.upper()}{detected}. {err.rule} "
                    f"{hint}",
                ) from None
            broken = _ill_formed(tags, found, spans)
            if broken is not None:
                position, reason = broken
                raise input_error(
                    path, first + position, _CONLL,
                    f"the tags break {found.upper()}{detected} at {tags[position]!r}: {reason}. "
                    f"{hint}",
                )
            if to_scheme is not None:
                converted.append(_render(spans, len(tags), to_scheme))
        if to_scheme is not None:
            sentence_tags, found = converted, to_scheme
    elif to_scheme is not None:
        raise InputError(
            f"read_conll cannot convert the tags of {str(path)!r} to {to_scheme.upper()}: "
            f"column {tag_column} holds plain labels, not IOB/IOBES entity tags"
            + (" (scheme=None)." if scheme is None else ".")
            + " Pick the entity column with tag_column, or name its scheme."
        )
    frame = pd.DataFrame(
        {"tokens": sentences, "tags": sentence_tags, "document": documents},
        columns=["tokens", "tags", "document"],
    )
    frame["document"] = frame["document"].astype("int64")
    frame.attrs["scheme"] = found.upper() if found is not None and scheme is not None else None
    return frame


def _check_fields(values: Sequence[str], what: str, sentence: int, sep: str) -> None:
    for position, value in enumerate(values):
        bad = (
            not isinstance(value, str)
            or not value
            or value == _DOCSTART
            or "\n" in value
            or "\r" in value
            or sep in value
            or (sep == " " and any(c.isspace() for c in value))
        )
        if bad:
            raise InputError(
                f"write_conll cannot write {what} {value!r} (sentence {sentence}, position "
                f"{position}): every field must be a non-empty str without line breaks or the "
                f"separator {sep!r}"
                + (" (or any whitespace: read_conll splits on it)" if sep == " " else "")
                + f", and not {_DOCSTART!r}."
            )


def write_conll(
    path: PathLike,
    tokens: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    *,
    extra_columns: Sequence[Sequence[Sequence[str]]] | None = None,
    documents: Sequence[int] | None = None,
    sep: str = " ",
) -> None:
    """Write sentences in the CoNLL column format that :func:`read_conll` reads.

    Each token goes on its own line as ``token [extra columns...] tag``, and every
    sentence is followed by a blank line. With ``documents``, a ``-DOCSTART-`` line
    (``-DOCSTART- -X- ... O``) and a blank line come before the first sentence of each
    document, as in the CoNLL-2003 files, so reading CoNLL-2003 and writing it back
    with its POS and chunk columns gives the same bytes.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (UTF-8, ``\\n`` line endings); it is replaced if it exists.
    tokens : sequence of sequences of str
        The tokens of each sentence (e.g. ``frame["tokens"]``).
    tags : sequence of sequences of str
        One tag per token (gold tags or predictions), same shape as ``tokens``.
    extra_columns : sequence of columns, optional
        Columns written between the token and the tag (e.g. part of speech), each
        shaped like ``tokens``.
    documents : sequence of int, optional
        The document of each sentence (``frame["document"]``); a ``-DOCSTART-`` line
        is written wherever it changes, and before the first sentence.
    sep : str, default=" "
        Column separator.

    Raises
    ------
    bertkit.InputError
        If the shapes differ (the message names the sentence), a sentence is empty,
        or a field is empty or holds a line break or the separator.

    Examples
    --------
    >>> import os, pathlib, tempfile
    >>> from bertkit.datasets import read_conll, write_conll
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "predictions.txt")
    >>> write_conll(path, [["Peter", "Blackburn"], ["EU", "rejects"]],
    ...             [["B-PER", "I-PER"], ["B-ORG", "O"]], extra_columns=[[["NNP", "NNP"],
    ...             ["NNP", "VBZ"]]], documents=[0, 0])
    >>> print(pathlib.Path(path).read_text(), end="")
    -DOCSTART- -X- O
    <BLANKLINE>
    Peter NNP B-PER
    Blackburn NNP I-PER
    <BLANKLINE>
    EU NNP B-ORG
    rejects VBZ O
    <BLANKLINE>
    >>> read_conll(path)["tags"].tolist()
    [['B-PER', 'I-PER'], ['B-ORG', 'O']]
    >>> tmp.cleanup()
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"The path of write_conll must be a str or os.PathLike. Got {path!r}.")
    if not isinstance(sep, str) or not sep or "\n" in sep or "\r" in sep:
        raise InputError(
            f"The 'sep' parameter of write_conll must be a non-empty str without line breaks. "
            f"Got {sep!r}."
        )
    sentences = [list(sentence) for sentence in tokens]
    columns = [[list(s) for s in column] for column in (extra_columns or [])]
    columns.append([list(s) for s in tags])
    names = [f"extra_columns[{i}]" for i in range(len(columns) - 1)] + ["tags"]
    for name, column in zip(names, columns, strict=True):
        if len(column) != len(sentences):
            raise InputError(
                f"write_conll needs one entry of {name} per sentence: {len(sentences)} "
                f"sentences of tokens, {len(column)} in {name}."
            )
    if documents is not None:
        documents = list(documents)
        if len(documents) != len(sentences):
            raise InputError(
                f"write_conll needs one document number per sentence: {len(sentences)} "
                f"sentences, {len(documents)} documents."
            )
    docstart = sep.join([_DOCSTART] + ["-X-"] * (len(columns) - 1) + ["O"])
    out: list[str] = []
    previous = None
    for index, sentence in enumerate(sentences):
        if not sentence:
            raise InputError(f"write_conll cannot write sentence {index}: it has no tokens.")
        _check_fields(sentence, "the token", index, sep)
        for name, column in zip(names, columns, strict=True):
            if len(column[index]) != len(sentence):
                raise InputError(
                    f"write_conll: sentence {index} has {len(sentence)} tokens but "
                    f"{len(column[index])} entries in {name}."
                )
            _check_fields(column[index], f"the {name} value", index, sep)
        if documents is not None and (index == 0 or documents[index] != previous):
            out.append(f"{docstart}\n\n")
            previous = documents[index]
        for position, token in enumerate(sentence):
            out.append(sep.join([token] + [column[index][position] for column in columns]))
            out.append("\n")
        out.append("\n")
    Path(path).write_text("".join(out), encoding="utf-8", newline="\n")
