"""Transcripts as text: plain, JSON lines, SRT and WebVTT subtitles, TSV; and where `--output-dir` writes them.

    asr transcribe talk.wav --format vtt --output-dir subs/     # subs/talk.vtt

Subtitle cues follow utterances: a cue holds words of one utterance only (never words from both sides of a pause)
and at most CUE_MAX_SECONDS and CUE_MAX_CHARS of them (a long utterance gets several cues). TSV is whisper's:
`start<TAB>end<TAB>text`, times in integer milliseconds, one row per cue under a header row.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from asr.errors import AsrError
from asr.recognize import Segment, Transcript, Word

FORMATS = ("txt", "json", "srt", "vtt", "tsv")
CUE_MAX_SECONDS, CUE_MAX_CHARS = 6.0, 42  # one subtitle cue at most this long / this many characters


def cues(segments: Sequence[Segment]) -> list[tuple[float, float, str]]:
    """`(start, end, text)` subtitle cues: each segment's words grouped into cues of at most CUE_MAX_SECONDS
    and CUE_MAX_CHARS; a cue never holds words of two segments."""
    out = []
    for segment in segments:
        out += [(c[0].start, c[-1].end, " ".join(w.word for w in c)) for c in _group(segment.words)]
    return out


def _group(words: Sequence[Word]) -> list[list[Word]]:
    groups: list[list[Word]] = []
    for w in words:
        cue = groups[-1] if groups else None
        if cue and w.end - cue[0].start <= CUE_MAX_SECONDS and \
                sum(len(x.word) + 1 for x in cue) + len(w.word) <= CUE_MAX_CHARS:
            cue.append(w)
        else:
            groups.append([w])
    return groups


def timestamp(seconds: float, decimal: str = ",") -> str:
    """`HH:MM:SS,mmm` (SRT) or, with `decimal="."`, `HH:MM:SS.mmm` (WebVTT)."""
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{decimal}{ms % 1000:03d}"


def format_transcript(t: Transcript, fmt: str, with_path: bool = False) -> str:
    """The text for one file: txt (`PATH<TAB>text` when `with_path`), a JSON line, SRT, WebVTT or TSV."""
    if fmt == "json":
        return json.dumps(t.to_json(), ensure_ascii=False)
    if fmt == "srt":
        return "\n".join(f"{k}\n{timestamp(a)} --> {timestamp(b)}\n{text}\n"
                         for k, (a, b, text) in enumerate(cues(t.segments), start=1))
    if fmt == "vtt":
        return "WEBVTT\n\n" + "\n".join(f"{timestamp(a, '.')} --> {timestamp(b, '.')}\n{text}\n"
                                        for a, b, text in cues(t.segments))
    if fmt == "tsv":
        return "\n".join(["start\tend\ttext"] + [f"{round(1000 * a)}\t{round(1000 * b)}\t{text}"
                                                 for a, b, text in cues(t.segments)])
    return f"{t.path}\t{t.text}" if with_path else t.text


def format_segment(path: str, segment: Segment) -> str:
    """One JSON line for `--stream`: `{"path", "start", "end", "text", "words"}`."""
    return json.dumps({"path": path, **segment.to_json()}, ensure_ascii=False)


def output_paths(paths: Sequence[str], out_dir: Path, fmt: str) -> dict[str, Path]:
    """Where `--output-dir` writes each input's transcript, so that no result overwrites another.

    Like whisper and Vosk: OUT/x.FMT for x.wav, while the inputs' names are unique. When two files share a name,
    every transcript keeps its folder below the inputs' common folder (a/x.wav -> OUT/a/x.txt, b/x.wav ->
    OUT/b/x.txt) and files of one folder that differ only in suffix keep it (c/y.wav, c/y.flac ->
    OUT/c/y.wav.txt, OUT/c/y.flac.txt). Standard input has no name to write under: refused.
    """
    if "-" in paths:
        raise AsrError("--output-dir names each transcript after its file; standard input (-) has no name: "
                       "leave out --output-dir and redirect the output instead")
    files = {p: Path(p).resolve() for p in paths}
    unique = set(files.values())
    if len({f.stem for f in unique}) == len(unique):
        targets = {p: out_dir / f"{f.stem}.{fmt}" for p, f in files.items()}
    else:
        root = Path(os.path.commonpath([f.parent for f in unique]))
        bases = Counter(f.with_suffix("") for f in unique)
        names = {f: f.name if bases[f.with_suffix("")] > 1 else f.stem for f in unique}
        targets = {p: out_dir / f.parent.relative_to(root) / f"{names[f]}.{fmt}" for p, f in files.items()}
    first: dict[Path, str] = {}
    for p, target in targets.items():
        other = first.setdefault(target, p)
        if files[other] != files[p]:  # only names like x.wav.mp3 beside x.wav and x.flac get here
            raise AsrError(f"--output-dir: {other} and {p} would both be written to {target}; rename one of them")
    return targets
