"""The reports rendered from their templates: escaping, and the templates in the wheel."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from landmarks.artifacts import WORST_FILE
from landmarks.evaluate.report import inline_figures, render_html, render_markdown
from landmarks.evaluate.scores import EvaluationResult, ModelEvaluation

ROOT = Path(__file__).resolve().parents[2]
# Landmark names, model folders and image paths come from user data: any of them may
# hold markup. Each hostile string sits in a different field of the report.
SCRIPT = '<script>alert("label")</script>'
HOSTILE = {
    "label": f"Fort {SCRIPT} & co (101)",
    "split_dir": "gs://bucket/<b>split</b>",
    "model_dir": "gs://bucket/models/<img src=x onerror=alert(1)>",
    "architecture": "<iframe src=//evil>",
    "path": 'gs://bucket/test/101/"><script>alert(2)</script>.jpg',
    "predicted": "<svg onload=alert(3)>",
}


def _model(name: str, gap: float) -> ModelEvaluation:
    per_class = [
        {
            "class_index": 0,
            "landmark_id": "101",
            "name": "Fort",
            "label": HOSTILE["label"],
            "precision": 0.5,
            "recall": 1.0,
            "support": 2,
            "predicted": 4,
        }
    ]
    return ModelEvaluation(
        name=name,
        model_dir=HOSTILE["model_dir"],
        architecture=HOSTILE["architecture"],
        image_size=32,
        n_test=2,
        n_distractors=0,
        top1=0.5,
        top5=1.0,
        gap=gap,
        from_logits=False,
        per_class=per_class,
        confusion_labels=[HOSTILE["label"]],
        confusion_matrix=[[2]],
        history=[],
    )


def _result() -> EvaluationResult:
    models = {"stage1": _model("stage1", 0.25), "stage2": _model("stage2", 0.75)}
    result = EvaluationResult(
        split_dir=HOSTILE["split_dir"],
        out="out",
        n_classes=1,
        n_test=2,
        n_distractors=0,
        top_k=1,
        models=models,
        best_model="stage2",
    )
    result.worst = [
        {
            "id": "a1",
            "path": HOSTILE["path"],
            "true": HOSTILE["label"],
            "predicted": HOSTILE["predicted"],
            "confidence": 0.9,
        }
    ]
    return result


class _Page(HTMLParser):
    """The elements and the text a browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_escapes_markup_in_names_and_paths() -> None:
    pngs = {"worst": b"w", "stage1/confusion": b"c1", "stage2/confusion": b"c2"}
    html = render_html(_result(), pngs)
    page = _Page()
    page.feed(html)
    page.close()
    # Markup in the data must not become elements: only the report's own tags appear.
    assert {"script", "iframe", "svg", "b"}.isdisjoint(page.tags)
    assert page.tags.count("img") == len(pngs)
    # ... and must still read as the text it was, escaped rather than dropped.
    text = "".join(page.text)
    for value in HOSTILE.values():
        assert value in text, value
    assert "&lt;script&gt;" in html


def test_markdown_report_keeps_names_as_written() -> None:
    # Markdown is not HTML: escaping it would show `&lt;` to the reader.
    figures = {"worst": WORST_FILE, "stage1/confusion": "c1.png", "stage2/confusion": "c2.png"}
    md = render_markdown(_result(), figures)
    assert f"| 0 | {HOSTILE['label']} | 0.500 | 1.000 | 2 |" in md
    assert "&lt;" not in md and "&amp;" not in md


def test_markdown_report_carries_its_figures_when_shown_away_from_its_folder(
    tmp_path: Path,
) -> None:
    """KFP's Markdown visualisation reads a copy at another URI: relative picture links showed
    as broken images on a real KFP, so the copy embeds them."""
    figures = {
        "worst": WORST_FILE,
        "stage1/confusion": "stage1/confusion.png",
        "stage2/confusion": "stage2/confusion.png",
    }
    pictures = {path: b"\x89PNG " + path.encode() for path in figures.values()}
    for path, data in pictures.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    md = render_markdown(_result(), figures) + "\n![elsewhere](https://example.org/x.png)\n"

    inlined = inline_figures(md, str(tmp_path))

    embedded = re.findall(r"\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", inlined)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(pictures.values())
    assert all(f"]({path})" not in inlined for path in pictures)
    assert "![elsewhere](https://example.org/x.png)" in inlined
    # Everything else is the report as written.
    assert inlined.replace("\n", "").count("|") == md.replace("\n", "").count("|")


def test_markdown_figure_missing_from_the_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"worst\.png"):
        inline_figures("![worst](worst.png)", str(tmp_path))


def test_wheel_ships_the_report_templates(tmp_path: Path) -> None:
    # The images install the wheel, not the source tree: a template left out of it only
    # shows when an evaluation in a cluster reaches its report.
    # Built from a copy of what images/Dockerfile copies, so setuptools' build/ and
    # egg-info stay out of the working tree.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "landmarks", src / "landmarks", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), "."],
        cwd=src,
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("landmarks-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted(p.name for p in (ROOT / "landmarks/evaluate/templates").iterdir())
    assert templates, "no templates in landmarks/evaluate/templates"
    for name in templates:
        assert f"landmarks/evaluate/templates/{name}" in names
