"""Forced alignment (asr.align): Viterbi and forward against brute force, spans, errors, and `asr align`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import demo_flacs
from typer.testing import CliRunner

from asr.align import (
    align_probs,
    blank_augmented,
    ctc_log_likelihood,
    encode_transcript,
    viterbi_align,
)
from asr.batch import frame_period
from asr.config import FeatureConfig, TextConfig
from asr.errors import AsrError
from asr.text import BLANK_INDEX, Vocabulary, ctc_frames_needed


def collapse(path: tuple[int, ...]) -> list[int]:
    """CTC's many-to-one map, written independently: merge runs, then drop blanks."""
    merged = [k for k, _ in itertools.groupby(path)]
    return [k for k in merged if k != BLANK_INDEX]


def brute_force(log_probs: np.ndarray, labels: list[int]) -> tuple[list[tuple[int, ...]], list[float]]:
    """Every frame path over all classes that collapses to `labels`, with its log probability."""
    n_frames, n_classes = log_probs.shape
    paths = [p for p in itertools.product(range(n_classes), repeat=n_frames) if collapse(p) == labels]
    return paths, [float(sum(log_probs[t, k] for t, k in enumerate(p))) for p in paths]


CASES = [  # (frames, labels): repeats, a lone label, the empty transcript, exactly the frames needed
    (1, [1]), (3, [1, 1]), (4, [1, 1]), (4, [1, 2, 1]), (5, [2, 2, 1]), (6, [1, 2]), (6, [3, 3, 3]),
    (3, []), (5, [1, 2, 3]), (7, [2, 1, 2, 2]),
]


@pytest.mark.parametrize("n_frames,labels", CASES)
def test_viterbi_matches_brute_force_best_path(n_frames: int, labels: list[int]) -> None:
    rng = np.random.default_rng(len(labels) * 100 + n_frames)
    log_probs = np.log(rng.dirichlet(np.ones(4) * 0.7, size=n_frames))  # [T, V=4], peaky-ish random posteriors
    paths, scores = brute_force(log_probs, labels)
    states, score = viterbi_align(log_probs, labels)
    best = int(np.argmax(scores))
    assert tuple(blank_augmented(labels)[states]) == paths[best]
    assert score == pytest.approx(scores[best], abs=1e-9)
    assert collapse(tuple(blank_augmented(labels)[states])) == labels


@pytest.mark.parametrize("n_frames,labels", CASES)
def test_forward_matches_brute_force_sum(n_frames: int, labels: list[int]) -> None:
    rng = np.random.default_rng(7 + n_frames)
    log_probs = np.log(rng.dirichlet(np.ones(4), size=n_frames))
    _, scores = brute_force(log_probs, labels)
    assert ctc_log_likelihood(log_probs, labels) == pytest.approx(float(np.logaddexp.reduce(scores)), abs=1e-9)


def test_too_few_frames_is_refused_like_brute_force_finds_no_path() -> None:
    log_probs = np.log(np.full((2, 3), 1 / 3))
    assert brute_force(log_probs, [1, 1])[0] == []  # "aa" needs a blank in between: 3 frames
    with pytest.raises(ValueError):
        viterbi_align(log_probs, [1, 1])


def test_forward_matches_the_training_loss() -> None:
    """The numpy forward algorithm agrees with asr.ctc (tf.nn.ctc_loss), the loss training minimises."""
    from asr.runtime import import_tensorflow

    import_tensorflow()
    from asr.ctc import ctc_batch_loss

    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(6), size=(1, 40)).astype(np.float32)  # [B=1, T, V]
    labels = [1, 2, 2, 5, 3]
    loss = ctc_batch_loss([probs, np.array([labels], np.int32), np.array([40], np.int32), np.array([5], np.int32)])
    assert float(loss[0, 0]) == pytest.approx(-ctc_log_likelihood(np.log(probs[0]), labels), rel=1e-4)


def one_hot_frames(symbols: str, vocab: Vocabulary, peak: float = 0.9) -> np.ndarray:
    """Posteriors [T, V] that put `peak` on the class of each frame's symbol ('_' = blank)."""
    ids = [BLANK_INDEX if s == "_" else vocab.encode(s)[0] for s in symbols]
    probs = np.full((len(ids), vocab.size), (1 - peak) / (vocab.size - 1))
    probs[np.arange(len(ids)), ids] = peak
    return probs


