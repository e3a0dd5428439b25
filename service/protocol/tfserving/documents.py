"""TF Serving REST v1 model status and metadata documents (GetModelStatus / GetModelMetadata JSON).

Shapes follow TF Serving's protobuf-to-JSON output (``http_rest_api_util.cc``): int64 fields such
as ``version`` and dimension sizes are strings, enums are their names, and every field is printed
even when empty. Tensor names follow what a Keras SavedModel export shows:
``serving_default_<input>:0`` for inputs, ``StatefulPartitionedCall:<i>`` for outputs (TF flattens
a signature's named outputs in sorted name order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.models import servable
from service.models.card import TensorSpec
from service.models.servable import VersionStatus

PREDICT_METHOD = "tensorflow/serving/predict"
# TF Serving's ModelVersionStatus.State names: the registry's states, and UNKNOWN.
STATES = ("UNKNOWN", *servable.STATES)

DT_NAMES = {
    "bool": "DT_BOOL",
    "float16": "DT_HALF",
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "int8": "DT_INT8",
    "int16": "DT_INT16",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "uint8": "DT_UINT8",
    "uint16": "DT_UINT16",
    "uint32": "DT_UINT32",
    "uint64": "DT_UINT64",
    "string": "DT_STRING",
}


def model_status(versions: Sequence[VersionStatus]) -> dict[str, Any]:
    """``GET /v1/models/<name>``: ``{"model_version_status": [...]}`` in the order given."""
    return {"model_version_status": [_version_status(v) for v in versions]}


def _version_status(status: VersionStatus) -> dict[str, Any]:
    if status.state not in STATES:
        raise ValueError(
            f"Unknown model version state {status.state!r}; expected one of {', '.join(STATES)}."
        )
    code = "OK" if status.error is None else status.error_code
    return {
        "version": str(status.version),
        "state": status.state,
        "status": {"error_code": code, "error_message": status.error or ""},
    }


def model_metadata(
    name: str,
    version: int | str,
    signature_name: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
) -> dict[str, Any]:
    """``GET /v1/models/<name>/metadata``: the model spec and its one serving signature."""
    ordered = sorted(outputs, key=lambda s: s.name)
    signature = {
        "inputs": {s.name: _tensor_info(s, f"{signature_name}_{s.name}:0") for s in inputs},
        "outputs": {s.name: _tensor_info(s, f"StatefulPartitionedCall:{i}") for i, s in enumerate(ordered)},
        "method_name": PREDICT_METHOD,
        "defaults": {},
    }
    return {
        # TF Serving leaves model_spec.signature_name empty in metadata responses
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": {signature_name: signature}}},
    }


def _tensor_info(spec: TensorSpec, tensor_name: str) -> dict[str, Any]:
    return {
        "dtype": DT_NAMES[spec.dtype],
        "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in spec.shape], "unknown_rank": False},
        "name": tensor_name,
    }
