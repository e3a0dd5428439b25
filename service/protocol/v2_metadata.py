"""Open Inference Protocol (KServe V2) server and model metadata documents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.models.card import TensorSpec
from service.protocol.v2_datatypes import datatype_of

PLATFORM = "tensorflow_savedmodel"  # the spec's name for a TensorFlow SavedModel


def server_metadata(name: str, version: str, extensions: Sequence[str]) -> dict[str, Any]:
    """``GET /v2``: ``{"name", "version", "extensions"}``."""
    return {"name": name, "version": version, "extensions": list(extensions)}


def model_metadata(
    name: str,
    versions: Sequence[str],
    platform: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
) -> dict[str, Any]:
    """``GET /v2/models/<name>[/versions/<v>]``: datatypes like ``FP32``, ``-1`` for any size."""
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": platform,
        "inputs": [_tensor(s) for s in inputs],
        "outputs": [_tensor(s) for s in outputs],
    }


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": datatype_of(spec.dtype), "shape": list(spec.shape)}
