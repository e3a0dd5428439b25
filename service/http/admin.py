"""The admin API's bodies (Triton's model repository extension) and its append-only audit log.

``POST /v2/repository/models/{name}/load`` takes ``{"parameters": {"config": "<JSON>"}}`` as
tritonclient's ``load_model(name, config=...)`` sends it; here the JSON is the model's
``serving.yaml`` entry (``version_policy``, ``labels``, ``batching``), overriding the file's until
the model is unloaded. ``.../unload`` takes ``{"parameters": {"unload_dependents": bool}}``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from service.errors import InvalidInput, ServiceError
from service.files import append_line
from service.models.config import ModelConfigError, ModelEntry, parse_entry

ACTIONS = {"v2_repository_load": "load", "v2_repository_unload": "unload"}  # endpoint -> audited action
LOAD_PARAMETERS, UNLOAD_PARAMETERS = ("config",), ("unload_dependents",)
# Triton's repository index names the registry's states its own way.
INDEX_STATES = {"AVAILABLE": "READY", "END": "UNAVAILABLE"}


def _parameters(body: bytes, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The {what} request body is not valid JSON: {exc}.") from None
    if not isinstance(doc, dict) or set(doc) - {"parameters"}:
        raise InvalidInput(f'A {what} request body is {{"parameters": {{...}}}}; got {str(doc)[:80]}.')
    return check_parameters(doc.get("parameters") or {}, allowed, what)


def check_parameters(parameters: Any, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    """A request's parameters (from a JSON body or a gRPC message), refusing names the action lacks."""
    unknown = sorted(set(parameters) - set(allowed)) if isinstance(parameters, dict) else ["(not an object)"]
    if unknown:
        raise InvalidInput(f"Unknown {what} parameter(s) {unknown}; this server takes {list(allowed)}.")
    return parameters


def load_override(body: bytes, name: str) -> ModelEntry | None:
    """The serving settings a load request gives for model ``name``, or None to use serving.yaml's."""
    return config_override(_parameters(body, LOAD_PARAMETERS, "load").get("config"), name)


def config_override(config: Any, name: str) -> ModelEntry | None:
    """A load request's ``config`` parameter (JSON text or an object) as model ``name``'s settings."""
    if config is None:
        return None
    try:
        raw = orjson.loads(config) if isinstance(config, str) else config
        return parse_entry(raw, f"The load parameter 'config' for model {name!r}")
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The load parameter 'config' for model {name!r} is not JSON: {exc}.") from None
    except ModelConfigError as exc:
        raise InvalidInput(str(exc)) from None


def check_unload_body(body: bytes, name: str) -> None:
    """An unload request may only say ``unload_dependents`` (no model here has dependents)."""
    check_unload_parameters(_parameters(body, UNLOAD_PARAMETERS, "unload"), name)


def check_unload_parameters(parameters: dict[str, Any], name: str) -> None:
    flag = parameters.get("unload_dependents", False)
    if not isinstance(flag, bool):
        raise InvalidInput(f"unload_dependents for model {name!r} must be true or false.")


def repository_index(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inference.model_index()'s entries with Triton's state names (READY, UNAVAILABLE...)."""
    return [{**entry, "state": INDEX_STATES.get(entry["state"], entry["state"])} for entry in entries]


class AuditLog:
    """Every admin action as one JSON line: when, who (token name), what, on which model, outcome."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(
        self, caller: str, action: str, model: str, client: str | None, error: BaseException | None
    ) -> None:
        entry = {
            "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "caller": caller or "-",
            "client": client or "-",
            "action": action,
            "model": model,
            "outcome": "ok" if error is None else "refused" if _refusal(error) else "failed",
        }
        if error is not None:
            entry["error"] = error.message if isinstance(error, ServiceError) else type(error).__name__
        append_line(self.path, orjson.dumps(entry))


def _refusal(error: BaseException) -> bool:
    # A 4xx turned the call down; a 5xx (e.g. a worker that did not follow in time) is a failure.
    return isinstance(error, ServiceError) and error.status < 500
