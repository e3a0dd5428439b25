"""One gRPC call's bookkeeping, as the ASGI entry does it for HTTP: admit, meter, answer errors.

Every method mirrors an HTTP route of :mod:`service.http.routes` and takes its policy from there:
the same token scope (checked by :meth:`Guard.authorize` on the ``authorization`` metadata, then the
caller's rate limit), the same metric endpoint under a ``grpc-tfserving``/``grpc-v2`` protocol
label, and the same audit record for the admin actions. A :class:`ServiceError` ends the call with
its ``grpc_status`` and its message, the REST answer's ``error`` text; anything else is logged and
answered INTERNAL without a traceback. ``serving_requests_total`` counts a call under the HTTP status
its outcome maps to (200, the error's status, 499 when the client cancelled or its deadline passed),
so the dashboards and alerts, which select on ``code``, cover both transports. Like an HTTP request,
a call has a request id (the client's ``x-request-id`` metadata when sane, else a new one), sent back
as trailing metadata and in log lines, its trace (``traceparent`` metadata) when tracing is on, and
its inputs and outputs kept for :mod:`service.quality` when its model is watched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote

import grpc

from service.errors import ServiceError
from service.http import admin, routes
from service.http.admin import AuditLog
from service.http.guard import Guard, RequestHead
from service.http.identity import RequestIds
from service.logs import REQUEST_ID as LOGGED_REQUEST_ID
from service.metrics import RequestRecord
from service.quality.monitor import Quality
from service.tracing import Tracer

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[RequestRecord | None, float | None], Awaitable[T]]

TFS, MODELS, V2 = (
    "tensorflow.serving.PredictionService",
    "tensorflow.serving.ModelService",
    "inference.GRPCInferenceService",
)
# gRPC method -> the HTTP route it mirrors (scope, metric endpoint, audited action).
ROUTES = {
    f"{TFS}/Predict": "tfs_predict",
    f"{TFS}/Classify": "tfs_classify",
    f"{TFS}/Regress": "tfs_regress",
    f"{TFS}/GetModelMetadata": "tfs_metadata",
    f"{MODELS}/GetModelStatus": "tfs_status",
    f"{V2}/ServerLive": "live",
    f"{V2}/ServerReady": "ready",
    f"{V2}/ModelReady": "v2_model_ready",
    f"{V2}/ServerMetadata": "v2_server_metadata",
    f"{V2}/ModelMetadata": "v2_model_metadata",
    f"{V2}/ModelInfer": "v2_infer",
    f"{V2}/RepositoryIndex": "v2_repository_index",
    f"{V2}/RepositoryModelLoad": "v2_repository_load",
    f"{V2}/RepositoryModelUnload": "v2_repository_unload",
}
# The metadata a call may carry for the door (text keys; "-bin" keys carry bytes, never these).
AUTHORIZATION, REQUEST_ID, TRACEPARENT = "authorization", "x-request-id", "traceparent"
CANCELLED = 499  # nginx's "client closed request", as the ASGI lane counts a client gone
NO_DEADLINE = 1e9  # seconds; grpc reports ~2**63 ns as the time remaining of a call without a deadline


@dataclass(frozen=True)
class Rpc:
    """One gRPC method and the policy of the HTTP route it mirrors."""

    name: str  # "inference.GRPCInferenceService/ModelInfer"
    scope: str | None  # token scope; None: open to anyone (health)
    metric: tuple[str, str] | None  # (protocol, endpoint) labels of serving_requests_total
    action: str | None  # the audited admin action (load, unload)


def rpc(name: str) -> Rpc:
    """The policy of gRPC method ``name`` (a key of ROUTES), read from the HTTP route table."""
    route = routes.BY_ENDPOINT[ROUTES[name]]
    metric = (f"grpc-{route.metric[0]}", route.metric[1]) if route.metric else None
    return Rpc(name, route.scope, metric, admin.ACTIONS.get(route.endpoint))


def client_address(peer: str) -> str:
    """The address in grpc's peer string: ``ipv4:127.0.0.1:5000`` or ``ipv6:%5B::1%5D:5000``."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return peer or "-"
    return unquote(rest.rsplit(":", 1)[0]).strip("[]")


def call_metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    """The metadata values the door reads, in one pass over what the client sent."""
    found = {}
    for name, value in context.invocation_metadata() or ():
        if name in (AUTHORIZATION, REQUEST_ID, TRACEPARENT) and isinstance(value, str):
            found[name] = value
    return found


