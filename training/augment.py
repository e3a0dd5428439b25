"""Training-only image augmentation: a random affine plus elastic warp, resampled once per image."""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf


class RandomWarp(keras.layers.Layer):
    """Rotate, zoom, shift and elastically bend each image, with a single bilinear resampling.

    Keras' RandomRotation/RandomZoom/RandomTranslation each resample the image, and every resampling
    blurs thin strokes a little more; chained, they teach a digit model on fainter strokes than it
    will see when serving. Here one displacement field carries all of it. The elastic part follows
    the idea of Simard, Steinkraus and Platt (ICDAR 2003), made cheap: random offsets of up to
    ``elastic`` pixels on a ``grid`` x ``grid`` lattice, upsampled bicubically into a smooth field.
    Identity unless ``training`` is true, so it never runs when serving.
    """

    def __init__(
        self, degrees: float, zoom: float, shift: float, elastic: float, grid: int = 4, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.degrees, self.zoom, self.shift, self.elastic = (
            float(degrees),
            float(zoom),
            float(shift),
            float(elastic),
        )
        self.grid = int(grid)
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, images: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training:
            return images
        shape = tf.shape(images)
        y, x = self._source_coordinates(shape[0], shape[1], shape[2], images.dtype)
        return bilinear_sample(images, y, x)

    def _uniform(self, shape: Any, bound: float) -> tf.Tensor:
        return keras.random.uniform(shape, -bound, bound, seed=self.seed_generator)

    def _source_coordinates(
        self, batch: tf.Tensor, height: tf.Tensor, width: tf.Tensor, dtype: tf.DType
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Where each output pixel reads from: the inverse of a random similarity plus the elastic field."""
        angle = self._uniform((batch, 1, 1), math.radians(self.degrees))
        scale = 1.0 + self._uniform((batch, 1, 1), self.zoom)
        shift_y, shift_x = self._uniform((batch, 1, 1), self.shift), self._uniform((batch, 1, 1), self.shift)
        offsets = self._uniform((batch, self.grid, self.grid, 2), 1.0)
        field = tf.image.resize(offsets, (height, width), method="bicubic") * self.elastic
        rows, cols = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
        center_y, center_x = (tf.cast(height, dtype) - 1) / 2, (tf.cast(width, dtype) - 1) / 2
        u, v = tf.cast(rows, dtype)[None] - center_y, tf.cast(cols, dtype)[None] - center_x
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        y = center_y + cos * u - sin * v + shift_y + field[..., 0]
        x = center_x + sin * u + cos * v + shift_x + field[..., 1]
        return y, x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        settings = {"degrees": self.degrees, "zoom": self.zoom, "shift": self.shift, "elastic": self.elastic}
        return {**super().get_config(), **settings, "grid": self.grid}


def bilinear_sample(images: tf.Tensor, y: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """``images`` [batch, height, width, channels] read at fractional (y, x) [batch, height, width]; 0 outside."""
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    y0, x0 = tf.floor(y), tf.floor(x)
    dy, dx = (y - y0)[..., None], (x - x0)[..., None]
    batch = tf.broadcast_to(tf.range(shape[0])[:, None, None], tf.shape(y))

    def pixel(row: tf.Tensor, col: tf.Tensor) -> tf.Tensor:
        r, c = tf.cast(row, tf.int32), tf.cast(col, tf.int32)
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        index = tf.stack([batch, tf.clip_by_value(r, 0, height - 1), tf.clip_by_value(c, 0, width - 1)], -1)
        return tf.gather_nd(images, index) * tf.cast(inside, images.dtype)[..., None]

    top = (1 - dx) * pixel(y0, x0) + dx * pixel(y0, x0 + 1)
    bottom = (1 - dx) * pixel(y0 + 1, x0) + dx * pixel(y0 + 1, x0 + 1)
    return (1 - dy) * top + dy * bottom
