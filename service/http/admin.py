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


def _parameters(body: bytes, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The {what} request body is not valid JSON: {exc}.") from None
    if not isinstance(doc, dict) or set(doc) - {"parameters"}:
        raise InvalidInput(f'A {what} request body is {{"parameters": {{...}}}}; got {str(doc)[:80]}.')
    parameters = doc.get("parameters") or {}
    unknown = sorted(set(parameters) - set(allowed)) if isinstance(parameters, dict) else ["(not an object)"]
    if unknown:
        raise InvalidInput(f"Unknown {what} parameter(s) {unknown}; this server takes {list(allowed)}.")
    return parameters


def load_override(body: bytes, name: str) -> ModelEntry | None:
    """The serving settings a load request gives for model ``name``, or None to use serving.yaml's."""
    config = _parameters(body, ("config",), "load").get("config")
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
    flag = _parameters(body, ("unload_dependents",), "unload").get("unload_dependents", False)
    if not isinstance(flag, bool):
        raise InvalidInput(f"unload_dependents for model {name!r} must be true or false.")


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
