"""BertTokenClassifier: per-word tagging, long-sentence windows, persistence and input checks.

Most tests fit the tiny random checkpoint of ``estimator_fixtures`` (letters and
``##``-letters in its vocabulary, so any unknown word splits into one piece per
letter: plenty of multi-piece words and long sentences). The real default model is
used once, on CoNLL-2003, where the behaviour depends on real weights.
"""

# ruff: noqa: F811  (fixtures imported from estimator_fixtures are test arguments)

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from estimator_fixtures import (  # noqa: F401  (fixtures are used as test arguments)
    one_torch_thread,
    tiny_model_dir,
)
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

import bertkit
from bertkit import InputError
from bertkit.datasets import read_conll
from bertkit.estimators._token import (
    BertTokenClassifier,
    aggregate,
    choose_windows,
    plan_windows,
    window_labels,
)

#: Fast settings for the tiny checkpoint.
FAST = dict(max_length=64, batch_size=4, learning_rate=3e-3, n_epochs=15, warmup_ratio=0.0,
            random_state=0, device="cpu", precision="fp32")

# Toy NER: animals (one whole-word piece, or a letter-split name after it) and objects.
# "rex" and "tom" are not in the tiny vocabulary: they split into r ##e ##x, t ##o ##m.
TOY_X = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["a", "dog", "ran"],
    ["the", "cat", "rex", "ran"],
    ["a", "dog", "tom", "sat", "on", "a", "mat"],
    ["the", "film", "was", "fun"],
    ["a", "cat", "and", "a", "dog"],
] * 3
TOY_Y = [
    ["O", "B-ANI", "O", "O", "O", "B-OBJ"],
    ["O", "B-ANI", "O"],
    ["O", "B-ANI", "I-ANI", "O"],
    ["O", "B-ANI", "I-ANI", "O", "O", "O", "B-OBJ"],
    ["O", "O", "O", "O"],
    ["O", "B-ANI", "O", "O", "B-ANI"],
] * 3


@pytest.fixture(scope="module")
def tagger(tiny_model_dir):
    """A tiny tagger fitted on the toy NER data (read-only for the tests)."""
    return BertTokenClassifier(model=tiny_model_dir, **FAST).fit(TOY_X, TOY_Y)


def _copy(est, **params):
    """A deep copy of a fitted estimator (through pickle) with ``params`` set."""
    return pickle.loads(pickle.dumps(est)).set_params(**params)


def _context_free(est):
    """Make ``est.model_`` read every token on its own: no attention output, no positions.

    The logits of a token then depend only on the token itself, so the same word gets
    the same logits in any window and the windowed predictions must equal the whole ones.
    """
    with torch.no_grad():
        for layer in est.model_.bert.encoder.layer:
            layer.attention.output.dense.weight.zero_()
            layer.attention.output.dense.bias.zero_()
        est.model_.bert.embeddings.position_embeddings.weight.zero_()
    return est


# ============================================================== parameters and the contract
def test_clone_and_params_round_trip():
    params = {"model": "/nonexistent/model", "max_length": 48, "stride": 8, "aggregation": "mean",
              "label_all_tokens": True, "scheme": "iobes", "learning_rate": 1e-4, "random_state": 3}
    est = BertTokenClassifier(**params)
    assert {k: est.get_params()[k] for k in params} == params
    cloned = clone(est)
    assert cloned is not est and cloned.get_params() == est.get_params()
    assert est.set_params(max_length=64, aggregation="max") is est
    assert est.get_params()["max_length"] == 64 and clone(est).get_params()["aggregation"] == "max"
    defaults = BertTokenClassifier().get_params()
    assert defaults["model"] == "default" and defaults["scheme"] == "iob2"
    assert defaults["aggregation"] == "first" and defaults["label_all_tokens"] is False


@pytest.mark.parametrize(
    "check",
    ["check_no_attributes_set_in_init", "check_get_params_invariance", "check_set_params",
     "check_parameters_default_constructible", "check_estimator_cloneable",
     "check_estimator_repr", "check_do_not_raise_errors_in_init_or_set_params",
     "check_mixin_order"],
)
def test_sklearn_checks_that_need_no_numeric_data(check):
    est = BertTokenClassifier(model="/nonexistent/model")
    getattr(estimator_checks, check)("BertTokenClassifier", est)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "save"])
