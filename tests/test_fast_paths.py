"""Shortcuts in the encoder that must not change results: ``first_token_only``, the
CPU dropout mask, feed-forward slices and the short-row softmax.

The full forward is checked against transformers in test_parity.py; here each shortcut
is checked against the full path, outputs and gradients, on tiny random models.
"""

from __future__ import annotations

import pytest
import torch

from bertkit import BertConfig, BertModel, BertTaskModel
from bertkit.config import POSITION_EMBEDDING_TYPES
from bertkit.heads import MultipleChoiceHead, NextSentenceHead, SequenceClassificationHead

TINY = dict(vocab_size=50, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=40, type_vocab_size=2)


def _batch(batch=4, seq=11, seed=0, three_d=False):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, TINY["vocab_size"], (batch, seq), generator=g)
    lengths = torch.tensor([seq, 1, 5, seq - 2][:batch])  # one sequence of a single token
    mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
    types = (torch.arange(seq)[None, :] >= 3).long().expand(batch, seq)
    if three_d:  # (b, s, k): each query sees a different, non-empty set of keys
        mask = mask[:, None, :].expand(batch, seq, seq).clone()
        mask[:, :, 0] = 1
        mask[:, 2:, 1] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _model(head=None, seed=0, **config):
    torch.manual_seed(seed)
    cfg = BertConfig(**{**TINY, **config})
    if head is None:
        return BertModel(cfg)
    return BertTaskModel(cfg, head, "h", **({"num_labels": 3} if head is SequenceClassificationHead else {}))


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("position_embedding_type", POSITION_EMBEDDING_TYPES)
@pytest.mark.parametrize("three_d", [False, True], ids=["2d_mask", "3d_mask"])
def test_first_token_only_equals_full_forward(attention, position_embedding_type, three_d):
    model = _model(position_embedding_type=position_embedding_type).eval()
    model.set_attention(attention)
    inputs = _batch(three_d=three_d)
    head_mask = torch.tensor([1.0, 0.0, 1.0, 0.5])
    with torch.no_grad():
        full = model(**inputs, head_mask=head_mask)
        short = model(**inputs, head_mask=head_mask, first_token_only=True)
    assert short.last_hidden_state.shape == (4, 1, TINY["hidden_size"])
    torch.testing.assert_close(short.last_hidden_state, full.last_hidden_state[:, :1], atol=1e-6, rtol=0)
    torch.testing.assert_close(short.pooler_output, full.pooler_output, atol=1e-6, rtol=0)


def test_first_token_only_skips_work_in_the_last_layer():
    """The shortcut is real: the last layer's feed-forward sees one position per sequence."""
    model = _model().eval()
    seen = []
    model.encoder.layer[-1].intermediate.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        model(**_batch(), first_token_only=True)
    assert seen == [torch.Size([4, 1, TINY["intermediate_size"]])]


