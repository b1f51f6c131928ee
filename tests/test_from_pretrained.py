"""``from_pretrained``: checkpoints fine-tuned elsewhere as ready estimators.

Tiny random ``BertFor*`` models written by transformers' own ``save_pretrained`` (with
``id2label`` and ``problem_type`` as transformers writes them) are loaded by each
estimator class without fitting; its predictions must equal transformers' outputs on
the same inputs. Checkpoints without a trained head, or of another task, are refused.
"""

# ruff: noqa: F811  (fixtures imported from estimator_fixtures are test arguments)

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from estimator_fixtures import FAST, TINY_CONFIG, VOCAB, tiny_model_dir, toy_data  # noqa: F401

import bertkit
from bertkit import (
    BertClassifier,
    BertMultipleChoice,
    BertQuestionAnswerer,
    BertRegressor,
    BertTokenClassifier,
    InputError,
)

transformers = pytest.importorskip("transformers")

SENTENCES = ["the cat sat on the mat", "a dog ran", "very good film and fun plot", "the acting was awful"]
READY = dict(max_length=64, batch_size=4, device="cpu")


def _hf_checkpoint(folder, model_class, seed=0, **config):
    """Save a tiny random transformers ``model_class`` and bertkit's toy tokenizer in ``folder``."""
    torch.manual_seed(seed)
    hf_config = transformers.BertConfig(**TINY_CONFIG, **config)
    model = getattr(transformers, model_class)(hf_config).eval()
    model.save_pretrained(folder)
    bertkit.BertTokenizer.from_vocab(VOCAB).save(folder)
    return model, transformers.AutoTokenizer.from_pretrained(folder)


