"""One measured wrk run against one server, with the CPU bookkeeping that tells noise from signal."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace

from benchmarks.grpcload import run_h2load
from benchmarks.loadgen import Body, WrkResult, run_wrk
from benchmarks.machine import CpuWindow, loadavg
from benchmarks.scenarios import Scenario
from benchmarks.servers import Server, cpu_seconds, get


@dataclass(frozen=True)
class Measurement:
    scenario: str
    server: str
    round: int
    wrk: WrkResult
    instances: int  # per request
    server_cpu: float  # CPU seconds the server's processes used during the measured window
    wrk_cpu: float  # CPU seconds wrk used
    foreign_cpu: float  # cores busy with anything else on the machine, on average
    load: str
    batch: float | None = None  # mean rows per signature call (micro-batch), per the service's metrics
    attempts: int = 1  # runs made to get one with little foreign CPU

    @property
    def instances_per_s(self) -> float:
        return self.wrk.rps * self.instances

    @property
    def cpu_ms_per_request(self) -> float:
        return 1e3 * self.server_cpu / self.wrk.requests if self.wrk.requests else float("nan")


# Pause after each wrk run: requests whose connections wrk dropped when it stopped still run on
# the server, and must not count against (or queue ahead of) the next run's.
SETTLE = 0.5


def wrk_threads(connections: int) -> int:
    """wrk shares the 2 cores with the server: one thread, two from 16 connections up."""
    return 1 if connections < 16 else 2


@dataclass(frozen=True)
class Plan:
    seconds: float  # measured per run
    warmup: float  # unmeasured load before the first run
    max_foreign: float  # cores of foreign CPU above which a run is repeated ...
    retries: int  # ... at most this often, keeping the least disturbed run


def measure(server: Server, scenario: Scenario, body: Body, plan: Plan, round_: int) -> Measurement:
    """Warm up, then run until a run sees little foreign CPU (or retries run out); keep the calmest."""
    threads = wrk_threads(scenario.connections)
    if plan.warmup > 0:
        drive(server, scenario, body, plan.warmup, threads)
        time.sleep(SETTLE)
    runs: list[Measurement] = []
    while len(runs) <= plan.retries:
        runs.append(_measure_once(server, scenario, body, plan.seconds, threads, round_))
        time.sleep(SETTLE)
        if runs[-1].foreign_cpu <= plan.max_foreign:
            break
    return replace(min(runs, key=lambda m: m.foreign_cpu), attempts=len(runs))


def _measure_once(
    server: Server, scenario: Scenario, body: Body, seconds: float, threads: int, round_: int
) -> Measurement:
    pids = [server.process.pid, *server.workers()]
    batches = batch_totals(server)
    cpu_before, window, started = cpu_seconds(pids), CpuWindow.open(), time.perf_counter()
    result = drive(server, scenario, body, seconds, threads)
    elapsed = time.perf_counter() - started
    busy, wrk_cpu = window.close()
    server_cpu = cpu_seconds(pids) - cpu_before
    foreign = max(0.0, busy - server_cpu - wrk_cpu) / elapsed
    rows, calls = (a - b for a, b in zip(batch_totals(server), batches, strict=True))
    return Measurement(
        scenario.key,
        server.name,
        round_,
        result,
        scenario.instances,
        server_cpu,
        wrk_cpu,
        foreign,
        loadavg(),
        batch=rows / calls if calls else None,
    )


def drive(server: Server, scenario: Scenario, body: Body, seconds: float, threads: int) -> WrkResult:
    """wrk for the HTTP scenarios, h2load for the gRPC ones: the same connections, one call in flight each."""
    if scenario.grpc:
        assert server.grpc_target is not None, f"{server.name} serves no gRPC"
        return run_h2load(server.grpc_target, body, scenario.connections, seconds, threads, server.token)
    return run_wrk(server.url, body, scenario.connections, seconds, threads, server.token)


def _metrics(server: Server) -> str:
    status, text = get(server.url + "/metrics", timeout=10.0, token=server.token)
    return text.decode() if status == 200 else ""


def batch_totals(server: Server, model: str = "mnist") -> tuple[float, float]:
    """(rows, signature calls) so far for ``model``, from the service's batch-size histogram."""
    text = _metrics(server)
    found = {}
    for kind in ("sum", "count"):
        match = re.search(
            rf'^serving_batch_size_{kind}\{{model="{model}"[^}}]*\}} (\S+)$', text, re.MULTILINE
        )
        found[kind] = float(match[1]) if match else 0.0
    return found["sum"], found["count"]


def failed_responses(server: Server) -> tuple[int, int]:
    """Non-2xx responses the service counted in its own metrics (all workers): (failed, cancelled).

    Cancelled are 499s, calls the client abandoned: h2load, stopping at the end of a run, resets
    the gRPC calls still in flight, which the service counts as 499; they are no failure of the server.
    """
    text = _metrics(server)
    if not text:
        raise RuntimeError(f"{server.name} /metrics did not answer.")
    pattern = re.compile(r'^serving_requests_total\{[^}]*code="(\d+)"[^}]*\} ([\d.e+]+)$', re.MULTILINE)
    counts = [(code, int(float(n))) for code, n in pattern.findall(text) if not code.startswith("2")]
    return sum(n for code, n in counts if code != "499"), sum(n for code, n in counts if code == "499")


def live_workers(server: Server) -> int:
    """Workers that have finished building the app (and so loading every model), per /metrics."""
    return len(re.findall(r"^serving_worker_start_time_seconds\{", _metrics(server), re.MULTILINE))
