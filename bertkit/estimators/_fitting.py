"""Fitting a head: the steps every estimator's ``fit`` shares.

:func:`start_fit` resolves the model source, the tokenizer and the seed;
:func:`train_model` builds a fresh model from the checkpoint and runs the shared loop on
already encoded data under the seed; :func:`fit_head` is the whole ``fit`` of
BertClassifier and BertRegressor (per-text targets, optional validation split).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from .._errors import InputError
from ..training import Encoded, FitResult, fit, resolve_device
from ._input import TextColumns

__all__ = ["FitStart", "HeadFit", "fit_head", "start_fit", "train_model", "validation_split", "weighted_mean"]


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


@dataclass
class FitStart:
    """What every fit needs before it encodes its data."""

    folder: Path
    tokenizer: Any
    seed: int
    pad_id: int


def start_fit(est) -> FitStart:
    """Check the early-stopping parameters and the device, resolve the checkpoint
    folder, load the (cached) tokenizer and draw the seed."""
    resolve_device(getattr(est, "device", "auto"))  # a device this machine lacks fails before any work
    if getattr(est, "n_iter_no_change", None) is not None and getattr(est, "validation_fraction", None) is None:
        raise InputError(
            f"The 'n_iter_no_change' parameter of {type(est).__name__} stops on validation "
            f"scores; set validation_fraction (e.g. 0.1) too."
        )
    folder = est._resolve_source()
    tokenizer = est._load_tokenizer(folder)
    return FitStart(folder, tokenizer, est._seed(), tokenizer.pad_token_id or 0)


def train_model(
    est,
    start: FitStart,
    train: Encoded,
    targets: torch.Tensor | None,
    loss_fn: Callable,
    *,
    head_options: dict | None = None,
    output_fn: Callable = _logits,
    prepare_batch: Callable | None = None,
    epoch_data: Callable | None = None,
    pool_windows: bool = True,
    sample_weight: torch.Tensor | None = None,
    evaluate: Callable | None = None,
    configure: Callable[[torch.nn.Module], None] | None = None,
) -> FitResult:
    """A fresh model from ``start.folder`` with ``est``'s head, trained on ``train`` by the
    shared loop under ``start.seed`` (the global RNG is left as it was). Sets
    ``model_``, ``tokenizer_``, ``history_`` and ``best_epoch_`` on ``est``.
    ``configure(model)`` (optional) runs before training (e.g. to set config fields)."""
    device = resolve_device(est.device)
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(start.seed)
        model = est._new_model(start.folder, **(head_options or {}))
        if configure is not None:
            configure(model)
        result = fit(
            model, train, targets, loss_fn, est._settings(start.seed),
            output_fn=output_fn,
            pad_id=start.pad_id,
            sample_weight=sample_weight,
            evaluate=evaluate,
            desc=f"{type(est).__name__}.fit",
            forward_kwargs=(est._forward_kwargs if est._fit_forward_kwargs is None
                            else est._fit_forward_kwargs),
            prepare_batch=prepare_batch,
            epoch_data=epoch_data,
            pool_windows=pool_windows,
        )
    est.model_ = model
    est.tokenizer_ = start.tokenizer
    est.history_ = result.history
    est.best_epoch_ = result.best_epoch
    return result


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
    start = start_fit(est)
    encoded = est._encode(texts, start.tokenizer)
    train_idx, valid_idx = validation_split(len(texts), est.validation_fraction, start.seed, stratify)
    outcome = HeadFit()
    evaluate = None
    seen: dict[int, np.ndarray] = {}
    if valid_idx is not None:
        valid = encoded.subset(valid_idx)
        valid_targets = targets[valid_idx]
        valid_target_tensor = torch.as_tensor(valid_targets, dtype=target_dtype)

        def evaluate(model):
            logits = est._predict(valid, _logits, "validate", model=model, tokenizer=start.tokenizer,
                                  verbose=False)
            seen[len(seen) + 1] = logits
            loss = float(loss_fn(torch.from_numpy(logits), valid_target_tensor, None))
            return {"valid_loss": loss, "valid_score": float(score_fn(logits, valid_targets))}

    result = train_model(
        est, start,
        encoded if valid_idx is None else encoded.subset(train_idx),
        torch.as_tensor(targets[train_idx], dtype=target_dtype),
        loss_fn,
        head_options=head_options,
        sample_weight=None if weights is None else torch.as_tensor(weights[train_idx], dtype=torch.float32),
        evaluate=evaluate,
        configure=lambda model: model.config.extras.update(problem_type=problem_type),
    )
    if valid_idx is not None and result.best_epoch is not None:
        outcome.valid_logits = seen[result.best_epoch]
        outcome.valid_targets = valid_targets
    return outcome
