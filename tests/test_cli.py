"""The command line: train / predict / similar on a tiny random model, help, errors."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

import bertkit
from bertkit.cli import main, read_table
from bertkit.example_data import load_reviews

POSITIVE = ["a wonderful film", "great acting, lovely story", "i loved it", "superb and moving",
            "brilliant, funny, warm", "the best film this year", "works great", "excellent value"]
NEGATIVE = ["a dull film", "awful acting, boring story", "i hated it", "weak and lifeless",
            "terrible, silly, cold", "the worst film this year", "broke at once", "poor value"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random 1-layer BERT with a small WordPiece vocabulary: training takes a second."""
    folder = tmp_path_factory.mktemp("tiny-model")
    words = set()
    for text in [*load_reviews()["text"], *POSITIVE, *NEGATIVE]:
        words.update(re.findall(r"\w+|[^\w\s]", text.lower()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    tokenizer = bertkit.BertTokenizer.from_vocab(vocab)
    config = bertkit.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=4, intermediate_size=64)
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    bertkit.BertModel(config).save_pretrained(folder)
    tokenizer.save(folder)
    return folder


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory) -> Path:
    """40 labelled rows, comma-separated, with quoted fields that hold commas."""
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review", "sentiment"])
        for i in range(20):
            writer.writerow([2 * i, POSITIVE[i % 8], "pos"])
            writer.writerow([2 * i + 1, NEGATIVE[i % 8], "neg"])
    return path


@pytest.fixture(scope="module")
def trained(tiny_model, reviews_csv, tmp_path_factory):
    """One `bertkit train` run on the CSV: (exit code, stdout, output folder)."""
    output = tmp_path_factory.mktemp("out") / "model"
    capture = io.StringIO()
    argv = ["train", "--data", str(reviews_csv), "--text-column", "review",
            "--label-column", "sentiment", "--model", str(tiny_model), "--epochs", "1",
            "--seed", "3", "--output", str(output), "--predict", "a lovely film", "awful value"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdout", capture)
        code = main(argv)
    return code, capture.getvalue(), output


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------- help
def test_help_lists_every_command_with_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "predict", "similar"):
        assert re.search(rf"^\s+{command}\s+\w", out, re.MULTILINE), command
    assert "examples:" in out and "bertkit train --predict" in out


@pytest.mark.parametrize("command, options", [
    ("train", ["--data", "--text-column", "--text-pair-column", "--label-column", "--sep",
               "--test-size", "--seed", "--model", "--epochs", "--learning-rate",
               "--batch-size", "--max-length", "--output", "--predict", "--verbose"]),
    ("predict", ["MODEL_DIR", "TEXT", "--file", "--device"]),
    ("similar", ["query", "--file", "--model", "--pooling", "--top"]),
])
def test_each_command_documents_its_options(capsys, command, options):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out, option
    assert "examples:" in out
    assert f"bertkit {command}" in out.split("examples:")[1]


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0
    assert out.startswith("usage: bertkit")


