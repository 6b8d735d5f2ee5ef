"""Fine-tuning: start from a trained bundle (the parent) instead of from random weights.

    asr prepare my-speech --out data/mine --like en-synth      # the parent's features, text and vocabulary
    asr train --init en-synth --data data/mine --out exp/mine  # its architecture, weights and CMVN statistics

The parent fixes everything the weights depend on, so none of it is re-derived from a small corpus:

- features (MFCC settings) and text normalisation: `asr prepare --like` takes them from the parent;
- the vocabulary, i.e. which output row is which character: the parent's, in its order. New characters
  (`--grow-vocab`) are appended after it, so every known character keeps its row; `init_weights` copies
  the known rows of the output layer and leaves the new ones freshly initialised (`train.reset_output`
  re-initialises them all, like DeepSpeech's `--drop_source_layers 1`);
- the architecture (`model` section; only `model.dropout` may differ) and the CMVN statistics, which are
  baked into the first layer and used to pad batches: the parent's, not the new data's.

Data that does not fit the parent (other features, another vocabulary order) is refused before any work,
naming both sides. A fine-tuned bundle's `train.json` names its parent (`parent_info`) and its data.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from asr.bundle import BUNDLE_FILES, MODEL_FILE, bundle_dir, read_bundle_config, read_stats
from asr.config import (
    SHAPE_KEYS,
    Config,
    FeatureConfig,
    ModelConfig,
    TextConfig,
    config_to_dict,
    differences,
    load_config,
)
from asr.data import PreparedData
from asr.errors import AsrError
from asr.model import OUTPUT_LAYER
from asr.text import Vocabulary

# The default fine-tuning settings, used by `asr train --init` when no --config is given (also configs/finetune.yaml).
PRESET = Path(__file__).parent / "presets" / "finetune.yaml"


@dataclass(frozen=True)
class Parent:
    """What a fine-tuning run takes from its parent bundle (read from its files; Keras is not loaded)."""

    name: str  # as the user gave it: a path or a bundled model's name
    path: Path
    features: FeatureConfig
    text: TextConfig
    model: ModelConfig
    vocab: Vocabulary
    stats: dict  # CMVN mean/std of the parent's training data

    @functools.cached_property
    def sha256(self) -> str:
        """Content hash of the files that define the model (read once, when provenance is written)."""
        return bundle_hash(self.path)

    def info(self) -> dict:
        """Provenance for the child bundle's train.json."""
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256}


def bundle_hash(path: Path) -> str:
    """sha256 over the files that define a bundle's behaviour (weights, config, vocabulary, statistics)."""
    digest = hashlib.sha256()
    for name in (MODEL_FILE, *BUNDLE_FILES):
        digest.update(name.encode() + b"\0")
        with open(path / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_parent(name: str | Path) -> Parent:
    """The parent bundle `name` (a bundle directory or a bundled model's name); AsrError if it is not one."""
    path = bundle_dir(name, (MODEL_FILE, *BUNDLE_FILES))
    features, text, model = read_bundle_config(path)
    return Parent(str(name), path, features, text, model, Vocabulary.load(path / "vocab.json"),
                  read_stats(path, features.n_mfcc))


def like_config(cfg: Config, parent: Parent) -> Config:
    """`cfg` for `asr prepare --like`: features, text and the CTC-feasibility stride are the parent's."""
    return replace(cfg, features=parent.features, text=parent.text,
                   model=replace(cfg.model, conv_stride=parent.model.conv_stride))


def load_init_config(path: str | Path | None, overrides: list[str] | tuple[str, ...], parent: Parent) -> Config:
    """The config of `asr train --init`: the parent's `model` section <- `path` (default: PRESET) <- overrides."""
    cfg = load_config(path or PRESET, overrides, base={"model": config_to_dict(parent.model)})
    return replace(cfg, train=replace(cfg.train, init=parent.name))


def check_architecture(model: ModelConfig, parent: Parent) -> None:
    """The model section must be the parent's (only `dropout` may differ): its weights fit no other shape."""
    diff = [f"model.{k} {a} (bundle {parent.name}: {b})" for k, a, b in differences(model, parent.model)
            if k in SHAPE_KEYS]
    if diff:
        raise AsrError(f"train.init {parent.name}: the model section differs from the bundle's: {', '.join(diff)}; "
                       "leave the model section out (only model.dropout may change)")


def check_data(parent: Parent, data: PreparedData) -> None:
    """Refuse prepared data that the parent's weights cannot be trained on, naming both sides."""
    data_dir, features, text, vocab = data.dir, data.features, data.text, data.vocab
    hint = f"prepare the data again with `asr prepare CORPUS --out {data_dir} --like {parent.name}`"
    if features != parent.features:
        diff = ", ".join(f"{k}: data {a}, bundle {b}" for k, a, b in differences(features, parent.features))
        raise AsrError(f"{data_dir}: features differ from bundle {parent.name} ({diff}); {hint}")
    known = len(parent.vocab.chars)
    if vocab.chars[:known] != parent.vocab.chars:
        raise AsrError(f"{data_dir}/vocab.json: characters {''.join(vocab.chars)!r} do not start with bundle "
                       f"{parent.name}'s {''.join(parent.vocab.chars)!r} in that order, so output rows would mean "
                       f"other characters; {hint}")
    rules = differences(replace(text, alphabet=parent.text.alphabet), parent.text)
    if not text.alphabet.startswith(parent.text.alphabet):
        rules.append(("alphabet", text.alphabet, parent.text.alphabet))
    if rules:
        listed = ", ".join(f"{k}: data {a!r}, bundle {b!r}" for k, a, b in rules)
        raise AsrError(f"{data_dir}: text normalisation differs from bundle {parent.name}'s ({listed}); {hint}")


def init_weights(model: Any, parent_weights: dict[str, list], reset_output: bool) -> None:
    """Copy the parent's weights (per layer name) into `model`, whose vocabulary may have grown.

    The output layer's kernel `[units, V]` and bias `[V]` keep the parent's columns for the classes it knows
    (blank and its characters come first in both vocabularies); new classes keep `model`'s fresh
    initialisation, and with `reset_output` the whole layer does.
    """
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in parent_weights:
            raise AsrError(f"the parent bundle has no layer {layer.name!r}: it was not built by this toolkit")
        weights = parent_weights[layer.name]
        if layer.name == OUTPUT_LAYER:
            if reset_output:
                continue
            fresh = layer.get_weights()
            known = weights[1].shape[0]
            for new, old in zip(fresh, weights):
                new[..., :known] = old  # kernel [units, V] and bias [V]: the known classes' columns
            weights = fresh
        layer.set_weights(weights)


def layer_weights(model: Any) -> dict[str, list]:
    """Numpy weights of every layer of a (parent) model, by layer name."""
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
