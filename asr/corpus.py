"""Corpus formats -> a list of utterances (id, audio path, raw transcript, split). Read-only.

    python -c "from asr.corpus import read_corpus; print(read_corpus('recipes/demo/corpus').format)"

Each reader is one small function registered in READERS with a detector; adding a format touches
this file only. Problems with single items (missing transcript, undecodable text) are returned as
`Skipped` rows, never raised.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import AsrError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif", ".au")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Utterance:
    """One corpus item before feature extraction."""

    id: str  # unique utterance id
    audio: str  # path to the audio file
    text: str  # transcript as found in the corpus (not yet normalised)
    split: str | None = None  # train/dev/test when the corpus says so
    subset: str | None = None  # the corpus' own split name, e.g. "test-clean"
    offset: float = 0.0  # seconds into `audio` where the utterance starts
    duration: float | None = None  # seconds, when the corpus says so


@dataclass(frozen=True)
class Skipped:
    """An item that could not be used, and why."""

    id: str
    path: str
    reason: str  # short machine-readable reason, e.g. "missing transcript"
    detail: str = ""  # human detail, e.g. the offending characters


@dataclass
class Listing:
    """What a reader found: usable utterances and skipped items."""

    format: str
    utts: list[Utterance] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def split_of(name: str) -> str | None:
    """Canonical split of a folder/file name: 'train-clean-100' -> 'train', 'validation' -> 'dev'."""
    low = name.lower()
    if "train" in low:
        return "train"
    if "dev" in low or "valid" in low:
        return "dev"
    if "test" in low:
        return "test"
    return None


def _decode(raw: bytes, path: Path) -> str | None:
    """UTF-8 text (BOM stripped) or None when the bytes are not UTF-8."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _split_from_path(path: Path, root: Path) -> tuple[str | None, str | None]:
    """(split, subset) from the first path component under `root` that names a split."""
    for part in path.relative_to(root).parts[:-1]:
        if split_of(part):
            return split_of(part), part
    return None, None


def _find_audio(folder: Path, stem: str) -> Path | None:
    """The audio file `folder/stem.<suffix>` for any known suffix, or None."""
    for suffix in AUDIO_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def read_librispeech(root: Path) -> Listing:
    """`speaker/chapter/*.trans.txt` with lines `UTTID TRANSCRIPT` beside `UTTID.flac`."""
    out = Listing("librispeech")
    for trans in sorted(root.rglob("*.trans.txt")):
        split, subset = _split_from_path(trans, root)
        text = _decode(trans.read_bytes(), trans)
        listed = set()
        for n, line in enumerate((text or "").splitlines()):
            if not line.strip():
                continue
            uid, _, words = line.strip().partition(" ")
            listed.add(uid)
            audio = _find_audio(trans.parent, uid)
            if audio is None:
                out.skipped.append(Skipped(uid, str(trans), "missing audio", f"line {n + 1}"))
            else:
                out.utts.append(Utterance(uid, str(audio), words, split, subset))
        if text is None:
            out.skipped.append(Skipped(trans.name, str(trans), "non-utf8 transcript"))
        for audio in sorted(p for p in trans.parent.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
            if audio.stem not in listed and text is not None:
                out.skipped.append(Skipped(audio.stem, str(audio), "missing transcript"))
    return out


def read_folder(root: Path) -> Listing:
    """Any audio file with a same-named `.txt` or `.lab` transcript beside it."""
    out = Listing("folder")
    for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        split, subset = _split_from_path(audio, root)
        uid = str(audio.relative_to(root).with_suffix("")).replace("/", "_")
        trans = next((t for t in (audio.with_suffix(".txt"), audio.with_suffix(".lab")) if t.is_file()), None)
        if trans is None:
            out.skipped.append(Skipped(uid, str(audio), "missing transcript"))
            continue
        text = _decode(trans.read_bytes(), trans)
        if text is None:
            out.skipped.append(Skipped(uid, str(trans), "non-utf8 transcript"))
        else:
            out.utts.append(Utterance(uid, str(audio), text.strip(), split, subset))
    return out


def read_ljspeech(root: Path) -> Listing:
    """`metadata.csv` (`id|raw text|normalised text`) with audio in `wavs/id.wav`."""
    out = Listing("ljspeech")
    meta = root / "metadata.csv"
    for n, raw in enumerate(meta.read_bytes().splitlines()):
        line = _decode(raw, meta)
        if line is None:
            out.skipped.append(Skipped(f"line{n + 1}", str(meta), "non-utf8 transcript"))
            continue
        cols = line.split("|")
        if len(cols) < 2:
            continue
        uid, text = cols[0], (cols[2] if len(cols) > 2 and cols[2].strip() else cols[1])
        audio = _find_audio(root / "wavs", uid)
        if audio is None:
            out.skipped.append(Skipped(uid, str(root / "wavs" / f"{uid}.wav"), "missing audio"))
        else:
            out.utts.append(Utterance(uid, str(audio), text))
    return out


def _read_table(path: Path, delimiter: str, out: Listing) -> list[dict]:
    """Rows of a delimited file with a header; a non-UTF-8 file is reported, not raised."""
    text = _decode(path.read_bytes(), path)
    if text is None:
        out.skipped.append(Skipped(path.name, str(path), "non-utf8 transcript"))
        return []
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter, quoting=csv.QUOTE_NONE if
                               delimiter == "\t" else csv.QUOTE_MINIMAL))


