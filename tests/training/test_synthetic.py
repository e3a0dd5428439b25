"""training.synthetic: seeded generators give the same data for the same seed, and the right data."""

from __future__ import annotations

import numpy as np
import pytest

from training import synthetic
from training.errors import ConfigError


@pytest.mark.parametrize("kind", sorted(synthetic.GENERATORS))
def test_same_seed_same_data(kind: str) -> None:
    first, second = synthetic.generate(kind, 5, {}), synthetic.generate(kind, 5, {})
    for a, b in zip([*first.train, *first.test], [*second.train, *second.test], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["noisy_line", "sum_threshold"])
def test_different_seed_different_data(kind: str) -> None:
    assert not np.array_equal(
        synthetic.generate(kind, 1, {}).train[0], synthetic.generate(kind, 2, {}).train[0]
    )


def test_line_is_the_six_points_and_a_grid_of_the_true_function() -> None:
    data = synthetic.generate("line", 0, {})
    assert data.train[0].tolist() == [-1, 0, 1, 2, 3, 4]
    assert data.train[1].tolist() == [-3, -1, 1, 3, 5, 7]
    grid_x, grid_y = data.test
    assert (grid_x.min(), grid_x.max(), grid_x.size) == (-5, 15, 81)
    np.testing.assert_allclose(grid_y, 2 * grid_x - 1)
    assert data.metrics_split == "grid" and "No held-out sample" in data.test_note


def test_noisy_line_follows_its_parameters() -> None:
    data = synthetic.generate("noisy_line", 0, {"n": 2000, "test_size": 500})
    (x, y), (x_test, _) = data.train, data.test
    assert (x.size, x_test.size, x.dtype, y.dtype) == (1500, 500, np.float32, np.float32)
    assert x.min() >= -1 and x.max() < 1
    residual = y - (5 * x + 3)
    assert abs(residual.mean()) < 0.02 and 0.08 < residual.std() < 0.12
    assert data.metrics_split == "test"


def test_sum_threshold_labels_the_sum() -> None:
    generated = synthetic.generate("sum_threshold", 0, {})
    (x, y), (x_test, _) = generated.train, generated.test
    assert x.shape == (800, 2) and x_test.shape == (200, 2)
    np.testing.assert_array_equal(y, x.sum(axis=1) > 1)
    assert y.dtype == np.int64 and 0.3 < y.mean() < 0.7


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("noisy_line", {"n": 10, "test_size": 10}),
        ("noisy_line", {"noise": -1.0}),
        ("sum_threshold", {"test_size": 0}),
        ("line", {"x_first": 3, "x_last": 3}),
        ("line", {"grid_points": 1}),
    ],
)
def test_bad_parameters(kind: str, params: dict) -> None:
    with pytest.raises(ConfigError, match=r"data\.params"):
        synthetic.generate(kind, 0, params)


def test_parameters_lists_defaults_without_the_generator() -> None:
    assert synthetic.parameters("sum_threshold") == {"n": 1000, "test_size": 200, "threshold": 1.0}
