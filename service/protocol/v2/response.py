"""Open Inference Protocol (KServe V2) responses: inference results (JSON, or JSON plus binary tensors),
Triton's classification extension, and the server and model metadata documents.

An output goes in the binary section when its request said ``binary_data: true``, or when the
request said ``binary_data_output: true`` and the output did not say otherwise (tritonclient asks
for that whenever it requests no outputs by name). JSON data is flat and row-major; BYTES values
are written as text there. Non-finite floats in JSON are written as ``NaN``/``Infinity`` tokens,
which tritonclient's parser reads (as does TF Serving's dialect).

Classification (``extension_classification.md`` and Triton's ``classification.cc``): for each batch
item the k highest values of the output (flattened per item) are returned as a BYTES tensor
[batch, k'] with k' = min(k, classes), each ``"value:index[:label]"``; the value printed like C++
``std::to_string`` (``%f`` for floats, ``%d`` for integers), the label only when known. Ties keep
the lower index first (Triton's sort leaves ties unspecified).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol import jsonio
from service.protocol.v2.datatypes import datatype_of, encode_tensor
from service.protocol.v2.request import InferRequest, RequestedOutput

# ---- inference responses ----------------------------------------------------------------------
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"
HEADER_LENGTH = "Inference-Header-Content-Length"


def check_requested_outputs(request: InferRequest, available: Iterable[str]) -> None:
    """Refuse a request naming an output the model does not produce (call before running it)."""
    names = list(available)
    for output in request.outputs or ():
        if output.name not in names:
            known = ", ".join(repr(n) for n in names)
            raise InvalidInput(f"Unknown output {output.name!r} requested; the model's outputs are {known}.")


def answered_outputs(
    outputs: Mapping[str, np.ndarray],
    request: InferRequest,
    class_labels: Sequence[str] | None,
    classification_source: str | None,
) -> list[tuple[RequestedOutput, np.ndarray]]:
    """What an answer carries, on either transport: the requested outputs (or all), each as sent.

    ``class_labels`` label the classes of the ``classification_source`` output; a classification
    asked of another output is returned without labels.
    """
    check_requested_outputs(request, outputs)
    answered = []
    for want in request.outputs or [RequestedOutput(name) for name in outputs]:
        array = np.asarray(outputs[want.name])
        if want.class_count:
            labels = class_labels if want.name == classification_source else None
            array = classify(array, want.class_count, labels, f"Output {want.name!r}")
        answered.append((want, array))
    return answered


def encode_infer(
    model_name: str,
    model_version: str,
    outputs: Mapping[str, np.ndarray],
    request: InferRequest,
    class_labels: Sequence[str] | None,
    classification_source: str | None,
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (Content-Type, and the header length when binary).

    ``class_labels`` label the classes of the ``classification_source`` output; a classification
    asked of another output is returned without labels.
    """
    entries, chunks = [], []
    for want, array in answered_outputs(outputs, request, class_labels, classification_source):
        entry: dict[str, Any] = {
            "name": want.name,
            "datatype": datatype_of(array.dtype),
            "shape": list(array.shape),
        }
        if want.binary if want.binary is not None else request.binary_output:
            chunks.append(encode_tensor(array))
            entry["parameters"] = {"binary_data_size": len(chunks[-1])}
        else:
            entry["data"] = _json_data(array, want.name)
        entries.append(entry)
    header = _header(model_name, model_version, request.id, entries)
    if not chunks:
        return header, {"Content-Type": JSON_TYPE}
    return header + b"".join(chunks), {"Content-Type": BINARY_TYPE, HEADER_LENGTH: str(len(header))}


def _header(name: str, version: str, request_id: str | None, entries: list[dict[str, Any]]) -> bytes:
    doc: dict[str, Any] = {"model_name": name, "model_version": version}
    if request_id is not None:
        doc["id"] = request_id
    doc["outputs"] = entries
    data = [e["data"] for e in entries if "data" in e and isinstance(e["data"], np.ndarray)]
    return jsonio.dumps(doc, nonfinite=jsonio.has_nonfinite(data))


def _json_data(array: np.ndarray, name: str) -> Any:
    """Flat row-major data: a contiguous array for numbers, a list of text for BYTES."""
    if array.dtype.kind not in "OSU":
        return np.ascontiguousarray(array.reshape(-1))
    try:
        return [v if isinstance(v, str) else bytes(v).decode("utf-8") for v in array.reshape(-1).tolist()]
    except UnicodeDecodeError:
        raise InvalidInput(
            f"Output {name!r} holds bytes that are not UTF-8 text, which JSON cannot carry; "
            "request it with the binary_data parameter."
        ) from None


# ---- classification extension -----------------------------------------------------------------
def classify(values: np.ndarray, count: int, labels: Sequence[str] | None, where: str) -> np.ndarray:
    """The top ``count`` entries of each batch item of ``values`` as an object array of bytes."""
    if values.dtype.kind not in "iuf" or (values.dtype.itemsize < 4 and values.dtype.kind == "f"):
        raise InvalidInput(f"{where} cannot be classified: only integer, FP32 and FP64 outputs can.")
    if values.ndim == 0:
        raise InvalidInput(f"{where} cannot be classified: it has no batch dimension.")
    rows = values.reshape(values.shape[0], -1)
    top = _top_indices(rows)[:, :count]
    text = "{:f}:{}" if rows.dtype.kind == "f" else "{:d}:{}"
    result = np.empty(top.shape, dtype=object)
    for (i, j), index in np.ndenumerate(top):
        entry = text.format(rows[i, index].item(), index)
        if labels is not None and index < len(labels):
            entry += f":{labels[index]}"
        result[i, j] = entry.encode("utf-8")
    return result


def _top_indices(rows: np.ndarray) -> np.ndarray:
    """Column indices by descending value; a stable sort of the reversed columns keeps ties low-first.

    (Negating the values would overflow unsigned integers.)
    """
    last = rows.shape[1] - 1
    return last - np.argsort(rows[:, ::-1], axis=1, kind="stable")[:, ::-1]


# ---- metadata documents -----------------------------------------------------------------------
PLATFORM = "tensorflow_savedmodel"  # the spec's name for a TensorFlow SavedModel
EXTENSIONS = ("binary_tensor_data", "classification")  # the Triton extensions implemented here


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
