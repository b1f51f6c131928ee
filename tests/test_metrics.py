"""Entity-span and SQuAD metrics against hand-computed expectations."""

from __future__ import annotations

import pytest

from bertkit import InputError
from bertkit.metrics import (
    entity_f1,
    entity_scores,
    get_entities,
    normalize_answer,
    squad_exact_match,
    squad_f1,
    squad_scores,
)

# ---------------------------------------------------------------------------------------------
# get_entities: (tags, scheme, entities in default mode, entities in strict mode)
# ---------------------------------------------------------------------------------------------

DECODING_CASES = [
    # iob2: an entity running to the end of the sentence is closed there.
    (["B-PER", "I-PER", "O", "B-LOC"], "iob2",
     [("PER", 0, 2), ("LOC", 3, 4)], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["B-LOC", "I-LOC", "I-LOC"], "iob2", [("LOC", 0, 3)], [("LOC", 0, 3)]),
    (["B-PER", "B-PER"], "iob2", [("PER", 0, 1), ("PER", 1, 2)], [("PER", 0, 1), ("PER", 1, 2)]),
    # Type change mid-run: default splits it in two, strict drops the stray I-ORG.
    (["B-PER", "I-ORG"], "iob2", [("PER", 0, 1), ("ORG", 1, 2)], [("PER", 0, 1)]),
    # I- after O: default starts an entity there, strict ignores it.
    (["O", "I-PER", "I-PER", "O"], "iob2", [("PER", 1, 3)], []),
    (["I-PER", "B-PER"], "iob2", [("PER", 0, 1), ("PER", 1, 2)], [("PER", 1, 2)]),
    (["B-PER", "I-PER", "B-LOC", "B-LOC", "O"], "iob2",
     [("PER", 0, 2), ("LOC", 2, 3), ("LOC", 3, 4)], [("PER", 0, 2), ("LOC", 2, 3), ("LOC", 3, 4)]),
    (["O", "O"], "iob2", [], []),
    ([], "iob2", [], []),
    # Entity types may contain dashes; only the first one separates the prefix.
    (["B-PER-NAME", "I-PER-NAME"], "iob2", [("PER-NAME", 0, 2)], [("PER-NAME", 0, 2)]),
    (["B-I-X", "I-I-X"], "iob2", [("I-X", 0, 2)], [("I-X", 0, 2)]),
    # iob1: B- only separates two adjacent entities of one type.
    (["I-PER", "I-PER", "B-PER"], "iob1",
     [("PER", 0, 2), ("PER", 2, 3)], [("PER", 0, 2), ("PER", 2, 3)]),
    (["O", "I-MISC", "I-MISC", "B-MISC", "I-MISC", "O"], "iob1",
     [("MISC", 1, 3), ("MISC", 3, 5)], [("MISC", 1, 3), ("MISC", 3, 5)]),
    (["I-PER", "I-LOC"], "iob1", [("PER", 0, 1), ("LOC", 1, 2)], [("PER", 0, 1), ("LOC", 1, 2)]),
    (["I-PER", "I-LOC", "I-LOC"], "iob1", [("PER", 0, 1), ("LOC", 1, 3)],
     [("PER", 0, 1), ("LOC", 1, 3)]),
    (["O", "I-ORG", "O", "I-MISC", "I-MISC"], "iob1", [("ORG", 1, 2), ("MISC", 3, 5)],
     [("ORG", 1, 2), ("MISC", 3, 5)]),
    # A B- that follows no entity of its type breaks iob1: strict drops the whole span.
    (["O", "B-PER", "I-PER", "O"], "iob1", [("PER", 1, 3)], []),
    (["I-ORG", "B-PER"], "iob1", [("ORG", 0, 1), ("PER", 1, 2)], [("ORG", 0, 1)]),
    # A B- right after a PER tag starts a strict PER entity, even if that tag was dropped.
    (["B-PER", "B-PER", "I-PER"], "iob1", [("PER", 0, 1), ("PER", 1, 3)], [("PER", 1, 3)]),
    (["B-PER", "O", "I-PER"], "iob1", [("PER", 0, 1), ("PER", 2, 3)], [("PER", 2, 3)]),
    # iobes: S- singletons, E- closes.
    (["S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "S-ORG"], "iobes",
     [("PER", 0, 1), ("LOC", 1, 4), ("ORG", 5, 6)], [("PER", 0, 1), ("LOC", 1, 4), ("ORG", 5, 6)]),
    (["B-PER", "E-PER", "S-LOC"], "iobes", [("PER", 0, 2), ("LOC", 2, 3)],
     [("PER", 0, 2), ("LOC", 2, 3)]),
    (["S-PER", "S-PER"], "iobes", [("PER", 0, 1), ("PER", 1, 2)], [("PER", 0, 1), ("PER", 1, 2)]),
    # Never closed by E-: default ends it before O (or at the end), strict drops it.
    (["B-PER", "I-PER", "O"], "iobes", [("PER", 0, 2)], []),
    (["B-PER", "I-PER"], "iobes", [("PER", 0, 2)], []),
    (["B-PER", "O"], "iobes", [("PER", 0, 1)], []),
    (["O", "O"], "iobes", [], []),
    # An E- after O: default reads a one-token entity, strict nothing.
    (["O", "E-PER"], "iobes", [("PER", 1, 2)], []),
    # A B- cut short by an S- of another type: strict keeps only the S- entity.
    (["B-PER", "S-LOC"], "iobes", [("PER", 0, 1), ("LOC", 1, 2)], [("LOC", 1, 2)]),
    # Default: the E- after E- opens a second entity; strict: that E- begins nothing.
    (["B-LOC", "E-LOC", "E-LOC"], "iobes", [("LOC", 0, 2), ("LOC", 2, 3)], [("LOC", 0, 2)]),
    (["O", "I-PER", "E-PER"], "iobes", [("PER", 1, 3)], []),
    (["B-PER", "S-PER"], "iobes", [("PER", 0, 1), ("PER", 1, 2)], [("PER", 1, 2)]),
    # bilou: L- and U- play E- and S-.
    (["U-PER", "B-LOC", "I-LOC", "L-LOC", "O"], "bilou",
     [("PER", 0, 1), ("LOC", 1, 4)], [("PER", 0, 1), ("LOC", 1, 4)]),
    (["B-LOC", "I-LOC", "O"], "bilou", [("LOC", 0, 2)], []),
    (["U-PER", "B-LOC", "I-LOC"], "bilou", [("PER", 0, 1), ("LOC", 1, 3)], [("PER", 0, 1)]),
    # io: a maximal run of one type.
    (["I-PER", "I-PER", "I-LOC", "O", "I-PER"], "io",
     [("PER", 0, 2), ("LOC", 2, 3), ("PER", 4, 5)], [("PER", 0, 2), ("LOC", 2, 3), ("PER", 4, 5)]),
]


@pytest.mark.parametrize(("tags", "scheme", "default", "strict"), DECODING_CASES)
def test_get_entities(tags, scheme, default, strict):
    assert get_entities(tags, scheme) == default
    assert get_entities(tags, scheme, mode="default") == default
    assert get_entities(tags, scheme=scheme, mode="strict") == strict


def test_get_entities_default_scheme_is_iob2_and_accepts_tuples():
    assert get_entities(("O", "I-PER"), mode="strict") == []
    assert get_entities(("O", "I-PER")) == [("PER", 1, 2)]


@pytest.mark.parametrize(
    ("tags", "scheme", "bad"),
    [
        (["B-PER", "E-PER"], "iob2", "tags[1] is 'E-PER'"),
        (["B-PER", "L-PER"], "iobes", "tags[1] is 'L-PER'"),
        (["S-PER"], "bilou", "tags[0] is 'S-PER'"),
        (["B-PER"], "io", "tags[0] is 'B-PER'"),
        (["O", "PER"], "iob2", "tags[1] is 'PER'"),
        (["B-"], "iob2", "tags[0] is 'B-'"),
        (["b-PER"], "iob2", "tags[0] is 'b-PER'"),
        (["O", 3], "iob2", "tags[1] is 3"),
    ],
)
def test_get_entities_rejects_tags_outside_the_scheme(tags, scheme, bad):
    with pytest.raises(InputError) as info:
        get_entities(tags, scheme)
    message = str(info.value)
    assert bad in message and f"not a tag of the {scheme!r} scheme" in message


def test_get_entities_names_allowed_prefixes():
    with pytest.raises(InputError, match=r"'B-', 'I-', 'E-', 'S-'"):
        get_entities(["U-PER"], "iobes")


def test_get_entities_rejects_a_string_and_nested_sentences():
    with pytest.raises(InputError, match="tags must be a sequence of tag strings"):
        get_entities("B-PER")
    with pytest.raises(InputError, match=r"tags\[0\] is \['B-PER'\]"):
        get_entities([["B-PER"], ["O"]])


@pytest.mark.parametrize("scheme", ["bioul2", "iob", "BIO2", "", None, 2])
def test_unknown_scheme_lists_the_allowed_ones(scheme):
    allowed = (
        "{'iob1', 'iob2', 'iobes', 'bilou', 'io'} in any case, or an alias ('bio' for 'iob2', "
        "'bioes' for 'iobes')"
    )
    with pytest.raises(InputError) as info:
        get_entities(["O"], scheme)
    assert str(info.value) == (
        f"The 'scheme' parameter of get_entities must be one of {allowed}. Got {scheme!r}."
    )
    with pytest.raises(InputError, match="The 'scheme' parameter of entity_f1 must be one of"):
        entity_f1([["O"]], [["O"]], scheme=scheme)
    with pytest.raises(InputError, match="The 'scheme' parameter of entity_scores must be one"):
        entity_scores([["O"]], [["O"]], scheme=scheme)


@pytest.mark.parametrize(
    ("alias", "scheme", "tags"),
    [
        ("BIO", "iob2", ["O", "I-PER", "B-PER", "I-LOC"]),
        ("bio", "iob2", ["B-PER", "I-PER", "O"]),
        ("IOB2", "iob2", ["O", "I-PER", "B-PER", "I-LOC"]),
        ("Iob1", "iob1", ["B-PER", "O", "I-PER", "B-PER"]),
        ("bioes", "iobes", ["B-PER", "I-PER", "S-LOC", "E-LOC"]),
        ("BIOES", "iobes", ["S-PER", "B-LOC", "E-LOC"]),
        ("IOBES", "iobes", ["S-PER", "B-LOC", "E-LOC"]),
        ("BILOU", "bilou", ["U-PER", "B-LOC", "L-LOC", "B-ORG"]),
        ("IO", "io", ["I-PER", "I-LOC", "O"]),
    ],
)
def test_scheme_names_are_case_insensitive_with_aliases(alias, scheme, tags):
    for mode in ("default", "strict"):
        expected = get_entities(tags, scheme, mode=mode)
        assert get_entities(tags, alias, mode=mode) == expected
    scores = entity_scores([tags], [tags], scheme=alias)
    assert scores == entity_scores([tags], [tags], scheme=scheme)
    assert entity_f1([tags], [["O"] * len(tags)], scheme=alias, mode="strict") == 0.0
    # The scheme named in a bad-tag error is the canonical name.
    with pytest.raises(InputError, match=f"not a tag of the {scheme!r} scheme"):
        get_entities(["X-PER"], alias)


def test_unknown_mode_and_average():
    with pytest.raises(InputError) as info:
        get_entities(["O"], mode="lenient")
    assert "must be one of {'default', 'strict'}. Got 'lenient'." in str(info.value)
    with pytest.raises(InputError) as info:
        entity_f1([["O"]], [["O"]], average="samples")
    assert str(info.value) == (
        "The 'average' parameter of entity_f1 must be one of {'micro', 'macro', 'weighted'}. "
        "Got 'samples'."
    )


# ---------------------------------------------------------------------------------------------
# entity_f1 / entity_scores
# ---------------------------------------------------------------------------------------------

# Reference entities (sentence, type, start, end):
#   s0 PER 0-2, LOC 3-4 | s1 ORG 1-4 | s2 PER 0-1, MISC 2-3 | s3 none      -> 5
# Predicted entities:
#   s0 PER 0-2 (hit), ORG 3-4 (wrong type: FP ORG + FN LOC)
#   s1 ORG 1-3 (wrong end: FP ORG + FN ORG)
#   s2 MISC 2-3 (hit); PER 0-1 missed (FN PER)
#   s3 LOC 0-1, PER 1-2 (extra: FP LOC, FP PER)                             -> 6
# Micro: TP 2, P = 2/6 = 1/3, R = 2/5, F1 = 2 TP / (pred + true) = 4/11.
# Per type (TP, pred, true): PER (1, 2, 2) -> P 1/2, R 1/2, F1 1/2
#                            LOC (0, 1, 1), ORG (0, 2, 1) -> all 0
#                            MISC (1, 1, 1) -> all 1
# Macro F1 = (1/2 + 0 + 0 + 1) / 4 = 3/8; weighted = (1/2 * 2 + 1 * 1) / 5 = 2/5.
Y_TRUE = [
    ["B-PER", "I-PER", "O", "B-LOC", "O"],
    ["O", "B-ORG", "I-ORG", "I-ORG", "O"],
    ["B-PER", "O", "B-MISC", "O", "O"],
    ["O", "O"],
]
Y_PRED = [
    ["B-PER", "I-PER", "O", "B-ORG", "O"],
    ["O", "B-ORG", "I-ORG", "O", "O"],
    ["O", "O", "B-MISC", "O", "O"],
    ["B-LOC", "B-PER"],
]


def test_entity_scores_by_hand():
    scores = entity_scores(Y_TRUE, Y_PRED)
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(2 / 5)
    assert scores["f1"] == pytest.approx(4 / 11)
    assert scores["support"] == 5
    assert list(scores["per_type"]) == ["LOC", "MISC", "ORG", "PER"]
    assert scores["per_type"]["PER"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert scores["per_type"]["MISC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert scores["per_type"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


@pytest.mark.parametrize(
    ("average", "expected"), [("micro", 4 / 11), ("macro", 3 / 8), ("weighted", 2 / 5)]
)
def test_entity_f1_averages_by_hand(average, expected):
    assert entity_f1(Y_TRUE, Y_PRED, average=average) == pytest.approx(expected)


def test_entity_f1_default_is_micro():
    assert entity_f1(Y_TRUE, Y_PRED) == pytest.approx(4 / 11)


def test_seqeval_readme_example():
    # seqeval: f1_score = precision = recall = 0.50; MISC 0.00, PER 1.00; macro avg 0.50.
    y_true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    y_pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert entity_f1(y_true, y_pred) == pytest.approx(0.5)
    assert entity_f1(y_true, y_pred, average="macro") == pytest.approx(0.5)
    scores = entity_scores(y_true, y_pred)
    assert (scores["precision"], scores["recall"], scores["support"]) == (0.5, 0.5, 2)
    assert scores["per_type"]["MISC"]["f1"] == 0.0
    assert scores["per_type"]["PER"]["f1"] == 1.0


def test_entities_match_within_their_sentence_only():
    # Same (type, start, end) but in another sentence: no match.
    assert entity_f1([["B-PER", "O"], ["O", "O"]], [["O", "O"], ["B-PER", "O"]]) == 0.0
    # An entity at the end of one sentence does not continue into the next.
    scores = entity_scores([["O", "B-PER"], ["I-PER", "O"]], [["O", "B-PER"], ["O", "O"]])
    assert (scores["precision"], scores["recall"], scores["support"]) == (1.0, 0.5, 2)


def test_strict_mode_changes_the_score():
    y_true = [["B-PER", "I-PER", "O"]]
    y_pred = [["I-PER", "I-PER", "O"]]
    # Default: the I-PER run after O is PER 0-2, a hit. Strict: no predicted entity.
    assert entity_f1(y_true, y_pred) == 1.0
    scores = entity_scores(y_true, y_pred, mode="strict")
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)


def test_iobes_and_bilou_score_alike():
    y_true = [["S-PER", "O", "B-LOC", "E-LOC"], ["B-ORG", "I-ORG", "E-ORG"]]
    y_pred = [["S-PER", "O", "S-LOC", "S-LOC"], ["B-ORG", "I-ORG", "E-ORG"]]
    # True: PER 0-1, LOC 2-4, ORG 0-3; predicted: PER 0-1, LOC 2-3, LOC 3-4, ORG 0-3.
    # TP 2, P = 2/4, R = 2/3, F1 = 4/7.
    assert entity_f1(y_true, y_pred, scheme="iobes") == pytest.approx(4 / 7)
    to_bilou = {"S": "U", "E": "L"}

    def bilou(rows):
        return [[to_bilou.get(t[0], t[0]) + t[1:] for t in row] for row in rows]

    assert entity_f1(bilou(y_true), bilou(y_pred), scheme="bilou") == pytest.approx(4 / 7)


def test_no_entities_anywhere_scores_zero():
    scores = entity_scores([["O", "O"], ["O"]], [["O", "O"], ["O"]])
    assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "per_type": {}}
    for average in ("micro", "macro", "weighted"):
        assert entity_f1([["O"]], [["O"]], average=average) == 0.0
    assert entity_f1([], []) == 0.0


def test_no_predicted_entities_scores_zero_precision():
    scores = entity_scores([["B-PER", "O"]], [["O", "O"]])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)
    assert scores["per_type"]["PER"]["support"] == 1


