"""`asr prepare`: defects skipped with the right reason, corpus untouched, exit status, idempotent and resumable
re-runs (including after `kill -9`), `--num-shards` across machines, parallel == serial."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, demo_utterances, write_librispeech_corpus
from typer.testing import CliRunner

from asr.cli import app
from asr.config import load_config
from asr.errors import AsrError
from asr.files import read_jsonl
from asr.prepare import SKIP_REASONS, prepare
from asr.shards import featurise_shard, plan_shards

OVERRIDES = ["prepare.shard_size=3", "prepare.min_duration=0.1", "prepare.max_duration=4.0", "model.conv_stride=2"]
CFG = load_config(None, OVERRIDES)
RATE = 16000


def noise(seconds: float, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    return (amplitude * np.random.default_rng(seed).uniform(-1, 1, int(seconds * RATE))).astype(np.float32)


class DefectCorpus:
    """A LibriSpeech-layout corpus of good demo utterances plus one item per kind of defect.

    `expected` maps each defective id to the reason `skipped.jsonl` must give; `good` lists the ids to prepare.
    """

    def __init__(self, root: Path):
        self.root = root
        self.expected: dict[str, str] = {}
        self.good: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
        self.lines: dict[Path, list[bytes]] = {}
        for split, n in (("train", 6), ("dev", 2), ("test", 2)):
            for uid, flac, text in demo_utterances(split, n):
                self.add(split, uid, text, copy=flac, good=True)
        self.add_defects()
        for trans, lines in self.lines.items():
            trans.write_bytes(b"\n".join(lines) + b"\n")

    def chapter(self, split: str, chapter: str = "1") -> Path:
        folder = self.root / split / "900" / chapter
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def add(self, split: str, uid: str, text: str | bytes | None, *, copy: Path | None = None,
            audio: np.ndarray | None = None, raw: bytes | None = None, reason: str | None = None,
            good: bool = False, chapter: str = "1", subtype: str | None = None) -> Path:
        folder = self.chapter(split, chapter)
        path = folder / f"{uid}{copy.suffix if copy else '.wav' if audio is not None else '.flac'}"
        if copy is not None:
            shutil.copy(copy, path)
        elif audio is not None:
            sf.write(str(path), audio, RATE, subtype=subtype)
        elif raw is not None:
            path.write_bytes(raw)
        if text is not None:
            line = text if isinstance(text, bytes) else f"{uid} {text}".encode()
            self.lines.setdefault(folder / f"900-{chapter}.trans.txt", []).append(line)
        if good:
            self.good[split].append(uid)
        if reason:
            self.expected[uid] = reason
        return path

    def add_defects(self) -> None:
        flacs = [flac for _, flac, _ in demo_utterances("train", 12)[6:]]
        good_bytes = flacs[0].read_bytes()
        self.add("train", "corrupt", "SIX", raw=b"fLaC" + os.urandom(3000), reason="unreadable audio")
        self.add("train", "truncated", "SIX", raw=good_bytes[: len(good_bytes) // 2], reason="unreadable audio")
        self.add("train", "zerobytes", "SIX", raw=b"", reason="unreadable audio")
        self.add("train", "headeronly", "SIX", audio=np.zeros(0, np.float32), reason="empty audio")
        self.add("train", "silent", "SIX", audio=np.zeros(RATE, np.float32), reason="silent audio")
        nan = noise(1.0)
        nan[100:110] = np.nan
        self.add("train", "nan", "SIX", audio=nan, subtype="FLOAT", reason="non-finite samples")
        self.add("train", "notext", None, copy=flacs[1], reason="missing transcript")
        self.add("train", "emptytext", "", copy=flacs[2], reason="empty transcript")
        self.add("train", "punctonly", "?! ... --", copy=flacs[3], reason="empty transcript")
        self.add("train", "foreign", "CAF\u00c9 NO 5", copy=flacs[4], reason="out-of-alphabet characters")
        self.add("train", "latin1", b"latin1 CAF\xc9 NO", copy=flacs[5], reason="non-utf8 transcript")
        self.add("train", "noaudio", "ONE TWO", reason="missing audio")  # transcript line, no file
        (self.chapter("train") / "dirlike.flac").mkdir()
        self.add("train", "dirlike", "ONE", reason="unreadable audio")  # a folder named like audio
        first_uid = self.good["train"][0]
        self.add("train", first_uid, "ONE", copy=flacs[0], chapter="2")  # same id in another chapter
        self.expected[first_uid + "#dup"] = "duplicate id"
        self.add("train", "toolong", "ONE", audio=noise(4.5, 1), reason="too long")
        self.add("train", "tooshort", "ONE", audio=noise(0.05, 2), reason="too short")
        # 0.3 s -> 31 frames -> 16 output frames: 40 letters cannot fit.
        self.add("train", "ctclong", "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT", audio=noise(0.3, 3),
                 reason="ctc infeasible")
        # 0.5 s -> 51 frames -> 26 output frames: 20 letters fit, but 20 a's need 39 (19 blanks between repeats),
        # while the control with the same length and no repeats is prepared.
        self.add("train", "repeats", "A" * 20, audio=noise(0.5, 4), reason="ctc infeasible")
        self.add("train", "norepeats", "AB LEFT AB LEFT AB", audio=noise(0.5, 4), good=True)
        # dev text with letters no training transcript has: kept and scored (reported), never silently dropped
        self.add("dev", "unseenchars", "ZERO Q", copy=flacs[0], good=True)


@pytest.fixture
def defect_corpus(tmp_path) -> DefectCorpus:
    return DefectCorpus(tmp_path / "corpus")


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and '<dir>' for folders) under root."""
    out = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = "<dir>" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def skipped_by_id(data: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in read_jsonl(data / "skipped.jsonl"):
        out.setdefault(row["id"], []).append(row)
    return out


def test_every_defect_is_reported_with_its_reason_and_good_items_are_prepared(defect_corpus, tmp_path):
    before = tree_digest(defect_corpus.root)
    result = prepare(defect_corpus.root, tmp_path / "data", CFG, n_jobs=1, progress=False)
    data = tmp_path / "data"
    assert tree_digest(defect_corpus.root) == before  # the corpus is never modified
    skipped = skipped_by_id(data)
    for uid, reason in defect_corpus.expected.items():
        uid = uid.removesuffix("#dup")
        assert reason in [s["reason"] for s in skipped.get(uid, [])], (uid, reason, skipped.get(uid))
    assert len(defect_corpus.expected) >= 15 and len(set(defect_corpus.expected.values())) >= 13
    assert {s["reason"] for rows in skipped.values() for s in rows} <= set(SKIP_REASONS)
    for split, ids in defect_corpus.good.items():
        assert sorted(r["id"] for r in read_jsonl(data / f"{split}.jsonl")) == sorted(ids), split
        assert result.counts[split] == len(ids)
    details = {rows[0]["reason"]: rows[0]["detail"] for uid, rows in skipped.items() if uid in ("foreign", "repeats")}
    assert details["out-of-alphabet characters"] == "5\u00e9"  # the offending characters, after lower-casing
    assert "19 repeats" in details["ctc infeasible"] and "emits 26" in details["ctc infeasible"]
    assert skipped["dirlike"][0]["detail"] == "is a directory, not an audio file"
    assert result.unseen == {"unseenchars": "q"} and "unseenchars" not in skipped
    vocab = json.loads((data / "vocab.json").read_text())["chars"]
    assert "q" not in vocab and "a" in vocab  # built from the normalised training text only


def test_prepared_features_match_the_manifests(defect_corpus, tmp_path):
    prepare(defect_corpus.root, tmp_path / "data", CFG, n_jobs=1, progress=False)
    data = tmp_path / "data"
    from asr.audio import compute_mfcc, load_audio

    for split in ("train", "dev", "test"):
        for row in read_jsonl(data / f"{split}.jsonl"):
            shard = np.load(data / row["shard"], mmap_mode="r")
            feats = shard[row["row"]: row["row"] + row["n_frames"]]
            expected = compute_mfcc(load_audio(row["audio"], RATE), CFG.features)
            np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-4)  # BLAS threads vary the last bit
            assert abs(row["duration"] - len(load_audio(row["audio"], RATE)) / RATE) < 1e-3
    stats = json.loads((data / "stats.json").read_text())
    train = np.concatenate([np.load(data / r["shard"])[r["row"]: r["row"] + r["n_frames"]]
                            for r in read_jsonl(data / "train.jsonl")])
    np.testing.assert_allclose(stats["mean"], train.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats["std"], train.std(0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_features_are_librosas(tmp_path, rate):
    """prepare's audio path (soxr resampling, numpy MFCC) reproduces the librosa pipeline it replaced."""
    import librosa

    from asr.audio import compute_mfcc, load_audio

    audio = noise(1.3, 7) * np.hanning(int(1.3 * RATE)).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(str(path), librosa.resample(audio, orig_sr=RATE, target_sr=rate) if rate != RATE else audio, rate,
             subtype="FLOAT")
    ours = compute_mfcc(load_audio(path, RATE), CFG.features)
    data, _ = sf.read(str(path), dtype="float32")
    data = librosa.resample(data, orig_sr=rate, target_sr=RATE, res_type="soxr_hq") if rate != RATE else data
    f = CFG.features
    reference = librosa.feature.mfcc(y=data, sr=RATE, n_mfcc=f.n_mfcc, n_fft=f.n_fft, hop_length=f.hop_length,
                                     n_mels=f.n_mels).T  # [n_mfcc, T] -> [T, n_mfcc]
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=2e-4)


def test_cli_summary_by_reason_and_exit_status_0(defect_corpus, tmp_path):
    result = CliRunner().invoke(app, ["prepare", str(defect_corpus.root), "--out", str(tmp_path / "data"),
                                      "--jobs", "1", *sum((["--set", o] for o in OVERRIDES), [])])
    assert result.exit_code == 0, result.output
    assert " train: 7 utterances" in result.output
    summary = next(line for line in result.output.splitlines() if line.startswith("skipped "))
    assert "4 unreadable audio" in summary and "2 ctc infeasible" in summary and "1 duplicate id" in summary
    assert "skipped.jsonl" in summary


def test_strict_fails_on_out_of_alphabet_characters(defect_corpus, tmp_path):
    with pytest.raises(AsrError, match=r"--strict: 1 transcript\(s\) have characters outside text.alphabet: '5\u00e9'"):
        prepare(defect_corpus.root, tmp_path / "data", CFG, n_jobs=1, strict=True, progress=False)
    result = CliRunner().invoke(app, ["prepare", str(defect_corpus.root), "--out", str(tmp_path / "d2"), "--strict"])
    assert result.exit_code == 2 and "error: --strict" in result.output and "foreign" in result.output


def test_nothing_usable_is_a_clear_error(tmp_path):
    root = tmp_path / "bad"
    chapter = root / "train" / "1" / "1"
    chapter.mkdir(parents=True)
    (chapter / "1-1-0.flac").write_bytes(b"not audio")
    sf.write(str(chapter / "1-1-1.wav"), np.zeros(RATE, np.float32), RATE)
    shutil.copy(demo_utterances("train", 1)[0][1], chapter / "1-1-2.flac")
    (chapter / "1-1.trans.txt").write_text("1-1-0 ONE\n1-1-1 TWO\n1-1-2 !!!\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["prepare", str(root), "--out", str(tmp_path / "data"), "--jobs", "1"])
    assert result.exit_code == 2
    assert "error:" in result.output and "no usable utterances" in result.output
    assert {r["reason"] for r in read_jsonl(tmp_path / "data" / "skipped.jsonl")} == {
        "unreadable audio", "silent audio", "empty transcript"}
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["prepare", str(empty), "--out", str(tmp_path / "d2")])
    assert result.exit_code == 2 and "nothing usable to prepare (folder format" in result.output


def test_output_inside_the_corpus_or_a_file_is_refused(defect_corpus, tmp_path):
    with pytest.raises(AsrError, match="inside the corpus"):
        prepare(defect_corpus.root, defect_corpus.root / "data", CFG, n_jobs=1, progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(AsrError, match="is a file"):
        prepare(defect_corpus.root, tmp_path / "file", CFG, n_jobs=1, progress=False)


def test_a_data_dir_holds_one_corpus(folder_corpus, tmp_path):
    """Re-running on the same corpus resumes; another corpus folder is refused unless --overwrite."""
    import yaml
    from test_cli import assert_user_error

    from asr.data import PreparedData

    data, sets = tmp_path / "data", [a for o in OVERRIDES for a in ("--set", o)]
    prepare(folder_corpus, data, CFG, n_jobs=1, progress=False)
    saved = yaml.safe_load((data / "config.yaml").read_text())
    assert saved["corpus"] == str(folder_corpus.resolve())
    assert PreparedData(data).features == CFG.features  # the extra key is no trouble to the reader
    assert prepare(folder_corpus, data, CFG, n_jobs=1, progress=False).reused_shards > 0

    other = shutil.copytree(folder_corpus, tmp_path / "other")
    before = snapshot(data)
    result = CliRunner().invoke(app, ["prepare", str(other), "--out", str(data), "--jobs", "1", *sets])
    assert_user_error(result, f"--out {data} holds data prepared from {folder_corpus.resolve()}, not "
                      f"{other.resolve()}", "--overwrite")
    assert snapshot(data) == before
    (data / "corpus").mkdir()  # not prepare's: --overwrite leaves it alone (the LibriSpeech recipe keeps links here)
    result = CliRunner().invoke(app, ["prepare", str(other), "--out", str(data), "--jobs", "1", "--overwrite", *sets])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((data / "config.yaml").read_text())["corpus"] == str(other.resolve())
    assert "(0 reused from an earlier run)" in result.output and (data / "corpus").is_dir()

    del saved["corpus"]  # a data dir written before the corpus was recorded: accepted as before
    (data / "config.yaml").write_text(yaml.safe_dump(saved))
    assert prepare(folder_corpus, data, CFG, n_jobs=1, progress=False).counts["train"] > 0


def test_a_data_dir_being_prepared_is_refused_but_shards_of_one_run_share_it(folder_corpus, tmp_path):
    from test_cli import assert_user_error

    from asr.lock import lock_dir

    data = tmp_path / "data"
    with lock_dir(data, "asr prepare"):  # as another `asr prepare --out data` would hold it
        result = CliRunner().invoke(app, ["prepare", str(folder_corpus), "--out", str(data), "--jobs", "1"])
        assert_user_error(result, f"{data} is in use by asr prepare (pid {os.getpid()})")
        assert not (data / "feats").exists()
        part = prepare(folder_corpus, data, CFG, n_jobs=1, num_shards=2, shard_index=0, progress=False)
        assert part.counts == {} and list((data / "feats").glob("*.json"))  # machines of one --num-shards run
    with pytest.raises(AsrError, match="--overwrite clears --out"):
        prepare(folder_corpus, data, CFG, n_jobs=1, num_shards=2, shard_index=1, progress=False, overwrite=True)


def test_text_normalisation_settings_reach_the_manifests(tmp_path):
    flacs = [flac for _, flac, _ in demo_utterances("train", 3)]
    root = write_librispeech_corpus(tmp_path / "corpus", {"train": list(zip(flacs, ["SIX 2!", "SIX, TWO", "Six two"]))})
    plain = prepare(root, tmp_path / "plain", CFG, n_jobs=1, progress=False)
    assert [(s.reason, s.detail) for s in plain.skipped] == [("out-of-alphabet characters", "2")]
    spelled = load_config(None, [*OVERRIDES, "text.numbers_to_words=true"])
    prepare(root, tmp_path / "spelled", spelled, n_jobs=1, progress=False)
    assert [r["text"] for r in read_jsonl(tmp_path / "spelled" / "train.jsonl")] == ["six two"] * 3
    upper = load_config(None, [*OVERRIDES, "text.lowercase=false", "text.alphabet='ABCDEFGHIJKLMNOPQRSTUVWXYZ '",
                               "text.punctuation=space"])
    result = prepare(root, tmp_path / "upper", upper, n_jobs=1, progress=False)
    assert [r["text"] for r in read_jsonl(tmp_path / "upper" / "train.jsonl")] == ["SIX TWO"]
    assert sorted(s.detail for s in result.skipped) == ["2", "iotwx"]  # case is kept, so "Six two" is reported
    assert json.loads((tmp_path / "upper" / "vocab.json").read_text())["chars"] == list("IOSTWX ")


def test_an_item_that_crashes_feature_extraction_is_skipped(defect_corpus, tmp_path, monkeypatch):
    import asr.shards

    real, victim = asr.shards.load_audio, defect_corpus.good["train"][1]

    def flaky(path, *args, **kwargs):
        if Path(path).stem == victim:
            raise FloatingPointError("simulated bug")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(asr.shards, "load_audio", flaky)
    prepare(defect_corpus.root, tmp_path / "data", CFG, n_jobs=1, progress=False)
    [row] = skipped_by_id(tmp_path / "data")[victim]
    assert (row["reason"], row["detail"]) == ("feature extraction failed", "FloatingPointError: simulated bug")
    assert len(read_jsonl(tmp_path / "data" / "train.jsonl")) == len(defect_corpus.good["train"]) - 1


def test_progress_is_reported_per_utterance_in_process_and_from_workers(defect_corpus, tmp_path):
    from asr.shards import _run_pool

    jobs = plan_shards_for(defect_corpus, tmp_path)
    ticks: list[int] = []
    featurise_shard(jobs[0], ticks.append)
    assert ticks == [1] * len(jobs[0].utts)
    ticks.clear()
    metas = _run_pool(jobs[1:], 2, ticks.append)
    assert ticks == [1] * sum(len(j.utts) for j in jobs[1:]) and set(metas) == {j.name for j in jobs[1:]}


def snapshot(data: Path) -> dict[str, str]:
    """Digest of everything prepare writes (temporaries are never part of a result)."""
    return {k: v for k, v in tree_digest(data).items() if not k.endswith(".tmp")}


def test_rerun_reuses_shards_and_a_fixed_file_is_picked_up(defect_corpus, tmp_path):
    data = tmp_path / "data"
    first = prepare(defect_corpus.root, data, CFG, n_jobs=1, progress=False)
    assert first.reused_shards == 0
    before = snapshot(data)
    mtimes = {p: p.stat().st_mtime_ns for p in (data / "feats").glob("*.npy")}
    again = prepare(defect_corpus.root, data, CFG, n_jobs=1, progress=False)
    assert again.reused_shards == again.total_shards == first.total_shards
    assert snapshot(data) == before
    assert {p: p.stat().st_mtime_ns for p in (data / "feats").glob("*.npy")} == mtimes  # not even rewritten
    # Repair the corrupt file: its shard (only) is computed again and the item is now prepared.
    corrupt = next(defect_corpus.root.rglob("corrupt.flac"))
    shutil.copy(demo_utterances("train", 1)[0][1], corrupt)
    fixed = prepare(defect_corpus.root, data, CFG, n_jobs=1, progress=False)
    assert fixed.reused_shards == fixed.total_shards - 1
    assert "corrupt" in [r["id"] for r in read_jsonl(data / "train.jsonl")]
    assert "corrupt" not in skipped_by_id(data)


def test_parallel_run_equals_serial_run(defect_corpus, tmp_path):
    prepare(defect_corpus.root, tmp_path / "serial", CFG, n_jobs=1, progress=False)
    prepare(defect_corpus.root, tmp_path / "parallel", CFG, n_jobs=2, progress=False)
    assert snapshot(tmp_path / "serial") == snapshot(tmp_path / "parallel")


def test_num_shards_on_two_machines_then_a_final_run_equals_one_run(defect_corpus, tmp_path):
    prepare(defect_corpus.root, tmp_path / "single", CFG, n_jobs=1, progress=False)
    shared = tmp_path / "shared"
    part = prepare(defect_corpus.root, shared, CFG, n_jobs=1, num_shards=2, shard_index=0, progress=False)
    assert part.counts == {} and not (shared / "train.jsonl").exists()  # machine 1 still has work to do
    names = sorted(p.stem for p in (shared / "feats").glob("*.json"))
    assert names and all(n in [j.name for j in plan_shards_for(defect_corpus, shared)[::2]] for n in names)
    prepare(defect_corpus.root, shared, CFG, n_jobs=1, num_shards=2, shard_index=1, progress=False)
    final = prepare(defect_corpus.root, shared, CFG, n_jobs=1, progress=False)
    assert final.reused_shards == final.total_shards
    assert snapshot(shared) == snapshot(tmp_path / "single")
    with pytest.raises(AsrError, match="--shard-index 2 must be in"):
        prepare(defect_corpus.root, shared, CFG, num_shards=2, shard_index=2)


def plan_shards_for(corpus: DefectCorpus, feats_dir: Path) -> list:
    """The shard jobs `prepare` plans for `corpus` with CFG."""
    from asr.corpus import read_corpus
    from asr.prepare import assign_splits, normalise_transcripts

    utts, _ = normalise_transcripts(read_corpus(corpus.root).utts, CFG, strict=False)
    return plan_shards(assign_splits(utts, CFG), CFG, feats_dir)


# Run `asr prepare` in a subprocess with each utterance slowed down, so that it can be killed mid-way.
SLOW_PREPARE = """
import sys, time
import asr.shards
real = asr.shards.featurise
asr.shards.featurise = lambda utt, cfg: (time.sleep(0.04), real(utt, cfg))[1]
from asr.cli import app
app(sys.argv[1:])
"""


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    corpus = write_librispeech_corpus(tmp_path / "corpus", {
        "train": [(f, t) for _, f, t in demo_utterances("train", 24)],
        "dev": [(f, t) for _, f, t in demo_utterances("dev", 4)]})
    args = ["prepare", str(corpus), "--jobs", "1", "--set", "prepare.shard_size=2"]
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PREPARE, *args, "--out", str(killed_dir)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list((killed_dir / "feats").glob("*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    finished = len(list((killed_dir / "feats").glob("*.json")))
    assert 3 <= finished < 14 and not (killed_dir / "train.jsonl").exists()  # killed mid-way
    resumed = subprocess.run([sys.executable, "-m", "asr", *args, "--out", str(killed_dir)], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({finished} reused from an earlier run)" in resumed.stdout
    clean = subprocess.run([sys.executable, "-m", "asr", *args, "--out", str(tmp_path / "clean")], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    assert snapshot(killed_dir) == snapshot(tmp_path / "clean")


def test_split_as_puts_the_whole_corpus_in_one_split(folder_corpus, tmp_path):
    result = CliRunner().invoke(app, ["prepare", str(folder_corpus), "--out", str(tmp_path / "d"), "--split-as",
                                      "test", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(tmp_path / "d" / "test.jsonl")) == 6
    assert not read_jsonl(tmp_path / "d" / "train.jsonl") and not read_jsonl(tmp_path / "d" / "dev.jsonl")
    assert "warning: no training" not in result.output  # asked for: only to be scored
    result = CliRunner().invoke(app, ["prepare", str(folder_corpus), "--out", str(tmp_path / "e"), "--split-as",
                                      "eval"])
    assert result.exit_code == 2 and "prepare.split_as must be one of train, dev, test" in result.output


def test_a_corpus_of_a_few_utterances_still_gets_a_dev_split():
    from asr.corpus import Utterance
    from asr.prepare import assign_splits

    for n in (2, 5, 12, 30):
        utts = [Utterance(f"u{k}", f"u{k}.wav", "a") for k in range(n)]
        splits = assign_splits(utts, CFG)
        assert splits["dev"] and splits["train"], (n, {k: len(v) for k, v in splits.items()})
        assert sorted(u.id for s in splits.values() for u in s) == sorted(u.id for u in utts)
        assert splits == assign_splits(utts, CFG)  # deterministic


def test_a_full_disk_stops_prepare_with_one_line_and_a_rerun_resumes(folder_corpus, tmp_path, monkeypatch):
    from collections import namedtuple

    data, sets = tmp_path / "data", [a for o in OVERRIDES for a in ("--set", o)]
    usage, real = namedtuple("Usage", "total used free"), shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 0, 2**20) if Path(p).name == "feats" else real(p))
    result = CliRunner().invoke(app, ["prepare", str(folder_corpus), "--out", str(data), "--jobs", "1", *sets])
    assert result.exit_code == 2, result.output
    assert "\r" not in result.output  # stderr is no terminal here: no progress bar
    assert result.output.startswith(f"error: no space left on device for {data / 'feats'}/")
    assert ": needs ~" in result.output and "1 MB free" in result.output and len(result.output.splitlines()) == 1
    assert list((data / "feats").iterdir()) == []  # no shard, no temporary: nothing half-written
    monkeypatch.setattr(shutil, "disk_usage", real)
    result = CliRunner().invoke(app, ["prepare", str(folder_corpus), "--out", str(data), "--jobs", "1", *sets])
    assert result.exit_code == 0, result.output
