"""Every value is documented where it is declared (`# --`, as helm-docs reads it)."""

from __future__ import annotations

import re

from tests.charts.helm import CHART

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w.-]*):")


def undocumented_keys(lines: list[str]) -> list[str]:
    """Keys with neither a `# --` comment nor documented children, as dotted paths.

    A documented key's block is its value (a map or list of data), so it is not descended
    into; an undocumented key must be a section whose every child is documented.
    """
    missing: list[str] = []
    path: list[tuple[int, str]] = []
    skip_deeper_than: int | None = None
    for number, line in enumerate(lines):
        match = KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        if skip_deeper_than is not None and indent > skip_deeper_than:
            continue
        skip_deeper_than = None
        path = [(i, k) for i, k in path if i < indent] + [(indent, match["key"])]
        dotted = ".".join(k for _, k in path)
        if _has_doc_comment(lines, number):
            skip_deeper_than = indent
        elif not _is_section(lines, number, indent):
            missing.append(dotted)
    return missing


def _has_doc_comment(lines: list[str], number: int) -> bool:
    for previous in reversed(lines[:number]):
        stripped = previous.strip()
        if not stripped.startswith("#"):
            return False
        if stripped.startswith("# --"):
            return True
    return False


def _is_section(lines: list[str], number: int, indent: int) -> bool:
    if lines[number].split(":", 1)[1].strip():
        return False  # a value on the same line
    for following in lines[number + 1 :]:
        if not following.strip() or following.strip().startswith("#"):
            continue
        match = KEY.match(following)
        return bool(match) and len(match["indent"]) > indent
    return False


def test_every_value_has_a_doc_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    assert undocumented_keys(lines) == []


def test_doc_check_finds_an_undocumented_value() -> None:
    lines = [
        "section:",
        "  # -- documented",
        "  a: 1",
        "  # plain comment",
        "  b: 2",
        "  # -- documented map",
        "  c:",
        "    inner: 3",
        "plain: {}",
    ]
    assert undocumented_keys(lines) == ["section.b", "plain"]
