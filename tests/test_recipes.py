"""The corpus recipes (recipes/{librispeech,ljspeech,commonvoice}/run.sh) run end to end on fake corpora.

Each fake corpus copies the exact on-disk layout of the real one (folder and file names, transcript file
formats, table headers, audio formats: FLAC, 22.05 kHz WAV, 48 kHz MP3) with demo clips as audio, so a
recipe or reader change that would break on the real corpus breaks here. `run.sh` runs in a subprocess
with `.venv/bin` on PATH and a tiny model (TINY), from `tmp_path` so data/ and exp/ land there.

The LibriSpeech recipe runs every stage in the default suite; LJSpeech and Common Voice run their
corpus-reading stages (0-1) by default and every stage under `-m slow`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, demo_utterances

RECIPES = REPO / "recipes"
VENV_BIN = Path(sys.executable).parent
# A model that trains one epoch on a few dozen clips in seconds; shapes as in the recipes' cpu.yaml otherwise.
TINY = ["model.conv_channels=16", "model.lstm_units=16", "model.lstm_layers=1", "train.epochs=1",
        "train.batch_size=8", "prepare.shard_size=8", "decode.batch_size=16"]

# Real LibriSpeech speaker/chapter ids, one or two chapters per subset, and utterances per chapter.
LIBRISPEECH_SUBSETS = {"train-clean-100": [("19", "198"), ("26", "495")], "train-clean-360": [("100", "121669")],
                       "train-other-500": [("20", "205")], "dev-clean": [("1272", "128104")],
                       "dev-other": [("116", "288045")], "test-clean": [("1089", "134686")],
                       "test-other": [("1688", "142285")]}
LIBRISPEECH_COUNTS = {"train-clean-100": 12, "train-clean-360": 3, "train-other-500": 2, "dev-clean": 3,
                      "dev-other": 3, "test-clean": 3, "test-other": 2}
CV_HEADER = ("client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\tgender\taccents\t"
             "variant\tlocale\tsegment")  # Common Voice 17.0 and later; older releases lack some columns


def _clips(n: int, offset: int = 0) -> list[tuple[Path, str]]:
    """`n` demo (flac, TRANSCRIPT) pairs from all splits, skipping the first `offset`, varied voices."""
    pool = demo_utterances("train") + demo_utterances("dev") + demo_utterances("test")
    return [(path, text) for _, path, text in pool[offset:offset + n]]


def write_librispeech(root: Path) -> Path:
    """`LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-NNNN.flac` + `<spk>-<chapter>.trans.txt`."""
    root.mkdir(parents=True)
    for name in ("BOOKS.TXT", "CHAPTERS.TXT", "LICENSE.TXT", "README.TXT", "SPEAKERS.TXT"):
        (root / name).write_text(";; a file of the real corpus root\n", encoding="utf-8")
    used = 0
    for subset, chapters in LIBRISPEECH_SUBSETS.items():
        for spk, chapter in chapters:
            folder = root / subset / spk / chapter
            folder.mkdir(parents=True)
            lines = []
            for k, (flac, text) in enumerate(_clips(LIBRISPEECH_COUNTS[subset], used)):
                uid = f"{spk}-{chapter}-{k:04d}"
                (folder / f"{uid}.flac").write_bytes(flac.read_bytes())
                lines.append(f"{uid} {text}")
            used += LIBRISPEECH_COUNTS[subset]
            (folder / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _resampled(flac: Path, rate: int) -> np.ndarray:
    """A demo clip at `rate` Hz."""
    import soxr

    audio, sr = sf.read(str(flac), dtype="float32")
    return soxr.resample(audio, sr, rate)


def write_ljspeech(root: Path, n: int = 30) -> Path:
    """`LJSpeech-1.1/metadata.csv` (`id|raw|normalised`, no header) + `wavs/<id>.wav` (22.05 kHz, 16-bit)."""
    (root / "wavs").mkdir(parents=True)
    (root / "README").write_text("LJ Speech Dataset (a fake, for tests)\n", encoding="utf-8")
    lines = []
    for k, (flac, text) in enumerate(_clips(n)):
        uid = f"LJ{1 + k // 10:03d}-{1 + k % 10:04d}"
        sf.write(str(root / "wavs" / f"{uid}.wav"), _resampled(flac, 22050), 22050, subtype="PCM_16")
        words = text.lower().split()
        raw = f"{words[0].capitalize()}, {' '.join(words[1:])}; \"{k + 1}\"."  # raw column: digits, punctuation
        lines.append(f"{uid}|{raw}|{raw.replace(str(k + 1), '')}")  # the normalised column (used) has none
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_commonvoice(root: Path) -> Path:
    """`cv-corpus-*/en/{train,dev,test,validated,...}.tsv` + `clips/common_voice_en_<n>.mp3` (48 kHz MP3)."""
    (root / "clips").mkdir(parents=True)
    splits = {"train": _clips(24), "dev": _clips(3, 24), "test": _clips(4, 27)}
    rows: dict[str, list[str]] = {}
    durations = ["clip\tduration[ms]"]
    n = 18000000
    for split, items in splits.items():
        rows[split] = []
        for flac, text in items:
            n += 7
            clip = f"common_voice_en_{n}.mp3"
            audio = _resampled(flac, 48000)
            sf.write(str(root / "clips" / clip), audio, 48000, format="MP3")
            durations.append(f"{clip}\t{round(1000 * len(audio) / 48000)}")
            sentence = text.capitalize() + "."
            rows[split].append(f"{n:064x}\t{clip}\t{n:064x}\t{sentence}\t\t2\t0\ttwenties\tmale_masculine\t"
                               f"United States English\t\ten\t")
    for split, lines in rows.items():
        (root / f"{split}.tsv").write_text("\n".join([CV_HEADER, *lines]) + "\n", encoding="utf-8")
    validated = [line for lines in rows.values() for line in lines]
    (root / "validated.tsv").write_text("\n".join([CV_HEADER, *validated]) + "\n", encoding="utf-8")
    for name in ("invalidated", "other"):
        (root / f"{name}.tsv").write_text(CV_HEADER + "\n", encoding="utf-8")
    (root / "reported.tsv").write_text("sentence_id\tsentence\tlocale\treason\n", encoding="utf-8")
    (root / "clip_durations.tsv").write_text("\n".join(durations) + "\n", encoding="utf-8")
    return root


def run_recipe(recipe: str, corpus: Path, cwd: Path, *args: str, tiny: bool = True,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`recipes/<recipe>/run.sh CORPUS ARGS` from `cwd` with `.venv/bin` first on PATH; output captured."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHON": sys.executable, **(env or {})}
    sets = [a for s in TINY for a in ("--set", s)] if tiny else []
    cmd = ["bash", str(RECIPES / recipe / "run.sh"), str(corpus), "--jobs", "1", *sets, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def check_ok(proc: subprocess.CompletedProcess) -> str:
    """stdout of a successful run; on failure, the assertion shows both streams."""
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def manifest(path: Path) -> list[dict]:
    """Rows of a prepared manifest."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.slow
