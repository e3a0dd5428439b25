"""Render a benchmark run as ``docs/benchmarks.md``: machine, method, tables, ratios and targets."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from benchmarks.measure import Measurement
from benchmarks.results import Results
from benchmarks.scenarios import SCENARIOS, Scenario
from benchmarks.targets import targets

NOTES = Path(__file__).with_name("notes.md")  # hand-written analysis, appended verbatim
BY_KEY = {s.key: s for s in SCENARIOS}
DISTURBED = 0.25  # cores of foreign CPU over a run that mark it as disturbed


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _machine(r: Results, argv: list[str]) -> list[str]:
    rows = [[k, v] for k, v in r.machine.items()]
    rows.append(["Load average (1/5/15 min)", f"{r.load_start} at start, {r.load_end} at end"])
    command = shlex.join(["python", "-m", "benchmarks.run", *argv[1:]])
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    return [
        f"Generated {when} by `make bench`, i.e. `{command}`.",
        "",
        "## Machine",
        "",
        *_table(["", ""], rows),
    ]


def _settings(r: Results) -> str:
    return ", ".join(f"{k}={v}" for k, v in r.defaults.items()) or "see service/config.py"


def _method(r: Results) -> list[str]:
    a = r.args
    return [
        "",
        "## Method",
        "",
        f"- **Ours**: `python -m service` on its defaults ({_settings(r)})"
        f" serving every model in `{a['model_repository']}`; the scenarios target `mnist`."
        + "".join(f" Variant **{n}**: `{s}`." for n, s in r.settings.items() if s),
        "- **Baseline (a)**: `benchmarks/baseline_app.py` under `gunicorn -w 2 -k sync`: the same SavedModel"
        " loaded per worker after fork (`tf.saved_model.load`, `signatures['serving_default']`), TensorFlow"
        " intra-op threads = cores / workers = 1 like ours, orjson + `np.asarray(..., float32)` in,"
        " orjson from numpy out, one signature call per request, no batching. Sync workers close the"
        " connection after each response (gunicorn's sync worker has no keep-alive).",
        "- **Floor (b)**: `benchmarks/floor.py`: the signature called in-process on one thread, numpy in"
        " and out, median of 3 s of back-to-back calls. It is a per-core figure: with 2 cores a server"
        " could at best reach twice its throughput.",
        f"- **Load**: wrk `--latency`, {a['warmup']:g} s warm-up then {a['seconds']:g} s measured per run,"
        f" {a['rounds']} rounds with the servers' order alternating; tables show the run with the median"
        " req/s and the range over rounds. A run that saw more than"
        f" {a['max_foreign']:g} cores of foreign CPU is repeated (at most {a['retries']} times) and the"
        " calmest kept. wrk runs on the same 2 cores with 1 thread (2 from 16 connections up), so its"
        " CPU is taken from the servers: *wrk CPU* says how much. After each wrk run the script pauses"
        " 0.5 s so requests wrk abandoned when it stopped do not queue ahead of the next run's.",
        "- **gRPC rows**: the same server's gRPC port (`GRPC_PORT`) driven by h2load (`-m1`: one call in"
        " flight per connection, as wrk keeps one request per connection), posting one prebuilt gRPC"
        " message: TF Serving's PredictRequest (tensor_content) or the ModelInferRequest"
        " tritonclient.grpc builds (raw_input_contents). h2load's CPU shows under *wrk CPU*; its"
        " percentiles come from its per-call log; failed calls (HTTP 200 with a non-OK grpc-status)"
        " are counted by the service's metrics with the HTTP status of their outcome.",
        "- **Columns**: *CPU ms/req* is the server's own CPU time (all its processes, user + system)"
        " per answered request, less sensitive to machine noise than req/s; *rows/call* is the mean"
        " batch the model was called with (from the service's `serving_batch_size` histogram).",
        "- **Inputs**: real MNIST digits from `../shared/data/mnist` (pixels / 255, float32); every body"
        " was answered once before the runs and checked (status, shape, accuracy against the labels).",
        f"- **Errors**: socket errors and non-2xx responses seen by wrk, plus non-2xx counted by our"
        f" server's own metrics. Total in this run: **{r.errors()}**. Not counted: calls the load"
        f" generator abandoned when a run stopped (499 in the service's metrics; h2load resets the"
        f" gRPC calls in flight): {sum(r.cancelled.values())}.",
        f"- **Foreign CPU**: machine-wide busy CPU minus the server's and wrk's, in cores; runs with"
        f" more than {DISTURBED} are marked *disturbed* (another process competed).",
    ]


def _startup(r: Results) -> list[str]:
    def rss(values: dict[int, float]) -> str:
        return ", ".join(f"{v:,.0f}" for v in values.values()) or "-"

    rows = [
        [name, f"{s.ready:.1f}", f"{s.all_ready:.1f}", rss(s.rss_loaded), rss(s.rss_after)]
        for name, s in r.startup.items()
    ]
    header = [
        "server",
        "ready (s)",
        "all workers loaded (s)",
        "RSS per worker after load (MiB)",
        "after the runs",
    ]
    return ["", "## Start-up and memory", "", *_table(header, rows)]


def _breakdown(r: Results) -> list[str]:
    if not r.breakdown:
        return []
    whole = float(r.breakdown["whole request (ASGI)"])  # type: ignore[arg-type]
    rows = [
        [stage, f"{float(us):,.1f}", f"{100 * float(us) / whole:.0f}%"]  # type: ignore[arg-type]
        for stage, us in r.breakdown.items()
        if not isinstance(us, list)
    ]
    spread = r.breakdown.get("spread of whole (min-max us)")
    low, high = spread if isinstance(spread, list) else ("?", "?")
    return [
        "",
        "## Where a one-instance request's time goes",
        "",
        "`benchmarks/breakdown.py`: the real app (every model, micro-batching, multiprocess metrics) called"
        " through its ASGI entry point on one event loop, one `:predict` request with one MNIST digit at a"
        f" time, 2,000 requests, the median of 5 repetitions (whole request {low}-{high} us over them).",
        "Stages nest: *batcher + model* includes *model call (TF)*. Not included: HTTP parsing, the gunicorn"
        " worker and the kernel.",
        "",
        *_table(["stage", "us per request", "share"], rows),
    ]


def _row(label: str, m: Measurement, runs: list[Measurement]) -> list[str]:
    spread = f"{_n(min(x.wrk.rps for x in runs))}-{_n(max(x.wrk.rps for x in runs))}"
    flag = " disturbed" if m.foreign_cpu > DISTURBED else ""
    tries = f", {m.attempts} tries" if m.attempts > 1 else ""
    return [
        label,
        _n(m.wrk.rps),
        _n(m.instances_per_s),
        f"{m.wrk.p50_ms:.2f}",
        f"{m.wrk.p99_ms:.2f}",
        str(m.wrk.errors),
        f"{m.cpu_ms_per_request:.3f}",
        "-" if m.batch is None else f"{m.batch:.1f}",
        f"{m.wrk_cpu / m.wrk.seconds:.2f}",
        f"{m.foreign_cpu:.2f}{flag}{tries}",
        spread,
    ]


def _floor_row(r: Results, scenario: Scenario) -> list[str]:
    f = r.floor.get(scenario.instances)
    if f is None:
        return []
    return [
        "floor, 1 core",
        _n(f["calls_per_s"]),
        _n(f["instances_per_s"]),
        f"{f['p50_ms']:.2f}",
        f"{f['p99_ms']:.2f}",
        "-",
        f"{1e3 / f['calls_per_s']:.3f}",
        str(scenario.instances),
        "-",
        "-",
        "-",
    ]


def _scenario(r: Results, scenario: Scenario) -> list[str]:
    header = [
        "server",
        "req/s",
        "instances/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "CPU ms/req",
        "rows/call",
        "wrk CPU",
        "foreign CPU",
        "req/s range",
    ]
    rows, medians = [], {}
    for server in r.servers():
        m = r.median(scenario.key, server)
        if m is not None:
            medians[server] = m
            rows.append(_row(server, m, r.runs(scenario.key, server)))
    if not rows:
        return []
    rows.append(_floor_row(r, scenario))
    lines = ["", f"### {scenario.title}", "", *_table(header, [row for row in rows if row]), ""]
    return lines + _ratios(r, scenario, medians)


def _ratios(r: Results, scenario: Scenario, medians: dict[str, Measurement]) -> list[str]:
    ours, base, floor = medians.get("ours"), medians.get("baseline"), r.floor.get(scenario.instances)
    parts = []
    if ours and base:
        paired = r.paired_ratio(scenario.key, "ours", "baseline")
        parts.append(
            f"ours / baseline: **{paired:.2f}x** req/s (median of per-round ratios; "
            f"{ours.wrk.rps / base.wrk.rps:.2f}x between the median runs), p99 {ours.wrk.p99_ms / base.wrk.p99_ms:.2f}x"
        )
        parts.append(
            f"baseline CPU per request / ours: {base.cpu_ms_per_request / ours.cpu_ms_per_request:.2f}x "
            "(the throughput ratio to expect when both are CPU-bound)"
        )
    if ours and floor:
        parts.append(
            f"ours / floor: {ours.instances_per_s / floor['instances_per_s']:.2f}x instances/s (floor is one core)"
        )
    for name, m in medians.items():
        if ours and name not in ("ours", "baseline"):
            parts.append(
                f"{name} / ours: {m.wrk.rps / ours.wrk.rps:.2f}x req/s, p99 {m.wrk.p99_ms / ours.wrk.p99_ms:.2f}x"
            )
    return ["; ".join(parts) + "." if parts else ""]


def _targets(r: Results) -> list[str]:
    rows = [[t.name, t.measured, "**met**" if t.met else f"**missed** ({t.shortfall})"] for t in targets(r)]
    return ["", "## Targets", "", *_table(["target", "measured", "verdict"], rows)]


def render(r: Results, argv: list[str]) -> str:
    lines = ["# Benchmarks", "", *_machine(r, argv), *_method(r), *_startup(r), "", "## Scenarios"]
    for key in dict.fromkeys(m.scenario for m in r.measurements):
        lines += _scenario(r, BY_KEY[key])
    lines += _targets(r)
    lines += _breakdown(r)
    if NOTES.exists():
        lines += ["", NOTES.read_text().rstrip()]
    return "\n".join(lines) + "\n"
