"""Corpus readers: each format in its exact on-disk layout, format detection, `--format` forcing, bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import demo_flacs, write_librispeech_corpus, write_tone

from asr.audio import load_audio
from asr.corpus import READERS, Listing, detect_format, read_corpus, split_of
from asr.errors import AsrError

CV_HEADER = "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\tgender\taccents" \
            "\tvariant\tlocale\tsegment"


def by_id(listing: Listing) -> dict:
    return {u.id: u for u in listing.utts}


def reasons(listing: Listing) -> dict[str, str]:
    return {s.id: s.reason for s in listing.skipped}


def write_mp3(path: Path, seconds: float = 0.5, rate: int = 48000) -> Path:
    """A real MP3 clip (libsndfile >= 1.1 writes MPEG layer III), like Common Voice's."""
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 330 * t), rate, format="MP3", subtype="MPEG_LAYER_III")
    return path


@pytest.mark.parametrize(("name", "split"), [
    ("train-clean-100", "train"), ("dev-other", "dev"), ("test_clean", "test"), ("validation", "dev"),
    ("valid", "dev"), ("eval92", "test"), ("TRAIN", "train"), ("validated", None), ("contest", None),
    ("devices", None), ("other", None), ("invalidated", None)])
def test_split_of_matches_whole_words_only(name, split):
    assert split_of(name) == split


# ---------------------------------------------------------------- LibriSpeech


def test_librispeech_layout(tmp_path):
    root = write_librispeech_corpus(tmp_path / "ls", {
        "train-clean-100": demo_flacs(3), "dev-clean": demo_flacs(2, "dev"), "test-other": demo_flacs(2, "test")})
    assert detect_format(root) == "librispeech"
    listing = read_corpus(root)
    assert listing.format == "librispeech" and not listing.skipped
    utts = by_id(listing)
    assert len(utts) == 7
    first = utts["1-2-train-clean-1000000"]
    assert (first.split, first.subset, first.text) == ("train", "train-clean-100", demo_flacs(1)[0][1])
    assert Path(first.audio).is_absolute() and Path(first.audio).is_file()
    assert {u.split for u in utts.values()} == {"train", "dev", "test"}


def test_librispeech_bad_lines_cost_one_item_each(tmp_path):
    root = write_librispeech_corpus(tmp_path / "ls", {"train": demo_flacs(3)})
    chapter = root / "train" / "1" / "2"
    trans = chapter / "1-2.trans.txt"
    lines = trans.read_bytes().splitlines()
    lines[1] = lines[1].split(b" ")[0] + b" CAF\xe9"  # Latin-1 byte: not UTF-8
    trans.write_bytes(b"\r\n".join([*lines, b"1-2-gone HELLO", b""]))  # CRLF line ends are fine too
    write_tone(chapter / "1-2-extra.wav")  # audio that no transcript lists
    write_tone(root / "train" / "1" / "3" / "1-3-0000.flac")  # a chapter whose transcript file is lost
    listing = read_corpus(root)
    assert set(by_id(listing)) == {"1-2-train0000", "1-2-train0002"}
    assert by_id(listing)["1-2-train0002"].text == demo_flacs(3)[2][1]  # no stray "\r"
    assert reasons(listing) == {"1-2-train0001": "non-utf8 transcript", "1-2-gone": "missing audio",
                                "1-2-extra": "missing transcript", "1-3-0000": "missing transcript"}


# ---------------------------------------------------------------- LJSpeech


