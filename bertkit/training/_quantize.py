"""int8 dynamic quantisation of the encoder's linear layers, for CPU inference.

``precision="int8"`` keeps training in fp32 and runs ``predict``/``transform`` on a
copy of the model whose encoder ``nn.Linear`` layers are :class:`Int8Linear`: int8
weights with one scale per output channel, inputs quantised to 8 bits per call
(PyTorch's ``quantized::linear_dynamic`` kernels). Embeddings, LayerNorms, attention
and the task heads stay fp32.

Three choices keep it close to fp32 on BERT, whose LayerNorm outputs have a few
channels far larger than the rest (all-MiniLM-L6-v2, 1,024 SST-2 sentences: embedding
cosine to fp32 mean 0.990, minimum 0.943, against 0.966 and 0.885 with PyTorch's
``quantize_dynamic``):

- Inputs use the full 8 bits; PyTorch's dynamic ``Linear`` uses 7 (``reduce_range``).
- Weights use 7 bits (-63..63, one scale per output channel), so that the AVX2 kernels'
  16-bit sums of two u8 x s8 products can never saturate (2 * 255 * 63 < 32767). With
  8-bit weights and 8-bit inputs they do, and a random linear layer then loses 7-18 %.
- The query, key, value and feed-forward input projections, which read a LayerNorm
  output, are *smoothed* (SmoothQuant, Xiao et al. 2023, migration strength 0.5):
  input channel ``j`` is divided by ``s_j`` and the weight's column ``j`` multiplied
  by it, ``s_j = sqrt(x_j / w_j)`` with ``w_j`` the column's largest weight and
  ``x_j = 4 |gamma_j| + |beta_j|`` the LayerNorm's bound on the channel. No calibration
  data: the bound comes from the LayerNorm's own weights. Exact in real arithmetic, it
  moves the outliers' range from the inputs, which share one scale per call, into
  weight columns, which get a scale per output channel.

PyTorch announces that its quantized tensors (which these kernels take) will go; the
deprecation warning is silenced here, and the module is the one place to change then.
"""

from __future__ import annotations

import copy
import warnings
import weakref

import torch
from torch import nn

from .._errors import UnsupportedOptionError
from ..modeling import BertModel, Encoder

__all__ = ["Int8Linear", "quantize_int8"]

#: SmoothQuant's migration strength, and how many standard deviations bound a
#: LayerNorm output channel (``x_j = BOUND_SIGMAS |gamma_j| + |beta_j|``).
SMOOTH_ALPHA = 0.5
BOUND_SIGMAS = 4.0
#: Largest int8 weight: 7 bits, so that 8-bit inputs never saturate the AVX2 kernels.
WEIGHT_MAX = 63


class Int8Linear(nn.Module):
    """``nn.Linear`` with 7-bit int8 weights (one scale per output channel) and inputs
    quantised to 8 bits per call (one scale); optionally smoothed: ``input_scale`` (one per input channel)
    divides the input and multiplies the weight's columns.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from bertkit.training import Int8Linear
    >>> linear = nn.Linear(64, 32)
    >>> x = torch.randn(5, 64)
    >>> int8 = Int8Linear(linear)
    >>> bool(torch.nn.functional.cosine_similarity(int8(x), linear(x)).min() > 0.99)
    True
    """

    def __init__(self, linear: nn.Linear, input_scale: torch.Tensor | None = None):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        if input_scale is not None:
            weight = weight * input_scale
            self.register_buffer("inverse_input_scale", (1.0 / input_scale).float())
        else:
            self.inverse_input_scale = None
        scales = (weight.abs().amax(dim=1) / WEIGHT_MAX).clamp(min=1e-12).double()
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        bias = None if linear.bias is None else linear.bias.detach().float()
        with warnings.catch_warnings():  # quantized tensors are deprecated (module docstring)
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverse_input_scale is not None:
            x = x * self.inverse_input_scale
        return torch.ops.quantized.linear_dynamic(x.float(), self._packed, reduce_range=False)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"smoothed={self.inverse_input_scale is not None}")


