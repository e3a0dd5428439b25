"""TF Serving REST v1 classify/regress: ``examples`` of flat features to arrays, results to JSON.

TF Serving turns each example into a ``tf.Example`` for the model to parse; our models take plain
tensors, so each feature named like a signature input becomes that input, its flat list of values
reshaped to the input's per-example shape (784 values for a [-1, 28, 28] input). ``context``
features are added to every example and must not repeat in one. Features that match no input are
refused (TF Serving's parser would ignore them; here that would hide a misspelt name).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol import jsonio
from service.protocol.jsonio import SlowReader
from service.protocol.tensors import (
    Limits,
    check_batch_size,
    check_names,
    describe,
    nested_to_array,
    shape_text,
)
from service.protocol.tfserving.predict import EXTENSION_FIELDS, body_fields, parameters, signature_name

_FIELDS = ("signature_name", "context", "examples", *EXTENSION_FIELDS)
_HINT = "a classify or regress request has 'examples', and optionally 'signature_name', 'context' and 'parameters'."


def decode_examples(
    body: bytes, specs: Sequence[TensorSpec], limits: Limits
) -> tuple[dict[str, np.ndarray], str | None, dict[str, Any]]:
    """Decode a ``:classify``/``:regress`` body into (inputs, signature_name, parameters)."""
    r = SlowReader(body)  # a compatibility path with small payloads: no fast reader needed
    fields = body_fields(r, _FIELDS, _HINT)
    signature, extra = signature_name(r, fields), parameters(r, fields)
    rows = example_rows(fields.get("examples"), _context(fields.get("context")), specs, limits)
    return {s.name: feature_array(rows, s, limits) for s in specs}, signature, extra


def _context(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"'context' must be an object of features; got {describe(value)}.")
    return value


def example_rows(
    value: Any, context: dict[str, Any], specs: Sequence[TensorSpec], limits: Limits
) -> list[dict[str, Any]]:
    """Each example with the ``context`` features added, its feature names checked against ``specs``."""
    if not isinstance(value, list):
        raise InvalidInput(
            f"A classify or regress request needs 'examples', a list of objects; got {describe(value)}."
        )
    check_batch_size(len(value), limits, "'examples'")
    rows = []
    for index, example in enumerate(value):
        if not isinstance(example, dict):
            raise InvalidInput(f"Example {index} must be an object of features; got {describe(example)}.")
        repeated = [name for name in example if name in context]
        if repeated:
            raise InvalidInput(
                f"Feature {repeated[0]!r} is in both 'context' and example {index}; give it once."
            )
        row = {**context, **example}
        check_names(row, specs, f" among the features of example {index}")
        rows.append(row)
    return rows


def feature_array(rows: list[dict[str, Any]], spec: TensorSpec, limits: Limits) -> np.ndarray:
    """The input ``spec`` across every row: each row's flat values reshaped to the per-example shape."""
    where = f"Feature {spec.name!r}"
    lists = [row[spec.name] if isinstance(row[spec.name], list) else [row[spec.name]] for row in rows]
    inner = _per_example_shape(spec, [len(values) for values in lists], where)
    size = math.prod(inner)
    values = nested_to_array(lists, (-1, size), spec.dtype, limits.allow_nonfinite, where)
    return values.reshape((len(rows), *inner))


def _per_example_shape(spec: TensorSpec, lengths: list[int], where: str) -> tuple[int, ...]:
    """The input's shape without its batch size, with one unknown size solved from the lengths."""
    inner = spec.shape[1:]
    known = math.prod(d for d in inner if d != -1)
    if inner.count(-1) > 1:
        raise InvalidInput(
            f"{where} cannot be read from a flat list: input shape {shape_text(spec.shape)} has several unknown sizes."
        )
    for index, length in enumerate(lengths):
        if length != lengths[0] or length % known or (-1 not in inner and length != known):
            needs = f"{known}" if -1 not in inner else f"the same multiple of {known} in every example"
            raise InvalidInput(
                f"{where} has {length} values in example {index}; input shape {shape_text(spec.shape)} needs {needs}."
            )
    return tuple(lengths[0] // known if d == -1 else d for d in inner)


def classification_columns(
    probabilities: np.ndarray, class_labels: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """[examples, classes] scores and one label per class (``""`` when the model has none, as TF
    Serving's API describes), for Classify answers on either transport."""
    scores = np.asarray(probabilities)
    if scores.ndim != 2:
        raise ValueError(f"Classification scores must be [examples, classes]; got shape {scores.shape}.")
    labels = list(class_labels) if class_labels else [""] * scores.shape[1]
    if len(labels) != scores.shape[1]:
        raise ValueError(f"{len(labels)} class labels for {scores.shape[1]} scores per example.")
    return scores, labels


def encode_classify(probabilities: np.ndarray, class_labels: Sequence[str] | None) -> bytes:
    """``{"results": [[[label, score], ...], ...]}``: every class of every example, in class order.

    Labels are ``""`` when the model has none (None or empty), as TF Serving's API describes.
    """
    scores, labels = classification_columns(probabilities, class_labels)
    rows = jsonio.plain_floats(scores)
    results = [[[label, score] for label, score in zip(labels, row, strict=True)] for row in rows]
    return jsonio.dumps({"results": results}, nonfinite=jsonio.has_nonfinite([scores]))


def encode_regress(values: np.ndarray) -> bytes:
    """``{"results": [value, ...]}``: one number per example, from [N] or [N, 1] values."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise ValueError(f"Regression values must be [examples] or [examples, 1]; got shape {array.shape}.")
    return jsonio.dumps({"results": jsonio.plain_floats(array)}, nonfinite=jsonio.has_nonfinite([array]))
