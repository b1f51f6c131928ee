"""The WordPiece tokenizer: parity with transformers' BertTokenizerFast, options, errors."""

from __future__ import annotations

import copy
import json
import pickle
import threading

import numpy as np
import pytest
import torch

from bertkit import plugins
from bertkit._errors import ConfigError, InputError, ModelNotFoundError, UnknownNameError
from bertkit.hookspecs import hookimpl
from bertkit.tokenizer import BatchEncoding, BertTokenizer, load_tokenizer

FUZZ = [
    "",
    " ",
    "   \t\n ",
    "Hello World",
    "HELLO wOrLd MiXeD CaSe",
    "Café naïve résumé coöperate",
    "e\u0301te\u0301 combining acute",
    "\u0300leading combining mark",
    "Ångström ÅNGSTRÖM Straße ß ẞ",
    "中文字符测试，混合English文本",
    "日本語のテキストです",
    "한국어 텍스트",
    "emoji 😀👍🏽 family 👨\u200d👩\u200d👧 flags 🇫🇷",
    "control\x00chars\x07here\x1b[0m and \x7f",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060",
    "nbsp\u00a0here\u202fnarrow\u3000ideographic space",
    "RTL: שלום עולם مرحبا بالعالم",
    "\u202eright-to-left override\u202c",
    "a" * 150,
    "x" * 101 + " short " + "y" * 100,
    "antidisestablishmentarianism" * 5,
    "hello [MASK] world",
    "[CLS] inside [SEP] text [PAD] and [UNK]",
    "not[MASK]spaced[SEP]",
    "[mask] lower and [Mask] mixed",
    "tabs\tand\nnewlines\r\n\r\n",
    "numbers 3.14159 1,000,000 $5 #hashtag @user",
    "punctuation!!!???...---«»“”‘’",
    "it's can't won't I'm we've they're",
    "ﬁ ligature ﬂ and Ｆｕｌｌｗｉｄｔｈ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
    "Ⅻ roman ½ fraction ² superscript",
    "İstanbul ı ΣΊΣΥΦΟΣ σίσυφος Привет мир",
    "\ufffd replacement char",
]

SMALL_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "Hello",
    "hello",
    "HELLO",
    "World",
    "world",
    "Café",
    "café",
    "Cafe",
    "cafe",
    "naïve",
    "naive",
    "Straße",
    "strasse",
    "e",
    "é",
    "##e",
    "##é",
    "##s",
    "##ing",
    "play",
    "Play",
    ",",
    "!",
    ".",
    "'",
    "t",
    "s",
    "it",
    "can",
    "won",
    "中",
    "文",
    "a",
    "##a",
    "x",
    "y",
    "##x",
    "##y",
    "Ω",
    "ω",
]


def plain(encoding) -> dict:
    """A tokenizer output as plain Python (tensors and arrays become lists)."""
    return {
        key: value.tolist() if hasattr(value, "tolist") else value
        for key, value in encoding.items()
    }


def assert_same(ours, ref):
    __tracebackhide__ = True
    ours, ref = plain(ours), plain(ref)
    assert set(ours) == set(ref)
    for key in ref:
        if ours[key] != ref[key]:
            rows = [i for i, (a, b) in enumerate(zip(ours[key], ref[key], strict=False)) if a != b]
            pytest.fail(
                f"{key!r} differs at rows {rows[:5]}: {ours[key][rows[0] if rows else 0]}"
                f" != {ref[key][rows[0] if rows else 0]}"
            )


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def vocab_pair(default_model_dir, transformers):
    """(ours, reference) built from the default model's vocab.txt alone."""
    vocab = str(default_model_dir / "vocab.txt")
    ref = transformers.BertTokenizerFast(vocab_file=vocab, model_max_length=512)
    return BertTokenizer.from_vocab(vocab), ref


