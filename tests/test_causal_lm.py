"""BertCausalLM: training next-token prediction, generation with the key/value cache, perplexity.

Most tests use the tiny random checkpoint of ``estimator_fixtures`` (2 layers, 32 wide, a
~90-token vocabulary); one fits the real default model on a slice of WikiText-2.
"""

# ruff: noqa: F811  (fixtures imported from estimator_fixtures are test arguments)

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from estimator_fixtures import one_torch_thread, tiny_model_dir  # noqa: F401
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

import bertkit
from bertkit import InputError
from bertkit.estimators._causal_lm import BertCausalLM, _filter_logits, _prediction_mask

#: Three sentences the tiny model learns by heart (each prompt below picks one).
SENTENCES = ["the cat sat on the mat", "a dog ran and sat", "the film was very good fun"]
TINY = dict(max_length=32, batch_size=8, device="cpu", random_state=0)
MEMORISE = dict(TINY, learning_rate=1e-2, n_epochs=25, warmup_ratio=0.0)


def _quiet_fit(est, X):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no language-model head weights")
        return est.fit(X)


@pytest.fixture(scope="module")
def memorised(tiny_model_dir):
    """The tiny checkpoint trained on the three sentences, 8 copies each (read-only)."""
    return _quiet_fit(BertCausalLM(model=tiny_model_dir, **MEMORISE), SENTENCES * 8)


@pytest.fixture(scope="module")
def untrained(tiny_model_dir):
    """The tiny checkpoint as a decoder after one step at a negligible learning rate."""
    return _quiet_fit(BertCausalLM(model=tiny_model_dir, **TINY, learning_rate=1e-12, n_epochs=1),
                      SENTENCES)


# ============================================================== what fit learns
def test_memorises_sentences_and_greedy_continuation_reproduces_them(memorised):
    out = memorised.generate(["the cat", "a dog", "the film was"], max_new_tokens=10)
    assert out == [" sat on the mat", " ran and sat", " very good fun"]
    ids = memorised.generate_ids(["the cat"], max_new_tokens=10)[0]
    sep = memorised.tokenizer_.sep_token_id
    assert ids[-1] == sep and len(ids) == 5  # sat on the mat [SEP]: stopped at [SEP]


def test_perplexity_drops_after_fit(memorised, untrained):
    before, after = untrained.perplexity(SENTENCES), memorised.perplexity(SENTENCES)
    assert before > 30  # a random decoder over ~90 tokens
    assert after < 1.3  # the memorised sentences are (almost) certain
    losses = [h["train_loss"] for h in memorised.history_]
    assert losses[-1] < losses[0] / 5


def test_score_is_the_mean_log_likelihood(memorised):
    texts = SENTENCES + ["mat the on sat cat the"]
    assert memorised.score(texts) == pytest.approx(-math.log(memorised.perplexity(texts)), rel=1e-6)
    per_text = memorised.score_samples(texts)
    assert per_text.shape == (4,)
    assert per_text[-1] < per_text[:3].min() - 1.0  # the scrambled sentence is far less likely
    # score pools tokens: a token-weighted mean of the per-text values
    counts = np.array([len(memorised.tokenizer_.encode(t)) - 1 for t in texts])
    assert memorised.score(texts) == pytest.approx(np.average(per_text, weights=counts), rel=1e-6)


def test_perplexity_by_hand(untrained):
    """exp(mean NLL) of every token after [CLS], recomputed with the model directly."""
    text = "the cat sat"
    ids = torch.tensor([untrained.tokenizer_.encode(text)])
    with torch.no_grad():
        logits = untrained.model_(input_ids=ids).logits[0, :-1]
    nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:])
    assert untrained.perplexity([text]) == pytest.approx(math.exp(float(nll)), rel=1e-5)


def test_decoder_is_causal(untrained):
    """A prefix's likelihood does not depend on what follows it."""
    model, tok = untrained.model_, untrained.tokenizer_
    a, b = tok.encode("the cat sat on"), tok.encode("the cat ran away")
    with torch.no_grad():
        la = model(input_ids=torch.tensor([a])).logits[0, :3]
        lb = model(input_ids=torch.tensor([b])).logits[0, :3]
    assert model.config.is_decoder
    torch.testing.assert_close(la, lb, rtol=0, atol=1e-5)


