"""Pictures and the human-readable report of an evaluation.

Figures are drawn with matplotlib's Agg backend into PNG bytes. The reports are rendered
from the Jinja2 templates in `templates/`: the HTML one embeds the figures as base64 data
URIs so that it is one self-contained file (KFP's HTML viewer shows nothing else); the
Markdown one links the PNG files written beside it.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np

from landmarks import storage

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from landmarks.evaluate.scores import EvaluationResult, ModelEvaluation

# Beyond this many classes a full confusion matrix is unreadable: show the most confused.
CONFUSION_FULL_MAX = 50
CONFUSION_FOCUS = 30
# Per-class tables list every class up to this many rows.
PER_CLASS_ROWS_MAX = 200


def _figure(width: float, height: float) -> Figure:
    # Figure() without pyplot: no global state, no GUI backend, safe in threads.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, facecolor="white")
    return buf.getvalue()


def _short(text: str, width: int) -> str:
    """Cut `text` to `width` characters, keeping a trailing `(landmark id)` whole."""
    if len(text) <= width:
        return text
    head, sep, tail = text.rpartition(" (")
    if sep and tail.endswith(")") and len(tail) + 4 < width:
        keep = width - len(tail) - 3
        return f"{head[:keep].rstrip()}… ({tail}"
    return text[: width - 1] + "…"


def training_curves_png(history: Sequence[dict[str, Any]], title: str) -> bytes | None:
    """Loss and accuracy per epoch, training against validation; None without history."""
    if not history:
        return None
    epochs = [int(e.get("epoch", i + 1)) for i, e in enumerate(history)]
    fig = _figure(10, 3.8)
    axes = fig.subplots(1, 2)
    marker = "o" if len(epochs) <= 30 else None
    for ax, metric, label in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        for key, name, style in ((metric, "train", "-"), (f"val_{metric}", "validation", "--")):
            values = [e.get(key) for e in history]
            if all(v is None for v in values):
                continue
            ys = [np.nan if v is None else float(v) for v in values]
            ax.plot(epochs, ys, style, marker=marker, markersize=4, label=name)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(epochs) <= 15:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.has_data():
            ax.legend()
        if metric == "accuracy":
            ax.set_ylim(-0.02, 1.02)
            _mark_best(ax, epochs, [e.get("val_accuracy") for e in history])
    fig.suptitle(title + _history_note(history))
    return _png(fig)


def _mark_best(ax: Any, epochs: Sequence[int], values: Sequence[Any]) -> None:
    """Star the epoch with the best validation accuracy: the one worth keeping."""
    known = [(float(v), e) for e, v in zip(epochs, values, strict=True) if v is not None]
    if not known:
        return
    best, epoch = max(known, key=lambda pair: (pair[0], -pair[1]))
    ax.plot([epoch], [best], "*", markersize=13, color="#d4a017", zorder=5)
    ax.annotate(
        f"best val {best:.3f} (epoch {epoch})",
        (epoch, best),
        textcoords="offset points",
        xytext=(0, -16),
        # Keep the label inside the axes whichever end of the run the best epoch is at.
        ha="right" if epoch > (min(epochs) + max(epochs)) / 2 else "left",
        fontsize=8,
    )


def _history_note(history: Sequence[dict[str, Any]]) -> str:
    """`: 12 epochs, 3.2 min, 640 img/s` from the trainer's per-epoch timings."""
    parts = [f"{len(history)} epoch{'s' if len(history) != 1 else ''}"]
    seconds = [e["seconds"] for e in history if isinstance(e.get("seconds"), int | float)]
    if seconds:
        total = sum(seconds)
        parts.append(f"{total / 60:.1f} min" if total >= 120 else f"{total:.0f} s")
    speed = [
        e["images_per_sec"] for e in history if isinstance(e.get("images_per_sec"), int | float)
    ]
    if speed:
        parts.append(f"{float(np.median(speed)):.0f} img/s")
    return ": " + ", ".join(parts)


