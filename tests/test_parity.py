"""Numeric parity of bertkit's encoder, heads and checkpoints with Hugging Face transformers.

transformers is the test-only reference. Each tiny model is built by transformers with a
fixed seed, every parameter is then moved by a seeded random tweak (so zero-initialised
biases, unit LayerNorms and a wrong key mapping cannot pass by accident), saved with
``save_pretrained``, and loaded by :func:`bertkit.load_pretrained`. Outputs are compared
in fp32 eval mode on padded batches; per-token outputs only where ``attention_mask`` is 1.
"""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")

import bertkit  # noqa: E402
from bertkit.config import ACTIVATIONS, POSITION_EMBEDDING_TYPES  # noqa: E402
from bertkit.heads import BUILTIN_HEADS  # noqa: E402

ATOL = 1e-5
REAL_ATOL = 1e-4
BACKENDS = ("sdpa", "eager")

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    # Non-zero dropout: a model left in training mode would not match.
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)

#: bertkit head name -> (transformers class, Auto class).
HF_CLASSES = {
    None: ("BertModel", "AutoModel"),
    "pretraining": ("BertForPreTraining", "AutoModelForPreTraining"),
    "masked_lm": ("BertForMaskedLM", "AutoModelForMaskedLM"),
    "next_sentence": ("BertForNextSentencePrediction", "AutoModelForNextSentencePrediction"),
    "sequence_classification": (
        "BertForSequenceClassification",
        "AutoModelForSequenceClassification",
    ),
    "multiple_choice": ("BertForMultipleChoice", "AutoModelForMultipleChoice"),
    "token_classification": ("BertForTokenClassification", "AutoModelForTokenClassification"),
    "question_answering": ("BertForQuestionAnswering", "AutoModelForQuestionAnswering"),
    "causal_lm": ("BertLMHeadModel", "AutoModelForCausalLM"),
}

#: The outputs each head is compared on: name -> whether it is per token.
OUTPUTS = {
    None: {"last_hidden_state": True, "pooler_output": False},
    "pretraining": {"prediction_logits": True, "seq_relationship_logits": False},
    "masked_lm": {"logits": True},
    "next_sentence": {"logits": False},
    "sequence_classification": {"logits": False},
    "multiple_choice": {"logits": False},
    "token_classification": {"logits": True},
    "question_answering": {"start_logits": True, "end_logits": True},
    "causal_lm": {"logits": True},
}

#: (head, transformers config overrides), one per head plus the variants worth a case.
HEAD_CASES = [
    pytest.param(None, {}, id="encoder"),
    pytest.param("pretraining", {}, id="pretraining"),
    pytest.param("masked_lm", {}, id="masked_lm"),
    pytest.param("masked_lm", {"tie_word_embeddings": False}, id="masked_lm-untied"),
    pytest.param("next_sentence", {}, id="next_sentence"),
    pytest.param("sequence_classification", {"num_labels": 3}, id="seq_cls-3"),
    pytest.param("sequence_classification", {"num_labels": 1}, id="seq_cls-1"),
    pytest.param("multiple_choice", {}, id="multiple_choice"),
    pytest.param("token_classification", {"num_labels": 5}, id="token_cls"),
    pytest.param("question_answering", {}, id="qa"),
    pytest.param("causal_lm", {"is_decoder": True}, id="causal_lm"),
]

HF_ACTIVATIONS = [a for a in ACTIVATIONS if a in transformers.activations.ACT2FN]

#: Largest difference seen per comparison kind (for reporting; never asserted on).
OBSERVED: dict[str, float] = {}


# --------------------------------------------------------------------- helpers
def perturb_(model: torch.nn.Module, seed: int, scale: float = 0.2) -> torch.nn.Module:
    """Add seeded N(0, scale) noise to every parameter (tied ones once)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)
    return model


def hf_model(head: str | None, seed: int = 0, **config_kw):
    """A transformers model for ``head`` with random, perturbed weights, in eval mode."""
    torch.manual_seed(seed)
    config = transformers.BertConfig(**{**TINY, **config_kw}, attn_implementation="eager")
    model = getattr(transformers, HF_CLASSES[head][0])(config)
    return perturb_(model, seed + 1).eval()


def load(folder, head, attention, **options):
    """``bertkit.load_pretrained`` that fails on any loading warning (missing weights)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        return bertkit.load_pretrained(folder, head=head, attention=attention, **options)


LENGTHS = (9, 4, 7, 2, 9, 6)  # tokens per row: rows 1, 2, 3 and 5 end in padding


