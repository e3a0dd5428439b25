"""The data plane's URL grammar and request-header rules, shared by the Flask routes and the ASGI lane.

No framework here: both front ends (``service.api`` under Flask, ``service.asgi`` on the event
loop) parse paths, versions, content types and the V2 binary header length through these
functions, so a request gets the same answer, error message and status from either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from service.inference import ModelRef

BINARY_HEADER = "Inference-Header-Content-Length"
# curl -d sends form-urlencoded and TF Serving ignores the content type, so its users' habits work.
JSON_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded", "text/plain"})
BINARY_TYPES = JSON_TYPES | {"application/octet-stream"}
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})

# TF Serving's URL grammar: /v1/models/{name}[/versions/{v}|/labels/{l}][:verb|/metadata|/evaluations]
TFS_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<verb>[A-Za-z]+)|/(?P<resource>metadata|evaluations))?$"
)
TFS_VERBS = ("predict", "classify", "regress", "evaluate")
_V2_INFER = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")
_TFS_PREFIX = "/v1/models/"


def parse_version(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise NotFound(f"Model {name!r} has no version {raw!r}; versions are positive integers.")
    return int(raw)


def parse_header_length(header: str | None) -> int | None:
    """The V2 binary extension's JSON header length, or None when the header is absent."""
    if header is None:
        return None
    if not header.isdigit():
        raise InvalidInput(f"{BINARY_HEADER} must be a non-negative integer; got {header!r}.")
    return int(header)


def check_media_type(mimetype: str, allowed: frozenset[str]) -> None:
    if mimetype not in allowed:
        raise UnsupportedMediaType(f"Content type {mimetype!r} is not supported here; send application/json.")


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")


@dataclass(frozen=True)
class InferenceRoute:
    """A POST that runs a model: which :class:`~service.inference.Inference` handler, on what."""

    kind: str  # a key of service.inference.HANDLERS
    ref: ModelRef
    protocol: str  # "tfserving" or "v2": metric label, and which content types are accepted
    endpoint: str  # predict, classify, regress, infer

    @property
    def media_types(self) -> frozenset[str]:
        return BINARY_TYPES if self.protocol == "v2" else JSON_TYPES


def inference_route(path: str) -> InferenceRoute | None:
    """The model-running route ``path`` names if POSTed, else None (left to the full router).

    Raises NotFound for a well-formed route with a malformed version, as the full router does.
    """
    if path.startswith(_TFS_PREFIX):
        match = TFS_PATH.match(path[len(_TFS_PREFIX) :])
        verb = match["verb"] if match else None
        if verb not in ("predict", "classify", "regress"):
            return None
        assert match is not None
        ref = ModelRef(match["name"], parse_version(match["version"], match["name"]), match["label"])
        return InferenceRoute(f"tfs_{verb}", ref, "tfserving", verb)
    match = _V2_INFER.match(path)
    if match is None:
        return None
    return InferenceRoute(
        "v2_infer", ModelRef(match["name"], parse_version(match["version"], match["name"])), "v2", "infer"
    )
