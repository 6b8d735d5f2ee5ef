"""The CTC loss against a brute-force sum over all alignments (float64 numpy), with padded batches.

Every length-T path over V classes is enumerated, collapsed (merge repeats, then drop blanks) and
the probabilities of the paths that collapse to the label are summed: -log of that sum is the CTC loss.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from asr.text import BLANK_INDEX, PAD_INDEX

tf = pytest.importorskip("tensorflow")
from asr.ctc import ctc_batch_loss, ctc_loss_in_parts, identity_loss  # noqa: E402 - after the TensorFlow import check


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    """CTC's many-to-one map: merge repeated classes, then drop blanks."""
    merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
    return tuple(k for k in merged if k != BLANK_INDEX)


def brute_force_nll(probs: np.ndarray, label: list[int]) -> float:
    """-log sum over all paths through `probs` [T, V] (float64) that collapse to `label`."""
    t_len, n_classes = probs.shape
    total = 0.0
    for path in itertools.product(range(n_classes), repeat=t_len):
        if collapse(path) == tuple(label):
            total += float(np.prod(probs[np.arange(t_len), path]))
    return -np.log(total)


def random_probs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Softmax of random logits, float64."""
    logits = rng.normal(0.0, 1.5, size=shape)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# (out_len, label) per utterance; T_max = 6, V = 4 (blank + 3 characters).
CASES = [
    (6, [1, 2, 3]),
    (4, [2, 2]),  # a repeated character: needs a blank in between
    (6, [1, 1, 2, 2]),  # two repeats: exactly 6 frames needed
    (1, [3]),
    (5, [3, 1]),
    (3, [2]),
]  # no empty label: prepare drops empty transcripts and the CTC kernel refuses them
T_MAX, N_CLASSES = 6, 4


def padded_batch(rng: np.random.Generator, cases=CASES, pad_label: int = PAD_INDEX, garbage: bool = True):
    """`probs [B, T_max, V]` (padding frames garbage), `labels [B, L_max]` (padding garbage), lengths."""
    batch = len(cases)
    probs = np.zeros((batch, T_MAX, N_CLASSES))
    l_max = max(len(label) for _, label in cases) + 2  # wider than any label: real padding columns
    labels = np.full((batch, l_max), pad_label, dtype=np.int32)
    for b, (t_len, label) in enumerate(cases):
        probs[b, :t_len] = random_probs(rng, (t_len, N_CLASSES))
        if garbage:  # not a distribution, arbitrary scale: would change the loss if it were read
            probs[b, t_len:] = rng.uniform(0.0, 50.0, size=(T_MAX - t_len, N_CLASSES))
            labels[b, len(label):] = rng.integers(0, N_CLASSES, size=l_max - len(label))
        labels[b, : len(label)] = label
    out_lens = np.array([t for t, _ in cases], dtype=np.int32)
    label_lens = np.array([len(label) for _, label in cases], dtype=np.int32)
    return probs, labels, out_lens, label_lens


def run_loss(probs, labels, out_lens, label_lens) -> np.ndarray:
    """ctc_batch_loss on numpy inputs -> float [B]."""
    loss = ctc_batch_loss([tf.constant(probs, tf.float32), tf.constant(labels), tf.constant(out_lens),
                           tf.constant(label_lens)])
    assert loss.shape == (len(out_lens), 1)
    return loss.numpy()[:, 0]


def test_brute_force_reference_is_sane():
    """The reference itself: with one frame per label and certain probabilities, p(label) = 1."""
    probs = np.eye(N_CLASSES)[[1, 0, 1, 2]]  # path 1 _ 1 2 -> label 1 1 2
    assert brute_force_nll(probs, [1, 1, 2]) == pytest.approx(0.0)
    uniform = np.full((2, 2), 0.5)  # paths of length 2 over {_, a}: aa, a_, _a -> "a"; __ -> ""
    assert brute_force_nll(uniform, [1]) == pytest.approx(-np.log(0.75))
    assert brute_force_nll(uniform, []) == pytest.approx(-np.log(0.25))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_matches_brute_force_on_a_padded_batch(seed):
    rng = np.random.default_rng(seed)
    probs, labels, out_lens, label_lens = padded_batch(rng)
    expected = [brute_force_nll(probs[b, :t], label) for b, (t, label) in enumerate(CASES)]
    np.testing.assert_allclose(run_loss(probs, labels, out_lens, label_lens), expected, rtol=1e-4, atol=1e-5)


def test_padding_never_counts():
    """Garbage or clean padding, any PAD value, any padded width, lengths as [B] or [B, 1]: same loss."""
    rng = np.random.default_rng(7)
    probs, labels, out_lens, label_lens = padded_batch(rng)
    reference = run_loss(probs, labels, out_lens, label_lens)
    for pad in (PAD_INDEX, 0, 1, 3, 99):
        labels_pad = labels.copy()
        for b, n in enumerate(label_lens):
            labels_pad[b, n:] = pad
        np.testing.assert_allclose(run_loss(probs, labels_pad, out_lens, label_lens), reference, rtol=1e-6)
    wide_probs = np.concatenate([probs, rng.uniform(0, 9, size=(len(CASES), 3, N_CLASSES))], axis=1)
    wide_labels = np.pad(labels, ((0, 0), (0, 4)), constant_values=2)
    np.testing.assert_allclose(run_loss(wide_probs, wide_labels, out_lens, label_lens), reference, rtol=1e-6)
    np.testing.assert_allclose(run_loss(probs, labels, out_lens[:, None], label_lens[:, None]), reference, rtol=1e-6)


def test_each_utterance_scored_alone_equals_the_batch():
    rng = np.random.default_rng(3)
    probs, labels, out_lens, label_lens = padded_batch(rng)
    batch = run_loss(probs, labels, out_lens, label_lens)
    for b, (t, label) in enumerate(CASES):
        alone = run_loss(probs[b:b + 1, :t], np.array([label], np.int32), out_lens[b:b + 1],
                         label_lens[b:b + 1])
        assert alone[0] == pytest.approx(batch[b], rel=1e-5)


def test_gradient_is_finite_and_zero_on_padding():
    rng = np.random.default_rng(4)
    probs, labels, out_lens, label_lens = padded_batch(rng)
    logits = tf.Variable(np.log(np.maximum(probs, 1e-12)), dtype=tf.float32)
    probs_zero = probs.copy()
    probs_zero[0, 0] = [0.0, 1.0, 0.0, 0.0]  # exact zeros inside the valid region (float32 underflow)
    for base in (logits, tf.Variable(np.log(np.maximum(probs_zero, 1e-45)), dtype=tf.float32)):
        with tf.GradientTape() as tape:
            p = tf.nn.softmax(base, axis=-1)
            loss = tf.reduce_sum(ctc_batch_loss([p, tf.constant(labels), tf.constant(out_lens),
                                                 tf.constant(label_lens)]))
        grad = tape.gradient(loss, base).numpy()
        assert np.isfinite(loss.numpy())
        assert np.all(np.isfinite(grad))
        for b, t in enumerate(out_lens):
            assert np.all(grad[b, t:] == 0.0), f"utterance {b}: gradient reaches padding frames"
        assert np.abs(grad).sum() > 0


def test_gradient_matches_finite_differences_of_brute_force():
    """d loss / d logits (through the softmax) against central differences of the float64 reference."""
    rng = np.random.default_rng(5)
    t_len, label = 4, [1, 2]
    logits = rng.normal(size=(t_len, 3))

    def reference(z: np.ndarray) -> float:
        e = np.exp(z - z.max(-1, keepdims=True))
        return brute_force_nll(e / e.sum(-1, keepdims=True), label)

    eps = 1e-5
    numeric = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        step = np.zeros_like(logits)
        step[idx] = eps
        numeric[idx] = (reference(logits + step) - reference(logits - step)) / (2 * eps)
    z = tf.Variable(logits[None], dtype=tf.float32)
    with tf.GradientTape() as tape:
        loss = ctc_batch_loss([tf.nn.softmax(z), tf.constant([label], tf.int32), tf.constant([t_len]),
                               tf.constant([len(label)])])
    np.testing.assert_allclose(tape.gradient(loss, z).numpy()[0], numeric, atol=2e-4)


def test_identity_loss_returns_the_prediction():
    y_pred = tf.constant([[1.5], [2.5]])
    np.testing.assert_array_equal(identity_loss(tf.zeros([2]), y_pred).numpy(), y_pred.numpy())


@pytest.mark.parametrize(("batch", "parts"), [(1, 2), (2, 2), (5, 2), (5, 3), (4, 1)])
def test_loss_in_parts_is_the_batch_loss(batch, parts):
    rng = np.random.default_rng(batch)
    logits = tf.Variable(rng.normal(size=(batch, 9, 5)).astype(np.float32))
    lens = rng.integers(1, 4, size=batch)
    labels = np.full((batch, 3), PAD_INDEX, np.int32)
    for b, n in enumerate(lens):
        labels[b, :n] = rng.integers(1, 5, size=n)
    args = [labels, rng.integers(7, 10, size=batch).astype(np.int32), lens.astype(np.int32)]
    results = []
    for fn in (ctc_batch_loss, lambda a: ctc_loss_in_parts(a, parts)):
        with tf.GradientTape() as tape:
            loss = fn([tf.nn.softmax(logits), *args])
        results.append((loss.numpy(), tape.gradient(loss, logits).numpy()))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6, atol=1e-7)