def make_batch(head, *, vocab_size=99, type_vocab_size=2, token_types=True, seed=0):
    """Right-padded inputs (6 rows of up to 9 tokens); ``(batch, 3, seq)`` for multiple choice.

    Returns the model inputs and the ``(rows, seq)`` bool mask of real tokens.
    """
    generator = torch.Generator().manual_seed(seed)
    rows, seq = len(LENGTHS), max(LENGTHS)
    mask = torch.arange(seq)[None, :] < torch.tensor(LENGTHS)[:, None]  # (rows, seq)
    ids = torch.randint(1, vocab_size, (rows, seq), generator=generator).masked_fill(~mask, 0)
    inputs = {"input_ids": ids, "attention_mask": mask.long()}
    if token_types:
        types = torch.randint(0, type_vocab_size, (rows, seq), generator=generator)
        inputs["token_type_ids"] = types.masked_fill(~mask, 0)
    if head == "multiple_choice":
        inputs = {k: v.view(2, 3, seq) for k, v in inputs.items()}
    return inputs, mask


def assert_close(kind, actual, expected, mask=None, atol=ATOL):
    """Max-abs-diff check; ``mask`` (rows, seq) keeps real tokens of per-token tensors."""
    assert actual is not None, f"{kind}: bertkit returned None"
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"{kind}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    )
    if mask is not None:
        actual, expected = actual[mask], expected[mask]
    diff = (actual.double() - expected.double()).abs().max().item()
    OBSERVED[kind] = max(OBSERVED.get(kind, 0.0), diff)
    assert diff <= atol, f"{kind}: max abs diff {diff:.3g} > {atol}"


def assert_same_layers(kind, actual, expected, mask, attention=False):
    """Per-layer tuples (hidden states or attention probabilities)."""
    assert actual is not None and len(actual) == len(expected), f"{kind}: wrong layer count"
    for a, e in zip(actual, expected, strict=True):
        if attention:  # (rows, heads, queries, keys): compare the rows of real queries
            a, e = a.transpose(1, 2), e.transpose(1, 2)
        assert_close(kind, a, e, mask)


def compare_outputs(head, ours, theirs, mask, *, attentions):
    for name, per_token in OUTPUTS[head].items():
        assert_close(name, ours[name], theirs[name], mask if per_token else None)
    assert_same_layers("hidden_states", ours.hidden_states, theirs.hidden_states, mask)
    if attentions:
        assert_same_layers("attentions", ours.attentions, theirs.attentions, mask, attention=True)


@pytest.fixture(scope="module")
def hf_checkpoint(tmp_path_factory):
    """``build(head, **config_kw) -> (transformers model, folder)``, cached per module."""
    cache = {}

    def build(head=None, *, serialization="safetensors", **config_kw):
        key = (head, serialization, tuple(sorted(config_kw.items())))
        if key not in cache:
            model = hf_model(head, **config_kw)
            folder = tmp_path_factory.mktemp("hf")
            model.save_pretrained(folder, safe_serialization=serialization == "safetensors")
            cache[key] = (model, folder)
        return cache[key]

    return build


def run_both(hf, ours, inputs, *, attentions, **extra):
    with torch.no_grad():
        theirs = hf(**inputs, **extra, output_hidden_states=True, output_attentions=attentions)
        mine = ours(**inputs, **extra, output_hidden_states=True, output_attentions=attentions)
    return mine, theirs


# --------------------------------------------------------------------- 1. heads
@pytest.mark.parametrize("token_types", [True, False], ids=["token_types", "no_token_types"])
@pytest.mark.parametrize("attention", BACKENDS)
@pytest.mark.parametrize("head, config_kw", HEAD_CASES)
def test_head_matches_transformers(hf_checkpoint, head, config_kw, attention, token_types):
    hf, folder = hf_checkpoint(head, **config_kw)
    ours = load(folder, head, attention)
    assert not ours.training
    inputs, mask = make_batch(head, token_types=token_types)
    eager = attention == "eager"
    mine, theirs = run_both(hf, ours, inputs, attentions=eager)
    compare_outputs(head, mine, theirs, mask, attentions=eager)
    if head is not None:  # the encoder output under a head is its last hidden state
        assert_close("last_hidden_state", mine.last_hidden_state, theirs.hidden_states[-1], mask)


