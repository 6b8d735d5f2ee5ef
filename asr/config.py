"""Configuration: YAML (plain data only) -> nested frozen dataclasses, one per stage.

    asr train --config configs/demo.yaml --set train.epochs=3

Unknown keys and wrong types are errors (`AsrError`) naming the file and key. YAML is read with
`yaml.safe_load`, so a config can never construct objects or run code.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from asr.errors import AsrError


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes MFCC frames; stored with prepared data and in every model bundle."""

    sample_rate: int = 16000  # Hz; audio at other rates is resampled, stereo mixed down
    n_mfcc: int = 20  # MFCC coefficients per frame (the model's input width)
    n_fft: int = 400  # FFT window in samples: 25 ms at 16 kHz
    hop_length: int = 160  # samples between frames: 10 ms at 16 kHz
    n_mels: int = 40  # mel bands before the DCT


@dataclass(frozen=True)
class TextConfig:
    """Transcript normalisation; the vocabulary is built from normalised training text."""

    alphabet: str = "abcdefghijklmnopqrstuvwxyz' "  # characters the model may emit (blank is added)
    lowercase: bool = True  # fold case before checking against the alphabet
    numbers_to_words: bool = False  # "42" -> "forty two" (English) before the alphabet check
    punctuation: str = "strip"  # strip | space: what punctuation outside the alphabet becomes


@dataclass(frozen=True)
class PrepareConfig:
    """Corpus reading, splitting and feature extraction."""

    dev_fraction: float = 0.1  # share of utterances for dev when the corpus has no split folders
    test_fraction: float = 0.1  # share for test, likewise
    seed: int = 0  # seed of the deterministic split
    max_duration: float = 30.0  # seconds; longer audio is skipped and reported
    min_duration: float = 0.1  # seconds; shorter audio is skipped and reported
    shard_size: int = 500  # utterances per feature shard: the unit of parallel and resumable work


@dataclass(frozen=True)
class ModelConfig:
    """Conv1D front end (optional) -> BiLSTM stack -> Dense softmax over vocabulary + blank."""

    conv_channels: int = 256  # 0 disables the Conv1D front end (and with it subsampling)
    conv_kernel: int = 5  # Conv1D kernel width in input frames
    conv_stride: int = 2  # time subsampling: out_lens = ceil(feat_lens / conv_stride)
    lstm_units: int = 256  # units per direction in each BiLSTM layer
    lstm_layers: int = 2  # number of BiLSTM layers
    dropout: float = 0.1  # dropout between layers (never recurrent_dropout: it disables cuDNN)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, checkpoints and where the run lives."""

    data_dir: str = "data/demo"  # prepared data (output of `asr prepare`)
    out_dir: str = "exp/demo"  # run directory: checkpoints, logs, the model bundle
    epochs: int = 30  # maximum number of epochs
    batch_size: int = 32  # utterances per batch (batches are bucketed by length)
    learning_rate: float = 1e-3  # peak learning rate after warm-up
    warmup_epochs: float = 1.0  # linear warm-up length in epochs, then cosine decay to 5% of peak
    clipnorm: float = 5.0  # global gradient-norm clipping
    patience: int = 8  # early stopping: epochs without dev CER improvement
    seed: int = 0  # weight init and data order
    mixed_precision: bool = False  # float16 compute on GPU; softmax and loss stay float32


@dataclass(frozen=True)
class DecodeConfig:
    """How per-frame probabilities become text."""

    beam_width: int = 1  # 1 = greedy (best path); > 1 = CTC prefix beam search
    batch_size: int = 16  # utterances per forward pass in eval/transcribe


@dataclass(frozen=True)
class Config:
    """The whole configuration: one section per pipeline stage."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    text: TextConfig = field(default_factory=TextConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


def _check_value(value: Any, typ: Any, where: str) -> Any:
    """Return `value` converted to `typ` (int -> float only), or raise AsrError naming `where`."""
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        options = typing.get_args(typ)
        if any(isinstance(value, t) for t in options):
            return value
    elif isinstance(value, typ) and not (typ is int and isinstance(value, bool)):
        return value
    name = getattr(typ, "__name__", str(typ))
    raise AsrError(f"{where}: expected {name}, got {value!r}")


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from a (possibly partial) mapping, rejecting unknown keys."""
    if not isinstance(data, dict):
        raise AsrError(f"{where}: expected a mapping of {cls.__name__} keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise AsrError(f"{where}: unknown key '{unknown[0]}' (valid keys: {', '.join(sorted(names))})")
    values = {}
    for key, value in data.items():
        sub = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(hints[key]):
            values[key] = _build(hints[key], value, sub)
        else:
            values[key] = _check_value(value, hints[key], sub)
    return cls(**values)


def _merge(base: dict, extra: dict) -> dict:
    """Recursively merge `extra` into a copy of `base`."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """`"train.lr=1e-3"` -> `{"train": {"lr": 0.001}}`; the value is parsed as YAML (safely)."""
    if "=" not in text:
        raise AsrError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. train.epochs=3")
    dotted, raw = text.split("=", 1)
    keys = dotted.strip().split(".")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    out: dict = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        out = {key: out}
    return out


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping safely; a missing or malformed file is an AsrError naming it."""
    path = Path(path)
    if not path.is_file():
        raise AsrError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise AsrError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AsrError(f"{path}: expected a mapping of sections at the top level")
    return data


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), base: dict | None = None
) -> Config:
    """Defaults <- `base` mapping <- YAML file <- `--set` overrides, validated into a `Config`."""
    data: dict = dict(base or {})
    where = ""
    if path is not None:
        data = _merge(data, read_yaml(path))
        where = str(path)
    for text in overrides:
        data = _merge(data, parse_override(text))
    cfg = _build(Config, data, "")
    if cfg.model.conv_stride < 1:
        raise AsrError(f"{where or 'config'}: model.conv_stride must be >= 1, got {cfg.model.conv_stride}")
    if cfg.model.conv_channels == 0 and cfg.model.conv_stride != 1:
        raise AsrError("model.conv_stride needs the Conv1D front end: set model.conv_channels > 0 or conv_stride: 1")
    return cfg


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (for YAML/JSON)."""
    return dataclasses.asdict(cfg)


def section_from_dict(cls: type, data: dict, where: str) -> Any:
    """Build one section (e.g. `FeatureConfig`) from a mapping read back from a bundle or data dir."""
    return _build(cls, data, where)


def dump_yaml(data: dict) -> str:
    """YAML text for a plain mapping, keys in definition order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
