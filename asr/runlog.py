"""The per-epoch training log of a run directory: log.csv, TensorBoard scalars and curves.png.

    tensorboard --logdir exp/demo/tensorboard        # needs `pip install tensorboard`; writing does not

One row per epoch (LOG_FIELDS). log.csv is rewritten atomically each epoch from the rows in memory, so a
kill never leaves half a row and a resumed run, which starts from the rows up to its checkpoint, never
repeats an epoch. curves.png is redrawn at most every PLOT_SECONDS (and when training ends).
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from asr.files import write_text

LOG_FILE = "log.csv"
PLOT_FILE = "curves.png"
TENSORBOARD_DIR = "tensorboard"
PLOT_SECONDS = 60.0  # a redraw costs ~0.2 s: negligible against a minute of training
# resumed_at_batch: 0, or the batch a mid-epoch --resume started that epoch at: its loss, throughput and seconds
# then cover only the batches from there on (the Keras averages before the kill are not kept).
LOG_FIELDS = ("epoch", "loss", "dev_cer", "dev_wer", "lr", "audio_s_per_s", "skipped", "seconds", "resumed_at_batch")
SCALARS = LOG_FIELDS[1:-1]  # what TensorBoard plots


def read_history(path: Path) -> list[dict]:
    """Rows of a log.csv (values as strings); [] when there is none."""
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_history(path: Path, history: list[dict]) -> None:
    """Rewrite log.csv atomically with `history` (one dict per epoch, LOG_FIELDS keys)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buf.getvalue())


class TensorBoardScalars:
    """Per-epoch scalars as TensorBoard event files, written with TensorFlow alone."""

    def __init__(self, log_dir: Path):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self.writer = tf.summary.create_file_writer(str(log_dir))
        # `tf.summary.scalar` lives in the tensorboard package; the generic writer plus this tag does not.
        self.meta = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))

    def write(self, row: dict) -> None:
        import tensorflow as tf

        with self.writer.as_default():
            for key in (k for k in SCALARS if row[k] != ""):  # "": not measured (a refit has no dev score)
                tf.summary.write(f"epoch/{key}", tf.constant(float(row[key])), step=int(row["epoch"]),
                                 metadata=self.meta)
        self.writer.flush()


class RunLog:
    """The three forms of the log of run directory `out`, continuing `history` (rows kept on resume)."""

    def __init__(self, out: Path, history: list[dict], tensorboard: bool):
        self.out, self.history = out, history
        self.tensorboard = TensorBoardScalars(out / TENSORBOARD_DIR) if tensorboard else None
        self.last_plot = time.perf_counter()
        write_history(out / LOG_FILE, history)  # a fresh run starts a fresh log

    def add(self, row: dict) -> None:
        """Log one epoch; redraw the curves if the last drawing is old."""
        self.history.append({k: row.get(k, "") for k in LOG_FIELDS})
        write_history(self.out / LOG_FILE, self.history)
        if self.tensorboard is not None:
            self.tensorboard.write(self.history[-1])
        if time.perf_counter() - self.last_plot > PLOT_SECONDS:
            self.plot()

    def plot(self) -> None:
        """Draw curves.png now."""
        from asr.plots import plot_history

        if self.history:
            plot_history(self.history, self.out / PLOT_FILE)
        self.last_plot = time.perf_counter()
