"""The Open Inference Protocol's gRPC service (``inference.GRPCInferenceService``, KServe V2 / Triton),
over the same Inference, registry and audit log as the ``/v2`` routes.

Health, metadata, ModelInfer (typed ``contents`` or ``raw_input_contents`` in, ``raw_output_contents``
out, requested outputs, ``top_k``/``threshold`` parameters, the classification extension) and
Triton's repository extension (index, load, unload: the admin scope, audited). The Triton-only
methods (model config and statistics, shared memory, trace and log settings) stay UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from service.grpc.calls import V2, Door, rpc
from service.grpc.generated import v2_pb2, v2_pb2_grpc
from service.grpc.metadata_codec import v2_model_metadata, v2_repository_index, v2_server_metadata
from service.grpc.v2_codec import decode_request, encode_response, parameters_of
from service.http import admin
from service.http.routes import parse_version
from service.http.views import SERVER_NAME, SERVER_VERSION
from service.inference import Inference, ModelRef, classification_source
from service.metrics import RequestRecord
from service.models.outputs import output_names, parse_options
from service.protocol.v2.response import EXTENSIONS, check_requested_outputs, server_metadata

LIVE, READY, MODEL_READY = rpc(f"{V2}/ServerLive"), rpc(f"{V2}/ServerReady"), rpc(f"{V2}/ModelReady")
SERVER_METADATA, MODEL_METADATA = rpc(f"{V2}/ServerMetadata"), rpc(f"{V2}/ModelMetadata")
INFER, INDEX = rpc(f"{V2}/ModelInfer"), rpc(f"{V2}/RepositoryIndex")
LOAD, UNLOAD = rpc(f"{V2}/RepositoryModelLoad"), rpc(f"{V2}/RepositoryModelUnload")
GRPC_EXTENSIONS = [*EXTENSIONS, "model_repository"]  # :evaluate has no gRPC method
READY_STATE = "READY"


def model_ref(name: str, version: str) -> ModelRef:
    """A V2 request's model: ``version`` empty for the newest AVAILABLE one."""
    return ModelRef(name, parse_version(version or None, name))


class InferenceService(v2_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, inference: Inference, door: Door) -> None:
        self.inference = inference
        self.door = door

    # ---- health and metadata ----------------------------------------------------------------
    async def ServerLive(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            return v2_pb2.ServerLiveResponse(live=True)

        return await self.door.answer(LIVE, context, None, work)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            return v2_pb2.ServerReadyResponse(ready=not self.inference.registry.not_ready())

        return await self.door.answer(READY, context, None, work)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            ready = self.inference.v2_ready(model_ref(request.name, request.version))
            return v2_pb2.ModelReadyResponse(ready=ready)

        return await self.door.answer(MODEL_READY, context, request.name, work)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            return v2_server_metadata(server_metadata(SERVER_NAME, SERVER_VERSION, GRPC_EXTENSIONS))

        return await self.door.answer(SERVER_METADATA, context, None, work)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            assert record is not None
            ref = model_ref(request.name, request.version)
            return v2_model_metadata(self.inference.v2_metadata(ref, record))

        return await self.door.answer(MODEL_METADATA, context, request.name, work)

    # ---- inference ----------------------------------------------------------------------------
    async def ModelInfer(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            assert record is not None
            inference = self.inference
            with inference.serving(model_ref(request.model_name, request.model_version), record) as (
                servable,
                card,
            ):
                decoded = decode_request(request, card.inputs, inference.limits)
                options = parse_options(decoded.parameters, card)
                check_requested_outputs(decoded, output_names(card, options))
                outputs = await inference.predict_arrays(
                    servable, card, decoded.inputs, options, record, budget
                )
                source = classification_source(card)
                return encode_response(
                    card.name, str(servable.version), outputs, decoded, card.class_labels, source
                )

        return await self.door.answer(INFER, context, request.model_name, work)

    # ---- Triton's model repository extension --------------------------------------------------
    async def RepositoryIndex(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            entries = admin.repository_index(self.inference.model_index())
            if request.ready:  # Triton's flag: only the versions that can take requests
                entries = [entry for entry in entries if entry["state"] == READY_STATE]
            return v2_repository_index(entries)

        return await self.door.answer(INDEX, context, None, work)

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        name = request.model_name

        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            parameters = admin.check_parameters(
                parameters_of(request.parameters, "Load parameter"), admin.LOAD_PARAMETERS, "load"
            )
            entry = admin.config_override(parameters.get("config"), name)
            await _off_loop(self.inference.registry.load, name, entry)  # loads and warms up: seconds
            return v2_pb2.RepositoryModelLoadResponse()

        return await self.door.answer(LOAD, context, name, work)

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        name = request.model_name

        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            parameters = admin.check_parameters(
                parameters_of(request.parameters, "Unload parameter"), admin.UNLOAD_PARAMETERS, "unload"
            )
            admin.check_unload_parameters(parameters, name)
            await _off_loop(self.inference.registry.unload, name)
            return v2_pb2.RepositoryModelUnloadResponse()

        return await self.door.answer(UNLOAD, context, name, work)


async def _off_loop(function: Any, *args: Any) -> Any:
    """Run a blocking registry call on a thread: the loop keeps answering (and batching) meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))
