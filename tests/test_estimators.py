"""The scikit-learn contract of BertClassifier, BertRegressor and BertEmbedder.

Most tests fit the tiny random checkpoint of ``estimator_fixtures`` (2 layers, 32 wide,
a few seconds at most on a CPU). The real default model is used only where the
behaviour depends on real weights: a grid search on SST-2 that must beat chance, and
parity of the embedder's mean pooling with transformers.
"""

# ruff: noqa: F811  (fixtures imported from estimator_fixtures are test arguments)

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from estimator_fixtures import (  # noqa: F401  (fixtures are used as test arguments)
    FAST,
    NEGATIVE,
    POSITIVE,
    one_torch_thread,
    tiny_model_dir,
    toy_data,
)
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

import bertkit
from bertkit import BertClassifier, BertEmbedder, BertRegressor, InputError, ModelNotFoundError
from bertkit.estimators import _base
from bertkit.estimators._input import check_texts

ESTIMATORS = [BertClassifier, BertRegressor, BertEmbedder]


def _make(cls, model, **params):
    """An estimator of ``cls`` with the fast settings it accepts."""
    allowed = cls().get_params()
    return cls(model=model, **{k: v for k, v in {**FAST, **params}.items() if k in allowed})


def _fit(est, X, labels):
    """Fit on texts and 'pos'/'neg' labels (numbers for a regressor, nothing for an embedder)."""
    if isinstance(est, BertEmbedder):
        return est.fit(X)
    return est.fit(X, _regression_targets(labels) if isinstance(est, BertRegressor) else labels)


def _output(est, X):
    """What each estimator is judged on: probabilities, predictions, or vectors."""
    if isinstance(est, BertClassifier):
        return est.predict_proba(X)
    if isinstance(est, BertRegressor):
        return est.predict(X)
    return est.transform(X)


#: Enough training for the tiny checkpoint to learn the toy task (about a second).
LEARN = dict(batch_size=4, learning_rate=3e-3, n_epochs=6, warmup_ratio=0.0)


def _regression_targets(labels):
    return np.where(labels == "pos", 4.0, 1.0)


@pytest.fixture(scope="module")
def fitted(tiny_model_dir, toy_data):
    """One fitted estimator of each kind on the toy data (read-only for the tests)."""
    X, labels = toy_data
    return {
        BertClassifier: _make(BertClassifier, tiny_model_dir).fit(X, labels),
        BertRegressor: _make(BertRegressor, tiny_model_dir).fit(X, _regression_targets(labels)),
        BertEmbedder: _make(BertEmbedder, tiny_model_dir).fit(X),
    }


@pytest.fixture(scope="module")
def fitted_clf(fitted):
    return fitted[BertClassifier]


# ============================================================== parameters and the fit contract
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_clone_and_params_round_trip(cls):
    params = {"model": "/nonexistent/model", "max_length": 48, "batch_size": 4, "stride": 8}
    params.update(
        {"pooling": "cls", "normalize": False, "layers": 2}
        if cls is BertEmbedder
        else {"learning_rate": 1e-4, "n_epochs": 7, "random_state": 3, "freeze_layers": 1}
    )
    est = cls(**params)
    assert {k: est.get_params()[k] for k in params} == params
    cloned = clone(est)
    assert cloned is not est
    assert cloned.get_params() == est.get_params()
    assert cls(**est.get_params()).get_params() == est.get_params()
    assert est.set_params(max_length=64, batch_size=2) is est
    assert est.get_params()["max_length"] == 64 and est.get_params()["batch_size"] == 2
    assert clone(est).get_params()["max_length"] == 64


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "check",
    [
        "check_no_attributes_set_in_init",
        "check_get_params_invariance",
        "check_set_params",
        "check_parameters_default_constructible",
        "check_estimator_cloneable",
        "check_estimator_repr",
        "check_do_not_raise_errors_in_init_or_set_params",
        "check_mixin_order",
        "check_valid_tag_types",
    ],
)
def test_sklearn_checks_that_need_no_numeric_data(cls, check):
    getattr(estimator_checks, check)(cls.__name__, cls(model="/nonexistent/model"))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_init_touches_no_files_and_fit_reports_a_missing_model(cls, monkeypatch, toy_data):
    def no_files(*args, **kwargs):
        raise AssertionError("__init__ must not resolve or load a model")

    monkeypatch.setattr(_base, "resolve_model", no_files)
    monkeypatch.setattr(_base, "load_tokenizer", no_files)
    est = cls(model="/nonexistent/model")  # no error: nothing is read yet
    monkeypatch.undo()
    X, labels = toy_data
    with pytest.raises(ModelNotFoundError, match=r"The path '/nonexistent/model' does not exist"):
        _fit(est, X, labels)
    assert not hasattr(est, "model_")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_returns_self_and_sets_fitted_attributes(cls, tiny_model_dir, toy_data):
    X, labels = toy_data
    est = _make(cls, tiny_model_dir, n_epochs=1)
    assert _fit(est, X, labels) is est
    assert isinstance(est.model_, torch.nn.Module) and not est.model_.training
    assert est.tokenizer_ is not None and est.n_text_columns_ == 1
    if cls is not BertEmbedder:
        assert [h["epoch"] for h in est.history_] == [1]
    assert len(_output(est, X[:3])) == 3


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        (BertClassifier, "predict"),
        (BertClassifier, "predict_proba"),
        (BertClassifier, "decision_function"),
        (BertClassifier, "score"),
        (BertRegressor, "predict"),
        (BertRegressor, "score"),
        (BertEmbedder, "transform"),
        (BertClassifier, "save"),
        (BertEmbedder, "save"),
    ],
)
def test_not_fitted_error(cls, method, tmp_path):
    est = cls(model="/nonexistent/model")
    args = {"score": (["a text"], [1]), "save": (tmp_path / "out",)}.get(method, (["a text"],))
    with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted yet"):
        getattr(est, method)(*args)


