"""Gated rollout: a version takes its model's gated label only once it passes the gate.

Each serving-config read goes through :meth:`Gatekeeper.apply` (a registry config hook). For a model
with a ``gate``, every AVAILABLE version without a verdict is scored on the reference set (the
card's held-out split or a labelled file) with the same metric code as ``:evaluate``, and checked
against ``require`` (absolute thresholds) and ``versus_label`` (no worse than the version holding
the label now, by more than a margin). The label goes to the newest version that passed, and the
version policy is widened to keep that version loaded, so a failing newcomer never displaces it.

Verdicts are appended to the model's evaluation history (dataset ``gate``) and read back from it:
a version is judged once per set of files and gate settings, by one worker (a file lock), and a
restart or another worker reuses the verdict.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from service import metrics
from service.errors import NotFound, ServiceError
from service.evaluation import figures
from service.evaluation.history import History
from service.evaluation.options import class_names, scores_of
from service.models.config import ModelConfig, ModelEntry, VersionPolicy
from service.models.quality_config import GateConfig
from service.models.registry import Registry
from service.models.servable import AVAILABLE
from service.quality import reference

log = logging.getLogger(__name__)

DATASET = "gate"
LOWER_IS_BETTER = frozenset({"log_loss", "ece", "mse", "rmse", "mae", "max_error"})
CHUNK = 1024


@dataclass(frozen=True)
class KeepingPolicy(VersionPolicy):
    """A version policy that also keeps the versions in ``keep`` (the gated label's holder)."""

    keep: tuple[int, ...] = ()

    def choose(self, candidates: Sequence[int]) -> list[int]:
        chosen = super().choose(candidates)
        extra = [v for v in self.keep if v in candidates and v not in chosen]
        return sorted([*chosen, *extra], reverse=True)


@dataclass
class Verdict:
    version: int
    passed: bool
    reasons: list[str]
    figures: dict[str, Any] = field(default_factory=dict)
    compared_with: int | None = None
    sample_count: int = 0
    key: str = ""
    fingerprint: list[float] = field(default_factory=list)

    def public(self, label: str) -> dict[str, Any]:
        return {
            "label": label,
            "passed": self.passed,
            "reasons": self.reasons,
            "compared_with": self.compared_with,
            "sample_count": self.sample_count,
            "figures": self.figures,
        }


def gate_key(gate: GateConfig) -> str:
    return hashlib.sha256(repr(gate).encode()).hexdigest()[:16]


def check(gate: GateConfig, found: dict[str, Any], holder: Verdict | None) -> list[str]:
    """Why ``found`` fails the gate (empty: it passes)."""
    reasons = []
    for requirement in gate.require:
        value = found.get(requirement.metric)
        if value is None:
            reasons.append(f"{requirement.metric} is not available for this model on the reference set.")
        elif not requirement.holds(value):
            reasons.append(f"{requirement.metric} = {value:.6g}, required {requirement}.")
    for metric, margin in gate.versus_label:
        value = found.get(metric)
        theirs = holder.figures.get(metric) if holder is not None else None
        if holder is None or theirs is None:
            continue  # nothing holds the label yet: only the absolute thresholds apply
        if value is None:
            reasons.append(f"{metric} is not available for this model on the reference set.")
            continue
        worse = value - theirs if metric in LOWER_IS_BETTER else theirs - value
        if worse > margin:
            reasons.append(
                f"{metric} = {value:.6g} is worse than {theirs:.6g} of version {holder.version} "
                f"({gate.label}) by {worse:.6g}, more than the allowed {margin:g}."
            )
    return reasons


class Gatekeeper:
    def __init__(
        self,
        registry: Registry,
        history: History,
        lock_dir: Path,
        config_dir: Path | None,
        search: Sequence[Path],
    ) -> None:
        self.registry = registry
        self.history = history
        self.lock_dir = lock_dir
        self.config_dir = config_dir
        self.search = tuple(search)
        self.timeout = 60.0
        self._verdicts: dict[str, dict[int, Verdict]] = {}
        self._gates: dict[str, GateConfig] = {}

    def apply(self, config: ModelConfig) -> ModelConfig:
        """``config`` with each gated label on the newest passing version (and that version kept)."""
        models = dict(config.models)
        self._gates = {name: entry.gate for name, entry in models.items() if entry.gate is not None}
        for name, gate in self._gates.items():
            holder = self._settle(name, gate)
            if holder is not None:
                models[name] = _with_label(models[name], gate.label, holder)
        return dataclasses.replace(config, models=models)

    def verdicts(self, name: str) -> dict[int, dict[str, Any]]:
        gate = self._gates.get(name)
        if gate is None:
            return {}
        return {v: d.public(gate.label) for v, d in sorted(self._verdicts.get(name, {}).items())}

    def _settle(self, name: str, gate: GateConfig) -> int | None:
        key, known = gate_key(gate), self._verdicts.setdefault(name, {})
        try:
            available = sorted(s.version for s in self.registry.status(name) if s.state == AVAILABLE)
        except NotFound:
            available = []
        on_disk = set(self.registry.repository.versions(name))
        for version in [v for v in list(known) if v not in on_disk]:
            del known[version]
        holder: Verdict | None = None
        for version in sorted(set(available) | set(known)):
            fingerprint = list(self.registry.repository.fingerprint(name, version))
            verdict = known.get(version)
            stale = verdict is None or verdict.key != key or verdict.fingerprint != fingerprint
            if stale and version in available:
                verdict = known[version] = self._judge(name, version, gate, key, fingerprint, holder)
            if verdict is not None and verdict.passed:
                holder = verdict
        return holder.version if holder is not None else None

    def _judge(
        self,
        name: str,
        version: int,
        gate: GateConfig,
        key: str,
        fingerprint: list[float],
        holder: Verdict | None,
    ) -> Verdict:
        with _locked(self.lock_dir / f"{name}.gate.lock"):
            for record in self.history.read(name, str(version), DATASET):
                earlier = record.get("gate") or {}
                if earlier.get("key") == key and earlier.get("fingerprint") == fingerprint:
                    verdict = _from_record(version, record, key, fingerprint)
                    break
            else:
                verdict = self._evaluate(name, version, gate, holder)
                verdict.key, verdict.fingerprint = key, fingerprint
                self.history.append(name, _record(name, version, gate, verdict))
        metrics.GATE_PASSED.labels(name, str(version)).set(1 if verdict.passed else 0)
        numbers: dict[str, float | None] = {
            k: float(v) for k, v in verdict.figures.items() if isinstance(v, (int, float))
        }
        metrics.record_evaluation(name, version, DATASET, numbers)
        outcome = "passed" if verdict.passed else "failed: " + " ".join(verdict.reasons)
        log.info("Model %r version %s gate (%s) %s", name, version, gate.label, outcome)
        return verdict

    def _evaluate(self, name: str, version: int, gate: GateConfig, holder: Verdict | None) -> Verdict:
        compared = holder.version if holder is not None else None
        try:
            with self.registry.acquire(name, version) as servable:
                card = servable.card
                assert card is not None
                inputs, labels = reference.load(gate.reference, card, self.config_dir, self.search)
                count = len(labels)
                parts = [
                    scores_of(
                        servable.predict({k: v[i : i + CHUNK] for k, v in inputs.items()}, self.timeout), card
                    )
                    for i in range(0, count, CHUNK)
                ]
            computed = figures.compute(
                card.task, labels, np.concatenate(parts), class_labels=class_names(card)
            )
        except (reference.ReferenceUnavailable, ServiceError) as exc:
            return Verdict(version, False, [f"Not evaluated: {exc}"], compared_with=compared)
        found = figures.scalars(computed)
        reasons = check(gate, found, holder)
        return Verdict(version, not reasons, reasons, found, compared, count)


def _with_label(entry: ModelEntry, label: str, holder: int) -> ModelEntry:
    policy = entry.policy
    keeping = KeepingPolicy(policy.kind, policy.count, policy.versions, keep=(holder,))
    return dataclasses.replace(entry, policy=keeping, labels={**entry.labels, label: holder})


def _record(name: str, version: int, gate: GateConfig, verdict: Verdict) -> dict[str, Any]:
    return {
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "model": name,
        "version": str(version),
        "dataset": DATASET,
        "sample_count": verdict.sample_count,
        "metrics": verdict.figures,
        "gate": {
            **verdict.public(gate.label),
            "reference": gate.reference,
            "key": verdict.key,
            "fingerprint": verdict.fingerprint,
        },
    }


def _from_record(version: int, record: dict[str, Any], key: str, fingerprint: list[float]) -> Verdict:
    gate = record["gate"]
    return Verdict(
        version,
        bool(gate.get("passed")),
        list(gate.get("reasons", [])),
        dict(record.get("metrics") or {}),
        gate.get("compared_with"),
        int(record.get("sample_count", 0)),
        key,
        fingerprint,
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across the workers (the second waits, then reuses the first's verdict)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
