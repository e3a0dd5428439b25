"""The batch evaluation job at scale: rows/s and peak RSS on a large file, beside the server alone.

    python -m benchmarks.eval_job [--rows 1000000] [--formats idx,parquet,csv] [--modes server,offline]

Writes the 9,000 MNIST digits of ../shared/data/mnist repeated to --rows rows, as raw IDX, Parquet
(784 uint8 pixel columns + label) and CSV (the same as text), into a temporary folder (removed at
the end unless --keep). Starts the service on its defaults and runs evaluate-model on each file
through it, each run right after measuring the server alone the way `make bench` does (wrk,
1,024-image V2 binary requests, 8 connections), so that each comparison is side by side on a
shared machine; then offline. Each run is its own process. Per run: wall time and rows/s, the
scoring rate the job reports, CPU per 1,000 rows of the job and of the server (robust to a busy
machine where rates are not), the highest RSS sampled while chunks were being scored (what the
data's size could drive) and the peak RSS of the whole run (the kernel's high-water mark, which
includes the metric computation over all rows at the end). Every run must score every row and
reach the same accuracy. Prints a Markdown table. Heavy: minutes of both cores, GBs of disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.loadgen import Body, run_wrk
from benchmarks.payloads import v2_binary
from benchmarks.servers import Server, cpu_seconds, rss_mb, start_service
from service.datafiles import find_idx_sets, read_idx_set
from service.evaluation.batch.cli import CHUNK_SIZE

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("idx", "parquet", "csv")


@dataclass(frozen=True)
class Run:
    name: str
    rows: int
    size: int  # bytes of the data file(s)
    wall: float  # seconds, process start to exit
    scoring: float  # seconds the job reports for scoring (metrics.json duration_seconds)
    peak_rss: float  # MiB, the whole run
    scoring_rss: float  # MiB, the highest sampled while chunks were being scored
    accuracy: float
    job_cpu: float  # CPU seconds of the job's process
    server_cpu: float | None  # CPU seconds of the server's processes meanwhile
    alone: float | None = None  # images/s of the server alone, measured just before this run

    def line(self) -> str:
        server = "-" if self.server_cpu is None else f"{1e6 * self.server_cpu / self.rows:,.0f}"
        ratio = (
            "-" if self.alone is None else f"{self.rows / self.scoring / self.alone:.2f} of {self.alone:,.0f}"
        )
        return (
            f"| {self.name} | {self.size / 2**20:,.0f} MiB | {self.rows:,} | {self.wall:.1f} | "
            f"{self.rows / self.wall:,.0f} | {self.rows / self.scoring:,.0f} | {self.scoring_rss:,.0f} | "
            f"{self.peak_rss:,.0f} | "
            f"{1e6 * self.job_cpu / self.rows:,.0f} | {server} | {ratio} | {self.accuracy:.4f} |"
        )


def digits(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    loaded = read_idx_set(*next(iter(find_idx_sets(data_dir).values())))
    return loaded.images, loaded.labels.astype(np.uint8)


def write_idx_files(folder: Path, images: np.ndarray, labels: np.ndarray, rows: int) -> int:
    """Raw (uncompressed) IDX: the job reads it by seek + read, as it would from object storage."""
    folder.mkdir(parents=True)
    for name, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
        dims = (rows, *array.shape[1:])
        header = bytes([0, 0, 0x08, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
        whole, rest = divmod(rows, len(array))
        with open(folder / f"big-{name}", "wb") as fh:
            fh.write(header)
            block = array.tobytes()
            for _ in range(whole):
                fh.write(block)
            fh.write(array[:rest].tobytes())
    return sum(p.stat().st_size for p in folder.iterdir())


def write_parquet(path: Path, images: np.ndarray, labels: np.ndarray, rows: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = images.reshape(len(images), -1)
    table = pa.table({**{f"p{i}": flat[:, i] for i in range(flat.shape[1])}, "label": labels})
    with pq.ParquetWriter(path, table.schema) as writer:
        whole, rest = divmod(rows, len(table))
        for _ in range(whole):
            writer.write_table(table)
        if rest:
            writer.write_table(table.slice(0, rest))
    return path.stat().st_size


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, rows: int) -> int:
    flat = images.reshape(len(images), -1)
    header = ",".join(f"p{i}" for i in range(flat.shape[1])) + ",label\n"
    lines = [
        ",".join(map(str, row)) + f",{label}\n"
        for row, label in zip(flat.tolist(), labels.tolist(), strict=True)
    ]
    with open(path, "wb") as fh:
        fh.write(header.encode())
        whole, rest = divmod(rows, len(lines))
        block = "".join(lines).encode()
        for _ in range(whole):
            fh.write(block)
        fh.write("".join(lines[:rest]).encode())
    return path.stat().st_size


def _watch(pid: int, state: Path, chunks: int) -> tuple[int, Any, float]:
    """Wait for ``pid``; sample its RSS every 50 ms until its checkpoint holds all ``chunks``."""
    scoring_rss = 0.0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage, scoring_rss
        saved = sum(len(os.listdir(folder)) for folder in state.glob("*/chunks"))
        if saved < chunks:
            scoring_rss = max(scoring_rss, rss_mb(pid))
        time.sleep(0.05)


def run_job(
    name: str, command: list[str], output: Path, size: int, chunks: int, server: Server | None = None
) -> Run:
    """One job in its own process; peak RSS and CPU from the kernel's accounting of that process alone."""
    pids = [server.process.pid, *server.workers()] if server else []
    server_before = cpu_seconds(pids)
    started = time.perf_counter()
    job = [sys.executable, "-m", "service.evaluation.batch", *command, "--output", str(output), "--quiet"]
    process = subprocess.Popen(job, cwd=ROOT)
    status, usage, scoring_rss = _watch(process.pid, output / ".state", chunks)
    wall = time.perf_counter() - started
    server_cpu = cpu_seconds(pids) - server_before if server else None
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{name}: evaluate-model exited {process.returncode}")
    doc = json.loads((output / "metrics.json").read_text())
    rows, accuracy = doc["sample_count"] + doc["error_count"], doc["metrics"]["accuracy"]
    cpu, peak = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    return Run(name, rows, size, wall, doc["duration_seconds"], peak, scoring_rss, accuracy, cpu, server_cpu)