@pytest.mark.parametrize(
    ("cls", "params", "name", "got"),
    [
        (BertEmbedder, {"pooling": "avg"}, "pooling", "Got 'avg'"),
        (BertEmbedder, {"layers": 0}, "layers", "Got 0"),
        (BertEmbedder, {"normalize": "yes"}, "normalize", "Got 'yes'"),
        (BertClassifier, {"max_length": 4}, "max_length", "Got 4"),
        (BertClassifier, {"threshold": 1.5}, "threshold", "Got 1.5"),
        (BertClassifier, {"class_weight": "auto"}, "class_weight", "Got 'auto'"),
        (BertClassifier, {"long_text": "chunk"}, "long_text", "Got 'chunk'"),
        (BertClassifier, {"precision": "fp8"}, "precision", "Got 'fp8'"),
        (BertRegressor, {"learning_rate": 0.0}, "learning_rate", "Got 0.0"),
        (BertRegressor, {"validation_fraction": 1.0}, "validation_fraction", "Got 1.0"),
        (BertRegressor, {"warmup_ratio": 2}, "warmup_ratio", "Got 2"),
        (BertClassifier, {"n_epochs": 0}, "n_epochs", "Got 0"),
    ],
)
def test_invalid_params_name_the_parameter(cls, params, name, got, toy_data):
    X, labels = toy_data
    est = cls(model="/nonexistent/model", **params)  # accepted by __init__, refused by fit
    with pytest.raises(InvalidParameterError) as info:
        _fit(est, X, labels)
    message = str(info.value)
    assert f"The '{name}' parameter of {cls.__name__} must be" in message
    assert got in message


# ============================================================== scikit-learn composition
def _lower(texts):
    return [t.lower() for t in texts]


def test_pipeline_embedder_then_logistic_regression(tiny_model_dir, toy_data, fitted):
    X, labels = toy_data
    pipe = Pipeline([
        ("embed", _make(BertEmbedder, tiny_model_dir)),
        ("logreg", LogisticRegression(C=1e4, max_iter=5000)),
    ]).fit(X, labels)
    assert pipe.named_steps["embed"].embedding_dim_ == 32
    np.testing.assert_allclose(
        pipe.named_steps["logreg"].decision_function(fitted[BertEmbedder].transform(X)),
        pipe.decision_function(X), atol=1e-5,
    )
    assert pipe.score(X, labels) == 1.0  # distinct sentences are separable in 32 dimensions


def test_pipeline_ending_in_a_classifier(tiny_model_dir, toy_data):
    X, labels = toy_data
    pipe = make_pipeline(FunctionTransformer(_lower), _make(BertClassifier, tiny_model_dir))
    shouted = [t.upper() for t in X]
    assert pipe.fit(shouted, labels) is pipe
    assert list(pipe.classes_) == ["neg", "pos"]
    proba = pipe.predict_proba(shouted)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba, pipe[-1].predict_proba(X), atol=1e-6)


def test_cross_val_score(tiny_model_dir, toy_data):
    X, labels = toy_data
    est = _make(BertClassifier, tiny_model_dir, n_epochs=1)
    scores = cross_val_score(est, X, labels, cv=StratifiedKFold(2, shuffle=True, random_state=0))
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    assert not hasattr(est, "model_")  # cross_val_score fits clones


def test_column_transformer_text_and_numeric_columns(tiny_model_dir, toy_data, fitted):
    X, labels = toy_data
    frame = pd.DataFrame({"review": X, "n_chars": [float(len(t)) for t in X]})
    columns = ColumnTransformer([
        ("text", _make(BertEmbedder, tiny_model_dir), "review"),
        ("num", StandardScaler(), ["n_chars"]),
    ])
    pipe = make_pipeline(columns, LogisticRegression(max_iter=1000)).fit(frame, labels)
    features = pipe[0].transform(frame)
    assert features.shape == (len(X), 33)
    np.testing.assert_allclose(features[:, :32], fitted[BertEmbedder].transform(X), atol=1e-6)
    assert list(pipe[0].get_feature_names_out()[[0, 31, 32]]) == [
        "text__bertembedder0", "text__bertembedder31", "num__n_chars",
    ]
    assert set(pipe.predict(frame)) <= {"neg", "pos"}


