"""Attention backends: one function per backend, one signature, chosen by name.

Layers compute query, key and value, fold the padding mask, the causal mask and
any relative-position scores into one additive ``bias``, and call the backend.
They never know which backend runs. Backends are registered through the
``bertkit_register_attention_backends`` hook; bertkit's own ``sdpa`` and
``eager`` are registered by :mod:`bertkit.default_plugins.attention`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._errors import UnsupportedOptionError

__all__ = ["attention_signature", "sdpa_attention", "eager_attention", "get_attention"]


def attention_signature(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    bias: torch.Tensor | None,
    dropout_p: float,
    scale: float,
    head_mask: torch.Tensor | None,
    need_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The signature every attention backend implements (documentation only).

    Parameters
    ----------
    query : Tensor ``(batch, heads, q_len, head_dim)``
    key, value : Tensor ``(batch, heads, k_len, head_dim)``
    bias : Tensor or None
        Additive scores bias broadcastable to ``(batch, heads, q_len, k_len)``:
        0 where attention is allowed, the dtype's most negative value where it is
        masked, plus relative-position scores when the model uses them.
    dropout_p : float
        Dropout on attention probabilities (0 in eval mode).
    scale : float
        Multiplier of ``query @ key.T`` (``1 / sqrt(head_dim)`` in BERT).
    head_mask : Tensor or None
        ``(1 or batch, heads, 1, 1)`` multipliers of each head's probabilities.
    need_weights : bool
        Also return the attention probabilities ``(batch, heads, q_len, k_len)``.

    Returns
    -------
    context : Tensor ``(batch, heads, q_len, head_dim)``
    probabilities : Tensor or None
        Only when ``need_weights``; a backend that cannot compute them raises
        :class:`bertkit.UnsupportedOptionError` instead of falling back.
    """
    raise NotImplementedError


#: On the CPU, up to this many keys ``softmax(q k^T) v`` as two batched matmuls beats
#: the fused kernel (2 threads, head width 32: 2.4x at 16 keys, 1.6x at 32, even at 64;
#: the fused kernel wins from 128 keys on, 3x at 128 and more beyond).
CPU_SHORT_KEYS = 64


def sdpa_attention(query, key, value, *, bias, dropout_p, scale, head_mask, need_weights):
    """``torch.nn.functional.scaled_dot_product_attention`` (fused kernels where possible).

    On the CPU, batches of at most :data:`CPU_SHORT_KEYS` keys are computed with two
    batched matmuls instead, which is faster there and gives the same result. A head
    mask is applied to the context: for per-head multipliers this equals masking the
    probabilities exactly. Attention probabilities are never returned, so
    ``need_weights=True`` raises.
    """
    if need_weights:
        raise UnsupportedOptionError(
            "The 'sdpa' attention backend cannot return attention probabilities "
            "(output_attentions=True): its fused kernels never build them. Load the model "
            "with attention='eager' to get them."
        )
    if query.device.type == "cpu" and key.shape[-2] <= CPU_SHORT_KEYS:
        context, _ = eager_attention(query, key, value, bias=bias, dropout_p=dropout_p, scale=scale,
                                     head_mask=None, need_weights=False)
    else:
        context = F.scaled_dot_product_attention(
            query, key, value, attn_mask=bias, dropout_p=dropout_p, scale=scale
        )
    if head_mask is not None:
        context = context * head_mask
    return context, None


def eager_attention(query, key, value, *, bias, dropout_p, scale, head_mask, need_weights):
    """Explicit ``softmax(q k^T * scale + bias) v``; can return the probabilities."""
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale  # (batch, heads, q, k)
    if bias is not None:
        scores = scores + bias
    probs = torch.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p, training=True)
    if head_mask is not None:
        probs = probs * head_mask
    context = torch.matmul(probs, value)  # (batch, heads, q, head_dim)
    return context, (probs if need_weights else None)


def default_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)


def get_attention(name: str):
    """The attention function registered as ``name`` (raises listing known names)."""
    from . import plugins

    return plugins.get("attention", name)
