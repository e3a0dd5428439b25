"""Registries sharing one control store, as gunicorn's workers do: one's admin call, the others' polls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.models.config import ModelEntry, VersionPolicy
from service.models.loading import build_registry
from service.models.registry import Registry


@pytest.fixture
def registry_for(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Registry]]:
    """Registries over one repository and one DATA_DIR (make_settings gives every one the same)."""
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
    return {n for n in registry.model_names() if any(s.state == "AVAILABLE" for s in registry.status(n))}


def test_an_unload_and_a_load_on_one_reach_the_other_at_its_next_poll(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    first, second = registry_for(tiny_repo), registry_for(tiny_repo)
    first.unload("digits")
    assert "digits" in served(second)  # not polled yet
    second.sync()
    assert served(second) == served(first) == {"regressor", "binary"}
    second.sync()
    assert "digits" not in served(second)  # polls keep respecting it
    second.load("digits")
    first.sync()
    assert served(first) == served(second) == {"regressor", "digits", "binary"}


def test_a_load_override_reaches_the_other_registry(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    first, second = registry_for(tiny_repo), registry_for(tiny_repo)
    first.load("regressor", ModelEntry(VersionPolicy(kind="all"), {"old": 1}))
    second.sync()
    assert {s.version: s.state for s in second.status("regressor")} == {2: "AVAILABLE", 1: "AVAILABLE"}
    with second.acquire("regressor", label="old") as servable:
        assert servable.version == 1
        assert float(servable.predict({"x": np.array([2.0], np.float32)})["y"][0]) == 3.0


def test_explicit_loads_survive_a_restart(tiny_repo: Path, registry_for: Callable[..., Registry]) -> None:
    before = registry_for(tiny_repo, model_control="explicit")
    before.load("regressor")
    before.stop()
    after = registry_for(tiny_repo, model_control="explicit")  # same DATA_DIR: a restart
    assert served(after) == {"regressor"} and after.not_ready() == []


def test_polling_unloads_survive_a_restart_until_the_next_load(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry_for(tiny_repo).unload("binary")
    restarted = registry_for(tiny_repo)
    assert served(restarted) == {"regressor", "digits"} and restarted.not_ready() == []
    restarted.load("binary")
    assert "binary" in served(registry_for(tiny_repo))
