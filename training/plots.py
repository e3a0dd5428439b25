"""Draw a model's training curves (loss, and accuracy when tracked; train vs validation) as a PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PANELS = ("loss", "accuracy")


def save_curves(history: Mapping[str, Sequence[float]], title: str, path: Path) -> None:
    """One panel per tracked quantity; uses the Agg canvas directly so no GUI backend is ever chosen."""
    panels = [name for name in PANELS if name in history]
    figure = Figure(figsize=(5 * len(panels), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, name in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in history:
                axes.plot(range(1, len(history[key]) + 1), history[key], label=label)
        if name == "loss" and min(history[name]) > 0:
            axes.set_yscale("log")  # losses fall by orders of magnitude; a log axis keeps the tail visible
        axes.set(title=f"{title}: {name}", xlabel="epoch", ylabel=name)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.savefig(path, dpi=80)
