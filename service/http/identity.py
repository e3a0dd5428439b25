"""Request ids: the client's ``X-Request-Id`` when it is sane, else one made cheaply in this worker.

A sane id is 1-128 characters of letters, digits and ``._:-`` (a UUID, a ULID, a trace id...);
anything else (too long, spaces, control characters) is replaced rather than refused, so a
client's odd header never costs it its answer. A generated id is a random per-worker prefix and a
counter: unique across workers and restarts without a random draw per request.
"""

from __future__ import annotations

import itertools
import os
import re

HEADER = "X-Request-Id"
MAX_LENGTH = 128
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestIds:
    def __init__(self) -> None:
        # Made in each worker after fork, so two workers never share a prefix.
        self._prefix = os.urandom(6).hex()
        self._next = itertools.count(1)

    def choose(self, sent: bytes | None) -> str:
        """The client's id if it is sane, else a new one."""
        if sent is not None and _SANE.fullmatch(sent):
            return sent.decode("ascii")
        return f"{self._prefix}-{next(self._next):x}"
