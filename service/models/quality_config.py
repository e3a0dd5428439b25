"""serving.yaml's quality blocks per model: remembered predictions, a rollout gate, shadow traffic.

::

    models:
      mnist:
        feedback: {keep: 100000, ttl_s: 86400, window: 10000, drift_window: 5000}
        gate:
          label: stable                  # the label only a passing version may take
          reference: card                # the card's held-out split, or a labelled file
          require: {accuracy: ">= 0.95"}
          versus_label: {log_loss: 0.01} # no worse than the version holding the label by more than this
        shadow: {fraction: 0.1, candidate: latest}   # or {version: 3} / {label: canary}

Parsed here, used by :mod:`service.quality`. Errors are the serving config's own (the last good
config stays in force).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.models.config import ModelConfigError
from service.models.repository import is_valid_model_name

OPERATORS = (">=", "<=", ">", "<")
_REQUIREMENT = re.compile(r"^\s*(>=|<=|>|<)\s*(\S+)\s*$")


@dataclass(frozen=True)
class FeedbackConfig:
    keep: int = 100_000  # predicted instances remembered, newest kept
    ttl_s: float = 86_400.0  # older predictions are forgotten (and their labels refused as expired)
    window: int = 10_000  # labelled instances the live figures are computed over, newest first
    drift_window: int = 5_000  # newest predictions the drift figures are computed over
    drift: bool = True


@dataclass(frozen=True)
class Requirement:
    metric: str
    operator: str
    value: float

    def holds(self, figure: float) -> bool:
        return {
            ">=": figure >= self.value,
            "<=": figure <= self.value,
            ">": figure > self.value,
            "<": figure < self.value,
        }[self.operator]

    def __str__(self) -> str:
        return f"{self.metric} {self.operator} {self.value:g}"


@dataclass(frozen=True)
class GateConfig:
    label: str = "stable"
    reference: str = "card"  # "card", or a labelled file/folder (relative to serving.yaml)
    require: tuple[Requirement, ...] = ()
    versus_label: tuple[tuple[str, float], ...] = ()  # (metric, allowed loss vs the label's holder)
    route_default: bool = True  # requests naming no version or label go to the gated label


@dataclass(frozen=True)
class ShadowConfig:
    fraction: float
    candidate_version: int | None = None
    candidate_label: str | None = None  # neither: the newest AVAILABLE version other than the live one
    tolerance: float = 0.01  # regressors: predictions this close count as agreeing


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(raw: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelConfigError(f"{where}: {key} must be a positive integer; got {value!r}.")
    return value


def _mapping(raw: Any, keys: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping) or set(raw) - set(keys):
        raise ModelConfigError(f"{where} takes a mapping with keys among {', '.join(keys)}.")
    return raw


def parse_feedback(raw: Any, where: str) -> FeedbackConfig | None:
    if raw is None or raw is False:
        return None
    where = f"{where}: feedback"
    raw = _mapping({} if raw is True else raw, ("keep", "ttl_s", "window", "drift_window", "drift"), where)
    ttl = raw.get("ttl_s", FeedbackConfig.ttl_s)
    if not _number(ttl) or ttl <= 0:
        raise ModelConfigError(f"{where}: ttl_s must be a positive number of seconds; got {ttl!r}.")
    drift = raw.get("drift", True)
    if not isinstance(drift, bool):
        raise ModelConfigError(f"{where}: drift must be true or false.")
    return FeedbackConfig(
        _positive_int(raw, "keep", FeedbackConfig.keep, where),
        float(ttl),
        _positive_int(raw, "window", FeedbackConfig.window, where),
        _positive_int(raw, "drift_window", FeedbackConfig.drift_window, where),
        drift,
    )


def _requirement(metric: Any, text: Any, where: str) -> Requirement:
    match = _REQUIREMENT.match(str(text)) if isinstance(text, str) else None
    try:
        value = float(match.group(2)) if match else math.nan
    except ValueError:
        value = math.nan
    if not isinstance(metric, str) or match is None or not math.isfinite(value):
        raise ModelConfigError(f'{where}: require.{metric} must read like ">= 0.95"; got {text!r}.')
    return Requirement(metric, match.group(1), value)


def parse_gate(raw: Any, where: str) -> GateConfig | None:
    if raw is None:
        return None
    where = f"{where}: gate"
    raw = _mapping(raw, ("label", "reference", "require", "versus_label", "route_default"), where)
    label = raw.get("label", GateConfig.label)
    if not isinstance(label, str) or not is_valid_model_name(label):
        raise ModelConfigError(f"{where}: label must be a label name; got {label!r}.")
    reference = raw.get("reference", "card")
    if not isinstance(reference, str) or not reference:
        raise ModelConfigError(f"{where}: reference must be 'card' or the path of a labelled file.")
    require = raw.get("require") or {}
    versus = raw.get("versus_label") or {}
    if not isinstance(require, Mapping) or not isinstance(versus, Mapping):
        raise ModelConfigError(f"{where}: require and versus_label map metric names to thresholds.")
    if not require and not versus:
        raise ModelConfigError(f"{where}: give at least one threshold (require or versus_label).")
    for metric, margin in versus.items():
        if not isinstance(metric, str) or not _number(margin) or margin < 0:
            raise ModelConfigError(f"{where}: versus_label.{metric} must be a number >= 0; got {margin!r}.")
    route_default = raw.get("route_default", True)
    if not isinstance(route_default, bool):
        raise ModelConfigError(f"{where}: route_default must be true or false.")
    return GateConfig(
        label,
        reference,
        tuple(_requirement(metric, text, where) for metric, text in require.items()),
        tuple((str(metric), float(margin)) for metric, margin in versus.items()),
        route_default,
    )


def parse_shadow(raw: Any, where: str) -> ShadowConfig | None:
    if raw is None:
        return None
    where = f"{where}: shadow"
    raw = _mapping(raw, ("fraction", "candidate", "tolerance"), where)
    fraction = raw.get("fraction")
    if not _number(fraction) or not 0 < fraction <= 1:
        raise ModelConfigError(f"{where}: fraction must be a number in (0, 1]; got {fraction!r}.")
    tolerance = raw.get("tolerance", ShadowConfig.tolerance)
    if not _number(tolerance) or tolerance < 0:
        raise ModelConfigError(f"{where}: tolerance must be a number >= 0; got {tolerance!r}.")
    candidate = raw.get("candidate", "latest")
    version, label = None, None
    if isinstance(candidate, Mapping) and set(candidate) == {"version"}:
        version = candidate["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ModelConfigError(f"{where}: candidate.version must be a positive integer.")
    elif isinstance(candidate, Mapping) and set(candidate) == {"label"}:
        label = str(candidate["label"])
    elif candidate != "latest":
        raise ModelConfigError(f"{where}: candidate is 'latest', {{version: N}} or {{label: NAME}}.")
    return ShadowConfig(float(fraction), version, label, float(tolerance))
