"""Text normalisation, the vocabulary and its blank index, CTC frame needs."""

from __future__ import annotations

import json

import pytest

from asr.config import TextConfig
from asr.errors import AsrError
from asr.text import BLANK_INDEX, PAD_INDEX, Vocabulary, ctc_frames_needed, normalise_text, out_of_alphabet

ALPHABET = TextConfig().alphabet
VOCAB = Vocabulary.from_texts(["hello world", "don't stop"], ALPHABET)


def test_blank_is_class_zero_and_never_a_character():
    assert BLANK_INDEX == 0
    assert PAD_INDEX < 0
    ids = VOCAB.encode("hello world don't stop")
    assert min(ids) >= 1
    assert max(ids) == VOCAB.size - 1
    assert VOCAB.size == len(VOCAB.chars) + 1
    assert VOCAB.symbol(BLANK_INDEX) == "_"
    assert [VOCAB.symbol(i) for i in VOCAB.encode("hello")] == list("hello")


@pytest.mark.parametrize("text", ["hello world", "don't stop", "l", "ooo  ll", ""])
def test_encode_decode_round_trip(text):
    assert VOCAB.decode(VOCAB.encode(text)) == text


def test_decode_drops_blanks_and_padding():
    h, e, l, o = VOCAB.encode("helo")  # noqa: E741 - the letter l
    assert VOCAB.decode([BLANK_INDEX, h, BLANK_INDEX, e, l, BLANK_INDEX, l, o, PAD_INDEX, PAD_INDEX]) == "hello"
    assert VOCAB.decode([BLANK_INDEX, PAD_INDEX]) == ""


def test_from_texts_keeps_alphabet_order_and_only_seen_characters():
    vocab = Vocabulary.from_texts(["cab", "ba c"], ALPHABET)
    assert vocab.chars == ("a", "b", "c", " ")
    assert vocab.encode("abc ") == [1, 2, 3, 4]


def test_vocabulary_save_load(tmp_path):
    path = tmp_path / "vocab.json"
    VOCAB.save(path)
    assert json.loads(path.read_text())["blank_index"] == BLANK_INDEX
    loaded = Vocabulary.load(path)
    assert loaded == VOCAB
    assert loaded.encode("hello world") == VOCAB.encode("hello world")


def test_vocabulary_with_another_blank_index_is_refused(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps({"blank_index": 28, "chars": list("abc")}))
    with pytest.raises(AsrError, match="blank_index"):
        Vocabulary.load(path)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("DON\u2019T  stop\t now", "don't stop now"),  # curly apostrophe -> ', tabs and runs of spaces -> one
        ("\u2018it\u2019s\u2019", "'it's'"),  # apostrophes are in the alphabet, so they stay
        ("\u201cquoted\u201d text.", "quoted text"),  # curly double quotes are punctuation
        ("  padded  \n", "padded"),
        ("\ufb01ne", "fine"),  # NFKC: the ligature becomes two letters
        ("rock-n-roll", "rocknroll"),
    ],
)
def test_normalise_strip(raw, expected):
    assert normalise_text(raw, TextConfig()) == expected


def test_normalise_punctuation_space():
    cfg = TextConfig(punctuation="space")
    assert normalise_text("rock-n-roll,yes", cfg) == "rock n roll yes"
    assert normalise_text("end .", cfg) == "end"


def test_normalise_keeps_case_when_asked():
    cfg = TextConfig(alphabet="abcABC ", lowercase=False)
    assert normalise_text("Abc", cfg) == "Abc"
    assert normalise_text("Abc", TextConfig(alphabet="abcABC ")) == "abc"


def test_numbers_to_words():
    cfg = TextConfig(numbers_to_words=True)
    assert normalise_text("I have 42 cats", cfg) == "i have forty two cats"
    assert normalise_text("2 or 3", cfg) == "two or three"
    assert normalise_text("1,000 men", cfg) == "one thousand men"
    assert normalise_text("I have 42 cats", TextConfig()) == "i have 42 cats"  # off: digits kept, reported later


def test_numbers_to_words_leaves_other_hyphens_to_the_punctuation_policy():
    """Only the spelled-out numbers lose their hyphens; text hyphens follow `punctuation` as without numbers."""
    assert normalise_text("rock-n-roll 21", TextConfig(numbers_to_words=True)) == "rocknroll twenty one"


def test_out_of_alphabet_reports_sorted_distinct_characters():
    text = normalise_text("Caf\u00e9 n\u00b0 42 \u00e9t\u00e9", TextConfig())
    assert out_of_alphabet(text, ALPHABET) == "24\u00b0\u00e9"
    assert out_of_alphabet("hello world", ALPHABET) == ""


@pytest.mark.parametrize(
    ("text", "frames"),
    [("hello", 6), ("abc", 3), ("aaa", 5), ("a", 1), ("", 0), ("book keeper", 13), ("a a", 3)],
)
def test_ctc_frames_needed(text, frames):
    vocab = Vocabulary.from_texts([text or "a"], ALPHABET)
    assert ctc_frames_needed(vocab.encode(text)) == frames
    assert ctc_frames_needed(text) == frames  # works on any sequence, characters too
