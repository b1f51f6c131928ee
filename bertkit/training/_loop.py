"""One fit loop and one inference loop, shared by every estimator.

The estimator supplies the tokenised examples, per-example targets and a loss
function; the loop owns batching, the optimizer and schedule, mixed precision,
early stopping with best-weight restore, history, progress bars and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import inspect
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._errors import InputError
from ._batching import Encoded, aggregate_rows, inference_batches, train_batches
from ._optim import freeze, linear_schedule, param_groups
from ._quantize import quantize_int8
from ._rows import active_rows, clip_grad_norm, drop_grad_scale

__all__ = ["TrainSettings", "FitResult", "fit", "predict_rows", "resolve_device", "autocast_dtype"]

logger = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Everything the fit loop needs to know besides the data."""

    learning_rate: float = 5e-5
    n_epochs: int = 3
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float | None = 1.0
    gradient_accumulation_steps: int = 1
    layer_lr_decay: float = 1.0
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    n_iter_no_change: int | None = None
    device: str = "auto"
    precision: str = "auto"
    verbose: bool = False
    random_state: int | None = None
    window_pooling: str = "mean"


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    interrupted: bool = False
    n_steps: int = 0


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch reads it.

    A device this machine does not have (``"cuda"`` on a CPU-only build, ``"cuda:3"``
    with two GPUs, ``"mps"`` off Apple silicon) or a name torch does not know raises
    :class:`~bertkit.InputError` naming what is available, before any work starts.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device={device!r} is not a device torch knows ({exc}). "
                         f"Use 'auto', 'cpu' or 'cuda' (available here: {_available_devices()}).") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index is not None and resolved.index >= count):
            have = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise InputError(f"device={device!r} was asked for, but this machine has {have}. "
                             f"Use device='auto' (CUDA when there is one, else CPU) or one of: "
                             f"{_available_devices()}.")
    elif resolved.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError(f"device={device!r} was asked for, but MPS is not available here. "
                         f"Use device='auto' or one of: {_available_devices()}.")
    return resolved


def _available_devices() -> str:
    names = ["'cpu'"]
    if torch.cuda.is_available():
        names += [f"'cuda:{i}'" for i in range(torch.cuda.device_count())]
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        names.append("'mps'")
    return ", ".join(names)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = plain fp32; ``"int8"``
    trains in fp32 and changes only inference, see :func:`predict_rows`)."""
    if precision in ("fp32", "int8") or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _fused_supported(model: nn.Module) -> bool:
    params = [p for p in model.parameters() if p.requires_grad]
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def progress_bar(total: int, desc: str, verbose: bool, unit: str = "batch"):
    """The tqdm bar of bertkit's long loops (shown only with ``verbose``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not verbose, leave=False, unit=unit)


