"""Adaptive micro-batching per model version: pure merge/split/planning plus the worker that uses them."""

from service.batching.arrays import Arrays, chunks, join, merge, row_count, split
from service.batching.policy import Traffic, plan, wait_time
from service.batching.scheduler import MicroBatcher

__all__ = [
    "Arrays",
    "MicroBatcher",
    "Traffic",
    "chunks",
    "join",
    "merge",
    "plan",
    "row_count",
    "split",
    "wait_time",
]
