"""`asr transcribe`: audio files, folders, patterns and standard input -> transcripts (`asr.recognize` does the work).

    asr transcribe -m exp/demo/bundle recipes/demo/corpus/test/101/1/101-1-0000.flac
    asr transcribe -m exp/demo/bundle 'recordings/**/*.wav' --format json
    arecord -f S16_LE -r 16000 | asr transcribe --stream -

Outputs (txt, JSON lines, SRT, WebVTT, TSV, `--output-dir`) are written by `asr.output`.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from asr.audio import STDIN
from asr.config import DecodeConfig
from asr.corpus import AUDIO_SUFFIXES
from asr.errors import AsrError
from asr.recognize import Recognizer, Segment, Transcript


def expand_inputs(items: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """FILE | DIR | GLOB | - arguments -> (audio paths in order, [(argument, reason)] for those matching nothing).

    A directory contributes its audio files (by suffix, recursively, sorted); a pattern its matches; `-` is
    standard input.
    """
    paths: list[str] = []
    unmatched: list[tuple[str, str]] = []
    for item in items:
        if item != STDIN and Path(item).is_dir():
            found = sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            paths += found
            unmatched += [] if found else [(item, "no audio files in this directory")]
        elif glob.has_magic(item) and not Path(item).exists():
            found = sorted(glob.glob(item, recursive=True))
            paths += found
            unmatched += [] if found else [(item, "no files match this pattern")]
        else:
            paths.append(item)  # a missing file is reported when it is read, in order
    return paths, unmatched


def transcribe_inputs(model: str | Path, paths: Sequence[str], decode: DecodeConfig | None = None,
                      runtime: str = "auto", sample_rate: int | None = None, progress: bool = False
                      ) -> Iterator[tuple[str, Segment | Transcript | AsrError]]:
    """`asr transcribe`: audio `paths` (from `expand_inputs`; "-" is stdin, raw PCM when `sample_rate` is set);
    yields `(path, Segment)` as each utterance ends, `(path, Transcript)` when a file is done, or
    `(path, AsrError)`, in order (`Recognizer.stream_many`)."""
    if paths:
        yield from Recognizer(model, decode, runtime).stream_many(paths, sample_rate, progress)
