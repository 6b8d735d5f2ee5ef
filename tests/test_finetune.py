"""Fine-tuning a bundle: `asr prepare --like`, `asr train --init`, vocabulary growth, freezing, provenance."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import demo_flacs, write_folder_corpus
from typer.testing import CliRunner

from asr.bundle import BUNDLED_MODELS, DEFAULT_MODEL
from asr.cli import app
from asr.config import ModelConfig
from asr.finetune import bundle_hash, init_weights, layer_weights, read_parent
from asr.runtime import import_tensorflow
from asr.text import Vocabulary

runner = CliRunner()
PARENT = BUNDLED_MODELS / DEFAULT_MODEL
# Fast settings for the bundled model's size (2.4 M parameters): one epoch over 24 short demo utterances, one run: no
# second run on train + dev and no soup (train.refit and train.soup are tested on a small model in test_train.py,
# and through the preset in the adapt recipe's test).
QUICK = ["--set", "train.epochs=1", "--set", "train.batch_size=8", "--set", "train.specaug_time_masks=0",
         "--set", "train.specaug_freq_masks=0", "--set", "train.refit=false",
         "--set", "train.soup=1"]
FROZEN_LR = ["--set", "train.learning_rate=1e-12"]  # weights stay put: the epoch's loss is the starting loss


def cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def first_loss(run: Path) -> float:
    with open(run / "log.csv", encoding="utf-8") as f:
        return float(next(csv.DictReader(f))["loss"])


@pytest.fixture(scope="module")
def adapt_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 demo utterances in folder layout (no split folders)."""
    return write_folder_corpus(tmp_path_factory.mktemp("adapt") / "corpus", demo_flacs(30))


@pytest.fixture(scope="module")
def adapt_data(adapt_corpus: Path) -> Path:
    """`adapt_corpus` prepared like the bundled model (read only)."""
    out = adapt_corpus.parent / "data"
    result = cli("prepare", adapt_corpus, "--out", out, "--like", DEFAULT_MODEL, "--jobs", 1)
    assert result.exit_code == 0, result.output
    return out


def test_prepare_like_takes_the_bundles_features_text_and_vocabulary(adapt_data: Path):
    import yaml

    saved = yaml.safe_load((adapt_data / "config.yaml").read_text())
    parent = yaml.safe_load((PARENT / "config.yaml").read_text())
    assert saved["features"] == parent["features"] and saved["text"] == parent["text"]
    assert saved["model"]["conv_stride"] == parent["model"]["conv_stride"]
    # the demo transcripts lack several letters: a vocabulary derived from them would shift every index
    assert json.loads((adapt_data / "vocab.json").read_text()) == json.loads((PARENT / "vocab.json").read_text())
    assert all((adapt_data / f"{s}.jsonl").read_text().strip() for s in ("train", "dev"))


