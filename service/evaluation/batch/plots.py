"""The report's PNG plots, drawn on matplotlib's Agg canvas (no display needed) and written atomically.

Classifiers: a confusion-matrix heat map and one-vs-rest ROC curves (binary: the positive class).
Regressors: predicted against true values, and residuals against predictions.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from service.jobs.files import write_atomic

CONFUSION, ROC = "confusion_matrix.png", "roc_curves.png"
PREDICTED, RESIDUALS = "predicted_vs_true.png", "residuals.png"


def _save(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    write_atomic(path, buffer.getvalue())


def _figure(width: float = 5.5, height: float = 4.5) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def confusion_matrix(matrix: Sequence[Sequence[int]], names: Sequence[str], title: str, path: Path) -> None:
    counts = np.asarray(matrix)
    figure = _figure(1.5 + 0.45 * len(names), 1.0 + 0.45 * len(names))
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = range(len(names))
    axes.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title=title)
    axes.set_xticklabels(names, rotation=45 if max(map(len, names)) > 2 else 0)
    axes.set_yticklabels(names)
    if len(names) <= 20:  # counts stay legible up to about 20 classes
        limit = counts.max() / 2 if counts.size else 0
        for (i, j), value in np.ndenumerate(counts):
            axes.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > limit else "black",
            )
    _save(figure, path)


def roc_curves(curves: Mapping[str, Mapping[str, Any] | None], title: str, path: Path) -> None:
    """``curves``: class name -> ``{"fpr", "tpr"}`` (None when undefined), as evaluation computes them."""
    figure = _figure()
    axes = figure.subplots()
    for name, curve in curves.items():
        if curve is not None:
            axes.plot(curve["fpr"], curve["tpr"], linewidth=1, label=name)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.set(
        xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01)
    )
    axes.legend(fontsize=7, ncols=2 if len(curves) > 5 else 1, loc="lower right")
    axes.grid(alpha=0.3)
    _save(figure, path)


def predicted_vs_true(y: np.ndarray, predicted: np.ndarray, title: str, path: Path) -> None:
    figure = _figure()
    axes = figure.subplots()
    axes.scatter(y, predicted, s=6, alpha=0.5)
    low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=0.8)
    axes.set(xlabel="true value", ylabel="predicted value", title=title)
    axes.grid(alpha=0.3)
    _save(figure, path)


def residuals(y: np.ndarray, predicted: np.ndarray, title: str, path: Path) -> None:
    figure = _figure()
    axes = figure.subplots()
    axes.scatter(predicted, y - predicted, s=6, alpha=0.5)
    axes.axhline(0, linestyle="--", color="grey", linewidth=0.8)
    axes.set(xlabel="predicted value", ylabel="residual (true - predicted)", title=title)
    axes.grid(alpha=0.3)
    _save(figure, path)
