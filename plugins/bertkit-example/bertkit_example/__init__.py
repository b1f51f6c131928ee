"""An example bertkit plugin, registered through the ``bertkit`` entry-point group."""

from __future__ import annotations

import torch
from torch import nn

import bertkit
from bertkit.heads import SequenceClassificationHead

__all__ = ["chunked_attention", "MeanPooledClassificationHead"]

CHUNK = 64


def chunked_attention(query, key, value, *, bias, dropout_p, scale, head_mask, need_weights):
    """Exact attention computed ``CHUNK`` queries at a time (same signature as every backend)."""
    contexts, probabilities = [], []
    for start in range(0, query.shape[2], CHUNK):
        q = query[:, :, start:start + CHUNK]
        scores = torch.matmul(q, key.transpose(-1, -2)) * scale  # (b, h, chunk, k)
        if bias is not None:
            b = bias if bias.shape[2] == 1 else bias[:, :, start:start + CHUNK]
            scores = scores + b
        probs = torch.softmax(scores, dim=-1)
        if dropout_p > 0.0:
            probs = nn.functional.dropout(probs, p=dropout_p, training=True)
        if head_mask is not None:
            probs = probs * head_mask
        contexts.append(torch.matmul(probs, value))
        if need_weights:
            probabilities.append(probs)
    context = torch.cat(contexts, dim=2)
    return context, (torch.cat(probabilities, dim=2) if need_weights else None)


class MeanPooledClassificationHead(SequenceClassificationHead):
    """Masked mean of the last hidden states, dropout, linear layer."""

    uses_pooler = False

    def forward(self, outputs, inputs):
        hidden = outputs.last_hidden_state
        mask = inputs.get("attention_mask")
        if mask is None:
            pooled = hidden.mean(dim=1)
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return {"logits": self.classifier(self.dropout(pooled))}


@bertkit.hookimpl
def bertkit_register_attention_backends(register):
    register("chunked", chunked_attention)


@bertkit.hookimpl
def bertkit_register_heads(register):
    register("mean_pooled_classification", MeanPooledClassificationHead)

