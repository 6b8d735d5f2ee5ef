"""CER/WER against hand-worked examples and an independent edit distance."""

from __future__ import annotations

import numpy as np
import pytest

from asr.metrics import error_rates


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance (unit costs), the textbook dynamic programme."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def counts(section: dict) -> tuple[int, int, int, int]:
    return section["substitutions"], section["deletions"], section["insertions"], section["ref_len"]


def test_perfect():
    rates = error_rates(["the cat sat"], ["the cat sat"])
    assert rates["cer"] == 0.0 and rates["wer"] == 0.0
    assert counts(rates["words"]) == (0, 0, 0, 3)
    assert counts(rates["chars"]) == (0, 0, 0, 11)


def test_substitution():
    # words: cat -> bat is 1 S of 3; chars: c -> b is 1 S of 11 (spaces count as characters)
    rates = error_rates(["the cat sat"], ["the bat sat"])
    assert counts(rates["words"]) == (1, 0, 0, 3)
    assert counts(rates["chars"]) == (1, 0, 0, 11)
    assert rates["wer"] == pytest.approx(1 / 3)
    assert rates["cer"] == pytest.approx(1 / 11)


def test_deletion():
    # words: "b" deleted, 1 D of 3; chars: "b" and one space deleted, 2 D of 5
    rates = error_rates(["a b c"], ["a c"])
    assert counts(rates["words"]) == (0, 1, 0, 3)
    assert counts(rates["chars"]) == (0, 2, 0, 5)
    assert rates["wer"] == pytest.approx(1 / 3)
    assert rates["cer"] == pytest.approx(2 / 5)


def test_insertion():
    # words: "x" inserted, 1 I over 2 reference words; chars: "x" and a space, 2 I over 3
    rates = error_rates(["a b"], ["a x b"])
    assert counts(rates["words"]) == (0, 0, 1, 2)
    assert counts(rates["chars"]) == (0, 0, 2, 3)
    assert rates["wer"] == pytest.approx(1 / 2)
    assert rates["cer"] == pytest.approx(2 / 3)


def test_rates_can_exceed_one():
    rates = error_rates(["a"], ["x y z"])  # 1 S + 2 I over 1 word
    assert rates["wer"] == pytest.approx(3.0)


def test_empty_hypothesis_is_all_deletions():
    rates = error_rates(["ab cd"], [""])
    assert counts(rates["words"]) == (0, 2, 0, 2)
    assert counts(rates["chars"]) == (0, 5, 0, 5)
    assert rates["cer"] == 1.0 and rates["wer"] == 1.0


def test_corpus_level_rates_pool_errors_not_average_rates():
    # utt 1: 2 word errors of 2; utt 2: 0 of 4 -> pooled WER 2/6 (the mean of rates would be 1/2)
    rates = error_rates(["ab cd", "one two three four"], ["", "one two three four"])
    assert rates["wer"] == pytest.approx(2 / 6)
    assert rates["cer"] == pytest.approx(5 / (5 + 18))
    assert rates["words"]["errors"] == 2


@pytest.mark.parametrize("seed", range(5))
def test_error_counts_equal_edit_distance(seed):
    rng = np.random.default_rng(seed)
    words = ["go", "stop", "one", "two", "a", "yes"]
    refs = [" ".join(rng.choice(words, size=rng.integers(1, 6))) for _ in range(8)]
    hyps = [" ".join(rng.choice(words, size=rng.integers(0, 6))) for _ in range(8)]
    rates = error_rates(refs, hyps)
    word_dist = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps, strict=True))
    char_dist = sum(edit_distance(list(r), list(h)) for r, h in zip(refs, hyps, strict=True))
    assert rates["words"]["errors"] == word_dist
    assert rates["chars"]["errors"] == char_dist
    assert rates["wer"] == pytest.approx(word_dist / sum(len(r.split()) for r in refs))
    assert rates["cer"] == pytest.approx(char_dist / sum(len(r) for r in refs))