def _labels(names):
    return dict(id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf-seq")
    model, tokenizer = _hf_checkpoint(folder, "BertForSequenceClassification", **_labels(["NEG", "POS", "MIXED"]))
    return folder, model, tokenizer


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf-tok")
    model, tokenizer = _hf_checkpoint(folder, "BertForTokenClassification", seed=1,
                                      **_labels(["O", "B-ANI", "I-ANI", "B-OBJ"]))
    return folder, model, tokenizer


# ============================================================== sequence classification
def test_classifier_predicts_what_transformers_computes(sentiment):
    folder, model, tokenizer = sentiment
    clf = BertClassifier.from_pretrained(folder, **READY)
    assert clf.classes_.tolist() == ["NEG", "POS", "MIXED"]  # id2label order, not sorted
    assert clf.history_ == [] and clf.best_epoch_ is None and clf.get_params()["max_length"] == 64
    with torch.no_grad():
        want = torch.softmax(model(**tokenizer(SENTENCES, padding=True, return_tensors="pt")).logits, -1).numpy()
    np.testing.assert_allclose(clf.predict_proba(SENTENCES), want, atol=1e-5)
    assert clf.predict(SENTENCES).tolist() == np.array(["NEG", "POS", "MIXED"])[want.argmax(1)].tolist()
    # a checkpoint does not say whether it was trained on pairs: both are taken
    pairs = [("the cat sat", "on the mat"), ("a dog", "ran")]
    with torch.no_grad():
        enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
        want_pairs = torch.softmax(model(**enc).logits, -1).numpy()
    np.testing.assert_allclose(clf.predict_proba(pairs), want_pairs, atol=1e-5)


def test_multilabel_checkpoint_predicts_per_label_sigmoids(tmp_path):
    model, tokenizer = _hf_checkpoint(tmp_path, "BertForSequenceClassification", seed=2,
                                      problem_type="multi_label_classification", **_labels(["a", "b", "c"]))
    clf = BertClassifier.from_pretrained(tmp_path, threshold=0.5, **READY)
    with torch.no_grad():
        want = torch.sigmoid(model(**tokenizer(SENTENCES, padding=True, return_tensors="pt")).logits).numpy()
    assert clf.multilabel_ and clf.classes_.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(clf.predict_proba(SENTENCES), want, atol=1e-5)
    np.testing.assert_array_equal(clf.predict(SENTENCES), (want >= 0.5).astype(int))


def test_regression_checkpoint_goes_to_the_regressor(tmp_path):
    model, tokenizer = _hf_checkpoint(tmp_path, "BertForSequenceClassification", seed=3, num_labels=1)
    reg = BertRegressor.from_pretrained(tmp_path, **READY)
    with torch.no_grad():
        want = model(**tokenizer(SENTENCES, padding=True, return_tensors="pt")).logits[:, 0].numpy()
    prediction = reg.predict(SENTENCES)
    assert prediction.shape == (len(SENTENCES),)
    np.testing.assert_allclose(prediction, want, atol=1e-5)
    with pytest.raises(InputError, match="regression head.*BertRegressor.from_pretrained"):
        BertClassifier.from_pretrained(tmp_path, **READY)


def test_the_regressor_refuses_a_classifier(sentiment):
    with pytest.raises(InputError, match="head is a classifier.*BertClassifier.from_pretrained"):
        BertRegressor.from_pretrained(sentiment[0], **READY)


def test_a_folder_bertkit_saved_keeps_its_target_scaling_and_label_types(tmp_path, tiny_model_dir, toy_data):
    texts, labels = toy_data
    reg = BertRegressor(model=tiny_model_dir, **FAST).fit(texts, 10 + 5 * (labels == "pos"))
    again = BertRegressor.from_pretrained(reg.save(tmp_path / "reg"), **READY)
    np.testing.assert_allclose(again.predict(texts[:4]), reg.predict(texts[:4]), rtol=1e-5)
    clf = BertClassifier(model=tiny_model_dir, **FAST).fit(texts, (labels == "pos").astype(int))
    again = BertClassifier.from_pretrained(clf.save(tmp_path / "clf"), **READY)
    assert again.classes_.tolist() == [0, 1] and again.history_ == []
    np.testing.assert_array_equal(again.predict(texts[:4]), clf.predict(texts[:4]))


# ============================================================== token classification
def test_token_classifier_predicts_what_transformers_computes(tagger):
    folder, model, tokenizer = tagger
    est = BertTokenClassifier.from_pretrained(folder, **READY)
    assert est.classes_.tolist() == ["O", "B-ANI", "I-ANI", "B-OBJ"]
    words = [s.split() for s in SENTENCES]  # toy vocabulary: one token per word
    with torch.no_grad():
        logits = model(**tokenizer(SENTENCES, padding=True, return_tensors="pt")).logits
    proba = est.predict_proba(words)
    for i, sentence in enumerate(words):
        want = torch.softmax(logits[i, 1:len(sentence) + 1], -1).numpy()
        np.testing.assert_allclose(proba[i], want, atol=1e-5)
    assert est.predict(words)[0] == est.classes_[proba[0].argmax(1)].tolist()
    assert 0.0 <= est.score(words, [["O"] * len(w) for w in words]) <= 1.0


def test_a_token_checkpoint_is_not_a_sentence_classifier(tagger):
    with pytest.raises(InputError, match="holds a BertForTokenClassification checkpoint.*BertTokenClassifier"):
        BertClassifier.from_pretrained(tagger[0], **READY)


# ============================================================== question answering
def test_question_answerer_decodes_transformers_best_span(tmp_path):
    model, tokenizer = _hf_checkpoint(tmp_path, "BertForQuestionAnswering", seed=4)
    est = BertQuestionAnswerer.from_pretrained(tmp_path, max_answer_length=3, **READY)
    rows = [("cat sat", "the cat sat on the mat"), ("dog ran", "a dog ran and the cat sat")]
    spans = est.predict_spans(rows)
    for (question, context), (_, got) in zip(rows, spans.iterrows(), strict=True):
        enc = tokenizer(question, context, return_tensors="pt")
        with torch.no_grad():
            out = model(**enc)
        start, end = out.start_logits[0].numpy(), out.end_logits[0].numpy()
        first = len(question.split()) + 2  # [CLS] question [SEP]: one token per toy word
        assert enc["input_ids"].shape[1] == first + len(context.split()) + 1
        words = context.split()
        best = max(
            ((start[first + i] + end[first + j], i, j)
             for i in range(len(words)) for j in range(i, min(i + 3, len(words)))),
        )
        assert got["answer"] == " ".join(words[best[1]:best[2] + 1])
        assert got["score"] == pytest.approx(best[0], abs=1e-4)


# ============================================================== multiple choice
def test_multiple_choice_predicts_what_transformers_computes(tmp_path):
    model, tokenizer = _hf_checkpoint(tmp_path, "BertForMultipleChoice", seed=5)
    est = BertMultipleChoice.from_pretrained(tmp_path, **READY)
    X = pd.DataFrame({"prompt": ["the cat", "a dog"], "choices": [["sat", "ran", "mat"], ["ran", "sat", "fun"]]})
    prompts = [p for p, cs in zip(X.prompt, X.choices, strict=True) for _ in cs]
    choices = [c for cs in X.choices for c in cs]
    enc = tokenizer(prompts, choices, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**{k: v.view(2, 3, -1) for k, v in enc.items()}).logits
    np.testing.assert_allclose(est.predict_proba(X), torch.softmax(logits, -1).numpy(), atol=1e-5)
    # the checkpoint does not fix a number of choices
    assert est.predict_proba([("the cat", ["sat", "ran"])]).shape == (1, 2)


# ============================================================== refusals and persistence
@pytest.mark.parametrize("cls, head", [
    (BertClassifier, "BertForSequenceClassification"),
    (BertRegressor, "BertForSequenceClassification"),
    (BertTokenClassifier, "BertForTokenClassification"),
    (BertQuestionAnswerer, "BertForQuestionAnswering"),
    (BertMultipleChoice, "BertForMultipleChoice"),
])
def test_an_encoder_without_a_trained_head_is_refused(cls, head, tiny_model_dir):
    with pytest.raises(InputError, match=f"no trained {head} head") as info:
        cls.from_pretrained(tiny_model_dir, **READY)
    assert f"{cls.__name__}(model=...).fit(X, y)" in str(info.value)


def test_bad_parameters_and_missing_folders_fail_as_in_fit(tmp_path):
    with pytest.raises(bertkit.ModelNotFoundError):
        BertClassifier.from_pretrained(tmp_path / "nowhere")
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="max_length"):
        BertClassifier.from_pretrained(tmp_path, max_length=0)


