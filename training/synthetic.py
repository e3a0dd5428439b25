"""Seeded synthetic data for the small models; the same seed and parameters always give the same arrays."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.errors import ConfigError

Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Generated:
    """Training and test points, a sentence saying where the test points come from, and what they are."""

    train: Arrays
    test: Arrays
    test_note: str
    metrics_split: str = "test"  # "grid" when test points are drawn from the true function, not held out


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"data.params: {message}.")


def line(
    rng: np.random.Generator,
    slope: float = 2.0,
    intercept: float = -1.0,
    x_first: int = -1,
    x_last: int = 4,
    grid_low: float = -5.0,
    grid_high: float = 15.0,
    grid_points: int = 81,
) -> Generated:
    """The integer points x_first..x_last of y = slope*x + intercept; tested on an even grid of the line."""
    _require(x_last > x_first, "x_last must be greater than x_first")
    _require(grid_points >= 2 and grid_high > grid_low, "the grid needs 2+ points and grid_high > grid_low")
    x = np.arange(x_first, x_last + 1, dtype=np.float32)
    grid = np.linspace(grid_low, grid_high, grid_points, dtype=np.float32)
    note = (
        f"No held-out sample: all {x.size} points train the model. Metrics are measured on {grid_points} "
        f"evenly spaced points x in [{grid_low:g}, {grid_high:g}] of the true line y = {slope:g}x + {intercept:g}."
    )
    return Generated((x, slope * x + intercept), (grid, slope * grid + intercept), note, "grid")


def noisy_line(
    rng: np.random.Generator,
    n: int = 200,
    test_size: int = 40,
    slope: float = 5.0,
    intercept: float = 3.0,
    noise: float = 0.1,
    x_low: float = -1.0,
    x_high: float = 1.0,
) -> Generated:
    """y = slope*x + intercept + N(0, noise) at n uniform x; the last test_size points are held out."""
    _require(0 < test_size < n, "test_size must be between 1 and n - 1")
    _require(noise >= 0 and x_high > x_low, "noise must be >= 0 and x_high > x_low")
    x = rng.uniform(x_low, x_high, n).astype(np.float32)
    y = (slope * x + intercept + rng.normal(0.0, noise, n)).astype(np.float32)
    return _tail_split(x, y, test_size)


def sum_threshold(
    rng: np.random.Generator, n: int = 1000, test_size: int = 200, threshold: float = 1.0
) -> Generated:
    """Two features uniform in [0, 1), label 1 when x0 + x1 > threshold; the last test_size held out."""
    _require(0 < test_size < n, "test_size must be between 1 and n - 1")
    x = rng.uniform(0.0, 1.0, (n, 2)).astype(np.float32)
    y = (x.sum(axis=1) > threshold).astype(np.int64)
    return _tail_split(x, y, test_size)


def _tail_split(x: np.ndarray, y: np.ndarray, test_size: int) -> Generated:
    # Points are drawn independently, so the tail is as random a hold-out as any shuffle.
    cut = len(x) - test_size
    note = f"The last {test_size} of {len(x)} generated points, never used for training."
    return Generated((x[:cut], y[:cut]), (x[cut:], y[cut:]), note)


GENERATORS: dict[str, Callable[..., Generated]] = {
    "line": line,
    "noisy_line": noisy_line,
    "sum_threshold": sum_threshold,
}


def parameters(kind: str) -> dict[str, Any]:
    """A generator's parameters and their defaults (everything after the random generator)."""
    signature = inspect.signature(GENERATORS[kind])
    return {name: p.default for name, p in list(signature.parameters.items())[1:]}


def generate(kind: str, seed: int, params: Mapping[str, Any]) -> Generated:
    return GENERATORS[kind](np.random.default_rng(seed), **params)
