"""What auth costs one instance: throughput and CPU per request with auth off vs on, side by side.

Issue 10 bounds the cost at 5% of one-instance throughput. This runs only the scenario that
defines that throughput (one-digit TF Serving JSON requests over 16 connections) against two
servers started with the same defaults, one open and one with a token file (``--tokens`` entries,
the request's token the last one checked), and optionally a third that also has ``RATE_LIMIT``.
Every request to every server carries the same bearer header, so the bytes sent are identical and
only the server's work differs. Rounds alternate the order (ABBA...), so drifts in machine load hit
both alike; the verdict is the median of the per-round throughput ratios, next to CPU ms per
request, which depends less on what else the shared machine is doing. Prints figures, asserts none.

    .venv/bin/python -m benchmarks.auth_cost [--rounds 6] [--seconds 10] [--rate-limit 100000/s]
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.launch import MODEL, start_ours
from benchmarks.loadgen import find_wrk
from benchmarks.measure import Measurement, Plan, failed_responses, measure
from benchmarks.payloads import load_digits
from benchmarks.run import _abort, _time_up
from benchmarks.scenarios import SCENARIOS, check_answer
from benchmarks.servers import Server
from service.auth.tokens import token_digest

SCENARIO = next(s for s in SCENARIOS if s.key == "json1-c16")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.auth_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model-repository", type=Path, default=Path("models"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mnist"), help="MNIST IDX folder")
    parser.add_argument("--rounds", type=int, default=6, help="measured runs per server (default 6)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--max-foreign", type=float, default=0.25, help="see benchmarks.run")
    parser.add_argument("--retries", type=int, default=2, help="see benchmarks.run")
    parser.add_argument("--tokens", type=int, default=5, help="entries in the token file (default 5)")
    parser.add_argument("--rate-limit", help="also run a server with auth and this RATE_LIMIT")
    parser.add_argument("--time-limit", type=float, default=1800.0, help="seconds before giving up")
    return parser.parse_args(argv)


def write_tokens(folder: Path, count: int) -> tuple[Path, str]:
    """A token file of ``count`` entries; returns it and the token of its last entry."""
    tokens = [f"ms_{secrets.token_urlsafe(32)}" for _ in range(count)]
    entries = [
        {"name": f"client-{i}", "sha256": token_digest(t).hex(), "scopes": ["infer", "metrics"]}
        for i, t in enumerate(tokens)
    ]
    path = folder / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": entries}, sort_keys=False))
    return path, tokens[-1]


def arms(args: argparse.Namespace, tokens_file: Path) -> dict[str, dict[str, str]]:
    chosen = {"auth off": {}, "auth on": {"AUTH_TOKENS_FILE": str(tokens_file)}}
    if args.rate_limit:
        chosen["auth+limit"] = {"AUTH_TOKENS_FILE": str(tokens_file), "RATE_LIMIT": args.rate_limit}
    return chosen


def run(args: argparse.Namespace, logdir: Path, stack: contextlib.ExitStack) -> dict[str, list[Measurement]]:
    images, labels = load_digits(args.data)
    body = SCENARIO.body(images, MODEL)
    tokens_file, token = write_tokens(logdir, args.tokens)
    servers: list[Server] = []
    for name, settings in arms(args, tokens_file).items():
        print(f"[auth-cost] starting {name} {settings or '(defaults)'}", flush=True)
        server, _ = start_ours(name, args.model_repository, logdir, settings, token=token)
        stack.callback(server.stop)
        check_answer(server.url, SCENARIO, body, labels, token=token)
        servers.append(server)
    plan = Plan(args.seconds, args.warmup, args.max_foreign, args.retries)
    results: dict[str, list[Measurement]] = {s.name: [] for s in servers}
    for round_ in range(args.rounds):
        for server in servers if round_ % 2 == 0 else servers[::-1]:
            m = measure(server, SCENARIO, body, plan, round_)
            results[server.name].append(m)
            print(
                f"[auth-cost] r{round_} {server.name:>10}: {m.wrk.rps:8.1f} req/s p99 {m.wrk.p99_ms:5.2f} ms "
                f"cpu/req {m.cpu_ms_per_request:.3f} ms err {m.wrk.errors} foreign {m.foreign_cpu:.2f}",
                flush=True,
            )
    for server in servers:
        failed = sum(failed_responses(server))  # wrk only: any abandoned call counts against the run
        if failed or any(m.wrk.errors for m in results[server.name]):
            raise SystemExit(f"{server.name}: {failed} non-2xx responses; the figures are not comparable.")
    return results


def summary(results: dict[str, list[Measurement]]) -> list[str]:
    base = results["auth off"]
    lines = [f"{SCENARIO.title}; {len(base)} rounds, medians:"]
    for name, runs in results.items():
        ratio = statistics.median(m.wrk.rps / b.wrk.rps for m, b in zip(runs, base, strict=True))
        cpu = statistics.median(m.cpu_ms_per_request for m in runs)
        cpu_ratio = statistics.median(
            m.cpu_ms_per_request / b.cpu_ms_per_request for m, b in zip(runs, base, strict=True)
        )
        lines.append(
            f"  {name:>10}: {statistics.median(m.wrk.rps for m in runs):8.1f} req/s "
            f"(x{ratio:.3f} of auth off, per-round median)  p99 {statistics.median(m.wrk.p99_ms for m in runs):5.2f} ms  "
            f"cpu/req {cpu:.3f} ms (x{cpu_ratio:.3f})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    find_wrk()
    if not (args.model_repository / MODEL).is_dir():
        sys.exit(f"error: {args.model_repository}/{MODEL} does not exist; train it with make train.")
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGALRM, _time_up)
    signal.alarm(int(args.time_limit))
    logdir = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    try:
        with contextlib.ExitStack() as stack:
            results = run(args, logdir, stack)
        print("\n".join(summary(results)))
        shutil.rmtree(logdir, ignore_errors=True)
        return 0
    finally:
        signal.alarm(0)
        if logdir.exists():
            print(f"[auth-cost] server logs kept in {logdir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
