"""Evaluation metrics for token classification (entity spans) and extractive QA (SQuAD).

Pure Python, no torch and no scikit-learn estimators. Two families:

* **Entity scores** for sequence labelling (NER, chunking) on exact span matches, as
  ``conlleval`` and ``seqeval`` compute them: :func:`get_entities`, :func:`entity_f1`,
  :func:`entity_scores`. :func:`get_entities` is bertkit's one decoder of tags into entity
  spans (:func:`bertkit.datasets.convert_tags` and :func:`~bertkit.datasets.read_conll` use
  it too). Scheme names are case-insensitive, with ``"bio"`` for ``"iob2"`` and ``"bioes"``
  for ``"iobes"``.
* **SQuAD scores** with the answer normalisation of the official v1.1/v2.0 evaluation
  scripts: :func:`normalize_answer`, :func:`squad_exact_match`, :func:`squad_f1`,
  :func:`squad_scores`.

Every bad argument raises :class:`bertkit.InputError` (a ``ValueError``).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._errors import InputError

__all__ = [
    "get_entities",
    "entity_f1",
    "entity_scores",
    "normalize_answer",
    "squad_exact_match",
    "squad_f1",
    "squad_scores",
]

# The prefixes each tag scheme allows besides "O". "bilou" is "iobes" spelt with L (last) for E
# and U (unit) for S; its tags are rewritten to IOBES letters before decoding.
_SCHEME_PREFIXES: dict[str, tuple[str, ...]] = {
    "iob1": ("B", "I"),
    "iob2": ("B", "I"),
    "iobes": ("B", "I", "E", "S"),
    "bilou": ("B", "I", "L", "U"),
    "io": ("I",),
}
_BILOU_TO_IOBES = {"L": "E", "U": "S"}
_SCHEMES = tuple(_SCHEME_PREFIXES)
# Other names of a scheme, lower-case like the canonical names.
_SCHEME_ALIASES = {"bio": "iob2", "bioes": "iobes"}
_MODES = ("default", "strict")
_AVERAGES = ("micro", "macro", "weighted")
_SENTENCE_HINT = " Pass one tag list per sentence, e.g. [['B-PER', 'I-PER', 'O'], ['O']]."

# A parsed tag: (prefix, entity type), with ("O", "") outside every entity.
_Tag = tuple[str, str]
_OUTSIDE: _Tag = ("O", "")


def _check_choice(value: object, name: str, owner: str, allowed: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(repr(option) for option in allowed)
        raise InputError(
            f"The {name!r} parameter of {owner} must be one of {{{choices}}}. Got {value!r}."
        )


def _normalize_scheme(
    value: object, owner: str, name: str = "scheme", allowed: Sequence[str] = _SCHEMES
) -> str:
    """The canonical (lower-case) name of the tagging scheme that ``value`` names.

    Case-insensitive, with the aliases of ``_SCHEME_ALIASES``. Anything else, or a scheme
    outside ``allowed``, raises an InputError naming parameter ``name`` of ``owner`` and
    listing the allowed names and their aliases. :mod:`bertkit.datasets` uses it too.
    """
    key = value.lower() if isinstance(value, str) else ""
    key = _SCHEME_ALIASES.get(key, key)
    if key in allowed:
        return key
    names = ", ".join(repr(scheme) for scheme in allowed)
    aliases = ", ".join(
        f"{alias!r} for {target!r}"
        for alias, target in _SCHEME_ALIASES.items()
        if target in allowed
    )
    raise InputError(
        f"The {name!r} parameter of {owner} must be one of {{{names}}} in any case, or an "
        f"alias ({aliases}). Got {value!r}."
    )


def _describe(value: object) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    return f"a {type(value).__name__}"


def _as_list(value: Any, where: str, expected: str, hint: str = "") -> list[Any]:
    # Strings and mappings are iterable, but iterating them is never what the caller meant.
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InputError(f"{where} must be {expected}; got {_describe(value)}.{hint}")
    return list(value)


# ---------------------------------------------------------------------------------------------
# Entity spans
# ---------------------------------------------------------------------------------------------


class _ForeignTagError(InputError):
    """A tag that its scheme does not allow, at index ``position`` of its sentence.

    ``tag`` is the tag and ``rule`` says which tags the scheme allows, so that a caller that
    knows where the tags come from (a file line, a parameter) can word its own message.
    """

    def __init__(self, where: str, position: int, tag: object, scheme: str) -> None:
        allowed = _SCHEME_PREFIXES[scheme]
        prefixes = ", ".join(f"'{prefix}-'" for prefix in allowed)
        self.position = position
        self.tag = tag
        self.rule = (
            f"Tags must be 'O' or one of the prefixes {prefixes} followed by an entity type, "
            f"such as '{allowed[0]}-PER'."
        )
        super().__init__(
            f"{where}[{position}] is {tag!r}, which is not a tag of the {scheme!r} scheme. "
            f"{self.rule} Map label ids to tag names first, or pick the 'scheme' your tags use."
        )


def _parse_tags(tags: Iterable[Any], scheme: str, where: str) -> list[_Tag]:
    allowed = _SCHEME_PREFIXES[scheme]
    parsed: list[_Tag] = []
    for position, tag in enumerate(tags):
        if isinstance(tag, str):
            if tag == "O":
                parsed.append(_OUTSIDE)
                continue
            prefix, dash, type_ = tag.partition("-")
            if dash and type_ and prefix in allowed:
                parsed.append((_BILOU_TO_IOBES.get(prefix, prefix), type_))
                continue
        raise _ForeignTagError(where, position, tag, scheme)
    return parsed


def _lenient_end(prev: _Tag, cur: _Tag) -> bool:
    """conlleval/seqeval: does an entity end between ``prev`` and ``cur``?"""
    if prev[0] == "O":
        return False
    return prev[0] in ("E", "S") or cur[0] in ("B", "S", "O") or prev[1] != cur[1]


def _lenient_start(prev: _Tag, cur: _Tag) -> bool:
    """conlleval/seqeval: does an entity start at ``cur``?"""
    if cur[0] == "O":
        return False
    return cur[0] in ("B", "S") or prev[0] in ("O", "E", "S") or prev[1] != cur[1]


def _decode_lenient(parsed: list[_Tag]) -> list[tuple[str, int, int]]:
    entities = []
    start = 0
    prev = _OUTSIDE
    for index, cur in enumerate([*parsed, _OUTSIDE]):
        if _lenient_end(prev, cur):
            entities.append((prev[1], start, index))
        if _lenient_start(prev, cur):
            start = index
        prev = cur
    return entities


def _strict_start(scheme: str, prev: _Tag, cur: _Tag) -> bool:
    if scheme == "iob2":
        return cur[0] == "B"
    if scheme == "iobes":
        return cur[0] in ("B", "S")
    # iob1 and io: a run of I- starts after O or after another type; in iob1 a B- starts an
    # entity only right after an entity of its own type (its one job is to separate the two).
    if cur[0] == "I":
        return prev[1] != cur[1]
    return cur[0] == "B" and prev[0] != "O" and prev[1] == cur[1]


def _strict_inside(scheme: str, prev: _Tag, cur: _Tag) -> bool:
    inside = ("I", "E") if scheme == "iobes" else ("I",)
    return prev[0] in ("B", "I") and cur[0] in inside and prev[1] == cur[1]


def _decode_strict(parsed: list[_Tag], scheme: str) -> list[tuple[str, int, int]]:
    entities = []
    start: int | None = None
    prev = _OUTSIDE
    for index, cur in enumerate([*parsed, _OUTSIDE]):
        if start is not None and not _strict_inside(scheme, prev, cur):
            # The open span is [start, index); IOBES counts it only if E- or S- closed it.
            if scheme != "iobes" or prev[0] in ("E", "S"):
                entities.append((prev[1], start, index))
            start = None
        if start is None and _strict_start(scheme, prev, cur):
            start = index
        prev = cur
    return entities


def _decode(parsed: list[_Tag], scheme: str, mode: str) -> list[tuple[str, int, int]]:
    if mode == "default":
        return _decode_lenient(parsed)
    return _decode_strict(parsed, "iobes" if scheme == "bilou" else scheme)


def get_entities(
    tags: Sequence[str], scheme: str = "iob2", *, mode: str = "default"
) -> list[tuple[str, int, int]]:
    """Decode the entity spans of one tagged sentence.

    Parameters
    ----------
    tags : sequence of str
        One tag per token, such as ``["B-PER", "I-PER", "O"]``: ``"O"`` or a one-letter
        prefix, a ``-`` and the entity type (the type may itself contain ``-``).
    scheme : {"iob2", "iob1", "iobes", "bilou", "io"}, default="iob2"
        The tagging scheme, which fixes the prefixes allowed besides ``O``. Case-insensitive;
        ``"bio"`` is another name of ``"iob2"`` and ``"bioes"`` of ``"iobes"``.

        - ``"iob2"`` (BIO): ``B-`` begins every entity, ``I-`` continues it.
        - ``"iob1"``: ``I-`` is used throughout; ``B-`` only begins an entity that directly
          follows another entity of the same type (``I-PER I-PER B-PER`` is two persons).
        - ``"iobes"``: ``B-`` begin, ``I-`` inside, ``E-`` end, ``S-`` single-token entity.
        - ``"bilou"``: the same with ``L-`` (last) for ``E-`` and ``U-`` (unit) for ``S-``.
        - ``"io"``: ``I-`` only; a maximal run of one type is one entity.

        A tag with another prefix raises :class:`~bertkit.InputError`.
    mode : {"default", "strict"}, default="default"
        How sequences that break the scheme's rules are read.

        - ``"default"`` decodes like ``conlleval`` and ``seqeval``'s default mode, whatever
          the scheme: an entity starts at ``B-``/``S-``, at ``I-``/``E-`` after ``O``, ``E-``
          or ``S-``, and at any tag whose type differs from the previous tag's; it ends
          before ``B-``, ``S-`` or ``O``, after ``E-`` or ``S-``, and where the type changes.
          So ``O I-PER`` is a person, and ``B-PER I-ORG`` is a person then an organisation.
        - ``"strict"`` counts only well-formed spans, like ``seqeval``'s ``mode="strict"``:
          ``B-X (I-X)*`` in iob2; ``B-X (I-X)* E-X`` or ``S-X`` in iobes and bilou; in iob1 a
          run ``(I-X)+`` after ``O`` or another type, or ``B-X (I-X)*`` right after an entity
          of type ``X``; in io a run ``(I-X)+``. Tokens outside such spans belong to no
          entity: ``O I-PER`` (iob2), ``B-PER I-PER O`` (iobes, never closed) and
          ``O B-PER`` (iob1) yield nothing, and ``B-PER I-ORG`` (iob2) only the person.
          For iob2, iobes and bilou this is exactly seqeval's strict decoding; for iob1 it is
          bertkit's own, as seqeval's strict IOB1 keeps the ``I-`` tokens that follow a
          misplaced ``B-`` (``O B-PER I-PER`` gives a person at 2).

        Both modes agree on every well-formed sequence.

    Returns
    -------
    list of (str, int, int)
        ``(type, start, end)`` for each entity, in order, with ``end`` exclusive:
        ``tags[start:end]`` are the entity's tags.

    Raises
    ------
    InputError
        For an unknown ``scheme`` or ``mode``, or a tag the scheme does not allow.

    Examples
    --------
    >>> from bertkit.metrics import get_entities
    >>> get_entities(["B-PER", "I-PER", "O", "B-LOC"])
    [('PER', 0, 2), ('LOC', 3, 4)]
    >>> get_entities(["I-PER", "I-PER", "B-PER"], scheme="iob1")
    [('PER', 0, 2), ('PER', 2, 3)]
    >>> get_entities(["S-PER", "B-LOC", "E-LOC"], scheme="BIOES")
    [('PER', 0, 1), ('LOC', 1, 3)]
    >>> get_entities(["O", "I-PER", "B-ORG"])
    [('PER', 1, 2), ('ORG', 2, 3)]
    >>> get_entities(["O", "I-PER", "B-ORG"], mode="strict")
    [('ORG', 2, 3)]
    """
    scheme = _normalize_scheme(scheme, "get_entities")
    _check_choice(mode, "mode", "get_entities", _MODES)
    tags = _as_list(tags, "tags", "a sequence of tag strings for one sentence")
    return _decode(_parse_tags(tags, scheme, "tags"), scheme, mode)


def _sentence_entities(
    y: list[list[Any]], name: str, scheme: str, mode: str
) -> set[tuple[int, str, int, int]]:
    return {
        (sentence, *entity)
        for sentence, tags in enumerate(y)
        for entity in _decode(_parse_tags(tags, scheme, f"{name}[{sentence}]"), scheme, mode)
    }


def _prf(correct: int, predicted: int, support: int) -> dict[str, Any]:
    # A ratio whose denominator is zero is 0.0; F1 = 2 TP / (2 TP + FP + FN).
    return {
        "precision": correct / predicted if predicted else 0.0,
        "recall": correct / support if support else 0.0,
        "f1": 2 * correct / (predicted + support) if correct else 0.0,
        "support": support,
    }


def _entity_scores(
    y_true: Any, y_pred: Any, scheme: str, mode: str, owner: str
) -> dict[str, Any]:
    scheme = _normalize_scheme(scheme, owner)
    _check_choice(mode, "mode", owner, _MODES)
    sentences = {}
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        rows = _as_list(y, name, "a list of tag lists, one per sentence", _SENTENCE_HINT)
        sentences[name] = [
            _as_list(row, f"{name}[{i}]", "the tag list of one sentence", _SENTENCE_HINT)
            for i, row in enumerate(rows)
        ]
    true_rows, pred_rows = sentences["y_true"], sentences["y_pred"]
    if len(true_rows) != len(pred_rows):
        raise InputError(
            f"y_true has {len(true_rows)} sentences but y_pred has {len(pred_rows)}. Pass one "
            f"predicted tag list per reference sentence, in the same order."
        )
    for i, (true_tags, pred_tags) in enumerate(zip(true_rows, pred_rows, strict=True)):
        if len(true_tags) != len(pred_tags):
            raise InputError(
                f"Sentence {i} has {len(true_tags)} tags in y_true but {len(pred_tags)} in "
                f"y_pred. Each predicted sentence needs exactly one tag per token of its "
                f"reference; map sub-word predictions back to words first."
            )

    true = _sentence_entities(true_rows, "y_true", scheme, mode)
    pred = _sentence_entities(pred_rows, "y_pred", scheme, mode)
    correct = true & pred
    n_true = Counter(entity[1] for entity in true)
    n_pred = Counter(entity[1] for entity in pred)
    n_correct = Counter(entity[1] for entity in correct)
    per_type = {
        type_: _prf(n_correct[type_], n_pred[type_], n_true[type_])
        for type_ in sorted(n_true.keys() | n_pred.keys())
    }
    return {**_prf(len(correct), len(pred), len(true)), "per_type": per_type}


def entity_scores(
    y_true: Sequence[Sequence[str]],
    y_pred: Sequence[Sequence[str]],
    *,
    scheme: str = "iob2",
    mode: str = "default",
) -> dict[str, Any]:
    """Entity-level precision, recall and F1, overall (micro) and per entity type.

    An entity counts as found only if a predicted entity has the same sentence, type, start
    and end: a predicted span with a wrong boundary or a wrong type is both a false positive
    and a false negative. Entities are decoded sentence by sentence with
    :func:`get_entities`, so none crosses a sentence boundary.

    Parameters
    ----------
    y_true : sequence of sequences of str
        The reference tags, one list per sentence; sentences may differ in length.
    y_pred : sequence of sequences of str
        The predicted tags, one list per sentence of ``y_true`` and one tag per token.
    scheme : {"iob2", "iob1", "iobes", "bilou", "io"}, default="iob2"
        The tagging scheme of both (any case, or an alias); see :func:`get_entities`.
    mode : {"default", "strict"}, default="default"
        How ill-formed sequences are decoded; see :func:`get_entities`.

    Returns
    -------
    dict
        ``"precision"``, ``"recall"``, ``"f1"`` (floats, micro-averaged over all entities)
        and ``"support"`` (int, the number of reference entities), plus ``"per_type"``: a dict
        mapping each entity type found in ``y_true`` or ``y_pred``, sorted, to a dict with
        the same four keys. Any ratio with a zero denominator is 0.0, as in ``seqeval``
        (which also warns): precision without predicted entities, recall without reference
        entities, and so every score when neither has any.

    Raises
    ------
    InputError
        If ``y_true`` and ``y_pred`` differ in their number of sentences or in the length of
        a sentence (the message names the first such sentence and both lengths), for an
        unknown ``scheme`` or ``mode``, or a tag the scheme does not allow.

    Examples
    --------
    >>> from bertkit.metrics import entity_scores
    >>> y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    >>> y_pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    >>> scores = entity_scores(y_true, y_pred)
    >>> scores["precision"], scores["recall"], scores["support"]
    (0.6666666666666666, 0.6666666666666666, 3)
    >>> scores["per_type"]["LOC"]
    {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'support': 1}
    """
    return _entity_scores(y_true, y_pred, scheme, mode, "entity_scores")


def entity_f1(
    y_true: Sequence[Sequence[str]],
    y_pred: Sequence[Sequence[str]],
    *,
    scheme: str = "iob2",
    mode: str = "default",
    average: str = "micro",
) -> float:
    """Entity-level F1 on exact span matches (type and both boundaries).

    The ``seqeval``/``conlleval`` score of named-entity recognition. See
    :func:`entity_scores` for the matching rule, the per-type scores and the input checks.

    Parameters
    ----------
    y_true : sequence of sequences of str
        The reference tags, one list per sentence; sentences may differ in length.
    y_pred : sequence of sequences of str
        The predicted tags, one list per sentence of ``y_true`` and one tag per token.
    scheme : {"iob2", "iob1", "iobes", "bilou", "io"}, default="iob2"
        The tagging scheme of both (any case, or an alias); see :func:`get_entities`.
    mode : {"default", "strict"}, default="default"
        How ill-formed sequences are decoded; see :func:`get_entities`.
    average : {"micro", "macro", "weighted"}, default="micro"
        ``"micro"``: F1 of the precision and recall over all entities pooled.
        ``"macro"``: unweighted mean of the per-type F1 over every type found in ``y_true``
        or ``y_pred`` (a type only ever predicted adds a 0.0). ``"weighted"``: mean of the
        per-type F1 weighted by the number of reference entities of each type.

    Returns
    -------
    float
        In [0, 1]. 0.0 when there is nothing to average: no entity in ``y_true`` nor
        ``y_pred`` (or, for ``"weighted"``, none in ``y_true``).

    Raises
    ------
    InputError
        As :func:`entity_scores`, and for an unknown ``average``.

    Examples
    --------
    >>> from bertkit.metrics import entity_f1
    >>> y_true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    >>> y_pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    >>> entity_f1(y_true, y_pred)
    0.5
    >>> entity_f1([["B-PER", "O"]], [["B-PER", "O"]])
    1.0
    """
    _check_choice(average, "average", "entity_f1", _AVERAGES)
    scores = _entity_scores(y_true, y_pred, scheme, mode, "entity_f1")
    if average == "micro":
        return scores["f1"]
    per_type = list(scores["per_type"].values())
    if average == "macro":
        return sum(s["f1"] for s in per_type) / len(per_type) if per_type else 0.0
    total = sum(s["support"] for s in per_type)
    return sum(s["f1"] * s["support"] for s in per_type) / total if total else 0.0


# ---------------------------------------------------------------------------------------------
# SQuAD
# ---------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Normalise an answer as the official SQuAD v1.1 and v2.0 evaluation scripts do.

    In this order: lowercase; delete every ASCII punctuation character
    (:data:`string.punctuation`, so ``"well-known"`` becomes ``"wellknown"``); replace the
    whole words ``a``, ``an`` and ``the`` by spaces; collapse whitespace runs to one space
    and strip both ends.

    Parameters
    ----------
    s : str
        An answer text.

    Returns
    -------
    str
        The normalised text; its whitespace-separated words are the tokens that
        :func:`squad_f1` compares.

    Examples
    --------
    >>> from bertkit.metrics import normalize_answer
    >>> normalize_answer("The  Eiffel Tower!")
    'eiffel tower'
    >>> normalize_answer("an apple, a pear, and theatre")
    'apple pear and theatre'
    """
    if not isinstance(s, str):
        raise InputError(f"normalize_answer takes a string; got {_describe(s)}.")
    text = "".join(char for char in s.lower() if char not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _answer_texts(answers: Any, where: str) -> list[str]:
    """The answer strings of one question: a str, a list of str / {"text": str} dicts, or a
    Hugging Face ``{"text": [...], ...}`` dict."""
    if isinstance(answers, str):
        return [answers]
    if isinstance(answers, Mapping):
        if "text" not in answers:
            raise InputError(
                f"{where} is a dict without a 'text' key; the answers of a question are a list "
                f"of strings, a list of {{'text': str}} dicts, or a {{'text': [str, ...]}} dict."
            )
        answers = answers["text"]
        if isinstance(answers, str):
            return [answers]
    items = _as_list(answers, where, "the list of gold answers of one question")
    texts = []
    for i, item in enumerate(items):
        text = item.get("text") if isinstance(item, Mapping) else item
        if not isinstance(text, str):
            raise InputError(
                f"{where}[{i}] is {item!r}; each gold answer must be a string or a "
                f"{{'text': str}} dict."
            )
        texts.append(text)
    return texts


def _gold_answers(answers: Any, where: str) -> list[str]:
    # SQuAD v2.0: golds that normalise to nothing are dropped; with none left, the question is
    # unanswerable and its only gold answer is "".
    return [text for text in _answer_texts(answers, where) if normalize_answer(text)] or [""]


def _check_prediction(prediction: Any, where: str) -> str:
    if not isinstance(prediction, str):
        raise InputError(
            f"{where} must be the predicted answer text ('' for no answer); "
            f"got {_describe(prediction)}."
        )
    return prediction


def _token_f1(prediction_tokens: list[str], gold_tokens: list[str]) -> float:
    if not prediction_tokens or not gold_tokens:
        # SQuAD v2.0: if either is a no-answer, F1 is 1 when both are, else 0.
        return float(prediction_tokens == gold_tokens)
    same = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _exact_match(prediction: str, golds: list[str]) -> float:
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(gold) for gold in golds))


