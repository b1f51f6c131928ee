"""``precision="int8"``: fit in fp32, predict with int8 encoder linear layers on the CPU."""

# ruff: noqa: F811  (fixtures imported from estimator_fixtures are test arguments)
from __future__ import annotations

import numpy as np
import pytest
import torch
from estimator_fixtures import *  # noqa: F403
from estimator_fixtures import FAST, TINY_CONFIG
from sklearn.base import clone

import bertkit
from bertkit import UnsupportedOptionError
from bertkit.training import Int8Linear, quantize_int8


def _tiny_model():
    torch.manual_seed(0)
    return bertkit.BertModel(bertkit.BertConfig(**TINY_CONFIG)).eval()


def test_quantized_copy_has_int8_encoder_linears_and_leaves_the_model_alone():
    model = _tiny_model()
    quantized = quantize_int8(model, torch.device("cpu"))
    linears = [m for m in quantized.encoder.modules() if isinstance(m, Int8Linear)]
    assert len(linears) == 6 * TINY_CONFIG["num_hidden_layers"]
    assert not any(isinstance(m, torch.nn.Linear) for m in quantized.encoder.modules())
    # Smoothed: what reads a LayerNorm output (query, key, value, feed-forward input).
    layer = quantized.encoder.layer[0]
    smoothed = {name for name, m in layer.named_modules()
                if isinstance(m, Int8Linear) and m.inverse_input_scale is not None}
    assert smoothed == {"attention.self.query", "attention.self.key", "attention.self.value", "intermediate.dense"}
    assert isinstance(model.encoder.layer[0].intermediate.dense, torch.nn.Linear)  # original untouched
    assert isinstance(quantized.pooler.dense, torch.nn.Linear)  # outside the encoder: fp32
    ids = torch.randint(5, TINY_CONFIG["vocab_size"], (3, 9))
    with torch.no_grad():
        want, got = model(ids).last_hidden_state, quantized(ids).last_hidden_state
    cos = torch.nn.functional.cosine_similarity(got.flatten(1), want.flatten(1))
    assert cos.min() > 0.98  # close to fp32, not equal to it
    assert not torch.equal(got, want)


def test_quantized_copy_is_cached_until_the_weights_change():
    model = _tiny_model()
    first = quantize_int8(model, torch.device("cpu"))
    assert quantize_int8(model, torch.device("cpu")) is first
    with torch.no_grad():
        model.encoder.layer[0].intermediate.dense.weight.mul_(2.0)  # as an optimizer step would
    assert quantize_int8(model, torch.device("cpu")) is not first


def test_int8_is_cpu_only():
    with pytest.raises(UnsupportedOptionError, match="int8.*CPU only.*device is cuda"):
        quantize_int8(_tiny_model(), torch.device("cuda"))


def test_classifier_with_int8_predicts_like_fp32(tiny_model_dir, toy_data):
    X, y = toy_data
    fp32 = bertkit.BertClassifier(model=tiny_model_dir, **{**FAST, "n_epochs": 4}).fit(X, y)
    int8 = clone(fp32).set_params(precision="int8").fit(X, y)
    # Training is fp32 either way: the same weights...
    for a, b in zip(fp32.model_.parameters(), int8.model_.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    # ...and int8 predictions close to fp32's.
    p32, p8 = fp32.predict_proba(X), int8.predict_proba(X)
    assert not np.allclose(p32, p8, atol=1e-7)  # int8 really ran
    assert np.abs(p32 - p8).max() < 0.1
    assert (fp32.predict(X) == int8.predict(X)).mean() >= 0.9


def test_embedder_int8_close_to_fp32(tiny_model_dir, toy_data):
    X, _ = toy_data
    a = bertkit.BertEmbedder(model=tiny_model_dir, device="cpu").fit().transform(X)
    b = bertkit.BertEmbedder(model=tiny_model_dir, device="cpu", precision="int8").fit().transform(X)
    cos = (a * b).sum(1)  # normalised embeddings
    assert cos.min() > 0.98 and not np.allclose(a, b, atol=1e-6)


def test_int8_linear_uses_7_bit_weights_and_8_bit_inputs_without_saturating():
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 128)  # uniform weights: many near the channel's maximum
    x = torch.randn(64, 256)
    int8 = Int8Linear(linear)
    weights = torch.ops.quantized.linear_unpack(int8._packed)[0].int_repr()
    assert weights.abs().max() == 63
    with torch.no_grad():
        want, got = linear(x), int8(x)
    # 8-bit weights with 8-bit inputs saturate the AVX2 kernels' 16-bit pair sums (7-18 %
    # error on such layers); 7-bit inputs (PyTorch's reduce_range) lose precision instead.
    assert (got - want).norm() / want.norm() < 0.03


def test_smoothing_moves_input_outliers_into_the_weights():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    x = torch.randn(16, 64)
    x[:, 3] *= 100
    scale = torch.ones(64)
    scale[3] = 10.0
    plain, smoothed = Int8Linear(linear), Int8Linear(linear, scale)
    with torch.no_grad():
        want = linear(x)
        err = [((m(x) - want).norm() / want.norm()).item() for m in (plain, smoothed)]
    assert err[1] < err[0] / 2, err
