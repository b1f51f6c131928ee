"""BERT's masked-language-model inputs: choose 15% of the tokens, replace them 80/10/10."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .._errors import InputError

__all__ = ["mask_tokens"]

Generator = np.random.Generator | torch.Generator | None


def _uniform(generator: Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform floats in [0, 1) of ``shape`` (float64, CPU) from the given random source."""
    if isinstance(generator, np.random.Generator):
        return torch.from_numpy(generator.random(shape))
    return torch.rand(shape, generator=generator, dtype=torch.float64)


def _as_mask(value, name: str, shape: torch.Size) -> torch.Tensor:
    mask = torch.as_tensor(value)
    if mask.shape != shape:
        raise InputError(
            f"The {name!r} parameter of mask_tokens must have the shape of input_ids "
            f"{tuple(shape)}. Got {tuple(mask.shape)}."
        )
    return mask.to("cpu").bool()


def _word_starts(word_ids: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """True where a word starts: a maskable token whose word id differs from its left neighbour's."""
    starts = candidates.clone()
    same = (word_ids[:, 1:] == word_ids[:, :-1]) & candidates[:, :-1]
    starts[:, 1:] &= ~same
    return starts


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    vocab_size: int,
    mask_token_id: int,
    special_tokens_mask: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    mlm_probability: float = 0.15,
    word_ids: torch.Tensor | Sequence[Sequence[int | None]] | None = None,
    whole_word: bool = False,
    generator: Generator = None,
    ignore_index: int = -100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a batch for masked-language-model training, as BERT does.

    In each row, ``round(mlm_probability * n)`` of its ``n`` maskable tokens are
    chosen (at least one when ``n > 0`` and ``mlm_probability > 0``; rounding is half
    to even, like Python's ``round``), uniformly at random, as in BERT's
    ``create_pretraining_data.py``. A token is maskable unless
    ``special_tokens_mask`` marks it, ``attention_mask`` marks it as padding, or (with
    ``word_ids``) its word id is negative. Each chosen token is then, independently,
    replaced by ``mask_token_id`` with probability 0.8, by a random token with
    probability 0.1, and kept with probability 0.1. Random tokens are drawn uniformly
    from ``range(vocab_size)`` without ``mask_token_id`` and without the ids found at
    special or padding positions of the batch (``[CLS]``, ``[SEP]``, ``[PAD]``).

    Parameters
    ----------
    input_ids : torch.Tensor of shape (batch, seq)
        Token ids (an integer tensor; anything ``torch.as_tensor`` accepts). It is
        not modified.
    vocab_size : int
        Size of the vocabulary; every id must be below it.
    mask_token_id : int
        Id of ``[MASK]``.
    special_tokens_mask : torch.Tensor of shape (batch, seq), optional
        Nonzero at ``[CLS]``, ``[SEP]`` and other tokens never to choose.
    attention_mask : torch.Tensor of shape (batch, seq), optional
        Zero at padding, which is never chosen.
    mlm_probability : float, default=0.15
        Fraction of the maskable tokens to choose, in [0, 1].
    word_ids : torch.Tensor of shape (batch, seq) or list of lists, optional
        The word of each token, as a fast tokenizer's ``word_ids()`` gives it
        (``None`` or a negative id for special tokens, which are then never chosen).
        A word is a run of adjacent tokens with the same id, so the word ids of the
        second text of a pair may restart at 0. Required with ``whole_word``.
    whole_word : bool, default=False
        Choose whole words: all the pieces of a chosen word are chosen together
        (each piece then gets its own 80/10/10 draw, as in BERT's whole-word
        masking). Words are taken in random order until the row's budget of
        ``round(mlm_probability * n)`` tokens is reached; a word that would exceed
        it is skipped, so a row may get fewer.
    generator : numpy.random.Generator or torch.Generator, optional
        Source of randomness; the same seeded generator gives the same result.
        ``None`` uses torch's global generator (``torch.manual_seed``).
    ignore_index : int, default=-100
        Label of the positions that were not chosen (ignored by
        ``torch.nn.CrossEntropyLoss``).

    Returns
    -------
    masked_input_ids : torch.Tensor of shape (batch, seq)
        A new tensor, with the dtype and device of ``input_ids``.
    labels : torch.Tensor of shape (batch, seq), int64
        The original id at the chosen positions, ``ignore_index`` elsewhere.

    Raises
    ------
    bertkit.InputError
        If the shapes, ids or probabilities are invalid.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from bertkit.datasets import mask_tokens
    >>> ids = torch.tensor([[101, 7, 8, 9, 10, 11, 12, 102, 0, 0]])
    >>> special = torch.tensor([[1, 0, 0, 0, 0, 0, 0, 1, 1, 1]])
    >>> masked, labels = mask_tokens(ids, vocab_size=200, mask_token_id=103,
    ...                              special_tokens_mask=special, mlm_probability=0.3,
    ...                              generator=np.random.default_rng(0))
    >>> int((labels != -100).sum())  # round(0.3 * 6) = 2 of the 6 maskable tokens
    2
    >>> bool(((labels == -100) | (labels == ids)).all())
    True
    >>> words = [[None, 0, 0, 1, 2, 2, 2, None, None, None]]
    >>> _, labels = mask_tokens(ids, vocab_size=200, mask_token_id=103, word_ids=words,
    ...                         whole_word=True, mlm_probability=0.5,
    ...                         generator=np.random.default_rng(1))
    >>> (labels != -100).int().tolist()  # budget round(0.5 * 6) = 3; word 2 drawn first
    [[0, 0, 0, 0, 1, 1, 1, 0, 0, 0]]
    """
    ids = torch.as_tensor(input_ids)
    if ids.dim() != 2 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise InputError(
            f"The 'input_ids' parameter of mask_tokens must be a 2-D integer tensor "
            f"(batch, seq). Got shape {tuple(ids.shape)} and dtype {ids.dtype}."
        )
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise InputError(
            f"The 'vocab_size' parameter of mask_tokens must be an int >= 2. Got {vocab_size!r}."
        )
    if not 0 <= mask_token_id < vocab_size:
        raise InputError(
            f"The 'mask_token_id' parameter of mask_tokens must be in [0, vocab_size={vocab_size})."
            f" Got {mask_token_id!r}."
        )
    if not 0.0 <= mlm_probability <= 1.0:
        raise InputError(
            f"The 'mlm_probability' parameter of mask_tokens must be in [0, 1]. "
            f"Got {mlm_probability!r}."
        )
    if generator is not None and not isinstance(generator, np.random.Generator | torch.Generator):
        raise InputError(
            f"The 'generator' parameter of mask_tokens must be a numpy.random.Generator, a "
            f"torch.Generator or None. Got {type(generator).__name__}."
        )
    cpu_ids = ids.to("cpu", torch.int64)
    if cpu_ids.numel() and (int(cpu_ids.min()) < 0 or int(cpu_ids.max()) >= vocab_size):
        raise InputError(
            f"The 'input_ids' of mask_tokens must lie in [0, vocab_size={vocab_size}). Got ids "
            f"from {int(cpu_ids.min())} to {int(cpu_ids.max())}."
        )
    shape = cpu_ids.shape
    excluded = torch.zeros(shape, dtype=torch.bool)
    if special_tokens_mask is not None:
        excluded |= _as_mask(special_tokens_mask, "special_tokens_mask", shape)
    if attention_mask is not None:
        excluded |= ~_as_mask(attention_mask, "attention_mask", shape)
    if word_ids is not None:
        if isinstance(word_ids, torch.Tensor | np.ndarray):
            words = torch.as_tensor(word_ids).to("cpu", torch.int64)
        else:
            try:
                words = torch.tensor(
                    [[-1 if w is None else int(w) for w in row] for row in word_ids],
                    dtype=torch.int64,
                )
            except (TypeError, ValueError) as err:
                raise InputError(
                    "The 'word_ids' parameter of mask_tokens must be a tensor or a list of "
                    f"equally long lists of int or None, one per token. Got: {err}."
                ) from err
        if words.shape != shape:
            raise InputError(
                f"The 'word_ids' parameter of mask_tokens must have the shape of input_ids "
                f"{tuple(shape)}. Got {tuple(words.shape)}."
            )
        excluded |= words < 0
    elif whole_word:
        raise InputError(
            "mask_tokens(whole_word=True) needs word_ids: the word of each token, e.g. "
            "[encoding.word_ids(i) for i in range(batch)] from a fast tokenizer."
        )
    candidates = ~excluded
    n_candidates = candidates.sum(dim=1)
    budget = torch.round(n_candidates.double() * mlm_probability).long()
    if mlm_probability > 0:
        budget = torch.where(n_candidates > 0, budget.clamp(min=1), budget)

    keys = _uniform(generator, tuple(shape))
    if whole_word:
        chosen = _choose_words(keys, words, candidates, budget)
    else:
        # Rank the candidates of each row in random order; take the first `budget`.
        keys = keys.masked_fill(~candidates, 2.0)
        ranks = keys.argsort(dim=1).argsort(dim=1)
        chosen = ranks < budget.unsqueeze(1)

    action = _uniform(generator, tuple(shape))
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)

    banned = torch.zeros(vocab_size, dtype=torch.bool)
    banned[mask_token_id] = True
    banned[cpu_ids[excluded].unique()] = True  # [CLS], [SEP], [PAD]... as found in the batch
    allowed = (~banned).nonzero().squeeze(1)
    if allowed.numel() == 0:
        allowed = torch.arange(vocab_size)
    picks = (_uniform(generator, tuple(shape)) * allowed.numel()).long().clamp(
        max=allowed.numel() - 1
    )
    random_ids = allowed[picks]

    masked = cpu_ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = random_ids[to_random]
    labels = torch.full(shape, ignore_index, dtype=torch.int64)
    labels[chosen] = cpu_ids[chosen]
    return masked.to(device=ids.device, dtype=ids.dtype), labels.to(ids.device)


def _choose_words(
    keys: torch.Tensor, words: torch.Tensor, candidates: torch.Tensor, budget: torch.Tensor
) -> torch.Tensor:
    """Whole words, in random order, up to ``budget`` tokens per row (a word too big is skipped)."""
    chosen = torch.zeros(candidates.shape, dtype=torch.bool)
    starts = _word_starts(words, candidates)
    word_index = torch.cumsum(starts.long(), dim=1) - 1  # word number of each token in its row
    for row in range(candidates.shape[0]):
        n_words = int(starts[row].sum())
        if n_words == 0 or int(budget[row]) == 0:
            continue
        members = candidates[row]
        index = word_index[row][members]
        sizes = torch.bincount(index, minlength=n_words)
        order = keys[row][starts[row]].argsort().tolist()
        take = torch.zeros(n_words, dtype=torch.bool)
        room = int(budget[row])
        for word in order:
            size = int(sizes[word])
            if size <= room:
                take[word] = True
                room -= size
                if room == 0:
                    break
        chosen[row, members] = take[index]
    return chosen
