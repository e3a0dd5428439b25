"""TF Serving's Classify and Regress over gRPC: tf.Example inputs to arrays, results to their messages.

An ``Input`` holds an ``example_list`` or an ``example_list_with_context``; each ``tf.Example``
feature is a ``float_list``, ``int64_list`` or ``bytes_list``. They are read into the plain rows the
REST dialect reads from ``examples``/``context`` JSON and go through its code
(:mod:`service.protocol.tfserving.examples`), so both transports apply the same rules and say
the same things: a feature per signature input, flat values reshaped to the input's per-example
shape, context features added to every example, unknown features refused.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np

from service.errors import InvalidInput
from service.grpc.generated import classification_pb2, input_pb2, regression_pb2
from service.models.card import TensorSpec
from service.protocol.tensors import Limits
from service.protocol.tfserving.examples import classification_columns, example_rows, feature_array

Input: TypeAlias = input_pb2.Input
ClassificationResult: TypeAlias = classification_pb2.ClassificationResult
RegressionResult: TypeAlias = regression_pb2.RegressionResult


def decode_input(request_input: Input, specs: Sequence[TensorSpec], limits: Limits) -> dict[str, np.ndarray]:
    """A ClassificationRequest's or RegressionRequest's ``input`` as the signature's input arrays."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples, context = request_input.example_list.examples, {}
    elif kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        examples, context = listed.examples, _plain(listed.context)
    else:
        raise InvalidInput(
            "A classify or regress request needs 'input' holding an example_list or an example_list_with_context."
        )
    rows = example_rows([_plain(example) for example in examples], context, specs, limits)
    return {spec.name: feature_array(rows, spec, limits) for spec in specs}


def _plain(example: Any) -> dict[str, list[Any]]:
    """A tf.Example's features as REST's JSON would carry them (bytes as ``{"b64": ...}``, lossless)."""
    features: dict[str, list[Any]] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "bytes_list":
            features[name] = [
                {"b64": base64.b64encode(value).decode("ascii")} for value in feature.bytes_list.value
            ]
        elif kind is None:
            features[name] = []  # an empty Feature: refused below with the count it needs
        else:
            features[name] = list(getattr(feature, kind).value)
    return features


def fill_classifications(
    result: ClassificationResult, probabilities: np.ndarray, class_labels: Sequence[str] | None
) -> None:
    """Every class of every example, in class order, as TF Serving's Classify answers.

    Labels are empty when the model has none, as in the REST answer.
    """
    scores, labels = classification_columns(probabilities, class_labels)
    for row in scores.tolist():
        classes = result.classifications.add().classes
        for label, score in zip(labels, row, strict=True):
            classes.add(label=label, score=score)


def fill_regressions(result: RegressionResult, values: np.ndarray) -> None:
    """One value per example, from [N] or [N, 1] values."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise ValueError(f"Regression values must be [examples] or [examples, 1]; got shape {array.shape}.")
    for value in array.tolist():
        result.regressions.add(value=value)
