"""``:feedback`` bodies: labels for remembered predictions, joined by request id.

    {"feedback": [{"id": "<X-Request-Id of the answer>", "labels": [<one per instance>]}]}

A malformed body is a 400 as a whole. Per item: an id the store does not hold is reported as
``unknown``; one older than the model's ``ttl_s`` as ``expired``; labels that do not fit (wrong
count, not a class of the model) are ``rejected`` with the reason. The rest are joined.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from service.errors import InvalidInput, ServiceError
from service.evaluation.labels import encode_labels
from service.evaluation.options import class_names
from service.models.card import ModelCard
from service.models.quality_config import FeedbackConfig
from service.quality.store import PredictionStore

MAX_ITEMS = 100_000


@dataclass(frozen=True)
class Item:
    request_id: str
    labels: list[Any]


def parse_feedback(body: bytes) -> list[Item]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The body is not valid JSON: {exc}.") from None
    raw = doc.get("feedback") if isinstance(doc, dict) else None
    if not isinstance(raw, list) or not raw:
        raise InvalidInput('Send {"feedback": [{"id": "<request id>", "labels": [...]}, ...]}.')
    if len(raw) > MAX_ITEMS:
        raise InvalidInput(f"At most {MAX_ITEMS} feedback items per request; got {len(raw)}.")
    items = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or set(entry) != {"id", "labels"}:
            raise InvalidInput(f"Feedback item {i} must have exactly 'id' and 'labels'.")
        if not isinstance(entry["id"], str) or not entry["id"]:
            raise InvalidInput(f"Feedback item {i}: 'id' must be a non-empty string (the request id).")
        if not isinstance(entry["labels"], list):
            raise InvalidInput(f"Feedback item {i}: 'labels' must be a list, one label per instance.")
        items.append(Item(entry["id"], entry["labels"]))
    return items


def apply_feedback(
    store: PredictionStore,
    card_of: Callable[[str, int], ModelCard],
    model: str,
    items: list[Item],
    config: FeedbackConfig,
) -> dict[str, Any]:
    """Join the labels; report what was labelled, unknown, expired or rejected."""
    now = time.time()
    unknown: list[str] = []
    expired: list[str] = []
    rejected: list[dict[str, str]] = []
    rows: list[tuple[float, float, str, int]] = []
    for item in items:
        found = store.lookup(model, item.request_id)
        if found.count == 0:
            unknown.append(item.request_id)
            continue
        if found.created < now - config.ttl_s:
            expired.append(item.request_id)
            continue
        card = card_of(model, found.version)
        try:
            encoded = encode_labels(item.labels, card.task, class_names(card), found.count)
        except ServiceError as exc:
            rejected.append({"id": item.request_id, "error": exc.message})
            continue
        rows += [(float(label), now, item.request_id, i) for i, label in enumerate(encoded.tolist())]
    if rows:
        store.set_labels(model, rows)
    return {
        "model": model,
        "labelled": len(rows),
        "requests": len(items) - len(unknown) - len(expired) - len(rejected),
        "unknown": unknown,
        "expired": expired,
        "rejected": rejected,
    }


def retry_unknown(first: dict[str, Any], again: Callable[[list[str]], dict[str, Any]]) -> dict[str, Any]:
    """``first`` with its unknown ids tried once more through ``again`` (which joins what it finds)."""
    if not first["unknown"]:
        return first
    second = again(first["unknown"])
    return {
        **first,
        "labelled": first["labelled"] + second["labelled"],
        "requests": first["requests"] + second["requests"],
        "unknown": second["unknown"],
        "expired": first["expired"] + second["expired"],
        "rejected": first["rejected"] + second["rejected"],
    }
