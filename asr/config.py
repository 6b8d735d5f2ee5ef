"""Configuration: YAML (plain data only) -> nested frozen dataclasses, one per stage.

    asr train --config configs/demo.yaml --set train.epochs=3

Unknown keys, wrong types and numbers out of range (`RANGES`) are errors (`AsrError`) naming the file and
key. YAML is read with `yaml.safe_load`, so a config can never construct objects or run code.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from asr.errors import AsrError

SPLITS = ("train", "dev", "test")  # the splits of prepared data, in this order

@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes MFCC frames; stored with prepared data and in every model bundle."""

    sample_rate: int = 16000  # Hz; audio at other rates is resampled, stereo mixed down
    n_mfcc: int = 20  # MFCC coefficients per frame (the model's input width)
    n_fft: int = 400  # FFT window in samples: 25 ms at 16 kHz
    hop_length: int = 160  # samples between frames: 10 ms at 16 kHz
    n_mels: int = 40  # mel bands before the DCT
    cmn: bool = False  # subtract each utterance's mean MFCC (per-utterance CMN; the model's global CMVN follows)


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
    split_as: str = ""  # train | dev | test: the whole corpus is that split ("": split folders, else fractions)


@dataclass(frozen=True)
class ModelConfig:
    """Conv1D front end (optional) -> BiLSTM stack -> Dense softmax over vocabulary + blank."""

    conv_channels: int = 256  # 0 disables the Conv1D front end (and with it subsampling)
    conv_kernel: int = 5  # Conv1D kernel width in input frames
    conv_stride: int = 3  # time subsampling: out_lens = ceil(feat_lens / conv_stride); 3: 30 ms output frames
    lstm_units: int = 256  # units per direction in each BiLSTM layer
    lstm_layers: int = 2  # number of BiLSTM layers
    dropout: float = 0.1  # dropout between layers (never recurrent_dropout: it disables cuDNN)


# The model keys that fix the weights' shapes (dropout does not): a checkpoint or a parent bundle fits only these.
SHAPE_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name != "dropout")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, checkpoints and where the run lives."""

    data_dir: str = "data/demo"  # prepared data (output of `asr prepare`)
    out_dir: str = "exp/demo"  # run directory: checkpoints, logs, the model bundle
    epochs: int = 30  # maximum number of epochs
    batch_size: int = 32  # utterances per batch (batches are bucketed by length)
    learning_rate: float = 1e-3  # peak learning rate after warm-up
    warmup_epochs: float = 1.0  # linear warm-up length in epochs, then cosine decay to 5% of peak
    clipnorm: float = 5.0  # global gradient-norm clipping (0: off)
    patience: int = 8  # early stopping: epochs without dev CER improvement
    seed: int = 0  # weight init and data order
    mixed_precision: bool | str = "auto"  # true: float16 compute (softmax + loss float32) | false | auto: float16
    # on a GPU, bfloat16 BiLSTM products on a CPU that has them natively (AVX512-BF16/AMX), else float32
    strategy: str = "default"  # default (one device) | mirrored (all local GPUs) | multi_worker (TF_CONFIG)
    checkpoint_minutes: float = 10.0  # also checkpoint mid-epoch this often, in minutes (0: at epoch ends only)
    max_skipped_batches: int = 10  # batches with a non-finite loss skipped per epoch before training stops
    specaug_time_masks: int = 0  # SpecAugment: time masks per utterance (0: off)
    specaug_time_width: int = 20  # SpecAugment: widest time mask in frames (at most 20% of the utterance)
    specaug_freq_masks: int = 0  # SpecAugment: masks over feature coefficients per utterance (0: off)
    specaug_freq_width: int = 4  # SpecAugment: widest coefficient mask
    tempo_perturb: float = 0.0  # stretch each utterance's time axis by a random factor in [1-x, 1+x] (0: off)
    vtlp: float = 0.0  # vocal tract length perturbation: warp each utterance's mel axis by a factor in [1-x, 1+x]
    threads: int = 0  # TensorFlow intra-op threads; 0: auto, cores // 2 (the two LSTM directions run side by side)
    tensorboard: bool = True  # also log epochs to OUT/tensorboard (`tensorboard --logdir OUT`)
    init: str = ""  # fine-tune: start from this bundle (path or bundled name): its architecture, weights, CMVN
    freeze: str = ""  # comma-separated layer names kept fixed, e.g. "cmvn,conv,blstm0" (layers: `asr train` prints)
    reset_output: bool = False  # with `init`: re-initialise the whole output layer instead of keeping known rows
    refit: bool = False  # after early stopping on dev, train again from the start on train + dev for the best
    # epoch count; that model is the bundle (OUT/select/ keeps the run that chose the count). ~2x the time
    soup: int = 1  # > 1: train this many runs (seeds seed, seed+1, ...) into OUT/soup/ and average their weights
    # into the bundle (a model soup); with refit, the refit is what is trained that many times


@dataclass(frozen=True)
class DecodeConfig:
    """How per-frame probabilities become text."""

    beam_width: int = 1  # 1 = greedy (best path); > 1 = CTC prefix beam search
    batch_size: int = 16  # utterances per forward pass in eval/transcribe
    lm_path: str = ""  # word n-gram LM file (`asr lm`) for beam search (width 32 if beam_width is 1); "" = none
    lm_alpha: float = 0.5  # LM weight in shallow fusion; tune on dev (demo: 0.3 with lm_beta 2.0)
    lm_beta: float = 1.0  # bonus per word, balancing the LM's preference for few words
    chunk_seconds: float = 30.0  # long audio is recognised in chunks of this length (bounded memory)


@dataclass(frozen=True)
class Config:
    """The whole configuration: one section per pipeline stage."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    text: TextConfig = field(default_factory=TextConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _check_value(value: Any, typ: Any, where: str) -> Any:
    """Return `value` converted to `typ` (int -> float only), or raise AsrError naming `where`."""
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is float and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)  # PyYAML (YAML 1.1) reads `1e-3` without a dot as a string
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
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise AsrError(f"unknown key '{key}' (valid keys{' in ' + where if where else ''}: {', '.join(sorted(names))})")
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


