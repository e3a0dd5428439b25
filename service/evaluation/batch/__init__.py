"""Batch jobs run beside the service: ``python -m service.jobs.evaluate`` (console script ``evaluate-model``)."""

from __future__ import annotations


class JobError(Exception):
    """A job cannot go on: bad arguments or data, the server unreachable. Exit 2 with this message."""
