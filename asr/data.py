"""Prepared features -> padded, length-bucketed batches (numpy) -> `tf.data`.

    python -c "from asr.data import PreparedData; d = PreparedData('data/demo'); print(len(d.rows('train')))"

Batches are padded by `asr.batch.pad_batch` (its docstring lists the four tensors).

Shards are memory-mapped, so a corpus larger than memory streams from disk. Under a distribution
strategy each global batch of `train.batch_size` utterances is cut into one contiguous part per replica
(each padded on its own), and every input pipeline (one per machine) pads only its own replicas' parts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from asr.augment import Augmentation, augment
from asr.batch import pad_batch
from asr.config import FeatureConfig, TextConfig, read_yaml, section_from_dict
from asr.errors import AsrError
from asr.files import read_json, read_jsonl
from asr.text import Vocabulary, ctc_frames_needed


class PreparedData:
    """Read access to a directory written by `asr prepare`.

    `stats` replaces the data's own CMVN statistics: a fine-tuned model keeps its parent's (asr.finetune).
    """

    def __init__(self, data_dir: str | Path, stats: dict | None = None):
        self.dir = Path(data_dir)
        if not (self.dir / "vocab.json").is_file():
            raise AsrError(f"{self.dir}: not a prepared data directory (no vocab.json); run `asr prepare` first")
        saved = read_yaml(self.dir / "config.yaml")
        self.features: FeatureConfig = section_from_dict(FeatureConfig, saved["features"], f"{self.dir}/config.yaml")
        self.text: TextConfig = section_from_dict(TextConfig, saved["text"], f"{self.dir}/config.yaml")
        self.prepared_stride: int = int(saved.get("model", {}).get("conv_stride", 1))
        self.vocab = Vocabulary.load(self.dir / "vocab.json")
        self.stats = stats if stats is not None else read_json(self.dir / "stats.json")
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


def make_batches(lengths: list[int], batch_size: int, seed: int | None, min_size: int = 1) -> list[list[int]]:
    """Bucket by length: sort (with seeded jitter), cut into batches, shuffle the batch order.

    `seed=None` keeps a fixed length order (evaluation). Sorting keeps padding small; the jitter
    and the shuffle vary the batches from epoch to epoch. A last batch smaller than `min_size` (the
    number of replicas it is split across) joins the one before it.
    """
    lengths_arr = np.asarray(lengths, dtype=np.float64)
    rng = None if seed is None else np.random.default_rng(seed)
    if rng is None:
        order = np.argsort(lengths_arr, kind="stable")
    else:
        jitter = rng.uniform(0.9, 1.1, size=len(lengths_arr))  # +-10%: neighbours mix, padding stays small
        order = np.argsort(lengths_arr * jitter, kind="stable")
    batches = [order[k:k + batch_size].tolist() for k in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < min_size:
        last = batches.pop()
        batches[-1] += last
    if rng is not None:
        rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


class BatchSource:
    """Padded training batches; the data order is a function of (seed, epoch) only, so a resumed run
    continues with exactly the batches an uninterrupted run would have drawn.

    `source.epoch_batches(epoch)` gives the row indices of each batch of an epoch; `source.iterate(...)` walks
    several epochs, optionally from a batch in the middle of the first, and splits each batch into per-replica
    parts.
    """

    def __init__(self, data: PreparedData, split: str, batch_size: int, stride: int, seed: int | None,
                 augmentation: Augmentation | None = None, min_batch: int = 1, rows: list[dict] | None = None):
        self.data, self.stride, self.seed, self.batch_size = data, stride, seed, batch_size
        known = set(data.vocab.chars)
        rows = data.rows(split) if rows is None else rows  # `rows`: a part of the split (dev held out)
        # Only dev/test rows can hold characters no training text has (prepare reports them); they cannot
        # be encoded as labels, so a batch source over those splits leaves them out.
        self.rows = [r for r in rows if set(r["text"]) <= known]
        self.unencodable = len(rows) - len(self.rows)
        if not self.rows:
            raise AsrError(f"{data.dir}/{split}.jsonl has no utterances to batch: nothing to train or inspect")
        self.labels = [data.vocab.encode(r["text"]) for r in self.rows]
        self.pad_value = np.asarray(data.stats["mean"], dtype=np.float32)
        self.augmentation = augmentation if augmentation is not None and augmentation.active else None
        self.min_batch = min_batch  # e.g. the number of replicas: every replica gets at least one utterance

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Row indices of each (global) batch of `epoch`."""
        seed = None if self.seed is None else self.seed * 100003 + epoch
        return make_batches([r["n_frames"] for r in self.rows], self.batch_size, seed, self.min_batch)

    def __len__(self) -> int:
        full, rest = divmod(len(self.rows), self.batch_size)
        return full + (1 if rest and (rest >= self.min_batch or full == 0) else 0)

    def pad(self, idx: Sequence[int], epoch: int = 0) -> dict:
        """The padded batch of rows `idx` (augmented when training asks for it)."""
        return pad_batch(self.load(idx, epoch), [self.labels[i] for i in idx], self.stride, self.pad_value)

    def load(self, idx: Sequence[int], epoch: int = 0) -> list[np.ndarray]:
        """Feature matrices of rows `idx` (augmented when training asks for it)."""
        feats = [self.data.feats(self.rows[i]) for i in idx]
        if self.augmentation is not None:
            feats = [self._augment(f, i, epoch) for f, i in zip(feats, idx)]
        return feats

    def _augment(self, feats: np.ndarray, i: int, epoch: int) -> np.ndarray:
        """Augment row `i`; the draw depends on (seed, epoch, row) only, not on batching or replicas."""
        assert self.augmentation is not None
        rng = np.random.default_rng([self.seed or 0, epoch, i])
        min_frames = (ctc_frames_needed(self.labels[i]) - 1) * self.stride + 1  # CTC must stay feasible
        return augment(feats, rng, self.augmentation, self.pad_value, min_frames)

    def iterate(self, epochs: range, start_batch: int = 0, parts: int = 1,
                part_ids: Sequence[int] = (0,)) -> Iterator[dict]:
        """Batches of `epochs` (skipping the first `start_batch` of the first epoch), each global batch cut
        into `parts` contiguous per-replica batches of which the parts `part_ids` are yielded, in order.

        All parts of a global batch are padded to the same shape: Keras' distributed `fit` averages the
        first batch across replicas (to build the model), which needs equal shapes. (So every pipeline
        loads the whole global batch; without augmentation those are memory-mapped views, no copies.)"""
        for epoch in epochs:
            for b, idx in enumerate(self.epoch_batches(epoch)):
                if epoch == epochs.start and b < start_batch:
                    continue
                if parts == 1:
                    yield self.pad(idx, epoch)
                    continue
                feats = self.load(idx, epoch)
                t_max, l_max = max(len(f) for f in feats), max(len(self.labels[i]) for i in idx)
                for p in part_ids:
                    part = np.array_split(np.arange(len(idx)), parts)[p]
                    yield pad_batch([feats[k] for k in part], [self.labels[idx[k]] for k in part], self.stride,
                                    self.pad_value, t_max, l_max)


