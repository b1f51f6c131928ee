"""Word-embedding gradients that touch only the rows a batch uses.

The default model's word-embedding matrix holds half its weights (30,522 x 384 = 11.7M).
PyTorch's embedding backward returns a fresh dense gradient of that size every step,
zero-filled, for the few hundred rows a batch reads; ``optimizer.zero_grad`` then frees
it. On a CPU the 47 MB are new pages each time (above glibc's mmap threshold), and
gradient clipping then reads and scales all of them. Together that was 8-9 % of an
SST-2 training step on 2 threads (about 15 of 180 ms).

:func:`row_gradients` makes the fit loop keep one gradient buffer per word-embedding
matrix for the whole fit: each step zeroes the rows the step before wrote, then adds
this step's rows. The gradient the optimizer sees has the same
values as PyTorch's (same order of additions per row; the padding row gets none).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling import Embeddings

__all__ = ["RowGradients", "clip_grad_norm", "row_gradients"]


class RowGradients:
    """The lookup of one ``nn.Embedding`` whose weight gradient lives in a kept buffer."""

    def __init__(self, embedding: nn.Embedding):
        self.embedding = embedding
        self.buffer: torch.Tensor | None = None
        self.written: list[torch.Tensor] = []  # ids whose rows the buffer holds

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        return _Lookup.apply(ids, self.embedding.weight, self)

    def accumulate(self, ids: torch.Tensor, grad: torch.Tensor) -> None:
        weight = self.embedding.weight
        ids, grad = ids.reshape(-1), grad.reshape(-1, grad.shape[-1])
        if self.embedding.padding_idx is not None:
            keep = ids != self.embedding.padding_idx
            ids, grad = ids[keep], grad[keep]
        target = weight.grad
        if target is None:  # the first backward since zero_grad(set_to_none=True)
            if self.buffer is None:
                self.buffer = torch.zeros_like(weight)
            elif self.written:
                self.buffer.index_fill_(0, torch.cat(self.written), 0.0)
            self.written = []
            weight.grad = target = self.buffer
        target.index_add_(0, ids, grad.to(target.dtype))
        if target is self.buffer:
            self.written.append(ids)

    def rows(self) -> torch.Tensor | None:
        """The distinct rows the gradient may hold non-zero values in, or None when it is
        not (only) this buffer's doing (no gradient, or one PyTorch made)."""
        if self.buffer is None or self.embedding.weight.grad is not self.buffer:
            return None
        if not self.written:
            return torch.empty(0, dtype=torch.long, device=self.buffer.device)
        return torch.unique(torch.cat(self.written))


class _Lookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ids, weight, owner: RowGradients):
        ctx.save_for_backward(ids)
        ctx.owner = owner
        return F.embedding(ids, weight, owner.embedding.padding_idx)

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        ctx.owner.accumulate(ids, grad)
        return None, None, None  # the weight's gradient is already in place


def _eligible(model: nn.Module, embedding: nn.Embedding) -> bool:
    """Only a trainable CPU matrix that no other module shares (a tied decoder would add
    dense gradients to the buffer) and that needs no per-row rescaling."""
    weight = embedding.weight
    shared = sum(p is weight for _, p in model.named_parameters(remove_duplicate=False)) > 1
    return (weight.requires_grad and weight.device.type == "cpu" and not shared
            and embedding.max_norm is None and not embedding.scale_grad_by_freq and not embedding.sparse)


@contextlib.contextmanager
def row_gradients(model: nn.Module):
    """While the block runs, the word-embedding lookups of ``model``'s encoders that
    qualify (:func:`_eligible`) keep their gradients in one buffer each. Yields the
    :class:`RowGradients` installed."""
    installed = []
    for module in model.modules():
        if isinstance(module, Embeddings) and _eligible(model, module.word_embeddings):
            module.word_lookup = RowGradients(module.word_embeddings)
            installed.append(module)
    try:
        yield [module.word_lookup for module in installed]
    finally:
        for module in installed:
            module.word_lookup = None


@torch.no_grad()
def clip_grad_norm(parameters, max_norm: float, row_grads=()) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` (2-norm over all gradients, scaled by
    ``max_norm / (norm + 1e-6)`` when above ``max_norm``) that reads and scales only the
    written rows of the gradients in ``row_grads``: the rest are zeros. Over the
    default model's word embeddings that is a few hundred rows instead of 30,522."""
    sparse = {}
    for owner in row_grads:
        rows = owner.rows()
        if rows is not None:
            sparse[id(owner.embedding.weight)] = (owner.buffer, rows)
    dense = [p.grad for p in parameters if p.grad is not None and id(p) not in sparse]
    picked = [buffer.index_select(0, rows) for buffer, rows in sparse.values()]
    if not dense and not picked:
        return torch.tensor(0.0)
    norms = list(torch._foreach_norm(dense)) if dense else []
    norms += [torch.linalg.vector_norm(x) for x in picked]
    total = torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    if dense:
        torch._foreach_mul_(dense, coef.to(dense[0].device))
    for (buffer, rows), values in zip(sparse.values(), picked, strict=True):
        buffer.index_copy_(0, rows, values.mul_(coef))
    return total
