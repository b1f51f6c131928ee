"""Fitting a head on per-text targets: the part BertClassifier and BertRegressor share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from .._errors import InputError
from ..training import fit, predict_rows, resolve_device
from ._input import TextColumns

__all__ = ["fit_head", "HeadFit", "validation_split", "weighted_mean"]


@dataclass
class HeadFit:
    valid_logits: np.ndarray | None = None
    valid_targets: np.ndarray | None = None


def validation_split(n: int, fraction: float | None, seed: int, stratify=None):
    """Train and validation indices (validation None without a fraction)."""
    if fraction is None:
        return np.arange(n), None
    n_valid = int(np.ceil(n * fraction))
    if n_valid < 1 or n - n_valid < 1:
        raise InputError(
            f"validation_fraction={fraction} leaves no data on one side of the split of {n} texts; "
            f"use more data or another fraction."
        )
    index = np.arange(n)
    try:
        train, valid = train_test_split(index, test_size=n_valid, random_state=seed % 2**32, stratify=stratify)
    except ValueError:  # a class too small to stratify
        train, valid = train_test_split(index, test_size=n_valid, random_state=seed % 2**32)
    return np.sort(train), np.sort(valid)


def weighted_mean(losses: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-example losses, weighted by ``weight`` when given (normalised by its sum)."""
    if weight is None:
        return losses.mean()
    return (losses * weight).sum() / weight.sum().clamp(min=1e-12)


def _logits(out, inputs):
    return out["logits"]


def fit_head(
    est,
    texts: TextColumns,
    targets: np.ndarray,
    weights: np.ndarray | None,
    *,
    head_options: dict,
    problem_type: str,
    loss_fn: Callable,
    score_fn: Callable[[np.ndarray, np.ndarray], float],
    target_dtype: torch.dtype,
    stratify=None,
) -> HeadFit:
    """Fine-tune ``est``'s head on ``texts``/``targets``; sets ``model_``, ``tokenizer_``,
    ``history_`` and ``best_epoch_`` on ``est``."""
    if est.n_iter_no_change is not None and est.validation_fraction is None:
        raise InputError(
            f"The 'n_iter_no_change' parameter of {type(est).__name__} stops on validation "
            f"scores; set validation_fraction (e.g. 0.1) too."
        )
    seed = est._seed()
    folder = est._resolve_source()
    tokenizer = est._load_tokenizer(folder)
    encoded = est._encode(texts, tokenizer)
    train_idx, valid_idx = validation_split(len(texts), est.validation_fraction, seed, stratify)
    settings = est._settings(seed)
    pad_id = tokenizer.pad_token_id or 0
    device = resolve_device(est.device)
    outcome = HeadFit()
    evaluate = None
    if valid_idx is not None:
        valid = encoded.subset(valid_idx)
        valid_targets = targets[valid_idx]
        valid_target_tensor = torch.as_tensor(valid_targets, dtype=target_dtype)
        seen: dict[int, np.ndarray] = {}

        def evaluate(model):
            logits = predict_rows(
                model, valid, _logits, pad_id=pad_id, device=device, precision=est.precision,
                max_tokens=est.batch_size * est.max_length, window_pooling=est.window_pooling,
                forward_kwargs=est._forward_kwargs,
            )
            seen[len(seen) + 1] = logits
            loss = float(loss_fn(torch.from_numpy(logits), valid_target_tensor, None))
            return {"valid_loss": loss, "valid_score": float(score_fn(logits, valid_targets))}

    train = encoded if valid_idx is None else encoded.subset(train_idx)
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(seed)
        model = est._new_model(folder, **head_options)
        model.config.extras["problem_type"] = problem_type
        result = fit(
            model, train,
            torch.as_tensor(targets[train_idx], dtype=target_dtype),
            loss_fn, settings,
            output_fn=_logits,
            pad_id=pad_id,
            sample_weight=None if weights is None else torch.as_tensor(weights[train_idx], dtype=torch.float32),
            evaluate=evaluate,
            desc=f"{type(est).__name__}.fit",
            forward_kwargs=est._forward_kwargs,
        )
    est.model_ = model
    est.tokenizer_ = tokenizer
    est.history_ = result.history
    est.best_epoch_ = result.best_epoch
    if valid_idx is not None and result.best_epoch is not None:
        outcome.valid_logits = seen[result.best_epoch]
        outcome.valid_targets = valid_targets
    return outcome