def _f1(prediction: str, golds: list[str]) -> float:
    tokens = normalize_answer(prediction).split()
    return max(_token_f1(tokens, normalize_answer(gold).split()) for gold in golds)


def squad_exact_match(prediction: str, ground_truths: Any) -> float:
    """SQuAD exact match of one predicted answer: 1.0 if it equals any gold answer.

    Both sides are compared after :func:`normalize_answer`. Follows the official v2.0 script,
    which agrees with v1.1 on every answerable question: gold answers that normalise to the
    empty string are dropped, and a question with no gold answer left (for instance
    ``ground_truths=[]``) is unanswerable, where a prediction scores 1.0 exactly when it
    normalises to the empty string (``""``, but also ``"the"`` or ``"."``).

    Parameters
    ----------
    prediction : str
        The predicted answer text, ``""`` for "no answer".
    ground_truths : str, sequence of str or of dict, or dict
        The gold answers of the question: a list of strings, a list of ``{"text": str}``
        dicts (SQuAD JSON), a ``{"text": [str, ...]}`` dict (Hugging Face datasets) or a
        single string.

    Returns
    -------
    float
        1.0 or 0.0.

    Examples
    --------
    >>> from bertkit.metrics import squad_exact_match
    >>> squad_exact_match("the Eiffel tower.", ["Eiffel Tower", "Paris"])
    1.0
    >>> squad_exact_match("Eiffel", ["Eiffel Tower"])
    0.0
    >>> squad_exact_match("", [])
    1.0
    """
    prediction = _check_prediction(prediction, "prediction")
    return _exact_match(prediction, _gold_answers(ground_truths, "ground_truths"))


