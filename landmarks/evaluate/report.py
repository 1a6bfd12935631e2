"""Pictures and the human-readable report of an evaluation.

Figures are drawn with matplotlib's Agg backend into PNG bytes. The HTML report embeds
them as base64 data URIs so that it is one self-contained file (KFP's HTML viewer shows
nothing else); the Markdown report links the PNG files written beside it.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

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


def render_markdown(result: EvaluationResult, figures: dict[str, str]) -> str:
    """Markdown report; `figures` maps figure keys to paths relative to the report."""
    k = result.top_k
    out = [
        "# Landmark recognition: evaluation",
        "",
        f"Split `{result.split_dir}`: {result.n_test} test images, {result.n_classes} classes"
        + (f", {result.n_distractors} distractors." if result.n_distractors else "."),
        "",
        f"**Best model: {result.best_model}** "
        f"(GAP {_fmt(result.models[result.best_model].gap)}, "
        f"top-1 {_fmt(result.models[result.best_model].top1)}).",
        "",
        f"| model | architecture | images | top-1 | top-{k} | GAP |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, m in result.models.items():
        mark = " ★" if name == result.best_model else ""
        out.append(
            f"| {name}{mark} | {m.architecture or '–'} | {m.n_images} | {_fmt(m.top1)} | "
            f"{_fmt(m.top5)} | {_fmt(m.gap)} |"
        )
    out += ["", *(f"- {note}" for note in _metric_notes(result)), ""]
    if "worst" in figures:
        out += [
            f"## Most confident mistakes of {result.best_model}",
            "",
            f"![worst-classified images]({figures['worst']})",
            "",
            "| image | true | predicted | confidence |",
            "|---|---|---|---:|",
            *(
                f"| `{w['path']}` | {w['true']} | {w['predicted']} | {w['confidence']:.4f} |"
                for w in result.worst
            ),
            "",
        ]
    for name, m in result.models.items():
        out += [f"## {name}", "", f"Model `{m.model_dir}`.", ""]
        if f"{name}/curves" in figures:
            out += [f"![training curves]({figures[f'{name}/curves']})", ""]
        else:
            out += ["No training history was found.", ""]
        out += [f"![confusion matrix]({figures[f'{name}/confusion']})", ""]
        out += [
            "| class | landmark | precision | recall | test images |",
            "|---|---|---:|---:|---:|",
        ]
        for row in _per_class_rows(m):
            out.append(
                f"| {row['class_index']} | {row['label']} | {_fmt(row['precision'], 3)} | "
                f"{_fmt(row['recall'], 3)} | {row['support']} |"
            )
        if len(m.per_class) > PER_CLASS_ROWS_MAX:
            out.append(f"\n{len(m.per_class) - PER_CLASS_ROWS_MAX} more classes in metrics.json.")
        out.append("")
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1d2330; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #dde1e8; }
.sub { color: #5b6475; margin-top: 0; }
.best { background: #eef6ee; border-left: 4px solid #3c8d40; padding: 0.6rem 1rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #e6e9ef; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.winner td { font-weight: 600; background: #f4faf4; }
img { max-width: 100%; height: auto; display: block; margin: 0.6rem 0; }
ul.notes { color: #4a5264; font-size: 0.9rem; }
details summary { cursor: pointer; color: #2b5fa8; }
code { background: #f3f4f7; padding: 0 0.25rem; border-radius: 3px; }
"""


def render_html(result: EvaluationResult, pngs: dict[str, bytes]) -> str:
    """A self-contained HTML report: every picture is an embedded data URI."""
    e = html.escape
    k = result.top_k
    best = result.models[result.best_model]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Landmark recognition: evaluation</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Landmark recognition: evaluation</h1>",
        f'<p class="sub">Split <code>{e(result.split_dir)}</code>: {result.n_test} test images, '
        f"{result.n_classes} classes"
        + (f", {result.n_distractors} distractors" if result.n_distractors else "")
        + "</p>",
        f'<p class="best">Best model: <strong id="best-model">{e(result.best_model)}</strong> '
        f"(GAP {_fmt(best.gap)}, top-1 {_fmt(best.top1)}, top-{k} {_fmt(best.top5)})</p>",
        "<table><tr><th>model</th><th>architecture</th><th class='num'>images</th>"
        f"<th class='num'>top-1</th><th class='num'>top-{k}</th><th class='num'>GAP</th></tr>",
    ]
    for name, m in result.models.items():
        cls = ' class="winner"' if name == result.best_model else ""
        parts.append(
            f"<tr{cls}><td>{e(name)}</td><td>{e(m.architecture or '–')}</td>"
            f"<td class='num'>{m.n_images}</td><td class='num'>{_fmt(m.top1)}</td>"
            f"<td class='num'>{_fmt(m.top5)}</td><td class='num'>{_fmt(m.gap)}</td></tr>"
        )
    parts.append("</table>")
    parts.append(
        '<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in _metric_notes(result)) + "</ul>"
    )
    if "worst" in pngs:
        parts += [
            f"<h2>Most confident mistakes of {e(result.best_model)}</h2>",
            f'<img alt="worst-classified test images" src="{_data_uri(pngs["worst"])}">',
            "<details><summary>These images</summary><table><tr><th>image</th><th>true</th>"
            "<th>predicted</th><th class='num'>confidence</th></tr>",
            *(
                f"<tr><td><code>{e(w['path'])}</code></td><td>{e(w['true'])}</td>"
                f"<td>{e(w['predicted'])}</td><td class='num'>{w['confidence']:.4f}</td></tr>"
                for w in result.worst
            ),
            "</table></details>",
        ]
    for name, m in result.models.items():
        parts += [f"<h2>{e(name)}</h2>", f'<p class="sub">Model <code>{e(m.model_dir)}</code></p>']
        curves = pngs.get(f"{name}/curves")
        if curves:
            parts.append(f'<img alt="training curves of {e(name)}" src="{_data_uri(curves)}">')
        else:
            parts.append("<p>No training history was found.</p>")
        parts.append(
            f'<img alt="confusion matrix of {e(name)}" '
            f'src="{_data_uri(pngs[f"{name}/confusion"])}">'
        )
        rows = _per_class_rows(m)
        parts.append(
            f"<details><summary>Precision and recall per class ({len(m.per_class)} classes, "
            "lowest recall first)</summary><table><tr><th class='num'>class</th>"
            "<th>landmark</th><th class='num'>precision</th><th class='num'>recall</th>"
            "<th class='num'>test images</th></tr>"
        )
        for row in rows:
            parts.append(
                f"<tr><td class='num'>{row['class_index']}</td><td>{e(row['label'])}</td>"
                f"<td class='num'>{_fmt(row['precision'], 3)}</td>"
                f"<td class='num'>{_fmt(row['recall'], 3)}</td>"
                f"<td class='num'>{row['support']}</td></tr>"
            )
        parts.append("</table></details>")
    parts.append("</body></html>")
    return "\n".join(parts)
