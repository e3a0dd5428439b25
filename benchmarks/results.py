"""Everything one benchmark run measured, and the figures the report and the targets are read from."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from benchmarks.measure import Measurement


@dataclass
class Startup:
    ready: float  # seconds from process start to the first 200 on the readiness probe
    all_ready: float  # ... until every worker has loaded everything
    rss_loaded: dict[int, float]  # MiB per worker pid, idle after loading
    rss_after: dict[int, float] = field(default_factory=dict)  # MiB per worker pid after all runs


@dataclass
class Results:
    machine: dict[str, str]
    load_start: str
    args: dict[str, Any]
    load_end: str = ""
    floor: dict[int, dict[str, float]] = field(default_factory=dict)
    startup: dict[str, Startup] = field(default_factory=dict)
    settings: dict[str, dict[str, str]] = field(default_factory=dict)
    accuracy: dict[tuple[str, str], float] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)  # non-2xx per the service's own metrics
    cancelled: dict[str, int] = field(default_factory=dict)  # 499s: calls the load generator abandoned
    measurements: list[Measurement] = field(default_factory=list)
    breakdown: dict[str, object] = field(default_factory=dict)  # microseconds per stage, in-process
    defaults: dict[str, object] = field(default_factory=dict)  # the service's effective settings

    def add(self, measurement: Measurement) -> None:
        self.measurements.append(measurement)

    def runs(self, scenario: str, server: str) -> list[Measurement]:
        return [m for m in self.measurements if m.scenario == scenario and m.server == server]

    def median(self, scenario: str, server: str) -> Measurement | None:
        """The run with the median throughput (the lower middle one for an even count)."""
        runs = sorted(self.runs(scenario, server), key=lambda m: m.wrk.rps)
        return runs[(len(runs) - 1) // 2] if runs else None

    def paired_ratio(self, scenario: str, server: str, other: str) -> float | None:
        """Median over rounds of ``server``'s req/s over ``other``'s in the same round.

        The two runs of a round are back to back, so a ratio within a round cancels most of the
        drift in machine load that a ratio of separately chosen medians would carry.
        """
        theirs = {m.round: m.wrk.rps for m in self.runs(scenario, other)}
        ratios = sorted(
            m.wrk.rps / theirs[m.round] for m in self.runs(scenario, server) if theirs.get(m.round)
        )
        return statistics.median(ratios) if ratios else None

    def servers(self) -> list[str]:
        return list(dict.fromkeys(m.server for m in self.measurements))

    def errors(self) -> int:
        return sum(m.wrk.errors for m in self.measurements) + sum(self.failed.values())

    def all_clean(self) -> bool:
        return self.errors() == 0
