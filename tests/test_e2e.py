"""End to end through the CLI: prepare -> train -> eval -> transcribe on a tiny corpus in `tmp_path`."""

from __future__ import annotations

import json
import subprocess
import sys

import jiwer
import pytest
import yaml
from conftest import REPO, TINY_OVERRIDES, demo_flacs, write_folder_corpus, write_tone
from typer.testing import CliRunner

from asr.cli import app
from asr.files import read_json, read_jsonl

runner = CliRunner()
DEMO_CONFIG = REPO / "configs" / "demo.yaml"


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def test_prepare_train_eval_transcribe(librispeech_corpus, tmp_path):
    data, run = tmp_path / "data", tmp_path / "exp"

    result = invoke("prepare", librispeech_corpus, "--out", data, "--config", DEMO_CONFIG, "--jobs", "1",
                    *sets(TINY_OVERRIDES))
    assert result.exit_code == 0, result.output
    assert "train: 12 utterances" in result.stdout and "test: 3 utterances" in result.stdout
    assert len(read_jsonl(data / "train.jsonl")) == 12 and len(read_jsonl(data / "dev.jsonl")) == 3
    assert read_json(data / "vocab.json")["blank_index"] == 0

    result = invoke("train", "--config", DEMO_CONFIG, *sets(TINY_OVERRIDES), "--set", "train.epochs=2",
                    "--data", data, "--out", run)
    assert result.exit_code == 0, result.output
    bundle = run / "bundle"
    assert f"best model: {bundle}" in result.stdout
    assert {"model.keras", "config.yaml", "vocab.json", "stats.json"} <= {p.name for p in bundle.iterdir()}
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 2 and saved["model"]["lstm_units"] == 32  # --set reached the run config
    assert len((run / "log.csv").read_text().strip().splitlines()) == 1 + 2  # header + one row per epoch
    assert "parent" not in read_json(bundle / "train.json")  # trained from random weights: no parent bundle

    report = tmp_path / "report.json"
    result = invoke("eval", "--model", bundle, "--data", data, "--split", "test", "--report", report)
    assert result.exit_code == 0, result.output
    scores = json.loads(report.read_text())
    assert scores["n_utts"] == 3
    utts = scores["utterances"]
    assert len(utts) == 3 and all(u["ref"] for u in utts)
    # the corpus rates are the utterances' errors over their reference lengths, and agree with jiwer's own
    chars = sum(u["char_sub"] + u["char_del"] + u["char_ins"] for u in utts) / sum(u["ref_chars"] for u in utts)
    words = sum(u["word_sub"] + u["word_del"] + u["word_ins"] for u in utts) / sum(u["ref_words"] for u in utts)
    refs, hyps = [u["ref"] for u in utts], [u["hyp"] for u in utts]
    assert scores["cer"] == pytest.approx(chars) and scores["cer"] == pytest.approx(jiwer.cer(refs, hyps))
    assert scores["wer"] == pytest.approx(words) and scores["wer"] == pytest.approx(jiwer.wer(refs, hyps))
    assert "CER" in result.stdout

    audio = [p for p, _ in demo_flacs(2, "test")] + [write_tone(tmp_path / "tone.wav", seconds=0.5, rate=8000)]
    result = invoke("transcribe", "-m", bundle, *audio, "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in audio]
    assert all(set(r) >= {"path", "text", "duration"} and isinstance(r["text"], str) for r in rows)

    result = invoke("transcribe", "-m", bundle, audio[0])  # one file, no --json: just the text
    assert result.exit_code == 0
    assert result.stdout.strip() == rows[0]["text"]


def test_prepare_folder_corpus_splits_by_hash(tmp_path):
    corpus = write_folder_corpus(tmp_path / "corpus", demo_flacs(20))
    result = invoke("prepare", corpus, "--out", tmp_path / "data", "--jobs", "1", "--set", "prepare.dev_fraction=0.2",
                    "--set", "prepare.test_fraction=0.2")
    assert result.exit_code == 0, result.output
    counts = {s: len(read_jsonl(tmp_path / "data" / f"{s}.jsonl")) for s in ("train", "dev", "test")}
    assert sum(counts.values()) == 20 and counts["train"] > 0


def test_transcribe_in_a_subprocess(tiny_bundle):
    """The installed entry point, as a user runs it: `python -m asr transcribe -m BUNDLE FILE`."""
    flac = demo_flacs(1, "test")[0][0]
    proc = subprocess.run([sys.executable, "-m", "asr", "transcribe", "-m", str(tiny_bundle), str(flac), "--json"],
                          capture_output=True, text=True, cwd=REPO, timeout=180)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["path"] == str(flac) and isinstance(row["text"], str)
