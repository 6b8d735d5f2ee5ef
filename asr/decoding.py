"""CTC decoding: per-frame probabilities -> class index sequences (greedy best path, prefix beam search).

    python -c "import numpy as np; from asr.decoding import greedy_decode; print(greedy_decode(np.eye(3)[[1,1,0,1,2]]))"
"""

from __future__ import annotations

import numpy as np

from asr.text import BLANK_INDEX


def greedy_decode(probs: np.ndarray, out_len: int | None = None) -> list[int]:
    """Best path: argmax per frame, merge repeats, drop blanks. `probs`: [T, V]; frames >= out_len ignored."""
    best = np.argmax(probs[:out_len], axis=-1)  # [T]
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]  # a repeat is merged unless a blank separates it
    return [int(i) for i in best[keep] if i != BLANK_INDEX]


def beam_decode(probs: np.ndarray, out_len: int | None = None, beam_width: int = 10) -> list[int]:
    """CTC prefix beam search (no language model). `probs`: [T, V] softmax; returns the best prefix."""
    log_probs = np.log(np.maximum(probs[:out_len], 1e-30)).astype(np.float64)  # [T, V]
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -np.inf)}  # prefix -> (log p_blank, log p_char)
    top_k = min(beam_width, log_probs.shape[1])
    for frame in log_probs:
        candidates = np.argsort(frame)[-top_k:]  # only the likeliest classes can extend a top beam
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], blank: float, char: float) -> None:
            b, c = nxt.get(prefix, (-np.inf, -np.inf))
            nxt[prefix] = [np.logaddexp(b, blank), np.logaddexp(c, char)]

        for prefix, (pb, pc) in beams.items():
            total = np.logaddexp(pb, pc)
            for k in candidates:
                p = frame[k]
                if k == BLANK_INDEX:
                    add(prefix, total + p, -np.inf)
                elif prefix and prefix[-1] == k:
                    add(prefix + (int(k),), -np.inf, pb + p)  # repeat needs a blank in between
                    add(prefix, -np.inf, pc + p)  # or it merges into the same character
                else:
                    add(prefix + (int(k),), -np.inf, total + p)
        ranked = sorted(nxt.items(), key=lambda kv: np.logaddexp(*kv[1]), reverse=True)[:beam_width]
        beams = {prefix: (v[0], v[1]) for prefix, v in ranked}
    return list(max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))[0])


def decode(probs: np.ndarray, out_len: int | None = None, beam_width: int = 1) -> list[int]:
    """Greedy when `beam_width <= 1`, otherwise prefix beam search."""
    return greedy_decode(probs, out_len) if beam_width <= 1 else beam_decode(probs, out_len, beam_width)