def test_python_m_bertkit_help():
    result = subprocess.run([sys.executable, "-m", "bertkit", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: bertkit")
    assert "train" in result.stdout and "predict" in result.stdout


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "must be at least 1"),
    (["train", "--test-size", "1.5"], "must be in [0, 1)"),
    (["train", "--learning-rate", "-1"], "must be greater than 0"),
    (["train", "--max-length", "4"], "must be at least 8"),
    (["train", "--sep", "ab"], "expected one character"),
])
def test_bad_option_values_exit_2_naming_the_option(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert argv[1] in err and message in err


# --------------------------------------------------------------------- train
def test_train_reports_real_held_out_accuracy_and_saves(trained, reviews_csv):
    code, out, output = trained
    assert code == 0, out
    assert "40 examples; labels: neg 20, pos 20" in out
    assert "train 32 / test 8 (stratified" in out
    for name in ("bertkit.json", "config.json", "model.safetensors", "vocab.txt"):
        assert (output / name).is_file(), name
    clf = bertkit.load(output)
    assert isinstance(clf, bertkit.BertClassifier)
    assert clf.classes_.tolist() == ["neg", "pos"]
    assert clf.n_epochs == 1 and clf.random_state == 3

    # The printed accuracy is the saved model's accuracy on the same stratified split.
    frame = read_table(reviews_csv)
    _, test = train_test_split(np.arange(40), test_size=0.2, stratify=frame["sentiment"], random_state=3)
    test = np.sort(test)
    texts = frame["review"].to_numpy()[test].tolist()
    truth = frame["sentiment"].to_numpy()[test]
    predicted = clf.predict(texts)
    n_correct = int((predicted == truth).sum())
    assert f"held-out accuracy: {n_correct / 8:.3f} ({n_correct}/8 correct)" in out
    for label in ("neg", "pos"):
        mine = truth == label
        assert (f"{label}  {int((predicted[mine] == label).sum())}/4 correct, "
                f"predicted {int((predicted == label).sum())} times") in out

    # --predict lines: label, probability of that label, text.
    proba = clf.predict_proba(["a lovely film", "awful value"])
    tail = out.split("predictions:\n")[1].splitlines()
    for line, text, row in zip(tail, ["a lovely film", "awful value"], proba, strict=False):
        assert line == f"  {clf.classes_[row.argmax()]}\t{row.max():.3f}\t{text}"
    assert "held-out examples (first 5):" in out
    assert re.search(r"^time: read data [\d.]+ s, load model \+ fine-tune [\d.]+ s, .* total [\d.]+ s$", out, re.MULTILINE)


def test_train_without_data_uses_the_built_in_reviews(capsys, tiny_model, tmp_path):
    code, out, err = run(capsys, "train", "--model", str(tiny_model), "--epochs", "1",
                         "--output", str(tmp_path / "m"), "--show", "2")
    assert code == 0, err
    assert "built-in example reviews" in out
    assert "360 examples; labels: negative 180, positive 180" in out
    assert "train 288 / test 72" in out
    assert "held-out examples (first 2):" in out
    assert bertkit.load(tmp_path / "m").classes_.tolist() == ["negative", "positive"]


def test_train_on_text_pairs_from_tsv_then_predict_pairs(capsys, tiny_model, tmp_path):
    data = tmp_path / "pairs.tsv"
    rows = ["first\tsecond\tlabel"]
    rows += [f"{p}\t{p}\tsame" for p in POSITIVE] + [f"{p}\t{n}\tdiff" for p, n in zip(POSITIVE, NEGATIVE, strict=True)]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "train", "--data", str(data), "--text-column", "first",
                         "--text-pair-column", "second", "--model", str(tiny_model), "--epochs", "1",
                         "--test-size", "0", "--output", str(tmp_path / "m"),
                         "--predict", "i loved it\ti hated it")
    assert code == 0, err
    assert "train on all 16" in out and "held-out accuracy" not in out
    assert "\ti loved it\ti hated it" in out.split("predictions:")[1]
    clf = bertkit.load(tmp_path / "m")
    assert clf.n_text_columns_ == 2

    code, out, err = run(capsys, "predict", str(tmp_path / "m"), "a dull film\ta wonderful film")
    assert code == 0, err
    label, prob, first, second = out.rstrip("\n").split("\t")
    row = clf.predict_proba([["a dull film", "a wonderful film"]])[0]
    assert (label, prob) == (clf.classes_[row.argmax()], f"{row.max():.4f}")
    assert (first, second) == ("a dull film", "a wonderful film")

    code, _, err = run(capsys, "predict", str(tmp_path / "m"), "no tab here")
    assert code == 2 and "FIRST<TAB>SECOND" in err


# --------------------------------------------------------------------- predict
def test_predict_prints_label_probability_text(trained, capsys):
    folder = trained[2]
    clf = bertkit.load(folder)
    texts = ["i loved it", "broke at once", "the worst film"]
    proba = clf.predict_proba(texts)
    expected = [f"{clf.classes_[r.argmax()]}\t{r.max():.4f}\t{t}" for t, r in zip(texts, proba, strict=True)]

    code, out, err = run(capsys, "predict", str(folder), *texts)
    assert code == 0, err
    assert out.splitlines() == expected


def test_predict_reads_file_and_stdin(trained, capsys, tmp_path, monkeypatch):
    folder = trained[2]
    lines = tmp_path / "lines.txt"
    lines.write_text("i loved it\n\nbroke at once\r\n", encoding="utf-8")
    code, from_file, err = run(capsys, "predict", str(folder), "--file", str(lines))
    assert code == 0, err
    assert [line.split("\t")[2] for line in from_file.splitlines()] == ["i loved it", "broke at once"]

    monkeypatch.setattr(sys, "stdin", io.StringIO("i loved it\nbroke at once\n"))
    code, from_stdin, err = run(capsys, "predict", str(folder))
    assert code == 0, err
    assert from_stdin == from_file


def test_predict_regressor_folder(capsys, tiny_model, tmp_path):
    reg = bertkit.BertRegressor(model=str(tiny_model), n_epochs=1, random_state=0)
    reg.fit(POSITIVE + NEGATIVE, [5.0] * 8 + [1.0] * 8).save(tmp_path / "reg")
    code, out, err = run(capsys, "predict", str(tmp_path / "reg"), "i loved it")
    assert code == 0, err
    value = bertkit.load(tmp_path / "reg").predict(["i loved it"])[0]
    assert out == f"{value:.4f}\ti loved it\n"


