"""Decoding: greedy and prefix beam search against a brute-force decoder, word spans, LM fusion."""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest

from asr.config import DecodeConfig
from asr.decoding import LM_BEAM_WIDTH, Decoder, beam_search, char_spans, greedy_search, search_width, word_spans
from asr.errors import AsrError

HAS_LM = all(importlib.util.find_spec(m) for m in ("pyctcdecode", "kenlm", "arpabo"))


def brute_force(probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """p(labels | frames) for every label sequence: enumerate all V^T paths, collapse, sum."""
    n_frames, n_classes = probs.shape
    out: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(n_classes), repeat=n_frames):
        labels = tuple(c for k, c in enumerate(path) if c != 0 and (k == 0 or c != path[k - 1]))
        out[labels] = out.get(labels, 0.0) + float(np.prod(probs[np.arange(n_frames), path]))
    return out


def random_probs(rng: np.random.Generator, n_frames: int, n_classes: int) -> np.ndarray:
    return rng.dirichlet(np.full(n_classes, 0.5), size=n_frames)  # peaky rows, like a trained CTC model


def test_greedy_merges_repeats_and_drops_blanks():
    probs = np.eye(4)[[1, 1, 0, 1, 2, 2, 0, 0, 3]]
    hyp = greedy_search(probs)
    assert hyp.ids == (1, 1, 2, 3)
    assert hyp.starts == (0, 3, 4, 8)
    assert greedy_search(probs, out_len=4).ids == (1, 1)


@pytest.mark.parametrize("seed", range(40))
def test_wide_beam_equals_brute_force(seed):
    """With a beam wide enough to keep every prefix, prefix beam search is exact."""
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, int(rng.integers(1, 7)), int(rng.integers(2, 5)))
    reference = {k: v for k, v in brute_force(probs).items() if v > 0}
    hyps = beam_search(probs, beam_width=10_000)
    found = {h.ids: np.exp(h.score) for h in hyps}
    assert set(found) == set(reference)
    for labels, p in reference.items():
        assert found[labels] == pytest.approx(p, rel=1e-9)
    best = max(reference.values())
    assert np.exp(hyps[0].score) == pytest.approx(best, rel=1e-9)  # ranked best first


@pytest.mark.parametrize("seed", range(20))
def test_narrow_beam_scores_are_exact_prefix_probabilities(seed):
    """Pruning may miss the best prefix, but the score it reports for what it keeps is a true lower bound."""
    rng = np.random.default_rng(100 + seed)
    probs = random_probs(rng, 6, 4)
    reference = brute_force(probs)
    for hyp in beam_search(probs, beam_width=3):
        assert np.exp(hyp.score) <= reference[hyp.ids] * (1 + 1e-9)
    assert len(beam_search(probs, beam_width=3)) <= 3


def test_beam_finds_prefix_that_greedy_misses():
    """Classic case: the best path is blank-blank, but 'a' collects more mass over its many paths."""
    probs = np.array([[0.4, 0.6, 0.0], [0.4, 0.6, 0.0]]) * 0 + np.array([[0.5, 0.4, 0.1], [0.5, 0.4, 0.1]])
    assert greedy_search(probs).ids == ()
    assert beam_search(probs, beam_width=4)[0].ids == (1,)  # p(a) = .4*.5 + .5*.4 + .4*.4 = .56 > p() = .25


def test_word_spans_from_char_frames():
    chars = ("a", "b", " ")
    path = [1, 1, 0, 2, 3, 3, 0, 2, 2, 0]  # "ab b"
    probs = np.full((len(path), 4), 0.1)
    probs[np.arange(len(path)), path] = 0.7
    probs[1, 1] = 0.5  # second frame of "a" is less sure
    hyp = greedy_search(probs)
    assert [s[:2] for s in char_spans(probs, hyp)] == [(0, 2), (3, 4), (4, 6), (7, 9)]
    words = word_spans(probs, hyp, chars)
    assert [(w.text, w.start, w.end) for w in words] == [("ab", 0, 4), ("b", 7, 9)]
    assert words[0].confidence == pytest.approx((0.7 + 0.5 + 0.7) / 3, abs=1e-3)  # frame-weighted mean


def test_decoder_text_matches_words():
    rng = np.random.default_rng(0)
    chars = ("a", "b", " ")
    probs = random_probs(rng, 40, 4)
    for width in (1, 8):
        text, words = Decoder(chars, beam_width=width)(probs)
        assert " ".join(w.text for w in words) == " ".join(text.split())
        assert all(0 <= w.start < w.end <= 40 and 0 <= w.confidence <= 1 for w in words)


def test_an_lm_asked_for_at_width_1_searches_a_beam():
    assert search_width(1, "lm.arpa") == LM_BEAM_WIDTH > 1
    assert (search_width(1, ""), search_width(8, ""), search_width(8, "lm.arpa")) == (1, 8, 8)


def test_decoder_rejects_bad_beam_width():
    with pytest.raises(AsrError, match="beam_width"):
        Decoder(("a",), beam_width=0)


