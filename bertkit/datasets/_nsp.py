"""Next-sentence-prediction pairs, labelled as BERT and ``BertForNextSentencePrediction`` do."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._errors import InputError

__all__ = ["IS_NEXT", "NOT_NEXT", "make_nsp_pairs"]

#: NSP label of a pair whose second sentence really follows the first.
IS_NEXT = 0
#: NSP label of a pair whose second sentence is a random one from another document.
NOT_NEXT = 1


def make_nsp_pairs(
    documents: Sequence[Sequence[str]],
    *,
    rng: np.random.Generator | int,
    random_next_probability: float = 0.5,
) -> pd.DataFrame:
    """Build labelled sentence pairs for next-sentence prediction.

    **Label convention** (the BERT paper's and Hugging Face
    ``BertForNextSentencePrediction``'s): ``0`` (:data:`IS_NEXT`) means the second
    sentence follows the first; ``1`` (:data:`NOT_NEXT`) means it is a random sentence.

    Every pair of consecutive sentences ``(A, B)`` of a document gives one example:
    with probability ``1 - random_next_probability`` it is kept (label 0); otherwise
    ``B`` is replaced by a sentence drawn uniformly from all the sentences of the
    *other* documents (label 1), so a label-1 pair never comes from one document.

    Parameters
    ----------
    documents : sequence of sequences of str
        The documents, each a list of sentences (or longer segments), e.g.
        ``read_text_documents(path)["sentences"]``.
    rng : numpy.random.Generator or int
        Source of randomness, or a seed for ``numpy.random.default_rng``.
    random_next_probability : float, default=0.5
        Probability that a pair gets a random second sentence (label 1), in [0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per consecutive pair, in document order, with the columns ``first``,
        ``second`` (str), ``label`` (int64, 0 = is next, 1 = random), ``document``
        (int64, the index of the document ``first`` comes from) and ``position``
        (int64, the index of ``first`` in that document).

    Raises
    ------
    bertkit.InputError
        If fewer than two documents have sentences (a random second sentence must
        come from another document), no document has two sentences, or a document
        is a plain string instead of a list of sentences.

    Examples
    --------
    >>> from bertkit.datasets import make_nsp_pairs
    >>> docs = [["The cat sat.", "It purred.", "Then it slept."], ["Stocks fell.", "Oil rose."]]
    >>> pairs = make_nsp_pairs(docs, rng=0)
    >>> pairs.columns.tolist()
    ['first', 'second', 'label', 'document', 'position']
    >>> pairs[["first", "document", "position"]].values.tolist()
    [['The cat sat.', 0, 0], ['It purred.', 0, 1], ['Stocks fell.', 1, 0]]
    >>> all(row.second == docs[row.document][row.position + 1]
    ...     for row in pairs.itertuples() if row.label == 0)
    True
    """
    if isinstance(rng, bool) or not isinstance(rng, np.random.Generator | int | np.integer):
        raise InputError(
            f"The 'rng' parameter of make_nsp_pairs must be a numpy.random.Generator or an int "
            f"seed. Got {type(rng).__name__}."
        )
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    if not 0.0 <= random_next_probability <= 1.0:
        raise InputError(
            f"The 'random_next_probability' parameter of make_nsp_pairs must be in [0, 1]. "
            f"Got {random_next_probability!r}."
        )
    if isinstance(documents, str):
        raise InputError(
            "The 'documents' parameter of make_nsp_pairs must be a list of documents, each a "
            "list of sentences. Got a single string."
        )
    docs: list[list[str]] = []
    for index, document in enumerate(documents):
        if isinstance(document, str) or not isinstance(document, Sequence | np.ndarray):
            raise InputError(
                f"The 'documents' parameter of make_nsp_pairs must be a list of documents, each "
                f"a list of sentences. Document {index} is a {type(document).__name__}: "
                f"{document!r:.60}."
            )
        sentences = list(document)
        for position, sentence in enumerate(sentences):
            if not isinstance(sentence, str):
                raise InputError(
                    f"make_nsp_pairs: sentence {position} of document {index} is a "
                    f"{type(sentence).__name__}, not a str: {sentence!r:.60}."
                )
        docs.append(sentences)
    sizes = np.array([len(doc) for doc in docs], dtype=np.int64)
    if int((sizes > 0).sum()) < 2:
        raise InputError(
            f"make_nsp_pairs needs at least 2 documents with sentences, so that a random second "
            f"sentence can come from another document. Got {int((sizes > 0).sum())} of "
            f"{len(docs)} documents with sentences."
        )
    if int(sizes.max()) < 2:
        raise InputError(
            "make_nsp_pairs found no document with 2 or more sentences, so there is no "
            "consecutive pair to build."
        )
    flat = [sentence for doc in docs for sentence in doc]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    document = np.repeat(np.arange(len(docs)), np.maximum(sizes - 1, 0))
    position = np.concatenate([np.arange(size - 1) for size in sizes if size > 1])
    label = (rng.random(len(document)) < random_next_probability).astype(np.int64)
    # A sentence of another document: draw among the N - size(d) others, skip document d.
    other = rng.integers(0, len(flat) - sizes[document])
    other += np.where(other >= offsets[document], sizes[document], 0)
    following = offsets[document] + position + 1
    second = np.where(label == NOT_NEXT, other, following)
    return pd.DataFrame(
        {
            "first": [flat[i] for i in offsets[document] + position],
            "second": [flat[i] for i in second],
            "label": label,
            "document": document.astype(np.int64),
            "position": position.astype(np.int64),
        }
    )