def test_librispeech_recipe_all_stages(tmp_path: Path) -> None:
    corpus = write_librispeech(tmp_path / "LibriSpeech")
    out = check_ok(run_recipe("librispeech", corpus, tmp_path))
    data, exp = tmp_path / "data" / "librispeech" / "cpu", tmp_path / "exp" / "librispeech" / "cpu"

    # Official subsets map to splits; train-clean-360 and train-other-500 are not default training sets.
    subsets = {s: sorted({r["subset"] for r in manifest(data / f"{s}.jsonl")}) for s in ("train", "dev", "test")}
    assert subsets == {"train": ["train-clean-100"], "dev": ["dev-clean", "dev-other"],
                       "test": ["test-clean", "test-other"]}
    assert len(manifest(data / "train.jsonl")) == 2 * LIBRISPEECH_COUNTS["train-clean-100"]
    assert manifest(data / "test.jsonl")[0]["text"] == manifest(data / "test.jsonl")[0]["text"].lower()

    # One report per test set, each scoring exactly that set's utterances, and the WER table.
    for s in ("test-clean", "test-other"):
        report = json.loads((exp / "eval" / f"{s}.json").read_text(encoding="utf-8"))
        assert (report["subset"], report["n_utts"]) == (s, LIBRISPEECH_COUNTS[s])
        assert 0.0 <= report["wer"] and all(u["id"].startswith(LIBRISPEECH_SUBSETS[s][0][0]) for u in
                                            report["utterances"])
    table = (exp / "results.md").read_text(encoding="utf-8")
    assert "| test-clean | 3 |" in table and "| test-other | 2 |" in table
    assert "reference:  " in out and "transcript: " in out

    # Re-running is safe: features are reused, the finished model is not retrained.
    again = check_ok(run_recipe("librispeech", corpus, tmp_path, "--stop-stage", "2"))
    assert "reused from an earlier run" in again and "trained already" in again


