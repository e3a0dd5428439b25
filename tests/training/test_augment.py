"""training.augment: the warp layer is identity when serving and a single resampling when training."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.augment import RandomWarp, bilinear_sample

IMAGES = np.random.default_rng(0).uniform(0, 1, (4, 28, 28, 1)).astype(np.float32)


def test_identity_unless_training() -> None:
    layer = RandomWarp(10, 0.1, 3, 1.5)
    np.testing.assert_array_equal(np.asarray(layer(IMAGES, training=False)), IMAGES)
    np.testing.assert_array_equal(np.asarray(layer(IMAGES)), IMAGES)


def test_no_movement_is_identity_even_when_training() -> None:
    np.testing.assert_allclose(np.asarray(RandomWarp(0, 0, 0, 0)(IMAGES, training=True)), IMAGES, atol=1e-5)


@pytest.mark.parametrize("settings", [(15, 0, 0, 0), (0, 0.2, 0, 0), (0, 0, 3, 0), (0, 0, 0, 2)])
def test_each_part_moves_pixels_differently_per_image(settings: tuple[float, ...]) -> None:
    out = np.asarray(RandomWarp(*settings)(IMAGES, training=True))
    assert out.shape == IMAGES.shape and not np.allclose(out, IMAGES)
    changes = [np.abs(out[i] - IMAGES[i]).mean() for i in range(len(IMAGES))]
    assert len(set(np.round(changes, 6))) == len(IMAGES)


def test_rotation_keeps_the_centre_pixel() -> None:
    image = np.zeros((1, 29, 29, 1), np.float32)
    image[0, 14, 14, 0] = 1.0
    out = np.asarray(RandomWarp(30, 0, 0, 0)(image, training=True))
    assert out[0, 14, 14, 0] == pytest.approx(1.0, abs=1e-5)


def test_global_seed_makes_it_repeatable() -> None:
    def run() -> np.ndarray:
        keras.utils.set_random_seed(3)
        return np.asarray(RandomWarp(10, 0.1, 2, 1)(IMAGES, training=True))

    np.testing.assert_array_equal(run(), run())


@pytest.mark.parametrize(("dy", "dx"), [(0.0, 0.0), (0.5, 0.0), (0.0, 0.25), (0.5, 0.5)])
def test_bilinear_sample_interpolates_neighbours(dy: float, dx: float) -> None:
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)  # value = 4 * row + col: linear
    rows, cols = np.meshgrid(np.arange(3.0), np.arange(3.0), indexing="ij")
    y, x = tf.constant((rows + dy)[None], tf.float32), tf.constant((cols + dx)[None], tf.float32)
    out = bilinear_sample(tf.constant(image), y, x).numpy()[0, ..., 0]
    np.testing.assert_allclose(out, 4 * (rows + dy) + (cols + dx), rtol=1e-6)


def test_bilinear_sample_reads_zero_outside() -> None:
    image = tf.ones((1, 2, 2, 1))
    out = bilinear_sample(image, tf.constant([[[-5.0, 0.0]]]), tf.constant([[[0.0, 0.0]]])).numpy()
    assert out[0, 0, 0, 0] == 0 and out[0, 0, 1, 0] == 1
