"""bertkit's built-ins, registered through the same hooks as third-party plugins."""

from __future__ import annotations

from . import attention, heads, sources, tokenizers

#: The modules :mod:`bertkit.plugins` registers in every plugin manager.
MODULES = (attention, heads, tokenizers, sources)

__all__ = ["MODULES"]
