"""Status and metadata answers as gRPC messages, parsed from the very documents the REST routes answer.

TF Serving's REST layer prints its GetModelStatus/GetModelMetadata messages as JSON; this service's
REST documents (:mod:`service.protocol.tfserving.documents`, :mod:`service.protocol.v2.response`)
follow that printing, so parsing them back gives the gRPC messages, and the two transports can never
disagree on a field. Cost is no concern here: these are small, rare calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from google.protobuf import json_format

from service.grpc.generated import get_model_metadata_pb2, get_model_status_pb2, v2_pb2

GetModelStatusResponse: TypeAlias = get_model_status_pb2.GetModelStatusResponse
GetModelMetadataResponse: TypeAlias = get_model_metadata_pb2.GetModelMetadataResponse
ModelMetadataResponse: TypeAlias = v2_pb2.ModelMetadataResponse
ServerMetadataResponse: TypeAlias = v2_pb2.ServerMetadataResponse
RepositoryIndexResponse: TypeAlias = v2_pb2.RepositoryIndexResponse


def tfs_model_status(doc: Mapping[str, Any]) -> GetModelStatusResponse:
    """GetModelStatus from ``GET /v1/models/<name>``'s document (states and error codes by name)."""
    return json_format.ParseDict(doc, GetModelStatusResponse())


def tfs_model_metadata(doc: Mapping[str, Any]) -> GetModelMetadataResponse:
    """GetModelMetadata from ``GET /v1/models/<name>/metadata``'s document.

    ``metadata["signature_def"]`` is a ``google.protobuf.Any`` holding a SignatureDefMap, which
    the REST document prints unwrapped.
    """
    response = GetModelMetadataResponse()
    json_format.ParseDict(doc["model_spec"], response.model_spec)
    signatures = json_format.ParseDict(
        doc["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap()
    )
    response.metadata["signature_def"].Pack(signatures)
    return response


def v2_model_metadata(doc: Mapping[str, Any]) -> ModelMetadataResponse:
    """ModelMetadata from ``GET /v2/models/<name>``'s document."""
    return json_format.ParseDict(doc, ModelMetadataResponse())


def v2_server_metadata(doc: Mapping[str, Any]) -> ServerMetadataResponse:
    """ServerMetadata from ``GET /v2``'s document."""
    return json_format.ParseDict(doc, ServerMetadataResponse())


def v2_repository_index(entries: list[dict[str, Any]]) -> RepositoryIndexResponse:
    """RepositoryIndex from ``POST /v2/repository/index``'s list of ``{name, version, state, reason}``."""
    return json_format.ParseDict({"models": entries}, RepositoryIndexResponse())