@pytest.mark.parametrize("attention", BACKENDS)
@pytest.mark.parametrize("position_embedding_type", POSITION_EMBEDDING_TYPES)
@pytest.mark.parametrize("type_vocab_size", [1, 2, 3])
def test_encoder_variants_match_transformers(
    hf_checkpoint, position_embedding_type, type_vocab_size, attention
):
    """Position types x token-type vocabularies, through the pretraining head (pooler, MLM, NSP)."""
    config_kw = dict(
        position_embedding_type=position_embedding_type, type_vocab_size=type_vocab_size
    )
    hf, folder = hf_checkpoint("pretraining", **config_kw)
    ours = load(folder, "pretraining", attention)
    inputs, mask = make_batch("pretraining", type_vocab_size=type_vocab_size)
    eager = attention == "eager"
    mine, theirs = run_both(hf, ours, inputs, attentions=eager)
    compare_outputs("pretraining", mine, theirs, mask, attentions=eager)


@pytest.mark.parametrize("attention", BACKENDS)
@pytest.mark.parametrize("hidden_act", HF_ACTIVATIONS)
def test_activations_match_transformers(hf_checkpoint, hidden_act, attention):
    """Every activation both libraries know, in the feed-forward and the MLM transform."""
    hf, folder = hf_checkpoint("pretraining", hidden_act=hidden_act)
    ours = load(folder, "pretraining", attention)
    inputs, mask = make_batch("pretraining")
    mine, theirs = run_both(hf, ours, inputs, attentions=False)
    compare_outputs("pretraining", mine, theirs, mask, attentions=False)


@pytest.mark.parametrize("attention", BACKENDS)
def test_inputs_embeds_match_transformers(hf_checkpoint, attention):
    hf, folder = hf_checkpoint(None)
    ours = load(folder, None, attention)
    inputs, mask = make_batch(None)
    embeds = torch.randn(
        *inputs["input_ids"].shape, TINY["hidden_size"], generator=torch.Generator().manual_seed(5)
    )
    inputs = {**inputs, "input_ids": None, "inputs_embeds": embeds}
    mine, theirs = run_both(hf, ours, inputs, attentions=False)
    compare_outputs(None, mine, theirs, mask, attentions=False)


def test_common_activations_are_compared():
    assert {"gelu", "gelu_new", "relu", "silu"} <= set(HF_ACTIVATIONS)


def _head_mask(shape, seed=3):
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape, generator=generator)
    mask.view(-1)[::3] = 0.0  # switch some heads off entirely
    return mask


HEAD_MASKS = [
    pytest.param((TINY["num_attention_heads"],), id="1d"),
    pytest.param((TINY["num_hidden_layers"], TINY["num_attention_heads"]), id="2d"),
]


@pytest.mark.parametrize("position_embedding_type", POSITION_EMBEDDING_TYPES)
@pytest.mark.parametrize("shape", HEAD_MASKS)
def test_head_mask_matches_transformers(hf_checkpoint, shape, position_embedding_type):
    hf, folder = hf_checkpoint(None, position_embedding_type=position_embedding_type)
    eager = load(folder, None, "eager")
    sdpa = load(folder, None, "sdpa")
    inputs, mask = make_batch(None)
    head_mask = _head_mask(shape)
    mine, theirs = run_both(hf, eager, inputs, attentions=True, head_mask=head_mask)
    compare_outputs(None, mine, theirs, mask, attentions=True)
    # sdpa scales each head's context; for per-head multipliers that is exact.
    with torch.no_grad():
        fused = sdpa(**inputs, head_mask=head_mask, output_hidden_states=True)
    assert_close("head_mask sdpa vs eager", fused.last_hidden_state, mine.last_hidden_state, mask)
    assert_close("head_mask sdpa vs eager", fused.pooler_output, mine.pooler_output)
    # ...and the mask has an effect: without it the outputs differ.
    with torch.no_grad():
        unmasked = sdpa(**inputs).last_hidden_state
    assert (unmasked[mask] - fused.last_hidden_state[mask]).abs().max() > 1e-2


def test_head_mask_wrong_shape_raises(hf_checkpoint):
    _, folder = hf_checkpoint(None)
    model = load(folder, None, "eager")
    inputs, _ = make_batch(None)
    with pytest.raises(bertkit.InputError, match="head_mask"):
        model(**inputs, head_mask=torch.ones(3))


@pytest.mark.parametrize("head", [None, "sequence_classification"])
def test_sdpa_refuses_output_attentions(hf_checkpoint, head):
    _, folder = hf_checkpoint(head)
    model = load(folder, head, "sdpa")
    inputs, _ = make_batch(head)
    with pytest.raises(bertkit.UnsupportedOptionError, match="sdpa") as info:
        model(**inputs, output_attentions=True)
    assert "eager" in str(info.value)