def server_alone(server: Server, images: np.ndarray, seconds: float) -> tuple[float, float]:
    """Images/s of 1,024-image V2 binary requests from wrk over 8 connections, as `make bench`,
    and the server's CPU milliseconds per 1,000 images."""
    data, header_length = v2_binary((images[:1024] / np.float32(255.0)).astype(np.float32))
    body = Body("/v2/models/mnist/infer", data, "application/octet-stream", header_length)
    run_wrk(server.url, body, connections=8, seconds=2, threads=2)  # warm-up
    pids = [server.process.pid, *server.workers()]
    before = cpu_seconds(pids)
    result = run_wrk(server.url, body, connections=8, seconds=seconds, threads=2)
    used = cpu_seconds(pids) - before
    if result.errors:  # a timeout on a saturated shared machine; said, and the figure kept
        print(
            f"warning: wrk saw {result.errors} errors in {result.requests} requests:\n{result.report}",
            flush=True,
        )
    return result.rps * 1024, 1e6 * used / (result.requests * 1024)


def write_data(
    kind: str, work: Path, images: np.ndarray, labels: np.ndarray, rows: int
) -> tuple[int, list[str]]:
    """The file(s) of one format: (bytes, the job's --data arguments)."""
    started = time.perf_counter()
    if kind == "idx":
        size, data = write_idx_files(work / "idx", images, labels, rows), [str(work / "idx")]
    elif kind == "parquet":
        path = work / "big.parquet"
        size, data = write_parquet(path, images, labels, rows), [str(path), "--scale", "255"]
    else:
        path = work / "big.csv"
        size, data = write_csv(path, images, labels, rows), [str(path), "--scale", "255"]
    took = time.perf_counter() - started
    print(f"wrote {kind}: {rows:,} rows, {size / 2**20:,.0f} MiB in {took:.0f} s", flush=True)
    return size, data


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, of {', '.join(FORMATS)}")
    p.add_argument("--modes", default="server,offline", help="server and/or offline")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    p.add_argument("--model-repository", type=Path, default=ROOT / "models")
    p.add_argument("--workdir", type=Path, help="where to write the files (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--job-args", default="", help="extra evaluate-model options, e.g. '--concurrency 8'")
    p.add_argument("--wrk-seconds", type=float, default=10.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    formats, modes = args.formats.split(","), args.modes.split(",")
    images, labels = digits(args.data)
    work = Path(tempfile.mkdtemp(prefix="eval-job-", dir=args.workdir))
    common = [
        "--model",
        "mnist",
        "--metrics",
        "accuracy,roc_auc,log_loss,confusion_matrix",
        *args.job_args.split(),
    ]
    chunk_size = int(_option(common, "--chunk-size") or CHUNK_SIZE)
    chunks = -(-args.rows // chunk_size)
    runs: list[Run] = []
    alone: tuple[float, float] | None = None
    try:
        files = {kind: write_data(kind, work, images, labels, args.rows) for kind in formats}
        if "server" in modes:
            with start_service(args.model_repository, work) as server:
                server.wait_until("/v2/health/ready", 120)
                for kind, (size, data) in files.items():
                    alone = server_alone(server, images, args.wrk_seconds)  # right before: side by side
                    print(
                        f"server alone: {alone[0]:,.0f} images/s, {alone[1]:,.0f} CPU ms per 1,000",
                        flush=True,
                    )
                    command = [*common, "--data", *data, "--server", server.url]
                    output = work / f"out-{kind}-server"
                    run = run_job(f"{kind}, through the server", command, output, size, chunks, server)
                    runs.append(replace(run, alone=alone[0]))
                    print(runs[-1].line(), flush=True)
        if "offline" in modes:
            for kind, (size, data) in files.items():
                command = [
                    *common,
                    "--data",
                    *data,
                    "--offline",
                    "--model-repository",
                    str(args.model_repository),
                ]
                output = work / f"out-{kind}-offline"
                runs.append(run_job(f"{kind}, offline", command, output, size, chunks))
                print(runs[-1].line(), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(runs, alone, args)
    if len({round(r.accuracy, 12) for r in runs}) > 1 or any(r.rows != args.rows for r in runs):
        print("error: runs disagree on rows or accuracy", file=sys.stderr)
        return 1
    return 0


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def report(runs: list[Run], alone: tuple[float, float] | None, args: argparse.Namespace) -> None:
    print(
        f"\n`python -m benchmarks.eval_job --rows {args.rows} --formats {args.formats} --modes {args.modes}`\n"
    )
    if alone is not None:
        print(
            f"Server alone (wrk, 1,024-image V2 binary, 8 connections), measured again right before each "
            f"run through it; the last: **{alone[0]:,.0f} images/s**, server CPU {alone[1]:,.0f} ms per 1,000 images.\n"
        )
    print(
        "| run | data | rows | wall s | rows/s (wall) | rows/s (scoring) | RSS scoring MiB | peak RSS MiB "
        "| job CPU ms / 1k rows | server CPU ms / 1k rows | scoring / server alone | accuracy |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        print(run.line())


if __name__ == "__main__":
    sys.exit(main())
