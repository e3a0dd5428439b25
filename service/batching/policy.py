"""What the next batch holds and whether to wait for more: pure functions of queue and traffic state.

The policy is greedy first, adaptive second:

* **Greedy.** Whatever is queued when the model becomes free is launched at once, up to
  ``max_batch_size`` rows, strictly FIFO (:func:`plan`). Requests that arrive while a batch runs
  therefore form the next batch, so batches grow exactly when the model is the bottleneck, and
  a lone request reaching an idle batcher is launched with no wait at all.
* **Adaptive wait.** A batch that is not full may be held back for more requests only with
  evidence that more are coming (:func:`wait_time`): the previous batch held more than one
  request (requests overlap; a single client never makes such batches), the request that just
  arrived came less than ``batch_timeout`` after its predecessor (traffic is dense right now,
  not resuming after a pause), and the arrival-gap EWMA says the next request is due before the
  oldest queued request's deadline, ``arrived + batch_timeout``. The hold ends at that deadline,
  when the batch fills, or once the next arrival is :data:`PATIENCE` gaps overdue; every arrival
  re-decides. So no request waits more than ``batch_timeout`` for company, a wait that finds
  nobody launches a batch of one and thereby switches waiting off, and ``batch_timeout=0``
  disables waiting while ``max_batch_size=1`` makes every batch a single request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# Weight of the newest gap in the moving average: follows a change of rate within a handful of
# requests, yet one odd gap doesn't swing it.
ALPHA = 0.25
# How many expected gaps without an arrival before a held batch stops waiting for one.
PATIENCE = 2.0
# Longer gaps only say "traffic is light"; clamping keeps one idle spell from dominating the
# average for dozens of requests once traffic resumes.
MAX_GAP = 0.1


@dataclass
class Traffic:
    """Recent arrivals and batch sizes: the evidence the policy waits on. Mutated under the batcher's lock."""

    gap: float = math.inf  # seconds between arrivals, EWMA; unknown until two arrivals
    recent: float = math.inf  # the latest gap alone
    last_arrival: float = -math.inf
    batch: int = 0  # requests in the batch launched last

    def arrived(self, now: float) -> None:
        if self.last_arrival > -math.inf:
            self.recent = min(max(now - self.last_arrival, 0.0), MAX_GAP)
            self.gap = self.recent if math.isinf(self.gap) else self.gap + ALPHA * (self.recent - self.gap)
        self.last_arrival = now

    def launched(self, requests: int) -> None:
        self.batch = requests


def plan(sizes: Iterable[int], max_batch_size: int) -> int:
    """How many requests from the head of the FIFO queue (given their row counts) form the next batch.

    Takes the longest prefix that fits ``max_batch_size`` and never skips ahead to a smaller
    request, so order is kept and nothing starves. A head larger than ``max_batch_size`` goes
    alone (count 1): the caller chunks such requests before queueing them. 0 for an empty queue.
    """
    taken = total = 0
    for size in sizes:
        if taken and total + size > max_batch_size:
            break
        taken, total = taken + 1, total + size
        if total >= max_batch_size:
            break
    return taken


def wait_time(
    traffic: Traffic,
    *,
    now: float,
    oldest: float,
    queued_rows: int,
    max_batch_size: int,
    batch_timeout: float,
) -> float:
    """Seconds worth holding a not-yet-launched batch for more requests; 0.0 means launch now."""
    if batch_timeout <= 0 or queued_rows >= max_batch_size:
        return 0.0
    if traffic.batch < 2 or traffic.recent >= batch_timeout:  # no evidence of overlapping requests
        return 0.0
    deadline = oldest + batch_timeout
    if traffic.last_arrival + traffic.gap > deadline:  # next request not expected in time
        return 0.0
    give_up = traffic.last_arrival + PATIENCE * traffic.gap
    return max(0.0, min(deadline, give_up) - now)
