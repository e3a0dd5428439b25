"""Open Inference Protocol (KServe V2) inference responses: JSON, or JSON plus binary tensors.

An output goes in the binary section when its request said ``binary_data: true``, or when the
request said ``binary_data_output: true`` and the output did not say otherwise (tritonclient asks
for that whenever it requests no outputs by name). JSON data is flat and row-major; BYTES values
are written as text there. Non-finite floats in JSON are written as ``NaN``/``Infinity`` tokens,
which tritonclient's parser reads (as does TF Serving's dialect).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.protocol import jsonio
from service.protocol.v2_binary import encode_tensor
from service.protocol.v2_classification import classify
from service.protocol.v2_datatypes import datatype_of
from service.protocol.v2_request import InferRequest, RequestedOutput

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
    check_requested_outputs(request, outputs)
    wanted = request.outputs or [RequestedOutput(name) for name in outputs]
    entries, chunks = [], []
    for want in wanted:
        array = np.asarray(outputs[want.name])
        if want.class_count:
            labels = class_labels if want.name == classification_source else None
            array = classify(array, want.class_count, labels, f"Output {want.name!r}")
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
