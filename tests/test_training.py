"""The training engine: batching, optimizer groups, freezing, the fit loop and the caches.

Loop-level tests drive :func:`bertkit.training.fit` directly on a tiny model with
scripted evaluation scores; estimator-level tests fit the tiny checkpoint of
``estimator_fixtures``.
"""

# ruff: noqa: F811  (fixtures imported from estimator_fixtures are test arguments)

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from estimator_fixtures import (  # noqa: F401  (fixtures are used as test arguments)
    FAST,
    TINY_CONFIG,
    one_torch_thread,
    tiny_model_dir,
    toy_data,
)
from sklearn.base import clone

import bertkit
from bertkit import BertClassifier, BertTaskModel
from bertkit.estimators import _base, _fitting
from bertkit.heads import SequenceClassificationHead
from bertkit.training import (
    Encoded,
    TrainSettings,
    aggregate_rows,
    fit,
    freeze,
    inference_batches,
    layer_index,
    param_groups,
    predict_rows,
    resolve_device,
    train_batches,
)


def _clf(folder, **params):
    return BertClassifier(model=folder, **{**FAST, **params})


def _padding_waste(batches, lengths):
    return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)


# ============================================================== devices
def test_resolve_device_reads_auto_and_torch_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("device, expected", [
    ("gpu", "is not a device torch knows"),
    ("cuda:99", "CUDA device"),
])
def test_a_device_this_machine_lacks_is_named_with_the_ones_it_has(device, expected):
    with pytest.raises(bertkit.InputError) as info:
        resolve_device(device)
    message = str(info.value)
    assert expected in message and repr(device) in message and "'cpu'" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_fails_before_fit_changes_anything(tiny_model_dir, toy_data):
    texts, labels = toy_data
    clf = _clf(tiny_model_dir).fit(texts, labels)
    before = clf.predict_proba(texts[:4])
    clf.set_params(device="cuda")
    with pytest.raises(bertkit.InputError, match="no CUDA device.*device='auto'"):
        clf.fit(texts, labels)
    with pytest.raises(bertkit.InputError, match="no CUDA device"):
        clf.predict(texts[:4])
    np.testing.assert_array_equal(clf.set_params(device="cpu").predict_proba(texts[:4]), before)


# ============================================================== batching
def test_train_batches_cover_every_index_once_in_length_groups():
    lengths = np.random.default_rng(0).integers(1, 200, size=1000)
    batches = train_batches(lengths, 16, np.random.default_rng(1))
    assert all(1 <= len(b) <= 16 for b in batches)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    random = np.array_split(np.random.default_rng(2).permutation(1000), math.ceil(1000 / 16))
    assert _padding_waste(batches, lengths) < 0.1 * _padding_waste(random, lengths)
    # The batch order is shuffled, not longest first.
    longest = [lengths[b].max() for b in batches]
    assert longest != sorted(longest, reverse=True) and longest != sorted(longest)


def test_train_batches_group_lengths_within_chunks_of_200_batches_not_the_whole_set():
    # Each batch comes from one chunk of 200 batches' worth of shuffled examples (here
    # 1,600 of 4,000), sorted by length within the chunk: little padding, and batches
    # still mix examples from all over the set from one epoch to the next.
    lengths = np.random.default_rng(3).integers(1, 100, size=4000)
    batches = train_batches(lengths, 8, np.random.default_rng(0))
    order = np.random.default_rng(0).permutation(4000)  # the shuffle train_batches starts with
    chunks = [set(order[i:i + 1600].tolist()) for i in range(0, 4000, 1600)]
    assert all(any(set(b.tolist()) <= chunk for chunk in chunks) for b in batches)
    assert not all(set(b.tolist()) <= chunks[0] for b in batches[:20])  # chunks' batches shuffled together


def test_train_batches_are_reshuffled_every_epoch_and_seeded():
    lengths = np.random.default_rng(0).integers(1, 50, size=300)
    rng = np.random.default_rng(7)
    first, second = train_batches(lengths, 8, rng), train_batches(lengths, 8, rng)
    assert {frozenset(b.tolist()) for b in first} != {frozenset(b.tolist()) for b in second}
    again = train_batches(lengths, 8, np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_inference_batches_respect_the_token_budget():
    lengths = np.random.default_rng(0).integers(1, 60, size=500)
    lengths[17] = 300  # longer than the budget: alone in its batch
    batches = list(inference_batches(lengths, max_tokens=256, max_batch=8))
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(500))
    for batch in batches:
        assert len(batch) <= 8
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 256
    assert [b.tolist() for b in batches if 17 in b] == [[17]]
    order = np.concatenate(batches)
    assert np.all(np.diff(lengths[order]) <= 0)  # longest first


