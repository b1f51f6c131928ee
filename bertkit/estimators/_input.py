"""Validation of text input: what every estimator accepts as X, with errors that say how to fix it."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InputError

__all__ = ["check_texts", "TextColumns"]


class TextColumns:
    """Validated text input: one column (single texts) or two (text pairs)."""

    def __init__(self, first: list[str], second: list[str] | None, names: list[str] | None):
        self.first = first
        self.second = second
        self.names = names

    @property
    def n_columns(self) -> int:
        return 1 if self.second is None else 2

    def __len__(self) -> int:
        return len(self.first)

    def take(self, index) -> TextColumns:
        index = np.asarray(index)
        return TextColumns(
            [self.first[i] for i in index],
            None if self.second is None else [self.second[i] for i in index],
            self.names,
        )

    def keys(self) -> list:
        """One hashable key per row (the text, or the pair)."""
        return self.first if self.second is None else list(zip(self.first, self.second, strict=True))


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isnan(value)


def _check_column(values, owner: str, column: str) -> list[str]:
    out = []
    for i, value in enumerate(values):
        if isinstance(value, str):
            out.append(value)
            continue
        if isinstance(value, np.str_):
            out.append(str(value))
            continue
        what = "a missing value (None/NaN)" if _is_missing(value) else f"a {type(value).__name__} ({value!r:.40})"
        raise InputError(
            f"{owner} expects text: {column} row {i} is {what}. Every entry must be a str; "
            f"fill or drop missing rows (e.g. X.fillna('') or X.dropna()) and convert other "
            f"types with .astype(str)."
        )
    return out


def check_texts(X: Any, owner: str, *, n_columns: int | None = None, allow_pairs: bool = True) -> TextColumns:
    """Validate ``X`` as texts or text pairs.

    Accepts a list/tuple/array/Series of str (single texts) or a 2-column array,
    list of pairs or DataFrame (pairs). ``n_columns`` is what the estimator was
    fitted on (None at fit time).
    """
    if isinstance(X, str):
        raise InputError(
            f"{owner} expects a list of texts, got a single str. Wrap it in a list: [{X[:30]!r}]."
        )
    names = None
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        columns = [X.iloc[:, j].tolist() for j in range(X.shape[1])]
    elif isinstance(X, pd.Series):
        columns = [X.tolist()]
    else:
        if X is None or not hasattr(X, "__len__"):
            raise InputError(
                f"{owner} expects a list, array or pandas Series of str (or a 2-column "
                f"array/DataFrame of text pairs). Got {type(X).__name__}."
            )
        array = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
        if array.ndim == 1 and len(array) and all(isinstance(v, (tuple, list)) for v in array):
            array = np.asarray([list(v) for v in array], dtype=object)  # list of pairs
        if array.ndim == 1:
            columns = [list(array)]
        elif array.ndim == 2:
            columns = [list(array[:, j]) for j in range(array.shape[1])]
        else:
            raise InputError(f"{owner} expects 1-D or 2-D text input. Got {array.ndim} dimensions.")
    if len(columns[0]) == 0:
        raise InputError(f"{owner} got an empty X: it needs at least one text.")
    if len(columns) > 2 or (len(columns) == 2 and not allow_pairs):
        allowed = "1 column of texts" + (" or 2 columns of text pairs" if allow_pairs else "")
        raise InputError(f"{owner} takes {allowed}. Got {len(columns)} columns.")
    if n_columns is not None and len(columns) != n_columns:
        fitted = "single texts (1 column)" if n_columns == 1 else "text pairs (2 columns)"
        raise InputError(
            f"{owner} was fitted on {fitted} but X has {len(columns)} column(s). Pass the same "
            f"kind of input as in fit."
        )
    labels = names or (["X"] if len(columns) == 1 else ["column 0", "column 1"])
    checked = [_check_column(col, owner, labels[j] if len(columns) > 1 else "X") for j, col in enumerate(columns)]
    return TextColumns(checked[0], checked[1] if len(checked) == 2 else None, names)