def read_commonvoice(root: Path) -> Listing:
    """Mozilla Common Voice: `train/dev/test.tsv` (or `validated.tsv`) with `clips/*.mp3`."""
    out = Listing("commonvoice")
    tables = [root / f"{s}.tsv" for s in SPLITS if (root / f"{s}.tsv").is_file()] or [root / "validated.tsv"]
    for table in tables:
        split = split_of(table.stem)
        for row in _read_table(table, "\t", out):
            clip = root / "clips" / (row.get("path") or "")
            uid = Path(row.get("path") or "").stem
            if not clip.is_file():
                out.skipped.append(Skipped(uid, str(clip), "missing audio"))
            else:
                out.utts.append(Utterance(uid, str(clip), row.get("sentence") or "", split, table.stem))
    return out


def read_deepspeech(root: Path) -> Listing:
    """DeepSpeech CSVs: `wav_filename,wav_filesize,transcript`; the file name gives the split."""
    out = Listing("deepspeech")
    for table in sorted(root.glob("*.csv")):
        for row in _read_table(table, ",", out):
            audio = Path(row.get("wav_filename") or "")
            audio = audio if audio.is_absolute() else root / audio
            uid = audio.stem
            if not audio.is_file():
                out.skipped.append(Skipped(uid, str(audio), "missing audio"))
            else:
                out.utts.append(Utterance(uid, str(audio), row.get("transcript") or "", split_of(table.stem),
                                          table.stem))
    return out


def read_nemo(root: Path) -> Listing:
    """NeMo JSONL manifests: `{"audio_filepath", "text", "duration", "offset"?}` per line."""
    out = Listing("nemo")
    for manifest in sorted([*root.glob("*.json"), *root.glob("*.jsonl")]):
        for n, raw in enumerate(manifest.read_bytes().splitlines()):
            line = _decode(raw, manifest)
            if not raw.strip():
                continue
            try:
                row = json.loads(line) if line is not None else None
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict) or "audio_filepath" not in row:
                reason = "non-utf8 transcript" if line is None else "bad manifest line"
                out.skipped.append(Skipped(f"{manifest.stem}:{n + 1}", str(manifest), reason))
                continue
            audio = Path(row["audio_filepath"])
            audio = audio if audio.is_absolute() else root / audio
            offset = float(row.get("offset") or 0.0)
            uid = audio.stem if not offset else f"{audio.stem}_{int(offset * 1000):08d}"
            if not audio.is_file():
                out.skipped.append(Skipped(uid, str(audio), "missing audio"))
                continue
            dur = row.get("duration")
            out.utts.append(Utterance(uid, str(audio), str(row.get("text") or ""), split_of(manifest.stem),
                                      manifest.stem, offset, float(dur) if dur is not None else None))
    return out


def _has_header(root: Path, pattern: str, column: str) -> bool:
    """True when some file matching `pattern` in `root` starts with a header naming `column`."""
    for path in root.glob(pattern):
        with open(path, "rb") as f:
            if column.encode() in f.readline():
                return True
    return False


# format name -> (detector, reader); detection tries them in this order.
READERS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], Listing]]] = {
    "librispeech": (lambda r: next(r.rglob("*.trans.txt"), None) is not None, read_librispeech),
    "ljspeech": (lambda r: (r / "metadata.csv").is_file() and (r / "wavs").is_dir(), read_ljspeech),
    "commonvoice": (lambda r: (r / "clips").is_dir() and _has_header(r, "*.tsv", "sentence"), read_commonvoice),
    "deepspeech": (lambda r: _has_header(r, "*.csv", "wav_filename"), read_deepspeech),
    "nemo": (lambda r: _has_header(r, "*.json*", "audio_filepath"), read_nemo),
    "folder": (lambda r: True, read_folder),
}


def detect_format(root: Path) -> str:
    """Name of the first format in READERS whose detector accepts `root`."""
    return next(name for name, (detect, _) in READERS.items() if detect(root))


def read_corpus(root: str | Path, fmt: str | None = None) -> Listing:
    """Read the corpus at `root` (format detected unless given). Raises AsrError if `root` is unusable."""
    root = Path(root).absolute()  # manifests keep absolute paths: they work from any directory
    if not root.is_dir():
        raise AsrError(f"corpus directory not found: {root}")
    if fmt is not None and fmt not in READERS:
        raise AsrError(f"--format {fmt!r} is not known (valid: {', '.join(READERS)})")
    return READERS[fmt or detect_format(root)][1](root)