def test_grid_search_on_sst2_with_the_default_model(default_model_dir, data_dir, sst2_sentences):
    """Real weights: a small grid search on 400 SST-2 sentences must beat chance clearly."""
    frame = pd.read_csv(data_dir / "sst2" / "train.tsv", sep="\t", quoting=3)
    X, y = sst2_sentences[:400], frame["label"].to_numpy()[:400]
    # Frozen embeddings (half of MiniLM's weights) keep the 9 fits to about a minute and a half.
    search = GridSearchCV(
        BertClassifier(model="default", max_length=64, batch_size=32, freeze_embeddings=True,
                       random_state=0, device="cpu"),
        {"learning_rate": [1e-4, 3e-4], "n_epochs": [1, 2]},
        cv=2,
    )
    search.fit(X, y)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert search.best_score_ > 0.6
    best = search.best_estimator_
    assert best.get_params()["learning_rate"] == search.best_params_["learning_rate"]
    assert len(best.history_) == search.best_params_["n_epochs"]
    assert search.score(X, y) > 0.6  # the refit model (on all 400) predicts
    assert set(search.predict(["a triumph", "a disaster"])) <= {0, 1}


# ============================================================== persistence
_RELOAD_SCRIPT = textwrap.dedent("""
    import pickle, sys
    from pathlib import Path
    import numpy as np
    import bertkit

    root = Path(sys.argv[1])
    texts = (root / "texts.txt").read_text(encoding="utf-8").splitlines()
    for name in ("BertClassifier", "BertRegressor", "BertEmbedder"):
        for how, est in (
            ("pickle", pickle.loads((root / f"{name}.pkl").read_bytes())),
            ("load", bertkit.load(root / name)),
        ):
            assert type(est).__name__ == name, type(est)
            if name == "BertClassifier":
                out = est.predict_proba(texts)
                (root / f"{name}-{how}-labels.txt").write_text("\\n".join(est.predict(texts)))
            elif name == "BertRegressor":
                out = est.predict(texts)
            else:
                out = est.transform(texts)
            np.save(root / f"{name}-{how}.npy", out)
""")


def test_pickle_and_load_in_a_fresh_process(fitted, tmp_path):
    texts = ["good film", "a dull plot", "the cat sat on the mat", "zebra"]
    (tmp_path / "texts.txt").write_text("\n".join(texts), encoding="utf-8")
    expected = {}
    for cls, est in fitted.items():
        blob = pickle.dumps(est)
        assert b"_rebuild_tensor" not in blob  # weights travel as safetensors bytes, not torch pickles
        (tmp_path / f"{cls.__name__}.pkl").write_bytes(blob)
        est.save(tmp_path / cls.__name__)
        expected[cls.__name__] = _output(est, texts)
    assert "model_" in fitted[BertClassifier].__dict__  # pickling left the live model in place
    done = subprocess.run(
        [sys.executable, "-c", _RELOAD_SCRIPT, str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for name, want in expected.items():
        for how in ("pickle", "load"):
            got = np.load(tmp_path / f"{name}-{how}.npy")
            assert got.shape == want.shape, (name, how)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{name} via {how}")
    labels = list(fitted[BertClassifier].predict(texts))
    for how in ("pickle", "load"):
        assert (tmp_path / f"BertClassifier-{how}-labels.txt").read_text().split("\n") == labels


def test_load_restores_params_and_fitted_attributes(fitted, tmp_path):
    for cls, est in fitted.items():
        loaded = bertkit.load(est.save(tmp_path / cls.__name__))
        assert type(loaded) is cls
        assert isinstance(est.model, Path)
        assert loaded.get_params() == est.get_params()
        assert type(loaded.model) is type(est.model)  # a Path comes back a Path, not a str
        for attr in cls._fitted_json:
            want, got = getattr(est, attr), getattr(loaded, attr)
            if isinstance(want, np.ndarray):
                np.testing.assert_array_equal(got, want)
                assert got.dtype == want.dtype
            else:
                assert got == want, attr


def test_load_refuses_a_plain_folder(tiny_model_dir):
    with pytest.raises(FileNotFoundError, match=r"No bertkit.json in .*bertkit.load_pretrained"):
        bertkit.load(tiny_model_dir)


def test_saved_classifier_folder_loads_in_transformers(fitted_clf, tmp_path):
    transformers = pytest.importorskip("transformers")
    folder = fitted_clf.save(tmp_path / "clf")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "bertkit.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"}
    assert config["label2id"] == {"neg": 0, "pos": 1}
    meta = json.loads((folder / "bertkit.json").read_text())
    assert meta["estimator"] == "BertClassifier" and meta["head"] == "sequence_classification"
    assert meta["params"]["max_length"] == FAST["max_length"]

    texts = ["good film", "a very dull plot", "the cat sat on the mat", "xyz"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
        hf_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        logits = hf_model(**hf_tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(
        torch.softmax(torch.from_numpy(logits), -1).numpy(), fitted_clf.predict_proba(texts), atol=1e-5
    )
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], fitted_clf.decision_function(texts), atol=1e-5)


# ============================================================== classifier
def test_classifier_outputs_are_consistent(fitted_clf, toy_data):
    X, _ = toy_data
    proba = fitted_clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(fitted_clf.predict(X), fitted_clf.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(
        fitted_clf.decision_function(X), np.log(proba[:, 1]) - np.log(proba[:, 0]), atol=1e-4
    )


def test_every_form_of_single_text_input_gives_the_same_predictions(fitted_clf):
    texts = ["good film", "a dull plot", "cat"]
    want = fitted_clf.predict_proba(texts)
    for X in (tuple(texts), np.array(texts), np.array(texts, dtype=object), pd.Series(texts),
              pd.DataFrame({"review": texts}), pd.Series(texts, dtype="string")):
        np.testing.assert_array_equal(fitted_clf.predict_proba(X), want)


def test_classifier_learns_the_toy_task(tiny_model_dir, toy_data):
    X, labels = toy_data
    clf = _make(BertClassifier, tiny_model_dir, **LEARN)
    assert clf.fit(X, labels).score(X, labels) >= 0.9


def test_multiclass_integer_labels(tiny_model_dir):
    X = POSITIVE + NEGATIVE + ["the cat sat", "a dog ran", "cat on mat"]
    y = np.array([2] * len(POSITIVE) + [0] * len(NEGATIVE) + [7] * 3)
    clf = _make(BertClassifier, tiny_model_dir, n_epochs=1).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 2, 7])
    assert clf.decision_function(X).shape == (len(X), 3)
    assert clf.predict_proba(X).shape == (len(X), 3)
    assert clf.predict(X).dtype.kind == "i" and set(clf.predict(X)) <= {0, 2, 7}
    assert json.loads(json.dumps(clf.model_.config.to_dict()))["id2label"] == {"0": "0", "1": "2", "2": "7"}


