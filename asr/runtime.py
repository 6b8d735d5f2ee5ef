"""Process runtime: TensorFlow imported once, quietly, with this project's settings; the usable cores; whether
the CPU multiplies bfloat16 natively.

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


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one, e.g. Linux; else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 CPU flags (Linux /proc/cpuinfo) of native bfloat16 products


def native_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether TensorFlow's CPU matrix products run natively in bfloat16 here: the CPU has AVX512-BF16 or AMX
    (read from `cpuinfo`; elsewhere, e.g. macOS, False) and oneDNN is on (`TF_ENABLE_ONEDNN_OPTS` not 0).

    There a bfloat16 product of the BiLSTM's shapes took ~1/2 (large) to ~2/3 (per-step) of the float32 time,
    2026-12 (AMD EPYC, 2 cores); without native support it is emulated and slower than float32."""
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        return False
    try:
        with open(cpuinfo) as f:
            flags = {word for line in f if line.startswith("flags") for word in line.split(":", 1)[1].split()}
    except OSError:
        return False
    return any(flag in flags for flag in BFLOAT16_FLAGS)


def import_tensorflow() -> Any:
    """Import TensorFlow (once) without its start-up chatter and return the module."""
    import sys

    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with silenced_stderr_fd():
        import tensorflow as tf

        tf.config.list_physical_devices()  # device probing prints the CUDA lines; do it while silenced
    return tf
