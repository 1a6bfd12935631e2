"""Which image goes to which split: the filters and the seeded split, with no I/O at all.

Rules:

- A landmark's size is its number of *distinct* valid images (by sha256). Landmarks below
  `min_images` are dropped; then `top_k` keeps the largest (ties: lower landmark_id); then
  `max_per_class` keeps that many distinct images of each.
- The unit of splitting is a group of identical images (same sha256): all rows of a group
  go to the same split, so a picture never sits in train and test at once. A group shared
  by several landmarks is split with its home landmark (most rows, then lowest id).
- Per landmark with n groups: with n >= 3 every split gets at least one; with n == 2 train
  and validation get one each, with n == 1 train gets it. Beyond these minimums the counts
  follow the ratios by largest remainder (ties: train, validation, test).
- Which groups go where depends only on the seed and the group's sha256, never on row
  order, so the outputs are byte-identical across runs and a landmark's split does not
  change when other landmarks are added or dropped.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from landmarks.errors import LandmarksError
from landmarks.split.label_map import LabelEntry

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class IngestImage:
    """One usable (status ok) row of an ingest manifest."""

    id: str
    landmark_id: int
    sha256: str
    src: str  # path relative to the ingest directory
    row: int  # line in the ingest manifest, for error messages


@dataclass(frozen=True)
class SplitRow:
    """One row of the split's manifest.csv."""

    id: str
    landmark_id: int
    class_index: int
    split: str
    sha256: str
    path: str


# The split manifest's header is SplitRow's fields, in order.
MANIFEST_COLUMNS = tuple(f.name for f in fields(SplitRow))


@dataclass
class Plan:
    """The split decided: its rows in manifest order, and what the filters dropped."""

    rows: list[SplitRow]
    sources: dict[str, str]  # id -> path relative to the ingest directory
    label_map: list[LabelEntry]
    dropped: dict[str, int]
    classes_in_input: int


def order_key(seed: int, key: str) -> str:
    """A seeded pseudo-random rank that depends on nothing but the seed and the key."""
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def allocate(n: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """How many of a landmark's `n` image groups go to train, validation and test.

    With n >= 3 each split gets at least one; with n == 2 train and validation one each;
    n == 1 goes to train. The rest follows the ratios by largest remainder, ties broken in
    the order train, validation, test.
    """
    if n <= 0:
        return (0, 0, 0)
    minimum = [1, 1, 1] if n >= 3 else [1, 1, 0] if n == 2 else [1, 0, 0]
    ideal = [r * n for r in ratios]
    counts = [max(m, math.floor(x)) for m, x in zip(minimum, ideal, strict=True)]
    while sum(counts) > n:  # the minimums overshot: take from the most over-served split
        i = max(
            (i for i in range(3) if counts[i] > minimum[i]),
            key=lambda i: (counts[i] - ideal[i], -i),
        )
        counts[i] -= 1
    while sum(counts) < n:
        i = max(range(3), key=lambda i: (ideal[i] - counts[i], -i))
        counts[i] += 1
    return counts[0], counts[1], counts[2]


def plan_split(
    images: Sequence[IngestImage],
    names: Mapping[int, str],
    *,
    min_images: int,
    top_k: int | None,
    max_per_class: int | None,
    ratios: Sequence[float],
    seed: int,
) -> Plan:
    """Decide, without touching any file, which image goes to which split.

    Raises:
        LandmarksError: The filters leave fewer than two landmarks, or a split empty.
    """
    distinct: dict[int, set[str]] = defaultdict(set)
    for image in images:
        distinct[image.landmark_id].add(image.sha256)
    sizes = {landmark: len(hashes) for landmark, hashes in distinct.items()}

    kept = sorted(lm for lm, n in sizes.items() if n >= min_images)
    below = len(sizes) - len(kept)
    beyond_k = 0
    if top_k is not None and len(kept) > top_k:
        ranked = sorted(kept, key=lambda lm: (-sizes[lm], lm))
        beyond_k = len(kept) - top_k
        kept = sorted(ranked[:top_k])
    if len(kept) < 2:
        largest = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        hint = ", ".join(f"{lm}: {n}" for lm, n in largest) or "none"
        raise LandmarksError(
            f"the filters leave {len(kept)} landmark(s), a classifier needs at least 2 "
            f"(min_images={min_images}, top_k={top_k}; {len(sizes)} landmark(s) "
            f"with valid images, largest distinct-image counts {hint})"
        )

    # The cap keeps the distinct images ranked first by the seeded order.
    capped = 0
    keep_hashes: dict[int, set[str]] = {}
    for landmark in kept:
        hashes = sorted(distinct[landmark], key=lambda h: order_key(seed, h))
        if max_per_class is not None and len(hashes) > max_per_class:
            capped += len(hashes) - max_per_class
            hashes = hashes[:max_per_class]
        keep_hashes[landmark] = set(hashes)
    selected = [i for i in images if i.sha256 in keep_hashes.get(i.landmark_id, ())]

    # Groups of identical images; each is split with its home landmark.
    members: dict[str, list[IngestImage]] = defaultdict(list)
    for image in selected:
        members[image.sha256].append(image)
    homes: dict[int, list[str]] = defaultdict(list)
    for digest, group in members.items():
        votes = Counter(i.landmark_id for i in group)
        home = min(votes, key=lambda lm: (-votes[lm], lm))
        homes[home].append(digest)

    split_of: dict[str, str] = {}
    for landmark in kept:
        groups = sorted(homes.get(landmark, []), key=lambda h: order_key(seed, h))
        n_train, n_val, _ = allocate(len(groups), ratios)
        for rank, digest in enumerate(groups):
            split_of[digest] = (
                "train" if rank < n_train else "validation" if rank < n_train + n_val else "test"
            )

    class_index = {landmark: i for i, landmark in enumerate(kept)}
    label_map = [LabelEntry(i, lm, names.get(lm, "")) for lm, i in class_index.items()]
    order = {name: i for i, name in enumerate(SPLITS)}
    rows = sorted(
        (
            SplitRow(
                id=i.id,
                landmark_id=i.landmark_id,
                class_index=class_index[i.landmark_id],
                split=split_of[i.sha256],
                sha256=i.sha256,
                path=f"{split_of[i.sha256]}/{i.landmark_id}/{i.id}.jpg",
            )
            for i in selected
        ),
        key=lambda r: (order[r.split], r.class_index, r.id),
    )
    for name in SPLITS:
        if not any(r.split == name for r in rows):
            hint = "; use --min-images 3 or more" if min_images < 3 else ""
            raise LandmarksError(
                f"split '{name}' would be empty: that needs a kept landmark with at least 3 "
                f"distinct images (min_images={min_images}{hint})"
            )
    return Plan(
        rows=rows,
        sources={i.id: i.src for i in selected},
        label_map=label_map,
        dropped={
            "classes_below_min_images": below,
            "classes_beyond_top_k": beyond_k,
            "images_beyond_max_per_class": capped,
        },
        classes_in_input=len(sizes),
    )