def test_ljspeech_layout_uses_the_normalised_column(tmp_path):
    root = tmp_path / "LJSpeech-1.1"
    for uid in ("LJ001-0001", "LJ001-0002", "LJ001-0003", "LJ001-0099"):
        write_tone(root / "wavs" / f"{uid}.wav", seconds=0.3, rate=22050)
    (root / "metadata.csv").write_text(
        "LJ001-0001|Printing, in the only sense|Printing, in the only sense\n"
        "LJ001-0002|in 1869 he said|in eighteen sixty-nine he said\n"
        "LJ001-0003|no normalised column||\n"
        "LJ001-0004|no audio for this line|no audio for this line\n"
        "just one column\n", encoding="utf-8")
    assert detect_format(root) == "ljspeech"
    listing = read_corpus(root)
    utts = by_id(listing)
    assert utts["LJ001-0002"].text == "in eighteen sixty-nine he said"
    assert utts["LJ001-0003"].text == "no normalised column"  # empty third column: the raw text
    assert utts["LJ001-0001"].split is None  # LJSpeech has no splits: prepare splits by hash
    assert reasons(listing) == {"LJ001-0004": "missing audio", "just one column": "bad metadata line",
                                "LJ001-0099": "missing transcript"}


# ---------------------------------------------------------------- Common Voice


def write_commonvoice(root: Path, tables: dict[str, list[tuple[str, str]]]) -> Path:
    for name, rows in tables.items():
        lines = [CV_HEADER] + [f"c{k}\t{clip}\ts{k}\t{text}\t\t2\t0\t\t\t\t\ten\t"
                               for k, (clip, text) in enumerate(rows)]
        (root / f"{name}.tsv").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for clip, _ in rows:
            if clip and not clip.startswith("gone"):
                write_mp3(root / "clips" / clip)
    return root


def test_commonvoice_layout_with_real_mp3_clips(tmp_path):
    root = write_commonvoice(tmp_path / "cv-corpus" / "en", {
        "train": [("common_voice_en_1.mp3", 'He said "hello" twice.'), ("common_voice_en_2.mp3", "Go on")],
        "dev": [("common_voice_en_3.mp3", "Stop")], "test": [("common_voice_en_4.mp3", "Yes")],
        "validated": [("common_voice_en_9.mp3", "validated is not read when the split tables exist")],
        "other": [("common_voice_en_8.mp3", "unvalidated")]})
    (root / "train.tsv").write_text((root / "train.tsv").read_text() + "c9\tgone.mp3\ts9\tNo clip\n")
    assert detect_format(root) == "commonvoice"
    listing = read_corpus(root)
    utts = by_id(listing)
    assert set(utts) == {f"common_voice_en_{k}" for k in (1, 2, 3, 4)}
    assert utts["common_voice_en_1"].text == 'He said "hello" twice.'  # bare quotes in TSVs are text
    assert [utts[f"common_voice_en_{k}"].split for k in (1, 3, 4)] == ["train", "dev", "test"]
    assert reasons(listing) == {"gone": "missing audio"}
    audio = load_audio(utts["common_voice_en_1"].audio, 16000)  # MP3 at 48 kHz, decoded by libsndfile
    assert audio.dtype == np.float32 and abs(len(audio) - 8000) < 1200 and np.abs(audio).max() > 0.1


def test_commonvoice_mp3_corpus_prepares_end_to_end(tmp_path):
    from asr.config import load_config
    from asr.files import read_jsonl
    from asr.prepare import prepare

    root = write_commonvoice(tmp_path / "cv", {
        "train": [("a.mp3", "He said, \"hi.\""), ("b.mp3", "Go on")], "dev": [("c.mp3", "Go")],
        "test": [("d.mp3", "On")]})
    result = prepare(root, tmp_path / "data", load_config(None, ["prepare.shard_size=2"]), n_jobs=1, progress=False)
    assert result.counts == {"train": 2, "dev": 1, "test": 1} and not result.skipped
    rows = read_jsonl(tmp_path / "data" / "train.jsonl")
    assert rows[0]["text"] == "he said hi" and rows[0]["subset"] == "train"
    assert abs(rows[0]["duration"] - 0.5) < 0.06 and rows[0]["n_frames"] == 1 + int(rows[0]["duration"] * 16000) // 160


