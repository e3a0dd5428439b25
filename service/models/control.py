"""The admin API's model state shared by every worker: one JSON file with a generation, and workers' acks.

gunicorn's workers each hold a registry of their own, so a load or unload taken by one worker has to
reach the others. The state (models loaded through the API with their config overrides, models
unloaded) lives in ``<DATA_DIR>/control/state.json``, rewritten atomically under an ``flock`` with
a generation one higher each time. Every registry poll stats the file and adopts a new state; after
applying it the worker writes ``workers/<host>-<pid>.json`` saying which generation it serves. The
worker that took the admin call waits for its siblings (the live workers of the same gunicorn
master) to acknowledge that generation before answering. The file outlives the server: a restart
serves what the operator loaded (explicit mode) and keeps what they unloaded (polling mode).
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from service.errors import NotFound, Unavailable, WorkersLagging
from service.files import write_atomic
from service.models.config import ModelConfigError, ModelEntry, parse_entry
from service.models.repository import is_valid_model_name

log = logging.getLogger(__name__)

STATE, LOCK, WORKERS = "state.json", "state.lock", "workers"
WAIT_STEP = 0.02  # seconds between looks at the acks while an admin call waits
_UNREAD = (-1,)  # a stat signature no file has: the next changed() reads


class ControlFileError(ValueError):
    """The state file cannot be read as a control state (edited by hand, or damaged)."""


def entry_document(entry: ModelEntry) -> dict[str, Any]:
    """``entry`` in serving.yaml's form, which :func:`parse_entry` reads back to an equal entry.

    A field added to ModelEntry must be written here too (a test compares the fields).
    """
    policy, batching = entry.policy, entry.batching
    version_policy: Any = {"latest": policy.count}
    if policy.kind != "latest":
        version_policy = "all" if policy.kind == "all" else {"specific": list(policy.versions)}
    timeout_ms = None if batching.batch_timeout is None else batching.batch_timeout * 1000.0
    knobs = {
        "enabled": batching.enabled,
        "max_batch_size": batching.max_batch_size,
        "batch_timeout_ms": timeout_ms,
    }
    doc: dict[str, Any] = {
        "version_policy": version_policy,
        "labels": dict(entry.labels),
        "batching": {key: value for key, value in knobs.items() if value is not None},
    }
    if entry.task is not None:
        doc["task"] = entry.task
    if entry.class_labels is not None:
        doc["class_labels"] = list(entry.class_labels)
    return {**doc, **_quality_documents(entry)}  # default_label follows from the gate


def _quality_documents(entry: ModelEntry) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if entry.feedback is not None:
        doc["feedback"] = dataclasses.asdict(entry.feedback)
    if (gate := entry.gate) is not None:
        doc["gate"] = {
            "label": gate.label,
            "reference": gate.reference,
            "require": {r.metric: f"{r.operator} {r.value!r}" for r in gate.require},
            "versus_label": dict(gate.versus_label),
            "route_default": gate.route_default,
        }
    if (shadow := entry.shadow) is not None:
        candidate: Any = "latest"
        if shadow.candidate_version is not None:
            candidate = {"version": shadow.candidate_version}
        elif shadow.candidate_label is not None:
            candidate = {"label": shadow.candidate_label}
        doc["shadow"] = {"fraction": shadow.fraction, "candidate": candidate, "tolerance": shadow.tolerance}
    return doc


@dataclass(frozen=True)
class ControlState:
    """What the admin API asked for, server-wide. ``file`` names the file's life: a deleted and
    recreated file starts again at generation 1 under a new name, so old acks cannot match it."""

    file: str = ""
    generation: int = 0
    loaded: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)  # name -> override or None
    unloaded: frozenset[str] = frozenset()

    def entries(self) -> dict[str, ModelEntry | None]:
        return {
            name: None if doc is None else parse_entry(doc, f"model {name!r}")
            for name, doc in self.loaded.items()
        }

    def with_load(self, name: str, entry: ModelEntry | None) -> ControlState:
        loaded = {**self.loaded, name: None if entry is None else entry_document(entry)}
        return ControlState(self.file, self.generation, loaded, self.unloaded - {name})

    def with_unload(self, name: str, served: Collection[str]) -> ControlState:
        """Unload ``name``, which must be loaded through the API or ``served`` (from the repository)."""
        if name not in self.loaded and name not in served:
            raise NotFound(f"Model {name!r} is not loaded.")
        loaded = {n: doc for n, doc in self.loaded.items() if n != name}
        return ControlState(self.file, self.generation, loaded, self.unloaded | {name})

    def encode(self) -> bytes:
        doc = {"file": self.file, "generation": self.generation, "loaded": dict(self.loaded)}
        return orjson.dumps({**doc, "unloaded": sorted(self.unloaded)}, option=orjson.OPT_INDENT_2)


def decode_state(raw: bytes) -> ControlState:
    """Parse and check a state file; ControlFileError says what is wrong with it."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ControlFileError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or set(doc) != {"file", "generation", "loaded", "unloaded"}:
        raise ControlFileError("expected the keys file, generation, loaded and unloaded")
    generation, loaded, unloaded = doc["generation"], doc["loaded"], doc["unloaded"]
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise ControlFileError("generation must be a non-negative integer")
    if not isinstance(loaded, dict) or not all(
        doc is None or isinstance(doc, dict) for doc in loaded.values()
    ):
        raise ControlFileError("loaded must map model names to a serving.yaml entry or null")
    if not isinstance(unloaded, list) or not all(isinstance(name, str) for name in unloaded):
        raise ControlFileError("unloaded must be a list of model names")
    bad = [name for name in [*loaded, *unloaded] if not is_valid_model_name(name)]
    if bad or not isinstance(doc["file"], str):
        raise ControlFileError(f"invalid model name(s) {bad}" if bad else "file must be a string")
    state = ControlState(doc["file"], generation, loaded, frozenset(unloaded))
    try:
        state.entries()
    except ModelConfigError as exc:
        raise ControlFileError(str(exc)) from None
    return state


