"""The serving config file: which versions of which models to serve, their labels and batching.

The YAML equivalent of TF Serving's ``model_config_list``::

    serve_unlisted: true          # also serve models found on disk but not listed (latest version)
    models:
      mnist:
        version_policy: {latest: 2}    # or "latest", "all", {specific: [1, 3]}
        labels: {stable: 1, canary: 2}
        batching: {max_batch_size: 128, batch_timeout_ms: 1, enabled: true}
        feedback: {keep: 100000, ttl_s: 86400}   # remember predictions (service.models.quality_config)
        gate: {label: stable, require: {accuracy: ">= 0.95"}}
        shadow: {fraction: 0.1}
      exported_elsewhere:             # versions without a model card: served from their signature
        task: classification          # default raw: outputs as the SavedModel returns them
        class_labels: [cat, dog]
    auth_tokens_file: tokens.yaml   # optional, relative to this file; AUTH_TOKENS_FILE wins
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from service.models.card import TASKS
from service.models.repository import is_valid_model_name

if TYPE_CHECKING:
    from service.models.quality_config import FeedbackConfig, GateConfig, ShadowConfig


class ModelConfigError(ValueError):
    """The serving config file is unreadable or invalid; the message names the offending entry."""


@dataclass(frozen=True)
class VersionPolicy:
    kind: str = "latest"  # latest | all | specific
    count: int = 1
    versions: tuple[int, ...] = ()

    def choose(self, candidates: Sequence[int]) -> list[int]:
        """Versions to serve among ``candidates`` (loadable versions on disk), newest first."""
        ordered = sorted(candidates, reverse=True)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[: self.count]


@dataclass(frozen=True)
class BatchingConfig:
    enabled: bool | None = None
    max_batch_size: int | None = None
    batch_timeout: float | None = None  # seconds


@dataclass(frozen=True)
class ModelEntry:
    policy: VersionPolicy = VersionPolicy()
    labels: Mapping[str, int] = field(default_factory=dict)
    batching: BatchingConfig = BatchingConfig()
    # For versions without a model card: what their outputs mean (default "raw": nothing derived).
    task: str | None = None
    class_labels: tuple[str, ...] | None = None
    # Quality in production (service.models.quality_config): remembered predictions, a rollout
    # gate, shadow traffic. None: off.
    feedback: FeedbackConfig | None = None
    gate: GateConfig | None = None
    shadow: ShadowConfig | None = None
    default_label: str | None = None  # set by a gate that routes unnamed requests to its label


@dataclass(frozen=True)
class ModelConfig:
    models: Mapping[str, ModelEntry] = field(default_factory=dict)
    serve_unlisted: bool = True
    auth_tokens_file: str | None = None  # read once at start; AUTH_TOKENS_FILE takes precedence

    def entry(self, name: str) -> ModelEntry:
        return self.models.get(name, ModelEntry())


def parse_policy(raw: Any, where: str) -> VersionPolicy:
    if raw in (None, "latest"):
        return VersionPolicy()
    if raw == "all":
        return VersionPolicy(kind="all")
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((kind, value),) = raw.items()
        if kind == "latest" and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return VersionPolicy(kind="latest", count=value)
        if kind == "specific" and _int_list(value):
            return VersionPolicy(kind="specific", versions=tuple(value))
    raise ModelConfigError(
        f"{where}: version_policy must be 'latest', 'all', {{latest: N}} or {{specific: [versions]}}; got {raw!r}."
    )


def _int_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )


def _parse_labels(raw: Any, where: str) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ModelConfigError(f"{where}: labels must map label names to versions.")
    labels = {}
    for label, version in raw.items():
        if not is_valid_model_name(str(label)) or isinstance(version, bool) or not isinstance(version, int):
            raise ModelConfigError(f"{where}: label {label!r} must name an integer version; got {version!r}.")
        labels[str(label)] = version
    return labels


def _parse_batching(raw: Any, where: str) -> BatchingConfig:
    if raw is None:
        return BatchingConfig()
    if not isinstance(raw, Mapping) or set(raw) - {"enabled", "max_batch_size", "batch_timeout_ms"}:
        raise ModelConfigError(f"{where}: batching takes enabled, max_batch_size and batch_timeout_ms.")
    size, timeout, enabled = raw.get("max_batch_size"), raw.get("batch_timeout_ms"), raw.get("enabled")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ModelConfigError(f"{where}: max_batch_size must be a positive integer.")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
    ):
        raise ModelConfigError(f"{where}: batch_timeout_ms must be a number >= 0.")
    if enabled is not None and not isinstance(enabled, bool):
        raise ModelConfigError(f"{where}: batching.enabled must be true or false.")
    return BatchingConfig(enabled, size, timeout / 1000.0 if timeout is not None else None)


TOP_KEYS = ("models", "serve_unlisted", "auth_tokens_file")


def parse_model_config(doc: Any, source: str = "model config") -> ModelConfig:
    if doc is None:
        return ModelConfig()
    if not isinstance(doc, Mapping) or set(doc) - set(TOP_KEYS):
        raise ModelConfigError(f"{source}: expected a mapping with keys among {', '.join(TOP_KEYS)}.")
    models_raw = doc.get("models") or {}
    if not isinstance(models_raw, Mapping):
        raise ModelConfigError(f"{source}: 'models' must map model names to settings.")
    models = {}
    for name, raw in models_raw.items():
        where = f"{source}: model {name!r}"
        if not is_valid_model_name(str(name)):
            raise ModelConfigError(f"{where}: not a valid model name.")
        models[str(name)] = parse_entry(raw, where)
    serve_unlisted = doc.get("serve_unlisted", True)
    if not isinstance(serve_unlisted, bool):
        raise ModelConfigError(f"{source}: serve_unlisted must be true or false.")
    tokens_file = doc.get("auth_tokens_file")
    if tokens_file is not None and (not isinstance(tokens_file, str) or not tokens_file):
        raise ModelConfigError(f"{source}: auth_tokens_file must be a path.")
    return ModelConfig(models, serve_unlisted, tokens_file)


ENTRY_KEYS = ("version_policy", "labels", "batching", "task", "class_labels", "feedback", "gate", "shadow")


def parse_entry(raw: Any, where: str) -> ModelEntry:
    """One model's settings (``ENTRY_KEYS``), each optional."""
    from service.models import quality_config as quality  # it raises this module's error

    raw = raw or {}
    if not isinstance(raw, Mapping) or set(raw) - set(ENTRY_KEYS):
        raise ModelConfigError(f"{where}: allowed keys are {', '.join(ENTRY_KEYS)}.")
    labels = _parse_labels(raw.get("labels"), where)
    gate = quality.parse_gate(raw.get("gate"), where)
    if gate is not None and gate.label in labels:
        raise ModelConfigError(
            f"{where}: label {gate.label!r} is given by the gate; remove it from 'labels'."
        )
    return ModelEntry(
        parse_policy(raw.get("version_policy"), where),
        labels,
        _parse_batching(raw.get("batching"), where),
        *_parse_task(raw.get("task"), raw.get("class_labels"), where),
        quality.parse_feedback(raw.get("feedback"), where),
        gate,
        quality.parse_shadow(raw.get("shadow"), where),
        gate.label if gate is not None and gate.route_default else None,
    )


def _parse_task(task: Any, labels: Any, where: str) -> tuple[str | None, tuple[str, ...] | None]:
    if task is not None and task not in TASKS:
        raise ModelConfigError(f"{where}: task must be one of {', '.join(TASKS)}; got {task!r}.")
    if labels is None:
        return task, None
    if not isinstance(labels, list) or not labels or not all(isinstance(x, (str, int)) for x in labels):
        raise ModelConfigError(f"{where}: class_labels must be a non-empty list of names.")
    return task, tuple(str(x) for x in labels)


def load_model_config(path: Path | None) -> ModelConfig:
    """Read the config file; no file means every model on disk, latest version, default batching."""
    if path is None:
        return ModelConfig()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelConfigError(f"Cannot read model config {path}: {exc.strerror or exc}.") from exc
    except yaml.YAMLError as exc:
        raise ModelConfigError(f"Model config {path} is not valid YAML: {exc}.") from exc
    return parse_model_config(doc, str(path))