def test_not_fitted_error(method, tmp_path):
    est = BertTokenClassifier(model="/nonexistent/model")
    args = {"score": ([["a"]], [["O"]]), "save": (tmp_path / "out",)}.get(method, ([["a"]],))
    with pytest.raises(NotFittedError, match="This BertTokenClassifier instance is not fitted yet"):
        getattr(est, method)(*args)


@pytest.mark.parametrize(
    ("params", "name", "got"),
    [
        ({"aggregation": "avg"}, "aggregation", "Got 'avg'"),
        ({"max_length": 4}, "max_length", "Got 4"),
        ({"stride": -1}, "stride", "Got -1"),
        ({"label_all_tokens": "yes"}, "label_all_tokens", "Got 'yes'"),
        ({"learning_rate": 0.0}, "learning_rate", "Got 0.0"),
    ],
)
def test_invalid_params_name_the_parameter(params, name, got):
    est = BertTokenClassifier(model="/nonexistent/model", **params)
    message = rf"'{name}' parameter of BertTokenClassifier.*{got}"
    with pytest.raises(InvalidParameterError, match=message):
        est.fit([["a"]], [["O"]])


def test_unknown_scheme_and_impossible_stride_are_input_errors():
    est = BertTokenClassifier(model="/nonexistent/model", scheme="bilo")
    with pytest.raises(InputError, match=r"'scheme' parameter of BertTokenClassifier must be "
                       r"one of \{'iob2', 'iob1', 'iobes', 'bilou', 'io'\}.*Got 'bilo'"):
        est.fit([["a"]], [["O"]])
    est = BertTokenClassifier(model="/nonexistent/model", max_length=16, stride=14)
    with pytest.raises(InputError, match=r"'stride' parameter of BertTokenClassifier \(14\) must "
                       r"be smaller than max_length \(16\) minus the 2 special tokens"):
        est.fit([["a"]], [["O"]])


# ============================================================== bad input
@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        ([["the", "cat"], ["a"]], [["O", "B-ANI"], ["O", "O"]],
         r"sentence 1 has 1 words but 2 tags\. Pass exactly one tag per word"),
        (["the cat sat"], [["O", "B-ANI"]], r"sentence 0 has 3 words but 2 tags"),
        ([["O", "B-ANI"], ["O"]], [["the", "cat"], ["a"]],
         r"X holds tags \(every word is 'O' or a tag like 'B-ANI'\) where words are expected\. "
         r"Pass the words as X and the tags as y"),
        ([["the", "cat"], ["a"]], ["O", "O"],
         r"y row 0 is a str \('O'\), not a list of tags\. y needs one list of str tags"),
        ([["the", "cat"]], ["O", "B-ANI"],
         r"X and y have different lengths \(1 sentences, 2 tag lists\).*wrap X and y in a list"),
        ([[], ["a"]], [[], ["O"]],
         r"X row 0 is an empty word list; every sentence needs at least one word"),
        (["   ", "a"], [[], ["O"]], r"X row 0 is an empty or whitespace-only string"),
        ([["a", 3]], [["O", "O"]], r"expects words as str: X row 0, word 1 is a int \(3\)"),
        ([["a", None]], [["O", "O"]], r"X row 0, word 1 is a missing value \(None/NaN\)"),
        ([["a", ""]], [["O", "O"]], r"X row 0, word 1 is an empty or whitespace-only string"),
        ([["a", "b"]], [["O", 1]], r"y row 0, tag 1 is a int \(1\); tags must be str"),
        ("the cat", [["O", "B-ANI"]], r"got a single str\. Wrap it in a list: \['the cat'\]"),
        ([None], [["O"]], r"X row 0 is a missing value \(None/NaN\)"),
        ([["a"]], None, r"needs y: one list of tags per sentence"),
        (pd.DataFrame({"a": [["x"]], "b": [["y"]]}), [["O"]], r"got a DataFrame with 2 columns"),
        ([["a"]], [], r"X and y have different lengths \(1 sentences, 0 tag lists\)"),
        ([], [], r"got an empty X: it needs at least one sentence"),
    ],
)
def test_bad_input_in_fit(X, y, message):
    est = BertTokenClassifier(model="/nonexistent/model")  # input is checked before the model loads
    with pytest.raises(InputError, match=r"BertTokenClassifier.*" + message):
        est.fit(X, y)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        ([["the", 2.5]], r"X row 0, word 1 is a float \(2\.5\)"),
        ([["the"], []], r"X row 1 is an empty word list"),
        ([["B-ANI", "O"]], r"X holds tags"),
        ("the cat", r"got a single str"),
    ],
)
def test_bad_input_in_predict(tagger, X, message):
    for method in (tagger.predict, tagger.predict_proba):
        with pytest.raises(InputError, match=r"BertTokenClassifier.*" + message):
            method(X)