# --------------------------------------------------------------------- 2. decoder
ENCODER_LENGTHS = (5, 3, 5, 1, 4, 2)


def encoder_states(seed=7, hidden_size=TINY["hidden_size"]):
    """Random encoder output ``(6, 5, H)`` and its padding mask (zeros in several rows)."""
    generator = torch.Generator().manual_seed(seed)
    states = torch.randn(
        len(ENCODER_LENGTHS), max(ENCODER_LENGTHS), hidden_size, generator=generator
    )
    mask = torch.arange(max(ENCODER_LENGTHS))[None, :] < torch.tensor(ENCODER_LENGTHS)[:, None]
    return states, mask.long()


@pytest.mark.parametrize("attention", BACKENDS)
@pytest.mark.parametrize("head_mask", [False, True], ids=["", "head_mask"])
@pytest.mark.parametrize("position_embedding_type", POSITION_EMBEDDING_TYPES)
def test_cross_attention_decoder_matches_transformers(
    hf_checkpoint, position_embedding_type, head_mask, attention
):
    hf, folder = hf_checkpoint(
        None,
        is_decoder=True,
        add_cross_attention=True,
        position_embedding_type=position_embedding_type,
    )
    ours = load(folder, None, attention)
    inputs, mask = make_batch(None)
    states, states_mask = encoder_states()
    extra = dict(encoder_hidden_states=states, encoder_attention_mask=states_mask, use_cache=False)
    if head_mask:
        extra["head_mask"] = _head_mask((TINY["num_hidden_layers"], TINY["num_attention_heads"]))
    eager = attention == "eager"
    mine, theirs = run_both(hf, ours, inputs, attentions=eager, **extra)
    compare_outputs(None, mine, theirs, mask, attentions=eager)
    if eager:
        assert_same_layers(
            "cross_attentions", mine.cross_attentions, theirs.cross_attentions, mask, attention=True
        )
    # The cross-attention really reads the encoder states.
    with torch.no_grad():
        other = ours(**inputs, **{**extra, "encoder_hidden_states": states + 1.0})
    assert (other.last_hidden_state[mask] - mine.last_hidden_state[mask]).abs().max() > 1e-3


def _chunks(seq, sizes):
    """Boundaries ``[(start, stop), ...]`` cycling through ``sizes``."""
    bounds, start, i = [], 0, 0
    while start < seq:
        stop = min(seq, start + sizes[i % len(sizes)])
        bounds.append((start, stop))
        start, i = stop, i + 1
    return bounds


def decode_incrementally(model, inputs, sizes, output, **extra):
    """Feed ``inputs`` in chunks with the growing cache; return the concatenated ``output``."""
    past, pieces = None, []
    seq = inputs["input_ids"].shape[1]
    with torch.no_grad():
        for start, stop in _chunks(seq, sizes):
            out = model(
                input_ids=inputs["input_ids"][:, start:stop],
                attention_mask=inputs["attention_mask"][:, :stop],  # covers past + new tokens
                token_type_ids=inputs["token_type_ids"][:, start:stop],
                past_key_values=past,
                use_cache=True,
                **extra,
            )
            past = out.past_key_values
            assert len(past) == TINY["num_hidden_layers"]
            assert past[0][0].shape[2] == stop  # self-attention cache grows by the chunk
            if "encoder_hidden_states" in extra:  # cross keys/values: the encoder's length
                assert (
                    len(past[0]) == 4
                    and past[0][2].shape[2] == extra["encoder_hidden_states"].shape[1]
                )
            pieces.append(out[output])
    return torch.cat(pieces, dim=1)


CHUNKINGS = [pytest.param((1,), id="one_at_a_time"), pytest.param((2, 3), id="chunks_2_3")]
DECODER_POSITIONS = ["absolute", "relative_key", "relative_key_query"]


