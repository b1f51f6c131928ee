"""Dropout whose masks are cheap to draw on the CPU.

PyTorch's CPU dropout draws one Bernoulli sample per element (``bernoulli_``: MKL's
generator on Intel CPUs, one Mersenne Twister call per element elsewhere) and keeps
a float mask: about 5 ns an element on 2 threads, 9 % of a SST-2 training step of
the default model. Its fused attention kernels have no dropout on the CPU, so
``scaled_dot_product_attention(..., dropout_p>0)`` falls back to the explicit
computation with that same dropout: at 384 tokens one layer's attention, forward
and backward, is then 7-14x slower than without dropout (bertkit's own kernel for
it is :class:`bertkit.attention._DropoutAttention`).

Here a mask element comes from 16 random bits set against a threshold, and the bits
come 64 at a time from PyTorch's default CPU generator (``random_`` on ``int64``,
about 0.7 ns an element), so ``torch.manual_seed`` makes it repeatable. The mask
kept for the backward pass is a float tensor (4 bytes an element; PyTorch keeps
1), as multiplying by it is much faster than selecting with a bool mask.

The one difference from :func:`torch.nn.functional.dropout`: the drop probability
is rounded to a multiple of ``1 / 65536`` (0.1 becomes 0.1000061), and kept values
are scaled by ``1 / (1 - p)`` for that rounded ``p``, so the expected output is still
exactly the input. On other devices :func:`dropout` is PyTorch's own, which there
draws its masks in the kernel. :data:`TORCH_MASKS` switches back to PyTorch's masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["dropout", "Dropout", "LEVELS", "TORCH_MASKS"]

#: Set to True to draw every mask with PyTorch's own dropout, as transformers does:
#: with the same seed, a bertkit model in training mode then gives a transformers
#: model's outputs and gradients exactly (``tests/test_training_parity.py``), at the
#: cost described above. Read on every call.
TORCH_MASKS = False

#: A mask element is one of this many equally likely values (16 random bits).
LEVELS = 1 << 16


def _threshold(p: float) -> tuple[int, float]:
    """``(k, scale)``: drop the ``k`` lowest of :data:`LEVELS` values, scale the rest."""
    k = round(p * LEVELS)
    return k, (LEVELS / (LEVELS - k) if k < LEVELS else 0.0)


def _mask(shape: torch.Size, k: int, scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A float tensor of ``shape``: ``scale`` with probability ``1 - k / LEVELS``, else 0."""
    n = shape.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None, generator=generator)
    bits = words.view(torch.int16)[:n].view(shape)  # uniform over -32768..32767
    # Integers from the lowest k levels map to <= 0, the others to >= 1. (Float
    # arithmetic here is several times faster than a bool comparison and select.)
    return bits.to(torch.float32).sub_(k - LEVELS // 2 - 1).clamp_(0.0, 1.0).mul_(scale)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, scale):
        mask = _mask(x.shape, k, scale).to(x.dtype)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Same as :func:`torch.nn.functional.dropout` (not in place), with cheaper masks on
    the CPU; see the module docstring for the one difference.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p!r}.")
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or TORCH_MASKS:
        return F.dropout(x, p, training=True)
    k, scale = _threshold(p)
    if k == 0:
        return x
    if k == LEVELS:
        return x * 0.0
    return _Dropout.apply(x, k, scale)


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` drawing its masks with :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)
