"""Keras callbacks of the trainer: throughput, a history that survives restarts, progress
lines for pod logs, and mirroring of local directories to an object store."""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import tf_keras as keras

from landmarks import storage

log = logging.getLogger(__name__)

# TensorFlow's checkpoint state file: the name of the newest checkpoint in its directory.
CHECKPOINT_STATE = "checkpoint"


def push_order(paths: Iterable[str]) -> list[str]:
    """The order in which `DirMirror.push` uploads `paths`, so that a replica killed in the
    middle of a push leaves a remote copy that a restart can resume from.

    A checkpoint state file goes up after everything else: sent before the checkpoint it
    names, a kill in between would leave it pointing at data that is not there, and every
    restart would fail restoring it. It also follows the history beside it: a history one
    epoch ahead of the restored checkpoint loses that epoch's row to the one trained again,
    a history one epoch behind would lose the row for good.
    """
    return sorted(paths, key=lambda rel: (PurePosixPath(rel).name == CHECKPOINT_STATE, rel))


class DirMirror:
    """A local working directory kept in step with a local or object-store directory.

    TensorFlow writes checkpoints and TensorBoard events to local files; `push` copies
    new and changed files up and removes remote files that disappeared locally, `pull`
    fetches the remote copy (a restarted pod starts with an empty disk). When the
    remote is itself a local path, both are no-ops on that very directory.
    """

    def __init__(self, remote: str, local: str | Path) -> None:
        self.remote = remote
        self.local = Path(local) if storage.is_remote(remote) else Path(remote)
        self._sent: dict[str, tuple[int, int]] = {}

    @property
    def is_remote(self) -> bool:
        return storage.is_remote(self.remote)

    def pull(self) -> None:
        if self.is_remote:
            storage.download_tree(self.remote, str(self.local))
            self._sent = {rel: self._stamp(rel) for rel in self._local_files()}

    def push(self) -> None:
        if not self.is_remote:
            return
        present = set(self._local_files())
        for rel in push_order(present):
            stamp = self._stamp(rel)
            if self._sent.get(rel) != stamp:
                storage.write_bytes(storage.join(self.remote, rel), (self.local / rel).read_bytes())
                self._sent[rel] = stamp
        for rel in list(storage.list_files(self.remote)):
            if rel not in present:
                storage.delete(storage.join(self.remote, rel))
                self._sent.pop(rel, None)

    def clear(self) -> None:
        """Remove the remote directory's files (and the local copy of a remote one)."""
        if self.is_remote:
            for rel in list(storage.list_files(self.remote)):
                storage.delete(storage.join(self.remote, rel))
        shutil.rmtree(self.local, ignore_errors=True)

    def _local_files(self) -> list[str]:
        if not self.local.exists():
            return []
        return [p.relative_to(self.local).as_posix() for p in self.local.rglob("*") if p.is_file()]

    def _stamp(self, rel: str) -> tuple[int, int]:
        stat = (self.local / rel).stat()
        return stat.st_size, stat.st_mtime_ns


class EpochStats(keras.callbacks.Callback):
    """Adds `images_per_sec` (training part of the epoch) and `seconds` to each epoch's logs.

    Put it first in the callback list: later callbacks (history, TensorBoard) see the
    added keys.
    """

    def __init__(self, images_per_epoch: int) -> None:
        super().__init__()
        self.images_per_epoch = images_per_epoch
        self._start = 0.0
        self._train_end: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()
        self._train_end = None

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        train_seconds = (self._train_end or now) - self._start
        if logs is not None:
            logs["images_per_sec"] = self.images_per_epoch / max(train_seconds, 1e-9)
            logs["seconds"] = now - self._start


class HistoryRecorder(keras.callbacks.Callback):
    """Per-epoch history kept beside the checkpoints, so a resumed run keeps it whole.

    Only the chief writes; after a restart, epochs from the restored one onward are
    replaced by the new run's.
    """

    def __init__(self, path: Path, write: bool) -> None:
        super().__init__()
        self.path = path
        self.write = write
        self.epochs: list[dict[str, Any]] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.path.is_file():
            self.epochs = json.loads(self.path.read_text())

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row: dict[str, Any] = {"epoch": epoch + 1}
        for key, value in (logs or {}).items():
            number = float(value)
            row[key] = number if math.isfinite(number) else None
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch + 1] + [row]
        if self.write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".part")
            tmp.write_text(json.dumps(self.epochs, indent=1))
            tmp.replace(self.path)


class MirrorPush(keras.callbacks.Callback):
    """After each epoch's checkpoint, copy the chief's files to their remote home."""

    def __init__(self, mirrors: list[DirMirror]) -> None:
        super().__init__()
        self.mirrors = mirrors

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for mirror in self.mirrors:
            mirror.push()


class ProgressLog(keras.callbacks.Callback):
    """One line per epoch, and one every `interval` seconds within long epochs."""

    def __init__(self, label: str, epochs: int, steps: int, interval: float = 30.0) -> None:
        super().__init__()
        self.label = label
        self.epochs = epochs
        self.steps = steps
        self.interval = interval
        self._last = 0.0
        self._epoch = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._last = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            log.info(
                "%s epoch %d/%d step %d/%d %s",
                self.label,
                self._epoch + 1,
                self.epochs,
                batch + 1,
                self.steps,
                _fmt(logs),
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._last = time.monotonic()
        log.info("%s epoch %d/%d %s", self.label, epoch + 1, self.epochs, _fmt(logs))


def _fmt(logs: dict[str, Any] | None) -> str:
    parts = []
    for key, value in (logs or {}).items():
        if key in ("images_per_sec", "seconds"):
            parts.append(f"{key}={float(value):.1f}")
        else:
            parts.append(f"{key}={float(value):.4f}")
    return " ".join(parts)
