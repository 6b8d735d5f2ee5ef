"""The CTC loss, in one place: the Lambda-layer function and the identity Keras loss.

    python -c "import asr.ctc"   # see tests/test_ctc.py for the brute-force check

The classic Keras pattern, done right:

    loss = Lambda(ctc_batch_loss)([probs, labels, out_lens, label_lens])   # [B, 1]
    model.compile(loss=identity_loss)  # Keras' y_true is a dummy; the real labels are a model input

- `probs`      float32 [B, T', V] softmax output, class BLANK_INDEX (0) is the blank.
- `labels`     int32 [B, L_max] char indices, padded with PAD_INDEX; the padding is never read.
- `out_lens`   int32 [B] per-utterance number of *output* frames (after subsampling); frames beyond
               it are padding and are never scored. No frame is thrown away.
- `label_lens` int32 [B] true transcript lengths.

The loss uses `tf.nn.ctc_loss` on sparse labels (the C++ kernel, 50-90x faster on CPU than the dense
`keras.ops.ctc_loss`). The sparse tensor is built from `label_lens`, not from `tf.sparse.from_dense`,
which would drop label value 0 and read padding.
"""

from __future__ import annotations

from typing import Any

from asr.text import BLANK_INDEX

LOG_FLOOR = 1e-30  # probs below this (float32 underflow) are floored before the log: no -inf, no NaN


def ctc_batch_loss(args: list[Any]) -> Any:
    """Per-utterance CTC negative log-likelihood, float32 [B, 1], from `[probs, labels, out_lens, label_lens]`."""
    import tensorflow as tf

    probs, labels, out_lens, label_lens = args
    labels = tf.cast(labels, tf.int32)
    label_lens = tf.reshape(tf.cast(label_lens, tf.int32), [-1])  # [B] or [B, 1] -> [B]
    out_lens = tf.reshape(tf.cast(out_lens, tf.int32), [-1])
    keep = tf.where(tf.sequence_mask(label_lens, maxlen=tf.shape(labels)[1]))  # [N, 2] positions of real labels
    sparse = tf.SparseTensor(keep, tf.gather_nd(labels, keep), tf.shape(labels, out_type=tf.int64))
    # log(softmax) is a valid input for ctc_loss's internal log_softmax: log_softmax(log p) = log p.
    log_probs = tf.math.log(tf.maximum(tf.cast(probs, tf.float32), LOG_FLOOR))
    loss = tf.nn.ctc_loss(labels=sparse, logits=log_probs, label_length=None, logit_length=out_lens,
                          logits_time_major=False, blank_index=BLANK_INDEX)
    return loss[:, None]  # [B] -> [B, 1]


def ctc_loss_in_parts(args: list[Any], parts: int) -> Any:
    """`ctc_batch_loss(args)`, the batch cut into `parts` contiguous pieces computed as separate ops.

    The CTC kernel spreads a batch over the intra-op threads only: with one thread per op (`train.threads`
    auto, on a CPU) the pieces run side by side on the inter-op threads instead (the bench batch's loss and
    gradient take 0.1-0.2 s on one core, 2026-12, while nothing else can run). A batch of fewer than
    `parts` utterances is computed whole.
    """
    import tensorflow as tf

    if parts < 2:
        return ctc_batch_loss(args)
    n = tf.shape(args[0])[0]

    def pieces() -> Any:
        bounds = [n * k // parts for k in range(parts + 1)]
        return tf.concat([ctc_batch_loss([a[bounds[k]:bounds[k + 1]] for a in args]) for k in range(parts)], 0)

    return tf.cond(n >= parts, pieces, lambda: ctc_batch_loss(args))


def identity_loss(y_true: Any, y_pred: Any) -> Any:
    """Keras loss that returns the model output: the Lambda layer already computed the CTC loss."""
    return y_pred


