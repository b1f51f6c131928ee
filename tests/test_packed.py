"""``BertModel.forward(packed=True)``: the packed path must equal the padded one.

Packing runs embeddings, projections, feed-forward blocks and LayerNorms on the real
tokens alone and attention per sequence. Real positions must get the padded path's
values (within 1e-5) for every head, attention backend and position type, in batches
with a single sequence, all-equal lengths and sequences as long as the model allows,
with attention by runs of equal-length rows and on the padded batch (every test runs
both).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit import BertConfig, BertModel, BertTaskModel, InputError, modeling
from bertkit.config import POSITION_EMBEDDING_TYPES
from bertkit.heads import BUILTIN_HEADS
from bertkit.modeling import Packing

MAX_POS = 72  # > CPU_SHORT_KEYS: the longest rows take the fused attention kernel
TINY = dict(vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=MAX_POS, type_vocab_size=2,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
HEAD_OPTIONS = {"sequence_classification": {"num_labels": 3}, "token_classification": {"num_labels": 5}}

#: name -> per-row lengths (all rows padded to the longest)
LAYOUTS = {
    "ragged": [9, 1, 5, 7],
    "one_sequence": [6],
    "equal_lengths": [7, 7, 7],
    "max_length": [MAX_POS, 3, MAX_POS, 11],
}


@pytest.fixture(autouse=True, params=["by_runs", "padded"])
def attention_layout(request, monkeypatch):
    """Packed attention by runs of equal-length rows, or once on the padded batch."""
    if request.param == "padded":
        monkeypatch.setattr(Packing, "_runs", lambda self, keep: None)
    else:  # by runs however many there are (the tiny batches here would not pay)
        monkeypatch.setattr(modeling, "PADDED_TOKENS_PER_RUN", 1)
    return request.param


def _inputs(lengths, seed=0, pairs=True):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    batch, seq = len(lengths), int(lengths.max())
    ids = torch.randint(1, TINY["vocab_size"], (batch, seq), generator=g)
    mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
    ids = ids.masked_fill(mask == 0, 0)  # [PAD] = 0
    out = {"input_ids": ids, "attention_mask": mask}
    if pairs:  # a second segment from the middle of each row
        out["token_type_ids"] = ((torch.arange(seq)[None, :] >= (lengths[:, None] + 1) // 2) & (mask == 1)).long()
    return out


def _model(head=None, seed=0, **config):
    torch.manual_seed(seed)
    cfg = BertConfig(**{**TINY, **config})
    if head is None:
        return BertModel(cfg).eval()
    return BertTaskModel(cfg, BUILTIN_HEADS[head], head, **HEAD_OPTIONS.get(head, {})).eval()


def _assert_same(packed, padded, mask, *, atol=1e-5):
    """Every tensor output equal; per-token ones at the real positions (padding may differ)."""
    keep = mask.bool()
    compared = 0
    for key, want in padded.items():
        if not isinstance(want, torch.Tensor):
            continue
        got = packed[key]
        assert got.shape == want.shape, key
        if want.dim() >= 2 and tuple(want.shape[:2]) == tuple(keep.shape):
            got, want = got[keep], want[keep]
        torch.testing.assert_close(got, want, atol=atol, rtol=0, msg=key)
        compared += 1
    assert compared


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("head", [h for h in BUILTIN_HEADS if h != "multiple_choice"])
def test_every_head_packed_equals_padded(head, layout):
    model = _model(head)
    inputs = _inputs(LAYOUTS[layout])
    with torch.no_grad():
        padded = model(**inputs)
        packed = model(**inputs, packed=True)
    _assert_same(packed, padded, inputs["attention_mask"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_multiple_choice_packed_equals_padded(layout):
    model = _model("multiple_choice")
    flat = _inputs(LAYOUTS[layout] * 3)  # 3 choices per question, different lengths per choice
    b = len(LAYOUTS[layout])
    inputs = {k: v.view(3, b, -1).transpose(0, 1).contiguous() for k, v in flat.items()}  # (b, 3, s)
    with torch.no_grad():
        padded = model(**inputs).logits
        packed = model(**inputs, packed=True).logits
    assert packed.shape == (b, 3)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=0)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("position_embedding_type", POSITION_EMBEDDING_TYPES)
def test_encoder_outputs_for_every_backend_and_position_type(attention, position_embedding_type):
    model = _model(position_embedding_type=position_embedding_type)
    model.set_attention(attention)
    inputs = _inputs(LAYOUTS["ragged"])
    head_mask = torch.tensor([1.0, 0.0, 1.0, 0.5])
    need = attention == "eager"
    with torch.no_grad():
        padded = model(**inputs, head_mask=head_mask, output_hidden_states=True, output_attentions=need)
        packed = model(**inputs, head_mask=head_mask, output_hidden_states=True, output_attentions=need,
                       packed=True)
    keep = inputs["attention_mask"].bool()
    _assert_same(packed, padded, keep)
    for got, want in zip(packed.hidden_states, padded.hidden_states, strict=True):
        torch.testing.assert_close(got[keep], want[keep], atol=1e-5, rtol=0)
        assert torch.count_nonzero(got[~keep]) == 0  # padding is zero, not computed
    if need:  # probabilities of real queries over keys are the same
        for got, want in zip(packed.attentions, padded.attentions, strict=True):
            torch.testing.assert_close(got.transpose(1, 2)[keep], want.transpose(1, 2)[keep], atol=1e-6, rtol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_first_token_only_with_packing(layout):
    model = _model()
    inputs = _inputs(LAYOUTS[layout])
    with torch.no_grad():
        padded = model(**inputs)
        packed = model(**inputs, first_token_only=True, packed=True)
    assert packed.last_hidden_state.shape == (len(LAYOUTS[layout]), 1, TINY["hidden_size"])
    torch.testing.assert_close(packed.last_hidden_state, padded.last_hidden_state[:, :1], atol=1e-5, rtol=0)
    torch.testing.assert_close(packed.pooler_output, padded.pooler_output, atol=1e-5, rtol=0)


def test_decoder_causal_mask_inputs_embeds_and_left_padding():
    model = _model(is_decoder=True)
    inputs = _inputs(LAYOUTS["ragged"], pairs=False)
    with torch.no_grad():
        _assert_same(model(**inputs, packed=True, use_cache=False), model(**inputs, use_cache=False),
                     inputs["attention_mask"])
        embeds = model.embeddings.word_embeddings(inputs["input_ids"])
        mask = inputs["attention_mask"]
        _assert_same(model(inputs_embeds=embeds, attention_mask=mask, packed=True, use_cache=False),
                     model(inputs_embeds=embeds, attention_mask=mask, use_cache=False), mask)
    encoder = _model()
    left = {k: v.flip(1) for k, v in inputs.items()}  # padding first: packing follows the mask
    left["position_ids"] = (left["attention_mask"].cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():  # (the pooler reads position 0, padding here: not compared)
        packed, padded = encoder(**left, packed=True), encoder(**left)
    _assert_same({"h": packed.last_hidden_state}, {"h": padded.last_hidden_state}, left["attention_mask"])


def test_packing_computes_nothing_for_padding():
    model = _model()
    inputs = _inputs(LAYOUTS["ragged"])
    seen = []
    for layer in model.encoder.layer:
        layer.intermediate.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    with torch.no_grad():
        model(**inputs, packed=True)
    n_real = int(inputs["attention_mask"].sum())
    assert seen == [(n_real, TINY["intermediate_size"])] * TINY["num_hidden_layers"]


def test_packed_gradients_equal_padded_gradients():
    model = _model("token_classification").train()  # dropout is 0 in TINY
    inputs = _inputs(LAYOUTS["ragged"])
    keep = inputs["attention_mask"].bool()
    grads = []
    for packed in (False, True):
        model.zero_grad(set_to_none=True)
        model(**inputs, packed=packed).logits[keep].pow(2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)


def test_pack_and_pad_round_trip():
    keep = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    packing = Packing(keep)
    x = torch.arange(9 * 2, dtype=torch.float32).view(3, 3, 2)
    packed = packing.pack(x)
    assert packed.shape == (5, 2)
    torch.testing.assert_close(packed, x[keep])
    back = packing.pad(packed)
    torch.testing.assert_close(back[keep], x[keep])
    assert torch.count_nonzero(back[~keep]) == 0


def test_packed_needs_a_2d_mask_and_no_cache():
    model = _model(is_decoder=True)
    inputs = _inputs(LAYOUTS["ragged"], pairs=False)
    with pytest.raises(InputError, match="packed=True needs a 2-D attention_mask"):
        model(input_ids=inputs["input_ids"], packed=True)
    with pytest.raises(InputError, match="packed=True needs a 2-D attention_mask.*shape \\(4, 9, 9\\)"):
        mask3 = inputs["attention_mask"][:, None, :].expand(4, 9, 9)
        model(input_ids=inputs["input_ids"], attention_mask=mask3, packed=True)
    with torch.no_grad():
        past = model(**inputs, use_cache=True).past_key_values
    longer = torch.cat([inputs["attention_mask"], torch.ones(4, 1, dtype=torch.long)], dim=1)
    with pytest.raises(InputError, match="past_key_values"):
        model(input_ids=torch.ones(4, 1, dtype=torch.long), attention_mask=longer,
              past_key_values=past, packed=True)


def test_default_model_packed_equals_padded_on_real_sentences(default_model_dir, sst2_sentences):
    import bertkit

    model = bertkit.load_pretrained(default_model_dir)
    tokenizer = bertkit.load_tokenizer(default_model_dir)
    texts = sst2_sentences[:48]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    lengths = batch["attention_mask"].sum(1).numpy()
    assert len(np.unique(lengths)) > 10  # a really ragged batch
    with torch.inference_mode():
        padded = model(**batch)
        packed = model(**batch, packed=True)
    _assert_same(packed, padded, batch["attention_mask"], atol=1e-5)


def test_estimators_predict_on_packed_batches(tmp_path, monkeypatch):
    """predict/transform go through the packed path: the feed-forward blocks see the real
    tokens only, and the results equal an unpacked run."""
    from bertkit.training import _loop

    folder = tmp_path / "tiny"
    words = [f"w{i}" for i in range(40)]
    BertModel(BertConfig(**{**TINY, "vocab_size": 45, "max_position_embeddings": 64})).save_pretrained(folder)
    import bertkit

    bertkit.BertTokenizer.from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]).save(folder)
    texts = [" ".join(words[: n]) for n in (3, 17, 1, 9, 30, 5)]  # lengths 5..32 with specials
    embedder = bertkit.BertEmbedder(model=str(folder), device="cpu").fit()
    seen = []
    hooks = [layer.intermediate.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
             for layer in embedder.model_.encoder.layer]
    packed = embedder.transform(texts)
    for hook in hooks:
        hook.remove()
    real = sum(n + 2 for n in (3, 17, 1, 9, 30, 5))
    assert sum(seen) == real * TINY["num_hidden_layers"]  # no padded token was computed
    original = _loop.predict_rows

    def unpacked(*args, **kwargs):
        return original(*args, **{**kwargs, "packed": False})

    monkeypatch.setattr("bertkit.estimators._base.predict_rows", unpacked)
    np.testing.assert_allclose(embedder.transform(texts), packed, atol=1e-5)


def test_runs_of_equal_length_rows(attention_layout, monkeypatch):
    monkeypatch.setattr(modeling, "PADDED_TOKENS_PER_RUN", 48)
    keep = torch.arange(48)[None, :] < torch.tensor([30, 30, 1, 0, 2])[:, None]
    want = [(30, 2), (1, 1), (0, 1), (2, 1)] if attention_layout == "by_runs" else None
    assert Packing(keep).runs == want
    assert Packing(keep, by_runs=False).runs is None
    # more runs than one per PADDED_TOKENS_PER_RUN padded tokens: one padded call
    many = torch.arange(40)[None, :] < torch.arange(1, 41).repeat(2)[:, None]
    assert Packing(many).runs is None


def test_attention_by_runs_is_used_and_skips_the_mask(attention_layout):
    model = _model()
    inputs = _inputs([40, 40, 30, 30, 30, 5])  # sorted, as inference batches are: 3 runs
    biases = []
    original = model.encoder.layer[0].attention.self.attention_fn

    def spy(*args, bias, **kwargs):
        biases.append(bias)
        return original(*args, bias=bias, **kwargs)

    for layer in model.encoder.layer:
        layer.attention.self.attention_fn = spy
    with torch.no_grad():
        packed = model(**inputs, packed=True)
    if attention_layout == "by_runs":
        assert len(biases) == 3 * TINY["num_hidden_layers"] and all(b is None for b in biases)
    else:
        assert len(biases) == TINY["num_hidden_layers"] and all(b is not None for b in biases)
    with torch.no_grad():
        _assert_same(packed, model(**inputs), inputs["attention_mask"])


def test_masks_with_holes():
    """Any 2-D mask packs: each row attends to its own real tokens, wherever they are."""
    model = _model()
    inputs = _inputs([9, 9, 8, 5], pairs=False)
    inputs["attention_mask"][0, 3] = 0
    inputs["attention_mask"][1, 1:3] = 0
    inputs["attention_mask"][2, 7] = 0  # rows of 8, 7, 7, 5 real tokens
    with torch.no_grad():
        _assert_same(model(**inputs, packed=True), model(**inputs), inputs["attention_mask"])
