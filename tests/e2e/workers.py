"""Reach one chosen gunicorn worker: the others are stopped (SIGSTOP) while a check runs.

gunicorn's workers share one listening socket, so which worker answers a new connection is the
kernel's choice; with the others stopped, only the chosen one can accept it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.server import Server


def worker_pids(server: Server) -> list[int]:
    assert server.process is not None
    pid = server.process.pid
    return sorted(int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


@contextmanager
def only(server: Server, pid: int) -> Iterator[None]:
    """While inside, every request reaches worker ``pid`` (held connections excepted: use fresh ones)."""
    others = [other for other in worker_pids(server) if other != pid]
    for other in others:
        os.kill(other, signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            os.kill(other, signal.SIGCONT)
