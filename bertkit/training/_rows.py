"""AdamW on the word-embedding rows that training has read so far.

The default model's word-embedding matrix holds half its weights (30,522 x 384 = 11.7M),
and a batch reads a few hundred of its rows. With PyTorch's own embedding and AdamW,
every step pays for all of them three times: the embedding backward fills a fresh dense
gradient of the whole matrix (47 MB of new pages each step), gradient clipping reads
it, and AdamW reads and writes the matrix and its two moments. On an SST-2 step of
the default model on 2 CPU threads the optimizer alone took 8.9 % (12.6 of 141 ms),
half of it on this matrix.

A row that no batch has read has a zero gradient and zero moments, so AdamW leaves it
as it is, apart from weight decay, which scales every such row by the same factor
``1 - lr * weight_decay`` each step. :class:`ActiveRows` therefore trains a copy of the
matrix whose rows are kept in the order they were first read: the rows read so far
(the *active* rows) are the first ``n`` rows of the copy, and what the optimizer sees
is one parameter, a view of those ``n`` rows, with its gradient and moments views of
buffers of the same layout. A batch that reads new rows swaps them into place before
the forward pass; the gradient is added into the kept buffer at the rows read, and
those rows are zeroed again after the step. Inactive rows carry one shared decay
factor, applied when a row becomes active and when the weights are written back.

What the model ends with equals PyTorch's dense AdamW: bit for bit without weight decay
(the same elementwise update on the same values; the per-row sums of the gradient are
made in the same order), and to float rounding with it (one product of the decay
factors instead of one multiplication per step). Only a trainable CPU matrix that no
other module shares (a tied decoder adds dense gradients) and that needs no per-row
rescaling qualifies, and only under fused AdamW (:func:`active_rows`).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling import Embeddings

__all__ = ["ActiveRows", "active_rows", "clip_grad_norm"]


class ActiveRows:
    """The lookup of one ``nn.Embedding`` trained through a row-reordered copy.

    ``table`` holds the matrix's rows, ``row[i]`` being the vocabulary row at position
    ``i`` and ``slot[r]`` the position of row ``r``; positions ``[0, n)`` are active.
    ``param`` (a view of ``table[:n]``) stands in for the matrix in the optimizer.
    """

    def __init__(self, embedding: nn.Embedding):
        self.embedding = embedding
        weight = embedding.weight
        vocab = weight.shape[0]
        self.table = weight.detach().clone()
        self.slot = torch.arange(vocab, device=weight.device)
        self.row = torch.arange(vocab, device=weight.device)
        self.n = 0
        # Uninitialised: the positions are zeroed as they become active, so the pages of
        # rows never read are never touched.
        self.grad = torch.empty_like(self.table)
        self.exp_avg = torch.empty_like(self.table)
        self.exp_avg_sq = torch.empty_like(self.table)
        self.param = nn.Parameter(self.table[:0])
        self.written: list[torch.Tensor] = []  # positions the gradient buffer holds values in
        self.decay = 1.0  # what weight decay has owed every inactive row so far
        self.group: dict | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    # ----------------------------------------------------------------- lookup
    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        self.activate(ids)
        return _Lookup.apply(self.slot[ids], self.param, self)

    def activate(self, ids: torch.Tensor) -> None:
        """Move the rows of ``ids`` not yet active to positions ``[n, n + k)``."""
        ids = ids.reshape(-1)
        new = torch.unique(ids[self.slot[ids] >= self.n])
        k = new.numel()
        if k == 0:
            return
        start, end = self.n, self.n + k
        pos = self.slot[new]
        held = torch.zeros(k, dtype=torch.bool, device=pos.device)
        held[pos[pos < end] - start] = True  # block positions that already hold a new row
        outside = pos[pos >= end]
        free = torch.nonzero(~held).reshape(-1) + start  # block positions held by other rows
        if outside.numel():
            rows_out, rows_free = self.row[outside], self.row[free]
            values = self.table[outside]
            self.table[outside] = self.table[free]
            self.table[free] = values
            self.row[outside], self.row[free] = rows_free, rows_out
            self.slot[rows_out], self.slot[rows_free] = free, outside
        with torch.no_grad():
            if self.decay != 1.0:
                self.table[start:end].mul_(self.decay)
            for buffer in (self.grad, self.exp_avg, self.exp_avg_sq):
                buffer[start:end].zero_()
        self.n = end
        self.param.data = self.table[:end]
        if self.param.grad is not None:  # a later micro-batch of the same step
            self.param.grad = self.grad[:end]

    def accumulate(self, positions: torch.Tensor, grad: torch.Tensor) -> None:
        positions, grad = positions.reshape(-1), grad.reshape(-1, grad.shape[-1])
        padding = self.embedding.padding_idx
        if padding is not None:
            keep = positions != self.slot[padding]
            positions, grad = positions[keep], grad[keep]
        self.grad.index_add_(0, positions, grad.to(self.grad.dtype))
        self.written.append(positions)
        self.param.grad = self.grad[:self.n]

    # ----------------------------------------------------------------- optimizer
    def install(self, optimizer: torch.optim.Optimizer) -> None:
        """Put :attr:`param` in place of the matrix in ``optimizer``'s groups."""
        weight = self.embedding.weight
        for group in optimizer.param_groups:
            for i, param in enumerate(group["params"]):
                if param is weight:
                    group["params"][i] = self.param
                    self.group = group
        if self.group is None:
            raise ValueError("the optimizer does not train this embedding matrix")
        self.optimizer = optimizer
        self._hooks = [optimizer.register_step_pre_hook(self._before_step),
                       optimizer.register_step_post_hook(self._after_step)]

    def _state_views(self) -> None:
        state = self.optimizer.state[self.param]
        if state:  # created by the first step
            for name, buffer in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
                if state[name].data_ptr() != buffer.data_ptr():
                    buffer[:self.n].copy_(state[name])
                state[name] = buffer[:self.n]

    def _before_step(self, optimizer, args, kwargs):
        self._state_views()
        if self.param.grad is not None:  # AdamW skips a parameter without a gradient
            self.decay *= 1.0 - self.group["lr"] * self.group["weight_decay"]

    def _after_step(self, optimizer, args, kwargs):
        self._state_views()
        if self.written:
            self.grad.index_fill_(0, torch.cat(self.written), 0.0)
            self.written = []

    def sync(self) -> None:
        """Write the trained rows (and the decay the others owe) into the matrix."""
        weight = self.embedding.weight
        with torch.no_grad():
            weight.index_copy_(0, self.row[:self.n], self.table[:self.n])
            if self.decay != 1.0:
                weight.index_copy_(0, self.row[self.n:], self.table[self.n:] * self.decay)

    def remove(self) -> None:
        for hook in getattr(self, "_hooks", ()):
            hook.remove()
        if self.group is not None:
            params = self.group["params"]
            params[next(i for i, p in enumerate(params) if p is self.param)] = self.embedding.weight
            self.optimizer.state.pop(self.param, None)


