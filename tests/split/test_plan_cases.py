"""The split plan on its own (no files): filters, groups of identical images, the seeded
assignment and the errors, each on a small hand-made ingest."""

from __future__ import annotations

import random

import pytest

from landmarks.errors import LandmarksError
from landmarks.split.label_map import LabelEntry
from landmarks.split.plan import SPLITS, IngestImage, Plan, allocate, order_key, plan_split

RATIOS = (0.6, 0.2, 0.2)


def _images(spec: dict[int, int], *, prefix: str = "") -> list[IngestImage]:
    """`spec[landmark] = n`: n distinct images of that landmark, ids `<prefix><lm>-<i>`."""
    out = []
    for landmark, n in spec.items():
        for i in range(n):
            key = f"{prefix}{landmark}-{i}"
            out.append(IngestImage(key, landmark, f"sha-{key}", f"img/{key}.jpg", len(out) + 2))
    return out


def _plan(images: list[IngestImage], **options: object) -> Plan:
    settings: dict = {"min_images": 1, "top_k": None, "max_per_class": None, "seed": 7}
    settings.update(options)
    return plan_split(images, {}, ratios=RATIOS, **settings)


def _split_of(plan: Plan) -> dict[str, str]:
    return {row.id: row.split for row in plan.rows}


# -- allocate -----------------------------------------------------------------------------------


def test_allocation_follows_the_largest_remainder_ties_to_validation_before_test() -> None:
    # 7 * (0.5, 0.25, 0.25) = 3.5, 1.75, 1.75 -> floors 3, 1, 1; the two spare groups go
    # to the largest remainders (.75, .75) before train's .5.
    assert allocate(7, (0.5, 0.25, 0.25)) == (3, 2, 2)
    # 5 * (0.5, 0.3, 0.2) = 2.5, 1.5, 1 -> 2, 1, 1; the spare one: .5 vs .5, train first.
    assert allocate(5, (0.5, 0.3, 0.2)) == (3, 1, 1)


def test_allocation_minimums_win_over_a_zero_ratio() -> None:
    assert allocate(3, (1.0, 0.0, 0.0)) == (1, 1, 1)
    assert allocate(2, (0.0, 0.0, 1.0)) == (1, 1, 0)
    assert allocate(1, (0.0, 0.0, 1.0)) == (1, 0, 0)


def test_allocation_overshoot_is_taken_back_from_the_most_over_served_split() -> None:
    # 4 * (0, .5, .5) = 0, 2, 2; train's minimum makes 5: validation and test are equally
    # over-served, validation gives one back.
    assert allocate(4, (0.0, 0.5, 0.5)) == (1, 1, 2)
    # 4 * (.1, .1, .8) = .4, .4, 3.2 -> 1, 1, 3 = 5: train and validation are the most
    # over-served but at their minimum, so test gives one back.
    assert allocate(4, (0.1, 0.1, 0.8)) == (1, 1, 2)


def test_allocation_overshoot_between_equally_served_splits_takes_from_validation() -> None:
    # 5 * (0, .4, .6) = 0, 2, 3; train's minimum makes 6. Validation and test both sit
    # exactly on their ideal, so the earlier one (validation) gives one back, not the larger.
    assert allocate(5, (0.0, 0.4, 0.6)) == (1, 1, 3)


def test_allocation_refuses_other_than_three_ratios() -> None:
    with pytest.raises(ValueError):
        allocate(5, (0.5, 0.3, 0.1, 0.1))


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (1 / 3, 1 / 3, 1 / 3), (0.0, 0.5, 0.5)])
def test_allocation_hands_out_exactly_n_groups_with_the_minimums(ratios: tuple) -> None:
    for n in range(0, 60):
        counts = allocate(n, ratios)
        assert sum(counts) == n
        assert all(c >= m for c, m in zip(counts, (n >= 1, n >= 2, n >= 3), strict=True))


def test_negative_group_count_allocates_nothing() -> None:
    assert allocate(-1, RATIOS) == (0, 0, 0)


# -- the seeded order ---------------------------------------------------------------------------


def test_order_key_depends_on_seed_and_key_only() -> None:
    assert order_key(1, "abc") == order_key(1, "abc")
    assert len({order_key(1, "abc"), order_key(2, "abc"), order_key(1, "abd")}) == 3
    # A separator keeps seed and key apart: seed 1 with key "2x" is not seed 12 with key "x".
    assert order_key(1, "2x") != order_key(12, "x")


def test_plan_does_not_depend_on_row_order() -> None:
    images = _images({1: 6, 2: 5, 3: 4})
    shuffled = list(images)
    random.Random(3).shuffle(shuffled)
    assert _plan(images) == _plan(shuffled)


def test_another_seed_gives_another_split() -> None:
    images = _images({1: 10, 2: 10})
    assert _split_of(_plan(images, seed=1)) != _split_of(_plan(images, seed=2))


