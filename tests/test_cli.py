"""The command line: help, and user mistakes -> one line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, TINY_OVERRIDES, demo_flacs, write_tone
from typer.testing import CliRunner

from asr.cli import app
from asr.errors import AsrError

runner = CliRunner()
COMMANDS = ("prepare", "train", "eval", "transcribe", "models")


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> str:
    """Exit 2, exactly one stderr line `error: ...` containing `fragments`, no traceback anywhere."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert not isinstance(result.exception, AsrError)  # handled, not escaped
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_help_lists_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_python_dash_m_help_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "asr", "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in COMMANDS:
        assert command in proc.stdout
    assert proc.stderr == ""


def test_version():
    import asr

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"asr {asr.__version__}\n" == "asr 0.1.0\n"


def test_models_lists_the_bundled_models_without_tensorflow():
    code = ("import sys; from typer.testing import CliRunner; from asr.cli import app; "
            "r = CliRunner().invoke(app, ['models']); print(r.stdout, end=''); "
            "sys.exit(r.exit_code or 10 * ('tensorflow' in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["en-synth (default): the bundled English demonstration model; 16 kHz, "
                                        "28 characters, 3 x BiLSTM-192, dev CER 10.9 %"]


def test_models_summarises_each_bundle_from_its_files(tiny_bundle, tmp_path, monkeypatch):
    import shutil

    import asr.bundle

    monkeypatch.setattr(asr.bundle, "BUNDLED_MODELS", tmp_path / "models")
    assert invoke("models").stdout.startswith("no bundled models are installed")
    shutil.copytree(tiny_bundle, tmp_path / "models" / "b-tiny")
    shutil.copytree(tiny_bundle, tmp_path / "models" / "a-card")
    (tmp_path / "models" / "a-card" / "README.md").write_text("# a-card: a tiny test model\n\nMore text.\n")
    (tmp_path / "models" / "a-card" / "train.json").write_text('{"dev_cer": 0.5}')
    result = invoke("models")
    assert result.exit_code == 0, result.output
    card, plain = result.stdout.splitlines()
    assert card.startswith("a-card: a tiny test model; 16 kHz, ") and card.endswith(", dev CER 50.0 %")
    assert plain.startswith("b-tiny: 16 kHz, ") and " characters, " in plain and "BiLSTM-" in plain


def test_cli_import_does_not_load_tensorflow():
    code = "import sys, asr, asr.cli; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=60).returncode == 0


def test_missing_corpus_dir(tmp_path):
    assert_user_error(invoke("prepare", tmp_path / "no_such_corpus", "--out", tmp_path / "data"), "no_such_corpus")


def test_empty_corpus(tmp_path):
    corpus = tmp_path / "empty"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("no audio here\n")
    assert_user_error(invoke("prepare", corpus, "--out", tmp_path / "data"), "nothing usable")


def test_unknown_config_key_in_set(folder_corpus, tmp_path):
    result = invoke("prepare", folder_corpus, "--out", tmp_path / "data", "--set", "prepare.shard_sise=3")
    assert_user_error(result, "shard_sise", "--set")
    assert not (tmp_path / "data").exists()  # nothing was written


