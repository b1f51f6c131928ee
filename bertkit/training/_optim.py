"""AdamW parameter groups (weight decay, layer-wise learning rates, freezing) and the schedule."""

from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["freeze", "param_groups", "linear_schedule", "layer_index"]

_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")


def layer_index(name: str, num_layers: int) -> int:
    """Depth of a parameter: 0 embeddings, 1..L encoder layers, L+1 pooler and head."""
    if ".embeddings." in f".{name}":
        return 0
    match = _LAYER.search(name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


def freeze(model: nn.Module, *, embeddings: bool, layers: int) -> None:
    """Stop gradients to the embeddings and/or the first ``layers`` encoder layers."""
    num_layers = model.config.num_hidden_layers
    for name, param in model.named_parameters():
        depth = layer_index(name, num_layers)
        if (embeddings and depth == 0) or (0 < depth <= layers):
            param.requires_grad_(False)


def param_groups(model: nn.Module, *, learning_rate: float, weight_decay: float, layer_lr_decay: float):
    """AdamW groups: no weight decay on biases and LayerNorm weights; the learning rate
    shrinks by ``layer_lr_decay`` per layer below the top (1.0 = the same everywhere)."""
    num_layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
        depth = layer_index(name, num_layers)
        key = (depth, no_decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": learning_rate * layer_lr_decay ** (num_layers + 1 - depth),
                "weight_decay": 0.0 if no_decay else weight_decay,
            }
        groups[key]["params"].append(param)
    return [groups[k] for k in sorted(groups)]


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up from 0 to each group's rate, then linear decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