def fit(
    model: nn.Module,
    data: Encoded,
    targets: torch.Tensor | None,
    loss_fn: Callable[[Any, Any, torch.Tensor | None], torch.Tensor],
    settings: TrainSettings,
    *,
    output_fn: Callable[[Any, dict], Any],
    pad_id: int,
    sample_weight: torch.Tensor | None = None,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    desc: str = "fit",
    forward_kwargs: dict | None = None,
    prepare_batch: Callable[[dict, np.ndarray], tuple[dict, Any]] | None = None,
    epoch_data: Callable[[int], tuple[Encoded, torch.Tensor | None]] | None = None,
    pool_windows: bool = True,
) -> FitResult:
    """Train ``model`` in place on ``data``; returns the history.

    Per batch of examples: their rows are padded into ``inputs``;
    ``prepare_batch(inputs, examples) -> (inputs, batch_targets)`` (optional; default
    ``targets[examples]``) may rewrite the inputs and make the targets (MLM masking,
    shifted LM labels, reshaping choices); ``output_fn(model_outputs, inputs)`` picks
    what the loss sees (e.g. the logits). With ``pool_windows`` (default), the rows of an
    example with several rows (windows) are combined by ``settings.window_pooling``; pass
    False when ``output_fn`` already gives one output per example (multiple choice).
    Then ``loss_fn(outputs, batch_targets, weights)``.

    ``evaluate(model)`` (optional) returns ``{"valid_loss": ..., "valid_score": ...}``
    after each epoch; the best epoch by ``valid_score`` (higher is better) is restored
    at the end, and training stops after ``n_iter_no_change`` epochs without
    improvement. Ctrl-C stops training, restores the best weights so far and warns.
    ``forward_kwargs`` go to every ``model(...)`` call (e.g. ``first_token_only=True``).
    ``epoch_data(epoch) -> (data, targets)`` (optional) replaces ``data`` and ``targets``
    from the second epoch on (``epoch`` counts from 0; e.g. new next-sentence pairs every
    epoch); it should keep the number of examples so the schedule stays right.
    """
    device = resolve_device(settings.device)
    amp = autocast_dtype(device, settings.precision)
    model.to(device)
    freeze(model, embeddings=settings.freeze_embeddings, layers=settings.freeze_layers)
    optimizer = torch.optim.AdamW(
        param_groups(model, learning_rate=settings.learning_rate, weight_decay=settings.weight_decay,
                     layer_lr_decay=settings.layer_lr_decay),
        lr=settings.learning_rate, betas=(0.9, 0.999), eps=1e-8,
        # The fused kernel updates all 22M parameters of the default model in ~0.02 s
        # on 2 CPU cores, against ~0.13 s for the per-parameter loop.
        fused=_fused_supported(model),
    )
    steps_per_epoch = math.ceil(math.ceil(data.n_examples / settings.batch_size)
                                / settings.gradient_accumulation_steps)
    total_steps = max(1, steps_per_epoch * settings.n_epochs)
    scheduler = linear_schedule(optimizer, int(settings.warmup_ratio * total_steps), total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    rng = np.random.default_rng(settings.random_state)
    example_lengths = data.example_lengths()
    targets = targets.to(device) if targets is not None else None
    weights = sample_weight.to(device) if sample_weight is not None else None

    result = FitResult()
    best_state, best_score, stale = None, -math.inf, 0
    stack = contextlib.ExitStack()
    row_tables = stack.enter_context(active_rows(model, optimizer))
    clipped = list(model.parameters()) + [rows.param for rows in row_tables]
    try:
        for epoch in range(settings.n_epochs):
            if epoch_data is not None and epoch > 0:
                data, targets = epoch_data(epoch)
                example_lengths = data.example_lengths()
                targets = targets.to(device) if targets is not None else None
            model.train()
            started = time.perf_counter()
            batches = train_batches(example_lengths, settings.batch_size, rng)
            total_loss, seen = 0.0, 0
            with progress_bar(len(batches), f"{desc} epoch {epoch + 1}/{settings.n_epochs}", settings.verbose) as bar:
                for i, examples in enumerate(batches):
                    rows, owner = data.rows_of(examples)
                    inputs = data.collate(rows, pad_id, device)
                    index = torch.from_numpy(examples).to(device)
                    if prepare_batch is None:
                        batch_targets = targets[index]
                    else:
                        inputs, batch_targets = prepare_batch(inputs, examples)
                    with _autocast(device, amp):
                        outputs = _to_float(output_fn(model(**inputs, **(forward_kwargs or {})), inputs))
                    if pool_windows and len(rows) != len(examples):  # windows: pool
                        outputs = aggregate_rows(outputs, torch.from_numpy(owner).to(device),
                                                 len(examples), settings.window_pooling)
                    loss = loss_fn(outputs, batch_targets, None if weights is None else weights[index])
                    # Each batch's share of its accumulation group; the last group of an
                    # epoch may be shorter, and still averages over its own batches.
                    group_start = i - i % settings.gradient_accumulation_steps
                    group_size = min(settings.gradient_accumulation_steps, len(batches) - group_start)
                    scaler.scale(loss / group_size).backward()
                    last = i + 1 == len(batches)
                    if (i + 1) % settings.gradient_accumulation_steps == 0 or last:
                        if settings.max_grad_norm:
                            scaler.unscale_(optimizer)
                            clip_grad_norm(clipped, settings.max_grad_norm,
                                           None if scaler.is_enabled() else optimizer)
                        scaler.step(optimizer)
                        drop_grad_scale(optimizer)
                        scaler.update()
                        optimizer.zero_grad(set_to_none=True)
                        scheduler.step()
                        result.n_steps += 1
                    total_loss += float(loss.detach()) * len(examples)
                    seen += len(examples)
                    bar.update(1)
                    if settings.verbose:
                        bar.set_postfix(loss=f"{total_loss / seen:.4f}", refresh=False)
            record = {"epoch": epoch + 1, "train_loss": total_loss / max(seen, 1)}
            if evaluate is not None:
                for rows in row_tables:
                    rows.sync()  # the matrices as trained so far, for evaluate and best_state
                record.update(evaluate(model))
            record["time_s"] = time.perf_counter() - started
            result.history.append(record)
            logger.info("%s epoch %d: %s", desc, epoch + 1,
                        ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch"))
            if evaluate is not None:
                score = record.get("valid_score", -record.get("valid_loss", 0.0))
                if score > best_score:
                    best_score, stale, result.best_epoch = score, 0, epoch + 1
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                else:
                    stale += 1
                    if settings.n_iter_no_change is not None and stale >= settings.n_iter_no_change:
                        logger.info("%s: no improvement for %d epochs, stopping", desc, stale)
                        break
    except KeyboardInterrupt:
        result.interrupted = True
        warnings.warn(
            f"{desc} interrupted after {len(result.history)} complete epoch(s); keeping "
            + ("the best weights so far." if best_state is not None else "the weights as they are."),
            stacklevel=3,
        )
    finally:
        stack.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        del optimizer, scheduler, scaler, best_state
        model.zero_grad(set_to_none=True)
        for param in model.parameters():
            param.requires_grad_(True)
        model.eval()
        gc.collect()
        release_memory()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result


#: ``predict_rows`` hands freed memory back after a call over at least this many tokens.
RELEASE_AFTER_TOKENS = 1 << 16


def release_memory() -> None:
    """Give the heap memory that Python and PyTorch have freed back to the system.

    glibc keeps freed blocks for reuse; with activations of a new shape in every batch
    the heap fragments, and the resident size of a long ``transform`` or of a grid
    search grows by about 120 MB per 8,192 texts (all-MiniLM-L6-v2) though nothing is
    held. ``malloc_trim`` returns it. A no-op where the C library is not glibc.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


#: glibc's ``(M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)`` from the first prediction on (bytes),
#: or None to leave the C library's own. By default glibc hands the free top of the heap
#: back to the system whenever it passes a threshold that grows with the largest block
#: freed so far. Every inference batch frees tens of MB of activations at once, so the
#: next batch faults its pages in anew: 60,000-300,000 page faults per pass over the
#: 4,096 SST-2 sentences. These values are where glibc's own rule tops out on 64-bit
#: systems (once a 32 MB block has been freed), set from the start: a few hundred
#: faults per pass, and a pass 3-9 % faster (five pairs of processes, 2 threads). The
#: resident size stays bounded by :class:`HeapGuard` and :func:`release_memory`, which
#: trim explicitly; the peak grew by 22 MB (681 against 659 MB, median of five).
HEAP_THRESHOLDS: tuple[int, int] | None = (32 << 20, 64 << 20)


def tune_heap() -> bool:
    """Apply :data:`HEAP_THRESHOLDS` through glibc's ``mallopt`` (once per process and
    setting); True when they are in force. A no-op where the C library is not glibc."""
    if HEAP_THRESHOLDS is None:
        return False
    if _TUNED.get("thresholds") == HEAP_THRESHOLDS:
        return True
    mallopt = _mallopt()
    if mallopt is None:
        return False
    mmap_threshold, trim_threshold = HEAP_THRESHOLDS
    ok = bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
    if ok:
        _TUNED["thresholds"] = HEAP_THRESHOLDS
        logger.debug("glibc heap thresholds set: mmap %d, trim %d bytes", mmap_threshold, trim_threshold)
    return ok


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_TUNED: dict[str, tuple[int, int]] = {}


#: During a prediction, the heap is trimmed whenever the resident size has grown by
#: more than this since the call began or since the last trim (bytes).
HEAP_SLACK = 256 * 2**20


class HeapGuard:
    """Keeps the resident size of a long prediction bounded.

    Trimming once per call bounds what a call leaves behind, not its peak: glibc reuses
    its fragmented heap badly when every batch allocates activations of new sizes, so
    during one call over 8,192 texts the resident size climbs by ~100 MB more than
    during the call before, though no more is held (see docs/performance.md, Memory).
    :meth:`check` (once per batch; ~10 us) reads the resident size and trims when it
    has grown by more than ``slack``. Where ``/proc/self/statm`` or glibc is missing it
    does nothing.
    """

    def __init__(self, slack: int | None = None):
        tune_heap()
        self.slack = HEAP_SLACK if slack is None else slack
        resident = _resident_bytes()
        self.enabled = _malloc_trim() is not None and resident is not None
        self.base = resident if self.enabled else 0
        self.trims = 0

    def check(self) -> None:
        if not self.enabled:
            return
        if _resident_bytes() - self.base > self.slack:
            release_memory()
            self.base = _resident_bytes()
            self.trims += 1


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _page_size()
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def _page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


@functools.cache
def _glibc_function(name: str):
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):  # musl and other C libraries
        return None


def _malloc_trim():
    return _glibc_function("malloc_trim")


def _mallopt():
    return _glibc_function("mallopt")


def _to_float(outputs):
    """fp32 copies of a tensor or of each tensor in a tuple (autocast may give half precision)."""
    if isinstance(outputs, tuple):
        return tuple(o.float() for o in outputs)
    return outputs.float()


def _accepts(model: nn.Module, name: str) -> bool:
    """Whether ``model.forward`` takes the keyword ``name`` (or any keyword)."""
    parameters = inspect.signature(model.forward).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


@torch.inference_mode()
def predict_rows(
    model: nn.Module,
    data: Encoded,
    output_fn: Callable[[Any, dict], torch.Tensor],
    *,
    pad_id: int,
    device: str | torch.device = "auto",
    precision: str = "auto",
    max_tokens: int = 8192,
    max_batch: int = 256,
    window_pooling: str = "mean",
    verbose: bool = False,
    desc: str = "predict",
    forward_kwargs: dict | None = None,
    prepare_inputs: Callable[[dict, np.ndarray], dict] | None = None,
    ragged: bool = False,
    packed: bool = True,
) -> np.ndarray | list[np.ndarray]:
    """Run ``model`` over every row, longest first in token-budget batches, and return
    ``output_fn(outputs, inputs)`` per example in input order (windows pooled).

    ``prepare_inputs(inputs, rows) -> inputs`` (optional) rewrites each padded batch of
    ``rows`` before the model sees it. With ``ragged=True``, ``output_fn`` gives per-token values
    ``(rows, seq, ...)`` and the result is a list with one ``(row_length, ...)`` array
    per row, in row order (windows are not pooled: the caller stitches them).

    ``precision="int8"`` runs an int8 copy of the model (see
    :func:`~bertkit.training.quantize_int8`; CPU only).

    ``packed``: batches with padding run the encoder on their real tokens alone
    (``BertModel.forward(packed=True)``); the outputs at real positions are the same.
    """
    device = resolve_device(device)
    amp = autocast_dtype(device, precision)
    model.to(device).eval()
    if precision == "int8":
        model = quantize_int8(model, device)
    packed = packed and _accepts(model, "packed")
    lengths = data.lengths
    result: np.ndarray | list | None = [None] * len(lengths) if ragged else None
    batches = list(inference_batches(lengths, max_tokens, max_batch))
    if not batches:
        raise ValueError("Nothing to predict: no rows.")
    heap = HeapGuard()
    with progress_bar(len(batches), desc, verbose) as bar:
        for rows in batches:
            inputs = data.collate(rows, pad_id, device)
            if prepare_inputs is not None:
                inputs = prepare_inputs(inputs, rows)
            mask = inputs.get("attention_mask")
            pack = packed and mask is not None and mask.dim() >= 2 and not bool(mask.all())
            with _autocast(device, amp):
                values = output_fn(model(**inputs, **(forward_kwargs or {}), **({"packed": True} if pack else {})), inputs)
            values = values.float().cpu().numpy()
            if ragged:
                for i, row in enumerate(rows):
                    result[row] = values[i, :lengths[row]].copy()
            else:
                if result is None:
                    result = np.empty((len(lengths), *values.shape[1:]), dtype=np.float32)
                result[rows] = values
            heap.check()
            bar.update(1)
    if int(lengths.sum()) >= RELEASE_AFTER_TOKENS:
        release_memory()
    if ragged:
        return result
    if len(result) == data.n_examples:
        return result
    pooled = aggregate_rows(torch.from_numpy(result), torch.from_numpy(data.owner), data.n_examples, window_pooling)
    return pooled.numpy()