TRAIN_STAGE = """
set -euo pipefail
here=$1/librispeech
source "$1/lib.sh"
stop_stage=9 config=c.yaml data=d exp=$2 asr="echo asr"
train_stage 2
"""


@pytest.mark.parametrize("left,option", [(".checkpoint.old/state.json", "--resume"),
                                         ("checkpoint/state.json", "--resume"), ("bundle/model.keras", "--overwrite"),
                                         ("config.yaml", "")])
def test_train_stage_resumes_what_can_be_resumed(left: str, option: str, tmp_path: Path) -> None:
    """An interrupted run is resumed from its checkpoint, also from `.checkpoint.old` (a kill while it was replaced,
    which `asr train` puts back); one killed before its first checkpoint, with a bundle already, starts afresh."""
    exp = tmp_path / "exp"
    (exp / left).parent.mkdir(parents=True, exist_ok=True)
    (exp / left).write_text("{}")
    proc = subprocess.run(["bash", "-c", TRAIN_STAGE, "-", str(RECIPES), str(exp)], capture_output=True, text=True,
                          timeout=60)
    command = check_ok(proc).splitlines()[-1]
    assert command.startswith("asr train --config c.yaml --data d --out ")
    assert command.endswith(f" {option}" if option else f"--out {exp}")


def test_librispeech_recipe_chooses_subsets_and_reports_missing_ones(tmp_path: Path) -> None:
    corpus = write_librispeech(tmp_path / "LibriSpeech")
    # Given the folder the archives were unpacked in, the recipe finds LibriSpeech/ inside it.
    out = check_ok(run_recipe("librispeech", tmp_path, tmp_path, "--stop-stage", "1", "--train-sets",
                              "train-clean-100 train-clean-360", "--test-sets", "test-other"))
    data = tmp_path / "data" / "librispeech" / "cpu"
    assert sorted({r["subset"] for r in manifest(data / "train.jsonl")}) == ["train-clean-100", "train-clean-360"]
    assert {r["subset"] for r in manifest(data / "test.jsonl")} == {"test-other"}
    assert "train: 27 utterances" in out.replace("  ", " ")
    assert not any(p.is_symlink() for p in corpus.rglob("*"))  # the corpus itself is untouched

    (corpus / "train-clean-360").rename(tmp_path / "elsewhere")
    proc = run_recipe("librispeech", corpus, tmp_path, "--stop-stage", "0", "--train-sets", "train-clean-360")
    assert proc.returncode == 2 and "train-clean-360 not found" in proc.stderr
    proc = run_recipe("librispeech", tmp_path / "nowhere", tmp_path)
    assert proc.returncode == 2 and "corpus folder not found" in proc.stderr
    proc = run_recipe("librispeech", corpus, tmp_path, "--epochs", "3")
    assert proc.returncode == 2 and "unknown option --epochs" in proc.stderr
    proc = run_recipe("librispeech", corpus, tmp_path, "--stage", "two")
    assert proc.returncode == 2 and "whole number, got 'two'" in proc.stderr


