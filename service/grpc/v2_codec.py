"""The V2 GRPCInferenceService's ModelInfer messages <-> this service's InferRequest and numpy outputs.

Follows KServe's ``grpc_predict_v2.proto`` as Triton serves it: an input's values are either its
typed ``contents`` field (``fp32_contents``, ``int_contents`` for INT8/16/32...; FP16 has none) or,
for every input alike, one entry of ``raw_input_contents`` in input order, laid out as the HTTP
binary data extension lays a tensor (little-endian, BYTES as 4-byte length + bytes), which is what
``tritonclient.grpc`` always sends. Outputs always go back in ``raw_output_contents``, as Triton
answers. Checks and messages are the REST dialect's (:mod:`service.protocol.v2.request`); the
result is the same :class:`InferRequest`, so both transports share everything after decoding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np

from service.errors import InvalidInput
from service.grpc.generated import v2_pb2
from service.models.card import TensorSpec
from service.protocol.parameters import check_extension_parameters
from service.protocol.tensors import (
    Limits,
    category,
    check_batch_size,
    check_float_values,
    check_inputs,
    check_int_range,
    describe,
    fits,
    shape_text,
)
from service.protocol.v2.datatypes import convert, datatype_of, decode_tensor, dtype_of, encode_tensor
from service.protocol.v2.request import InferRequest, RequestedOutput
from service.protocol.v2.response import answered_outputs

ModelInferRequest: TypeAlias = v2_pb2.ModelInferRequest
ModelInferResponse: TypeAlias = v2_pb2.ModelInferResponse
InputTensor: TypeAlias = v2_pb2.ModelInferRequest.InferInputTensor
OutputRequest: TypeAlias = v2_pb2.ModelInferRequest.InferRequestedOutputTensor

# The typed contents field of each datatype; FP16 has none and travels only as raw contents.
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def parameters_of(parameters: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A ``map<string, InferParameter>`` as plain values (bool, int, str or float)."""
    result = {}
    for name, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is None:
            raise InvalidInput(f"{where} {name!r} has no value; set one of its parameter_choice fields.")
        result[name] = getattr(parameter, choice)
    return result


def decode_request(request: ModelInferRequest, specs: Sequence[TensorSpec], limits: Limits) -> InferRequest:
    """A ModelInferRequest as the InferRequest the REST dialect decodes, inputs as the model's dtypes."""
    parameters = parameters_of(request.parameters, "The request's 'parameters'")
    check_extension_parameters(parameters, "Parameter")
    if not request.inputs:
        raise InvalidInput("An inference request needs 'inputs', a non-empty list of input tensors.")
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"The request has {len(raw)} raw_input_contents for {len(request.inputs)} inputs; "
            "give raw contents for every input or for none."
        )
    by_name = {s.name: s for s in specs}
    inputs: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(request.inputs):
        spec = _input_spec(tensor.name, by_name)
        if spec.name in inputs:
            raise InvalidInput(f"Input {spec.name!r} is given twice.")
        inputs[spec.name] = _input(tensor, raw[index] if raw else None, spec, limits)
    check_inputs(inputs, specs)
    outputs = [_requested_output(output) for output in request.outputs]
    if len({o.name for o in outputs}) != len(outputs):
        raise InvalidInput("'outputs' names the same output twice.")
    return InferRequest(request.id or None, inputs, parameters, outputs or None)


def _input_spec(name: str, specs: Mapping[str, TensorSpec]) -> TensorSpec:
    if name not in specs:
        known = ", ".join(repr(n) for n in specs)
        raise InvalidInput(f"Unknown input {name!r}; the model's inputs are {known}.")
    return specs[name]