def test_bad_tags_in_score(tagger):
    with pytest.raises(InputError, match=r"BertTokenClassifier.score got tags the model never "
                       r"saw in fit: \['B-PER'\]\. Known tags: \['B-ANI', 'B-OBJ', 'I-ANI', 'O'\]"):
        tagger.score([["the", "cat"]], [["B-PER", "O"]])
    with pytest.raises(InputError, match=r"sentence 0 has 2 words but 1 tags"):
        tagger.score([["the", "cat"]], [["O"]])
    est = _copy(tagger, scheme="nope")
    with pytest.raises(InputError, match=r"'scheme' parameter of BertTokenClassifier.*Got 'nope'"):
        est.score([["the", "cat"]], [["O", "B-ANI"]])


# ============================================================== windows, labels, aggregation
def test_plan_windows_on_word_boundaries_with_overlap():
    # Eight words of 3, 1, 2, 4, 1, 3, 2, 2 pieces (18 pieces); windows of at most 6 pieces.
    bounds = np.array([0, 3, 4, 6, 10, 11, 14, 16, 18])
    windows = plan_windows(bounds, budget=6, stride=2)
    assert windows == [(0, 6), (4, 10), (10, 16), (14, 18)]
    for s, e in windows:  # on word boundaries, within the budget
        assert s in bounds and e in bounds and e - s <= 6
    assert plan_windows(bounds, budget=18, stride=2) == [(0, 18)]
    assert plan_windows(bounds, budget=6, stride=0) == [(0, 6), (6, 11), (11, 16), (16, 18)]
    # A word longer than the window is cut; the next window still advances.
    assert plan_windows(np.array([0, 1, 9, 10]), budget=4, stride=3) == [(0, 1), (1, 5), (9, 10)]


def test_each_word_is_read_where_it_has_the_most_context():
    bounds = np.array([0, 3, 4, 6, 10, 11, 14, 16, 18])
    windows = [(0, 6), (4, 11), (10, 16), (14, 18)]
    # Word 1 (piece 3) is at distance min(3, 2)=2 in window 0 and only in window 0.
    # Word 2 (pieces 4-5): window 0 -> min(4, 0)=0, window 1 -> min(0, 5)=0: a tie, the earlier.
    # Word 4 (piece 10): window 1 -> min(6, 0)=0, window 2 -> min(0, 5)=0 -> window 1.
    # Word 5 (pieces 11-13): window 2 -> min(1, 2)=1 (only window 2 holds its first piece).
    # Word 6 (pieces 14-15): window 2 -> min(4, 0)=0, window 3 -> min(0, 2)=0 -> window 2.
    assert choose_windows(bounds, windows).tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
    bounds = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8])  # one piece per word, windows of 5
    windows = [(0, 5), (2, 7), (3, 8)]
    # word 3: min(3,1)=1 / min(1,3)=1 / min(0,4)=0 -> 0 ; word 4: 0 / min(2,2)=2 / min(1,3)=1 -> 1
    # word 5: in windows 1 (min(3,1)=1) and 2 (min(2,2)=2) -> 2
    assert choose_windows(bounds, windows).tolist() == [0, 0, 0, 0, 1, 2, 2, 2]


def test_window_labels_on_first_pieces_or_all_pieces():
    bounds = np.array([0, 1, 4, 6])  # words of 1, 3 and 2 pieces
    targets = np.array([2, 0, 1])
    first_only = [-100, 2, 0, -100, -100, 1, -100, -100]
    assert window_labels(bounds, 0, 6, targets, False).tolist() == first_only
    assert window_labels(bounds, 0, 6, targets, True).tolist() == [-100, 2, 0, 0, 0, 1, 1, -100]
    # A window starting mid-sentence labels the words whose first piece it holds.
    assert window_labels(bounds, 1, 5, targets, False).tolist() == [-100, 0, -100, -100, 1, -100]
    assert window_labels(bounds, 1, 5, targets, True).tolist() == [-100, 0, 0, 0, 1, -100]


