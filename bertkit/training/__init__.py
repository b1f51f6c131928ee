"""The one fit loop and one inference loop every bertkit estimator uses."""

from ._batching import Encoded, aggregate_rows, inference_batches, train_batches
from ._loop import FitResult, TrainSettings, autocast_dtype, fit, predict_rows, resolve_device
from ._optim import freeze, layer_index, linear_schedule, param_groups
from ._quantize import Int8Linear, quantize_int8

__all__ = [
    "Encoded",
    "FitResult",
    "TrainSettings",
    "aggregate_rows",
    "autocast_dtype",
    "fit",
    "freeze",
    "inference_batches",
    "layer_index",
    "linear_schedule",
    "param_groups",
    "predict_rows",
    "Int8Linear",
    "quantize_int8",
    "resolve_device",
    "train_batches",
]