def test_untrained_head_warns(tiny_model_dir):
    with pytest.warns(UserWarning, match=r"BertCausalLM: .* has no language-model head weights"):
        BertCausalLM(model=tiny_model_dir, **TINY, n_epochs=1).fit(SENTENCES)


def test_from_scratch_config(tiny_model_dir):
    config = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 32, "max_position_embeddings": 64}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = BertCausalLM(model=tiny_model_dir, config=config, **MEMORISE).fit(SENTENCES * 8)
    assert not [w for w in caught if "head" in str(w.message)]  # random weights by request
    cfg = lm.model_.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.max_position_embeddings) == (16, 1, 64)
    assert cfg.vocab_size == len(lm.tokenizer_) and cfg.is_decoder
    assert lm.history_[-1]["train_loss"] < lm.history_[0]["train_loss"] / 2
    # the config is the starting point, not a checkpoint: same seed, same weights
    again = BertCausalLM(model=tiny_model_dir, config=config, **dict(MEMORISE, n_epochs=1))
    other = BertCausalLM(model=tiny_model_dir, config=config, **dict(MEMORISE, n_epochs=1))
    torch.testing.assert_close(again.fit(SENTENCES).model_.state_dict(),
                               other.fit(SENTENCES).model_.state_dict())


def test_validation_split_scores_each_epoch(tiny_model_dir):
    lm = _quiet_fit(BertCausalLM(model=tiny_model_dir, **dict(MEMORISE, n_epochs=3),
                                 validation_fraction=0.25), SENTENCES * 4)
    assert [h["epoch"] for h in lm.history_] == [1, 2, 3]
    for record in lm.history_:
        assert record["valid_score"] == -record["valid_loss"] and record["valid_loss"] > 0
    assert lm.best_epoch_ == 1 + int(np.argmin([h["valid_loss"] for h in lm.history_]))