MULTI_TEXTS = ["good film", "the cat sat", "good cat", "bad dog", "a film", "the dog ran", "fun movie",
               "dull cat"] * 3
MULTI_LISTS = [["film", "good"], ["animal"], ["animal", "good"], ["animal"], ["film"], ["animal"],
               ["film", "good"], []] * 3


def test_multilabel_with_label_lists(tiny_model_dir):
    clf = _make(BertClassifier, tiny_model_dir, threshold=0.3).fit(MULTI_TEXTS, MULTI_LISTS)
    assert clf.multilabel_
    np.testing.assert_array_equal(clf.classes_, ["animal", "film", "good"])
    np.testing.assert_array_equal(clf.thresholds_, [0.3, 0.3, 0.3])
    pred = clf.predict(MULTI_TEXTS)
    assert pred.shape == (len(MULTI_TEXTS), 3) and set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(MULTI_TEXTS)
    assert proba.shape == pred.shape and np.all((proba > 0) & (proba < 1))
    np.testing.assert_array_equal(pred, (proba >= 0.3).astype(int))
    assert 0.0 <= clf.score(MULTI_TEXTS, MULTI_LISTS) <= 1.0


def test_multilabel_with_indicator_matrix_and_tuned_thresholds(tiny_model_dir):
    names = ["animal", "film", "good"]
    y = np.array([[int(n in labels) for n in names] for labels in MULTI_LISTS])
    clf = _make(BertClassifier, tiny_model_dir, threshold="tune", validation_fraction=0.25, n_epochs=2)
    clf.fit(MULTI_TEXTS, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.thresholds_.shape == (3,)
    grid = np.linspace(0.05, 0.95, 19)
    assert all(np.isclose(grid, t).any() for t in clf.thresholds_)
    proba = clf.predict_proba(MULTI_TEXTS)
    np.testing.assert_array_equal(clf.predict(MULTI_TEXTS), (proba >= clf.thresholds_).astype(int))
    assert "valid_score" in clf.history_[0]


# ============================================================== regressor
def test_regression_predictions_in_original_units(tiny_model_dir, toy_data):
    X, labels = toy_data
    y = _regression_targets(labels) * 1000 + 50  # 1050 or 4050
    reg = _make(BertRegressor, tiny_model_dir, **LEARN).fit(X, y)
    np.testing.assert_allclose(reg.y_mean_, [y.mean()])
    np.testing.assert_allclose(reg.y_scale_, [y.std()])
    pred = reg.predict(X)
    assert pred.shape == (len(X),)
    assert y.min() - y.std() < pred.min() and pred.max() < y.max() + y.std()
    assert abs(pred.mean() - y.mean()) < 0.5 * y.std()
    positive = labels == "pos"
    assert pred[positive].mean() > pred[~positive].mean() + 1000  # it learnt which is which (3000 apart)
    assert reg.score(X, y) > 0.5


def test_regression_with_2d_targets(tiny_model_dir, toy_data):
    X, labels = toy_data
    base = _regression_targets(labels)
    y = np.column_stack([base, -100 * base + 7])
    reg = _make(BertRegressor, tiny_model_dir, n_epochs=1).fit(X, y)
    assert reg.n_outputs_ == 2
    pred = reg.predict(X)
    assert pred.shape == (len(X), 2)
    for j in range(2):
        assert abs(pred[:, j].mean() - y[:, j].mean()) < y[:, j].std()
    column = _make(BertRegressor, tiny_model_dir, n_epochs=1).fit(X, base[:, None])
    assert column.predict(X).shape == (len(X), 1)  # a 2-D y with one column stays 2-D


# ============================================================== text pairs and long texts
PAIRS = [("good film", "great movie"), ("good film", "bad plot"), ("the cat sat", "the cat ran"),
         ("a dog", "the film"), ("fun plot", "fun acting"), ("dull film", "great acting")] * 3
PAIR_LABELS = np.array(["same", "diff", "same", "diff", "same", "diff"] * 3)


def test_text_pairs_from_a_dataframe_an_array_and_tuples(tiny_model_dir):
    frame = pd.DataFrame(PAIRS, columns=["premise", "hypothesis"])
    clf = _make(BertClassifier, tiny_model_dir, n_epochs=1).fit(frame, PAIR_LABELS)
    assert clf.n_text_columns_ == 2
    np.testing.assert_array_equal(clf.feature_names_in_, ["premise", "hypothesis"])
    from_frame = clf.predict_proba(frame)
    np.testing.assert_array_equal(clf.predict_proba(frame.to_numpy()), from_frame)
    np.testing.assert_array_equal(clf.predict_proba(PAIRS), from_frame)
    # The second text matters, and it is a second segment (token type 1), not glued on.
    assert not np.allclose(clf.predict_proba([("good film", "cat")]), clf.predict_proba([("good film", "dog")]))
    encoded = clf._encode(check_texts([("good film", "the cat")], "test"))
    np.testing.assert_array_equal(encoded.token_type_ids[0], [0, 0, 0, 0, 1, 1, 1])
    with pytest.raises(InputError, match=r"was fitted on text pairs \(2 columns\) but X has 1 column\(s\)"):
        clf.predict(["good film"])

    reg = _make(BertRegressor, tiny_model_dir, n_epochs=1).fit(np.array(PAIRS, dtype=object),
                                                                 (PAIR_LABELS == "same") * 5.0)
    assert reg.predict(frame).shape == (len(PAIRS),)


# 62 tokens each with [CLS]/[SEP]; what the first window sees is not the rest.
LONG_POS = " ".join(["good film"] * 6 + ["the cat sat on the mat"] * 8)
LONG_NEG = " ".join(["bad film"] * 6 + ["a dog ran"] * 16)


def test_windowed_long_texts_in_fit_and_predict(tiny_model_dir, toy_data, monkeypatch):
    X, labels = toy_data
    X = list(X) + [LONG_POS, LONG_NEG]
    labels = np.append(labels, ["pos", "neg"])
    clf = _make(BertClassifier, tiny_model_dir, long_text="window", max_length=16, stride=4, n_epochs=1)

    seen = []
    forward = bertkit.BertTaskModel.forward

    def spy(self, *args, **kwargs):
        if self.training:
            seen.append(kwargs["input_ids"].shape)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(bertkit.BertTaskModel, "forward", spy)
    clf.fit(X, labels)
    monkeypatch.undo()
    # 62 tokens in windows of 14 content tokens sliding by 10: 6 windows per long text.
    windows = clf._encode(check_texts([LONG_POS], "test"))
    assert len(windows.input_ids) == 6 and max(len(w) for w in windows.input_ids) == 16
    assert sum(shape[0] for shape in seen) == len(X) - 2 + 12  # fit trained on every window
    assert max(shape[1] for shape in seen) <= 16

    windowed = clf.predict_proba([LONG_POS, LONG_NEG, "good film"])
    assert np.isfinite(windowed).all()
    np.testing.assert_allclose(windowed.sum(axis=1), 1.0, atol=1e-6)
    clf.set_params(long_text="truncate")  # the same model, reading only the first window
    truncated = clf.predict_proba([LONG_POS, LONG_NEG, "good film"])
    # short texts are one window either way (batch shapes differ, hence a tolerance)
    np.testing.assert_allclose(truncated[2], windowed[2], atol=1e-6)
    assert not np.allclose(truncated[:2], windowed[:2])


def test_window_stride_must_advance(tiny_model_dir, toy_data):
    X, labels = toy_data
    clf = _make(BertClassifier, tiny_model_dir, long_text="window", max_length=16, stride=14)
    with pytest.raises(InputError, match=r"The 'stride' parameter of BertClassifier \(14\) must be smaller than max_length \(16\)"):
        clf.fit(X, labels)


# ============================================================== embedder
EMBED_TEXTS = ["good film", "a very very dull and bad plot", "cat", "the dog sat on the mat"]


def _reference_states(folder, texts, **kwargs):
    model = bertkit.load_encoder(folder)
    tokenizer = bertkit.load_tokenizer(folder)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch, **kwargs), batch["attention_mask"]