def test_ljspeech_recipe_reads_the_corpus(tmp_path: Path) -> None:
    corpus = write_ljspeech(tmp_path / "LJSpeech-1.1")
    check_ok(run_recipe("ljspeech", corpus, tmp_path, "--stop-stage", "1"))
    data = tmp_path / "data" / "ljspeech" / "cpu"
    rows = [r for s in ("train", "dev", "test") for r in manifest(data / f"{s}.jsonl")]
    assert sorted(r["id"] for r in rows) == sorted(p.stem for p in (corpus / "wavs").glob("*.wav"))
    assert all(not any(c.isdigit() for c in r["text"]) and r["text"] == r["text"].lower() for r in rows)
    assert manifest(data / "test.jsonl") and manifest(data / "dev.jsonl")  # the tiny corpus still has both


@pytest.mark.slow
def test_ljspeech_recipe_all_stages(tmp_path: Path) -> None:
    """Also the README's launch on all local devices (MirroredStrategy; here one CPU replica)."""
    corpus = write_ljspeech(tmp_path / "LJSpeech-1.1")
    out = check_ok(run_recipe("ljspeech", corpus, tmp_path, "--set", "train.strategy=mirrored"))
    exp = tmp_path / "exp" / "ljspeech" / "cpu"
    assert "strategy: mirrored" in (exp / "config.yaml").read_text(encoding="utf-8")
    report = json.loads((exp / "eval" / "test.json").read_text(encoding="utf-8"))
    assert report["n_utts"] == len(manifest(tmp_path / "data" / "ljspeech" / "cpu" / "test.jsonl"))
    assert "| test |" in (exp / "results.md").read_text(encoding="utf-8") and "transcript: " in out


