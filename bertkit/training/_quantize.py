"""int8 dynamic quantisation of the encoder's linear layers, for CPU inference.

``precision="int8"`` keeps training in fp32 and runs ``predict``/``transform`` on a
copy of the model whose encoder ``nn.Linear`` layers are :class:`Int8Linear`: int8
weights with one scale per output channel, inputs quantised to 8 bits per call
(PyTorch's ``quantized::linear_dynamic`` kernels). Embeddings, LayerNorms, attention
and the task heads stay fp32.

These choices keep it close to fp32 on BERT, whose activations have a few channels far
larger than the rest and a few tokens (``[CLS]`` above all) far larger than the rest
(all-MiniLM-L6-v2, 4,096 SST-2 sentences, embedding cosine to fp32: minimum 0.992 and
mean 0.998, the default; 0.996 and 0.9993 with per-row ranges, 10-25 % slower; 0.885 and
0.966 with PyTorch's ``quantize_dynamic``; see docs/performance.md):

- Inputs use the full 8 bits; PyTorch's dynamic ``Linear`` uses 7 (``reduce_range``).
- Weights use 8 bits where the kernels add u8 x s8 products in 32 bits (VNNI), and 7
  bits (-63..63, one scale per output channel) elsewhere: the AVX2 kernels add two such
  products in 16 bits, which 8-bit weights with 8-bit inputs overflow (a random linear
  layer then loses 7-18 %), and 2 * 255 * 63 < 32767 never does. A probe of the kernels
  themselves decides (:func:`weight_max`), not the CPU's name.
- On CPUs with AMX the weights are packed for oneDNN's kernels, 2-3x faster than
  FBGEMM's there (:func:`engine`).
- Input channels that stand out in a call (:data:`OUTLIER_RATIO`) are multiplied in
  fp32 and kept out of the kernel's input: the few "massive" values of ``[CLS]`` and
  separator rows no longer set the call's range.
- Optionally (:data:`PER_ROW`) each row (token) is quantised over its own range.
- The query, key, value and feed-forward input projections, which read a LayerNorm
  output, are *smoothed* (SmoothQuant, Xiao et al. 2023, migration strength 0.5):
  input channel ``j`` is divided by ``s_j`` and the weight's column ``j`` multiplied
  by it, ``s_j = sqrt(x_j / w_j)`` with ``w_j`` the column's largest weight and
  ``x_j = 4 |gamma_j| + |beta_j|`` the LayerNorm's bound on the channel. No calibration
  data: the bound comes from the LayerNorm's own weights. Exact in real arithmetic, it
  moves the outliers' range from the inputs into weight columns, which get a scale per
  output channel.

PyTorch announces that its quantized tensors (which these kernels take) will go; the
deprecation warning is silenced here, and the module is the one place to change then.
"""

from __future__ import annotations

import copy
import functools
import warnings
import weakref

import torch
from torch import nn

from .._errors import UnsupportedOptionError
from ..modeling import AddNorm, BertModel, Encoder

__all__ = ["Int8Linear", "quantize_int8"]

#: SmoothQuant's migration strength, and how many standard deviations bound a
#: LayerNorm output channel (``x_j = BOUND_SIGMAS |gamma_j| + |beta_j|``).
SMOOTH_ALPHA = 0.5
BOUND_SIGMAS = 4.0
#: PyTorch's dynamic int8 linear kernel (one place to change; tests emulate others).
_linear_dynamic = torch.ops.quantized.linear_dynamic
#: Largest int8 weight where the kernels add pairs of u8 x s8 products in 16 bits
#: (AVX2 without VNNI): 7 bits, so that 8-bit inputs never saturate them.
SAFE_WEIGHT_MAX = 63
#: One input range per row (token) instead of one per call (off by default; set it
#: before the first int8 prediction). Each row's ``[min, max]`` is mapped onto
#: ``[-1, 1]`` before the kernel quantises the call, and the output is mapped back:
#: ``W x = h (W x') + c (W 1)`` for ``x = h x' + c``. Loud rows then no longer set the
#: scale of quiet ones: minimum embedding cosine to fp32 0.992 -> 0.996 with the
#: outlier channels (0.959 -> 0.989 without them; 4,096 SST-2 sentences). It costs four
#: passes over the input and two over the output: 10-25 % of an int8 pass with oneDNN on a
#: 2-core Sapphire Rapids, 26 % with FBGEMM.
PER_ROW: bool = False
#: Outlier input channels: those whose largest |value| in a call exceeds
#: ``OUTLIER_RATIO`` times the median channel's, at most ``OUTLIER_SHARE`` of the
#: channels (the largest first), leave the kernel's input and are multiplied by their
#: int8 weight columns in fp32 (LLM.int8()'s decomposition, Dettmers et al. 2022,
#: with the outliers found per call). BERT's [CLS] and separator rows put most of
#: their magnitude into one channel (the "massive activations"; 19 times the row's
#: standard deviation in all-MiniLM-L6-v2), which left the rest of those rows a few
#: levels. Minimum embedding cosine to fp32 (4,096 SST-2 sentences): 0.959 -> 0.992
#: with one range per call, 0.989 -> 0.996 per row; about 30 % more time with one
#: range per call (the column pass, and the fp32 product over the whole output).
OUTLIER_RATIO = 3.0
OUTLIER_SHARE = 1 / 32