# Batches padded ahead of the step. The pipeline alone (SpecAugment on, through tf.data, one core) makes ~47,000
# audio-s/s, training consumes ~300-500 on 2 cores (scripts/bench_train.py prints both): 2 are enough.
PREFETCH = 2


def make_dataset(source: BatchSource, n_feats: int, epochs: range, start_batch: int = 0, parts: int = 1,
                 part_ids: Sequence[int] = (0,)):  # -> tf.data.Dataset
    """`tf.data` of `(inputs, dummy_y)` for the Lambda-CTC training model, over `source.iterate(...)`.

    `dummy_y` is all zeros: the loss is computed inside the model, so Keras' `y_true` is unused.
    """
    import tensorflow as tf

    spec = {"feats": tf.TensorSpec([None, None, n_feats], tf.float32),
            "labels": tf.TensorSpec([None, None], tf.int32),
            "label_lens": tf.TensorSpec([None], tf.int32), "out_lens": tf.TensorSpec([None], tf.int32)}
    ds = tf.data.Dataset.from_generator(lambda: source.iterate(epochs, start_batch, parts, part_ids),
                                        output_signature=spec)
    ds = ds.map(lambda x: (x, tf.zeros_like(x["label_lens"], tf.float32)))
    return ds.prefetch(PREFETCH)
