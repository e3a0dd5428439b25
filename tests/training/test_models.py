"""training.models: Keras models built from the packaged configs, and the errors of impossible stacks."""

from __future__ import annotations

import numpy as np
import pytest

from training import config
from training.errors import ConfigError
from training.models import OPTIMIZERS, build, compile_model

keras = pytest.importorskip("keras")


@pytest.mark.parametrize(
    ("name", "input_shape", "output_shape", "params"),
    [
        ("linear", (None, 1), (None, 1), 2),
        ("regression", (None, 1), (None, 1), 2),
        ("binary", (None, 2), (None, 1), 2 * 3 + 3 + 3 + 1),
        ("mnist", (None, 28, 28), (None, 10), 784 * 128 + 128 + 128 * 10 + 10),
        ("mnist_3b1b", (None, 28, 28), (None, 10), 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10),
        ("mnist_cnn", (None, 28, 28), (None, 10), None),
    ],
)
def test_packaged_models_have_the_contract_shapes(
    name: str, input_shape: tuple, output_shape: tuple, params: int | None
) -> None:
    model = build(config.load(name))
    assert (tuple(model.input_shape), tuple(model.output_shape)) == (input_shape, output_shape)
    if params is not None:
        assert model.count_params() == params


def test_cnn_augmentation_is_off_at_inference() -> None:
    keras.utils.set_random_seed(0)
    model = build(config.load("mnist_cnn"))
    images = np.random.default_rng(0).uniform(0, 1, (4, 28, 28)).astype(np.float32)
    first, second = model(images, training=False), model(images, training=False)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    augmented = model.get_layer(index=2)(images[..., None], training=True)  # the warp layer
    assert not np.allclose(np.asarray(augmented), images[..., None])


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_every_optimizer_and_schedule_compiles(optimizer: str, schedule: str) -> None:
    cfg = config.load("binary", [("training.optimizer", optimizer), ("training.schedule", schedule)])
    model = build(cfg)
    compile_model(model, cfg, steps_per_epoch=10)
    assert type(model.optimizer).__name__.lower() == optimizer
    is_schedule = isinstance(model.optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule)
    assert is_schedule == (schedule == "cosine")


def test_config_lists_exactly_the_optimizers_models_can_build() -> None:
    assert set(config.OPTIMIZERS) == set(OPTIMIZERS)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ("flatten,conv:8,dense:10:softmax", "Layer conv:8:3:linear cannot take input of shape"),
        ("reshape:28x28x1,conv:8,dense:10:softmax", "layers end in shape \\(None, 28, 28, 10\\)"),
        ("reshape:10x10,dense:10:softmax", "Layer reshape:10x10 cannot take input"),
    ],
)
def test_impossible_stacks_are_config_errors(layers: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(config.load("mnist", [("layers", layers)]))
