"""The service's error tree: each class carries the HTTP status and the gRPC status code it maps to.

Raised anywhere (protocol decoding, registry look-ups, batching, evaluation) and turned into
TF Serving's ``{"error": "..."}`` body by the one HTTP renderer (``service.http.responses``), or
into a gRPC status with the same message by the gRPC front door (``service.grpc.calls``). The
pairs are the canonical ones (google.rpc.Code) that TF Serving answers with on both transports:
INVALID_ARGUMENT / 400, NOT_FOUND / 404, FAILED_PRECONDITION / 400 (422 here), UNAVAILABLE / 503,
RESOURCE_EXHAUSTED / 429 (and 413 for a body over the limit), UNAUTHENTICATED / 401,
PERMISSION_DENIED / 403, INTERNAL / 500. ``grpc_status``
names a ``grpc.StatusCode`` member; this module stays free of grpc (the gunicorn master imports it).
"""

from __future__ import annotations

import math


class ServiceError(Exception):
    """Base class; ``status`` is the HTTP status the error is answered with."""

    status: int = 500
    grpc_status: str = "INTERNAL"  # the grpc.StatusCode member name it is answered with over gRPC
    headers: dict[str, str] = {}  # extra response headers; the auth errors below set their own

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The request is malformed or does not fit the model (TF Serving: INVALID_ARGUMENT)."""

    status = 400
    grpc_status = "INVALID_ARGUMENT"


class NotFound(ServiceError):
    """Unknown model, version, label or route."""

    status = 404
    grpc_status = "NOT_FOUND"


class MethodNotAllowed(ServiceError):
    status = 405
    grpc_status = "UNIMPLEMENTED"


class PayloadTooLarge(ServiceError):
    status = 413
    grpc_status = "RESOURCE_EXHAUSTED"


class UnsupportedMediaType(ServiceError):
    status = 415
    grpc_status = "INVALID_ARGUMENT"


class UnprocessableRequest(ServiceError):
    """Well-formed, but asks for something the model cannot do (a metric its task lacks)."""

    status = 422
    grpc_status = "FAILED_PRECONDITION"


class Unavailable(ServiceError):
    """The model exists but no version can take traffic right now (loading, unloading, shut down)."""

    status = 503
    grpc_status = "UNAVAILABLE"


class DeadlineExceeded(ServiceError):
    """The caller's own deadline (a gRPC call's) passed before its batch could run."""

    status = 504
    grpc_status = "DEADLINE_EXCEEDED"


class Overloaded(Unavailable):
    """Refused for now to keep the worker within its memory or queue bounds; worth retrying soon."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class BatchTimeout(Unavailable):
    """No batch ran the request within the time it was given (REQUEST_TIMEOUT, or a caller's deadline)."""


class RequestTimeout(ServiceError):
    """The client did not send its request body within the time allowed; the connection is closed."""

    status = 408
    # What is left of the body on the wire cannot be told from a next request: close (RFC 9110 15.5.9).
    headers = {"Connection": "close"}


class WorkersLagging(ServiceError):
    """An admin change is in force on the worker that took it, but not yet on every other worker."""

    status = 504


class ModelLoadError(ServiceError):
    """A version on disk could not be loaded: corrupt files, missing signature, card mismatch."""

    status = 500
    grpc_status = "INTERNAL"


class CardError(ValueError):
    """A model card is missing, unreadable or inconsistent. Not an HTTP error by itself."""


class DataFormatError(ValueError):
    """A data file (IDX, npz, CSV, JSONL) is corrupt, truncated or of the wrong kind."""


class JobError(Exception):
    """A batch job cannot go on: bad arguments or data, the server unreachable. Exit 2 with this message."""


class Unauthorized(ServiceError):
    """No usable bearer token: missing, malformed, unknown or revoked (RFC 6750)."""

    status = 401
    grpc_status = "UNAUTHENTICATED"

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        # RFC 6750 3.1: name the problem only when a token was sent (invalid_request/invalid_token);
        # a request without credentials gets the bare challenge.
        challenge = 'Bearer realm="model-serving"' + (f', error="{error}"' if error else "")
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(ServiceError):
    """A known token without the scope (or model) the route needs."""

    status = 403
    grpc_status = "PERMISSION_DENIED"


class TooManyRequests(ServiceError):
    """The caller's request budget is spent; ``retry_after`` is how long until one more fits."""

    status = 429
    grpc_status = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # Retry-After takes whole seconds; rounding down would invite a retry that is refused again.
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
