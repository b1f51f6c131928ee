"""Readers for raw pretraining text: blank-line separated documents and WikiText."""

from __future__ import annotations

import re

import pandas as pd

from .._errors import InputError
from ._common import PathLike, check_file, iter_lines

__all__ = ["read_text_documents", "read_wikitext"]

_TEXT = "text"
_WIKITEXT = "WikiText"
#: ``= Title =``, ``= = Section = =``...: as many ``=`` (space separated) on both sides.
_HEADING = re.compile(r"((?:= )+)(\S.*?)((?: =)+)")


def read_text_documents(path: PathLike, *, min_length: int = 1) -> pd.DataFrame:
    """Read a raw text file of documents separated by blank lines (for MLM/NSP pretraining).

    This is the input format of BERT's ``create_pretraining_data.py``: one sentence
    (or other segment) per line, and one or more blank lines between documents. A
    line holding only whitespace counts as blank.

    Parameters
    ----------
    path : str or os.PathLike
        The text file (UTF-8).
    min_length : int, default=1
        Drop documents with fewer lines than this (``2`` keeps only documents that
        can give a next-sentence pair).

    Returns
    -------
    pandas.DataFrame
        One row per document, in file order, with the columns ``sentences`` (list of
        str: the document's lines, without their line ending but otherwise as
        written) and ``text`` (str: the lines joined with ``"\\n"``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    bertkit.InputError
        If the file is not UTF-8 (the message names the line).

    Examples
    --------
    >>> import os, tempfile
    >>> from bertkit.datasets import read_text_documents
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "corpus.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("Lobsters are blue.\\nThey live in the sea.\\n\\n\\nPeter ran.\\n")
    >>> frame = read_text_documents(path)
    >>> frame["sentences"].tolist()
    [['Lobsters are blue.', 'They live in the sea.'], ['Peter ran.']]
    >>> read_text_documents(path, min_length=2)["text"].tolist()
    ['Lobsters are blue.\\nThey live in the sea.']
    >>> tmp.cleanup()
    """
    path = check_file(path, _TEXT)
    if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 1:
        raise InputError(
            f"The 'min_length' parameter of read_text_documents must be an int >= 1. "
            f"Got {min_length!r}."
        )
    documents: list[list[str]] = []
    current: list[str] = []
    for _, line in iter_lines(path, _TEXT):
        if line.strip():
            current.append(line)
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    documents = [document for document in documents if len(document) >= min_length]
    return pd.DataFrame(
        {"sentences": documents, "text": ["\n".join(document) for document in documents]},
        columns=["sentences", "text"],
    )


def read_wikitext(path: PathLike, *, split: str = "article") -> pd.DataFrame:
    """Read a raw WikiText file (``wiki.train.raw``, ``wiki.valid.raw``, ``wiki.test.raw``).

    WikiText puts every paragraph of a Wikipedia article on one line, and every
    heading on a line of its own between two blank lines: `` = Title = `` starts an
    article, `` = = Section = = `` (two or more ``=``) a section. Headings are not
    returned as text. Lines are stripped of the spaces WikiText pads them with. A
    line that looks like a heading but is not surrounded by blank lines (e.g.
    `` = 1 henry and capacitance C = `` inside a formula in ``wiki.test.raw``) is a
    paragraph.

    Parameters
    ----------
    path : str or os.PathLike
        The WikiText file (UTF-8).
    split : {"article", "paragraph"}, default="article"
        One row per article, or one row per paragraph (line).

    Returns
    -------
    pandas.DataFrame
        With ``split="article"``: the columns ``title`` (str), ``sentences`` (list of
        str: the article's paragraphs) and ``text`` (str: the paragraphs joined with
        ``"\\n"``). With ``split="paragraph"``: the columns ``title`` (the article's),
        ``heading`` (the innermost section heading above the paragraph, ``""`` in the
        article's lead) and ``text``. Paragraphs before the first title get the
        title ``""``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    bertkit.InputError
        If ``split`` is unknown, or the file is not UTF-8 (the message names the line).

    Examples
    --------
    >>> import os, tempfile
    >>> from bertkit.datasets import read_wikitext
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "wiki.valid.raw")
    >>> with open(path, "w") as f:
    ...     _ = f.write(" \\n = Lobster = \\n \\n Lobsters are blue . \\n \\n = = Diet = = \\n \\n"
    ...                 " They eat fish . \\n They eat algae . \\n \\n")
    >>> read_wikitext(path).loc[0].tolist()
    ['Lobster', ['Lobsters are blue .', 'They eat fish .', 'They eat algae .'], 'Lobsters are blue .\\nThey eat fish .\\nThey eat algae .']
    >>> read_wikitext(path, split="paragraph")[["heading", "text"]].values.tolist()
    [['', 'Lobsters are blue .'], ['Diet', 'They eat fish .'], ['Diet', 'They eat algae .']]
    >>> tmp.cleanup()
    """
    path = check_file(path, _WIKITEXT)
    if split not in ("article", "paragraph"):
        raise InputError(
            f"The 'split' parameter of read_wikitext must be one of {{'article', 'paragraph'}}. "
            f"Got {split!r}."
        )
    lines = [line.strip() for _, line in iter_lines(path, _WIKITEXT)]
    titles: list[str] = []
    articles: list[list[str]] = []
    paragraphs: list[tuple[str, str, str]] = []
    title, heading = "", ""
    for index, line in enumerate(lines):
        if not line:
            continue
        match = _HEADING.fullmatch(line)
        if (
            match
            and match.group(1).count("=") == match.group(3).count("=")
            and (index == 0 or not lines[index - 1])
            and (index + 1 == len(lines) or not lines[index + 1])
        ):
            if match.group(1) == "= ":
                title, heading = match.group(2), ""
                titles.append(title)
                articles.append([])
            else:
                heading = match.group(2)
            continue
        if not articles:  # text before the first title
            titles.append("")
            articles.append([])
        articles[-1].append(line)
        paragraphs.append((title, heading, line))
    if split == "paragraph":
        return pd.DataFrame(paragraphs, columns=["title", "heading", "text"])
    return pd.DataFrame(
        {
            "title": titles,
            "sentences": articles,
            "text": ["\n".join(article) for article in articles],
        },
        columns=["title", "sentences", "text"],
    )