# ============================================================== windows
def test_prediction_mask():
    np.testing.assert_array_equal(_prediction_mask(5, True, True, 2), [1, 1, 1, 1])
    np.testing.assert_array_equal(_prediction_mask(6, False, True, 2), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(_prediction_mask(6, True, False, 2), [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(_prediction_mask(6, False, False, 2), [0, 0, 1, 1, 0])


def test_windows_predict_every_token_once(untrained):
    text = " ".join(["the cat sat on the mat"] * 12)  # 72 word tokens: several windows of 32
    n_tokens = len(untrained.tokenizer_.encode(text))  # [CLS] + 72 + [SEP]
    windowed = clone(untrained).set_params(long_text="window", stride=8)
    for attr in ("model_", "tokenizer_", "n_text_columns_"):
        setattr(windowed, attr, getattr(untrained, attr))
    assert len(windowed._encode(windowed._check_X([text], fit=False)).input_ids) >= 3
    total, count = windowed._nll([text])
    assert count.tolist() == [n_tokens - 1]  # each token after [CLS] once, [SEP] included
    _, truncated = untrained._nll([text])
    assert truncated.tolist() == [32 - 1]


def test_fit_with_windows(tiny_model_dir):
    long = " ".join(SENTENCES * 4)
    lm = _quiet_fit(BertCausalLM(model=tiny_model_dir, **dict(MEMORISE, n_epochs=20),
                                 long_text="window", stride=8), [long] * 4 + SENTENCES * 4)
    assert lm.history_[-1]["train_loss"] < lm.history_[0]["train_loss"] / 3
    assert lm.generate(["the cat"], max_new_tokens=4) == [" sat on the mat"]


# ============================================================== generation
PROMPTS = ["the", "a dog ran and", "", "very good fun and the cat sat on"]


def test_cached_generation_equals_full_recompute(untrained, memorised):
    for lm in (untrained, memorised):
        cached = lm.generate_ids(PROMPTS, max_new_tokens=25)
        full = lm.generate_ids(PROMPTS, max_new_tokens=25, use_cache=False)
        assert cached == full
    assert max(len(ids) for ids in untrained.generate_ids(PROMPTS, max_new_tokens=25)) > 10


def test_cache_feeds_one_token_per_step(untrained):
    calls = []

    def spy(module, args, kwargs):
        calls.append((tuple(kwargs["input_ids"].shape), kwargs.get("past_key_values") is not None))

    handle = untrained.model_.bert.register_forward_pre_hook(spy, with_kwargs=True)
    try:
        new = untrained.generate_ids(["the cat", "a"], max_new_tokens=6)
    finally:
        handle.remove()
    steps = max(len(ids) for ids in new)
    assert steps >= 3 and len(calls) == steps
    assert calls[0] == ((2, 3), False)  # the padded prompts, once
    assert calls[1:] == [((2, 1), True)] * (steps - 1)  # then the newest token with the cache


def test_left_padded_batch_equals_one_prompt_at_a_time(untrained):
    together = untrained.generate_ids(PROMPTS, max_new_tokens=15)
    alone = [untrained.generate_ids([p], max_new_tokens=15)[0] for p in PROMPTS]
    assert together == alone
    small = clone(untrained).set_params(batch_size=1)
    for attr in ("model_", "tokenizer_", "n_text_columns_"):
        setattr(small, attr, getattr(untrained, attr))
    assert small.generate_ids(PROMPTS, max_new_tokens=15) == together


def test_top_k_1_sampling_equals_greedy(untrained):
    greedy = untrained.generate_ids(PROMPTS, max_new_tokens=20)
    sampled = untrained.generate_ids(PROMPTS, max_new_tokens=20, do_sample=True, top_k=1,
                                     temperature=0.7, random_state=3)
    assert sampled == greedy


def test_sampling_is_deterministic_with_random_state(untrained):
    def sample(seed, **kw):
        return untrained.generate(PROMPTS, max_new_tokens=20, do_sample=True, random_state=seed,
                                  **kw)

    assert sample(0) == sample(0)
    assert sample(0) != sample(1)
    assert sample(5, top_p=0.9, top_k=20) == sample(5, top_p=0.9, top_k=20)
    assert sample(0) != untrained.generate(PROMPTS, max_new_tokens=20)


def test_top_p_masking_on_hand_made_logits():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.25, 0.25, 0.4, 0.1]])
    logits = probs.log()
    kept = lambda p: torch.isfinite(_filter_logits(logits, top_p=p)).int().tolist()  # noqa: E731
    assert kept(0.35) == [[0, 1, 0, 0], [0, 0, 1, 0]]
    assert kept(0.75) == [[0, 1, 0, 1], [1, 1, 1, 0]]  # 0.5+0.3 >= 0.75; 0.4+0.25+0.25
    assert kept(0.85) == [[0, 1, 1, 1], [1, 1, 1, 0]]
    assert kept(1.0) == [[1, 1, 1, 1], [1, 1, 1, 1]]
    filtered = _filter_logits(logits, top_p=0.75)
    torch.testing.assert_close(filtered[0, [1, 3]], logits[0, [1, 3]])  # kept logits unchanged
    top2 = torch.isfinite(_filter_logits(logits, top_k=2)).int().tolist()
    assert top2 == [[0, 1, 0, 1], [1, 1, 1, 0]]  # a tie at the boundary keeps both
    assert torch.isfinite(_filter_logits(logits, top_k=3, top_p=0.35)).int().tolist() == [
        [0, 1, 0, 0], [0, 0, 1, 0]]


def test_temperature_sharpens_sampling(untrained):
    cold = untrained.generate_ids(PROMPTS, max_new_tokens=20, do_sample=True, temperature=1e-4,
                                  random_state=0)
    assert cold == untrained.generate_ids(PROMPTS, max_new_tokens=20)


# ============================================================== scikit-learn contract
def test_clone_and_params_round_trip():
    params = {"model": "/nonexistent/model", "config": {"hidden_size": 64}, "max_length": 48,
              "learning_rate": 3e-4, "n_epochs": 7, "long_text": "window", "stride": 4,
              "random_state": 3}
    lm = BertCausalLM(**params)
    assert {k: lm.get_params()[k] for k in params} == params
    cloned = clone(lm)
    assert cloned is not lm and cloned.get_params() == lm.get_params()
    assert lm.set_params(batch_size=2) is lm and clone(lm).get_params()["batch_size"] == 2
    defaults = BertCausalLM().get_params()
    assert defaults["model"] == "default" and defaults["config"] is None
    assert [defaults[k] for k in ("attention", "device", "precision")] == ["sdpa", "auto", "auto"]