@dataclass(frozen=True)
class Ack:
    """One worker's word on the generation it serves."""

    pid: int
    host: str
    master: int  # its gunicorn master's pid: siblings are the live workers with the same host and master
    file: str
    generation: int

    def covers(self, state: ControlState) -> bool:
        return self.file == state.file and self.generation >= state.generation


class ControlStore:
    """The shared state file and the workers' acks, from one worker's side (thread-safe)."""

    def __init__(self, folder: Path, master: int | None = None) -> None:
        self.folder = folder
        self._master = master  # None: this process's parent, read when first needed (after fork)
        self._host = socket.gethostname()
        self._lock = threading.Lock()
        self._seen: tuple[int, ...] | None = _UNREAD  # stat of the state file last read (None: no file)
        self._state = ControlState()  # the last good state read or written
        self._acked: tuple[str, int] | None = None
        self.written: ControlState | None = None  # the newest state this process wrote

    @property
    def state_path(self) -> Path:
        return self.folder / STATE

    # ---- the state -----------------------------------------------------------------------------
    def changed(self) -> ControlState | None:
        """The state if the file changed since this process last read or wrote it; else None.

        A stat when nothing changed. A file that does not parse keeps the last good state (logged).
        """
        signature = self._stat()
        with self._lock:
            if signature == self._seen:
                return None
            self._seen = signature
        try:
            state = self._read()
        except ControlFileError as exc:
            log.error(
                "Ignoring the model control file %s: %s; keeping the last good state", self.state_path, exc
            )
            return None
        with self._lock:
            self._state = state
        return state

    def update(self, change: Callable[[ControlState], ControlState]) -> ControlState:
        """Apply ``change`` to the current state under the file lock and write it as the next generation.

        ``change`` may raise a ServiceError to refuse; nothing is written then. An unreadable file is
        not overwritten (it may hold loads this process never saw): Unavailable says where it is.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = self._read()
            except ControlFileError as exc:
                raise Unavailable(
                    f"The model control file {self.state_path} is damaged ({exc}); fix or delete it."
                ) from None
            state = change(current)
            name = current.file or uuid.uuid4().hex
            state = ControlState(name, current.generation + 1, state.loaded, state.unloaded)
            write_atomic(self.state_path, state.encode())
        finally:
            os.close(fd)  # releases the lock
        with self._lock:
            self._state, self.written = state, state
            self._seen = _UNREAD  # this process adopts it at its next sync whatever the stat says
        return state

    def publish(
        self, change: Callable[[ControlState], ControlState], apply: Callable[[], None], timeout: float
    ) -> None:
        """An admin call: write ``change``, ``apply`` it in this worker (the registry's sync, which
        adopts and acknowledges it like a poll), then wait up to ``timeout`` for the other workers."""
        written = self.update(change)
        apply()
        self.wait(written, timeout)

    def _read(self) -> ControlState:
        try:
            return decode_state(self.state_path.read_bytes())
        except FileNotFoundError:
            return ControlState()

    def _stat(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.state_path)
        except FileNotFoundError:
            return None
        # A rewrite is a new inode; mtime and ctime also tell two rewrites apart if an inode is reused.
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    # ---- the workers' acks ---------------------------------------------------------------------
    def join(self) -> None:
        """Count this worker among those admin calls wait for, before it first reads the state."""
        self._write_ack(ControlState(file="", generation=-1))

    def acknowledge(self, state: ControlState) -> None:
        """This worker now serves ``state`` (or a later one)."""
        if self._acked != (state.file, state.generation):
            self._write_ack(state)

    def leave(self) -> None:
        """A stopping worker is no longer waited for."""
        self._ack_path(os.getpid()).unlink(missing_ok=True)

    def wait(self, state: ControlState, timeout: float) -> None:
        """Return once every sibling acknowledged ``state``; WorkersLagging names those that did not."""
        deadline = time.monotonic() + timeout
        while lagging := self.lagging(state):
            if time.monotonic() >= deadline:
                shown = ", ".join(f"{ack.pid} (at generation {ack.generation})" for ack in lagging)
                raise WorkersLagging(
                    f"Generation {state.generation} of the model control state is served by this worker,"
                    f" but worker(s) {shown} had not applied it after {timeout:g} s; they will when"
                    " their current reload finishes."
                )
            time.sleep(WAIT_STEP)

    def lagging(self, state: ControlState) -> list[Ack]:
        """The live sibling workers whose ack does not cover ``state`` (acks of dead workers are removed)."""
        behind = []
        for ack in self._acks():
            if ack.pid == os.getpid() or ack.host != self._host or ack.master != self._master_pid():
                continue
            if not _alive(ack.pid, ack.master):
                self._ack_path(ack.pid).unlink(missing_ok=True)
            elif not ack.covers(state):
                behind.append(ack)
        return behind

    def _acks(self) -> list[Ack]:
        acks = []
        for path in sorted((self.folder / WORKERS).glob(f"{self._host}-*.json")):
            try:
                acks.append(Ack(**orjson.loads(path.read_bytes())))
            except (OSError, orjson.JSONDecodeError, TypeError) as exc:
                # Acks are written atomically; a stray file must not block admin calls.
                log.warning("Ignoring worker ack %s: %s", path, exc)
        return acks

    def _write_ack(self, state: ControlState) -> None:
        ack = Ack(os.getpid(), self._host, self._master_pid(), state.file, state.generation)
        write_atomic(self._ack_path(ack.pid), orjson.dumps(ack.__dict__))
        self._acked = (state.file, state.generation)

    def _ack_path(self, pid: int) -> Path:
        return self.folder / WORKERS / f"{self._host}-{pid}.json"

    def _master_pid(self) -> int:
        return os.getppid() if self._master is None else self._master


def _alive(pid: int, master: int) -> bool:
    """Is ``pid`` running and still a child of ``master`` (not a pid reused by another program)?"""
    if not Path("/proc/self/stat").exists():  # not Linux: whether the pid exists is all we can tell
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    state, ppid = stat.rsplit(")", 1)[-1].split()[:2]
    return state not in ("Z", "X") and int(ppid) == master
