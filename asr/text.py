"""Transcript normalisation and the character vocabulary (where the blank index is defined).

Index layout of the model's output classes (the one place it is decided):

    0            the CTC blank  (BLANK_INDEX)
    1 .. V-1     the characters of the alphabet, in vocabulary order

Labels (`y_true`) are int32 `[B, L_max]` rows of character indices (>= 1), right-padded with
PAD_INDEX (-1). Padding is never read: the loss only looks at the first `label_lens[b]` entries.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.config import TextConfig
from asr.errors import AsrError
from asr.files import read_json, write_json

BLANK_INDEX = 0  # CTC blank: class 0 of the softmax, never a character
PAD_INDEX = -1  # label padding: not a class at all, so it can never be mistaken for one
BLANK_SYMBOL = "_"  # how the blank is printed in alignments and `asr inspect`

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _numbers_to_words(text: str) -> str:
    """Spell out digits in English with num2words (`pip install num2words`)."""
    from num2words import num2words

    def spell(match: re.Match) -> str:
        digits = match.group().replace(",", "")
        words = num2words(float(digits) if "." in digits else int(digits))
        return f" {words.replace('-', ' ')} "  # "forty-two" -> "forty two"; other hyphens follow the policy

    return _NUMBER.sub(spell, text)


def normalise_text(text: str, cfg: TextConfig) -> str:
    """Normalise a transcript: NFKC, quotes, case, numbers, punctuation policy, whitespace.

    Characters that are neither in the alphabet nor punctuation are kept, so that the caller can
    report them (`out_of_alphabet`) instead of silently changing the transcript.
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    if cfg.lowercase:
        text = text.lower()
    if cfg.numbers_to_words:
        text = _numbers_to_words(text)
    replacement = " " if cfg.punctuation == "space" else ""
    chars = []
    for ch in text:
        if ch in cfg.alphabet:
            chars.append(ch)
        elif unicodedata.category(ch).startswith("P"):
            chars.append(replacement)
        else:
            chars.append(" " if ch.isspace() else ch)
    return _SPACES.sub(" ", "".join(chars)).strip()


def out_of_alphabet(text: str, alphabet: str) -> str:
    """The sorted distinct characters of `text` that are not in `alphabet` ('' when none)."""
    return "".join(sorted(set(text) - set(alphabet)))


@dataclass(frozen=True)
class Vocabulary:
    """Characters <-> class indices; index 0 is the blank, characters start at 1."""

    chars: tuple[str, ...]  # the characters, in class order 1..V-1

    @property
    def size(self) -> int:
        """Number of softmax classes: characters + blank."""
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        """Text -> class indices (each >= 1). Unknown characters are an internal error."""
        index = {c: i + 1 for i, c in enumerate(self.chars)}
        return [index[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Class indices -> text, ignoring blanks and padding."""
        return "".join(self.chars[i - 1] for i in ids if i > BLANK_INDEX)

    def symbol(self, index: int) -> str:
        """Printable symbol of one class index (blank shown as BLANK_SYMBOL)."""
        return BLANK_SYMBOL if index == BLANK_INDEX else self.chars[index - 1]

    @classmethod
    def from_texts(cls, texts: Iterable[str], alphabet: str) -> Vocabulary:
        """Vocabulary of the alphabet characters that occur in `texts`, in alphabet order."""
        seen: set[str] = set().union(*map(set, texts))
        return cls(tuple(c for c in alphabet if c in seen))

    def grown(self, texts: Iterable[str]) -> Vocabulary:
        """This vocabulary followed by the characters of `texts` it lacks (sorted): known indices never move."""
        new = sorted(set().union(*map(set, texts)) - set(self.chars))
        return Vocabulary(self.chars + tuple(new))

    def save(self, path: str | Path) -> None:
        """Write `{"blank_index": 0, "chars": [...]}` as JSON."""
        write_json(path, {"blank_index": BLANK_INDEX, "chars": list(self.chars)})

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a vocabulary written by `save`; AsrError naming the file when it is not one."""
        data = read_json(path)
        chars = data.get("chars") if isinstance(data, dict) else None
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise AsrError(f'{path}: not a vocabulary: expected {{"blank_index": {BLANK_INDEX}, "chars": [one '
                           f'character per class, ...]}}, got {str(data)[:60]}')
        if data.get("blank_index") != BLANK_INDEX:
            raise AsrError(f"{path}: blank_index {data.get('blank_index')} != {BLANK_INDEX} expected by this version")
        return cls(tuple(chars))


def ctc_frames_needed(ids: Sequence[object]) -> int:
    """Fewest output frames CTC needs to emit `ids` (indices or characters): one per label plus a blank
    between adjacent repeats.

    `"hello"` needs 6 frames: h e l _ l o.
    """
    repeats = sum(1 for a, b in zip(ids, ids[1:]) if a == b)
    return len(ids) + repeats