@pytest.mark.parametrize("check", [
    "check_no_attributes_set_in_init", "check_get_params_invariance", "check_set_params",
    "check_parameters_default_constructible", "check_estimator_cloneable", "check_mixin_order",
    "check_do_not_raise_errors_in_init_or_set_params",
])
def test_sklearn_checks_that_need_no_numeric_data(check):
    getattr(estimator_checks, check)("BertCausalLM", BertCausalLM(model="/nonexistent/model"))


@pytest.mark.parametrize(
    "method", ["generate", "generate_ids", "perplexity", "score", "score_samples"]
)
def test_not_fitted_error(method):
    with pytest.raises(NotFittedError, match="This BertCausalLM instance is not fitted yet"):
        getattr(BertCausalLM(model="/nonexistent/model"), method)(["a text"])


@pytest.mark.parametrize(("params", "name", "got"), [
    ({"n_epochs": 0}, "n_epochs", "Got 0"),
    ({"config": "small"}, "config", "Got 'small'"),
    ({"long_text": "chunk"}, "long_text", "Got 'chunk'"),
    ({"max_length": 4}, "max_length", "Got 4"),
])
def test_invalid_params_name_the_parameter(params, name, got):
    with pytest.raises(InvalidParameterError) as info:
        BertCausalLM(model="/nonexistent/model", **params).fit(SENTENCES)
    assert f"The '{name}' parameter of BertCausalLM must be" in str(info.value)
    assert got in str(info.value)


def test_cross_val_score_maximises_log_likelihood(tiny_model_dir):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no language-model head weights")
        scores = cross_val_score(BertCausalLM(model=tiny_model_dir, **dict(TINY, n_epochs=1)),
                                 SENTENCES * 2, cv=2)
    assert scores.shape == (2,) and np.all(scores < 0) and np.all(np.isfinite(scores))


# ============================================================== bad input
@pytest.mark.parametrize(("prompts", "kwargs", "message"), [
    ([], {}, r"BertCausalLM.generate got an empty list of prompts: pass at least one str"),
    (["the", 5], {}, r"every prompt to be a str: prompt 1 is a int \(5\)\. Convert it with str"),
    ([None], {}, r"prompt 0 is a NoneType"),
    ("the cat", {}, r"expects a list of prompts, got a single str\. Wrap it in a list: \['the"),
    (42, {}, r"expects a list .* of prompt strings\. Got int"),
    (["the"], {"max_new_tokens": 0},
     r"'max_new_tokens' argument of BertCausalLM.generate must be an int >= 1\. Got 0"),
    (["the"], {"max_new_tokens": 2.5}, r"'max_new_tokens' .* Got 2.5"),
    (["the"], {"max_new_tokens": True}, r"'max_new_tokens' .* Got True"),
    (["the"], {"do_sample": True, "top_p": 0.0}, r"'top_p' argument .* \(0, 1\] or None\. Got 0.0"),
    (["the"], {"do_sample": True, "top_k": 0}, r"'top_k' argument .* int >= 1 or None\. Got 0"),
    (["the"], {"do_sample": True, "temperature": 0}, r"'temperature' argument .* > 0\. Got 0"),
    (["the"], {"eos_token_id": 10**6}, r"'eos_token_id' argument .* token id in \[0, \d+\)"),
    (["the"], {"max_new_tokens": 200}, r"prompt 0 has 2 tokens .* max_new_tokens=200 .* "
                                       r"max_position_embeddings \(128\)\. Shorten the prompt"),
])
def test_bad_generate_input(untrained, prompts, kwargs, message):
    with pytest.raises(InputError, match=message):
        untrained.generate(prompts, **kwargs)


def test_greedy_with_sampling_options_warns(untrained):
    with pytest.warns(UserWarning, match="apply to sampling only; they are ignored with do_sample"):
        untrained.generate(["the"], max_new_tokens=2, top_k=5)


def test_bad_fit_input(tiny_model_dir):
    lm = BertCausalLM(model=tiny_model_dir, **TINY, n_epochs=1)
    with pytest.raises(InputError, match=r"BertCausalLM expects text: X row 1 is a int \(3\)"):
        lm.fit(["the cat", 3])
    with pytest.raises(InputError, match=r"BertCausalLM takes 1 column of texts\. Got 2 columns"):
        lm.fit([["the cat", "a dog"], ["the", "a"]])
    with pytest.raises(InputError, match=r"BertCausalLM got an empty X"):
        lm.fit([])
    with pytest.raises(InputError, match=r"'config' parameter of BertCausalLM has unknown keys "
                                         r"\['layers'\]\. Allowed keys are BertConfig's fields"):
        clone(lm).set_params(config={"layers": 2}).fit(SENTENCES)
    with pytest.raises(InputError, match=r"'max_length' parameter of BertCausalLM \(256\) exceeds "
                                         r"the model's max_position_embeddings \(128\)"):
        clone(lm).set_params(max_length=256).fit(SENTENCES)
    with pytest.raises(InputError, match=r"sets vocab_size=10, but the tokenizer .* has \d+"):
        clone(lm).set_params(config={"vocab_size": 10}).fit(SENTENCES)