def test_aggregate_first_mean_max():
    proba = np.array([[0.6, 0.4], [0.1, 0.9], [0.3, 0.7]])
    np.testing.assert_allclose(aggregate(proba, "first"), [0.6, 0.4])
    np.testing.assert_allclose(aggregate(proba, "mean"), [1 / 3, 2 / 3])
    np.testing.assert_allclose(aggregate(proba, "max"), [0.1, 0.9])


# ============================================================== fit and predict
def test_learns_the_toy_task_and_outputs_per_word(tagger):
    assert tagger.classes_.tolist() == ["B-ANI", "B-OBJ", "I-ANI", "O"]
    assert [h["epoch"] for h in tagger.history_] == list(range(1, 16))
    assert tagger.history_[-1]["train_loss"] < tagger.history_[0]["train_loss"] / 3
    assert tagger.predict(TOY_X[:6]) == TOY_Y[:6]
    assert tagger.score(TOY_X, TOY_Y) == 1.0
    proba = tagger.predict_proba(TOY_X[:6])
    assert [p.shape for p in proba] == [(len(x), 4) for x in TOY_X[:6]]
    np.testing.assert_allclose([p.sum(axis=1) for p in proba][2], 1.0, rtol=1e-5)
    id2label = {"0": "B-ANI", "1": "B-OBJ", "2": "I-ANI", "3": "O"}
    assert tagger.model_.config.extras["id2label"] == id2label


def test_every_form_of_input_gives_the_same_predictions(tagger):
    X = [["the", "cat", "rex", "ran"], ["a", "dog", "tom"]]
    want = tagger.predict_proba(X)
    forms = [
        ["the cat rex ran", "a  dog\ttom"],
        pd.Series([["the", "cat", "rex", "ran"], ["a", "dog", "tom"]]),
        [("the", "cat", "rex", "ran"), np.array(["a", "dog", "tom"])],
        np.array(["the cat rex ran", "a dog tom"]),
    ]
    for form in forms:
        for got, expected in zip(tagger.predict_proba(form), want, strict=True):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert tagger.predict(["the cat rex ran"]) == [["O", "B-ANI", "I-ANI", "O"]]


def test_pandas_series_of_lists_in_fit(tiny_model_dir):
    X, y = pd.Series(TOY_X[:6]), pd.Series(TOY_Y[:6])
    a = BertTokenClassifier(model=tiny_model_dir, **{**FAST, "n_epochs": 1}).fit(X, y)
    b = BertTokenClassifier(model=tiny_model_dir, **{**FAST, "n_epochs": 1})
    b.fit(TOY_X[:6], TOY_Y[:6])
    for p, q in zip(a.predict_proba(TOY_X[:6]), b.predict_proba(TOY_X[:6]), strict=True):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-6)


