"""bertkit's tokenizer loader: ``wordpiece`` (:meth:`bertkit.BertTokenizer.from_folder`)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..tokenizer import BertTokenizer


@hookimpl
def bertkit_register_tokenizers(register):
    register("wordpiece", BertTokenizer.from_folder)
