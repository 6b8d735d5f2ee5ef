"""Cutting audio at pauses (`asr.segment`): utterances match known sentences, cuts fall in pauses, any block split
gives the same cuts, long speech is cut, silence and clicks give nothing."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import write_sentences_with_pauses

from asr.segment import FRAMES_PER_SECOND, Segmenter


def segment(audio: np.ndarray, block: int, rate: int = 16000, **kwargs) -> list:
    seg = Segmenter(rate, **kwargs)
    return [u for k in range(0, len(audio), block) for u in seg.push(audio[k:k + block])] + list(seg.flush())


@pytest.mark.parametrize("snr_db", [None, 20.0])
def test_one_utterance_per_sentence_cut_in_the_pauses(tmp_path, snr_db):
    spans = write_sentences_with_pauses(tmp_path / "s.wav", 10, snr_db=snr_db)
    audio, _ = sf.read(str(tmp_path / "s.wav"), dtype="float32")
    utts = segment(audio, 800)
    assert len(utts) == len(spans)
    for u, (start, end, _), nxt in zip(utts, spans, [*spans[1:], None]):
        assert abs(u.speech_start - start) < 0.2 and abs(u.speech_end - end) < 0.2  # found where the speech is
        u_end = u.start + len(u.audio) / 16000
        assert u.start <= start and u_end >= end  # with its padding
        assert nxt is None or u_end < nxt[0]  # and it ends in the pause before the next sentence
        assert u.audio.dtype == np.float32 and np.array_equal(u.audio, audio[round(u.start * 16000):][:len(u.audio)])


def test_the_cuts_do_not_depend_on_how_the_stream_is_split(tmp_path):
    write_sentences_with_pauses(tmp_path / "s.wav", 4)
    audio, _ = sf.read(str(tmp_path / "s.wav"), dtype="float32")
    cuts = [[(u.start, len(u.audio)) for u in segment(audio, block)] for block in (160, 333, 800, len(audio))]
    assert len(cuts[0]) == 4 and all(c == cuts[0] for c in cuts)
    import soxr

    at_8k = soxr.resample(audio, 16000, 8000).astype(np.float32)  # other rates: interpolated to 16 kHz for the VAD
    cuts_8k = [[(u.start, len(u.audio)) for u in segment(at_8k, block, 8000)] for block in (80, 171, 4000)]
    assert all(c == cuts_8k[0] for c in cuts_8k)
    assert [s for s, _ in cuts_8k[0]] == pytest.approx([s for s, _ in cuts[0]], abs=0.03)


class Pattern:
    """A fake detector: speech where `speech[frame]` is True (counts frames across calls)."""

    def __init__(self, speech: np.ndarray):
        self.speech, self.t = speech, 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = self.speech[self.t:self.t + len(frames)]
        self.t += len(frames)
        return out


def test_pause_pad_clicks_and_silence():
    frames = np.zeros(400, bool)
    frames[50:100] = frames[120:180] = True  # a 0.2 s gap: too short to end an utterance (pause 0.3 s)
    frames[250:255] = True  # a 50 ms click: dropped
    frames[300:380] = True
    audio = np.random.default_rng(0).standard_normal(400 * 160).astype(np.float32) * 0.1
    utts = segment(audio, 1000, detector=Pattern(frames))
    assert [(round(u.speech_start, 2), round(u.speech_end, 2)) for u in utts] == [(0.5, 1.8), (3.0, 3.8)]
    assert [(u.start, round(u.start + len(u.audio) / 16000, 2)) for u in utts] == [(0.35, 1.95), (2.85, 3.95)]
    assert segment(np.zeros(16000 * 3, np.float32), 800) == []  # silence: no utterance


def test_speech_without_a_pause_is_cut_at_max_seconds():
    audio = np.random.default_rng(0).standard_normal(16000 * 7).astype(np.float32) * 0.1
    audio[16000 * 3 + 800:16000 * 3 + 960] = 0.0  # a quiet 10 ms frame: the cut goes there
    utts = segment(audio, 1000, max_seconds=4.0, detector=Pattern(np.ones(700, bool)))
    assert len(utts) == 2 and all(0 < len(u.audio) <= 4 * 16000 and u.speech_start < u.speech_end for u in utts)
    assert utts[0].start == 0.0 and utts[1].start == pytest.approx(3.05)  # at the quiet frame
    assert len(utts[0].audio) + len(utts[1].audio) == len(audio)  # nothing lost or repeated at the cut
    assert FRAMES_PER_SECOND * len(utts[1].audio) // 16000 == 700 - 305