@pytest.mark.parametrize("how", ["first", "mean", "max"])
def test_aggregation_over_the_sub_tokens_of_each_word(tagger, how):
    est = _copy(tagger, aggregation=how)
    words = ["the", "cat", "zebra", "on", "ox"]  # "zebra" is 5 pieces, "ox" 2
    enc = est.tokenizer_(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        token_proba = torch.softmax(est.model_(**enc)["logits"][0], dim=-1).numpy()
    word_ids = enc.word_ids()
    want = np.stack([aggregate(token_proba[[i for i, w in enumerate(word_ids) if w == j]], how)
                     for j in range(len(words))])
    np.testing.assert_allclose(est.predict_proba([words])[0], want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("how", ["first", "mean", "max"])
def test_windowed_predictions_equal_whole_sentence_predictions(tagger, how):
    est = _context_free(_copy(tagger, aggregation=how, max_length=128))
    rng = np.random.default_rng(0)
    vocab = ["the", "cat", "dog", "mat", "sat", "on", "zebra", "ox", "quilt", "rex", "a"]
    X = [list(rng.choice(vocab, size=n)) for n in (30, 45, 3)]
    whole = est.predict_proba(X)
    assert max(len(ids) for ids, _ in est._tokenize(X, est.tokenizer_)) > 60  # pieces per sentence
    est.set_params(max_length=16, stride=4)
    plan = est._plan(est._tokenize(X, est.tokenizer_), est.tokenizer_)
    assert len(plan.spans) > 10  # the long sentences really are split into many windows
    windowed = est.predict_proba(X)
    for got, want in zip(windowed, whole, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert est.predict(X) == est.set_params(max_length=128).predict(X)


def test_long_sentences_in_fit_are_split_into_windows(tiny_model_dir):
    long_x = [["the", "cat", "zebra", "rex", "on", "the", "mat"] * 4] * 3
    long_y = [["O", "B-ANI", "O", "I-ANI", "O", "O", "B-OBJ"] * 4] * 3
    est = BertTokenClassifier(model=tiny_model_dir, **{**FAST, "max_length": 16, "stride": 4})
    est.fit(long_x + TOY_X, long_y + TOY_Y)
    assert est.score(long_x, long_y) > 0.9


@pytest.mark.parametrize(("max_length", "stride", "want"), [(128, None, 32), (512, None, 32), (16, None, 4),
                                                           (34, None, 8), (8, None, 2), (16, 9, 9)])
def test_stride_none_is_a_quarter_of_max_length_at_most_32(max_length, stride, want):
    # With max_length >= 8 (its lower bound), a quarter always leaves windows room to advance.
    for cls in (BertTokenClassifier, bertkit.BertClassifier, bertkit.BertEmbedder, bertkit.BertCausalLM):
        assert cls(model="/nonexistent/model", max_length=max_length, stride=stride)._window_stride() == want


def test_default_stride_works_with_a_short_max_length(tiny_model_dir):
    # stride=32 by default used to refuse any max_length <= 34 before fitting anything.
    long_x = [["the", "cat", "zebra", "rex", "on", "the", "mat"] * 4] * 3
    long_y = [["O", "B-ANI", "O", "I-ANI", "O", "O", "B-OBJ"] * 4] * 3
    est = BertTokenClassifier(model=tiny_model_dir, **{**FAST, "max_length": 16})
    assert est.stride is None
    est.fit(long_x + TOY_X, long_y + TOY_Y)
    assert est.score(long_x, long_y) > 0.9
    plan = est._plan(est._tokenize(long_x[:1], est.tokenizer_), est.tokenizer_)
    (_, s0, e0), (_, s1, _) = plan.spans[:2]
    assert 0 < e0 - s1 <= 4 + 8 and s1 > s0  # windows share about stride=4 pieces, and advance


def test_label_all_tokens_trains_every_piece(tiny_model_dir):
    est = BertTokenClassifier(model=tiny_model_dir, label_all_tokens=True, aggregation="mean",
                              **FAST)
    est.fit(TOY_X, TOY_Y)
    assert est.score(TOY_X, TOY_Y) == 1.0
    # With every piece trained, the pieces of "rex" after the first predict I-ANI too.
    enc = est.tokenizer_(["the", "cat", "rex"], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        tags = est.model_(**enc)["logits"][0].argmax(-1).tolist()
    assert [est.classes_[t] for t in tags[3:6]] == ["I-ANI"] * 3


def test_unit_sample_weights_change_nothing(tiny_model_dir, tagger):
    weighted = BertTokenClassifier(model=tiny_model_dir, **FAST)
    weighted.fit(TOY_X, TOY_Y, sample_weight=np.full(len(TOY_X), 3.0))
    for got, want in zip(weighted.predict_proba(TOY_X), tagger.predict_proba(TOY_X), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_sample_weight_decides_between_conflicting_tags(tiny_model_dir):
    """The same sentence tagged two ways: the heavier version wins, either way round."""
    X = [["a", "dog", "sat"], ["a", "dog", "sat"]] * 4
    y = [["O", "B-ANI", "O"], ["O", "O", "O"]] * 4
    predicted = []
    for heavy in (0, 1):
        weights = [9.0 if i % 2 == heavy else 1.0 for i in range(len(X))]
        est = BertTokenClassifier(model=tiny_model_dir, **FAST).fit(X, y, sample_weight=weights)
        predicted.append(est.predict([["a", "dog", "sat"]])[0][1])
    assert predicted == ["B-ANI", "O"]


def test_validation_split_keeps_the_best_epoch(tiny_model_dir):
    est = BertTokenClassifier(model=tiny_model_dir, validation_fraction=0.25, **FAST)
    est.fit(TOY_X, TOY_Y)
    scores = [h["valid_score"] for h in est.history_]
    assert est.best_epoch_ == 1 + int(np.argmax(scores))
    assert all(0.0 <= s <= 1.0 for s in scores) and max(scores) >= 0.5
    assert all(h["valid_loss"] > 0 for h in est.history_)


# ============================================================== persistence
_RELOAD_SCRIPT = textwrap.dedent("""
    import pickle, sys
    from pathlib import Path
    import numpy as np
    import bertkit
    import bertkit.estimators._token  # registers BertTokenClassifier for bertkit.load

    root = Path(sys.argv[1])
    X = [line.split() for line in (root / "X.txt").read_text(encoding="utf-8").splitlines()]
    for how, est in (("pickle", pickle.loads((root / "est.pkl").read_bytes())),
                     ("load", bertkit.load(root / "saved"))):
        assert type(est).__name__ == "BertTokenClassifier", type(est)
        np.save(root / f"{how}.npy", np.concatenate(est.predict_proba(X)))
        (root / f"{how}-tags.txt").write_text("\\n".join(" ".join(t) for t in est.predict(X)))
""")


def test_pickle_and_load_in_a_fresh_process(tagger, tmp_path):
    X = [["the", "cat", "rex", "ran"], ["zebra", "on", "a", "mat"], ["dog"]]
    (tmp_path / "X.txt").write_text("\n".join(" ".join(x) for x in X), encoding="utf-8")
    blob = pickle.dumps(tagger)
    assert b"_rebuild_tensor" not in blob
    (tmp_path / "est.pkl").write_bytes(blob)
    tagger.save(tmp_path / "saved")
    want = np.concatenate(tagger.predict_proba(X))
    done = subprocess.run([sys.executable, "-c", _RELOAD_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    tags = "\n".join(" ".join(t) for t in tagger.predict(X))
    for how in ("pickle", "load"):
        got = np.load(tmp_path / f"{how}.npy")
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=how)
        assert (tmp_path / f"{how}-tags.txt").read_text() == tags
    loaded = bertkit.load(tmp_path / "saved")
    assert loaded.get_params() == tagger.get_params()
    assert loaded.classes_.tolist() == tagger.classes_.tolist()
    assert loaded.history_ == tagger.history_


# ============================================================== real data
def test_conll_subset_with_the_tiny_model(tiny_model_dir, data_dir):
    frame = read_conll(data_dir / "conll2003" / "train.txt")
    train = frame.iloc[:200]
    est = BertTokenClassifier(model=tiny_model_dir, **{**FAST, "n_epochs": 3, "batch_size": 16})
    est.fit(train["tokens"], train["tags"])
    assert est.classes_.tolist() == sorted({t for tags in train["tags"] for t in tags})
    losses = [h["train_loss"] for h in est.history_]
    assert losses[-1] < losses[0]
    predicted = est.predict(train["tokens"])
    assert [len(p) for p in predicted] == [len(t) for t in train["tokens"]]
    flat_true = np.concatenate(train["tags"].tolist())
    flat_pred = np.concatenate(predicted)
    # Letters only (the tiny vocabulary lowercases and spells out every word), yet it must
    # learn the majority tag at least.
    assert np.mean(flat_true == flat_pred) >= np.mean(flat_true == "O") - 0.02
    assert 0.0 <= est.score(train["tokens"], train["tags"]) <= 1.0


@pytest.mark.slow  # about 75 s on one CPU thread
def test_conll_entity_f1_with_the_default_model(default_model_dir, data_dir):
    frame = read_conll(data_dir / "conll2003" / "train.txt")
    valid = read_conll(data_dir / "conll2003" / "valid.txt").iloc[:300]
    train = frame.iloc[:1000]
    est = BertTokenClassifier(n_epochs=1, max_length=64, batch_size=16, random_state=0,
                              device="cpu")
    est.fit(train["tokens"], train["tags"])
    # Measured: 0.37 after this one epoch (63 steps); an untrained head scores about 0.
    assert est.score(valid["tokens"], valid["tags"]) > 0.25


def test_grid_search_splits_and_scores_by_entity_f1(tiny_model_dir):
    from sklearn.model_selection import GridSearchCV

    est = BertTokenClassifier(model=tiny_model_dir, **{**FAST, "n_epochs": 2})
    search = GridSearchCV(est, {"learning_rate": [1e-5, 1e-2]}, cv=2).fit(TOY_X, TOY_Y)
    assert search.best_params_ == {"learning_rate": 1e-2}  # 1e-5 learns nothing in 2 epochs
    assert search.predict([["a", "cat"]]) == [["O", "B-ANI"]]


def test_more_sentences_than_the_cache_holds(tagger, monkeypatch):
    from bertkit.estimators import _base

    expected = tagger.predict_proba(TOY_X)
    _base.CACHES.clear()
    monkeypatch.setattr(_base.CACHES, "max_texts", 2)
    for got, want in zip(tagger.predict_proba(TOY_X), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(_base.CACHES.texts) == 2