@pytest.mark.parametrize("attention", BACKENDS)
@pytest.mark.parametrize("sizes", CHUNKINGS)
@pytest.mark.parametrize("cross", [False, True], ids=["self_only", "cross"])
@pytest.mark.parametrize("position_embedding_type", DECODER_POSITIONS)
@pytest.mark.parametrize("head", [None, "causal_lm"])
def test_cached_decoding_equals_full_forward(
    hf_checkpoint, head, position_embedding_type, cross, sizes, attention
):
    config_kw = dict(is_decoder=True, position_embedding_type=position_embedding_type)
    if cross:
        config_kw["add_cross_attention"] = True
    hf, folder = hf_checkpoint(head, **config_kw)
    model = load(folder, head, attention)
    inputs, mask = make_batch(head)
    extra = {}
    if cross:
        states, states_mask = encoder_states()
        extra = dict(encoder_hidden_states=states, encoder_attention_mask=states_mask)
    output = "logits" if head == "causal_lm" else "last_hidden_state"
    with torch.no_grad():
        full = model(**inputs, use_cache=False, **extra)
        reference = hf(**inputs, use_cache=False, **extra)
    assert full.past_key_values is None
    # The uncached forward is the one transformers computes...
    assert_close(f"decoder {output} vs transformers", full[output], reference[output], mask)
    # ...and the cache reproduces it at every real position.
    stepped = decode_incrementally(model, inputs, sizes, output, **extra)
    assert_close(f"cached {output} vs full", stepped, full[output], mask)


def test_decoder_is_causal(hf_checkpoint):
    """Changing a later token leaves earlier positions untouched (and changes later ones)."""
    _, folder = hf_checkpoint("causal_lm", is_decoder=True)
    model = load(folder, "causal_lm", "sdpa")
    inputs, _ = make_batch("causal_lm")
    changed = {**inputs, "input_ids": inputs["input_ids"].clone()}
    changed["input_ids"][:, 5] = (changed["input_ids"][:, 5] % 98) + 1
    with torch.no_grad():
        before, after = model(**inputs).logits, model(**changed).logits
    torch.testing.assert_close(before[:, :5], after[:, :5], rtol=0, atol=1e-6)
    assert (before[0, 5:] - after[0, 5:]).abs().max() > 1e-3