def test_a_ready_estimator_saves_pickles_and_refits(sentiment, tmp_path, toy_data):
    folder = sentiment[0]
    clf = BertClassifier.from_pretrained(folder, **READY)
    want = clf.predict_proba(SENTENCES)
    np.testing.assert_allclose(bertkit.load(clf.save(tmp_path / "saved")).predict_proba(SENTENCES), want, atol=1e-6)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(clf)).predict_proba(SENTENCES), want, atol=1e-6)
    texts, labels = toy_data
    refit = clf.fit(texts, labels)  # fit starts from the checkpoint with a new head for y's labels
    assert refit.classes_.tolist() == ["neg", "pos"] and len(refit.history_) == clf.n_epochs


def test_fit_goes_on_from_a_head_for_the_same_labels_and_starts_anew_for_others(tmp_path, toy_data):
    model, tokenizer = _hf_checkpoint(tmp_path, "BertForSequenceClassification", seed=6, **_labels(["neg", "pos"]))
    texts, labels = toy_data
    with torch.no_grad():
        want = torch.softmax(model(**tokenizer(SENTENCES, padding=True, return_tensors="pt")).logits, -1).numpy()
    still = dict(FAST, learning_rate=1e-12, n_epochs=1)  # training that cannot move the weights
    same = BertClassifier(model=tmp_path, **still).fit(texts, labels)  # classes_ ['neg', 'pos']
    np.testing.assert_allclose(same.predict_proba(SENTENCES), want, atol=1e-5)
    other = BertClassifier(model=tmp_path, **still).fit(texts, np.where(labels == "pos", "good", "bad"))
    assert np.abs(other.predict_proba(SENTENCES) - want).max() > 1e-3
    more = BertClassifier(model=tmp_path, **still).fit(texts[:3] * 3, ["neg", "pos", "meh"] * 3)
    assert more.predict_proba(SENTENCES).shape == (len(SENTENCES), 3)  # 3 labels: no CheckpointError