def _input(tensor: InputTensor, raw: bytes | None, spec: TensorSpec, limits: Limits) -> np.ndarray:
    where = f"Input {spec.name!r}"
    shape = tuple(int(d) for d in tensor.shape)
    if any(d < 0 for d in shape):
        raise InvalidInput(f"{where} 'shape' must be a list of non-negative integers; got {list(shape)}.")
    if not fits(shape, spec.shape):
        raise InvalidInput(f"{where} must have shape {shape_text(spec.shape)}; got {shape_text(shape)}.")
    if spec.shape[:1] == (-1,):
        check_batch_size(shape[0], limits, where)
    parameters = parameters_of(tensor.parameters, f"{where} 'parameters'")
    if any(key.startswith("shared_memory") for key in parameters):
        raise InvalidInput(
            f"{where} uses shared memory, which this server does not support; send the data inline."
        )
    dtype_of(tensor.datatype)  # refuses an unknown datatype by name
    count = math.prod(shape)
    if raw is not None:
        if tensor.HasField("contents"):
            raise InvalidInput(f"{where} has both 'contents' and raw_input_contents; give one.")
        # raw is a bytes object of its own (protobuf hands out a copy): view it, don't copy it again
        flat = decode_tensor(memoryview(raw), tensor.datatype, count, where, copy=False)
    else:
        flat = _contents(tensor, count, shape, where)
    if flat.dtype.kind == "f" and not np.isfinite(flat).all():  # one pass in the usual case
        flat = check_float_values(flat, flat.dtype.name, limits.allow_nonfinite, where, shape)
    return convert(flat.reshape(shape), spec.dtype, where)


def _contents(tensor: InputTensor, count: int, shape: tuple[int, ...], where: str) -> np.ndarray:
    datatype = tensor.datatype
    field = _CONTENTS.get(datatype)
    given = [descriptor.name for descriptor, _ in tensor.contents.ListFields()]
    if field is None:
        raise InvalidInput(
            f"{where} is {datatype}, which has no typed contents field; send it in raw_input_contents."
        )
    for name in given:
        if name != field:
            raise InvalidInput(f"{where} is {datatype}, whose values go in {field}; it has {name}.")
    values = getattr(tensor.contents, field)
    if len(values) != count:
        raise InvalidInput(
            f"{where} has {len(values)} values in {field}; shape {shape_text(shape)} needs {count}."
        )
    dtype = dtype_of(datatype)
    if datatype == "BYTES":
        flat = np.empty(count, dtype=object)
        flat[:] = list(values)
        return flat
    if category(dtype.name) == "int" and field in ("int_contents", "uint_contents") and dtype.itemsize < 4:
        return check_int_range(np.array(values, dtype=np.int64), dtype.name, where, shape)
    return np.array(values, dtype=dtype)


def _requested_output(output: OutputRequest) -> RequestedOutput:
    where = f"Output {output.name!r} 'parameters'"
    parameters = parameters_of(output.parameters, where)
    if any(key.startswith("shared_memory") for key in parameters):
        raise InvalidInput(
            f"Output {output.name!r} asks for shared memory, which this server does not support."
        )
    count = parameters.get("classification", 0)
    if type(count) is not int or count < 0:
        raise InvalidInput(f"{where} 'classification' must be a non-negative integer; got {describe(count)}.")
    return RequestedOutput(output.name, None, count)


def encode_response(
    model_name: str,
    model_version: str,
    outputs: Mapping[str, np.ndarray],
    request: InferRequest,
    class_labels: Sequence[str] | None,
    classification_source: str | None,
) -> ModelInferResponse:
    """The ModelInferResponse: the requested outputs (or all), values in ``raw_output_contents``.

    ``class_labels`` label the classes of the ``classification_source`` output, as in REST.
    """
    response = ModelInferResponse(model_name=model_name, model_version=model_version, id=request.id or "")
    for want, array in answered_outputs(outputs, request, class_labels, classification_source):
        response.outputs.add(name=want.name, datatype=datatype_of(array.dtype), shape=array.shape)
        response.raw_output_contents.append(encode_tensor(array))
    return response