def test_predicted_entities_without_references():
    scores = entity_scores([["O", "O"]], [["B-PER", "O"]])
    assert (scores["precision"], scores["recall"], scores["support"]) == (0.0, 0.0, 0)
    assert scores["per_type"] == {
        "PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    }
    # The predicted-only type takes part in the macro mean, not in the weighted one.
    y_true = [["B-LOC", "O"]]
    y_pred = [["B-LOC", "B-PER"]]
    assert entity_f1(y_true, y_pred, average="macro") == pytest.approx(0.5)
    assert entity_f1(y_true, y_pred, average="weighted") == pytest.approx(1.0)
    assert entity_f1(y_true, y_pred) == pytest.approx(2 / 3)  # P 1/2, R 1


def test_different_number_of_sentences():
    with pytest.raises(InputError) as info:
        entity_f1([["O"], ["O"]], [["O"]])
    assert str(info.value).startswith("y_true has 2 sentences but y_pred has 1.")


def test_different_sentence_length_names_the_first_one():
    y_true = [["O", "O"], ["B-PER", "I-PER", "O"], ["O"]]
    y_pred = [["O", "O"], ["B-PER", "I-PER"], []]
    with pytest.raises(InputError) as info:
        entity_scores(y_true, y_pred)
    assert str(info.value).startswith("Sentence 1 has 3 tags in y_true but 2 in y_pred.")
    with pytest.raises(ValueError, match="Sentence 1 has 3 tags in y_true but 2 in y_pred"):
        entity_f1(y_true, y_pred)


def test_flat_tag_lists_are_rejected():
    with pytest.raises(InputError, match=r"y_true\[0\] must be the tag list of one sentence"):
        entity_f1(["B-PER", "O"], ["B-PER", "O"])
    with pytest.raises(InputError, match="y_pred must be a list of tag lists"):
        entity_f1([["O"]], "O")


def test_bad_tag_names_its_sentence_and_side():
    with pytest.raises(InputError, match=r"y_pred\[1\]\[0\] is 'S-PER'"):
        entity_f1([["O"], ["O"]], [["O"], ["S-PER"]])


# ---------------------------------------------------------------------------------------------
# SQuAD
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Eiffel Tower!", "eiffel tower"),
        ("A cat, an apple & the dog.", "cat apple dog"),
        # Articles only as whole words.
        ("Theater anatomy, Then", "theater anatomy then"),
        # Punctuation is deleted, not replaced by a space.
        ("well-known U.S.A.", "wellknown usa"),
        ("rock'n'roll", "rocknroll"),
        # Punctuation goes before articles: "(the)" becomes "the", then goes; "the,end" is
        # one word once the comma is gone.
        ("(the) end", "end"),
        ("the,end", "theend"),
        # Only ASCII punctuation, as in the official script.
        ("«Paris»", "«paris»"),
        ("  \tNew\nYork ", "new york"),
        ("The", ""),
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match():
    assert squad_exact_match("the Eiffel tower.", ["Eiffel Tower"]) == 1.0
    assert squad_exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    assert squad_exact_match("Eiffel Tower", ["Paris", "eiffel TOWER"]) == 1.0
    assert squad_exact_match("Eiffel Tower", "the Eiffel Tower") == 1.0


@pytest.mark.parametrize(
    ("prediction", "golds", "expected"),
    [
        # "in 1990s" vs "1990s": overlap 1, P = 1/2, R = 1/1, F1 = 2 * 1/2 * 1 / (3/2) = 2/3.
        ("in the 1990s", ["1990s"], 2 / 3),
        # [denver, broncos, won] vs [denver, broncos]: P = 2/3, R = 1, F1 = (4/3) / (5/3) = 4/5.
        ("Denver Broncos won", ["the Denver Broncos"], 4 / 5),
        # Multiset overlap: [new, york, new, york] vs [new, york] shares 2, P = 1/2, R = 1.
        ("new york new york", ["New York"], 2 / 3),
        ("New York", ["new york new york"], 2 / 3),
        # Max over golds: vs "1990s" P 1/2 R 1 -> 2/3; vs [late, 1990s, era] P 1 R 2/3 -> 4/5.
        ("late 1990s", ["1990s", "late 1990s era"], 4 / 5),
        ("1990s", ["in the 1990s", "1990s"], 1.0),
        ("Paris", ["London"], 0.0),
        # An empty prediction on an answerable question.
        ("", ["Paris"], 0.0),
    ],
)
def test_f1(prediction, golds, expected):
    assert squad_f1(prediction, golds) == pytest.approx(expected)


def test_f1_max_is_independent_of_exact_match():
    golds = ["1990s", "late 1990s era"]
    assert squad_exact_match("late 1990s", golds) == 0.0
    assert squad_f1("late 1990s", golds) == pytest.approx(4 / 5)


@pytest.mark.parametrize("no_answer", [[], [""], "", [{"text": ""}], {"text": []}])
def test_unanswerable_questions(no_answer):
    for prediction in ("", "The.", "  "):  # all normalise to ""
        assert squad_exact_match(prediction, no_answer) == 1.0
        assert squad_f1(prediction, no_answer) == 1.0
    assert squad_exact_match("Paris", no_answer) == 0.0
    assert squad_f1("Paris", no_answer) == 0.0


def test_gold_answers_that_normalise_to_nothing_are_dropped():
    # Official v2.0: "the" is dropped from the golds, so only "Paris" remains.
    assert squad_exact_match("", ["the", "Paris"]) == 0.0
    assert squad_f1("", ["the", "Paris"]) == 0.0
    assert squad_exact_match("Paris", ["the", "Paris"]) == 1.0


def test_squad_scores_in_percent():
    predictions = ["Denver Broncos", "in the 1990s", "", "Paris"]
    references = [
        ["Denver Broncos", "Broncos"],
        [{"text": "1990s"}, {"text": "the 1990s"}],
        [],
        {"text": ["London", "in London"], "answer_start": [0, 3]},
    ]
    # EM: 1, 0 ("in 1990s" is neither "1990s" nor "1990s"), 1, 0 -> 2/4 = 50%.
    # F1: 1, 2/3, 1, 0 -> (8/3) / 4 = 2/3 -> 66.67%.
    scores = squad_scores(predictions, references)
    assert scores == pytest.approx({"exact_match": 50.0, "f1": 200 / 3})
    assert set(scores) == {"exact_match", "f1"}


def test_squad_scores_bad_inputs():
    with pytest.raises(InputError) as info:
        squad_scores(["a", "b"], [["a"]])
    assert str(info.value).startswith("predictions has 2 answers but references has 1 questions.")
    with pytest.raises(InputError, match="at least one question"):
        squad_scores([], [])
    with pytest.raises(InputError, match=r"predictions\[1\] must be the predicted answer text"):
        squad_scores(["a", None], [["a"], ["b"]])
    with pytest.raises(InputError, match=r"references\[0\]\[1\] is 3"):
        squad_scores(["a"], [["a", 3]])
    with pytest.raises(InputError, match=r"references\[0\] is a dict without a 'text' key"):
        squad_scores(["a"], [{"answer": "a"}])
    with pytest.raises(InputError, match="predictions must be a list of answer strings"):
        squad_scores({"q1": "a"}, {"q1": ["a"]})
    with pytest.raises(InputError, match="normalize_answer takes a string"):
        normalize_answer(None)
