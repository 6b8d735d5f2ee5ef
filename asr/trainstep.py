"""The training model's train step, and the one module that reaches into Keras' and TensorFlow's private API.

    python -m pytest tests/test_trainstep.py    # the Keras version and the private hooks this module needs

`training_model_class()` is the class of `asr.model.build_training_model`'s model: a functional Keras model whose
train step skips a batch with a non-finite loss or gradient on every replica at once, so one bad batch never
reaches the weights or the optimizer state. Everything else is public API (`compute_loss`, an own loss tracker
listed by `metrics`, `tf.distribute`). Two private hooks remain, both here and nowhere else:

- `Model._maybe_symbolic_build` (overridden): under a distribution strategy Keras pulls the first batch of the
  dataset and averages it across replicas only to learn the input shapes, which fails for dict inputs under
  `MultiWorkerMirroredStrategy`; the model's own symbolic inputs give the shapes;
- `tf.__internal__.distribute.strategy_supports_no_merge_call()`: whether the optimizer update may sit inside a
  `tf.cond` in the replica context (one device) or must branch in the cross-replica context (mirrored).

They are tested on the Keras versions in `KERAS_VERSIONS` (pyproject.toml's bounds say the same): another
version is refused with one line before any training (`check_keras`), and tests/test_trainstep.py fails
loudly when a hook is missing.
"""

from __future__ import annotations

import functools
from typing import Any

from asr.errors import AsrError

# Keras versions this module's private hooks are tested on: [first, last) as (major, minor); pyproject.toml's
# `keras>=3.15,<3.16` says the same (tests/test_trainstep.py checks that the two agree).
KERAS_VERSIONS = ((3, 15), (3, 16))


def check_keras(version: str | None = None) -> None:
    """AsrError unless Keras (`version`, default: the installed one) is one this module is tested on."""
    if version is None:
        import keras

        version = keras.__version__
    first, stop = KERAS_VERSIONS
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if len(parts) != 2 or not first <= parts < stop:
        wanted = f"keras>={first[0]}.{first[1]},<{stop[0]}.{stop[1]}"
        raise AsrError(f"keras {version} is not supported by asr's train step (asr/trainstep.py uses Keras "
                       f"internals tested on {wanted}); install it: pip install '{wanted}'")


@functools.cache
def training_model_class() -> type:
    """The training model's class (defined lazily: Keras is imported only when a model is built)."""
    check_keras()
    import keras
    import tensorflow as tf

    class GuardedTrainingModel(keras.Model):
        """Functional model whose train step skips batches with a non-finite loss or gradient.

        The step returns `loss` (running mean of the applied batches) and `skipped` (1.0 if this batch
        was skipped, the same on every replica): `asr.train` counts, reports and limits skipped batches.
        `forward`, when set, computes `self(x, training=True)` another way (`asr.model`: the CPU path).
        """

        forward: Any = None  # function(model, x) -> loss [B, 1], or None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")

        def training_loss(self, x: dict) -> Any:
            """`self(x, training=True)`, or the same function computed by `forward(self, x)` when it is set."""
            return self.forward(self, x) if self.forward is not None else self(x, training=True)

        @property
        def metrics(self) -> list:  # the metrics that `fit` resets every epoch
            return [self.loss_tracker]

        def train_step(self, data: Any) -> dict:
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            with tf.GradientTape() as tape:
                y_pred = self.training_loss(x)  # [B, 1] per-utterance CTC loss
                loss = self.compute_loss(x=x, y=y, y_pred=y_pred, training=True)  # mean, / replicas
                scaled = self.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, self.trainable_variables)
            loss_scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
            # Under dynamic loss scaling an overflowing gradient is routine (the optimizer skips it and
            # lowers the scale); only a non-finite loss is a real problem then.
            finite = _all_finite([loss] if loss_scaled else [loss, *grads])
            bad = tf.distribute.get_replica_context().all_reduce("sum", 1.0 - tf.cast(finite, tf.float32))
            ok = bad == 0.0  # the same decision on every replica, or their weights would drift apart
            _apply_if(ok, self.optimizer, grads, self.trainable_variables, loss_scaled)
            batch = tf.cast(tf.shape(y_pred)[0], tf.float32)
            unscaled = tf.where(ok, loss * self.distribute_strategy.num_replicas_in_sync, 0.0)
            self.loss_tracker.update_state(unscaled, sample_weight=tf.where(ok, batch, 0.0))
            logs = {"loss": self.loss_tracker.result(), "skipped": 1.0 - tf.cast(ok, tf.float32)}
            if _multi_worker(self.distribute_strategy):
                # Keras reduces multi-worker step outputs with `strategy.reduce(..., axis=0)`: give them an axis.
                logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
            return logs

        def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
            # Private hook (see the module docstring): the shapes from the model's own symbolic inputs and
            # the dummy y_true [B], instead of the first batch averaged across replicas.
            y = keras.KerasTensor((None,), "float32")
            super()._maybe_symbolic_build(data_batch=(self.input, y))

    return GuardedTrainingModel


def _multi_worker(strategy: Any) -> bool:
    """A MultiWorkerMirroredStrategy over more than one worker (chief and workers of its cluster)."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    spec = strategy.cluster_resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs) > 1


def _all_finite(tensors: list[Any]) -> Any:
    """Scalar bool: every element of every tensor is finite."""
    import tensorflow as tf

    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors if t is not None])


def _apply_if(ok: Any, optimizer: Any, grads: list[Any], variables: list[Any], loss_scaled: bool) -> None:
    """`optimizer.apply(grads)` when `ok`, else nothing (weights, moments and step count stay as they are)."""
    import tensorflow as tf

    if loss_scaled:  # LossScaleOptimizer already applies only finite gradients, across replicas
        optimizer.apply(grads, variables)
    elif tf.__internal__.distribute.strategy_supports_no_merge_call():  # private hook (module docstring)
        tf.cond(ok, lambda: _apply(optimizer, grads, variables), lambda: tf.constant(False))
    else:
        # Mirrored/multi-worker: the optimizer's update calls merge_call, which may not run inside a cond
        # in a replica context; branch in the cross-replica context instead (as LossScaleOptimizer does).
        def cross_replica(strategy: Any, grads: list[Any], ok: Any) -> None:
            def apply_all() -> Any:
                strategy.extended.call_for_each_replica(lambda g: _apply(optimizer, g, variables), args=(grads,))
                return tf.constant(True)

            tf.cond(strategy.experimental_local_results(ok)[0], apply_all, lambda: tf.constant(False))

        tf.distribute.get_replica_context().merge_call(cross_replica, args=(grads, ok))


def _apply(optimizer: Any, grads: list[Any], variables: list[Any]) -> Any:
    """Apply the gradients; returns a constant so that it can be a `tf.cond` branch."""
    import tensorflow as tf

    optimizer.apply(grads, variables)
    return tf.constant(True)
