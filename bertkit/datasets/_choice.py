"""Reader for multiple-choice data: CommonsenseQA JSON lines and SWAG-style CSV."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InputError
from ._common import PathLike, check_file, input_error, iter_lines, shorten

__all__ = ["read_multiple_choice"]

_FORMATS = ("auto", "commonsenseqa", "swag")
_CSQA = "CommonsenseQA JSONL"
_SWAG = "SWAG CSV"
_COLUMNS = ["id", "prompt", "choices", "label", "choice_labels"]


def read_multiple_choice(path: PathLike, *, format: str = "auto") -> pd.DataFrame:
    """Read a multiple-choice file: CommonsenseQA JSON lines or SWAG-style CSV.

    **CommonsenseQA** (``.jsonl``): one JSON object per line with ``id``,
    ``question.stem`` (the prompt), ``question.choices`` (a list of ``{"label",
    "text"}``) and, except in the test split, ``answerKey`` (one of the choice labels).
    Blank lines are skipped.

    **SWAG** (``.csv``, a header row, standard CSV quoting; the column layout of
    rowanz/swagaf and Hugging Face ``swag``): the prompt is ``sent1 + " " + sent2``
    (the full start phrase; ``sent2`` may be absent or empty), the choices are
    ``ending0``, ``ending1``, ... (every such column, in number order) and ``label`` is
    the index of the right ending (the column may be absent, or every value empty,
    in unlabelled files). The id is the ``id`` column if there is one, else
    ``fold-ind``, else the 0-based row number.

    Parameters
    ----------
    path : str or os.PathLike
        The file (UTF-8).
    format : {"auto", "commonsenseqa", "swag"}, default="auto"
        ``"auto"`` picks ``"swag"`` for a ``.csv`` file and ``"commonsenseqa"``
        otherwise.

    Returns
    -------
    pandas.DataFrame
        One row per question with the columns ``id`` (str), ``prompt`` (str),
        ``choices`` (list of str), ``label`` (int64: the index of the right choice in
        ``choices``, ``-1`` in a file without answers) and ``choice_labels`` (list of
        the choice letters, e.g. ``['A', 'B', 'C', 'D', 'E']``; ``None`` for SWAG,
        whose choices have no letters).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    bertkit.InputError
        If a line is not JSON or misses a field, a row has no choices or an answer
        that is not one of them, some rows have answers and others not, or a CSV
        row has the wrong number of fields; the message names the line.

    Examples
    --------
    >>> import os, tempfile
    >>> from bertkit.datasets import read_multiple_choice
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "dev.jsonl")
    >>> with open(path, "w") as f:
    ...     _ = f.write('{"id": "q1", "answerKey": "B", "question": {"stem": "Where is ice?", '
    ...                 '"choices": [{"label": "A", "text": "oven"}, '
    ...                 '{"label": "B", "text": "freezer"}]}}\\n')
    >>> frame = read_multiple_choice(path)
    >>> frame.columns.tolist()
    ['id', 'prompt', 'choices', 'label', 'choice_labels']
    >>> frame.loc[0, "prompt"], frame.loc[0, "choices"], frame.loc[0, "choice_labels"]
    ('Where is ice?', ['oven', 'freezer'], ['A', 'B'])
    >>> frame["label"].tolist()
    [1]
    >>> tmp.cleanup()
    """
    path = check_file(path, "multiple-choice")
    if format not in _FORMATS:
        raise InputError(
            f"The 'format' parameter of read_multiple_choice must be one of "
            f"{{'auto', 'commonsenseqa', 'swag'}}. Got {format!r}."
        )
    if format == "auto":
        format = "swag" if path.suffix.lower() == ".csv" else "commonsenseqa"
    rows = _read_commonsenseqa(path) if format == "commonsenseqa" else _read_swag(path)
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame["label"] = frame["label"].astype(np.int64)
    return frame


def _check_answers(path: Path, what: str, answered: list[tuple[int, bool]]) -> None:
    """Either every row has an answer or none has; else name the first odd one out."""
    with_answer = [line for line, has in answered if has]
    without = [line for line, has in answered if not has]
    if not (with_answer and without):
        return
    if len(without) <= len(with_answer):
        odd, others, state = without[0], with_answer, "has no answer, while {n} other rows have one"
    else:
        odd, others, state = with_answer[0], without, "has an answer, while {n} other rows have none"
    raise input_error(
        path, odd, what,
        f"this row {state.format(n=len(others))} (the first on line {others[0]}). A file must be "
        f"all labelled or all unlabelled.",
    )


def _read_commonsenseqa(path: Path) -> list[list[Any]]:
    rows: list[list[Any]] = []
    answered: list[tuple[int, bool]] = []
    for number, line in iter_lines(path, _CSQA):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise input_error(
                path, number, _CSQA,
                f"not a JSON object: {err.msg} (column {err.colno}): {shorten(line)}.",
            ) from err

        def fail(message: str, number: int = number) -> InputError:
            return input_error(path, number, _CSQA, message)

        if not isinstance(record, dict):
            raise fail(f"expected a JSON object, got {type(record).__name__}.")
        question = record.get("question")
        if not isinstance(question, dict):
            raise fail("expected a 'question' object with 'stem' and 'choices'.")
        stem = question.get("stem")
        if not isinstance(stem, str):
            raise fail("'question.stem' must be a string (the question text).")
        choices = question.get("choices")
        if not isinstance(choices, list) or not choices:
            raise fail("'question.choices' must be a non-empty list of {label, text} objects.")
        texts, letters = [], []
        for n, choice in enumerate(choices):
            if not (
                isinstance(choice, dict)
                and isinstance(choice.get("label"), str)
                and isinstance(choice.get("text"), str)
            ):
                raise fail(
                    f"'question.choices[{n}]' must be an object with string 'label' and "
                    f"'text', got {choice!r:.60}."
                )
            letters.append(choice["label"])
            texts.append(choice["text"])
        if len(set(letters)) != len(letters):
            raise fail(f"the choice labels {letters} repeat a label.")
        label = -1
        if "answerKey" in record:
            key = record["answerKey"]
            if key not in letters:
                raise fail(
                    f"'answerKey' must be one of the choice labels {letters}, got {key!r}."
                )
            label = letters.index(key)
        answered.append((number, label >= 0))
        ident = record.get("id", len(rows))
        rows.append([str(ident), stem, texts, label, letters])
    _check_answers(path, _CSQA, answered)
    return rows


def _read_swag(path: Path) -> list[list[Any]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise input_error(path, 1, _SWAG, "the file is empty; expected a header row.")
            endings = sorted(
                (int(m.group(1)), i)
                for i, name in enumerate(header)
                if (m := re.fullmatch(r"ending(\d+)", name))
            )
            found = ", ".join(repr(name) for name in header)
            if "sent1" not in header or len(endings) < 2:
                raise input_error(
                    path, 1, _SWAG,
                    f"a SWAG file needs the columns 'sent1' and 'ending0', 'ending1', ... "
                    f"Columns found: {found}.",
                )
            if [n for n, _ in endings] != list(range(len(endings))):
                raise input_error(
                    path, 1, _SWAG,
                    f"the ending columns must be numbered 0, 1, 2, ... without gaps. "
                    f"Columns found: {found}.",
                )
            column = {name: i for i, name in enumerate(header)}
            rows: list[list[Any]] = []
            answered: list[tuple[int, bool]] = []
            start = reader.line_num + 1
            for fields in reader:
                number, start = start, reader.line_num + 1
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise input_error(
                        path, number, _SWAG,
                        f"expected {len(header)} fields like the header, got {len(fields)}.",
                    )
                prompt = fields[column["sent1"]].strip()
                if "sent2" in column and fields[column["sent2"]].strip():
                    prompt = f"{prompt} {fields[column['sent2']].strip()}"
                choices = [fields[i] for _, i in endings]
                label = -1
                raw = fields[column["label"]].strip() if "label" in column else ""
                if raw:
                    try:
                        label = int(raw)
                    except ValueError:
                        label = -2
                    if not 0 <= label < len(choices):
                        raise input_error(
                            path, number, _SWAG,
                            f"'label' must be the index of the right ending, 0 to "
                            f"{len(choices) - 1}, got {raw!r}.",
                        )
                answered.append((number, label >= 0))
                if "id" in column:
                    ident = fields[column["id"]]
                elif "fold-ind" in column:
                    ident = fields[column["fold-ind"]]
                else:
                    ident = str(len(rows))
                rows.append([ident, prompt, choices, label, None])
        except csv.Error as err:
            raise input_error(path, reader.line_num, _SWAG, f"not valid CSV: {err}.") from err
        except UnicodeDecodeError as err:
            raise input_error(path, None, _SWAG, f"the bytes are not UTF-8: {err}.") from err
    _check_answers(path, _SWAG, answered)
    return rows
