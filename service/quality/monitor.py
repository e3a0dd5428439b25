"""The quality layer's front: wires store, recorder, gates and shadow runs, and answers its routes.

- :meth:`Quality.on_config` sees every serving-config read (a registry hook): which models are
  watched (feedback, shadow) and, through the gatekeeper, where gated labels point.
- :meth:`Quality.after_response` runs on the event loop once a watched request's answer is out.
- :meth:`Quality.feedback`, :meth:`Quality.report` and :meth:`Quality.shadow_report` answer
  ``:feedback``, ``/quality`` and ``/shadow`` on the Flask lane.
- A refresher thread recomputes the gauges every ``QUALITY_INTERVAL`` seconds, in one worker at a
  time (a non-blocking file lock): they come from the shared store, so one computation is enough.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from service import metrics
from service.config import Settings
from service.errors import InvalidInput, NotFound, ServiceError
from service.evaluation import figures
from service.evaluation.history import History
from service.inference import Inference
from service.metrics import RequestRecord
from service.models.card import ModelCard
from service.models.config import ModelConfig, ModelEntry
from service.models.quality_config import FeedbackConfig
from service.models.servable import AVAILABLE
from service.quality import live, reference
from service.quality.feedback import apply_feedback, parse_feedback, retry_unknown
from service.quality.gates import Gatekeeper
from service.quality.recorder import GATHER, Recorder
from service.quality.references import DriftReferences
from service.quality.shadow import ShadowRunner
from service.quality.store import PredictionStore

log = logging.getLogger(__name__)

UNKNOWN_RETRIES = 2  # each after 2 x GATHER: the other workers' writers have run by then


class Quality:
    def __init__(self, settings: Settings, inference: Inference, history: History) -> None:
        self.inference = inference
        self.registry = inference.registry
        root = settings.data_dir / "quality"
        self.store = PredictionStore(root)
        self.recorder = Recorder(self.store)
        config_path = settings.model_config_path
        search = [settings.mnist_dir] if settings.mnist_dir is not None else []
        config_dir = config_path.parent if config_path is not None else None
        self.gates = Gatekeeper(self.registry, history, root, config_dir, search)
        self.gates.timeout = settings.request_timeout
        self.references = DriftReferences(self.registry, search)
        self.shadow = ShadowRunner(self.registry, self.recorder, settings.request_timeout)
        self.interval = settings.quality_interval
        self._lock_path = root / "refresh.lock"
        self._entries: Mapping[str, ModelEntry] = {}
        self._seen = False  # a serving config went through on_config
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.registry.add_config_hook(self.on_config)

    # ---- wiring ---------------------------------------------------------------------------------
    def on_config(self, config: ModelConfig) -> ModelConfig:
        self._entries, self._seen = dict(config.models), True
        self.recorder.configure({n: e.feedback for n, e in self._entries.items() if e.feedback})
        self.inference.watched = frozenset(
            n for n, e in self._entries.items() if e.feedback is not None or e.shadow is not None
        )
        return self.gates.apply(config)

    def start(self) -> None:
        """Start the writer and the refresher; settle gates now, so no unjudged version gets traffic
        meant for the gated label (the first sync loaded the versions; this one judges them)."""
        self.recorder.start()
        if not self._seen or any(e.gate is not None for e in self._entries.values()):
            self.registry.sync()  # also how a registry synced before the hook was added is seen
        self._thread = threading.Thread(target=self._refresh_loop, name="quality-refresh", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.recorder.close()

    # ---- the event loop -------------------------------------------------------------------------
    def after_response(self, record: RequestRecord, request_id: str) -> None:
        entry = self._entries.get(record.model)
        if entry is None:
            return
        if entry.feedback is not None:
            self.recorder.remember(record.model, request_id, record.observed)
        if entry.shadow is not None:
            self.shadow.maybe_run(record.model, record.observed, entry.shadow)

    # ---- routes ---------------------------------------------------------------------------------
    def _feedback_config(self, name: str) -> FeedbackConfig:
        entry = self._entries.get(name)
        if entry is None or entry.feedback is None:
            if name not in self.registry.model_names():
                raise NotFound(f"Model {name!r} is not served here.")
            raise NotFound(
                f"Model {name!r} remembers no predictions; turn feedback on for it in serving.yaml."
            )
        return entry.feedback

    def feedback(self, name: str, body: bytes) -> dict[str, Any]:
        config = self._feedback_config(name)
        items = parse_feedback(body)
        self.recorder.flush()  # predictions this worker answered a moment ago are written first
        result = apply_feedback(self.store, self._card, name, items, config)
        # Another worker writes what it answered within GATHER seconds: an id it answered a moment
        # ago is not unknown yet. Ids still missing after that are.
        for _ in range(UNKNOWN_RETRIES):
            if not result["unknown"]:
                break
            time.sleep(GATHER * 2)

            def again(missing: list[str]) -> dict[str, Any]:
                wanted = set(missing)
                retried = [item for item in items if item.request_id in wanted]
                return apply_feedback(self.store, self._card, name, retried, config)

            result = retry_unknown(result, again)
        return result

    def report(self, name: str, version: int | None, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v1/models/{name}/quality``: per version, live figures, drift and gate verdict."""
        config = self._feedback_config(name)
        window = _window(query.get("window"), config)
        versions = self._versions(name, version)
        verdicts = self.gates.verdicts(name)
        doc: dict[str, Any] = {"model": name, "versions": []}
        for v in versions:
            card = self._card(name, v)
            entry: dict[str, Any] = {"version": str(v), "task": card.task}
            entry["predicted"], _ = self.store.versions(name).get(v, (0, 0))
            entry["quality"] = live.quality(self.store, card, config, window)
            if config.drift:
                entry["drift"] = self._drift(card, config)
            if v in verdicts:
                entry["gate"] = verdicts[v]
            doc["versions"].append(entry)
        return doc

    def shadow_report(self, name: str) -> dict[str, Any]:
        entry = self._entries.get(name)
        if entry is None or entry.shadow is None:
            raise NotFound(f"Model {name!r} has no shadow traffic; configure shadow for it in serving.yaml.")
        self.recorder.flush()
        pairs = []
        for tally in self.store.shadow(name):
            k = max([max(a, b) for a, b in tally.matrix] or [-1]) + 1
            matrix = [[tally.matrix.get((i, j), 0) for j in range(k)] for i in range(k)]
            pairs.append(
                {
                    "version": str(tally.version),
                    "candidate": str(tally.candidate),
                    "compared": tally.compared,
                    "agreed": tally.agreed,
                    "agreement": tally.agreed / tally.compared if tally.compared else None,
                    "matrix": matrix,  # rows: the live version's class, columns: the candidate's
                }
            )
        return {"model": name, "fraction": entry.shadow.fraction, "pairs": pairs}

    def gate_status(self, name: str) -> dict[int, dict[str, Any]]:
        return self.gates.verdicts(name)

    # ---- helpers --------------------------------------------------------------------------------
    def _card(self, name: str, version: int) -> ModelCard:
        return self.references.card(name, version)

    def _versions(self, name: str, version: int | None) -> list[int]:
        remembered = set(self.store.versions(name))
        available = {s.version for s in self.registry.status(name) if s.state == AVAILABLE}
        versions = sorted(remembered | available, reverse=True)
        if version is not None:
            if version not in versions:
                raise NotFound(f"Model {name!r} has no version {version} with remembered predictions.")
            return [version]
        return versions

    def _drift(self, card: ModelCard, config: FeedbackConfig) -> dict[str, Any]:
        try:
            ref = self.references.drift_reference(card)
        except (reference.ReferenceUnavailable, ServiceError) as exc:
            return {"error": str(exc)}
        return live.drift_figures(self.store, card, config, ref)

    # ---- gauges ---------------------------------------------------------------------------------
    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # the refresher must outlive a bad card or a locked file
                log.exception("Refreshing the quality gauges failed; will retry")

    def refresh(self, force: bool = False) -> bool:
        """Recompute the live-quality, drift and shadow gauges (False: another worker just did)."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            stamp = self._lock_path.with_suffix(".stamp")
            if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < self.interval / 2:
                return False
            self._refresh_gauges()
            stamp.touch()
        return True

    def _refresh_gauges(self) -> None:
        for name, entry in self._entries.items():
            if entry.feedback is None and entry.shadow is None:
                continue
            if entry.feedback is not None and self.store.exists(name):
                for version_doc in self.report(name, None, {})["versions"]:
                    _publish(name, version_doc)
                    # The card's held-out figures beside the live ones: alerts compare the two.
                    card = self._card(name, int(version_doc["version"]))
                    metrics.record_evaluation(name, card.version, "card", figures.scalars(card.metrics))
            if entry.shadow is not None and self.store.exists(name):
                for pair in self.shadow_report(name)["pairs"]:
                    if pair["agreement"] is not None:
                        metrics.SHADOW_AGREEMENT.labels(name, pair["version"], pair["candidate"]).set(
                            pair["agreement"]
                        )


def _publish(name: str, doc: dict[str, Any]) -> None:
    version = doc["version"]
    metrics.LIVE_SAMPLES.labels(name, version, "predicted").set(doc["predicted"])
    metrics.LIVE_SAMPLES.labels(name, version, "labelled").set(doc["quality"]["sample_count"])
    for metric, value in figures.scalars(doc["quality"]["metrics"]).items():
        if value is not None:
            metrics.LIVE_QUALITY.labels(name, version, metric).set(value)
    for signal, value in (doc.get("drift") or {}).get("psi", {}).items():
        if value is not None:
            metrics.DRIFT_PSI.labels(name, version, signal).set(value)


def _window(raw: str | None, config: FeedbackConfig) -> int:
    if raw is None:
        return config.window
    if not raw.isdigit() or not 1 <= int(raw) <= config.keep:
        raise InvalidInput(f"'window' must be an integer from 1 to {config.keep}; got {raw!r}.")
    return int(raw)


def build_quality(settings: Settings, inference: Inference, history: History) -> Quality:
    return Quality(settings, inference, history)
