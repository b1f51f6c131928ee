"""BertNextSentencePredictor: the label conventions, from_pretrained, WikiText pairs, bad input.

The tiny random checkpoint of ``estimator_fixtures`` learns a toy task where the second
sentence gives the label away; a second tiny checkpoint with NSP weights checks
``from_pretrained`` against transformers' ``BertForNextSentencePrediction``.
"""

# ruff: noqa: F811  (fixtures imported from estimator_fixtures are test arguments)

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from estimator_fixtures import FAST, TINY_CONFIG, VOCAB, one_torch_thread, tiny_model_dir  # noqa: F401
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

import bertkit
from bertkit import InputError
from bertkit.checkpoint import read_state_dict
from bertkit.datasets import IS_NEXT, NOT_NEXT, read_wikitext
from bertkit.estimators._next_sentence import BertNextSentencePredictor
from bertkit.heads import BertTaskModel, NextSentenceHead

LEARN = dict(FAST, batch_size=4, n_epochs=6, warmup_ratio=0.0)
FIRST = ["the cat sat", "the dog ran", "a cat ran", "a dog sat"]
FOLLOWS = ["on the mat", "and was fun"]
RANDOM = ["awful acting", "the plot was dull"]


def toy_pairs():
    """32 pairs; the second sentence gives the label away (0 = follows, 1 = random)."""
    rows = [(a, b, IS_NEXT) for a in FIRST for b in FOLLOWS] + [
        (a, b, NOT_NEXT) for a in FIRST for b in RANDOM
    ]
    rows = rows * 2
    return [(a, b) for a, b, _ in rows], np.array([label for *_, label in rows])


@pytest.fixture(scope="module")
def toy():
    return toy_pairs()


@pytest.fixture(scope="module")
def fitted(tiny_model_dir, toy):
    return BertNextSentencePredictor(model=tiny_model_dir, **LEARN).fit(*toy)


@pytest.fixture(scope="module")
def nsp_checkpoint(tmp_path_factory):
    """A tiny random checkpoint that has next-sentence weights (cls.seq_relationship)."""
    folder = tmp_path_factory.mktemp("tiny-nsp")
    torch.manual_seed(1)
    config = bertkit.BertConfig(**TINY_CONFIG)
    BertTaskModel(config, NextSentenceHead, "next_sentence").save_pretrained(folder)
    bertkit.BertTokenizer.from_vocab(VOCAB).save(folder)
    return folder


# ============================================================== parameters and contract
def test_clone_and_params_round_trip():
    params = {
        "model": "/nonexistent/model",
        "max_length": 48,
        "batch_size": 4,
        "learning_rate": 1e-4,
        "n_epochs": 7,
        "random_state": 3,
        "validation_fraction": 0.2,
    }
    est = BertNextSentencePredictor(**params)
    assert {k: est.get_params()[k] for k in params} == params
    cloned = clone(est)
    assert cloned is not est and cloned.get_params() == est.get_params()
    assert est.set_params(max_length=64) is est and clone(est).get_params()["max_length"] == 64


@pytest.mark.parametrize(
    "check",
    [
        "check_no_attributes_set_in_init",
        "check_get_params_invariance",
        "check_set_params",
        "check_parameters_default_constructible",
        "check_estimator_repr",
        "check_do_not_raise_errors_in_init_or_set_params",
        "check_mixin_order",
    ],
)
def test_sklearn_checks_that_need_no_numeric_data(check):
    getattr(estimator_checks, check)(
        "BertNextSentencePredictor", BertNextSentencePredictor(model="/nonexistent/model")
    )


@pytest.mark.parametrize(
    "method",
    ["predict", "predict_proba", "predict_is_next_proba", "decision_function", "score", "save"],
)
def test_not_fitted_error_points_to_fit_and_from_pretrained(method, tmp_path):
    X = [("a", "b")]
    args = {"score": (X, [0]), "save": (tmp_path / "out",)}.get(method, (X,))
    with pytest.raises(
        NotFittedError, match="This BertNextSentencePredictor instance is not fitted yet"
    ) as info:
        getattr(BertNextSentencePredictor(model="/nonexistent/model"), method)(*args)
    if method != "save":
        assert "from_pretrained(model)" in str(info.value)


@pytest.mark.parametrize(
    ("params", "name", "got"),
    [
        ({"max_length": 4}, "max_length", "Got 4"),
        ({"n_epochs": 0}, "n_epochs", "Got 0"),
        ({"precision": "fp8"}, "precision", "Got 'fp8'"),
    ],
)
def test_invalid_params_name_the_parameter(params, name, got, toy):
    with pytest.raises(InvalidParameterError) as info:
        BertNextSentencePredictor(model="/nonexistent/model", **params).fit(*toy)
    assert f"The '{name}' parameter of BertNextSentencePredictor must be" in str(info.value)
    assert got in str(info.value)


