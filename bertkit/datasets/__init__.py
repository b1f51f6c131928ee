"""Readers for the standard BERT task formats, and MLM / NSP batch builders.

Pure data: every reader returns a :class:`pandas.DataFrame`, every builder works on
torch tensors or plain lists, and nothing here knows about estimators.

Readers
    :func:`read_glue_tsv` (GLUE TSV), :func:`read_sts` (STS Benchmark),
    :func:`read_conll` / :func:`write_conll` (CoNLL NER columns),
    :func:`read_squad` (SQuAD v1.1 / v2.0 JSON), :func:`read_multiple_choice`
    (CommonsenseQA JSONL, SWAG CSV), :func:`read_text_documents` (raw pretraining
    text), :func:`read_wikitext` (WikiText raw).
Tagging schemes
    :func:`convert_tags` (IOB1, IOB2/BIO, IOBES/BIOES, BILOU; names in any case). To
    decode tags into entity spans ``(type, start, end)``, use
    :func:`bertkit.metrics.get_entities` (``tags_to_spans`` was folded into it):
    ``get_entities(tags, "iob1")`` reads them as conlleval does, ``mode="strict"`` drops
    ill-formed spans, and ``convert_tags(..., strict=True)`` rejects them.
Pretraining batches
    :func:`mask_tokens` (BERT's 80/10/10 masking, optionally whole-word) and
    :func:`make_nsp_pairs` (next-sentence pairs: label 0 = is next, 1 = random).

Every reader accepts a str or ``os.PathLike``, raises :class:`FileNotFoundError` naming
a missing file, and raises :class:`bertkit.InputError` (a ``ValueError``) naming the
file and the 1-based line of malformed input.

Examples
--------
>>> from bertkit.datasets import convert_tags
>>> convert_tags(["I-ORG", "O", "I-PER", "I-PER"], "IOB1", "IOB2")
['B-ORG', 'O', 'B-PER', 'I-PER']
>>> from bertkit.metrics import get_entities
>>> get_entities(["I-ORG", "O", "I-PER", "I-PER"], "IOB1")
[('ORG', 0, 1), ('PER', 2, 4)]
"""

from __future__ import annotations

from ._choice import read_multiple_choice
from ._conll import convert_tags, read_conll, write_conll
from ._masking import mask_tokens
from ._nsp import IS_NEXT, NOT_NEXT, make_nsp_pairs
from ._readers import read_glue_tsv, read_sts
from ._squad import read_squad
from ._text import read_text_documents, read_wikitext

__all__ = [
    "IS_NEXT",
    "NOT_NEXT",
    "convert_tags",
    "make_nsp_pairs",
    "mask_tokens",
    "read_conll",
    "read_glue_tsv",
    "read_multiple_choice",
    "read_squad",
    "read_sts",
    "read_text_documents",
    "read_wikitext",
    "write_conll",
]
