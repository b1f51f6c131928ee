"""BertMaskedLM: fill-mask, masked-LM accuracy, pseudo-perplexity and continued MLM training.

The tiny random checkpoint of ``estimator_fixtures`` has no masked-LM head, like the
default model. A tiny model trained to memorise a few sentences stands in for a
checkpoint with a trained head.
"""

# ruff: noqa: F811  (fixtures imported from estimator_fixtures are test arguments)

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from estimator_fixtures import FAST, one_torch_thread, tiny_model_dir  # noqa: F401
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

import bertkit
from bertkit import InputError
from bertkit.datasets import read_wikitext
from bertkit.estimators._input import check_texts
from bertkit.estimators._masked_lm import IGNORE, BertMaskedLM, _Masker, mask_for_scoring
from bertkit.training import Encoded

#: A small repetitive corpus in the tiny vocabulary: every sentence is fully predictable
#: from its context once learnt.
CORPUS = [
    "the cat sat on the mat",
    "the dog ran",
    "a good film and a great plot",
    "the acting was very bad",
]
MEMORISE = dict(FAST, batch_size=8, learning_rate=5e-3, n_epochs=40, warmup_ratio=0.0,
                mlm_probability=0.3)


def _quiet(est, X=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


@pytest.fixture(scope="module")
def memorised(tiny_model_dir):
    """A tiny model trained until it knows CORPUS by heart (a trained MLM head)."""
    return _quiet(BertMaskedLM(model=tiny_model_dir, **MEMORISE), CORPUS * 8)


# ============================================================== the contract
def test_clone_and_params_round_trip():
    params = dict(model="/nonexistent", mlm_probability=0.2, whole_word=True, top_k=3,
                  max_length=48, learning_rate=1e-4, n_epochs=7, random_state=3)
    est = BertMaskedLM(**params)
    assert {k: est.get_params()[k] for k in params} == params
    assert clone(est).get_params() == est.get_params()
    assert BertMaskedLM(**est.get_params()).get_params() == est.get_params()
    assert est.set_params(top_k=9) is est and est.top_k == 9


@pytest.mark.parametrize("check", ["check_no_attributes_set_in_init", "check_get_params_invariance",
                                   "check_set_params", "check_parameters_default_constructible",
                                   "check_estimator_cloneable", "check_estimator_repr"])
def test_sklearn_checks_that_need_no_data(check):
    getattr(estimator_checks, check)("BertMaskedLM", BertMaskedLM(model="/nonexistent"))


@pytest.mark.parametrize("method", ["predict", "score", "pseudo_perplexity", "save"])
def test_not_fitted_error(method, tmp_path):
    args = (tmp_path / "out",) if method == "save" else (["the [MASK] sat"],)
    with pytest.raises(NotFittedError, match="This BertMaskedLM instance is not fitted yet") as info:
        getattr(BertMaskedLM(model="/nonexistent"), method)(*args)
    if method != "save":  # the fill-mask methods say how to use the checkpoint as it is
        assert "fit() without arguments" in str(info.value)


@pytest.mark.parametrize(
    ("params", "name", "got"),
    [({"mlm_probability": 0.0}, "mlm_probability", "Got 0.0"), ({"top_k": 0}, "top_k", "Got 0"),
     ({"whole_word": "yes"}, "whole_word", "Got 'yes'"), ({"max_length": 4}, "max_length", "Got 4")],
)
def test_invalid_params_name_the_parameter(params, name, got, tiny_model_dir):
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of BertMaskedLM.*{got}"):
        BertMaskedLM(model=tiny_model_dir, **params).fit(CORPUS)


def test_bad_inputs_say_what_and_where(memorised):
    with pytest.raises(InputError, match=r"text 1 has none: 'the cat sat'.*Write \[MASK\]"):
        memorised.predict(["the [MASK] sat", "the cat sat"])
    with pytest.raises(InputError, match=r"text 0 has 1 \[MASK\] but only 0 fall within max_length=32"):
        memorised.predict([" ".join(["cat"] * 40) + " [MASK]"])
    with pytest.raises(InputError, match=r"X row 1 is a missing value"):
        memorised.predict(["the [MASK]", None])
    with pytest.raises(InputError, match=r"got a single str. Wrap it in a list"):
        memorised.score("the cat sat")
    with pytest.raises(InputError, match=r"takes 1 column of texts. Got 2 columns"):
        memorised.score([["the cat", "sat"]])
    with pytest.raises(InputError, match=r"text 1 has no token to score"):
        memorised.pseudo_perplexity(["the cat", ""])
    with pytest.raises(InputError, match=r"none of the 2 texts has a token to mask"):
        _quiet(BertMaskedLM(model=memorised.model, **FAST), ["", " "])


# ============================================================== loading and fill-mask
def test_fit_without_data_loads_and_warns_about_an_untrained_head(tiny_model_dir):
    with pytest.warns(UserWarning, match=r"has no trained masked-LM head.*fill-mask predictions are random"):
        mlm = BertMaskedLM(model=tiny_model_dir, **FAST).fit()
    assert mlm.history_ == [] and not mlm.model_.training
    fills = mlm.predict(["the [MASK] sat on the [MASK]", "a [MASK]"])
    assert [len(f) for f in fills] == [2, 1] and all(len(k) == 5 for f in fills for k in f)


def test_predict_matches_the_full_vocabulary_softmax(memorised):
    """The masked_positions path (logits at the masks only) gives the probabilities of the plain head's full logits."""
    text = "the cat sat on the [MASK] and a [MASK]"
    fills = memorised.predict([text])[0]
    enc = memorised.tokenizer_([text], return_tensors="pt")
    with torch.no_grad():
        logits = memorised.model_(**enc)["logits"][0]  # (seq, vocab), the head's own forward
    positions = (enc["input_ids"][0] == memorised.tokenizer_.mask_token_id).nonzero().ravel()
    assert len(fills) == len(positions) == 2
    for fill, position in zip(fills, positions, strict=True):
        top = logits[position].softmax(-1).topk(5)
        assert [t for t, _ in fill] == memorised.tokenizer_.convert_ids_to_tokens(top.indices.tolist())
        np.testing.assert_allclose([p for _, p in fill], top.values.numpy(), rtol=1e-5, atol=1e-6)
        assert fill[0][1] >= fill[1][1] >= fill[4][1]


def test_memorised_sentences_are_filled_in(memorised, tmp_path):
    """Fill-mask top-1 with a trained head, here and from the saved checkpoint."""
    queries = ["the cat sat on the [MASK]", "the [MASK] ran", "the acting was very [MASK]"]
    want = ["mat", "dog", "bad"]
    assert [f[0][0][0] for f in memorised.predict(queries)] == want
    folder = memorised.save(tmp_path / "mlm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checkpoint with a trained head: no warning
        reloaded = BertMaskedLM(model=folder, **FAST).fit()
    assert [f[0][0][0] for f in reloaded.predict(queries)] == want


def test_masked_accuracy_improves_after_fit_on_the_domain(tiny_model_dir, memorised):
    held_out = ["the cat sat on the mat", "the dog ran", "the acting was very bad"] * 3
    before = _quiet(BertMaskedLM(model=tiny_model_dir, **FAST)).score(held_out)
    after = memorised.score(held_out)
    assert before < 0.2 and after > 0.8, (before, after)
    assert memorised.history_[-1]["train_loss"] < 0.5 * memorised.history_[0]["train_loss"]
    assert memorised.pseudo_perplexity(held_out) < 0.1 * _quiet(
        BertMaskedLM(model=tiny_model_dir, **FAST)).pseudo_perplexity(held_out)


def test_score_is_the_accuracy_at_the_seeded_masks(memorised):
    texts = ["the cat sat on the mat", "a good film and a great plot", "the dog sat on a film"]
    masked, labels = mask_for_scoring(memorised._encode(check_texts(texts, "t")),
                                      memorised.tokenizer_, probability=memorised.mlm_probability)
    hits = total = 0
    for ids, label in zip(masked.input_ids, labels, strict=True):
        chosen = label != IGNORE
        assert (ids[chosen] == memorised.tokenizer_.mask_token_id).all()
        with torch.no_grad():
            logits = memorised.model_(torch.as_tensor(ids, dtype=torch.long)[None])["logits"][0]
        hits += int((logits.argmax(-1).numpy()[chosen] == label[chosen]).sum())
        total += int(chosen.sum())
    assert total == 2 + 2 + 2  # round(0.3 * n) of 6, 7 and 6 words
    assert memorised.score(texts) == pytest.approx(hits / total)
    assert memorised.score(texts) == memorised.score(texts)  # seeded: the same masks every call


def test_pseudo_perplexity_masks_each_token_in_turn(memorised):
    texts = ["the cat sat", "a good film and"]
    log_ps = []
    for text in texts:
        ids = torch.tensor(memorised.tokenizer_(text)["input_ids"])
        per_text = []
        for j in range(1, len(ids) - 1):
            masked = ids.clone()
            masked[j] = memorised.tokenizer_.mask_token_id
            with torch.no_grad():
                logits = memorised.model_(masked[None])["logits"][0, j]
            per_text.append(float(logits.log_softmax(-1)[ids[j]]))
        log_ps.append(per_text)
    want_each = [np.exp(-np.mean(p)) for p in log_ps]
    want_all = np.exp(-np.mean([v for p in log_ps for v in p]))
    np.testing.assert_allclose(memorised.pseudo_perplexity(texts, per_text=True), want_each, rtol=1e-4)
    assert memorised.pseudo_perplexity(texts) == pytest.approx(want_all, rel=1e-4)


def test_whole_word_masking_takes_all_pieces_of_a_word(tiny_model_dir):
    tokenizer = bertkit.load_tokenizer(tiny_model_dir)
    enc = tokenizer(["zebra cat quokka", "cat xylophone dog"], padding=True, return_tensors="pt")
    words = [enc.word_ids(i) for i in range(2)]
    masker = _Masker(tokenizer, probability=0.5, whole_word=True, rng=np.random.default_rng(0))
    for _ in range(5):
        _, labels = masker(enc["input_ids"], enc["attention_mask"])
        for row, word_ids in enumerate(words):
            chosen = {w for w, c in zip(word_ids, (labels[row] != IGNORE).tolist(), strict=True) if c}
            assert chosen  # something is masked in every row
            for w in chosen:  # every piece of a chosen word is chosen
                assert all(bool(labels[row, j] != IGNORE) for j, v in enumerate(word_ids) if v == w)


def test_fit_masks_each_batch_anew(tiny_model_dir, monkeypatch):
    """Dynamic masking: the same text gets other masks in other epochs."""
    from bertkit.estimators import _masked_lm

    seen = []
    real = _masked_lm.mask_tokens

    def spy(input_ids, **kwargs):
        masked, labels = real(input_ids, **kwargs)
        seen.append((labels != IGNORE).clone())
        assert kwargs["mlm_probability"] == 0.3 and kwargs["generator"] is not None
        return masked, labels

    monkeypatch.setattr(_masked_lm, "mask_tokens", spy)
    _quiet(BertMaskedLM(model=tiny_model_dir, **dict(FAST, n_epochs=3, batch_size=1, mlm_probability=0.3)),
           ["the cat sat on the mat and the dog ran"])
    assert len(seen) == 3
    assert len({tuple(s.ravel().tolist()) for s in seen}) > 1


def test_fit_loss_is_computed_at_the_masked_positions_only(tiny_model_dir, monkeypatch):
    """Training passes ``masked_positions`` to the head: its (masked, vocab) logits are the
    full logits at those positions, and the targets the original tokens there."""
    from bertkit.estimators import _masked_lm

    captured = {}
    real = _masked_lm.train_model

    def spy(*args, **kwargs):
        captured.update(kwargs, loss_fn=args[4])
        return real(*args, **kwargs)

    monkeypatch.setattr(_masked_lm, "train_model", spy)
    texts = ["the cat sat on the mat", "a good film and a great plot", "the dog ran"]
    mlm = _quiet(BertMaskedLM(model=tiny_model_dir, **dict(FAST, n_epochs=1, mlm_probability=0.5)), texts)
    assert "forward" not in vars(mlm.model_.head)  # the head runs its own forward
    encoded = mlm._encode(check_texts(texts, "t"))
    inputs = encoded.collate(np.arange(len(texts)), mlm.tokenizer_.pad_token_id, "cpu")
    batch, targets = captured["prepare_batch"](dict(inputs), np.arange(len(texts)))
    where = batch["masked_positions"]
    assert where.dtype == torch.bool and int(where.sum()) == len(targets) > 0
    assert (targets == inputs["input_ids"][where]).all()
    with torch.no_grad():
        sparse = captured["output_fn"](mlm.model_(**batch), batch)
        full = mlm.model_(**{k: v for k, v in batch.items() if k != "masked_positions"})["logits"]
    assert sparse.shape == (len(targets), len(mlm.tokenizer_))
    torch.testing.assert_close(sparse, full[where], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(captured["loss_fn"](sparse, targets, None),
                               torch.nn.functional.cross_entropy(full[where], targets), atol=1e-5, rtol=1e-5)


def test_fit_on_wikitext(tiny_model_dir, data_dir):
    paragraphs = read_wikitext(data_dir / "wikitext2_raw" / "wiki.valid.raw", split="paragraph")["text"]
    texts = paragraphs.iloc[:40].tolist()
    with pytest.warns(UserWarning, match="the head starts untrained and fit trains it from scratch"):
        mlm = BertMaskedLM(model=tiny_model_dir, **dict(FAST, n_epochs=3, whole_word=True)).fit(texts)
    losses = [h["train_loss"] for h in mlm.history_]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert 0.0 <= mlm.score(texts[:10]) <= 1.0


# ============================================================== persistence
_RELOAD = textwrap.dedent("""
    import json, pickle, sys
    from pathlib import Path
    import bertkit
    import bertkit.estimators._masked_lm

    root = Path(sys.argv[1])
    texts = json.loads((root / "texts.json").read_text())
    out = {}
    for how, est in (("pickle", pickle.loads((root / "mlm.pkl").read_bytes())),
                     ("load", bertkit.load(root / "mlm"))):
        assert type(est).__name__ == "BertMaskedLM", type(est)
        out[how] = {"fills": est.predict(texts), "score": est.score(texts),
                    "pppl": est.pseudo_perplexity(texts), "params": est.get_params()["top_k"]}
    (root / "out.json").write_text(json.dumps(out))
""")


def test_pickle_and_load_in_a_fresh_process(memorised, tmp_path):
    import json

    texts = ["the cat sat on the [MASK]", "a [MASK] film and a [MASK] plot"]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    blob = pickle.dumps(memorised)
    assert b"_rebuild_tensor" not in blob
    (tmp_path / "mlm.pkl").write_bytes(blob)
    memorised.save(tmp_path / "mlm")
    want = {"fills": memorised.predict(texts), "score": memorised.score(texts),
            "pppl": memorised.pseudo_perplexity(texts), "params": memorised.top_k}
    want = json.loads(json.dumps(want))
    done = subprocess.run([sys.executable, "-c", _RELOAD, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads((tmp_path / "out.json").read_text())
    for how in ("pickle", "load"):
        assert [[[t for t, _ in k] for k in f] for f in got[how]["fills"]] == \
               [[[t for t, _ in k] for k in f] for f in want["fills"]], how
        np.testing.assert_allclose(
            [p for f in got[how]["fills"] for k in f for _, p in k],
            [p for f in want["fills"] for k in f for _, p in k], rtol=0, atol=1e-6)
        assert got[how]["score"] == want["score"]
        assert got[how]["pppl"] == pytest.approx(want["pppl"], rel=1e-6)
        assert got[how]["params"] == want["params"]


def test_empty_encoded_helper_shapes(tiny_model_dir):
    """mask_for_scoring keeps row lengths and masks at least one token per non-empty row."""
    tokenizer = bertkit.load_tokenizer(tiny_model_dir)
    rows = [np.asarray(tokenizer(t)["input_ids"], dtype=np.int32) for t in ("the cat", "a good film and")]
    masked, labels = mask_for_scoring(Encoded(rows, None, np.arange(2), 2), tokenizer, probability=0.15)
    assert [len(r) for r in masked.input_ids] == [len(r) for r in rows]
    assert [int((lab != IGNORE).sum()) for lab in labels] == [1, 1]
    for row, masked_row, lab in zip(rows, masked.input_ids, labels, strict=True):
        keep = lab == IGNORE
        assert (masked_row[keep] == row[keep]).all() and (lab[~keep] == row[~keep]).all()
