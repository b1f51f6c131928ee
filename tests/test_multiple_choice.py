"""BertMultipleChoice: the scikit-learn contract, the choice reshaping, CommonsenseQA input.

Most tests fit the tiny random checkpoint of ``estimator_fixtures`` on a toy task (pick the
positive word among three); one reads a CommonsenseQA subset through
``bertkit.datasets.read_multiple_choice``. Real-model fine-tuning on CommonsenseQA is ``slow``.
"""

# ruff: noqa: F811  (fixtures imported from estimator_fixtures are test arguments)

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from estimator_fixtures import FAST, one_torch_thread, tiny_model_dir  # noqa: F401
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

import bertkit
from bertkit import InputError
from bertkit.datasets import read_multiple_choice
from bertkit.estimators._choice import BertMultipleChoice

LEARN = dict(FAST, batch_size=4, n_epochs=6, warmup_ratio=0.0)
PROMPTS = ["the film was", "the movie was", "the plot was", "the acting was"]
GOOD, BAD = ["good", "great", "fun"], ["bad", "awful", "dull"]


def toy_questions():
    """36 questions: one positive word among two negative ones, at every position."""
    X, y = [], []
    for p, prompt in enumerate(PROMPTS):
        for g, good in enumerate(GOOD):
            for position in range(3):
                others = [BAD[(g + p) % 3], BAD[(g + p + 1) % 3]]
                choices = others[:position] + [good] + others[position:]
                X.append((prompt, choices))
                y.append(position)
    return X, np.array(y)


@pytest.fixture(scope="module")
def toy():
    return toy_questions()


@pytest.fixture(scope="module")
def fitted(tiny_model_dir, toy):
    X, y = toy
    return BertMultipleChoice(model=tiny_model_dir, **LEARN).fit(X, y)


# ============================================================== parameters and contract
def test_clone_and_params_round_trip():
    params = {
        "model": "/nonexistent/model",
        "max_length": 48,
        "batch_size": 4,
        "learning_rate": 1e-4,
        "n_epochs": 7,
        "random_state": 3,
        "freeze_layers": 1,
    }
    est = BertMultipleChoice(**params)
    assert {k: est.get_params()[k] for k in params} == params
    assert est.get_params()["model"] == "/nonexistent/model"
    cloned = clone(est)
    assert cloned is not est and cloned.get_params() == est.get_params()
    assert est.set_params(max_length=64) is est and clone(est).get_params()["max_length"] == 64
    defaults = BertMultipleChoice().get_params()
    assert (
        defaults["model"],
        defaults["max_length"],
        defaults["batch_size"],
        defaults["attention"],
        defaults["device"],
        defaults["precision"],
    ) == ("default", 128, 16, "sdpa", "auto", "auto")


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
        "BertMultipleChoice", BertMultipleChoice(model="/nonexistent/model")
    )


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "decision_function", "predict_choice", "score", "save"]
)
def test_not_fitted_error(method, tmp_path):
    X = [("a prompt", ["one", "two"])]
    args = {"score": (X, [0]), "save": (tmp_path / "out",)}.get(method, (X,))
    with pytest.raises(NotFittedError, match="This BertMultipleChoice instance is not fitted yet"):
        getattr(BertMultipleChoice(model="/nonexistent/model"), method)(*args)


@pytest.mark.parametrize(
    ("params", "name", "got"),
    [
        ({"max_length": 4}, "max_length", "Got 4"),
        ({"learning_rate": 0.0}, "learning_rate", "Got 0.0"),
        ({"n_epochs": 0}, "n_epochs", "Got 0"),
        ({"precision": "fp8"}, "precision", "Got 'fp8'"),
        ({"validation_fraction": 1.0}, "validation_fraction", "Got 1.0"),
    ],
)
def test_invalid_params_name_the_parameter(params, name, got, toy):
    est = BertMultipleChoice(model="/nonexistent/model", **params)
    with pytest.raises(InvalidParameterError) as info:
        est.fit(*toy)
    assert f"The '{name}' parameter of BertMultipleChoice must be" in str(info.value)
    assert got in str(info.value)


