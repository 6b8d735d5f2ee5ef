"""Prepared features -> padded, length-bucketed batches (numpy) -> `tf.data`.

    python -c "from asr.data import PreparedData; d = PreparedData('data/demo'); print(len(d.rows('train')))"

One batch, the tensors the CTC Lambda layer sees (names used everywhere in this project):

    feats       float32 [B, T_max, n_mfcc]  right-padded with the train mean (normalises to 0)
    labels      int32   [B, L_max]          char indices (>= 1), right-padded with PAD_INDEX (-1): `y_true`
    label_lens  int32   [B]                 true transcript lengths: `label_length`
    out_lens    int32   [B]                 output frames after subsampling, ceil(n_frames / stride): `input_length`

Shards are memory-mapped, so a corpus larger than memory streams from disk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from asr.config import FeatureConfig, TextConfig, read_yaml, section_from_dict
from asr.errors import AsrError
from asr.files import read_json, read_jsonl
from asr.text import PAD_INDEX, Vocabulary


def output_lengths(n_frames: np.ndarray | int, stride: int) -> np.ndarray:
    """Output frames of the model for `n_frames` input frames: ceil(n / stride) ('same' padding)."""
    return (np.asarray(n_frames) + stride - 1) // stride


class PreparedData:
    """Read access to a directory written by `asr prepare`."""

    def __init__(self, data_dir: str | Path):
        self.dir = Path(data_dir)
        if not (self.dir / "vocab.json").is_file():
            raise AsrError(f"{self.dir}: not a prepared data directory (no vocab.json); run `asr prepare` first")
        saved = read_yaml(self.dir / "config.yaml")
        self.features: FeatureConfig = section_from_dict(FeatureConfig, saved["features"], f"{self.dir}/config.yaml")
        self.text: TextConfig = section_from_dict(TextConfig, saved["text"], f"{self.dir}/config.yaml")
        self.prepared_stride: int = int(saved.get("model", {}).get("conv_stride", 1))
        self.vocab = Vocabulary.load(self.dir / "vocab.json")
        self.stats = read_json(self.dir / "stats.json")
        self._shards: dict[str, np.ndarray] = {}

    def rows(self, split: str) -> list[dict]:
        """Manifest rows of a split (id, audio, duration, text, n_frames, shard, row)."""
        path = self.dir / f"{split}.jsonl"
        if not path.is_file():
            raise AsrError(f"{path} not found: split {split!r} was not prepared (splits: train, dev, test)")
        return read_jsonl(path)

    def feats(self, row: dict) -> np.ndarray:
        """Unnormalised MFCC of one utterance: float32 [n_frames, n_mfcc] (a view into the memmap)."""
        shard = self._shards.get(row["shard"])
        if shard is None:
            shard = self._shards[row["shard"]] = np.load(self.dir / row["shard"], mmap_mode="r")
        return shard[row["row"]: row["row"] + row["n_frames"]]


def make_batches(lengths: list[int], batch_size: int, seed: int | None) -> list[list[int]]:
    """Bucket by length: sort (with seeded jitter), cut into batches, shuffle the batch order.

    `seed=None` keeps a fixed length order (evaluation). Sorting keeps padding small; the jitter
    and the shuffle vary the batches from epoch to epoch.
    """
    lengths_arr = np.asarray(lengths, dtype=np.float64)
    if seed is None:
        order = np.argsort(lengths_arr, kind="stable")
        return [order[k:k + batch_size].tolist() for k in range(0, len(order), batch_size)]
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(0.9, 1.1, size=len(lengths_arr))  # +-10%: neighbours mix, padding stays small
    order = np.argsort(lengths_arr * jitter, kind="stable")
    batches = [order[k:k + batch_size].tolist() for k in range(0, len(order), batch_size)]
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def pad_batch(feats: list[np.ndarray], labels: list[list[int]], stride: int, pad_value: np.ndarray) -> dict:
    """Pad one batch; see the module docstring for the shapes and meaning of each tensor."""
    n_frames = np.array([len(f) for f in feats], dtype=np.int32)
    t_max = int(n_frames.max())
    out = np.empty((len(feats), t_max, feats[0].shape[1]), dtype=np.float32)
    out[:] = pad_value  # padded frames normalise to 0, like the zero padding of a lone utterance
    for b, f in enumerate(feats):
        out[b, : len(f)] = f
    label_lens = np.array([len(y) for y in labels], dtype=np.int32)
    y_true = np.full((len(labels), max(1, int(label_lens.max()))), PAD_INDEX, dtype=np.int32)
    for b, y in enumerate(labels):
        y_true[b, : len(y)] = y
    return {"feats": out, "labels": y_true, "label_lens": label_lens,
            "out_lens": output_lengths(n_frames, stride).astype(np.int32)}


class BatchSource:
    """Callable generator of padded training batches; `epoch` picks the (reproducible) data order."""

    def __init__(self, data: PreparedData, split: str, batch_size: int, stride: int, seed: int | None):
        self.data, self.stride, self.seed, self.batch_size = data, stride, seed, batch_size
        self.rows = data.rows(split)
        if not self.rows:
            raise AsrError(f"{data.dir}/{split}.jsonl is empty: nothing to train or evaluate on")
        self.labels = [data.vocab.encode(r["text"]) for r in self.rows]
        self.pad_value = np.asarray(data.stats["mean"], dtype=np.float32)
        self.epoch = 0

    def batches(self) -> list[list[int]]:
        """Row indices of each batch for the current epoch."""
        seed = None if self.seed is None else self.seed * 100003 + self.epoch
        return make_batches([r["n_frames"] for r in self.rows], self.batch_size, seed)

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def __call__(self) -> Iterator[dict]:
        for idx in self.batches():
            yield pad_batch([self.data.feats(self.rows[i]) for i in idx], [self.labels[i] for i in idx],
                            self.stride, self.pad_value)


def to_tf_dataset(source: BatchSource, n_feats: int):  # -> tf.data.Dataset
    """Wrap a BatchSource as `tf.data` of `(inputs, dummy_y)` for the Lambda-CTC training model.

    `dummy_y` is all zeros: the loss is computed inside the model, so Keras' `y_true` is unused.
    """
    import tensorflow as tf

    spec = {"feats": tf.TensorSpec([None, None, n_feats], tf.float32),
            "labels": tf.TensorSpec([None, None], tf.int32),
            "label_lens": tf.TensorSpec([None], tf.int32), "out_lens": tf.TensorSpec([None], tf.int32)}
    ds = tf.data.Dataset.from_generator(source, output_signature=spec)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(source)))  # lets Keras show progress
    ds = ds.map(lambda x: (x, tf.zeros_like(x["label_lens"], tf.float32)))
    return ds.prefetch(2)
