"""A dict whose keys also read as attributes (model outputs, tokenizer batches)."""

from __future__ import annotations

from typing import Any


class AttrDict(dict):
    """``d.key`` reads ``d["key"]``; a missing key raises AttributeError listing the keys."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute or key {name!r}; keys: {sorted(self)}."
            ) from None
