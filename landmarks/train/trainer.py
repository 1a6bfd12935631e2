"""One training run: the code every TFJob replica (or a lone local process) executes.

Order matters under MultiWorkerMirroredStrategy: everything that can fail on bad input
(the label map, the class folders) is checked before the strategy is created, so every
worker fails alike instead of leaving its peers waiting; the strategy is created before
any other TensorFlow op; every worker saves the model (tf-keras' save runs collectives),
and only the chief's copy is kept.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from landmarks import storage
from landmarks.artifacts import CONFIG_FILE, HISTORY_FILE, LABEL_MAP, MODEL_FILE
from landmarks.errors import InputError
from landmarks.train.data import SplitData, load_split, stage_locally
from landmarks.train.recipe import TrainConfig
from landmarks.train.tf_config import Replica, current_replica, make_strategy

log = logging.getLogger(__name__)

LOGS_DIR = "logs"
CHECKPOINT_SUBDIR = ".checkpoint"


@dataclass
class TrainResult:
    model_dir: str
    history: list[dict[str, Any]] = field(default_factory=list)
    is_chief: bool = True


def default_checkpoint_dir(out: str) -> str:
    """Checkpoints live beside the outputs unless told otherwise; removed after success."""
    return storage.join(out, CHECKPOINT_SUBDIR)


def train(
    cfg: TrainConfig,
    data: str,
    out: str,
    *,
    checkpoint_dir: str | None = None,
    stage_dir: str | None = None,
    replica: Replica | None = None,
) -> TrainResult:
    """Train `cfg` on the split at `data`, writing the model and its records to `out`.

    `out` and `checkpoint_dir` may be local paths or gs://, s3://, minio:// URIs. A rerun with
    the same checkpoint directory resumes after the last finished epoch.
    """
    replica = replica or current_replica()
    if cfg.batch_size % replica.num_workers:
        raise InputError(
            f"the global batch ({cfg.batch_size}) must divide evenly among "
            f"{replica.num_workers} workers",
            field="batch_size",
        )
    split = load_split(stage_locally(data, stage_dir), cfg.max_images_per_class)
    if len(split.train) < replica.num_workers:
        raise InputError(
            f"{len(split.train)} training images cannot be shared among "
            f"{replica.num_workers} workers",
            file=storage.join(data, "train"),
        )
    checkpoint_dir = checkpoint_dir or default_checkpoint_dir(out)
    log.info(
        "%s: %s on %d classes, %d workers (chief: %s), checkpoints in %s",
        replica.label,
        cfg.model,
        split.label_map.num_classes,
        replica.num_workers,
        replica.is_chief,
        checkpoint_dir,
    )

    strategy = make_strategy(replica)  # blocks until every worker has joined
    return _fit_and_save(cfg, split, out, checkpoint_dir, replica, strategy)


def _fit_and_save(
    cfg: TrainConfig,
    split: SplitData,
    out: str,
    checkpoint_dir: str,
    replica: Replica,
    strategy: Any,
) -> TrainResult:
    import tensorflow as tf
    import tf_keras as keras

    from landmarks.train import callbacks as cb
    from landmarks.train import tfdata
    from landmarks.train.models import build_model

    # Same initial weights, augmentation and shuffles on a rerun; under the strategy the
    # chief's initial values are what every worker starts from anyway.
    keras.utils.set_random_seed(cfg.seed)
    work = Path(tempfile.mkdtemp(prefix=f"landmarks-train-{replica.label}-"))
    try:
        with strategy.scope():
            model = build_model(cfg, split.label_map.num_classes)

        shard_ids: list[int] = []

        def train_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
            shard_ids.append(ctx.input_pipeline_id)
            return tfdata.train_dataset(split.train.paths, split.train.labels, cfg, ctx)

        train_ds = strategy.distribute_datasets_from_function(train_fn)
        steps = math.ceil(len(split.train) / cfg.batch_size)
        fit_kwargs: dict[str, Any] = {}
        plan = tfdata.eval_plan(
            len(split.validation), cfg.batch_size // replica.num_workers, replica.num_workers
        )
        if plan is not None:

            def eval_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
                return tfdata.eval_dataset(
                    split.validation.paths, split.validation.labels, cfg, plan.batch, ctx
                )

            fit_kwargs["validation_data"] = strategy.distribute_datasets_from_function(eval_fn)
            fit_kwargs["validation_steps"] = plan.steps
        elif len(split.validation):
            log.warning(
                "%d validation images cannot be shared among %d workers; no validation",
                len(split.validation),
                replica.num_workers,
            )

        checkpoints = cb.DirMirror(checkpoint_dir, work / "checkpoint")
        checkpoints.pull()
        logs = cb.DirMirror(storage.join(out, LOGS_DIR), work / LOGS_DIR)
        history = cb.HistoryRecorder(checkpoints.local / HISTORY_FILE, write=replica.is_chief)
        callbacks: list[Any] = [
            cb.EpochStats(steps * cfg.batch_size),
            keras.callbacks.BackupAndRestore(str(checkpoints.local), delete_checkpoint=False),
            history,
            keras.callbacks.TensorBoard(
                str(logs.local if replica.is_chief else work / "tb-discarded"),
                histogram_freq=0,
                write_graph=False,
                profile_batch=0,
            ),
            cb.ProgressLog(replica.label, cfg.epochs, steps),
        ]
        if replica.is_chief:
            callbacks.append(cb.MirrorPush([checkpoints, logs]))

        try:
            model.fit(
                train_ds,
                epochs=cfg.epochs,
                steps_per_epoch=steps,
                callbacks=callbacks,
                verbose=0,
                **fit_kwargs,
            )
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
            shard = shard_ids[-1] if shard_ids else 0
            suspects = tfdata.shard_paths(split.train.paths, replica.num_workers, shard)
            suspects += tfdata.shard_paths(split.validation.paths, replica.num_workers, shard)
            found = tfdata.unreadable_image_error(suspects, cfg.image_size)
            if found is not None:
                raise found from err
            raise

        # Every worker saves (tf-keras' save runs collectives); non-chiefs then discard.
        # Saved in the work directory and copied through storage, so `out` never holds a
        # half-written model, local or in an object store.
        saved = work / "model" / MODEL_FILE
        saved.parent.mkdir(parents=True, exist_ok=True)
        model.save(str(saved))
        if replica.is_chief:
            storage.copy(str(saved), storage.join(out, MODEL_FILE))
            files = {
                LABEL_MAP: split.label_map.text.encode(),
                CONFIG_FILE: json.dumps(cfg.to_dict(), indent=1).encode(),
                # Last: the launcher reads it as the finished run's record.
                HISTORY_FILE: json.dumps(history.epochs, indent=1).encode(),
            }
            for name, payload in files.items():
                storage.write_bytes(storage.join(out, name), payload)
            logs.push()
            # Only now is the epoch-by-epoch state no longer needed to avoid losing work.
            checkpoints.clear()
            log.info("saved %s to %s", MODEL_FILE, out)
        return TrainResult(out, history.epochs, replica.is_chief)
    finally:
        shutil.rmtree(work, ignore_errors=True)
