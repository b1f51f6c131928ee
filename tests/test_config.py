import json

import pytest

from bertkit import BertConfig, ConfigError
from bertkit.config import ACTIVATIONS


def test_defaults_are_bert_base():
    config = BertConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert config.head_dim == 64
    assert config.num_labels == 2


def test_round_trip_keeps_unknown_keys(tmp_path):
    data = {
        "hidden_size": 64,
        "num_attention_heads": 4,
        "id2label": {"0": "neg", "1": "neu", "2": "pos"},
        "label2id": {"neg": 0, "neu": 1, "pos": 2},
        "problem_type": "single_label_classification",
        "architectures": ["BertForSequenceClassification"],
        "some_future_key": [1, 2, 3],
    }
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = BertConfig.from_json_file(tmp_path)
    assert config.hidden_size == 64
    assert config.num_labels == 3
    assert config.id2label == {0: "neg", 1: "neu", 2: "pos"}
    config.save(tmp_path / "out")
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    for key, value in data.items():
        assert written[key] == value
    assert written["model_type"] == "bert"
    assert BertConfig.from_json_file(tmp_path / "out") == config


def test_reads_every_field_of_a_hf_config(tmp_path):
    pytest.importorskip("transformers")
    from transformers import BertConfig as HFConfig

    hf = HFConfig(
        hidden_size=48, num_attention_heads=6, hidden_act="gelu_new", type_vocab_size=3,
        position_embedding_type="relative_key_query", is_decoder=True, add_cross_attention=True,
        classifier_dropout=0.2, layer_norm_eps=1e-7, pad_token_id=1,
    )
    hf.save_pretrained(tmp_path)
    config = BertConfig.from_json_file(tmp_path)
    for name in ("hidden_size", "num_attention_heads", "hidden_act", "type_vocab_size",
                 "position_embedding_type", "is_decoder", "add_cross_attention",
                 "classifier_dropout", "layer_norm_eps", "pad_token_id", "vocab_size",
                 "intermediate_size", "max_position_embeddings", "initializer_range"):
        assert getattr(config, name) == getattr(hf, name), name
    # and transformers reads ours back
    config.save(tmp_path / "ours")
    back = HFConfig.from_pretrained(tmp_path / "ours")
    assert back.position_embedding_type == "relative_key_query"
    assert back.num_labels == hf.num_labels


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_size": 100, "num_attention_heads": 12}, "must be divisible by num_attention_heads"),
        ({"hidden_act": "gleu"}, "hidden_act must be one of"),
        ({"position_embedding_type": "rotary"}, "position_embedding_type must be one of"),
        ({"num_hidden_layers": 0}, "num_hidden_layers must be a positive integer"),
        ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob must be a float in [0, 1)"),
        ({"pad_token_id": 40000}, "pad_token_id must be in [0, vocab_size=30522)"),
        ({"add_cross_attention": True}, "needs is_decoder=True"),
        ({"layer_norm_eps": 0}, "layer_norm_eps must be a positive number"),
    ],
)
def test_impossible_values_raise(kwargs, message):
    with pytest.raises(ConfigError) as info:
        BertConfig(**kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_activation_message_lists_allowed():
    with pytest.raises(ConfigError) as info:
        BertConfig(hidden_act="gleu")
    for name in ("gelu", "relu", "silu", "gelu_new"):
        assert name in str(info.value)
    assert set(ACTIVATIONS) >= {"gelu", "relu", "silu", "gelu_new"}


def test_missing_config_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="No config.json"):
        BertConfig.from_json_file(tmp_path)


def test_not_a_bert_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConfigError, match="'gpt2' model"):
        BertConfig.from_json_file(tmp_path)


def test_set_labels():
    config = BertConfig()
    config.set_labels(["a", "b", "c"])
    assert config.num_labels == 3
    assert config.extras["label2id"] == {"a": 0, "b": 1, "c": 2}
    config.set_labels(5)
    assert config.id2label[4] == "LABEL_4"
