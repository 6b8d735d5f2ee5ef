"""Sentences for the synthetic corpus: Debian `fortunes` text -> speakable sentences with exact transcripts.

    python recipes/synth/local/synth_text.py /usr/share/games/fortunes | head

Each fortune is cut into sentences; a sentence is kept only when a synthesiser will say exactly what its transcript
says. So the text a synthesiser reads (`spoken`) is derived from the same normalisation as the transcript: numbers
are spelled out first ("42" -> "forty two"), punctuation other than , . ; : ? ! becomes a space, and the transcript is
`spoken` lower-cased without that punctuation. Sentences a synthesiser would read differently from their letters are
dropped rather than guessed at: acronyms (IBM), abbreviations (Mr., e.g.), symbols ($ % & @ ...), letter-digit mixes
(2nd, MP3), and anything with characters outside the model alphabet after normalisation (accents, Greek). What is
left has 3-25 words and is deduplicated by transcript.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from asr.config import TextConfig
from asr.text import normalise_text, out_of_alphabet

FORTUNES_DIR = Path("/usr/share/games/fortunes")  # Debian's `fortunes` package
# Fortune files that are not English prose: pictures, Perl one-liners, Latin and German, shouted non sequiturs.
EXCLUDED_FILES = frozenset({"ascii-art", "perl", "translate-me", "zippy"})
MIN_WORDS, MAX_WORDS = 3, 25
TRANSCRIPT_CFG = TextConfig(numbers_to_words=True, punctuation="space")  # the model alphabet, lower case
# What the synthesisers read: the transcript's letters in their original case, plus the punctuation that shapes
# prosody (pauses, questions). Everything else becomes a space, exactly as in the transcript.
SPOKEN_PUNCTUATION = ",.;:?!"
SPOKEN_CFG = TextConfig(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ' " + SPOKEN_PUNCTUATION,
    lowercase=False,
    numbers_to_words=True,
    punctuation="space",
)

_ATTRIBUTION = re.compile(r"^\s*--")  # "\t\t-- Mark Twain" ends the quotable part of a fortune
# A sentence ends at . ! ? (and closing quotes/brackets) followed by whitespace and a capitalised word.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z])")
_SYMBOLS = re.compile(r"[@#$%^&*_=+<>|\\~{}\[\]/]")  # read aloud ("percent"), or a sign of code and markup
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b")  # IBM, TV, OK: read letter by letter, or shouted
_LETTER_DIGIT = re.compile(r"[A-Za-z]\d|\d[A-Za-z]")  # 2nd, MP3, 1991Jul13
_INITIALS = re.compile(r"\b[A-Za-z]\.\s?[A-Za-z]\.|\b[A-Z]\.\s")  # e.g., i.e., U. S., J. R. R. Tolkien
_ABBREVIATION = re.compile(
    r"\b(?:mr|mrs|ms|dr|st|jr|sr|prof|vs|etc|gen|col|lt|capt|sgt|mt|no|vol|co|inc|ltd|ave|rev|hon|gov|sen|rep|"
    r"fig|approx|dept|ft|oz|lbs?|yrs?|hrs?|min|sec|ca|cf|viz|esp|govt)\.",
    re.IGNORECASE,
)
_STRAY_APOSTROPHE = re.compile(r"(?<![A-Za-z])'|'(?![A-Za-z])")  # quote marks, not the ones in "don't"
_SPEAKER_LABEL = re.compile(r"^[\"']?[A-Z][a-z]*:")  # "Q: ...", "A: ...", "Kirk: ..." label a line of dialogue
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Sentence:
    """One usable sentence: what the synthesiser reads and what the transcript says."""

    spoken: str  # e.g. "It costs forty two dollars, he said."
    transcript: str  # e.g. "it costs forty two dollars he said" (model alphabet, lower case)


def read_fortunes(directory: Path = FORTUNES_DIR) -> Iterator[str]:
    """Each fortune of each fortune file in `directory` (sorted by file name), attribution lines removed."""
    for path in sorted(directory.iterdir()):
        if path.suffix or path.name in EXCLUDED_FILES or not path.is_file():
            continue  # .dat indexes and .u8 duplicates
        text = path.read_bytes().decode("utf-8", errors="replace")  # undecodable bytes fail the alphabet check
        for fortune in re.split(r"^%$", text, flags=re.MULTILINE):
            yield strip_attribution(fortune)


def strip_attribution(fortune: str) -> str:
    """The fortune's text up to its first "-- Author" line."""
    lines = []
    for line in fortune.splitlines():
        if _ATTRIBUTION.match(line):
            break
        lines.append(line)
    return "\n".join(lines)


def split_sentences(text: str) -> list[str]:
    """Cut prose into sentences; lines are joined first, so sentences may span lines."""
    joined = _SPACES.sub(" ", text).strip()
    return [s.strip() for s in _SENTENCE_END.split(joined) if s.strip()]


def rejection(sentence: str) -> str | None:
    """Why a raw sentence cannot be spoken as written (a short reason), or None when it can."""
    if not sentence[:1].isupper() and sentence[:1] not in "\"'(":
        return "not a sentence start"  # most often the tail of a sentence cut at an abbreviation
    if not re.search(r"[.!?][\"')\]]*$", sentence):
        return "no sentence end"
    checks = (("speaker label", _SPEAKER_LABEL), ("symbol", _SYMBOLS), ("acronym", _ACRONYM),
              ("letter-digit", _LETTER_DIGIT), ("initials", _INITIALS), ("abbreviation", _ABBREVIATION))
    for reason, pattern in checks:
        if pattern.search(sentence):
            return reason
    return None


def to_sentence(raw: str) -> Sentence | str:
    """A raw sentence -> Sentence, or the reason it is rejected."""
    reason = rejection(raw)
    if reason:
        return reason
    spoken = normalise_text(raw, SPOKEN_CFG)
    spoken = _SPACES.sub(" ", _STRAY_APOSTROPHE.sub(" ", spoken)).strip()
    if out_of_alphabet(spoken, SPOKEN_CFG.alphabet):
        return "outside alphabet"
    transcript = normalise_text(spoken, TRANSCRIPT_CFG)
    if not MIN_WORDS <= len(transcript.split()) <= MAX_WORDS:
        return "length"
    return Sentence(spoken, transcript)


def select_sentences(texts: Iterable[str]) -> tuple[list[Sentence], dict[str, int]]:
    """Usable sentences of `texts` in order of first appearance, deduplicated by transcript; and rejection counts."""
    kept: dict[str, Sentence] = {}
    rejected: dict[str, int] = {}
    for text in texts:
        for raw in split_sentences(text):
            result = to_sentence(raw)
            if isinstance(result, str):
                rejected[result] = rejected.get(result, 0) + 1
            elif result.transcript in kept:
                rejected["duplicate"] = rejected.get("duplicate", 0) + 1
            else:
                kept[result.transcript] = result
    return list(kept.values()), rejected


def main(argv: list[str]) -> int:
    """Print the usable sentences of a fortunes directory as `spoken<TAB>transcript`, then counts on stderr."""
    sentences, rejected = select_sentences(read_fortunes(Path(argv[0]) if argv else FORTUNES_DIR))
    for sentence in sentences:
        print(f"{sentence.spoken}\t{sentence.transcript}")
    words = sum(len(s.transcript.split()) for s in sentences)
    print(f"{len(sentences)} sentences, {words} words; rejected: {rejected}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