def _build_named(data: dict, source: str) -> Config:
    """`_build(Config, ...)` whose errors start with `source` (the YAML file or the `--set` option)."""
    try:
        return _build(Config, data, "")
    except AsrError as err:
        raise AsrError(f"{source}: {err}") from None


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), base: dict | None = None
) -> Config:
    """Defaults <- `base` mapping <- YAML file <- `--set` overrides, validated into a `Config`."""
    data: dict = dict(base or {})
    where = ""
    if path is not None:
        data = _merge(data, read_yaml(path))
        where = str(path)
        _build_named(data, where)  # a bad key in the file is reported with the file's name
    for text in overrides:
        data = _merge(data, parse_override(text))
        _build_named(data, f"--set {text}")
    return _validated(data, where or "config")


def with_options(cfg: Config, options: dict[str, Any]) -> Config:
    """`cfg` with typed values from command-line options, e.g. `{"--data": ("train.data_dir", "data/p #1")}`.

    The values are checked like YAML values, naming the option, but never turned into text and parsed again
    (a path with `#` stays a path). Options whose value is None are left out.
    """
    data = config_to_dict(cfg)
    for option, (dotted, value) in options.items():
        if value is None:
            continue
        section, key = dotted.split(".")
        data = _merge(data, {section: {key: value}})
        _build_named(data, option)
    return _validated(data, "config")


@dataclass(frozen=True)
class Range:
    """The valid values of a number: from `low` (up to `high`, if given), each end included or not."""

    low: float
    high: float | None = None
    low_open: bool = False  # True: `low` itself is out of range (> low)
    high_open: bool = True  # True: `high` itself is out of range (< high)
    note: str = ""  # a hint appended to the error, e.g. the usual values

    def __contains__(self, value: float) -> bool:
        """Written as "inside", so that NaN is never in range."""
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


AT_LEAST_1, NON_NEGATIVE, POSITIVE = Range(1), Range(0), Range(0, low_open=True)
FRACTION = Range(0, 1, high_open=False)  # [0, 1]

