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
import bertkit.training._quantize as q
from bertkit import UnsupportedOptionError
from bertkit.training import Int8Linear, quantize_int8


def _tiny_model():
    torch.manual_seed(0)
    return bertkit.BertModel(bertkit.BertConfig(**TINY_CONFIG)).eval()


def test_quantized_copy_has_int8_encoder_linears_and_leaves_the_model_alone():
    model = _tiny_model()
    quantized = quantize_int8(model, torch.device("cpu"))
    linears = [m for m in quantized.encoder.modules() if isinstance(m, Int8Linear)]
    # 6 per layer, plus query, key and value fused into one for self-attention
    assert len(linears) == 7 * TINY_CONFIG["num_hidden_layers"]
    assert not any(isinstance(m, torch.nn.Linear) for m in quantized.encoder.modules())
    # Smoothed: what reads a LayerNorm output (query, key, value, feed-forward input).
    layer = quantized.encoder.layer[0]
    smoothed = {name for name, m in layer.named_modules()
                if isinstance(m, Int8Linear) and m.inverse_input_scale is not None}
    assert smoothed == {"attention.self.query", "attention.self.key", "attention.self.value",
                        "attention.self.qkv", "intermediate.dense"}
    attention = layer.attention.self
    calls = []
    attention.qkv.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        quantized(torch.randint(5, TINY_CONFIG["vocab_size"], (2, 6)))
    assert calls == [1]  # self-attention runs the fused projection, once per forward
    x = torch.randn(2, 7, TINY_CONFIG["hidden_size"])
    with torch.no_grad():  # one quantisation of the input for all three: the same products
        for fused, alone in zip(attention.qkv(x).chunk(3, dim=-1),
                                (attention.query(x), attention.key(x), attention.value(x)), strict=True):
            torch.testing.assert_close(fused, alone, rtol=1e-5, atol=1e-5)
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


def test_int8_linear_uses_8_bit_inputs_and_weights_the_kernels_never_saturate():
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 128)  # uniform weights: many near the channel's maximum
    x = torch.randn(64, 256)
    int8 = Int8Linear(linear)
    weights = torch.ops.quantized.linear_unpack(int8._packed)[0].int_repr()
    assert weights.abs().max() == q.weight_max() in (q.SAFE_WEIGHT_MAX, 127)
    with torch.no_grad():
        want, got = linear(x), int8(x)
    # Weights too wide for the kernels saturate their sums (7-18 % error on such layers);
    # 7-bit inputs (PyTorch's reduce_range) lose precision instead.
    assert (got - want).norm() / want.norm() < 0.03


def _emulated_kernel(pair_sums_in_16_bits):
    """quantized::linear_dynamic for the probe's exact u8 inputs (scale 1, zero point 0),
    adding pairs of products in 16 bits (AVX2) or not (VNNI)."""
    def linear_dynamic(x, packed, reduce_range=False):
        weight = torch.ops.quantized.linear_unpack(packed)[0].int_repr().long()
        products = x.round().long()[:, None, :] * weight[None]  # (rows, out, in)
        if pair_sums_in_16_bits:
            products = (products[..., 0::2] + products[..., 1::2]).clamp(-32768, 32767)
        return products.sum(-1).float()
    return linear_dynamic


@pytest.mark.parametrize(("saturating", "expected"), [(True, 63), (False, 127)])
def test_weight_bits_come_from_probing_the_kernels(monkeypatch, saturating, expected):
    monkeypatch.setattr(q, "_linear_dynamic", _emulated_kernel(saturating))
    q.weight_max.cache_clear()
    try:
        assert q.weight_max() == expected
    finally:
        q.weight_max.cache_clear()


def test_per_row_ranges_keep_an_outlier_row_from_costing_the_other_rows_their_precision():
    # BERT's [CLS] token: feed-forward activations 4-8x the other tokens'; here 40x.
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 64)
    x = torch.randn(64, 256)
    x[0] *= 40.0
    one_range, per_row = Int8Linear(linear, per_row=False), Int8Linear(linear, per_row=True)
    with torch.no_grad():
        want = linear(x)
        err = [((m(x) - want)[1:].norm() / want[1:].norm()).item() for m in (one_range, per_row)]
        row_err = (per_row(x) - want).norm(dim=1) / want.norm(dim=1)
    assert err[1] < err[0] / 5, err
    assert row_err.max() < 0.02, row_err.max()  # every row, the outlier too