# ============================================================== persistence
_RELOAD = textwrap.dedent("""
    import json, pickle, sys
    from pathlib import Path
    import bertkit
    import bertkit.estimators._causal_lm  # registers BertCausalLM for bertkit.load

    root = Path(sys.argv[1])
    prompts = json.loads((root / "prompts.json").read_text())
    out = {}
    for how, lm in (("pickle", pickle.loads((root / "lm.pkl").read_bytes())),
                    ("load", bertkit.load(root / "saved"))):
        assert type(lm).__name__ == "BertCausalLM", type(lm)
        out[how] = {
            "greedy": lm.generate(prompts, max_new_tokens=12),
            "sampled": lm.generate(prompts, max_new_tokens=12, do_sample=True, top_p=0.9,
                                   random_state=7),
            "perplexity": lm.perplexity(prompts[:2]),
            "params": {k: repr(v) for k, v in lm.get_params().items()},
            "history": lm.history_,
        }
    (root / "out.json").write_text(json.dumps(out))
""")


def test_pickle_and_load_in_a_fresh_process(memorised, tmp_path):
    import json

    prompts = ["the cat", "a dog ran", "zebra", ""]
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    blob = pickle.dumps(memorised)
    assert b"_rebuild_tensor" not in blob  # weights travel as safetensors bytes
    (tmp_path / "lm.pkl").write_bytes(blob)
    memorised.save(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["is_decoder"] is True
    want = {
        "greedy": memorised.generate(prompts, max_new_tokens=12),
        "sampled": memorised.generate(prompts, max_new_tokens=12, do_sample=True, top_p=0.9,
                                      random_state=7),
        "perplexity": memorised.perplexity(prompts[:2]),
    }
    done = subprocess.run([sys.executable, "-c", _RELOAD, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads((tmp_path / "out.json").read_text())
    for how in ("pickle", "load"):
        assert got[how]["greedy"] == want["greedy"], how
        assert got[how]["sampled"] == want["sampled"], how
        assert got[how]["perplexity"] == pytest.approx(want["perplexity"], rel=1e-6), how
        assert got[how]["params"] == {k: repr(v) for k, v in memorised.get_params().items()}, how
        assert got[how]["history"] == memorised.history_, how
    assert want["greedy"][:2] == [" sat on the mat", " and sat"]


def test_bertkit_load_in_process(memorised, tmp_path):
    loaded = bertkit.load(memorised.save(tmp_path / "lm"))
    assert type(loaded) is BertCausalLM and loaded.model_.config.is_decoder
    assert loaded.generate(["the film"], max_new_tokens=8) == [" was very good fun"]


# ============================================================== real data
def test_fit_on_a_wikitext2_slice_with_the_default_model(default_model_dir, data_dir):
    """Mechanics on real text and real weights: windows, validation, generation, perplexity."""
    from bertkit.datasets import read_wikitext

    paragraphs = read_wikitext(data_dir / "wikitext2_raw" / "wiki.valid.raw", split="paragraph")
    texts = paragraphs["text"].tolist()[:12]
    lm = BertCausalLM(max_length=48, batch_size=16, n_epochs=2, learning_rate=3e-4,
                      long_text="window", stride=8, validation_fraction=0.25,
                      device="cpu", random_state=0)
    with pytest.warns(UserWarning, match="no language-model head weights"):
        lm.fit(texts)
    losses = [h["valid_loss"] for h in lm.history_]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert lm.history_[1]["train_loss"] < lm.history_[0]["train_loss"]
    ppl = lm.perplexity(texts[:4])
    assert 1 < ppl < 5000  # an untrained head is near the 30522-token vocabulary
    (out,) = lm.generate(["the game was released in"], max_new_tokens=8)
    assert isinstance(out, str) and out.strip()