class _SumModel(torch.nn.Module):
    """Returns, per row, the sum of its real token ids and its length (to check order and padding)."""

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        ids = (input_ids * attention_mask).sum(1).float()
        return {"out": torch.stack([ids, attention_mask.sum(1).float()], dim=1)}


def test_predict_rows_restores_input_order_and_pools_windows():
    rng = np.random.default_rng(0)
    rows = [rng.integers(1, 100, size=n).astype(np.int32) for n in rng.integers(2, 40, size=50)]
    owner = np.repeat(np.arange(20), np.r_[np.ones(10, int), rng.integers(1, 5, size=10)][:20])
    owner = np.sort(np.resize(owner, 50))
    data = Encoded(input_ids=rows, token_type_ids=None, owner=owner, n_examples=int(owner.max()) + 1)
    per_row = np.array([[r.sum(), len(r)] for r in rows], dtype=np.float32)
    for how, reduce in (("mean", np.mean), ("max", np.max)):
        got = predict_rows(_SumModel(), data, lambda out, inputs: out["out"], pad_id=0, device="cpu",
                           max_tokens=64, window_pooling=how)
        want = np.stack([reduce(per_row[owner == i], axis=0) for i in range(data.n_examples)])
        np.testing.assert_allclose(got, want, rtol=1e-6)
    one_per_example = Encoded(rows, None, np.arange(50), 50)
    got = predict_rows(_SumModel(), one_per_example, lambda out, inputs: out["out"], pad_id=0,
                       device="cpu", max_tokens=64)
    np.testing.assert_allclose(got, per_row, rtol=1e-6)


def test_aggregate_rows_rejects_unknown_pooling():
    with pytest.raises(ValueError, match=r"Window aggregation must be 'mean' or 'max'. Got 'sum'"):
        aggregate_rows(torch.ones(3, 2), torch.tensor([0, 0, 1]), 2, "sum")


# ============================================================== optimizer groups and freezing
def _tiny_task_model(num_labels=2):
    torch.manual_seed(0)
    config = bertkit.BertConfig(**TINY_CONFIG)
    return BertTaskModel(config, SequenceClassificationHead, "sequence_classification", num_labels=num_labels)


def test_param_groups_weight_decay_and_layer_lr_decay():
    model = _tiny_task_model()
    groups = param_groups(model, learning_rate=1e-3, weight_decay=0.1, layer_lr_decay=0.5)
    group_of = {id(p): g for g in groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert sum(len(g["params"]) for g in groups) == len(names) == len(group_of)
    for name, param in names.items():
        group = group_of[id(param)]
        no_decay = name.endswith("bias") or "LayerNorm" in name
        assert group["weight_decay"] == (0.0 if no_decay else 0.1), name
    lr = {name: group_of[id(p)]["lr"] for name, p in names.items()}
    # Depth 0 embeddings, 1..2 encoder layers, 3 pooler and head: lr * 0.5 ** (3 - depth).
    assert lr["bert.embeddings.word_embeddings.weight"] == pytest.approx(1e-3 * 0.5**3)
    assert lr["bert.embeddings.LayerNorm.weight"] == pytest.approx(1e-3 * 0.5**3)
    assert lr["bert.encoder.layer.0.attention.self.query.weight"] == pytest.approx(1e-3 * 0.5**2)
    assert lr["bert.encoder.layer.1.output.dense.bias"] == pytest.approx(1e-3 * 0.5)
    assert lr["bert.pooler.dense.weight"] == pytest.approx(1e-3)
    assert lr["head.classifier.weight"] == pytest.approx(1e-3)
    assert group_of[id(names["bert.encoder.layer.1.output.LayerNorm.weight"])]["weight_decay"] == 0.0
    assert group_of[id(names["bert.encoder.layer.1.output.dense.weight"])]["weight_decay"] == 0.1
    flat = param_groups(model, learning_rate=1e-3, weight_decay=0.1, layer_lr_decay=1.0)
    assert {g["lr"] for g in flat} == {1e-3}


def test_layer_index():
    assert layer_index("bert.embeddings.word_embeddings.weight", 12) == 0
    assert layer_index("embeddings.position_embeddings.weight", 12) == 0
    assert layer_index("bert.encoder.layer.0.output.dense.weight", 12) == 1
    assert layer_index("encoder.layer.11.output.dense.weight", 12) == 12
    assert layer_index("head.classifier.bias", 12) == 13


def test_freeze_embeddings_and_first_layers():
    model = _tiny_task_model()
    freeze(model, embeddings=True, layers=1)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.named_parameters()
                      if n.startswith(("bert.embeddings.", "bert.encoder.layer.0."))}
    groups = param_groups(model, learning_rate=1e-3, weight_decay=0.0, layer_lr_decay=1.0)
    assert not any(p is q for g in groups for p in g["params"]
                   for n, q in model.named_parameters() if n in frozen)


