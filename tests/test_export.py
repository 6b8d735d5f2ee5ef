"""`asr export`: SavedModel and TFLite models return the bundle's log-probabilities."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from asr.cli import app
from asr.errors import AsrError
from asr.inference import TFLITE_FILE, Predictor

runner = CliRunner()


@pytest.fixture(scope="module")
def bundle(tiny_bundle, tmp_path_factory):
    """A loaded copy of the tiny bundle that exports may write into."""
    from asr.bundle import load_bundle

    return load_bundle(shutil.copytree(tiny_bundle, tmp_path_factory.mktemp("export") / "bundle"))


def reference_log_probs(bundle, feats: np.ndarray) -> np.ndarray:
    probs = Predictor(bundle.model, bundle.model_cfg.conv_stride, bundle.stats["mean"], 1)([feats])[0]
    return np.log(np.maximum(probs, 1e-30))


def speech_feats(bundle) -> np.ndarray:
    """MFCC of two demo utterances back to back, float32 [T, n_mfcc]."""
    from conftest import demo_flacs

    from asr.audio import compute_mfcc, load_audio

    audio = np.concatenate([load_audio(p, bundle.features.sample_rate) for p, _ in demo_flacs(2, "test")])
    return compute_mfcc(audio, bundle.features)


@pytest.mark.parametrize("fmt", ["tflite", "savedmodel"])
def test_export_matches_bundle(bundle, fmt):
    from asr.export import default_output, export, exported_log_probs

    if fmt == "tflite":
        pytest.importorskip("ai_edge_litert")
    path = export(bundle, fmt)
    assert path == default_output(bundle.path, fmt) and path.exists()
    feats = speech_feats(bundle)[:151]  # odd length: the last output frame sees half a stride
    got = exported_log_probs(path, fmt, feats)
    ref = reference_log_probs(bundle, feats)
    assert got.shape == ref.shape == (76, bundle.vocab.size)
    assert np.abs(got - ref).max() < 1e-3
    assert np.allclose(np.exp(got).sum(axis=1), 1.0, atol=1e-4)  # log-probabilities, not logits
    if fmt == "savedmodel":
        assert (path / "vocab.json").read_text() == (bundle.path / "vocab.json").read_text()


def test_unknown_format_is_a_user_error(bundle):
    from asr.export import export

    with pytest.raises(AsrError, match="savedmodel, tflite"):
        export(bundle, "onnx")


def test_cli_export_tflite_reports_difference(tiny_bundle, tmp_path):
    pytest.importorskip("ai_edge_litert")
    bundle_dir = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    result = runner.invoke(app, ["export", str(bundle_dir)])
    assert result.exit_code == 0, result.output
    assert (bundle_dir / TFLITE_FILE).is_file()
    assert float(result.output.split("bundle: ")[1].rstrip(")\n")) < 1e-3
    missing = runner.invoke(app, ["export", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a model bundle" in missing.output
