"""Registry: version policies, labels, states, hot reload and failed loads, over real tiny SavedModels."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.errors import NotFound, Unavailable
from service.models.loading import build_registry
from service.models.registry import Registry
from service.models.repository import Repository
from tests.fixtures.tiny_models import corrupt_version, export


@pytest.fixture
def registry_for(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Registry]]:
    made: list[Registry] = []

    def make(root: Path, config: str | None = None, **overrides: Any) -> Registry:
        if config is not None:
            (root / "serving.yaml").write_text(config)
        registry = build_registry(make_settings(root, **overrides))
        registry.sync()
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.stop()


def predict_y(registry: Registry, name: str = "regressor", **ref: Any) -> float:
    with registry.acquire(name, **ref) as servable:
        return float(servable.predict({"x": np.array([2.0], np.float32)})["y"][0])


def states(registry: Registry, name: str = "regressor") -> dict[int, str]:
    return {s.version: s.state for s in registry.status(name)}


def test_latest_version_is_served_by_default(tiny_repo: Path, registry_for: Callable[..., Registry]) -> None:
    registry = registry_for(tiny_repo)
    assert states(registry) == {2: "AVAILABLE"}
    assert predict_y(registry) == 4.0  # v2: 0.5 * 2 + 3
    assert registry.not_ready() == []
    assert registry.model_names() == ["binary", "digits", "regressor"]


def test_all_policy_and_labels(tiny_repo: Path, registry_for: Callable[..., Registry]) -> None:
    config = "models:\n  regressor:\n    version_policy: all\n    labels: {stable: 1, canary: 2}\n"
    registry = registry_for(tiny_repo, config)
    assert states(registry) == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert predict_y(registry, version=1) == 3.0
    assert predict_y(registry, label="stable") == 3.0
    assert predict_y(registry, label="canary") == 4.0
    assert predict_y(registry) == 4.0
    assert registry.labels("regressor") == {"stable": 1, "canary": 2}


def test_specific_policy(tiny_repo: Path, registry_for: Callable[..., Registry]) -> None:
    registry = registry_for(tiny_repo, "models:\n  regressor:\n    version_policy: {specific: [1]}\n")
    assert states(registry) == {1: "AVAILABLE"}
    with pytest.raises(NotFound, match="no version 2"):
        predict_y(registry, version=2)


def test_latest_n_policy(tiny_repo: Path, registry_for: Callable[..., Registry]) -> None:
    export(Repository(tiny_repo), "regressor", "regressor", offset=4.0)
    registry = registry_for(tiny_repo, "models:\n  regressor:\n    version_policy: {latest: 2}\n")
    assert states(registry) == {3: "AVAILABLE", 2: "AVAILABLE"}


@pytest.mark.parametrize(
    ("ref", "error", "fragment"),
    [
        ({"name": "nope"}, NotFound, "Model 'nope' is not served"),
        ({"name": "../etc"}, NotFound, "not served"),
        ({"name": "regressor", "version": 9}, NotFound, "no version 9"),
        ({"name": "regressor", "label": "gold"}, NotFound, "no version labelled 'gold'"),
    ],
)
def test_unknown_references(
    tiny_repo: Path, registry_for: Callable[..., Registry], ref: dict[str, Any], error: type, fragment: str
) -> None:
    registry = registry_for(tiny_repo)
    with pytest.raises(error, match=fragment), registry.acquire(**ref):
        pass


def test_label_for_unserved_version_is_dropped(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo, "models:\n  regressor:\n    labels: {stable: 1}\n")
    assert registry.labels("regressor") == {}  # latest policy: version 1 is not loaded


def test_new_version_is_loaded_then_old_unloaded(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo)
    export(Repository(tiny_repo), "regressor", "regressor", offset=10.0)
    registry.sync()
    assert predict_y(registry) == 11.0
    deadline = time.monotonic() + 5
    while states(registry).get(2) != "END" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert states(registry) == {3: "AVAILABLE", 2: "END"}


def test_unloading_waits_for_in_flight_requests(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo)
    with registry.acquire("regressor") as old:
        export(Repository(tiny_repo), "regressor", "regressor", offset=10.0)
        registry.sync()
        time.sleep(0.2)
        assert old.state == "UNLOADING"  # no new requests, but ours still runs
        assert old.predict({"x": np.array([2.0], np.float32)})["y"][0] == 4.0
        assert predict_y(registry) == 11.0  # new requests go to the new version
    deadline = time.monotonic() + 5
    while old.state != "END" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert old.state == "END"


def test_corrupt_version_never_replaces_a_working_one(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo)
    bad = corrupt_version(Repository(tiny_repo), "regressor")
    registry.sync()
    status = {s.version: s for s in registry.status("regressor")}
    assert status[2].state == "AVAILABLE"
    assert status[bad].state == "END" and "Cannot load the SavedModel" in (status[bad].error or "")
    assert predict_y(registry) == 4.0
    assert registry.not_ready() == []
    with pytest.raises(Unavailable, match="not available"), registry.acquire("regressor", version=bad):
        pass


def test_fixed_version_is_retried(tiny_repo: Path, registry_for: Callable[..., Registry]) -> None:
    repo = Repository(tiny_repo)
    registry = registry_for(tiny_repo)
    bad = corrupt_version(repo, "regressor")
    registry.sync()
    registry.sync()  # unchanged files: not retried, still failed
    assert states(registry)[bad] == "END"
    # replace the broken folder with a good export of the same number
    good = export(Repository(tiny_repo.parent / "scratch"), "regressor", "regressor", offset=7.0)
    shutil.rmtree(repo.version_dir("regressor", bad))
    shutil.copytree(
        tiny_repo.parent / "scratch" / "regressor" / str(good), repo.version_dir("regressor", bad)
    )
    card = repo.card_path("regressor", bad)
    card.write_text(card.read_text().replace('"version": 1', f'"version": {bad}'))
    registry.sync()
    assert states(registry)[bad] == "AVAILABLE"
    assert predict_y(registry) == 8.0


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param(lambda c: c.replace('"name": "x"', '"name": "z"'), id="input-name-mismatch"),
        pytest.param(lambda c: c.replace('"task": "regression"', '"task": "clustering"'), id="unknown-task"),
        pytest.param(lambda c: "{not json", id="unreadable-card"),
    ],
)
def test_card_problems_fail_the_load(
    tiny_repo: Path, registry_for: Callable[..., Registry], mutation: Callable[[str], str]
) -> None:
    repo = Repository(tiny_repo)
    version = export(repo, "regressor", "regressor", offset=9.0)
    path = repo.card_path("regressor", version)
    path.write_text(mutation(path.read_text()))
    registry = registry_for(tiny_repo)
    status = {s.version: s for s in registry.status("regressor")}
    assert status[version].state == "END" and status[version].error
    assert status[2].state == "AVAILABLE"


def test_missing_signature_fails_the_load(tiny_repo: Path, registry_for: Callable[..., Registry]) -> None:
    repo = Repository(tiny_repo)
    version = export(repo, "regressor", "regressor", card={"signature_name": "serve_fast"})
    registry = registry_for(tiny_repo)
    status = {s.version: s for s in registry.status("regressor")}
    assert "no signature 'serve_fast'" in (status[version].error or "")


def test_removed_model_is_retired(tiny_repo: Path, registry_for: Callable[..., Registry]) -> None:
    registry = registry_for(tiny_repo)
    shutil.rmtree(tiny_repo / "binary")
    registry.sync()
    with pytest.raises(NotFound), registry.acquire("binary"):
        pass


def test_a_broken_model_blocks_readiness_only_when_named_or_strict(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    from service import metrics

    corrupt_version(Repository(tiny_repo), "broken")
    dropped_in = registry_for(tiny_repo)
    assert dropped_in.not_ready() == []  # never served, not named: the other models serve on
    assert dropped_in.status("broken")[0].state == "END" and dropped_in.status("broken")[0].error
    assert metrics.MODELS_UNAVAILABLE._value.get() == 1  # ...and it is counted
    assert registry_for(tiny_repo, strict_readiness=True).not_ready() == ["broken"]
    assert registry_for(tiny_repo, "models:\n  broken: {}\n").not_ready() == ["broken"]


def test_invalid_config_keeps_the_last_good_one(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo, "models:\n  regressor:\n    version_policy: all\n")
    (tiny_repo / "serving.yaml").write_text("models:\n  regressor:\n    version_policy: newest\n")
    registry.sync()
    assert registry.config_error and "version_policy" in registry.config_error
    assert states(registry) == {1: "AVAILABLE", 2: "AVAILABLE"}


def test_poller_picks_up_new_versions(tiny_repo: Path, make_settings: Callable[..., Any]) -> None:
    registry = build_registry(make_settings(tiny_repo, poll_interval=0.05))
    registry.start()
    try:
        export(Repository(tiny_repo), "regressor", "regressor", offset=20.0)
        deadline = time.monotonic() + 10
        while predict_y(registry) != 21.0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert predict_y(registry) == 21.0
    finally:
        registry.stop()


def test_no_request_fails_during_reload(tiny_repo: Path, make_settings: Callable[..., Any]) -> None:
    registry = build_registry(make_settings(tiny_repo, poll_interval=0.02))
    registry.start()
    seen: set[float] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                seen.add(predict_y(registry))
            except BaseException as exc:  # any failure is what this test looks for
                errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for offset in (5.0, 6.0, 7.0):
            export(Repository(tiny_repo), "regressor", "regressor", offset=offset)
            time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        registry.stop()
    assert errors == []
    assert {4.0, 8.0} <= seen  # served v2 (0.5*2+3) before and the last version (0.5*2+7) after