def squad_f1(prediction: str, ground_truths: Any) -> float:
    """SQuAD token-level F1 of one predicted answer: the best over the gold answers.

    Both sides are normalised (:func:`normalize_answer`) and split on whitespace; the overlap
    counts each word as often as it occurs in both (multiset intersection), precision is
    overlap / predicted words, recall is overlap / gold words. Unanswerable questions and
    dropped gold answers follow the official v2.0 script, as in :func:`squad_exact_match`:
    when the prediction or the gold normalises to nothing, F1 is 1.0 if both do, else 0.0.

    Parameters
    ----------
    prediction : str
        The predicted answer text, ``""`` for "no answer".
    ground_truths : str, sequence of str or of dict, or dict
        The gold answers of the question; see :func:`squad_exact_match`.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> from bertkit.metrics import squad_f1
    >>> round(squad_f1("in the 1990s", ["1990s"]), 4)  # "in 1990s" vs "1990s": P 1/2, R 1
    0.6667
    >>> squad_f1("Paris", [])
    0.0
    """
    prediction = _check_prediction(prediction, "prediction")
    return _f1(prediction, _gold_answers(ground_truths, "ground_truths"))


def squad_scores(predictions: Sequence[str], references: Sequence[Any]) -> dict[str, float]:
    """SQuAD exact match and F1 averaged over questions, in percent, like the official script.

    Parameters
    ----------
    predictions : sequence of str
        One predicted answer text per question, ``""`` for "no answer".
    references : sequence
        The gold answers of each question, in the same order, each in a form
        :func:`squad_exact_match` accepts (an empty list marks an unanswerable question).

    Returns
    -------
    dict
        ``{"exact_match": float, "f1": float}``: the means of :func:`squad_exact_match` and
        :func:`squad_f1` over the questions, times 100.

    Raises
    ------
    InputError
        If there are no questions, if ``predictions`` and ``references`` differ in length,
        or for a prediction or gold answer that is not a string.

    Examples
    --------
    >>> from bertkit.metrics import squad_scores
    >>> squad_scores(["Denver Broncos", "Paris", ""],
    ...              [["Denver Broncos"], [{"text": "London"}], []])
    {'exact_match': 66.66666666666667, 'f1': 66.66666666666667}
    """
    predictions = _as_list(predictions, "predictions", "a list of answer strings")
    references = _as_list(references, "references", "a list with the gold answers of each question")
    if len(predictions) != len(references):
        raise InputError(
            f"predictions has {len(predictions)} answers but references has "
            f"{len(references)} questions. Pass one prediction per question, in the order of "
            f"references."
        )
    if not predictions:
        raise InputError("squad_scores needs at least one question; got none.")
    exact_match = f1 = 0.0
    for i, (prediction, answers) in enumerate(zip(predictions, references, strict=True)):
        prediction = _check_prediction(prediction, f"predictions[{i}]")
        golds = _gold_answers(answers, f"references[{i}]")
        exact_match += _exact_match(prediction, golds)
        f1 += _f1(prediction, golds)
    total = len(predictions)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}
