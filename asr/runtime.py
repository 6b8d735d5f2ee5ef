"""TensorFlow start-up: imported once, quietly, with this project's runtime settings.

    python -c "from asr.runtime import import_tensorflow; tf = import_tensorflow()"

TensorFlow's C++ start-up writes INFO lines ("oneDNN custom operations are on", "Could not find cuda
drivers") straight to file descriptor 2 before its logging is configured, so TF_CPP_MIN_LOG_LEVEL does
not reach them. We hide fd 2 only while importing and listing devices; errors still raise normally.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def silenced_stderr_fd() -> Iterator[None]:
    """Redirect OS-level stderr to /dev/null inside the block."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> Any:
    """Import TensorFlow (once) without its start-up chatter and return the module."""
    import sys

    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with silenced_stderr_fd():
        import tensorflow as tf

        tf.config.list_physical_devices()  # device probing prints the CUDA lines; do it while silenced
    return tf
