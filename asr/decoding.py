"""CTC decoding: per-frame probabilities -> text and word spans (greedy best path, prefix beam search, LM).

    python -c "import numpy as np, asr.decoding as d; print(d.Decoder(('a', 'b')).text(np.eye(3)[[1, 1, 0, 1, 2]]))"

`Decoder` is the one way the toolkit decodes: greedy (beam width 1), prefix beam search, or beam search with a
word n-gram LM (`asr.lm`). Its searches return a `Hypothesis`: the emitted class indices and, for each, the
output frame where it was first emitted. `char_spans` turns that into frame spans, from which `word_spans` and
`asr.recognize` derive word times (a frame lasts `asr.batch.frame_period` seconds).

Prefix beam search (Hannun et al. 2014) keeps, per distinct label prefix, the probability of all paths
that end in a blank (`pb`) and in the prefix's last label (`pnb`); the prefix's score is their sum. It is
exact for a wide enough beam: `tests/test_decoding.py` checks it against enumerating every path. This
implementation is vectorised over beams x classes (numpy) and stores prefixes in a trie of parent
pointers, so a frame costs a few array operations, not a Python loop over every extension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.config import DecodeConfig
from asr.ctc import LOG_FLOOR
from asr.errors import AsrError
from asr.text import BLANK_INDEX

LM_BEAM_WIDTH = 32  # beam used with a language model when decode.beam_width is 1


def search_width(beam_width: int, lm_path: str) -> int:
    """The beam a decode really searches: `beam_width`, or LM_BEAM_WIDTH for an LM asked for with width 1."""
    return LM_BEAM_WIDTH if lm_path and beam_width == 1 else beam_width  # an LM needs a beam to choose from


@dataclass(frozen=True)
class Hypothesis:
    """One decoded label sequence."""

    ids: tuple[int, ...]  # emitted class indices (no blanks, repeats merged)
    starts: tuple[int, ...]  # output frame where each label was first emitted, same length as `ids`
    score: float  # natural-log probability: of the best path (greedy) or of the prefix (beam search)


def greedy_search(probs: np.ndarray, out_len: int | None = None) -> Hypothesis:
    """Best path: argmax per frame, merge repeats, drop blanks. `probs`: [T, V]; frames >= out_len ignored."""
    probs = probs[:out_len]
    best = np.argmax(probs, axis=-1)  # [T]
    new = np.ones(len(best), dtype=bool)
    new[1:] = best[1:] != best[:-1]  # a repeat is merged unless a blank separates it
    starts = np.flatnonzero(new & (best != BLANK_INDEX))
    score = float(np.sum(np.log(np.maximum(probs[np.arange(len(best)), best], LOG_FLOOR))))
    return Hypothesis(tuple(int(i) for i in best[starts]), tuple(int(t) for t in starts), score)


class _Trie:
    """Label prefixes as nodes with parent pointers; node 0 is the empty prefix."""

    def __init__(self) -> None:
        self.parent = np.zeros(1024, dtype=np.int64)
        self.label = np.full(1024, -1, dtype=np.int64)  # -1: the root has no label
        self.start = np.zeros(1024, dtype=np.int64)  # frame where the node's label was first emitted
        self.size = 1

    def add(self, parents: np.ndarray, labels: np.ndarray, frame: int) -> np.ndarray:
        """Append children `labels[i]` of `parents[i]`; returns their node ids."""
        n = len(parents)
        while self.size + n > len(self.parent):
            for name in ("parent", "label", "start"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.empty_like(old)]))
        ids = np.arange(self.size, self.size + n)
        self.parent[ids], self.label[ids], self.start[ids] = parents, labels, frame
        self.size += n
        return ids

    def hypothesis(self, node: int, score: float) -> Hypothesis:
        """Walk from `node` up to the root."""
        ids, starts = [], []
        while node != 0:
            ids.append(int(self.label[node]))
            starts.append(int(self.start[node]))
            node = int(self.parent[node])
        return Hypothesis(tuple(reversed(ids)), tuple(reversed(starts)), score)


def _extension_scores(log_p: np.ndarray, pb: np.ndarray, pnb: np.ndarray, last: np.ndarray) -> np.ndarray:
    """[n, V] log-scores of appending class c to beam i at this frame (blank column = -inf).

    Appending the beam's own last label needs a blank in between, so only `pb` paths may do it.
    """
    ext = np.logaddexp(pb, pnb)[:, None] + log_p[None, :]  # [n, V]
    has_last = last >= 0
    rows = np.flatnonzero(has_last)
    ext[rows, last[has_last]] = pb[has_last] + log_p[last[has_last]]
    ext[:, BLANK_INDEX] = -np.inf
    return ext


def beam_search(probs: np.ndarray, out_len: int | None = None, beam_width: int = 10) -> list[Hypothesis]:
    """CTC prefix beam search without a language model. `probs`: [T, V] softmax outputs.

    Returns up to `beam_width` hypotheses, best first; `score` is log p(prefix | audio) summed over paths.
    """
    log_probs = np.log(np.maximum(np.asarray(probs[:out_len], dtype=np.float64), LOG_FLOOR))  # [T, V]
    trie = _Trie()
    nodes = np.zeros(1, dtype=np.int64)  # [n] trie node of each beam
    pb, pnb = np.zeros(1), np.full(1, -np.inf)  # [n] log p(paths ending in blank / in the last label)
    where = np.full(1024, -1, dtype=np.int64)  # trie node -> beam index, for this frame only
    for t, log_p in enumerate(log_probs):
        last = trie.label[nodes]  # [n], -1 for the empty prefix
        ext = _extension_scores(log_p, pb, pnb, last)  # [n, V]
        stay_b = np.logaddexp(pb, pnb) + log_p[BLANK_INDEX]
        stay_nb = np.where(last >= 0, pnb + log_p[np.maximum(last, 0)], -np.inf)
        # A beam that is another beam plus one label also receives that extension: merge, then drop it.
        if trie.size > len(where):
            where = np.full(2 * trie.size, -1, dtype=np.int64)
        where[nodes] = np.arange(len(nodes))
        src = np.where(nodes != 0, where[trie.parent[nodes]], -1)  # [n] beam index of the parent prefix
        where[nodes] = -1
        merged = np.flatnonzero(src >= 0)
        stay_nb[merged] = np.logaddexp(stay_nb[merged], ext[src[merged], last[merged]])
        ext[src[merged], last[merged]] = -np.inf
        nodes, pb, pnb = _prune(trie, t, nodes, stay_b, stay_nb, ext, beam_width)
    total = np.logaddexp(pb, pnb)
    order = np.argsort(-total, kind="stable")
    return [trie.hypothesis(int(nodes[i]), float(total[i])) for i in order]


def _prune(trie: _Trie, t: int, nodes: np.ndarray, stay_b: np.ndarray, stay_nb: np.ndarray, ext: np.ndarray,
           beam_width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the `beam_width` best of (existing prefixes, new one-label extensions); returns nodes, pb, pnb."""
    n, n_classes = ext.shape
    scores = np.concatenate([np.logaddexp(stay_b, stay_nb), ext.ravel()])  # [n + n * V]
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > beam_width:
        finite = finite[np.argpartition(-scores[finite], beam_width - 1)[:beam_width]]
    old, new = finite[finite < n], finite[finite >= n] - n
    beam, label = new // n_classes, new % n_classes
    new_nodes = trie.add(nodes[beam], label, t)
    return (np.concatenate([nodes[old], new_nodes]), np.concatenate([stay_b[old], np.full(len(new), -np.inf)]),
            np.concatenate([stay_nb[old], ext[beam, label]]))