# ============================================================== fitting and predicting
def test_fit_learns_the_toy_task(fitted, toy):
    X, y = toy
    assert fitted.n_choices_ == 3 and fitted.classes_.tolist() == [0, 1, 2]
    assert [h["epoch"] for h in fitted.history_] == list(range(1, 7))
    assert fitted.history_[-1]["train_loss"] < 0.5 * fitted.history_[0]["train_loss"]
    proba = fitted.predict_proba(X)
    assert proba.shape == (36, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    predicted = fitted.predict(X)
    np.testing.assert_array_equal(predicted, proba.argmax(axis=1))
    assert fitted.score(X, y) == np.mean(predicted == y) >= 0.9
    # unseen combinations: a good word is picked whatever its position
    new = [("the plot was", ["dull", "fun", "awful"]), ("the film was", ["great", "bad", "dull"])]
    assert fitted.predict(new).tolist() == [1, 0]
    assert fitted.predict_choice(new).tolist() == ["fun", "great"]


def test_per_choice_scoring_equals_the_full_batch_and_first_token_only(fitted, toy):
    """predict runs each (prompt, choice) row as (r, 1, s); the scores must equal the
    model run on (n, k, s) at once, with and without first_token_only."""
    X, _ = toy
    X = X[:5]
    tokenizer = fitted.tokenizer_
    first = [p for p, choices in X for _ in choices]
    second = [c for _, choices in X for c in choices]
    enc = tokenizer(
        first,
        second,
        padding=True,
        truncation=True,
        max_length=fitted.max_length,
        return_tensors="pt",
    )
    inputs = {k: v.view(len(X), 3, -1) for k, v in enc.items() if k != "special_tokens_mask"}
    with torch.no_grad():
        full = fitted.model_(**inputs).logits.numpy()
    np.testing.assert_allclose(fitted.decision_function(X), full, atol=1e-5)
    plain = copy.deepcopy(fitted)
    plain._forward_kwargs = {}
    np.testing.assert_allclose(plain.decision_function(X), full, atol=1e-5)
    assert BertMultipleChoice._forward_kwargs == {"first_token_only": True}


def test_predict_takes_another_number_of_choices(fitted):
    X3 = [("the film was", ["fun", "awful", "dull"]), ("the plot was", ["bad", "dull", "good"])]
    X2 = [(p, c[:2]) for p, c in X3]
    scores3, scores2 = fitted.decision_function(X3), fitted.decision_function(X2)
    assert scores2.shape == (2, 2)
    np.testing.assert_allclose(scores2, scores3[:, :2], atol=1e-5)  # each choice scored on its own
    assert fitted.predict_proba(X2).shape == (2, 2)


def test_y_as_text_or_index_and_dataframe_input(tiny_model_dir, toy):
    X, y = toy
    X, y = X[:12], y[:12]
    texts = [choices[i] for (_, choices), i in zip(X, y, strict=True)]
    params = dict(FAST, n_epochs=1)
    by_index = BertMultipleChoice(model=tiny_model_dir, **params).fit(X, pd.Series(y))
    by_text = BertMultipleChoice(model=tiny_model_dir, **params).fit(X, texts)
    np.testing.assert_allclose(by_index.predict_proba(X), by_text.predict_proba(X), atol=1e-6)
    frame = pd.DataFrame(
        {"id": range(12), "prompt": [p for p, _ in X], "choices": [c for _, c in X]}
    )
    np.testing.assert_allclose(by_index.predict_proba(frame), by_index.predict_proba(X), atol=1e-6)
    assert by_text.score(X, texts) == by_text.score(X, y)


def test_validation_split_keeps_the_best_epoch(tiny_model_dir, toy):
    X, y = toy
    est = BertMultipleChoice(
        model=tiny_model_dir, **dict(LEARN, n_epochs=3), validation_fraction=0.25
    )
    est.fit(X, y)
    scores = [h["valid_score"] for h in est.history_]
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert est.best_epoch_ == int(np.argmax(scores)) + 1


# ============================================================== bad input
BAD_X = [
    ([("q", ["a", "b", "c"]), ("q", ["a", "b"])], r"row 1 has 2 choices but row 0 has 3"),
    ([("q", ["a", "b"]), ("q", ["only"])], r"row 1 has 1 choice\(s\); a question needs at least 2"),
    ([("q", ["a", "b"]), (float("nan"), ["a", "b"])], r"the prompt of row 1 is a missing value"),
    ([("q", ["a", "b"]), (3, ["a", "b"])], r"the prompt of row 1 is a int \(3\)"),
    ([("q", ["a", "b"]), ("q", ["a", None])], r"choice 1 of row 1 is a missing value \(None/NaN\)"),
    ([("q", ["a", "b"]), ("q", ["a", 7])], r"choice 1 of row 1 is a int \(7\)"),
    ([("q", "ab")], r"the choices of row 0 are a str"),
    ([("q",)], r"row 0 is a tuple .*not a \(prompt, choices\) pair"),
    ([], r"got an empty X"),
    ("a question", r"expects a table of questions, got str"),
    (pd.DataFrame({"question": ["q"], "choices": [["a", "b"]]}), r"\['prompt'\] missing"),
]


@pytest.mark.parametrize(("X", "message"), BAD_X)
def test_bad_X_raises_naming_the_row(X, message, fitted):
    with pytest.raises(InputError, match=message) as info:
        fitted.predict(X)
    assert str(info.value).startswith("BertMultipleChoice")
    with pytest.raises(InputError, match=message):
        BertMultipleChoice(model="/nonexistent/model").fit(X, [0] * max(len(X), 1))


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (
            [0, 3],
            r"answer of row 1 is 3, out of range for 3 choices; an answer index must be in 0..2",
        ),
        ([0, -1], r"answer of row 1 is -1, out of range"),
        ([0, "zebra"], r"answer of row 1, 'zebra', is not among its choices \['c', 'd', 'e'\]"),
        ([0, True], r"answer of row 1 is a bool"),
        ([0, 1.0], r"answer of row 1 is a float"),
        ([0], r"X and y have different lengths \(2 questions, 1 answers\)"),
    ],
)
def test_bad_y_raises(y, message):
    X = [("q", ["a", "b", "c"]), ("r", ["c", "d", "e"])]
    with pytest.raises(InputError, match=message):
        BertMultipleChoice(model="/nonexistent/model").fit(X, y)


