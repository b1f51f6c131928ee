"""The plugin system: registration through hooks, conflicts, unknown names, entry points."""

import importlib.metadata
import sys

import pytest
import torch

import bertkit
from bertkit import BertConfig, PluginError, UnknownNameError, plugins
from bertkit.attention import eager_attention
from bertkit.heads import Head

TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=24, max_position_embeddings=32)


def test_builtins_are_registered_through_the_hooks(fresh_plugins):
    assert plugins.names("attention")[:2] == ["sdpa", "eager"]
    assert set(plugins.names("head")) >= {
        "pretraining", "masked_lm", "next_sentence", "sequence_classification",
        "multiple_choice", "token_classification", "question_answering", "causal_lm",
    }
    assert "wordpiece" in plugins.names("tokenizer")
    assert plugins.names("model_source")[:2] == ["default", "folder"]
    owners = {owner for _, owner in plugins.table("attention").values()}
    assert owners == {"bertkit.default_plugins.attention"}


class CountingAttention:
    """An attention backend plugin: eager attention that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, query, key, value, **kwargs):
        self.calls += 1
        return eager_attention(query, key, value, **kwargs)


class MeanPoolHead(Head):
    """A plugin head: mean of the token states, then a linear layer."""

    architecture = "BertModel"
    uses_pooler = False

    def __init__(self, config):
        super().__init__(config)
        self.scorer = torch.nn.Linear(config.hidden_size, 1)

    def forward(self, outputs, inputs):
        mask = inputs["attention_mask"].unsqueeze(-1).to(outputs.last_hidden_state.dtype)
        pooled = (outputs.last_hidden_state * mask).sum(1) / mask.sum(1)
        return {"score": self.scorer(pooled).squeeze(-1)}


def make_plugin(attention, head_class, suffix=""):
    class Plugin:
        @bertkit.hookimpl
        def bertkit_register_attention_backends(self, register):
            register("counting" + suffix, attention)

        @bertkit.hookimpl
        def bertkit_register_heads(self, register):
            register("mean_score" + suffix, head_class)

    return Plugin()


@pytest.fixture
def tiny_folder(tmp_path):
    torch.manual_seed(0)
    bertkit.BertModel(BertConfig(**TINY)).save_pretrained(tmp_path)
    return tmp_path


def test_plugin_backend_and_head_used_by_name(fresh_plugins, tiny_folder):
    attention = CountingAttention()
    plugins.register_plugin(make_plugin(attention, MeanPoolHead), name="test-plugin")
    model = bertkit.load_pretrained(tiny_folder, head="mean_score", attention="counting")
    ids = torch.tensor([[1, 5, 7, 2], [1, 9, 2, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    out = model(input_ids=ids, attention_mask=mask)
    assert out.score.shape == (2,)
    assert attention.calls == TINY["num_hidden_layers"]
    # the plugin backend gives the same encoder states as the built-in eager one
    reference = bertkit.load_pretrained(tiny_folder, attention="eager")
    ref = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(out.last_hidden_state, ref, atol=1e-6, rtol=0)


def test_second_plugin_claiming_a_name_is_refused(fresh_plugins):
    plugins.register_plugin(make_plugin(CountingAttention(), MeanPoolHead), name="first-plugin")
    plugins.register_plugin(make_plugin(CountingAttention(), MeanPoolHead), name="second-plugin")
    with pytest.raises(PluginError) as info:
        plugins.get("attention", "counting")
    message = str(info.value)
    assert "'counting'" in message and "first-plugin" in message and "second-plugin" in message


def test_plugin_cannot_take_a_builtin_name(fresh_plugins):
    class Hijack:
        @bertkit.hookimpl
        def bertkit_register_attention_backends(self, register):
            register("sdpa", eager_attention)

    plugins.register_plugin(Hijack(), name="hijacker")
    with pytest.raises(PluginError, match="bertkit.default_plugins.attention.*hijacker"):
        plugins.names("attention")


def test_isolation_drops_test_plugins(tiny_folder):
    with plugins.isolated():
        plugins.register_plugin(make_plugin(CountingAttention(), MeanPoolHead), name="temp")
        assert "counting" in plugins.names("attention")
    assert "counting" not in plugins.names("attention")


def test_unregister(fresh_plugins):
    plugin = make_plugin(CountingAttention(), MeanPoolHead)
    plugins.register_plugin(plugin, name="temp")
    assert "mean_score" in plugins.names("head")
    plugins.unregister_plugin(name="temp")
    assert "mean_score" not in plugins.names("head")


@pytest.mark.parametrize("kind, name, known", [
    ("head", "sentiment", "'sequence_classification'"),
    ("attention", "flash", "'sdpa', 'eager'"),
    ("tokenizer", "sentencepiece", "'wordpiece'"),
])
def test_unknown_name_lists_known_ones(fresh_plugins, kind, name, known):
    with pytest.raises(UnknownNameError) as info:
        plugins.get(kind, name)
    assert repr(name) in str(info.value) and known in str(info.value)


def test_unknown_head_and_backend_in_load_pretrained(fresh_plugins, tiny_folder):
    with pytest.raises(UnknownNameError, match="Unknown head 'sentiment'.*'masked_lm'"):
        bertkit.load_pretrained(tiny_folder, head="sentiment")
    with pytest.raises(UnknownNameError, match="Unknown attention backend 'flash'.*'sdpa', 'eager'"):
        bertkit.load_pretrained(tiny_folder, attention="flash")


# ------------------------------------------------------------------ entry points
class _FakeDist(importlib.metadata.Distribution):
    """A distribution that exists only in memory and declares one bertkit entry point."""

    def __init__(self, module_name):
        self._module_name = module_name

    def read_text(self, filename):
        if filename == "METADATA":
            return "Metadata-Version: 2.1\nName: bertkit-fake-plugin\nVersion: 1.0\n"
        if filename == "entry_points.txt":
            return f"[bertkit]\nfake = {self._module_name}\n"
        return None

    def locate_file(self, path):
        return path


@pytest.fixture
def fake_entry_point(monkeypatch, tmp_path):
    module = tmp_path / "bertkit_fake_plugin.py"
    module.write_text(
        "import bertkit\n"
        "from bertkit.attention import eager_attention\n"
        "LOADS = []\n"
        "LOADS.append(1)\n"
        "@bertkit.hookimpl\n"
        "def bertkit_register_attention_backends(register):\n"
        "    register('from_entry_point', eager_attention)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = _FakeDist("bertkit_fake_plugin")
    original = importlib.metadata.distributions
    monkeypatch.setattr(importlib.metadata, "distributions",
                        lambda **kw: list(original(**kw)) + [dist])
    yield
    sys.modules.pop("bertkit_fake_plugin", None)


def test_entry_point_plugins_load_lazily_and_once(fake_entry_point, monkeypatch):
    monkeypatch.delenv(plugins.AUTOLOAD_ENV, raising=False)
    with plugins.isolated(autoload=True):
        assert "from_entry_point" in plugins.names("attention")
        plugins.load_plugins()
        plugins.load_plugins()
        assert sys.modules["bertkit_fake_plugin"].LOADS == [1]


def test_environment_switch_turns_autoload_off(fake_entry_point, monkeypatch):
    monkeypatch.setenv(plugins.AUTOLOAD_ENV, "1")
    with plugins.isolated(autoload=True):
        assert "from_entry_point" not in plugins.names("attention")
        assert "sdpa" in plugins.names("attention")
