"""Reader for extractive question answering in the SQuAD v1.1 / v2.0 JSON format."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ._common import PathLike, check_file, input_error, shorten

__all__ = ["read_squad"]

_SQUAD = "SQuAD JSON"


def _field(node: Any, key: str, kind: type | tuple[type, ...], where: str, path, ident=None):
    """``node[key]`` checked for type, or InputError naming the JSON path (and question id)."""
    if not isinstance(node, dict):
        raise input_error(path, None, _SQUAD, f"{where} must be a JSON object, got {node!r:.60}.")
    if key not in node:
        about = f" (question id {ident!r})" if ident is not None else ""
        raise input_error(path, None, _SQUAD, f"{where}{about} has no {key!r} field.")
    value = node[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        about = f" (question id {ident!r})" if ident is not None else ""
        names = " or ".join(t.__name__ for t in _as_tuple(kind))
        raise input_error(
            path, None, _SQUAD,
            f"{where}.{key}{about} must be {names}, got {type(value).__name__}: {value!r:.60}.",
        )
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def read_squad(path: PathLike, *, check_answers: bool = True) -> pd.DataFrame:
    """Read a SQuAD v1.1 or v2.0 JSON file into one row per question.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file (``{"version": ..., "data": [{"title", "paragraphs": [{"context",
        "qas": [{"id", "question", "answers": [{"text", "answer_start"}],
        "is_impossible"}]}]}]}``). ``is_impossible`` (v2.0) may be absent (v1.1).
    check_answers : bool, default=True
        Check that every answer's ``text`` equals
        ``context[answer_start:answer_start + len(text)]``.

    Returns
    -------
    pandas.DataFrame
        One row per question, in file order, with the columns ``id``, ``title``,
        ``context``, ``question`` (str), ``answers`` (list of ``{"text": str,
        "answer_start": int}`` dicts, in file order, duplicates kept; an empty list
        for v2.0 unanswerable questions) and ``is_impossible`` (bool). The file's
        ``version`` string is kept in ``frame.attrs["version"]`` (``None`` if absent).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    bertkit.InputError
        If the file is not JSON (the message names the line and column), a field is
        missing or has the wrong type (the message names its JSON path and the
        question id), or, with ``check_answers``, an answer does not match its
        context (the message names the question id).

    Examples
    --------
    >>> import json, os, tempfile
    >>> from bertkit.datasets import read_squad
    >>> squad = {"version": "v2.0", "data": [{"title": "Lobster", "paragraphs": [{
    ...     "context": "Lobsters are blue.",
    ...     "qas": [{"id": "q1", "question": "What colour?", "is_impossible": False,
    ...              "answers": [{"text": "blue", "answer_start": 13}]},
    ...             {"id": "q2", "question": "How tall?", "is_impossible": True,
    ...              "answers": []}]}]}]}
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "dev.json")
    >>> with open(path, "w") as f:
    ...     json.dump(squad, f)
    >>> frame = read_squad(path)
    >>> frame[["id", "question", "is_impossible"]].values.tolist()
    [['q1', 'What colour?', False], ['q2', 'How tall?', True]]
    >>> frame.loc[0, "answers"]
    [{'text': 'blue', 'answer_start': 13}]
    >>> tmp.cleanup()
    """
    path = check_file(path, _SQUAD)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as err:
        raise input_error(
            path, err.lineno, _SQUAD, f"not valid JSON: {err.msg} (column {err.colno})."
        ) from err
    except UnicodeDecodeError as err:
        raise input_error(path, None, _SQUAD, f"the bytes are not UTF-8: {err}.") from err
    articles = _field(document, "data", list, "the top level", path)
    rows: list[dict[str, Any]] = []
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        title = _field(article, "title", str, where, path) if "title" in article else ""
        for p, paragraph in enumerate(_field(article, "paragraphs", list, where, path)):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, where, path)
            for q, qa in enumerate(_field(paragraph, "qas", list, where, path)):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                ident = _field(qa, "id", (str, int), where, path)
                question = _field(qa, "question", str, where, path, ident)
                impossible = (
                    _field(qa, "is_impossible", bool, where, path, ident)
                    if "is_impossible" in qa else False
                )
                answers = []
                for n, answer in enumerate(_field(qa, "answers", list, where, path, ident)):
                    spot = f"{where}.answers[{n}]"
                    text = _field(answer, "text", str, spot, path, ident)
                    start = _field(answer, "answer_start", int, spot, path, ident)
                    if check_answers and context[start : start + len(text)] != text:
                        found = context[max(start, 0) : max(start, 0) + len(text)]
                        raise input_error(
                            path, None, _SQUAD,
                            f"question id {ident!r} ({spot}): the answer {shorten(text)} does "
                            f"not match its context at answer_start={start}, which holds "
                            f"{shorten(found)}. Fix answer_start, or pass check_answers=False.",
                        )
                    answers.append({"text": text, "answer_start": start})
                if impossible:
                    answers = []  # v2.0 lists no answers here; plausible_answers are not answers
                rows.append(
                    {
                        "id": str(ident),
                        "title": title,
                        "context": context,
                        "question": question,
                        "answers": answers,
                        "is_impossible": impossible,
                    }
                )
    columns = ["id", "title", "context", "question", "answers", "is_impossible"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["is_impossible"] = frame["is_impossible"].astype(bool)
    frame.attrs["version"] = document.get("version")
    return frame