def focus_classes(matrix: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the `keep` classes most involved in mistakes (as truth or prediction)."""
    off = matrix - np.diag(np.diag(matrix))
    score = off.sum(axis=0) + off.sum(axis=1)
    order = np.argsort(-score, kind="stable")[:keep]
    return np.sort(order)


def confusion_png(matrix: np.ndarray, labels: Sequence[str], title: str) -> bytes:
    """Rows are true classes, columns predictions; colour is the share of the true class."""
    n_all = matrix.shape[0]
    # Shares of each true class's images, taken before any cut so they stay true shares.
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    if n_all > CONFUSION_FULL_MAX:
        idx = focus_classes(matrix, CONFUSION_FOCUS)
        matrix = matrix[np.ix_(idx, idx)]
        share = share[np.ix_(idx, idx)]
        labels = [labels[i] for i in idx]
        title = f"{title}\n{len(idx)} most-confused of {n_all} classes"
    n = matrix.shape[0]
    side = min(16.0, max(5.0, 0.32 * n + 3.5))
    fig = _figure(side + 1.2, side)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    ticks = np.arange(n)
    tick_labels = [_short(label, 40 if n <= 20 else 28) for label in labels]
    fontsize = 9 if n <= 20 else 7 if n <= 35 else 6
    ax.set_xticks(ticks, tick_labels, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, tick_labels)
    ax.tick_params(labelsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for (r, c), count in np.ndenumerate(matrix):
            if count:
                ax.text(
                    c,
                    r,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if share[r, c] > 0.55 else "black",
                )
    ax.set_title(title)
    return _png(fig)


@dataclass(frozen=True)
class WorstItem:
    """One wrongly classified image for the grid."""

    local_path: str
    source: str
    image_id: str
    truth: str
    predicted: str
    confidence: float


def worst_grid_png(items: Sequence[WorstItem], title: str) -> bytes | None:
    """The most confident mistakes, each with its truth, prediction and confidence."""
    if not items:
        return None
    from PIL import Image, ImageOps

    cols = min(4, len(items))
    rows = math.ceil(len(items) / cols)
    fig = _figure(3.3 * cols, 3.9 * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, item in zip(axes, items, strict=False):
        with Image.open(item.local_path) as img:
            # Letterbox to a square so every cell, and every caption, lines up.
            tile = ImageOps.pad(img.convert("RGB"), (224, 224), color=(255, 255, 255))
        ax.imshow(np.asarray(tile))
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor("#c0392b")
            spine.set_linewidth(1.5)
        # Title and x-label, not free text, so the constrained layout makes room for them.
        ax.set_title(
            f"pred: {_short(item.predicted, 34)}\nconfidence {item.confidence:.4f}",
            fontsize=9, color="#b03022", loc="left",
        )  # fmt: skip
        ax.set_xlabel(f"true: {_short(item.truth, 34)}", fontsize=9, color="#1e6b2e", loc="left")
        ax.text(
            0.01, 0.01, item.image_id, transform=ax.transAxes, fontsize=7, color="white",
            bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "linewidth": 0},
        )  # fmt: skip
    fig.suptitle(title)
    return _png(fig)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _per_class_rows(model: ModelEvaluation) -> list[dict[str, Any]]:
    """Classes worst recall first, so the ones that need attention lead the table."""
    rows = sorted(
        model.per_class,
        key=lambda r: (
            r["recall"] if r["recall"] is not None else 2.0,
            -r["support"],
            r["class_index"],
        ),
    )
    return rows[:PER_CLASS_ROWS_MAX]


def _metric_notes(result: EvaluationResult) -> list[str]:
    k = result.top_k
    notes = [
        "GAP: Global Average Precision (Kaggle landmark recognition): one prediction per "
        "image, all ranked by confidence; mean over landmark images of precision at each "
        "correct prediction. A prediction on a distractor counts as wrong.",
        f"top-{k}: the true landmark is among the {k} most likely classes"
        + (f" (there are only {result.n_classes} classes)." if k < 5 else "."),
        "Best model: highest GAP, then highest top-1.",
    ]
    if result.n_distractors:
        notes.append(
            f"{result.n_distractors} distractor images (no landmark) were added; they count "
            "in GAP and precision, not in top-k or recall."
        )
    return notes


@functools.cache
def _templates() -> jinja2.Environment:
    """The report templates shipped in the package (landmarks/evaluate/templates)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("landmarks.evaluate", "templates"),
        # Class names, model names and paths are user data: escape them everywhere but
        # in Markdown, whose text is not HTML.
        autoescape=jinja2.select_autoescape(disabled_extensions=("md.j2",), default=True),
        # A misspelt field fails the render instead of leaving a blank in the report.
        undefined=jinja2.StrictUndefined,
        # Block tags on lines of their own leave no blank lines behind.
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["data_uri"] = _data_uri
    env.globals["per_class_rows"] = _per_class_rows
    env.globals["per_class_rows_max"] = PER_CLASS_ROWS_MAX
    return env


def _render(template: str, result: EvaluationResult, **context: Any) -> str:
    return (
        _templates()
        .get_template(template)
        .render(
            result=result,
            best=result.models[result.best_model],
            k=result.top_k,
            notes=_metric_notes(result),
            **context,
        )
    )


def render_markdown(result: EvaluationResult, figures: dict[str, str]) -> str:
    """Markdown report; `figures` maps figure keys to paths relative to the report."""
    return _render("report.md.j2", result, figures=figures)


# `![alt](path.png)` with a path relative to the report (what report.md.j2 writes).
_FIGURE_LINK = re.compile(r"!\[([^\]]*)\]\(([^()\s]+\.png)\)")


def inline_figures(markdown: str, folder: str) -> str:
    """The Markdown report with its PNG figures embedded as data URIs.

    For a viewer that shows the report away from its folder: KFP's Markdown visualisation reads
    a copy at the output's own URI, where the relative links of report.md lead nowhere (seen on
    a real KFP: the pictures showed as broken images). Links that are not relative stay as they
    are.
    """

    def embed(link: re.Match[str]) -> str:
        alt, path = link.groups()
        if "://" in path or path.startswith(("/", "data:")):
            return link.group(0)
        data = base64.b64encode(storage.read_bytes(storage.join(folder, path))).decode("ascii")
        return f"![{alt}](data:image/png;base64,{data})"

    return _FIGURE_LINK.sub(embed, markdown)


def render_html(result: EvaluationResult, pngs: dict[str, bytes]) -> str:
    """A self-contained HTML report: every picture is an embedded data URI."""
    return _render("report.html.j2", result, pngs=pngs)