RANGES: dict[str, Range] = {  # SECTION.KEY -> valid values, checked whenever a config is read
    "features.sample_rate": AT_LEAST_1, "features.n_mfcc": AT_LEAST_1, "features.n_fft": AT_LEAST_1,
    "features.hop_length": AT_LEAST_1, "features.n_mels": AT_LEAST_1,
    "prepare.dev_fraction": FRACTION, "prepare.test_fraction": FRACTION, "prepare.shard_size": AT_LEAST_1,
    "model.conv_channels": NON_NEGATIVE, "model.conv_kernel": AT_LEAST_1, "model.conv_stride": AT_LEAST_1,
    "model.lstm_units": AT_LEAST_1, "model.lstm_layers": AT_LEAST_1, "model.dropout": Range(0, 1),
    "train.epochs": AT_LEAST_1, "train.batch_size": AT_LEAST_1, "train.learning_rate": POSITIVE,
    "train.warmup_epochs": NON_NEGATIVE, "train.clipnorm": NON_NEGATIVE, "train.patience": AT_LEAST_1,
    "train.soup": AT_LEAST_1, "train.checkpoint_minutes": NON_NEGATIVE, "train.max_skipped_batches": NON_NEGATIVE,
    "train.specaug_time_masks": NON_NEGATIVE, "train.specaug_time_width": NON_NEGATIVE,
    "train.specaug_freq_masks": NON_NEGATIVE, "train.specaug_freq_width": NON_NEGATIVE,
    "train.tempo_perturb": Range(0, 0.5), "train.vtlp": Range(0, 0.3, note=" (0.1 is the usual range)"),
    "train.threads": NON_NEGATIVE,
    "decode.beam_width": AT_LEAST_1, "decode.batch_size": AT_LEAST_1, "decode.chunk_seconds": POSITIVE,
}


def _validated(data: dict, where: str) -> Config:
    """The `Config` of a merged mapping, with the checks that types alone do not make."""
    cfg = _build_named(data, where)
    for dotted, valid in RANGES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(cfg, section), key)
        if value not in valid:
            raise AsrError(f"{where}: {dotted} must be {valid}, got {value}{valid.note}")
    if cfg.model.conv_channels == 0 and cfg.model.conv_stride != 1:
        raise AsrError("model.conv_stride needs the Conv1D front end: set model.conv_channels > 0 or conv_stride: 1")
    if cfg.features.n_mfcc > cfg.features.n_mels:  # the DCT of n_mels bands has n_mels coefficients (as librosa)
        raise AsrError(f"{where}: features.n_mfcc {cfg.features.n_mfcc} must be <= features.n_mels "
                       f"{cfg.features.n_mels}")
    if cfg.prepare.dev_fraction + cfg.prepare.test_fraction > 1:
        raise AsrError(f"{where}: prepare.dev_fraction + prepare.test_fraction must be <= 1, got "
                       f"{cfg.prepare.dev_fraction} + {cfg.prepare.test_fraction}")
    _check_train(cfg.train, where)
    if cfg.prepare.split_as not in ("", *SPLITS):
        raise AsrError(f"{where}: prepare.split_as must be one of {', '.join(SPLITS)} (or empty), "
                       f"got {cfg.prepare.split_as!r}")
    return cfg


TRAIN_CHOICES = {"strategy": ("default", "mirrored", "multi_worker"), "mixed_precision": (True, False, "auto")}


def _check_train(train: TrainConfig, where: str) -> None:
    """Values of the `train` section that are choices among names."""
    for key, choices in TRAIN_CHOICES.items():
        value = getattr(train, key)
        if not any(value is c or (isinstance(c, str) and value == c) for c in choices):
            raise AsrError(f"{where}: train.{key} must be one of {', '.join(map(str, choices)).lower()}, "
                           f"got {value!r}")


def differences(ours: Any, theirs: Any) -> list[tuple[str, Any, Any]]:
    """(key, our value, their value) of each field where two config sections of one class differ."""
    return [(f.name, getattr(ours, f.name), getattr(theirs, f.name)) for f in dataclasses.fields(ours)
            if getattr(ours, f.name) != getattr(theirs, f.name)]


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (for YAML/JSON)."""
    return dataclasses.asdict(cfg)


def section_from_dict(cls: type, data: dict, where: str) -> Any:
    """Build one section (e.g. `FeatureConfig`) from a mapping read back from a bundle or data dir."""
    try:
        return _build(cls, data, "")
    except AsrError as err:
        raise AsrError(f"{where}: {err}") from None


def dump_yaml(data: dict) -> str:
    """YAML text for a plain mapping, keys in definition order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
