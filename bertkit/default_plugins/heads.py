"""bertkit's task heads, registered by name."""

from __future__ import annotations

from ..heads import BUILTIN_HEADS
from ..hookspecs import hookimpl


@hookimpl
def bertkit_register_heads(register):
    for name, head_class in BUILTIN_HEADS.items():
        register(name, head_class)
