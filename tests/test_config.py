"""Configuration: every shipped YAML loads; unknown keys, wrong types and object-constructing YAML fail."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from asr.config import Config, TrainConfig, config_to_dict, dump_yaml, load_config, parse_override
from asr.errors import AsrError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for folder in ("configs", "recipes") for suffix in ("*.yaml", "*.yml")
                 for p in (REPO / folder).rglob(suffix))


def test_there_are_shipped_configs():
    assert REPO / "configs" / "demo.yaml" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_yaml_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    resolved = config_to_dict(cfg)
    for section, values in data.items():  # every value written in the file reaches the config
        for key, value in (values or {}).items():
            got = resolved[section][key]
            expected = float(value) if isinstance(got, float) and isinstance(value, str) else value  # 1e-3
            assert got == expected, f"{path}: {section}.{key}"


def test_defaults_without_a_file():
    assert load_config() == Config()


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().train.epochs = 3  # type: ignore[misc]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_partial_file_keeps_other_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "train:\n  epochs: 5\n  learning_rate: 1\n"))
    assert cfg.train.epochs == 5
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)  # int widened to float
    assert cfg.train.batch_size == TrainConfig().batch_size
    assert cfg.model == Config().model


@pytest.mark.parametrize(("text", "key"), [
    ("train:\n  epochz: 3\n", "epochz"),
    ("trian:\n  epochs: 3\n", "trian"),
    ("model:\n  lstm_units: 64\n  lstm_unit: 32\n", "lstm_unit"),
])
def test_unknown_key_names_the_key_and_the_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(AsrError, match=key) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("text", "key"), [
    ("train:\n  epochs: three\n", "train.epochs"),
    ("train:\n  epochs: 2.5\n", "train.epochs"),
    ("train:\n  epochs: true\n", "train.epochs"),  # a bool is not an int
    ("train:\n  mixed_precision: 1\n", "train.mixed_precision"),
    ("train:\n  learning_rate: fast\n", "train.learning_rate"),
    ("text:\n  alphabet: [a, b]\n", "text.alphabet"),
    ("train: 3\n", "train"),
])
def test_wrong_type_fails_naming_the_key(tmp_path, text, key):
    with pytest.raises(AsrError, match=key.replace(".", r"\.")):
        load_config(write(tmp_path, text))


def test_overrides():
    cfg = load_config(REPO / "configs" / "demo.yaml", ["train.epochs=3", "train.learning_rate=1e-4",
                                                       "model.conv_channels=0", "model.conv_stride=1",
                                                       "text.alphabet=abc "])
    assert cfg.train.epochs == 3
    assert cfg.train.learning_rate == pytest.approx(1e-4)
    assert cfg.model.conv_channels == 0 and cfg.model.conv_stride == 1
    assert cfg.text.alphabet == "abc"  # YAML parsing of the value strips the trailing space
    assert cfg.model.lstm_units == load_config(REPO / "configs" / "demo.yaml").model.lstm_units  # file kept
    assert load_config(None, ["train.epochs=3", "train.epochs=4"]).train.epochs == 4  # last one wins


def test_parse_override():
    assert parse_override("train.epochs=3") == {"train": {"epochs": 3}}
    assert parse_override("train.out_dir=exp/a=b") == {"train": {"out_dir": "exp/a=b"}}


@pytest.mark.parametrize(("override", "key"), [
    ("train.epochz=3", "epochz"), ("trian.epochs=3", "trian"), ("epochs=3", "epochs")])
def test_unknown_override_key_fails(override, key):
    with pytest.raises(AsrError, match=key) as err:
        load_config(None, [override])
    assert "--set" in str(err.value)


@pytest.mark.parametrize("override", ["train.epochs=abc", "train.epochs", "train.batch_size=[1]"])
def test_bad_override_value_fails(override):
    with pytest.raises(AsrError):
        load_config(None, [override])


@pytest.mark.parametrize("text", [
    "train: !!python/object/apply:os.system ['touch {marker}']\n",
    "train:\n  epochs: !!python/object:collections.OrderedDict {{}}\n",
    "!!python/name:os.system\n",
])
def test_yaml_that_constructs_objects_is_refused(tmp_path, text):
    marker = tmp_path / "pwned"
    with pytest.raises(AsrError, match="cfg.yaml"):
        load_config(write(tmp_path, text.format(marker=marker)))
    assert not marker.exists()


@pytest.mark.parametrize("text", ["train:\n  epochs: [3\n", "train:\n\tepochs: 3\n", "- a\n- b\n"])
def test_malformed_yaml_names_the_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(AsrError, match=str(path)):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(AsrError, match="nowhere.yaml"):
        load_config(tmp_path / "nowhere.yaml")


def test_empty_file_is_defaults(tmp_path):
    assert load_config(write(tmp_path, "# nothing\n")) == Config()


def test_inconsistent_model_is_refused():
    with pytest.raises(AsrError, match="conv_stride"):
        load_config(None, ["model.conv_stride=0"])
    with pytest.raises(AsrError, match="conv_stride"):
        load_config(None, ["model.conv_channels=0"])  # stride 2 needs the conv front end


def test_dump_and_reload_round_trip(tmp_path):
    cfg = load_config(REPO / "configs" / "demo.yaml", ["train.epochs=7", "text.punctuation=space"])
    assert load_config(write(tmp_path, dump_yaml(config_to_dict(cfg)))) == cfg


@pytest.mark.parametrize(("written", "value"), [("1e-3", 1e-3), ("5E-4", 5e-4), ("2.5e2", 250.0), ("+1e1", 10.0)])
def test_exponent_floats_without_a_dot(tmp_path, written, value):
    """YAML 1.1 reads `1e-3` as a string; a float field accepts it, in the file and in --set."""
    assert load_config(write(tmp_path, f"train:\n  learning_rate: {written}\n")).train.learning_rate == value
    assert load_config(None, [f"train.learning_rate={written}"]).train.learning_rate == value
    assert load_config(None, [f"decode.lm_beta=-{written.lstrip('+')}"]).decode.lm_beta == -value  # may be negative
    with pytest.raises(AsrError, match="train.epochs"):
        load_config(None, [f"train.epochs={written}"])  # an int field does not


@pytest.mark.parametrize(("override", "valid"), [
    ("train.batch_size=0", ">= 1"), ("train.epochs=0", ">= 1"), ("train.learning_rate=0", "> 0"),
    ("train.learning_rate=-1e-3", "> 0"), ("train.warmup_epochs=-1", ">= 0"), ("train.clipnorm=-0.5", ">= 0"),
    ("train.patience=0", ">= 1"), ("train.checkpoint_minutes=-1", ">= 0"), ("train.max_skipped_batches=-1", ">= 0"),
    ("train.threads=-2", ">= 0"), ("train.specaug_time_masks=-1", ">= 0"), ("train.specaug_time_width=-1", ">= 0"),
    ("train.specaug_freq_masks=-1", ">= 0"), ("train.specaug_freq_width=-1", ">= 0"),
    ("train.tempo_perturb=0.7", "in [0, 0.5)"), ("train.vtlp=0.5", "in [0, 0.3)"),
    ("model.dropout=1", "in [0, 1)"), ("model.dropout=-0.1", "in [0, 1)"), ("model.lstm_units=0", ">= 1"),
    ("model.lstm_layers=0", ">= 1"), ("model.conv_channels=-1", ">= 0"), ("model.conv_kernel=0", ">= 1"),
    ("model.conv_stride=0", ">= 1"),
    ("features.sample_rate=0", ">= 1"), ("features.n_mfcc=0", ">= 1"), ("features.n_fft=0", ">= 1"),
    ("features.hop_length=0", ">= 1"), ("features.n_mels=0", ">= 1"),
    ("prepare.dev_fraction=-0.1", "in [0, 1]"), ("prepare.test_fraction=1.5", "in [0, 1]"),
    ("prepare.shard_size=0", ">= 1"),
    ("decode.beam_width=0", ">= 1"), ("decode.batch_size=0", ">= 1"), ("decode.chunk_seconds=0", "> 0"),
    ("train.learning_rate=.nan", "> 0"),  # NaN compares false with everything: never in range
])
def test_out_of_range_value_names_the_key_and_the_range(override, valid):
    key, value = override.split("=")
    with pytest.raises(AsrError) as err:
        load_config(None, [override])
    message = str(err.value)
    assert f"{key} must be {valid}, got " in message and "\n" not in message


@pytest.mark.parametrize("override", ["model.dropout=0", "train.warmup_epochs=0", "train.clipnorm=0",
                                      "train.threads=0", "prepare.dev_fraction=1", "model.conv_channels=0",
                                      "decode.chunk_seconds=0.5", "train.learning_rate=1e-9"])
def test_values_on_the_edge_of_their_range_are_accepted(override):
    stride = ["model.conv_stride=1"] if override.startswith("model.conv_channels") else []
    fractions = ["prepare.test_fraction=0"] if override.startswith("prepare.dev") else []
    load_config(None, [override, *stride, *fractions])


def test_range_errors_name_the_file(tmp_path):
    path = write(tmp_path, "train:\n  batch_size: -4\n")
    with pytest.raises(AsrError, match=rf"^{path}: train\.batch_size must be >= 1, got -4$"):
        load_config(path)


def test_fractions_must_leave_room_for_each_other():
    with pytest.raises(AsrError, match=r"prepare\.dev_fraction \+ prepare\.test_fraction must be <= 1"):
        load_config(None, ["prepare.dev_fraction=0.6", "prepare.test_fraction=0.5"])
    assert load_config(None, ["prepare.dev_fraction=0.5", "prepare.test_fraction=0.5"]).prepare.dev_fraction == 0.5


def test_more_mfcc_than_mel_bands_is_refused():
    with pytest.raises(AsrError, match=r"features\.n_mfcc 41 must be <= features\.n_mels 40"):
        load_config(None, ["features.n_mfcc=41"])
    assert load_config(None, ["features.n_mfcc=40"]).features.n_mfcc == 40


def test_command_line_options_are_range_checked():
    from asr.config import with_options

    with pytest.raises(AsrError, match=r"decode\.beam_width must be >= 1, got 0"):
        with_options(Config(), {"--beam-width": ("decode.beam_width", 0)})