def test_commonvoice_validated_only_is_not_a_dev_split(tmp_path):
    root = write_commonvoice(tmp_path / "cv", {"validated": [("a.mp3", "One"), ("b.mp3", "Two")]})
    listing = read_corpus(root)
    assert len(listing.utts) == 2 and {u.split for u in listing.utts} == {None}  # prepare splits by hash


def test_commonvoice_bad_rows_are_skipped_one_by_one(tmp_path):
    root = write_commonvoice(tmp_path / "cv", {"train": [("a.mp3", "One"), ("b.mp3", "Two")]})
    with open(root / "train.tsv", "ab") as f:
        f.write(b"c7\tc.mp3\ts7\tCaf\xe9\n")  # not UTF-8
        f.write(b"c8\n")  # truncated row
    write_mp3(root / "clips" / "c.mp3")
    listing = read_corpus(root)
    assert set(by_id(listing)) == {"a", "b"}
    assert sorted(s.reason for s in listing.skipped) == ["bad table row", "non-utf8 transcript"]


# ---------------------------------------------------------------- DeepSpeech


def test_deepspeech_csv_layout(tmp_path):
    root = tmp_path / "ds"
    for name in ("a", "b", "c"):
        write_tone(root / "clips" / f"{name}.wav", seconds=0.4)
    absolute = write_tone(tmp_path / "elsewhere" / "d.wav", seconds=0.4)
    (root / "train.csv").write_text(
        "wav_filename,wav_filesize,transcript\n"
        "clips/a.wav,12844,hello world\n"
        f"{absolute},12844,\"hello, quoted world\"\n"
        "clips/nowhere.wav,100,no audio\n", encoding="utf-8")
    (root / "dev.csv").write_text("wav_filename,wav_filesize,transcript\nclips/b.wav,12844,dev line\n")
    (root / "test.csv").write_text("wav_filename,wav_filesize,transcript\nclips/c.wav,12844,test line\n")
    (root / "notes.csv").write_text("name,value\nthis,is not a manifest\n")  # ignored: no wav_filename column
    assert detect_format(root) == "deepspeech"
    listing = read_corpus(root)
    utts = by_id(listing)
    assert set(utts) == {"a", "b", "c", "d"}
    assert utts["d"].text == "hello, quoted world" and utts["d"].audio == str(absolute)
    assert (utts["a"].split, utts["b"].split, utts["c"].split) == ("train", "dev", "test")
    assert reasons(listing) == {"nowhere": "missing audio"}


# ---------------------------------------------------------------- NeMo


def test_nemo_manifest_layout_with_offsets(tmp_path):
    root = tmp_path / "nemo"
    long = write_tone(root / "audio" / "long.wav", seconds=3.0)
    write_tone(root / "audio" / "short.wav", seconds=0.5)
    rows = [{"audio_filepath": "audio/short.wav", "text": "short one", "duration": 0.5},
            {"audio_filepath": str(long), "text": "first part", "duration": 1.0, "offset": 0.0},
            {"audio_filepath": str(long), "text": "second part", "duration": 1.0, "offset": 1.5},
            {"audio_filepath": "audio/missing.wav", "text": "x", "duration": 1.0}]
    lines = [json.dumps(r) for r in rows] + ["{not json", json.dumps({"text": "no audio key"})]
    (root / "train_manifest.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "test_manifest.jsonl").write_bytes(
        json.dumps({"audio_filepath": "audio/short.wav", "text": "t"}).encode() + b"\n"
        + b'{"audio_filepath": "audio/short.wav", "text": "caf\xe9"}\n')
    (root / "dataset_info.json").write_text('{"name": "not a manifest"}\n')  # ignored
    assert detect_format(root) == "nemo"
    listing = read_corpus(root)
    utts = by_id(listing)
    assert set(utts) == {"short", "long", "long_00001500"}
    assert (utts["long_00001500"].offset, utts["long_00001500"].duration) == (1.5, 1.0)
    assert (utts["short"].split, utts["short"].subset) == ("train", "train_manifest")
    assert sorted(s.reason for s in listing.skipped) == [
        "bad manifest line", "bad manifest line", "missing audio", "non-utf8 transcript"]
    part = load_audio(utts["long_00001500"].audio, 16000, utts["long_00001500"].offset, 1.0)
    assert len(part) == 16000
    # the test manifest's good line has id "short" too: prepare reports that duplicate, the reader keeps both
    assert sum(u.id == "short" for u in listing.utts) == 2


