"""The gRPC server of one gunicorn worker: started from the ASGI lifespan on the worker's own event loop.

Each worker runs a ``grpc.aio`` server on its uvloop, so a servicer awaits the micro-batcher's
futures directly and gRPC and HTTP requests merge into the same batches. All workers bind
``HOST:GRPC_PORT`` with SO_REUSEPORT; the kernel spreads *connections* over them (one channel stays
on one worker). Messages up to ``MAX_BODY_BYTES`` are accepted, like HTTP bodies; answers are not
limited. TLS uses ``TLS_CERT``/``TLS_KEY`` as HTTPS does. ``grpc.health.v1`` reports this worker's
readiness (every expected model has a version AVAILABLE) for the whole server (``""``) and each
service; reflection lists every service, so grpcurl works without .proto files. On shutdown, health
turns NOT_SERVING, new calls are refused and in-flight ones get ``GRACE`` seconds, before the
registry drains. Only ever imported in a worker: it imports TensorFlow's protos (and grpc must not
start in the gunicorn master before it forks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.config import Settings
from service.grpc import generated
from service.grpc.calls import MODELS, TFS, V2, Door
from service.grpc.tfserving import ModelService, PredictionService
from service.grpc.v2 import InferenceService
from service.http.admin import AuditLog
from service.http.guard import Guard
from service.inference import Inference
from service.quality.monitor import Quality
from service.tracing import Tracer

log = logging.getLogger(__name__)

SERVICES = (TFS, MODELS, V2)
# Seconds in-flight calls get once shutdown starts. gunicorn first drains HTTP connections, then runs
# the lifespan shutdown; both must end within its graceful_timeout (30 s) before the master kills us.
GRACE = 10.0
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def server_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.so_reuseport", 1),  # gRPC's default on Linux; the workers sharing one port rely on it
        ("grpc.max_receive_message_length", settings.max_body_bytes),
        ("grpc.max_send_message_length", -1),
    ]


def credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    pair = (settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())
    return grpc.ssl_server_credentials([pair])


class GrpcServer:
    """This worker's gRPC server, its health service and the task keeping health current."""

    def __init__(
        self, server: grpc.aio.Server, checker: health.aio.HealthServicer, inference: Inference
    ) -> None:
        self.server = server
        self.checker = checker
        self.inference = inference
        self._watch: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        inference: Inference,
        guard: Guard,
        audit: AuditLog,
        quality: Quality | None = None,
        tracer: Tracer | None = None,
    ) -> GrpcServer:
        """Serve on ``HOST:GRPC_PORT`` (RuntimeError when it cannot bind) and keep health current."""
        server = grpc.aio.server(options=server_options(settings))
        door = Door(guard, audit, quality, tracer)
        generated.prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(inference, door), server
        )
        generated.model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(inference, door), server
        )
        generated.v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceService(inference, door), server
        )
        checker = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        reflection.enable_server_reflection([*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        address = f"{settings.host}:{settings.grpc_port}"
        tls = credentials(settings)
        if tls is None:
            server.add_insecure_port(address)
        else:
            server.add_secure_port(address, tls)
        await server.start()
        running = cls(server, checker, inference)
        await running.update_health()
        running._watch = asyncio.get_running_loop().create_task(running._keep_health(settings.poll_interval))
        log.info("gRPC listening on %s (%s)", address, "TLS" if tls else "plaintext")
        return running

    async def update_health(self) -> None:
        status = NOT_SERVING if self.inference.registry.not_ready() else SERVING
        for service in ("", *SERVICES):
            await self.checker.set(service, status)

    async def _keep_health(self, interval: float) -> None:
        # Readiness changes as versions load and unload; the registry's poll interval is its pace.
        while True:
            await asyncio.sleep(interval)
            await self.update_health()

    async def stop(self, grace: float = GRACE) -> None:
        """Health NOT_SERVING, new calls refused, in-flight ones finished (or cut after ``grace``)."""
        log.info("gRPC stopping: new calls refused, calls in flight get %g s", grace)
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.checker.enter_graceful_shutdown()
        await self.server.stop(grace)
