"""Readers for tab-separated sentence tasks: GLUE TSV files and the STS Benchmark."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._errors import InputError
from ._common import PathLike, check_file, input_error, iter_lines, shorten

__all__ = ["read_glue_tsv", "read_sts"]

_GLUE = "GLUE TSV"
_STS = "STS Benchmark"
#: The STS Benchmark columns, in file order (two optional source columns may follow).
STS_COLUMNS = ("genre", "file", "year", "id", "score", "sentence1", "sentence2")


def _convert_labels(values: list[str]) -> np.ndarray | list[str]:
    """int64 when every label is an integer, float64 when every one is a number, else str."""
    try:
        return np.array([int(value) for value in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(value) for value in values], dtype=np.float64)
    except ValueError:
        return values


def read_glue_tsv(
    path: PathLike,
    *,
    text_columns: str | Sequence[str] | None = None,
    label_column: str | None = "label",
) -> pd.DataFrame:
    """Read a GLUE-style tab-separated file with a header row.

    The file is split on tabs exactly as ``pd.read_csv(path, sep="\\t", quoting=3,
    keep_default_na=False)`` would: no quote processing, and texts such as ``null``
    or ``NA`` stay strings. Blank lines are skipped. Unlike pandas, a row with more
    or fewer fields than the header is an error, not silently padded.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.tsv`` file (UTF-8).
    text_columns : str or sequence of str, default=None
        Columns to return as text, in this order. ``None`` returns every column of
        the file other than ``label_column``, in file order.
    label_column : str or None, default="label"
        Column holding the label; it is returned last (after ``text_columns``) and
        converted to int64 when every value is an integer, to float64 when every
        value is a number (STS-B scores), and kept as str otherwise (MNLI's
        ``entailment``...). ``None`` for files without labels (GLUE test splits).

    Returns
    -------
    pandas.DataFrame
        One row per data line; the text columns are str.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    bertkit.InputError
        If a named column is missing (the message lists the columns found), or a
        line has the wrong number of fields (the message names the line).

    Examples
    --------
    >>> import os, tempfile
    >>> from bertkit.datasets import read_glue_tsv
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "dev.tsv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("sentence\\tlabel\\na charming journey \\t1\\nnull\\t0\\n")
    >>> frame = read_glue_tsv(path)
    >>> frame["sentence"].tolist(), frame["label"].tolist()
    (['a charming journey ', 'null'], [1, 0])
    >>> read_glue_tsv(path, text_columns=["text"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bertkit._errors.InputError: ... has no column 'text' (named by text_columns). Columns found: 'sentence', 'label'. ...
    >>> tmp.cleanup()
    """
    path = check_file(path, _GLUE)
    if isinstance(text_columns, str):
        text_columns = [text_columns]
    lines = iter_lines(path, _GLUE)
    header = next(lines, None)
    if header is None or not header[1].strip():
        raise input_error(path, 1, _GLUE, "expected a header row of tab-separated column names.")
    names = header[1].split("\t")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise input_error(
            path, 1, _GLUE, f"the header names these columns more than once: {duplicated}."
        )
    found = ", ".join(repr(name) for name in names)
    if text_columns is None:
        text_names = [name for name in names if name != label_column]
    else:
        text_names = list(text_columns)
        if label_column in text_names or len(set(text_names)) != len(text_names):
            raise InputError(
                f"The 'text_columns' parameter of read_glue_tsv must name distinct columns "
                f"other than label_column={label_column!r}. Got {text_names!r}."
            )
    wanted = [(name, "text_columns") for name in text_names]
    if label_column is not None:
        wanted.append((label_column, "label_column"))
    for name, option in wanted:
        if name not in names:
            hint = (
                " Pass label_column=None for a file without labels (a GLUE test split)."
                if option == "label_column" else " Pass the names of existing columns."
            )
            raise input_error(
                path, 1, _GLUE,
                f"the header has no column {name!r} (named by {option}). Columns found: "
                f"{found}.{hint}",
            )
    rows: list[list[str]] = []
    for number, line in lines:
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(names):
            raise input_error(
                path, number, _GLUE,
                f"expected {len(names)} tab-separated fields like the header (line 1), got "
                f"{len(fields)}: {shorten(line)}.",
            )
        rows.append(fields)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    data: dict[str, object] = {}
    for name, _ in wanted:
        values = list(columns[names.index(name)])
        data[name] = _convert_labels(values) if name == label_column and rows else values
    return pd.DataFrame(data, columns=[name for name, _ in wanted])


def read_sts(path: PathLike) -> pd.DataFrame:
    """Read an STS Benchmark file (``sts-train.csv``, ``sts-dev.csv``, ``sts-test.csv``).

    The files are tab-separated despite their name and have no header. Each line
    holds ``genre file year id score sentence1 sentence2``, optionally followed by
    two source columns (ignored). Fields are split on tabs with no quote processing
    (``pd.read_csv(sep="\\t", quoting=3, header=None)``), so texts keep their quotes,
    backslashes and trailing spaces. Blank lines are skipped.

    Parameters
    ----------
    path : str or os.PathLike
        The STS Benchmark file (UTF-8).

    Returns
    -------
    pandas.DataFrame
        One row per sentence pair with the columns ``sentence1``, ``sentence2`` (str),
        ``score`` (float64, the gold similarity, 0 to 5), ``genre``, ``file`` and
        ``year`` (str, e.g. ``'2012test'``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    bertkit.InputError
        If a line does not have 7 or 9 fields, or its score is not a number (the
        message names the line).

    Examples
    --------
    >>> import os, tempfile
    >>> from bertkit.datasets import read_sts
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "sts-dev.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("main-captions\\tMSRvid\\t2012test\\t0001\\t5.000\\t"
    ...                 "A plane is taking off.\\tAn air plane is taking off.\\n")
    >>> frame = read_sts(path)
    >>> frame.columns.tolist()
    ['sentence1', 'sentence2', 'score', 'genre', 'file', 'year']
    >>> frame.loc[0, "score"], frame.loc[0, "sentence2"]
    (np.float64(5.0), 'An air plane is taking off.')
    >>> tmp.cleanup()
    """
    path = check_file(path, _STS)
    rows: list[list[str]] = []
    scores: list[float] = []
    for number, line in iter_lines(path, _STS):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) not in (7, 9):
            raise input_error(
                path, number, _STS,
                f"expected 7 tab-separated fields ({' '.join(STS_COLUMNS)}) or 9 (with two "
                f"source columns), got {len(fields)}: {shorten(line)}.",
            )
        try:
            scores.append(float(fields[4]))
        except ValueError:
            raise input_error(
                path, number, _STS,
                f"the score (5th field) must be a number, got {fields[4]!r}.",
            ) from None
        rows.append(fields[:7])
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    return pd.DataFrame(
        {
            "sentence1": list(columns[5]),
            "sentence2": list(columns[6]),
            "score": np.array(scores, dtype=np.float64),
            "genre": list(columns[0]),
            "file": list(columns[1]),
            "year": list(columns[2]),
        }
    )