class _Lookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions, param, owner: ActiveRows):
        ctx.save_for_backward(positions)
        ctx.owner = owner
        return F.embedding(positions, owner.table)

    @staticmethod
    def backward(ctx, grad):
        (positions,) = ctx.saved_tensors
        ctx.owner.accumulate(positions, grad)
        return None, None, None  # the gradient is already in the owner's buffer


def _eligible(model: nn.Module, embedding: nn.Embedding) -> bool:
    """Only a trainable CPU matrix that no other module shares (a tied decoder would add
    dense gradients) and that needs no per-row rescaling."""
    weight = embedding.weight
    shared = sum(p is weight for _, p in model.named_parameters(remove_duplicate=False)) > 1
    return (weight.requires_grad and weight.device.type == "cpu" and weight.dtype == torch.float32
            and not shared and embedding.max_norm is None and not embedding.scale_grad_by_freq
            and not embedding.sparse)


def _plain_fused_adamw(optimizer: torch.optim.Optimizer) -> bool:
    d = optimizer.defaults
    return (isinstance(optimizer, torch.optim.AdamW) and bool(d.get("fused")) and not d.get("amsgrad")
            and not d.get("maximize") and not d.get("capturable") and not d.get("differentiable"))


@contextlib.contextmanager
def active_rows(model: nn.Module, optimizer: torch.optim.Optimizer):
    """While the block runs, ``optimizer`` (fused AdamW) trains the word-embedding
    matrices of ``model``'s encoders that qualify (:func:`_eligible`) through
    :class:`ActiveRows`; yields them. Call :meth:`ActiveRows.sync` before reading the
    matrices inside the block; on leaving it they are written back and the optimizer
    gets the matrix back in its group."""
    installed = []
    if _plain_fused_adamw(optimizer):
        for module in model.modules():
            if isinstance(module, Embeddings) and _eligible(model, module.word_embeddings):
                rows = ActiveRows(module.word_embeddings)
                rows.install(optimizer)
                module.word_lookup = rows
                installed.append(module)
    try:
        yield [module.word_lookup for module in installed]
    finally:
        for module in installed:
            module.word_lookup.sync()
            module.word_lookup.remove()
            module.word_lookup = None


@torch.no_grad()
def clip_grad_norm(parameters, max_norm: float, optimizer: torch.optim.Optimizer | None = None) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` (2-norm over all gradients, scaled by
    ``max_norm / (norm + 1e-6)`` when above ``max_norm``); returns the norm.

    With a fused ``optimizer`` the gradients are not rescaled here: the factor goes to
    its next step as ``grad_scale`` (which the fused kernel divides every gradient by as
    it reads it), saving a pass over all of them. The caller removes it after the step
    (:func:`drop_grad_scale`)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norms = torch._foreach_norm(grads)
    total = torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    if optimizer is not None and optimizer.defaults.get("fused"):
        optimizer.grad_scale = coef.reciprocal().to(grads[0].device)
    else:
        torch._foreach_mul_(grads, coef.to(grads[0].device))
    return total


def drop_grad_scale(optimizer: torch.optim.Optimizer) -> None:
    """Remove the factor :func:`clip_grad_norm` left for the optimizer's step."""
    if hasattr(optimizer, "grad_scale"):
        del optimizer.grad_scale
