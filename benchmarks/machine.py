"""What the benchmark ran on, and how busy the machine was while it ran."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _wrk_version() -> str:
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (done.stdout or done.stderr).split(" [", 1)[0].strip() or "unknown"


def _h2load_version() -> str:
    try:
        done = subprocess.run(["h2load", "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return done.stdout.strip() or "unknown"


def _isa() -> str:
    flags = set(_first("/proc/cpuinfo", "flags").split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "amx_tile")
    return ", ".join(f for f in wanted if f in flags) or "no AVX2"


def describe() -> dict[str, str]:
    mem_kb = int(_first("/proc/meminfo", "MemTotal").split()[0])
    tf = next((v for v in map(_version, ("tensorflow-cpu", "tensorflow")) if v != "not installed"), "?")
    return {
        "CPU": f"{_first('/proc/cpuinfo', 'model name')} ({_isa()})",
        "Cores (os.cpu_count)": str(os.cpu_count()),
        "RAM": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "OS": f"{_first('/etc/os-release', 'PRETTY_NAME=')}, Linux {platform.release()}",
        "Python": sys.version.split()[0],
        "TensorFlow": tf,
        "Flask / gunicorn / orjson / pysimdjson": " / ".join(
            _version(p) for p in ("flask", "gunicorn", "orjson", "pysimdjson")
        ),
        "Load generator": f"{_wrk_version()}; for gRPC {_h2load_version()}",
    }


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _busy_jiffies() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuWindow:
    """Whole-machine busy CPU over a window, and what the load generator (our children) used of it."""

    busy: int = 0
    children: float = 0.0

    @classmethod
    def open(cls) -> CpuWindow:
        return cls(_busy_jiffies(), _children_cpu())

    def close(self) -> tuple[float, float]:
        """(machine busy CPU seconds, CPU seconds of child processes reaped meanwhile) since open."""
        return (_busy_jiffies() - self.busy) / os.sysconf("SC_CLK_TCK"), _children_cpu() - self.children
