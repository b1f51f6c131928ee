"""Tiny random checkpoints and toy data for the estimator and training tests.

Imported by tests/test_estimators.py and tests/test_training.py (``from
estimator_fixtures import *`` brings the fixtures into each module). The checkpoint
is a 2-layer, 32-wide BERT with a ~90-token vocabulary: whole words for the toy
sentences below, plus single letters and ``##``-letters so that any other
lowercase word still tokenises (one token per letter, which makes long texts easy).
"""

from __future__ import annotations

import string

import numpy as np
import pytest
import torch

import bertkit

WORDS = (
    "good bad great awful film movie plot acting the a is was and not very fun dull "
    "cat dog sat on mat ran"
).split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = list(dict.fromkeys(
    SPECIALS + WORDS + list(string.ascii_lowercase) + ["##" + c for c in string.ascii_lowercase]
    + list(".,!?'")
))

TINY_CONFIG = dict(
    vocab_size=len(VOCAB),
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=128,
    # Ten times BERT's 0.02: with 0.02 a 32-wide random encoder barely lets the other tokens
    # reach [CLS], and toy tasks need many epochs to learn anything.
    initializer_range=0.2,
)

#: Fast settings for fitting the tiny checkpoint.
FAST = dict(max_length=32, batch_size=8, learning_rate=3e-3, n_epochs=2, random_state=0, device="cpu")

POSITIVE = ["good film", "great movie", "very good plot", "great acting", "fun film", "good movie"]
NEGATIVE = ["bad film", "awful movie", "very bad plot", "awful acting", "dull film", "bad movie"]


def toy_texts(n_repeat: int = 3) -> tuple[list[str], np.ndarray]:
    """Balanced sentiment sentences and their labels ('pos'/'neg')."""
    texts = (POSITIVE + NEGATIVE) * n_repeat
    labels = np.array((["pos"] * len(POSITIVE) + ["neg"] * len(NEGATIVE)) * n_repeat)
    return texts, labels


def make_tiny_checkpoint(folder, seed: int = 0):
    """Write a random tiny BERT (with pooler) and its tokenizer into ``folder``."""
    torch.manual_seed(seed)
    bertkit.BertModel(bertkit.BertConfig(**TINY_CONFIG)).save_pretrained(folder)
    bertkit.BertTokenizer.from_vocab(VOCAB).save(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Folder of a tiny random BERT checkpoint with its tokenizer (shared; treat as read-only)."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def toy_data():
    return toy_texts()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run torch on one thread in the modules that import this fixture.

    Tiny models gain nothing from intra-op threads, and on a busy 2-core CI machine two
    OpenMP threads competing with other processes make a CPU fit up to ten times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
