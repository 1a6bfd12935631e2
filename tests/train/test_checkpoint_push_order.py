"""A chief killed in the middle of pushing its checkpoint to the store leaves a copy that a
restarted replica resumes from, with its history whole.

The chief's backup directory (tf-keras' BackupAndRestore and the trainer's HistoryRecorder,
as the trainer sets them up) is captured after each of two real epochs. The store is then
given the first epoch's push whole and the second's cut short after every file, in the order
`DirMirror.push` uploads (`push_order`); from each of those copies a new fit restores,
trains to the end and must hold every epoch in its history exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from landmarks.artifacts import HISTORY_FILE
from landmarks.train.callbacks import CHECKPOINT_STATE, HistoryRecorder, push_order

EPOCHS = 3


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def fit(backup: Path, snapshots: list[dict[str, bytes]] | None = None) -> tuple[list[int], Any]:
    """Train to EPOCHS with the backup at `backup`; the epochs run and the history kept."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    ran: list[int] = []

    class Snapshot(keras.callbacks.Callback):
        # Last, where the trainer's MirrorPush is: what the chief would push now.
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            ran.append(epoch + 1)
            if snapshots is not None:
                snapshots.append(files(backup))

    history = HistoryRecorder(backup / HISTORY_FILE, write=True)
    callbacks = [keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False), history]
    model.fit(
        np.ones((8, 3)),
        np.zeros((8, 2)),
        epochs=EPOCHS,
        verbose=0,
        callbacks=[*callbacks, Snapshot()],
    )
    return ran, history.epochs


def write(root: Path, content: dict[str, bytes]) -> Path:
    for rel, data in content.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def pushes(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, bytes]]:
    snapshots: list[dict[str, bytes]] = []
    fit(tmp_path_factory.mktemp("chief"), snapshots)
    return snapshots


def test_the_state_file_goes_up_after_the_checkpoint_it_names_and_the_history(
    pushes: list[dict[str, bytes]],
) -> None:
    order = push_order(pushes[1])
    assert order[-1].rsplit("/", 1)[-1] == CHECKPOINT_STATE, order
    assert order.index(HISTORY_FILE) < order.index(order[-1]), order


def test_a_push_cut_short_after_any_file_resumes_with_the_whole_history(
    pushes: list[dict[str, bytes]], tmp_path: Path
) -> None:
    first, second = pushes[0], pushes[1]
    order = push_order(second)
    assert len(order) >= 4, order  # state, data, index, history
    for sent in range(len(order) + 1):
        store = write(tmp_path / f"cut-{sent}", first)
        write(store, {rel: second[rel] for rel in order[:sent]})
        ran, history = fit(store)
        resumed = 2 if sent == len(order) else 1
        assert ran == list(range(resumed + 1, EPOCHS + 1)), (order[:sent], ran)
        assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1)), (
            order[:sent],
            history,
        )
