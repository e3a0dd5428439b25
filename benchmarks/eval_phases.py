"""Where the batch job's memory goes: evaluate-model in-process, RSS sampled by phase of the job.

    python -m benchmarks.eval_phases --model mnist --data big.csv --scale 255 --server URL --output out

Runs ``service.evaluation.batch.cli.main`` with the arguments given and samples this process's
/proc status every 50 ms from a thread, noting which of the job's phases the main thread is in
(the innermost of the functions below on its stack). Prints, per phase, when it ran and the
highest RSS seen, split into anonymous memory and mapped files (TensorFlow's libraries, for an
offline run), then the process's VmHWM at the end. Sampling misses peaks shorter than 50 ms;
VmHWM does not.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import FrameType

from service.evaluation.batch import cli

# (module file, function) of each phase, in the order a job goes through them
PHASES = {
    ("sources.py", "open_source"): "read the data's index",
    ("loading.py", "prepare"): "load the model (offline)",
    ("runner.py", "_score_all"): "score every chunk",
    ("runner.py", "gather"): "gather the results",
    ("report.py", "measure"): "compute the figures",
    ("report.py", "draw"): "draw the plots",
}
FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")


def status() -> dict[str, float]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in FIELDS:
            values[key] = int(value.split()[0]) / 1024
    return values


def phase_of(frame: FrameType | None) -> str:
    while frame is not None:
        phase = PHASES.get((Path(frame.f_code.co_filename).name, frame.f_code.co_name))
        if phase is not None:
            return phase
        frame = frame.f_back
    return "other (imports, report files)"


def main(argv: list[str]) -> int:
    main_thread, stop = threading.get_ident(), threading.Event()
    seen: dict[str, list[float]] = {}  # phase -> [first s, last s, max RSS, max anon, max file]
    started = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            phase = phase_of(sys._current_frames().get(main_thread))
            now, values = time.perf_counter() - started, status()
            entry = seen.setdefault(phase, [now, now, 0.0, 0.0, 0.0])
            entry[1] = now
            for i, key in enumerate(("VmRSS", "RssAnon", "RssFile"), start=2):
                entry[i] = max(entry[i], values[key])
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = cli.main(argv)
    stop.set()
    sampler.join()
    print(f"\nexit {code}, {time.perf_counter() - started:.1f} s, VmHWM {status()['VmHWM']:,.0f} MiB\n")
    print("| phase | from s | to s | max RSS MiB | anonymous | files |\n|---|---|---|---|---|---|")
    for phase, (first, last, rss, anon, files) in seen.items():
        print(f"| {phase} | {first:.1f} | {last:.1f} | {rss:,.0f} | {anon:,.0f} | {files:,.0f} |")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
