"""Open Inference Protocol (KServe V2) REST with Triton's binary data and classification extensions.

The entry points the inference layer uses, gathered from the modules that implement them:
requests (``v2_request``), responses (``v2_response``), datatypes (``v2_datatypes``) and the
metadata documents (``v2_metadata``). Extensions to advertise in ``server_metadata``: ``EXTENSIONS``.
"""

from __future__ import annotations

from service.protocol.v2_datatypes import DATATYPES, convert, datatype_of, dtype_of, spec_dtype_of
from service.protocol.v2_metadata import PLATFORM, model_metadata, server_metadata
from service.protocol.v2_request import InferRequest, RequestedOutput, decode_infer
from service.protocol.v2_response import (
    BINARY_TYPE,
    HEADER_LENGTH,
    JSON_TYPE,
    check_requested_outputs,
    encode_infer,
)

EXTENSIONS = ("binary_tensor_data", "classification")

__all__ = [
    "BINARY_TYPE",
    "DATATYPES",
    "EXTENSIONS",
    "HEADER_LENGTH",
    "JSON_TYPE",
    "PLATFORM",
    "InferRequest",
    "RequestedOutput",
    "check_requested_outputs",
    "convert",
    "datatype_of",
    "decode_infer",
    "dtype_of",
    "encode_infer",
    "model_metadata",
    "server_metadata",
    "spec_dtype_of",
]