# ============================================================== the command line
def test_bertkit_predict_reads_a_transformers_classifier_folder(sentiment, capsys, tmp_path):
    from bertkit.cli import main

    folder = sentiment[0]
    proba = BertClassifier.from_pretrained(folder).predict_proba(SENTENCES[:2])
    assert main(["predict", str(folder), *SENTENCES[:2]]) == 0
    names = ["NEG", "POS", "MIXED"]
    assert capsys.readouterr().out.splitlines() == [
        f"{names[p.argmax()]}\t{p.max():.4f}\t{t}" for t, p in zip(SENTENCES[:2], proba, strict=True)]
    _hf_checkpoint(tmp_path / "tok", "BertForTokenClassification", **_labels(["O", "B-X"]))
    assert main(["predict", str(tmp_path / "tok"), "the cat"]) == 2
    assert "holds a BertForTokenClassification checkpoint" in capsys.readouterr().err


# ============================================================== language models
def test_masked_lm_fills_masks_as_transformers_does(tmp_path):
    model, tokenizer = _hf_checkpoint(tmp_path, "BertForMaskedLM", seed=7)
    mlm = bertkit.BertMaskedLM.from_pretrained(tmp_path, top_k=3, **READY)
    assert mlm.history_ == [] and mlm.n_text_columns_ == 1
    text = "the cat [MASK] on the mat"
    enc = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        proba = torch.softmax(model(**enc).logits[0, 3], -1)
    top = torch.topk(proba, 3)
    want = [(tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(top.values, top.indices, strict=True)]
    got = mlm.predict([text])[0][0]
    assert [t for t, _ in got] == [t for t, _ in want]
    np.testing.assert_allclose([p for _, p in got], [p for _, p in want], atol=1e-5)


def test_masked_lm_refuses_an_encoder_without_its_head(tiny_model_dir):
    with pytest.raises(InputError, match=r"no trained BertForMaskedLM head.*fit\(texts\)"):
        bertkit.BertMaskedLM.from_pretrained(tiny_model_dir, **READY)


def test_causal_lm_scores_and_generates_as_transformers_does(tmp_path):
    model, tokenizer = _hf_checkpoint(tmp_path, "BertLMHeadModel", seed=8, is_decoder=True)
    lm = bertkit.BertCausalLM.from_pretrained(tmp_path, **READY)
    for text, got in zip(SENTENCES, lm.score_samples(SENTENCES), strict=True):
        ids = tokenizer([text], return_tensors="pt")
        with torch.no_grad():
            want = -model(**ids, labels=ids["input_ids"]).loss.item()
        assert got == pytest.approx(want, abs=1e-4)
    ids = tokenizer(["the cat"], return_tensors="pt", add_special_tokens=False)["input_ids"]
    prompt = torch.cat([torch.tensor([[tokenizer.cls_token_id]]), ids], dim=1)
    with torch.no_grad():  # greedy decoding, by hand: the next token is the argmax, 4 times
        for _ in range(4):
            nxt = model(input_ids=prompt).logits[:, -1].argmax(-1, keepdim=True)
            prompt = torch.cat([prompt, nxt], dim=1)
    want = tokenizer.decode(prompt[0, 1 + ids.shape[1]:])
    got = lm.generate(["the cat"], max_new_tokens=4)[0]
    assert got.split() == want.split() or got.replace(" ", "") == want.replace(" ", "")


def test_causal_lm_refuses_a_masked_lm_checkpoint(tmp_path):
    _hf_checkpoint(tmp_path, "BertForMaskedLM", seed=9)
    with pytest.raises(InputError, match="is not a decoder"):
        bertkit.BertCausalLM.from_pretrained(tmp_path, **READY)
