"""Open Inference Protocol (KServe V2) inference requests, JSON and binary, to numpy arrays.

Follows KServe's ``required_api.md`` with Triton's binary data and classification extensions and
what ``tritonclient.http`` sends. ``model_name``/``model_version`` in the body (Triton's examples
show them) are accepted and ignored: the URL names the model. Request parameters are passed
through (``sequence_id``, ``priority``, ``timeout`` ... from tritonclient included); ``top_k`` and
``threshold`` are this service's extension and are validated. Shared memory is not supported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol.jsonio import Reader, decode_json
from service.protocol.parameters import check_extension_parameters, scalar_parameters
from service.protocol.tensors import (
    Limits,
    check_batch_size,
    check_inputs,
    check_tensor_bytes,
    describe,
    fits,
    shape_text,
)
from service.protocol.v2.datatypes import BinarySection, convert, decode_tensor, spec_dtype_of, split_body

_FIELDS = ("id", "parameters", "inputs", "outputs", "model_name", "model_version")
_INPUT_FIELDS = ("name", "shape", "datatype", "parameters", "data")
_OUTPUT_FIELDS = ("name", "parameters")


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool | None = None  # None: as the request's binary_data_output says
    class_count: int = 0  # the classification extension's count; 0 when not asked


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    parameters: dict[str, Any]
    outputs: list[RequestedOutput] | None  # None: every output, with default settings
    binary_output: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # the allowed extra fields given, as plain JSON


def decode_infer(
    body: bytes,
    header_length: int | None,
    specs: Sequence[TensorSpec],
    limits: Limits,
    extra: Sequence[str] = (),
) -> InferRequest:
    """Decode ``POST .../infer``; ``header_length`` is the Inference-Header-Content-Length header.

    ``extra`` names further top-level fields to allow (``/evaluate``'s ``labels``...); their plain
    values come back in ``InferRequest.extra``, so the body is parsed once.
    """
    header, binary = split_body(body, header_length)
    return decode_json(header, lambda r: read_infer(r, binary, specs, limits, extra))


def read_infer(
    r: Reader, binary: bytes | None, specs: Sequence[TensorSpec], limits: Limits, extra: Sequence[str] = ()
) -> InferRequest:
    """``decode_infer`` on a given reader (the fast or the slow one) and binary section."""
    fields = _object(r, r.root, "The request body", (*_FIELDS, *extra))
    request_id = r.plain(fields.get("id"))
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"The request 'id' must be a string; got {describe(request_id)}.")
    parameters = scalar_parameters(r, fields.get("parameters"), "The request's 'parameters'")
    check_extension_parameters(parameters, "Parameter")
    binary_output = _flag(parameters, "binary_data_output", "The request's 'parameters'")
    inputs = _inputs(r, fields.get("inputs"), BinarySection(binary), specs, limits)
    outputs = _outputs(r, fields.get("outputs"))
    given = {name: r.plain(fields[name]) for name in extra if name in fields}
    return InferRequest(request_id, inputs, parameters, outputs, bool(binary_output), given)


def _object(r: Reader, value: Any, what: str, allowed: Sequence[str]) -> dict[str, Any]:
    fields = r.fields(value)
    if fields is None:
        raise InvalidInput(f"{what} must be a JSON object; got {describe(r.plain(value))}.")
    unknown = [name for name in fields if name not in allowed]
    if unknown:
        expected = ", ".join(repr(n) for n in allowed)
        raise InvalidInput(f"{what} has unknown field {unknown[0]!r}; expected only {expected}.")
    return fields


def _flag(parameters: dict[str, Any], name: str, where: str) -> bool | None:
    value = parameters.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidInput(f"{where} {name!r} must be true or false; got {describe(value)}.")
    return value


def _inputs(
    r: Reader, value: Any, section: BinarySection, specs: Sequence[TensorSpec], limits: Limits
) -> dict[str, np.ndarray]:
    items = r.items(value)
    if not items:
        raise InvalidInput("An inference request needs 'inputs', a non-empty list of input tensors.")
    by_name = {s.name: s for s in specs}
    inputs: dict[str, np.ndarray] = {}
    for index, item in enumerate(items):
        name, array = _input(r, _object(r, item, f"inputs[{index}]", _INPUT_FIELDS), section, by_name, limits)
        if name in inputs:
            raise InvalidInput(f"Input {name!r} is given twice.")
        inputs[name] = array
    section.finish()
    check_inputs(inputs, specs)
    return inputs


def _input(
    r: Reader, fields: dict[str, Any], section: BinarySection, specs: dict[str, TensorSpec], limits: Limits
) -> tuple[str, np.ndarray]:
    spec = _input_spec(r.plain(fields.get("name")), specs)
    where = f"Input {spec.name!r}"
    shape = _shape(r.plain(fields.get("shape")), spec, limits, where)
    datatype = r.plain(fields.get("datatype"))
    parse_as = spec_dtype_of(datatype)
    parameters = scalar_parameters(r, fields.get("parameters"), f"{where} 'parameters'")
    size = _binary_size(parameters, "data" in fields, where)
    if size is None:
        array = _json_data(r, fields["data"], shape, parse_as, limits, where)
    else:
        array = decode_tensor(section.take(size, where), datatype, math.prod(shape), where)
        array = _finite(array, limits, where)
    return spec.name, convert(array.reshape(shape), spec.dtype, where)


def _input_spec(name: Any, specs: dict[str, TensorSpec]) -> TensorSpec:
    if not isinstance(name, str):
        raise InvalidInput(f"Every input needs a string 'name'; got {describe(name)}.")
    if name not in specs:
        known = ", ".join(repr(n) for n in specs)
        raise InvalidInput(f"Unknown input {name!r}; the model's inputs are {known}.")
    return specs[name]


def _binary_size(parameters: dict[str, Any], has_data: bool, where: str) -> int | None:
    """The input's ``binary_data_size``, or None when its data is in the JSON."""
    if any(key.startswith("shared_memory") for key in parameters):
        raise InvalidInput(
            f"{where} uses shared memory, which this server does not support; send the data inline."
        )
    size = parameters.get("binary_data_size")
    if size is None and not has_data:
        raise InvalidInput(f"{where} has neither 'data' nor a binary_data_size parameter.")
    if size is not None and has_data:
        raise InvalidInput(f"{where} has both 'data' and a binary_data_size parameter; give one.")
    if size is not None and (type(size) is not int or size < 0):
        raise InvalidInput(f"{where} binary_data_size must be a non-negative integer; got {describe(size)}.")
    return size


def _shape(value: Any, spec: TensorSpec, limits: Limits, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(type(d) is int and d >= 0 for d in value):
        raise InvalidInput(f"{where} 'shape' must be a list of non-negative integers; got {value!r}.")
    shape = tuple(value)
    if not fits(shape, spec.shape):
        raise InvalidInput(f"{where} must have shape {shape_text(spec.shape)}; got {shape_text(shape)}.")
    if spec.shape[:1] == (-1,):
        check_batch_size(shape[0], limits, where)
    # Known from the shape before a byte is decoded (UINT8 data for a float32 input grows fourfold).
    check_tensor_bytes(math.prod(shape) * np.dtype(_storage(spec.dtype)).itemsize, limits, where)
    return shape


def _storage(dtype: str) -> str:
    return "object" if dtype == "string" else dtype


def _json_data(
    r: Reader, value: Any, shape: tuple[int, ...], dtype: str, limits: Limits, where: str
) -> np.ndarray:
    """Tensor data given in JSON: flat (row-major) or nested in the tensor's own shape."""
    if not r.is_array(value):
        raise InvalidInput(f"{where} 'data' must be a list; got {describe(r.plain(value))}.")
    if r.is_array(r.first(value)):
        return r.array(value, shape, dtype, limits.allow_nonfinite, f"{where} 'data'")
    count = math.prod(shape)
    if r.length(value) != count:
        raise InvalidInput(
            f"{where} has {r.length(value)} values in 'data'; shape {shape_text(shape)} needs {count}."
        )
    return r.array(value, (count,), dtype, limits.allow_nonfinite, f"{where} 'data'")


def _finite(array: np.ndarray, limits: Limits, where: str) -> np.ndarray:
    if array.dtype.kind == "f" and not limits.allow_nonfinite and not np.isfinite(array).all():
        raise InvalidInput(f"{where} must hold finite numbers; its binary data has NaN or Infinity.")
    return array


def _outputs(r: Reader, value: Any) -> list[RequestedOutput] | None:
    if value is None:
        return None
    items = r.items(value)
    if items is None:
        raise InvalidInput(f"'outputs' must be a list of requested outputs; got {describe(r.plain(value))}.")
    requested = [
        _output(r, _object(r, item, f"outputs[{i}]", _OUTPUT_FIELDS)) for i, item in enumerate(items)
    ]
    names = [o.name for o in requested]
    if len(set(names)) != len(names):
        raise InvalidInput("'outputs' names the same output twice.")
    return requested or None


def _output(r: Reader, fields: dict[str, Any]) -> RequestedOutput:
    name = r.plain(fields.get("name"))
    if not isinstance(name, str):
        raise InvalidInput(f"Every requested output needs a string 'name'; got {describe(name)}.")
    where = f"Output {name!r} 'parameters'"
    parameters = scalar_parameters(r, fields.get("parameters"), where)
    if any(key.startswith("shared_memory") for key in parameters):
        raise InvalidInput(f"Output {name!r} asks for shared memory, which this server does not support.")
    count = parameters.get("classification", 0)
    if type(count) is not int or count < 0:
        raise InvalidInput(f"{where} 'classification' must be a non-negative integer; got {describe(count)}.")
    return RequestedOutput(name, _flag(parameters, "binary_data", where), count)
