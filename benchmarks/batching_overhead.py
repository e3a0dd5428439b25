"""Per-request cost of MicroBatcher.submit against calling the model directly (prints figures).

The fake model sleeps 0.28 ms + 1.7 us per row, which releases the GIL like a TensorFlow call and
follows this machine's MNIST timings (1 row 0.28 ms, 64 rows 0.5 ms, 1024 rows 2 ms). With
``--serial`` direct calls also take a lock, modelling a model whose call already uses all cores
so concurrent direct calls queue instead of overlapping (closer to TensorFlow on 2 cores; without
it, 16 direct sleeps overlap freely and the 16-thread "direct" row is an unreachable ideal).

    .venv/bin/python benchmarks/batching_overhead.py [--seconds 2] [--serial]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

import numpy as np

from service.batching.scheduler import MicroBatcher

Arrays = dict[str, np.ndarray]


def fake_model(serial: bool) -> Callable[[Arrays], Arrays]:
    lock = threading.Lock() if serial else None

    def run(inputs: Arrays) -> Arrays:
        x = inputs["x"]
        if lock is None:
            time.sleep(0.00028 + 1.7e-6 * len(x))
        else:
            with lock:
                time.sleep(0.00028 + 1.7e-6 * len(x))
        return {"y": x * 2.0}

    return run


def recorder(sizes: list[int]) -> Callable[[int, float], None]:
    def on_batch(rows: int, seconds: float) -> None:
        sizes.append(rows)

    return on_batch


def client(call: Callable[[Arrays], Arrays], until: float, latencies: list[float]) -> None:
    request = {"x": np.ones((1, 784), np.float32)}
    while (started := time.perf_counter()) < until:
        call(request)
        latencies.append(time.perf_counter() - started)


def measure(call: Callable[[Arrays], Arrays], threads: int, seconds: float) -> tuple[list[float], float]:
    per_thread: list[list[float]] = [[] for _ in range(threads)]
    until = time.perf_counter() + seconds
    workers = [threading.Thread(target=client, args=(call, until, lat)) for lat in per_thread]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    latencies = [x for lat in per_thread for x in lat]
    return latencies, len(latencies) / (time.perf_counter() - started)


def report(label: str, latencies: list[float], throughput: float, extra: str = "") -> float:
    mean = statistics.fmean(latencies) * 1e6
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{label:<28} mean {mean:8.1f} us  p50 {q[49] * 1e6:8.1f} us  p99 {q[98] * 1e6:8.1f} us  "
        f"{throughput:9.0f} req/s {extra}"
    )
    return mean


def bookkeeping_cost(n: int = 50_000) -> None:
    """CPU the batcher itself adds per lone request: a model that returns at once, one thread."""

    def no_op(inputs: Arrays) -> Arrays:
        return inputs

    request = {"x": np.ones((1, 784), np.float32)}
    batcher = MicroBatcher(no_op, name="bench")
    for label, call in (("direct", no_op), ("batched", batcher.submit)):
        started = time.perf_counter()
        for _ in range(n):
            call(request)
        print(
            f"{label:<8} no-op model, 1 thread: {(time.perf_counter() - started) / n * 1e6:6.2f} us/request"
        )
    batcher.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--serial", action="store_true", help="direct calls cannot overlap")
    parser.add_argument("--batch-timeout", type=float, default=0.002)
    args = parser.parse_args()
    bookkeeping_cost()
    run = fake_model(args.serial)
    for threads in (1, 16):
        sizes: list[int] = []
        batcher = MicroBatcher(run, batch_timeout=args.batch_timeout, name="bench", on_batch=recorder(sizes))
        measure(batcher.submit, threads, 0.2)  # warm-up: threads, allocator, EWMA state
        sizes.clear()
        direct = report(f"direct   {threads:2d} thread(s)", *measure(run, threads, args.seconds))
        batched = report(
            f"batched  {threads:2d} thread(s)",
            *measure(batcher.submit, threads, args.seconds),
            f" mean batch {statistics.fmean(sizes):5.1f} over {len(sizes)} calls",
        )
        print(f"  -> overhead per request: {batched - direct:+.1f} us (mean latency, batched - direct)")
        batcher.close()


if __name__ == "__main__":
    main()