@pytest.mark.parametrize("per_row", [False, True])
def test_outlier_channels_are_multiplied_in_fp32_so_the_rest_keeps_its_precision(per_row, monkeypatch):
    # BERT's [CLS] and [SEP] rows put most of their magnitude into one channel (19x the
    # row's standard deviation in all-MiniLM-L6-v2); here channel 7 of a few rows.
    torch.manual_seed(0)
    linear = torch.nn.Linear(384, 96)
    x = torch.randn(2, 20, 384)
    x[:, 0, 7] = 150.0
    x[1, 5, 7] = -90.0
    kept = x.clone()
    int8 = Int8Linear(linear, per_row=per_row)
    assert int8.outlier_channels(x.reshape(-1, 384)).tolist() == [7]
    assert int8.outlier_channels(torch.randn(40, 384)) is None  # no outlier: nothing taken out
    with torch.no_grad():
        want = linear(x).reshape(-1, 96)
        got = int8(x).reshape(-1, 96)
        assert torch.equal(x, kept)  # the caller's input is left alone
        monkeypatch.setattr(q, "OUTLIER_SHARE", 0)  # everything through the int8 kernel
        without = Int8Linear(linear, per_row=per_row)(x).reshape(-1, 96)
    row_err = (got - want).norm(dim=1) / want.norm(dim=1)
    row_err_without = (without - want).norm(dim=1) / want.norm(dim=1)
    assert row_err.max() < 0.02, row_err.max()  # every row, the outlier rows too
    outlier_rows = [0, 25]
    # (2x at least: with 7-bit weights, on AVX2 without VNNI, the weights' own rounding stays)
    assert row_err[outlier_rows].max() < row_err_without[outlier_rows].min() / 2, (row_err, row_err_without)


def test_per_row_ranges_fit_each_row_not_zero():
    # A row of values near 6 spans 0.6: a range centred on zero (-6.3..6.3) would give
    # it 20x coarser levels than its own range does. Quantising its inputs then adds
    # next to nothing to what the int8 weights alone cost (27 % more when centred on 0).
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 64)
    x = torch.randn(4, 256)
    x[1] = 6.0 + 0.1 * torch.randn(256)
    int8 = Int8Linear(linear, per_row=True)
    weights = torch.ops.quantized.linear_unpack(int8._packed)[0].dequantize()
    with torch.no_grad():
        want = linear(x)[1]
        err = (int8(x)[1] - want).norm()
        weights_alone = (x[1] @ weights.T + linear.bias - want).norm()
    assert err < 1.05 * weights_alone, (err, weights_alone)


def test_per_row_leaves_the_input_alone_unless_it_owns_it():
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 16)
    x = torch.randn(2, 5, 32)
    kept = x.clone()
    with torch.no_grad():
        want = Int8Linear(linear, per_row=True)(x)
        assert torch.equal(x, kept)
        got = Int8Linear(linear, per_row=True, owns_input=True)(x)  # a temporary: rescaled in place
    torch.testing.assert_close(got, want)
    assert got.shape == (2, 5, 16)
    quantized = quantize_int8(_tiny_model(), torch.device("cpu"))
    owners = {name for name, m in quantized.encoder.layer[0].named_modules()
              if isinstance(m, Int8Linear) and m.owns_input}
    assert owners == {"attention.output.dense", "output.dense"}  # they read the context and the activation


def test_int8_weights_are_packed_for_onednn_where_amx_makes_it_fast(monkeypatch):
    if "onednn" not in torch.backends.quantized.supported_engines:
        pytest.skip("this PyTorch build has no oneDNN quantized engine")
    before = torch.backends.quantized.engine
    for amx, want in ((True, "onednn"), (False, before)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx, raising=False)
        q.engine.cache_clear()
        try:
            assert q.engine() == want
            assert q.default_per_row() is False  # one range per call (and outlier channels) by default
            linear = torch.nn.Linear(64, 32)
            int8 = Int8Linear(linear)
            assert int8.per_row is False
            assert torch.backends.quantized.engine == before  # the global setting is left alone
            x = torch.randn(3, 64)
            with torch.no_grad():
                assert torch.nn.functional.cosine_similarity(int8(x), linear(x)).min() > 0.999
        finally:
            q.engine.cache_clear()
    monkeypatch.setattr(q, "PER_ROW", True)
    assert q.default_per_row() is True


def test_smoothing_moves_input_outliers_into_the_weights(monkeypatch):
    monkeypatch.setattr(q, "OUTLIER_SHARE", 0)  # channel 3 would be taken out of the kernel
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