@functools.cache
def engine() -> str:
    """The quantized engine that packs the int8 weights: oneDNN on CPUs with AMX tiles,
    where its dynamic int8 linear runs 2-3x faster than FBGEMM's (all-MiniLM-L6-v2
    shapes, 2 threads), else PyTorch's default."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    if "onednn" in torch.backends.quantized.supported_engines and amx():
        return "onednn"
    return torch.backends.quantized.engine


def default_per_row() -> bool:
    """Whether new :class:`Int8Linear` layers quantise per row (see :data:`PER_ROW`)."""
    return bool(PER_ROW)


def _prepack(weight: torch.Tensor, bias: torch.Tensor | None):
    """Pack ``weight`` (quantized per channel) for :data:`_linear_dynamic` with
    :func:`engine`; packed weights keep their kernels, so the global engine setting is
    restored at once."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine()
    try:
        return torch.ops.quantized.linear_prepack(weight, bias)
    finally:
        torch.backends.quantized.engine = previous


@functools.cache
def weight_max() -> int:
    """127 if this machine's int8 kernels add u8 x s8 products without 16-bit saturation
    (VNNI), else :data:`SAFE_WEIGHT_MAX`; found by running them on inputs that saturate
    16-bit pair sums, for a few rows and for many (the kernels differ)."""
    with warnings.catch_warnings():  # quantized tensors are deprecated (module docstring)
        warnings.simplefilter("ignore")
        weight = torch.full((16, 256), 127.0)
        packed = _prepack(torch.quantize_per_channel(weight, torch.ones(16, dtype=torch.double),
                                                     torch.zeros(16, dtype=torch.long), 0, torch.qint8),
                          None)
        for rows in (1, 64):
            x = torch.full((rows, 256), 255.0)
            x[:, 0] = 0.0  # input range 0..255: scale 1, zero point 0, so x is exact in u8
            got = _linear_dynamic(x, packed, reduce_range=False)
            if not torch.allclose(got, x @ weight.T, rtol=1e-3):
                return SAFE_WEIGHT_MAX
    return 127


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 weights (one scale per output channel, 7 or 8 bits: see
    :func:`weight_max`) and inputs quantised to 8 bits per call, over one range or over
    one range per row (``per_row``, default :func:`default_per_row`; see :data:`PER_ROW`).

    ``input_scale`` (optional, one per input channel) smooths the layer: it divides the
    input and multiplies the weight's columns. ``owns_input`` lets the per-row path
    rescale the input in place, for inputs that nothing else reads afterwards.

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

    def __init__(self, linear: nn.Linear, input_scale: torch.Tensor | None = None, *,
                 per_row: bool | None = None, owns_input: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.per_row = default_per_row() if per_row is None else bool(per_row)
        self.owns_input = owns_input
        weight = linear.weight.detach().float()
        if input_scale is not None:
            weight = weight * input_scale
            self.register_buffer("inverse_input_scale", (1.0 / input_scale).float())
        else:
            self.inverse_input_scale = None
        scales = (weight.abs().amax(dim=1) / weight_max()).clamp(min=1e-12).double()
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        bias = None if linear.bias is None else linear.bias.detach().float()
        with warnings.catch_warnings():  # quantized tensors are deprecated (module docstring)
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
            self._packed = _prepack(qweight, None if self.per_row else bias)
        if self.per_row:  # (2, out): W 1 and the bias; see forward
            self.register_buffer("row_terms", torch.stack(
                [qweight.dequantize().sum(1), bias if bias is not None else weight.new_zeros(len(weight))]))
        # The int8 weights by input channel, (in, out), and their scales, for the outlier
        # channels (see OUTLIER_RATIO).
        self.register_buffer("weight_columns", qweight.int_repr().T.contiguous())
        self.register_buffer("weight_scales", scales.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        rows = x.reshape(-1, self.in_features)
        if self.inverse_input_scale is not None:
            rows = rows * self.inverse_input_scale
        channels = self.outlier_channels(rows)
        if (channels is not None or self.per_row) and not (
                self.owns_input or self.inverse_input_scale is not None):
            rows = rows.clone()  # the caller's input: not to be written below
        if channels is not None:  # see OUTLIER_RATIO
            values = rows.index_select(1, channels)
            rows.index_fill_(1, channels, 0.0)
            weights = self.weight_columns.index_select(0, channels).float().mul_(self.weight_scales)
        if not self.per_row:
            out = _linear_dynamic(rows, self._packed, reduce_range=False)
            if channels is not None:
                out.addmm_(values, weights)
            return out.view(*x.shape[:-1], self.out_features)
        high, low = rows.amax(1, keepdim=True), rows.amin(1, keepdim=True)
        centre = (high + low).mul_(0.5)
        half = (high - low).mul_(0.5).clamp_(min=1e-30)
        rows.sub_(centre).div_(half)  # every row spans [-1, 1]: x = half * x' + centre
        out = _linear_dynamic(rows, self._packed, reduce_range=False)
        # W x = half * (W x') + centre * (W 1), with the int8 weights in both terms: the
        # weights' rounding then meets x itself, not x - centre (larger where most of a
        # row sits near 0 and the centre does not, as after GELU: min cosine 0.897 with
        # an fp32 W 1 against 0.989). The outlier channels join the same product.
        left, terms = torch.cat([centre, torch.ones_like(centre)], 1), self.row_terms
        if channels is not None:
            left, terms = torch.cat([left, values], 1), torch.cat([terms, weights])
        out.mul_(half).addmm_(left, terms)
        return out.view(*x.shape[:-1], self.out_features)

    def outlier_channels(self, rows: torch.Tensor) -> torch.Tensor | None:
        """Sorted indices of the input channels that :data:`OUTLIER_RATIO` and
        :data:`OUTLIER_SHARE` take out of the int8 kernel's input, or None."""
        if OUTLIER_SHARE <= 0 or not len(rows):
            return None
        most = max(1, int(self.in_features * OUTLIER_SHARE))
        peak = torch.maximum(rows.amax(0), rows.amin(0).neg_())
        top = peak.topk(most)
        channels = top.indices[top.values > OUTLIER_RATIO * peak.median()]
        return channels.sort().values if len(channels) else None

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"smoothed={self.inverse_input_scale is not None}, per_row={self.per_row}")


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
    >>> int8.encoder.layer[0].intermediate.dense  # doctest: +ELLIPSIS
    Int8Linear(in_features=32, out_features=64, smoothed=True, per_row=...)
    >>> quantize_int8(model, torch.device("cpu")) is int8  # made once per weights version
    True
    """
    if device.type != "cpu":
        raise UnsupportedOptionError(
            f"precision='int8' runs on the CPU only (PyTorch's dynamic int8 kernels); the "
            f"device is {device}. Use device='cpu', or precision='bf16'/'fp16' on a GPU."
        )
    signature = (_signature(model), default_per_row())
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
    for encoder in encoders:  # the other linears: unsmoothed; an AddNorm's reads a temporary
        for parent in list(encoder.modules()):  # (the attention context, the activation's output)
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, Int8Linear(child, owns_input=isinstance(parent, AddNorm)))
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
        linears = [getattr(attention, n) for n in names]
        scale = smoothing_scale(norm, linears)
        fused = nn.Linear(linears[0].in_features, sum(lin.out_features for lin in linears))
        with torch.no_grad():
            fused.weight.copy_(torch.cat([lin.weight for lin in linears]))
            fused.bias.copy_(torch.cat([lin.bias for lin in linears]))
        attention.qkv = Int8Linear(fused, scale)  # self-attention: one call (see SelfAttention.qkv)
        for n, lin in zip(names, linears, strict=True):  # the rest (first-token queries, cross-attention)
            setattr(attention, n, Int8Linear(lin, scale))
        ffn_norm = layer.attention.output.LayerNorm
        dense = layer.intermediate.dense
        layer.intermediate.dense = Int8Linear(dense, smoothing_scale(ffn_norm, [dense]))
        norm = layer.output.LayerNorm