@pytest.fixture(scope="module")
def folder_pair(default_model_dir, transformers):
    """(ours, reference) loaded from the default model folder (tokenizer.json)."""
    ref = transformers.BertTokenizerFast.from_pretrained(str(default_model_dir))
    return BertTokenizer.from_folder(default_model_dir), ref


@pytest.fixture(params=["vocab", "folder"])
def pair(request):
    return request.getfixturevalue(f"{request.param}_pair")


@pytest.fixture(scope="module")
def sts_pairs(data_dir):
    import pandas as pd

    names = ["genre", "file", "year", "id", "score", "sentence1", "sentence2", "x1", "x2"]
    frame = pd.read_csv(
        data_dir / "stsbenchmark" / "sts-dev.csv", sep="\t", header=None, quoting=3, names=names
    )
    frame = frame.dropna(subset=["sentence1", "sentence2"])
    return frame["sentence1"].tolist(), frame["sentence2"].tolist()


@pytest.fixture(scope="module")
def small_vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("small_vocab") / "vocab.txt"
    path.write_text("\n".join(SMALL_VOCAB) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------- parity


def test_sst2_parity(pair, sst2_sentences):
    ours, ref = pair
    texts = sst2_sentences[:2000]
    options = dict(return_offsets_mapping=True, return_special_tokens_mask=True, return_length=True)
    ours_enc, ref_enc = ours(texts, **options), ref(texts, **options)
    assert_same(ours_enc, ref_enc)
    for index in range(0, 2000, 97):
        assert ours_enc.word_ids(index) == ref_enc.word_ids(index)
        assert ours_enc.tokens(index) == ref_enc.tokens(index)
    # Padded and truncated as a model batch, as tensors.
    options = dict(padding=True, truncation=True, max_length=48, return_tensors="pt")
    assert_same(ours(texts[:256], **options), ref(texts[:256], **options))


def test_sts_pair_parity(pair, sts_pairs):
    ours, ref = pair
    first, second = sts_pairs
    assert len(first) > 1000
    options = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    ours_enc, ref_enc = ours(first, second, **options), ref(first, second, **options)
    assert_same(ours_enc, ref_enc)
    assert ours_enc.sequence_ids(0) == ref_enc.sequence_ids(0)
    assert set(ours_enc["token_type_ids"][0]) == {0, 1}
    options = dict(padding="max_length", truncation="longest_first", max_length=24)
    assert_same(ours(first, second, **options), ref(first, second, **options))


def test_unicode_fuzz_parity(pair):
    ours, ref = pair
    options = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    assert_same(ours(FUZZ, **options), ref(FUZZ, **options))
    for text in FUZZ:
        assert_same(ours(text, **options), ref(text, **options))
        assert ours.tokenize(text) == ref.tokenize(text)
    reversed_fuzz = FUZZ[::-1]
    assert_same(ours(FUZZ, reversed_fuzz, **options), ref(FUZZ, reversed_fuzz, **options))


def test_special_tokens_are_never_split(pair):
    ours, _ = pair
    assert ours.tokenize("hello [MASK] world") == ["hello", "[MASK]", "world"]
    assert ours.tokenize("x[SEP]y") == ["x", "[SEP]", "y"]
    # Only the exact spelling is special; lowercase text is ordinary text.
    assert "[MASK]" not in ours.tokenize("[mask]")


def test_default_model_settings_are_not_kept(folder_pair, default_model_dir):
    # The default model's tokenizer.json stores fixed padding and truncation to 128.
    stored = json.loads((default_model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert stored["padding"] is not None and stored["truncation"] is not None
    ours, _ = folder_pair
    assert ours("hello world")["input_ids"] == [101, 7592, 2088, 102]
    assert len(ours("word " * 300)["input_ids"]) == 302
    assert ours.backend.padding is None and ours.backend.truncation is None


@pytest.mark.parametrize(
    ("do_lower_case", "strip_accents"),
    [(False, None), (False, True), (False, False), (True, False), (True, True), (True, None)],
)
def test_casing_and_accent_variants(
    do_lower_case, strip_accents, small_vocab_file, transformers, tmp_path
):
    texts = FUZZ + [
        "Hello World",
        "HELLO world",
        "Café cafe CAFÉ",
        "naïve Straße",
        "Playing won't",
        "Ωω",
        "éé ée",
    ]
    ours = BertTokenizer.from_vocab(
        small_vocab_file, do_lower_case=do_lower_case, strip_accents=strip_accents
    )
    ref = transformers.BertTokenizerFast(
        vocab_file=str(small_vocab_file), do_lower_case=do_lower_case, strip_accents=strip_accents
    )
    options = dict(return_offsets_mapping=True)
    assert_same(ours(texts, **options), ref(texts, **options))
    assert ours.do_lower_case is do_lower_case and ours.strip_accents is strip_accents

    # The same settings read from a vocab.txt-only folder.
    folder = tmp_path / "vocab_only"
    folder.mkdir()
    (folder / "vocab.txt").write_bytes(small_vocab_file.read_bytes())
    config = {
        "do_lower_case": do_lower_case,
        "strip_accents": strip_accents,
        "tokenizer_class": "BertTokenizer",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    ours_folder = BertTokenizer.from_folder(folder)
    ref_folder = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert_same(ours_folder(texts, **options), ref_folder(texts, **options))


def test_casing_actually_matters(small_vocab_file):
    cased = BertTokenizer.from_vocab(small_vocab_file, do_lower_case=False)
    uncased = BertTokenizer.from_vocab(small_vocab_file)
    assert cased.tokenize("Hello Café") == ["Hello", "Café"]
    assert uncased.tokenize("Hello Café") == ["hello", "cafe"]
    kept = BertTokenizer.from_vocab(small_vocab_file, strip_accents=False)
    assert kept.tokenize("Hello Café") == ["hello", "café"]


def test_tokenizer_config_overrides_tokenizer_json(small_vocab_file, transformers, tmp_path):
    # An uncased tokenizer.json with a tokenizer_config.json saying "cased":
    # BertTokenizerFast rebuilds the normalizer, and so must we.
    BertTokenizer.from_vocab(small_vocab_file).save(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.update(do_lower_case=False, strip_accents=False)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    stored = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    assert stored["normalizer"]["lowercase"] is True

    ours = BertTokenizer.from_folder(tmp_path)
    ref = transformers.BertTokenizerFast.from_pretrained(str(tmp_path))
    texts = ["Hello Café", "HELLO café", *FUZZ]
    assert_same(ours(texts), ref(texts))
    assert ours.tokenize("Hello Café") == ["Hello", "Café"]
    assert ours.do_lower_case is False


def test_special_tokens_map_overrides_config(small_vocab_file, transformers, tmp_path):
    vocab = [*SMALL_VOCAB, "<mask>"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"mask_token": "[MASK]", "tokenizer_class": "BertTokenizer"}), encoding="utf-8"
    )
    (tmp_path / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "mask_token": {
                    "content": "<mask>",
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                }
            }
        ),
        encoding="utf-8",
    )
    ours = BertTokenizer.from_folder(tmp_path)
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert ours.mask_token == ref.mask_token == "<mask>"
    assert ours.mask_token_id == ref.mask_token_id == len(SMALL_VOCAB)
    assert_same(ours(["hello <mask> world"]), ref(["hello <mask> world"]))


# ---------------------------------------------------------------------- options


LONG_FIRST = "the quick brown fox jumps over the lazy dog " * 4
SHORT = "a short one"
PAIRS = ([LONG_FIRST, SHORT, LONG_FIRST, "tiny"], [SHORT, LONG_FIRST, LONG_FIRST, "pair"])


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second", True])
@pytest.mark.parametrize("max_length", [8, 12, 30])
def test_truncation_strategies_on_pairs(folder_pair, strategy, max_length):
    ours, ref = folder_pair
    for first, second in zip(*PAIRS, strict=True):
        options = dict(truncation=strategy, max_length=max_length)
        try:
            expected = ref(first, second, **options)
        except Exception:  # the Rust tokenizer refuses (e.g. only_second on a short second)
            with pytest.raises(InputError, match="truncation"):
                ours(first, second, **options)
            continue
        got = ours(first, second, **options)
        assert_same(got, expected)
        assert len(got["input_ids"]) <= max_length


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
@pytest.mark.parametrize(("max_length", "stride"), [(10, 0), (10, 2), (16, 4), (40, 3)])
def test_overflowing_windows(folder_pair, strategy, max_length, stride, sst2_sentences):
    ours, ref = folder_pair
    options = dict(
        truncation=strategy,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    if strategy == "longest_first":
        singles = sst2_sentences[:50]
        got, expected = ours(singles, **options), ref(singles, **options)
        assert_same(got, expected)
        assert (len(got["input_ids"]) > 50) == (max_length <= 16)
        single_got, single_ref = (
            ours(sst2_sentences[3], **options),
            ref(sst2_sentences[3], **options),
        )
        assert_same(single_got, single_ref)
    first = [LONG_FIRST, LONG_FIRST + LONG_FIRST]
    second = [LONG_FIRST + " extra words here", LONG_FIRST]
    try:
        expected = ref(first, second, **options)
    except BaseException:  # noqa: B036 - the Rust side panics on a too-large stride
        with pytest.raises(InputError):
            ours(first, second, **options)
        return
    got = ours(first, second, **options)
    assert_same(got, expected)
    assert got["overflow_to_sample_mapping"] == expected["overflow_to_sample_mapping"]
    assert len(set(got["overflow_to_sample_mapping"])) == 2


@pytest.mark.parametrize(
    "options",
    [
        dict(padding=True),
        dict(padding="longest", pad_to_multiple_of=8),
        dict(padding="max_length", max_length=64),
        dict(padding="max_length", max_length=64, truncation=True),
        dict(padding="max_length", truncation=True, max_length=16, pad_to_multiple_of=8),
        dict(padding=True, truncation="only_second", max_length=40),
        dict(padding="max_length"),  # pads to model_max_length
        dict(max_length=10),  # truncation left unset: longest_first, as in transformers
        dict(padding=True, max_length=10),  # max_length ignored without truncation
        dict(padding="do_not_pad", truncation="do_not_truncate"),
        dict(padding=True, return_tensors="np", return_special_tokens_mask=True),
        dict(padding=True, return_tensors="pt", return_length=True),
        dict(return_token_type_ids=False, return_attention_mask=False),
        dict(add_special_tokens=False, padding=True),
    ],
)
@pytest.mark.filterwarnings("ignore:.*max_length.{0,2} is ignored")
def test_padding_and_options(folder_pair, sts_pairs, options):
    ours, ref = folder_pair
    first, second = sts_pairs[0][:40], sts_pairs[1][:40]
    assert_same(ours(first, **options), ref(first, **options))
    assert_same(ours(first, second, **options), ref(first, second, **options))
    assert_same(ours(first[0], **options), ref(first[0], **options))


def test_max_length_ignored_warning(small):
    with pytest.warns(UserWarning, match="'max_length' is ignored when padding=True"):
        enc = small(["hello", "hello world"], padding=True, max_length=3)
    assert enc["input_ids"][1] == [2, 6, 9, 3]


def test_pad_to_multiple_of_lengths(folder_pair):
    ours, _ = folder_pair
    enc = ours(
        ["one", "one two three four five six seven eight nine"], padding=True, pad_to_multiple_of=8
    )
    assert {len(row) for row in enc["input_ids"]} == {16}
    assert enc["input_ids"][0][3:] == [ours.pad_token_id] * 13
    assert enc["attention_mask"][0] == [1, 1, 1] + [0] * 13


def test_is_split_into_words(folder_pair, sst2_sentences):
    ours, ref = folder_pair
    words = [s.split() for s in sst2_sentences[:200]]
    options = dict(is_split_into_words=True, return_offsets_mapping=True)
    got, expected = ours(words, **options), ref(words, **options)
    assert_same(got, expected)
    for index in range(0, 200, 13):
        assert got.word_ids(index) == expected.word_ids(index)
    assert_same(
        ours(words[:50], words[50:100], **options), ref(words[:50], words[50:100], **options)
    )
    single = ["Hugging", "faces", "are", "unbelievably", "happy", "!"]
    got = ours(single, is_split_into_words=True)
    assert_same(got, ref(single, is_split_into_words=True))
    assert got.tokens()[4:9] == ["un", "##bel", "##ie", "##va", "##bly"]
    assert got.word_ids() == [None, 0, 1, 2, 3, 3, 3, 3, 3, 4, 5, None]
    assert ours(tuple(single), is_split_into_words=True)["input_ids"] == got["input_ids"]


def test_single_text_gives_flat_lists_and_batches_give_rows(folder_pair):
    ours, ref = folder_pair
    single = ours("hello world", return_length=True)
    assert single["input_ids"] == [101, 7592, 2088, 102]
    assert single["length"] == [4]  # transformers keeps `length` a list
    assert_same(single, ref("hello world", return_length=True))
    assert ours(["hello world"])["input_ids"] == [[101, 7592, 2088, 102]]
    tensors = ours("hello world", return_tensors="pt")
    assert tensors["input_ids"].shape == (1, 4) and tensors["input_ids"].dtype == torch.long
    arrays = ours(["hello", "hello world"], padding=True, return_tensors="np")
    assert arrays["input_ids"].dtype == np.int64 and arrays["input_ids"].shape == (2, 4)
    # An empty single pair counts as no pair (transformers' behaviour), a batch one does not.
    assert_same(ours("hello", ""), ref("hello", ""))
    assert_same(ours(["hello"], [""]), ref(["hello"], [""]))
    assert ours("hello", "")["input_ids"] == [101, 7592, 102]
    # Array-likes are batches.
    import pandas as pd

    series = pd.Series(["hello", "hello world"])
    assert ours(series)["input_ids"] == ours(["hello", "hello world"])["input_ids"]


def test_batch_encoding_access(folder_pair):
    ours, _ = folder_pair
    enc = ours(["hello world", "hi"], padding=True, return_tensors="pt")
    assert isinstance(enc, BatchEncoding) and isinstance(enc, dict)
    assert enc.input_ids is enc["input_ids"]
    assert len(enc.encodings) == 2
    assert enc.tokens(1) == ["[CLS]", "hi", "[SEP]", "[PAD]"]
    assert enc.word_ids(1) == [None, 0, None, None]
    assert enc.sequence_ids(0) == [None, 0, 0, None]
    assert enc.to("cpu") is enc
    with pytest.raises(AttributeError, match="input_idz"):
        _ = enc.input_idz
    with pytest.raises(InputError, match="batch_index"):
        enc.word_ids(5)
    assert plain(pickle.loads(pickle.dumps(enc))) == plain(enc)


def test_vocabulary_accessors_match(pair):
    ours, ref = pair
    assert ours.vocab_size == ref.vocab_size == 30522
    assert len(ours) == len(ref)
    assert ours.get_vocab() == ref.get_vocab()
    assert ours.all_special_ids == ref.all_special_ids == [100, 102, 0, 101, 103]
    assert ours.all_special_tokens == ref.all_special_tokens
    for name in ["cls", "sep", "pad", "mask", "unk"]:
        assert getattr(ours, f"{name}_token") == getattr(ref, f"{name}_token")
        assert getattr(ours, f"{name}_token_id") == getattr(ref, f"{name}_token_id")
    assert ours.num_special_tokens_to_add() == ref.num_special_tokens_to_add() == 2
    assert ours.num_special_tokens_to_add(pair=True) == ref.num_special_tokens_to_add(pair=True)
    tokens = ["hello", "##ing", "[MASK]", "not-a-token"]
    assert ours.convert_tokens_to_ids(tokens) == ref.convert_tokens_to_ids(tokens)
    assert ours.convert_tokens_to_ids("hello") == ref.convert_tokens_to_ids("hello") == 7592
    ids = [101, 7592, 2088, 102, 0]
    assert ours.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
    assert ours.convert_ids_to_tokens(ids, skip_special_tokens=True) == ["hello", "world"]
    assert ours.convert_ids_to_tokens(7592) == "hello"
    assert ours.model_max_length == ref.model_max_length == 512
    assert ours.encode("Hello there", "General Kenobi") == ref.encode(
        "Hello there", "General Kenobi"
    )
    assert repr(ours) == "BertTokenizer(vocab_size=30522, do_lower_case=True, model_max_length=512)"


# ---------------------------------------------------------------------- decode, save, pickle


def test_decode_matches(pair, sst2_sentences):
    ours, ref = pair
    texts = [*sst2_sentences[:300], *FUZZ, "It 's a dog , is n't it ?", "I 'm sure they 're here !"]
    batch = ref(texts, padding=True)["input_ids"]
    for skip in (False, True):
        assert ours.batch_decode(batch, skip_special_tokens=skip) == ref.batch_decode(
            batch, skip_special_tokens=skip
        )
        for clean in (False, True):
            assert ours.decode(batch[-1], skip, clean) == ref.decode(
                batch[-1], skip_special_tokens=skip, clean_up_tokenization_spaces=clean
            )
    assert ours.decode(torch.tensor(batch[0])) == ref.decode(batch[0])
    assert ours.batch_decode(torch.tensor(batch[:3])) == ref.batch_decode(batch[:3])
    assert ours.decode(7592) == "hello"


def test_clean_up_default_follows_transformers(vocab_pair, folder_pair):
    # BertTokenizerFast(vocab_file=...) cleans up by default; from_pretrained on a
    # tokenizer.json without the setting does not.
    ids = vocab_pair[0].encode("it 's fine .", add_special_tokens=False)
    assert vocab_pair[0].decode(ids) == vocab_pair[1].decode(ids) == "it's fine."
    assert folder_pair[0].clean_up_tokenization_spaces is False
    assert folder_pair[0].decode(ids) == folder_pair[1].decode(ids)


@pytest.mark.parametrize("which", ["default", "small_cased"])
def test_save_and_reload(which, folder_pair, small_vocab_file, transformers, tmp_path):
    if which == "default":
        tok = folder_pair[0]
    else:
        tok = BertTokenizer.from_vocab(
            small_vocab_file, do_lower_case=False, strip_accents=True, model_max_length=64
        )
    texts = [*FUZZ, "Hello World Café", "HELLO [MASK] Straße"]
    files = tok.save(tmp_path)
    assert sorted(p.name for p in files) == [
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "BertTokenizer"
    assert config["do_lower_case"] is tok.do_lower_case
    assert config["model_max_length"] == tok.model_max_length

    expected = plain(tok(texts, return_offsets_mapping=True))
    reloaded = BertTokenizer.from_folder(tmp_path)
    assert plain(reloaded(texts, return_offsets_mapping=True)) == expected
    assert reloaded.model_max_length == tok.model_max_length
    assert reloaded.decode(expected["input_ids"][4]) == tok.decode(expected["input_ids"][4])
    auto = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(auto).__name__ == "BertTokenizerFast"
    assert plain(auto(texts, return_offsets_mapping=True)) == expected
    assert auto.model_max_length == tok.model_max_length
    assert auto.decode(expected["input_ids"][4]) == tok.decode(expected["input_ids"][4])
    fast = transformers.BertTokenizerFast.from_pretrained(str(tmp_path))
    assert plain(fast(texts)) == plain(tok(texts))
    # vocab.txt on its own rebuilds the same ids.
    from_txt = BertTokenizer.from_vocab(
        tmp_path / "vocab.txt", do_lower_case=tok.do_lower_case, strip_accents=tok.strip_accents
    )
    assert from_txt(texts)["input_ids"] == expected["input_ids"]
    # save_pretrained is the same method.
    assert tok.save_pretrained(tmp_path / "again")[0].name == "vocab.txt"


def test_pickle_round_trip(folder_pair, sst2_sentences):
    tok = folder_pair[0]
    texts = sst2_sentences[:64]
    options = dict(padding=True, truncation=True, max_length=16, return_offsets_mapping=True)
    before = plain(tok(texts, **options))  # fills the cache of configured copies
    tok = copy.copy(tok)
    tok.user_note = "kept"  # attributes set by callers survive pickling
    for clone in (pickle.loads(pickle.dumps(tok)), copy.deepcopy(tok)):
        assert isinstance(clone, BertTokenizer)
        assert plain(clone(texts, **options)) == before
        assert plain(clone(texts)) == plain(tok(texts))
        assert clone.model_max_length == tok.model_max_length
        assert clone.clean_up_tokenization_spaces == tok.clean_up_tokenization_spaces
        assert clone.user_note == "kept"


def test_settings_do_not_leak_between_threads(folder_pair, sst2_sentences):
    tok = folder_pair[0]
    texts = sst2_sentences[:100]
    settings = [
        dict(),
        dict(padding=True),
        dict(truncation=True, max_length=8),
        dict(padding="max_length", max_length=40, truncation=True),
    ]
    expected = [plain(tok(texts, **s)) for s in settings]
    failures = []

    def work(index):
        for _ in range(5):
            if plain(tok(texts, **settings[index % 4])) != expected[index % 4]:
                failures.append(index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert plain(tok(texts)) == expected[0]


# ---------------------------------------------------------------------- loading and plugins


def test_load_tokenizer_default(folder_pair):
    tok = load_tokenizer("default")
    assert isinstance(tok, BertTokenizer)
    assert plain(tok(FUZZ)) == plain(folder_pair[0](FUZZ))
    assert_same(tok(FUZZ), folder_pair[1](FUZZ))


def test_load_tokenizer_folder_and_unknown_kind(default_model_dir, fresh_plugins):
    assert "wordpiece" in plugins.names("tokenizer")
    assert isinstance(load_tokenizer(default_model_dir), BertTokenizer)
    with pytest.raises(UnknownNameError, match=r"Unknown tokenizer 'bpe'.*'wordpiece'"):
        load_tokenizer(default_model_dir, kind="bpe")


def test_load_tokenizer_uses_plugins(default_model_dir, fresh_plugins):
    class Plugin:
        @hookimpl
        def bertkit_register_tokenizers(self, register):
            register("shouting", lambda folder: ("loaded", folder))

    plugins.register_plugin(Plugin(), name="shouting-tokenizer")
    assert load_tokenizer(default_model_dir, kind="shouting") == ("loaded", default_model_dir)


# ---------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def small(small_vocab_file):
    return BertTokenizer.from_vocab(small_vocab_file)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            dict(padding="maximum"),
            r"'padding' parameter .* must be one of \{True, 'longest', "
            r"'max_length', False, 'do_not_pad'\}\. Got 'maximum'",
        ),
        (dict(padding=1), r"'padding' parameter .* Got 1"),
        (
            dict(truncation="yes"),
            r"'truncation' parameter .* must be one of \{None, True, "
            r"'longest_first', 'only_first', 'only_second', False, "
            r"'do_not_truncate'\}\. Got 'yes'",
        ),
        (
            dict(return_tensors="tf"),
            r"'return_tensors' parameter .* \{None, 'pt', 'np'\}\. Got 'tf'",
        ),
        (dict(max_length=0), r"'max_length' parameter .* positive int or None\. Got 0"),
        (dict(max_length=5.0), r"'max_length' parameter .* Got 5\.0"),
        (dict(stride=-1), r"'stride' parameter .* non-negative int\. Got -1"),
        (dict(pad_to_multiple_of=0), r"'pad_to_multiple_of' parameter .* Got 0"),
        (
            dict(padding=True, truncation=True, max_length=10, pad_to_multiple_of=8),
            r"truncation length \(10\) is not a multiple of pad_to_multiple_of \(8\)",
        ),
    ],
)
def test_bad_arguments(small, options, message):
    with pytest.raises(InputError, match=message) as info:
        small(["hello", "hello world"], **options)
    assert isinstance(info.value, ValueError)


def test_ragged_tensors_need_padding(small):
    for kind in ("pt", "np"):
        with pytest.raises(
            InputError,
            match=rf"return_tensors='{kind}' needs rows of equal "
            r"length.*3 to 4 tokens.*padding=True",
        ):
            small(["hello", "hello world"], return_tensors=kind)
    assert small(["hello", "hello world"], padding=True, return_tensors="pt")[
        "input_ids"
    ].shape == (2, 4)


def test_bad_text_inputs(small):
    with pytest.raises(InputError, match=r"'text' must be a str .* Got NoneType"):
        small(None)
    with pytest.raises(InputError, match=r"'text\[1\]' must be a str .* Got float: nan"):
        small(["hello", float("nan")])
    with pytest.raises(InputError, match=r"Got 2 texts and 1 pairs"):
        small(["a", "b"], ["c"])
    with pytest.raises(InputError, match=r"'text_pair' must be a list of the same length"):
        small(["a", "b"], "c")
    with pytest.raises(
        InputError, match=r"is_split_into_words=True, 'text\[0\]' must be a list of str"
    ):
        small([["a", 3]], is_split_into_words=True)
    with pytest.raises(InputError, match=r"encode takes one text"):
        small.encode(["a", "b"])
    with pytest.raises(InputError, match=r"negative ids \(-100\)"):
        small.decode([2, -100])


def test_stride_too_large_is_an_input_error(small):
    with pytest.raises(InputError, match="stride"):
        small(
            "a a a a a a a a",
            truncation=True,
            max_length=5,
            stride=3,
            return_overflowing_tokens=True,
        )


def test_missing_files(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"needs tokenizer\.json or vocab\.txt") as info:
        BertTokenizer.from_folder(tmp_path)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        BertTokenizer.from_folder(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match=r"vocabulary file .*nope.txt' does not exist"):
        BertTokenizer.from_vocab(tmp_path / "nope.txt")
    with pytest.raises(ModelNotFoundError):
        load_tokenizer(str(tmp_path / "nope"))


def test_bad_vocab_and_config(tmp_path):
    with pytest.raises(ConfigError, match=r"'unk_token' .*'\[UNK\]', is not in the vocabulary"):
        BertTokenizer.from_vocab(["a", "b"])
    with pytest.raises(ConfigError, match=r"'strip_accents' parameter .* Got 'yes'"):
        BertTokenizer.from_vocab(["[UNK]"], strip_accents="yes")
    with pytest.raises(ConfigError, match=r"'backend' parameter .* Got dict"):
        BertTokenizer({})
    with pytest.raises(ConfigError, match=r"'model_max_length' parameter .* Got 0"):
        BertTokenizer.from_vocab(["[UNK]"], model_max_length=0)
    (tmp_path / "vocab.txt").write_text("[UNK]\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tokenizer_config.json' as JSON"):
        BertTokenizer.from_folder(tmp_path)


def test_missing_special_tokens_are_added(transformers, tmp_path):
    # A vocabulary without [PAD]/[MASK]: they get new ids, as in transformers.
    vocab = ["[UNK]", "[CLS]", "[SEP]", "hello"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    ours = BertTokenizer.from_vocab(tmp_path / "vocab.txt")
    ref = transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    assert ours.pad_token_id == ref.pad_token_id == 4
    assert ours.mask_token_id == ref.mask_token_id == 5
    assert_same(
        ours(["hello [MASK]", "hello"], padding=True), ref(["hello [MASK]", "hello"], padding=True)
    )