# ============================================================== labels and predictions
def test_fit_learns_the_toy_task_with_label_0_for_is_next(fitted, toy):
    X, y = toy
    assert fitted.classes_.tolist() == [0, 1] and fitted.label_kind_ == "label"
    assert fitted.n_text_columns_ == 2 and len(fitted.history_) == 6
    assert fitted.score(X, y) >= 0.9
    probe = [("the cat sat", "on the mat"), ("the cat sat", "awful acting")]
    is_next = fitted.predict_is_next_proba(probe)
    assert is_next.shape == (2,) and is_next[0] > 0.5 > is_next[1]
    proba = fitted.predict_proba(probe)
    np.testing.assert_allclose(proba[:, 0], is_next, atol=1e-6)  # column 0 = class 0 = is next
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert fitted.predict(probe).tolist() == [IS_NEXT, NOT_NEXT]
    margin = fitted.decision_function(probe)  # > 0 favours classes_[1] = random
    assert margin[0] < 0 < margin[1]


def test_bool_labels_mean_is_next_and_give_the_same_model(tiny_model_dir, toy):
    X, y = toy
    params = dict(FAST, n_epochs=1)
    by_label = BertNextSentencePredictor(model=tiny_model_dir, **params).fit(X, y)
    by_bool = BertNextSentencePredictor(model=tiny_model_dir, **params).fit(X, y == IS_NEXT)
    assert by_bool.label_kind_ == "bool" and by_bool.classes_.tolist() == [False, True]
    np.testing.assert_allclose(
        by_bool.predict_is_next_proba(X), by_label.predict_is_next_proba(X), atol=1e-6
    )
    np.testing.assert_allclose(
        by_bool.predict_proba(X), by_label.predict_proba(X)[:, ::-1], atol=1e-6
    )
    np.testing.assert_array_equal(by_bool.predict(X), by_label.predict(X) == IS_NEXT)
    np.testing.assert_allclose(
        by_bool.decision_function(X), -by_label.decision_function(X), atol=1e-6
    )
    assert by_bool.score(X, y == IS_NEXT) == by_bool.score(X, y) == by_label.score(X, y)
    # a DataFrame and a 2-D array of pairs give what a list of pairs gives
    frame = pd.DataFrame(X, columns=["a", "b"])
    np.testing.assert_allclose(
        by_label.predict_proba(np.array(X, dtype=object)), by_label.predict_proba(X)
    )
    with_names = BertNextSentencePredictor(model=tiny_model_dir, **params).fit(frame, y)
    assert with_names.feature_names_in_.tolist() == ["a", "b"]
    np.testing.assert_allclose(
        with_names.predict_proba(frame), by_label.predict_proba(X), atol=1e-6
    )


