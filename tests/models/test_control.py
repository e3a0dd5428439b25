"""The control store the workers share: generations, concurrent writers, damaged files, workers' acks."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import socket
import time
from pathlib import Path

import orjson
import pytest

from service.errors import NotFound, Unavailable, WorkersLagging
from service.models.config import BatchingConfig, ModelEntry, VersionPolicy, parse_entry
from service.models.control import Ack, ControlState, ControlStore, decode_state, entry_document

SPAWN = multiprocessing.get_context("spawn")  # children never inherit the test process's threads


@pytest.mark.parametrize(
    "entry",
    [
        ModelEntry(),
        ModelEntry(VersionPolicy("latest", 3), {"stable": 1, "canary": 2}),
        ModelEntry(VersionPolicy("all"), batching=BatchingConfig(enabled=False)),
        ModelEntry(VersionPolicy("specific", versions=(1, 3)), batching=BatchingConfig(True, 64, 0.0015)),
    ],
)
def test_an_override_is_stored_in_serving_yaml_form_and_reads_back_equal(entry: ModelEntry) -> None:
    document = orjson.loads(orjson.dumps(entry_document(entry)))
    assert parse_entry(document, "test") == entry


def test_entry_document_writes_every_field_of_a_model_entry() -> None:
    # A new ModelEntry field must be written by entry_document, or a load's override would lose it.
    assert {f.name for f in dataclasses.fields(ModelEntry)} == {
        "policy", "labels", "batching", "task", "class_labels", "feedback", "gate", "shadow", "default_label"
    }  # fmt: skip
    raw = {
        "version_policy": {"specific": [1, 3]},
        "labels": {"old": 1},
        "batching": {"enabled": False, "max_batch_size": 64, "batch_timeout_ms": 1.5},
        "task": "classification",
        "class_labels": ["cat", "dog"],
        "feedback": {"keep": 10, "ttl_s": 60, "window": 5, "drift_window": 4, "drift": False},
        "gate": {"label": "stable", "require": {"accuracy": ">= 0.95"}, "versus_label": {"log_loss": 0.01}},
        "shadow": {"fraction": 0.25, "candidate": {"label": "canary"}, "tolerance": 0.5},
    }
    entry = parse_entry(raw, "test")
    assert parse_entry(entry_document(entry), "again") == entry


def test_each_update_is_the_next_generation_and_other_readers_see_it_once(tmp_path: Path) -> None:
    writer, reader = ControlStore(tmp_path), ControlStore(tmp_path)
    empty = reader.changed()
    assert empty is not None and empty.generation == 0 and reader.changed() is None
    first = writer.update(lambda s: s.with_load("mnist", ModelEntry(VersionPolicy("all"))))
    second = writer.update(lambda s: s.with_unload("binary", served={"binary"}))
    assert (first.generation, second.generation) == (1, 2) and first.file == second.file
    seen = reader.changed()
    assert seen == second and reader.changed() is None  # a stat, no read, when nothing changed
    assert seen.unloaded == {"binary"} and seen.entries() == {"mnist": ModelEntry(VersionPolicy("all"))}
    reloaded = writer.update(lambda s: s.with_load("binary", None))
    assert reloaded.unloaded == frozenset() and set(reloaded.loaded) == {"mnist", "binary"}


def test_unloading_what_is_neither_loaded_nor_served_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    store = ControlStore(tmp_path)
    with pytest.raises(NotFound, match="'ghost' is not loaded"):
        store.update(lambda s: s.with_unload("ghost", served={"mnist"}))
    assert not store.state_path.exists()


def _load_many(folder: str, prefix: str, count: int) -> None:
    store = ControlStore(Path(folder))
    for i in range(count):
        store.update(lambda s, i=i: s.with_load(f"{prefix}{i}", None))


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    writers, each = 4, 25
    procs = [SPAWN.Process(target=_load_many, args=(str(tmp_path), f"w{w}-", each)) for w in range(writers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    state = decode_state(ControlStore(tmp_path).state_path.read_bytes())
    assert state.generation == writers * each
    assert set(state.loaded) == {f"w{w}-{i}" for w in range(writers) for i in range(each)}


@pytest.mark.parametrize(
    "damage",
    [
        b'{"file": "x", "generation": 3, "loaded": {"mni',  # torn in the middle
        b"",
        b'{"file": "x", "generation": 3, "loaded": {"m": {"version_policy": "newest"}}, "unloaded": []}',
        b'{"file": "x", "generation": -1, "loaded": {}, "unloaded": []}',
        b'{"file": "x", "generation": 3, "loaded": {}, "unloaded": ["../etc"]}',
    ],
)
def test_a_damaged_file_keeps_the_last_good_state_and_is_never_overwritten(
    tmp_path: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    writer, reader = ControlStore(tmp_path), ControlStore(tmp_path)
    good = writer.update(lambda s: s.with_load("mnist", None))
    assert reader.changed() == good
    writer.state_path.write_bytes(damage)
    assert reader.changed() is None and "Ignoring the model control file" in caplog.text
    assert reader.changed() is None and caplog.text.count("Ignoring") == 1  # said once, not every poll
    with pytest.raises(Unavailable, match=r"state\.json is damaged"):
        writer.update(lambda s: s.with_load("binary", None))
    assert writer.state_path.read_bytes() == damage


def test_a_deleted_file_starts_a_new_life_that_old_acks_do_not_cover(tmp_path: Path) -> None:
    store = ControlStore(tmp_path)
    old = store.update(lambda s: s.with_load("mnist", None))
    store.state_path.unlink()
    new = store.update(lambda s: s.with_load("binary", None))
    assert new.generation == 1 and new.file != old.file
    assert set(new.loaded) == {"binary"}


# ---- workers' acks ------------------------------------------------------------------------------
def _sibling(
    folder: str, go: multiprocessing.synchronize.Event, done: multiprocessing.synchronize.Event
) -> None:
    """A worker: joins, waits to be told, then acknowledges what the file holds, and stays alive."""
    store = ControlStore(Path(folder))
    store.join()
    go.wait(30)
    state = store.changed()
    assert state is not None
    store.acknowledge(state)
    done.wait(30)


def _exit_after_join(folder: str) -> None:
    ControlStore(Path(folder)).join()


def test_an_admin_call_waits_for_a_live_sibling_and_names_it_when_it_lags(tmp_path: Path) -> None:
    go, done = SPAWN.Event(), SPAWN.Event()
    sibling = SPAWN.Process(target=_sibling, args=(str(tmp_path), go, done))
    sibling.start()
    try:
        here = ControlStore(tmp_path, master=os.getpid())  # the test process plays the gunicorn master
        deadline = time.monotonic() + 30
        while not list((tmp_path / "workers").glob("*.json")):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        written = here.update(lambda s: s.with_load("mnist", None))
        assert [ack.pid for ack in here.lagging(written)] == [sibling.pid]
        with pytest.raises(WorkersLagging, match=rf"worker\(s\) {sibling.pid} \(at generation -1\)") as lag:
            here.wait(written, timeout=0.2)
        assert lag.value.status == 504
        go.set()
        here.wait(written, timeout=30)  # returns once the sibling acknowledged
        assert here.lagging(written) == []
    finally:
        done.set()
        sibling.join(30)


def test_acks_of_dead_workers_and_of_other_masters_do_not_count(tmp_path: Path) -> None:
    dead = SPAWN.Process(target=_exit_after_join, args=(str(tmp_path),))
    dead.start()
    dead.join(30)
    here = ControlStore(tmp_path, master=os.getpid())
    stranger = ControlStore(tmp_path, master=1)  # a live pid whose parent is not our master: pid reuse
    stranger.join()  # writes this process's ack, claiming another master
    written = here.update(lambda s: s.with_load("mnist", None))
    acks = sorted(p.name for p in (tmp_path / "workers").glob("*.json"))
    assert len(acks) == 2
    assert here.lagging(written) == []
    here.wait(written, timeout=0.01)  # nobody to wait for
    remaining = [p.name for p in (tmp_path / "workers").glob("*.json")]
    assert remaining == [f"{socket.gethostname()}-{os.getpid()}.json"]  # the dead one was removed


def test_a_stray_ack_file_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    here = ControlStore(tmp_path, master=os.getpid())
    (tmp_path / "workers").mkdir(parents=True)
    (tmp_path / "workers" / f"{socket.gethostname()}-123.json").write_bytes(b'{"pid": 123, "gen')
    written = here.update(lambda s: s.with_load("mnist", None))
    assert here.lagging(written) == [] and "Ignoring worker ack" in caplog.text


def test_a_worker_that_leaves_is_not_waited_for(tmp_path: Path) -> None:
    store = ControlStore(tmp_path)
    store.join()
    assert list((tmp_path / "workers").glob("*.json"))
    store.leave()
    assert not list((tmp_path / "workers").glob("*.json"))


def test_an_ack_covers_its_generation_and_later_ones_of_the_same_file_only(tmp_path: Path) -> None:
    store = ControlStore(tmp_path)
    state = store.update(lambda s: s.with_load("mnist", None))
    store.acknowledge(state)
    (path,) = (tmp_path / "workers").glob("*.json")
    ack = Ack(**orjson.loads(path.read_bytes()))
    assert (ack.pid, ack.master, ack.generation) == (os.getpid(), os.getppid(), 1)
    assert ack.covers(state) and ack.covers(dataclasses.replace(state, generation=0))
    assert not ack.covers(dataclasses.replace(state, generation=2))
    assert not ack.covers(ControlState(file="another", generation=1))
