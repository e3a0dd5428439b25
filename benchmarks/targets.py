"""The targets the service is held to, each read from a run's results as met or missed, and by how much."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.results import Results, Startup

RATIO, P99_MS = 1.75, 15.0  # one instance per request, 16 clients, against the unbatched app
JSON64, BINARY1024 = 60_000, 150_000  # instances/s
GRPC_RATIO, GRPC1024 = 1.3, 300_000  # issue 12: gRPC one instance vs our REST; 1,024-image gRPC instances/s
RSS_MB, READY_S = 700.0, 15.0


def _n(value: float) -> str:
    return f"{value:,.0f}"


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool
    shortfall: str  # how far off, when missed


def one_instance(r: Results) -> Target | None:
    ours, base = r.median("json1-c16", "ours"), r.median("json1-c16", "baseline")
    if not (ours and base):
        return None
    ratio = r.paired_ratio("json1-c16", "ours", "baseline") or ours.wrk.rps / base.wrk.rps
    p99 = ours.wrk.p99_ms
    short = [f"ratio {ratio:.2f}x is {1 - ratio / RATIO:.0%} short"] if ratio < RATIO else []
    short += [f"p99 {p99 - P99_MS:.1f} ms over"] if p99 > P99_MS else []
    return Target(
        f"One instance, 16 clients: >= {RATIO}x the unbatched app's req/s, p99 <= {P99_MS:g} ms",
        f"{ratio:.2f}x ({_n(ours.wrk.rps)} vs {_n(base.wrk.rps)} req/s in the median runs), p99 {p99:.2f} ms",
        ratio >= RATIO and p99 <= P99_MS,
        "; ".join(short) or "-",
    )


def throughput(r: Results, key: str, goal: float, label: str) -> Target | None:
    m = r.median(key, "ours")
    if m is None:
        return None
    return Target(
        f"{label}: >= {_n(goal)} instances/s",
        f"{_n(m.instances_per_s)} instances/s",
        m.instances_per_s >= goal,
        f"{m.instances_per_s / goal - 1:+.0%}",
    )


def grpc_one_instance(r: Results) -> Target | None:
    """gRPC's one-instance req/s over REST's, per round (the two runs are minutes apart at most)."""
    grpc, rest = r.runs("grpc1-c16", "ours"), {m.round: m for m in r.runs("json1-c16", "ours")}
    ratios = sorted(
        m.wrk.rps / rest[m.round].wrk.rps for m in grpc if m.round in rest and rest[m.round].wrk.rps
    )
    if not ratios:
        return None
    ratio = ratios[(len(ratios) - 1) // 2]
    return Target(
        f"One instance, 16 clients, gRPC Predict: >= {GRPC_RATIO}x our REST req/s",
        f"{ratio:.2f}x (median of per-round ratios)",
        ratio >= GRPC_RATIO,
        f"{ratio / GRPC_RATIO - 1:+.0%}",
    )


def memory(s: Startup) -> Target:
    """Measured after the load phase, as defined; RSS after the runs is shown alongside."""
    loaded, after = max(s.rss_loaded.values()), max(s.rss_after.values(), default=0.0)
    return Target(
        f"RSS <= {RSS_MB:g} MB per worker with all models loaded",
        f"{loaded:,.0f} MiB after loading (largest worker); {after:,.0f} MiB after the runs",
        loaded <= RSS_MB,
        f"{loaded - RSS_MB:+,.0f} MiB",
    )


def readiness(s: Startup) -> Target:
    return Target(
        f"Ready <= {READY_S:g} s after start",
        f"{s.ready:.1f} s (every worker loaded: {s.all_ready:.1f} s)",
        s.ready <= READY_S,
        f"{s.ready - READY_S:+.1f} s",
    )


def targets(r: Results) -> list[Target]:
    found = [
        one_instance(r),
        throughput(r, "json64-c16", JSON64, "64-instance JSON, 16 clients"),
        throughput(r, "v2bin1024-c8", BINARY1024, "1,024-instance V2 binary, 8 clients"),
        grpc_one_instance(r),
        throughput(r, "grpc1024-c8", GRPC1024, "1,024-instance V2 gRPC, 8 clients"),
    ]
    startup = r.startup.get("ours")
    if startup is not None:
        found += [memory(startup), readiness(startup)]
    return [t for t in found if t is not None]
