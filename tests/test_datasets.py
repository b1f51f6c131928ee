"""bertkit.datasets: readers on every real data file, tagging schemes, malformed input,
MLM masking and NSP pairs.

Real-data tests read ../shared/data through the ``data_dir`` fixture (they skip when it
is absent) and assert the exact counts of its SOURCES.md.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import bertkit.datasets as ds
from bertkit import InputError
from bertkit.datasets import (
    IS_NEXT,
    NOT_NEXT,
    convert_tags,
    make_nsp_pairs,
    mask_tokens,
    read_conll,
    read_glue_tsv,
    read_multiple_choice,
    read_squad,
    read_sts,
    read_text_documents,
    read_wikitext,
    write_conll,
)
from bertkit.metrics import get_entities


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _entities_iob2(sentences) -> Counter:
    """Entity counts of IOB2 tags, counted independently of the package: one per ``B-``,
    after checking that every ``I-X`` continues an ``X`` entity."""
    counts: Counter = Counter()
    for tags in sentences:
        previous = "O"
        for tag in tags:
            if tag.startswith("I-"):
                assert previous[2:] == tag[2:], (previous, tag)
            elif tag.startswith("B-"):
                counts[tag[2:]] += 1
            else:
                assert tag == "O", tag
            previous = tag
    return counts


# ================================================================ layering and API
def test_datasets_imports_only_pure_data_modules():
    folder = Path(ds.__file__).parent
    imported = set()
    for source in folder.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add("." * node.level + (node.module or ""))
    assert not {name for name in imported if name.startswith(("sklearn", "transformers"))}
    assert not {name for name in imported if "estimators" in name or "training" in name}
    # bertkit.metrics (pure Python) is the one decoder of tags into entity spans.
    assert {name for name in imported if name.startswith("..")} == {".._errors", "..metrics"}


def test_every_public_function_has_a_docstring_with_examples():
    assert sorted(ds.__all__) == sorted(name for name in dir(ds) if not name.startswith("_")
                                        and name not in ("annotations",))
    for name in ds.__all__:
        obj = getattr(ds, name)
        if callable(obj):
            assert "Examples\n    --------" in obj.__doc__, name


# ================================================================ SST-2 (GLUE TSV)
@pytest.mark.parametrize(
    ("split", "rows", "positive", "negative"),
    [("train", 67_349, 37_569, 29_780), ("dev", 872, 444, 428)],
)
def test_sst2_counts_and_pandas_semantics(data_dir, split, rows, positive, negative):
    path = data_dir / "sst2" / f"{split}.tsv"
    frame = read_glue_tsv(path, text_columns="sentence")
    assert frame.columns.tolist() == ["sentence", "label"]
    assert len(frame) == rows
    assert frame["label"].dtype == np.int64
    assert frame["label"].value_counts().to_dict() == {1: positive, 0: negative}
    reference = pd.read_csv(path, sep="\t", quoting=3, keep_default_na=False)
    assert frame["sentence"].tolist() == reference["sentence"].tolist()
    assert frame["label"].tolist() == reference["label"].tolist()


def test_glue_tsv_keeps_null_and_na_texts_and_converts_labels(tmp_path):
    path = _write(tmp_path / "x.tsv", 'a\tb\tlabel\nnull\t"q\t1\nNA\t\t0\n\n')
    frame = read_glue_tsv(str(path))
    assert frame.to_dict("list") == {"a": ["null", "NA"], "b": ['"q', ""], "label": [1, 0]}
    assert read_glue_tsv(path, text_columns=["b"]).columns.tolist() == ["b", "label"]
    assert read_glue_tsv(path, label_column=None).columns.tolist() == ["a", "b", "label"]
    assert read_glue_tsv(path, label_column=None)["label"].tolist() == ["1", "0"]
    scores = _write(tmp_path / "s.tsv", "s\tlabel\nx\t4.5\ny\t1\n")
    assert read_glue_tsv(scores)["label"].tolist() == [4.5, 1.0]
    nli = _write(tmp_path / "n.tsv", "s\tlabel\nx\tentailment\n")
    assert read_glue_tsv(nli)["label"].tolist() == ["entailment"]
    empty = read_glue_tsv(_write(tmp_path / "e.tsv", "sentence\tlabel\n"))
    assert empty.shape == (0, 2)


def test_glue_tsv_errors_name_file_line_and_columns(tmp_path):
    path = _write(tmp_path / "bad.tsv", "sentence\tlabel\nfine\t1\nnot\tfine\t0\n")
    with pytest.raises(InputError, match=r"bad\.tsv', line 3: expected 2 tab-separated fields"):
        read_glue_tsv(path)
    good = _write(tmp_path / "test.tsv", "index\tsentence\n0\thello\n")
    with pytest.raises(InputError, match=r"no column 'label'.*Columns found: 'index', 'sentence'"):
        read_glue_tsv(good)
    with pytest.raises(InputError, match=r"no column 'text' \(named by text_columns\)"):
        read_glue_tsv(good, text_columns=["text"], label_column=None)
    assert read_glue_tsv(good, label_column=None)["sentence"].tolist() == ["hello"]


# ================================================================ CoNLL-2003
CONLL = {
    "train": (946, 14_041, 203_621, {"PER": 6_600, "ORG": 6_321, "LOC": 7_140, "MISC": 3_438}),
    "valid": (216, 3_250, 51_362, {"PER": 1_842, "ORG": 1_341, "LOC": 1_837, "MISC": 922}),
    "test": (231, 3_453, 46_435, {"PER": 1_617, "ORG": 1_661, "LOC": 1_668, "MISC": 702}),
}


@pytest.fixture(scope="module")
def conll(data_dir):
    return {split: read_conll(data_dir / "conll2003" / f"{split}.txt") for split in CONLL}


@pytest.mark.parametrize("split", list(CONLL))
def test_conll2003_counts(conll, split):
    documents, sentences, tokens, entities = CONLL[split]
    frame = conll[split]
    assert frame.columns.tolist() == ["tokens", "tags", "document"]
    assert frame.attrs["scheme"] == "IOB2"
    assert len(frame) == sentences
    assert frame["document"].tolist() == sorted(frame["document"])
    assert frame["document"].nunique() == documents == frame["document"].max() + 1
    assert sum(map(len, frame["tokens"])) == tokens
    assert frame["tokens"].map(len).equals(frame["tags"].map(len))
    assert _entities_iob2(frame["tags"]) == entities
    for mode in ("default", "strict"):
        spans = Counter(
            kind for tags in frame["tags"] for kind, _, _ in get_entities(tags, "BIO", mode=mode)
        )
        assert spans == entities


def test_conll2003_first_sentences(conll):
    train = conll["train"]
    assert train.loc[0, "tokens"] == ["EU", "rejects", "German", "call", "to", "boycott",
                                      "British", "lamb", "."]
    assert train.loc[0, "tags"] == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]
    assert train.loc[1].tolist() == [["Peter", "Blackburn"], ["B-PER", "I-PER"], 0]


def test_conll2003_write_read_round_trip_is_byte_identical(data_dir, conll, tmp_path):
    path = data_dir / "conll2003" / "valid.txt"
    pos = read_conll(path, tag_column=1)
    chunk = read_conll(path, tag_column=-2)
    assert pos.attrs["scheme"] is None and chunk.attrs["scheme"] == "IOB2"
    assert pos.loc[0, "tags"] == ["NNP", ":", "NNP", "NNP", "IN", "NNP", "NNP", "NNP", "NNP",
                                  "NN", "."]
    ner = conll["valid"]
    out = tmp_path / "valid.txt"
    write_conll(out, ner["tokens"], ner["tags"], extra_columns=[pos["tags"], chunk["tags"]],
                documents=ner["document"])
    assert out.read_bytes() == path.read_bytes()
    again = read_conll(out)
    pd.testing.assert_frame_equal(again, ner)


def test_conll2003_scheme_conversions_round_trip(conll, tmp_path):
    frame = conll["valid"]
    entities = sum(CONLL["valid"][3].values())
    iob1 = [convert_tags(tags, "IOB2", "IOB1") for tags in frame["tags"]]
    iobes = [convert_tags(tags, "IOB2", "IOBES") for tags in frame["tags"]]
    assert sum(tag[:2] in ("B-", "S-") for tags in iobes for tag in tags) == entities
    assert sum(tag.startswith("B-") for tags in iob1 for tag in tags) < 100  # IOB1 rarely uses B-
    for tags, a, b in zip(frame["tags"], iob1, iobes, strict=True):
        assert convert_tags(a, "IOB1", "IOB2") == tags
        assert convert_tags(b, "IOBES", "BIO") == tags
    # The IOB1 file (the original eng.testa layout) is detected and converted on reading.
    path = tmp_path / "eng.testa"
    write_conll(path, frame["tokens"], iob1, documents=frame["document"])
    original = read_conll(path)
    assert original.attrs["scheme"] == "IOB1" and original["tags"].tolist() == iob1
    converted = read_conll(path, to_scheme="IOB2")
    assert converted.attrs["scheme"] == "IOB2"
    assert converted["tags"].tolist() == frame["tags"].tolist()


# ================================================================ tagging schemes
# Decoding tags into spans is bertkit.metrics.get_entities' job (tested in test_metrics.py);
# these tests cover what convert_tags and read_conll add: rendering, strict checks, names.
@pytest.mark.parametrize(
    ("tags", "from_scheme", "to_scheme", "expected"),
    [
        ("I-PER I-PER B-PER", "IOB1", "IOB2", "B-PER I-PER B-PER"),
        ("I-PER I-PER B-PER", "IOB1", "IOBES", "B-PER E-PER S-PER"),
        ("I-PER I-LOC O I-LOC", "IOB1", "IOB2", "B-PER B-LOC O B-LOC"),
        ("I-PER I-LOC I-LOC", "iob1", "iob2", "B-PER B-LOC I-LOC"),
        ("O I-ORG I-ORG O I-MISC", "IOB1", "IOB2", "O B-ORG I-ORG O B-MISC"),
        ("B-PER B-PER I-PER O B-LOC", "IOB2", "IOB1", "I-PER B-PER I-PER O I-LOC"),
        ("B-PER B-LOC", "IOB2", "IOB1", "I-PER I-LOC"),
        ("B-I-X I-I-X", "IOB2", "IOBES", "B-I-X E-I-X"),  # the type may look like a tag
        ("B-PER I-PER I-PER O B-LOC", "IOB2", "IOBES", "B-PER I-PER E-PER O S-LOC"),
        ("B-PER I-PER I-PER O B-LOC", "BIO", "BILOU", "B-PER I-PER L-PER O U-LOC"),
        ("B-PER E-PER S-PER S-LOC", "IOBES", "IOB1", "I-PER I-PER B-PER I-LOC"),
        ("B-PER L-PER U-LOC", "bilou", "bioes", "B-PER E-PER S-LOC"),
        ("S-PER B-LOC E-LOC", "IOBES", "BILOU", "U-PER B-LOC L-LOC"),
        ("U-PER B-LOC L-LOC", "Bilou", "IOB2", "B-PER B-LOC I-LOC"),
        ("I-PER B-PER", "IOB1", "IOB1", "I-PER B-PER"),
        ("", "IOB2", "IOBES", ""),
        ("O O", "IOBES", "IOB1", "O O"),
    ],
)
def test_convert_tags_hand_written(tags, from_scheme, to_scheme, expected):
    assert convert_tags(tags.split(), from_scheme, to_scheme) == expected.split()
    assert convert_tags(tags.split(), from_scheme, to_scheme, strict=False) == expected.split()


def _random_spans(rng, length):
    spans, position = [], 0
    while position < length:
        if rng.random() < 0.4:
            position += 1
            continue
        end = min(length, position + int(rng.integers(1, 4)))
        spans.append((str(rng.choice(["PER", "LOC"])), position, end))
        position = end
    return spans


def test_convert_tags_all_scheme_pairs_on_random_sentences():
    from bertkit.datasets._conll import _render

    rng = np.random.default_rng(0)
    schemes = ["iob1", "iob2", "iobes", "bilou"]
    for _ in range(300):
        length = int(rng.integers(0, 12))
        spans = _random_spans(rng, length)  # adjacent same-type entities are common
        tagged = {scheme: _render(spans, length, scheme) for scheme in schemes}
        for source, target in itertools.product(schemes, schemes):
            # What _render writes is well formed: both readings give the spans back.
            assert get_entities(tagged[source], source) == spans
            assert get_entities(tagged[source], source, mode="strict") == spans
            assert convert_tags(tagged[source], source.upper(), target) == tagged[target]


# Sequences that break their scheme: convert_tags(strict=True) raises at the start of the first
# entity that only one of get_entities' two readings has; strict=False converts the conlleval
# reading (here to IOB2).
BROKEN = [
    (["O", "I-PER"], "IOB2", 1, "O B-PER"),
    (["B-PER", "I-LOC"], "IOB2", 1, "B-PER B-LOC"),
    (["B-PER", "O"], "IOBES", 0, "B-PER O"),
    (["B-PER", "I-PER"], "IOBES", 0, "B-PER I-PER"),
    (["O", "E-PER"], "IOBES", 1, "O B-PER"),
    (["B-PER", "S-LOC"], "IOBES", 0, "B-PER B-LOC"),
    (["S-LOC", "B-PER", "I-PER", "O", "S-PER"], "IOBES", 1, "B-LOC B-PER I-PER O B-PER"),
    (["U-PER", "B-LOC", "I-LOC"], "BILOU", 1, "B-PER B-LOC I-LOC"),
    # IOB1: a B- that follows no entity of its type (conlleval still starts an entity there).
    (["B-PER", "O", "I-PER"], "IOB1", 0, "B-PER O B-PER"),
    (["I-LOC", "O", "B-PER", "I-PER"], "IOB1", 2, "B-LOC O B-PER I-PER"),
]


@pytest.mark.parametrize(("tags", "scheme", "position", "lenient"), BROKEN)
def test_convert_tags_rejects_broken_sequences_at_their_position(tags, scheme, position,
                                                                  lenient):
    with pytest.raises(InputError) as info:
        convert_tags(tags, scheme, "IOB2")
    message = str(info.value)
    assert message.startswith(
        f"convert_tags: the tags break {scheme} at position {position} ({tags[position]!r}): "
    )
    assert message.endswith(". Pass strict=False to read it as conlleval does.")
    assert convert_tags(tags, scheme, "IOB2", strict=False) == lenient.split()


def test_convert_tags_strict_message_names_the_entity():
    with pytest.raises(InputError) as info:
        convert_tags(["O", "I-PER", "I-PER"], "bio", "iob1")
    assert str(info.value) == (
        "convert_tags: the tags break IOB2 at position 1 ('I-PER'): conlleval's reading has the "
        "entity ('PER', 1, 3), which the strict reading drops. Pass strict=False to read it as "
        "conlleval does."
    )


def test_convert_tags_strict_false_normalises_within_a_scheme():
    assert convert_tags(["B-PER", "I-PER"], "IOB1", "IOB1", strict=False) == ["I-PER", "I-PER"]
    assert convert_tags(["B-PER", "I-PER", "O"], "IOBES", "IOBES", strict=False) == [
        "B-PER", "E-PER", "O"
    ]
    assert convert_tags(["O", "I-PER"], "BIO", "BIO", strict=False) == ["O", "B-PER"]


@pytest.mark.parametrize(("tags", "scheme", "position"),
                         [(["PER"], "IOB2", 0), (["O", "E-PER"], "IOB2", 1), (["B-"], "IOB1", 0),
                          (["b-PER"], "IOBES", 0), (["U-PER", "B-LOC", "L-LOC"], "IOBES", 0),
                          (["O", "S-PER"], "BILOU", 1)])
def test_tags_outside_the_scheme_are_rejected(tags, scheme, position):
    # IOBES is written with E-/S- and BILOU with L-/U-; neither reads the other's letters.
    for strict in (True, False):
        with pytest.raises(InputError) as info:
            convert_tags(tags, scheme, "IOB2", strict=strict)
        assert str(info.value).startswith(
            f"convert_tags: the tag at position {position}, {tags[position]!r}, is not a tag "
            f"of {scheme}. Tags must be 'O' or one of the prefixes"
        )
        assert "Pick the 'from_scheme'" in str(info.value)


@pytest.mark.parametrize("name", ["BIO", "bio", "IOB2", "iob2", "Iob2"])
def test_scheme_names_are_case_insensitive_with_aliases(name):
    tags = ["B-PER", "I-PER", "O", "B-LOC"]
    assert convert_tags(tags, name, "IOB2") == tags
    assert convert_tags(tags, "IOB2", name) == tags
    assert convert_tags(["S-PER"], "bioes", "BIOES") == convert_tags(["S-PER"], "IOBES", "iobes")


@pytest.mark.parametrize("bad", ["bioul2", "IOB3", "io", "auto", "", None])
def test_unknown_scheme_names_list_the_allowed_ones(bad):
    allowed = (
        "must be one of {'iob1', 'iob2', 'iobes', 'bilou'} in any case, or an alias ('bio' for "
        f"'iob2', 'bioes' for 'iobes'). Got {bad!r}."
    )
    with pytest.raises(InputError) as info:
        convert_tags(["O"], "IOB2", bad)
    assert str(info.value) == f"The 'to_scheme' parameter of convert_tags {allowed}"
    with pytest.raises(InputError) as info:
        convert_tags(["O"], bad, "IOB2")
    assert str(info.value) == f"The 'from_scheme' parameter of convert_tags {allowed}"


def test_tag_arguments_are_checked():
    with pytest.raises(InputError, match="the tags of one sentence"):
        convert_tags("B-PER I-PER", "IOB2", "IOB1")


# ================================================================ CoNLL files
def test_read_conll_documents_columns_and_separators(tmp_path):
    text = (
        "Peter\tB-PER\nBlack burn\tE-PER\n\n\n"
        "-DOCSTART-\tO\n\n-DOCSTART-\tO\n\nEU\tS-ORG\n  \nrejects\tO\n"
    )
    path = _write(tmp_path / "tab.conll", text)
    frame = read_conll(path, sep="\t")
    assert frame.attrs["scheme"] == "IOBES"
    assert frame.to_dict("list") == {
        "tokens": [["Peter", "Black burn"], ["EU"], ["rejects"]],
        "tags": [["B-PER", "E-PER"], ["S-ORG"], ["O"]],
        "document": [0, 1, 1],
    }
    assert read_conll(path, sep="\t", to_scheme="IOB1")["tags"].tolist() == [
        ["I-PER", "I-PER"], ["I-ORG"], ["O"]
    ]
    assert read_conll(path, sep="\t", token_column=-1, tag_column=0, scheme=None)[
        "tags"
    ].tolist() == [["Peter", "Black burn"], ["EU"], ["rejects"]]
    plain = _write(tmp_path / "plain.txt", "a X\nb Y\n")
    assert read_conll(plain).to_dict("list") == {
        "tokens": [["a", "b"]], "tags": [["X", "Y"]], "document": [0]
    }
    with pytest.raises(InputError, match="plain labels"):
        read_conll(plain, to_scheme="IOB2")


def test_write_conll_checks_its_input(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(InputError, match="sentence 1 has 1 tokens but 2 entries in tags"):
        write_conll(path, [["a"], ["b"]], [["O"], ["O", "O"]])
    with pytest.raises(InputError, match="one entry of tags per sentence"):
        write_conll(path, [["a"]], [])
    with pytest.raises(InputError, match=r"cannot write the token 'New York' \(sentence 0"):
        write_conll(path, [["New York"]], [["B-LOC"]])
    write_conll(path, [["New York"]], [["B-LOC"]], sep="\t")
    assert path.read_text() == "New York\tB-LOC\n\n"
    with pytest.raises(InputError, match="no tokens"):
        write_conll(path, [[]], [[]])


@pytest.mark.parametrize(
    ("text", "options", "line", "message"),
    [
        ("EU NNP B-ORG\nrejects VBZ\n", {}, 2, "expected 3 columns .* like the first token "
         r"line \(line 1\), got 2"),
        ("-DOCSTART- O\n\nEU B-ORG\n", {"tag_column": 2}, 3, "'tag_column' parameter of "
         r"read_conll is 2, but the first token line has 2 columns"),
        ("a O\n\nb B-PER\nc O\nd I-PER\n", {"scheme": "IOB2"}, 5, "the tags break IOB2 at "
         r"'I-PER': conlleval's reading has the entity \('PER', 2, 3\), which the strict "
         r"reading drops\. Fix the file, pass the scheme it is written in, or pass "
         r"scheme=None to read the tags unchecked\.$"),
        ("a B-PER\nb O\n", {}, 1, r"the tags break IOBES \(detected\) at 'B-PER': conlleval's "
         r"reading has the entity \('PER', 0, 1\)"),
        ("a S-PER\n\nb B-PER\n", {}, 3, r"the tags break IOBES \(detected\) at 'B-PER'"),
        ("a O\nb B-PER\n", {"scheme": "iob1"}, 2, "the tags break IOB1 at 'B-PER'"),
        ("a B-PER\nb PER\n", {"scheme": "BIO"}, 2, r"the tag 'PER' is not a tag of IOB2\. Tags "
         "must be 'O' or one of the prefixes 'B-', 'I-' followed by an entity type"),
        ("a S-PER\nb O\nc U-LOC\n", {}, 3, r"the tag 'U-LOC' is not a tag of IOBES \(detected\)"),
    ],
)
def test_malformed_conll_names_file_and_line(tmp_path, text, options, line, message):
    if "B-PER\nb O" in text:
        text = "x S-LOC\n\n" + text
        line += 2
    path = _write(tmp_path / "broken.conll", text)
    with pytest.raises(InputError, match=rf"broken\.conll', line {line}: .*{message}"):
        read_conll(path, **options)


def test_read_conll_checks_tags_strictly_unless_scheme_is_none(tmp_path):
    # Predictions in IOB2 with a stray I-: detected as IOB1, whose B- must follow a LOC entity.
    path = _write(tmp_path / "pred.conll", "a O\nb I-PER\nc B-LOC\n")
    with pytest.raises(InputError, match=r"line 3: the tags break IOB1 \(detected\) at 'B-LOC'"):
        read_conll(path)
    frame = read_conll(path, scheme=None)
    assert frame.attrs["scheme"] is None
    assert get_entities(frame.loc[0, "tags"], "iob2") == [("PER", 1, 2), ("LOC", 2, 3)]


def test_read_conll_scheme_names(tmp_path):
    path = _write(tmp_path / "bio.conll", "Peter B-PER\nBlackburn I-PER\nin O\nEU B-ORG\n")
    tags = [["B-PER", "I-PER", "O", "B-ORG"]]
    for scheme in ("auto", "AUTO", "bio", "BIO", "iob2", "IOB2"):
        frame = read_conll(path, scheme=scheme)
        assert frame.attrs["scheme"] == "IOB2" and frame["tags"].tolist() == tags
    frame = read_conll(path, scheme="Bio", to_scheme="bioes")
    assert frame.attrs["scheme"] == "IOBES"
    assert frame["tags"].tolist() == [["B-PER", "E-PER", "O", "S-ORG"]]
    assert read_conll(path, to_scheme="bilou").attrs["scheme"] == "BILOU"
    assert read_conll(path, scheme=None).attrs["scheme"] is None
    for name in ("scheme", "to_scheme"):
        with pytest.raises(InputError) as info:
            read_conll(path, **{name: "bioul2"})
        assert str(info.value) == (
            f"The {name!r} parameter of read_conll must be one of {{'iob1', 'iob2', 'iobes', "
            "'bilou'} in any case, or an alias ('bio' for 'iob2', 'bioes' for 'iobes'). Got "
            "'bioul2'."
        )


# ================================================================ SQuAD (XQuAD-en)
def test_xquad_counts_and_answers(data_dir):
    path = data_dir / "squad_v1.1_dev_subset_xquad_en" / "xquad.en.json"
    frame = read_squad(path)
    assert frame.columns.tolist() == ["id", "title", "context", "question", "answers",
                                      "is_impossible"]
    assert frame.attrs["version"] == "1.1"
    assert len(frame) == 1_190
    assert frame["id"].is_unique
    assert frame["title"].nunique() == 48 and frame.loc[0, "title"] == "Super_Bowl_50"
    assert frame["context"].nunique() == 240
    assert not frame["is_impossible"].any() and frame["is_impossible"].dtype == bool
    assert frame["answers"].map(len).eq(1).all()
    for context, answers in zip(frame["context"], frame["answers"], strict=True):
        (answer,) = answers
        start = answer["answer_start"]
        assert context[start : start + len(answer["text"])] == answer["text"]
    assert frame.loc[0, "question"] == "How many points did the Panthers defense surrender?"
    assert frame.loc[0, "answers"] == [{"text": "308", "answer_start": 34}]


def _squad(qas, context="Lobsters are blue and live in the sea."):
    return {"version": "v2.0", "data": [{"title": "L", "paragraphs": [{"context": context,
                                                                     "qas": qas}]}]}


def test_squad_v2_impossible_and_several_answers(tmp_path):
    qas = [
        {"id": "a", "question": "Colour?", "answers": [
            {"text": "blue", "answer_start": 13}, {"text": "blue", "answer_start": 13},
            {"text": "are blue", "answer_start": 9}]},
        {"id": "b", "question": "Height?", "is_impossible": True, "answers": [],
         "plausible_answers": [{"text": "sea", "answer_start": 34}]},
    ]
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(_squad(qas)))
    frame = read_squad(path)
    assert frame["is_impossible"].tolist() == [False, True]
    assert frame.loc[0, "answers"] == qas[0]["answers"]
    assert frame.loc[1, "answers"] == []
    assert frame.attrs["version"] == "v2.0"


def test_malformed_squad_names_file_and_question(tmp_path):
    bad = tmp_path / "shifted.json"
    bad.write_text(json.dumps(_squad([{"id": "q-7", "question": "Colour?",
                                       "answers": [{"text": "blue", "answer_start": 12}]}])))
    with pytest.raises(InputError, match=r"shifted\.json'.*question id 'q-7'.*' blu'"):
        read_squad(bad)
    assert read_squad(bad, check_answers=False).loc[0, "answers"][0]["answer_start"] == 12
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps(_squad([{"id": "q-8", "answers": []}])))
    with pytest.raises(InputError, match=r"qas\[0\] \(question id 'q-8'\) has no 'question'"):
        read_squad(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [\n  {"title": "x",\n  }\n]}')
    with pytest.raises(InputError, match=r"broken\.json', line 3: not valid JSON"):
        read_squad(broken)


# ================================================================ multiple choice
@pytest.mark.parametrize(
    ("name", "rows", "labelled"),
    [("train_rand_split", 9_741, True), ("dev_rand_split", 1_221, True),
     ("test_rand_split_no_answers", 1_140, False)],
)
def test_commonsenseqa_counts(data_dir, name, rows, labelled):
    path = data_dir / "commonsenseqa" / f"{name}.jsonl"
    frame = read_multiple_choice(path)
    assert frame.columns.tolist() == ["id", "prompt", "choices", "label", "choice_labels"]
    assert len(frame) == rows and frame["id"].is_unique
    assert frame["choices"].map(len).eq(5).all()
    assert frame["choice_labels"].map(lambda labels: labels == list("ABCDE")).all()
    assert frame["label"].dtype == np.int64
    if labelled:
        assert frame["label"].between(0, 4).all()
    else:
        assert frame["label"].eq(-1).all()
    with open(path, encoding="utf-8") as handle:
        raw = [json.loads(line) for line in itertools.islice(handle, 50)]
    for record, row in zip(raw, frame.itertuples(), strict=False):
        assert row.id == record["id"] and row.prompt == record["question"]["stem"]
        assert row.choices == [choice["text"] for choice in record["question"]["choices"]]
        assert row.label == ("ABCDE".index(record["answerKey"]) if labelled else -1)


SWAG_HEADER = "video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2," \
    "ending3,label\n"


def test_swag_csv(tmp_path):
    path = _write(tmp_path / "val.csv", SWAG_HEADER + (
        'anetv_1,5,"He sits, then he","He sits, then","he",gold,'
        '"stands, smiling.",runs.,"eats ""soup"".",sleeps.,0\n'
        "lsmdc_2,7,Someone opens it.,Someone opens it.,,gen,a,b,c,d,3\n"
    ))
    frame = read_multiple_choice(path)
    assert frame.to_dict("list") == {
        "id": ["5", "7"],
        "prompt": ["He sits, then he", "Someone opens it."],
        "choices": [["stands, smiling.", "runs.", 'eats "soup".', "sleeps."], ["a", "b", "c", "d"]],
        "label": [0, 3],
        "choice_labels": [None, None],
    }
    unlabelled = _write(tmp_path / "test.txt", "sent1,sent2,ending0,ending1\nA,b,c,d\nE,f,g,h\n")
    frame = read_multiple_choice(unlabelled, format="swag")
    assert frame[["id", "prompt", "label"]].values.tolist() == [["0", "A b", -1], ["1", "E f", -1]]


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        ("bad.jsonl", '{"id": "1", "question": {"stem": "s", "choices": [{"label": "A", "text": '
         '"a"}]}}\n\n{"id": 2, oops}\n', 3, "not a JSON object"),
        ("bad.jsonl", '{"id": "1", "answerKey": "A", "question": {"stem": "s", "choices": '
         '[{"label": "A", "text": "a"}]}}\n{"id": "2", "answerKey": "A", "question": {"stem": '
         '"s", "choices": [{"label": "A", "text": "a"}]}}\n{"id": "3", "question": {"stem": "s",'
         ' "choices": [{"label": "A", "text": "a"}]}}\n', 3,
         r"this row has no answer, while 2 other rows have one \(the first on line 1\)"),
        ("bad.jsonl", '{"id": "1", "answerKey": "F", "question": {"stem": "s", "choices": '
         '[{"label": "A", "text": "a"}]}}\n', 1, r"'answerKey' must be one of the choice labels"),
        ("bad.jsonl", '{"id": "1", "question": {"choices": []}}\n', 1, "'question.stem' must be"),
        ("bad.csv", SWAG_HEADER + "v,1,s,s,t,g,a,b,c,d,4\n", 2, "'label' must be the index"),
        ("bad.csv", SWAG_HEADER + "v,1,s,s,t,g,a,b,c,d,0\nv,1,s,s,t,g,a,b,c,d\n", 3,
         "expected 11 fields like the header, got 10"),
        ("bad.csv", "sent1,ending0\n", 1, "needs the columns 'sent1' and 'ending0', 'ending1'"),
    ],
)
def test_malformed_multiple_choice_names_file_and_line(tmp_path, name, text, line, message):
    path = _write(tmp_path / name, text)
    with pytest.raises(InputError, match=rf"{re.escape(name)}', line {line}: .*{message}"):
        read_multiple_choice(path)


def test_unknown_multiple_choice_format(tmp_path):
    with pytest.raises(InputError, match="'format' parameter of read_multiple_choice"):
        read_multiple_choice(_write(tmp_path / "a.csv", ""), format="hellaswag")


# ================================================================ STS Benchmark
@pytest.mark.parametrize(
    ("split", "rows", "with_sources"), [("train", 5_749, 197), ("dev", 1_500, 22),
                                        ("test", 1_379, 284)]
)
def test_sts_counts_and_pandas_semantics(data_dir, split, rows, with_sources):
    path = data_dir / "stsbenchmark" / f"sts-{split}.csv"
    frame = read_sts(path)
    assert frame.columns.tolist() == ["sentence1", "sentence2", "score", "genre", "file", "year"]
    assert len(frame) == rows
    assert frame["score"].dtype == np.float64 and frame["score"].between(0, 5).all()
    names = ["genre", "file", "year", "id", "score", "sentence1", "sentence2", "src1", "src2"]
    reference = pd.read_csv(path, sep="\t", quoting=3, header=None, names=names,
                            keep_default_na=False, dtype=str)
    assert int((reference["src1"] != "").sum()) == with_sources
    for column in ["sentence1", "sentence2", "genre", "file", "year"]:
        assert frame[column].tolist() == reference[column].tolist(), column
    np.testing.assert_array_equal(frame["score"], reference["score"].astype(float))


def test_sts_first_row(data_dir):
    frame = read_sts(data_dir / "stsbenchmark" / "sts-train.csv")
    assert frame.loc[0].tolist() == ["A plane is taking off.", "An air plane is taking off.", 5.0,
                                     "main-captions", "MSRvid", "2012test"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [("g\tf\t2012\t1\t5.0\ta\tb\n\ng\tf\t2012\t2\t1.0\ta\n", 3, "expected 7 tab-separated fields"),
     ("g\tf\t2012\t1\tfive\ta\tb\n", 1, "the score .* must be a number, got 'five'")],
)
def test_malformed_sts_names_file_and_line(tmp_path, text, line, message):
    path = _write(tmp_path / "sts-bad.csv", text)
    with pytest.raises(InputError, match=rf"sts-bad\.csv', line {line}: {message}"):
        read_sts(path)


# ================================================================ raw text and WikiText
WIKITEXT = {  # lines, words (whitespace tokens, headings included), articles, paragraphs
    "valid": (3_760, 213_886, 60, 1_841),
    "test": (4_358, 241_211, 60, 2_187),
}


@pytest.mark.parametrize("split", list(WIKITEXT))
def test_wikitext_keeps_every_paragraph(data_dir, split):
    n_lines, n_words, n_articles, n_paragraphs = WIKITEXT[split]
    path = data_dir / "wikitext2_raw" / f"wiki.{split}.raw"
    raw = path.read_text(encoding="utf-8").split("\n")
    assert raw[-1] == "" and len(raw) - 1 == n_lines
    assert sum(len(line.split()) for line in raw) == n_words
    articles = read_wikitext(path)
    paragraphs = read_wikitext(path, split="paragraph")
    assert articles.columns.tolist() == ["title", "sentences", "text"]
    assert paragraphs.columns.tolist() == ["title", "heading", "text"]
    assert len(articles) == articles["title"].nunique() == n_articles
    assert articles["sentences"].map(len).sum() == len(paragraphs) == n_paragraphs
    assert [p for s in articles["sentences"] for p in s] == paragraphs["text"].tolist()
    # Every non-blank line is a paragraph or a heading line (between blank lines).
    kept = Counter(paragraphs["text"])
    dropped = Counter(line.strip() for line in raw if line.strip()) - kept
    assert all(re.fullmatch(r"(= )+.+( =)+", line) for line in dropped)
    headings = sum(n for line, n in dropped.items())
    assert headings == n_lines - sum(not line.strip() for line in raw[:-1]) - n_paragraphs
    body_words = sum(len(text.split()) for text in paragraphs["text"])
    assert body_words + sum(len(line.split()) * n for line, n in dropped.items()) == n_words


def test_wikitext_titles_headings_and_formula_lines(data_dir):
    valid = read_wikitext(data_dir / "wikitext2_raw" / "wiki.valid.raw", split="paragraph")
    assert valid.loc[0, "title"] == "Homarus gammarus" and valid.loc[0, "heading"] == ""
    assert valid.loc[0, "text"].startswith("Homarus gammarus , known as the European lobster")
    assert valid.loc[1, "heading"] == "Description"
    test = read_wikitext(data_dir / "wikitext2_raw" / "wiki.test.raw")
    assert test["title"].tolist()[:3] == ["Robert Boulter", "Du Fu", "Kiss You ( One Direction "
                                          "song )"]
    filter_article = test.loc[test["title"] == "Constant k filter", "sentences"].item()
    assert "= 1 henry and capacitance C =" in filter_article


def test_wikitext_heading_rules(tmp_path):
    path = _write(tmp_path / "wiki.raw", (
        " Lead text before any title . \n \n = A = \n \n First . \n \n = = S = = \n \n"
        " = = = Sub = = = \n \n Second . \n = x = \n Third . \n \n = = odd = \n \n"
        " = after text = \n Fourth . \n \n = B = \n \n = = Empty = = \n \n = C = \n"
    ))
    paragraphs = read_wikitext(path, split="paragraph")
    assert paragraphs.values.tolist() == [
        ["", "", "Lead text before any title ."],
        ["A", "", "First ."],
        ["A", "Sub", "Second ."],
        ["A", "Sub", "= x ="],  # not between blank lines
        ["A", "Sub", "Third ."],
        ["A", "Sub", "= = odd ="],  # unequal marks
        ["A", "Sub", "= after text ="],  # no blank line after it
        ["A", "Sub", "Fourth ."],
    ]
    articles = read_wikitext(path)
    assert articles["title"].tolist() == ["", "A", "B", "C"]
    assert articles["sentences"].map(len).tolist() == [1, 7, 0, 0]


def test_read_text_documents_on_wikitext(data_dir):
    path = data_dir / "wikitext2_raw" / "wiki.valid.raw"
    frame = read_text_documents(path)
    assert frame.columns.tolist() == ["sentences", "text"]
    lines = path.read_text(encoding="utf-8").split("\n")
    assert frame["sentences"].map(len).sum() == sum(bool(line.strip()) for line in lines) == 2_461
    assert len(frame) == 1_160
    assert frame.loc[0, "sentences"] == [" = Homarus gammarus = "]
    assert len(read_text_documents(path, min_length=2)) == (frame["sentences"].map(len) >= 2).sum()


def test_read_text_documents_blank_lines_and_line_endings(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"\n\nA one.\r\n  A two. \r\n \t \n\n\nB one.\n\nC one.\nC two.\nC three.")
    frame = read_text_documents(path)
    assert frame["sentences"].tolist() == [["A one.", "  A two. "], ["B one."],
                                           ["C one.", "C two.", "C three."]]
    assert frame.loc[2, "text"] == "C one.\nC two.\nC three."
    assert read_text_documents(path, min_length=3)["sentences"].tolist() == [
        ["C one.", "C two.", "C three."]
    ]
    with pytest.raises(InputError, match="'min_length' parameter of read_text_documents"):
        read_text_documents(path, min_length=0)
    with pytest.raises(InputError, match="'split' parameter of read_wikitext"):
        read_wikitext(path, split="section")


# ================================================================ every reader: shared behaviour
READERS = [read_glue_tsv, read_conll, read_squad, read_multiple_choice, read_sts,
           read_text_documents, read_wikitext]


@pytest.mark.parametrize("reader", READERS, ids=lambda reader: reader.__name__)
def test_missing_file_is_named(tmp_path, reader):
    path = tmp_path / "nowhere" / "data.file"
    with pytest.raises(FileNotFoundError, match=r"nowhere/data\.file"):
        reader(path)
    with pytest.raises(FileNotFoundError, match="is a directory"):
        reader(str(tmp_path))


@pytest.mark.parametrize(
    ("reader", "content", "line"),
    [
        (read_glue_tsv, b"sentence\tlabel\nfine\t1\ncaf\xe9\t0\n", 3),
        (read_conll, b"a O\n\nb O\ncaf\xe9 O\n", 4),
        (read_multiple_choice, b"\n\xff\n", 2),
        (read_sts, b"g\tf\ty\t1\t5\ta\tb\ncaf\xe9", 2),
        (read_text_documents, b"fine\n\ncaf\xe9\n", 3),
        (read_wikitext, b" = T = \n\xe9\n", 2),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_non_utf8_bytes_name_the_line(tmp_path, reader, content, line):
    path = tmp_path / "latin1.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"latin1\.txt', line {line}: the bytes are not UTF-8"):
        reader(path)


# ================================================================ mask_tokens
VOCAB, MASK, CLS, SEP, PAD = 1000, 4, 2, 3, 0


@pytest.fixture(scope="module")
def batch():
    """64 rows of 200 ids: [CLS] words [SEP] then padding in half the rows."""
    rng = np.random.default_rng(7)
    ids = torch.from_numpy(rng.integers(10, VOCAB, size=(64, 200)))
    lengths = np.where(np.arange(64) % 2 == 0, 200, rng.integers(5, 200, size=64))
    attention = torch.from_numpy((np.arange(200) < lengths[:, None]).astype(np.int64))
    ids[attention == 0] = PAD
    ids[:, 0] = CLS
    ids[torch.arange(64), torch.from_numpy(lengths - 1)] = SEP
    special = (ids == CLS) | (ids == SEP) | (ids == PAD)
    return ids, special, attention


def _mask(batch, **options):
    ids, special, attention = batch
    options = {"special_tokens_mask": special, "attention_mask": attention, **options}
    return mask_tokens(ids, vocab_size=VOCAB, mask_token_id=MASK, **options)


def test_mask_tokens_chooses_15_percent_and_replaces_80_10_10(batch):
    ids, special, attention = batch
    before = ids.clone()
    masked, labels = _mask(batch, generator=np.random.default_rng(0))
    assert torch.equal(ids, before)  # the input is not modified
    assert masked.shape == ids.shape and masked.dtype == ids.dtype and labels.dtype == torch.int64
    chosen = labels != -100
    maskable = ~special & attention.bool()
    # Exactly round(0.15 * n) (at least 1) of each row's n maskable tokens.
    n = maskable.sum(dim=1)
    expected = [max(1, round(0.15 * int(k))) for k in n]
    assert chosen.sum(dim=1).tolist() == expected
    assert not (chosen & ~maskable).any()  # never [CLS], [SEP] or padding
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])
    fraction = chosen.sum().item() / maskable.sum().item()
    assert fraction == pytest.approx(0.15, abs=0.005)
    as_mask = (masked == MASK) & chosen
    random = chosen & (masked != MASK) & (masked != ids)
    kept = chosen & (masked == ids)
    total = chosen.sum().item()
    assert total > 1_000
    assert as_mask.sum().item() / total == pytest.approx(0.8, abs=0.03)
    assert random.sum().item() / total == pytest.approx(0.1, abs=0.025)
    assert kept.sum().item() / total == pytest.approx(0.1, abs=0.025)
    replacements = masked[random]
    assert ((replacements >= 0) & (replacements < VOCAB)).all()
    assert not torch.isin(replacements, torch.tensor([MASK, CLS, SEP, PAD])).any()


def test_mask_tokens_random_replacements_avoid_special_and_mask_ids():
    # Vocabulary of 12: [PAD]=0, [CLS]=2, [SEP]=3, [MASK]=4; words use ids 5..11, never 1.
    ids = torch.from_numpy(np.random.default_rng(0).integers(5, 12, size=(400, 12)))
    ids[:, 0], ids[:, -2], ids[:, -1] = CLS, SEP, PAD
    special = ids.le(SEP)
    masked, labels = mask_tokens(ids, vocab_size=12, mask_token_id=MASK, mlm_probability=1.0,
                                 special_tokens_mask=special, generator=np.random.default_rng(1))
    assert torch.equal(labels != -100, ~special)
    replaced = masked[(masked != ids) & (masked != MASK)]
    assert len(replaced) > 300
    assert set(replaced.unique().tolist()) == {1, 5, 6, 7, 8, 9, 10, 11}


def test_mask_tokens_is_deterministic_with_a_seeded_generator(batch):
    first = _mask(batch, generator=np.random.default_rng(3))
    again = _mask(batch, generator=np.random.default_rng(3))
    other = _mask(batch, generator=np.random.default_rng(4))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[1], other[1])
    torch_a = _mask(batch, generator=torch.Generator().manual_seed(3))
    torch_b = _mask(batch, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(torch_a, torch_b, strict=True))
    torch.manual_seed(5)
    global_a = _mask(batch)
    torch.manual_seed(5)
    global_b = _mask(batch)
    assert all(torch.equal(a, b) for a, b in zip(global_a, global_b, strict=True))


def test_mask_tokens_probability_bounds_and_options(batch):
    ids, special, attention = batch
    maskable = ~special & attention.bool()
    _, labels = _mask(batch, mlm_probability=1.0, generator=np.random.default_rng(0))
    assert torch.equal(labels != -100, maskable)
    masked, labels = _mask(batch, mlm_probability=0.0, generator=np.random.default_rng(0))
    assert torch.equal(masked, ids) and (labels == -100).all()
    _, labels = _mask(batch, ignore_index=-1, generator=np.random.default_rng(0))
    assert ((labels == -1) | (labels == ids)).all() and (labels == -1).any()
    short = torch.tensor([[CLS, 11, SEP], [CLS, SEP, PAD]], dtype=torch.int32)
    masked, labels = mask_tokens(short, vocab_size=VOCAB, mask_token_id=MASK,
                                 special_tokens_mask=short.le(SEP), generator=np.random.default_rng(0))
    assert masked.dtype == torch.int32
    assert labels.tolist() == [[-100, 11, -100], [-100, -100, -100]]  # 1 token rounds up to 1


def test_mask_tokens_whole_word(batch):
    ids, special, attention = batch
    rng = np.random.default_rng(11)
    # Words of 1 to 4 pieces; word ids restart at 0 half way (the second text of a pair).
    starts = torch.from_numpy(rng.random(ids.shape) < 0.45)
    words = torch.cumsum(starts, dim=1)
    words[:, 100:] = torch.cumsum(starts[:, 100:], dim=1)
    words[special] = -1
    masked, labels = _mask(batch, word_ids=words, whole_word=True,
                           generator=np.random.default_rng(0))
    chosen = labels != -100
    maskable = ~special & attention.bool()
    assert not (chosen & ~maskable).any()
    budget = torch.tensor([max(1, round(0.15 * int(k))) for k in maskable.sum(dim=1)])
    assert (chosen.sum(dim=1) <= budget).all()
    assert chosen.sum().item() >= 0.97 * budget.sum().item()
    for row in range(ids.shape[0]):
        segment = words[row].tolist()
        for _, group in itertools.groupby(range(ids.shape[1]), key=lambda i: (segment[i], i < 100)):
            positions = [i for i in group if maskable[row, i]]
            flags = {bool(chosen[row, i]) for i in positions}
            assert len(flags) <= 1, (row, positions)  # all pieces of a word, or none
    multi = [len(list(g)) for r in range(64) for k, g in itertools.groupby(
        zip(words[r].tolist(), chosen[r].tolist(), strict=True)) if k[1] and k[0] >= 0]
    assert max(multi) >= 3  # multi-piece words really were chosen together
    assert torch.equal(labels[chosen], ids[chosen])


def test_mask_tokens_whole_word_takes_word_ids_lists():
    ids = torch.tensor([[CLS, 20, 21, 22, 23, 24, SEP]])
    words = [[None, 0, 0, 0, 1, 1, None]]
    _, labels = mask_tokens(ids, vocab_size=VOCAB, mask_token_id=MASK, word_ids=words,
                            whole_word=True, mlm_probability=0.6,
                            generator=np.random.default_rng(0))
    # budget round(0.6 * 5) = 3: the 3-piece word fits, the 2-piece word fits only alone.
    assert (labels != -100).int().tolist()[0] in ([0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"whole_word": True}, "needs word_ids"),
        ({"special_tokens_mask": torch.zeros(2, 3)}, "'special_tokens_mask' parameter .* shape"),
        ({"mask_token_id": VOCAB}, "'mask_token_id' parameter"),
        ({"mlm_probability": 1.5}, "'mlm_probability' parameter"),
        ({"generator": 0}, "'generator' parameter"),
        ({"vocab_size": 30}, r"lie in \[0, vocab_size=30\)"),
    ],
)
def test_mask_tokens_rejects_bad_arguments(options, message):
    ids = torch.tensor([[CLS, 40, SEP]])
    options = {"vocab_size": VOCAB, "mask_token_id": MASK, **options}
    with pytest.raises(InputError, match=message):
        mask_tokens(ids, **options)
    with pytest.raises(InputError, match="2-D integer tensor"):
        mask_tokens(torch.tensor([1, 2]), vocab_size=VOCAB, mask_token_id=MASK)


# ================================================================ make_nsp_pairs
@pytest.fixture(scope="module")
def documents():
    rng = np.random.default_rng(0)
    return [[f"doc {d} sentence {s}" for s in range(int(rng.integers(1, 30)))] for d in range(200)]


def test_nsp_pairs_labels_and_sources(documents):
    pairs = make_nsp_pairs(documents, rng=np.random.default_rng(1))
    assert pairs.columns.tolist() == ["first", "second", "label", "document", "position"]
    assert len(pairs) == sum(len(doc) - 1 for doc in documents)
    assert IS_NEXT == 0 and NOT_NEXT == 1
    assert set(pairs["label"]) == {0, 1} and pairs["label"].dtype == np.int64
    assert pairs["label"].mean() == pytest.approx(0.5, abs=0.03)
    home = {sentence: d for d, doc in enumerate(documents) for sentence in doc}
    for row in pairs.itertuples():
        assert row.first == documents[row.document][row.position]
        if row.label == IS_NEXT:
            assert row.second == documents[row.document][row.position + 1]
        else:
            assert home[row.second] != row.document
    # Every consecutive pair appears once, in document order.
    expected = [(d, s) for d, doc in enumerate(documents) for s in range(len(doc) - 1)]
    assert list(zip(pairs["document"], pairs["position"], strict=True)) == expected
    # Random second sentences come from many documents, one-sentence documents included.
    sources = {home[s] for s in pairs.loc[pairs["label"] == NOT_NEXT, "second"]}
    assert len(sources) > 150 and any(len(documents[d]) == 1 for d in sources)


def test_nsp_pairs_are_deterministic(documents):
    first = make_nsp_pairs(documents, rng=5)
    pd.testing.assert_frame_equal(first, make_nsp_pairs(documents, rng=np.random.default_rng(5)))
    assert not first.equals(make_nsp_pairs(documents, rng=6))
    assert make_nsp_pairs(documents, rng=0, random_next_probability=0.0)["label"].eq(0).all()
    assert make_nsp_pairs(documents, rng=0, random_next_probability=1.0)["label"].eq(1).all()
    series = pd.Series(documents)
    pd.testing.assert_frame_equal(first, make_nsp_pairs(series, rng=5))


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([["a", "b", "c"]], "at least 2 documents with sentences"),
        ([["a", "b"], []], "at least 2 documents with sentences"),
        ([["a"], ["b"]], "no document with 2 or more sentences"),
        (["one sentence", "another"], "Document 0 is a str"),
        ("a b", "Got a single string"),
        ([["a", 1], ["b"]], "sentence 1 of document 0 is a int"),
    ],
)
def test_nsp_pairs_reject_bad_documents(documents, message):
    with pytest.raises(InputError, match=message):
        make_nsp_pairs(documents, rng=0)
