"""The bundled default model (`asr/models/en-synth`): it ships, fits its budget, and recognises unseen voices.

    .venv/bin/pytest tests/test_bundled_model.py -q

The clips in `tests/data/en-synth/` are six utterances of the synthetic corpus' voice-disjoint `test-unseen` set
(the first two per engine, in plan order, with at least six words: espeak-ng `en-gb-scotland`, flite `rms`, festival
`ked_diphone`), voices and sentences the model never heard in training. The bounds below are loose on purpose: they
check that the shipped model works on new voices at 16 kHz and 8 kHz, not its published error rates, which
`recipes/synth/README.md` measures on the full 300-utterance set.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
from conftest import REPO

from asr.audio import resample
from asr.bundle import BUNDLED_MODELS, DEFAULT_MODEL, bundled_models

CLIPS = REPO / "tests" / "data" / "en-synth"
MAX_BUNDLE_MB = 25.0  # the budget for a model committed to the repository
# Pooled CER over the six clips, at 16 and at 8 kHz: a model that recognises nothing scores ~1.0; the shipped
# model's scores on these clips and on the full test sets are in its card.
MAX_CER = 0.5


def references() -> dict[str, str]:
    lines = (CLIPS / "transcripts.txt").read_text(encoding="utf-8").splitlines()
    return {uid: text.lower() for uid, text in (line.split(" ", 1) for line in lines)}


def transcribe(paths: list[Path]) -> dict[str, str]:
    """`asr transcribe FILE...` in a fresh process, with no --model: utterance id -> text."""
    proc = subprocess.run([sys.executable, "-m", "asr", "transcribe", *map(str, paths), "--format", "json"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    return {Path(row["path"]).stem: row["text"] for row in rows}


def pooled_cer(hyps: dict[str, str]) -> float:
    refs = references()
    assert sorted(hyps) == sorted(refs)
    return jiwer.cer([refs[u] for u in sorted(refs)], [hyps[u] for u in sorted(refs)])


def test_the_default_model_ships_within_its_size_budget():
    assert DEFAULT_MODEL in bundled_models()
    bundle = BUNDLED_MODELS / DEFAULT_MODEL
    names = {p.name for p in bundle.iterdir()}
    assert {"model.keras", "model.tflite", "config.yaml", "vocab.json", "stats.json", "train.json",
            "README.md"} <= names
    assert sum(p.stat().st_size for p in bundle.iterdir()) / 1e6 <= MAX_BUNDLE_MB
    card = (bundle / "README.md").read_text(encoding="utf-8")  # provenance: the recipe and config that made it
    assert "recipes/synth/run.sh" in card and "recipes/synth/cpu.yaml" in card


def test_transcribe_with_no_bundle_recognises_voices_never_heard_in_training():
    cer = pooled_cer(transcribe(sorted(CLIPS.glob("*.flac"))))
    assert cer <= MAX_CER, cer


def test_8_khz_telephone_audio_needs_no_option(tmp_path):
    paths = []
    for clip in sorted(CLIPS.glob("*.flac")):
        audio, rate = sf.read(clip, dtype="float32")
        narrow = resample(audio, rate, 8000)
        paths.append(tmp_path / f"{clip.stem}.wav")
        sf.write(paths[-1], np.clip(narrow, -1, 1), 8000, subtype="PCM_16")
    assert sf.info(paths[0]).samplerate == 8000
    cer = pooled_cer(transcribe(paths))
    assert cer <= MAX_CER, cer


def plain(value: object) -> bool:
    """Only mappings, lists, strings, numbers, booleans and nulls: data that constructs no object."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


@pytest.mark.parametrize("name", ["config.yaml", "stats.json", "vocab.json", "train.json"])
def test_bundled_model_files_are_plain_data(name):
    """Nothing in the shipped bundle is code: its YAML and JSON are read by the safe loaders the toolkit uses, and
    hold plain data only (model.keras loads in safe mode: tests/test_model.py)."""
    import yaml

    text = (BUNDLED_MODELS / DEFAULT_MODEL / name).read_text(encoding="utf-8")
    data = yaml.safe_load(text) if name.endswith(".yaml") else json.loads(text)
    assert isinstance(data, dict) and plain(data)