# --------------------------------------------------------------------- similar
def test_similar_ranks_by_embedder_cosine(capsys, tiny_model):
    candidates = ["a dull film", "i loved it", "a wonderful film", "works great"]
    code, out, err = run(capsys, "similar", "a wonderful film", *candidates,
                         "--model", str(tiny_model), "--top", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "query: a wonderful film"
    embedder = bertkit.BertEmbedder(model=str(tiny_model)).fit()
    vectors = embedder.transform(["a wonderful film", *candidates])
    scores = vectors[1:] @ vectors[0]
    order = np.argsort(-scores)[:3]
    assert lines[1:] == [f"{scores[i]:7.4f}  {candidates[i]}" for i in order]
    assert lines[1] == " 1.0000  a wonderful film"


# --------------------------------------------------------------------- errors
def test_missing_data_file(capsys, tiny_model, tmp_path):
    missing = tmp_path / "nope.csv"
    code, out, err = run(capsys, "train", "--data", str(missing), "--model", str(tiny_model))
    assert code == 2
    assert err.startswith("bertkit: error: ")
    assert str(missing) in err and "does not exist" in err


@pytest.mark.parametrize("option, value", [
    ("--text-column", "text"), ("--label-column", "label"), ("--text-pair-column", "hypothesis"),
])
def test_missing_column_lists_available_columns(capsys, reviews_csv, tiny_model, tmp_path, option, value):
    argv = ["train", "--data", str(reviews_csv), "--model", str(tiny_model),
            "--output", str(tmp_path / "m"), "--text-column", "review", "--label-column", "sentiment"]
    argv += [option, value]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("bertkit: error: ")
    assert f"no column {value!r} (named by {option})" in err
    assert "Available columns: 'id', 'review', 'sentiment'." in err
    assert not (tmp_path / "m").exists()


def test_missing_model_folder_for_predict(capsys, tmp_path):
    code, _, err = run(capsys, "predict", str(tmp_path / "nowhere"), "text")
    assert code == 2
    assert err.startswith("bertkit: error: ") and "does not exist" in err


def test_predict_refuses_an_embedder_folder(capsys, tiny_model, tmp_path):
    bertkit.BertEmbedder(model=str(tiny_model)).fit().save(tmp_path / "emb")
    code, _, err = run(capsys, "predict", str(tmp_path / "emb"), "text")
    assert code == 2
    assert "BertEmbedder, which has no predict" in err


def test_unknown_model_is_an_error(capsys, reviews_csv, tmp_path):
    code, _, err = run(capsys, "train", "--data", str(reviews_csv), "--text-column", "review",
                       "--label-column", "sentiment", "--model", str(tmp_path / "no-model"),
                       "--output", str(tmp_path / "m"))
    assert code == 2
    assert err.startswith("bertkit: error: ") and "Could not find a model" in err


def test_label_with_one_example_cannot_be_stratified(capsys, tiny_model, tmp_path):
    data = tmp_path / "d.csv"
    with open(data, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([[t, "pos"] for t in POSITIVE] + [[t, "neg"] for t in NEGATIVE] + [["meh", "neutral"]])
    code, _, err = run(capsys, "train", "--data", str(data), "--model", str(tiny_model),
                       "--output", str(tmp_path / "m"))
    assert code == 2
    assert "'neutral'" in err and "--test-size 0" in err


def test_output_folder_that_is_not_a_model_is_refused(capsys, reviews_csv, tiny_model, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    code, _, err = run(capsys, "train", "--data", str(reviews_csv), "--text-column", "review",
                       "--label-column", "sentiment", "--model", str(tiny_model), "--output", str(tmp_path))
    assert code == 2
    assert "is not a bertkit model folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# --------------------------------------------------------------------- reading tables
@pytest.mark.parametrize("name, content, sep", [
    ("d.tsv", 'text\tlabel\nhe said "hi", twice\tpos\n', None),
    ("d.csv", 'text,label\n"he said ""hi"", twice",pos\n', None),
    ("d.txt", "text;label\nhe said hi, twice;pos\nfine;neg\n", None),
    ("d.data", "text|label\nhe said hi, twice|pos\n", "|"),
])
def test_read_table_separator_from_extension_content_or_option(tmp_path, name, content, sep):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    frame = read_table(path, sep=sep)
    assert frame.columns.tolist() == ["text", "label"]
    assert frame["label"].iloc[0] == "pos"
    assert frame["text"].iloc[0].startswith("he said ")


def test_read_table_without_quotes_keeps_raw_quotes(tmp_path):
    path = tmp_path / "raw.tsv"
    path.write_text('sentence\tlabel\n" a quote starts here\t1\nplain\t0\n', encoding="utf-8")
    frame = read_table(path, quotes=False)
    assert frame["sentence"].tolist() == ['" a quote starts here', "plain"]
    assert frame["label"].tolist() == ["1", "0"]