@pytest.mark.parametrize("head", [SequenceClassificationHead, NextSentenceHead])
def test_first_token_only_gives_the_same_gradients(head):
    model = _model(head, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    inputs = _batch()
    grads = []
    for first in (False, True):
        model.zero_grad(set_to_none=True)
        model(**inputs, first_token_only=first).logits.pow(2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5, msg=name)


def test_first_token_only_in_training_mode_has_the_same_dropout_noise():
    """fit trains with the trim: over many dropout draws the logits must have the full
    forward's mean and spread (a dropout skipped or doubled in the trimmed last layer
    would change the spread)."""
    torch.manual_seed(0)
    model = _model(SequenceClassificationHead, hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3).eval()
    model.bert.encoder.layer[-1].train()  # all the noise from the layer the trim changes
    inputs = _batch()
    with torch.no_grad():
        full, short = (torch.stack([model(**inputs, first_token_only=first).logits for _ in range(1500)])
                       for first in (False, True))
    spread = full.std(0)
    assert torch.all((short.mean(0) - full.mean(0)).abs() < 5 * spread / 1500 ** 0.5)
    torch.testing.assert_close(short.std(0), spread, rtol=0.1, atol=0)


def test_first_token_only_multiple_choice():
    model = _model(MultipleChoiceHead).eval()
    ids = torch.randint(1, TINY["vocab_size"], (2, 3, 7))
    with torch.no_grad():
        full = model(input_ids=ids).logits
        short = model(input_ids=ids, first_token_only=True).logits
    torch.testing.assert_close(short, full, atol=1e-6, rtol=0)


def test_first_token_only_decoder_and_hidden_states_still_exact():
    """Where the last layer cannot be trimmed, the output is still the first position."""
    model = _model(is_decoder=True).eval()
    inputs = _batch()
    with torch.no_grad():
        full = model(**inputs)
        short = model(**inputs, first_token_only=True)
        states = model(**inputs, first_token_only=True, output_hidden_states=True)
    torch.testing.assert_close(short.last_hidden_state, full.last_hidden_state[:, :1])
    assert states.hidden_states[-1].shape[1] == inputs["input_ids"].shape[1]


# --------------------------------------------------------------------- masked positions
@pytest.mark.parametrize("head_name", ["masked_lm", "pretraining"])
def test_masked_positions_give_the_full_logits_at_those_positions(head_name):
    from bertkit.heads import BUILTIN_HEADS

    model = _model(BUILTIN_HEADS[head_name]).eval()
    inputs = _batch()
    positions = torch.zeros_like(inputs["input_ids"], dtype=torch.bool)
    positions[0, 3], positions[2, 0], positions[2, 4] = True, True, True
    key = "logits" if head_name == "masked_lm" else "prediction_logits"
    with torch.no_grad():
        full = model(**inputs)[key]
        short = model(**inputs, masked_positions=positions)[key]
    assert short.shape == (3, TINY["vocab_size"])
    torch.testing.assert_close(short, full[positions], atol=1e-6, rtol=0)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_feed_forward_in_slices_equals_the_whole(monkeypatch, packed):
    """CPU inference runs the feed-forward over slices of the tokens: same values, and
    the slicing really happens (the intermediate block sees slices of the step's size)."""
    from bertkit import modeling

    model = _model().eval()
    inputs = _batch(seq=13)
    with torch.enable_grad():  # autograd on: the whole block in one call
        whole = model(**inputs, packed=packed).last_hidden_state.detach()
    seen = []
    model.encoder.layer[0].intermediate.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    step = 5  # tokens per slice: 5 * 4 bytes * intermediate_size
    monkeypatch.setattr(modeling, "FEED_FORWARD_SLICE_BYTES", step * 4 * TINY["intermediate_size"])
    with torch.no_grad():
        sliced = model(**inputs, packed=packed).last_hidden_state
    torch.testing.assert_close(sliced, whole, atol=1e-6, rtol=0)
    tokens = int(inputs["attention_mask"].sum()) if packed else 4 * 13
    assert seen == [step] * (tokens // step) + ([tokens % step] if tokens % step else [])


@pytest.mark.parametrize("keys", [1, 2, 5, 13, 15, 16, 17, 40])
def test_short_row_softmax_equals_torch(keys):
    """``softmax_`` (whole-tensor ops below CPU_SHORT_SOFTMAX keys) against torch.softmax,
    with masked keys (the dtype's minimum, as the attention bias writes it) and rows
    whose keys are all masked."""
    from bertkit.attention import CPU_SHORT_SOFTMAX, softmax_

    g = torch.Generator().manual_seed(keys)
    scores = torch.randn(3, 4, 7, keys, generator=g) * 30
    scores[0, :, :, keys // 2:] = torch.finfo(scores.dtype).min  # half the keys masked
    scores[1, 2] = torch.finfo(scores.dtype).min  # every key masked: uniform, as torch gives
    expected = torch.softmax(scores, dim=-1)
    got = softmax_(scores.clone())
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    assert torch.isfinite(got).all()
    if keys < CPU_SHORT_SOFTMAX:  # the short path works in place: no new tensor per call
        owned = scores.clone()
        assert softmax_(owned).data_ptr() == owned.data_ptr()


def test_short_row_softmax_leaves_half_precision_to_torch():
    from bertkit.attention import softmax_

    scores = (torch.randn(2, 3, 5, 9) * 10).bfloat16()
    assert torch.equal(softmax_(scores.clone()), torch.softmax(scores, dim=-1))


def test_short_row_softmax_keeps_gradients():
    """With gradients recorded it must not write in place (autograd needs its input)."""
    from bertkit.attention import softmax_

    scores = torch.randn(2, 3, 5, 9, requires_grad=True)
    weights = torch.randn(2, 3, 5, 9)
    (softmax_(scores * 1.0) * weights).sum().backward()
    expected = torch.autograd.grad((torch.softmax(scores, -1) * weights).sum(), scores)[0]
    torch.testing.assert_close(scores.grad, expected)


@pytest.mark.parametrize("keys", [6, 24])
def test_eager_attention_with_bias_equals_the_formula(keys):
    """``eager_attention`` scales and adds the bias in place: the result is still
    softmax(q k^T * scale + bias) v, and the caller's bias is left alone."""
    from bertkit.attention import eager_attention

    g = torch.Generator().manual_seed(keys)
    q = torch.randn(2, 3, 4, 8, generator=g)
    k, v = (torch.randn(2, 3, keys, 8, generator=g) for _ in range(2))
    bias = torch.zeros(2, 1, 1, keys)
    bias[1, ..., keys // 2:] = torch.finfo(bias.dtype).min
    kept = bias.clone()
    context, probs = eager_attention(q, k, v, bias=bias, dropout_p=0.0, scale=0.3, head_mask=None, need_weights=True)
    expected_probs = torch.softmax(q @ k.transpose(-1, -2) * 0.3 + bias, dim=-1)
    torch.testing.assert_close(probs, expected_probs)
    torch.testing.assert_close(context, expected_probs @ v)
    assert torch.equal(bias, kept)


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu", "silu", "tanh", "mish", "quick_gelu"])
@pytest.mark.parametrize("packed", [False, True])
def test_inference_in_place_activations_and_adds_equal_the_autograd_path(act, packed):
    """Without autograd the feed-forward activation and the residual adds write into
    their temporaries; every output (hidden states included) must equal the path
    autograd takes, and the caller's inputs stay untouched."""
    model = _model(hidden_act=act).eval()
    batch = _batch()
    embeds = model.embeddings.word_embeddings(batch["input_ids"]).detach()
    kept = embeds.clone()
    kwargs = dict(attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"],
                  output_hidden_states=True, packed=packed)
    expected = model(inputs_embeds=embeds, **kwargs)  # grad enabled: out of place
    with torch.inference_mode():
        got = model(inputs_embeds=embeds, **kwargs)
    assert torch.equal(embeds, kept)
    # (not bit for bit: inference also takes the short-row softmax)
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, rtol=1e-5, atol=1e-6)
    for a, b in zip(got.hidden_states, expected.hidden_states, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
