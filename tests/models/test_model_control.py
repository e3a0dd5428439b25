"""Registry.load/unload (Triton's model repository extension) in both model-control modes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.errors import NotFound, UnprocessableRequest
from service.models.config import BatchingConfig, ModelEntry, VersionPolicy
from service.models.loading import build_registry
from service.models.registry import Registry
from tests.fixtures.tiny_models import corrupt_version


@pytest.fixture
def registry_for(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Registry]]:
    made: list[Registry] = []

    def make(root: Path, **overrides: Any) -> Registry:
        registry = build_registry(make_settings(root, **overrides))
        registry.sync()
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.stop()


def served(registry: Registry) -> set[str]:
    return {
        name for name in registry.model_names() if any(s.state == "AVAILABLE" for s in registry.status(name))
    }


def test_polling_serves_the_repository_and_respects_an_unload_until_the_next_load(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo)
    assert served(registry) == {"regressor", "digits", "binary"}
    registry.unload("digits")
    registry.sync()  # a poll must not bring it back
    assert "digits" not in registry.model_names() and registry.not_ready() == []
    with pytest.raises(NotFound):
        registry.acquire("digits").__enter__()
    statuses = registry.load("digits")
    assert [s.state for s in statuses] == ["AVAILABLE"] and "digits" in served(registry)


def test_explicit_control_serves_only_what_was_loaded(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo, model_control="explicit")
    assert registry.model_names() == [] and registry.not_ready() == []
    registry.load("regressor")
    registry.sync()
    assert served(registry) == {"regressor"}
    registry.unload("regressor")
    registry.sync()
    assert registry.model_names() == []


def test_a_load_override_replaces_the_serving_settings(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo)
    entry = ModelEntry(VersionPolicy(kind="all"), {"old": 1}, BatchingConfig(enabled=False))
    registry.load("regressor", entry)
    assert {s.version: s.state for s in registry.status("regressor")} == {2: "AVAILABLE", 1: "AVAILABLE"}
    with registry.acquire("regressor", label="old") as servable:
        assert servable.version == 1
        assert float(servable.predict({"x": np.array([2.0], np.float32)})["y"][0]) == 3.0


def test_loading_an_unknown_or_broken_model_says_why(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo)
    with pytest.raises(NotFound, match="not in the repository"):
        registry.load("ghost")
    corrupt_version(registry.repository, "broken")
    with pytest.raises(UnprocessableRequest, match="'broken' did not load: version 1:"):
        registry.load("broken")
    with pytest.raises(NotFound, match="not loaded"):
        registry.unload("ghost")