def _sentence_transformers_folder(tmp_path, tiny_model_dir, pooling_config: dict):
    """The tiny checkpoint laid out as sentence-transformers saves a model."""
    import json
    import shutil

    folder = tmp_path / "st"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    (folder / "1_Pooling").mkdir()
    flags = {f"pooling_mode_{m}": False for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags, **pooling_config}))
    return folder


@pytest.mark.parametrize("flag, mode", [("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"),
                                        ("pooling_mode_max_tokens", "max")])
def test_embedder_auto_pooling_reads_sentence_transformers_config(tmp_path, tiny_model_dir, flag, mode):
    folder = _sentence_transformers_folder(tmp_path, tiny_model_dir, {flag: True})
    auto = BertEmbedder(model=folder).fit()
    assert auto.pooling_ == mode
    np.testing.assert_allclose(auto.transform(EMBED_TEXTS),
                               BertEmbedder(model=folder, pooling=mode).fit().transform(EMBED_TEXTS), atol=1e-6)
    assert bertkit.load(auto.save(tmp_path / "saved")).pooling_ == mode


def test_embedder_auto_pooling_is_mean_elsewhere_and_warns_on_what_it_cannot_compute(tmp_path, tiny_model_dir):
    assert BertEmbedder(model=tiny_model_dir).fit().pooling_ == "mean"  # no modules.json
    folder = _sentence_transformers_folder(tmp_path, tiny_model_dir, {"pooling_mode_mean_sqrt_len_tokens": True})
    with pytest.warns(UserWarning, match="pooling_mode_mean_sqrt_len_tokens.*using 'mean'"):
        assert BertEmbedder(model=folder).fit().pooling_ == "mean"
    assert BertEmbedder(model=folder, pooling="cls").fit().pooling_ == "cls"  # an explicit choice wins


