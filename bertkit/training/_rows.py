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
from torch.optim.adamw import adamw

from ..modeling import Embeddings

__all__ = ["RowAdamW", "RowGradients", "clip_grad_norm", "row_gradients"]


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


class RowAdamW:
    """AdamW for a word-embedding matrix whose gradient is a :class:`RowGradients`
    buffer, over the rows that have had a gradient so far in the fit.

    A row no batch has read yet has zero gradient, first and second moments, so
    AdamW's update leaves it as it is, apart from weight decay. The optimizer's fused
    kernel still reads and writes all of it, seven floats per weight each step: for the
    default model's 30,522 x 384 matrix, half of the optimizer's time, when a SST-2 fit
    of 8,000 sentences reads 28 % of the rows by its end. This class keeps the moments of
    the rows read so far (in the order they were first read), runs PyTorch's AdamW on
    those rows only, with the same kernel, learning rate, betas, epsilon, weight decay
    and step count as the matrix's parameter group, and leaves the matrix's gradient
    None so the optimizer skips it. Weight decay of the unread rows is one shared
    factor, applied when a row is first read and by :meth:`sync`. Call :meth:`step`
    after clipping and before ``optimizer.step()``, and :meth:`sync` before anything
    reads the weights (evaluation, the end of the fit).

    Without weight decay the weights are the same, to the bit, as the optimizer's own;
    with it they differ by float rounding (one product against one multiplication per
    step).
    """

    def __init__(self, owner: RowGradients, optimizer: torch.optim.Optimizer):
        self.owner = owner
        self.weight = owner.embedding.weight
        (self.group,) = [g for g in optimizer.param_groups if any(p is self.weight for p in g["params"])]
        self.fused = bool(optimizer.defaults.get("fused"))
        self.seen = torch.zeros(self.weight.shape[0], dtype=torch.bool)
        self.rows = torch.empty(0, dtype=torch.long)
        width = self.weight.shape[1:]
        self.exp_avg = self.weight.new_zeros((0, *width))
        self.exp_avg_sq = self.weight.new_zeros((0, *width))
        self.steps = torch.tensor(0.0)
        self.pending = 1.0  # weight decay the unread rows still owe

    @classmethod
    def for_optimizer(cls, owners, optimizer) -> list[RowAdamW]:
        """One per row-gradient owner whose matrix ``optimizer`` trains with AdamW."""
        if not isinstance(optimizer, torch.optim.AdamW):
            return []
        plain = {id(p) for g in optimizer.param_groups for p in g["params"]
                 if not g["amsgrad"] and not g["maximize"] and not g.get("differentiable")
                 and not g.get("capturable")}
        return [cls(o, optimizer) for o in owners if id(o.embedding.weight) in plain]

    @torch.no_grad()
    def step(self) -> None:
        grad = self.weight.grad
        if grad is None:
            return  # the optimizer skips a parameter without gradient; so do we
        rows = self.owner.rows()
        if rows is None:  # a gradient PyTorch made: every row may be non-zero
            rows = torch.arange(self.weight.shape[0])
        new = rows[~self.seen[rows]]
        if len(new):
            if self.pending != 1.0:
                self.weight.index_copy_(0, new, self.weight.index_select(0, new).mul_(self.pending))
            self.seen[new] = True
            self.rows = torch.cat([self.rows, new])
            fresh = self.weight.new_zeros((len(new), *self.weight.shape[1:]))
            self.exp_avg = torch.cat([self.exp_avg, fresh])
            self.exp_avg_sq = torch.cat([self.exp_avg_sq, fresh])
        self.weight.grad = None  # the optimizer leaves the matrix to us
        if not len(self.rows):
            return
        group = self.group
        lr, decay = group["lr"], group["weight_decay"]
        values = self.weight.index_select(0, self.rows)
        adamw(  # counts the step itself, as the optimizer does
            [values], [grad.index_select(0, self.rows)], [self.exp_avg], [self.exp_avg_sq], [], [self.steps],
            fused=self.fused, foreach=False,
            amsgrad=False, beta1=group["betas"][0], beta2=group["betas"][1], lr=lr, weight_decay=decay,
            eps=group["eps"], maximize=False,
        )
        self.weight.index_copy_(0, self.rows, values)
        self.pending *= 1.0 - lr * decay

    @torch.no_grad()
    def sync(self) -> None:
        """Apply the weight decay the unread rows owe."""
        if self.pending != 1.0:
            unread = ~self.seen
            self.weight[unread] *= self.pending
            self.pending = 1.0
