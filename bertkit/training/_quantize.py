"""int8 dynamic quantisation of the encoder's linear layers, for CPU inference.

``precision="int8"`` keeps training in fp32 and runs ``predict``/``transform`` on a
copy of the model whose encoder ``nn.Linear`` layers hold int8 weights (one scale per
output channel) and quantise their inputs per batch (PyTorch's dynamic quantisation,
fbgemm/oneDNN kernels). Embeddings, LayerNorms, attention and the task heads stay fp32.
"""

from __future__ import annotations

import copy
import warnings
import weakref

import torch
from torch import nn

from .._errors import UnsupportedOptionError
from ..modeling import Encoder

__all__ = ["quantize_int8"]

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
    >>> type(int8.encoder.layer[0].intermediate.dense).__module__
    'torch.ao.nn.quantized.dynamic.modules.linear'
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
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        for encoder in encoders:
            torch.ao.quantization.quantize_dynamic(encoder, {nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)
    _COPIES[model] = (signature, quantized)
    return quantized
