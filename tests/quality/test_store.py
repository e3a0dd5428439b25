"""The SQLite prediction store and its recorder thread: writes, bounds, labels, several writers."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.inference import Observation
from service.models.card import ModelCard, TensorSpec
from service.models.quality_config import FeedbackConfig
from service.quality.feedback import apply_feedback, parse_feedback, retry_unknown
from service.quality.recorder import Recorder
from service.quality.store import PredictionStore, ShadowTally, decode_scores, encode_scores

CARD = ModelCard(
    "digits", 1, "classification", "serving_default",
    (TensorSpec("images", "float32", (-1, 4)),),
    (TensorSpec("probabilities", "float32", (-1, 3)),),
    ("a", "b", "c"),
)  # fmt: skip


def observation(rows: int, version: int = 1) -> Observation:
    proba = np.random.default_rng(rows).dirichlet(np.ones(3), rows).astype(np.float32)
    return Observation(CARD, version, {"images": np.zeros((rows, 4), np.float32)}, {"probabilities": proba})


def test_scores_round_trip_bit_for_bit() -> None:
    scores = np.random.default_rng(0).random((5, 10)).astype(np.float32)
    assert np.array_equal(decode_scores(encode_scores(scores)), scores)
    assert decode_scores(encode_scores(np.float32([1.5, 2.5]))).tolist() == [[1.5], [2.5]]


def test_recorder_writes_what_the_loop_hands_over(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path)
    recorder = Recorder(store)
    recorder.start()
    first, second = observation(3), observation(2)
    recorder.remember("digits", "req-1", first)
    recorder.remember("digits", "req-2", second)
    assert recorder.flush()
    assert store.versions("digits") == {1: (5, 0)}
    assert store.lookup("digits", "req-1").count == 3 and store.lookup("digits", "nope").count == 0
    since = time.time() - 60
    remembered = store.recent_scores("digits", 1, 10, since).tolist()
    answered = np.vstack([first.outputs["probabilities"], second.outputs["probabilities"]]).tolist()
    assert sorted(remembered) == sorted(answered)  # float32 bits as the model returned them
    recorder.close()


def test_feedback_joins_labels_and_reports_the_rest(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path)
    recorder = Recorder(store)
    recorder.start()
    recorder.remember("digits", "req-1", observation(2))
    recorder.remember("digits", "req-2", observation(1))
    recorder.flush()
    body = (
        b'{"feedback": [{"id": "req-1", "labels": ["b", 2]}, {"id": "req-2", "labels": [0, 1]},'
        b' {"id": "ghost", "labels": [1]}]}'
    )
    result = apply_feedback(store, lambda n, v: CARD, "digits", parse_feedback(body), FeedbackConfig())
    assert result["labelled"] == 2 and result["requests"] == 1
    assert result["unknown"] == ["ghost"]
    assert result["rejected"] == [
        {"id": "req-2", "error": "Got 2 labels for 1 instances; they must match one to one."}
    ]
    labels, scores = store.labelled("digits", 1, 10, 0.0)
    assert sorted(labels.tolist()) == [1.0, 2.0] and scores.shape == (2, 3)
    recorder.close()


def test_expired_predictions_are_reported_and_purged(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path)
    old = time.time() - 100
    store.insert("digits", [("old", 0, 1, old, encode_scores(np.float32([[0.1, 0.2, 0.7]]))[0])])
    items = parse_feedback(b'{"feedback": [{"id": "old", "labels": [2]}]}')
    result = apply_feedback(store, lambda n, v: CARD, "digits", items, FeedbackConfig(ttl_s=10))
    assert result["expired"] == ["old"] and result["labelled"] == 0
    assert store.purge("digits", keep=100, oldest=time.time() - 10) == 1
    assert store.lookup("digits", "old").count == 0


def test_purge_keeps_the_newest(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path)
    now = time.time()
    blob = encode_scores(np.float32([[1.0, 0.0, 0.0]]))[0]
    store.insert("digits", [(f"r{i}", 0, 1, now + i, blob) for i in range(10)])
    assert store.purge("digits", keep=4, oldest=0.0) == 6
    assert [store.lookup("digits", f"r{i}").count for i in range(10)] == [0] * 6 + [1] * 4


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"feedback": []}', b'{"feedback": [{"id": 3, "labels": []}]}',
     b'{"feedback": [{"id": "x", "labels": 1}]}', b'{"feedback": [{"id": "x"}]}'],
)  # fmt: skip
def test_malformed_feedback_is_a_400(body: bytes) -> None:
    from service.errors import InvalidInput

    with pytest.raises(InvalidInput):
        parse_feedback(body)


def test_shadow_tallies_add_up(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path)
    store.add_shadow("digits", [ShadowTally(1, 2, 3, 2, {(0, 0): 2, (0, 1): 1})])
    store.add_shadow("digits", [ShadowTally(1, 2, 1, 1, {(1, 1): 1})])
    (tally,) = store.shadow("digits")
    assert (tally.compared, tally.agreed) == (4, 3)
    assert tally.matrix == {(0, 0): 2, (0, 1): 1, (1, 1): 1}


def _write_many(root: str, worker: int) -> None:
    store = PredictionStore(Path(root))
    blob = encode_scores(np.float32([[1.0, 0.0, 0.0]]))[0]
    for batch in range(20):
        store.insert("digits", [(f"w{worker}-{batch}-{i}", 0, 1, time.time(), blob) for i in range(50)])


def test_several_processes_write_one_store(tmp_path: Path) -> None:
    """gunicorn's workers share the file: WAL and the busy timeout make them take turns."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(tmp_path), w)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    assert PredictionStore(tmp_path).versions("digits") == {1: (3 * 20 * 50, 0)}


def test_an_id_written_a_moment_later_is_found_on_retry(tmp_path: Path) -> None:
    """What another worker answered just before is written within its gather delay."""
    store = PredictionStore(tmp_path)
    items = parse_feedback(b'{"feedback": [{"id": "late", "labels": [1]}, {"id": "never", "labels": [1]}]}')
    first = apply_feedback(store, lambda n, v: CARD, "digits", items, FeedbackConfig())
    assert first["unknown"] == ["late", "never"]
    blob = encode_scores(np.float32([[0.2, 0.7, 0.1]]))[0]
    store.insert("digits", [("late", 0, 1, time.time(), blob)])  # the other worker's write lands

    def again(missing: list[str]) -> dict[str, Any]:
        retried = [item for item in items if item.request_id in missing]
        return apply_feedback(store, lambda n, v: CARD, "digits", retried, FeedbackConfig())

    result = retry_unknown(first, again)
    assert (result["labelled"], result["requests"], result["unknown"]) == (1, 1, ["never"])
