"""A small sentiment data set that ships with bertkit, for demos and quick checks.

``reviews.tsv`` holds 360 short English movie and product review sentences
written for bertkit, labelled ``positive`` or ``negative`` (180 each), as a
tab-separated file with the header ``text<TAB>label``. ``bertkit train`` uses it
when no ``--data`` file is given.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["REVIEWS_FILE", "load_reviews", "reviews_path"]

REVIEWS_FILE = "reviews.tsv"


def reviews_path() -> Path:
    """Path of the bundled ``reviews.tsv`` (inside the installed package).

    Examples
    --------
    >>> from bertkit.example_data import reviews_path
    >>> reviews_path().name
    'reviews.tsv'
    """
    return Path(str(resources.files(__name__) / REVIEWS_FILE))


def load_reviews(*, return_X_y: bool = False):
    """Load the bundled movie and product review sentences.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(texts, labels)`` instead of a DataFrame.

    Returns
    -------
    pandas.DataFrame or tuple
        A DataFrame with the string columns ``text`` and ``label``; with
        ``return_X_y=True``, a list of str and an ndarray of str labels.

    Examples
    --------
    >>> from bertkit.example_data import load_reviews
    >>> frame = load_reviews()
    >>> frame.shape
    (360, 2)
    >>> frame["label"].value_counts().sort_index().to_dict()
    {'negative': 180, 'positive': 180}
    >>> X, y = load_reviews(return_X_y=True)
    >>> X[0], y[0]
    ('The movie is a failure of imagination.', 'negative')
    """
    import csv

    import pandas as pd

    frame = pd.read_csv(
        reviews_path(), sep="\t", quoting=csv.QUOTE_NONE, dtype=str,
        keep_default_na=False, encoding="utf-8",
    )
    if return_X_y:
        return frame["text"].tolist(), frame["label"].to_numpy()
    return frame
