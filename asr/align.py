"""`asr align`: CTC forced alignment, start/end times of every character and word of a known transcript.

    asr align exp/demo/bundle recipes/demo/corpus/test/101/3/101-3-0002.flac "zero off" --plot align.png

The model gives per-frame probabilities `probs [T', V]`. A transcript of L labels is spelled by the
blank-augmented sequence `_ y1 _ y2 _ ... yL _` (2L + 1 states, `_` = blank, class 0). A CTC path visits
these states left to right, one per output frame: it may stay, step to the next state, or skip a blank
between two *different* labels (between equal labels the blank is compulsory, which is why "off" needs
4 frames). The CTC loss is -log of the sum over all such paths (`ctc_log_likelihood`); forced alignment
takes the single best one (`viterbi_align`, max instead of sum). Each character's time span is the run of
frames its state holds on that path; a frame lasts `hop_length * conv_stride / sample_rate` seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asr.batch import frame_period
from asr.config import TextConfig
from asr.ctc import LOG_FLOOR
from asr.errors import AsrError
from asr.text import BLANK_INDEX, BLANK_SYMBOL, Vocabulary, ctc_frames_needed, normalise_text, out_of_alphabet

SPACE_MARK = "\u2423"  # how a space is printed in the path string
PATH_WRAP = 80  # frames per line of the printed path


@dataclass(frozen=True)
class Span:
    """A character or a word with its time span on the best path."""

    text: str
    start: float  # seconds: start of its first frame
    end: float  # seconds: end of its last frame
    prob: float  # mean posterior of its label(s) over its frames


@dataclass(frozen=True)
class Alignment:
    """The best CTC path of one transcript through one utterance."""

    audio: str
    text: str  # the transcript after the bundle's normalisation
    frame_period: float  # seconds per output frame
    frames: tuple[int, ...]  # class index of every output frame on the best path, [T']
    log_prob: float  # log p of the best path (natural log)
    ctc_loss: float  # -log p(text | audio): the training loss of this pair, summed over all paths
    chars: tuple[Span, ...]
    words: tuple[Span, ...]
    symbols: tuple[str, ...]  # printable symbol of every class (0: blank)
    probs: np.ndarray = field(repr=False, compare=False)  # float32 [T', V] posteriors, for plots

    @property
    def duration(self) -> float:
        """Seconds covered by the output frames."""
        return len(self.frames) * self.frame_period


def blank_augmented(labels: Sequence[int]) -> np.ndarray:
    """`[y1 .. yL]` -> `[_, y1, _, y2, ..., yL, _]`: int [2L + 1], blank = BLANK_INDEX."""
    ext = np.full(2 * len(labels) + 1, BLANK_INDEX, dtype=np.int64)
    ext[1::2] = labels
    return ext


def _can_skip(ext: np.ndarray) -> np.ndarray:
    """bool [S]: state s may be entered from s - 2 (a label different from the label two states back)."""
    skip = np.zeros(len(ext), dtype=bool)
    skip[2:] = (ext[2:] != BLANK_INDEX) & (ext[2:] != ext[:-2])
    return skip


def _predecessors(score: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """[3, S] scores of arriving at each state by staying, from s - 1, and from s - 2 (where allowed)."""
    from_prev = np.concatenate([[-np.inf], score[:-1]])
    from_skip = np.where(skip, np.concatenate([[-np.inf, -np.inf], score[:-2]])[: len(score)], -np.inf)
    return np.stack([score, from_prev, from_skip])


def _initial(emit: np.ndarray) -> np.ndarray:
    """Scores at frame 0: a path starts in the leading blank or on the first label."""
    score = np.full(emit.shape[1], -np.inf)
    score[: min(2, emit.shape[1])] = emit[0, :2]
    return score


def _check_lengths(log_probs: np.ndarray, labels: Sequence[int]) -> None:
    """ValueError when no CTC path fits (callers facing users check first and raise AsrError)."""
    needed = ctc_frames_needed(list(labels))
    if len(log_probs) < max(1, needed):
        raise ValueError(f"{len(log_probs)} frames cannot spell {len(labels)} labels (needs {needed})")


def viterbi_align(log_probs: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, float]:
    """Best CTC path of `labels` (class indices >= 1) through `log_probs` float [T, V].

    Returns `states` int [T] (positions in the blank-augmented sequence, see `blank_augmented`) and the
    path's log probability. Ties go to the earliest move (stay, then step, then skip).
    """
    _check_lengths(log_probs, labels)
    ext = blank_augmented(labels)
    emit = np.asarray(log_probs, dtype=np.float64)[:, ext]  # [T, V] -> [T, S]
    skip = _can_skip(ext)
    score = _initial(emit)
    back = np.zeros(emit.shape, dtype=np.int8)  # 0 stay, 1 from s - 1, 2 from s - 2
    for t in range(1, len(emit)):
        cand = _predecessors(score, skip)  # [3, S]
        back[t] = np.argmax(cand, axis=0)
        score = cand[back[t], np.arange(len(ext))] + emit[t]
    last = len(ext) - 1  # a path ends on the trailing blank or on the last label
    s = last if last == 0 or score[last] >= score[last - 1] else last - 1
    best = float(score[s])
    states = np.empty(len(emit), dtype=np.int64)
    for t in range(len(emit) - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    return states, best


def ctc_log_likelihood(log_probs: np.ndarray, labels: Sequence[int]) -> float:
    """log p(labels | frames), summed over every CTC path (the forward algorithm); `-` of it is the CTC loss."""
    _check_lengths(log_probs, labels)
    ext = blank_augmented(labels)
    emit = np.asarray(log_probs, dtype=np.float64)[:, ext]  # [T, S]
    skip = _can_skip(ext)
    score = _initial(emit)
    for t in range(1, len(emit)):
        score = np.logaddexp.reduce(_predecessors(score, skip), axis=0) + emit[t]
    return float(np.logaddexp.reduce(score[-2:]))


def path_chars(states: np.ndarray, text: str, probs: np.ndarray, labels: Sequence[int], period: float) -> list[Span]:
    """One Span per character: the frames where the path sits on its label state (2i + 1)."""
    spans = []
    for i, char in enumerate(text):
        frames = np.flatnonzero(states == 2 * i + 1)  # never empty: every label holds >= 1 frame
        spans.append(Span(char, round(frames[0] * period, 3), round((frames[-1] + 1) * period, 3),
                          round(float(probs[frames, labels[i]].mean()), 3)))
    return spans


def path_words(chars: Sequence[Span]) -> list[Span]:
    """Group character spans into words at spaces: start of the first letter to end of the last."""
    words: list[list[Span]] = [[]]
    for span in chars:
        if span.text == " ":
            words.append([])
        else:
            words[-1].append(span)
    return [Span("".join(c.text for c in w), w[0].start, w[-1].end, round(float(np.mean([c.prob for c in w])), 3))
            for w in words if w]


def encode_transcript(transcript: str, text_cfg: TextConfig, vocab: Vocabulary, where: str) -> tuple[str, list[int]]:
    """Normalise `transcript` like the training data and encode it; AsrError if a character is unknown."""
    text = normalise_text(transcript, text_cfg)
    if not text:
        raise AsrError(f"transcript {transcript!r} is empty after normalisation; pass the words spoken in the audio")
    bad = out_of_alphabet(text, "".join(vocab.chars))
    if bad:
        raise AsrError(f"transcript {text!r}: characters {bad!r} are not in the model's vocabulary "
                       f"({where}/vocab.json: {''.join(vocab.chars)!r}); the model can only align those")
    return text, vocab.encode(text)


def align_probs(probs: np.ndarray, text: str, vocab: Vocabulary, period: float, audio: str = "") -> Alignment:
    """Force-align normalised `text` to posteriors `probs` float [T', V]; AsrError when it cannot fit."""
    labels = vocab.encode(text)
    needed = ctc_frames_needed(labels)
    if needed > len(probs):
        raise AsrError(f"transcript {text!r} needs {needed} output frames ({len(labels)} characters + "
                       f"{needed - len(labels)} blanks between repeated letters) but {audio or 'the audio'} gives "
                       f"only {len(probs)} frames of {period * 1000:g} ms; is this the right audio and transcript?")
    log_probs = np.log(np.maximum(probs, LOG_FLOOR))  # [T', V]
    states, best = viterbi_align(log_probs, labels)
    ext = blank_augmented(labels)
    chars = path_chars(states, text, probs, labels, period)
    symbols = tuple(vocab.symbol(k) for k in range(vocab.size))
    return Alignment(audio, text, period, tuple(int(c) for c in ext[states]), best,
                     -ctc_log_likelihood(log_probs, labels), tuple(chars), tuple(path_words(chars)), symbols,
                     np.asarray(probs, dtype=np.float32))


def align_file(bundle: Any, audio: str | Path, transcript: str) -> Alignment:
    """Run the bundle's model on `audio` and force-align `transcript` (normalised with the bundle's text config)."""
    from asr.audio import compute_mfcc, load_audio
    from asr.inference import Predictor

    text, _ = encode_transcript(transcript, bundle.text, bundle.vocab, str(bundle.path))
    samples = load_audio(audio, bundle.features.sample_rate)
    if samples.size == 0:
        raise AsrError(f"{audio}: empty audio, nothing to align")
    feats = compute_mfcc(samples, bundle.features)  # [T, n_mfcc]
    stride = bundle.model_cfg.conv_stride
    probs = Predictor(bundle.model, stride, bundle.stats["mean"], batch_size=1)([feats])[0]  # [ceil(T / s), V]
    return align_probs(probs, text, bundle.vocab, frame_period(bundle.features, stride), str(audio))


# ---------------------------------------------------------------------------------------------------- output


def alignment_to_json(a: Alignment) -> dict:
    """Plain dict for `--json`: times in seconds, the path as class indices and as symbols."""
    return {"audio": a.audio, "text": a.text, "duration": round(a.duration, 3), "frame_period": a.frame_period,
            "ctc_loss": round(a.ctc_loss, 4), "best_path_log_prob": round(a.log_prob, 4),
            "words": [asdict(w) for w in a.words], "chars": [asdict(c) for c in a.chars],
            "path": list(a.frames), "path_symbols": "".join(a.symbols[k] for k in a.frames)}


def format_path(a: Alignment) -> list[str]:
    """The best path, one symbol per frame, wrapped with the start time of each line."""
    symbols = "".join(SPACE_MARK if a.symbols[k] == " " else a.symbols[k] for k in a.frames)
    return [f"  {k * a.frame_period:6.2f}s  {symbols[k:k + PATH_WRAP]}" for k in range(0, len(symbols), PATH_WRAP)]


def format_alignment(a: Alignment) -> str:
    """Text report of `asr align`."""
    ms = a.frame_period * 1000
    lines = [f"audio       {a.audio}: {a.duration:.2f} s = {len(a.frames)} output frames of {ms:g} ms",
             f"transcript  \"{a.text}\" ({len(a.chars)} labels; CTC needs at least "
             f"{ctc_frames_needed(list(a.text))} frames)",
             f"CTC loss    {a.ctc_loss:.3f} = -log p(transcript | audio), summed over every alignment",
             f"best path   {-a.log_prob:.3f} = -log p(the single best alignment, below); "
             f"p(best) / p(transcript) = {np.exp(a.log_prob + a.ctc_loss):.1%}", "",
             f"best path, one symbol per {ms:g} ms frame ({BLANK_SYMBOL} = blank, {SPACE_MARK} = space):",
             *format_path(a), "", "words:   start     end   prob"]
    lines += [f"       {w.start:7.2f} {w.end:7.2f}  {w.prob:5.2f}  {w.text}" for w in a.words]
    lines += ["chars:   start     end   prob"]
    lines += [f"       {c.start:7.2f} {c.end:7.2f}  {c.prob:5.2f}  {SPACE_MARK if c.text == ' ' else c.text}"
              for c in a.chars]
    return "\n".join(lines)


def plot_alignment(a: Alignment, path: str | Path) -> None:
    """Posteriogram (classes x frames) with the best path drawn over it and the word spans marked."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    from asr.plots import save_figure

    n_frames, n_classes = a.probs.shape
    fig = Figure(figsize=(max(8.0, min(24.0, n_frames / 12)), 6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(a.probs.T, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
              extent=(0, n_frames * a.frame_period, -0.5, n_classes - 0.5))  # [T', V] -> [V, T']
    centres = (np.arange(n_frames) + 0.5) * a.frame_period
    ax.plot(centres, a.frames, color="tab:red", linewidth=1, marker=".", markersize=4, label="best path")
    for w in a.words:
        ax.axvspan(w.start, w.end, color="tab:blue", alpha=0.12)
        ax.text((w.start + w.end) / 2, n_classes - 0.7, w.text, ha="center", va="top", fontsize=9, color="tab:blue")
    ax.set_yticks(range(n_classes), [SPACE_MARK if s == " " else s for s in a.symbols], fontsize=8)
    ax.set(xlabel="seconds", ylabel="class (0 = blank)", title=f"\"{a.text}\": CTC loss {a.ctc_loss:.2f}, "
           f"best path -log p {-a.log_prob:.2f}")
    ax.legend(loc="upper right")
    save_figure(fig, path)
