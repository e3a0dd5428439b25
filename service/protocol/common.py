"""Types and checks shared by both wire dialects: limits, version states, tensors from JSON values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol.casting import leaves_to_array
from service.protocol.nested import fits, flatten, infer_shape, shape_text

STATES = ("UNKNOWN", "START", "LOADING", "AVAILABLE", "UNLOADING", "END")


@dataclass(frozen=True)
class Limits:
    """What one request may carry. ``allow_nonfinite`` admits TF Serving's NaN/Infinity tokens."""

    max_instances: int = 65536
    allow_nonfinite: bool = False


@dataclass(frozen=True)
class VersionStatus:
    """One version's state as TF Serving reports it (``STATES``); ``error`` set for a failed load.

    ``error_code`` is the canonical status code name reported with ``error`` (TF Serving passes
    the load error's own code through; the registry may not know it, hence ``UNKNOWN``).
    """

    version: int
    state: str
    error: str | None = None
    error_code: str = "UNKNOWN"


def to_array(value: Any, spec: TensorSpec, limits: Limits, where: str) -> np.ndarray:
    """A nested JSON value (batch first) as an array of ``spec``'s dtype and shape.

    ``where`` names the value in messages, e.g. ``"Input 'images'"``.
    """
    if spec.shape[:1] == (-1,) and isinstance(value, list):
        check_batch_size(len(value), limits, where)
    return nested_to_array(value, spec.shape, spec.dtype, limits.allow_nonfinite, where)


def nested_to_array(
    value: Any, expected: tuple[int, ...], dtype: str, allow_nonfinite: bool, where: str
) -> np.ndarray:
    """A nested JSON value as an array of ``dtype`` whose shape fits ``expected`` (-1: any size)."""
    shape = infer_shape(value)  # from the first item at each depth; flatten() checks the rest
    if not fits(shape, expected):
        raise InvalidInput(f"{where} must have shape {shape_text(expected)}; got {shape_text(shape)}.")
    return leaves_to_array(flatten(value, shape, where), shape, dtype, allow_nonfinite, where)


def check_batch_size(size: int, limits: Limits, where: str) -> None:
    """Refuse an empty batch and one larger than ``limits.max_instances``."""
    if size == 0:
        raise InvalidInput(f"{where} must hold at least one instance; got none.")
    if size > limits.max_instances:
        raise InvalidInput(
            f"{where} holds {size} instances; at most {limits.max_instances} are allowed per request."
        )


def check_inputs(inputs: Mapping[str, np.ndarray], specs: Sequence[TensorSpec]) -> None:
    """Every signature input present, nothing else, and one batch size across batched inputs."""
    check_names(inputs, specs)
    sizes = {s.name: inputs[s.name].shape[0] for s in specs if s.shape[:1] == (-1,) and inputs[s.name].ndim}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{n!r} has {b}" for n, b in sizes.items())
        raise InvalidInput(f"All inputs must have the same batch size; {listed}.")


def check_names(names: Iterable[str], specs: Sequence[TensorSpec], context: str = "") -> None:
    """``names`` are exactly the signature's inputs; ``context`` (" in instance 3") locates them."""
    expected = [s.name for s in specs]
    known = ", ".join(repr(n) for n in expected)
    given = list(names)
    for name in given:
        if name not in expected:
            raise InvalidInput(f"Unknown input {name!r}{context}; the model's inputs are {known}.")
    for name in expected:
        if name not in given:
            raise InvalidInput(f"Input {name!r} is missing{context}; the model's inputs are {known}.")