def test_a_landmarks_split_does_not_change_when_others_come_or_go() -> None:
    base = _split_of(_plan(_images({1: 8, 2: 6})))
    more = _split_of(_plan(_images({1: 8, 2: 6, 3: 9})))
    assert {k: v for k, v in more.items() if not k.startswith("3-")} == base


# -- filters ------------------------------------------------------------------------------------


def test_min_images_drops_small_landmarks_and_counts_them() -> None:
    plan = _plan(_images({1: 3, 2: 3, 3: 2, 4: 1}), min_images=3)
    assert [entry.landmark_id for entry in plan.label_map] == [1, 2]
    assert plan.dropped == {
        "classes_below_min_images": 2,
        "classes_beyond_top_k": 0,
        "images_beyond_max_per_class": 0,
    }
    assert plan.classes_in_input == 4


def test_a_landmark_with_exactly_min_images_is_kept() -> None:
    plan = _plan(_images({1: 4, 2: 4, 3: 3}), min_images=4)
    assert [entry.landmark_id for entry in plan.label_map] == [1, 2]


def test_min_images_counts_distinct_pictures_not_rows() -> None:
    images = _images({1: 3, 2: 3})
    # Landmark 3: four rows, two pictures.
    images += [
        IngestImage(f"3-{i}", 3, f"sha-3-{i % 2}", f"img/3-{i}.jpg", 20 + i) for i in range(4)
    ]
    plan = _plan(images, min_images=3)
    assert [entry.landmark_id for entry in plan.label_map] == [1, 2]


def test_top_k_keeps_the_largest_ties_to_the_lower_landmark_id() -> None:
    plan = _plan(_images({5: 3, 2: 4, 9: 4, 1: 3, 7: 6}), top_k=3)
    assert [entry.landmark_id for entry in plan.label_map] == [2, 7, 9]
    assert plan.dropped["classes_beyond_top_k"] == 2
    # Exactly k landmarks: nothing is dropped.
    assert _plan(_images({1: 3, 2: 3}), top_k=2).dropped["classes_beyond_top_k"] == 0


def test_max_per_class_caps_each_landmark_and_counts_the_images_left_out() -> None:
    plan = _plan(_images({1: 8, 2: 7, 3: 5, 4: 3}), max_per_class=5)
    per_class = {lm: sum(r.landmark_id == lm for r in plan.rows) for lm in (1, 2, 3, 4)}
    assert per_class == {1: 5, 2: 5, 3: 5, 4: 3}
    assert plan.dropped["images_beyond_max_per_class"] == 3 + 2
    # The cap keeps the first images of the seeded order, so a larger cap keeps a superset.
    larger = _plan(_images({1: 8, 2: 7, 3: 5, 4: 3}), max_per_class=6)
    assert set(_split_of(plan)) <= set(_split_of(larger))


def test_which_images_the_cap_keeps_depends_on_the_seed() -> None:
    images = _images({1: 8, 2: 8})
    kept = {frozenset(_split_of(_plan(images, max_per_class=3, seed=seed))) for seed in range(6)}
    assert len(kept) > 1


def test_fewer_than_two_landmarks_left_names_the_filters_and_the_largest() -> None:
    images = _images({1: 5, 2: 2, 3: 2, 4: 1})
    with pytest.raises(LandmarksError) as err:
        _plan(images, min_images=3, top_k=4)
    assert str(err.value) == (
        "the filters leave 1 landmark(s), a classifier needs at least 2 (min_images=3, "
        "top_k=4; 4 landmark(s) with valid images, largest distinct-image counts 1: 5, 2: 2, 3: 2)"
    )


def test_the_hint_lists_the_largest_landmarks_ties_by_lower_id() -> None:
    # Row order puts landmark 4 before 2; the hint still ranks by size, then id.
    with pytest.raises(LandmarksError, match=r"largest distinct-image counts 3: 5, 2: 2, 4: 2\)$"):
        _plan(_images({1: 1, 4: 2, 3: 5, 2: 2}), min_images=3)


def test_no_image_at_all_says_none() -> None:
    with pytest.raises(
        LandmarksError, match=r"0 landmark\(s\) with valid images, .* counts none\)$"
    ):
        _plan([])


def test_empty_split_suggests_a_min_images_only_when_it_is_below_three() -> None:
    # Two landmarks of two pictures each: nothing can go to test.
    with pytest.raises(LandmarksError) as low:
        _plan(_images({1: 2, 2: 2}), min_images=2)
    assert str(low.value) == (
        "split 'test' would be empty: that needs a kept landmark with at least 3 distinct "
        "images (min_images=2; use --min-images 3 or more)"
    )
    # min_images 3 already: no hint. Each landmark has 3 pictures, but two of them share
    # pictures so that each is home to only two groups (A goes with 2, B with 1).
    shared = [
        IngestImage("1-a", 1, "sha-A", "img/1-a", 2),
        IngestImage("1-b1", 1, "sha-B", "img/1-b1", 3),
        IngestImage("1-b2", 1, "sha-B", "img/1-b2", 4),
        IngestImage("1-x", 1, "sha-X", "img/1-x", 5),
        IngestImage("2-a1", 2, "sha-A", "img/2-a1", 6),
        IngestImage("2-a2", 2, "sha-A", "img/2-a2", 7),
        IngestImage("2-b", 2, "sha-B", "img/2-b", 8),
        IngestImage("2-y", 2, "sha-Y", "img/2-y", 9),
    ]
    with pytest.raises(LandmarksError) as high:
        _plan(shared, min_images=3)
    assert str(high.value) == (
        "split 'test' would be empty: that needs a kept landmark with at least 3 distinct "
        "images (min_images=3)"
    )
    # One picture each: validation is the first split left empty.
    with pytest.raises(LandmarksError, match=r"^split 'validation' would be empty"):
        _plan(_images({1: 1, 2: 1}))


