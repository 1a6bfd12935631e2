"""The trainer as it runs in a TFJob replica: real TensorFlow processes on tiny splits."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from landmarks import storage
from landmarks.artifacts import CONFIG_FILE, HISTORY_FILE, LABEL_MAP, MODEL_FILE
from landmarks.tfjob import LocalTFJob, training_job
from tests.support.net import free_port
from tests.train.conftest import TRAINER_ENV, RunTrainer, trainer_env
from tests.train.splits import make_split

TINY = ["--stage", "stage1", "--profile", "tiny"]
EPOCH_LINE = re.compile(r"(worker|chief)-\d epoch (\d+)/(\d+)")


def _history(model_dir: Path) -> list[dict]:
    return json.loads((model_dir / HISTORY_FILE).read_text())


@pytest.mark.slow
def test_single_process_writes_a_reloadable_model_and_its_records(
    tiny_split: Path, tmp_path: Path, run_trainer: RunTrainer
) -> None:
    out = tmp_path / "model"
    done = run_trainer([*TINY, "--data", str(tiny_split), "--out", str(out), "--set", "epochs=3"])
    assert done.returncode == 0, done.stderr

    assert sorted(p.name for p in out.iterdir()) == [
        CONFIG_FILE,
        HISTORY_FILE,
        LABEL_MAP,
        "logs",
        MODEL_FILE,
    ]
    assert (out / LABEL_MAP).read_text() == (tiny_split / LABEL_MAP).read_text()
    assert json.loads((out / CONFIG_FILE).read_text())["model"] == "lenet5"
    history = _history(out)
    assert [e["epoch"] for e in history] == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "images_per_sec", "seconds"):
        assert all(e[key] is not None for e in history), key
    assert list((out / "logs" / "train").glob("events.out.tfevents.*"))

    # The saved model is the trained one: plain tf_keras reproduces the last
    # validation accuracy, in label-map order, from raw 0..255 pixels.
    import tf_keras

    import landmarks.train
    from landmarks.train.data import load_split
    from landmarks.train.tfdata import load_image

    model = tf_keras.models.load_model(str(out / MODEL_FILE), compile=False)
    assert landmarks.train.load_model(out).output_shape == (None, 3)
    validation = load_split(str(tiny_split)).validation
    images = np.stack([load_image(p, 32).numpy() for p in validation.paths])
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == np.array(validation.labels)))
    assert accuracy == pytest.approx(history[-1]["val_accuracy"], abs=1e-6)


def _run_job(job: LocalTFJob) -> tuple[threading.Thread, dict]:
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", job.run()))
    thread.start()
    return thread, box


@pytest.mark.slow
def test_two_workers_learn_like_one_process(tmp_path: Path, run_trainer: RunTrainer) -> None:
    # Noisy colours: learning takes several epochs, so the curves can be compared.
    split = make_split(tmp_path / "split", classes=3, train=32, validation=12, noise=150)
    settings = {"epochs": 6, "batch_size": 16, "max_images_per_class": 0}
    sets = [f"--set={k}={v}" for k, v in settings.items()]
    alone = run_trainer([*TINY, "--data", str(split), "--out", str(tmp_path / "one"), *sets])
    assert alone.returncode == 0, alone.stderr

    log = io.StringIO()
    manifest = training_job(
        "two-workers",
        stage="stage1",
        data=str(split),
        out=str(tmp_path / "two"),
        profile="tiny",
        overrides=settings,
        workers=2,
    ).to_manifest()
    result = LocalTFJob(manifest, timeout=240, output=log, extra_env=TRAINER_ENV).run()
    assert result.succeeded, log.getvalue()[-3000:]
    text = log.getvalue()
    assert "[worker-0] " in text and "[worker-1] " in text

    one, two = _history(tmp_path / "one"), _history(tmp_path / "two")
    print("1 process:", [(e["loss"], e["val_accuracy"]) for e in one])
    print("2 workers:", [(e["loss"], e["val_accuracy"]) for e in two])
    assert len(one) == len(two) == 6
    for run in (one, two):
        assert run[-1]["loss"] < 0.6 * run[0]["loss"]
        assert run[-1]["val_accuracy"] >= 0.9
    assert abs(one[-1]["val_accuracy"] - two[-1]["val_accuracy"]) <= 0.15
    # Only the chief's copy is kept, and no worker left a checkpoint behind.
    assert (tmp_path / "two" / MODEL_FILE).is_file()
    assert not (tmp_path / "two" / ".checkpoint").exists()


@pytest.mark.slow
def test_chief_and_worker_train_and_only_the_chief_writes(tiny_split: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    manifest = training_job(
        "with-chief",
        stage="stage1",
        data=str(tiny_split),
        out=str(out),
        profile="tiny",
        overrides={"epochs": 2},
        workers=1,
        chief=True,
    ).to_manifest()
    log = io.StringIO()
    result = LocalTFJob(manifest, timeout=240, output=log, extra_env=TRAINER_ENV).run()
    assert result.succeeded, log.getvalue()[-3000:]
    text = log.getvalue()
    assert "[chief-0] " in text and "chief-0: lenet5 on 3 classes, 2 workers (chief: True)" in text
    assert "worker-0: lenet5 on 3 classes, 2 workers (chief: False)" in text
    assert [e["epoch"] for e in _history(out)] == [1, 2]
    assert sorted(p.name for p in out.iterdir()) == [
        CONFIG_FILE,
        HISTORY_FILE,
        LABEL_MAP,
        "logs",
        MODEL_FILE,
    ]


@pytest.mark.slow
def test_killed_worker_is_restarted_and_training_resumes(tmp_path: Path) -> None:
    split = make_split(tmp_path / "split", classes=3, train=80, validation=6)
    out = tmp_path / "model"
    epochs = 10
    manifest = training_job(
        "resume",
        stage="stage1",
        data=str(split),
        out=str(out),
        profile="tiny",
        overrides={"epochs": epochs, "max_images_per_class": 0},
        workers=2,
    ).to_manifest()
    log = io.StringIO()
    job = LocalTFJob(manifest, timeout=300, output=log, extra_env=TRAINER_ENV)
    thread, box = _run_job(job)
    checkpoint_history = out / ".checkpoint" / HISTORY_FILE
    killed_after = 0
    while thread.is_alive() and not killed_after:
        if checkpoint_history.exists():
            done = len(json.loads(checkpoint_history.read_text()))
            if done >= 2:
                assert done < epochs, "training finished before the worker could be killed"
                os.kill(job.replicas[1].proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                killed_after = done
        time.sleep(0.05)
    thread.join()
    text = log.getvalue()
    result = box["result"]
    assert result.succeeded, text[-3000:]

    assert "[executor] worker-1 exited 137 (retryable)" in text
    # The survivor sees its peer vanish and asks to be restarted (>= 128), not to fail.
    assert re.search(r"\[executor\] worker-0 exited 138 \(retryable\)", text), text[-3000:]
    restart = text.index("[executor] worker-1 exited 137")
    resumed_at = [int(m.group(2)) for m in EPOCH_LINE.finditer(text[restart:])]
    assert resumed_at and resumed_at[0] > 1, "the restarted job trained from epoch 1 again"
    assert resumed_at[0] >= killed_after
    assert [e["epoch"] for e in _history(out)] == list(range(1, epochs + 1))


@pytest.mark.slow
def test_restarted_process_resumes_from_its_last_epoch(tmp_path: Path) -> None:
    split = make_split(tmp_path / "split", classes=3, train=80, validation=6)
    out = tmp_path / "model"
    args = [
        sys.executable, "-m", "landmarks.train", *TINY, "--data", str(split), "--out", str(out),
        "--set", "epochs=20", "--set", "max_images_per_class=0",
    ]  # fmt: skip
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    first = subprocess.Popen(args, env=trainer_env(), **quiet)
    checkpoint_history = out / ".checkpoint" / HISTORY_FILE
    try:
        while first.poll() is None:
            if checkpoint_history.exists() and len(json.loads(checkpoint_history.read_text())) >= 2:
                first.kill()
                break
            time.sleep(0.05)
    finally:
        first.wait()
    assert first.returncode == -signal.SIGKILL, "training finished before it could be killed"
    saved = len(json.loads(checkpoint_history.read_text()))

    second = subprocess.run(args, env=trainer_env(), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    epochs_run = [int(m.group(2)) for m in EPOCH_LINE.finditer(second.stderr)]
    assert epochs_run[0] == saved + 1
    assert [e["epoch"] for e in _history(out)] == list(range(1, 21))


@pytest.mark.slow
def test_corrupt_image_is_named_and_exits_2(
    tiny_split: Path, tmp_path: Path, run_trainer: RunTrainer
) -> None:
    split = tmp_path / "split"
    shutil.copytree(tiny_split, split)
    broken = split / "train" / "10" / sorted(os.listdir(split / "train" / "10"))[2]
    broken.write_bytes(broken.read_bytes()[:300])
    done = run_trainer([*TINY, "--data", str(split), "--out", str(tmp_path / "model")])
    assert done.returncode == 2, done.stderr
    assert f"error: {broken}: not a readable JPEG image" in done.stderr


def test_unknown_class_in_validation_exits_2_naming_the_folder(
    tiny_split: Path, tmp_path: Path, run_trainer: RunTrainer
) -> None:
    split = tmp_path / "split"
    shutil.copytree(tiny_split, split)
    (split / "validation" / "4242").mkdir()
    shutil.copy(next((split / "validation" / "7").iterdir()), split / "validation" / "4242")
    done = run_trainer([*TINY, "--data", str(split), "--out", str(tmp_path / "model")])
    assert done.returncode == 2
    assert "validation/4242: class folder '4242' is not in label_map.csv" in done.stderr
    assert not (tmp_path / "model").exists()


def test_empty_class_exits_2_naming_the_class(
    tiny_split: Path, tmp_path: Path, run_trainer: RunTrainer
) -> None:
    split = tmp_path / "split"
    shutil.copytree(tiny_split, split)
    shutil.rmtree(split / "train" / "13")
    done = run_trainer([*TINY, "--data", str(split), "--out", str(tmp_path / "model")])
    assert done.returncode == 2
    assert "train/13: class '13' (class_index 2) has no train images" in done.stderr


@pytest.fixture(scope="module")
def vgg16_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VGG16 no-top weights file in the official layout (random values, 58 MB)."""
    path = tmp_path_factory.mktemp("weights") / "vgg16_notop.h5"
    code = (
        "import sys, landmarks.train, tf_keras as k; "
        "k.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))"
        ".save_weights(sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], env=trainer_env(), check=True)
    return path


@pytest.mark.slow
def test_weights_from_a_local_file_are_loaded_and_frozen_blocks_kept(
    tiny_split: Path, tmp_path: Path, run_trainer: RunTrainer, vgg16_weights: Path
) -> None:
    out = tmp_path / "model"
    done = run_trainer(
        f"--stage=stage2-vgg16 --profile=tiny --data={tiny_split} --out={out} "
        f"--set=epochs=1 --weights={vgg16_weights}".split()
    )
    assert done.returncode == 0, done.stderr
    import h5py
    import tf_keras

    import landmarks.train  # noqa: F401

    base = tf_keras.models.load_model(str(out / MODEL_FILE), compile=False).get_layer("vgg16")
    with h5py.File(vgg16_weights, "r") as saved:
        frozen = np.asarray(saved["block1_conv1"]["block1_conv1"]["kernel:0"])
        trained = np.asarray(saved["block5_conv3"]["block5_conv3"]["kernel:0"])
    assert np.array_equal(base.get_layer("block1_conv1").get_weights()[0], frozen)
    assert not np.array_equal(base.get_layer("block5_conv3").get_weights()[0], trained)


@pytest.mark.slow
def test_weights_of_another_architecture_exit_2_naming_the_file(
    tiny_split: Path, tmp_path: Path, run_trainer: RunTrainer, vgg16_weights: Path
) -> None:
    done = run_trainer(
        f"--stage=stage2-resnet50 --profile=tiny --data={tiny_split} "
        f"--out={tmp_path / 'model'} --weights={vgg16_weights}".split()
    )
    assert done.returncode == 2, done.stderr
    assert f"error: {vgg16_weights}, field 'weights': not a weights file for resnet50" in (
        done.stderr
    )


@pytest.mark.slow
def test_offline_imagenet_download_says_how_to_pass_a_path(
    tiny_split: Path, tmp_path: Path, run_trainer: RunTrainer
) -> None:
    # A proxy that refuses connections: the download fails as on an air-gapped cluster.
    closed = f"http://127.0.0.1:{free_port()}"
    done = run_trainer(
        f"--stage=stage2-resnet50 --profile=tiny --data={tiny_split} "
        f"--out={tmp_path / 'model'}".split(),
        env={"https_proxy": closed, "HTTPS_PROXY": closed, "KERAS_HOME": str(tmp_path / "k")},
    )
    assert done.returncode == 2, done.stderr
    assert "could not download the ImageNet weights of resnet50" in done.stderr
    assert "--weights /models/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in done.stderr


@pytest.mark.slow
def test_gcs_split_in_and_model_out_through_the_emulator(
    tiny_split: Path, tmp_path: Path, run_trainer: RunTrainer, gcs_bucket: str
) -> None:
    data = storage.join(gcs_bucket, "splits/tiny")
    out = storage.join(gcs_bucket, "models/stage1")
    storage.upload_tree(tiny_split, data)
    done = run_trainer(
        [*TINY, "--data", data, "--out", out, "--stage-dir", str(tmp_path / "stage")]
    )
    assert done.returncode == 0, done.stderr
    files = set(storage.list_files(out))
    assert {MODEL_FILE, LABEL_MAP, HISTORY_FILE, CONFIG_FILE} <= files
    assert any(f.startswith("logs/train/events.out.tfevents") for f in files)
    assert not any(f.startswith(".checkpoint/") for f in files)

    import landmarks.train

    assert landmarks.train.load_model(out).output_shape == (None, 3)


def test_a_real_error_exits_1_with_the_error_printed(
    tiny_split: Path, tmp_path: Path, run_trainer: RunTrainer
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = run_trainer([*TINY, "--data", str(tiny_split), "--out", str(blocker / "model")])
    assert done.returncode == 1
    assert "error: " in done.stderr and "file/model" in done.stderr


def test_show_config_prints_the_resolved_settings(run_trainer: RunTrainer) -> None:
    done = run_trainer(
        ["--stage", "stage3", "--profile", "demo", "--set", "epochs=4", "--show-config"]
    )
    assert done.returncode == 0, done.stderr
    cfg = json.loads(done.stdout)
    assert (cfg["model"], cfg["epochs"], cfg["learning_rate"], cfg["augment"]) == (
        "resnet50",
        4,
        0.000157,
        True,
    )


def test_bad_setting_exits_2(run_trainer: RunTrainer) -> None:
    done = run_trainer(["--stage", "stage1", "--set", "epocs=3", "--show-config"])
    assert done.returncode == 2
    assert "did you mean epochs" in done.stderr


def test_lost_peer_errors_are_retryable_and_others_are_not() -> None:
    import tensorflow as tf

    from landmarks.train.cli import _peer_lost

    assert _peer_lost(tf.errors.UnavailableError(None, None, "peer stopped sending heartbeats"))
    assert _peer_lost(tf.errors.AbortedError(None, None, "Collective ops is aborted by: x"))
    assert _peer_lost(tf.errors.InternalError(None, None, "Collective ops is aborted by: x"))
    assert not _peer_lost(tf.errors.InvalidArgumentError(None, None, "Invalid JPEG data"))
    assert not _peer_lost(ValueError("Socket closed"))
