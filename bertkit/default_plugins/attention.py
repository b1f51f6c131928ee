"""bertkit's attention backends: ``sdpa`` (default) and ``eager``."""

from __future__ import annotations

from ..attention import eager_attention, sdpa_attention
from ..hookspecs import hookimpl


@hookimpl
def bertkit_register_attention_backends(register):
    register("sdpa", sdpa_attention)
    register("eager", eager_attention)
