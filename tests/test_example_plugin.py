"""The separately installed plugin in plugins/bertkit-example, found through its entry point."""

import importlib.metadata

import pytest
import torch

import bertkit
from bertkit import BertConfig, BertModel, plugins

pytest.importorskip("bertkit_example", reason="pip install ./plugins/bertkit-example")


def test_entry_point_is_declared():
    eps = importlib.metadata.entry_points(group="bertkit")
    assert "bertkit_example" in {ep.value for ep in eps}


@pytest.fixture
def autoloaded(monkeypatch):
    monkeypatch.delenv(plugins.AUTOLOAD_ENV, raising=False)
    with plugins.isolated(autoload=True):
        yield


def test_plugin_names_arrive_by_autoload(autoloaded):
    assert "chunked" in plugins.names("attention")
    assert "mean_pooled_classification" in plugins.names("head")
    owner = plugins.table("attention")["chunked"][1]
    assert owner == "example"  # the entry point's name


def test_chunked_backend_equals_eager_across_chunks(autoloaded, tmp_path):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=20, max_position_embeddings=200,
                        position_embedding_type="relative_key")
    BertModel(config).save_pretrained(tmp_path)
    ids = torch.randint(0, 60, (2, 150))  # more than one 64-query chunk
    mask = torch.ones_like(ids)
    mask[1, 100:] = 0
    eager = bertkit.load_pretrained(tmp_path, attention="eager")
    chunked = bertkit.load_pretrained(tmp_path, attention="chunked")
    with torch.no_grad():
        a = eager(input_ids=ids, attention_mask=mask, output_attentions=True)
        b = chunked(input_ids=ids, attention_mask=mask, output_attentions=True)
    torch.testing.assert_close(b.last_hidden_state, a.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.attentions[1], a.attentions[1], atol=1e-6, rtol=0)


def test_plugin_head_trains_saves_and_loads(autoloaded, tmp_path):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=20, max_position_embeddings=32)
    BertModel(config).save_pretrained(tmp_path / "base")
    with pytest.warns(UserWarning, match="classifier.weight"):
        model = bertkit.load_pretrained(tmp_path / "base", head="mean_pooled_classification",
                                        num_labels=3)
    ids = torch.randint(0, 60, (4, 10))
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert logits.shape == (4, 3)
    model.save_pretrained(tmp_path / "saved")
    again = bertkit.load_pretrained(tmp_path / "saved", head="mean_pooled_classification")
    torch.testing.assert_close(
        again(input_ids=ids, attention_mask=torch.ones_like(ids)).logits, logits, atol=0, rtol=0
    )
