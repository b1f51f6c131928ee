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

from . import dropout as _dropout_masks
from ._errors import UnsupportedOptionError
from .dropout import _mask, _threshold, dropout

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
    batched matmuls instead, which is faster there and gives the same result. CPU
    training with dropout runs :class:`_DropoutAttention` (PyTorch's fused CPU kernels
    have no dropout, and its fallback is 2-5x slower; unless
    :data:`bertkit.dropout.TORCH_MASKS` asks for PyTorch's masks). A head
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
    if (dropout_p > 0.0 and query.device.type == "cpu" and not _dropout_masks.TORCH_MASKS
            and query.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and (bias is None or not bias.requires_grad)):
        context = _dropout_attention(query, key, value, bias, dropout_p, scale)
    elif query.device.type == "cpu" and key.shape[-2] <= CPU_SHORT_KEYS:
        context, _ = eager_attention(query, key, value, bias=bias, dropout_p=dropout_p, scale=scale,
                                     head_mask=None, need_weights=False)
    else:
        context = F.scaled_dot_product_attention(
            query, key, value, attn_mask=bias, dropout_p=dropout_p, scale=scale
        )
    if head_mask is not None:
        context = context * head_mask
    return context, None


#: Scores per chunk in :class:`_DropoutAttention`: 1 MB of floats, so a chunk's scores,
#: probabilities and mask stay in a core's L2 cache.
CHUNK_SCORES = 1 << 18

#: Up to this many scores per call, :class:`_DropoutAttention` keeps the probabilities
#: and masks for the backward pass (8 bytes a score: at most 32 MB per layer) instead
#: of recomputing them, which makes a layer's attention 16-23 % faster (2 threads, 32 x
#: 16 to 16 x 128 tokens). Longer inputs recompute, so their memory stays bounded.
KEEP_SCORES = 1 << 22


class _DropoutAttention(torch.autograd.Function):
    """``dropout(softmax(q k^T * scale + bias)) v`` in chunks, for CPU training.

    What :func:`torch.nn.functional.scaled_dot_product_attention` lacks on the CPU:
    its fused kernels have no dropout, and its fallback keeps every probability, mask
    and dropped probability of the batch for the backward pass (at 384 tokens, 57 MB
    each per 8 sequences and layer). Here the (batch x head) rows go through in chunks
    of :data:`CHUNK_SCORES` scores that stay in cache; the backward pass recomputes a
    chunk's probabilities, and redraws its mask from the same seed, as flash attention
    does. Kept for backward: q, k, v, the output and one seed; for calls of at most
    :data:`KEEP_SCORES` scores (short inputs) the probabilities and masks too, which
    saves recomputing them.
    Shapes: q ``(n, s, d)``, k and v ``(n, t, d)``, bias ``(n, s or 1, t)`` or None.
    """

    @staticmethod
    def _chunks(n, s, t):
        step = max(1, CHUNK_SCORES // (s * t))
        return [slice(i, min(i + step, n)) for i in range(0, n, step)]

    @staticmethod
    def _probs(q, k, bias):
        scores = torch.bmm(q, k.transpose(1, 2)) if bias is None else torch.baddbmm(bias, q, k.transpose(1, 2))
        return softmax_(scores)

    @staticmethod
    def forward(ctx, q, k, v, bias, p, scale):
        q = q * scale
        seed = int(torch.empty((), dtype=torch.int64).random_())  # from the global generator
        generator = torch.Generator().manual_seed(seed)
        levels, mask_scale = _threshold(p)
        out = q.new_empty(q.shape[:2] + v.shape[2:])
        keep = q.shape[0] * q.shape[1] * k.shape[1] <= KEEP_SCORES
        kept = []
        for rows in _DropoutAttention._chunks(q.shape[0], q.shape[1], k.shape[1]):
            probs = _DropoutAttention._probs(q[rows], k[rows], None if bias is None else bias[rows])
            mask = _mask(probs.shape, levels, mask_scale, generator)
            if keep:
                kept += [probs, mask]
                probs = probs * mask
            else:
                probs.mul_(mask)
            torch.bmm(probs, v[rows], out=out[rows])
        ctx.save_for_backward(q, k, v, bias, out, *kept)
        ctx.seed, ctx.levels, ctx.mask_scale, ctx.scale = seed, levels, mask_scale, scale
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, bias, out, *kept = ctx.saved_tensors
        generator = torch.Generator().manual_seed(ctx.seed)
        grad = grad.contiguous()
        # Softmax backward needs rowsum(dP * P) = rowsum(grad * out) (dP: gradient of
        # the dropped probabilities, P: the probabilities).
        rowsum = (grad * out).sum(-1, keepdim=True)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        for i, rows in enumerate(_DropoutAttention._chunks(q.shape[0], q.shape[1], k.shape[1])):
            if kept:
                probs, mask = kept[2 * i], kept[2 * i + 1]
            else:
                probs = _DropoutAttention._probs(q[rows], k[rows], None if bias is None else bias[rows])
                mask = _mask(probs.shape, ctx.levels, ctx.mask_scale, generator)
            torch.bmm((probs * mask).transpose(1, 2), grad[rows], out=dv[rows])
            dscores = torch.bmm(grad[rows], v[rows].transpose(1, 2)).mul_(mask).sub_(rowsum[rows]).mul_(probs)
            torch.bmm(dscores, k[rows], out=dq[rows])
            torch.bmm(dscores.transpose(1, 2), q[rows], out=dk[rows])
        return dq.mul_(ctx.scale), dk, dv, None, None, None


def _dropout_attention(query, key, value, bias, dropout_p, scale):
    """:class:`_DropoutAttention` on ``(batch, heads, len, dim)`` tensors."""
    b, h, s, d = query.shape
    t = key.shape[2]
    if bias is not None:
        bias = bias.expand(b, h, bias.shape[2], t).reshape(b * h, bias.shape[2], t)
    context = _DropoutAttention.apply(
        query.reshape(b * h, s, d), key.reshape(b * h, t, d), value.reshape(b * h, t, value.shape[3]),
        bias, dropout_p, scale,
    )
    return context.view(b, h, s, value.shape[3])


#: On the CPU, PyTorch's softmax over rows shorter than this runs scalar code: 6-7x
#: slower per score than whole-tensor max, exp, sum and divide (2 threads, AVX-512,
#: 2,400 tokens of 12 heads: 3.0 against 0.46 ms at 12 keys; from 16 keys PyTorch's
#: kernel is the faster, 0.26 against 0.42 ms). Short sentences meet it in every layer.
CPU_SHORT_SOFTMAX = 16


def softmax_(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, in place where that is allowed (the result
    may be ``scores`` itself, so callers pass a tensor they own). Half-precision scores
    take PyTorch's kernel, which accumulates in fp32."""
    if (scores.device.type != "cpu" or scores.shape[-1] >= CPU_SHORT_SOFTMAX
            or scores.dtype not in (torch.float32, torch.float64)
            or (scores.requires_grad and torch.is_grad_enabled())):
        return torch.softmax(scores, dim=-1)
    scores.sub_(scores.amax(-1, keepdim=True)).exp_()
    return scores.div_(scores.sum(-1, keepdim=True))


def eager_attention(query, key, value, *, bias, dropout_p, scale, head_mask, need_weights):
    """Explicit ``softmax(q k^T * scale + bias) v``; can return the probabilities."""
    scores = torch.matmul(query, key.transpose(-1, -2)).mul_(scale)  # (batch, heads, q, k)
    if bias is not None:
        # in place unless the bias would promote the scores (an fp32 bias under autocast)
        scores = scores.add_(bias) if bias.dtype == scores.dtype else scores + bias
    probs = softmax_(scores)
    if dropout_p > 0.0:
        probs = dropout(probs, dropout_p)
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
