"""Corpus formats -> a list of utterances (id, audio path, raw transcript, split). Read-only.

    python -c "from asr.corpus import read_corpus; print(read_corpus('recipes/demo/corpus').format)"

Formats (detected in this order, or forced with `asr prepare --format NAME`):

    ljspeech     metadata.csv (`id|raw text|normalised text`) + wavs/ID.wav
    commonvoice  train.tsv/dev.tsv/test.tsv (else validated.tsv) with `path` and `sentence` + clips/*.mp3
    deepspeech   *.csv with `wav_filename,wav_filesize,transcript`; the file name gives the split
    nemo         *.json/*.jsonl manifests: {"audio_filepath", "text", "duration", "offset"?} per line
    librispeech  */*.trans.txt with lines `UTTID TRANSCRIPT` beside UTTID.flac
    folder       any audio file with a same-named .txt or .lab transcript beside it

Each reader is one small function registered in READERS with a detector; adding a format touches
this file only. Problems with single items (missing audio or transcript, bytes that are not UTF-8, a
malformed line) are returned as `Skipped` rows, never raised: one bad line costs one item, not the
file. Only a layout the forced format cannot read at all raises AsrError.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from asr.config import SPLITS
from asr.errors import AsrError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif", ".au")
# Words in a folder/file name that mark a split; whole words only, so "validated" or "contest" mark none.
SPLIT_WORDS = {"train": {"train", "training"}, "dev": {"dev", "devel", "development", "valid", "validation", "val"},
               "test": {"test", "testing", "eval", "evaluation"}}


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

    def skip(self, uid: str, path: Path | str, reason: str, detail: str = "") -> None:
        """Record one unusable item."""
        self.skipped.append(Skipped(uid, str(path), reason, detail))


def split_of(name: str) -> str | None:
    """Split named by a folder/file name: 'train-clean-100' -> 'train', 'validation' -> 'dev', 'eval92' -> 'test'."""
    words = set(re.findall(r"[a-z]+", name.lower()))
    return next((split for split, marks in SPLIT_WORDS.items() if words & marks), None)


def _decode(raw: bytes) -> str:
    """UTF-8 text with a BOM stripped; undecodable bytes become lone surrogates (see `_is_utf8`)."""
    return raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def _is_utf8(text: str) -> bool:
    """False when `text` came from bytes that were not UTF-8 (it holds surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """`text` with undecodable bytes shown as U+FFFD, for ids and details."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of the non-blank lines of a text file; bytes decoded as by `_decode`."""
    for n, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        line = _decode(raw).rstrip("\r")
        if line.strip():
            yield n, line


def _walk(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """(folder, sorted file names, sorted sub-folder names) for every folder under `root`, in sorted order."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        yield Path(folder), sorted(files), list(dirs)


def _is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES


def _audio_by_stem(folder: Path, names: list[str]) -> dict[str, Path]:
    """stem -> path of the entries of `folder` named like audio (folders too: they fail to load, reported)."""
    out: dict[str, Path] = {}
    for name in sorted((n for n in names if _is_audio_name(n)), key=lambda n: AUDIO_SUFFIXES.index(
            os.path.splitext(n)[1].lower())):
        out.setdefault(os.path.splitext(name)[0], folder / name)
    return out


def _split_from_path(folder: Path, root: Path) -> tuple[str | None, str | None]:
    """(split, subset) from the first folder under `root` (inclusive of `folder`) whose name marks a split."""
    for part in folder.relative_to(root).parts:
        if split_of(part):
            return split_of(part), part
    return None, None


def _resolve(root: Path, name: str) -> Path:
    """An audio path from a table or manifest: absolute as given, relative to the corpus root otherwise."""
    path = Path(name)
    return path if path.is_absolute() else root / path


def read_librispeech(root: Path) -> Listing:
    """`speaker/chapter/*.trans.txt` with lines `UTTID TRANSCRIPT` beside `UTTID.flac`."""
    out = Listing("librispeech")
    for folder, files, dirs in _walk(root):
        transcripts = [name for name in files if name.endswith(".trans.txt")]
        audio, listed = _audio_by_stem(folder, files + dirs), set()
        split, subset = _split_from_path(folder, root)
        for trans in transcripts:
            for n, line in _lines(folder / trans):
                uid, _, words = line.strip().partition(" ")
                listed.add(uid)
                if not _is_utf8(line):
                    out.skip(_printable(uid), folder / trans, "non-utf8 transcript", f"line {n}")
                elif uid not in audio:
                    out.skip(uid, folder / trans, "missing audio", f"line {n}: no {uid}.flac (or other audio)")
                else:
                    out.utts.append(Utterance(uid, str(audio[uid]), words, split, subset))
        for stem, path in audio.items():
            if stem not in listed:
                where = f"not listed in {', '.join(transcripts)}" if transcripts else "no *.trans.txt in its folder"
                out.skip(stem, path, "missing transcript", where)
    return out


def read_folder(root: Path) -> Listing:
    """Any audio file with a same-named `.txt` or `.lab` transcript beside it."""
    out = Listing("folder")
    for folder, files, dirs in _walk(root):
        audio = _audio_by_stem(folder, files + dirs)
        split, subset = _split_from_path(folder, root)
        prefix = "_".join(folder.relative_to(root).parts)
        texts = {os.path.splitext(n)[0]: folder / n for suffix in (".lab", ".txt") for n in files if n.endswith(suffix)}
        for name in (n for n in files + dirs if _is_audio_name(n)):
            stem = os.path.splitext(name)[0]
            uid = f"{prefix}_{stem}" if prefix else stem
            if stem not in texts:
                out.skip(uid, folder / name, "missing transcript", f"no {stem}.txt or {stem}.lab beside it")
                continue
            text = _decode(texts[stem].read_bytes())
            if not _is_utf8(text):
                out.skip(uid, texts[stem], "non-utf8 transcript")
            else:
                out.utts.append(Utterance(uid, str(folder / name), text.strip(), split, subset))
        for stem, path in texts.items():
            if stem not in audio:
                out.skip(f"{prefix}_{stem}" if prefix else stem, path, "missing audio", "no audio file beside it")
    return out


def read_ljspeech(root: Path) -> Listing:
    """`metadata.csv` (`id|raw text|normalised text`) with audio in `wavs/id.wav`; the normalised text is used."""
    out, meta, wavs = Listing("ljspeech"), root / "metadata.csv", root / "wavs"
    if not meta.is_file() or not wavs.is_dir():
        raise AsrError(f"{root}: not LJSpeech layout (needs metadata.csv and wavs/); try another --format")
    audio, listed = _audio_by_stem(wavs, sorted(os.listdir(wavs))), set()
    for n, line in _lines(meta):
        cols = line.split("|")
        uid = _printable(cols[0].strip())
        listed.add(cols[0].strip())
        if len(cols) < 2:
            out.skip(uid or f"line{n}", meta, "bad metadata line", f"line {n}: expected id|text|normalised text")
        elif not _is_utf8(line):
            out.skip(uid, meta, "non-utf8 transcript", f"line {n}")
        elif uid not in audio:
            out.skip(uid, wavs / f"{uid}.wav", "missing audio", f"metadata.csv line {n}")
        else:
            out.utts.append(Utterance(uid, str(audio[uid]), cols[2] if len(cols) > 2 and cols[2].strip() else cols[1]))
    for stem, path in audio.items():
        if stem not in listed:
            out.skip(stem, path, "missing transcript", "not listed in metadata.csv")
    return out


class _Tsv(csv.excel_tab):
    """Tab-separated, quotes are text: Common Voice sentences hold bare `"`."""

    quoting = csv.QUOTE_NONE


def _read_table(path: Path, delimiter: str, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str] | None]]:
    """(line number, row or None when the line cannot be parsed) of a delimited file with a header.

    Each line is parsed on its own, so one malformed line (a stray quote, a NUL byte) costs one row,
    not the rest of the file. Raises AsrError when the header lacks one of `columns`.
    """
    dialect = _Tsv if delimiter == "\t" else csv.excel
    lines = list(_lines(path))
    header = next(csv.reader([lines[0][1]], dialect)) if lines else []
    missing = [c for c in columns if c not in header]
    if missing:
        raise AsrError(f"{path}: header has no column {missing[0]!r} (found: {', '.join(header) or 'nothing'}); "
                       "is this the right --format?")
    rows: list[tuple[int, dict[str, str] | None]] = []
    for n, line in lines[1:]:
        try:
            values = next(csv.reader([line], dialect))
        except csv.Error:
            values = []
        row = dict(zip(header, values))
        rows.append((n, row if all(c in row for c in columns) else None))
    return rows


def _row_problem(row: dict | None, columns: tuple[str, ...]) -> str | None:
    """The reason a table row cannot be used (malformed, empty audio name, non-UTF-8), or None."""
    if row is None or not row[columns[0]].strip():
        return "bad table row"
    return None if all(_is_utf8(row[c]) for c in columns) else "non-utf8 transcript"


def _table_items(root: Path, table: Path, delimiter: str, columns: tuple[str, str], out: Listing,
                 audio_of: Callable[[str], Path]) -> Iterator[tuple[str, Path, str]]:
    """(id, audio, transcript) of the usable rows of `table`; columns are (audio name, transcript)."""
    for n, row in _read_table(table, delimiter, columns):
        problem = _row_problem(row, columns)
        name = (row or {}).get(columns[0], "")
        uid = _printable(Path(name).stem) or f"{table.name}:{n}"
        if problem:
            out.skip(uid, table, problem, f"line {n}")
        elif not audio_of(name).exists():
            out.skip(uid, audio_of(name), "missing audio", f"{table.name} line {n}")
        else:
            yield uid, audio_of(name), row[columns[1]]  # type: ignore[index]


def _clip(root: Path, name: str) -> Path:
    """A Common Voice clip; early releases list clip names without the ".mp3"."""
    clip = root / "clips" / name
    return clip.with_name(f"{name}.mp3") if not Path(name).suffix and not clip.exists() else clip


def read_commonvoice(root: Path) -> Listing:
    """Mozilla Common Voice: `train/dev/test.tsv` (else `validated.tsv`) with `path` and `sentence`, `clips/*.mp3`."""
    out = Listing("commonvoice")
    tables = [root / f"{s}.tsv" for s in SPLITS if (root / f"{s}.tsv").is_file()] or [root / "validated.tsv"]
    if not tables[0].is_file() or not (root / "clips").is_dir():
        raise AsrError(f"{root}: not Common Voice layout (needs train/dev/test.tsv or validated.tsv, and clips/)")
    for table in tables:
        for uid, clip, text in _table_items(root, table, "\t", ("path", "sentence"), out, lambda n: _clip(root, n)):
            out.utts.append(Utterance(uid, str(clip), text, split_of(table.stem), table.stem))
    return out


def read_deepspeech(root: Path) -> Listing:
    """DeepSpeech CSVs: `wav_filename,wav_filesize,transcript` (paths relative to the CSV); name gives the split."""
    out = Listing("deepspeech")
    for table in sorted(p for p in root.glob("*.csv") if p.is_file() and _has_header(p, "wav_filename")):
        for uid, audio, text in _table_items(root, table, ",", ("wav_filename", "transcript"), out,
                                             lambda n: _resolve(root, n)):
            out.utts.append(Utterance(uid, str(audio), text, split_of(table.stem), table.stem))
    return out


def _manifest_row(line: str) -> tuple[dict | None, str]:
    """(row, "") for a usable NeMo manifest line, else (None, why not)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        return None, f"not JSON: {err.msg}"
    if not isinstance(row, dict) or not isinstance(row.get("audio_filepath"), str):
        return None, "no audio_filepath"
    try:
        row["offset"] = float(row.get("offset") or 0.0)
        row["duration"] = None if row.get("duration") is None else float(row["duration"])
    except (TypeError, ValueError):
        return None, "offset/duration is not a number"
    return row, ""


def read_nemo(root: Path) -> Listing:
    """NeMo JSONL manifests: `{"audio_filepath", "text", "duration", "offset"?}` per line."""
    out = Listing("nemo")
    for manifest in sorted(p for p in [*root.glob("*.json"), *root.glob("*.jsonl")] if p.is_file()
                           and _has_header(p, "audio_filepath")):
        for n, line in _lines(manifest):
            row, why = _manifest_row(line) if _is_utf8(line) else (None, "")
            if row is None:
                reason = "bad manifest line" if why else "non-utf8 transcript"
                out.skip(f"{manifest.stem}:{n}", manifest, reason, f"line {n}{': ' + why if why else ''}")
                continue
            audio = _resolve(root, row["audio_filepath"])
            uid = audio.stem if not row["offset"] else f"{audio.stem}_{int(row['offset'] * 1000):08d}"
            if not audio.exists():
                out.skip(uid, audio, "missing audio", f"{manifest.name} line {n}")
                continue
            out.utts.append(Utterance(uid, str(audio), str(row.get("text") or ""), split_of(manifest.stem),
                                      manifest.stem, row["offset"], row["duration"]))
    return out


def _has_header(path: Path, column: str) -> bool:
    """True when the first line of file `path` names `column`."""
    with open(path, "rb") as f:
        return column.encode() in f.readline()


def _any_header(root: Path, pattern: str, column: str) -> bool:
    """True when some file matching `pattern` in `root` starts with a line naming `column`."""
    return any(_has_header(p, column) for p in root.glob(pattern) if p.is_file())


# format name -> (detector, reader); detection tries them in this order (cheap root-level checks first).
READERS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], Listing]]] = {
    "ljspeech": (lambda r: (r / "metadata.csv").is_file() and (r / "wavs").is_dir(), read_ljspeech),
    "commonvoice": (lambda r: (r / "clips").is_dir() and _any_header(r, "*.tsv", "sentence"), read_commonvoice),
    "deepspeech": (lambda r: _any_header(r, "*.csv", "wav_filename"), read_deepspeech),
    "nemo": (lambda r: _any_header(r, "*.json*", "audio_filepath"), read_nemo),
    "librispeech": (lambda r: next(r.rglob("*.trans.txt"), None) is not None, read_librispeech),
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
