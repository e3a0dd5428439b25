"""The service's error tree: each class carries the HTTP status it maps to.

Raised anywhere (protocol decoding, registry look-ups, batching, evaluation) and turned into
TF Serving's ``{"error": "..."}`` body by the single handler in ``service.api``. The status
mapping follows TF Serving's REST handler: INVALID_ARGUMENT -> 400, NOT_FOUND -> 404,
FAILED_PRECONDITION -> 400, UNAVAILABLE -> 503, INTERNAL -> 500.
"""

from __future__ import annotations

import math


class ServiceError(Exception):
    """Base class; ``status`` is the HTTP status the error is answered with."""

    status: int = 500
    headers: dict[str, str] = {}  # extra response headers; the auth errors below set their own

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The request is malformed or does not fit the model (TF Serving: INVALID_ARGUMENT)."""

    status = 400


class NotFound(ServiceError):
    """Unknown model, version, label or route."""

    status = 404


class MethodNotAllowed(ServiceError):
    status = 405


class PayloadTooLarge(ServiceError):
    status = 413


class UnsupportedMediaType(ServiceError):
    status = 415


class UnprocessableRequest(ServiceError):
    """Well-formed, but asks for something the model cannot do (a metric its task lacks)."""

    status = 422


class Unavailable(ServiceError):
    """The model exists but no version can take traffic right now (loading, unloading, shut down)."""

    status = 503


class Overloaded(Unavailable):
    """Refused for now to keep the worker within its memory or queue bounds; worth retrying soon."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


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


class CardError(ValueError):
    """A model card is missing, unreadable or inconsistent. Not an HTTP error by itself."""


class DataFormatError(ValueError):
    """A data file (IDX, npz, CSV, JSONL) is corrupt, truncated or of the wrong kind."""


class JobError(Exception):
    """A batch job cannot go on: bad arguments or data, the server unreachable. Exit 2 with this message."""


class Unauthorized(ServiceError):
    """No usable bearer token: missing, malformed, unknown or revoked (RFC 6750)."""

    status = 401

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        # RFC 6750 3.1: name the problem only when a token was sent (invalid_request/invalid_token);
        # a request without credentials gets the bare challenge.
        challenge = 'Bearer realm="model-serving"' + (f', error="{error}"' if error else "")
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(ServiceError):
    """A known token without the scope (or model) the route needs."""

    status = 403


class TooManyRequests(ServiceError):
    """The caller's request budget is spent; ``retry_after`` is how long until one more fits."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # Retry-After takes whole seconds; rounding down would invite a retry that is refused again.
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