def test_frozen_weights_are_unchanged_after_fit(tiny_model_dir, toy_data):
    X, labels = toy_data
    clf = _clf(tiny_model_dir, freeze_embeddings=True, freeze_layers=1, n_epochs=1).fit(X, labels)
    start = bertkit.load_encoder(tiny_model_dir).state_dict()
    after = clf.model_.bert.state_dict()
    for name, tensor in start.items():
        if name.startswith(("embeddings.", "encoder.layer.0.")):
            assert torch.equal(after[name], tensor), name
        elif name.endswith("weight"):
            assert not torch.equal(after[name], tensor), name
    assert all(p.requires_grad for p in clf.model_.parameters())  # the freeze is lifted after fit


# ============================================================== the fit loop
def _loop_data(n=40):
    rng = np.random.default_rng(0)
    rows = [np.r_[2, rng.integers(5, 40, size=int(k)), 3].astype(np.int32) for k in rng.integers(1, 10, size=n)]
    data = Encoded(input_ids=rows, token_type_ids=None, owner=np.arange(n), n_examples=n)
    return data, torch.as_tensor(rng.integers(0, 2, size=n))


def _ce(logits, target, weight):
    return F.cross_entropy(logits, target)


def _logits(out, inputs):
    return out["logits"]


def test_fit_restores_the_best_epoch_and_stops_early():
    model = _tiny_task_model()
    data, targets = _loop_data()
    scores = iter([0.2, 0.9, 0.5, 0.4, 0.95])
    snapshots = []

    def evaluate(m):
        snapshots.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        return {"valid_loss": 1.0, "valid_score": next(scores)}

    settings = TrainSettings(learning_rate=1e-3, n_epochs=5, batch_size=8, n_iter_no_change=2,
                             device="cpu", random_state=0)
    result = fit(model, data, targets, _ce, settings, output_fn=_logits, pad_id=0, evaluate=evaluate)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]  # epochs 3 and 4 did not improve
    assert [h["valid_score"] for h in result.history] == [0.2, 0.9, 0.5, 0.4]
    assert result.best_epoch == 2 and not result.interrupted
    assert not torch.equal(snapshots[1]["head.classifier.weight"], snapshots[3]["head.classifier.weight"])
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots[1][name]), name
    assert not model.training


def test_fit_counts_optimizer_steps_with_gradient_accumulation():
    data, targets = _loop_data(40)  # 5 batches of 8 per epoch
    for accumulate, steps_per_epoch in ((1, 5), (2, 3), (5, 1)):
        model = _tiny_task_model()
        before = model.head.classifier.weight.detach().clone()
        settings = TrainSettings(learning_rate=1e-3, n_epochs=2, batch_size=8, device="cpu",
                                 gradient_accumulation_steps=accumulate, random_state=0, warmup_ratio=0.0)
        result = fit(model, data, targets, _ce, settings, output_fn=_logits, pad_id=0)
        assert result.n_steps == 2 * steps_per_epoch
        assert not torch.equal(before, model.head.classifier.weight)


