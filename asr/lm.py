"""Word n-gram language model: build one from training transcripts; fuse it into CTC beam search.

    pip install '.[lm]'       # pyctcdecode (beam search + fusion), kenlm (LM queries), arpabo (ARPA builder)
    asr lm data/demo --out exp/demo/lm.arpa --order 3
    asr lm data/mine --out exp/mine/lm.arpa --text more-sentences.txt   # the transcripts and more text
    asr eval --model exp/demo/bundle --data data/demo --lm exp/demo/lm.arpa --beam-width 32

Shallow fusion (pyctcdecode): a prefix's score is `log p_ctc + alpha * log p_lm(words) + beta * n_words`,
the LM scored at each word boundary. `alpha`/`beta` are `decode.lm_alpha`/`decode.lm_beta`; tune them on dev.

The ARPA file is estimated by arpabo (pure Python, Kneser-Ney), because kenlm's own estimator `lmplz`
is not on PyPI (the `kenlm` package builds only the query library) nor in Debian. arpabo's
probabilities are not exactly normalised (next-word probabilities sum to ~0.8-1.2 on the demo), which
shallow fusion tolerates; an ARPA or binary file from `lmplz` can be passed to `--lm` instead.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from asr.config import TextConfig
from asr.ctc import LOG_FLOOR
from asr.errors import AsrError
from asr.files import write_text
from asr.text import Vocabulary

INSTALL_HINT = "pip install '.[lm]' (pyctcdecode, kenlm, arpabo)"


def _require(module: str) -> None:
    """Import `module` or raise an AsrError saying how to install the LM extra."""
    try:
        __import__(module)
    except ImportError:
        raise AsrError(f"language models need the optional package {module!r}: {INSTALL_HINT}") from None


def _kenlm_arpa(text: str) -> str:
    """arpabo's ARPA text -> the strict layout kenlm reads: no preamble, TAB between prob, words, backoff."""
    out, order = [], 0
    for line in text[text.index("\\data\\"):].splitlines():
        section = re.fullmatch(r"\\(\d+)-grams:", line)
        fields = line.split()
        if section:
            order = int(section.group(1))
        elif order and fields and not line.startswith("\\"):
            line = "\t".join([fields[0], " ".join(fields[1:1 + order]), *fields[1 + order:]])
        out.append(line)
    return "\n".join(out) + "\n"


def build_lm(texts: Iterable[str], out: str | Path, order: int = 3) -> Path:
    """Estimate a word `order`-gram model (Kneser-Ney, arpabo) from normalised transcripts; write ARPA."""
    _require("arpabo")
    from arpabo import ArpaBoLM

    if order < 1:
        raise AsrError(f"--order {order}: an n-gram order must be >= 1 (3 is usual)")
    lm = ArpaBoLM(max_order=order, smoothing_method="kneser_ney", unicode_norm=False)
    lines = [t for t in texts if t.strip()]
    if not lines:
        raise AsrError("no transcripts to build a language model from")
    lm.read_corpus(io.StringIO("\n".join(lines)))
    lm.compute()
    buf = io.StringIO()
    lm.write(buf)
    write_text(out, _kenlm_arpa(buf.getvalue()))
    return Path(out)


def build_lm_from_data(data_dir: str | Path, out: str | Path, order: int = 3, splits: Sequence[str] = ("train",),
                       texts: Iterable[str | Path] = ()) -> Path:
    """`build_lm` over the distinct transcripts of prepared `splits` (already normalised by `asr prepare`), and the
    sentences of the text files `texts` (one a line), normalised with the data's text rules. A run that trained
    on dev too (`train.refit`) gets its LM from train and dev; the test split stays unseen.

    Each sentence counts once: augmented copies (speed, noise, ...) or several speakers reading the same prompt
    would otherwise multiply its n-gram counts and skew the smoothing, as Kaldi recipes avoid by building the LM
    from the original text. Extra text is how a few minutes of transcripts (fine-tuning) get an LM that knows
    more than their own words: on the allison-adapt test prompts 19 % of the words are not in the 232 train
    prompts, 3 % once general English sentences join them (recipes/adapt/README.md).
    """
    from asr.data import PreparedData

    data = PreparedData(data_dir)
    sentences = [r["text"] for split in splits for r in data.rows(split)]
    for path in texts:
        sentences += read_sentences(path, data.text)
    return build_lm(dict.fromkeys(sentences), out, order)


def read_sentences(path: str | Path, cfg: TextConfig) -> list[str]:
    """The lines of a text file, normalised like transcripts; lines with characters outside the alphabet are left out
    (an LM word the model cannot spell would only cost beam space)."""
    from asr.text import normalise_text, out_of_alphabet

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise AsrError(f"--text {path}: cannot read it as UTF-8 text ({type(err).__name__})") from None
    normalised = (normalise_text(line, cfg) for line in lines)
    return [t for t in normalised if t and not out_of_alphabet(t, cfg.alphabet)]


class LmDecoder:
    """Beam search with shallow LM fusion (pyctcdecode + kenlm): `probs [T, V]` -> text and word frames."""

    def __init__(self, vocab: Vocabulary, lm_path: str | Path, alpha: float, beta: float, beam_width: int):
        _require("kenlm")
        _require("pyctcdecode")
        from pyctcdecode import build_ctcdecoder

        from asr.runtime import silenced_stderr_fd

        if not Path(lm_path).is_file():
            raise AsrError(f"language model not found: {lm_path} (build one with `asr lm DATA_DIR --out FILE`)")
        logging.getLogger("pyctcdecode").setLevel(logging.ERROR)  # "only N unigrams" on small vocabularies
        labels = [""] + list(vocab.chars)  # class 0 is the blank, which pyctcdecode spells ""
        try:
            with silenced_stderr_fd():  # kenlm's C++ loader draws a progress bar on fd 2
                self.decoder = build_ctcdecoder(labels, str(lm_path), alpha=alpha, beta=beta)
        except OSError as err:
            raise AsrError(f"cannot read language model {lm_path}: {str(err).splitlines()[0]}") from None
        self.beam_width = beam_width

    def __call__(self, probs: np.ndarray) -> tuple[str, list[tuple[str, int, int]]]:
        """Best text and its words as `(word, start_frame, end_frame)` (end exclusive)."""
        log_probs = np.log(np.maximum(probs, LOG_FLOOR)).astype(np.float32)  # [T, V]
        text, _, word_frames, _, _ = self.decoder.decode_beams(log_probs, beam_width=self.beam_width)[0]
        return text, [(w, int(s), int(e)) for w, (s, e) in word_frames]