def test_default_model_auto_pooling_is_its_mean(default_model_dir):
    assert BertEmbedder().fit().pooling_ == "mean"


@pytest.mark.parametrize("pooling", ["mean", "cls", "max", "pooler"])
def test_embedder_pooling_matches_the_encoder(tiny_model_dir, pooling):
    emb = BertEmbedder(model=tiny_model_dir, pooling=pooling, normalize=False).fit(EMBED_TEXTS)
    vectors = emb.transform(EMBED_TEXTS)
    out, mask = _reference_states(tiny_model_dir, EMBED_TEXTS)
    hidden, mask3 = out["last_hidden_state"], mask.unsqueeze(-1).float()
    want = {
        "mean": lambda: (hidden * mask3).sum(1) / mask3.sum(1),
        "cls": lambda: hidden[:, 0],
        "max": lambda: hidden.masked_fill(mask3 == 0, -1e9).amax(1),
        "pooler": lambda: out["pooler_output"],
    }[pooling]().numpy()
    assert vectors.shape == (len(EMBED_TEXTS), 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, want, atol=1e-5)


def test_embedder_normalize_and_layers(tiny_model_dir):
    raw = BertEmbedder(model=tiny_model_dir, normalize=False).fit().transform(EMBED_TEXTS)
    unit = BertEmbedder(model=tiny_model_dir).fit().transform(EMBED_TEXTS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)

    two = BertEmbedder(model=tiny_model_dir, layers=2, normalize=False).fit().transform(EMBED_TEXTS)
    out, mask = _reference_states(tiny_model_dir, EMBED_TEXTS, output_hidden_states=True)
    hidden = torch.stack(out["hidden_states"][-2:]).mean(0)
    mask3 = mask.unsqueeze(-1).float()
    np.testing.assert_allclose(two, ((hidden * mask3).sum(1) / mask3.sum(1)).numpy(), atol=1e-5)
    assert not np.allclose(two, raw)

    with pytest.raises(InputError, match=r"The 'layers' parameter of BertEmbedder \(3\) exceeds the model's 2 layers"):
        BertEmbedder(model=tiny_model_dir, layers=3).fit()


@pytest.mark.parametrize("attention", ["sdpa", "eager", "chunked"])
def test_attention_backends_give_the_same_vectors(tiny_model_dir, attention, fitted):
    emb = BertEmbedder(model=tiny_model_dir, attention=attention, max_length=FAST["max_length"]).fit()
    assert emb.model_.attention_name == attention
    np.testing.assert_allclose(emb.transform(EMBED_TEXTS), fitted[BertEmbedder].transform(EMBED_TEXTS), atol=1e-5)


def test_unknown_attention_backend_is_refused_at_fit(tiny_model_dir):
    with pytest.raises(bertkit.UnknownNameError, match=r"Unknown attention backend 'flash9'. Known attention backends: 'sdpa', 'eager'"):
        BertEmbedder(model=tiny_model_dir, attention="flash9").fit()


def test_embedder_pandas_output_and_feature_names(fitted):
    emb = clone(fitted[BertEmbedder]).fit()
    names = emb.get_feature_names_out()
    np.testing.assert_array_equal(names, [f"bertembedder{i}" for i in range(32)])
    texts = pd.Series(EMBED_TEXTS, index=[40, 10, 30, 20], name="review")
    emb.set_output(transform="pandas")
    frame = emb.transform(texts)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == [40, 10, 30, 20]
    assert list(frame.columns) == list(names)
    np.testing.assert_allclose(frame.to_numpy(), fitted[BertEmbedder].transform(EMBED_TEXTS), atol=1e-6)


def test_embedder_encodes_identical_texts_once(fitted, monkeypatch):
    emb = fitted[BertEmbedder]
    calls = []
    real = _base.predict_rows

    def spy(model, data, *args, **kwargs):
        calls.append(data.n_examples)
        return real(model, data, *args, **kwargs)

    monkeypatch.setattr(_base, "predict_rows", spy)
    texts = ["the cat sat", "good film", "the cat sat", "the cat sat", "good film", "dog"]
    vectors = emb.transform(texts)
    assert calls == [3]  # three distinct texts
    assert vectors.shape == (6, 32)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[0], vectors[3])
    np.testing.assert_array_equal(vectors[1], vectors[4])
    np.testing.assert_allclose(vectors, emb.transform(["the cat sat", "good film", "dog"])[[0, 1, 0, 0, 1, 2]],
                               atol=1e-6)


