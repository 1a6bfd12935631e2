import json

import pytest

from landmarks.errors import InputError
from landmarks.train.recipe import (
    PROFILES,
    STAGES,
    TrainConfig,
    config_from_dict,
    parse_overrides,
    resolve_config,
)


def test_stage_presets_carry_the_seed_recipe() -> None:
    stage1 = resolve_config("stage1")
    assert (stage1.model, stage1.image_size, stage1.batch_size) == ("lenet5", 128, 128)
    vgg = resolve_config("stage2-vgg16")
    assert (vgg.model, vgg.learning_rate, vgg.batch_size, vgg.epochs) == ("vgg16", 1e-4, 128, 160)
    assert vgg.weights == "imagenet" and vgg.frozen_blocks == ("block1", "block2")
    resnet = resolve_config("stage2-resnet50")
    assert (resnet.model, resnet.learning_rate, resnet.epochs) == ("resnet50", 1e-4, 80)
    assert not resnet.augment and not resnet.train_batchnorm
    stage3 = resolve_config("stage3")
    assert (stage3.model, stage3.learning_rate, stage3.epochs) == ("resnet50", 0.000157, 22)
    assert stage3.augment and stage3.rotation_range > 0 and stage3.zoom_range > 0
    assert stage3.width_shift_range > 0 and stage3.height_shift_range > 0


def test_profile_then_overrides_win_over_the_preset() -> None:
    cfg = resolve_config("stage3", "demo", {"epochs": 1})
    assert cfg.image_size == PROFILES["demo"]["image_size"]
    assert cfg.epochs == 1
    assert cfg.learning_rate == STAGES["stage3"]["learning_rate"]


def test_overrides_are_typed_from_the_field() -> None:
    parsed = parse_overrides(
        [
            "epochs=5",
            "learning_rate=3e-4",
            "augment=yes",
            "frozen_blocks=conv1, conv2",
            "weights=/w.h5",
        ]
    )
    assert parsed == {
        "epochs": 5,
        "learning_rate": 3e-4,
        "augment": True,
        "frozen_blocks": ("conv1", "conv2"),
        "weights": "/w.h5",
    }
    assert parse_overrides(["frozen_blocks="]) == {"frozen_blocks": ()}


def test_unknown_setting_suggests_the_close_name() -> None:
    with pytest.raises(InputError, match="did you mean learning_rate"):
        parse_overrides(["learnin_rate=0.1"])


def test_bad_value_names_the_field() -> None:
    with pytest.raises(InputError, match="field 'epochs'"):
        parse_overrides(["epochs=many"])
    with pytest.raises(InputError, match=r"field 'zoom_range'.*below 1"):
        resolve_config("stage3", overrides={"zoom_range": 1.5})
    with pytest.raises(InputError, match=r"field 'image_size'.*at least 32"):
        resolve_config("stage2-resnet50", overrides={"image_size": 16})
    with pytest.raises(InputError, match="no ImageNet weights for lenet5"):
        resolve_config("stage1", overrides={"weights": "imagenet"})


def test_unknown_stage_and_profile_are_refused() -> None:
    with pytest.raises(InputError, match="unknown stage 'stage9'"):
        resolve_config("stage9")
    with pytest.raises(InputError, match="unknown profile"):
        resolve_config("stage1", "huge")


def test_saved_config_round_trips() -> None:
    cfg = resolve_config("stage2-resnet50", "tiny")
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert isinstance(TrainConfig().validate(), TrainConfig)


def test_demo_profile_keeps_the_seeds_128px_smoke_run_and_shrinks_the_big_models() -> None:
    assert resolve_config("stage1", "demo").image_size == 128
    for stage in ("stage2-vgg16", "stage2-resnet50", "stage3"):
        assert resolve_config(stage, "demo").image_size == 64
    # A command-line override still has the last word.
    assert resolve_config("stage1", "demo", {"image_size": 96}).image_size == 96