def smoothing_scale(norm: nn.LayerNorm, linears: list[nn.Linear]) -> torch.Tensor:
    """Per input channel ``s_j = sqrt(x_j / w_j)`` for linears that read ``norm``'s output
    (see the module docstring)."""
    with torch.no_grad():
        bound = BOUND_SIGMAS * norm.weight.abs().float() + norm.bias.abs().float()
        weight = torch.stack([lin.weight.abs().amax(dim=0) for lin in linears]).amax(dim=0).float()
        scale = bound.clamp(min=1e-5) ** SMOOTH_ALPHA / weight.clamp(min=1e-5) ** (1 - SMOOTH_ALPHA)
    return scale.clamp(min=1e-4, max=1e4)

#: model -> (weights signature, its int8 copy); entries go with their model.
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _signature(model: nn.Module) -> tuple:
    """Changes whenever a parameter is written in place (optimizer steps, load_state_dict)."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


def quantize_int8(model: nn.Module, device: torch.device) -> nn.Module:
    """An eval-mode copy of ``model`` with int8 encoder linear layers, made once per
    version of its weights (``model`` itself is left as it is).

    Raises :class:`~bertkit.UnsupportedOptionError` off the CPU: PyTorch's int8 dynamic
    kernels are CPU kernels.

    Examples
    --------
    >>> import torch
    >>> from bertkit import BertConfig, BertModel
    >>> from bertkit.training import quantize_int8
    >>> model = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1,
    ...                              num_attention_heads=4, intermediate_size=64)).eval()
    >>> int8 = quantize_int8(model, torch.device("cpu"))
    >>> int8.encoder.layer[0].intermediate.dense
    Int8Linear(in_features=32, out_features=64, smoothed=True)
    >>> quantize_int8(model, torch.device("cpu")) is int8  # made once per weights version
    True
    """
    if device.type != "cpu":
        raise UnsupportedOptionError(
            f"precision='int8' runs on the CPU only (PyTorch's dynamic int8 kernels); the "
            f"device is {device}. Use device='cpu', or precision='bf16'/'fp16' on a GPU."
        )
    signature = _signature(model)
    cached = _COPIES.get(model)
    if cached is not None and cached[0] == signature:
        return cached[1]
    quantized = copy.deepcopy(model).to("cpu").float().eval()
    encoders = [m for m in quantized.modules() if isinstance(m, Encoder)]
    if not encoders:
        raise UnsupportedOptionError(
            f"precision='int8' quantises the linear layers of bertkit's encoder; "
            f"{type(model).__name__} holds none."
        )
    for bert in [m for m in quantized.modules() if isinstance(m, BertModel)]:
        _smooth_and_quantize(bert)
    for encoder in encoders:  # the other linears (attention and feed-forward outputs): unsmoothed
        for parent in list(encoder.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, Int8Linear(child))
    _COPIES[model] = (signature, quantized)
    return quantized


def _smooth_and_quantize(bert: BertModel) -> None:
    """Replace the encoder's linears by :class:`Int8Linear`; those that read a LayerNorm
    output (query/key/value: the previous layer's output, or the embeddings; the
    feed-forward input: the attention block's output) smoothed by it."""
    norm = bert.embeddings.LayerNorm
    for layer in bert.encoder.layer:
        attention = layer.attention.self
        names = ("query", "key", "value")
        scale = smoothing_scale(norm, [getattr(attention, n) for n in names])
        for n in names:
            setattr(attention, n, Int8Linear(getattr(attention, n), scale))
        ffn_norm = layer.attention.output.LayerNorm
        dense = layer.intermediate.dense
        layer.intermediate.dense = Int8Linear(dense, smoothing_scale(ffn_norm, [dense]))
        norm = layer.output.LayerNorm