def test_embedder_windows_cover_long_texts(tiny_model_dir):
    emb = BertEmbedder(model=tiny_model_dir, long_text="window", max_length=16, stride=4, normalize=False)
    vectors = emb.fit().transform([LONG_POS, "good film"])
    truncated = emb.set_params(long_text="truncate").transform([LONG_POS, "good film"])
    np.testing.assert_allclose(vectors[1], truncated[1], atol=1e-6)
    assert not np.allclose(vectors[0], truncated[0])


def test_embedder_mean_pooling_matches_transformers(default_model_dir):
    transformers = pytest.importorskip("transformers")
    texts = ["A man is playing a guitar.", "Someone makes music on stage tonight.", "Cats sleep."]
    vectors = BertEmbedder(model="default", normalize=False, device="cpu").fit().transform(texts)
    tokenizer = transformers.AutoTokenizer.from_pretrained(default_model_dir)
    model = transformers.AutoModel.from_pretrained(default_model_dir).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    want = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors, want, atol=1e-5)


# ============================================================== bad input, with the messages
def _clf(model):
    return _make(BertClassifier, model, n_epochs=1)


def _reg(model):
    return _make(BertRegressor, model, n_epochs=1)


FIT_ERRORS = [
    pytest.param(_clf, ["good film", None, "bad"], ["a", "b", "a"],
                 r"BertClassifier expects text: X row 1 is a missing value \(None/NaN\).*fillna", id="none"),
    pytest.param(_reg, pd.Series(["good film", np.nan]), [1.0, 2.0],
                 r"BertRegressor expects text: X row 1 is a missing value \(None/NaN\)", id="nan"),
    pytest.param(_clf, ["good film", 5], ["a", "b"],
                 r"X row 1 is a int \(5\).*\.astype\(str\)", id="int"),
    pytest.param(_clf, [], [], r"BertClassifier got an empty X: it needs at least one text", id="empty"),
    pytest.param(_clf, ["a", "b", "c"], ["x", "y"],
                 r"X and y have different lengths \(3 texts, 2 targets\)", id="lengths"),
    pytest.param(_clf, ["a", "b", "c"], ["x", "x", "x"],
                 r"BertClassifier needs at least 2 classes in y; got only 'x'", id="one-class"),
    pytest.param(_clf, np.array([["a", "b", "c"]] * 2, dtype=object), ["x", "y"],
                 r"takes 1 column of texts or 2 columns of text pairs. Got 3 columns", id="3-columns"),
    pytest.param(_clf, "good film", ["x"],
                 r"expects a list of texts, got a single str. Wrap it in a list: \['good film'\]", id="str"),
    pytest.param(_clf, ["a", "b", "c"], [0.5, 1.25, 3.0],
                 r"BertClassifier needs class labels; y looks 'continuous'. For numeric targets use BertRegressor",
                 id="continuous-y"),
    pytest.param(_clf, ["a", "b", "c"], ["x", None, "y"],
                 r"y contains missing values \(None/NaN\)", id="missing-label"),
    pytest.param(_clf, ["a", "b", "c"], ["x", np.nan, "y"],  # not a class called 'nan'
                 r"BertClassifier: y contains missing values \(None/NaN\); every text needs a label",
                 id="nan-label-in-list"),
    pytest.param(_clf, ["a", "b", "c"], pd.Series(["x", np.nan, "y"]),
                 r"y contains missing values \(None/NaN\)", id="nan-label-in-series"),
    pytest.param(_reg, ["a", "b"], ["high", "low"],
                 r"BertRegressor needs numeric targets; y could not be read as numbers.*use BertClassifier",
                 id="non-numeric-y"),
    pytest.param(_reg, ["a", "b"], [1.0, np.inf], r"y contains NaN or infinite values", id="inf-y"),
    pytest.param(lambda m: _clf(m).set_params(class_weight={"pos": 2.0, "meh": 1.0}), ["a", "b"], ["pos", "neg"],
                 r"The 'class_weight' parameter of BertClassifier names labels not in y: \['meh'\]", id="class_weight"),
    pytest.param(lambda m: _clf(m).set_params(class_weight="balanced"), ["a", "b"], [["x"], ["y"]],
                 r"'class_weight' parameter of BertClassifier is for single-label", id="class_weight-multilabel"),
    pytest.param(lambda m: _clf(m).set_params(threshold="tune"), ["a", "b"], [["x"], ["x", "y"]],
                 r"threshold='tune' tunes per-label thresholds on the validation split; set validation_fraction",
                 id="tune-without-validation"),
    pytest.param(lambda m: _clf(m).set_params(n_iter_no_change=2), ["a", "b"], ["x", "y"],
                 r"The 'n_iter_no_change' parameter of BertClassifier stops on validation scores; set validation_fraction",
                 id="n_iter_no_change-without-validation"),
    pytest.param(lambda m: _reg(m).set_params(n_iter_no_change=2), ["a", "b"], [1.0, 2.0],
                 r"The 'n_iter_no_change' parameter of BertRegressor stops on validation", id="reg-n_iter_no_change"),
    pytest.param(lambda m: _clf(m).set_params(validation_fraction=0.9), ["a", "b"], ["x", "y"],
                 r"validation_fraction=0.9 leaves no data on one side of the split of 2 texts", id="tiny-validation"),
]


