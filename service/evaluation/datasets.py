"""The dataset names a model's evaluation gauges may carry: the first ``limit`` seen, the rest as one.

Every new ``dataset`` value would add Prometheus series for good (2,000 names: 12,000 series and a
scrape 7x slower). The first ``limit`` names of a model keep their own label value; later ones
share ``OTHER`` (which holds the most recent of their figures). Evaluations themselves, their
answers and the history keep the real name. The admitted names are one file per model beside the
history, appended under a lock, so every worker admits the same ones.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from service.models.repository import is_valid_model_name

# Dataset names start with a letter or digit (service.evaluation.options), so this one is free.
OTHER = "_other"


class DatasetLabels:
    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit
        self._admitted: dict[str, set[str]] = {}  # names admitted never leave: safe to remember
        self._lock = threading.Lock()

    def label(self, model: str, dataset: str) -> str:
        """The label value the gauges of ``model`` use for ``dataset``."""
        with self._lock:
            known = self._admitted.setdefault(model, set())
            if dataset in known:
                return dataset
            names = self._admit(model, dataset)
            known.update(names)
            return dataset if dataset in names else OTHER

    def _admit(self, model: str, dataset: str) -> set[str]:
        """The admitted names, ``dataset`` among them if there was room for it."""
        if not is_valid_model_name(model):
            raise ValueError(f"{model!r} is not a valid model name.")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / f"{model}.datasets", os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "rb") as fh:
                names = {line.decode("utf-8", "replace") for line in fh.read().split(b"\n") if line}
            if dataset not in names and len(names) < self.limit:
                os.write(fd, dataset.encode("utf-8") + b"\n")
                names.add(dataset)
            return names
        finally:
            os.close(fd)  # releases the lock
