"""bertkit.dropout (cheap CPU masks) and the chunked attention with dropout that CPU
training uses (bertkit.attention._DropoutAttention)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import bertkit.attention as attention
from bertkit import BertConfig, BertModel
from bertkit.dropout import LEVELS, Dropout, _mask, _threshold, dropout


# ---------------------------------------------------------------- dropout
@pytest.mark.parametrize("p", [0.1, 0.5, 0.03])
def test_dropout_drops_p_and_keeps_the_mean(p):
    torch.manual_seed(0)
    x = torch.ones(400, 1000)
    out = dropout(x, p)
    dropped = (out == 0).double().mean().item()
    assert dropped == pytest.approx(p, abs=0.003)  # 400,000 draws: sd < 0.0008
    kept = out[out != 0]
    k, _ = _threshold(p)
    assert torch.allclose(kept, torch.full_like(kept, LEVELS / (LEVELS - k)))
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)


def test_dropout_gradient_is_the_same_mask():
    torch.manual_seed(1)
    x = torch.randn(50, 64, requires_grad=True)
    out = dropout(x, 0.2)
    (g,) = torch.autograd.grad(out, x, torch.ones_like(out))
    expected = torch.where(out != 0, torch.tensor(1 / (1 - 13107 / LEVELS)), 0.0)
    assert torch.allclose(g, expected)
    assert torch.equal(out, x.detach() * g)


def test_dropout_follows_torch_manual_seed_and_leaves_inputs_alone():
    x = torch.randn(30, 30)
    before = x.clone()
    torch.manual_seed(5)
    a = dropout(x, 0.3)
    torch.manual_seed(5)
    b = dropout(x, 0.3)
    assert torch.equal(a, b)
    assert torch.equal(x, before)
    assert not torch.equal(a, dropout(x, 0.3))  # the next call draws new masks


def test_dropout_edge_cases_and_bad_p():
    x = torch.randn(8, 8)
    assert dropout(x, 0.0) is x
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 1e-7) is x  # rounds to no dropout
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="between 0 and 1, got 1.5"):
        dropout(x, 1.5)


def test_mask_levels_are_uniform():
    """Every mask value comes from 16 uniform bits: the drop rate is k / 65536."""
    g = torch.Generator().manual_seed(0)
    m = _mask(torch.Size([1 << 22]), LEVELS // 4, 1.0, g)
    assert (m == 0).double().mean().item() == pytest.approx(0.25, abs=0.001)
    assert set(m.unique().tolist()) == {0.0, 1.0}


def test_dropout_module_is_an_nn_dropout_and_eval_is_identity():
    layer = Dropout(0.4)
    assert isinstance(layer, torch.nn.Dropout) and layer.p == 0.4
    x = torch.randn(20, 20)
    layer.eval()
    assert layer(x) is x
    layer.train()
    assert (layer(x) == 0).any()


def test_the_model_uses_bertkit_dropout():
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    model = BertModel(config)
    kinds = {type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert kinds == {Dropout}


# ---------------------------------------------------------------- attention with dropout
def _explicit(q, k, v, bias, p, scale, mask):
    """Reference: dropout(softmax(q k^T * scale + bias)) v with a given mask."""
    scores = q @ k.transpose(-1, -2) * scale
    if bias is not None:
        scores = scores + bias
    return (torch.softmax(scores, -1) * mask) @ v


def _masks_for(seed, shape, p, chunk_rows):
    """The masks the chunked kernel draws, chunk by chunk, from its seed."""
    g = torch.Generator().manual_seed(seed)
    levels, scale = _threshold(p)
    n = shape[0]
    return torch.cat([_mask(torch.Size([min(chunk_rows, n - i), *shape[1:]]), levels, scale, g)
                      for i in range(0, n, chunk_rows)])


@pytest.mark.parametrize("chunk_scores", [1 << 18, 48])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("keep_scores", [1 << 22, 0])  # probabilities and masks kept, or recomputed
def test_chunked_dropout_attention_equals_explicit_with_the_same_masks(monkeypatch, chunk_scores, with_bias,
                                                                        keep_scores):
    """Values and all three gradients, in one chunk and in many (uneven last chunk)."""
    monkeypatch.setattr(attention, "CHUNK_SCORES", chunk_scores)
    monkeypatch.setattr(attention, "KEEP_SCORES", keep_scores)
    b, h, s, t, d, p, scale = 3, 2, 5, 6, 4, 0.25, 0.4
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(b, h, n, d, dtype=torch.float64, generator=gen, requires_grad=True) for n in (s, t, t))
    bias = None
    if with_bias:
        bias = torch.zeros(b, 1, 1, t, dtype=torch.float64)
        bias[1, ..., 4:] = torch.finfo(torch.float64).min
    torch.manual_seed(7)
    seed = int(torch.empty((), dtype=torch.int64).random_())
    torch.manual_seed(7)
    out = attention._dropout_attention(q, k, v, bias, p, scale)
    rows = max(1, chunk_scores // (s * t))
    mask = _masks_for(seed, (b * h, s, t), p, rows).view(b, h, s, t)
    assert (mask == 0).any() and (mask != 0).any()
    ref = _explicit(q, k, v, bias, p, scale, mask)
    assert torch.allclose(out, ref, atol=1e-12)
    upstream = torch.randn(out.shape, dtype=torch.float64, generator=gen)
    got = torch.autograd.grad(out, (q, k, v), upstream)
    want = torch.autograd.grad(ref, (q, k, v), upstream)
    for g1, g2 in zip(got, want, strict=True):
        assert torch.allclose(g1, g2, atol=1e-10)


def test_sdpa_backend_trains_with_the_chunked_kernel_on_cpu(monkeypatch):
    calls = []
    real = attention._DropoutAttention.apply
    monkeypatch.setattr(attention._DropoutAttention, "apply", lambda *a: calls.append(1) or real(*a))
    q = torch.randn(2, 2, 100, 8, requires_grad=True)
    out, _ = attention.sdpa_attention(q, q, q, bias=None, dropout_p=0.1, scale=0.3, head_mask=None,
                                      need_weights=False)
    out.sum().backward()
    assert calls == [1]
    # Without dropout the fused / short-key paths run, as before.
    attention.sdpa_attention(q, q, q, bias=None, dropout_p=0.0, scale=0.3, head_mask=None, need_weights=False)
    assert calls == [1]


def test_chunked_dropout_attention_is_unbiased():
    """Averaged over many masks, the output approaches attention without dropout."""
    torch.manual_seed(3)
    q, k, v = torch.randn(1, 1, 4, 8), torch.randn(1, 1, 6, 8), torch.randn(1, 1, 6, 8)
    runs = torch.stack([attention._dropout_attention(q, k, v, None, 0.3, 0.35) for _ in range(4000)])
    exact = F.scaled_dot_product_attention(q, k, v, scale=0.35)
    assert torch.allclose(runs.mean(0), exact, atol=0.05)
    assert runs.std(0).mean() > 0.1  # it does drop