@pytest.mark.parametrize(("make", "X", "y", "message"), FIT_ERRORS)
def test_bad_fit_input(make, X, y, message, tiny_model_dir):
    est = make(tiny_model_dir)
    with pytest.raises(InputError, match=message):
        est.fit(X, y)
    assert not hasattr(est, "model_")


def test_input_errors_are_value_errors():
    assert issubclass(InputError, ValueError) and issubclass(InputError, bertkit.BertkitError)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (["good", None], r"BertClassifier expects text: X row 1 is a missing value"),
        ([3.5], r"X row 0 is a float \(3.5\)"),
        ("good film", r"got a single str"),
        ([], r"got an empty X"),
        ([("good", "film")], r"was fitted on single texts \(1 column\) but X has 2 column\(s\)"),
        (pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"]}), r"Got 3 columns"),
        (42, r"expects a list, array or pandas Series of str .* Got int"),
    ],
)
def test_bad_predict_input(fitted_clf, X, message):
    with pytest.raises(InputError, match=message):
        fitted_clf.predict(X)


def test_embedder_bad_input(fitted):
    emb = fitted[BertEmbedder]
    with pytest.raises(InputError, match=r"BertEmbedder expects text: X row 0 is a missing value"):
        emb.transform([np.nan])
    with pytest.raises(InputError, match=r"BertEmbedder got an empty X"):
        emb.transform(pd.Series([], dtype=object))


def test_score_refuses_labels_never_seen_in_fit(fitted_clf):
    with pytest.raises(InputError, match=r"BertClassifier.score got labels the model never saw in fit: \['meh'\]. Known labels: \['neg', 'pos'\]"):
        fitted_clf.score(["good film", "bad film"], ["pos", "meh"])


# ============================================================== weights: samples and classes
IMBALANCED_X = POSITIVE[:3] + NEGATIVE * 3
IMBALANCED_Y = np.array(["pos"] * 3 + ["neg"] * len(NEGATIVE) * 3)


@pytest.mark.parametrize(
    "weighting",
    [
        {"sample_weight": (IMBALANCED_Y == "pos").astype(float)},
        {"class_weight": {"neg": 0.0, "pos": 1.0}},
    ],
    ids=["sample_weight", "class_weight"],
)
def test_zero_weight_on_a_class_means_it_is_never_predicted(tiny_model_dir, weighting):
    clf = _make(BertClassifier, tiny_model_dir, n_epochs=3, class_weight=weighting.get("class_weight"))
    clf.fit(IMBALANCED_X, IMBALANCED_Y, sample_weight=weighting.get("sample_weight"))
    assert set(clf.predict(IMBALANCED_X)) == {"pos"}  # although 'neg' is 6 in 7 of the data
    unweighted = _make(BertClassifier, tiny_model_dir, n_epochs=3).fit(IMBALANCED_X, IMBALANCED_Y)
    assert (unweighted.predict(IMBALANCED_X) == "neg").sum() > len(IMBALANCED_X) // 2


def test_balanced_class_weight_favours_the_minority(tiny_model_dir):
    plain = _make(BertClassifier, tiny_model_dir, n_epochs=2).fit(IMBALANCED_X, IMBALANCED_Y)
    balanced = _make(BertClassifier, tiny_model_dir, n_epochs=2, class_weight="balanced")
    balanced.fit(IMBALANCED_X, IMBALANCED_Y)
    p_plain = plain.predict_proba(IMBALANCED_X)[:, 1].mean()
    p_balanced = balanced.predict_proba(IMBALANCED_X)[:, 1].mean()
    assert p_balanced > p_plain + 0.05


def test_unit_sample_weights_change_nothing(tiny_model_dir, toy_data, fitted_clf):
    X, labels = toy_data
    weighted = _make(BertClassifier, tiny_model_dir).fit(X, labels, sample_weight=np.full(len(X), 3.0))
    np.testing.assert_allclose(weighted.predict_proba(X), fitted_clf.predict_proba(X), atol=1e-5)


def test_history_keys(fitted_clf, tiny_model_dir, toy_data):
    assert [sorted(h) for h in fitted_clf.history_] == [["epoch", "time_s", "train_loss"]] * 2
    assert fitted_clf.best_epoch_ is None
    X, labels = toy_data
    reg = _make(BertRegressor, tiny_model_dir, validation_fraction=0.25).fit(X, _regression_targets(labels))
    assert [sorted(h) for h in reg.history_] == [["epoch", "time_s", "train_loss", "valid_loss", "valid_score"]] * 2
    assert all(np.isfinite(list(h.values())).all() for h in reg.history_)
    assert reg.best_epoch_ in (1, 2)