def test_from_pretrained_matches_transformers(nsp_checkpoint):
    transformers = pytest.importorskip("transformers")
    assert "cls.seq_relationship.weight" in read_state_dict(nsp_checkpoint)
    est = BertNextSentencePredictor.from_pretrained(nsp_checkpoint, device="cpu", max_length=32)
    assert (
        est.classes_.tolist() == [0, 1]
        and est.history_ == []
        and est.get_params()["max_length"] == 32
    )
    pairs = [
        ("the cat sat", "on the mat"),
        ("a dog ran", "awful acting"),
        ("xyz", "the plot was dull"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.BertForNextSentencePrediction.from_pretrained(nsp_checkpoint).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(nsp_checkpoint)
    enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        want = torch.softmax(model(**enc).logits, -1).numpy()
    np.testing.assert_allclose(est.predict_proba(pairs), want, atol=1e-5)
    np.testing.assert_allclose(est.predict_is_next_proba(pairs), want[:, 0], atol=1e-5)


def test_from_pretrained_refuses_a_checkpoint_without_nsp_weights(tiny_model_dir):
    with pytest.raises(
        InputError, match=r"no trained BertForNextSentencePrediction head \(cls.seq_relationship"
    ) as info:
        BertNextSentencePredictor.from_pretrained(tiny_model_dir)
    assert "fit(X, y)" in str(info.value)


def test_default_model_has_no_nsp_weights(default_model_dir):
    with pytest.raises(InputError, match="no trained BertForNextSentencePrediction head.*BertForPreTraining"):
        BertNextSentencePredictor.from_pretrained("default")


def test_fit_starts_from_the_checkpoint_nsp_weights(nsp_checkpoint, toy):
    X, y = toy
    est = BertNextSentencePredictor(
        model=nsp_checkpoint, **dict(FAST, learning_rate=1e-9, n_epochs=1)
    )
    est.fit(X, y)  # a learning rate of ~0 leaves the pretrained head as it was
    zero_shot = BertNextSentencePredictor.from_pretrained(nsp_checkpoint, device="cpu")
    np.testing.assert_allclose(est.predict_proba(X), zero_shot.predict_proba(X), atol=1e-4)


# ============================================================== pairs from documents
def test_make_pairs_from_wikitext_and_fit(tiny_model_dir, data_dir):
    articles = read_wikitext(data_dir / "wikitext2_raw" / "wiki.valid.raw")
    docs = articles.iloc[:10]
    X, y = BertNextSentencePredictor.make_pairs(docs, random_state=0)
    assert X.columns.tolist() == ["first", "second"] and y.dtype == np.int64 and len(X) == len(y)
    assert len(X) == sum(max(len(s) - 1, 0) for s in docs["sentences"])
    assert set(y.tolist()) == {0, 1} and 0.35 < y.mean() < 0.65
    following = {(a, b) for s in docs["sentences"] for a, b in zip(s, s[1:], strict=False)}
    pairs = list(zip(X["first"], X["second"], strict=True))
    assert all(
        (pair in following) == (label == IS_NEXT) for pair, label in zip(pairs, y, strict=True)
    )
    X2, y2 = BertNextSentencePredictor.make_pairs(docs["sentences"].tolist(), random_state=0)
    assert X2.equals(X) and np.array_equal(y2, y)  # DataFrame or lists of sentences alike

    X, y = X.iloc[:48], y[:48]
    est = BertNextSentencePredictor(model=tiny_model_dir, **dict(FAST, n_epochs=1)).fit(X, y)
    proba = est.predict_proba(X.iloc[:8])
    assert proba.shape == (8, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert est.score(X, y) == pytest.approx(np.mean(est.predict(X) == y))


def test_make_pairs_needs_a_sentences_column():
    with pytest.raises(
        InputError, match=r"needs a DataFrame with a 'sentences' column.*\['text'\]"
    ):
        BertNextSentencePredictor.make_pairs(pd.DataFrame({"text": ["a"]}))


# ============================================================== bad input
@pytest.mark.parametrize(
    ("X", "message"),
    [
        (
            ["the cat sat", "the dog ran"],
            r"expects sentence pairs: 2 columns \(A, then B\)\. Got 1 column",
        ),
        (pd.Series(["a", "b"]), r"Got 1 column"),
        (("the cat sat", "on the mat"), r"Got 1 column.*wrap it in a list: \[\(a, b\)\]"),
        (pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"]}), r"Got 3 column\(s\)"),
        ([("a", "b", "c"), ("d", "e", "f")], r"Got 3 column\(s\)"),
        (np.array([["a", "b", "c"]], dtype=object), r"Got 3 column\(s\)"),
        ([("a", "b"), ("c", "d", "e")], r"row 0 has 2 texts but row 1 has 3"),
        ([("a", "b"), ("c", float("nan"))], r"column 1 row 1 is a missing value \(None/NaN\)"),
        (pd.DataFrame({"A": ["x", None], "B": ["y", "z"]}), r"A row 1 is a missing value"),
        ([("a", "b"), (3, "d")], r"column 0 row 1 is a int \(3\)"),
        ("the cat sat", r"got a single str"),
    ],
)
def test_bad_X(X, message, fitted):
    with pytest.raises(InputError, match=message) as info:
        fitted.predict_proba(X)
    assert str(info.value).startswith("BertNextSentencePredictor")
    with pytest.raises(InputError, match=message):
        BertNextSentencePredictor(model="/nonexistent/model").fit(X, [0] * 2)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        ([0, 2], r"label 1 is 2\. Labels are 0 \(B follows A\) and 1 \(B is random\)"),
        ([0, float("nan")], r"label 1 is a missing value"),
        ([0, "yes"], r"label 1 is 'yes'"),
        ([True, 1], r"label 1 is 1 while label 0 is a bool: y mixes bools and numbers"),
        ([0], r"X and y have different lengths \(2 pairs, 1 labels\)"),
    ],
)
def test_bad_y(y, message):
    with pytest.raises(InputError, match=message):
        BertNextSentencePredictor(model="/nonexistent/model").fit([("a", "b"), ("c", "d")], y)


# ============================================================== persistence
_RELOAD = textwrap.dedent("""
    import json, pickle, sys
    from pathlib import Path
    import numpy as np
    import bertkit
    import bertkit.estimators._next_sentence

    root = Path(sys.argv[1])
    X = [tuple(row) for row in json.loads((root / "X.json").read_text())]
    for how, est in (("pickle", pickle.loads((root / "est.pkl").read_bytes())),
                     ("load", bertkit.load(root / "saved"))):
        assert type(est).__name__ == "BertNextSentencePredictor", type(est)
        np.save(root / f"{how}.npy", est.predict_proba(X))
        np.save(root / f"{how}-labels.npy", est.predict(X))
""")


def test_pickle_and_load_in_a_fresh_process(fitted, tmp_path):
    X = [("the cat sat", "on the mat"), ("a dog sat", "the plot was dull"), ("zebra", "q")]
    (tmp_path / "X.json").write_text(json.dumps(X))
    blob = pickle.dumps(fitted)
    assert b"_rebuild_tensor" not in blob
    (tmp_path / "est.pkl").write_bytes(blob)
    fitted.save(tmp_path / "saved")
    done = subprocess.run(
        [sys.executable, "-c", _RELOAD, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    for how in ("pickle", "load"):
        np.testing.assert_allclose(
            np.load(tmp_path / f"{how}.npy"), fitted.predict_proba(X), rtol=0, atol=1e-6
        )
        np.testing.assert_array_equal(np.load(tmp_path / f"{how}-labels.npy"), fitted.predict(X))
    loaded = bertkit.load(tmp_path / "saved")
    assert loaded.label_kind_ == "label" and loaded.classes_.tolist() == [0, 1]
    assert loaded.get_params() == fitted.get_params()
