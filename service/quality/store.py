"""The prediction store: one SQLite file per model under ``<DATA_DIR>/quality``, shared by all workers.

Rows are instances: (request id, position in the request, version, time, scores). Scores are the
model's own score output as float32 bytes (class probabilities, the positive-class probability, or
the prediction); a label fed back later is stored beside them. Shadow comparisons are counted in
two small tables. WAL mode lets the workers' writers and the readers work at once; a busy timeout
makes a writer wait its turn instead of failing. Bounded by count and age by :meth:`purge`.

A connection is opened per thread (sqlite3 objects must stay in their thread).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.models.repository import is_valid_model_name

BUSY_TIMEOUT_MS = 10_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created REAL NOT NULL,
    scores BLOB NOT NULL,
    label REAL,
    labelled REAL,
    PRIMARY KEY (request_id, position)
);
CREATE INDEX IF NOT EXISTS predictions_by_version ON predictions (version, created);
CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (created);
CREATE INDEX IF NOT EXISTS labelled_by_version ON predictions (version, labelled) WHERE label IS NOT NULL;
CREATE TABLE IF NOT EXISTS shadow_counts (
    version INTEGER NOT NULL,
    candidate INTEGER NOT NULL,
    compared INTEGER NOT NULL,
    agreed INTEGER NOT NULL,
    PRIMARY KEY (version, candidate)
);
CREATE TABLE IF NOT EXISTS shadow_matrix (
    version INTEGER NOT NULL,
    candidate INTEGER NOT NULL,
    live_class INTEGER NOT NULL,
    candidate_class INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (version, candidate, live_class, candidate_class)
);
"""

Row = tuple[str, int, int, float, bytes]  # request id, position, version, created, scores


@dataclass(frozen=True)
class Lookup:
    """What the store holds for one request id: instances, creation time, version (count 0: unknown)."""

    count: int
    created: float
    version: int


@dataclass(frozen=True)
class ShadowTally:
    version: int
    candidate: int
    compared: int
    agreed: int
    matrix: dict[tuple[int, int], int]


def encode_scores(scores: np.ndarray) -> list[bytes]:
    """One float32 blob per row of ``scores`` (N, or N x K)."""
    rows = np.ascontiguousarray(scores, dtype="<f4").reshape(len(scores), -1)
    return [row.tobytes() for row in rows]


def decode_scores(blobs: Sequence[bytes]) -> np.ndarray:
    """Blobs of equal length back to an N x K float32 array."""
    if not blobs:
        return np.zeros((0, 0), np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1)


class PredictionStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._local = threading.local()

    def path(self, model: str) -> Path:
        if not is_valid_model_name(model):
            raise ValueError(f"{model!r} is not a valid model name.")
        return self.root / f"{model}.sqlite3"

    def exists(self, model: str) -> bool:
        return is_valid_model_name(model) and self.path(model).exists()

    def _db(self, model: str) -> sqlite3.Connection:
        connections: dict[str, sqlite3.Connection] = self._local.__dict__.setdefault("connections", {})
        db = connections.get(model)
        if db is None:
            self.root.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path(model), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit survives a crash of the process (not of the machine) and
            # costs no fsync; predictions are a sliding record, not a ledger.
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(SCHEMA)
            connections[model] = db
        return db

    def close(self) -> None:
        for db in self._local.__dict__.pop("connections", {}).values():
            db.close()

    # ---- writes (the recorder thread) -----------------------------------------------------------
    def insert(self, model: str, rows: Iterable[Row]) -> None:
        """Remember predictions; a repeated (request id, position) replaces the older one."""
        db = self._db(model)
        with _transaction(db):
            db.executemany(
                "INSERT OR REPLACE INTO predictions (request_id, position, version, created, scores)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def purge(self, model: str, keep: int, oldest: float) -> int:
        """Forget predictions created before ``oldest`` and all but the newest ``keep``."""
        db = self._db(model)
        with _transaction(db):
            gone = db.execute("DELETE FROM predictions WHERE created < ?", (oldest,)).rowcount
            cut = db.execute(
                "SELECT created FROM predictions ORDER BY created DESC LIMIT 1 OFFSET ?", (keep,)
            ).fetchone()
            if cut is not None:
                gone += db.execute("DELETE FROM predictions WHERE created <= ?", (cut[0],)).rowcount
        return gone

    def add_shadow(self, model: str, tallies: Iterable[ShadowTally]) -> None:
        db = self._db(model)
        with _transaction(db):
            for t in tallies:
                db.execute(
                    "INSERT INTO shadow_counts VALUES (?, ?, ?, ?) ON CONFLICT (version, candidate) DO UPDATE"
                    " SET compared = compared + excluded.compared, agreed = agreed + excluded.agreed",
                    (t.version, t.candidate, t.compared, t.agreed),
                )
                db.executemany(
                    "INSERT INTO shadow_matrix VALUES (?, ?, ?, ?, ?) ON CONFLICT"
                    " (version, candidate, live_class, candidate_class) DO UPDATE SET count = count + excluded.count",
                    [(t.version, t.candidate, a, b, n) for (a, b), n in t.matrix.items()],
                )

    # ---- feedback (request threads) -------------------------------------------------------------
    def lookup(self, model: str, request_id: str) -> Lookup:
        row = (
            self._db(model)
            .execute(
                "SELECT COUNT(*), MIN(created), MIN(version) FROM predictions WHERE request_id = ?",
                (request_id,),
            )
            .fetchone()
        )
        return Lookup(int(row[0]), float(row[1] or 0.0), int(row[2] or 0))

    def set_labels(self, model: str, labelled: Iterable[tuple[float, float, str, int]]) -> None:
        """``(label, time, request id, position)`` rows: labels joined to their predictions."""
        db = self._db(model)
        with _transaction(db):
            db.executemany(
                "UPDATE predictions SET label = ?, labelled = ? WHERE request_id = ? AND position = ?",
                labelled,
            )

    # ---- reads (figures) ------------------------------------------------------------------------
    def versions(self, model: str) -> dict[int, tuple[int, int]]:
        """Version -> (predicted instances, labelled instances) remembered now."""
        rows = (
            self._db(model)
            .execute("SELECT version, COUNT(*), COUNT(label) FROM predictions GROUP BY version")
            .fetchall()
        )
        return {int(v): (int(n), int(k)) for v, n, k in rows}

    def labelled(self, model: str, version: int, window: int, since: float) -> tuple[np.ndarray, np.ndarray]:
        """Labels and scores of the newest ``window`` labelled instances created since ``since``."""
        rows = (
            self._db(model)
            .execute(
                "SELECT label, scores FROM predictions WHERE version = ? AND label IS NOT NULL AND created >= ?"
                " ORDER BY labelled DESC LIMIT ?",
                (version, since, window),
            )
            .fetchall()
        )
        return np.array([r[0] for r in rows], np.float64), decode_scores([r[1] for r in rows])

    def recent_scores(self, model: str, version: int, window: int, since: float) -> np.ndarray:
        rows = (
            self._db(model)
            .execute(
                "SELECT scores FROM predictions WHERE version = ? AND created >= ? ORDER BY created DESC LIMIT ?",
                (version, since, window),
            )
            .fetchall()
        )
        return decode_scores([r[0] for r in rows])

    def shadow(self, model: str) -> list[ShadowTally]:
        db = self._db(model)
        matrices: dict[tuple[int, int], dict[tuple[int, int], int]] = {}
        for version, candidate, a, b, n in db.execute("SELECT * FROM shadow_matrix"):
            matrices.setdefault((version, candidate), {})[(a, b)] = n
        return [
            ShadowTally(v, c, n, k, matrices.get((v, c), {}))
            for v, c, n, k in db.execute("SELECT * FROM shadow_counts ORDER BY version, candidate")
        ]


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): takes the write lock up front, so a
    writer waits out the busy timeout once instead of failing half-way."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if kind is not None else "COMMIT")