def budget(context: grpc.aio.ServicerContext) -> float | None:
    """Seconds until the call's deadline (None without one): what a batch may still take."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > NO_DEADLINE else max(0.0, remaining)


class Door:
    """Runs each servicer call under the guard, a RequestRecord and the error mapping."""

    def __init__(
        self, guard: Guard, audit: AuditLog, quality: Quality | None = None, tracer: Tracer | None = None
    ) -> None:
        self.guard = guard
        self.audit = audit
        self.quality = quality
        self.tracer = tracer
        self.ids = RequestIds()
        # No token file and no rate limit: nothing to check per call.
        self._open = guard.tokens is None and guard.limiter is None

    async def answer(
        self, rpc: Rpc, context: grpc.aio.ServicerContext, model: str | None, work: Work[T]
    ) -> T:
        """``work(record, budget)``'s result, or the call aborted with the status of what it raised."""
        record = RequestRecord(*rpc.metric) if rpc.metric else None
        sent = call_metadata(context)
        request_id = self.ids.choose(sent[REQUEST_ID].encode() if REQUEST_ID in sent else None)
        LOGGED_REQUEST_ID.set(request_id)  # this call's own task: its log lines carry the id
        code, caller = 500, ""
        failure: BaseException | None = None
        try:
            caller = self._admit(rpc, sent.get(AUTHORIZATION), context, model)
            result = await work(record, budget(context))
            code = 200
            context.set_trailing_metadata(((REQUEST_ID, request_id),))
            return result
        except ServiceError as exc:
            code, failure = exc.status, exc
            trailers = (*_trailers(exc), (REQUEST_ID, request_id))
            await context.abort(grpc.StatusCode[exc.grpc_status], exc.message, trailers)
            raise  # unreachable: abort raises
        except asyncio.CancelledError as exc:  # the client cancelled, or its deadline passed
            code, failure = CANCELLED, exc
            raise
        except Exception as exc:  # a bug: logged with its traceback, which the client never sees
            code, failure = 500, exc
            log.error("Unhandled error in gRPC %s", rpc.name, exc_info=exc)
            message = f"Internal error while handling {rpc.name}; see the server log."
            await context.abort(grpc.StatusCode.INTERNAL, message, ((REQUEST_ID, request_id),))
            raise  # unreachable: abort raises
        finally:
            if record is not None:
                record.encoded = time.monotonic()
                record.finish(code)
                if self.tracer is not None or record.observed is not None:  # after the answer
                    asyncio.get_running_loop().call_soon(self._after, rpc, record, sent, request_id, code)
            if rpc.action is not None and model is not None:
                self._audit(rpc.action, caller, model, sent.get(AUTHORIZATION), context, failure)

    def _admit(
        self, rpc: Rpc, authorization: str | None, context: grpc.aio.ServicerContext, model: str | None
    ) -> str:
        if rpc.scope is None or self._open:
            return ""
        return self.guard.authorize(rpc.scope, model, authorization, client_address(context.peer()))

    def _after(
        self, rpc: Rpc, record: RequestRecord, sent: dict[str, str], request_id: str, code: int
    ) -> None:
        """Tracing and quality bookkeeping, as the HTTP lane does it once a request is answered."""
        try:
            if self.tracer is not None:
                self.tracer.request(f"gRPC {rpc.name}", sent.get(TRACEPARENT), record, request_id, code)
            if record.observed is not None and self.quality is not None and code == 200:
                self.quality.after_response(record, request_id)
        except Exception:
            log.exception("Tracing or quality bookkeeping of %s failed", request_id)

    def _audit(
        self,
        action: str,
        caller: str,
        model: str,
        authorization: str | None,
        context: grpc.aio.ServicerContext,
        failure: BaseException | None,
    ) -> None:
        if not caller and failure is not None:  # refused before admission: name the token if it is known
            caller = self.guard.identify(RequestHead(authorization=authorization))
        self.audit.record(caller, action, model, client_address(context.peer()), failure)


def _trailers(exc: ServiceError) -> tuple[tuple[str, str], ...]:
    # Retry-After (429) and WWW-Authenticate (401) go along as trailing metadata, keys in lower case.
    return tuple((name.lower(), value) for name, value in exc.headers.items())
