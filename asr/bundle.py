"""Model bundles: a self-contained directory that rebuilds a recogniser with no other files.

    BUNDLE/
      model.keras   inference model (feats -> probs), no Lambda: loads with safe_mode=True
      config.yaml   features, text and model sections used to train it
      vocab.json    characters; class 0 is the CTC blank
      stats.json    the train-set CMVN statistics (also baked into the model's first layer)
      train.json    provenance: data dir, epochs, best dev CER, training precision

Loading never executes code from the bundle: YAML via `yaml.safe_load`, Keras with `safe_mode=True`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr.config import FeatureConfig, ModelConfig, TextConfig, config_to_dict, dump_yaml, read_yaml, section_from_dict
from asr.errors import AsrError, first_line
from asr.files import atomic_dir, ensure_free_space, path_size, read_json, write_json
from asr.text import Vocabulary

MODEL_FILE = "model.keras"
BUNDLED_MODELS = Path(__file__).parent / "models"  # bundles shipped inside the package, by name
DEFAULT_MODEL = "en-synth"  # what `asr transcribe FILE` uses when no --model is given


def bundled_models() -> list[str]:
    """Names of the bundles shipped with the package (e.g. ["en-synth"])."""
    return sorted(p.name for p in BUNDLED_MODELS.iterdir() if (p / "config.yaml").is_file()) \
        if BUNDLED_MODELS.is_dir() else []


def resolve_bundle(name: str | Path) -> Path:
    """A bundle directory as given, or the directory of a bundled model called `name`."""
    path = Path(name)
    if not path.is_dir() and str(name) in bundled_models():
        return BUNDLED_MODELS / str(name)
    return path


def missing_file_error(path: Path, name: str) -> AsrError:
    """The error for a path that is not a bundle: it names the path and the valid choices."""
    names = ", ".join(bundled_models()) or "none installed"
    if str(path) == DEFAULT_MODEL and not bundled_models():
        return AsrError(f"no bundled default model '{DEFAULT_MODEL}' is installed: name a bundle with --model, "
                        "e.g. `asr transcribe -m exp/demo/bundle FILE` (make demo writes that one)")
    why = f"missing {name}" if path.exists() else "no such directory, nor a bundled model name"
    return AsrError(f"{path}: not a model bundle ({why}); expected a bundle directory (`asr train` writes one) "
                    f"or a bundled model name ({names})")


@dataclass
class Bundle:
    """A loaded bundle: the Keras inference model plus everything needed to featurise and decode."""

    model: Any  # keras.Model, feats [B, T, n_mfcc] -> probs [B, T', V]
    features: FeatureConfig
    text: TextConfig
    model_cfg: ModelConfig
    vocab: Vocabulary
    stats: dict
    info: dict
    path: Path


def save_bundle(path: str | Path, model: Any, features: FeatureConfig, text: TextConfig, model_cfg: ModelConfig,
                vocab: Vocabulary, stats: dict, info: dict) -> None:
    """Write a bundle directory atomically (a kill mid-write leaves the previous bundle intact).

    The free space is checked first (AsrError when short): about the previous bundle's size, or twice the
    weights (model.keras, then model.tflite) for the first one.
    """
    from asr.checkpoint import weight_bytes

    ensure_free_space(path, max(path_size(path), 2 * weight_bytes(model)))
    with atomic_dir(path) as tmp:
        model.save(tmp / MODEL_FILE)
        cfg = {"features": config_to_dict(features), "text": config_to_dict(text), "model": config_to_dict(model_cfg)}
        (tmp / "config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
        vocab.save(tmp / "vocab.json")
        write_json(tmp / "stats.json", stats)
        write_json(tmp / "train.json", info)


BUNDLE_FILES = ("config.yaml", "vocab.json", "stats.json")  # what featurising and decoding need


def bundle_dir(path: str | Path, needs: tuple[str, ...] = BUNDLE_FILES) -> Path:
    """The bundle directory for a path or bundled-model name; AsrError naming the first missing file."""
    path = resolve_bundle(path)
    for name in needs:
        if not (path / name).is_file():
            raise missing_file_error(path, name)
    return path


def read_stats(path: Path, n_feats: int) -> dict:
    """A bundle's stats.json: `mean` and `std`, `n_feats` numbers each; AsrError naming the file otherwise."""
    stats = read_json(path / "stats.json")
    ok = isinstance(stats, dict) and all(
        isinstance(stats.get(k), list) and len(stats[k]) == n_feats
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in stats[k]) for k in ("mean", "std"))
    if not ok:
        raise AsrError(f"{path / 'stats.json'}: expected \"mean\" and \"std\", {n_feats} numbers each "
                       "(features.n_mfcc); the bundle is damaged: copy it again or re-train")
    return stats