# --------------------------------------------------------------------- 3. the real model
@pytest.fixture(scope="module")
def real_reference(default_model_dir, sst2_sentences):
    """The first 64 SST-2 sentences in one padded batch, and transformers' outputs on them."""
    tokenizer = transformers.BertTokenizerFast.from_pretrained(default_model_dir)
    batch = tokenizer(sst2_sentences[:64], padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()  # padded
    hf = transformers.BertModel.from_pretrained(
        default_model_dir, attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        expected = hf(**batch)
    return dict(batch), expected


@pytest.mark.parametrize("attention", BACKENDS)
def test_default_model_matches_transformers(default_model_dir, real_reference, attention):
    batch, expected = real_reference
    model = load(default_model_dir, None, attention)
    with torch.no_grad():
        out = model(**batch)
    mask = batch["attention_mask"].bool()
    assert_close(
        "real last_hidden_state", out.last_hidden_state, expected.last_hidden_state, mask, REAL_ATOL
    )
    assert_close("real pooler_output", out.pooler_output, expected.pooler_output, atol=REAL_ATOL)


# --------------------------------------------------------------------- 4. round trips
def bertkit_model(head, config_kw, seed=11):
    """A model built by bertkit itself (not loaded from transformers), perturbed, in eval mode."""
    torch.manual_seed(seed)
    hf_kw = dict(config_kw)
    options = {}
    if "num_labels" in hf_kw:
        options["num_labels"] = hf_kw.pop("num_labels")
    config = bertkit.BertConfig(**{**TINY, **hf_kw})
    if head is None:
        model = bertkit.BertModel(config, attention="eager")
    else:
        model = bertkit.BertTaskModel(
            config, BUILTIN_HEADS[head], head, attention="eager", **options
        )
    return perturb_(model, seed + 1).eval()


@pytest.mark.parametrize("head, config_kw", HEAD_CASES)
def test_bertkit_folder_loads_in_transformers(tmp_path, head, config_kw):
    ours = bertkit_model(head, config_kw)
    ours.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [
        HF_CLASSES[head][0]
    ]
    inputs, mask = make_batch(head)
    with torch.no_grad():
        mine = ours(**inputs, output_hidden_states=True, output_attentions=True)
    class_name, auto_name = HF_CLASSES[head]
    for loader_name in (class_name, auto_name):
        loader = getattr(transformers, loader_name)
        theirs_model, info = loader.from_pretrained(
            tmp_path, output_loading_info=True, attn_implementation="eager"
        )
        assert type(theirs_model).__name__ == class_name
        assert info["missing_keys"] in ([], set()), info
        assert info["unexpected_keys"] in ([], set()), info
        assert info["mismatched_keys"] in ([], set()), info
        with torch.no_grad():
            theirs = theirs_model.eval()(
                **inputs, output_hidden_states=True, output_attentions=True
            )
        compare_outputs(head, mine, theirs, mask, attentions=True)
    # ...and bertkit reads its own folder back bit for bit.
    again = load(tmp_path, head, "eager")
    with torch.no_grad():
        reread = again(**inputs)
    for name in OUTPUTS[head]:
        assert torch.equal(reread[name], mine[name]), name


@pytest.mark.parametrize("head", [None, "masked_lm", "sequence_classification"])
def test_sharded_save_reloads(tmp_path, head):
    config_kw = {"num_labels": 3} if head == "sequence_classification" else {}
    ours = bertkit_model(head, config_kw)
    ours.save_pretrained(tmp_path, max_shard_size=20_000)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and all((tmp_path / s).is_file() for s in shards)
    assert not (tmp_path / "model.safetensors").exists()
    inputs, _ = make_batch(head)
    again = load(tmp_path, head, "eager")
    theirs_model = getattr(transformers, HF_CLASSES[head][0]).from_pretrained(
        tmp_path, attn_implementation="eager"
    )
    with torch.no_grad():
        mine, reread, theirs = ours(**inputs), again(**inputs), theirs_model.eval()(**inputs)
    for name in OUTPUTS[head]:
        assert torch.equal(reread[name], mine[name]), name
        assert_close(f"sharded {name}", theirs[name], mine[name])


@pytest.mark.parametrize("head", [None, "pretraining", "sequence_classification"])
def test_pytorch_bin_folder_loads(hf_checkpoint, head):
    config_kw = {"num_labels": 3} if head == "sequence_classification" else {}
    hf, folder = hf_checkpoint(head, serialization="bin", **config_kw)
    assert (folder / "pytorch_model.bin").is_file()
    assert not (folder / "model.safetensors").exists()
    ours = load(folder, head, "eager")
    inputs, mask = make_batch(head)
    mine, theirs = run_both(hf, ours, inputs, attentions=True)
    compare_outputs(head, mine, theirs, mask, attentions=True)


def _legacy_key(key: str, *, gamma_beta: bool, prefix: str) -> str:
    if gamma_beta:
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        )
    if prefix == "strip" and key.startswith("bert."):
        key = key[len("bert.") :]
    if prefix == "add" and key.startswith(("embeddings.", "encoder.", "pooler.")):
        key = "bert." + key
    return key


@pytest.mark.parametrize(
    "head, gamma_beta, prefix",
    [
        (None, True, "keep"),
        (None, True, "add"),
        (None, False, "add"),
        ("pretraining", True, "keep"),
        ("pretraining", True, "strip"),
        ("masked_lm", True, "strip"),
        ("sequence_classification", False, "strip"),
        ("question_answering", True, "strip"),
    ],
)
def test_legacy_key_names_load(hf_checkpoint, tmp_path, head, gamma_beta, prefix):
    from safetensors.torch import load_file, save_file

    _, folder = hf_checkpoint(head)
    state = load_file(str(folder / "model.safetensors"))
    legacy = {_legacy_key(k, gamma_beta=gamma_beta, prefix=prefix): v for k, v in state.items()}
    assert set(legacy) != set(state)
    # Old checkpoints also carry the position-id buffer.
    prefixed = any(k.startswith("bert.") for k in legacy)
    legacy[("bert." if prefixed else "") + "embeddings.position_ids"] = torch.arange(
        TINY["max_position_embeddings"]
    )[None, :]
    save_file(legacy, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(folder / "config.json", tmp_path / "config.json")
    reference, renamed = load(folder, head, "eager"), load(tmp_path, head, "eager")
    inputs, _ = make_batch(head)
    with torch.no_grad():
        expected, actual = reference(**inputs), renamed(**inputs)
    for name in OUTPUTS[head]:
        assert torch.equal(actual[name], expected[name]), name


# --------------------------------------------------------------------- 5. loading report
def test_new_head_on_default_model_warns(default_model_dir):
    with pytest.warns(UserWarning, match=r"classifier\.weight") as record:
        model = bertkit.load_pretrained(default_model_dir, head="sequence_classification")
    message = " ".join(str(w.message) for w in record)
    assert "newly initialised" in message
    assert model.head.classifier.weight.shape == (2, 384)


def test_default_model_without_head_loads_silently(default_model_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bertkit.load_pretrained(default_model_dir)