# ============================================================== persistence
_RELOAD = textwrap.dedent("""
    import json, pickle, sys
    from pathlib import Path
    import numpy as np
    import bertkit
    import bertkit.estimators._choice

    root = Path(sys.argv[1])
    X = [tuple(row) for row in json.loads((root / "X.json").read_text())]
    for how, est in (("pickle", pickle.loads((root / "est.pkl").read_bytes())),
                     ("load", bertkit.load(root / "saved"))):
        assert type(est).__name__ == "BertMultipleChoice", type(est)
        np.save(root / f"{how}.npy", est.predict_proba(X))
        np.save(root / f"{how}-labels.npy", est.predict(X))
""")


def test_pickle_and_load_in_a_fresh_process(fitted, tmp_path):
    import json

    X = [("the film was", ["fun", "awful", "dull"]), ("a cat sat on", ["mat", "dog", "zebra"])]
    (tmp_path / "X.json").write_text(json.dumps(X))
    blob = pickle.dumps(fitted)
    assert b"_rebuild_tensor" not in blob
    (tmp_path / "est.pkl").write_bytes(blob)
    fitted.save(tmp_path / "saved")
    done = subprocess.run(
        [sys.executable, "-c", _RELOAD, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    want = fitted.predict_proba(X)
    for how in ("pickle", "load"):
        np.testing.assert_allclose(np.load(tmp_path / f"{how}.npy"), want, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(np.load(tmp_path / f"{how}-labels.npy"), fitted.predict(X))
    loaded = bertkit.load(tmp_path / "saved")
    assert loaded.n_choices_ == 3 and loaded.classes_.tolist() == [0, 1, 2]
    assert loaded.get_params() == fitted.get_params()


def test_saved_folder_loads_in_transformers(fitted, tmp_path):
    transformers = pytest.importorskip("transformers")
    folder = fitted.save(tmp_path / "mc")
    X = [("the film was", ["fun", "awful", "dull"]), ("the acting was", ["bad", "great", "dull"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.BertForMultipleChoice.from_pretrained(folder).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    enc = tokenizer(
        [p for p, c in X for _ in c],
        [x for _, c in X for x in c],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = model(**{k: v.view(2, 3, -1) for k, v in enc.items()}).logits.numpy()
    np.testing.assert_allclose(fitted.decision_function(X), logits, atol=1e-5)


# ============================================================== real data
def test_commonsenseqa_subset(tiny_model_dir, data_dir):
    frame = read_multiple_choice(data_dir / "commonsenseqa" / "dev_rand_split.jsonl")
    assert len(frame) == 1221 and set(frame["choices"].map(len)) == {5}
    train, test = frame.iloc[:40], frame.iloc[40:60]
    est = BertMultipleChoice(model=tiny_model_dir, **dict(FAST, n_epochs=1)).fit(
        train, train["label"]
    )
    assert est.n_choices_ == 5 and len(est.history_) == 1
    proba = est.predict_proba(test)
    assert proba.shape == (20, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    predicted = est.predict(test)
    assert est.score(test, test["label"]) == pytest.approx(
        np.mean(predicted == test["label"].to_numpy())
    )
    pairs = list(zip(test["prompt"], test["choices"], strict=True))
    np.testing.assert_allclose(est.predict_proba(pairs), proba, atol=1e-6)  # same as list input
    answers = [c[i] for c, i in zip(test["choices"], test["label"], strict=True)]
    assert est.score(test, answers) == est.score(test, test["label"])


@pytest.mark.slow
def test_default_model_beats_chance_on_commonsenseqa(data_dir, default_model_dir):
    """Real fine-tuning (minutes on a CPU): 1000 training questions, 300 dev questions."""
    train = read_multiple_choice(data_dir / "commonsenseqa" / "train_rand_split.jsonl").iloc[:1000]
    dev = read_multiple_choice(data_dir / "commonsenseqa" / "dev_rand_split.jsonl").iloc[:300]
    est = BertMultipleChoice(max_length=64, n_epochs=2, random_state=0, device="cpu")
    est.fit(train, train["label"])
    assert est.score(dev, dev["label"]) > 0.25  # chance is 0.2
