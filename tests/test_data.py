"""Batching: length buckets that cover every utterance once, reproducible orders, padding values."""

from __future__ import annotations

import numpy as np
import pytest

from asr.batch import output_lengths, pad_batch
from asr.data import BatchSource, PreparedData, make_batches
from asr.errors import AsrError
from asr.text import PAD_INDEX

LENGTHS = [int(x) for x in np.random.default_rng(0).integers(50, 1000, size=203)]


@pytest.mark.parametrize("seed", [None, 0, 1])
@pytest.mark.parametrize("batch_size", [1, 7, 32, 500])
def test_every_index_exactly_once(seed, batch_size):
    batches = make_batches(LENGTHS, batch_size, seed)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(LENGTHS)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert len(batches) == -(-len(LENGTHS) // batch_size)


def test_bucketing_keeps_similar_lengths_together():
    batches = make_batches(LENGTHS, 16, seed=3)
    lengths = np.asarray(LENGTHS)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_batches = np.array_split(np.random.default_rng(3).permutation(len(LENGTHS)), len(batches))
    padded_random = sum(len(b) * lengths[b].max() for b in random_batches)
    sorted_batches = make_batches(LENGTHS, 16, seed=None)
    padded_sorted = sum(len(b) * lengths[b].max() for b in sorted_batches)
    assert padded < 0.8 * padded_random  # much less padding than random batches
    assert padded < 1.15 * padded_sorted  # and close to the least possible (sorted, no jitter)
    spread = [lengths[b].max() / lengths[b].min() for b in batches]
    assert np.median(spread) < 1.5  # +-10% jitter mixes neighbours only


def test_no_seed_is_sorted_by_length():
    batches = make_batches(LENGTHS, 10, seed=None)
    flat = [LENGTHS[i] for b in batches for i in b]
    assert flat == sorted(LENGTHS)


def test_same_seed_same_batches_other_seed_other_order():
    assert make_batches(LENGTHS, 16, seed=5) == make_batches(LENGTHS, 16, seed=5)
    assert make_batches(LENGTHS, 16, seed=5) != make_batches(LENGTHS, 16, seed=6)


def test_pad_batch_shapes_and_values():
    feats = [np.full((n, 3), k + 1, np.float32) for k, n in enumerate((5, 9, 2))]
    labels = [[1, 2], [3, 3, 3, 4], [5]]
    pad_value = np.array([-1.0, -2.0, -3.0], np.float32)
    batch = pad_batch(feats, labels, 2, pad_value)
    assert set(batch) == {"feats", "labels", "label_lens", "out_lens"}
    assert batch["feats"].shape == (3, 9, 3) and batch["feats"].dtype == np.float32
    for b, f in enumerate(feats):
        np.testing.assert_array_equal(batch["feats"][b, : len(f)], f)
        np.testing.assert_array_equal(batch["feats"][b, len(f):], np.broadcast_to(pad_value, (9 - len(f), 3)))
    assert batch["labels"].dtype == np.int32
    np.testing.assert_array_equal(batch["labels"], [[1, 2, PAD_INDEX, PAD_INDEX], [3, 3, 3, 4],
                                                    [5, PAD_INDEX, PAD_INDEX, PAD_INDEX]])
    np.testing.assert_array_equal(batch["label_lens"], [2, 4, 1])
    np.testing.assert_array_equal(batch["out_lens"], [3, 5, 1])  # ceil(5/2), ceil(9/2), ceil(2/2)
    assert batch["label_lens"].dtype == batch["out_lens"].dtype == np.int32
    np.testing.assert_array_equal(pad_batch(feats, labels, 3, pad_value)["out_lens"], output_lengths([5, 9, 2], 3))


def test_batch_source_orders(tiny_prepared, tiny_config):
    data = PreparedData(tiny_prepared)
    source = BatchSource(data, "train", 8, 2, seed=0)
    first = source.epoch_batches(0)
    assert sorted(i for b in first for i in b) == list(range(len(source.rows)))
    assert source.epoch_batches(0) == first  # same (seed, epoch): same order
    assert source.epoch_batches(1) != first  # another epoch: another order
    again = BatchSource(data, "train", 8, 2, seed=0)
    assert again.epoch_batches(1) == source.epoch_batches(1)  # reproducible across instances (resume)
    batch = next(source.iterate(range(1)))
    assert batch["feats"].shape[0] == len(first[0])
    assert batch["feats"].shape[2] == data.features.n_mfcc
    for b, n in enumerate(batch["label_lens"]):
        assert np.all(batch["labels"][b, :n] >= 1) and np.all(batch["labels"][b, n:] == PAD_INDEX)
        assert batch["out_lens"][b] <= batch["feats"].shape[1]


def test_prepared_data_errors(tmp_path, tiny_prepared):
    with pytest.raises(AsrError, match="vocab.json"):
        PreparedData(tmp_path)
    with pytest.raises(AsrError, match="split 'valid'"):
        PreparedData(tiny_prepared).rows("valid")