def test_commonvoice_recipe_reads_the_corpus(tmp_path: Path) -> None:
    corpus = write_commonvoice(tmp_path / "cv-corpus-17.0-2024-03-15" / "en")
    # Given the release folder, the recipe says which language folder to pass.
    proc = run_recipe("commonvoice", corpus.parent, tmp_path, "--stop-stage", "0")
    assert proc.returncode == 2 and "cv-corpus-17.0-2024-03-15/en" in proc.stderr
    check_ok(run_recipe("commonvoice", corpus, tmp_path, "--stop-stage", "1"))
    data = tmp_path / "data" / "commonvoice" / "cpu"
    for split, n in (("train", 24), ("dev", 3), ("test", 4)):
        rows = manifest(data / f"{split}.jsonl")
        tsv = (corpus / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        assert sorted(r["id"] for r in rows) == sorted(Path(line.split("\t")[1]).stem for line in tsv)
        assert len(rows) == n and all(r["text"] == r["text"].lower().strip(".") for r in rows)


@pytest.mark.slow
def test_commonvoice_recipe_all_stages(tmp_path: Path) -> None:
    """Also the README's several-machines launch (TF_CONFIG + multi_worker), with a cluster of one worker."""
    corpus = write_commonvoice(tmp_path / "cv-corpus-17.0-2024-03-15" / "en")
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    tf_config = {"cluster": {"worker": [f"localhost:{port}"]}, "task": {"type": "worker", "index": 0}}
    out = check_ok(run_recipe("commonvoice", corpus, tmp_path, "--set", "train.strategy=multi_worker",
                              env={"TF_CONFIG": json.dumps(tf_config)}))
    report = json.loads((tmp_path / "exp" / "commonvoice" / "cpu" / "eval" / "test.json").read_text("utf-8"))
    assert report["n_utts"] == 4 and "transcript: " in out


CORPUS_RECIPES = ("librispeech", "ljspeech", "commonvoice")


@pytest.mark.parametrize("path", sorted(p for r in CORPUS_RECIPES for p in (RECIPES / r).glob("*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_configs_load_and_fit_their_run_sh(path: Path) -> None:
    from asr.config import load_config

    cfg = load_config(path)
    name = f"{path.parent.name}/{path.stem}"
    assert (cfg.train.data_dir, cfg.train.out_dir) == (f"data/{name}", f"exp/{name}")  # where run.sh puts them
    gpu = path.stem.startswith("gpu")
    assert cfg.model.conv_stride == 4 and cfg.train.mixed_precision == ("auto" if gpu else False)
    assert (cfg.train.specaug_time_masks > 0) == gpu and (cfg.train.tempo_perturb > 0) == gpu


def test_projected_flops_match_the_keras_model() -> None:
    """The FLOP formula of scripts/project_gpu_time.py against the built model's own weight shapes."""
    from benchlib import build_train_model
    from project_gpu_time import n_classes, train_flops_per_audio_second

    from asr.config import load_config
    from asr.model import forward_flops_per_frame

    cfg = load_config(RECIPES / "ljspeech" / "gpu.yaml")
    model = build_train_model(cfg.model, cfg.train, cfg.features.n_mfcc, n_classes(cfg))
    # Per output frame every kernel weight is one multiply-add (2 FLOPs); the conv's runs once per output frame too.
    kernels = sum(int(np.prod(w.shape)) for w in model.trainable_weights if "kernel" in w.path)
    assert forward_flops_per_frame(cfg.model, cfg.features.n_mfcc, n_classes(cfg)) == pytest.approx(2 * kernels)
    assert n_classes(cfg) == 29
    assert train_flops_per_audio_second(cfg) == pytest.approx(3 * 25 * 2 * kernels)


@pytest.mark.slow
def test_adapt_recipe_fine_tunes_the_bundled_model_and_scores_before_and_after(tmp_path: Path) -> None:
    from conftest import demo_flacs, write_folder_corpus

    corpus = write_folder_corpus(tmp_path / "my-speech", demo_flacs(30))
    (tmp_path / "more.txt").write_text("say one two three\nstop and go back\n", encoding="utf-8")
    out = check_ok(run_recipe("adapt", corpus, tmp_path, "--set", "train.epochs=1", "--set", "train.batch_size=8",
                              "--lm-text", str(tmp_path / "more.txt"), tiny=False))
    data, exp = tmp_path / "data" / "adapt" / "my-speech", tmp_path / "exp" / "adapt" / "my-speech"
    assert json.loads((data / "vocab.json").read_text()) == json.loads(
        (REPO / "asr" / "models" / "en-synth" / "vocab.json").read_text())  # prepared --like the base model
    info = json.loads((exp / "bundle" / "train.json").read_text())
    assert info["parent"]["name"] == "en-synth"
    # the preset refits: the model learnt train + dev, for the epoch count select/ chose on dev
    assert info["refit"]["selected_by"] == str(Path("exp/adapt/my-speech/select/bundle"))
    assert [part["seed"] for part in info["soup"]] == [0, 1]  # and averages two seeds' refits
    assert info["data"]["train_utterances"] == len(manifest(data / "train.jsonl")) + len(manifest(data / "dev.jsonl"))
    before = json.loads((exp / "eval" / "before.json").read_text())
    after = json.loads((exp / "eval" / "after.json").read_text())
    assert before["n_utts"] == after["n_utts"] == len(manifest(data / "test.jsonl")) > 0
    assert before["model"].endswith("en-synth") and after["model"] == str(Path("exp/adapt/my-speech/bundle"))
    table = (exp / "results.md").read_text()
    assert "| base model (" in table and "| adapted (exp/adapt/my-speech/bundle) | greedy |" in table
    assert "reference:  " in out and "transcript: " in out
    proc = run_recipe("adapt", tmp_path / "nowhere", tmp_path, tiny=False)
    assert proc.returncode == 2 and "corpus folder not found" in proc.stderr