# -- groups of identical images, rows, labels -----------------------------------------------------


def test_identical_pictures_of_one_landmark_go_to_one_split_together() -> None:
    images = _images({1: 6, 2: 6})
    twins = [IngestImage(f"1-twin-{i}", 1, "sha-1-0", f"img/t{i}.jpg", 30 + i) for i in range(3)]
    plan = _plan(images + twins)
    split_of = _split_of(plan)
    assert {split_of["1-0"]} == {split_of[t.id] for t in twins}


def test_a_picture_shared_by_landmarks_is_split_with_the_landmark_holding_most_copies() -> None:
    images = _images({1: 6, 2: 6})
    shared = [
        IngestImage("s-a", 2, "sha-shared", "img/s-a.jpg", 40),
        IngestImage("s-b", 1, "sha-shared", "img/s-b.jpg", 41),
        IngestImage("s-c", 2, "sha-shared", "img/s-c.jpg", 42),
    ]
    for seed in range(8):
        alone = _plan([*images, shared[0]], seed=seed)
        split_of = _split_of(_plan(images + shared, seed=seed))
        # Every copy goes where the group goes when landmark 2 holds it alone.
        assert split_of["s-a"] == split_of["s-b"] == split_of["s-c"] == _split_of(alone)["s-a"]


def test_a_tie_between_landmarks_sends_the_shared_picture_home_to_the_lower_id() -> None:
    for seed in range(8):
        images = _images({1: 6, 2: 6})
        pair = [
            IngestImage("p-2", 2, "sha-pair", "img/p-2.jpg", 40),
            IngestImage("p-1", 1, "sha-pair", "img/p-1.jpg", 41),
        ]
        home_alone = _plan([*images, pair[1]], seed=seed)
        plan = _plan(images + pair, seed=seed)
        assert _split_of(plan)["p-2"] == _split_of(plan)["p-1"] == _split_of(home_alone)["p-1"]


def test_rows_come_in_split_class_id_order_with_their_paths() -> None:
    plan = _plan(_images({20: 3, 10: 3}), seed=1)
    keys = [(SPLITS.index(r.split), r.class_index, r.id) for r in plan.rows]
    assert keys == sorted(keys)
    for row in plan.rows:
        assert row.path == f"{row.split}/{row.landmark_id}/{row.id}.jpg"
        assert row.sha256 == f"sha-{row.id}"
        assert row.class_index == {10: 0, 20: 1}[row.landmark_id]
    assert [r.split for r in plan.rows].count("train") == 2


def test_label_map_gives_class_indices_in_landmark_order_with_names() -> None:
    names = {10: "Eiffel Tower", 30: "Big Ben"}
    plan = plan_split(
        _images({30: 3, 10: 3, 20: 3}),
        names,
        min_images=1,
        top_k=None,
        max_per_class=None,
        ratios=RATIOS,
        seed=0,
    )
    assert plan.label_map == [
        LabelEntry(0, 10, "Eiffel Tower"),
        LabelEntry(1, 20, ""),
        LabelEntry(2, 30, "Big Ben"),
    ]


def test_sources_list_every_kept_image_and_no_dropped_one() -> None:
    plan = _plan(_images({1: 3, 2: 3, 3: 1}), min_images=2)
    assert plan.sources == {r.id: f"img/{r.id}.jpg" for r in plan.rows}
    assert "3-0" not in plan.sources


def test_a_landmark_whose_every_picture_is_homed_elsewhere_follows_those_groups() -> None:
    images = _images({1: 6, 2: 6})
    # Landmark 3's three pictures are also landmark 1's, with two copies each there.
    images += [IngestImage(f"1-dup-{i}", 1, f"sha-1-{i}", f"img/d{i}", 50 + i) for i in range(3)]
    images += [IngestImage(f"3-{i}", 3, f"sha-1-{i}", f"img/3-{i}", 60 + i) for i in range(3)]
    plan = _plan(images, min_images=3)
    split_of = _split_of(plan)
    assert [entry.landmark_id for entry in plan.label_map] == [1, 2, 3]
    assert all(split_of[f"3-{i}"] == split_of[f"1-{i}"] for i in range(3))