def test_unknown_config_key_in_file(folder_corpus, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model:\n  lstm_unitz: 3\n")
    assert_user_error(invoke("prepare", folder_corpus, "--out", tmp_path / "data", "--config", cfg),
                      "lstm_unitz", str(cfg))


def test_wrong_type_in_set(tmp_path):
    assert_user_error(invoke("train", "--set", "train.epochs=many", "--data", tmp_path), "train.epochs", "many")


def test_out_of_range_value_in_set(tmp_path):
    line = assert_user_error(invoke("train", "--set", "train.batch_size=0", "--data", tmp_path), "train.batch_size",
                             ">= 1", "got 0")
    assert str(tmp_path) not in line  # the config is refused before the data is looked at


def test_out_of_range_option_value(tmp_path):
    """Refused with the config, before the model is loaded (this one is not a bundle: that error would follow)."""
    assert_user_error(invoke("eval", "--model", tmp_path, "--data", tmp_path, "--beam-width", "0"),
                      "decode.beam_width must be >= 1, got 0")


def test_override_without_equals(tmp_path):
    assert_user_error(invoke("train", "--set", "train.epochs", "--data", tmp_path), "train.epochs")


def test_malformed_yaml(folder_corpus, tmp_path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("train:\n  epochs: [3\n")
    assert_user_error(invoke("prepare", folder_corpus, "--out", tmp_path / "data", "--config", cfg), str(cfg))


def test_yaml_object_construction_refused(folder_corpus, tmp_path):
    cfg = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    cfg.write_text(f"train: !!python/object/apply:os.system ['touch {marker}']\n")
    assert_user_error(invoke("prepare", folder_corpus, "--out", tmp_path / "data", "--config", cfg), str(cfg))
    assert not marker.exists()


def test_missing_config_file(folder_corpus, tmp_path):
    assert_user_error(invoke("prepare", folder_corpus, "--out", tmp_path / "data", "--config",
                             tmp_path / "nowhere.yaml"), "nowhere.yaml")


def test_train_without_prepared_data(tmp_path):
    assert_user_error(invoke("train", "--data", tmp_path / "nodata", "--out", tmp_path / "exp"), "nodata")


def test_paths_are_values_never_parsed_as_yaml(tmp_path):
    """`#` starts a YAML comment and `2024`, `yes`, `null` are YAML numbers, booleans and null: as option values
    they are paths all the same."""
    for name in ("p #1", "2024", "yes", "null"):
        result = invoke("train", "--data", tmp_path / name, "--out", tmp_path / "exp")
        assert_user_error(result, f"{tmp_path / name}: not a prepared data directory")


def test_eval_with_a_non_bundle_directory(tiny_prepared, tmp_path):
    not_bundle = tmp_path / "not_a_bundle"
    not_bundle.mkdir()
    assert_user_error(invoke("eval", "--model", not_bundle, "--data", tiny_prepared), "not_a_bundle", "bundle")


def test_eval_with_a_non_data_directory(tiny_bundle, tmp_path):
    assert_user_error(invoke("eval", "--model", tiny_bundle, "--data", tmp_path), str(tmp_path))


def test_eval_unknown_split(tiny_bundle, tiny_prepared):
    assert_user_error(invoke("eval", "--model", tiny_bundle, "--data", tiny_prepared, "--split", "valid"), "valid")


def test_transcribe_skips_a_bad_file_and_prints_the_others(tiny_bundle, tmp_path):
    good = [tmp_path / "a.flac", write_tone(tmp_path / "b.wav", seconds=0.7, rate=44100, channels=2)]
    good[0].write_bytes(demo_flacs(1, "test")[0][0].read_bytes())
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio\n")
    result = invoke("transcribe", "-m", tiny_bundle, good[0], bad, good[1], "--json")
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["path"] for r in rows) == sorted(map(str, good))
    assert all(isinstance(r["text"], str) for r in rows)
    assert {r["path"]: r["duration"] for r in rows}[str(good[1])] == pytest.approx(0.7, abs=1e-3)
    assert f"skipped {bad}: cannot read audio {bad}: not audio" in result.stderr and "Traceback" not in result.output


def test_transcribe_all_bad_files(tiny_bundle, tmp_path):
    result = invoke("transcribe", "-m", tiny_bundle, tmp_path / "missing.wav")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "missing.wav" in result.stderr


def test_transcribe_with_a_non_bundle(tmp_path):
    wav = write_tone(tmp_path / "a.wav")
    assert_user_error(invoke("transcribe", "--model", tmp_path, wav), "bundle")


def test_user_error_in_a_real_process_is_one_line(tmp_path):
    """With TensorFlow imported (eval), stderr still holds only the one error line: no start-up chatter."""
    proc = subprocess.run([sys.executable, "-m", "asr", "eval", "--model", str(tmp_path), "--data", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_transcribe_without_a_model_uses_the_bundled_default_model(tiny_bundle, tmp_path, monkeypatch):
    import shutil

    import asr.bundle

    audio = tmp_path / "a.flac"
    audio.write_bytes(demo_flacs(1, "test")[0][0].read_bytes())
    monkeypatch.setattr(asr.bundle, "BUNDLED_MODELS", tmp_path / "models")
    assert_user_error(invoke("transcribe", audio), "no bundled default model", "--model")
    shutil.copytree(tiny_bundle, tmp_path / "models" / asr.bundle.DEFAULT_MODEL)
    by_default = invoke("transcribe", audio, "--json")
    by_name = invoke("transcribe", "-m", asr.bundle.DEFAULT_MODEL, audio, "--json")
    by_path = invoke("transcribe", "--model", tiny_bundle, audio, "--json")
    assert by_default.exit_code == by_name.exit_code == by_path.exit_code == 0, by_default.output
    assert json.loads(by_default.stdout)["text"] == json.loads(by_name.stdout)["text"] == \
        json.loads(by_path.stdout)["text"]


def test_transcribe_positional_arguments_are_all_inputs(tiny_bundle, tmp_path, monkeypatch):
    """`asr transcribe DIR FILE`: the directory is an input like the file, never taken for a bundle."""
    import shutil

    import asr.bundle

    monkeypatch.setattr(asr.bundle, "BUNDLED_MODELS", tmp_path / "models")
    shutil.copytree(tiny_bundle, tmp_path / "models" / asr.bundle.DEFAULT_MODEL)
    folder = tmp_path / "dirA"
    folder.mkdir()
    inside = write_tone(folder / "x.wav", seconds=0.5)
    other = write_tone(tmp_path / "b.wav", seconds=0.6)
    result = invoke("transcribe", folder, other, "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == [str(inside), str(other)]


@pytest.mark.parametrize("model", ["exp/base/bundl", "en-synht"])
def test_transcribe_with_a_mistyped_model_fails_before_any_work(model, tmp_path):
    """A model that does not exist is one error naming it and the choices, not the default model's transcript;
    the inputs are not read (the missing one would otherwise be reported as skipped)."""
    line = assert_user_error(invoke("transcribe", "-m", tmp_path / model, tmp_path / "missing.wav"),
                             model, "not a model bundle", "bundled model name", "en-synth")
    assert "missing.wav" not in line
    assert_user_error(invoke("transcribe", "--model", model, tmp_path / "missing.wav"), model)


def test_transcribe_help_names_the_model_as_an_option():
    result = invoke("transcribe", "--help")
    assert result.exit_code == 0
    assert "--model" in result.stdout and "[BUNDLE]" not in result.stdout


# --- damaged bundles: one line naming the file, never a traceback -------------------------------------------


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    """A copy of the tiny bundle, to damage."""
    import shutil

    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def zip_of_something_else(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "another zip"])
def test_a_damaged_model_keras_is_one_line(damage, bundle_copy, tiny_prepared, tmp_path):
    import os

    model = bundle_copy / "model.keras"
    if damage == "random bytes":
        model.write_bytes(os.urandom(5000))
    elif damage == "truncated":
        model.write_bytes(model.read_bytes()[:2000])
    else:
        zip_of_something_else(model)
    wav = write_tone(tmp_path / "a.wav")
    assert_user_error(invoke("transcribe", "-m", bundle_copy, "--runtime", "tf", wav), f"{model}: ")
    assert_user_error(invoke("eval", "--model", bundle_copy, "--data", tiny_prepared), f"{model}: ")


def test_a_model_with_python_code_stays_refused_in_one_line(bundle_copy, tmp_path):
    import keras

    feats = keras.Input((None, 20))
    keras.Model(feats, keras.layers.Lambda(lambda x: x * 2.0)(feats)).save(bundle_copy / "model.keras")
    assert_user_error(invoke("transcribe", "-m", bundle_copy, "--runtime", "tf", write_tone(tmp_path / "a.wav")),
                      f"{bundle_copy / 'model.keras'}: refused", "Lambda", "safe mode")


@pytest.mark.parametrize("content,fragment", [('{"blank_index": 0, "chars": ["a",', "not valid JSON"),
                                              ('{"blank_index": 0}', "not a vocabulary"),
                                              ('["a", "b"]', "not a vocabulary")])
def test_a_broken_vocab_json_is_one_line(content, fragment, bundle_copy, tiny_prepared, tmp_path):
    vocab = bundle_copy / "vocab.json"
    vocab.write_text(content)
    assert_user_error(invoke("transcribe", "-m", bundle_copy, write_tone(tmp_path / "a.wav")), f"{vocab}: {fragment}")
    assert_user_error(invoke("eval", "--model", bundle_copy, "--data", tiny_prepared), f"{vocab}: {fragment}")


@pytest.mark.parametrize("content,fragment", [
    ('{"mean": [0.0], "std": [1.0]}', 'expected "mean" and "std", 20 numbers each'),
    ('{"std": []}', 'expected "mean" and "std"'), ("[", "not valid JSON")])
def test_a_broken_stats_json_is_one_line(content, fragment, bundle_copy, tiny_prepared, tmp_path):
    stats = bundle_copy / "stats.json"
    stats.write_text(content)
    assert_user_error(invoke("transcribe", "-m", bundle_copy, write_tone(tmp_path / "a.wav")), f"{stats}: {fragment}")
    assert_user_error(invoke("eval", "--model", bundle_copy, "--data", tiny_prepared), f"{stats}: {fragment}")


def test_a_truncated_model_tflite(bundle_copy, tiny_bundle, tmp_path):
    """--runtime litert: one line naming the file; auto: a warning, then model.keras does the work."""
    from asr.inference import TFLITE_FILE, litert_available

    if not litert_available():
        pytest.skip("ai-edge-litert not installed")
    tflite = bundle_copy / TFLITE_FILE
    tflite.write_bytes(tflite.read_bytes()[:3000])
    audio = demo_flacs(1, "test")[0][0]
    assert_user_error(invoke("transcribe", "-m", bundle_copy, "--runtime", "litert", audio),
                      f"{tflite}: not a valid TFLite model", f"asr export {bundle_copy} --format tflite")
    result = invoke("transcribe", "-m", bundle_copy, audio)
    assert result.exit_code == 0, result.output
    [warning] = result.stderr.splitlines()
    assert warning.startswith(f"warning: {tflite}: not a valid TFLite model") and "using model.keras" in warning
    assert result.stdout == invoke("transcribe", "-m", tiny_bundle, "--runtime", "tf", audio).stdout


def test_train_refuses_a_features_or_text_section_the_data_was_not_prepared_with(tiny_prepared, tmp_path):
    """Training takes features and text rules from the prepared data; a config that says otherwise is no silent
    no-op."""
    for setting, message in (("features.n_mfcc=13", "features.n_mfcc 13 (data: 20)"),
                             ("text.numbers_to_words=true", "text.numbers_to_words True (data: False)")):
        tiny = [a for o in TINY_OVERRIDES for a in ("--set", o)]
        result = invoke("train", "--config", REPO / "configs" / "demo.yaml", *tiny, "--set", setting,
                        "--data", tiny_prepared, "--out", tmp_path / "run")
        assert_user_error(result, message, "prepare again")
    assert not (tmp_path / "run").exists()