@pytest.mark.skipif(not HAS_LM, reason="LM extra not installed (pip install '.[lm]')")
def test_lm_fusion_splits_words_greedy_glues(tmp_path):
    """Greedy reads "oneight" (one frame says 'e' a bit more than ' '); a word LM knows "one eight"."""
    from asr.lm import build_lm

    chars = tuple("eghinot ")
    spelled = "oneXeight"  # frame by frame; X: 'e' (merges into one 'e') narrowly beats ' '
    probs = np.full((len(spelled), len(chars) + 1), 0.01)
    for t, ch in enumerate(spelled):
        if ch == "X":
            probs[t, chars.index("e") + 1], probs[t, chars.index(" ") + 1] = 0.5, 0.42
        else:
            probs[t, chars.index(ch) + 1] = 0.9
    probs /= probs.sum(axis=1, keepdims=True)
    lm = build_lm(["one eight", "eight one", "one one eight", "eight eight one"] * 5, tmp_path / "lm.arpa", 2)
    assert Decoder(chars)(probs)[0] == "oneight"
    text, words = Decoder.from_config(DecodeConfig(beam_width=16, lm_path=str(lm), lm_alpha=1.0, lm_beta=2.0),
                                      chars)(probs)
    assert text == "one eight"
    assert [w.text for w in words] == ["one", "eight"] and words[0].end <= words[1].start


@pytest.mark.skipif(not HAS_LM, reason="LM extra not installed (pip install '.[lm]')")
def test_built_arpa_loads_in_kenlm(tmp_path):
    import kenlm

    from asr.lm import build_lm

    path = build_lm(["yes no", "no yes yes"], tmp_path / "lm.arpa", 3)
    model = kenlm.Model(str(path))
    assert model.order == 3
    assert model.score("yes no", bos=True, eos=True) > model.score("no no no no", bos=True, eos=True)


@pytest.mark.skipif(not HAS_LM, reason="LM extra not installed (pip install '.[lm]')")
def test_lm_from_prepared_data_counts_each_sentence_once(tmp_path, monkeypatch):
    """Augmented copies repeat transcripts; the LM of the data equals the LM of its distinct sentences."""
    import asr.data
    from asr.lm import build_lm, build_lm_from_data

    texts = ["yes no", "no yes yes", "yes yes"]
    rows = [{"text": t} for t in texts + texts[:1] * 3]  # "yes no" read four times (e.g. speed-perturbed copies)
    monkeypatch.setattr(asr.data.PreparedData, "__init__", lambda self, path: None)
    monkeypatch.setattr(asr.data.PreparedData, "rows", lambda self, split: iter(rows))
    from_data = build_lm_from_data(tmp_path, tmp_path / "data.arpa", 2).read_text()
    assert from_data == build_lm(texts, tmp_path / "distinct.arpa", 2).read_text()
    assert from_data != build_lm([r["text"] for r in rows], tmp_path / "all.arpa", 2).read_text()


def test_missing_lm_file_is_a_user_error(tmp_path):
    if not HAS_LM:
        with pytest.raises(AsrError, match="pip install"):
            Decoder(("a",), beam_width=4, lm_path=str(tmp_path / "none.arpa"))
        return
    with pytest.raises(AsrError, match="not found"):
        Decoder(("a",), beam_width=4, lm_path=str(tmp_path / "none.arpa"))


def test_lm_text_files_are_normalised_like_transcripts(tmp_path):
    from asr.config import TextConfig
    from asr.lm import read_sentences

    path = tmp_path / "more.txt"
    path.write_text("Press 3, then the POUND key!\n\nCafé au lait\nIt's   done.\n", encoding="utf-8")
    assert read_sentences(path, TextConfig(numbers_to_words=True)) == ["press three then the pound key", "it's done"]
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(AsrError, match="more.txt: cannot read it as UTF-8"):
        read_sentences(path, TextConfig())


@pytest.mark.skipif(not HAS_LM, reason="LM extra not installed (pip install '.[lm]')")
def test_lm_of_data_and_text_knows_the_texts_words(tiny_prepared, tmp_path):
    from asr.lm import build_lm_from_data

    (tmp_path / "more.txt").write_text("the pound key\nplease hang up\n", encoding="utf-8")
    arpa = build_lm_from_data(tiny_prepared, tmp_path / "lm.arpa", 2, texts=[tmp_path / "more.txt"]).read_text()
    unigrams = {line.split("\t")[1] for line in arpa.split("\\1-grams:")[1].split("\\2-grams:")[0].splitlines()
                if "\t" in line}
    assert {"pound", "hang"} <= unigrams and "pound" not in build_lm_from_data(tiny_prepared, tmp_path / "x.arpa",
                                                                                2).read_text()


@pytest.mark.skipif(not HAS_LM, reason="LM extra not installed (pip install '.[lm]')")
def test_lm_of_several_splits_knows_each_splits_words(tiny_prepared, tmp_path):
    """`asr lm DATA --split train --split dev`: the LM of a run that trained on dev too (train.refit)."""
    import shutil

    from typer.testing import CliRunner

    from asr.cli import app
    from asr.files import read_jsonl, write_jsonl

    data = tmp_path / "data"
    shutil.copytree(tiny_prepared, data)
    dev = read_jsonl(data / "dev.jsonl")
    write_jsonl(data / "dev.jsonl", [{**dev[0], "text": "zebra quartz"}, *dev[1:]])  # words no train sentence has
    dev_only = {"zebra", "quartz"}

    def unigrams(*splits: str) -> set[str]:
        out = tmp_path / f"{'-'.join(splits)}.arpa"
        args = ["lm", str(data), "--out", str(out), "--order", "2"]
        args += [a for split in splits for a in ("--split", split)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        arpa = out.read_text(encoding="utf-8")
        return {line.split("\t")[1] for line in arpa.split("\\1-grams:")[1].split("\\2-grams:")[0].splitlines()
                if "\t" in line}

    assert dev_only <= unigrams("train", "dev") and not dev_only & unigrams("train")