def test_spans_follow_the_frames_that_spell_each_character() -> None:
    vocab = Vocabulary(tuple("abo "))
    probs = one_hot_frames("__aa_b__ __bbo_o_", vocab)  # "ab boo": the doubled o needs the blank between
    a = align_probs(probs, "ab boo", vocab, period=0.02)
    assert "".join(a.symbols[k] for k in a.frames) == "__aa_b__ __bbo_o_"
    assert [(c.text, c.start, c.end) for c in a.chars] == [
        ("a", 0.04, 0.08), ("b", 0.1, 0.12), (" ", 0.16, 0.18), ("b", 0.22, 0.26), ("o", 0.26, 0.28),
        ("o", 0.3, 0.32)]
    assert [(w.text, w.start, w.end) for w in a.words] == [("ab", 0.04, 0.12), ("boo", 0.22, 0.32)]
    assert a.ctc_loss <= -a.log_prob  # the loss sums over paths; the best path is one of them


def test_infeasible_transcript_is_a_user_error() -> None:
    vocab = Vocabulary(tuple("ab"))
    probs = one_hot_frames("aba", vocab)
    assert ctc_frames_needed(vocab.encode("abba")) == 5
    with pytest.raises(AsrError, match="needs 5 output frames"):
        align_probs(probs, "abba", vocab, period=0.02)


def test_transcript_is_normalised_and_checked_against_the_vocabulary() -> None:
    vocab = Vocabulary(tuple("abc "))
    assert encode_transcript("  ABC, cab! ", TextConfig(), vocab, "b")[0] == "abc cab"
    with pytest.raises(AsrError, match="'dz'.*not in the model's vocabulary"):
        encode_transcript("abdz", TextConfig(), vocab, "bundle")
    with pytest.raises(AsrError, match="empty"):
        encode_transcript("?!", TextConfig(), vocab, "bundle")


def test_frame_period_counts_hop_and_subsampling() -> None:
    assert frame_period(FeatureConfig(sample_rate=16000, hop_length=160), 2) == pytest.approx(0.02)
    assert frame_period(FeatureConfig(sample_rate=8000, hop_length=80), 3) == pytest.approx(0.03)


# ---------------------------------------------------------------------------------------------------- CLI


def _aligned_example(bundle: Path) -> tuple[Path, str]:
    """A demo test utterance whose transcript the tiny bundle's vocabulary can spell."""
    chars = set(Vocabulary.load(bundle / "vocab.json").chars)
    return next((p, t) for p, t in demo_flacs(16, "test") if set(t.lower()) <= chars)


def test_cli_align_json_and_plot(tiny_bundle: Path, tmp_path: Path) -> None:
    from asr.cli import app

    audio, text = _aligned_example(tiny_bundle)
    plot = tmp_path / "align.png"
    result = CliRunner().invoke(app, ["align", str(tiny_bundle), str(audio), text, "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["text"] == text.lower()
    assert [w["text"] for w in out["words"]] == text.lower().split()
    starts = [c["start"] for c in out["chars"]]
    assert starts == sorted(starts) and 0 <= starts[0] and out["chars"][-1]["end"] <= out["duration"] + 1e-9
    assert len(out["path"]) == round(out["duration"] / out["frame_period"])
    assert out["ctc_loss"] <= -out["best_path_log_prob"] + 1e-6
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_align_text_report(tiny_bundle: Path) -> None:
    from asr.cli import app

    audio, text = _aligned_example(tiny_bundle)
    result = CliRunner().invoke(app, ["align", str(tiny_bundle), str(audio), text])
    assert result.exit_code == 0, result.output
    assert "CTC loss" in result.stdout and "best path" in result.stdout
    for word in text.lower().split():
        assert f"  {word}\n" in result.stdout


@pytest.mark.parametrize("transcript,message", [
    ("qqq", "not in the model's vocabulary"),
    ("one two three four five six seven eight nine zero " * 4, "output frames"),
])
def test_cli_align_user_errors(tiny_bundle: Path, transcript: str, message: str) -> None:
    from asr.cli import app

    audio, _ = _aligned_example(tiny_bundle)
    if set("q") <= set(Vocabulary.load(tiny_bundle / "vocab.json").chars):
        pytest.skip("the tiny vocabulary happens to contain 'q'")
    result = CliRunner().invoke(app, ["align", str(tiny_bundle), str(audio), transcript])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