def test_characters_outside_the_bundle_are_skipped_or_grow_the_vocabulary(tmp_path: Path):
    items = demo_flacs(8)
    items[0] = (items[0][0], "café " + items[0][1])  # é: not in the bundled model's alphabet
    corpus = write_folder_corpus(tmp_path / "corpus", items)
    result = cli("prepare", corpus, "--out", tmp_path / "kept", "--like", DEFAULT_MODEL, "--jobs", 1)
    assert result.exit_code == 0, result.output
    skipped = [json.loads(line) for line in (tmp_path / "kept" / "skipped.jsonl").read_text().splitlines()]
    assert [(s["reason"], s["detail"]) for s in skipped] == [("out-of-alphabet characters", "é")]

    result = cli("prepare", corpus, "--out", tmp_path / "grown", "--like", DEFAULT_MODEL, "--grow-vocab",
                 "--split-as", "train", "--jobs", 1)
    assert result.exit_code == 0, result.output
    grown = Vocabulary.load(tmp_path / "grown" / "vocab.json")
    parent = Vocabulary.load(PARENT / "vocab.json")
    assert grown.chars == (*parent.chars, "é")  # known characters keep their indices
    assert "é" in (tmp_path / "grown" / "config.yaml").read_text(encoding="utf-8")  # the alphabet grew too

    # training on it grows the output layer; with no dev split some train utterances select the model
    result = cli("train", "--init", DEFAULT_MODEL, *QUICK, "--data", tmp_path / "grown", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "no dev split" in result.output
    import_tensorflow()
    from asr.bundle import load_bundle

    child = load_bundle(tmp_path / "run" / "bundle")
    assert child.vocab.chars[-1] == "é" and child.model.output.shape[-1] == parent.size + 1


def test_grow_vocab_needs_like(tmp_path: Path, adapt_corpus: Path):
    result = cli("prepare", adapt_corpus, "--out", tmp_path / "d", "--grow-vocab")
    assert result.exit_code == 2 and "--like" in result.output


def test_a_grown_output_layer_keeps_the_known_rows():
    import_tensorflow()
    from asr.model import build_model

    cfg = ModelConfig(conv_channels=8, lstm_units=8, lstm_layers=1)
    parent = build_model(cfg, 5, 4, [0.0] * 5, [1.0] * 5)
    child = build_model(cfg, 5, 6, [0.0] * 5, [1.0] * 5)  # two new characters
    init_weights(child, layer_weights(parent), reset_output=False)
    (pk, pb), (ck, cb) = parent.get_layer("probs").get_weights(), child.get_layer("probs").get_weights()
    np.testing.assert_array_equal(ck[:, :4], pk)
    np.testing.assert_array_equal(cb[:4], pb)
    assert not np.allclose(ck[:, 4:], 0.0)  # new rows: freshly initialised, not zero
    for name in ("conv", "blstm0"):
        for a, b in zip(child.get_layer(name).get_weights(), parent.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)

    reset = build_model(cfg, 5, 4, [0.0] * 5, [1.0] * 5)
    init_weights(reset, layer_weights(parent), reset_output=True)
    assert not np.allclose(reset.get_layer("probs").get_weights()[0], pk)
    np.testing.assert_array_equal(reset.get_layer("conv").get_weights()[0], parent.get_layer("conv").get_weights()[0])


def random_start_loss(data_dir: Path) -> float:
    """Mean per-utterance CTC loss over the train batches of the bundled model's architecture, random weights."""
    import_tensorflow()
    import keras

    from asr.batch import pad_batch
    from asr.data import BatchSource, PreparedData
    from asr.model import build_model, build_training_model

    keras.utils.set_random_seed(0)
    parent, data = read_parent(DEFAULT_MODEL), PreparedData(data_dir, stats=read_parent(DEFAULT_MODEL).stats)
    model = build_model(parent.model, data.features.n_mfcc, data.vocab.size, data.stats["mean"], data.stats["std"])
    train_model = build_training_model(model)
    source = BatchSource(data, "train", 8, parent.model.conv_stride, seed=0)
    losses = [train_model(pad_batch(source.load(idx), [source.labels[i] for i in idx], source.stride,
                                    source.pad_value)).numpy() for idx in source.epoch_batches(0)]
    return float(np.mean(np.concatenate(losses)))


def test_fine_tuning_starts_from_the_bundle_and_records_it(adapt_data: Path, tmp_path: Path):
    tuned = tmp_path / "tuned"
    result = cli("train", "--init", DEFAULT_MODEL, *QUICK, *FROZEN_LR, "--data", adapt_data, "--out", tuned)
    assert result.exit_code == 0, result.output
    assert "fine-tuning en-synth" in result.output
    # the bundle already recognises these voices; random weights start near log(V) per frame
    scratch = random_start_loss(adapt_data)
    assert first_loss(tuned) < 0.3 * scratch, (first_loss(tuned), scratch)
    info = json.loads((tuned / "bundle" / "train.json").read_text())
    assert info["parent"]["name"] == DEFAULT_MODEL and info["parent"]["sha256"] == bundle_hash(PARENT)
    assert info["data"]["train_utterances"] == len((adapt_data / "train.jsonl").read_text().splitlines())
    # the child is a bundle like any other
    result = cli("transcribe", "-m", tuned / "bundle", demo_flacs(1, "test")[0][0])
    assert result.exit_code == 0 and result.output.strip(), result.output


@pytest.mark.slow
def test_frozen_layers_keep_the_parents_weights(adapt_data: Path, tmp_path: Path):
    import_tensorflow()
    from asr.bundle import load_bundle

    out = tmp_path / "frozen"
    result = cli("train", "--init", DEFAULT_MODEL, *QUICK, "--set", "train.freeze=conv,blstm0", "--data", adapt_data,
                 "--out", out)
    assert result.exit_code == 0, result.output
    parent, child = load_bundle(PARENT).model, load_bundle(out / "bundle").model
    for a, b in zip(child.get_layer("blstm0").get_weights(), parent.get_layer("blstm0").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(child.get_layer("blstm1").get_weights()[0], parent.get_layer("blstm1").get_weights()[0])


def test_freeze_names_an_unknown_layer(adapt_data: Path, tmp_path: Path):
    result = cli("train", "--init", DEFAULT_MODEL, *QUICK, "--set", "train.freeze=lstm9", "--data", adapt_data,
                 "--out", tmp_path / "x")
    assert result.exit_code == 2 and "no layer 'lstm9'" in result.output and "blstm0" in result.output


def test_data_that_does_not_fit_the_bundle_is_refused_naming_both_sides(tiny_prepared: Path, adapt_data: Path,
                                                                       tmp_path: Path):
    result = cli("train", "--init", DEFAULT_MODEL, "--data", tiny_prepared, "--out", tmp_path / "a")
    assert result.exit_code == 2
    assert "features differ" in result.output and "n_mfcc: data 20, bundle 13" in result.output
    assert "--like en-synth" in result.output

    shuffled = tmp_path / "shuffled"
    import shutil

    shutil.copytree(adapt_data, shuffled)
    vocab = json.loads((shuffled / "vocab.json").read_text())
    vocab["chars"][:2] = vocab["chars"][1::-1]  # "ba...": every output row would mean another letter
    (shuffled / "vocab.json").write_text(json.dumps(vocab))
    result = cli("train", "--init", DEFAULT_MODEL, "--data", shuffled, "--out", tmp_path / "b")
    assert result.exit_code == 2 and "do not start with bundle en-synth's" in result.output
    assert not (tmp_path / "b").exists()  # refused before any work

    import yaml

    vocab["chars"][:2] = vocab["chars"][1::-1]  # the vocabulary fits again; the text rules do not
    (shuffled / "vocab.json").write_text(json.dumps(vocab))
    saved = yaml.safe_load((shuffled / "config.yaml").read_text())
    saved["text"]["numbers_to_words"] = False
    (shuffled / "config.yaml").write_text(yaml.safe_dump(saved))
    result = cli("train", "--init", DEFAULT_MODEL, "--data", shuffled, "--out", tmp_path / "c")
    assert result.exit_code == 2 and "(numbers_to_words: data False, bundle True)" in result.output


def test_init_refuses_another_architecture(adapt_data: Path, tmp_path: Path):
    result = cli("train", "--init", DEFAULT_MODEL, "--set", "model.lstm_units=64", "--data", adapt_data,
                 "--out", tmp_path / "x")
    assert result.exit_code == 2 and "model.lstm_units 64 (bundle en-synth: 192)" in result.output


def test_init_names_a_missing_bundle(adapt_data: Path, tmp_path: Path):
    result = cli("train", "--init", tmp_path / "nope", "--data", adapt_data, "--out", tmp_path / "x")
    assert result.exit_code == 2 and "not a model bundle" in result.output