def read_bundle_config(path: Path) -> tuple[FeatureConfig, TextConfig, ModelConfig]:
    """The features, text and model sections of a bundle's config.yaml (read safely)."""
    cfg, where = read_yaml(path / "config.yaml"), str(path / "config.yaml")
    return (section_from_dict(FeatureConfig, cfg.get("features", {}), where),
            section_from_dict(TextConfig, cfg.get("text", {}), where),
            section_from_dict(ModelConfig, cfg.get("model", {}), where))


def bundle_summary(path: Path) -> str:
    """One line about a bundle, read without TensorFlow: its card's title (README.md), then plain facts, e.g.
    "the bundled English demonstration model; 16 kHz, 28 characters, 3 x BiLSTM-192, dev CER 10.9 %"."""
    features, _, model_cfg = read_bundle_config(bundle_dir(path))
    facts = [f"{features.sample_rate / 1000:g} kHz", f"{len(Vocabulary.load(path / 'vocab.json').chars)} characters",
             f"{model_cfg.lstm_layers} x BiLSTM-{model_cfg.lstm_units}"]
    info = read_json(path / "train.json") if (path / "train.json").is_file() else {}
    if isinstance(info.get("dev_cer"), (int, float)):
        facts.append(f"dev CER {100 * info['dev_cer']:.1f} %")
    title = _card_title(path)
    return f"{title}; {', '.join(facts)}" if title else ", ".join(facts)


def _card_title(path: Path) -> str:
    """The first heading of the bundle's README.md without the bundle's own name ("# NAME — title" -> "title")."""
    card = path / "README.md"
    lines = card.read_text(encoding="utf-8").splitlines() if card.is_file() else []
    heading = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), "")
    return re.sub(rf"^{re.escape(path.name)}\s*[—–:-]\s*", "", heading)


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle directory safely; a missing or incomplete bundle is an AsrError naming the file."""
    path = bundle_dir(path, (MODEL_FILE, *BUNDLE_FILES))
    features, text, model_cfg = read_bundle_config(path)
    vocab = Vocabulary.load(path / "vocab.json")  # the cheap checks first: a damaged file fails before Keras starts
    model = load_keras_model(path / MODEL_FILE)
    info = read_json(path / "train.json") if (path / "train.json").is_file() else {}
    return Bundle(model, features, text, model_cfg, vocab, read_stats(path, features.n_mfcc), info, path)


def load_keras_model(file: Path) -> Any:
    """A bundle's Keras model, loaded in safe mode; AsrError naming the file when it is damaged or holds code."""
    import zipfile

    import keras

    if not zipfile.is_zipfile(file):
        raise AsrError(f"{file}: not a Keras model (a .keras file is a zip archive); the bundle is damaged: copy it "
                       "again, or train it again")
    try:
        return keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - whatever a damaged file makes Keras raise, the user gets one line
        if "safe_mode" in str(err):
            raise AsrError(f"{file}: refused: the model holds Python code (a Lambda layer), which asr never runs "
                           "from a bundle (Keras safe mode); save the inference model without it") from None
        raise AsrError(f"{file}: cannot load the model ({first_line(err)}); the bundle is damaged: copy it again, or "
                       "train it again") from None
