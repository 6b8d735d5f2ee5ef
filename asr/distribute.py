"""Several devices and machines: `train.strategy` -> a `tf.distribute` strategy and a sharded input pipeline.

    asr train --config configs/demo.yaml --set train.strategy=mirrored                 # all local GPUs
    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}' \
        asr train --config configs/demo.yaml --set train.strategy=multi_worker          # on each machine

- `default`: one device (the GPU if there is one, else the CPU), no distribution.
- `mirrored`: `MirroredStrategy` over every local GPU; without GPUs, over every logical CPU device (which
  is only useful for tests: split the CPU with `tf.config.set_logical_device_configuration` first).
- `multi_worker`: `MultiWorkerMirroredStrategy`, the cluster and this machine's place in it read from the
  `TF_CONFIG` environment variable; every worker runs the same command on the same data and `--out`
  (a shared file system, so that `--resume` finds the chief's checkpoint). Worker 0 (the chief) writes
  checkpoints, logs and bundles; the others only train.

Each global batch of `train.batch_size` utterances is cut into one part per replica; each machine's input
pipeline pads only the parts of its own replicas (`BatchSource.iterate`). Gradients are summed across
replicas, each replica's loss being its mean divided by the number of replicas (Keras' convention).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asr.errors import AsrError


@dataclass(frozen=True)
class Cluster:
    """The strategy and this process's place among the workers."""

    strategy: Any  # tf.distribute.Strategy
    name: str  # default | mirrored | multi_worker
    num_replicas: int  # replicas in sync, all workers together
    num_workers: int
    worker_index: int

    @property
    def is_chief(self) -> bool:
        """Worker 0 writes checkpoints, logs and bundles."""
        return self.worker_index == 0


def is_chief(name: str) -> bool:
    """Whether this process writes the run directory under strategy `name` (as `Cluster.is_chief`), known
    without TensorFlow: every process but the non-first workers of a multi_worker cluster."""
    return name != "multi_worker" or _tf_config_workers()[1] == 0


def make_cluster(name: str) -> Cluster:
    """Create the strategy named by `train.strategy`; must run before TensorFlow creates any tensor."""
    import tensorflow as tf

    if name == "default":
        strategy = tf.distribute.get_strategy()
        return Cluster(strategy, name, 1, 1, 0)
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        return Cluster(strategy, name, strategy.num_replicas_in_sync, 1, 0)
    assert name == "multi_worker", name  # the config checked the name (asr.config.TRAIN_CHOICES)
    workers, index = _tf_config_workers()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Cluster(strategy, name, strategy.num_replicas_in_sync, workers, index)


def _tf_config_workers() -> tuple[int, int]:
    """(number of workers, this worker's index) from TF_CONFIG; a chief task counts as worker 0."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        raise AsrError("train.strategy=multi_worker needs the TF_CONFIG environment variable (cluster and task), "
                       "see asr/distribute.py or the README")
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        chiefs = len(cluster.get("chief", []))
        index = int(task["index"]) + (chiefs if task["type"] == "worker" else 0)
        return chiefs + len(cluster.get("worker", [])), index
    except (ValueError, KeyError, TypeError) as err:
        raise AsrError(f"TF_CONFIG is not valid ({err!r}); expected "
                       '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}') from None


def distribute_dataset(cluster: Cluster, make: Callable[[int, list[int]], Any]) -> Any:
    """The training input for `model.fit`: `make(parts, part_ids)` builds one pipeline's `tf.data`.

    Without distribution that is the whole batch (`make(1, [0])`). Otherwise every input pipeline (one
    per worker) yields, for each global batch, the parts of its local replicas in replica order.
    """
    if cluster.num_replicas == 1 and cluster.num_workers == 1:
        return make(1, [0])

    def dataset_fn(ctx: Any) -> Any:
        local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
        first = ctx.input_pipeline_id * local
        return make(ctx.num_replicas_in_sync, list(range(first, first + local)))

    return cluster.strategy.distribute_datasets_from_function(dataset_fn)


def any_worker(cluster: Cluster, flag: bool) -> bool:
    """True on every worker if `flag` is True on any (e.g. early stopping: all workers must stop together)."""
    if cluster.num_workers == 1:
        return flag
    import tensorflow as tf

    strategy = cluster.strategy

    @tf.function  # collectives run eagerly would be slow and warned about
    def vote(x: Any) -> Any:
        return strategy.reduce("SUM", strategy.run(lambda: tf.identity(x)), axis=None)

    return float(vote(tf.constant(1.0 if flag else 0.0))) > 0
