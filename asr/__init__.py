"""asr: train, score and use character-level CTC speech recognisers (BiLSTM + Lambda CTC, Keras 3).

    >>> import asr
    >>> m = asr.load_model("exp/demo/bundle")
    >>> m.transcribe("a.wav").text
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_model", "load_config", "prepare", "train", "evaluate", "__version__"]


def __getattr__(name: str) -> Any:
    """Import the public API lazily, so `import asr` does not load TensorFlow."""
    if name == "load_model":
        from asr.recognize import load_model

        return load_model
    if name == "load_config":
        from asr.config import load_config

        return load_config
    if name == "prepare":
        from asr.prepare import prepare

        return prepare
    if name == "train":
        from asr.train import train

        return train
    if name == "evaluate":
        from asr.evaluate import evaluate

        return evaluate
    raise AttributeError(name)