def test_a_short_accumulation_group_averages_its_own_batches(monkeypatch):
    """5 batches of 8 with groups of 8 make one group of 5: its gradient must be the mean
    over those 5 batches, i.e. that of one batch of 40 (not 5/8 of it)."""
    from bertkit.training import _loop, _rows

    data, targets = _loop_data(40)
    grads = []
    real_clip = _loop.clip_grad_norm

    def capture(params, *args, **kwargs):
        params = list(params)
        grads.append(torch.cat([p.grad.flatten() for p in params if p.grad is not None]).clone())
        return real_clip(params, *args, **kwargs)

    monkeypatch.setattr(_loop, "clip_grad_norm", capture)
    # Dense word-embedding gradients: the active rows' come in the order they were read,
    # which differs between the two runs (their accumulation: test_active_rows_*).
    monkeypatch.setattr(_rows, "_eligible", lambda *a: False)
    for batch_size, accumulate in ((8, 8), (40, 1)):
        torch.manual_seed(0)  # no dropout: both runs compute the same function
        config = bertkit.BertConfig(**{**TINY_CONFIG, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
        model = BertTaskModel(config, SequenceClassificationHead, "sequence_classification", num_labels=2)
        settings = TrainSettings(learning_rate=1e-3, n_epochs=1, batch_size=batch_size, device="cpu",
                                 gradient_accumulation_steps=accumulate, random_state=0)
        fit(model, data, targets, _ce, settings, output_fn=_logits, pad_id=0)
    assert len(grads) == 2
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-4)


def test_epoch_data_replaces_the_data_from_the_second_epoch():
    data, targets = _loop_data(24)
    other, other_targets = _loop_data(24)
    other.input_ids = [np.r_[ids[:1], ids[1:] + 1] for ids in other.input_ids]  # other tokens
    seen_epochs, seen_ids = [], []

    def epoch_data(epoch):
        seen_epochs.append(epoch)
        return other, other_targets

    def output_fn(out, inputs):
        seen_ids.append(inputs["input_ids"])
        return out["logits"]

    settings = TrainSettings(learning_rate=1e-3, n_epochs=3, batch_size=24, device="cpu", random_state=0)
    fit(_tiny_task_model(), data, targets, _ce, settings, output_fn=output_fn, pad_id=0,
        epoch_data=epoch_data)
    assert seen_epochs == [1, 2]
    firsts = [sorted(ids[:, 1].tolist()) for ids in seen_ids]  # one batch per epoch
    assert firsts[0] == sorted(int(ids[1]) for ids in data.input_ids)
    assert firsts[1] == firsts[2] == sorted(int(ids[1]) for ids in other.input_ids)


def test_estimator_gradient_accumulation(tiny_model_dir, toy_data, monkeypatch):
    results = []
    real = _fitting.fit

    def spy(*args, **kwargs):
        results.append(real(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(_fitting, "fit", spy)
    X, labels = toy_data  # 36 texts: 5 batches of 8 per epoch
    clf = _clf(tiny_model_dir, gradient_accumulation_steps=2, n_epochs=2).fit(X, labels)
    assert results[0].n_steps == 2 * 3
    assert len(clf.history_) == 2 and set(clf.predict(X)) <= {"neg", "pos"}


def test_same_seed_same_model_other_seed_other_model(tiny_model_dir, toy_data):
    X, labels = toy_data
    rng_state = torch.random.get_rng_state()
    first = _clf(tiny_model_dir, random_state=5).fit(X, labels).predict_proba(X)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # fit leaves the global RNG alone
    with torch.random.fork_rng():
        torch.manual_seed(12345)  # nor does the global RNG's state matter to fit
        second = _clf(tiny_model_dir, random_state=5).fit(X, labels).predict_proba(X)
    assert np.array_equal(first, second)
    other = _clf(tiny_model_dir, random_state=6).fit(X, labels).predict_proba(X)
    assert not np.allclose(first, other, atol=1e-4)


def test_early_stopping_in_an_estimator_keeps_the_best_epoch(tiny_model_dir, toy_data, monkeypatch):
    snapshots = []
    real = _base.predict_rows

    def spy(model, *args, **kwargs):  # the per-epoch validation pass (the only one in fit)
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real(model, *args, **kwargs)

    monkeypatch.setattr(_base, "predict_rows", spy)
    X, labels = toy_data
    clf = _clf(tiny_model_dir, n_epochs=6, learning_rate=1e-2, validation_fraction=0.3, n_iter_no_change=1)
    clf.fit(X, labels)
    scores = [h["valid_score"] for h in clf.history_]
    assert len(snapshots) == len(scores) <= 6
    assert all({"valid_loss", "valid_score"} <= set(h) for h in clf.history_)
    assert clf.best_epoch_ == 1 + int(np.argmax(scores))
    if len(scores) < 6:  # stopped early: the last epoch did not improve on the best
        assert scores[-1] <= max(scores[:-1])
    for name, tensor in clf.model_.state_dict().items():
        assert torch.equal(tensor, snapshots[clf.best_epoch_ - 1][name]), name


def _interrupt_on_call(monkeypatch, n):
    forward = BertTaskModel.forward
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        if self.training:
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(BertTaskModel, "forward", flaky)


def test_ctrl_c_during_fit_warns_and_keeps_a_usable_model(tiny_model_dir, toy_data, monkeypatch):
    X, labels = toy_data
    _interrupt_on_call(monkeypatch, 3)  # in the first epoch (5 batches)
    clf = _clf(tiny_model_dir, n_epochs=3)
    with pytest.warns(UserWarning, match=r"BertClassifier.fit interrupted after 0 complete epoch\(s\); keeping the weights as they are"):
        assert clf.fit(X, labels) is clf
    assert clf.history_ == []
    assert not clf.model_.training and all(p.requires_grad for p in clf.model_.parameters())
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.isfinite(proba).all()


def test_ctrl_c_after_a_validated_epoch_keeps_the_best_weights(tiny_model_dir, toy_data, monkeypatch):
    X, labels = toy_data
    _interrupt_on_call(monkeypatch, 6)  # 25 training texts: 4 batches per epoch; stop in epoch 2
    clf = _clf(tiny_model_dir, n_epochs=3, validation_fraction=0.3)
    with pytest.warns(UserWarning, match=r"interrupted after 1 complete epoch\(s\); keeping the best weights so far"):
        clf.fit(X, labels)
    assert [h["epoch"] for h in clf.history_] == [1] and clf.best_epoch_ == 1
    assert clf.predict(X).shape == (len(X),)


# ============================================================== process-wide caches
def test_weight_cache_is_shared_and_never_written(tiny_model_dir, toy_data):
    X, labels = toy_data
    cached = bertkit.read_state_dict(tiny_model_dir)
    assert bertkit.read_state_dict(tiny_model_dir) is cached
    before = {k: v.clone() for k, v in cached.items()}
    clf = _clf(tiny_model_dir, n_epochs=1, learning_rate=1e-2)
    fitted = clone(clf).fit(X, labels)
    assert bertkit.read_state_dict(tiny_model_dir) is cached
    for name, tensor in cached.items():
        assert torch.equal(tensor, before[name]), name
    trained = fitted.model_.bert.embeddings.word_embeddings.weight
    assert trained.data_ptr() != cached["embeddings.word_embeddings.weight"].data_ptr()
    assert not torch.equal(trained, cached["embeddings.word_embeddings.weight"])


def test_tokenisation_cache_hits_on_a_second_fit(tiny_model_dir, monkeypatch):
    calls = []
    real = bertkit.BertTokenizer.__call__

    def spy(self, text, *args, **kwargs):
        calls.append(list(text))
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(bertkit.BertTokenizer, "__call__", spy)
    X = [f"cache {word} test" for word in ("good", "bad", "great", "awful", "dull", "fun")]
    y = ["pos", "neg", "pos", "neg", "neg", "pos"]
    first = _clf(tiny_model_dir, n_epochs=1).fit(X, y)
    assert calls == [X]
    calls.clear()
    second = clone(first).fit(X, y)  # a grid search's next candidate
    first.predict(X)
    assert calls == []
    assert second.tokenizer_ is first.tokenizer_
    second.predict(X + ["cache novel test", "cache good test"])
    assert calls == [["cache novel test"]]  # only the text never seen before
    with_other_length = _clf(tiny_model_dir, n_epochs=1, max_length=9).fit(X, y)
    assert len(calls) == 2 and with_other_length is not None  # another max_length: tokenised again


def test_caches_clear():
    _base.CACHES.clear()
    assert not _base.CACHES.texts and not _base.CACHES.tokenizers


def test_cache_bounds_hold_and_inputs_larger_than_the_cache_still_run(tiny_model_dir, toy_data, monkeypatch):
    X, labels = toy_data
    clf = _clf(tiny_model_dir, n_epochs=1).fit(X, labels)
    texts = [f"{a} {b} {c}" for a in ("good", "bad", "the") for b in ("film", "plot", "cat") for c in "abcdefgh"]
    expected = clf.predict_proba(texts)
    _base.CACHES.clear()
    monkeypatch.setattr(_base.CACHES, "max_texts", 5)
    np.testing.assert_array_equal(clf.predict_proba(texts), expected)  # was a KeyError: evicted at once
    assert len(_base.CACHES.texts) == 5
    monkeypatch.setattr(_base.CACHES, "max_texts", 10_000)
    monkeypatch.setattr(_base.CACHES, "max_bytes", 2_000)
    np.testing.assert_array_equal(clf.predict_proba(texts), expected)
    assert 0 < _base.CACHES.n_bytes <= 2_000 and 0 < len(_base.CACHES.texts) < len(texts)
    assert _base.CACHES.n_bytes == sum(_base._nbytes(v) for v in _base.CACHES.texts.values())
    _base.CACHES.clear()
    assert _base.CACHES.n_bytes == 0


def test_predict_streams_in_chunks_with_the_same_result(tiny_model_dir, toy_data, monkeypatch):
    X, labels = toy_data
    clf = _clf(tiny_model_dir, n_epochs=1).fit(X, labels)
    texts = [f"{a} {b} {c}" for a in ("good", "bad", "the") for b in ("film", "plot", "cat") for c in "abcdefgh"]
    expected = clf.predict_proba(texts)
    seen = []
    real = _base.BertEstimatorBase._encode
    monkeypatch.setattr(_base, "STREAM_TEXTS", 10)
    monkeypatch.setattr(_base.BertEstimatorBase, "_encode",
                        lambda self, t, tokenizer=None: seen.append(len(t)) or real(self, t, tokenizer))
    np.testing.assert_allclose(clf.predict_proba(texts), expected, atol=1e-6)
    assert seen == [10] * 7 + [2]
    emb = bertkit.BertEmbedder(model=tiny_model_dir, device="cpu").fit()
    monkeypatch.setattr(_base, "STREAM_TEXTS", 10_000)
    whole = emb.transform(texts)
    monkeypatch.setattr(_base, "STREAM_TEXTS", 7)
    np.testing.assert_allclose(emb.transform(texts), whole, atol=1e-6)


def test_long_predictions_and_fits_hand_freed_memory_back(tiny_model_dir, toy_data, monkeypatch):
    from bertkit.training import _loop

    calls = []
    monkeypatch.setattr(_loop, "release_memory", lambda: calls.append(1))
    X, labels = toy_data
    clf = _clf(tiny_model_dir, n_epochs=1).fit(X, labels)
    assert calls == [1]  # after the fit
    clf.predict(X)
    assert calls == [1]  # a short call: not worth a trim
    monkeypatch.setattr(_loop, "RELEASE_AFTER_TOKENS", 10)
    clf.predict(X)
    assert calls == [1, 1]


def test_streamed_predictions_trim_after_the_last_chunk(tiny_model_dir, monkeypatch):
    from bertkit.estimators import _base
    from bertkit.training import _loop

    emb = bertkit.BertEmbedder(model=tiny_model_dir, device="cpu").fit()
    calls = []
    monkeypatch.setattr(_loop, "release_memory", lambda: calls.append(1))
    monkeypatch.setattr(_base, "STREAM_TEXTS", 4)
    emb.transform([f"text number {i}" for i in range(9)])  # chunks of 4, 4 and 1: each too short
    assert calls == [1]


def test_heap_guard_trims_when_the_resident_size_grows(monkeypatch):
    from bertkit.training import _loop

    if _loop._malloc_trim() is None or _loop._resident_bytes() is None:
        pytest.skip("needs glibc and /proc/self/statm")
    calls = []
    monkeypatch.setattr(_loop, "release_memory", lambda: calls.append(1))
    guard = _loop.HeapGuard(slack=64 * 2**20)
    guard.check()
    assert calls == []
    held = np.ones(128 * 2**20 // 8)  # 128 MB, pages touched
    guard.check()
    assert calls == [1] and guard.trims == 1
    guard.check()  # measured again after the trim: no growth since
    assert calls == [1]
    del held


def test_predictions_check_the_heap_after_every_batch(tiny_model_dir, toy_data, monkeypatch):
    from bertkit.training import _loop

    checks = []
    monkeypatch.setattr(_loop.HeapGuard, "check", lambda self: checks.append(1))
    X, labels = toy_data
    clf = _clf(tiny_model_dir, n_epochs=1, batch_size=2).fit(X, labels)
    checks.clear()
    batches = []
    original = _loop.inference_batches
    monkeypatch.setattr(_loop, "inference_batches", lambda *a, **k: batches.extend(original(*a, **k)) or batches)
    clf.predict(X)
    assert len(checks) == len(batches) > 1


def test_release_memory_runs_here():
    import platform

    from bertkit.training import _loop

    _loop.release_memory()  # glibc: malloc_trim; elsewhere a no-op
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert (_loop._malloc_trim() is not None) == glibc



_HEAP_CHURN = """
import resource
import torch
from bertkit.training import _loop
def faults():  # three 15 MB activations freed together, as an inference batch does, 20 times
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        blocks = [torch.ones(15 * 2**20 // 4) for _ in range(3)]
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
mallopt = _loop._mallopt()
assert mallopt(_loop._M_MMAP_THRESHOLD, 128 * 1024) and mallopt(_loop._M_TRIM_THRESHOLD, 128 * 1024)
small = faults()  # glibc's initial thresholds, held fixed: every cycle maps its pages anew
assert _loop.tune_heap()
faults()  # the first cycle after tuning may still fault
print(small, faults())
"""


def test_tuned_heap_keeps_freed_activations_for_the_next_batch():
    """With glibc's initial 128 KB thresholds (held fixed, as its dynamic rule may not
    have raised them yet), 45 MB freed at once go back to the system and every cycle
    faults its pages in again; after :func:`tune_heap` the memory is reused."""
    import platform
    import subprocess

    if not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"):
        pytest.skip("glibc only")
    out = subprocess.run([sys.executable, "-c", _HEAP_CHURN], capture_output=True, text=True, check=True).stdout
    small, tuned = (int(x) for x in out.split())
    pages = 20 * 3 * 15 * 2**20 // os.sysconf("SC_PAGE_SIZE")
    assert small > pages // 2, (small, tuned)
    assert tuned < pages // 20, (small, tuned)


def test_tune_heap_can_be_turned_off(monkeypatch):
    from bertkit.training import _loop

    monkeypatch.setattr(_loop, "HEAP_THRESHOLDS", None)
    assert _loop.tune_heap() is False

# ============================================================== AdamW on the active word-embedding rows
def _adamw_steps(model, batches, *, rows: bool, max_norm: float, weight_decay: float, sync_at=None):
    """Two micro-batches per optimizer step, clipping, a schedule, two layer-wise rates
    and fused AdamW, as ``fit`` does; ``sync_at``: a step after which the matrix is
    written back and checked (as before an evaluation)."""
    from bertkit.training import _optim, _rows

    groups = _optim.param_groups(model, learning_rate=1e-2, weight_decay=weight_decay, layer_lr_decay=0.5)
    optimizer = torch.optim.AdamW(groups, lr=1e-2, fused=True)
    schedule = _optim.linear_schedule(optimizer, 2, len(batches) // 2)
    context = _rows.active_rows(model, optimizer) if rows else contextlib.nullcontext([])
    with context as tables:
        assert len(tables) == (1 if rows else 0)
        params = list(model.parameters()) + [t.param for t in tables]
        for i, (ids, mask) in enumerate(batches):
            logits = model(input_ids=ids, attention_mask=mask)["logits"]
            (logits.square().sum() / 2).backward()
            if i % 2 == 1:
                _rows.clip_grad_norm(params, max_norm, optimizer if rows else None)
                optimizer.step()
                _rows.drop_grad_scale(optimizer)
                optimizer.zero_grad(set_to_none=True)
                schedule.step()
                if rows and i // 2 == sync_at:
                    tables[0].sync()
                    mid = model.bert.embeddings.word_embeddings.weight.detach().clone()
        if rows:
            assert tables[0].n < model.config.vocab_size  # some rows were never read
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return (state, mid) if sync_at is not None else state


def _row_batches(pad, n=8):
    batches = []
    for i in range(n):  # new rows in most batches; padding in each
        ids = torch.randint(5, 30 + 6 * i, (3, 7))  # the tiny vocabulary has 84 pieces
        mask = torch.ones_like(ids)
        ids[0, 4:], mask[0, 4:] = pad, 0
        ids[1, 2] = pad  # attended: its row still gets no gradient (padding_idx)
        batches.append((ids, mask))
    return batches


def _row_model(tiny_model_dir):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the new head
        return bertkit.load_pretrained(tiny_model_dir, head="sequence_classification", num_labels=3).eval()


@pytest.mark.parametrize("max_norm", [1e-3, 1e6])  # clipping on, and off
def test_active_rows_train_exactly_like_dense_adamw_without_weight_decay(tiny_model_dir, max_norm):
    import copy

    base = _row_model(tiny_model_dir)
    batches = _row_batches(base.config.pad_token_id)
    dense = _adamw_steps(copy.deepcopy(base), batches, rows=False, max_norm=max_norm, weight_decay=0.0)
    rows = _adamw_steps(copy.deepcopy(base), batches, rows=True, max_norm=max_norm, weight_decay=0.0)
    name = "bert.embeddings.word_embeddings.weight"
    if max_norm > 1:  # no clipping: the same values through the same elementwise update
        torch.testing.assert_close(rows[name], dense[name], rtol=0, atol=0)
    for key in _comparable(dense):  # clipping: the norm is summed in another order (float rounding)
        torch.testing.assert_close(rows[key], dense[key], rtol=1e-5, atol=1e-6, msg=key)
    assert not torch.equal(dense[name], base.state_dict()[name])


def _comparable(state):
    """All weights but the key biases: their gradient is zero in theory (softmax ignores
    a constant per row), float noise in practice, and AdamW scales noise up to the
    learning rate, differently for any change in rounding."""
    return [key for key in state if not key.endswith("key.bias")]


def test_active_rows_owe_and_pay_weight_decay(tiny_model_dir):
    """With weight decay every row shrinks each step, read or not: rows activated late
    and rows never read must both match dense AdamW, also when the matrix is written
    back half-way."""
    import copy

    base = _row_model(tiny_model_dir)
    batches = _row_batches(base.config.pad_token_id, n=10)
    dense = _adamw_steps(copy.deepcopy(base), batches, rows=False, max_norm=1e6, weight_decay=0.3)
    half = _adamw_steps(copy.deepcopy(base), batches[:6], rows=False, max_norm=1e6, weight_decay=0.3)
    rows, mid = _adamw_steps(copy.deepcopy(base), batches, rows=True, max_norm=1e6, weight_decay=0.3, sync_at=2)
    name = "bert.embeddings.word_embeddings.weight"
    for key in _comparable(dense):
        torch.testing.assert_close(rows[key], dense[key], rtol=1e-5, atol=1e-6, msg=key)
    unread = torch.ones(base.config.vocab_size, dtype=torch.bool)
    unread[torch.cat([ids.reshape(-1) for ids, _ in batches])] = False
    assert unread.any()
    start = base.state_dict()[name][unread]
    assert dense[name][unread].norm() < (1 - 1e-3) * start.norm()  # decayed, though never read
    # After three of five steps the written-back matrix is the dense one after three
    # (the schedule differs from there on, so only the state at that step compares).
    torch.testing.assert_close(mid[unread], half[name][unread], rtol=1e-5, atol=1e-6)


def test_fit_trains_active_rows_and_removes_them(tiny_model_dir, toy_data, monkeypatch):
    from bertkit.training import _rows

    X, labels = toy_data
    seen = []
    original = _rows.ActiveRows.accumulate
    monkeypatch.setattr(_rows.ActiveRows, "accumulate", lambda self, *a: seen.append(self.n) or original(self, *a))
    clf = _clf(tiny_model_dir, n_epochs=2).fit(X, labels)
    assert seen and clf.model_.bert.embeddings.word_lookup is None
    monkeypatch.setattr(_rows, "_eligible", lambda *a: False)  # PyTorch's dense gradients
    dense = _clf(tiny_model_dir, n_epochs=2).fit(X, labels)
    np.testing.assert_allclose(clf.predict_proba(X), dense.predict_proba(X), atol=1e-5)


def test_fit_writes_the_rows_back_before_evaluating(tiny_model_dir, toy_data, monkeypatch):
    """Early stopping evaluates and keeps the best weights: both must see the trained
    matrix, not the one the fit started from."""
    from bertkit.estimators import _fitting

    X, labels = toy_data
    start = bertkit.load_encoder(tiny_model_dir).state_dict()["embeddings.word_embeddings.weight"]
    seen = []
    real_fit = _fitting.fit

    def spy(model, *args, evaluate=None, **kwargs):
        def wrapped(m):
            seen.append(m.bert.embeddings.word_embeddings.weight.detach().clone())
            return evaluate(m)
        return real_fit(model, *args, evaluate=None if evaluate is None else wrapped, **kwargs)

    monkeypatch.setattr(_fitting, "fit", spy)
    clf = _clf(tiny_model_dir, n_epochs=2, validation_fraction=0.25, n_iter_no_change=5).fit(X, labels)
    assert len(seen) == 2
    assert not torch.equal(seen[0], start)
    final = clf.model_.bert.embeddings.word_embeddings.weight.detach()
    assert any(torch.equal(final, s) for s in seen)  # the best epoch's matrix was restored


def test_tied_word_embeddings_keep_dense_gradients(tiny_model_dir):
    from bertkit.training import _rows

    model = bertkit.load_pretrained(tiny_model_dir, head="masked_lm")
    optimizer = torch.optim.AdamW(model.parameters(), fused=True)
    with _rows.active_rows(model, optimizer) as tables:
        assert tables == []  # the decoder shares the matrix: its dense gradient would be lost


def test_active_rows_need_fused_adamw(tiny_model_dir):
    from bertkit.training import _rows

    model = _row_model(tiny_model_dir)
    for optimizer in (torch.optim.AdamW(model.parameters()), torch.optim.SGD(model.parameters(), lr=0.1)):
        with _rows.active_rows(model, optimizer) as tables:
            assert tables == []


@pytest.mark.parametrize("max_norm", [0.05, 1e6])  # clipping on, and off
def test_clipping_inside_the_fused_step_equals_clip_grad_norm(max_norm):
    """The factor handed to fused AdamW as ``grad_scale`` must give the update that
    PyTorch's clipping gives. ``eps=1`` makes the update depend on the gradient's scale
    (Adam alone would hide a wrong factor)."""
    from bertkit.training import _rows

    torch.manual_seed(0)
    start = [torch.randn(40, 8), torch.randn(8)]
    grads = [torch.randn(40, 8), torch.randn(8) * 3]
    runs = []
    for folded in (False, True):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        optimizer = torch.optim.AdamW(params, lr=0.1, eps=1.0, fused=True)
        if folded:
            norm = _rows.clip_grad_norm(params, max_norm, optimizer)
            assert hasattr(optimizer, "grad_scale")
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        _rows.drop_grad_scale(optimizer)
        assert not hasattr(optimizer, "grad_scale")
        runs.append((norm, [p.detach().clone() for p in params]))
    torch.testing.assert_close(runs[1][0], runs[0][0])
    for got, want in zip(runs[1][1], runs[0][1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    assert not torch.equal(runs[0][1][0], start[0])