# ---------------------------------------------------------------- folder layout


def test_folder_layout_txt_and_lab(tmp_path):
    root = tmp_path / "folder"
    write_tone(root / "train" / "spk1" / "a.wav")
    (root / "train" / "spk1" / "a.txt").write_text("Hello there\n", encoding="utf-8")
    write_tone(root / "test" / "b.flac")
    (root / "test" / "b.lab").write_text("label file", encoding="utf-8")
    write_tone(root / "train" / "c.ogg")  # no transcript
    (root / "train" / "d.txt").write_text("no audio for this", encoding="utf-8")
    write_tone(root / "train" / "e.wav")
    (root / "train" / "e.txt").write_bytes(b"caf\xe9")
    assert detect_format(root) == "folder"
    listing = read_corpus(root)
    utts = by_id(listing)
    assert set(utts) == {"train_spk1_a", "test_b"}
    assert (utts["train_spk1_a"].text, utts["train_spk1_a"].split) == ("Hello there", "train")
    assert (utts["test_b"].text, utts["test_b"].split) == ("label file", "test")
    assert reasons(listing) == {"train_c": "missing transcript", "train_d": "missing audio",
                                "train_e": "non-utf8 transcript"}


# ---------------------------------------------------------------- detection and forcing


def test_detection_order_and_forcing(tmp_path):
    """A LibriSpeech tree with a NeMo manifest beside it: detection picks NeMo, `--format` picks either."""
    root = write_librispeech_corpus(tmp_path / "both", {"train": demo_flacs(2)})
    flac = next(root.rglob("*.flac"))
    (root / "all.json").write_text(json.dumps({"audio_filepath": str(flac), "text": "from nemo"}) + "\n")
    assert detect_format(root) == "nemo"
    assert [u.text for u in read_corpus(root).utts] == ["from nemo"]
    assert read_corpus(root, "librispeech").format == "librispeech"
    assert len(read_corpus(root, "librispeech").utts) == 2
    assert read_corpus(root, "folder").format == "folder"


@pytest.mark.parametrize("fmt", ["ljspeech", "commonvoice"])
def test_forcing_a_format_the_layout_lacks_is_a_clear_error(tmp_path, fmt):
    root = write_librispeech_corpus(tmp_path / "ls", {"train": demo_flacs(1)})
    with pytest.raises(AsrError, match=f"not {'LJSpeech' if fmt == 'ljspeech' else 'Common Voice'} layout"):
        read_corpus(root, fmt)


def test_unknown_format_lists_the_valid_ones(tmp_path):
    with pytest.raises(AsrError, match="'wav2vec' is not known.*librispeech.*folder"):
        read_corpus(tmp_path, "wav2vec")
    assert set(READERS) == {"librispeech", "ljspeech", "commonvoice", "deepspeech", "nemo", "folder"}


def test_missing_corpus_directory(tmp_path):
    with pytest.raises(AsrError, match="corpus directory not found"):
        read_corpus(tmp_path / "nowhere")


def test_cli_format_option(tmp_path):
    from typer.testing import CliRunner

    from asr.cli import app

    root = write_librispeech_corpus(tmp_path / "ls", {"train": demo_flacs(1)})
    result = CliRunner().invoke(app, ["prepare", str(root), "--out", str(tmp_path / "out"), "--format", "kaldi"])
    assert result.exit_code == 2
    assert "error: --format 'kaldi' is not known (valid: ljspeech, commonvoice" in result.output
