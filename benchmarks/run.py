"""``make bench``: our server against a careful unbatched Flask app and the bare signature call.

Starts everything itself on 127.0.0.1 (our server via ``python -m service`` on its defaults, the
baseline from ``benchmarks.baseline_app`` under gunicorn sync workers, the floor in a subprocess),
drives each scenario with wrk, interleaving the servers round by round so drifts in machine load
hit both alike, writes ``docs/benchmarks.md`` and stops whatever it started, also on Ctrl-C,
SIGTERM, errors and its own time limit.

    .venv/bin/python -m benchmarks.run --model-repository models --output docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from benchmarks import report
from benchmarks.grpcload import find_h2load
from benchmarks.launch import (
    MODEL,
    latest_version,
    run_breakdown,
    run_floor,
    service_defaults,
    start_ours,
    start_unbatched,
)
from benchmarks.loadgen import find_wrk
from benchmarks.machine import describe, loadavg
from benchmarks.measure import Measurement, Plan, failed_responses, measure
from benchmarks.payloads import load_digits
from benchmarks.results import Results
from benchmarks.scenarios import SCENARIOS, Scenario, check_answer
from benchmarks.servers import Server, rss_mb


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-repository", type=Path, default=Path("models"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mnist"), help="MNIST IDX folder")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per scenario and server; median kept")
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=0.25,
        help="repeat a run whose foreign CPU (other processes, in cores) exceeds this",
    )
    parser.add_argument("--retries", type=int, default=2, help="repeats of a disturbed run, at most")
    parser.add_argument("--scenarios", help="comma-separated scenario keys (default: all)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unbatched Flask app")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:VAR=VALUE,...",
        help="also run the service with these env settings, side by side (repeatable)",
    )
    parser.add_argument("--time-limit", type=float, default=1800.0, help="seconds before giving up")
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs and wrk reports")
    return parser.parse_args(argv)


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition(":")
    settings = dict(item.split("=", 1) for item in assignments.split(",") if item)
    if not name or not settings:
        raise SystemExit(f"--variant {text!r}: expected NAME:VAR=VALUE[,VAR=VALUE...].")
    return name, settings


def _abort(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _time_up(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("The benchmark ran past --time-limit; stopping everything it started.")


def chosen_scenarios(keys: str | None) -> list[Scenario]:
    if not keys:
        return list(SCENARIOS)
    by_key = {s.key: s for s in SCENARIOS}
    unknown = [k for k in keys.split(",") if k not in by_key]
    if unknown:
        raise SystemExit(f"Unknown scenario(s) {unknown}; choose from {list(by_key)}.")
    return [by_key[k] for k in keys.split(",")]


def benchmark(args: argparse.Namespace, logdir: Path, stack: contextlib.ExitStack) -> Results:
    images, labels = load_digits(args.data)
    results = Results(machine=describe(), load_start=loadavg(), args=vars(args))
    model_dir = latest_version(args.model_repository)
    print(f"[bench] floor: the bare signature call on {model_dir}", flush=True)
    results.floor = run_floor(model_dir, args.data, seconds=3.0)
    print("[bench] breakdown of a one-instance request, in-process", flush=True)
    one = SCENARIOS[0].body(images, MODEL).data
    results.breakdown = run_breakdown(args.model_repository, one, logdir)
    results.defaults = service_defaults()
    servers: list[Server] = []
    for name, settings in [("ours", {}), *map(parse_variant, args.variant)]:
        print(f"[bench] starting {name} {settings or '(defaults)'}", flush=True)
        server, startup = start_ours(name, args.model_repository, logdir, settings)
        stack.callback(server.stop)
        servers.append(server)
        results.startup[name] = startup
        results.settings[name] = settings
    if not args.no_baseline:
        print("[bench] starting the unbatched Flask baseline", flush=True)
        server, startup = start_unbatched(args.model_repository, logdir, intra_op=1)
        stack.callback(server.stop)
        servers.append(server)
        results.startup[server.name] = startup
    scenarios = chosen_scenarios(args.scenarios)
    bodies = {s.key: s.body(images, MODEL) for s in scenarios}
    for scenario in scenarios:
        for server in servers:
            if server.name != "baseline" or scenario.baseline:
                results.accuracy[(scenario.key, server.name)] = check_answer(
                    server.url, server.grpc_target, scenario, bodies[scenario.key], labels, server.token
                )
    plan = Plan(args.seconds, args.warmup, args.max_foreign, args.retries)
    for round_ in range(args.rounds):
        for scenario in scenarios:
            order = [s for s in servers if s.name != "baseline" or scenario.baseline]
            for server in order if round_ % 2 == 0 else order[::-1]:
                m = measure(server, scenario, bodies[scenario.key], plan, round_)
                results.add(m)
                _progress(m, logdir)
    for server in servers:
        if server.name != "baseline":
            results.failed[server.name], results.cancelled[server.name] = failed_responses(server)
            results.startup[server.name].rss_after = {pid: rss_mb(pid) for pid in server.workers()}
    results.load_end = loadavg()
    return results


def _progress(m: Measurement, logdir: Path) -> None:
    (logdir / f"wrk-{m.scenario}-{m.server}-{m.round}.txt").write_text(m.wrk.report)
    print(
        f"[bench] {m.scenario:>13} {m.server:>10} r{m.round}: {m.wrk.rps:9.1f} req/s "
        f"{m.instances_per_s:10.0f} inst/s p50 {m.wrk.p50_ms:6.2f} ms p99 {m.wrk.p99_ms:6.2f} ms "
        f"err {m.wrk.errors} cpu/req {m.cpu_ms_per_request:.3f} ms batch {m.batch or 0:.1f} "
        f"foreign {m.foreign_cpu:.2f} (x{m.attempts}) load {m.load}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    find_wrk()  # exits with the install hint when missing
    if any(s.grpc for s in chosen_scenarios(args.scenarios)):
        find_h2load()
    if not (args.model_repository / MODEL).is_dir():
        sys.exit(f"error: {args.model_repository}/{MODEL} does not exist; train it with make train.")
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGALRM, _time_up)
    signal.alarm(int(args.time_limit))
    logdir = Path(tempfile.mkdtemp(prefix="bench-"))
    ok = False
    try:
        with contextlib.ExitStack() as stack:
            results = benchmark(args, logdir, stack)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report.render(results, sys.argv))
        print(f"[bench] wrote {args.output}")
        ok = results.all_clean()
        return 0 if ok else 1
    finally:
        signal.alarm(0)
        if ok and not args.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            print(f"[bench] server logs and wrk reports kept in {logdir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
