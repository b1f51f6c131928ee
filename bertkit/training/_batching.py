"""Token sequences and the batches made of them, wasting as little compute on padding as possible.

Training batches are shuffled but length-grouped: indices are shuffled, cut into
large chunks, each chunk is sorted by length and cut into batches, and the batch
order is shuffled again. Inference batches are sorted by length and filled up to a
token budget; results go back to input order afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Encoded", "train_batches", "inference_batches", "aggregate_rows"]


@dataclass
class Encoded:
    """Tokenised examples: one row per sequence, several rows per example with windows.

    Attributes
    ----------
    input_ids : list of int32 arrays, one per row (special tokens included, unpadded)
    token_type_ids : list of int8 arrays, or None when every row is a single segment
    owner : int array ``(n_rows,)``, the example each row belongs to (sorted ascending)
    n_examples : int
    """

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    owner: np.ndarray
    n_examples: int

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per row."""
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def example_lengths(self) -> np.ndarray:
        """Longest row of each example (what a batch of examples pads to)."""
        out = np.zeros(self.n_examples, dtype=np.int64)
        np.maximum.at(out, self.owner, self.lengths)
        return out

    def _spans(self, examples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.searchsorted(self.owner, examples, side="left"),
                np.searchsorted(self.owner, examples, side="right"))

    def rows_of(self, examples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the given examples, in example order, and for each row the position
        of its example in ``examples``."""
        starts, ends = self._spans(np.asarray(examples))
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)] or [np.zeros(0, np.int64)])
        return rows, np.repeat(np.arange(len(starts)), ends - starts)

    def subset(self, examples: np.ndarray) -> Encoded:
        """The encoded examples ``examples``, renumbered ``0..len(examples)-1`` in that order."""
        examples = np.asarray(examples)
        rows, owner = self.rows_of(examples)
        return Encoded(
            input_ids=[self.input_ids[r] for r in rows],
            token_type_ids=None if self.token_type_ids is None else [self.token_type_ids[r] for r in rows],
            owner=owner,
            n_examples=len(examples),
        )

    def collate(self, rows: Sequence[int], pad_id: int, device: torch.device | str = "cpu") -> dict:
        """Pad the given rows to their longest one: ``input_ids``, ``attention_mask``, ``token_type_ids``."""
        longest = max(len(self.input_ids[r]) for r in rows)
        ids = np.full((len(rows), longest), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), longest), dtype=np.int64)
        types = np.zeros((len(rows), longest), dtype=np.int64) if self.token_type_ids is not None else None
        for i, r in enumerate(rows):
            n = len(self.input_ids[r])
            ids[i, :n] = self.input_ids[r]
            mask[i, :n] = 1
            if types is not None:
                types[i, :n] = self.token_type_ids[r]
        batch = {
            "input_ids": torch.from_numpy(ids).to(device, non_blocking=True),
            "attention_mask": torch.from_numpy(mask).to(device, non_blocking=True),
        }
        if types is not None:
            batch["token_type_ids"] = torch.from_numpy(types).to(device, non_blocking=True)
        return batch


def train_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, *, group_factor: int = 200
) -> list[np.ndarray]:
    """Shuffled, length-grouped batches of example indices.

    Indices are shuffled and cut into chunks of ``batch_size * group_factor``; each
    chunk is sorted by length (longest first) and cut into batches; the batches are
    shuffled. Batches keep a random mix of examples across epochs while padding
    stays close to zero: on SST-2 (batch 32) chunks of 200 batches pad 1.3 % over the
    real tokens, chunks of 50 (transformers' ``group_by_length``) 4.8 %.
    """
    order = rng.permutation(len(lengths))
    chunk = max(batch_size * group_factor, batch_size)
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def inference_batches(lengths: np.ndarray, max_tokens: int, max_batch: int) -> Iterator[np.ndarray]:
    """Row indices sorted by length (longest first), in batches of at most ``max_tokens``
    padded tokens and ``max_batch`` rows."""
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(max_batch, max_tokens // longest))
        yield order[start:start + size]
        start += size


def aggregate_rows(values: torch.Tensor, owner: torch.Tensor, n: int, how: str) -> torch.Tensor:
    """Combine per-row values ``(rows, ...)`` into per-example values ``(n, ...)`` by mean or max."""
    if values.shape[0] == n and torch.equal(owner, torch.arange(n, device=owner.device)):
        return values
    index = owner.view(-1, *([1] * (values.dim() - 1))).expand_as(values)
    out = torch.zeros((n, *values.shape[1:]), dtype=values.dtype, device=values.device)
    if how == "mean":
        out.scatter_reduce_(0, index, values, reduce="mean", include_self=False)
    elif how == "max":
        out.scatter_reduce_(0, index, values, reduce="amax", include_self=False)
    else:
        raise ValueError(f"Window aggregation must be 'mean' or 'max'. Got {how!r}.")
    return out
