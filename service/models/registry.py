"""What is loaded in memory: versions per model, labels, states, and hot reload from the repository.

``sync()`` reconciles memory with the disk and the serving config: new versions are loaded, checked
against their card and warmed up before they become AVAILABLE; versions the policy no longer wants
stop taking new requests and are unloaded once their in-flight requests finish. A version that
fails to load is reported with its error and never displaces a working one; it is retried only
when its files change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service import metrics
from service.errors import CardError, NotFound, ServiceError, Unavailable, UnprocessableRequest
from service.models.card import ModelCard
from service.models.config import ModelConfig, ModelConfigError, ModelEntry
from service.models.control import ControlState, ControlStore
from service.models.repository import Repository, is_valid_model_name
from service.models.servable import AVAILABLE, END, LOADING, UNLOADING, Executor, Servable, VersionStatus

log = logging.getLogger(__name__)

# (name, version, version folder, its card or None, serving settings) -> the card (read from the
# signature when there was none) and an executor ready for traffic (loaded, checked, warmed up).
Loader = Callable[[str, int, Path, "ModelCard | None", ModelEntry], "tuple[ModelCard, Executor]"]


@dataclass
class _Model:
    servables: dict[int, Servable]
    labels: dict[str, int]
    default_label: str | None = None  # requests naming no version go to this label when it is set


def _status(servable: Servable) -> VersionStatus:
    if servable.damage is not None and servable.state == AVAILABLE:
        return VersionStatus(servable.version, servable.state, servable.damage, "DATA_LOSS")
    return VersionStatus(servable.version, servable.state, servable.error)


class Registry:
    def __init__(
        self,
        repository: Repository,
        loader: Loader,
        config_source: Callable[[], ModelConfig] = ModelConfig,
        poll_interval: float = 1.0,
        unload_timeout: float = 30.0,
        explicit: bool = False,
        verify: Callable[[Path], None] | None = None,
        strict_readiness: bool = False,
        control: ControlStore | None = None,
    ) -> None:
        self.repository = repository
        self._loader = loader
        self._config_source = config_source
        self._config = ModelConfig()
        self._poll_interval = poll_interval
        self._unload_timeout = unload_timeout
        self._models: dict[str, _Model] = {}
        self._expected: set[str] = set()
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.config_error: str | None = None
        # Triton's model control: explicit serves only what load() asked for; polling serves the
        # repository, less what unload() took away (until the next load of it).
        self._explicit = explicit
        self._requested: dict[str, ModelEntry | None] = {}  # loaded through the API, with any override
        self._unloaded: set[str] = set()
        # Readiness: only models named in serving.yaml (or loaded through the API) or that have served
        # keep the server unready while they have no AVAILABLE version, unless strict_readiness.
        self._strict = strict_readiness
        self._served: set[str] = set()
        self._verify = verify  # reads a live version's files again when they change on disk
        # The two above as every worker shares them (models/control.py); None: this process only.
        self.control = control

    # ---- data plane -------------------------------------------------------------------------
    @contextmanager
    def acquire(self, name: str, version: int | None = None, label: str | None = None) -> Iterator[Servable]:
        """Resolve a request to an AVAILABLE version and hold it until the request is done."""
        with self._lock:
            servable = self._resolve(name, version, label)
            servable.enter()
        try:
            yield servable
        finally:
            servable.leave()

    def _named(self, name: str, version: int | None, label: str | None) -> tuple[_Model, int | None]:
        """The model called ``name`` and the version asked for (a label resolved); under the lock."""
        model = self._models.get(name) if is_valid_model_name(name) else None
        if model is None:
            raise NotFound(f"Model {name!r} is not served here.")
        if label is None:
            return model, version
        if label not in model.labels:
            raise NotFound(f"Model {name!r} has no version labelled {label!r}.")
        return model, model.labels[label]

    def _resolve(self, name: str, version: int | None, label: str | None) -> Servable:
        model, version = self._named(name, version, label)
        if version is None and model.default_label in model.labels:
            version = model.labels[model.default_label]  # a gated model: unnamed requests follow its label
        if version is None:
            available = [v for v, s in model.servables.items() if s.state == AVAILABLE]
            if not available:
                raise Unavailable(f"Model {name!r} has no version available yet.")
            return model.servables[max(available)]
        servable = model.servables.get(version)
        if servable is None:
            raise NotFound(f"Model {name!r} has no version {version}.")
        if servable.state != AVAILABLE:
            detail = f": {servable.error}" if servable.error else ""
            raise Unavailable(
                f"Model {name!r} version {version} is not available ({servable.state}){detail}."
            )
        return servable

    # ---- status -----------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        with self._lock:
            model, version = self._named(name, version, label)
            chosen = [model.servables[version]] if version in model.servables else []
            if version is None:
                chosen = [model.servables[v] for v in sorted(model.servables, reverse=True)]
            if not chosen:
                raise NotFound(f"Model {name!r} has no version {version}.")
            return [_status(s) for s in chosen]

    def labels(self, name: str) -> dict[str, int]:
        with self._lock:
            model = self._models.get(name)
            return dict(model.labels) if model else {}

    def not_ready(self) -> list[str]:
        """Expected models without an AVAILABLE version yet (empty: the server is ready).

        A model dropped into the repository that never loaded (broken, or still loading) does not
        count, so one bad folder cannot take every pod out of its Service; STRICT_READINESS=true
        counts every model. Unavailable models are always in :meth:`unavailable` and its gauge.
        """
        with self._lock:
            named = set(self._config.models) | set(self._requested) | self._served
            return sorted(n for n in self.unavailable() if self._strict or n in named)

    def unavailable(self) -> list[str]:
        """Expected models without an AVAILABLE version (call under the lock)."""
        return sorted(
            n
            for n in self._expected
            if n not in self._models
            or not any(s.state == AVAILABLE for s in self._models[n].servables.values())
        )

    # ---- control plane ----------------------------------------------------------------------
    def start(self) -> None:
        """Load what the repository holds now, then keep polling it in a background thread."""
        if self.control is not None:
            self.control.join()  # before the first read: an admin call made meanwhile waits for us
        self.sync()
        self._poller = threading.Thread(target=self._poll, name="repository-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self.control is not None:
            self.control.leave()
        if self._poller is not None:
            self._poller.join(timeout=self._poll_interval + 5)
        with self._lock:
            servables = [s for m in self._models.values() for s in m.servables.values()]
        for servable in servables:
            if servable.state in (AVAILABLE, UNLOADING):
                servable.state = UNLOADING
                servable.unload(self._unload_timeout)

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_interval):
            try:
                self.sync()
                metrics.update_process_metrics()
            except Exception:  # the poller must survive anything a broken repository throws at it
                log.exception("Repository poll failed; will retry")

    def sync(self) -> None:
        with self._sync_lock:
            self._reload_config()
            adopted = self._adopt_control()
            names = self._wanted_names()
            for name in sorted(names):
                self._sync_model(name)
            for name in set(self._models) - names:
                self._retire_model(name)
            expected = set() if self._explicit else set(self._config.models) - self._unloaded
            self._expected = {n for n in names if self.repository.versions(n)} | expected
            with self._lock:
                metrics.MODELS_UNAVAILABLE.set(len(self.unavailable()))
            if adopted is not None and self.control is not None:
                self.control.acknowledge(adopted)

    def _adopt_control(self) -> ControlState | None:
        """Take the admin API's state from the shared store when it changed (any worker's call)."""
        state = self.control.changed() if self.control is not None else None
        if state is not None:
            self._requested, self._unloaded = state.entries(), set(state.unloaded)
        return state

    def _wanted_names(self) -> set[str]:
        if self._explicit:
            return set(self._requested)
        names = set(self._config.models) | set(self._requested)
        if self._config.serve_unlisted:
            names |= {n for n in self.repository.model_names() if self.repository.versions(n)}
        return names - self._unloaded

    def _entry(self, name: str) -> ModelEntry:
        return self._requested.get(name) or self._config.entry(name)

    def add_config_hook(self, hook: Callable[[ModelConfig], ModelConfig]) -> None:
        """Let ``hook`` see, and adjust, every serving config read from now on (service.quality's
        rollout gates move labels with it). Call before :meth:`start`."""
        source = self._config_source
        self._config_source = lambda: hook(source())

    # ---- Triton's model repository extension ------------------------------------------------
    def load(self, name: str, entry: ModelEntry | None = None) -> list[VersionStatus]:
        """Serve ``name`` (again) from the repository, ``entry`` overriding its serving config.

        Returns once its versions are loaded; UnprocessableRequest if none became AVAILABLE.
        """
        if not is_valid_model_name(name) or not self.repository.versions(name):
            raise NotFound(f"Model {name!r} is not in the repository.")
        if self.control is not None:
            self.control.publish(lambda state: state.with_load(name, entry), self.sync, self._unload_timeout)
            return self._loaded(name)
        with self._sync_lock:
            self._unloaded.discard(name)
            self._requested[name] = entry
            self._reload_config()
            self._sync_model(name)
            self._expected.add(name)
        return self._loaded(name)

    def _loaded(self, name: str) -> list[VersionStatus]:
        statuses = self.status(name)
        if not any(s.state == AVAILABLE for s in statuses):
            reasons = "; ".join(f"version {s.version}: {s.error}" for s in statuses if s.error)
            raise UnprocessableRequest(
                f"Model {name!r} did not load: {reasons or 'no version is available'}."
            )
        return statuses

    def unload(self, name: str) -> None:
        """Stop serving ``name``: new requests get 404, in-flight ones finish (until the next load)."""
        if self.control is not None:
            served = self.model_names()
            self.control.publish(
                lambda state: state.with_unload(name, served), self.sync, self._unload_timeout
            )
            return
        with self._sync_lock:
            if name not in self._models and name not in self._requested:
                raise NotFound(f"Model {name!r} is not loaded.")
            self._requested.pop(name, None)
            self._unloaded.add(name)
            self._expected.discard(name)
            if name in self._models:
                self._retire_model(name)

    def _reload_config(self) -> None:
        try:
            self._config = self._config_source()
            self.config_error = None
        except ModelConfigError as exc:
            # Keep serving with the last good config; the error is visible in logs and status.
            if self.config_error != str(exc):
                log.error("Ignoring invalid model config: %s", exc)
            self.config_error = str(exc)

    def _sync_model(self, name: str) -> None:
        entry = self._entry(name)
        on_disk = self.repository.versions(name)
        with self._lock:
            model = self._models.setdefault(name, _Model({}, {}))
        wanted = self._choose(name, model, on_disk, entry.policy.choose)
        for version in sorted(set(model.servables) - set(wanted)):
            servable = model.servables[version]
            if servable.state == AVAILABLE:
                self._begin_unload(servable)
            elif servable.state == END and version not in on_disk:
                with self._lock:
                    del model.servables[version]
        with self._lock:
            model.labels = {label: v for label, v in entry.labels.items() if v in wanted}
            model.default_label = entry.default_label
        for label, version in entry.labels.items():
            if version not in wanted:
                log.warning(
                    "Label %r of model %r points to version %s, which is not served", label, name, version
                )

    def _choose(
        self, name: str, model: _Model, on_disk: list[int], choose: Callable[[list[int]], list[int]]
    ) -> list[int]:
        """Apply the policy to versions that are loaded or loadable, loading new ones as needed."""
        failed: set[int] = set()
        while True:
            candidates = [v for v in on_disk if v not in failed and not self._known_bad(model, name, v)]
            wanted = choose(candidates)
            pending = [v for v in wanted if not self._is_live(model, v)]
            if not pending:
                return wanted
            for version in pending:
                if not self._load(name, version, model):
                    failed.add(version)

    def _is_live(self, model: _Model, version: int) -> bool:
        servable = model.servables.get(version)
        if servable is None or servable.state != AVAILABLE:
            return False
        self._check_files(servable)
        return True

    def _check_files(self, servable: Servable) -> None:
        """A live version whose files changed on disk keeps serving the copy it loaded; damaged
        files (a truncated saved_model.pb) are reported in its status and a gauge, not acted on."""
        fingerprint = self.repository.fingerprint(servable.name, servable.version)
        if fingerprint == servable.fingerprint or self._verify is None:
            return
        servable.fingerprint = fingerprint  # checked once per change
        try:
            self._verify(self.repository.version_dir(servable.name, servable.version))
        except ServiceError as exc:
            servable.damage = f"{exc.message} The copy loaded before keeps serving."
            log.error("Model %r version %s: %s", servable.name, servable.version, servable.damage)
        else:
            if servable.damage is None:
                log.warning(
                    "Model %r version %s changed on disk; the copy loaded before keeps serving "
                    "(publish a new version to serve the change)",
                    servable.name,
                    servable.version,
                )
            servable.damage = None
        metrics.set_damaged(servable.name, servable.version, servable.damage is not None)

    def _known_bad(self, model: _Model, name: str, version: int) -> bool:
        servable = model.servables.get(version)
        if servable is None or servable.state != END or servable.error is None:
            return False
        return servable.fingerprint == self.repository.fingerprint(name, version)

    def _load(self, name: str, version: int, model: _Model) -> bool:
        servable = Servable(name, version, self.repository.fingerprint(name, version))
        servable.state = LOADING
        with self._lock:
            model.servables[version] = servable
        started = time.perf_counter()
        try:
            card = self.repository.card_or_none(name, version)
            vdir = self.repository.version_dir(name, version)
            card, executor = self._loader(name, version, vdir, card, self._entry(name))
        except (CardError, ServiceError) as exc:
            servable.fail(str(exc))
            metrics.set_state(name, version, END)
            log.error("Model %r version %s failed to load: %s", name, version, exc)
            metrics.record_load(name, version, "failure", time.perf_counter() - started)
            return False
        with self._lock:
            servable.activate(card, executor)
            self._served.add(name)
        metrics.record_load(name, version, "success", time.perf_counter() - started)
        metrics.set_state(name, version, AVAILABLE)
        log.info("Model %r version %s is AVAILABLE (%.2fs)", name, version, time.perf_counter() - started)
        return True

    def _begin_unload(self, servable: Servable) -> None:
        with self._lock:
            servable.state = UNLOADING  # from now on _resolve() does not hand it out
        metrics.set_state(servable.name, servable.version, UNLOADING)

        def finish() -> None:
            servable.unload(self._unload_timeout)
            metrics.set_state(servable.name, servable.version, END)
            log.info("Model %r version %s unloaded", servable.name, servable.version)

        threading.Thread(
            target=finish, name=f"unload-{servable.name}-{servable.version}", daemon=True
        ).start()

    def _retire_model(self, name: str) -> None:
        """The model left the disk (or the config): 404 for new requests, drain the in-flight ones."""
        with self._lock:
            model = self._models.pop(name)
        for servable in model.servables.values():
            if servable.state == AVAILABLE:
                self._begin_unload(servable)
