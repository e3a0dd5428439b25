"""Per-request cost of what issue 14 added to the inference path, piece by piece.

With tracing, feedback and shadow off, a request gains: a request id (choose), the id in the
log context and the scope, stage marks (four clock reads and the batch's marks), one more response
header, and two checks after the answer. With feedback on, the event loop also builds an
Observation and queues it; the recorder thread then writes it (its CPU per item is measured too,
by writing a few thousand predictions to a real SQLite store). Best of 5 repeats, so other load on
the machine shows less; no assertions. Compare with ~450 us of machine CPU per one-digit request
(docs/benchmarks.md) to judge the share.

    .venv/bin/python benchmarks/quality_overhead.py [--number 200000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

from service.batching.scheduler import note_timing
from service.batching.slot import Slot
from service.http.identity import RequestIds
from service.inference import Observation
from service.logs import REQUEST_ID
from service.metrics import RequestRecord
from service.models.card import ModelCard, TensorSpec
from service.models.quality_config import FeedbackConfig
from service.quality.recorder import Recorder
from service.quality.store import PredictionStore

CARD = ModelCard(
    "mnist", 1, "classification", "serving_default",
    (TensorSpec("images", "float32", (-1, 28, 28)),),
    (TensorSpec("probabilities", "float32", (-1, 10)), TensorSpec("class_id", "int64", (-1,))),
    tuple("0123456789"),
)  # fmt: skip


def best_us(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def recorder_cpu_us(items: int) -> float:
    """CPU of this process per remembered one-instance prediction (queue + recorder thread)."""
    with tempfile.TemporaryDirectory() as folder:
        recorder = Recorder(PredictionStore(Path(folder)))
        recorder.configure({"mnist": FeedbackConfig()})
        recorder.start()
        outputs = {"probabilities": np.random.default_rng(0).random((1, 10), np.float32)}
        observation = Observation(CARD, 1, {"images": np.zeros((1, 28, 28), np.float32)}, outputs)
        started = time.process_time()
        for i in range(items):
            recorder.remember("mnist", f"req-{i}", observation)
        recorder.flush(120)
        used = time.process_time() - started
        recorder.close()
    return used / items * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=200_000, help="calls per repeat (default 200000)")
    args = parser.parse_args()
    ids = RequestIds()
    record = RequestRecord("tfserving", "predict")
    slot = Slot({}, 1, time.monotonic())
    slot.started, slot.finished, slot.batch_rows = 1.0, 2.0, 8
    slots = [slot]
    scope: dict[str, object] = {}
    headers = {"Content-Type": "application/json"}
    inputs = {"images": np.zeros((1, 28, 28), np.float32)}
    outputs = {"probabilities": np.zeros((1, 10), np.float32)}

    def off_path() -> None:
        request_id = ids.choose(None)
        scope["model_serving.request_id"] = request_id
        REQUEST_ID.set(request_id)
        scope["model_serving.record"] = record
        record.resolved = time.monotonic()
        record.decoded = time.monotonic()
        note_timing(record, slots)
        record.predicted = time.monotonic()
        record.encoded = time.monotonic()
        sent = {**headers, "X-Request-Id": request_id}
        [(k.encode("latin-1"), v.encode("latin-1")) for k, v in sent.items()]
        if record.observed is not None:  # the after-answer checks
            raise AssertionError

    rows = {
        "choose() a new request id": lambda: ids.choose(None),
        "choose() the client's id": lambda: ids.choose(b"3f2a9c1b-7d4e-4a6b-9c1d-2e3f4a5b6c7d"),
        "all additions, tracing/feedback/shadow off": off_path,
    }
    # An unstarted recorder: remember() only queues (what the loop does); the queue is dropped after.
    queued = Recorder(PredictionStore(Path(tempfile.gettempdir())))
    rows["feedback on: Observation + remember() (loop side)"] = lambda: queued.remember(
        "mnist", "req", Observation(CARD, 1, inputs, outputs)
    )
    rows["tracing on: a request's 5 spans (built, queued)"] = traced(record)
    print(f"best of 5 x {args.number} calls")
    for label, call in rows.items():
        print(f"{label:<52} {best_us(call, args.number):7.2f} us")
    print(f"{'feedback on: recorder thread CPU per prediction':<52} {recorder_cpu_us(20_000):7.2f} us")


def traced(record: RequestRecord) -> Callable[[], None]:
    """Tracer.request() for a request with every mark set; spans go to a console exporter on
    /dev/null (the export itself runs on the SDK's thread, not measured here)."""
    import sys

    from service.tracing import Tracer

    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - the exporter keeps it
    try:
        tracer = Tracer("console", "bench")
    finally:
        sys.stdout = stdout
    now = time.monotonic()
    record.resolved, record.decoded, record.predicted, record.encoded = (
        now,
        now + 1e-4,
        now + 3e-4,
        now + 4e-4,
    )
    record.batch_started, record.batch_finished = now + 2e-4, now + 2.5e-4
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    return lambda: tracer.request("POST /v1/models/<name>:predict", parent, record, "req", 200)


if __name__ == "__main__":
    main()