def char_spans(probs: np.ndarray, hyp: Hypothesis) -> list[tuple[int, int, float]]:
    """`(start, end, prob)` per label of `hyp`: frames [start, end) and the label's mean posterior there.

    A label's span runs from its first frame while the frame's argmax stays that label (at least one
    frame); on the greedy path this is exactly the run of frames that emitted it. `probs`: [T, V].
    """
    best = np.argmax(probs, axis=-1)  # [T]
    spans = []
    for label, start in zip(hyp.ids, hyp.starts):
        end = start + 1
        while end < len(best) and best[end] == label:
            end += 1
        spans.append((start, end, float(probs[start:end, label].mean())))
    return spans


@dataclass(frozen=True)
class WordSpan:
    """A decoded word with its output frames."""

    text: str
    start: int  # first output frame
    end: int  # one past the last output frame
    confidence: float  # mean over the word's frames of the winning class's posterior, in [0, 1]


def word_spans(probs: np.ndarray, hyp: Hypothesis, chars: tuple[str, ...]) -> list[WordSpan]:
    """Group the labels of `hyp` into words at spaces; `chars[i - 1]` spells class i (class 0 is the blank)."""
    words: list[list[tuple[str, int, int, float]]] = [[]]
    for label, (start, end, prob) in zip(hyp.ids, char_spans(probs, hyp)):
        if chars[label - 1] == " ":
            words.append([])
        else:
            words[-1].append((chars[label - 1], start, end, prob))
    out = []
    for word in filter(None, words):
        n_frames = np.array([e - s for _, s, e, _ in word])
        confidence = float(np.dot(n_frames, [p for *_, p in word]) / n_frames.sum())  # frame-weighted mean
        out.append(WordSpan("".join(c for c, *_ in word), word[0][1], word[-1][2], round(confidence, 3)))
    return out


class Decoder:
    """`probs [T, V]` -> (text, words): greedy, prefix beam search, or beam search with an n-gram LM."""

    def __init__(self, chars: tuple[str, ...], beam_width: int = 1, lm_path: str = "", lm_alpha: float = 0.5,
                 lm_beta: float = 1.0):
        if beam_width < 1:
            raise AsrError(f"decode.beam_width {beam_width}: must be >= 1 (1 = greedy)")
        self.chars, self.beam_width = chars, beam_width
        self.lm = None
        if lm_path:
            from asr.lm import LmDecoder
            from asr.text import Vocabulary

            self.lm = LmDecoder(Vocabulary(chars), lm_path, lm_alpha, lm_beta, search_width(beam_width, lm_path))

    @classmethod
    def from_config(cls, cfg: DecodeConfig, chars: tuple[str, ...]) -> Decoder:
        """Build from the `decode` config section."""
        return cls(chars, cfg.beam_width, cfg.lm_path, cfg.lm_alpha, cfg.lm_beta)

    def __call__(self, probs: np.ndarray) -> tuple[str, list[WordSpan]]:
        """Decode one utterance; `probs` float32 [T, V] (softmax outputs)."""
        if self.lm is not None:
            text, frames = self.lm(probs)
            best = np.max(probs, axis=-1)  # [T]
            return text, [WordSpan(w, s, e, round(float(best[s:max(e, s + 1)].mean()), 3)) for w, s, e in frames]
        hyp = self.best(probs)
        return "".join(self.chars[i - 1] for i in hyp.ids), word_spans(probs, hyp, self.chars)

    def best(self, probs: np.ndarray) -> Hypothesis:
        """The best hypothesis without the LM: greedy when `beam_width` is 1, otherwise prefix beam search."""
        return greedy_search(probs) if self.beam_width == 1 else beam_search(probs, beam_width=self.beam_width)[0]

    def text(self, probs: np.ndarray) -> str:
        """Decode one utterance to text only."""
        return self(probs)[0]
