"""Drive one scenario with wrk and read back throughput, latency percentiles and every error kind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).with_name("post.lua")
INSTALL_HINT = "wrk is not installed; as root: apt-get update && apt-get install -y wrk hey"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class Body:
    path: str  # URL path
    data: bytes
    content_type: str = "application/json"
    header_length: int | None = None  # V2 binary extension


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors of any kind plus non-2xx/3xx responses
    report: str  # wrk's own text

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def find_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(INSTALL_HINT)
    return found


def run_wrk(
    url: str, body: Body, connections: int, seconds: float, threads: int, token: str | None = None
) -> WrkResult:
    """``wrk --latency`` for ``seconds`` with ``connections`` posting ``body`` (with ``token`` as a
    bearer token when given); threads <= connections."""
    with tempfile.NamedTemporaryFile(prefix="bench-body-", suffix=".bin") as fh:
        fh.write(body.data)
        fh.flush()
        env = {**os.environ, "BENCH_BODY": fh.name, "BENCH_PATH": body.path, "BENCH_TYPE": body.content_type}
        env["BENCH_HEADER_LENGTH"] = "" if body.header_length is None else str(body.header_length)
        env["BENCH_TOKEN"] = token or ""
        command = [find_wrk(), "--latency", f"-t{min(threads, connections)}", f"-c{connections}"]
        command += [f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LUA), url]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return parse(done.stdout)


def parse(report: str) -> WrkResult:
    """wrk's ``--latency`` text for the percentiles, the script's BENCH line for exact counts."""
    line = re.search(r"^BENCH (.*)$", report, re.MULTILINE)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH line:\n{report}")
    fields = {k: int(v) for k, v in (item.split("=") for item in line[1].split())}
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)\s*$", report, re.MULTILINE))
    errors = sum(fields[k] for k in ("connect", "read", "write", "timeout", "status"))
    return WrkResult(
        requests=fields["requests"],
        seconds=fields["duration_us"] / 1e6,
        p50_ms=_ms(percentiles.get("50"), fields["p50_us"]),
        p99_ms=_ms(percentiles.get("99"), fields["p99_us"]),
        errors=errors,
        report=report,
    )


def _ms(text: str | None, fallback_us: int) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text or "")
    return float(match[1]) * _UNITS[match[2]] if match else fallback_us / 1000.0
